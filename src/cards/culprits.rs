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
            .map(|(f, _)| self.display(&f.code).to_lowercase())
            .collect();
        let summary = match (drafts, names.is_empty(), shown.is_empty()) {
            (true, _, _) => listing(self.list_prefix(Say::CulpritsSummaryDraft), &names),
            (false, false, _) => listing(self.list_prefix(Say::CulpritsSummary), &names),
            (false, true, false) => self.template(Say::CulpritsSummaryOutdated).to_owned(),
            (false, true, true) => self.template(Say::CulpritsSummaryConflicting).to_owned(),
        };
        let warning = current
            .iter()
            .any(|(_, class)| class.strength == Strength::Moderate);
        let indicator = if warning {
            Indicator::Warning
        } else {
            Indicator::Info
        };

        // Current medicines strongest first, then the possibly outdated
        // orders; one line each, the first few and "and N more".
        let listed: Vec<(&Finding, &DrugClass)> =
            current.iter().chain(shown.iter()).copied().collect();
        let (in_full, rest) = risk_factors::split_shown(&listed);
        let mut draft = Draft::new(self);
        for (finding, class) in in_full {
            self.culprit_line(&mut draft, finding, class);
        }
        let rest: Vec<String> = rest.iter().map(|(f, _)| self.display(&f.code)).collect();
        draft.and_more(&rest);
        if drafts && !actionable.is_empty() {
            draft.next_step(&[Say::CulpritsNextStepDraft]);
        } else if !actionable.is_empty() {
            draft.next_step(&[Say::CulpritsNextStep]);
        } else if !shown.is_empty() {
            draft.next_step(&[Say::CulpritsNextStepOutdated]);
        }

        let findings = self.culprit_summaries(&current, &outdated);
        self.card(
            Topic::MedicationCulprits,
            indicator,
            summary,
            draft,
            findings,
        )
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
            // Why the evidence conflicts, with its sources; information only.
            let why = draft.say(Say::BetaBlockerEvidenceShort);
            let only = draft.say(Say::BetaBlockerInformationOnly);
            format!("- **{name}**: {medicines}. Evidence **{strength}**: {why} {only}")
        } else {
            let cite = draft.cite(&class.sources);
            format!("- **{name}**: {medicines}. Evidence **{strength}** {cite}")
        };
        draft.line(line);
    }

    /// The codes the card's findings list, in its order: current ones
    /// strongest first, then classes only outdated orders hold.
    pub(super) fn culprit_codes(
        &self,
        current: &[Finding],
        outdated: &[Finding],
    ) -> Vec<FindingCode> {
        let current = self.by_strength(current);
        let mut codes: Vec<FindingCode> = current.iter().map(|(f, _)| f.code.clone()).collect();
        for (finding, _) in self.by_strength(outdated) {
            if !codes.contains(&finding.code) {
                codes.push(finding.code.clone());
            }
        }
        codes
    }

    /// One summary per finding code: current evidence first, then the
    /// possibly outdated orders, which are also named as such.
    fn culprit_summaries(
        &self,
        current: &[(&Finding, &DrugClass)],
        outdated: &[(&Finding, &DrugClass)],
    ) -> Vec<FindingSummary> {
        let mut summaries = self.summaries(current.iter().map(|(f, _)| *f));
        for (finding, _) in outdated {
            match summaries.iter_mut().find(|s| s.code == finding.code) {
                Some(summary) => {
                    summary.evidence.extend(finding.evidence.iter().cloned());
                    summary
                        .possibly_outdated
                        .extend(finding.evidence.iter().cloned());
                }
                None => {
                    let mut summary = self.summaries([*finding]).remove(0);
                    summary.possibly_outdated = finding.evidence.clone();
                    summaries.push(summary);
                }
            }
        }
        summaries
    }
}
