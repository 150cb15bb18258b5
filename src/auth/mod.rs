//! CDS Hooks 2.0 authentication: the EHR signs a JWT for every call. We
//! accept it only from a trusted issuer, with an asymmetric algorithm from
//! our allow-list (never `none`, never HMAC), no `crit` extension we do not
//! understand, a known key, one of our public URLs as audience, a live and
//! short lifetime, a `jti` never seen by any replica sharing the store and,
//! when configured, the tenant. Failure reasons go to the log (escaped),
//! never to the caller, never with the token.

pub mod issuers;
mod jwks;
mod replay;

use std::fmt;

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

pub use issuers::TrustedIssuer;
use jwks::{JwksCache, KeyError};
use replay::{token_key, ReplayGuard};
pub use replay::{ReplayStoreError, UsedTokens};

use crate::prefetch::trust::IssuerKey;
use crate::telemetry::escape_for_log;

/// The algorithms CDS Hooks names; the token's header only chooses among them.
const ALLOWED_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES384,
    Algorithm::RS384,
    Algorithm::ES256,
    Algorithm::RS256,
    Algorithm::PS384,
];
const LEEWAY_SECONDS: u64 = 60;
/// CDS Hooks asks for tokens that live five minutes at most.
pub const DEFAULT_MAX_LIFETIME_SECONDS: u64 = 300;
/// Longest request-derived value quoted in a log line.
const LOG_VALUE_MAX: usize = 200;

pub struct Authenticator {
    issuers: Vec<TrustedIssuer>,
    keys: JwksCache,
    replay: ReplayGuard,
    max_lifetime: u64,
}

/// Why a token was refused, with what was expected and received: for the
/// log only. Every request-derived part is escaped and capped when shown.
#[derive(Debug, Default)]
pub struct AuthFailure {
    reason: String,
    expected_aud: Vec<String>,
    aud: Option<String>,
    iss: Option<String>,
    kid: Option<String>,
    /// The shared replay store could not answer (counted apart).
    pub store_outage: bool,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<String>| {
            v.as_deref().map_or_else(
                || "-".to_owned(),
                |v| format!("\"{}\"", escape_for_log(v, LOG_VALUE_MAX)),
            )
        };
        write!(
            f,
            "{}; expected aud {:?}; received aud {}, iss {}, kid {}",
            escape_for_log(&self.reason, 2 * LOG_VALUE_MAX),
            self.expected_aud,
            shown(&self.aud),
            shown(&self.iss),
            shown(&self.kid)
        )
    }
}

