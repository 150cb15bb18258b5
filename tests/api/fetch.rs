//! Fetching missing prefetch from the EHR's FHIR server (a stand-in serving
//! a real sample patient over HTTP on loopback).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fhir_server::{dropping_server, Behaviour, FhirServer, ACCESS_TOKEN};
use crate::helpers::*;

const SERVICE: &str = "/cds-services/leg-cramps-patient-view";

/// Verna Satterfield (a diuretic, a beta-blocker, 1,600 observations), with
/// documented cramps added; None when ../shared/samples is absent.
pub(crate) fn sample_resources() -> Option<(String, Vec<Value>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/samples/generated/Verna_Satterfield_afe4d0ff.json");
    if !path.exists() {
        assert!(
            std::env::var_os("CRAMP_CDS_REQUIRE_SAMPLES").is_none(),
            "{} is missing",
            path.display()
        );
        return None;
    }
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut resources: Vec<Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect();
    let patient_id = resources
        .iter()
        .find(|r| r["resourceType"] == "Patient")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    resources.push(json!({
        "resourceType": "Condition", "id": "documented-cramps",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R25.2", "display": "Cramp and spasm"}]},
        "subject": {"reference": format!("Patient/{patient_id}")}
    }));
    Some((patient_id, resources))
}

pub(crate) fn request(patient_id: &str, prefetch: Option<Value>, server: Option<&str>) -> Value {
    let mut request = json!({
        "hook": "patient-view", "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {"userId": "Practitioner/1", "patientId": patient_id},
    });
    if let Some(prefetch) = prefetch {
        request["prefetch"] = prefetch;
    }
    if let Some(server) = server {
        request["fhirServer"] = json!(server);
        request["fhirAuthorization"] = json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cramp-cds"});
    }
    request
}

/// A server that pages by 40 whatever `_count` asks (some do).
fn ignoring_count() -> Behaviour {
    Behaviour {
        max_count: 0,
        ..Behaviour::default()
    }
}

/// The cards without what differs per call (uuids).
fn comparable(body: &Value) -> Vec<Value> {
    let mut cards: Vec<Value> = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!([
                c["source"]["topic"]["code"],
                c["indicator"],
                c["summary"],
                c["extension"]
            ])
        })
        .collect();
    cards.sort_by_key(|c| c.to_string());
    cards
}

pub(crate) async fn templates(app: &TestApp) -> serde_json::Map<String, Value> {
    let discovery: Value = app.get("/cds-services").await.json().await.unwrap();
    discovery["services"][0]["prefetch"]
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn fetched_prefetch_gives_the_same_cards_as_full_prefetch() {
    let Some((patient_id, resources)) = sample_resources() else {
        return;
    };
    // A server that ignores `_count`, so that pages are followed.
    let fhir = FhirServer::start_with(resources, ignoring_count()).await;
    let app = spawn_app_with(|s| s.fhir.allowed_servers = vec![fhir.url("")]).await;
    let templates = templates(&app).await;

    let full = fhir.prefetch_for(&templates, &patient_id);
    let with_prefetch = assert_valid_cards(
        app.post_json(SERVICE, &request(&patient_id, Some(full.clone()), None))
            .await,
    )
    .await;
    assert!(
        !with_prefetch["cards"].as_array().unwrap().is_empty(),
        "the sample with cramps must produce cards"
    );

    let before = fhir.requests.load(Ordering::SeqCst);
    let fetched = assert_valid_cards(
        app.post_json(SERVICE, &request(&patient_id, None, Some(&fhir.url(""))))
            .await,
    )
    .await;
    assert_eq!(comparable(&fetched), comparable(&with_prefetch));
    let calls = fhir.requests.load(Ordering::SeqCst) - before;
    assert!(
        calls > templates.len(),
        "pagination must have been followed ({calls} calls for {} keys)",
        templates.len()
    );

    // Some keys sent, one answered with an OperationOutcome, the rest fetched.
    let mut partial = serde_json::Map::new();
    partial.insert("patient".into(), full["patient"].clone());
    partial.insert("conditions".into(), full["conditions"].clone());
    partial.insert("observations".into(), json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "too-costly"}]}));
    let mixed = assert_valid_cards(
        app.post_json(
            SERVICE,
            &request(
                &patient_id,
                Some(Value::Object(partial)),
                Some(&fhir.url("")),
            ),
        )
        .await,
    )
    .await;
    assert_eq!(comparable(&mixed), comparable(&with_prefetch));
}

