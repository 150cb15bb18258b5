//! A catalogue of hostile input. Every item gets a 2xx or a 4xx with an
//! OperationOutcome, never a 5xx, a panic or a hang; data-level hostility
//! inside an otherwise valid request costs only the resources it touches.

use serde_json::{json, Value};

use crate::helpers::*;

const SERVICE: &str = "/cds-services/leg-cramps-patient-view";

fn with_conditions(entries: Vec<Value>) -> Value {
    let mut request = patient_view_request();
    request["prefetch"]["conditions"] =
        json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    request
}

fn cramp_entry() -> Value {
    json!({"resource": cramp_condition()})
}

async fn expect_client_error(app: &TestApp, name: &str, body: Vec<u8>) {
    let response = app.post_raw(SERVICE, "application/json", body).await;
    let status = response.status().as_u16();
    assert!((400..500).contains(&status), "{name}: {status}");
    let outcome: Value = response
        .json()
        .await
        .unwrap_or_else(|_| panic!("{name}: no JSON body"));
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{name}");
}

#[tokio::test]
async fn broken_bodies_are_4xx() {
    let app = spawn_app().await;
    let valid = patient_view_request().to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "truncated JSON",
            valid.as_bytes()[..valid.len() / 2].to_vec(),
        ),
        (
            "10,000-deep nesting",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        ),
        (
            "10,000-deep objects",
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
        ),
        ("invalid UTF-8", {
            let mut b = valid.clone().into_bytes();
            b[20] = 0xff;
            b
        }),
        (
            "lone surrogate escape",
            valid.replacen("\"p1\"", "\"\\ud800\"", 1).into_bytes(),
        ),
        (
            "NaN literal",
            valid
                .replacen("\"hook\"", "\"n\": NaN, \"hook\"", 1)
                .into_bytes(),
        ),
        (
            "duplicate hook member",
            valid
                .replacen("\"hook\"", "\"hook\": \"x\", \"hook\"", 1)
                .into_bytes(),
        ),
        ("empty body", Vec::new()),
        ("whitespace", b"   \n ".to_vec()),
        ("a bare string", b"\"patient-view\"".to_vec()),
    ];
    for (name, body) in cases {
        expect_client_error(&app, name, body).await;
    }
}

#[tokio::test]
async fn wrong_types_in_every_member_the_rules_read_are_skipped() {
    let app = spawn_app().await;
    let members = [
        "code",
        "clinicalStatus",
        "verificationStatus",
        "onsetDateTime",
        "onsetPeriod",
        "abatementDateTime",
        "abatementPeriod",
        "abatementBoolean",
        "recordedDate",
        "subject",
        "id",
        "resourceType",
    ];
    let weird = [
        json!(42),
        json!("text"),
        json!([1, 2]),
        json!({"x": {"y": []}}),
        json!(true),
        json!(null),
    ];
    let mut entries = vec![cramp_entry()];
    for (m, member) in members.iter().enumerate() {
        for (w, value) in weird.iter().enumerate() {
            let mut condition = cramp_condition();
            condition["id"] = json!(format!("weird-{m}-{w}"));
            condition[*member] = value.clone();
            entries.push(json!({ "resource": condition }));
        }
    }
    let mut request = with_conditions(entries);
    let mut observation = low_potassium();
    observation["valueQuantity"]["value"] = json!("3.1");
    observation["referenceRange"] = json!("low");
    observation["interpretation"] = json!({"coding": "L"});
    let mut medication = furosemide();
    medication["medicationCodeableConcept"]["coding"] = json!("313988");
    medication["status"] = json!(["active"]);
    request["prefetch"]["observations"] = searchset(vec![observation, low_potassium()]);
    request["prefetch"]["medicationRequests"] = searchset(vec![medication, furosemide()]);
    let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
    // The intact copies still count; the broken ones are skipped.
    assert_eq!(
        finding_codes(&body, "risk-factors"),
        ["older-age", "hypokalemia"]
    );
    assert_eq!(
        finding_codes(&body, "medication-culprits"),
        ["loop-diuretic"]
    );
}

