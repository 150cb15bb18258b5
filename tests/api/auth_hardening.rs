//! Authentication that can be set up offline and refuses what it must:
//! pinned keys whatever the `jku`, several public URLs, lifetime caps,
//! `crit`, replays across replicas and restarts, and escaped log lines.

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::auth::{
    assert_401, call, claims, issuers_file, now, secured_app, sign, ISSUER, KEYS, SERVICE,
};
use crate::helpers::*;
use crate::process::{start, terminate};

fn pinned_keys() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{KEYS}/jwks.json")).unwrap()).unwrap()
}

fn es384_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&std::fs::read(format!("{KEYS}/es384-private.pem")).unwrap()).unwrap()
}

fn sign_with(header: impl FnOnce(&mut Header), claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES384);
    h.kid = Some("test-es384".into());
    h.typ = Some("JWT".into());
    header(&mut h);
    encode(&h, claims, &es384_key()).unwrap()
}

/// A loopback listener counting the connections it accepts.
fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/.well-known/jwks.json",
        listener.local_addr().unwrap().port()
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_sandbox_style_token_with_a_jku_verifies_against_a_pinned_key_with_no_network() {
    // The Sandbox's tokens carry a jku; its key is pinned inline. The jku
    // points at a listener that counts connections: none may be made.
    let (jku, accepted) = counting_listener();
    let app =
        secured_app(json!([{"iss": ISSUER, "jwks": pinned_keys(), "allowedJku": [jku]}])).await;
    let audience = format!("{}{SERVICE}", app.address);
    let token = sign_with(|h| h.jku = Some(jku.clone()), &claims(&audience));
    assert_valid_cards(call(&app, SERVICE, Some(&token)).await).await;
    // A jku that is not allowed does not matter either when the kid is pinned.
    let token = sign_with(
        |h| h.jku = Some("https://attacker.example/jwks.json".into()),
        &claims(&audience),
    );
    assert_valid_cards(call(&app, SERVICE, Some(&token)).await).await;
    // An unpinned kid with an allowed jku is fetched from there (and the
    // listener drops it: 401), proving the counter counts.
    let token = sign_with(
        |h| {
            h.jku = Some(jku.clone());
            h.kid = Some("rotated".into());
        },
        &claims(&audience),
    );
    assert_401(
        call(&app, SERVICE, Some(&token)).await,
        "unpinned kid, unreachable jku",
    )
    .await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "only the unpinned kid made a connection"
    );
}

#[tokio::test]
async fn every_public_base_url_is_an_audience_and_localhost_works_by_default() {
    let path = issuers_file(json!([{"iss": ISSUER, "jwks": pinned_keys()}]));
    let app = spawn_app_with(move |s| {
        s.issuers = Some(path);
        s.fhir.allowed_servers = vec!["any".into()];
        s.public_base_url = vec![
            "https://cds.example.org".into(),
            "https://cds.internal.example/".into(),
        ];
    })
    .await;
    for base in ["https://cds.example.org", "https://cds.internal.example"] {
        let token = sign(
            Algorithm::ES384,
            "test-es384",
            &claims(&format!("{base}{SERVICE}")),
        );
        assert_valid_cards(call(&app, SERVICE, Some(&token)).await).await;
    }
    let other = sign(
        Algorithm::ES384,
        "test-es384",
        &claims(&format!("https://evil.example{SERVICE}")),
    );
    assert_401(
        call(&app, SERVICE, Some(&other)).await,
        "an audience not listed",
    )
    .await;
    let published: Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .bearer_auth(sign(
            Algorithm::ES384,
            "test-es384",
            &claims("https://cds.example.org/openapi.json"),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(published["servers"][0]["url"], "https://cds.example.org");

    // Default on loopback: the address and localhost, same port.
    let app = secured_app(json!([{"iss": ISSUER, "jwks": pinned_keys()}])).await;
    let port = app.address.rsplit(':').next().unwrap();
    for base in [app.address.clone(), format!("http://localhost:{port}")] {
        let token = sign(
            Algorithm::ES384,
            "test-es384",
            &claims(&format!("{base}{SERVICE}")),
        );
        assert_valid_cards(call(&app, SERVICE, Some(&token)).await).await;
    }
}

#[tokio::test]
async fn long_lived_tokens_and_critical_extensions_are_refused() {
    let path = issuers_file(json!([{"iss": ISSUER, "jwks": pinned_keys()}]));
    let app = spawn_app_with(move |s| {
        s.issuers = Some(path);
        s.fhir.allowed_servers = vec!["any".into()];
        s.max_token_lifetime_secs = 600;
    })
    .await;
    let audience = format!("{}{SERVICE}", app.address);
    let lifetime = |seconds: u64| {
        let mut c = claims(&audience);
        c["exp"] = json!(now() + seconds);
        c
    };
    let mut year_9999 = claims(&audience);
    year_9999["exp"] = json!(253_402_300_799u64);
    assert_401(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::ES384, "test-es384", &year_9999)),
        )
        .await,
        "exp in 9999",
    )
    .await;
    assert_401(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::ES384, "test-es384", &lifetime(3600))),
        )
        .await,
        "an hour",
    )
    .await;
    assert_valid_cards(
        call(
            &app,
            SERVICE,
            Some(&sign(Algorithm::ES384, "test-es384", &lifetime(600))),
        )
        .await,
    )
    .await;
    let crit = sign_with(
        |h| h.crit = Some(vec!["exp-ext".into()]),
        &claims(&audience),
    );
    assert_401(
        call(&app, SERVICE, Some(&crit)).await,
        "crit names an extension",
    )
    .await;
}

