//! §2: risk factors, pregnancy and postpartum among them.

use chrono::Duration;

use super::*;
use crate::fhir::model::Observation;
use crate::fhir::time::parse_birth_date_youngest;
use crate::knowledge::LabDefinition;
use crate::record::Cited;
use labs::{albumin_adjusted_calcium, albumin_g_per_dl, judge, judge_value, Judgement};

/// No one recorded has lived this long.
const MAX_PLAUSIBLE_AGE: u32 = 130;

/// §2: an ongoing pregnancy, and a recent delivery (postpartum, for the
/// DVT card only).
#[derive(Debug, Default)]
pub(super) struct Pregnancy {
    pub pregnant: Findings,
    pub postpartum: Findings,
}

/// A piece of pregnancy evidence: when the episode it shows began, and when
/// it was documented.
struct PregnancyEvidence<'r> {
    start: DateTime<Utc>,
    documented: DateTime<Utc>,
    reference: &'r str,
    note: String,
}

/// Findings that are episodes, not lifelong states (r2 §5): they also need
/// a recent onset or recordedDate.
const EPISODE_WINDOWS: &[(&str, i64)] = &[
    ("dehydration", DEHYDRATION_WINDOW),
    ("hypokalemia", LAB_WINDOW),
    ("hyponatremia", LAB_WINDOW),
    ("hypocalcemia", LAB_WINDOW),
    ("hypomagnesemia", LAB_WINDOW),
];

