//! What the service publishes about itself: OpenAPI, schemas, CORS.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn openapi_document_lists_every_endpoint_and_its_schemas_resolve() {
    let app = spawn_app_with(|s| s.public_base_url = vec!["https://cds.example.org/".into()]).await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(document["servers"][0]["url"], "https://cds.example.org");
    for path in [
        "/cds-services",
        "/cds-services/{id}",
        "/cds-services/{id}/feedback",
        "/cds-services/{id}/feedback/summary",
        "/analyze",
        "/openapi.json",
        "/schemas/{file}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/guidance/{topic}",
        "/handouts/leg-cramps",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} missing");
    }
    let text = document.to_string();
    let mut refs: Vec<&str> = text
        .split("\"$ref\":\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap())
        .collect();
    refs.retain(|r| r.starts_with("/schemas/"));
    refs.sort();
    refs.dedup();
    assert!(refs.len() >= 4, "{refs:?}");
    for reference in refs {
        let file = reference.split('#').next().unwrap();
        let response = app.get(file).await;
        assert_eq!(response.status(), 200, "{file}");
        let schema: Value = response.json().await.unwrap();
        assert!(schema["$schema"].is_string(), "{file}");
    }
    assert_outcome(app.get("/schemas/nope.json").await, 404).await;
}

#[tokio::test]
async fn cors_preflight_allows_browser_clients() {
    let app = spawn_app_with(|s| s.cors_origins = vec!["*".into()]).await;
    let response = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/cds-services/leg-cramps-patient-view", app.address),
        )
        .header("Origin", "https://sandbox.cds-hooks.org")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(headers.get("access-control-allow-credentials").is_none());
    let discovery = app
        .client
        .get(format!("{}/cds-services", app.address))
        .header("Origin", "https://x.example")
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn cors_origins_can_be_restricted() {
    let app =
        spawn_app_with(|s| s.cors_origins = vec!["https://sandbox.cds-hooks.org".into()]).await;
    let allowed = app
        .client
        .get(format!("{}/cds-services", app.address))
        .header("Origin", "https://sandbox.cds-hooks.org")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://sandbox.cds-hooks.org"
    );
    let other = app
        .client
        .get(format!("{}/cds-services", app.address))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
