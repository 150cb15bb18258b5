//! The stages of a hook call, benchmarked: request parsing and validation,
//! record building, rule evaluation, card rendering, the whole call, and a
//! full Synthea patient as /analyze reads it. Shared by benches/evaluate.rs
//! (time) and benches/allocations.rs (allocations).

use std::sync::{Arc, OnceLock};

use chrono::Utc;
use cramp_cds::application::{self, Chart, Drafts, Pipeline};
use cramp_cds::engine::{Engine, Evaluation};
use cramp_cds::knowledge::KnowledgeBase;
use cramp_cds::protocol::discovery::ServiceCatalog;
use cramp_cds::protocol::request::{parse_hook_request, Conformance};
use cramp_cds::protocol::Hook;
use cramp_cds::record::PatientRecord;
use cramp_cds::rules::RuleSettings;
use cramp_cds::validation::Schemas;
use divan::{black_box, Bencher};
use serde_json::{json, Value};

use crate::fhir_json::fhir_order;

struct Fixture {
    engine: Engine,
    schemas: Schemas,
    catalog: ServiceCatalog,
    small: String,
    medium: String,
    full_patient: Option<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let kb = KnowledgeBase::embedded().unwrap();
        let full_patient = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/samples/synthea/Augustina561_Gibson10_7cffc0c9-6c87-70d6-09a4-6ede378e9b0a.json"
        ))
        .ok()
        .map(|text| with_cramps(&text));
        Fixture {
            engine: Engine::new(Arc::new(kb), RuleSettings::default()).unwrap(),
            schemas: Schemas::compile().unwrap(),
            catalog: ServiceCatalog::embedded(),
            small: request_with_labs(6),
            medium: request_with_labs(260),
            full_patient,
        }
    })
}

fn with_cramps(bundle: &str) -> String {
    let mut bundle: Value = serde_json::from_str(bundle).unwrap();
    bundle["entry"].as_array_mut().unwrap().push(json!({"resource": {
        "resourceType": "Condition", "id": "bench-cramp",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "449918009", "display": "Cramp in lower leg"}]}
    }}));
    fhir_order(&bundle)
}

/// A realistic patient-view request: cramps, a diuretic, a statin and
/// `labs` potassium results (about 380 bytes each).
fn request_with_labs(labs: usize) -> String {
    fhir_order(&request_value(labs))
}

fn request_value(labs: usize) -> Value {
    let observations: Vec<Value> = (0..labs)
        .map(|i| json!({"resource": {
            "resourceType": "Observation", "id": format!("k{i}"), "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium [Moles/volume] in Serum or Plasma"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": format!("2026-{:02}-{:02}T08:00:00Z", 1 + i % 11, 1 + i % 27),
            "valueQuantity": {"value": 3.2 + (i % 10) as f64 / 10.0, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
        }}))
        .collect();
    let medicine = |id: &str, code: &str, display: &str| {
        json!({"resource": {
            "resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": display}]},
            "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-02-01"
        }})
    };
    json!({
        "hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1948-05-02", "gender": "female"},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
                "resourceType": "Condition", "id": "cramp",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R25.2", "display": "Cramp and spasm"}]},
                "subject": {"reference": "Patient/p1"}, "recordedDate": "2026-03-01"}}]},
            "medicationRequests": {"resourceType": "Bundle", "type": "searchset", "entry": [
                medicine("furosemide", "313988", "furosemide 40 MG Oral Tablet"),
                medicine("simvastatin", "314231", "simvastatin 10 MG Oral Tablet")]},
            "observations": {"resourceType": "Bundle", "type": "searchset", "entry": observations},
            "procedures": null, "inpatientEncounters": null, "visitsByReason": null, "visitsByType": null, "medicationStatements": null
        }
    })
}

fn build_record(request: &str) -> PatientRecord<'_> {
    let fixture = fixture();
    let parsed = parse_hook_request(request.as_bytes(), &fixture.schemas).unwrap();
    let service = fixture.catalog.get("leg-cramps-patient-view").unwrap();
    let mut record =
        cramp_cds::prefetch::resolve(service, parsed.prefetch, &[], &parsed.context_values)
            .unwrap();
    record.keep_patient(parsed.context.patient_id.as_deref());
    record
}

