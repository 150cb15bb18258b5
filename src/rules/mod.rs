//! The rules of clinical-rules.md. They read a patient record and the hook
//! context and return findings, each with its evidence; they never see HTTP
//! and never write card text (see crate::cards).

pub mod clinical;
mod cramps;
mod dvt;
pub mod labs;
mod medications;
pub use medications::Currency;
mod risk_factors;
mod unread;

pub use unread::{Part, Unchecked, WORK_UP};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use foldhash::HashSet;

use crate::fhir::model::{CodeableConcept, Condition};
use crate::fhir::time::age_in_years;
use crate::knowledge::{
    Category, FindingCode, KnowledgeBase, KnowledgeError, Memberships, ValueSetId,
};
use crate::protocol::Hook;
use crate::record::{MedicationUse, PatientRecord};
use clinical::{
    condition_date, condition_is_active, condition_is_credible, condition_is_resolved, day,
    inpatient_stay, observation_counts, observation_date, procedure_date, procedure_happened,
    within,
};
use labs::LowBecause;

pub use dvt::{DvtAssessment, DvtNextStep, CHART_WELLS_ITEMS};

/// Every finding code the rules name themselves (the others come from the
/// knowledge: drug classes, labs). Rules::new refuses knowledge that lacks
/// one, and a debug assertion refuses a rule that reports a code not listed
/// here, so a typo fails the tests instead of printing a raw code.
pub const RULE_FINDINGS: &[&str] = &[
    "active-cancer",
    "active-dvt",
    "anticoagulated",
    "bakers-cyst",
    "cirrhosis",
    "d-dimer-positive",
    "dehydration",
    "diabetes",
    "dialysis",
    "hypocalcemia",
    "hypokalemia",
    "hypomagnesemia",
    "hyponatremia",
    "hypothyroidism",
    "immobilization",
    "kidney-disease",
    "leg-cramps",
    "leg-injury",
    "leg-pain",
    "leg-swelling",
    "muscle-disease",
    "neuropathy",
    "older-age",
    "peripheral-artery-disease",
    "postpartum",
    "pregnancy",
    "previous-dvt",
    "quinine",
    "recent-surgery",
    "varicose-veins",
];

/// Windows of clinical-rules.md, in days.
const CRAMP_RECORDED_WINDOW: i64 = 365;
const PREGNANCY_STATUS_WINDOW: i64 = 280;
/// r2: a pregnancy episode is ongoing while its start is within 42 weeks.
const PREGNANCY_EPISODE_WINDOW: i64 = 294;
const POSTPARTUM_WINDOW: i64 = 42;
const DEHYDRATION_WINDOW: i64 = 30;
/// r2: an albumin within 7 days either side adjusts a total calcium.
const ALBUMIN_WINDOW: i64 = 7;
const DIALYSIS_WINDOW: i64 = 90;
const LAB_WINDOW: i64 = 90;
const DVT_SYMPTOM_WINDOW: i64 = 30;
const IMMOBILISATION_WINDOW: i64 = 28;
const SURGERY_WINDOW: i64 = 84;
const INPATIENT_STAY_DAYS: i64 = 3;
const LEG_INJURY_WINDOW: i64 = 30;

/// What the rules are given: the record, the hook and its context.
pub struct HookInput<'a> {
    pub hook: Hook,
    pub record: &'a PatientRecord<'a>,
    /// The draft orders (order-select / order-sign), as medication uses.
    pub draft_orders: &'a [MedicationUse<'a>],
    /// order-select: the "Type/id" of the orders just selected.
    pub selections: &'a [String],
    pub encounter_id: Option<&'a str>,
    /// context.patientId: whom the DVT orders are for (a posted Bundle has
    /// none, and its Patient is used).
    pub patient_id: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// One thing found in the record, with the resources that show it and a
/// short, dated note per piece of evidence for the card text.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub code: FindingCode,
    pub evidence: Vec<String>,
    pub notes: Vec<String>,
    /// The measured value the card's summary quotes ("3.1 mmol/L" for a low
    /// potassium, "72" for age), when the finding has one.
    pub value: Option<String>,
    /// Per piece of evidence: how telling it is (higher first) and when.
    ranks: Vec<(u8, Option<DateTime<Utc>>)>,
}

