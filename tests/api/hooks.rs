use std::path::PathBuf;

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn patient_view_returns_risk_factor_and_culprit_cards() {
    let app = spawn_app().await;
    let body = assert_valid_cards(
        app.post_json(
            "/cds-services/leg-cramps-patient-view",
            &patient_view_request(),
        )
        .await,
    )
    .await;
    let mut topics = topics(&body);
    topics.sort();
    assert_eq!(topics, ["medication-culprits", "risk-factors"]);
    assert_eq!(
        finding_codes(&body, "risk-factors"),
        ["older-age", "hypokalemia"]
    );
    assert_eq!(
        finding_codes(&body, "medication-culprits"),
        ["loop-diuretic"]
    );
    let risk = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "risk-factors")
        .unwrap();
    assert_eq!(
        risk["indicator"], "warning",
        "a low electrolyte raises the indicator"
    );
    let evidence = &risk["extension"]["cramp-cds"]["findings"][1]["evidence"];
    assert_eq!(evidence, &json!(["Observation/k"]));
}

#[tokio::test]
async fn order_hooks_warn_about_a_quinine_draft() {
    let app = spawn_app().await;
    for (service, hook) in [
        ("leg-cramps-order-select", "order-select"),
        ("leg-cramps-order-sign", "order-sign"),
    ] {
        let request = order_request(hook, vec![quinine_draft()]);
        let body = assert_valid_cards(
            app.post_json(&format!("/cds-services/{service}"), &request)
                .await,
        )
        .await;
        assert_eq!(topics(&body), ["quinine-warning"], "{hook}");
        let card = &body["cards"][0];
        assert_eq!(card["indicator"], "critical");
        assert_eq!(card["selectionBehavior"], "at-most-one");
        assert_eq!(card["suggestions"][0]["actions"][0]["type"], "delete");
        assert_eq!(
            card["suggestions"][0]["actions"][0]["resourceId"],
            "MedicationRequest/draft-quinine"
        );
        assert!(card["overrideReasons"].as_array().unwrap().len() >= 2);
    }
}

#[tokio::test]
async fn every_prefetch_shape_is_read() {
    let app = spawn_app().await;
    // A bare resource, a Bundle spread over two keys, `null`, and an
    // OperationOutcome for an optional key.
    let mut request = patient_view_request();
    request["prefetch"]["conditions"] = cramp_condition();
    request["prefetch"]["medicationStatements"] = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "too-costly"}]});
    request["prefetch"]["extraObservations"] = searchset(vec![low_potassium()]);
    request["prefetch"]["observations"] = Value::Null;
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    assert_eq!(
        finding_codes(&body, "risk-factors"),
        ["older-age", "hypokalemia"]
    );
}

#[tokio::test]
async fn the_same_resource_under_two_keys_counts_once() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    request["prefetch"]["medicationStatements"] = searchset(vec![furosemide()]);
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    let culprits = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "medication-culprits")
        .unwrap();
    assert_eq!(
        culprits["extension"]["cramp-cds"]["findings"][0]["evidence"],
        json!(["MedicationRequest/furosemide"])
    );
}

#[tokio::test]
async fn unknown_members_and_extensions_are_ignored() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    request["extension"] = json!({"com.epic": {"x": 1}});
    request["somethingNew"] = json!([1, 2, 3]);
    request["context"]["extension"] = json!({"vendor": true});
    request["context"]["unknownContext"] = json!("value");
    request["prefetch"]["patient"]["extension"] = json!([{"url": "http://x", "valueString": "y"}]);
    request["prefetch"]["patient"]["_birthDate"] = json!({"id": "b"});
    request["fhirAuthorization"] = json!({"access_token": "secret", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cds", "extra": 1});
    request["fhirServer"] = json!("https://ehr.example.org/fhir");
    assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
}

#[tokio::test]
async fn malformed_resources_are_skipped_not_fatal() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    request["prefetch"]["conditions"]["entry"]
        .as_array_mut()
        .unwrap()
        .extend([json!({"resource": {"resourceType": "Condition", "id": "bad", "code": "not a concept"}}), json!({"resource": 42}), json!({})]);
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    assert_eq!(
        finding_codes(&body, "risk-factors"),
        ["older-age", "hypokalemia"]
    );
}

