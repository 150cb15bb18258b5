//! Properties over generated input: whatever a client sends, the request
//! path answers (a response or client issues) without panicking; whatever a
//! record holds, every card the engine makes is valid and cites evidence.

use chrono::{Duration, TimeZone, Utc};
use cramp_cds::application::{self, Drafts, Pipeline};
use cramp_cds::protocol::discovery::ServiceCatalog;
use cramp_cds::protocol::request::Conformance;
use cramp_cds::protocol::Hook;
use proptest::prelude::*;
use serde_json::{json, Value};

pub(crate) fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("Bundle"),
            Just("Patient"),
            Just("Condition"),
            Just("OperationOutcome"),
            Just("2026-01-01")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,8}",
                    Just("resourceType".to_owned()),
                    Just("entry".to_owned()),
                    Just("code".to_owned())
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn template() -> Value {
    json!({
        "hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01"},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Condition", "id": "c",
                "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R25.2"}]}}}]},
            "medicationRequests": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "MedicationRequest",
                "id": "m", "status": "active", "medicationCodeableConcept": {"text": "furosemide 40 mg"}}}]},
            "observations": null
        }
    })
}

/// Every path (as a list of keys/indices) in a JSON tree.
pub(crate) fn paths(value: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(members) => members
            .iter()
            .for_each(|(k, v)| paths(v, [prefix.clone(), vec![k.clone()]].concat(), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| paths(v, [prefix.clone(), vec![i.to_string()]].concat(), out)),
        _ => {}
    }
}

pub(crate) fn replace_at(value: &mut Value, path: &[String], replacement: Value) {
    let mut target = value;
    for key in path {
        target = match target {
            Value::Object(members) => members.get_mut(key).unwrap(),
            Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
            _ => unreachable!("paths only walk containers"),
        };
    }
    *target = replacement;
}

/// The request path as the HTTP handler runs it, minus HTTP.
fn answer(body: &[u8]) -> Option<cramp_cds::protocol::response::CdsResponse> {
    static CATALOG: std::sync::OnceLock<ServiceCatalog> = std::sync::OnceLock::new();
    let pipeline = Pipeline {
        engine: crate::engine(),
        catalog: CATALOG.get_or_init(ServiceCatalog::embedded),
        schemas: crate::schemas(),
        conformance: Conformance::Tolerant,
        max_entries: 50_000,
    };
    application::answer_without_fetching(&pipeline, "leg-cramps-patient-view", body, Utc::now())
        .ok()
        .map(|answer| answer.response)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_mutation_of_a_request_is_answered_or_refused(choice in any::<prop::sample::Index>(), replacement in any_json()) {
        let mut request = template();
        let mut all = Vec::new();
        paths(&request, Vec::new(), &mut all);
        let path = choice.get(&all).clone();
        replace_at(&mut request, &path, replacement);
        if let Some(response) = answer(request.to_string().as_bytes()) {
            crate::assert_schema_valid(&response, &format!("mutation at {path:?}"));
        }
    }

    #[test]
    fn any_bytes_are_answered_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = answer(&bytes);
    }
}

/// Building blocks of a clinically busy record.
fn condition(id: &str, subject: &str, code: (&str, &str), status: &str, days_ago: i64) -> Value {
    let system = if code.0 == "icd" {
        "http://hl7.org/fhir/sid/icd-10-cm"
    } else {
        "http://snomed.info/sct"
    };
    let recorded = (Utc.with_ymd_and_hms(2026, 6, 15, 10, 0, 0).unwrap()
        - Duration::days(days_ago))
    .to_rfc3339();
    json!({"resourceType": "Condition", "id": id, "clinicalStatus": {"coding": [{"code": status}]},
           "code": {"coding": [{"system": system, "code": code.1}]}, "subject": {"reference": subject}, "recordedDate": recorded})
}

const CODES: &[(&str, &str)] = &[
    ("icd", "R25.2"),
    ("icd", "R22.41"),
    ("icd", "M79.661"),
    ("icd", "N18.4"),
    ("icd", "E11.9"),
    ("icd", "O26.891"),
    ("icd", "Z34.80"),
    ("icd", "C50.911"),
    ("icd", "I82.401"),
    ("icd", "Z86.718"),
    ("icd", "G81.90"),
    ("icd", "E87.6"),
    ("icd", "M71.21"),
    ("icd", "S82.001A"),
    ("icd", "Z79.01"),
    ("sct", "449918009"),
    ("sct", "449614009"),
    ("sct", "77386006"),
];
const MEDICINES: &[&str] = &[
    "furosemide 40 mg",
    "quinine sulfate 324 mg",
    "atorvastatin 20 mg",
    "warfarin 5 mg",
    "timolol eye drops",
    "prednisone 10 mg",
    "salmeterol inhaler",
    "paracetamol 500 mg",
];

