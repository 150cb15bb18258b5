//! The concentration units electrolyte results come in, and conversion
//! between them by the analyte's molar mass and charge.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    MmolPerL,
    MeqPerL,
    MgPerDl,
}

impl Unit {
    /// UCUM codes and the usual human spellings, case and spaces ignored.
    /// Read for every lab result judged, so it compares in place rather
    /// than building a lower-case copy.
    pub fn parse(text: &str) -> Option<Self> {
        const SPELLINGS: [(&str, Unit); 4] = [
            ("mmol/l", Unit::MmolPerL),
            ("meq/l", Unit::MeqPerL),
            ("meq/l{}", Unit::MeqPerL),
            ("mg/dl", Unit::MgPerDl),
        ];
        SPELLINGS
            .iter()
            .find(|(spelling, _)| {
                let mut written = text.chars().filter(|c| !c.is_whitespace());
                spelling.chars().all(|expected| {
                    written
                        .next()
                        .is_some_and(|c| c.to_ascii_lowercase() == expected)
                }) && written.next().is_none()
            })
            .map(|(_, unit)| *unit)
    }

    /// How a value in this unit is written on a card.
    pub fn label(self) -> &'static str {
        match self {
            Unit::MmolPerL => "mmol/L",
            Unit::MeqPerL => "mEq/L",
            Unit::MgPerDl => "mg/dL",
        }
    }

    /// `value` in this unit, expressed in `to`.
    pub fn convert(self, value: f64, to: Unit, molar_mass: f64, charge: u8) -> f64 {
        let mmol = match self {
            Unit::MmolPerL => value,
            Unit::MeqPerL => value / f64::from(charge),
            // mg/dL -> mg/L (x10) -> mmol/L (/ g per mol)
            Unit::MgPerDl => value * 10.0 / molar_mass,
        };
        match to {
            Unit::MmolPerL => mmol,
            Unit::MeqPerL => mmol * f64::from(charge),
            Unit::MgPerDl => mmol * molar_mass / 10.0,
        }
    }
}

/// `value` rounded half-up to `decimals` places, as a whole number of the
/// last place (2.125 at 2 places is 213): comparing these is exact. The
/// tolerance absorbs binary representation (2.125 is stored as 2.12499...).
pub fn in_last_places(value: f64, decimals: u32) -> i64 {
    let scaled = value * 10f64.powi(decimals as i32);
    (scaled + 0.5 + 1e-9).floor() as i64
}

#[cfg(test)]
mod parse_tests {
    use super::Unit;

    #[test]
    fn units_are_read_whatever_their_case_and_spaces() {
        for (text, unit) in [
            ("mmol/L", Unit::MmolPerL),
            (" MMOL / l ", Unit::MmolPerL),
            ("mEq/L", Unit::MeqPerL),
            ("meq/L{}", Unit::MeqPerL),
            ("mg/dL", Unit::MgPerDl),
            ("mg/d l", Unit::MgPerDl),
        ] {
            assert_eq!(Unit::parse(text), Some(unit), "{text:?}");
        }
        for text in ["", "mmol", "mmol/l2", "mg/dl/", "µmol/L", "g/dL", "mmol/ℓ"] {
            assert_eq!(Unit::parse(text), None, "{text:?}");
        }
    }
}
