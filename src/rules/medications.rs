//! §3 and §4: culprit medicines and quinine.

use super::*;

impl Rules {
    /// §3 and §4: culprit classes and quinine among the given medicines.
    pub(super) fn medication_findings(&self, medicines: &[&MedicationUse]) -> (Findings, Option<Finding>) {
        let mut culprits = Findings::default();
        let mut quinine = Findings::default();
        for medicine in medicines {
            for position in self.kb.drugs.classify(&medicine.concepts).iter() {
                let class = self.kb.drugs.class(position);
                let note = medicine.label().to_owned();
                match class.category {
                    Category::Medication => culprits.add(&class.code, &medicine.reference, note),
                    _ if position == self.quinine => quinine.add(&class.code, &medicine.reference, note),
                    _ => {}
                }
            }
        }
        (culprits, quinine.list.into_iter().next())
    }

    /// §6 "anticoagulated": the anticoagulants among the given medicines,
    /// as (reference, note).
    pub(super) fn anticoagulants(&self, medicines: &[&MedicationUse]) -> Vec<(String, String)> {
        medicines
            .iter()
            .filter(|m| self.kb.drugs.classify(&m.concepts).iter().any(|p| p == self.anticoagulant))
            .map(|m| (m.reference.clone(), m.label().to_owned()))
            .collect()
    }
}