/// Found by the hook_request fuzz target in CI: a multi-byte character in
/// an ATC code made the drug index slice inside it and panic.
#[tokio::test]
async fn non_ascii_characters_inside_codes_are_read_not_fatal() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    let mut odd = furosemide();
    odd["id"] = json!("atc-odd");
    odd["medicationCodeableConcept"] =
        json!({"coding": [{"system": "http://www.whocc.no/atc", "code": "C0źA01"}]});
    request["prefetch"]["medicationRequests"] = searchset(vec![odd, furosemide()]);
    let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
    assert_eq!(
        finding_codes(&body, "medication-culprits"),
        ["loop-diuretic"]
    );
}

#[tokio::test]
async fn huge_numbers_cost_only_their_resource() {
    let app = spawn_app().await;
    // Valid JSON that no f64 holds: in an unknown member it is ignored; in a
    // lab value it makes that one result unreadable.
    let mut request = patient_view_request();
    let mut extra = low_potassium();
    extra["id"] = json!("overflow");
    extra["valueQuantity"]["value"] = json!(12345.0);
    request["prefetch"]["observations"]["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": extra}));
    let text = request
        .to_string()
        .replacen("12345.0", "1e999999", 1)
        .replacen("\"hook\"", "\"unknown\": -1e999999, \"hook\"", 1);
    let response = app.post_raw(SERVICE, "application/json", text).await;
    let body = assert_valid_cards(response).await;
    let evidence = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["extension"]["cramp-cds"]["findings"]
                .as_array()
                .unwrap()
                .clone()
        })
        .find(|f| f["code"] == "hypokalemia")
        .unwrap()["evidence"]
        .clone();
    assert_eq!(evidence, json!(["Observation/k"]));
}

#[tokio::test]
async fn invalid_dates_are_unknown_not_fatal() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    for (i, date) in [
        "2026-02-30",
        "not a date",
        "99999-01-01",
        "2026-13-01T00:00:00Z",
        "",
        "2026-11-22T25:61:00+99:00",
    ]
    .iter()
    .enumerate()
    {
        let mut observation = low_potassium();
        observation["id"] = json!(format!("bad-date-{i}"));
        observation["effectiveDateTime"] = json!(date);
        request["prefetch"]["observations"]["entry"]
            .as_array_mut()
            .unwrap()
            .push(json!({"resource": observation}));
    }
    request["prefetch"]["patient"]["birthDate"] = json!("19-50-03");
    let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
    // The undated results are not used; the valid one still is; the age is unknown.
    assert_eq!(finding_codes(&body, "risk-factors"), ["hypokalemia"]);
}

#[tokio::test]
async fn duplicate_ids_cycles_dangling_references_and_nested_bundles() {
    let app = spawn_app().await;
    let mut request = patient_view_request();
    let cyclic = json!({"resourceType": "MedicationRequest", "id": "cyclic", "status": "active", "intent": "order",
        "medicationReference": {"reference": "#cyclic"}, "contained": [{"resourceType": "Medication", "id": "other", "code": {"text": "furosemide"}}]});
    let dangling = json!({"resourceType": "MedicationRequest", "id": "dangling", "status": "active", "intent": "order",
        "medicationReference": {"reference": "Medication/does-not-exist"}});
    let nested = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": cramp_condition()}]});
    request["prefetch"]["medicationStatements"] =
        searchset(vec![cyclic, dangling, furosemide(), furosemide(), nested]);
    let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
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
async fn huge_strings_and_a_100000_entry_bundle_are_answered() {
    let _turn = crate::helpers::heavy_turn().await;
    let app = spawn_app_with(|s| {
        s.max_body_bytes = 32 * 1024 * 1024;
        s.limits.max_entries = 200_000;
    })
    .await;
    let mut request = patient_view_request();
    let mut huge = cramp_condition();
    huge["id"] = json!("huge");
    huge["code"]["text"] = json!("x".repeat(2_000_000));
    huge["note"] = json!([{"text": "y".repeat(2_000_000)}]);
    request["prefetch"]["conditions"]["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": huge}));
    let entries: Vec<Value> = (0..100_000)
        .map(|i| json!({"resource": {"resourceType": "Basic", "id": format!("b{i}")}}))
        .collect();
    request["prefetch"]["procedures"] =
        json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    let started = std::time::Instant::now();
    let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for card in body["cards"].as_array().unwrap() {
        assert!(card["summary"].as_str().unwrap().chars().count() < 140);
        assert!(
            card["detail"].as_str().unwrap().len() < 100_000,
            "record text must not be copied into a card wholesale"
        );
    }
}

