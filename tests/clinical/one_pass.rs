//! A hook request in well-formed FHIR JSON is read in one typed pass; any
//! other is read again entry by entry. Both readings must give the same
//! patient record, down to every element the rules read.

use std::path::Path;
use std::sync::OnceLock;

use cramp_cds::protocol::discovery::ServiceCatalog;
use cramp_cds::protocol::request::{parse_hook_request, Prefetched};
use cramp_cds::record::{record_from, PatientRecord};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::fhir_json::fhir_order;
use crate::hook_request::with_conditions;
use crate::properties::{any_json, paths, replace_at};

#[derive(Deserialize)]
struct RecordMember<'a> {
    #[serde(borrow)]
    record: &'a RawValue,
}

/// The bundle sent as the `conditions` prefetch of a patient-view call:
/// its record, and whether the single pass read it. `None` when the request
/// is refused or its required keys are not satisfied.
fn read_as_hook_request(body: &str) -> Option<(PatientRecord<'_>, bool)> {
    let catalog = ServiceCatalog::embedded();
    let service = catalog.get("leg-cramps-patient-view").unwrap();
    let request = parse_hook_request(body.as_bytes(), crate::schemas()).ok()?;
    let read_in_one_pass = matches!(request.prefetch["conditions"], Some(Prefetched::Read(_)));
    let mut record =
        cramp_cds::prefetch::resolve(service, request.prefetch, &[], &request.context_values)
            .ok()?;
    // The keys this request did not send are about the request, not about
    // how its resources were read.
    record.unread.clear();
    Some((record, read_in_one_pass))
}

fn assert_same_record(bundle: &str, name: &str) -> bool {
    let body = with_conditions(bundle);
    let (record, read_in_one_pass) = read_as_hook_request(&body).expect("a valid hook request");
    assert_eq!(
        format!("{record:?}"),
        format!("{:?}", record_from([bundle])),
        "{name}: the two readings differ"
    );
    read_in_one_pass
}

#[test]
fn every_scenario_reads_the_same_in_one_pass_as_entry_by_entry() {
    let mut one_pass = 0;
    let files = crate::scenario_files();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let member: RecordMember = serde_json::from_str(&text).unwrap();
        if assert_same_record(member.record.get(), &name(path)) {
            one_pass += 1;
        }
    }
    // Scenarios with a malformed resource on purpose take the careful path.
    assert!(
        one_pass * 10 >= files.len() * 9,
        "only {one_pass} of {} scenarios were read in one pass",
        files.len()
    );
}

#[test]
fn every_sample_bundle_reads_the_same_in_one_pass_as_entry_by_entry() {
    let Some(files) = crate::samples::sample_files() else {
        return;
    };
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            assert_same_record(&text, &name(path)),
            "{}: not read in one pass",
            name(path)
        );
    }
}

/// serde_json's own maps sort their keys, so `resourceType` stands after
/// `code`, `id` ...: every resource's members are then kept raw until its
/// type is known, and read again from there.
#[test]
fn resources_read_the_same_wherever_resource_type_stands() {
    let mut bundles: Vec<(String, String)> = Vec::new();
    for path in crate::scenario_files() {
        let scenario: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        bundles.push((name(&path), scenario["record"].to_string()));
    }
    for path in crate::samples::sample_files().unwrap_or_default() {
        bundles.push((name(&path), std::fs::read_to_string(&path).unwrap()));
    }
    for (name, bundle) in &bundles {
        let sorted = serde_json::from_str::<serde_json::Value>(bundle)
            .unwrap()
            .to_string();
        assert!(
            !sorted.contains(r#"{"resourceType":"Condition""#),
            "{name}: keys are not sorted"
        );
        assert_eq!(
            format!("{:?}", record_from([sorted.as_str()])),
            format!("{:?}", record_from([bundle.as_str()])),
            "{name}"
        );
    }
}

#[test]
fn a_malformed_resource_sends_the_request_the_careful_way_and_costs_only_itself() {
    let bundle = r#"{"resourceType":"Bundle","type":"searchset","entry":[
        {"resource":{"resourceType":"Condition","id":"c1","code":{"text":"Leg cramps"}}},
        {"resource":{"resourceType":"Condition","id":"c2","code":"not a concept"}},
        {"resource":{"id":"c3","resourceType":"Condition","code":{"text":"Leg swelling"}}}
    ]}"#;
    let body = with_conditions(bundle);
    let (record, one_pass) = read_as_hook_request(&body).expect("a valid hook request");
    let read: Vec<&str> = record
        .conditions
        .iter()
        .map(|c| c.reference.as_str())
        .collect();
    assert_eq!(read, ["Condition/c1", "Condition/c3"]);
    assert_eq!(record.stats.malformed, 1);
    assert!(!one_pass);
    let well_formed = bundle.replace(
        r#""code":"not a concept""#,
        r#""code":{"text":"Calf pain"}"#,
    );
    assert!(assert_same_record(
        &well_formed,
        "resourceType not first in one entry"
    ));
}

fn scenario_records() -> &'static [Value] {
    static RECORDS: OnceLock<Vec<Value>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        crate::scenario_files()
            .iter()
            .map(|path| {
                let scenario: Value =
                    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
                scenario["record"].clone()
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any value anywhere in a scenario's bundle (a wrong type in an element
    /// the rules read, an odd resourceType, a missing part): the single pass
    /// reads it as the careful reader does, or leaves it to the careful reader.
    #[test]
    fn any_mutation_of_a_bundle_reads_the_same_both_ways(
        scenario in any::<prop::sample::Index>(),
        choice in any::<prop::sample::Index>(),
        replacement in any_json(),
    ) {
        let mut bundle = scenario.get(scenario_records()).clone();
        let mut all = Vec::new();
        paths(&bundle, Vec::new(), &mut all);
        let path = choice.get(&all).clone();
        replace_at(&mut bundle, &path, replacement);
        let text = fhir_order(&bundle);
        let body = with_conditions(&text);
        // A prefetch value the request schema refuses never reaches a reader.
        let Some((record, _)) = read_as_hook_request(&body) else { return Ok(()) };
        prop_assert_eq!(format!("{record:?}"), format!("{:?}", record_from([text.as_str()])), "mutation at {:?}", path);
    }
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}