impl Rules {
    /// §2 r2: pregnancy is an episode. It starts at its earliest evidence
    /// with no outcome between (a Z3A.NN code dates it NN weeks back), and
    /// is ongoing while that start is within 294 days and nothing newer
    /// ends it: a delivery, miscarriage, termination or other outcome, a
    /// "not pregnant" status, or its Condition resolved. A delivery within
    /// 42 days (or a postpartum-care encounter) is postpartum.
    pub(super) fn pregnancy(&self, input: &HookInput, classified: &Classified) -> Pregnancy {
        let now = input.now;
        let record = input.record;
        let sets = &self.sets;
        let mut evidence: Vec<PregnancyEvidence> = Vec::new();
        // The newest outcome so far: evidence older than it is a past pregnancy's.
        let mut ended: Option<DateTime<Utc>> = None;
        let mut end_at = |at: Option<DateTime<Utc>>| {
            if let Some(at) = at.filter(|at| *at <= now + Duration::days(1)) {
                ended = ended.max(Some(at));
            }
        };
        let mut postpartum = Findings::default();

        for (condition, memberships) in record.conditions.iter().zip(&classified.conditions) {
            let c = &condition.resource;
            if memberships.is_empty() || !condition_is_credible(c) {
                continue;
            }
            // r2 §5: an outcome ends a pregnancy from the earliest instant its
            // date allows; evidence counts at the latest.
            let documented = condition_date(c);
            let latest = clinical::condition_date_latest(c);
            let code = c.code.as_ref().expect("classified");
            if memberships.contains(sets.pregnancy_outcome) {
                end_at(documented);
            }
            if memberships.contains(sets.postpartum_delivery)
                && within(latest, POSTPARTUM_WINDOW, now)
            {
                postpartum.add_dated(
                    "postpartum",
                    &condition.reference,
                    condition_note(code, c),
                    documented,
                );
            }
            if !memberships.contains(sets.pregnancy_condition) {
                continue;
            }
            if !condition_is_active(c, now) {
                // Resolved or inactive: not evidence, and it ended its episode.
                end_at(clinical::abatement_date(c).or(documented));
                continue;
            }
            // An undated pregnancy says nothing about now (r2 §5).
            let Some(documented) = latest else { continue };
            // The episode began at the onset when the Condition gives one (a
            // recent recordedDate does not restart a pregnancy begun 17
            // months ago); a Z3A.NN dates it NN weeks before the code's date.
            let onset = c
                .onset_date_time
                .or_else(|| c.onset_period.as_ref().and_then(|p| p.start));
            let start = match gestational_weeks(code) {
                Some(weeks) => documented - Duration::weeks(weeks),
                None => onset.unwrap_or(documented),
            };
            evidence.push(PregnancyEvidence {
                start,
                documented,
                reference: &condition.reference,
                note: condition_note(code, c),
            });
        }
        for (procedure, memberships) in record.procedures.iter().zip(&classified.procedures) {
            let p = &procedure.resource;
            if memberships.is_empty() || !procedure_happened(p) {
                continue;
            }
            let at = procedure_date(p);
            if memberships.contains(sets.pregnancy_outcome) {
                end_at(at);
            }
            if memberships.contains(sets.postpartum_delivery) && within(at, POSTPARTUM_WINDOW, now)
            {
                let label = p
                    .code
                    .as_ref()
                    .and_then(|c| c.label())
                    .unwrap_or("Delivery");
                postpartum.add_dated("postpartum", &procedure.reference, dated(label, at), at);
            }
        }
        for encounter in &record.encounters {
            let e = &encounter.resource;
            let postpartum_care = e.kind.iter().chain(&e.reason_code).any(|c| {
                self.kb
                    .value_sets
                    .classify(c)
                    .contains(sets.postpartum_encounter)
            });
            let at = e.period.as_ref().and_then(|p| p.start.or(p.end));
            if postpartum_care && encounter_happened(e) && within(at, POSTPARTUM_WINDOW, now) {
                postpartum.add_dated(
                    "postpartum",
                    &encounter.reference,
                    dated("Postpartum care visit", at),
                    at,
                );
            }
        }
        for (observation, (code, value)) in record.observations.iter().zip(
            classified
                .observation_codes
                .iter()
                .zip(&classified.observation_values),
        ) {
            let o = &observation.resource;
            if !code.contains(sets.pregnancy_status) || !observation_counts(o) {
                continue;
            }
            let Some(at) = observation_date(o).filter(|at| *at <= now + Duration::days(1)) else {
                continue;
            };
            if value.contains(sets.not_pregnant_answer) {
                end_at(Some(at));
            } else if value.contains(sets.pregnant_answer)
                && within(Some(at), PREGNANCY_STATUS_WINDOW, now)
            {
                evidence.push(PregnancyEvidence {
                    start: at,
                    documented: at,
                    reference: &observation.reference,
                    note: format!("Pregnancy status: pregnant ({})", day(at)),
                });
            }
        }

        let mut pregnant = Findings::default();
        // Evidence of the episode an outcome ended: begun before it (a
        // Z3A.39 coded at the delivery dates 39 weeks back), or documented
        // no later than its day (a delivery encounter codes the pregnancy
        // beside the O80). Only evidence begun and documented after it is
        // a new pregnancy.
        let current: Vec<&PregnancyEvidence> = evidence
            .iter()
            .filter(|e| {
                ended.is_none_or(|end| e.start > end && e.documented > end + Duration::days(1))
            })
            .collect();
        let episode_start = current.iter().map(|e| e.start).min();
        if episode_start
            .is_some_and(|start| start >= now - Duration::days(PREGNANCY_EPISODE_WINDOW))
        {
            for e in current {
                pregnant.add_dated("pregnancy", e.reference, e.note.clone(), Some(e.documented));
            }
        }
        pregnant.sort_evidence();
        postpartum.sort_evidence();
        Pregnancy {
            pregnant,
            postpartum,
        }
    }

