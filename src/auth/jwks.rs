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

/// Why no key was found for a token's kid.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown kid '{0}' (key set refreshed less than a minute ago)")]
    UnknownKidRecentlyRefreshed(String),
    #[error("unknown kid '{0}'")]
    UnknownKid(String),
    #[error("key set {url} unreachable: {error}")]
    Unreachable {
        url: String,
        #[source]
        error: reqwest::Error,
    },
    #[error("key set {url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("key set {0} is too large")]
    TooLarge(String),
    #[error("key set {url}: {error}")]
    Body {
        url: String,
        #[source]
        error: reqwest::Error,
    },
    #[error("key set {url} is not a JWKS: {error}")]
    NotJwks {
        url: String,
        #[source]
        error: serde_json::Error,
    },
    #[error("kid '{kid}' is not pinned and jku {jku} is not allowed for issuer {issuer}")]
    JkuNotAllowed {
        kid: String,
        jku: String,
        issuer: String,
    },
    #[error("unknown kid '{kid}' for issuer {issuer}")]
    UnknownKidForIssuer { kid: String, issuer: String },
}

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
    pub async fn key(&self, url: &str, kid: &str) -> Result<Jwk, KeyError> {
        {
            let entries = self.entries.lock().await;
            if let Some(cached) = entries.get(url) {
                let fresh = cached.fetched_at.elapsed() < KEEP_FOR;
                if let Some(jwk) = cached.set.find(kid).filter(|_| fresh) {
                    return Ok(jwk.clone());
                }
                if cached.fetched_at.elapsed() < REFRESH_AT_MOST_EVERY {
                    return Err(KeyError::UnknownKidRecentlyRefreshed(kid.to_owned()));
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
        jwk.ok_or_else(|| KeyError::UnknownKid(kid.to_owned()))
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, KeyError> {
        let response = self
            .client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| KeyError::Unreachable {
                url: url.to_owned(),
                error: e.without_url(),
            })?;
        if !response.status().is_success() {
            return Err(KeyError::Status {
                url: url.to_owned(),
                status: response.status(),
            });
        }
        if response
            .content_length()
            .is_some_and(|l| l as usize > MAX_JWKS_BYTES)
        {
            return Err(KeyError::TooLarge(url.to_owned()));
        }
        let body = response.bytes().await.map_err(|e| KeyError::Body {
            url: url.to_owned(),
            error: e.without_url(),
        })?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(KeyError::TooLarge(url.to_owned()));
        }
        serde_json::from_slice(&body).map_err(|error| KeyError::NotJwks {
            url: url.to_owned(),
            error,
        })
    }
}
