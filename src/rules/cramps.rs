//! §1: when the service speaks: documented leg cramps.

use super::*;

impl Rules {
    /// §1: cramps documented by an active (or recent, unresolved) Condition,
    /// or as the reason for the current encounter.
    pub(super) fn documented_cramps(&self, input: &HookInput, classified: &Classified) -> Findings {
        let mut found = Findings::default();
        let is_cramp = |concept: &CodeableConcept, memberships: Memberships| {
            memberships.contains(self.sets.leg_cramps) || concept.texts().any(|t| t.to_lowercase().contains("cramp"))
        };
        for (condition, memberships) in input.record.conditions.iter().zip(&classified.conditions) {
            let c = &condition.resource;
            let Some(code) = &c.code else { continue };
            if !is_cramp(code, *memberships) {
                continue;
            }
            let recent = condition_is_credible(c)
                && !condition_is_resolved(c, input.now)
                && within(condition_date(c), CRAMP_RECORDED_WINDOW, input.now);
            if condition_is_active(c, input.now) || recent {
                found.add("leg-cramps", &condition.reference, condition_note(code, c));
            }
        }
        if let Some(encounter) = input.encounter_id.and_then(|id| input.record.encounter(id)) {
            for reason in &encounter.resource.reason_code {
                if is_cramp(reason, self.kb.value_sets.classify(reason)) {
                    let label = reason.label().unwrap_or("leg cramps");
                    found.add("leg-cramps", &encounter.reference, format!("{label} (reason for this visit)"));
                }
            }
        }
        found
    }

}