fn evaluation<'a>(record: &'a PatientRecord<'a>) -> Evaluation<'a> {
    application::patient_view(record, Utc::now())
}

fn pipeline() -> Pipeline<'static> {
    let fixture = fixture();
    Pipeline {
        engine: &fixture.engine,
        catalog: &fixture.catalog,
        schemas: &fixture.schemas,
        conformance: Conformance::Tolerant,
        max_entries: 50_000,
    }
}

const SIZES: &[&str] = &["4KB", "100KB"];

fn request_of(size: &str) -> &'static str {
    match size {
        "4KB" => &fixture().small,
        _ => &fixture().medium,
    }
}

/// Benches `work` over the request of this size, counting its bytes.
fn over_request<O>(bencher: Bencher, size: &str, work: impl Fn(&'static [u8]) -> O + Sync) {
    let request = request_of(size);
    bencher
        .counter(divan::counter::BytesCount::of_str(request))
        .bench(|| work(black_box(request.as_bytes())));
}

#[divan::bench(args = SIZES)]
fn parse_and_validate(bencher: Bencher, size: &str) {
    over_request(bencher, size, |request| {
        parse_hook_request(request, &fixture().schemas)
            .unwrap()
            .prefetch
            .len()
    });
}

/// The floor under `parse_and_validate`: the same bytes lexed with
/// `IgnoredAny` (every byte checked, nothing built), as the ceiling server
/// (examples/ceiling.rs) reads them. The gap is what building typed FHIR costs.
#[divan::bench(args = SIZES)]
fn lex_only(bencher: Bencher, size: &str) {
    over_request(bencher, size, |request| {
        serde_json::from_slice::<serde::de::IgnoredAny>(request).is_ok()
    });
}

#[divan::bench(args = SIZES)]
fn build_patient_record(bencher: Bencher, size: &str) {
    let request = request_of(size);
    let service = fixture().catalog.get("leg-cramps-patient-view").unwrap();
    let context = parse_hook_request(request.as_bytes(), &fixture().schemas)
        .unwrap()
        .context_values;
    bencher
        .with_inputs(|| {
            parse_hook_request(request.as_bytes(), &fixture().schemas)
                .unwrap()
                .prefetch
        })
        .bench_values(|prefetch| {
            let mut record =
                cramp_cds::prefetch::resolve(service, black_box(prefetch), &[], &context).unwrap();
            record.keep_patient(Some("p1"));
            record.stats.read
        });
}

#[divan::bench(args = SIZES)]
fn evaluate_rules(bencher: Bencher, size: &str) {
    let record = build_record(request_of(size));
    bencher.bench(|| {
        fixture()
            .engine
            .assess(black_box(&evaluation(&record)))
            .risk_factors
            .is_empty()
    });
}

#[divan::bench(args = SIZES)]
fn render_cards(bencher: Bencher, size: &str) {
    let record = build_record(request_of(size));
    let assessment = fixture().engine.assess(&evaluation(&record));
    bencher.bench(|| {
        fixture()
            .engine
            .renderer()
            .render(black_box(&assessment))
            .len()
    });
}

#[divan::bench(args = SIZES)]
fn whole_hook_call(bencher: Bencher, size: &str) {
    over_request(bencher, size, |request| {
        let answer = application::answer_without_fetching(
            &pipeline(),
            "leg-cramps-patient-view",
            request,
            Utc::now(),
        )
        .unwrap();
        serde_json::to_vec(&answer.response).unwrap().len()
    });
}

/// A full Synthea patient (2.4 MB, about 2,000 resources) as /analyze reads it.
#[divan::bench]
fn full_synthea_patient(bencher: Bencher) {
    let Some(bundle) = fixture().full_patient.as_deref() else {
        eprintln!("skipped: ../shared/samples is not beside this checkout");
        return;
    };
    bencher
        .counter(divan::counter::BytesCount::of_str(bundle))
        .bench(|| {
            let chart = Chart {
                hook: Hook::PatientView,
                bundle: black_box(bundle),
                drafts: Drafts::InBundle,
                selections: &[],
                encounter_id: None,
                patient_id: None,
                now: Utc::now(),
            };
            application::evaluate_chart(&fixture().engine, &chart)
                .response
                .cards
                .len()
        });
}
