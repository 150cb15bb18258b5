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
    pub fn parse(text: &str) -> Option<Self> {
        let compact: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        match compact.as_str() {
            "mmol/l" => Some(Unit::MmolPerL),
            "meq/l" | "meq/l{}" => Some(Unit::MeqPerL),
            "mg/dl" => Some(Unit::MgPerDl),
            _ => None,
        }
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
