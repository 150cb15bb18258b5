//! The risk-factors card (clinical-rules.md §2).

use super::*;

/// Findings listed in full; past this, the first ones and "and N more".
pub(super) const FINDINGS_SHOWN: usize = 3;

impl CardRenderer {
    pub(super) fn risk_factors(&self, findings: &[Finding]) -> Card {
        let is_electrolyte = |f: &&Finding| ELECTROLYTE_FINDINGS.contains(&f.code.as_str());
        let low_electrolyte = findings.iter().any(|f| is_electrolyte(&f));
        // The most pressing first: a low electrolyte (the one thing to act
        // on), then the record's order, age (the least telling) last.
        let ordered: Vec<&Finding> = findings
            .iter()
            .filter(is_electrolyte)
            .chain(
                findings
                    .iter()
                    .filter(|f| !is_electrolyte(f) && f.code != "older-age"),
            )
            .chain(findings.iter().filter(|f| f.code == "older-age"))
            .collect();
        let facts: Vec<String> = ordered.iter().map(|f| self.fact(f)).collect();
        let summary = listing(self.list_prefix(Say::RiskFactorsSummary), &facts);
        let mut draft = Draft::new(self);
        let (shown, more) = split_shown(&ordered);
        for finding in shown {
            self.bullet(&mut draft, finding);
        }
        let more: Vec<String> = more.iter().map(|f| self.display(&f.code)).collect();
        draft.and_more(&more);
        draft.next_step(&[if low_electrolyte {
            Say::RiskFactorsNextStepLowElectrolyte
        } else {
            Say::RiskFactorsNextStep
        }]);
        let indicator = if low_electrolyte {
            Indicator::Warning
        } else {
            Indicator::Info
        };
        // The extension keeps the rules' order (an API); the text leads
        // with what to act on.
        let findings = self.summaries(findings);
        self.card(Topic::RiskFactors, indicator, summary, draft, findings)
    }
}

/// The findings shown in full and the rest: all of up to FINDINGS_SHOWN,
/// else the first FINDINGS_SHOWN.
pub(super) fn split_shown<T>(items: &[T]) -> (&[T], &[T]) {
    items.split_at(items.len().min(FINDINGS_SHOWN))
}
