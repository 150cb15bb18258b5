//! The medication-culprits card (clinical-rules.md §3).

use super::*;

impl CardRenderer {
    pub(super) fn culprits(&self, findings: &[Finding], drafts: bool) -> Card {
        let names: Vec<String> = findings.iter().map(|f| self.display(&f.code)).collect();
        let summary = if drafts {
            listing("Ordered medicine may cause leg cramps: ", &names)
        } else {
            listing("Medicines that may cause leg cramps: ", &names)
        };
        let mut draft = Draft::new(self);
        draft.line(if drafts {
            "**This patient has documented leg cramps. The medicine being ordered is associated with cramps:**"
        } else {
            "**Leg cramps are documented. Current medicines associated with cramps:**"
        });
        draft.line("");
        for finding in findings {
            let Some(class) = self.kb.drugs.position(&finding.code).map(|p| self.kb.drugs.class(p)) else { continue };
            let medicines = describe_notes(&finding.notes);
            let cite = draft.cite(&class.sources);
            draft.line(format!(
                "- **{}** ({medicines}). Evidence: **{}**, {}. {cite}",
                self.display(&finding.code),
                class.strength.as_str(),
                markdown_escape(&class.strength_note)
            ));
        }
        let strength = draft.say(Say::EvidenceStrengthExplained);
        draft.line(format!("_{strength}_"));
        draft.line("");
        draft.line("**What to do**");
        draft.point(Say::ReviewMedicineNeed);
        draft.point(Say::DoNotStopAbruptly);
        self.card(Topic::MedicationCulprits, Indicator::Warning, summary, draft, findings)
    }
}
