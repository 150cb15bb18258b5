//! Electrolyte results: is a result low? A result is compared with the
//! limit written in its own unit; only a unit the limits are not written in
//! is converted (by the analyte's molar mass and charge), rounded half-up to
//! the limit's decimals first (clinical-rules.md §2 r2). A value exactly at
//! a limit is not low; zero or negative values are impossible, not low.

use crate::fhir::model::{Observation, Quantity};
use crate::knowledge::units::{in_last_places, Unit};
use crate::knowledge::LabDefinition;

/// Why a result counts as low, for the card text.
#[derive(Debug, Clone, PartialEq)]
pub enum LowBecause {
    BelowReferenceRange {
        low: f64,
        unit: String,
    },
    FlaggedLow,
    /// Below the service's default limit, quoted in the result's unit when
    /// the limits are written in it; otherwise the converted value is given.
    BelowLimit {
        limit: String,
        unit: &'static str,
        converted: Option<f64>,
    },
}

/// What one result says about its electrolyte.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    Low(LowBecause),
    NotLow,
    /// No value and no flag, or a unit that cannot be compared.
    Unknown,
    /// Zero or negative, or so near zero it would read as 0 on a card
    /// (1e-300 mmol/L): a data error, skipped (and logged by the caller).
    Impossible,
}

/// Below this a result prints as 0 (cards show 3 decimals at most); no
/// electrolyte in any unit the labs use comes near it.
const NEAR_ZERO: f64 = 0.0005;

/// Judges a result as the lab reported it: the lab's range in the same
/// unit, else its flag, else the default limit.
pub fn judge(observation: &Observation, lab: &LabDefinition) -> Judgement {
    let quantity = observation.value_quantity.as_ref();
    let value = quantity.and_then(|q| q.value).filter(|v| v.is_finite());
    if value.is_some_and(|v| v < NEAR_ZERO) {
        return Judgement::Impossible;
    }
    let unit = quantity.and_then(Quantity::unit_text);
    judge_value(observation, lab, value.zip(unit), true)
}

/// Judges a value standing for the result (the result itself, or total
/// calcium adjusted for albumin, which passes `use_flag: false`: the lab's
/// flag was about the unadjusted value).
pub fn judge_value(
    observation: &Observation,
    lab: &LabDefinition,
    value: Option<(f64, &str)>,
    use_flag: bool,
) -> Judgement {
    if let Some((value, unit)) = value {
        let range_low = observation
            .reference_range
            .iter()
            .filter_map(|r| r.low.as_ref())
            .find(|low| {
                low.value.is_some_and(|v| v.is_finite() && v > 0.0)
                    && low.unit_text().is_some_and(|u| same_unit(u, unit))
            });
        if let Some(low) = range_low.and_then(|l| l.value) {
            return if value < low {
                Judgement::Low(LowBecause::BelowReferenceRange {
                    low,
                    unit: unit.to_owned(),
                })
            } else {
                Judgement::NotLow
            };
        }
    }
    if use_flag {
        let flags = observation
            .interpretation
            .iter()
            .flat_map(|i| i.coding.iter())
            .filter_map(|c| c.code.as_deref());
        let mut normal_or_high = false;
        for flag in flags {
            match flag {
                "L" | "LL" | "LU" => return Judgement::Low(LowBecause::FlaggedLow),
                "N" | "H" | "HH" | "HU" => normal_or_high = true,
                _ => {}
            }
        }
        if normal_or_high {
            return Judgement::NotLow;
        }
    }
    match value {
        Some((value, unit)) => against_limits(value, unit, lab),
        None => Judgement::Unknown,
    }
}

