use serde_json::json;

use crate::helpers::*;

fn bundle(resources: Vec<serde_json::Value>) -> serde_json::Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn analyze_evaluates_a_posted_bundle() {
    let app = spawn_app().await;
    let body = bundle(vec![
        patient(),
        cramp_condition(),
        furosemide(),
        low_potassium(),
    ]);
    let result = assert_valid_cards(app.post_json("/analyze", &body).await).await;
    assert_eq!(
        finding_codes(&result, "risk-factors"),
        ["older-age", "hypokalemia"]
    );
    let same = assert_valid_cards(app.post_json("/analyze?hook=patient-view", &body).await).await;
    assert_eq!(topics(&same), topics(&result));
}

#[tokio::test]
async fn analyze_order_hooks_read_draft_medication_requests() {
    let app = spawn_app().await;
    let body = bundle(vec![patient(), cramp_condition(), quinine_draft()]);
    for hook in ["order-select", "order-sign"] {
        let result =
            assert_valid_cards(app.post_json(&format!("/analyze?hook={hook}"), &body).await).await;
        assert_eq!(topics(&result), ["quinine-warning"]);
        assert_eq!(result["cards"][0]["indicator"], "critical");
    }
    // On patient-view a draft is not a medicine the patient takes.
    let result = assert_valid_cards(app.post_json("/analyze", &body).await).await;
    assert!(!topics(&result).contains(&"quinine-warning".to_owned()));
}

#[tokio::test]
async fn analyze_rejects_what_is_not_a_bundle() {
    let app = spawn_app().await;
    assert_outcome(app.post_json("/analyze", &patient()).await, 400).await;
    assert_outcome(
        app.post_raw(
            "/analyze",
            "application/json",
            "{\"resourceType\": \"Bundle\"",
        )
        .await,
        400,
    )
    .await;
    assert_outcome(
        app.post_json("/analyze?hook=encounter-start", &bundle(vec![]))
            .await,
        400,
    )
    .await;
    assert_outcome(app.post_raw("/analyze", "text/csv", "a,b").await, 415).await;
}

fn condition(id: &str, system: &str, code: &str, display: &str) -> serde_json::Value {
    json!({
        "resourceType": "Condition", "id": id,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
        "recordedDate": chrono::Utc::now().to_rfc3339()
    })
}

fn swelling_and_pain() -> Vec<serde_json::Value> {
    vec![
        condition(
            "swelling",
            "http://hl7.org/fhir/sid/icd-10-cm",
            "R22.41",
            "Localized swelling, right lower limb",
        ),
        condition(
            "pain",
            "http://hl7.org/fhir/sid/icd-10-cm",
            "M79.661",
            "Pain in right lower leg",
        ),
    ]
}

#[tokio::test]
async fn dvt_orders_name_the_patient_or_are_not_offered() {
    let app = spawn_app().await;
    let mut with_patient = swelling_and_pain();
    with_patient.push(patient());
    let result = assert_valid_cards(app.post_json("/analyze", &bundle(with_patient)).await).await;
    let card = &result["cards"][0];
    assert_eq!(card["source"]["topic"]["code"], "dvt-rule-out");
    let request = &card["suggestions"][0]["actions"][0]["resource"];
    assert_eq!(request["subject"]["reference"], "Patient/p1");
    assert_eq!(request["status"], "draft");
    assert_eq!(request["intent"], "proposal");
    assert_eq!(
        request["reasonReference"],
        json!([{"reference": "Condition/swelling"}, {"reference": "Condition/pain"}])
    );

    let result = assert_valid_cards(
        app.post_json("/analyze", &bundle(swelling_and_pain()))
            .await,
    )
    .await;
    let card = &result["cards"][0];
    assert_eq!(card["source"]["topic"]["code"], "dvt-rule-out");
    assert!(
        card.get("suggestions").is_none() && card.get("selectionBehavior").is_none(),
        "{card:#}"
    );
}
