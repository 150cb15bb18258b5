//! JWT authentication per CDS Hooks 2.0, with keys generated for the tests
//! (tests/keys/) and a key set served over HTTP on loopback.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::*;

pub const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys");
pub const ISSUER: &str = "https://ehr.example.org";
pub const SERVICE: &str = "/cds-services/leg-cramps-patient-view";

pub struct KeyServer {
    pub jwks_url: String,
    pub fetches: Arc<AtomicUsize>,
}

/// Serves tests/keys/jwks.json at /jwks.json, counting fetches.
pub async fn key_server() -> KeyServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let jwks_url = format!(
        "http://127.0.0.1:{}/jwks.json",
        listener.local_addr().unwrap().port()
    );
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let jwks = std::fs::read_to_string(format!("{KEYS}/jwks.json")).unwrap();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        let jwks = jwks.clone();
        App::new().route(
            "/jwks.json",
            web::get().to(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let jwks = jwks.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(jwks)
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    KeyServer { jwks_url, fetches }
}

/// Writes an issuers file and returns its path.
pub fn issuers_file(issuers: Value) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("cramp-cds-issuers-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, json!({ "issuers": issuers }).to_string()).unwrap();
    path
}

/// An app with authentication on; these calls fetch nothing, so any public
/// FHIR server is allowed (authentication alone would refuse to start).
pub async fn secured_app(issuers: Value) -> TestApp {
    let path = issuers_file(issuers);
    spawn_app_with(move |s| {
        s.issuers = Some(path);
        s.fhir.allowed_servers = vec!["any".into()];
    })
    .await
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

pub fn claims(audience: &str) -> Value {
    json!({"iss": ISSUER, "sub": "ehr-client", "aud": audience, "iat": now(), "exp": now() + 300, "jti": uuid::Uuid::new_v4().to_string()})
}

pub fn sign(alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    header.typ = Some("JWT".into());
    let key = match alg {
        Algorithm::ES384 => {
            EncodingKey::from_ec_pem(&std::fs::read(format!("{KEYS}/es384-private.pem")).unwrap())
                .unwrap()
        }
        _ => {
            EncodingKey::from_rsa_pem(&std::fs::read(format!("{KEYS}/rs384-private.pem")).unwrap())
                .unwrap()
        }
    };
    encode(&header, claims, &key).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use std::fmt::Write;
    // base64url without padding, written out to keep the dependency list short.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            let _ = out.write_char(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub async fn call(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/json")
        .body(patient_view_request().to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

pub async fn assert_401(response: reqwest::Response, case: &str) {
    assert_eq!(response.status(), 401, "{case}");
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
        "{case}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome", "{case}");
    assert_eq!(
        body["issue"][0]["diagnostics"], "authentication failed",
        "{case}: no details"
    );
}

#[tokio::test]
async fn valid_es384_and_rs384_tokens_pass_and_everything_else_is_401() {
    let keys = key_server().await;
    let app = secured_app(
        json!([{"iss": ISSUER, "jwksUrl": keys.jwks_url, "allowedJku": [keys.jwks_url]}]),
    )
    .await;
    let audience = format!("{}{SERVICE}", app.address);

    assert_valid_cards(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::ES384, "test-es384", &claims(&audience))),
        )
        .await,
    )
    .await;
    assert_valid_cards(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::RS384, "test-rs384", &claims(&audience))),
        )
        .await,
    )
    .await;

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(&audience);
        f(&mut c);
        c
    };
    let public_pem = std::fs::read(format!("{KEYS}/es384-public.pem")).unwrap();
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("test-es384".into());
        encode(
            &header,
            &claims(&audience),
            &EncodingKey::from_secret(&public_pem),
        )
        .unwrap()
    };
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"test-es384"}"#),
        b64(claims(&audience).to_string().as_bytes())
    );
    let tampered = {
        let token = sign(Algorithm::ES384, "test-es384", &claims(&audience));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64(with(&|c| c["sub"] = json!("admin")).to_string().as_bytes());
        format!("{}.{forged}.{}", parts[0], parts[2])
    };
    // A kid the issuer's pinned keys do not hold, with a jku not allowed.
    let foreign_jku = {
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some("not-pinned".into());
        header.jku = Some("https://attacker.example/jwks.json".into());
        let key =
            EncodingKey::from_ec_pem(&std::fs::read(format!("{KEYS}/es384-private.pem")).unwrap())
                .unwrap();
        encode(&header, &claims(&audience), &key).unwrap()
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("not a JWT", Some("not.a.jwt".into())),
        (
            "expired",
            Some(sign(
                Algorithm::ES384,
                "test-es384",
                &with(&|c| {
                    c["exp"] = json!(now() - 120);
                    c["iat"] = json!(now() - 600);
                }),
            )),
        ),
        (
            "not yet valid",
            Some(sign(
                Algorithm::ES384,
                "test-es384",
                &with(&|c| {
                    c["nbf"] = json!(now() + 600);
                    c["iat"] = json!(now() + 600);
                    c["exp"] = json!(now() + 900);
                }),
            )),
        ),
        (
            "issued in the future",
            Some(sign(
                Algorithm::ES384,
                "test-es384",
                &with(&|c| c["iat"] = json!(now() + 600)),
            )),
        ),
        (
            "wrong aud",
            Some(sign(
                Algorithm::ES384,
                "test-es384",
                &with(&|c| c["aud"] = json!(format!("{}/cds-services", app.address))),
            )),
        ),
        (
            "wrong iss",
            Some(sign(
                Algorithm::ES384,
                "test-es384",
                &with(&|c| c["iss"] = json!("https://evil.example")),
            )),
        ),
        (
            "unknown kid",
            Some(sign(Algorithm::ES384, "no-such-key", &claims(&audience))),
        ),
        (
            "key of another algorithm",
            Some(sign(Algorithm::ES384, "test-rs384", &claims(&audience))),
        ),
        ("tampered payload", Some(tampered)),
        ("alg none", Some(alg_none)),
        (
            "HS256 signed with the public key",
            Some(hs256_with_public_key),
        ),
        (
            "missing jti",
            Some(sign(
                Algorithm::ES384,
                "test-es384",
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
            )),
        ),
        (
            "missing exp",
            Some(sign(
                Algorithm::ES384,
                "test-es384",
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            )),
        ),
        ("jku not allowed", Some(foreign_jku)),
        ("basic auth", Some("dXNlcjpwYXNz".into())),
    ];
    for (case, token) in cases {
        let response = match (case, &token) {
            ("basic auth", Some(t)) => app
                .client
                .post(format!("{}{SERVICE}", app.address))
                .header("Authorization", format!("Basic {t}"))
                .send()
                .await
                .unwrap(),
            _ => call(&app, SERVICE, token.as_deref()).await,
        };
        assert_401(response, case).await;
    }

    let once = sign(Algorithm::ES384, "test-es384", &claims(&audience));
    assert_valid_cards(call(&app, SERVICE, Some(&once)).await).await;
    assert_401(call(&app, SERVICE, Some(&once)).await, "replayed jti").await;
}