fn against_limits(value: f64, unit_text: &str, lab: &LabDefinition) -> Judgement {
    let Some(unit) = Unit::parse(unit_text) else {
        return Judgement::Unknown;
    };
    if let Some(limit) = lab
        .low_limits
        .iter()
        .find(|l| Unit::parse(&l.unit) == Some(unit))
    {
        let Some(number) = limit.number() else {
            return Judgement::Unknown;
        };
        return if value < number {
            Judgement::Low(LowBecause::BelowLimit {
                limit: limit.value.clone(),
                unit: unit.label(),
                converted: None,
            })
        } else {
            Judgement::NotLow
        };
    }
    // A unit the limits are not written in: converted to the limit in
    // mmol/L (else the first) and rounded to its decimals, so that a value
    // at the limit is not low.
    let in_mmol = lab
        .low_limits
        .iter()
        .find(|l| Unit::parse(&l.unit) == Some(Unit::MmolPerL));
    let Some(limit) = in_mmol.or(lab.low_limits.first()) else {
        return Judgement::Unknown;
    };
    let (Some(to), Some(number)) = (Unit::parse(&limit.unit), limit.number()) else {
        return Judgement::Unknown;
    };
    let converted = unit.convert(value, to, lab.molar_mass, lab.charge);
    let decimals = limit.decimals();
    let places = in_last_places(converted, decimals);
    if places < in_last_places(number, decimals) {
        let shown = places as f64 / 10f64.powi(decimals as i32);
        Judgement::Low(LowBecause::BelowLimit {
            limit: limit.value.clone(),
            unit: to.label(),
            converted: Some(shown),
        })
    } else {
        Judgement::NotLow
    }
}

/// Albumin in g/dL, from g/dL or g/L; `None` when it cannot be read or is
/// impossible.
pub fn albumin_g_per_dl(observation: &Observation) -> Option<f64> {
    let quantity = observation.value_quantity.as_ref()?;
    let value = quantity.value.filter(|v| v.is_finite() && *v > 0.0)?;
    let unit: String = quantity
        .unit_text()?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    match unit.as_str() {
        "g/dl" => Some(value),
        "g/l" => Some(value / 10.0),
        _ => None,
    }
}

/// Total calcium adjusted for albumin (a service decision, r2): in mg/dL
/// Ca + 0.8 x (4.0 - albumin g/dL); in mmol/L Ca + 0.02 x (40 - albumin
/// g/L). Other units are not adjusted.
/// Rounded to 4 decimals: binary arithmetic made 2.01 mmol/L with albumin
/// 34.5 g/L 2.1199999…, low against a limit of 2.12 it equals.
pub fn albumin_adjusted_calcium(value: f64, unit_text: &str, albumin_g_per_dl: f64) -> Option<f64> {
    let adjusted = match Unit::parse(unit_text)? {
        Unit::MgPerDl => value + 0.8 * (4.0 - albumin_g_per_dl),
        Unit::MmolPerL => value + 0.02 * (40.0 - albumin_g_per_dl * 10.0),
        Unit::MeqPerL => return None,
    };
    Some((adjusted * 1e4).round() / 1e4)
}

