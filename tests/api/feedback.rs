//! Feedback and its summary, on SQLite (always) and PostgreSQL (when a test
//! server is configured; CI requires it).

use serde_json::{json, Value};

use crate::helpers::*;
use crate::postgres::postgres_database;

const SERVICE: &str = "/cds-services/leg-cramps-patient-view";

/// A patient-view call whose answer has a DVT card (with suggestions) and a
/// risk-factors card; returns the cards.
pub async fn issue_cards(app: &TestApp) -> Vec<Value> {
    let mut request = patient_view_request();
    let swelling = json!({
        "resourceType": "Condition", "id": "swelling",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "449614009", "display": "Leg swelling"}]},
        "recordedDate": chrono::Utc::now().to_rfc3339()
    });
    request["prefetch"]["conditions"]["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": swelling}));
    let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
    body["cards"].as_array().unwrap().clone()
}

fn card<'a>(cards: &'a [Value], topic: &str) -> &'a Value {
    cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == topic)
        .unwrap_or_else(|| panic!("no {topic} card"))
}

pub fn accepted(card: &Value) -> Value {
    json!({"feedback": [{
        "card": card["uuid"], "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-22T10:00:00Z"
    }]})
}

pub fn overridden(card: &Value) -> Value {
    json!({"feedback": [{
        "card": card["uuid"], "outcome": "overridden",
        "overrideReason": {"reason": {"system": "https://example.org/reasons", "code": "not-relevant", "display": "Not relevant"},
                           "userComment": "the patient's name would be here"},
        "outcomeTimestamp": "2026-11-22T10:01:00Z"
    }]})
}