#[tokio::test]
async fn every_endpoint_needs_a_token_and_the_audience_is_the_url_called() {
    let keys = key_server().await;
    let app = secured_app(json!([{"iss": ISSUER, "jwksUrl": keys.jwks_url}])).await;
    assert_401(app.get("/cds-services").await, "discovery without a token").await;
    let token = sign(
        Algorithm::ES384,
        "test-es384",
        &claims(&format!("{}/cds-services", app.address)),
    );
    let discovery = app
        .client
        .get(format!("{}/cds-services", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), 200);
    assert_401(
        call(&app, "/analyze", None).await,
        "analyze without a token",
    )
    .await;
    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}{SERVICE}", app.address),
        )
        .header("Origin", "https://sandbox.cds-hooks.org")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(
        preflight.status().is_success(),
        "a CORS preflight carries no token and must pass"
    );
}

#[tokio::test]
async fn behind_a_proxy_the_audience_is_the_public_url() {
    let keys = key_server().await;
    let path = issuers_file(json!([{"iss": ISSUER, "jwksUrl": keys.jwks_url}]));
    let app = spawn_app_with(move |s| {
        s.issuers = Some(path);
        s.fhir.allowed_servers = vec!["any".into()];
        s.public_base_url = vec!["https://cds.example.org/cramp".into()];
    })
    .await;
    let public = sign(
        Algorithm::ES384,
        "test-es384",
        &claims(&format!("https://cds.example.org/cramp{SERVICE}")),
    );
    assert_valid_cards(call(&app, SERVICE, Some(&public)).await).await;
    let internal = sign(
        Algorithm::ES384,
        "test-es384",
        &claims(&format!("{}{SERVICE}", app.address)),
    );
    assert_401(
        call(&app, SERVICE, Some(&internal)).await,
        "internal address as audience",
    )
    .await;
}

