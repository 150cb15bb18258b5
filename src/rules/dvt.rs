//! §6: the DVT rule-out prompt (clinical-rules.md revision 2).
//!
//! Fires when swelling of one leg (or of an unstated side) comes with leg
//! pain or a leg cramp, every element dated within 30 days; stays silent
//! when the record already answers the question (an active DVT of that leg,
//! a venous duplex or a negative D-dimer since the swelling began).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use foldhash::HashSet;

use super::risk_factors::Pregnancy;
use super::*;
use crate::fhir::model::{Observation, Procedure};
use crate::knowledge::CodeSystem;
use crate::record::Cited;

const ACUTE_DVT_WINDOW: i64 = 183;
const ACTIVE_CANCER_WINDOW: i64 = 183;
const INPATIENT_STAY_ENDED_WINDOW: i64 = 28;

/// The Wells items the chart can show (each +1); only these are scored.
pub const CHART_WELLS_ITEMS: [&str; 4] = [
    "active-cancer",
    "immobilization",
    "recent-surgery",
    "previous-dvt",
];

/// The DVT prompt for one patient: what the record shows and which test
/// the record allows us to recommend.
#[derive(Debug)]
pub struct DvtAssessment {
    pub findings: Findings,
    /// Wells items the record shows (each +1); examination items are unknown.
    pub known_points: u8,
    pub pregnant: bool,
    /// A delivery within 42 days (or a postpartum-care visit).
    pub postpartum: bool,
    /// A current anticoagulant (or Z79.01).
    pub anticoagulated: bool,
    /// The newest D-dimer since the swelling began is positive or could not
    /// be read as negative.
    pub d_dimer_not_negative: bool,
    /// The patient the draft orders are for; without one no order is offered.
    pub patient: Option<String>,
    /// The symptoms that triggered the prompt, for reasonReference.
    pub reasons: Vec<String>,
}

/// Which test the card recommends (§6 r2 "Which is recommended").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DvtNextStep {
    /// Pregnant or postpartum: compression ultrasound only, recommended.
    UltrasoundInPregnancy,
    /// Known points >= 2, a D-dimer not negative, or anticoagulated:
    /// ultrasound recommended, D-dimer offered.
    UltrasoundRecommended,
    /// The chart cannot tell: both offered, neither recommended, ultrasound
    /// first; the bedside score decides.
    BedsideScoreDecides,
}

impl DvtAssessment {
    pub fn next_step(&self) -> DvtNextStep {
        if self.pregnant || self.postpartum {
            DvtNextStep::UltrasoundInPregnancy
        } else if self.known_points >= 2 || self.d_dimer_not_negative || self.anticoagulated {
            DvtNextStep::UltrasoundRecommended
        } else {
            DvtNextStep::BedsideScoreDecides
        }
    }
}

/// Which leg a record speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Right,
    Left,
    Both,
    Unstated,
}

impl Side {
    /// The side several statements add up to: right and left is both.
    fn combine(sides: impl IntoIterator<Item = Side>) -> Side {
        let (mut right, mut left) = (false, false);
        for side in sides {
            match side {
                Side::Both => return Side::Both,
                Side::Right => right = true,
                Side::Left => left = true,
                Side::Unstated => {}
            }
        }
        match (right, left) {
            (true, true) => Side::Both,
            (true, false) => Side::Right,
            (false, true) => Side::Left,
            (false, false) => Side::Unstated,
        }
    }
}

/// A presenting symptom (swelling or pain) that counts.
struct Symptom {
    reference: String,
    note: String,
    side: Side,
    /// When it began: the onset when given, else when it was documented.
    began: DateTime<Utc>,
}

/// What a D-dimer result says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DDimer {
    Negative,
    Positive,
    Unreadable,
}

