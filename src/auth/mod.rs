//! CDS Hooks 2.0 authentication: the EHR signs a JWT for every call. We
//! accept it only from a trusted issuer, with an asymmetric algorithm from
//! our allow-list (never `none`, never HMAC), a known key, our exact URL as
//! audience, a live lifetime, a fresh `jti` and, when configured, the tenant.
//! Failure reasons go to the log, never to the caller, never with the token.

pub mod issuers;
mod jwks;
mod replay;

use std::fmt;

use jsonwebtoken::jwk::KeyAlgorithm;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

pub use issuers::TrustedIssuer;
use jwks::JwksCache;
use replay::ReplayGuard;

/// The algorithms CDS Hooks names; the token's header only chooses among them.
const ALLOWED_ALGORITHMS: [Algorithm; 5] =
    [Algorithm::ES384, Algorithm::RS384, Algorithm::ES256, Algorithm::RS256, Algorithm::PS384];
const LEEWAY_SECONDS: u64 = 60;

pub struct Authenticator {
    issuers: Vec<TrustedIssuer>,
    keys: JwksCache,
    replay: ReplayGuard,
}

/// Why a token was refused: for the log only.
#[derive(Debug)]
pub struct AuthFailure(String);

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(reason: impl Into<String>) -> Result<T, AuthFailure> {
    Err(AuthFailure(reason.into()))
}

/// A caller that passed every check.
#[derive(Debug, Clone)]
pub struct Caller {
    pub issuer: String,
    pub subject: Option<String>,
}

#[derive(Deserialize)]
struct UnverifiedClaims {
    iss: Option<String>,
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

impl Authenticator {
    pub fn new(issuers: Vec<TrustedIssuer>, client: reqwest::Client) -> Self {
        Self { issuers, keys: JwksCache::new(client), replay: ReplayGuard::default() }
    }

    /// Verifies `Authorization: Bearer <jwt>` for a call to `audience`.
    pub async fn verify(&self, authorization: Option<&str>, audience: &str) -> Result<Caller, AuthFailure> {
        let Some(header_value) = authorization else { return fail("no Authorization header") };
        let token = match header_value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return fail("Authorization is not a Bearer token"),
        };
        let header = decode_header(token).map_err(|e| AuthFailure(format!("unreadable JWT header: {e}")))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return fail(format!("algorithm {:?} is not accepted", header.alg));
        }
        let Some(kid) = header.kid.as_deref() else { return fail("the JWT header has no kid") };
        let unverified: UnverifiedClaims = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|e| AuthFailure(format!("unreadable JWT claims: {e}")))?;
        let Some(issuer) = unverified.iss.as_deref().and_then(|iss| self.issuers.iter().find(|i| i.iss == iss)) else {
            return fail(format!("issuer {:?} is not trusted", unverified.iss.as_deref().unwrap_or("(none)")));
        };

        let jwk = match (&header.jku, &issuer.jwks, &issuer.jwks_url) {
            (Some(jku), _, _) if !issuer.allowed_jku.iter().any(|allowed| allowed == jku) => {
                return fail(format!("jku {jku} is not allowed for issuer {}", issuer.iss))
            }
            (Some(jku), _, _) => self.keys.key(jku, kid).await.map_err(AuthFailure)?,
            (None, Some(inline), _) => match inline.find(kid) {
                Some(jwk) => jwk.clone(),
                None => return fail(format!("unknown kid '{kid}' for issuer {}", issuer.iss)),
            },
            (None, None, Some(url)) => self.keys.key(url, kid).await.map_err(AuthFailure)?,
            (None, None, None) => return fail(format!("issuer {} requires a jku", issuer.iss)),
        };
        if jwk.common.key_algorithm.is_some_and(|alg| alg != KeyAlgorithm::from(header.alg)) {
            return fail(format!("key '{kid}' is not for {:?}", header.alg));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| AuthFailure(format!("key '{kid}' is unusable: {e}")))?;

        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&issuer.iss]);
        validation.set_audience(&[audience]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthFailure(format!("JWT rejected: {e}")))?
            .claims;

        let now = jsonwebtoken::get_current_timestamp();
        match claims.iat {
            None => return fail("the JWT has no iat"),
            Some(iat) if iat > now + LEEWAY_SECONDS => return fail("the JWT was issued in the future"),
            Some(_) => {}
        }
        if let Some(tenant) = &issuer.tenant {
            if claims.tenant.as_deref() != Some(tenant.as_str()) {
                return fail("the JWT is for another tenant");
            }
        }
        let Some(jti) = claims.jti.as_deref().filter(|j| !j.is_empty()) else { return fail("the JWT has no jti") };
        if !self.replay.first_use(&claims.iss, jti, claims.exp + LEEWAY_SECONDS, now) {
            return fail("the JWT's jti was already used");
        }
        Ok(Caller { issuer: claims.iss, subject: claims.sub })
    }
}
