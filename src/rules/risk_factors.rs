//! §2: risk factors, pregnancy among them.

use super::*;

/// §2: an ongoing pregnancy, and a recent delivery (postpartum, for the
/// DVT card only).
#[derive(Debug, Default)]
pub(super) struct Pregnancy {
    pub pregnant: Findings,
    #[allow(dead_code)] // filled by the postpartum rule of r2 (§2), read by §6
    pub postpartum: Findings,
}

impl Rules {
    /// a newer "not pregnant" status wins.
    pub(super) fn pregnancy(&self, input: &HookInput, classified: &Classified) -> Pregnancy {
        let now = input.now;
        let record = input.record;
        let newest_status = record
            .observations
            .iter()
            .zip(classified.observation_codes.iter().zip(&classified.observation_values))
            .filter(|(o, (code, _))| code.contains(self.sets.pregnancy_status) && observation_counts(&o.resource))
            .filter_map(|(o, (_, value))| {
                let pregnant = if value.contains(self.sets.pregnant_answer) {
                    true
                } else if value.contains(self.sets.not_pregnant_answer) {
                    false
                } else {
                    return None;
                };
                Some((observation_date(&o.resource)?, pregnant, o))
            })
            .filter(|(at, _, _)| *at <= now + chrono::Duration::days(1))
            .max_by_key(|(at, _, _)| *at);

        let mut found = Findings::default();
        let ruled_out_since = match newest_status {
            Some((at, false, _)) => Some(at),
            _ => None,
        };
        for (condition, memberships) in record.conditions.iter().zip(&classified.conditions) {
            let c = &condition.resource;
            if !memberships.contains(self.sets.pregnancy_condition) || !condition_is_active(c, now) || clinical::has_abated(c, now) {
                continue;
            }
            let documented = condition_date(c);
            if ruled_out_since.is_some_and(|not_pregnant| documented.is_none_or(|d| d < not_pregnant)) {
                continue;
            }
            found.add("pregnancy", &condition.reference, condition_note(c.code.as_ref().expect("classified"), c));
        }
        if let Some((at, true, observation)) = newest_status {
            if within(Some(at), PREGNANCY_STATUS_WINDOW, now) {
                found.add("pregnancy", &observation.reference, format!("Pregnancy status: pregnant ({})", day(at)));
            }
        }
        Pregnancy { pregnant: found, postpartum: Findings::default() }
    }

    pub(super) fn risk_factors(&self, input: &HookInput, classified: &Classified, pregnancy: &Pregnancy) -> Findings {
        let now = input.now;
        let record = input.record;
        let mut found = Findings::default();
        for finding in pregnancy.pregnant.as_slice() {
            for (reference, note) in finding.evidence.iter().zip(&finding.notes) {
                found.add("pregnancy", reference, note.clone());
            }
        }
        if let Some(patient) = record.patient() {
            let birth = patient.resource.birth_date.as_deref().and_then(parse_fhir_date);
            // A patient who has died is not getting older; age at death, if known.
            let on = match (patient.resource.deceased, patient.resource.deceased_at) {
                (_, Some(died)) => Some(died.min(now).date_naive()),
                (true, None) => None,
                (false, None) => Some(now.date_naive()),
            };
            if let Some(age) = birth.zip(on).and_then(|(b, on)| age_in_years(b, on)) {
                if age >= self.settings.older_age_years {
                    found.add("older-age", &patient.reference, format!("Age {age}"));
                }
            }
        }
        for (procedure, memberships) in record.procedures.iter().zip(&classified.procedures) {
            let p = &procedure.resource;
            let at = procedure_date(p);
            if memberships.contains(self.sets.dialysis_procedure) && procedure_happened(p) && within(at, DIALYSIS_WINDOW, now) {
                let label = p.code.as_ref().and_then(|c| c.label()).unwrap_or("Dialysis");
                found.add("dialysis", &procedure.reference, format!("{label} ({})", at.map(day).unwrap_or_default()));
            }
        }
        for (condition, memberships) in record.conditions.iter().zip(&classified.conditions) {
            if memberships.is_empty() || !condition_is_active(&condition.resource, now) {
                continue;
            }
            let code = condition.resource.code.as_ref().expect("classified");
            let risks = self.sets.condition_risks.iter().map(|(f, vs)| (*f, *vs));
            let low_electrolytes = self.sets.labs.iter().map(|(lab, _, vs)| (self.kb.labs[*lab].finding.as_str(), *vs));
            for (finding, set) in risks.chain(low_electrolytes) {
                if memberships.contains(set) {
                    found.add(finding, &condition.reference, condition_note(code, &condition.resource));
                }
            }
        }
        for (lab_index, lab_set, _) in &self.sets.labs {
            let lab = &self.kb.labs[*lab_index];
            let newest = record
                .observations
                .iter()
                .zip(&classified.observation_codes)
                .filter(|(o, m)| m.contains(*lab_set) && observation_counts(&o.resource))
                .filter_map(|(o, _)| Some((observation_date(&o.resource)?, o)))
                .filter(|(at, _)| within(Some(*at), LAB_WINDOW, now))
                .max_by_key(|(at, _)| *at);
            let Some((at, observation)) = newest else { continue };
            if let Some(reason) = low_result(&observation.resource, lab) {
                found.add(&lab.finding, &observation.reference, lab_note(&observation.resource, lab, at, &reason));
            }
        }
        found
    }
}