/// A token used on one process is refused by another sharing the
/// database, and by a new process after a restart.
async fn replay_across_processes(database_url: &str) {
    let issuers = issuers_file(json!([{"iss": ISSUER, "jwks": pinned_keys()}]));
    let issuers = issuers.to_str().unwrap();
    // One audience for both, as behind a load balancer.
    let args = [
        "--port",
        "0",
        "--issuers",
        issuers,
        "--fhir-server-allow",
        "any",
        "--database-url",
        database_url,
        "--public-base-url",
        "https://cds.example.org",
    ];
    let (mut first, first_port, _) = start(&args);
    let (mut second, second_port, _) = start(&args);
    let token = sign(
        Algorithm::ES384,
        "test-es384",
        &claims(&format!("https://cds.example.org{SERVICE}")),
    );
    let client = reqwest::Client::new();
    let post = |port: u16| {
        client
            .post(format!("http://127.0.0.1:{port}{SERVICE}"))
            .bearer_auth(&token)
            .json(&patient_view_request())
            .send()
    };
    assert_eq!(post(first_port).await.unwrap().status(), 200);
    assert_eq!(
        post(second_port).await.unwrap().status(),
        401,
        "replayed on the other replica"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    let (mut restarted, restarted_port, _) = start(&args);
    assert_eq!(
        post(restarted_port).await.unwrap().status(),
        401,
        "replayed after a restart"
    );
    for child in [&mut second, &mut restarted] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[tokio::test]
async fn a_replayed_token_is_refused_by_another_process_and_after_a_restart_on_sqlite() {
    replay_across_processes(&temporary_sqlite()).await;
}

#[tokio::test]
async fn a_replayed_token_is_refused_by_another_process_and_after_a_restart_on_postgres() {
    let Some(url) = std::env::var("CRAMP_CDS_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("CRAMP_CDS_REQUIRE_POSTGRES").is_none(),
            "CRAMP_CDS_TEST_POSTGRES_URL is required"
        );
        return;
    };
    replay_across_processes(&url).await;
}

#[tokio::test]
async fn a_store_outage_refuses_authenticated_calls_and_is_counted() {
    // A PostgreSQL URL where nothing listens: the replay store never answers.
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "postgres://cramp:cramp@127.0.0.1:{}/cramp?connect_timeout=1",
            listener.local_addr().unwrap().port()
        )
    };
    let path = issuers_file(json!([{"iss": ISSUER, "jwks": pinned_keys()}]));
    let app = spawn_app_with(move |s| {
        s.issuers = Some(path);
        s.fhir.allowed_servers = vec!["any".into()];
        s.database_url = dead;
    })
    .await;
    let token = sign(
        Algorithm::ES384,
        "test-es384",
        &claims(&format!("{}{SERVICE}", app.address)),
    );
    // Fail closed, but as an outage the EHR may retry, not a bad token.
    let response = call(&app, SERVICE, Some(&token)).await;
    assert_eq!(response.status(), 503, "replay store down: fail closed");
    assert_eq!(response.headers()["retry-after"], "5");
    assert_outcome(response, 503).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("auth_replay_store_outages_total"),
        "{metrics}"
    );
    assert!(metrics.contains("operation=\"replay-check\""));
}

#[tokio::test]
async fn a_forged_newline_in_kid_stays_on_one_escaped_log_line() {
    let issuers = issuers_file(json!([{"iss": ISSUER, "jwks": pinned_keys()}]));
    let database = temporary_sqlite();
    let (mut child, port, mut stderr) = start(&[
        "--port",
        "0",
        "--issuers",
        issuers.to_str().unwrap(),
        "--fhir-server-allow",
        "any",
        "--database-url",
        &database,
    ]);
    let audience = format!("http://127.0.0.1:{port}{SERVICE}");
    let forged = "x\n2026-01-01T00:00:00.000Z INFO  cramp_cds::access FORGED LINE";
    let token = sign_with(
        |h| {
            h.kid = Some(forged.into());
            h.jku = Some("https://evil.example/\r\nFORGED JKU".into());
        },
        &claims(&audience),
    );
    let response = reqwest::Client::new()
        .post(&audience)
        .bearer_auth(&token)
        .json(&patient_view_request())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    terminate(&mut child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    let refusal: Vec<&str> = log.lines().filter(|l| l.contains("401 for POST")).collect();
    assert_eq!(refusal.len(), 1, "{log}");
    assert!(
        refusal[0].contains("expected aud") && refusal[0].contains(&audience),
        "{}",
        refusal[0]
    );
    assert!(refusal[0].contains("kid \"x\\u{a}2026"), "{}", refusal[0]);
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-01-01")
                || l.contains("FORGED") && !l.contains("401 for POST")),
        "{log}"
    );
    assert!(
        !log.contains(token.rsplit('.').next().unwrap()),
        "the token reached the log"
    );
}

#[tokio::test]
async fn with_authentication_the_console_and_examples_are_open_and_carry_no_patient_data() {
    let app = secured_app(json!([{"iss": ISSUER, "jwks": pinned_keys()}])).await;
    assert_eq!(app.get("/").await.status(), 200);
    let examples: Value = app.get("/examples").await.json().await.unwrap();
    assert!(!examples["patients"].as_array().unwrap().is_empty());
    // What would read data sent to the service needs a token.
    assert_401(
        app.post_json("/analyze", &json!({"resourceType": "Bundle"}))
            .await,
        "analyze",
    )
    .await;
    assert_401(app.get("/cds-services").await, "discovery").await;
}
