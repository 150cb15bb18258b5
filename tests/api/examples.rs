//! The example patients the console offers, served with their dates moved
//! to today, give exactly the cards their index promises.

use serde_json::{json, Value};

use crate::helpers::*;

async fn fetch(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

fn sorted(topics: &[String]) -> Vec<String> {
    let mut topics = topics.to_vec();
    topics.sort();
    topics
}

fn expected(entry: &Value) -> Vec<String> {
    sorted(
        &entry["expectCards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn every_example_patient_gives_its_expected_cards_today() {
    let app = spawn_app().await;
    let index = fetch(&app, "/examples").await;
    let patients = index["patients"].as_array().unwrap();
    assert!(patients.len() >= 6);
    for patient in patients {
        let file = patient["file"].as_str().unwrap();
        let bundle = fetch(&app, &format!("/examples/{file}")).await;
        let hook = patient["hook"].as_str().unwrap();
        let body = assert_valid_cards(
            app.post_json(&format!("/analyze?hook={hook}"), &bundle)
                .await,
        )
        .await;
        assert_eq!(sorted(&topics(&body)), expected(patient), "{file}");
    }
}

#[tokio::test]
async fn every_draft_order_gives_its_expected_cards_for_a_patient_with_cramps() {
    let app = spawn_app().await;
    let index = fetch(&app, "/examples").await;
    let with_cramps = index["patients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file"] == "cramps-ckd-low-potassium.json")
        .expect("the CKD example");
    let bundle = fetch(
        &app,
        &format!("/examples/{}", with_cramps["file"].as_str().unwrap()),
    )
    .await;
    let patient_id = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .unwrap()["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for draft in index["draftOrders"].as_array().unwrap() {
        let mut order = fetch(
            &app,
            &format!("/examples/{}", draft["file"].as_str().unwrap()),
        )
        .await;
        order["subject"] = json!({"reference": format!("Patient/{patient_id}")});
        let mut with_draft = bundle.clone();
        with_draft["entry"]
            .as_array_mut()
            .unwrap()
            .push(json!({"resource": order}));
        let body =
            assert_valid_cards(app.post_json("/analyze?hook=order-sign", &with_draft).await).await;
        assert_eq!(sorted(&topics(&body)), expected(draft), "{}", draft["file"]);
    }
}

#[tokio::test]
async fn the_dvt_cards_speak_to_pregnancy_and_to_the_wells_points() {
    let app = spawn_app().await;
    let dvt_card = |body: Value| {
        body["cards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["source"]["topic"]["code"] == "dvt-rule-out")
            .cloned()
            .unwrap()
    };

    let pregnant = fetch(&app, "/examples/dvt-pregnancy.json").await;
    let card = dvt_card(assert_valid_cards(app.post_json("/analyze", &pregnant).await).await);
    let detail = card["detail"].as_str().unwrap();
    assert!(card["summary"]
        .as_str()
        .unwrap()
        .contains("pregnant: compression ultrasound"));
    // §6 r2: Le Gal 2012 and RCOG 37b, not the Wells pathway; no score.
    assert!(
        detail.contains("[Le Gal 2012; RCOG Green-top 37b]"),
        "{detail}"
    );
    assert!(
        !detail.contains("Points known")
            && !detail.contains("Still to assess at the bedside")
            && !detail.contains("NG158"),
        "{detail}"
    );
    assert_eq!(
        card["suggestions"].as_array().unwrap().len(),
        1,
        "ultrasound only"
    );

    let surgical = fetch(&app, "/examples/dvt-after-knee-replacement.json").await;
    let card = dvt_card(assert_valid_cards(app.post_json("/analyze", &surgical).await).await);
    let detail = card["detail"].as_str().unwrap();
    // §6 r2: the prostate cancer was diagnosed 15 months ago and hormone
    // therapy is not among the treatment codes, so only the surgery scores.
    assert!(
        detail.contains("Points known from the record: **1**"),
        "{detail}"
    );
    assert!(
        detail.contains("Still to assess at the bedside")
            && detail.contains("under 2, D-dimer first"),
        "{detail}"
    );
    let suggestions = card["suggestions"].as_array().unwrap();
    assert!(
        suggestions.iter().all(|s| s["isRecommended"] != true),
        "the chart cannot choose the test"
    );
    assert_eq!(
        suggestions[0]["actions"][0]["resource"]["code"]["coding"][0]["code"], "93971",
        "ultrasound listed first"
    );
}

#[tokio::test]
async fn unknown_examples_are_404() {
    let app = spawn_app().await;
    assert_outcome(app.get("/examples/nope.json").await, 404).await;
    assert_outcome(app.get("/examples/../Cargo.toml").await, 404).await;
}
