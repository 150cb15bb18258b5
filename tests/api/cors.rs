//! CORS: X-Request-Id allowed and exposed, a refused request answers an
//! OperationOutcome, and an open (unauthenticated) service allows only its
//! own origins unless told otherwise.

use reqwest::Method;
use serde_json::json;

use crate::auth::{secured_app, ISSUER};
use crate::helpers::*;

const SERVICE: &str = "/cds-services/leg-cramps-patient-view";

async fn preflight(app: &TestApp, origin: &str, headers: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, format!("{}{SERVICE}", app.address))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_authentication_only_the_own_origins_are_allowed() {
    let app = spawn_app().await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    for own in [app.address.clone(), format!("http://localhost:{port}")] {
        let response = preflight(&app, &own, "content-type, x-request-id").await;
        assert!(
            response.status().is_success(),
            "{own}: {}",
            response.status()
        );
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            own.as_str()
        );
        let allowed = response.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(allowed.contains("x-request-id"), "{allowed}");
    }
    // Any other web page the user opens: refused, with an OperationOutcome.
    let issues = assert_outcome(
        preflight(&app, "https://evil.example", "content-type").await,
        400,
    )
    .await;
    assert!(
        issues[0]["diagnostics"].as_str().unwrap().contains("CORS"),
        "{issues:?}"
    );
    let refused = app
        .client
        .post(format!("{}{SERVICE}", app.address))
        .header("Origin", "https://evil.example")
        .json(&patient_view_request())
        .send()
        .await
        .unwrap();
    assert_outcome(refused, 403).await;
    // Not even a body without a Content-Type (what a no-cors fetch of a
    // Blob sends): refused before it is read.
    let refused = app
        .client
        .post(format!("{}{SERVICE}", app.address))
        .header("Origin", "https://evil.example")
        .body(patient_view_request().to_string())
        .send()
        .await
        .unwrap();
    assert_outcome(refused, 403).await;
}

#[tokio::test]
async fn x_request_id_is_allowed_and_exposed_and_a_refused_preflight_is_an_operation_outcome() {
    let app =
        spawn_app_with(|s| s.cors_origins = vec!["https://sandbox.cds-hooks.org".into()]).await;
    let response = preflight(
        &app,
        "https://sandbox.cds-hooks.org",
        "authorization, content-type, x-request-id",
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());
    let answer = app
        .client
        .post(format!("{}{SERVICE}", app.address))
        .header("Origin", "https://sandbox.cds-hooks.org")
        .header("X-Request-Id", "sandbox-call-1")
        .json(&patient_view_request())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], "sandbox-call-1");
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    assert_valid_cards(answer).await;

    // A header that is not allowed, and an origin that is not.
    for (origin, headers) in [
        ("https://sandbox.cds-hooks.org", "x-evil"),
        ("https://evil.example", "content-type"),
    ] {
        let issues = assert_outcome(preflight(&app, origin, headers).await, 400).await;
        assert!(
            issues[0]["diagnostics"]
                .as_str()
                .unwrap()
                .starts_with("CORS"),
            "{issues:?}"
        );
    }
}

#[tokio::test]
async fn with_authentication_any_origin_may_call_with_a_token() {
    let app = secured_app(json!([{"iss": ISSUER, "jwks": {"keys": []}}])).await;
    let response = preflight(
        &app,
        "https://sandbox.cds-hooks.org",
        "authorization, content-type, x-request-id",
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}