impl Finding {
    fn new(code: FindingCode) -> Self {
        Self {
            code,
            evidence: Vec::new(),
            notes: Vec::new(),
            value: None,
            ranks: Vec::new(),
        }
    }

    /// r2 §5: the most telling evidence first (the most advanced stage),
    /// then the newest; undated last. Stable, so ties keep record order.
    fn sort_evidence(&mut self) {
        let newest_first = |a: &(u8, Option<DateTime<Utc>>), b: &(u8, Option<DateTime<Utc>>)| {
            b.0.cmp(&a.0).then(b.1.cmp(&a.1))
        };
        if self
            .ranks
            .windows(2)
            .all(|w| newest_first(&w[0], &w[1]).is_le())
        {
            return;
        }
        let evidence = std::mem::take(&mut self.evidence);
        let notes = std::mem::take(&mut self.notes);
        let ranks = std::mem::take(&mut self.ranks);
        let mut items: Vec<_> = evidence.into_iter().zip(notes).zip(ranks).collect();
        items.sort_by(|a, b| newest_first(&a.1, &b.1));
        for ((reference, note), rank) in items {
            self.evidence.push(reference);
            self.notes.push(note);
            self.ranks.push(rank);
        }
    }
}

/// Findings in first-found order, one per code, evidence merged.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    list: Vec<Finding>,
    /// (position in `list`, reference) of the evidence so far: a record
    /// with thousands of matching resources must not make merging quadratic.
    cited: HashSet<(usize, String)>,
}

impl Findings {
    fn add(&mut self, code: impl Into<FindingCode>, reference: &str, note: String) {
        self.add_ranked(code, reference, note, 0, None);
    }

    /// Evidence with the date it speaks for, so that cards show the newest first.
    fn add_dated(
        &mut self,
        code: impl Into<FindingCode>,
        reference: &str,
        note: String,
        at: Option<DateTime<Utc>>,
    ) {
        self.add_ranked(code, reference, note, 0, at);
    }

    /// `code`: a constant of the rules (no allocation) or a code the
    /// knowledge defines (shared, not copied).
    fn add_ranked(
        &mut self,
        code: impl Into<FindingCode>,
        reference: &str,
        note: String,
        rank: u8,
        at: Option<DateTime<Utc>>,
    ) {
        let code = code.into();
        debug_assert!(
            !code.is_static() || RULE_FINDINGS.contains(&code.as_str()),
            "the rules report '{code}', which RULE_FINDINGS does not list"
        );
        let at_position = match self.list.iter().position(|f| f.code == code) {
            Some(position) => position,
            None => {
                self.list.push(Finding::new(code));
                self.list.len() - 1
            }
        };
        if self.cited.insert((at_position, reference.to_owned())) {
            let finding = &mut self.list[at_position];
            finding.evidence.push(reference.to_owned());
            finding.notes.push(note);
            finding.ranks.push((rank, at));
        }
    }

    /// The value a finding's summary quotes (the first one set wins).
    fn set_value(&mut self, code: &str, value: String) {
        if let Some(finding) = self.list.iter_mut().find(|f| f.code == code) {
            finding.value.get_or_insert(value);
        }
    }

    /// Each finding's evidence, most telling and newest first.
    fn sort_evidence(&mut self) {
        for finding in &mut self.list {
            finding.sort_evidence();
        }
    }

