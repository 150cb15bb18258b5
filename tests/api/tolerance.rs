//! Tolerant where safe: a defect in a member the rules do not read never
//! costs the quinine warning; it is logged and counted, and `--strict`
//! refuses it. Defects in what the rules read stay 400 in every mode.

use serde_json::{json, Value};

use crate::helpers::*;

const ORDER_SELECT: &str = "/cds-services/leg-cramps-order-select";

fn quinine_call() -> Value {
    order_request("order-select", vec![quinine_draft()])
}

/// The tolerated deviations: (metric member, the request).
fn deviations() -> Vec<(&'static str, Value)> {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut request = quinine_call();
        f(&mut request);
        request
    };
    let authorization = |value: Value| {
        with(&|r| {
            r["fhirServer"] = json!("https://ehr.example.org/fhir");
            r["fhirAuthorization"] = value.clone();
        })
    };
    vec![
        (
            "hookInstance",
            with(&|r| r["hookInstance"] = json!("sandbox-instance-1")),
        ),
        (
            "hookInstance",
            with(&|r| r["hookInstance"] = json!("line\nbreak")),
        ),
        (
            "context.userId",
            with(&|r| {
                r["context"].as_object_mut().unwrap().remove("userId");
            }),
        ),
        (
            "context.userId",
            with(&|r| r["context"]["userId"] = json!(12)),
        ),
        (
            "fhirAuthorization",
            authorization(json!({"access_token": "t"})),
        ),
        // A key the service never asked for, and an optional one, whose
        // value is not a FHIR resource.
        (
            "prefetch",
            with(&|r| r["prefetch"]["extraKey"] = json!("x")),
        ),
        (
            "prefetch",
            with(&|r| r["prefetch"]["procedures"] = json!({"entry": []})),
        ),
        (
            "fhirAuthorization",
            authorization(
                json!({"access_token": "t", "token_type": "MAC", "expires_in": "soon", "scope": 1}),
            ),
        ),
    ]
}

fn is_quinine_warning(body: &Value) -> bool {
    body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["source"]["topic"]["code"] == "quinine-warning" && c["indicator"] == "critical")
}