#[tokio::test]
async fn a_chart_without_documented_cramps_gets_no_cards() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    request["prefetch"]["conditions"] = Value::Null;
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    assert_eq!(body, json!({"cards": []}));
}

/// The sample bundles split into prefetch keys as an EHR would send them.
fn sample_prefetch(path: &PathBuf) -> (String, Value) {
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut by_type: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    let mut patient_id = String::new();
    for entry in bundle["entry"].as_array().unwrap() {
        let resource = entry["resource"].clone();
        let kind = resource["resourceType"].as_str().unwrap().to_owned();
        if kind == "Patient" {
            patient_id = resource["id"].as_str().unwrap().to_owned();
        }
        by_type.entry(kind).or_default().push(resource);
    }
    let mut conditions = by_type.remove("Condition").unwrap_or_default();
    conditions.push(json!({
        "resourceType": "Condition", "id": "cramp-added-by-test",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"text": "Nocturnal leg cramps"}, "subject": {"reference": format!("Patient/{patient_id}")}
    }));
    let take = |by_type: &mut std::collections::BTreeMap<String, Vec<Value>>, kind: &str| {
        by_type.remove(kind).map(searchset).unwrap_or(Value::Null)
    };
    let encounters = take(&mut by_type, "Encounter");
    let prefetch = json!({
        "patient": by_type.remove("Patient").unwrap().remove(0),
        "conditions": searchset(conditions),
        "medicationRequests": take(&mut by_type, "MedicationRequest"),
        "observations": take(&mut by_type, "Observation"),
        "procedures": take(&mut by_type, "Procedure"),
        // An EHR answers each Encounter search with what matches; the
        // sample's whole list under each is a superset the service dedups.
        "inpatientEncounters": encounters.clone(),
        "visitsByReason": encounters.clone(),
        "visitsByType": encounters,
        "medicationStatements": take(&mut by_type, "MedicationStatement"),
    });
    (patient_id, prefetch)
}

#[tokio::test]
async fn every_hook_answers_realistic_prefetch_from_the_samples() {
    let dir = std::env::var_os("CRAMP_CDS_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/samples"));
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CRAMP_CDS_REQUIRE_SAMPLES").is_none(),
            "no samples at {}",
            dir.display()
        );
        return;
    }
    let app = spawn_app().await;
    for sub in ["synthea", "generated"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let (patient_id, prefetch) = sample_prefetch(&path);
            for (service, hook) in [
                ("leg-cramps-patient-view", "patient-view"),
                ("leg-cramps-order-select", "order-select"),
                ("leg-cramps-order-sign", "order-sign"),
            ] {
                let mut request = json!({
                    "hook": hook, "hookInstance": uuid::Uuid::new_v4().to_string(),
                    "context": {"userId": "Practitioner/1", "patientId": patient_id},
                    "prefetch": prefetch
                });
                if hook != "patient-view" {
                    request["context"]["draftOrders"] = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": quinine_draft()}]});
                    request["context"]["selections"] = json!(["MedicationRequest/draft-quinine"]);
                }
                let body = assert_valid_cards(
                    app.post_json(&format!("/cds-services/{service}"), &request)
                        .await,
                )
                .await;
                if hook != "patient-view" {
                    assert!(
                        topics(&body).contains(&"quinine-warning".to_owned()),
                        "{}: {hook}",
                        path.display()
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn dvt_orders_fall_back_to_the_context_patient() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    request["prefetch"]["patient"] = Value::Null;
    let swelling = json!({
        "resourceType": "Condition", "id": "swelling",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "449614009", "display": "Leg swelling"}]},
        "recordedDate": chrono::Utc::now().to_rfc3339()
    });
    request["prefetch"]["conditions"] = searchset(vec![cramp_condition(), swelling]);
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    let dvt = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "dvt-rule-out")
        .unwrap();
    assert_eq!(
        dvt["suggestions"][0]["actions"][0]["resource"]["subject"]["reference"],
        "Patient/p1"
    );
    assert_eq!(
        finding_codes(&body, "dvt-rule-out"),
        ["leg-swelling", "leg-cramps"]
    );
}