impl Rules {
    /// §6: DVT rule-out when leg swelling comes with leg pain or cramps.
    pub(super) fn dvt(
        &self,
        input: &HookInput,
        classified: &Classified,
        cramps: &Findings,
        pregnancy: &Pregnancy,
        active_medicines: &[&MedicationUse],
    ) -> Option<DvtAssessment> {
        let now = input.now;
        let record = input.record;
        let sets = &self.sets;

        // 1. The presenting symptoms, each documented within 30 days.
        let mut swellings: Vec<Symptom> = Vec::new();
        let mut pains: Vec<Symptom> = Vec::new();
        for (condition, memberships) in record.conditions.iter().zip(&classified.conditions) {
            let c = &condition.resource;
            let swelling = memberships.contains(sets.leg_swelling);
            let pain = memberships.contains(sets.leg_pain);
            if !(swelling || pain) || !condition_is_credible(c) || condition_is_resolved(c, now) {
                continue;
            }
            let documented = condition_date(c);
            if !within(documented, DVT_SYMPTOM_WINDOW, now) {
                continue;
            }
            let code = c.code.as_ref().expect("classified");
            let onset = c
                .onset_date_time
                .or_else(|| c.onset_period.as_ref().and_then(|p| p.start));
            let symptom = || Symptom {
                reference: condition.reference.clone(),
                note: condition_note(code, c),
                side: side_of(std::iter::once(code).chain(&c.body_site)),
                began: onset.or(c.recorded_date).or(documented).unwrap_or(now),
            };
            if swelling {
                swellings.push(symptom());
            }
            if pain {
                pains.push(symptom());
            }
        }
        for (observation, (code, value)) in record.observations.iter().zip(
            classified
                .observation_codes
                .iter()
                .zip(&classified.observation_values),
        ) {
            let o = &observation.resource;
            let either = |set| code.contains(set) || value.contains(set);
            let (swelling, pain) = (either(sets.leg_swelling), either(sets.leg_pain));
            if !(swelling || pain) {
                // Most observations are labs: no note to write for them.
                continue;
            }
            let at = observation_date(o);
            if !observation_counts(o)
                || !within(at, DVT_SYMPTOM_WINDOW, now)
                || symptom_is_absent(o)
            {
                continue;
            }
            let Some(at) = at else { continue };
            let label = o
                .value_codeable_concept
                .as_ref()
                .or(o.code.as_ref())
                .and_then(|c| c.label())
                .unwrap_or("symptom");
            let concepts = o
                .code
                .iter()
                .chain(&o.value_codeable_concept)
                .chain(&o.body_site);
            let symptom = || Symptom {
                reference: observation.reference.clone(),
                note: format!("{label} ({})", day(at)),
                side: side_of(concepts.clone()),
                began: at,
            };
            if swelling {
                swellings.push(symptom());
            }
            if pain {
                pains.push(symptom());
            }
        }
        if swellings.is_empty() {
            return None;
        }
        // Wells scores one symptomatic leg: swelling of both legs points elsewhere.
        let leg = Side::combine(swellings.iter().map(|s| s.side));
        if leg == Side::Both {
            return None;
        }
        let recent_cramps = self.recent_cramps(input, cramps);
        if pains.is_empty() && recent_cramps.is_empty() {
            return None;
        }
        let swelling_began = swellings
            .iter()
            .map(|s| s.began)
            .min()
            .expect("not empty")
            .date_naive();

        // 2. Is the question already answered?
        let mut found = Findings::default();
        for symptom in &swellings {
            found.add("leg-swelling", &symptom.reference, symptom.note.clone());
        }
        for symptom in &pains {
            found.add("leg-pain", &symptom.reference, symptom.note.clone());
        }
        for (reference, note) in recent_cramps {
            found.add("leg-cramps", &reference, note);
        }
        for (condition, memberships) in record.conditions.iter().zip(&classified.conditions) {
            let c = &condition.resource;
            if !memberships.contains(sets.active_dvt) || !acute_dvt(c, now) {
                continue;
            }
            let code = c.code.as_ref().expect("classified");
            let side = side_of(std::iter::once(code).chain(&c.body_site));
            let other_leg = matches!(
                (leg, side),
                (Side::Right, Side::Left) | (Side::Left, Side::Right)
            );
            if !other_leg {
                // Same leg, an unstated side, both legs, or a swelling whose
                // side is not stated: the record has the answer.
                return None;
            }
            found.add("active-dvt", &condition.reference, condition_note(code, c));
        }
        if self.duplex_since(input, swelling_began) {
            return None;
        }
        let d_dimer = self.newest_d_dimer(input, classified, swelling_began);
        let d_dimer_not_negative = match d_dimer {
            Some((DDimer::Negative, _)) => return None,
            Some((_, observation)) => {
                found.add(
                    "d-dimer-positive",
                    &observation.reference,
                    d_dimer_note(&observation.resource),
                );
                true
            }
            None => false,
        };

        // 3. The chart Wells items, and what is shown but not scored.
        let mut cancer_condition = false;
        for (condition, memberships) in record.conditions.iter().zip(&classified.conditions) {
            let c = &condition.resource;
            if memberships.is_empty() || !condition_is_credible(c) {
                continue;
            }
            let code = c.code.as_ref().expect("classified");
            let note = || condition_note(code, c);
            let documented = condition_date(c);
            let active = condition_is_active(c, now);
            if memberships.contains(sets.active_cancer) {
                cancer_condition = true;
                if active && within(documented, ACTIVE_CANCER_WINDOW, now) {
                    found.add("active-cancer", &condition.reference, note());
                }
            }
            if memberships.contains(sets.cancer_treatment)
                && within(documented, ACTIVE_CANCER_WINDOW, now)
            {
                found.add("active-cancer", &condition.reference, note());
            }
            if active && memberships.contains(sets.paralysis) {
                found.add("immobilization", &condition.reference, note());
            }
            // A DVT still acute was handled above: it is not "previous".
            let acute = memberships.contains(sets.active_dvt) && acute_dvt(c, now);
            if memberships.contains(sets.previous_vte) && !acute {
                found.add("previous-dvt", &condition.reference, note());
            }
            if active && memberships.contains(sets.long_term_anticoagulant) {
                found.add("anticoagulated", &condition.reference, note());
            }
            if active && memberships.contains(sets.bakers_cyst) {
                found.add("bakers-cyst", &condition.reference, note());
            }
            if memberships.contains(sets.leg_injury) && within(documented, LEG_INJURY_WINDOW, now) {
                found.add("leg-injury", &condition.reference, note());
            }
        }
        let mut chemotherapy_billed = Vec::new();
        for (procedure, memberships) in record.procedures.iter().zip(&classified.procedures) {
            let p = &procedure.resource;
            if memberships.is_empty() || !procedure_happened(p) {
                continue;
            }
            let at = procedure_date(p);
            let note = format!(
                "{} ({})",
                p.code
                    .as_ref()
                    .and_then(|c| c.label())
                    .unwrap_or("procedure"),
                at.map(day).unwrap_or_default()
            );
            if memberships.contains(sets.cancer_treatment) && within(at, ACTIVE_CANCER_WINDOW, now)
            {
                found.add("active-cancer", &procedure.reference, note.clone());
            }
            if memberships.contains(sets.chemotherapy_billing)
                && within(at, ACTIVE_CANCER_WINDOW, now)
            {
                chemotherapy_billed.push((procedure.reference.as_str(), note.clone()));
            }
            if memberships.contains(sets.immobilization_procedure)
                && within(at, IMMOBILISATION_WINDOW, now)
                && of_a_leg(p)
            {
                found.add("immobilization", &procedure.reference, note.clone());
            }
            if memberships.contains(sets.major_surgery) && within(at, SURGERY_WINDOW, now) {
                found.add("recent-surgery", &procedure.reference, note);
            }
        }
        // A billing code says chemotherapy was given, not for what: only
        // alongside a malignant neoplasm does it mean cancer treatment.
        if cancer_condition {
            for (reference, note) in chemotherapy_billed {
                found.add("active-cancer", reference, note);
            }
        }
        let stay_ended_since = now - Duration::days(INPATIENT_STAY_ENDED_WINDOW);
        for encounter in &record.encounters {
            if inpatient_stay(
                &encounter.resource,
                INPATIENT_STAY_DAYS,
                stay_ended_since,
                now,
            ) {
                let period = encounter.resource.period.as_ref();
                let start = period.and_then(|p| p.start).map(day).unwrap_or_default();
                let end = period
                    .and_then(|p| p.end)
                    .map(day)
                    .unwrap_or_else(|| "ongoing".into());
                found.add(
                    "recent-surgery",
                    &encounter.reference,
                    format!("Inpatient stay {start} to {end}"),
                );
            }
        }
        for (reference, note) in self.anticoagulants(active_medicines, now) {
            found.add("anticoagulated", &reference, note);
        }
        for (finding, code) in [
            (&pregnancy.pregnant, "pregnancy"),
            (&pregnancy.postpartum, "postpartum"),
        ] {
            for f in finding.as_slice() {
                for (reference, note) in f.evidence.iter().zip(&f.notes) {
                    found.add(code, reference, note.clone());
                }
            }
        }
        let known_points = CHART_WELLS_ITEMS
            .iter()
            .filter(|code| found.has(code))
            .count() as u8;
        let reasons = found
            .evidence_of("leg-swelling")
            .chain(found.evidence_of("leg-pain"))
            .chain(found.evidence_of("leg-cramps"))
            .map(str::to_owned)
            .collect();
        Some(DvtAssessment {
            pregnant: found.has("pregnancy"),
            postpartum: found.has("postpartum"),
            anticoagulated: found.has("anticoagulated"),
            d_dimer_not_negative,
            known_points,
            // The hook's patient is the EHR's word; a posted Bundle has only its Patient.
            patient: input
                .patient_id
                .map(|id| format!("Patient/{id}"))
                .or_else(|| record.patient_reference().map(str::to_owned)),
            reasons,
            findings: found,
        })
    }

