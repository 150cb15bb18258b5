//! The medication-culprits card (clinical-rules.md §3).

use super::*;
use crate::knowledge::drugs::{DrugClass, Strength};

impl CardRenderer {
    /// `current`: culprits among current medicines (or the draft orders);
    /// `outdated`: among active orders over 13 months old. Strongest
    /// evidence first; conflicting evidence (beta-blockers) last, as
    /// information only; possibly outdated orders after the current ones.
    pub(super) fn culprits(&self, current: &[Finding], outdated: &[Finding], drafts: bool) -> Card {
        let current = self.by_strength(current);
        let outdated = self.by_strength(outdated);
        // Old orders of a class that is also current are history, not a
        // question for the clinician: the extension still lists them.
        let shown: Vec<(&Finding, &DrugClass)> = outdated
            .iter()
            .filter(|(f, _)| !current.iter().any(|(c, _)| c.code == f.code))
            .copied()
            .collect();
        let actionable: Vec<&(&Finding, &DrugClass)> = current
            .iter()
            .filter(|(_, class)| class.strength != Strength::Conflicting)
            .collect();
        let names: Vec<String> = actionable
            .iter()
            .map(|(f, _)| self.display(&f.code))
            .collect();
        let summary = match (drafts, names.is_empty(), shown.is_empty()) {
            (true, _, _) => listing("Ordered medicine may cause leg cramps: ", &names),
            (false, false, _) => listing("Medicines that may cause leg cramps: ", &names),
            (false, true, false) => {
                "Possibly outdated orders of medicines that may cause leg cramps: check they are still taken".to_owned()
            }
            (false, true, true) => "Leg cramps: a current medicine with conflicting evidence, for information only".to_owned(),
        };
        let warning = current
            .iter()
            .any(|(_, class)| class.strength == Strength::Moderate);
        let indicator = if warning {
            Indicator::Warning
        } else {
            Indicator::Info
        };

        let mut draft = Draft::new(self);
        if !current.is_empty() {
            draft.line(if drafts {
                "**This patient has documented leg cramps. The medicine being ordered is associated with cramps:**"
            } else {
                "**Leg cramps are documented. Current medicines associated with cramps:**"
            });
            draft.line("");
            for (finding, class) in &current {
                self.culprit_line(&mut draft, finding, class);
            }
        }
        if !shown.is_empty() {
            if !current.is_empty() {
                draft.line("");
            }
            draft.line(if current.is_empty() {
                "**Leg cramps are documented. Active orders over 13 months old, possibly outdated:**"
            } else {
                "**Active orders over 13 months old, possibly outdated:**"
            });
            draft.line("");
            for (finding, class) in &shown {
                self.culprit_line(&mut draft, finding, class);
            }
        }
        draft.line("");
        let strength = draft.say(Say::EvidenceStrengthExplained);
        draft.line(format!("_{strength}_"));
        draft.line("");
        draft.line("**What to do**");
        if !actionable.is_empty() {
            draft.point(Say::ReviewMedicineNeed);
        }
        draft.point(Say::DoNotStopAbruptly);

        let mut card = self.card(Topic::MedicationCulprits, indicator, summary, draft, &[]);
        card.extension.cramp_cds.findings = self.culprit_summaries(&current, &outdated);
        card
    }

    /// Findings with their class, strongest evidence first (stable: the
    /// record's order within one strength).
    fn by_strength<'f>(&self, findings: &'f [Finding]) -> Vec<(&'f Finding, &DrugClass)> {
        let mut list: Vec<(&Finding, &DrugClass)> = findings
            .iter()
            .filter_map(|f| {
                self.kb
                    .drugs
                    .position(&f.code)
                    .map(|p| (f, self.kb.drugs.class(p)))
            })
            .collect();
        list.sort_by_key(|(_, class)| class.strength);
        list
    }

    fn culprit_line(&self, draft: &mut Draft, finding: &Finding, class: &DrugClass) {
        let medicines = describe_notes(&finding.notes);
        let name = self.display(&finding.code);
        let strength = class.strength.as_str();
        let line = if class.strength == Strength::Conflicting {
            // The statements say why the evidence conflicts, with their sources.
            let why = draft.say(Say::BetaBlockerConflicting);
            let only = draft.say(Say::BetaBlockerInformationOnly);
            format!("- **{name}** ({medicines}). Evidence: **{strength}**. {why} {only}")
        } else {
            let cite = draft.cite(&class.sources);
            let note = markdown_escape(&class.strength_note);
            format!("- **{name}** ({medicines}). Evidence: **{strength}**, {note}. {cite}")
        };
        draft.line(line);
    }

    /// One summary per finding code: current evidence first, then the
    /// possibly outdated orders, which are also named as such.
    fn culprit_summaries(
        &self,
        current: &[(&Finding, &DrugClass)],
        outdated: &[(&Finding, &DrugClass)],
    ) -> Vec<FindingSummary> {
        let current: Vec<Finding> = current.iter().map(|(f, _)| (*f).clone()).collect();
        let mut summaries = self.summaries(&current);
        for (finding, _) in outdated {
            match summaries.iter_mut().find(|s| s.code == finding.code) {
                Some(summary) => {
                    summary.evidence.extend(finding.evidence.iter().cloned());
                    summary
                        .possibly_outdated
                        .extend(finding.evidence.iter().cloned());
                }
                None => {
                    let mut summary = self.summaries(std::slice::from_ref(*finding)).remove(0);
                    summary.possibly_outdated = finding.evidence.clone();
                    summaries.push(summary);
                }
            }
        }
        summaries
    }
}