    pub(super) fn risk_factors(
        &self,
        input: &HookInput,
        classified: &Classified,
        pregnancy: &Pregnancy,
    ) -> Findings {
        let now = input.now;
        let record = input.record;
        let mut found = Findings::default();
        found.extend_from(&pregnancy.pregnant);
        if let Some(patient) = record.patient() {
            // r2: a partial birth date counts at the youngest age it allows.
            let birth = patient
                .resource
                .birth_date
                .as_deref()
                .and_then(parse_birth_date_youngest);
            // A patient who has died is not getting older; age at death, if known.
            let on = match (patient.resource.deceased, patient.resource.deceased_at) {
                (_, Some(died)) => Some(died.min(now).date_naive()),
                (true, None) => None,
                (false, None) => Some(now.date_naive()),
            };
            let age = birth.zip(on).and_then(|(b, on)| age_in_years(b, on));
            // A birth date 130 years or more back (0001-01-01) is a data
            // error, not a patient aged 2025: no age is claimed from it.
            if let Some(age) = age.filter(|age| *age < MAX_PLAUSIBLE_AGE) {
                if age >= self.settings.older_age_years {
                    found.add("older-age", &patient.reference, format!("Age {age}"));
                    found.set_value("older-age", age.to_string());
                }
            }
        }
        self.dialysis(input, classified, &mut found);
        let labs = self.labs(input, classified, &mut found);
        for (condition, memberships) in record.conditions.iter().zip(&classified.conditions) {
            if memberships.is_empty() || !condition_is_active(&condition.resource, now) {
                continue;
            }
            let c = &condition.resource;
            let code = c.code.as_ref().expect("classified");
            let documented = condition_date(c);
            let latest = clinical::condition_date_latest(c);
            let risks = self
                .sets
                .condition_risks
                .iter()
                .map(|(f, vs)| (FindingCode::from_static(f), *vs));
            let low_electrolytes = self
                .sets
                .labs
                .iter()
                .map(|(lab, _, vs)| (self.kb.labs[*lab].finding.clone(), *vs));
            for (code_of_finding, set) in risks.chain(low_electrolytes) {
                let finding = code_of_finding.as_str();
                if !memberships.contains(set) {
                    continue;
                }
                // r2 §5: an episode needs a recent onset or recordedDate.
                if let Some((_, days)) = EPISODE_WINDOWS.iter().find(|(f, _)| *f == finding) {
                    if !within(latest, *days, now) {
                        continue;
                    }
                }
                // r2: a newer normal result of the same electrolyte wins.
                if labs
                    .normal_since(finding)
                    .is_some_and(|normal| latest.is_none_or(|d| normal > d))
                {
                    continue;
                }
                found.add_ranked(
                    code_of_finding.clone(),
                    &condition.reference,
                    condition_note(code, c),
                    evidence_rank(finding, code),
                    documented,
                );
            }
        }
        found.sort_evidence();
        found
    }

    /// §2 dialysis: a procedure or a dialysis encounter in the last 90
    /// days (dialysis dependence Conditions come with the other conditions).
    fn dialysis(&self, input: &HookInput, classified: &Classified, found: &mut Findings) {
        let now = input.now;
        for (procedure, memberships) in input.record.procedures.iter().zip(&classified.procedures) {
            let p = &procedure.resource;
            let at = procedure_date(p);
            if memberships.contains(self.sets.dialysis_procedure)
                && procedure_happened(p)
                && within(at, DIALYSIS_WINDOW, now)
            {
                let label = p
                    .code
                    .as_ref()
                    .and_then(|c| c.label())
                    .unwrap_or("Dialysis");
                found.add_dated("dialysis", &procedure.reference, dated(label, at), at);
            }
        }
        for encounter in &input.record.encounters {
            let e = &encounter.resource;
            let at = e.period.as_ref().and_then(|p| p.start.or(p.end));
            if !encounter_happened(e) || !within(at, DIALYSIS_WINDOW, now) {
                continue;
            }
            let dialysis = e.kind.iter().chain(&e.reason_code).find(|c| {
                let memberships = self.kb.value_sets.classify(c);
                memberships.contains(self.sets.dialysis_encounter)
                    || memberships.contains(self.sets.dialysis_procedure)
            });
            if let Some(concept) = dialysis {
                let label = concept.label().unwrap_or("Dialysis visit");
                found.add_dated(
                    "dialysis",
                    &encounter.reference,
                    dated(&format!("{label} (visit)"), at),
                    at,
                );
            }
        }
    }