    /// The documented cramps (§1) that are themselves dated within the 30
    /// days: an old cramp plus new swelling is not the presentation Wells
    /// scores. The current visit's reason is today's.
    fn recent_cramps(&self, input: &HookInput, cramps: &Findings) -> Vec<(String, String)> {
        let evidence: Vec<(&String, &String)> = cramps
            .as_slice()
            .iter()
            .flat_map(|f| f.evidence.iter().zip(&f.notes))
            .collect();
        if evidence.is_empty() {
            return Vec::new();
        }
        let references: HashSet<&str> = evidence.iter().map(|(r, _)| r.as_str()).collect();
        let recent: HashSet<&str> = input
            .record
            .conditions
            .iter()
            .filter(|c| references.contains(c.reference.as_str()))
            .filter(|c| within(condition_date(&c.resource), DVT_SYMPTOM_WINDOW, input.now))
            .map(|c| c.reference.as_str())
            .collect();
        evidence
            .into_iter()
            .filter(|(reference, _)| {
                reference.starts_with("Encounter/") || recent.contains(reference.as_str())
            })
            .map(|(reference, note)| (reference.clone(), note.clone()))
            .collect()
    }

    /// A venous duplex of the leg done or ordered on or after the day the
    /// swelling began: as a Procedure, DiagnosticReport, ImagingStudy or an
    /// active, draft or completed ServiceRequest.
    fn duplex_since(&self, input: &HookInput, since: NaiveDate) -> bool {
        let record = input.record;
        let now = input.now;
        let value_sets = &self.kb.value_sets;
        let duplex = |concept: Option<&CodeableConcept>| {
            concept.is_some_and(|c| value_sets.classify(c).contains(self.sets.venous_duplex))
        };
        // Suppressing: a partial date counts from its earliest instant.
        let on_or_after = |at: Option<DateTime<Utc>>| {
            at.is_some_and(|at| at.date_naive() >= since && at <= now + Duration::days(1))
        };
        let procedure = record.procedures.iter().map(|p| &p.resource).any(|p| {
            !matches!(p.status.as_deref(), Some("entered-in-error" | "not-done"))
                && duplex(p.code.as_ref())
                && on_or_after(procedure_date(p))
        });
        let report = record
            .diagnostic_reports
            .iter()
            .map(|r| &r.resource)
            .any(|r| {
                !matches!(r.status.as_deref(), Some("entered-in-error" | "cancelled"))
                    && duplex(r.code.as_ref())
                    && on_or_after(
                        r.effective_date_time
                            .or_else(|| r.effective_period.as_ref().and_then(|p| p.start))
                            .or(r.issued),
                    )
            });
        let study = record.imaging_studies.iter().map(|s| &s.resource).any(|s| {
            !matches!(s.status.as_deref(), Some("entered-in-error" | "cancelled"))
                && s.procedure_code.iter().any(|c| duplex(Some(c)))
                && on_or_after(s.started)
        });
        let order = record
            .service_requests
            .iter()
            .map(|r| &r.resource)
            .any(|r| {
                matches!(r.status.as_deref(), Some("active" | "draft" | "completed"))
                    && duplex(r.code.as_ref())
                    && on_or_after(
                        r.authored_on
                            .or(r.occurrence_date_time)
                            .or_else(|| r.occurrence_period.as_ref().and_then(|p| p.start)),
                    )
            });
        procedure || report || study || order
    }