    pub fn has(&self, code: &str) -> bool {
        self.list.iter().any(|f| f.code == code)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn as_slice(&self) -> &[Finding] {
        &self.list
    }

    /// Another set's findings, evidence and order kept.
    fn extend_from(&mut self, other: &Findings) {
        for finding in &other.list {
            for ((reference, note), (rank, at)) in finding
                .evidence
                .iter()
                .zip(&finding.notes)
                .zip(&finding.ranks)
            {
                self.add_ranked(finding.code.clone(), reference, note.clone(), *rank, *at);
            }
            if let Some(value) = &finding.value {
                self.set_value(&finding.code, value.clone());
            }
        }
    }

    fn evidence_of<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a str> {
        self.list
            .iter()
            .filter(move |f| f.code == code)
            .flat_map(|f| f.evidence.iter().map(String::as_str))
    }
}

/// Everything the rules concluded for one hook call.
#[derive(Debug, Default)]
pub struct Assessment {
    pub risk_factors: Findings,
    /// Culprits among current medicines (or the draft orders).
    pub culprits: Findings,
    /// Culprits among active medicines whose dates are over 13 months old
    /// (§3 r2): listed after the current ones, never in the summary.
    pub outdated_culprits: Findings,
    /// The culprit findings are about draft orders, not the medication list.
    pub culprits_are_drafts: bool,
    pub dvt: Option<DvtAssessment>,
    pub quinine: Option<QuinineAlert>,
    /// What a prefetch key the record lacks left unchecked (r2 §5).
    pub unchecked: Vec<Unchecked>,
}

#[derive(Debug)]
pub struct QuinineAlert {
    pub finding: Finding,
    /// The draft orders to remove (empty on patient-view).
    pub drafts: Vec<String>,
}

/// Risk-factor findings that come from an active Condition in a value set.
const CONDITION_RISK_FACTORS: &[(&str, &str)] = &[
    ("dialysis", "dialysis-condition"),
    ("kidney-disease", "kidney-disease"),
    ("diabetes", "diabetes"),
    ("neuropathy", "neuropathy"),
    ("peripheral-artery-disease", "peripheral-artery-disease"),
    ("varicose-veins", "varicose-veins"),
    ("muscle-disease", "muscle-disease"),
    ("dehydration", "dehydration"),
    ("cirrhosis", "cirrhosis"),
    ("hypothyroidism", "hypothyroidism"),
];

/// The value sets the rules use, resolved once at start-up.
struct ValueSetIds {
    leg_cramps: ValueSetId,
    pregnancy_condition: ValueSetId,
    pregnancy_status: ValueSetId,
    pregnancy_outcome: ValueSetId,
    postpartum_delivery: ValueSetId,
    postpartum_encounter: ValueSetId,
    dialysis_encounter: ValueSetId,
    albumin_lab: ValueSetId,
    pregnant_answer: ValueSetId,
    not_pregnant_answer: ValueSetId,
    dialysis_procedure: ValueSetId,
    condition_risks: Vec<(&'static str, ValueSetId)>,
    /// (index into kb.labs, lab value set, condition value set)
    labs: Vec<(usize, ValueSetId, ValueSetId)>,
    leg_swelling: ValueSetId,
    leg_pain: ValueSetId,
    active_dvt: ValueSetId,
    previous_vte: ValueSetId,
    active_cancer: ValueSetId,
    cancer_treatment: ValueSetId,
    chemotherapy_billing: ValueSetId,
    venous_duplex: ValueSetId,
    d_dimer: ValueSetId,
    paralysis: ValueSetId,
    immobilization_procedure: ValueSetId,
    major_surgery: ValueSetId,
    long_term_anticoagulant: ValueSetId,
    bakers_cyst: ValueSetId,
    leg_injury: ValueSetId,
}

#[derive(Debug, Clone, Copy)]
pub struct RuleSettings {
    /// older-age fires at this age or above.
    pub older_age_years: u32,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            older_age_years: 50,
        }
    }
}

pub struct Rules {
    kb: Arc<KnowledgeBase>,
    settings: RuleSettings,
    sets: ValueSetIds,
    quinine: usize,
    anticoagulant: usize,
}

/// Value-set memberships of each record resource, computed once per call.
struct Classified {
    conditions: Vec<Memberships>,
    observation_codes: Vec<Memberships>,
    observation_values: Vec<Memberships>,
    procedures: Vec<Memberships>,
}

