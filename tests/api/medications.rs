//! Prefetch templates carry no `_include`: a Medication an order references
//! but nobody included is fetched by id from the EHR's FHIR server (a
//! stand-in on loopback), for prefetched, fetched and draft orders alike.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::fhir_server::{FhirServer, ACCESS_TOKEN};
use crate::helpers::*;

fn medication(id: &str, code: &str, display: &str) -> Value {
    json!({"resourceType": "Medication", "id": id,
           "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": display}]}})
}

fn by_reference(id: &str, medication: &str, status: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
           "medicationReference": {"reference": format!("Medication/{medication}")}, "subject": {"reference": "Patient/p1"}})
}

async fn stand_in() -> FhirServer {
    FhirServer::start(vec![
        patient(),
        cramp_condition(),
        by_reference("mr-furosemide", "furo", "active"),
        medication("furo", "313988", "furosemide 40 MG Oral Tablet"),
        medication("quinine", "9071", "quinine"),
    ])
    .await
}

fn with_server(mut request: Value, server: &str) -> Value {
    request["fhirServer"] = json!(server);
    request["fhirAuthorization"] = json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cds"});
    request
}

#[tokio::test]
async fn a_referenced_medication_that_was_not_included_is_fetched() {
    let fhir = stand_in().await;
    let app = spawn_app_with({
        let base = fhir.base.clone();
        move |s| s.fhir.allowed_servers = vec![base]
    })
    .await;
    // Everything prefetched, but the order names its medicine by reference.
    let mut request = patient_view_request();
    request["prefetch"]["medicationRequests"] =
        searchset(vec![by_reference("mr-furosemide", "furo", "active")]);
    for key in ["serviceRequests", "diagnosticReports", "imagingStudies"] {
        request["prefetch"][key] = Value::Null;
    }
    let without = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    assert!(
        finding_codes(&without, "medication-culprits").is_empty(),
        "no server: the medicine stays unknown"
    );
    let before = fhir.requests.load(Ordering::SeqCst);
    let body = assert_valid_cards(
        app.post_json(
            "/cds-services/leg-cramps-patient-view",
            &with_server(request, &fhir.url("")),
        )
        .await,
    )
    .await;
    assert_eq!(
        finding_codes(&body, "medication-culprits"),
        ["loop-diuretic"]
    );
    assert_eq!(
        fhir.requests.load(Ordering::SeqCst) - before,
        1,
        "one read: Medication/furo"
    );

    // Nothing prefetched: the searches, then the Medication, two rounds.
    let mut request = patient_view_request();
    request.as_object_mut().unwrap().remove("prefetch");
    let body = assert_valid_cards(
        app.post_json(
            "/cds-services/leg-cramps-patient-view",
            &with_server(request, &fhir.url("")),
        )
        .await,
    )
    .await;
    assert_eq!(
        finding_codes(&body, "medication-culprits"),
        ["loop-diuretic"]
    );
}

#[tokio::test]
async fn a_quinine_draft_by_reference_still_gets_its_warning() {
    let fhir = stand_in().await;
    let app = spawn_app_with({
        let base = fhir.base.clone();
        move |s| s.fhir.allowed_servers = vec![base]
    })
    .await;
    let mut draft = by_reference("draft-quinine", "quinine", "draft");
    draft["intent"] = json!("proposal");
    let request = with_server(order_request("order-select", vec![draft]), &fhir.url(""));
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-order-select", &request)
            .await,
    )
    .await;
    assert!(
        topics(&body).contains(&"quinine-warning".to_owned()),
        "{body:#}"
    );

    // A Medication the server does not have is reported, never fatal.
    let mut draft = by_reference("draft-unknown", "gone", "draft");
    draft["intent"] = json!("proposal");
    let request = with_server(order_request("order-sign", vec![draft]), &fhir.url(""));
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-order-sign", &request)
            .await,
    )
    .await;
    let unread = body["extension"]["cramp-cds"]["incomplete"].to_string();
    assert!(unread.contains("Medication/gone"), "{body:#}");
}

/// A draft naming its medicine by reference, with no fhirServer to fetch it
/// from: resolved from the prefetch when the EHR included the Medication
/// there, else read by the reference's display, else said to be unchecked.
#[tokio::test]
async fn a_draft_by_reference_is_checked_from_the_prefetch_or_its_display_or_said_unchecked() {
    let app = spawn_app().await;
    let draft = |reference: Value| {
        json!({"resourceType": "MedicationRequest", "id": "draft-q", "status": "draft", "intent": "proposal",
               "medicationReference": reference, "subject": {"reference": "Patient/p1"}})
    };
    let call = |draft: Value, included: Option<Value>| {
        let mut request = order_request("order-sign", vec![draft]);
        if let Some(medication) = included {
            request["prefetch"]["medicationRequests"] = searchset(vec![medication]);
        }
        let app = &app;
        async move {
            assert_valid_cards(
                app.post_json("/cds-services/leg-cramps-order-sign", &request)
                    .await,
            )
            .await
        }
    };
    let included = call(
        draft(json!({"reference": "Medication/q"})),
        Some(medication("q", "9071", "quinine")),
    )
    .await;
    assert!(
        topics(&included).contains(&"quinine-warning".to_owned()),
        "{included:#}"
    );
    let by_display = call(
        draft(json!({"reference": "Medication/q", "display": "quinine sulfate 324 mg capsule"})),
        None,
    )
    .await;
    assert!(
        topics(&by_display).contains(&"quinine-warning".to_owned()),
        "{by_display:#}"
    );
    let unread = call(draft(json!({"reference": "Medication/q"})), None).await;
    assert!(!topics(&unread).contains(&"quinine-warning".to_owned()));
    let incomplete = &unread["extension"]["cramp-cds"]["incomplete"];
    assert!(
        incomplete.to_string().contains("MedicationRequest/draft-q"),
        "{unread:#}"
    );
}

/// An order of the record whose Medication nobody sent and nobody can fetch
/// is said to be unchecked, not silently skipped.
#[tokio::test]
async fn an_order_whose_medicine_cannot_be_read_is_said_unchecked() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    request["prefetch"]["medicationRequests"] =
        searchset(vec![by_reference("mr-unknown", "gone", "active")]);
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    let incomplete = body["extension"]["cramp-cds"]["incomplete"].to_string();
    assert!(incomplete.contains("1 medication order(s)"), "{body:#}");
}