#[tokio::test]
async fn every_fhir_fault_is_a_412_within_the_deadline() {
    let Some((patient_id, resources)) = sample_resources() else {
        return;
    };
    // Ignoring `_count`: the foreign mode needs a next link.
    let fhir = FhirServer::start_with(resources, ignoring_count()).await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://127.0.0.1:{}/fhir",
            listener.local_addr().unwrap().port()
        )
    };
    let dropping = dropping_server();
    // The stand-ins are on loopback: they must be allow-listed explicitly.
    let listed = vec![fhir.base.clone(), dropping.clone(), closed_port.clone()];
    let app = spawn_app_with(move |s| s.fhir.allowed_servers = listed).await;
    let faults = [
        (fhir.url("slow"), "did not answer in time"),
        (fhir.url("unauthorized"), "refused the access token (401)"),
        (fhir.url("error"), "answered 500"),
        (fhir.url("garbage"), "not FHIR JSON"),
        (fhir.url("broken"), "not a readable FHIR resource"),
        (fhir.url("outcome"), "OperationOutcome"),
        (fhir.url("foreign"), "outside the FHIR server"),
        (dropping, "could not be reached or dropped the connection"),
        (closed_port, "could not be reached"),
        (
            "ftp://ehr.example.org/fhir".to_owned(),
            "not an http(s) URL",
        ),
    ];
    for (server, reason) in faults {
        let started = Instant::now();
        let response = app
            .post_json(SERVICE, &request(&patient_id, None, Some(&server)))
            .await;
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_millis(2500),
            "{server}: {elapsed:?}"
        );
        if server.starts_with("ftp") {
            assert_outcome(response, 400).await;
            continue;
        }
        let issues = assert_outcome(response, 412).await;
        let text = serde_json::to_string(&issues).unwrap();
        assert!(
            text.contains(reason),
            "{server}: expected '{reason}' in {text}"
        );
        assert!(
            !text.contains(ACCESS_TOKEN),
            "the access token leaked into the answer"
        );
        // A foreign next link only breaks the paginated searches.
        let keys: &[&str] = if reason.contains("outside") {
            &["observations"]
        } else {
            &[
                "patient",
                "conditions",
                "medicationRequests",
                "observations",
            ]
        };
        for key in keys {
            assert!(
                pointers(&issues).contains(&format!("/prefetch/{key}")),
                "{server}: {key} not named"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_access_token_is_a_412() {
    let Some((patient_id, resources)) = sample_resources() else {
        return;
    };
    let fhir = FhirServer::start(resources).await;
    let app = spawn_app_with(|s| s.fhir.allowed_servers = vec![fhir.url("")]).await;
    let mut call = request(&patient_id, None, Some(&fhir.url("")));
    call["fhirAuthorization"]["access_token"] = json!("stolen");
    let issues = assert_outcome(app.post_json(SERVICE, &call).await, 412).await;
    assert!(serde_json::to_string(&issues)
        .unwrap()
        .contains("refused the access token"));
}

#[tokio::test]
async fn a_fhir_server_off_the_allow_list_is_never_contacted() {
    let Some((patient_id, resources)) = sample_resources() else {
        return;
    };
    let fhir = FhirServer::start(resources).await;
    let app =
        spawn_app_with(|s| s.fhir.allowed_servers = vec!["https://ehr.example.org/fhir".into()])
            .await;
    let issues = assert_outcome(
        app.post_json(SERVICE, &request(&patient_id, None, Some(&fhir.url(""))))
            .await,
        412,
    )
    .await;
    let text = serde_json::to_string(&issues).unwrap();
    assert!(
        text.contains("fhirServer not trusted") && text.contains("allow-list"),
        "{text}"
    );
    assert_eq!(fhir.requests.load(Ordering::SeqCst), 0);

    let allowed = spawn_app_with(|s| s.fhir.allowed_servers = vec![fhir.url("")]).await;
    assert_valid_cards(
        allowed
            .post_json(SERVICE, &request(&patient_id, None, Some(&fhir.url(""))))
            .await,
    )
    .await;
}

/// A patient-view request for p1 whose `procedures` the service must fetch.
fn without_procedures(server: Option<&str>) -> Value {
    let mut request = patient_view_request();
    request["prefetch"]
        .as_object_mut()
        .unwrap()
        .remove("procedures");
    if let Some(server) = server {
        request["fhirServer"] = json!(server);
        request["fhirAuthorization"] = json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cramp-cds"});
    }
    request
}

pub(crate) fn incomplete_keys(body: &Value) -> Vec<String> {
    let listed = body["extension"]["cramp-cds"]["incomplete"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    listed
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect()
}

fn risk_detail(body: &Value) -> String {
    let cards = body["cards"].as_array().unwrap();
    let card = cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "risk-factors")
        .expect("a risk-factors card");
    card["detail"].as_str().unwrap().to_owned()
}

/// The patient with cramps and `count` routine procedures (none dialysis).
fn with_procedures(count: usize) -> Vec<Value> {
    let mut resources = vec![patient(), cramp_condition()];
    resources.extend((0..count).map(|i| {
        json!({"resourceType": "Procedure", "id": format!("proc-{i}"), "status": "completed", "code": {"text": "Dental cleaning"},
               "subject": {"reference": "Patient/p1"}, "performedDateTime": "2026-01-01"})
    }));
    resources
}

#[tokio::test]
async fn an_optional_key_cut_at_the_page_limit_is_said_on_the_card_and_in_the_extension() {
    // 50 procedures, none of them dialysis: two pages of the stand-in's 40
    // (a server that ignores `_count`).
    let fhir = FhirServer::start_with(with_procedures(50), ignoring_count()).await;
    let url = fhir.url("");
    let app = spawn_app_with(move |s| {
        s.fhir.allowed_servers = vec![url];
        s.fhir.fhir_max_pages = 1;
    })
    .await;
    let body = assert_valid_cards(
        app.post_json(SERVICE, &without_procedures(Some(&fhir.url(""))))
            .await,
    )
    .await;
    let incomplete = &body["extension"]["cramp-cds"]["incomplete"];
    assert_eq!(incomplete.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(incomplete[0]["key"], "procedures");
    assert!(
        incomplete[0]["reason"]
            .as_str()
            .unwrap()
            .contains("page limit"),
        "{incomplete}"
    );
    assert!(
        risk_detail(&body).contains("Procedures could not be read: dialysis not checked"),
        "{}",
        risk_detail(&body)
    );
}

#[tokio::test]
async fn a_key_neither_sent_nor_fetchable_is_said_unless_other_data_shows_the_finding() {
    let app = spawn_app().await;
    let body = assert_valid_cards(app.post_json(SERVICE, &without_procedures(None)).await).await;
    assert!(
        incomplete_keys(&body).contains(&"procedures".to_owned()),
        "{body}"
    );
    assert!(risk_detail(&body).contains("Procedures could not be read: dialysis not checked"));

    // Dialysis already shown by a Condition: nothing left unchecked to say on the card.
    let mut request = without_procedures(None);
    let on_dialysis = json!({
        "resourceType": "Condition", "id": "z99", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z99.2", "display": "Dependence on renal dialysis"}]}
    });
    request["prefetch"]["conditions"]["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": on_dialysis}));
    let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
    assert!(
        !risk_detail(&body).contains("could not be read"),
        "{}",
        risk_detail(&body)
    );
    assert!(
        incomplete_keys(&body).contains(&"procedures".to_owned()),
        "the answer still says what it lacked"
    );
}

/// §6 r2: the work-up keys are fetched like the others, and a duplex ordered
/// on the EHR's server silences the DVT prompt; a negative D-dimer comes in
/// with the observations.
#[tokio::test]
async fn the_dvt_work_up_is_fetched_and_answers_the_question() {
    let now = chrono::Utc::now();
    let today = now.to_rfc3339();
    let condition = |id: &str, code: &str, display: &str| {
        json!({"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p1"}, "recordedDate": today,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code, "display": display}]}})
    };
    let presenting = vec![
        json!({"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"}),
        condition(
            "swelling",
            "R22.42",
            "Localized swelling, mass and lump, left lower limb",
        ),
        condition("pain", "M79.662", "Pain in left lower leg"),
    ];
    let dvt_card = |body: &Value| {
        body["cards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["source"]["topic"]["code"] == "dvt-rule-out")
    };
    let duplex = json!({"resourceType": "ServiceRequest", "id": "duplex", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/p1"}, "authoredOn": today,
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "93971"}]}});
    let d_dimer = json!({"resourceType": "Observation", "id": "d-dimer", "status": "final", "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": today, "code": {"coding": [{"system": "http://loinc.org", "code": "48065-7"}]},
        "valueQuantity": {"value": 0.3, "unit": "mg/L", "system": "http://unitsofmeasure.org", "code": "mg/L"}});
    for (extra, fires) in [(None, true), (Some(duplex), false), (Some(d_dimer), false)] {
        let mut resources = presenting.clone();
        resources.extend(extra.clone());
        let fhir = FhirServer::start(resources).await;
        let app = spawn_app_with(|s| s.fhir.allowed_servers = vec![fhir.url("")]).await;
        let body = assert_valid_cards(
            app.post_json(SERVICE, &request("p1", None, Some(&fhir.url(""))))
                .await,
        )
        .await;
        assert_eq!(dvt_card(&body), fires, "with {extra:?}: {body}");
    }
}