    /// The newest D-dimer taken on or after the day the swelling began.
    fn newest_d_dimer<'r>(
        &self,
        input: &'r HookInput,
        classified: &Classified,
        since: NaiveDate,
    ) -> Option<(DDimer, &'r Cited<Box<Observation<'r>>>)> {
        let now = input.now;
        input
            .record
            .observations
            .iter()
            .zip(&classified.observation_codes)
            .filter(|(o, code)| code.contains(self.sets.d_dimer) && observation_counts(&o.resource))
            .filter_map(|(o, _)| Some((observation_date(&o.resource)?, o)))
            .filter(|(at, _)| at.date_naive() >= since && *at <= now + Duration::days(1))
            .max_by_key(|(at, _)| *at)
            .map(|(_, o)| (read_d_dimer(&o.resource), o))
    }
}

/// An acute DVT that answers the question: active (not refuted, not
/// abated) and documented within 183 days.
fn acute_dvt(condition: &Condition, now: DateTime<Utc>) -> bool {
    condition_is_active(condition, now) && within(condition_date(condition), ACUTE_DVT_WINDOW, now)
}

/// The side the codes, body sites and texts of a record name. ICD-10-CM
/// carries laterality in the code: R22.4x (0 unstated, 1 right, 2 left,
/// 3 both) and I82.4xy (y: 1 right, 2 left, 3 both, 9 unstated).
fn side_of<'c, 'a: 'c>(concepts: impl IntoIterator<Item = &'c CodeableConcept<'a>>) -> Side {
    let mut sides = Vec::new();
    for concept in concepts {
        for coding in &concept.coding {
            let (Some(system), Some(code)) = (coding.system.as_deref(), coding.code.as_deref())
            else {
                continue;
            };
            match CodeSystem::from_uri(system) {
                Some(CodeSystem::Icd10Cm) => {
                    let code = CodeSystem::Icd10Cm.normalize(code);
                    let laterality = match code.len() {
                        5 if code.starts_with("R224") => code.as_bytes()[4],
                        6 if code.starts_with("I824") => code.as_bytes()[5],
                        _ => b'0',
                    };
                    sides.push(match laterality {
                        b'1' => Side::Right,
                        b'2' => Side::Left,
                        b'3' => Side::Both,
                        _ => Side::Unstated,
                    });
                }
                // The SNOMED CT qualifier "right and left" (clinical-rules.md §6).
                Some(CodeSystem::Snomed) if code == "51440002" => sides.push(Side::Both),
                _ => {}
            }
        }
        sides.extend(concept.texts().map(side_in_text));
    }
    Side::combine(sides)
}

