//! r2 §5: data that could not be read is said, not hidden. For each
//! optional prefetch key the record lacks (or holds only in part), the
//! findings it would have shown that no other data established.

use super::*;

/// Which part of the assessment a missing key leaves unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    RiskFactors,
    Culprits,
    Dvt,
}

/// A key the record lacks and the findings that could not be checked.
#[derive(Debug, Clone)]
pub struct Unchecked {
    pub part: Part,
    pub key: String,
    pub reason: String,
    pub findings: Vec<&'static str>,
}

/// What each optional prefetch key is read for (the keys of
/// cds-hooks/services.json; the required ones give a 412 when missing).
const READ_FOR: &[(&str, Part, &[&str])] = &[
    ("procedures", Part::RiskFactors, &["dialysis"]),
    (
        "procedures",
        Part::Dvt,
        // A delivery is often a Procedure (a caesarean): postpartum too.
        &[
            "recent-surgery",
            "active-cancer",
            "immobilization",
            "postpartum",
            WORK_UP,
        ],
    ),
    ("visitsByReason", Part::RiskFactors, &["dialysis"]),
    ("visitsByType", Part::RiskFactors, &["dialysis"]),
    ("visitsByReason", Part::Dvt, &["postpartum"]),
    ("visitsByType", Part::Dvt, &["postpartum"]),
    ("inpatientEncounters", Part::Dvt, &["recent-surgery"]),
    (
        "medicationStatements",
        Part::Culprits,
        &["medication-culprits"],
    ),
    ("medicationStatements", Part::Dvt, &["anticoagulated"]),
    ("serviceRequests", Part::Dvt, &[WORK_UP]),
    ("diagnosticReports", Part::Dvt, &[WORK_UP]),
    ("imagingStudies", Part::Dvt, &[WORK_UP]),
];

/// §6: a duplex done or ordered would have answered the question; with
/// its key unread the prompt may repeat one.
pub const WORK_UP: &str = "dvt-work-up";

impl Rules {
    pub(super) fn unchecked(&self, input: &HookInput, assessment: &Assessment) -> Vec<Unchecked> {
        let mut unchecked = Vec::new();
        for unread in &input.record.unread {
            for (key, part, findings) in READ_FOR.iter().filter(|(key, _, _)| *key == unread.key) {
                let found = |code: &str| match part {
                    Part::RiskFactors => assessment.risk_factors.has(code),
                    Part::Culprits => {
                        assessment.culprits.has(code) || assessment.outdated_culprits.has(code)
                    }
                    Part::Dvt => assessment
                        .dvt
                        .as_ref()
                        .is_some_and(|d| d.findings.has(code)),
                };
                // The culprit list is every drug class: one line says it.
                let missing: Vec<&'static str> = match part {
                    Part::Culprits => findings.to_vec(),
                    _ => findings
                        .iter()
                        .copied()
                        .filter(|code| !found(code))
                        .collect(),
                };
                if !missing.is_empty() {
                    unchecked.push(Unchecked {
                        part: *part,
                        key: (*key).to_owned(),
                        reason: unread.reason.clone(),
                        findings: missing,
                    });
                }
            }
        }
        unchecked
    }
}
