//! Trusted issuers, from a JSON file:
//!
//! ```json
//! {"issuers": [{"iss": "https://ehr.example.org",
//!               "jwksUrl": "https://ehr.example.org/.well-known/jwks.json",
//!               "allowedJku": ["https://ehr.example.org/.well-known/jwks.json"],
//!               "tenant": "hospital-a",
//!               "fhirServers": ["https://ehr.example.org/fhir"]}]}
//! ```
//! An issuer names where its keys are: `jwksUrl`, an inline `jwks`, or only
//! `allowedJku` (then every token must carry one of those `jku`). Keys it
//! holds (`jwks`, `jwksUrl`) are pinned: a token whose `kid` they hold is
//! verified with them whatever its `jku`. `fhirServers` binds the FHIR base
//! URLs its calls may name as `fhirServer` (and receive their tokens).

use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use crate::prefetch::trust::{IssuerKey, ServerPattern};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustedIssuer {
    pub iss: String,
    pub jwks_url: Option<String>,
    pub jwks: Option<JwkSet>,
    #[serde(default)]
    pub allowed_jku: Vec<String>,
    pub tenant: Option<String>,
    /// The FHIR servers this issuer's calls may name (parsed, compared by
    /// scheme, host, port and path prefix).
    #[serde(default)]
    pub fhir_servers: Vec<ServerPattern>,
}

impl TrustedIssuer {
    /// The issuer and tenant this entry stands for.
    pub fn key(&self) -> IssuerKey {
        IssuerKey {
            iss: self.iss.clone(),
            tenant: self.tenant.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuersFile {
    issuers: Vec<TrustedIssuer>,
}

/// Why the issuers file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IssuersError {
    #[error("issuers file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("issuers file {path}: {why}")]
    Invalid { path: String, why: InvalidIssuers },
}

/// What is wrong with the file's content.
#[derive(Debug, thiserror::Error)]
pub enum InvalidIssuers {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("issuer '{0}' names no keys (jwksUrl, jwks or allowedJku)")]
    NoKeys(String),
    #[error("issuer '{iss}': '{url}' is not an http(s) URL")]
    NotHttp { iss: String, url: String },
    #[error("issuer '{0}' has more than one entry: give each its own \"tenant\" (a token then names its tenant), or merge them")]
    Ambiguous(String),
}

pub fn load(path: &Path) -> Result<Vec<TrustedIssuer>, IssuersError> {
    let name = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| IssuersError::Read {
        path: name(),
        source,
    })?;
    parse(&text).map_err(|why| IssuersError::Invalid { path: name(), why })
}

pub fn parse(text: &str) -> Result<Vec<TrustedIssuer>, InvalidIssuers> {
    let file: IssuersFile = serde_json::from_str(text)?;
    // One entry per issuer, or one per tenant of it: otherwise which
    // entry's keys and servers apply to a token would be a guess.
    for (index, issuer) in file.issuers.iter().enumerate() {
        let ambiguous = file.issuers[..index].iter().any(|earlier| {
            earlier.iss == issuer.iss
                && (earlier.tenant.is_none()
                    || issuer.tenant.is_none()
                    || earlier.tenant == issuer.tenant)
        });
        if ambiguous {
            return Err(InvalidIssuers::Ambiguous(issuer.iss.clone()));
        }
    }
    for issuer in &file.issuers {
        if issuer.jwks_url.is_none() && issuer.jwks.is_none() && issuer.allowed_jku.is_empty() {
            return Err(InvalidIssuers::NoKeys(issuer.iss.clone()));
        }
        for url in issuer.jwks_url.iter().chain(&issuer.allowed_jku) {
            // Parsed, never prefix-matched.
            let http = url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !http {
                return Err(InvalidIssuers::NotHttp {
                    iss: issuer.iss.clone(),
                    url: url.clone(),
                });
            }
        }
    }
    Ok(file.issuers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_must_name_its_keys() {
        assert!(matches!(
            parse(r#"{"issuers":[{"iss":"x"}]}"#),
            Err(InvalidIssuers::NoKeys(_))
        ));
        assert!(parse(r#"{"issuers":[{"iss":"x","jwksUrl":"https://"}]}"#).is_err());
        assert!(parse(r#"{"issuers":[{"iss":"x","jwksUrl":"file:///etc/passwd"}]}"#).is_err());
        assert_eq!(
            parse(r#"{"issuers":[{"iss":"x","jwksUrl":"https://x/jwks"}]}"#)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn an_issuer_has_one_entry_or_one_per_tenant() {
        let file = |entries: &str| parse(&format!(r#"{{"issuers":[{entries}]}}"#));
        let a = r#"{"iss":"x","jwksUrl":"https://x/jwks","tenant":"a"}"#;
        let b = r#"{"iss":"x","jwksUrl":"https://x/jwks","tenant":"b"}"#;
        let any = r#"{"iss":"x","jwksUrl":"https://x/jwks"}"#;
        assert_eq!(file(&format!("{a},{b}")).unwrap().len(), 2);
        for twice in [
            format!("{a},{a}"),
            format!("{any},{any}"),
            format!("{a},{any}"),
            format!("{any},{b}"),
        ] {
            assert!(
                matches!(file(&twice), Err(InvalidIssuers::Ambiguous(_))),
                "{twice}"
            );
        }
    }

    #[test]
    fn bound_fhir_servers_are_parsed_urls() {
        let ok = parse(r#"{"issuers":[{"iss":"x","jwksUrl":"https://x/jwks","fhirServers":["https://ehr.example/fhir"]}]}"#).unwrap();
        assert_eq!(ok[0].fhir_servers.len(), 1);
        assert!(parse(r#"{"issuers":[{"iss":"x","jwksUrl":"https://x/jwks","fhirServers":["https://u@ehr.example/fhir"]}]}"#).is_err());
        assert!(parse(r#"{"issuers":[{"iss":"x","jwksUrl":"https://x/jwks","fhirServers":["ftp://ehr.example/"]}]}"#).is_err());
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn the_documented_example_parses() {
        let text = include_str!("../../cds-hooks/issuers.example.json");
        let issuers = super::parse(text).unwrap();
        assert!(issuers
            .iter()
            .any(|i| i.iss == "https://sandbox.cds-hooks.org"));
    }
}
