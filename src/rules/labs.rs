//! Electrolyte results: is the newest result low? Units are converted
//! between mmol/L, mEq/L and mg/dL with the analyte's molar mass and charge,
//! never assumed.

use crate::fhir::model::{Observation, Quantity};
use crate::knowledge::LabDefinition;

/// Why a result counts as low, for the card text.
#[derive(Debug, Clone, PartialEq)]
pub enum LowBecause {
    BelowReferenceRange { low: f64, unit: String },
    FlaggedLow,
    BelowDefault { limit: f64, unit: String },
}

/// `Some(reason)` when the result is low, `None` when it is not or cannot
/// be judged (no value and no flag, or a unit we cannot convert).
pub fn low_result(observation: &Observation, lab: &LabDefinition) -> Option<LowBecause> {
    let quantity = observation.value_quantity.as_ref();
    let value = quantity.and_then(|q| q.value).filter(|v| v.is_finite());
    let unit = quantity.and_then(Quantity::unit_text);

    if let (Some(value), Some(unit)) = (value, unit) {
        let range_low = observation.reference_range.iter().filter_map(|r| r.low.as_ref()).find(|low| {
            low.value.is_some_and(f64::is_finite) && low.unit_text().is_some_and(|u| same_unit(u, unit))
        });
        if let Some(low) = range_low.and_then(|l| l.value) {
            return (value < low).then(|| LowBecause::BelowReferenceRange { low, unit: unit.to_owned() });
        }
    }
    let flags: Vec<&str> = observation
        .interpretation
        .iter()
        .flat_map(|i| i.coding.iter())
        .filter_map(|c| c.code.as_deref())
        .collect();
    if flags.iter().any(|f| matches!(*f, "L" | "LL" | "LU")) {
        return Some(LowBecause::FlaggedLow);
    }
    if flags.iter().any(|f| matches!(*f, "N" | "H" | "HH" | "HU")) {
        return None;
    }
    let (value, unit) = (value?, unit?);
    let measured = to_mmol_per_litre(value, unit, lab)?;
    let limit = to_mmol_per_litre(lab.default_low.value, &lab.default_low.unit, lab)?;
    (measured < limit).then(|| LowBecause::BelowDefault { limit: lab.default_low.value, unit: lab.default_low.unit.clone() })
}

fn same_unit(a: &str, b: &str) -> bool {
    match (Unit::parse(a), Unit::parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    MmolPerL,
    MeqPerL,
    MgPerDl,
}

impl Unit {
    fn parse(text: &str) -> Option<Self> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        match compact.as_str() {
            "mmol/l" => Some(Unit::MmolPerL),
            "meq/l" | "meq/l{}" => Some(Unit::MeqPerL),
            "mg/dl" => Some(Unit::MgPerDl),
            _ => None,
        }
    }
}

fn to_mmol_per_litre(value: f64, unit: &str, lab: &LabDefinition) -> Option<f64> {
    Some(match Unit::parse(unit)? {
        Unit::MmolPerL => value,
        Unit::MeqPerL => value / f64::from(lab.charge),
        // mg/dL -> mg/L (x10) -> mmol/L (/ g per mol)
        Unit::MgPerDl => value * 10.0 / lab.molar_mass,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::LabLimit;

    fn magnesium() -> LabDefinition {
        LabDefinition {
            finding: "hypomagnesemia".into(),
            analyte: "magnesium".into(),
            value_set: "magnesium-lab".into(),
            condition_value_set: "hypomagnesemia-condition".into(),
            default_low: LabLimit { value: 1.7, unit: "mg/dL".into() },
            molar_mass: 24.305,
            charge: 2,
            source: "test".into(),
        }
    }

    fn observation(json: &str) -> Observation<'_> {
        serde_json::from_str::<crate::fhir::model::Observation>(json).unwrap()
    }

    #[test]
    fn default_limit_in_every_unit() {
        let lab = magnesium();
        for (value, unit, low) in [
            (1.6, "mg/dL", true),
            (1.8, "mg/dL", false),
            (0.65, "mmol/L", true),
            (0.72, "mmol/L", false),
            (1.3, "mEq/L", true),
            (1.5, "meq/l", false),
        ] {
            let json = format!(r#"{{"valueQuantity":{{"value":{value},"unit":"{unit}"}}}}"#);
            let o = observation(&json);
            assert_eq!(low_result(&o, &lab).is_some(), low, "{value} {unit}");
        }
    }

    #[test]
    fn reference_range_then_flag_then_default() {
        let lab = magnesium();
        let by_range = observation(
            r#"{"valueQuantity":{"value":1.75,"unit":"mg/dL"},"referenceRange":[{"low":{"value":1.8,"unit":"mg/dL"}}]}"#,
        );
        assert!(matches!(low_result(&by_range, &lab), Some(LowBecause::BelowReferenceRange { .. })));
        let flagged = observation(r#"{"valueQuantity":{"value":9,"unit":"furlongs"},"interpretation":[{"coding":[{"code":"L"}]}]}"#);
        assert_eq!(low_result(&flagged, &lab), Some(LowBecause::FlaggedLow));
        let unknown_unit = observation(r#"{"valueQuantity":{"value":0.1,"unit":"furlongs"}}"#);
        assert_eq!(low_result(&unknown_unit, &lab), None);
    }
}