impl Rules {
    /// Binds the rules to a knowledge base; fails if anything they need is missing.
    pub fn new(kb: Arc<KnowledgeBase>, settings: RuleSettings) -> Result<Self, KnowledgeError> {
        let vs = |name: &str| kb.value_sets.id(name);
        let sets = ValueSetIds {
            leg_cramps: vs("leg-cramps")?,
            pregnancy_condition: vs("pregnancy-condition")?,
            pregnancy_status: vs("pregnancy-status-observation")?,
            pregnancy_outcome: vs("pregnancy-outcome")?,
            postpartum_delivery: vs("postpartum-delivery")?,
            postpartum_encounter: vs("postpartum-encounter")?,
            dialysis_encounter: vs("dialysis-encounter")?,
            albumin_lab: vs("albumin-lab")?,
            pregnant_answer: vs("pregnancy-status-pregnant")?,
            not_pregnant_answer: vs("pregnancy-status-not-pregnant")?,
            dialysis_procedure: vs("dialysis-procedure")?,
            condition_risks: CONDITION_RISK_FACTORS
                .iter()
                .map(|(finding, set)| Ok((*finding, vs(set)?)))
                .collect::<Result<_, KnowledgeError>>()?,
            labs: kb
                .labs
                .iter()
                .enumerate()
                .map(|(i, lab)| Ok((i, vs(&lab.value_set)?, vs(&lab.condition_value_set)?)))
                .collect::<Result<_, KnowledgeError>>()?,
            leg_swelling: vs("leg-swelling")?,
            leg_pain: vs("leg-pain")?,
            active_dvt: vs("active-dvt")?,
            previous_vte: vs("previous-vte")?,
            active_cancer: vs("active-cancer")?,
            cancer_treatment: vs("cancer-treatment")?,
            chemotherapy_billing: vs("chemotherapy-billing")?,
            venous_duplex: vs("venous-duplex")?,
            d_dimer: vs("d-dimer-lab")?,
            paralysis: vs("paralysis")?,
            immobilization_procedure: vs("immobilization-procedure")?,
            major_surgery: vs("major-surgery-procedure")?,
            long_term_anticoagulant: vs("long-term-anticoagulant-condition")?,
            bakers_cyst: vs("bakers-cyst")?,
            leg_injury: vs("leg-injury")?,
        };
        let class = |code: &str| {
            kb.drugs
                .position(code)
                .ok_or_else(|| KnowledgeError::UnknownText {
                    file: "drug-classes.json".into(),
                    owner: "the rules".into(),
                    kind: "drug class",
                    key: code.into(),
                })
        };
        let quinine = class("quinine")?;
        let anticoagulant = class("anticoagulated")?;
        for finding in CONDITION_RISK_FACTORS
            .iter()
            .map(|(finding, _)| finding)
            .chain(RULE_FINDINGS)
        {
            kb.finding(finding)
                .ok_or_else(|| KnowledgeError::UnknownFinding {
                    file: "findings.json".into(),
                    owner: "the rules".into(),
                    id: (*finding).into(),
                })?;
        }
        Ok(Self {
            kb,
            settings,
            sets,
            quinine,
            anticoagulant,
        })
    }

    pub fn knowledge(&self) -> &KnowledgeBase {
        &self.kb
    }