#[tokio::test]
async fn a_bundle_of_many_patients_links_and_subjects_is_answered_in_time() {
    let _turn = crate::helpers::heavy_turn().await;
    let app = spawn_app_with(|s| {
        s.max_body_bytes = 32 * 1024 * 1024;
        s.limits.max_entries = 200_000;
    })
    .await;
    let mut request = patient_view_request();
    let mut entries = vec![cramp_entry()];
    for i in 0..50_000 {
        let links: Vec<Value> = (0..3)
            .map(|l| json!({"other": {"reference": format!("Patient/x{}", (i + l) % 50_000)}}))
            .collect();
        entries.push(json!({"fullUrl": format!("urn:uuid:x{i}"), "resource": {"resourceType": "Patient", "id": format!("x{i}"), "link": links}}));
        let mut condition = cramp_condition();
        condition["id"] = json!(format!("of-x{i}"));
        condition["subject"] = json!({"reference": format!("urn:uuid:x{i}")});
        entries.push(json!({ "resource": condition }));
    }
    request["prefetch"]["conditions"] =
        json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    let started = std::time::Instant::now();
    let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // None of the 50,000 strangers' cramps are p1's: only p1's own counts.
    assert!(
        !body.to_string().contains("of-x"),
        "a stranger's resource reached a card"
    );
}

#[tokio::test]
async fn thousands_of_matching_resources_stay_linear_and_the_card_short() {
    let _turn = crate::helpers::heavy_turn().await;
    let app = spawn_app_with(|s| {
        s.max_body_bytes = 32 * 1024 * 1024;
        s.limits.max_entries = 200_000;
    })
    .await;
    let first_day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let mut request = patient_view_request();
    let mut entries = vec![cramp_entry()];
    for day in 0..20_000 {
        entries.push(json!({"resource": {
            "resourceType": "Condition", "id": format!("dm{day}"),
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9", "display": "Type 2 diabetes mellitus"}]},
            "subject": {"reference": "Patient/p1"}, "recordedDate": (first_day + chrono::Days::new(day)).to_string()
        }}));
    }
    request["prefetch"]["conditions"] =
        json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    let started = std::time::Instant::now();
    let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let risk = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "risk-factors")
        .unwrap();
    let diabetes = risk["extension"]["cramp-cds"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "diabetes")
        .unwrap();
    assert_eq!(
        diabetes["evidence"].as_array().unwrap().len(),
        20_000,
        "the evidence lists every record"
    );
    let detail = risk["detail"].as_str().unwrap();
    assert!(
        detail.len() < 10_000 && detail.contains("; and 19999 more records"),
        "{} bytes: {detail}",
        detail.len()
    );

    // 20,000 draft orders, every one selected.
    let drafts: Vec<Value> = (0..20_000)
        .map(|i| {
            let mut draft = furosemide();
            draft["id"] = json!(format!("draft-{i}"));
            draft["status"] = json!("draft");
            draft
        })
        .collect();
    let mut request = order_request("order-select", drafts);
    request["context"]["selections"] = json!((0..20_000)
        .map(|i| format!("MedicationRequest/draft-{i}"))
        .collect::<Vec<_>>());
    let started = std::time::Instant::now();
    let body = assert_valid_cards(
        app.post_json("/cds-services/leg-cramps-order-select", &request)
            .await,
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        finding_codes(&body, "medication-culprits"),
        ["loop-diuretic"]
    );
}