/// One patient's generated chart.
#[derive(Debug, Clone)]
struct Chart {
    conditions: Vec<(usize, &'static str, i64)>,
    medicines: Vec<(usize, &'static str)>,
    age: u32,
}

fn any_chart() -> impl Strategy<Value = Chart> {
    (
        prop::collection::vec(
            (
                0..CODES.len(),
                prop_oneof![Just("active"), Just("resolved"), Just("inactive")],
                0i64..800,
            ),
            0..10,
        ),
        prop::collection::vec(
            (
                0..MEDICINES.len(),
                prop_oneof![Just("active"), Just("stopped"), Just("draft")],
            ),
            0..6,
        ),
        20u32..95,
    )
        .prop_map(|(conditions, medicines, age)| Chart {
            conditions,
            medicines,
            age,
        })
}

impl Chart {
    /// Bundle entries for the patient `id`, whose resources name them by `subject`.
    fn entries(&self, id: &str, subject: &str) -> Vec<Value> {
        let mut entries = vec![
            json!({"resource": {"resourceType": "Patient", "id": id, "birthDate": format!("{}-03-01", 2026 - self.age)}}),
        ];
        for (i, (code, status, days)) in self.conditions.iter().enumerate() {
            entries.push(json!({"resource": condition(&format!("{id}-c{i}"), subject, CODES[*code], status, *days)}));
        }
        for (i, (medicine, status)) in self.medicines.iter().enumerate() {
            entries.push(json!({"resource": {"resourceType": "MedicationRequest", "id": format!("{id}-m{i}"), "status": status,
                "intent": "order", "subject": {"reference": subject}, "medicationCodeableConcept": {"text": MEDICINES[*medicine]}}}));
        }
        entries
    }
}

fn evaluate_for_p1(text: &str, hook: Hook) -> cramp_cds::protocol::response::CdsResponse {
    application::evaluate_chart(
        crate::engine(),
        &application::Chart {
            hook,
            bundle: text,
            drafts: Drafts::InBundle,
            selections: &[],
            encounter_id: None,
            patient_id: Some("p1"),
            now: Utc.with_ymd_and_hms(2026, 6, 15, 10, 0, 0).unwrap(),
        },
    )
    .response
}

fn bundle(entries: Vec<Value>) -> String {
    json!({"resourceType": "Bundle", "type": "collection", "entry": entries}).to_string()
}

/// (topic, finding, evidence) of every card, sorted.
fn findings(
    response: &cramp_cds::protocol::response::CdsResponse,
) -> Vec<(String, String, Vec<String>)> {
    let mut all: Vec<_> = response
        .cards
        .iter()
        .flat_map(|c| {
            c.extension.cramp_cds.findings.iter().map(|f| {
                (
                    c.source.topic.code.clone(),
                    f.code.to_string(),
                    f.evidence.clone(),
                )
            })
        })
        .collect();
    all.sort();
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_card_from_any_record_is_valid_and_cites_evidence(
        chart in any_chart(),
        hook in prop_oneof![Just(Hook::PatientView), Just(Hook::OrderSelect), Just(Hook::OrderSign)],
    ) {
        let text = bundle(chart.entries("p1", "Patient/p1"));
        let response = evaluate_for_p1(&text, hook);
        crate::assert_schema_valid(&response, "generated record");
        for card in &response.cards {
            prop_assert!(card.summary.chars().count() < 140);
            prop_assert!(card.source.url.is_some());
            for finding in &card.extension.cramp_cds.findings {
                prop_assert!(!finding.evidence.is_empty(), "{} has no evidence", finding.code);
                prop_assert!(finding.evidence.iter().all(|e| text.contains(e.split('/').nth(1).unwrap())), "evidence outside the record");
            }
        }
    }

    #[test]
    fn another_patients_chart_in_the_record_changes_no_card(
        own in any_chart(),
        stranger in any_chart(),
        named_by_url in any::<bool>(),
        stranger_first in any::<bool>(),
        hook in prop_oneof![Just(Hook::PatientView), Just(Hook::OrderSelect), Just(Hook::OrderSign)],
    ) {
        let alone = findings(&evaluate_for_p1(&bundle(own.entries("p1", "Patient/p1")), hook));
        let subject = if named_by_url { "https://ehr.example.org/fhir/Patient/p2" } else { "Patient/p2" };
        let (mut entries, theirs) = (own.entries("p1", "Patient/p1"), stranger.entries("p2", subject));
        if stranger_first {
            entries.splice(0..0, theirs);
        } else {
            entries.extend(theirs);
        }
        prop_assert_eq!(findings(&evaluate_for_p1(&bundle(entries), hook)), alone);
    }
}