    pub fn evaluate(&self, input: &HookInput) -> Assessment {
        let record = input.record;
        let value_sets = &self.kb.value_sets;
        let classify = |c: &Option<CodeableConcept>| {
            c.as_ref()
                .map(|c| value_sets.classify(c))
                .unwrap_or_default()
        };
        let classified = Classified {
            conditions: record
                .conditions
                .iter()
                .map(|c| classify(&c.resource.code))
                .collect(),
            observation_codes: record
                .observations
                .iter()
                .map(|o| classify(&o.resource.code))
                .collect(),
            observation_values: record
                .observations
                .iter()
                .map(|o| classify(&o.resource.value_codeable_concept))
                .collect(),
            procedures: record
                .procedures
                .iter()
                .map(|p| classify(&p.resource.code))
                .collect(),
        };
        let cramps = self.documented_cramps(input, &classified);
        let mut assessment = Assessment::default();

        if input.hook.is_order_hook() {
            // Hashed: thousands of selections times thousands of drafts must stay linear.
            let selected: HashSet<&str> = input.selections.iter().map(String::as_str).collect();
            let drafts: Vec<&MedicationUse> = input
                .draft_orders
                .iter()
                .filter(|d| {
                    !d.do_not_perform
                        && !matches!(
                            d.status.as_deref(),
                            Some("entered-in-error" | "cancelled" | "revoked")
                        )
                })
                .filter(|d| {
                    input.hook == Hook::OrderSign
                        || selected.is_empty()
                        || selected.contains(d.reference.as_str())
                })
                .collect();
            let found = self.medication_findings(&drafts, true, input.now);
            // A draft of conflicting evidence alone (a beta-blocker) gives no card.
            if !cramps.is_empty() && !self.only_conflicting(&found.current) {
                assessment.culprits = found.current;
                assessment.culprits_are_drafts = true;
            }
            assessment.quinine = found.quinine.map(|finding| QuinineAlert {
                drafts: finding.evidence.clone(),
                finding,
            });
            return assessment;
        }

        let active: Vec<&MedicationUse> = record
            .medications
            .iter()
            .filter(|m| m.is_active())
            .collect();
        let found = self.medication_findings(&active, false, input.now);
        assessment.quinine = found.quinine.map(|finding| QuinineAlert {
            finding,
            drafts: Vec::new(),
        });
        let pregnancy = self.pregnancy(input, &classified);
        if !cramps.is_empty() {
            assessment.risk_factors = self.risk_factors(input, &classified, &pregnancy);
            assessment.culprits = found.current;
            assessment.outdated_culprits = found.outdated;
        }
        assessment.dvt = self.dvt(input, &classified, &cramps, &pregnancy, &active);
        assessment.unchecked = self.unchecked(input, &assessment);
        assessment
    }
}

/// "Leg swelling (since 2026-11-17)": the onset when the record gives one
/// (how long it has lasted matters), else when it was recorded.
fn condition_note(code: &CodeableConcept, condition: &Condition) -> String {
    let label = code.label().unwrap_or("condition");
    let onset = condition
        .onset_date_time
        .or_else(|| condition.onset_period.as_ref().and_then(|p| p.start));
    match (onset, condition.recorded_date) {
        (Some(onset), _) => format!("{label} (since {})", day(onset)),
        (None, Some(recorded)) => format!("{label} (recorded {})", day(recorded)),
        (None, None) => label.to_owned(),
    }
}

fn lab_note(
    observation: &crate::fhir::model::Observation,
    lab: &crate::knowledge::LabDefinition,
    at: DateTime<Utc>,
    reason: &LowBecause,
) -> String {
    let analyte = lab.analyte.as_str();
    let mut name = analyte.to_owned();
    if let Some(first) = name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    format!(
        "{name} {} on {} ({})",
        measured(observation),
        day(at),
        why_low(reason)
    )
}

/// "3.1 mmol/L", as the result gives it.
fn measured(observation: &crate::fhir::model::Observation) -> String {
    let quantity = observation.value_quantity.as_ref();
    match (
        quantity.and_then(|q| q.value),
        quantity.and_then(|q| q.unit_text()),
    ) {
        (Some(v), Some(u)) => format!("{} {u}", number(v)),
        (Some(v), None) => number(v),
        _ => "result".into(),
    }
}

/// Why a result is low, quoting the limit in the result's own unit.
fn why_low(reason: &LowBecause) -> String {
    match reason {
        LowBecause::BelowReferenceRange { low, unit } => {
            format!("below the lab's range, low {} {unit}", number(*low))
        }
        LowBecause::FlaggedLow => "flagged low by the lab".into(),
        LowBecause::BelowLimit {
            limit,
            unit,
            converted: None,
        } => format!("below {limit} {unit}"),
        LowBecause::BelowLimit {
            limit,
            unit,
            converted: Some(value),
        } => {
            format!("{} {unit} converted, below {limit} {unit}", number(*value))
        }
    }
}

/// A number as a clinician writes it: 3.1, not 3.1000000000000001.
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