    /// §2 electrolytes from labs: the newest result within 90 days of each
    /// electrolyte; total calcium adjusted for a nearby albumin, and set
    /// aside when an ionised calcium at least as new was taken.
    fn labs(
        &self,
        input: &HookInput,
        classified: &Classified,
        found: &mut Findings,
    ) -> LabVerdicts {
        let now = input.now;
        let record = input.record;
        let mut verdicts = LabVerdicts::default();
        let newest: Vec<Option<DatedResult>> = self
            .sets
            .labs
            .iter()
            .map(|(lab_index, lab_set, _)| {
                let lab = &self.kb.labs[*lab_index];
                // One log line per analyte, however many results: a record
                // of 30,000 impossible values must not write 30,000 lines.
                let mut impossible: Option<(&str, usize)> = None;
                let newest = record
                    .observations
                    .iter()
                    .zip(&classified.observation_codes)
                    .filter(|(o, m)| m.contains(*lab_set) && observation_counts(&o.resource))
                    .filter_map(|(o, _)| Some((observation_date(&o.resource)?, o)))
                    .filter(|(at, _)| within(Some(*at), LAB_WINDOW, now))
                    .filter(|(_, o)| {
                        let skipped = judge(&o.resource, lab) == Judgement::Impossible;
                        if skipped {
                            let (_, count) = impossible.get_or_insert((&o.reference, 0));
                            *count += 1;
                        }
                        !skipped
                    })
                    .max_by_key(|(at, _)| *at);
                if let Some((first, count)) = impossible {
                    log::warn!(
                        "skipped {count} impossible {} result(s) (zero or negative), the first {first}",
                        lab.analyte
                    );
                }
                newest
            })
            .collect();
        for (position, (lab_index, _, _)) in self.sets.labs.iter().enumerate() {
            let lab = &self.kb.labs[*lab_index];
            let Some((at, observation)) = newest[position] else {
                continue;
            };
            if lab.albumin_adjusted {
                // An ionised calcium at least as new decides instead (r2).
                let ionised_as_new =
                    self.sets
                        .labs
                        .iter()
                        .zip(&newest)
                        .any(|((other, _, _), result)| {
                            let other = &self.kb.labs[*other];
                            other.finding == lab.finding
                                && !other.albumin_adjusted
                                && result.is_some_and(|(when, _)| when >= at)
                        });
                if ionised_as_new {
                    continue;
                }
            }
            let (judgement, note) = match lab.albumin_adjusted {
                true => self.adjusted_calcium(record, classified, lab, &observation.resource, at),
                false => {
                    let judgement = judge(&observation.resource, lab);
                    let note = match &judgement {
                        Judgement::Low(reason) => lab_note(&observation.resource, lab, at, reason),
                        _ => String::new(),
                    };
                    (judgement, note)
                }
            };
            match judgement {
                Judgement::Low(_) => {
                    found.add_dated(&lab.finding, &observation.reference, note, Some(at));
                    // A total calcium is judged adjusted or asks for a
                    // corrected one: the summary quotes no single value.
                    let quantity = observation.resource.value_quantity.as_ref();
                    if !lab.albumin_adjusted && quantity.is_some_and(|q| q.value.is_some()) {
                        found.set_value(&lab.finding, measured(&observation.resource));
                    }
                }
                Judgement::NotLow => verdicts.normal(&lab.finding, at),
                Judgement::Unknown | Judgement::Impossible => {}
            }
        }
        verdicts
    }

    /// Total calcium judged after adjusting for the nearest albumin within
    /// 7 days either side (r2, a service decision); without one, a low total
    /// is reported as such, asking for a corrected or ionised calcium.
    fn adjusted_calcium(
        &self,
        record: &PatientRecord,
        classified: &Classified,
        lab: &LabDefinition,
        calcium: &Observation,
        at: DateTime<Utc>,
    ) -> (Judgement, String) {
        let nearest_albumin = record
            .observations
            .iter()
            .zip(&classified.observation_codes)
            .filter(|(o, m)| m.contains(self.sets.albumin_lab) && observation_counts(&o.resource))
            .filter_map(|(o, _)| {
                Some((
                    observation_date(&o.resource)?,
                    albumin_g_per_dl(&o.resource)?,
                ))
            })
            .filter(|(when, _)| {
                (*when - at).num_seconds().abs() <= Duration::days(ALBUMIN_WINDOW).num_seconds()
            })
            .min_by_key(|(when, _)| (*when - at).num_seconds().abs());
        let quantity = calcium.value_quantity.as_ref();
        let value = quantity.and_then(|q| q.value);
        let unit = quantity.and_then(|q| q.unit_text());
        let adjusted =
            nearest_albumin
                .zip(value.zip(unit))
                .and_then(|((when, albumin), (value, unit))| {
                    Some((
                        albumin_adjusted_calcium(value, unit, albumin)?,
                        unit,
                        albumin,
                        when,
                    ))
                });
        match adjusted {
            Some((adjusted, unit, albumin, when)) => {
                let judgement = judge_value(calcium, lab, Some((adjusted, unit)), false);
                let note = match &judgement {
                    Judgement::Low(reason) => format!(
                        "Calcium {} {unit} on {}, {:.2} {unit} adjusted for albumin {} g/dL of {} ({})",
                        number(value.unwrap_or_default()),
                        day(at),
                        adjusted,
                        number(albumin),
                        day(when),
                        why_low(reason)
                    ),
                    _ => String::new(),
                };
                (judgement, note)
            }
            None => {
                let judgement = judge(calcium, lab);
                let note = match &judgement {
                    Judgement::Low(reason) => format!(
                        "Low total calcium: {} on {} ({}); no albumin within 7 days: check albumin-corrected or ionised calcium",
                        measured(calcium),
                        day(at),
                        why_low(reason)
                    ),
                    _ => String::new(),
                };
                (judgement, note)
            }
        }
    }
}

