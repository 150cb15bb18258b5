//! The risk-factors card (clinical-rules.md §2).

use super::*;

impl CardRenderer {
    pub(super) fn risk_factors(&self, findings: &[Finding]) -> Card {
        let low_electrolyte = findings
            .iter()
            .any(|f| ELECTROLYTE_FINDINGS.contains(&f.code.as_str()));
        let names: Vec<String> = findings.iter().map(|f| self.display(&f.code)).collect();
        let summary = listing("Leg cramp risk factors in the record: ", &names);
        let mut draft = Draft::new(self);
        draft.line("**Leg cramps are documented. Risk factors found in the record:**");
        draft.line("");
        for finding in findings {
            self.bullet(&mut draft, finding);
        }
        draft.line("");
        draft.line("**What to do**");
        draft.point(Say::Stretching);
        draft.point(Say::Fluids);
        draft.point(Say::HeatOrIce);
        if low_electrolyte {
            draft.point(Say::ReviewLowElectrolyte);
        }
        if findings.iter().any(|f| f.code == "older-age") {
            draft.point(Say::MagnesiumOlderAdults);
        }
        draft.point(Say::QuinineNotRecommended);
        draft.line("");
        let red_flags = draft.say(Say::RedFlags);
        draft.line(red_flags);
        let clot = draft.say(Say::RedFlagCalfPainWithSwelling);
        draft.line(clot);
        let indicator = if low_electrolyte {
            Indicator::Warning
        } else {
            Indicator::Info
        };
        self.card(Topic::RiskFactors, indicator, summary, draft, findings)
    }
}
