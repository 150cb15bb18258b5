//! Every class of bad request gets its 4xx with an OperationOutcome that
//! names what is wrong; nothing a client sends gets a 5xx.

use serde_json::{json, Value};

use crate::helpers::*;

const PATIENT_VIEW: &str = "/cds-services/leg-cramps-patient-view";

async fn expect_400(app: &TestApp, request: &Value, pointer: &str) {
    let issues = assert_outcome(app.post_json(PATIENT_VIEW, request).await, 400).await;
    let found = pointers(&issues);
    assert!(
        found.iter().any(|p| p == pointer),
        "expected an issue at {pointer}, got {found:?}: {issues:#?}"
    );
}

#[tokio::test]
async fn invalid_json_is_a_400_with_the_position() {
    let app = spawn_app().await;
    for body in [
        "{",
        "{\"hook\": \"patient-view\",}",
        "not json",
        "",
        "{\"hook\":\"a\"} trailing",
    ] {
        let issues = assert_outcome(
            app.post_raw(PATIENT_VIEW, "application/json", body.to_owned())
                .await,
            400,
        )
        .await;
        let diagnostics = issues[0]["diagnostics"].as_str().unwrap();
        assert!(diagnostics.contains("line"), "{diagnostics}");
    }
    let issues = assert_outcome(
        app.post_raw(PATIENT_VIEW, "application/json", vec![0xff, 0xfe, b'{'])
            .await,
        400,
    )
    .await;
    assert!(issues[0]["diagnostics"].as_str().unwrap().contains("UTF-8"));
    assert_outcome(
        app.post_raw(PATIENT_VIEW, "application/json", "[1, 2]")
            .await,
        400,
    )
    .await;
    assert_outcome(
        app.post_raw(
            PATIENT_VIEW,
            "application/json",
            "{\"hook\": 1, \"hook\": 2}",
        )
        .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn schema_violations_name_the_json_pointer() {
    let app = spawn_app().await;
    let good = patient_view_request();
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut request = good.clone();
        f(&mut request);
        request
    };
    expect_400(
        &app,
        &mutate(&|r| {
            r.as_object_mut().unwrap().remove("hook");
        }),
        "/hook",
    )
    .await;
    expect_400(
        &app,
        &mutate(&|r| {
            r.as_object_mut().unwrap().remove("hookInstance");
        }),
        "/hookInstance",
    )
    .await;
    expect_400(
        &app,
        &mutate(&|r| {
            r.as_object_mut().unwrap().remove("context");
        }),
        "/context",
    )
    .await;
    expect_400(&app, &mutate(&|r| r["hook"] = json!(7)), "/hook").await;
    // Its format is tolerated (tests/api/tolerance.rs), its type is not.
    expect_400(
        &app,
        &mutate(&|r| r["hookInstance"] = json!(42)),
        "/hookInstance",
    )
    .await;
    expect_400(
        &app,
        &mutate(&|r| r["context"] = json!("patient")),
        "/context",
    )
    .await;
    expect_400(
        &app,
        &mutate(&|r| {
            r["context"].as_object_mut().unwrap().remove("patientId");
        }),
        "/context/patientId",
    )
    .await;
    expect_400(
        &app,
        &mutate(&|r| r["context"]["patientId"] = json!(["p1"])),
        "/context/patientId",
    )
    .await;
    expect_400(&app, &mutate(&|r| r["prefetch"] = json!([])), "/prefetch").await;
    expect_400(
        &app,
        &mutate(&|r| r["prefetch"]["patient"] = json!("Patient/p1")),
        "/prefetch/patient",
    )
    .await;
    expect_400(
        &app,
        &mutate(&|r| r["prefetch"]["conditions"] = json!({"entry": []})),
        "/prefetch/conditions/resourceType",
    )
    .await;
    expect_400(
        &app,
        &mutate(&|r| r["fhirServer"] = json!("ftp://ehr")),
        "/fhirServer",
    )
    .await;
    expect_400(
        &app,
        &mutate(&|r| {
            r["fhirAuthorization"] =
                json!({"access_token": "t", "token_type": "Bearer", "scope": "s", "subject": "x"})
        }),
        "/fhirServer",
    )
    .await;
}

#[tokio::test]
async fn a_hook_the_service_does_not_answer_is_a_400() {
    let app = spawn_app().await;
    let request = order_request("order-sign", vec![quinine_draft()]);
    let issues = assert_outcome(app.post_json(PATIENT_VIEW, &request).await, 400).await;
    assert_eq!(pointers(&issues), ["/hook"]);
    let mut other = patient_view_request();
    other["hook"] = json!("encounter-start");
    assert_outcome(app.post_json(PATIENT_VIEW, &other).await, 400).await;
}

#[tokio::test]
async fn order_hooks_require_their_context() {
    let app = spawn_app().await;
    let mut request = order_request("order-select", vec![quinine_draft()]);
    request["context"]
        .as_object_mut()
        .unwrap()
        .remove("selections");
    let issues = assert_outcome(
        app.post_json("/cds-services/leg-cramps-order-select", &request)
            .await,
        400,
    )
    .await;
    assert_eq!(pointers(&issues), ["/context/selections"]);
    let mut request = order_request("order-sign", vec![]);
    request["context"]["draftOrders"] = json!({"resourceType": "Patient"});
    let issues = assert_outcome(
        app.post_json("/cds-services/leg-cramps-order-sign", &request)
            .await,
        400,
    )
    .await;
    assert!(
        pointers(&issues)
            .iter()
            .any(|p| p.starts_with("/context/draftOrders")),
        "{issues:?}"
    );
}

#[tokio::test]
async fn missing_required_prefetch_is_a_412_naming_the_keys() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    let prefetch = request["prefetch"].as_object_mut().unwrap();
    prefetch.remove("conditions");
    prefetch.remove("observations");
    let issues = assert_outcome(app.post_json(PATIENT_VIEW, &request).await, 412).await;
    assert_eq!(
        pointers(&issues),
        ["/prefetch/conditions", "/prefetch/observations"]
    );

    let mut request = patient_view_request();
    request["prefetch"]["medicationRequests"] =
        json!({"resourceType": "OperationOutcome", "issue": []});
    let issues = assert_outcome(app.post_json(PATIENT_VIEW, &request).await, 412).await;
    assert_eq!(pointers(&issues), ["/prefetch/medicationRequests"]);
}