#[tokio::test]
async fn another_patients_prefetch_never_reaches_the_cards() {
    let app = spawn_app().await;
    // Every resource names Patient/p1, but the chart open is p9's.
    let mut request = patient_view_request();
    request["context"]["patientId"] = json!("p9");
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    assert_eq!(
        body["cards"],
        json!([]),
        "p1's cramps, medicine and labs are not p9's"
    );

    // The chart is p1's, but the patient prefetch brought an older stranger.
    let mut request = patient_view_request();
    request["prefetch"]["patient"] =
        json!({"resourceType": "Patient", "id": "p2", "birthDate": "1930-01-01"});
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    assert_eq!(
        finding_codes(&body, "risk-factors"),
        ["hypokalemia"],
        "the stranger's age is not p1's"
    );
    assert_eq!(
        finding_codes(&body, "medication-culprits"),
        ["loop-diuretic"]
    );
}

#[tokio::test]
async fn dvt_orders_are_for_the_context_patient_when_the_record_holds_a_linked_record() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    // p1's own record says it replaces p1-old (a link declared only on
    // p1-old's record would merge nothing: tests/api/merges.rs).
    request["prefetch"]["patient"] = json!({"resourceType": "Patient", "id": "p1", "birthDate": "1950-03-04",
        "link": [{"other": {"reference": "Patient/p1-old"}, "type": "replaces"}]});
    let swelling = json!({
        "resourceType": "Condition", "id": "swelling", "subject": {"reference": "Patient/p1-old"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "449614009", "display": "Leg swelling"}]},
        "recordedDate": chrono::Utc::now().to_rfc3339()
    });
    request["prefetch"]["conditions"] = searchset(vec![cramp_condition(), swelling]);
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    assert_eq!(
        finding_codes(&body, "dvt-rule-out"),
        ["leg-swelling", "leg-cramps"],
        "the merged record's swelling counts"
    );
    assert_eq!(finding_codes(&body, "risk-factors")[0], "older-age");
    let dvt = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "dvt-rule-out")
        .unwrap();
    assert_eq!(
        dvt["suggestions"][0]["actions"][0]["resource"]["subject"]["reference"],
        "Patient/p1"
    );
}

/// "Do not give quinine" is not quinine given: no warning, no culprit.
#[tokio::test]
async fn an_order_not_to_give_quinine_is_not_quinine() {
    let app = spawn_app().await;
    let mut prohibition = quinine_draft();
    prohibition["doNotPerform"] = json!(true);
    let body = assert_valid_cards(
        app.post_json(
            "/cds-services/leg-cramps-order-sign",
            &order_request("order-sign", vec![prohibition.clone()]),
        )
        .await,
    )
    .await;
    assert!(
        !topics(&body).contains(&"quinine-warning".to_owned()),
        "{body:#}"
    );
    let mut order = prohibition;
    order["status"] = json!("active");
    order["intent"] = json!("order");
    let mut request = patient_view_request();
    request["prefetch"]["medicationRequests"] = json!({
        "resourceType": "Bundle", "type": "searchset", "entry": [{"resource": order}]
    });
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
    )
    .await;
    assert!(
        !topics(&body).contains(&"quinine-warning".to_owned()),
        "{body:#}"
    );
}