#[tokio::test]
async fn a_dvt_prompt_without_the_work_up_keys_says_a_duplex_was_not_checked() {
    let app = spawn_app().await;
    let today = chrono::Utc::now().to_rfc3339();
    let condition = |id: &str, code: &str, display: &str| {
        json!({"resource": {"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p1"}, "recordedDate": today,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code, "display": display}]}}})
    };
    // Procedures unread: a delivery by caesarean would be one, so the
    // postpartum question is among what the card says it could not check.
    for (unread, line) in [
        (
            "serviceRequests",
            "Service requests could not be read: a duplex ultrasound already done or ordered not checked",
        ),
        ("procedures", "postpartum (delivery in the last 6 weeks)"),
    ] {
        let mut request = patient_view_request();
        let prefetch = request["prefetch"].as_object_mut().unwrap();
        prefetch.remove(unread);
        prefetch["conditions"]["entry"] = json!([
            condition(
                "swelling",
                "R22.42",
                "Localized swelling, mass and lump, left lower limb"
            ),
            condition("pain", "M79.662", "Pain in left lower leg")
        ]);
        let body = assert_valid_cards(app.post_json(SERVICE, &request).await).await;
        assert!(incomplete_keys(&body).contains(&unread.to_owned()), "{body}");
        let dvt = body["cards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["source"]["topic"]["code"] == "dvt-rule-out")
            .expect("a DVT card");
        let detail = dvt["detail"].as_str().unwrap();
        let unread_line = detail
            .lines()
            .find(|l| l.contains("could not be read"))
            .unwrap_or_default();
        assert!(unread_line.contains(line), "{unread}: {detail}");
    }
}

