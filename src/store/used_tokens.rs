//! The replay store: JWT ids already used, in the database every replica
//! shares. An insert that finds the key is a replay; a database that cannot
//! answer is an error, and the caller refuses the token (fail closed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{ready, Store, StoreError};
use crate::auth::{ReplayStoreError, UsedTokens};

/// Expired rows are swept after this many inserts (per process).
const SWEEP_EVERY: u64 = 256;
/// A replay check never holds a request longer than this.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

static INSERTS: AtomicU64 = AtomicU64::new(0);

impl UsedTokens for Store {
    async fn first_use(&self, key: String, expires_at: u64) -> Result<bool, ReplayStoreError> {
        let shared = self.shared.clone();
        let expires_at = i64::try_from(expires_at).unwrap_or(i64::MAX);
        let task = self.spawn(async move {
            ready(&shared)?;
            let inserted = sqlx::query("INSERT INTO used_tokens (token_key, expires_at) VALUES ($1, $2) ON CONFLICT (token_key) DO NOTHING")
                .bind(key)
                .bind(expires_at)
                .execute(&shared.pool)
                .await?
                .rows_affected();
            if INSERTS.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == 0 {
                let now = chrono::Utc::now().timestamp();
                if let Err(error) = sqlx::query("DELETE FROM used_tokens WHERE expires_at < $1").bind(now).execute(&shared.pool).await {
                    log::warn!("sweeping expired token ids failed: {error}");
                }
            }
            Ok(inserted == 1)
        });
        let result = match tokio::time::timeout(CHECK_TIMEOUT, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(StoreError::Unavailable(join.to_string())),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {CHECK_TIMEOUT:?}"
            ))),
        };
        if result.is_err() {
            metrics::counter!("store_failures_total", "operation" => "replay-check").increment(1);
        }
        result.map_err(|error| ReplayStoreError(Box::new(error)))
    }
}
