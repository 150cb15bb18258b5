//! jti replay protection: a token id is accepted once within its lifetime.
//! In memory, so per replica; replicas behind a load balancer each keep
//! their own (see docs/deployment.md once it exists).

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<String, u64>>,
}

impl ReplayGuard {
    /// Records (issuer, jti) until `expires_at`; false if already seen.
    pub fn first_use(&self, issuer: &str, jti: &str, expires_at: u64, now: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.len() > 10_000 {
            seen.retain(|_, expiry| *expiry >= now);
        }
        let key = format!("{issuer}\u{0}{jti}");
        match seen.get(&key) {
            Some(expiry) if *expiry >= now => false,
            _ => {
                seen.insert(key, expires_at);
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
        assert!(guard.first_use("iss", "a", 100, 10));
        assert!(!guard.first_use("iss", "a", 100, 50));
        assert!(guard.first_use("other", "a", 100, 50));
        assert!(guard.first_use("iss", "a", 200, 101), "after expiry the id may come back");
    }
}