fn same_unit(a: &str, b: &str) -> bool {
    match (Unit::parse(a), Unit::parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::LabLimit;

    #[test]
    fn an_adjusted_calcium_at_the_limit_is_at_it() {
        // 2.01 + 0.02 x (40 - 34.5) is 2.12 exactly, not 2.1199999...
        assert_eq!(albumin_adjusted_calcium(2.01, "mmol/L", 3.45), Some(2.12));
        for (ca, albumin) in [(2.01, 3.45), (2.03, 3.55), (2.11, 3.95)] {
            let adjusted = albumin_adjusted_calcium(ca, "mmol/L", albumin).unwrap();
            assert!(adjusted >= 2.12, "{ca} with {albumin}: {adjusted}");
        }
    }

    fn magnesium() -> LabDefinition {
        let limit = |value: &str, unit: &str| LabLimit {
            value: value.into(),
            unit: unit.into(),
        };
        LabDefinition {
            finding: "hypomagnesemia".into(),
            analyte: "magnesium".into(),
            value_set: "magnesium-lab".into(),
            condition_value_set: "hypomagnesemia-condition".into(),
            low_limits: vec![
                limit("1.7", "mg/dL"),
                limit("0.70", "mmol/L"),
                limit("1.4", "mEq/L"),
            ],
            molar_mass: 24.305,
            charge: 2,
            albumin_adjusted: false,
            source: "test".into(),
        }
    }

    fn observation(json: &str) -> Observation<'_> {
        serde_json::from_str::<crate::fhir::model::Observation>(json).unwrap()
    }

    fn low(value: f64, unit: &str) -> bool {
        let json = format!(r#"{{"valueQuantity":{{"value":{value},"unit":"{unit}"}}}}"#);
        matches!(judge(&observation(&json), &magnesium()), Judgement::Low(_))
    }

    #[test]
    fn each_unit_is_compared_with_its_own_limit_and_the_limit_is_not_low() {
        for (value, unit, expected) in [
            (1.6, "mg/dL", true),
            (1.7, "mg/dL", false),
            (0.69, "mmol/L", true),
            (0.70, "mmol/L", false),
            // 0.70 mmol/L is 1.7014 mg/dL: compared in its own unit, not converted.
            (1.39, "mEq/L", true),
            (1.4, "meq/l", false),
        ] {
            assert_eq!(low(value, unit), expected, "{value} {unit}");
        }
    }

    #[test]
    fn a_converted_value_is_rounded_half_up_to_the_limits_decimals() {
        let mut lab = magnesium();
        lab.low_limits.retain(|l| l.unit == "mg/dL");
        // With no limit in mmol/L, an mmol/L result goes to the first (mg/dL).
        let json = |v: f64| format!(r#"{{"valueQuantity":{{"value":{v},"unit":"mmol/L"}}}}"#);
        // 0.6975 mmol/L = 1.6953 mg/dL -> 1.7: at the limit, not low.
        assert_eq!(judge(&observation(&json(0.6975)), &lab), Judgement::NotLow);
        // 0.69 mmol/L = 1.677 mg/dL -> 1.7 as well.
        assert_eq!(judge(&observation(&json(0.69)), &lab), Judgement::NotLow);
        // 0.65 mmol/L = 1.580 mg/dL -> 1.6: low, and the converted value is quoted.
        assert_eq!(
            judge(&observation(&json(0.65)), &lab),
            Judgement::Low(LowBecause::BelowLimit {
                limit: "1.7".into(),
                unit: "mg/dL",
                converted: Some(1.6)
            })
        );
    }

    #[test]
    fn reference_range_then_flag_then_default() {
        let lab = magnesium();
        let by_range = observation(
            r#"{"valueQuantity":{"value":1.75,"unit":"mg/dL"},"referenceRange":[{"low":{"value":1.8,"unit":"mg/dL"}}]}"#,
        );
        assert!(matches!(
            judge(&by_range, &lab),
            Judgement::Low(LowBecause::BelowReferenceRange { .. })
        ));
        let at_range = observation(
            r#"{"valueQuantity":{"value":1.8,"unit":"mg/dL"},"referenceRange":[{"low":{"value":1.8,"unit":"mg/dL"}}]}"#,
        );
        assert_eq!(judge(&at_range, &lab), Judgement::NotLow);
        let flagged = observation(
            r#"{"valueQuantity":{"value":9,"unit":"furlongs"},"interpretation":[{"coding":[{"code":"L"}]}]}"#,
        );
        assert_eq!(
            judge(&flagged, &lab),
            Judgement::Low(LowBecause::FlaggedLow)
        );
        let unknown_unit = observation(r#"{"valueQuantity":{"value":0.1,"unit":"furlongs"}}"#);
        assert_eq!(judge(&unknown_unit, &lab), Judgement::Unknown);
    }

    #[test]
    fn zero_and_negative_values_are_impossible_not_low() {
        for value in ["0", "-5", "-0.1", "1e-300"] {
            let json = format!(
                r#"{{"valueQuantity":{{"value":{value},"unit":"mg/dL"}},"interpretation":[{{"coding":[{{"code":"LL"}}]}}]}}"#
            );
            assert_eq!(
                judge(&observation(&json), &magnesium()),
                Judgement::Impossible,
                "{value}"
            );
        }
    }

    #[test]
    fn calcium_is_adjusted_for_albumin_in_either_unit() {
        let adjusted = albumin_adjusted_calcium(8.0, "mg/dL", 3.0).unwrap();
        assert!((adjusted - 8.8).abs() < 1e-9);
        let adjusted = albumin_adjusted_calcium(2.00, "mmol/L", 3.0).unwrap();
        assert!((adjusted - 2.20).abs() < 1e-9);
        assert_eq!(albumin_adjusted_calcium(4.0, "mEq/L", 3.0), None);
        let albumin = observation(r#"{"valueQuantity":{"value":30,"unit":"g/L"}}"#);
        assert_eq!(albumin_g_per_dl(&albumin), Some(3.0));
        let nonsense = observation(r#"{"valueQuantity":{"value":0,"unit":"g/dL"}}"#);
        assert_eq!(albumin_g_per_dl(&nonsense), None);
    }
}