#[tokio::test]
async fn unknown_services_and_paths_are_404() {
    let app = spawn_app().await;
    assert_outcome(
        app.post_json("/cds-services/no-such-service", &patient_view_request())
            .await,
        404,
    )
    .await;
    assert_outcome(app.get("/nothing-here").await, 404).await;
}

/// A prefetch key given twice (a quinine order's Bundle, then `null`) is
/// refused like a top-level member given twice: which value counts would
/// be a guess.
#[tokio::test]
async fn a_prefetch_key_given_twice_is_a_400_naming_it() {
    let app = spawn_app().await;
    let body = patient_view_request().to_string().replacen(
        r#""prefetch":{"#,
        r#""prefetch":{"medicationRequests":null,"#,
        1,
    );
    assert_eq!(body.matches(r#""medicationRequests""#).count(), 2);
    let issues = assert_outcome(
        app.post_raw(PATIENT_VIEW, "application/json", body).await,
        400,
    )
    .await;
    assert!(
        pointers(&issues).contains(&"/prefetch/medicationRequests".to_owned()),
        "{issues:?}"
    );
}

#[tokio::test]
async fn wrong_methods_are_405_with_an_outcome() {
    let app = spawn_app().await;
    assert_outcome(app.get(PATIENT_VIEW).await, 405).await;
    assert_outcome(app.post_json("/cds-services", &json!({})).await, 405).await;
    // Every fixed path, not only the hooks: feedback, probes, pages.
    for path in [
        "/cds-services/leg-cramps-patient-view/feedback/summary",
        "/cds-services/other/feedback/summary",
        "/healthz",
        "/metrics",
        "/guidance/risk-factors",
        "/handouts/leg-cramps",
        "/examples",
        "/",
    ] {
        let response = app.post_json(path, &json!({})).await;
        assert_eq!(response.status(), 405, "POST {path}");
        assert_outcome(response, 405).await;
    }
    for path in [
        "/cds-services/leg-cramps-patient-view/feedback",
        "/cds-services/other/feedback",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 405, "GET {path}");
        assert_outcome(response, 405).await;
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app_with(|s| s.max_body_bytes = 64 * 1024).await;
    let mut request = patient_view_request();
    request["padding"] = json!("x".repeat(100 * 1024));
    assert_outcome(app.post_json(PATIENT_VIEW, &request).await, 413).await;
    assert_outcome(app.post_json("/analyze", &request).await, 413).await;
    assert_valid_cards(app.post_json(PATIENT_VIEW, &patient_view_request()).await).await;
}

#[tokio::test]
async fn other_content_types_are_415() {
    let app = spawn_app().await;
    let body = patient_view_request().to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        assert_outcome(
            app.post_raw(PATIENT_VIEW, content_type, body.clone()).await,
            415,
        )
        .await;
    }
    // No Content-Type at all is tolerated on hook calls (tests/api/tolerance.rs).
    let response = app
        .client
        .post(format!("{}/analyze", app.address))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_outcome(response, 415).await;
    for content_type in [
        "application/fhir+json",
        "application/json; charset=utf-8",
        "Application/JSON",
    ] {
        assert_valid_cards(app.post_raw(PATIENT_VIEW, content_type, body.clone()).await).await;
    }
}

#[tokio::test]
async fn no_client_input_gets_a_5xx() {
    let app = spawn_app().await;
    let hostile = [
        "null".to_owned(),
        "\"string\"".to_owned(),
        "{\"hook\":\"patient-view\",\"hookInstance\":\"d1577c69-dfbe-44ad-ba6d-3e05e953b2ea\",\"context\":{\"userId\":\"Practitioner/1\",\"patientId\":\"p1\"},\"prefetch\":{\"patient\":{\"resourceType\":\"Patient\",\"birthDate\":1e999}}}".to_owned(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        format!("{{\"hook\":{}}}", "[".repeat(5_000)),
        "{\"hook\":\"\\ud800\"}".to_owned(),
    ];
    for body in hostile {
        let response = app
            .post_raw(PATIENT_VIEW, "application/json", body.clone())
            .await;
        assert!(
            response.status().is_client_error(),
            "{} for {}",
            response.status(),
            &body[..body.len().min(80)]
        );
    }
}
