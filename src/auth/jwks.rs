//! Issuers' key sets, fetched over HTTP and cached; an unknown kid triggers
//! a refresh, at most once a minute per URL.

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use tokio::sync::Mutex;
use tokio::time::Instant;

const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);
const KEEP_FOR: Duration = Duration::from_secs(3600);
const MAX_JWKS_BYTES: usize = 256 * 1024;

struct Cached {
    set: JwkSet,
    fetched_at: Instant,
}

pub struct JwksCache {
    client: reqwest::Client,
    entries: Mutex<HashMap<String, Cached>>,
}

impl JwksCache {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key `kid` at `url`, refreshing the set when the kid is unknown.
    pub async fn key(&self, url: &str, kid: &str) -> Result<Jwk, String> {
        {
            let entries = self.entries.lock().await;
            if let Some(cached) = entries.get(url) {
                let fresh = cached.fetched_at.elapsed() < KEEP_FOR;
                if let Some(jwk) = cached.set.find(kid).filter(|_| fresh) {
                    return Ok(jwk.clone());
                }
                if cached.fetched_at.elapsed() < REFRESH_AT_MOST_EVERY {
                    return Err(format!(
                        "unknown kid '{kid}' (key set refreshed less than a minute ago)"
                    ));
                }
            }
        }
        let set = self.fetch(url).await?;
        let jwk = set.find(kid).cloned();
        self.entries.lock().await.insert(
            url.to_owned(),
            Cached {
                set,
                fetched_at: Instant::now(),
            },
        );
        jwk.ok_or_else(|| format!("unknown kid '{kid}'"))
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, String> {
        let response = self
            .client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("key set {url} unreachable: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("key set {url} answered {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|l| l as usize > MAX_JWKS_BYTES)
        {
            return Err(format!("key set {url} is too large"));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("key set {url}: {}", e.without_url()))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("key set {url} is too large"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("key set {url} is not a JWKS: {e}"))
    }
}
