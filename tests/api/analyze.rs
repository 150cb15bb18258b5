use serde_json::json;

use crate::helpers::*;

fn bundle(resources: Vec<serde_json::Value>) -> serde_json::Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn analyze_evaluates_a_posted_bundle() {
    let app = spawn_app().await;
    let body = bundle(vec![patient(), cramp_condition(), furosemide(), low_potassium()]);
    let result = assert_valid_cards(app.post_json("/analyze", &body).await).await;
    assert_eq!(finding_codes(&result, "risk-factors"), ["older-age", "hypokalemia"]);
    let same = assert_valid_cards(app.post_json("/analyze?hook=patient-view", &body).await).await;
    assert_eq!(topics(&same), topics(&result));
}

#[tokio::test]
async fn analyze_order_hooks_read_draft_medication_requests() {
    let app = spawn_app().await;
    let body = bundle(vec![patient(), cramp_condition(), quinine_draft()]);
    for hook in ["order-select", "order-sign"] {
        let result = assert_valid_cards(app.post_json(&format!("/analyze?hook={hook}"), &body).await).await;
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
    assert_outcome(app.post_raw("/analyze", "application/json", "{\"resourceType\": \"Bundle\"").await, 400).await;
    assert_outcome(app.post_json("/analyze?hook=encounter-start", &bundle(vec![])).await, 400).await;
    assert_outcome(app.post_raw("/analyze", "text/csv", "a,b").await, 415).await;
}