async fn deviation_count(app: &TestApp, member: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("request_deviations_total{")
                && l.contains(&format!("member=\"{member}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn the_quinine_warning_comes_back_for_each_tolerated_deviation() {
    let app = spawn_app().await;
    for (member, request) in deviations() {
        let before = deviation_count(&app, member).await;
        let body = assert_valid_cards(app.post_json(ORDER_SELECT, &request).await).await;
        assert!(is_quinine_warning(&body), "{member}: {body:#}");
        assert!(
            deviation_count(&app, member).await > before,
            "{member} is counted"
        );
    }
    // No Content-Type header at all.
    let before = deviation_count(&app, "Content-Type").await;
    let response = app
        .client
        .post(format!("{}{ORDER_SELECT}", app.address))
        .body(quinine_call().to_string())
        .send()
        .await
        .unwrap();
    assert!(is_quinine_warning(&assert_valid_cards(response).await));
    assert!(deviation_count(&app, "Content-Type").await > before);
}

#[tokio::test]
async fn strict_mode_refuses_each_deviation() {
    let app = spawn_app_with(|s| s.strict = true).await;
    for (member, request) in deviations() {
        let issues = assert_outcome(app.post_json(ORDER_SELECT, &request).await, 400).await;
        let found = pointers(&issues);
        let expected = match member {
            "context.userId" => "/context/userId".to_owned(),
            other => format!("/{other}"),
        };
        assert!(
            found.iter().any(|p| p.starts_with(&expected)),
            "{member}: {found:?}"
        );
    }
    let response = app
        .client
        .post(format!("{}{ORDER_SELECT}", app.address))
        .body(quinine_call().to_string())
        .send()
        .await
        .unwrap();
    assert_outcome(response, 415).await;
    assert_valid_cards(app.post_json(ORDER_SELECT, &quinine_call()).await).await;
}

#[tokio::test]
async fn what_the_rules_read_stays_a_400_in_every_mode() {
    let app = spawn_app().await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut request = quinine_call();
        f(&mut request);
        request
    };
    let cases = [
        (
            with(&|r| {
                r.as_object_mut().unwrap().remove("hookInstance");
            }),
            "/hookInstance",
        ),
        (
            with(&|r| r["hookInstance"] = json!("x".repeat(300))),
            "/hookInstance",
        ),
        (
            with(&|r| r["hookInstance"] = json!({"id": 1})),
            "/hookInstance",
        ),
        (
            with(&|r| {
                r.as_object_mut().unwrap().remove("context");
            }),
            "/context",
        ),
        (
            with(&|r| {
                r["context"].as_object_mut().unwrap().remove("draftOrders");
            }),
            "/context/draftOrders",
        ),
        (
            with(&|r| r["context"]["patientId"] = json!(7)),
            "/context/patientId",
        ),
        (with(&|r| r["hook"] = json!("patient-view")), "/hook"),
        (
            with(&|r| {
                r["fhirServer"] = json!("https://ehr.example.org/fhir");
                r["fhirAuthorization"] =
                    json!({"token_type": "Bearer", "scope": "s", "subject": "x", "expires_in": 1});
            }),
            "/fhirAuthorization/access_token",
        ),
    ];
    for (request, pointer) in cases {
        let issues = assert_outcome(app.post_json(ORDER_SELECT, &request).await, 400).await;
        assert!(
            pointers(&issues).iter().any(|p| p == pointer),
            "{pointer}: {issues:#?}"
        );
    }
    assert_outcome(
        app.post_raw(ORDER_SELECT, "application/json", "not json")
            .await,
        400,
    )
    .await;
}

/// Members of a quinine order no rule reads for the warning, each with the
/// wrong shape: the order is still read, and the warning still given.
fn broken_unread_members() -> Vec<(&'static str, Value)> {
    vec![
        ("dispenseRequest", json!(5)),
        (
            "dispenseRequest",
            json!({"expectedSupplyDuration": {"value": "30"}}),
        ),
        ("dosageInstruction", json!({"route": "oral"})),
        ("dosageInstruction", json!([{"route": "oral"}, null])),
        ("subject", json!("Patient/p1")),
        ("contained", json!({})),
        ("status", json!(5)),
    ]
}

#[tokio::test]
async fn a_quinine_draft_with_broken_members_the_warning_does_not_read_is_still_warned_about() {
    let app = spawn_app().await;
    for (member, value) in broken_unread_members() {
        let mut draft = quinine_draft();
        draft[member] = value.clone();
        let mut coding_display = quinine_draft();
        coding_display["medicationCodeableConcept"]["coding"][0]["display"] = json!(5);
        coding_display["medicationCodeableConcept"]["text"] = json!(["x"]);
        for draft in [draft, coding_display] {
            for hook in ["order-select", "order-sign"] {
                let path = format!("/cds-services/leg-cramps-{hook}");
                let request = order_request(hook, vec![draft.clone()]);
                let body = assert_valid_cards(app.post_json(&path, &request).await).await;
                assert!(
                    is_quinine_warning(&body),
                    "{hook}, {member}: {value}: {body:#}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_active_quinine_order_with_broken_unread_members_is_warned_about_on_patient_view() {
    let app = spawn_app().await;
    for (member, value) in broken_unread_members() {
        if member == "status" {
            continue; // an unreadable status is an unknown one: not active
        }
        let mut order = quinine_draft();
        order["status"] = json!("active");
        order["intent"] = json!("order");
        order[member] = value.clone();
        let mut request = patient_view_request();
        request["prefetch"]["medicationRequests"] = json!({
            "resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": order}]
        });
        let body = assert_valid_cards(
            app.post_json("/cds-services/leg-cramps-patient-view", &request)
                .await,
        )
        .await;
        let warned = body["cards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["source"]["topic"]["code"] == "quinine-warning");
        assert!(warned, "{member}: {value}: {body:#}");
    }
}

/// A required key (the rules read it) whose value is not a FHIR resource is
/// a 400 naming it (tests/api/errors.rs). An optional one is said on the
/// answer; a key nobody asked for is ignored.
#[tokio::test]
async fn a_broken_optional_prefetch_value_is_unread_data_not_a_refused_call() {
    let app = spawn_app().await;
    let mut optional = patient_view_request();
    optional["prefetch"]["procedures"] = json!("x");
    optional["prefetch"]["extraKey"] = json!(42);
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &optional)
            .await,
    )
    .await;
    let incomplete = body["extension"]["cramp-cds"]["incomplete"].to_string();
    assert!(incomplete.contains("procedures"), "{body:#}");
    assert!(!incomplete.contains("extraKey"), "{body:#}");
}
