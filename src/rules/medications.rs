//! §3 and §4: culprit medicines and quinine.

use chrono::{Datelike, Duration};
use foldhash::HashMap;

use super::*;
use crate::fhir::model::DateSpan;
use crate::knowledge::drugs::Strength;
use crate::knowledge::FindingCode;
use crate::record::MedicationSource;

/// §3 r2: a medicine ordered, asserted or started within 13 months is current.
const CURRENT_WINDOW: i64 = 396;

/// Words that name a line flush or lock solution (heparin lock flush): not
/// an anticoagulant dose (§6 r2).
const FLUSH_WORDS: &[&str] = &["flush", "lock"];

/// Whether an active medicine is still taken (clinical-rules.md §3 r2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Currency {
    Current,
    /// Active, but every date it carries is older than 13 months: `what`
    /// happened in `year` ("ordered" 2019).
    PossiblyOutdated {
        what: &'static str,
        year: i32,
    },
}

impl Currency {
    /// A request is current when authored within 396 days, when its
    /// validity period or expected supply reaches today, or when it carries
    /// no date at all; a statement when its effective period has not ended
    /// and it was asserted or started within 396 days, or when undated.
    /// A partial date counts when any part of it is in the window.
    pub fn of(medicine: &MedicationUse, now: DateTime<Utc>) -> Currency {
        let dates = &medicine.dates;
        let since = now - Duration::days(CURRENT_WINDOW);
        let recent = |span: &DateSpan| span.end > since;
        let outdated = |what, span: &DateSpan| Currency::PossiblyOutdated {
            what,
            year: span.start.year(),
        };
        match medicine.source {
            MedicationSource::Request => {
                let validity = dates.validity.unwrap_or_default();
                let supply_start = validity.start.or(dates.authored_on);
                let supply_reaches_today = match (supply_start, dates.supply_days) {
                    (Some(start), Some(days)) => {
                        start.end + Duration::hours((days * 24.0) as i64) > now
                    }
                    _ => false,
                };
                // Without authoredOn, the start of validity dates the order.
                let ordered = dates.authored_on.or(validity.start);
                if ordered.as_ref().is_some_and(recent)
                    || validity.end.is_some_and(|end| end.end > now)
                    || supply_reaches_today
                {
                    return Currency::Current;
                }
                match (dates.authored_on, validity.start, validity.end) {
                    (Some(authored), _, _) => outdated("ordered", &authored),
                    (None, Some(start), _) => outdated("valid from", &start),
                    (None, None, Some(end)) => outdated("valid until", &end),
                    (None, None, None) => Currency::Current,
                }
            }
            MedicationSource::Statement => {
                let effective = dates.effective.unwrap_or_default();
                if let Some(end) = effective.end.filter(|end| end.end <= now) {
                    return outdated("ended", &end);
                }
                if dates.asserted.as_ref().is_some_and(recent)
                    || effective.start.as_ref().is_some_and(recent)
                {
                    return Currency::Current;
                }
                match (dates.asserted, effective.start) {
                    (Some(asserted), _) => outdated("recorded", &asserted),
                    (None, Some(started)) => outdated("started", &started),
                    (None, None) => Currency::Current,
                }
            }
        }
    }
}

/// What §3 and §4 found among the medicines.
#[derive(Debug, Default)]
pub(super) struct MedicationFindings {
    /// Culprit classes of current (or draft) medicines.
    pub current: Findings,
    /// Culprit classes of active medicines that may be outdated.
    pub outdated: Findings,
    pub quinine: Option<Finding>,
}