#[tokio::test]
async fn inline_keys_tenants_and_key_set_refresh() {
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{KEYS}/jwks.json")).unwrap())
            .unwrap();
    let app = secured_app(json!([{"iss": ISSUER, "jwks": jwks, "tenant": "hospital-a"}])).await;
    let audience = format!("{}{SERVICE}", app.address);
    let mut right = claims(&audience);
    right["tenant"] = json!("hospital-a");
    assert_valid_cards(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::RS384, "test-rs384", &right)),
        )
        .await,
    )
    .await;
    let mut wrong = claims(&audience);
    wrong["tenant"] = json!("hospital-b");
    assert_401(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::RS384, "test-rs384", &wrong)),
        )
        .await,
        "other tenant",
    )
    .await;
    assert_401(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::RS384, "test-rs384", &claims(&audience))),
        )
        .await,
        "no tenant",
    )
    .await;

    // An unknown kid refreshes the remote key set at most once a minute.
    let keys = key_server().await;
    let app = secured_app(json!([{"iss": ISSUER, "jwksUrl": keys.jwks_url}])).await;
    let audience = format!("{}{SERVICE}", app.address);
    assert_valid_cards(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::ES384, "test-es384", &claims(&audience))),
        )
        .await,
    )
    .await;
    assert_valid_cards(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::ES384, "test-es384", &claims(&audience))),
        )
        .await,
    )
    .await;
    assert_eq!(
        keys.fetches.load(Ordering::SeqCst),
        1,
        "the key set is cached"
    );
    for _ in 0..3 {
        assert_401(
            call(
                &app,
                SERVICE,
                Some(&sign(Algorithm::ES384, "rotated-away", &claims(&audience))),
            )
            .await,
            "unknown kid",
        )
        .await;
    }
    assert_eq!(
        keys.fetches.load(Ordering::SeqCst),
        1,
        "no refresh within a minute of the last fetch"
    );
}

/// Calls that miss the key cache together make one fetch of the key set,
/// and a key server that fails is not asked again by every call.
#[tokio::test]
async fn forged_kids_at_once_make_one_key_set_fetch_and_a_failed_fetch_is_not_repeated() {
    let keys = key_server().await;
    let app = secured_app(json!([{"iss": ISSUER, "jwksUrl": keys.jwks_url}])).await;
    let audience = format!("{}{SERVICE}", app.address);
    let calls = (0..20).map(|i| {
        let token = sign(Algorithm::ES384, &format!("forged-{i}"), &claims(&audience));
        let app = &app;
        async move { call(app, SERVICE, Some(&token)).await.status() }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 1, "one fetch for all");

    // A key server that accepts and drops every connection.
    let dropping = crate::trust::counting_listener("127.0.0.1:0").unwrap();
    let dead = format!("http://127.0.0.1:{}/jwks.json", dropping.port);
    let app = secured_app(json!([{"iss": ISSUER, "jwksUrl": dead}])).await;
    let audience = format!("{}{SERVICE}", app.address);
    for _ in 0..5 {
        let token = sign(Algorithm::ES384, "test-es384", &claims(&audience));
        assert_401(call(&app, SERVICE, Some(&token)).await, "key set down").await;
    }
    assert_eq!(
        dropping.accepted.load(Ordering::SeqCst),
        1,
        "asked once, not per call"
    );
}