/// "Swelling of both legs", "bilateral leg oedema", "left calf swelling".
fn side_in_text(text: &str) -> Side {
    let words = words(text);
    let has = |w: &str| words.iter().any(|x| x == w);
    if has("both") || has("bilateral") || has("bilaterally") {
        return Side::Both;
    }
    Side::combine(
        [
            has("right").then_some(Side::Right),
            has("left").then_some(Side::Left),
        ]
        .into_iter()
        .flatten(),
    )
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A symptom Observation that records the symptom as absent: valueBoolean
/// false, or a value that says so ("absent", "no", "not present", "negative").
fn symptom_is_absent(observation: &Observation) -> bool {
    if observation.value_boolean == Some(false) {
        return true;
    }
    let value_texts = observation
        .value_codeable_concept
        .iter()
        .flat_map(|c| c.texts())
        .chain(observation.value_string.as_deref());
    value_texts.map(words).any(|w| {
        w.iter().any(|x| {
            matches!(
                x.as_str(),
                "absent" | "no" | "not" | "none" | "negative" | "denies" | "denied"
            )
        })
    })
}

/// §6 immobilisation: a cast or immobilisation of a leg. A jaw or an arm
/// does not count, so the body site or the code's text must name the leg.
fn of_a_leg(procedure: &Procedure) -> bool {
    const LEG_SITES: [&str; 13] = [
        "leg",
        "legs",
        "lower limb",
        "lower extremity",
        "thigh",
        "knee",
        "calf",
        "ankle",
        "foot",
        "tibia",
        "fibula",
        "femur",
        "hip",
    ];
    procedure
        .code
        .iter()
        .chain(&procedure.body_site)
        .flat_map(|c| c.texts())
        .any(|text| {
            let spaced = format!(" {} ", words(text).join(" "));
            LEG_SITES
                .iter()
                .any(|site| spaced.contains(&format!(" {site} ")))
        })
}

/// The usual fixed cut-offs (a service decision): 500 ng/mL FEU, 250 ng/mL DDU.
const D_DIMER_CUTOFF_FEU_NG_PER_ML: f64 = 500.0;
const D_DIMER_CUTOFF_DDU_NG_PER_ML: f64 = 250.0;
/// LOINC codes whose unit basis the code itself names.
const D_DIMER_FEU_LOINC: &str = "48065-7";
const D_DIMER_DDU_LOINC: &str = "48066-5";

/// Negative by the lab's interpretation, else its reference range (same
/// unit), else the fixed cut-off for the result's unit basis (FEU or DDU).
/// Anything else cannot be read as negative.
fn read_d_dimer(observation: &Observation) -> DDimer {
    let interpretation =
        |codes: &[&str]| observation.interpretation.iter().any(|i| i.has_code(codes));
    if interpretation(&["H", "HH", "HU", "A", "AA", "POS", "DET"]) {
        return DDimer::Positive;
    }
    if interpretation(&["N", "NEG", "ND", "L"]) {
        return DDimer::Negative;
    }
    let Some(quantity) = observation.value_quantity.as_ref() else {
        return DDimer::Unreadable;
    };
    let Some(value) = quantity.value.filter(|v| v.is_finite() && *v >= 0.0) else {
        return DDimer::Unreadable;
    };
    let unit = quantity.unit_text().unwrap_or("");
    let high = observation
        .reference_range
        .iter()
        .filter_map(|r| r.high.as_ref())
        .find_map(|high| {
            let same_unit = high
                .unit_text()
                .is_some_and(|u| u.trim().eq_ignore_ascii_case(unit.trim()));
            high.value.filter(|_| same_unit && !unit.is_empty())
        });
    if let Some(high) = high {
        return if value < high {
            DDimer::Negative
        } else {
            DDimer::Positive
        };
    }
    let texts: Vec<&str> = observation
        .code
        .iter()
        .flat_map(|c| c.texts())
        .chain([unit])
        .collect();
    let names = |basis: &str| texts.iter().any(|t| words(t).iter().any(|w| w == basis));
    let coded = |loinc: &str| {
        observation
            .code
            .as_ref()
            .is_some_and(|c| c.has_code(&[loinc]))
    };
    let cutoff = match (
        coded(D_DIMER_FEU_LOINC) || names("feu"),
        coded(D_DIMER_DDU_LOINC) || names("ddu"),
    ) {
        (true, false) => D_DIMER_CUTOFF_FEU_NG_PER_ML,
        (false, true) => D_DIMER_CUTOFF_DDU_NG_PER_ML,
        _ => return DDimer::Unreadable,
    };
    let Some(factor) = ng_per_ml_factor(unit) else {
        return DDimer::Unreadable;
    };
    if value * factor < cutoff {
        DDimer::Negative
    } else {
        DDimer::Positive
    }
}

/// The factor that turns a mass concentration in `unit` into ng/mL; the
/// FEU/DDU annotation is not part of the unit.
fn ng_per_ml_factor(unit: &str) -> Option<f64> {
    let unit = unit
        .to_lowercase()
        .replace(['µ', 'μ'], "u")
        .replace("mcg", "ug");
    let unit: String = unit
        .replace("{feu}", "")
        .replace("{ddu}", "")
        .replace("feu", "")
        .replace("ddu", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    match unit.as_str() {
        "mg/l" | "ug/ml" => Some(1000.0),
        "ng/ml" | "ug/l" => Some(1.0),
        _ => None,
    }
}

/// "D-dimer positive (1.2 mg/L FEU, 2026-06-12)", or why it is not read as negative.
fn d_dimer_note(observation: &Observation) -> String {
    let quantity = observation.value_quantity.as_ref();
    let value = match (
        quantity.and_then(|q| q.value),
        quantity.and_then(|q| q.unit_text()),
    ) {
        (Some(v), Some(u)) => format!("{v} {u}"),
        (Some(v), None) => v.to_string(),
        _ => observation
            .value_string
            .as_deref()
            .unwrap_or("no value")
            .to_owned(),
    };
    let at = observation_date(observation).map(day).unwrap_or_default();
    match read_d_dimer(observation) {
        DDimer::Unreadable => format!("D-dimer {value} on {at}: could not be read as negative (no usable range, interpretation or unit)"),
        _ => format!("D-dimer positive ({value}, {at})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(json: &str) -> Observation<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn d_dimer_is_read_by_interpretation_then_range_then_cut_off() {
        fn read(json: &str) -> DDimer {
            read_d_dimer(&observation(json))
        }
        let feu = r#""code":{"coding":[{"system":"http://loinc.org","code":"48065-7"}]}"#;
        let ddu = r#""code":{"coding":[{"system":"http://loinc.org","code":"48066-5"}]}"#;
        assert_eq!(
            read(&format!(
                r#"{{{feu},"valueQuantity":{{"value":0.2,"unit":"mg/L"}},"interpretation":[{{"coding":[{{"code":"H"}}]}}]}}"#
            )),
            DDimer::Positive
        );
        assert_eq!(
            read(&format!(
                r#"{{{feu},"valueQuantity":{{"value":0.9,"unit":"mg/L"}},"interpretation":[{{"coding":[{{"code":"N"}}]}}]}}"#
            )),
            DDimer::Negative
        );
        assert_eq!(
            read(&format!(
                r#"{{{feu},"valueQuantity":{{"value":0.6,"unit":"mg/L"}},"referenceRange":[{{"high":{{"value":0.7,"unit":"mg/L"}}}}]}}"#
            )),
            DDimer::Negative
        );
        assert_eq!(
            read(&format!(
                r#"{{{feu},"valueQuantity":{{"value":0.49,"unit":"mg/L"}}}}"#
            )),
            DDimer::Negative
        );
        assert_eq!(
            read(&format!(
                r#"{{{feu},"valueQuantity":{{"value":0.5,"unit":"mg/L"}}}}"#
            )),
            DDimer::Positive,
            "at the cut-off is not negative"
        );
        assert_eq!(
            read(&format!(
                r#"{{{feu},"valueQuantity":{{"value":499,"code":"ng/mL{{FEU}}"}}}}"#
            )),
            DDimer::Negative
        );
        assert_eq!(
            read(&format!(
                r#"{{{ddu},"valueQuantity":{{"value":300,"unit":"ng/mL"}}}}"#
            )),
            DDimer::Positive
        );
        assert_eq!(
            read(&format!(
                r#"{{{ddu},"valueQuantity":{{"value":0.2,"unit":"ug/mL"}}}}"#
            )),
            DDimer::Negative
        );
        assert_eq!(
            read(r#"{"code":{"text":"D-dimer"},"valueQuantity":{"value":0.2,"unit":"mg/L"}}"#),
            DDimer::Unreadable,
            "FEU or DDU unknown"
        );
        assert_eq!(
            read(&format!(r#"{{{feu},"valueQuantity":{{"value":0.2}}}}"#)),
            DDimer::Unreadable,
            "no unit"
        );
        assert_eq!(
            read(&format!(r#"{{{feu},"valueString":"<0.2"}}"#)),
            DDimer::Unreadable
        );
    }

    #[test]
    fn the_side_comes_from_the_code_the_body_site_or_the_text() {
        fn concept(json: &str) -> CodeableConcept<'static> {
            serde_json::from_str(Box::leak(json.to_owned().into_boxed_str())).unwrap()
        }
        let icd = |code: &str| {
            concept(&format!(
                r#"{{"coding":[{{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"{code}"}}]}}"#
            ))
        };
        assert_eq!(side_of([&icd("R22.41")]), Side::Right);
        assert_eq!(side_of([&icd("R22.42")]), Side::Left);
        assert_eq!(side_of([&icd("R22.43")]), Side::Both);
        assert_eq!(side_of([&icd("R22.40")]), Side::Unstated);
        assert_eq!(side_of([&icd("I82.4Z2")]), Side::Left);
        assert_eq!(side_of([&icd("I82.409")]), Side::Unstated);
        assert_eq!(side_of([&icd("I82.40")]), Side::Unstated);
        let both = concept(r#"{"coding":[{"system":"http://snomed.info/sct","code":"51440002"}]}"#);
        assert_eq!(side_of([&icd("R22.40"), &both]), Side::Both);
        assert_eq!(
            side_of([&concept(r#"{"text":"Bilateral leg swelling"}"#)]),
            Side::Both
        );
        assert_eq!(
            side_of([&concept(r#"{"text":"Swelling of right and left leg"}"#)]),
            Side::Both
        );
        assert_eq!(
            side_of([&concept(r#"{"text":"Left calf swelling"}"#)]),
            Side::Left
        );
    }

    #[test]
    fn d_dimer_units_convert_to_ng_per_ml() {
        assert_eq!(ng_per_ml_factor("mg/L FEU"), Some(1000.0));
        assert_eq!(ng_per_ml_factor("µg/mL"), Some(1000.0));
        assert_eq!(ng_per_ml_factor("ng/mL{DDU}"), Some(1.0));
        assert_eq!(ng_per_ml_factor("ug/L"), Some(1.0));
        assert_eq!(ng_per_ml_factor("mmol/L"), None);
    }
}