impl Rules {
    /// §3 and §4: culprit classes and quinine among the given active (or
    /// draft) medicines. Drafts are current by definition; quinine counts
    /// whenever it is active.
    pub(super) fn medication_findings(
        &self,
        medicines: &[&MedicationUse],
        drafts: bool,
        now: DateTime<Utc>,
    ) -> MedicationFindings {
        let mut found = MedicationFindings::default();
        let mut quinine = Findings::default();
        // (class, reference, medicine) of each outdated order, and the
        // newest date per class and medicine: a drug re-ordered every year
        // since 1977 is "ordered 2002", not twenty-four notes.
        let mut outdated: Vec<(&FindingCode, &str, &str)> = Vec::new();
        let mut newest: HashMap<(&str, &str), (i32, &'static str)> = HashMap::default();
        for medicine in medicines {
            let classes = self.kb.drugs.classify(&medicine.concepts, &medicine.routes);
            if classes.is_empty() {
                continue;
            }
            let currency = if drafts {
                Currency::Current
            } else {
                Currency::of(medicine, now)
            };
            for position in classes.iter() {
                let class = self.kb.drugs.class(position);
                let label = medicine.label();
                match (class.category, currency) {
                    (Category::Medication, Currency::Current) => {
                        found
                            .current
                            .add(&class.code, &medicine.reference, label.to_owned())
                    }
                    (Category::Medication, Currency::PossiblyOutdated { what, year }) => {
                        outdated.push((&class.code, &medicine.reference, label));
                        let entry = newest
                            .entry((class.code.as_str(), label))
                            .or_insert((year, what));
                        if year > entry.0 {
                            *entry = (year, what);
                        }
                    }
                    // Flagged however old; the date says how old.
                    (_, Currency::PossiblyOutdated { what, year }) if position == self.quinine => {
                        quinine.add(
                            &class.code,
                            &medicine.reference,
                            format!("{label}, {what} {year}"),
                        )
                    }
                    _ if position == self.quinine => {
                        quinine.add(&class.code, &medicine.reference, label.to_owned())
                    }
                    _ => {}
                }
            }
        }
        for (code, reference, label) in outdated {
            let (year, what) = newest[&(code.as_str(), label)];
            let note =
                format!("{label}: possibly outdated ({what} {year}): check it is still taken");
            found.outdated.add(code, reference, note);
        }
        found.quinine = quinine.list.into_iter().next();
        found
    }

    /// Only a draft of conflicting evidence (a beta-blocker): no card (§3 r2).
    pub(super) fn only_conflicting(&self, findings: &Findings) -> bool {
        findings.list.iter().all(|f| {
            self.kb
                .drugs
                .position(&f.code)
                .is_some_and(|p| self.kb.drugs.class(p).strength == Strength::Conflicting)
        })
    }

    /// §6 "anticoagulated": the CURRENT anticoagulants among the given
    /// active medicines (§3 r2), as (reference, note); never a flush or lock
    /// solution, nor one given by intracatheter route.
    pub(super) fn anticoagulants(
        &self,
        medicines: &[&MedicationUse],
        now: DateTime<Utc>,
    ) -> Vec<(String, String)> {
        medicines
            .iter()
            .filter(|m| Currency::of(m, now) == Currency::Current)
            .filter(|m| {
                !m.concepts
                    .iter()
                    .flat_map(|c| c.texts())
                    .any(|text| has_word(text, FLUSH_WORDS))
            })
            .filter(|m| {
                !m.routes
                    .iter()
                    .flat_map(|r| r.texts())
                    .any(|text| has_word(text, &["intracatheter", "catheter"]))
            })
            .filter(|m| {
                self.kb
                    .drugs
                    .classify(&m.concepts, &m.routes)
                    .contains(self.anticoagulant)
            })
            .map(|m| (m.reference.clone(), m.label().to_owned()))
            .collect()
    }
}

/// Whole words, case-insensitive.
fn has_word(text: &str, words: &[&str]) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| words.iter().any(|word| w.eq_ignore_ascii_case(word)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::record_from;

    fn currency(resource: &str, now: &str) -> Currency {
        let bundle = format!(r#"{{"resourceType":"Bundle","entry":[{{"resource":{resource}}}]}}"#);
        let record = record_from([bundle.as_str()]);
        Currency::of(&record.medications[0], now.parse().unwrap())
    }

    const NOW: &str = "2026-06-15T10:00:00Z";

    #[test]
    fn requests_are_current_when_recent_valid_supplied_or_undated() {
        let request = |extra: &str| {
            format!(r#"{{"resourceType":"MedicationRequest","id":"m","status":"active"{extra}}}"#)
        };
        assert_eq!(currency(&request(""), NOW), Currency::Current);
        assert_eq!(
            currency(&request(r#","authoredOn":"2025-05-16""#), NOW),
            Currency::Current
        );
        let old = Currency::PossiblyOutdated {
            what: "ordered",
            year: 2025,
        };
        assert_eq!(
            currency(&request(r#","authoredOn":"2025-05-14""#), NOW),
            old
        );
        // "2025-05" reaches into the window (its last days are within 396 days).
        assert_eq!(
            currency(&request(r#","authoredOn":"2025-05""#), NOW),
            Currency::Current
        );
        assert_eq!(
            currency(
                &request(
                    r#","authoredOn":"1962-03-01","dispenseRequest":{"validityPeriod":{"end":"2026-07"}}"#
                ),
                NOW
            ),
            Currency::Current
        );
        let supply = r#","authoredOn":"2025-01-01","dispenseRequest":{"expectedSupplyDuration":{"value":18,"code":"mo"}}"#;
        assert_eq!(currency(&request(supply), NOW), Currency::Current);
        let short = r#","authoredOn":"2025-01-01","dispenseRequest":{"expectedSupplyDuration":{"value":30,"code":"d"}}"#;
        assert_eq!(
            currency(&request(short), NOW),
            Currency::PossiblyOutdated {
                what: "ordered",
                year: 2025
            }
        );
        assert_eq!(
            currency(&request(r#","authoredOn":"last year""#), NOW),
            Currency::Current
        );
        let valid_from = |start: &str| {
            format!(r#","dispenseRequest":{{"validityPeriod":{{"start":"{start}"}}}}"#)
        };
        assert_eq!(
            currency(&request(&valid_from("2026-05-01")), NOW),
            Currency::Current
        );
        assert_eq!(
            currency(&request(&valid_from("2011-05-01")), NOW),
            Currency::PossiblyOutdated {
                what: "valid from",
                year: 2011
            }
        );
    }

    /// §6 r2 "anticoagulated": current anticoagulants only; never a flush
    /// or lock solution, nor one given by intracatheter route.
    #[test]
    fn anticoagulants_are_current_doses_not_line_flushes() {
        let kb = std::sync::Arc::new(crate::knowledge::KnowledgeBase::embedded().unwrap());
        let rules = Rules::new(kb, RuleSettings::default()).unwrap();
        let request = |id: &str, text: &str, extra: &str| {
            format!(
                r#"{{"resource":{{"resourceType":"MedicationRequest","id":"{id}","status":"active",
                "medicationCodeableConcept":{{"text":"{text}"}}{extra}}}}}"#
            )
        };
        let entries = [
            request(
                "current",
                "apixaban 5 MG Oral Tablet",
                r#","authoredOn":"2026-05-01""#,
            ),
            request("undated", "warfarin sodium 5 MG Oral Tablet", ""),
            request(
                "old",
                "rivaroxaban 20 MG Oral Tablet",
                r#","authoredOn":"2019-05-01""#,
            ),
            request(
                "flush",
                "Heparin Lock Flush Solution 100 UNT/ML",
                r#","authoredOn":"2026-05-01""#,
            ),
            request(
                "catheter",
                "heparin sodium 1000 UNT/ML Injectable Solution",
                r#","dosageInstruction":[{"route":{"text":"Intracatheter"}}]"#,
            ),
        ];
        let bundle = format!(
            r#"{{"resourceType":"Bundle","entry":[{}]}}"#,
            entries.join(",")
        );
        let record = record_from([bundle.as_str()]);
        let medicines: Vec<&MedicationUse> = record.medications.iter().collect();
        let found: Vec<String> = rules
            .anticoagulants(&medicines, NOW.parse().unwrap())
            .into_iter()
            .map(|(reference, _)| reference)
            .collect();
        assert_eq!(
            found,
            ["MedicationRequest/current", "MedicationRequest/undated"]
        );
    }

    #[test]
    fn statements_need_a_recent_start_or_assertion_and_no_past_end() {
        let statement = |extra: &str| {
            format!(r#"{{"resourceType":"MedicationStatement","id":"m","status":"active"{extra}}}"#)
        };
        assert_eq!(currency(&statement(""), NOW), Currency::Current);
        assert_eq!(
            currency(&statement(r#","dateAsserted":"2026-01-02""#), NOW),
            Currency::Current
        );
        assert_eq!(
            currency(&statement(r#","effectiveDateTime":"2026-01-02""#), NOW),
            Currency::Current
        );
        assert_eq!(
            currency(
                &statement(r#","effectivePeriod":{"start":"2026-01-02","end":"2026-03-01"}"#),
                NOW
            ),
            Currency::PossiblyOutdated {
                what: "ended",
                year: 2026
            }
        );
        assert_eq!(
            currency(
                &statement(r#","effectivePeriod":{"start":"2019-01-02"}"#),
                NOW
            ),
            Currency::PossiblyOutdated {
                what: "started",
                year: 2019
            }
        );
        assert_eq!(
            currency(
                &statement(
                    r#","effectivePeriod":{"start":"2019-01-02"},"dateAsserted":"2026-02-01""#
                ),
                NOW
            ),
            Currency::Current
        );
    }
}
