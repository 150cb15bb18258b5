//! §6: the DVT rule-out prompt.

use super::risk_factors::Pregnancy;
use super::*;

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
        let mut found = Findings::default();

        for (condition, memberships) in record.conditions.iter().zip(&classified.conditions) {
            let c = &condition.resource;
            if memberships.is_empty() || !condition_is_credible(c) {
                continue;
            }
            let code = c.code.as_ref().expect("classified");
            let note = condition_note(code, c);
            let recent_symptom = !condition_is_resolved(c, now) && within(condition_date(c), DVT_SYMPTOM_WINDOW, now);
            let active = condition_is_active(c, now);
            let mut add_if = |hit: bool, finding: &str| {
                if hit {
                    found.add(finding, &condition.reference, note.clone());
                }
            };
            add_if(recent_symptom && memberships.contains(sets.leg_swelling), "leg-swelling");
            add_if(recent_symptom && memberships.contains(sets.leg_pain), "leg-pain");
            add_if(active && memberships.contains(sets.active_dvt), "active-dvt");
            add_if(memberships.contains(sets.previous_vte), "previous-dvt");
            add_if(active && memberships.contains(sets.active_cancer), "active-cancer");
            add_if(active && memberships.contains(sets.paralysis), "immobilization");
            add_if(active && memberships.contains(sets.long_term_anticoagulant), "anticoagulated");
            add_if(active && memberships.contains(sets.bakers_cyst), "bakers-cyst");
            add_if(
                memberships.contains(sets.leg_injury) && within(condition_date(c), LEG_INJURY_WINDOW, now),
                "leg-injury",
            );
        }
        for (observation, (code, value)) in
            record.observations.iter().zip(classified.observation_codes.iter().zip(&classified.observation_values))
        {
            let o = &observation.resource;
            let at = observation_date(o);
            if !observation_counts(o) || !within(at, DVT_SYMPTOM_WINDOW, now) {
                continue;
            }
            let either = |set| code.contains(set) || value.contains(set);
            let (swelling, pain) = (either(sets.leg_swelling), either(sets.leg_pain));
            if !swelling && !pain {
                // Most observations are labs: no note to write for them.
                continue;
            }
            let symptom = o.value_codeable_concept.as_ref().or(o.code.as_ref()).and_then(|c| c.label()).unwrap_or("symptom");
            let note = format!("{symptom} ({})", at.map(day).unwrap_or_default());
            if swelling {
                found.add("leg-swelling", &observation.reference, note.clone());
            }
            if pain {
                found.add("leg-pain", &observation.reference, note);
            }
        }
        let partner = found.has("leg-pain") || !cramps.is_empty();
        if !found.has("leg-swelling") || !partner {
            return None;
        }
        for finding in cramps.as_slice() {
            for (reference, note) in finding.evidence.iter().zip(&finding.notes) {
                found.add("leg-cramps", reference, note.clone());
            }
        }
        for (procedure, memberships) in record.procedures.iter().zip(&classified.procedures) {
            let p = &procedure.resource;
            if memberships.is_empty() || !procedure_happened(p) {
                continue;
            }
            let at = procedure_date(p);
            let note = format!("{} ({})", p.code.as_ref().and_then(|c| c.label()).unwrap_or("procedure"), at.map(day).unwrap_or_default());
            if memberships.contains(sets.chemotherapy) && within(at, CHEMOTHERAPY_WINDOW, now) {
                found.add("active-cancer", &procedure.reference, note.clone());
            }
            if memberships.contains(sets.immobilization_procedure) && within(at, IMMOBILISATION_WINDOW, now) {
                found.add("immobilization", &procedure.reference, note.clone());
            }
            if memberships.contains(sets.major_surgery) && within(at, SURGERY_WINDOW, now) {
                found.add("recent-surgery", &procedure.reference, note);
            }
        }
        let since = now - chrono::Duration::days(SURGERY_WINDOW);
        for encounter in &record.encounters {
            if inpatient_stay(&encounter.resource, INPATIENT_STAY_DAYS, since, now) {
                let period = encounter.resource.period.as_ref();
                let start = period.and_then(|p| p.start).map(day).unwrap_or_default();
                let end = period.and_then(|p| p.end).map(day).unwrap_or_else(|| "ongoing".into());
                found.add("recent-surgery", &encounter.reference, format!("Inpatient stay {start} to {end}"));
            }
        }
        for (reference, note) in self.anticoagulants(active_medicines, now) {
            found.add("anticoagulated", &reference, note);
        }
        if found.has("active-dvt") && found.has("anticoagulated") {
            return None;
        }
        for finding in pregnancy.pregnant.as_slice() {
            for (reference, note) in finding.evidence.iter().zip(&finding.notes) {
                found.add("pregnancy", reference, note.clone());
            }
        }
        let known_points = ["active-cancer", "immobilization", "recent-surgery", "previous-dvt"]
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
}