/// A lab result with the date it speaks for.
type DatedResult<'r, 'a> = (DateTime<Utc>, &'r Cited<Box<Observation<'a>>>);

/// The newest normal result of each electrolyte (finding code -> date).
#[derive(Default)]
struct LabVerdicts {
    normal: Vec<(String, DateTime<Utc>)>,
}

impl LabVerdicts {
    fn normal(&mut self, finding: &str, at: DateTime<Utc>) {
        match self.normal.iter_mut().find(|(f, _)| f == finding) {
            Some((_, when)) => *when = (*when).max(at),
            None => self.normal.push((finding.to_owned(), at)),
        }
    }

    fn normal_since(&self, finding: &str) -> Option<DateTime<Utc>> {
        self.normal
            .iter()
            .find(|(f, _)| f == finding)
            .map(|(_, at)| *at)
    }
}

/// A visit that took place (not planned, cancelled or entered in error).
fn encounter_happened(encounter: &crate::fhir::model::Encounter) -> bool {
    !matches!(
        encounter.status.as_deref(),
        Some("planned" | "cancelled" | "entered-in-error")
    )
}

/// Z3A.NN: NN weeks of gestation when the code was recorded.
fn gestational_weeks(code: &CodeableConcept) -> Option<i64> {
    code.coding.iter().find_map(|coding| {
        let weeks = coding.code.as_deref()?.strip_prefix("Z3A.")?;
        (weeks.len() == 2 && weeks.bytes().all(|b| b.is_ascii_digit()))
            .then(|| weeks.parse().ok())
            .flatten()
    })
}

/// r2 §5: how telling a piece of evidence is, so that cards lead with it:
/// for kidney disease, the most advanced stage (ESRD 6, stage 5 ... 1;
/// unstaged 0), read from the code or its display.
fn evidence_rank(finding: &str, code: &CodeableConcept) -> u8 {
    if finding != "kidney-disease" {
        return 0;
    }
    let by_code = code
        .coding
        .iter()
        .filter_map(|c| c.code.as_deref())
        .filter_map(|code| match code {
            "N18.6" | "46177005" | "I12.0" | "I13.11" | "I13.2" => Some(6),
            "N18.5" | "433146000" => Some(5),
            "N18.4" | "431857002" => Some(4),
            "N18.3" | "N18.30" | "N18.31" | "N18.32" | "433144002" => Some(3),
            "N18.2" | "431856006" => Some(2),
            "N18.1" | "431855005" => Some(1),
            _ => None,
        });
    let by_text = code.texts().filter_map(|text| {
        let text = text.to_ascii_lowercase();
        if text.contains("end stage") || text.contains("end-stage") {
            return Some(6);
        }
        let (_, after) = text.split_once("stage ")?;
        after
            .bytes()
            .next()
            .filter(u8::is_ascii_digit)
            .map(|d| d - b'0')
    });
    by_code.chain(by_text).max().unwrap_or(0)
}

fn dated(label: &str, at: Option<DateTime<Utc>>) -> String {
    match at {
        Some(at) => format!("{label} ({})", day(at)),
        None => label.to_owned(),
    }
}