pub async fn summary(app: &TestApp) -> Value {
    let response = app
        .get("/cds-services/leg-cramps-patient-view/feedback/summary")
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The whole feedback contract against one app and its store.
async fn feedback_suite(app: &TestApp) {
    let cards = issue_cards(app).await;
    let dvt = card(&cards, "dvt-rule-out");
    let risk = card(&cards, "risk-factors");
    let feedback = "/cds-services/leg-cramps-patient-view/feedback";

    let response = app.post_json(feedback, &accepted(dvt)).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        app.post_json(feedback, &accepted(dvt)).await.status(),
        200,
        "a repeated identical entry is accepted once"
    );
    assert_eq!(
        app.post_json(feedback, &overridden(risk)).await.status(),
        200
    );

    let summary = summary(app).await;
    let row = |topic: &str| {
        summary["cardTypes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["cardType"] == topic)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("dvt-rule-out")["issued"], 1);
    assert_eq!(row("dvt-rule-out")["accepted"], 1);
    assert_eq!(row("risk-factors")["overridden"], 1);
    assert_eq!(row("medication-culprits")["withoutFeedback"], 1);
    let hypokalemia = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["finding"] == "hypokalemia")
        .unwrap();
    assert_eq!(hypokalemia["overridden"], 1);
    assert_eq!(
        summary["overrideReasons"],
        json!([{"cardType": "risk-factors", "system": "https://example.org/reasons", "code": "not-relevant", "display": "Not relevant", "count": 1}])
    );

    // Unknown card, a card of another service, a suggestion the card did not carry.
    let mut unknown = accepted(dvt);
    unknown["feedback"][0]["card"] = json!(uuid::Uuid::new_v4().to_string());
    assert_outcome(app.post_json(feedback, &unknown).await, 404).await;
    assert_outcome(
        app.post_json(
            "/cds-services/leg-cramps-order-sign/feedback",
            &accepted(dvt),
        )
        .await,
        404,
    )
    .await;
    let mut foreign_suggestion = accepted(dvt);
    foreign_suggestion["feedback"][0]["acceptedSuggestions"][0]["id"] =
        json!(uuid::Uuid::new_v4().to_string());
    assert_outcome(app.post_json(feedback, &foreign_suggestion).await, 400).await;
}

#[tokio::test]
async fn feedback_on_sqlite() {
    feedback_suite(&spawn_app().await).await;
}

#[tokio::test]
async fn feedback_on_postgres() {
    let Some(url) = postgres_database().await else {
        return;
    };
    feedback_suite(&spawn_app_with(move |s| s.database_url = url).await).await;
}

#[tokio::test]
async fn bad_feedback_is_a_400_naming_the_member() {
    let app = spawn_app().await;
    let cards = issue_cards(&app).await;
    let dvt = card(&cards, "dvt-rule-out");
    let feedback = "/cds-services/leg-cramps-patient-view/feedback";
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "/feedback"),
        (
            json!({"feedback": [{"card": dvt["uuid"], "outcomeTimestamp": "2026-11-22T10:00:00Z"}]}),
            "/feedback/0/outcome",
        ),
        (
            json!({"feedback": [{"card": dvt["uuid"], "outcome": "maybe", "outcomeTimestamp": "2026-11-22T10:00:00Z"}]}),
            "/feedback/0/outcome",
        ),
        (
            json!({"feedback": [{"card": "not-a-uuid", "outcome": "overridden", "outcomeTimestamp": "2026-11-22T10:00:00Z"}]}),
            "/feedback/0/card",
        ),
        (
            json!({"feedback": [{"card": dvt["uuid"], "outcome": "overridden", "outcomeTimestamp": "yesterday"}]}),
            "/feedback/0/outcomeTimestamp",
        ),
        // The newest outcome wins: one in the year 9999 would lock the card.
        (
            json!({"feedback": [{"card": dvt["uuid"], "outcome": "overridden", "outcomeTimestamp": "9999-12-31T23:59:59Z"}]}),
            "/feedback/0/outcomeTimestamp",
        ),
    ];
    for (body, pointer) in cases {
        let issues = assert_outcome(app.post_json(feedback, &body).await, 400).await;
        assert!(
            pointers(&issues).iter().any(|p| p.starts_with(pointer)),
            "{pointer}: {issues:?}"
        );
    }
    assert_outcome(app.post_raw(feedback, "application/json", "{").await, 400).await;
    assert_outcome(app.post_raw(feedback, "text/plain", "{}").await, 415).await;
    assert_outcome(
        app.post_json("/cds-services/nope/feedback", &accepted(dvt))
            .await,
        404,
    )
    .await;
    assert_outcome(
        app.get("/cds-services/leg-cramps-patient-view/feedback/summary?from=yesterday")
            .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn cards_from_analyze_can_receive_feedback() {
    let app = spawn_app().await;
    let bundle = json!({"resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": patient()}, {"resource": cramp_condition()}, {"resource": furosemide()}]});
    let body = assert_valid_cards(app.post_json("/analyze", &bundle).await).await;
    let culprits = card(body["cards"].as_array().unwrap(), "medication-culprits");
    assert_eq!(
        app.post_json(
            "/cds-services/leg-cramps-patient-view/feedback",
            &overridden(culprits)
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn operations_endpoints() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert!(ready["store"].as_str().unwrap().starts_with("sqlite"));
    let cards = issue_cards(&app).await;
    app.post_json(
        "/cds-services/leg-cramps-patient-view/feedback",
        &accepted(card(&cards, "dvt-rule-out")),
    )
    .await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let response_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!response_id.is_empty());
    let metrics = response.text().await.unwrap();
    for needle in [
        "http_requests_total{",
        "http_request_duration_seconds_bucket{",
        "service=\"leg-cramps-patient-view\"",
        "cds_cards_total{",
        "card_type=\"dvt-rule-out\"",
        "cds_feedback_total{",
        "outcome=\"accepted\"",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from /metrics");
    }
    // Hook and feedback requests are labelled with their service.
    for route in [
        "/cds-services/leg-cramps-patient-view\"",
        "/cds-services/leg-cramps-patient-view/feedback\"",
    ] {
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("http_requests_total{")
                    && line.contains(route)
                    && line.contains("service=\"leg-cramps-patient-view\"")),
            "no http_requests_total for {route} with its service label"
        );
    }
    let echoed = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
}