/// Why a token was refused (AuthFailure adds what was received, for the log).
#[derive(Debug, thiserror::Error)]
enum AuthError {
    #[error("no Authorization header")]
    NoAuthorization,
    #[error("Authorization is not a Bearer token")]
    NotBearer,
    #[error("unreadable JWT header: {0}")]
    UnreadableHeader(#[source] jsonwebtoken::errors::Error),
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    #[error("the JWT header marks extensions critical ({0}); none is understood")]
    Critical(String),
    #[error("the JWT header has no kid")]
    NoKid,
    #[error("the issuer is not trusted")]
    UntrustedIssuer,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("key '{kid}' is not for {alg:?}")]
    KeyNotForAlgorithm { kid: String, alg: Algorithm },
    #[error("key '{kid}' is unusable: {error}")]
    UnusableKey {
        kid: String,
        #[source]
        error: jsonwebtoken::errors::Error,
    },
    #[error("JWT rejected: {0}")]
    Rejected(#[source] jsonwebtoken::errors::Error),
    #[error("the JWT has no iat")]
    NoIat,
    #[error("the JWT was issued in the future")]
    IssuedInTheFuture,
    #[error("the JWT lives {lives} s (exp - iat), longer than the {allowed} s allowed")]
    LivesTooLong { lives: u64, allowed: u64 },
    #[error("the JWT is for another tenant")]
    OtherTenant,
    #[error("the JWT has no jti")]
    NoJti,
    #[error("the JWT's jti was already used")]
    Replayed,
    #[error("the JWT's jti was already used (seen by the shared store)")]
    ReplayedElsewhere,
    #[error("the replay store cannot be read, refusing (fail closed): {0}")]
    ReplayStore(#[source] ReplayStoreError),
}

/// A caller that passed every check.
#[derive(Debug, Clone)]
pub struct Caller {
    pub issuer: String,
    /// The issuers-file entry that verified the token: its servers are
    /// the ones this call's tokens may go to.
    pub key: IssuerKey,
    pub subject: Option<String>,
}

/// The claims read before the signature is checked: only to choose the
/// issuer's keys and to say in the log what was received.
#[derive(Deserialize)]
struct UnverifiedClaims {
    iss: Option<serde_json::Value>,
    aud: Option<serde_json::Value>,
    tenant: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: Option<String>,
    exp: u64,
    iat: Option<u64>,
    jti: Option<String>,
    tenant: Option<String>,
}

fn text_of(value: &Option<serde_json::Value>) -> Option<String> {
    value
        .as_ref()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
}

impl Authenticator {
    /// `max_lifetime`: the longest `exp - iat` accepted, in seconds (plus leeway).
    pub fn new(issuers: Vec<TrustedIssuer>, client: reqwest::Client, max_lifetime: u64) -> Self {
        Self {
            issuers,
            keys: JwksCache::new(client),
            replay: ReplayGuard::default(),
            max_lifetime,
        }
    }

    /// Verifies `Authorization: Bearer <jwt>` for a call whose audience may
    /// be any of `audiences`; `used` is the store shared by the replicas.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        audiences: &[String],
        used: &impl UsedTokens,
    ) -> Result<Caller, AuthFailure> {
        let mut failure = AuthFailure {
            expected_aud: audiences.to_vec(),
            ..AuthFailure::default()
        };
        let result = self
            .check(authorization, audiences, used, &mut failure)
            .await;
        result.map_err(|reason| AuthFailure {
            reason: reason.to_string(),
            ..failure
        })
    }

    async fn check(
        &self,
        authorization: Option<&str>,
        audiences: &[String],
        used: &impl UsedTokens,
        seen: &mut AuthFailure,
    ) -> Result<Caller, AuthError> {
        let Some(header_value) = authorization else {
            return Err(AuthError::NoAuthorization);
        };
        let token = match header_value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(AuthError::NotBearer),
        };
        let header = decode_header(token).map_err(AuthError::UnreadableHeader)?;
        seen.kid = header.kid.clone();
        let mut claimed_tenant = None;
        if let Ok(unverified) =
            jsonwebtoken::dangerous::insecure_decode_claims::<UnverifiedClaims>(token)
        {
            seen.iss = text_of(&unverified.iss);
            seen.aud = text_of(&unverified.aud);
            claimed_tenant = text_of(&unverified.tenant);
        }
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Algorithm(header.alg));
        }
        // RFC 7515 4.1.11: an extension marked critical that we do not
        // understand (we understand none) makes the token invalid.
        if let Some(crit) = &header.crit {
            return Err(AuthError::Critical(format!("{crit:?}")));
        }
        let Some(kid) = header.kid.as_deref() else {
            return Err(AuthError::NoKid);
        };
        // The entry for the token's tenant when the issuer has one per
        // tenant (chosen before the signature is checked, confirmed after
        // it: the tenant claim must then match the entry's).
        let Some(issuer) = seen.iss.as_deref().and_then(|iss| {
            let mut entries = self.issuers.iter().filter(|i| i.iss == iss);
            let first = entries.clone().next();
            entries
                .find(|i| i.tenant.is_some() && i.tenant == claimed_tenant)
                .or(first)
        }) else {
            return Err(AuthError::UntrustedIssuer);
        };

        let jwk = self.key_for(issuer, kid, header.jku.as_deref()).await?;
        if jwk
            .common
            .key_algorithm
            .is_some_and(|alg| alg != KeyAlgorithm::from(header.alg))
        {
            return Err(AuthError::KeyNotForAlgorithm {
                kid: kid.to_owned(),
                alg: header.alg,
            });
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|error| AuthError::UnusableKey {
            kid: kid.to_owned(),
            error,
        })?;

        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&issuer.iss]);
        validation.set_audience(audiences);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(AuthError::Rejected)?
            .claims;

        let now = jsonwebtoken::get_current_timestamp();
        let iat = match claims.iat {
            None => return Err(AuthError::NoIat),
            Some(iat) if iat > now + LEEWAY_SECONDS => return Err(AuthError::IssuedInTheFuture),
            Some(iat) => iat,
        };
        if claims.exp.saturating_sub(iat) > self.max_lifetime + LEEWAY_SECONDS {
            return Err(AuthError::LivesTooLong {
                lives: claims.exp.saturating_sub(iat),
                allowed: self.max_lifetime,
            });
        }
        if let Some(tenant) = &issuer.tenant {
            if claims.tenant.as_deref() != Some(tenant.as_str()) {
                return Err(AuthError::OtherTenant);
            }
        }
        let Some(jti) = claims.jti.as_deref().filter(|j| !j.is_empty()) else {
            return Err(AuthError::NoJti);
        };
        // Memory first (this replica's recent tokens, no round trip), then
        // the store every replica shares, which also outlives a restart.
        let key = token_key(&claims.iss, jti);
        let expires_at = claims.exp + LEEWAY_SECONDS;
        if !self.replay.first_use(&key, expires_at, now) {
            return Err(AuthError::Replayed);
        }
        match used.first_use(key, expires_at).await {
            Ok(true) => {}
            Ok(false) => return Err(AuthError::ReplayedElsewhere),
            Err(error) => {
                seen.store_outage = true;
                return Err(AuthError::ReplayStore(error));
            }
        }
        Ok(Caller {
            issuer: claims.iss,
            key: issuer.key(),
            subject: claims.sub,
        })
    }

    /// The key for `kid`: pinned keys first (the inline `jwks`, then the
    /// `jwksUrl` set), whatever the token's `jku`; a `jku` is fetched only
    /// when the issuer allows it and no pinned key has that kid.
    async fn key_for(
        &self,
        issuer: &TrustedIssuer,
        kid: &str,
        jku: Option<&str>,
    ) -> Result<Jwk, KeyError> {
        if let Some(jwk) = issuer.jwks.as_ref().and_then(|set| set.find(kid)) {
            return Ok(jwk.clone());
        }
        let mut pinned_error = None;
        if let Some(url) = &issuer.jwks_url {
            match self.keys.key(url, kid).await {
                Ok(jwk) => return Ok(jwk),
                Err(error) => pinned_error = Some(error),
            }
        }
        match jku {
            Some(jku) if issuer.allowed_jku.iter().any(|allowed| allowed == jku) => {
                self.keys.key(jku, kid).await
            }
            Some(jku) => Err(KeyError::JkuNotAllowed {
                kid: kid.to_owned(),
                jku: jku.to_owned(),
                issuer: issuer.iss.clone(),
            }),
            None => Err(
                pinned_error.unwrap_or_else(|| KeyError::UnknownKidForIssuer {
                    kid: kid.to_owned(),
                    issuer: issuer.iss.clone(),
                }),
            ),
        }
    }
}
