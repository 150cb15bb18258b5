//! Card text reviewed as text (issue 19): every card of every example
//! patient and sample bundle fits the length budget a clinician
//! takes in at a glance, and the wording of the example patients' cards is
//! kept in snapshots, so any change of what a card says shows in a diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use cramp_cds::application::{self, Chart, Drafts};
use cramp_cds::protocol::response::CdsResponse;
use cramp_cds::protocol::Hook;
use serde_json::{json, Value};

use crate::card_budget::over_budget;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/examples")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a bundle as the console's /analyze does, at a fixed time (the
/// examples' `asOf` day, noon UTC) so that the text is stable.
fn evaluate(bundle: &Value, hook: Hook, now: DateTime<Utc>) -> CdsResponse {
    let text = bundle.to_string();
    application::evaluate_chart(
        crate::engine(),
        &Chart {
            hook,
            bundle: &text,
            drafts: Drafts::InBundle,
            selections: &[],
            encounter_id: None,
            patient_id: None,
            now,
        },
    )
    .response
}

/// (name, response) for every example patient in index.json and every
/// draft order on the CKD patient (who has documented cramps), as
/// tests/api/examples.rs sends them.
fn example_responses() -> Vec<(String, CdsResponse)> {
    let index = read_json(&examples_dir().join("index.json"));
    let as_of: NaiveDate = index["asOf"].as_str().unwrap().parse().unwrap();
    let now = as_of.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let mut responses = Vec::new();
    for patient in index["patients"].as_array().unwrap() {
        let file = patient["file"].as_str().unwrap();
        let hook: Hook = serde_json::from_value(patient["hook"].clone()).unwrap();
        let bundle = read_json(&examples_dir().join(file));
        responses.push((
            file.trim_end_matches(".json").to_owned(),
            evaluate(&bundle, hook, now),
        ));
    }
    let ckd = read_json(&examples_dir().join("cramps-ckd-low-potassium.json"));
    let patient_id = ckd["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .unwrap()["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for draft in index["draftOrders"].as_array().unwrap() {
        let file = draft["file"].as_str().unwrap();
        let mut order = read_json(&examples_dir().join(file));
        order["subject"] = json!({"reference": format!("Patient/{patient_id}")});
        let mut bundle = ckd.clone();
        bundle["entry"]
            .as_array_mut()
            .unwrap()
            .push(json!({"resource": order}));
        let name = format!(
            "order-sign-{}",
            file.trim_start_matches("draft-orders/")
                .trim_end_matches(".json")
        );
        responses.push((name, evaluate(&bundle, Hook::OrderSign, now)));
    }
    responses
}

/// The sample bundles with a documented cramp, as the sample tests evaluate
/// them (None when this checkout has no shared samples).
fn sample_responses() -> Option<Vec<(String, CdsResponse)>> {
    let files = crate::samples::sample_files()?;
    Some(
        files
            .iter()
            .map(|path| {
                let sample = crate::samples::load(path);
                let text = crate::samples::with_entries(
                    &sample,
                    vec![crate::samples::cramp_condition(&sample)],
                );
                let response =
                    crate::samples::evaluate(&text, Hook::PatientView, sample.last_visit);
                (sample.name.trim_end_matches(".json").to_owned(), response)
            })
            .collect(),
    )
}

fn check_budget(responses: &[(String, CdsResponse)], failures: &mut Vec<String>) -> usize {
    let mut cards = 0;
    for (name, response) in responses {
        for card in &response.cards {
            cards += 1;
            let problems = over_budget(card);
            if !problems.is_empty() {
                failures.push(format!(
                    "{name} {}: {}\n{}\n{}",
                    card.source.topic.code,
                    problems.join("; "),
                    card.summary,
                    card.detail
                ));
            }
        }
    }
    cards
}

#[test]
fn every_card_fits_the_length_budget() {
    let mut failures = Vec::new();
    // Every scenario's cards are checked by its own test (tests/scenarios).
    let examples = check_budget(&example_responses(), &mut failures);
    let samples = sample_responses()
        .map(|responses| check_budget(&responses, &mut failures))
        .unwrap_or_default();
    assert!(
        examples >= 8,
        "too few cards to mean anything: {examples} example cards"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cards over budget:\n\n{}",
        failures.len(),
        examples + samples,
        failures.join("\n\n")
    );
}

/// A response as a clinician reads it: per card the indicator, summary,
/// links' labels and detail; the suggestions' labels.
fn as_text(response: &CdsResponse) -> String {
    let mut text = String::new();
    if response.cards.is_empty() {
        text.push_str("(no cards)\n");
    }
    for card in &response.cards {
        let indicator = serde_json::to_value(card.indicator).unwrap();
        let _ = writeln!(
            text,
            "=== {} ({})",
            card.source.topic.code,
            indicator.as_str().unwrap()
        );
        let _ = writeln!(text, "summary: {}", card.summary);
        let labels: Vec<&str> = card.links.iter().map(|l| l.label.as_str()).collect();
        let _ = writeln!(text, "links: {}", labels.join(" | "));
        for suggestion in &card.suggestions {
            let recommended = if suggestion.is_recommended {
                " (recommended)"
            } else {
                ""
            };
            let _ = writeln!(text, "suggestion: {}{recommended}", suggestion.label);
        }
        let findings: Vec<&str> = card.finding_codes().collect();
        let _ = writeln!(text, "findings: {}", findings.join(", "));
        let _ = writeln!(text, "detail:\n{}\n", card.detail);
    }
    text
}

#[test]
fn example_cards_read_as_reviewed() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, response) in example_responses() {
            insta::assert_snapshot!(format!("example-{name}"), as_text(&response));
        }
        if let Some(samples) = sample_responses() {
            for (name, response) in samples {
                insta::assert_snapshot!(format!("sample-{name}"), as_text(&response));
            }
        }
    });
}
