//! Issuers' key sets, fetched over HTTP and cached; an unknown kid triggers
//! a refresh, at most once a minute per URL, one fetch at a time.

use std::collections::HashMap;
use std::sync::Arc;
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
    #[error("key set {0} could not be fetched a moment ago; not asked again yet")]
    RecentlyFailed(String),
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

/// The last fetch of a key set: when, and whether it failed.
#[derive(Default)]
struct Attempt {
    at: Option<Instant>,
    failed: bool,
}

/// After a failed fetch, calls wait this long before the next one tries:
/// an EHR's key server that is down is not asked once per call.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(5);

/// Key sets by URL. The URLs are the issuers file's (`jwksUrl`,
/// `allowedJku`), so both maps stay as small as that file.
pub struct JwksCache {
    client: reqwest::Client,
    sets: std::sync::Mutex<HashMap<String, Cached>>,
    /// One fetch per URL at a time: calls that miss together wait for the
    /// one fetch and read its result (forged kids cannot fan out fetches).
    attempts: std::sync::Mutex<HashMap<String, Arc<Mutex<Attempt>>>>,
}

impl JwksCache {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            sets: std::sync::Mutex::default(),
            attempts: std::sync::Mutex::default(),
        }
    }

    /// `kid` in the cached set at `url` while it is fresh.
    fn cached(&self, url: &str, kid: &str) -> Option<Jwk> {
        let sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        let cached = sets.get(url)?;
        let fresh = cached.fetched_at.elapsed() < KEEP_FOR;
        cached.set.find(kid).filter(|_| fresh).cloned()
    }

    /// The key `kid` at `url`, refreshing the set when the kid is unknown
    /// (at most once a minute, or every 5 s after a failure). A call with a
    /// cached kid never waits for a fetch.
    pub async fn key(&self, url: &str, kid: &str) -> Result<Jwk, KeyError> {
        if let Some(jwk) = self.cached(url, kid) {
            return Ok(jwk);
        }
        let attempt = self
            .attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(url.to_owned())
            .or_default()
            .clone();
        let mut attempt = attempt.lock().await;
        // A fetch finished while this call waited: its set may hold the kid.
        if let Some(jwk) = self.cached(url, kid) {
            return Ok(jwk);
        }
        if let Some(at) = attempt.at {
            match attempt.failed {
                true if at.elapsed() < RETRY_FAILED_AFTER => {
                    return Err(KeyError::RecentlyFailed(url.to_owned()))
                }
                false if at.elapsed() < REFRESH_AT_MOST_EVERY => {
                    return Err(KeyError::UnknownKidRecentlyRefreshed(kid.to_owned()))
                }
                _ => {}
            }
        }
        let fetched = self.fetch(url).await;
        *attempt = Attempt {
            at: Some(Instant::now()),
            failed: fetched.is_err(),
        };
        let set = fetched?;
        let jwk = set.find(kid).cloned();
        self.sets.lock().unwrap_or_else(|e| e.into_inner()).insert(
            url.to_owned(),
            Cached {
                set,
                fetched_at: Instant::now(),
            },
        );
        jwk.ok_or_else(|| KeyError::UnknownKid(kid.to_owned()))
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, KeyError> {
        let mut response = self
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
        // Read chunk by chunk: a chunked answer has no length to check first.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| KeyError::Body {
            url: url.to_owned(),
            error: e.without_url(),
        })? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(KeyError::TooLarge(url.to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|error| KeyError::NotJwks {
            url: url.to_owned(),
            error,
        })
    }
}
