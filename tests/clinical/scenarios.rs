//! Each tests/scenarios/*.json is a patient, a hook, a fixed evaluation time
//! and the cards and findings it must (and must not) produce.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use cramp_cds::application::{self, Chart, Drafts};
use cramp_cds::protocol::response::{ActionKind, Card, CdsResponse};
use cramp_cds::protocol::Hook;
use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use serde_json::Value;

#[path = "../support/card_budget.rs"]
mod card_budget;
#[path = "../support/scenario_files.rs"]
mod scenario_files;
#[path = "../support/engine.rs"]
mod shared;

use scenario_files::scenario_files;
use shared::{assert_schema_valid, engine};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Scenario {
    description: String,
    hook: Hook,
    now: DateTime<Utc>,
    encounter_id: Option<String>,
    #[serde(default)]
    selections: Vec<String>,
    draft_orders: Option<Value>,
    record: Value,
    expect: Expectations,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Expectations {
    cards: BTreeSet<String>,
    #[serde(default)]
    indicators: BTreeMap<String, String>,
    #[serde(default)]
    findings: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    absent_findings: Vec<String>,
    #[serde(default)]
    evidence: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    suggestions: BTreeMap<String, Vec<ExpectedSuggestion>>,
    /// The evidence a finding lists first (r2: the newest, most telling).
    #[serde(default)]
    first_evidence: BTreeMap<String, String>,
    /// Per finding code: the evidence shown as a possibly outdated order (§3).
    #[serde(default)]
    possibly_outdated: BTreeMap<String, BTreeSet<String>>,
    /// Per card: texts the detail holds, in this order.
    #[serde(default)]
    detail: BTreeMap<String, Vec<String>>,
    /// Per card: texts the detail must not hold.
    #[serde(default)]
    detail_excludes: BTreeMap<String, Vec<String>>,
    /// Per card: texts the summary holds.
    #[serde(default)]
    summary: BTreeMap<String, Vec<String>>,
    /// Per card: texts the summary must not hold (case-insensitive).
    #[serde(default)]
    summary_excludes: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpectedSuggestion {
    code: Option<String>,
    delete: Option<String>,
    #[serde(default)]
    is_recommended: bool,
}

/// Every scenario is one patient's chart, evaluated as a hook call for them.
const PATIENT_ID: &str = "p1";

fn run(scenario: &Scenario) -> CdsResponse {
    let record = scenario.record.to_string();
    let drafts = scenario.draft_orders.as_ref().map(Value::to_string);
    application::evaluate_chart(
        engine(),
        &Chart {
            hook: scenario.hook,
            bundle: &record,
            drafts: Drafts::Separate(drafts.as_deref()),
            selections: &scenario.selections,
            encounter_id: scenario.encounter_id.as_deref(),
            patient_id: Some(PATIENT_ID),
            now: scenario.now,
        },
    )
    .response
}

fn topic(card: &Card) -> &str {
    &card.source.topic.code
}

/// Every way the response differs from the expectations.
fn differences(expect: &Expectations, response: &CdsResponse) -> Vec<String> {
    let mut problems = Vec::new();
    let produced: BTreeSet<String> = response.cards.iter().map(|c| topic(c).to_owned()).collect();
    if produced != expect.cards {
        problems.push(format!(
            "cards: expected {:?}, got {produced:?}",
            expect.cards
        ));
    }
    if produced.len() != response.cards.len() {
        problems.push("more than one card of a topic".into());
    }
    for card in &response.cards {
        if card.source.url.is_none() {
            problems.push(format!("{}: no source url", topic(card)));
        }
        // §6 r2: the chart never shows the bedside items, so no card may call DVT unlikely.
        if topic(card) == "dvt-rule-out" && card.detail.to_lowercase().contains("dvt unlikely") {
            problems.push("dvt-rule-out: the detail says \"DVT unlikely\" from chart data".into());
        }
    }
    let card = |name: &str| response.cards.iter().find(|c| topic(c) == name);
    for (name, indicator) in &expect.indicators {
        let got = card(name).map(|c| serde_json::to_value(c.indicator).unwrap());
        if got.as_ref().and_then(Value::as_str) != Some(indicator.as_str()) {
            problems.push(format!(
                "{name}: indicator expected {indicator}, got {got:?}"
            ));
        }
    }
    for (name, codes) in &expect.findings {
        let got: BTreeSet<String> = card(name)
            .map(|c| c.finding_codes().map(str::to_owned).collect())
            .unwrap_or_default();
        if &got != codes {
            problems.push(format!("{name}: findings expected {codes:?}, got {got:?}"));
        }
    }
    let all_findings: Vec<_> = response
        .cards
        .iter()
        .flat_map(|c| c.extension.cramp_cds.findings.iter())
        .collect();
    for code in &expect.absent_findings {
        if all_findings.iter().any(|f| &f.code == code) {
            problems.push(format!("finding {code} must be absent"));
        }
    }
    for (code, references) in &expect.evidence {
        let got: BTreeSet<String> = all_findings
            .iter()
            .filter(|f| &f.code == code)
            .flat_map(|f| f.evidence.iter().cloned())
            .collect();
        if &got != references {
            problems.push(format!(
                "evidence of {code}: expected {references:?}, got {got:?}"
            ));
        }
    }
    for (code, reference) in &expect.first_evidence {
        let got = all_findings
            .iter()
            .find(|f| &f.code == code)
            .and_then(|f| f.evidence.first());
        if got != Some(reference) {
            problems.push(format!(
                "first evidence of {code}: expected {reference}, got {got:?}"
            ));
        }
    }
    for (code, references) in &expect.possibly_outdated {
        let got: BTreeSet<String> = all_findings
            .iter()
            .filter(|f| &f.code == code)
            .flat_map(|f| f.possibly_outdated.iter().cloned())
            .collect();
        if &got != references {
            problems.push(format!(
                "possibly outdated {code}: expected {references:?}, got {got:?}"
            ));
        }
    }
    if expect.possibly_outdated.is_empty() {
        for finding in &all_findings {
            if !finding.possibly_outdated.is_empty() {
                problems.push(format!(
                    "{}: unexpected possibly outdated {:?}",
                    finding.code, finding.possibly_outdated
                ));
            }
        }
    }
    for (name, texts) in &expect.detail {
        let detail = card(name).map(|c| c.detail.as_str()).unwrap_or_default();
        let mut from = 0;
        for text in texts {
            match detail[from..].find(text.as_str()) {
                Some(at) => from += at + text.len(),
                None => problems.push(format!(
                    "{name}: detail lacks {text:?} (in order) in:\n{detail}"
                )),
            }
        }
    }
    for (name, texts) in &expect.detail_excludes {
        let detail = card(name)
            .map(|c| c.detail.to_lowercase())
            .unwrap_or_default();
        for text in texts.iter().filter(|t| detail.contains(&t.to_lowercase())) {
            problems.push(format!("{name}: detail must not say {text:?}"));
        }
    }
    for (name, texts) in &expect.summary {
        let summary = card(name).map(|c| c.summary.as_str()).unwrap_or_default();
        for text in texts.iter().filter(|t| !summary.contains(t.as_str())) {
            problems.push(format!("{name}: summary {summary:?} lacks {text:?}"));
        }
    }
    for (name, texts) in &expect.summary_excludes {
        let summary = card(name)
            .map(|c| c.summary.to_lowercase())
            .unwrap_or_default();
        for text in texts.iter().filter(|t| summary.contains(&t.to_lowercase())) {
            problems.push(format!("{name}: summary {summary:?} must not say {text:?}"));
        }
    }
    for (name, expected) in &expect.suggestions {
        let got: Vec<ExpectedSuggestion> = card(name)
            .map(|c| {
                c.suggestions
                    .iter()
                    .map(|s| {
                        let action = &s.actions[0];
                        let code = action
                            .resource
                            .as_ref()
                            .and_then(|r| r["code"]["coding"][0]["code"].as_str())
                            .map(str::to_owned);
                        let delete = (action.kind == ActionKind::Delete)
                            .then(|| action.resource_id.clone())
                            .flatten();
                        ExpectedSuggestion {
                            code,
                            delete,
                            is_recommended: s.is_recommended,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        if &got != expected {
            problems.push(format!(
                "{name}: suggestions expected {expected:?}, got {got:?}"
            ));
        }
    }
    problems
}

/// One scenario file: its cards, schema-valid, exactly as it expects.
fn check(file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let scenario: Scenario = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let response = run(&scenario);
    let name = file.display().to_string();
    assert_schema_valid(&response, &name);
    let mut problems = differences(&scenario.expect, &response);
    // Issue 19: every card a clinician is shown fits the length budget.
    for card in &response.cards {
        for problem in card_budget::over_budget(card) {
            problems.push(format!(
                "{}: over the length budget: {problem}\n{}",
                topic(card),
                card.detail
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    {}",
            scenario.description,
            problems.join("\n    ")
        ))
    }
}

/// The oracle itself must cover every finding the knowledge base can report,
/// positively and negatively, so a rule cannot silently go untested.
fn scenarios_cover_every_finding_both_ways() -> Result<(), String> {
    let mut positive = BTreeSet::new();
    let mut negative = BTreeSet::new();
    for file in scenario_files() {
        let scenario: Scenario =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for codes in scenario.expect.findings.values() {
            positive.extend(codes.iter().cloned());
        }
        negative.extend(scenario.expect.absent_findings.iter().cloned());
    }
    let kb = engine().knowledge();
    let reportable = kb
        .findings()
        .map(|f| f.code.to_string())
        .filter(|c| c != "bakers-cyst" && c != "leg-injury");
    let missing: Vec<String> = reportable
        .filter(|code| !positive.contains(code) || !negative.contains(code))
        .map(|code| {
            format!(
                "{code} (positive: {}, negative: {})",
                positive.contains(&code),
                negative.contains(&code)
            )
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "findings without a positive and a negative scenario: {missing:#?}"
        ))
    }
}

/// One test per scenario file, named by it (`cargo test --test scenarios
/// dvt-` runs the DVT ones), and the suite-wide checks.
fn main() {
    let arguments = Arguments::from_args();
    let files = scenario_files();
    let count = files.len();
    let mut trials: Vec<Trial> = files
        .into_iter()
        .map(|file| {
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            Trial::test(name, move || check(&file).map_err(Failed::from))
        })
        .collect();
    trials.push(Trial::test("suite::every_finding_both_ways", || {
        scenarios_cover_every_finding_both_ways().map_err(Failed::from)
    }));
    trials.push(Trial::test("suite::at_least_60_scenarios", move || {
        if count >= 60 {
            Ok(())
        } else {
            Err(format!("the scenario suite is incomplete: {count} files").into())
        }
    }));
    libtest_mimic::run(&arguments, trials).exit();
}