/// A patient whose cramps are the reason for today's visit, with one
/// dialysis visit, one inpatient stay and a routine check-up on file.
fn visits() -> Vec<Value> {
    let day = |days_ago: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days_ago))
            .format("%Y-%m-%d")
            .to_string()
    };
    let encounter = |id: &str,
                     class: &str,
                     kind: Value,
                     reason: Value,
                     from: String,
                     to: String| {
        json!({"resourceType": "Encounter", "id": id, "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class},
               "type": kind, "reasonCode": reason, "subject": {"reference": "Patient/p1"},
               "period": {"start": format!("{from}T09:00:00Z"), "end": format!("{to}T17:00:00Z")}})
    };
    let snomed = |code: &str, display: &str| json!([{"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]}]);
    vec![
        patient(),
        encounter(
            "today",
            "AMB",
            snomed("185349003", "Encounter for check up"),
            json!([{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R25.2", "display": "Cramp and spasm"}]}]),
            day(0),
            day(0),
        ),
        encounter(
            "dialysis",
            "AMB",
            snomed("302497006", "Hemodialysis"),
            json!([]),
            day(3),
            day(3),
        ),
        encounter(
            "stay",
            "IMP",
            snomed("32485007", "Hospital admission"),
            json!([]),
            day(20),
            day(12),
        ),
        encounter(
            "check-up",
            "AMB",
            snomed("185349003", "Encounter for check up"),
            json!([]),
            day(40),
            day(40),
        ),
    ]
}

fn encounter_request(server: &str, encounter_id: Option<&str>) -> Value {
    let mut request = request(PATIENT_ID, None, Some(server));
    if let Some(id) = encounter_id {
        request["context"]["encounterId"] = json!(id);
    }
    request
}

#[tokio::test]
async fn the_current_encounter_is_read_by_id_and_past_ones_only_by_the_searches_the_rules_read() {
    let fhir = FhirServer::start(visits()).await;
    let url = fhir.url("");
    let app = spawn_app_with(move |s| s.fhir.allowed_servers = vec![url]).await;

    let body = assert_valid_cards(
        app.post_json(SERVICE, &encounter_request(&fhir.url(""), Some("today")))
            .await,
    )
    .await;
    // The cramps are documented only as the reason for the current visit.
    let risk = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "risk-factors")
        .unwrap_or_else(|| panic!("a risk-factors card: {body}"))
        .clone();
    let findings = risk["extension"]["cramp-cds"]["findings"].to_string();
    assert!(findings.contains("Encounter/dialysis"), "{findings}");
    assert!(!findings.contains("check-up"), "{findings}");
    assert!(incomplete_keys(&body).is_empty(), "{body}");

    let asked = fhir.asked.lock().unwrap().clone();
    let encounters: Vec<&String> = asked.iter().filter(|a| a.contains("/Encounter")).collect();
    assert!(
        encounters
            .iter()
            .any(|a| a.ends_with("/fhir/Encounter/today")),
        "{encounters:?}"
    );
    // Never every encounter of the patient: each search names what it wants.
    for search in encounters.iter().filter(|a| a.contains("Encounter?")) {
        assert!(
            ["class=", "type=", "reason-code="]
                .iter()
                .any(|p| search.contains(p)),
            "{search}"
        );
    }
}

#[tokio::test]
async fn without_an_encounter_in_context_the_current_encounter_key_does_not_apply() {
    let fhir = FhirServer::start(visits()).await;
    let url = fhir.url("");
    let app = spawn_app_with(move |s| s.fhir.allowed_servers = vec![url]).await;
    let body = assert_valid_cards(
        app.post_json(SERVICE, &encounter_request(&fhir.url(""), None))
            .await,
    )
    .await;
    // No cramps without the visit's reason: no cards, and nothing reported
    // missing for a key this call cannot have.
    assert_eq!(body["cards"], json!([]), "{body}");
    assert!(incomplete_keys(&body).is_empty(), "{body}");
    let asked = fhir.asked.lock().unwrap().clone();
    assert!(
        !asked.iter().any(|a| a.contains("/Encounter/")),
        "{asked:?}"
    );

    // The same without a fhirServer: not reported either.
    let mut sent = patient_view_request();
    sent["prefetch"]["visitsByType"] = json!(null);
    let body = assert_valid_cards(app.post_json(SERVICE, &sent).await).await;
    assert!(
        !incomplete_keys(&body).contains(&"encounter".to_owned()),
        "{body}"
    );
}

#[tokio::test]
async fn entries_fetched_from_the_fhir_server_do_not_count_against_the_request_entry_limit() {
    // 30 procedures fetched; the request itself sends 4 entries; the
    // request's limit is 25: the fetched pages have their own limit.
    let fhir = FhirServer::start(with_procedures(30)).await;
    let url = fhir.url("");
    let app = spawn_app_with(move |s| {
        s.fhir.allowed_servers = vec![url];
        s.limits.max_entries = 25;
    })
    .await;
    let body = assert_valid_cards(
        app.post_json(SERVICE, &without_procedures(Some(&fhir.url(""))))
            .await,
    )
    .await;
    assert!(incomplete_keys(&body).is_empty(), "{body}");
    assert!(!body["cards"].as_array().unwrap().is_empty(), "{body}");
}
