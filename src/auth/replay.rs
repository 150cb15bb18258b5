//! jti replay protection: a token id is accepted once within its lifetime.
//! Each replica remembers the ids it saw (refusing a replay without a round
//! trip), and every id goes to the store the replicas share, which refuses
//! it on any replica and after a restart.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

/// Entries kept in memory before expired ones are swept (at most once a
/// second: a sweep walks them all).
const SWEEP_ABOVE: usize = 10_000;

/// Entries kept in memory at most. Past it the memory is emptied: it only
/// spares the shared store a round trip, which still refuses every replay.
const REMEMBER_AT_MOST: usize = 200_000;

/// The store's side: records a token key until `expires_at` (Unix seconds);
/// Ok(false) when it was already recorded, Err when the store cannot say.
/// Implemented by the store, which depends on auth, not the other way round.
pub trait UsedTokens: Sync {
    fn first_use(
        &self,
        key: String,
        expires_at: u64,
    ) -> impl Future<Output = Result<bool, ReplayStoreError>> + Send;
}

/// The shared store could not say whether a token id was used: the
/// implementor's own error, kept as the cause.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ReplayStoreError(pub Box<dyn std::error::Error + Send + Sync + 'static>);

/// A fixed-length key for (issuer, jti): both are the caller's text.
pub fn token_key(issuer: &str, jti: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{issuer}\u{0}{jti}").as_bytes(),
    );
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    expiries: HashMap<String, u64>,
    swept_at: u64,
}

impl ReplayGuard {
    /// Records `key` until `expires_at`; false if already seen.
    pub fn first_use(&self, key: &str, expires_at: u64, now: u64) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.expiries.len() > SWEEP_ABOVE && seen.swept_at < now {
            seen.expiries.retain(|_, expiry| *expiry >= now);
            seen.swept_at = now;
        }
        if seen.expiries.len() >= REMEMBER_AT_MOST {
            seen.expiries.clear();
        }
        match seen.expiries.get(key) {
            Some(expiry) if *expiry >= now => false,
            _ => {
                seen.expiries.insert(key.to_owned(), expires_at);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once_while_its_token_lives() {
        let guard = ReplayGuard::default();
        let (a, other_a) = (token_key("iss", "a"), token_key("other", "a"));
        assert!(guard.first_use(&a, 100, 10));
        assert!(!guard.first_use(&a, 100, 50));
        assert!(guard.first_use(&other_a, 100, 50));
        assert!(
            guard.first_use(&a, 200, 101),
            "after expiry the id may come back"
        );
    }

    /// Live ids past the cap empty the memory (the shared store still
    /// refuses replays); expired ones are swept at most once a second.
    #[test]
    fn the_memory_is_bounded() {
        let guard = ReplayGuard::default();
        for i in 0..REMEMBER_AT_MOST + 10 {
            assert!(guard.first_use(&i.to_string(), 1_000, 10));
        }
        let remembered = guard.seen.lock().unwrap().expiries.len();
        assert!(remembered <= REMEMBER_AT_MOST, "{remembered}");
        let expired = ReplayGuard::default();
        for i in 0..SWEEP_ABOVE + 1 {
            expired.first_use(&i.to_string(), 5, 1);
        }
        expired.first_use("late", 50, 10);
        assert_eq!(expired.seen.lock().unwrap().expiries.len(), 1);
    }

    #[test]
    fn keys_do_not_collide_across_the_separator() {
        assert_ne!(token_key("a", "bc"), token_key("ab", "c"));
        assert_eq!(token_key("a", "b").len(), 64);
    }
}
