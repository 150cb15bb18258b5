//! FHIR `date`, `dateTime` and `instant` values, reduced to the instant the
//! rules compare with: the start of the stated precision, in UTC.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};

/// Parses a FHIR date or dateTime ("2020", "2020-03", "2020-03-04",
/// "2020-03-04T10:00:00+01:00"). Anything else yields `None`: a date the
/// rules cannot read is treated as absent, never guessed.
pub fn parse_fhir_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.len() > 10 {
        return DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc));
    }
    let date = match text.len() {
        4 => NaiveDate::from_ymd_opt(text.parse().ok()?, 1, 1)?,
        7 => {
            let (year, month) = text.split_once('-')?;
            NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?
        }
        10 => year_month_day(text)?,
        _ => return None,
    };
    if !text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    Some(Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)))
}

/// A birth date at the youngest age it allows (r2): "1938" as 1938-12-31,
/// "1938-05" as 1938-05-31, a full date as itself.
pub fn parse_birth_date_youngest(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if !text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    match text.len() {
        4 => NaiveDate::from_ymd_opt(text.parse().ok()?, 12, 31),
        7 => {
            let (year, month) = text.split_once('-')?;
            let (year, month): (i32, u32) = (year.parse().ok()?, month.parse().ok()?);
            let first_of_next = if month == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(year, month + 1, 1)?
            };
            NaiveDate::from_ymd_opt(year, month, 1)?;
            first_of_next.pred_opt()
        }
        _ => year_month_day(text),
    }
}

/// "YYYY-MM-DD", read by hand: chrono's format-string parser cost more
/// than the rest of reading a resource.
fn year_month_day(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)
}

/// Whole years between a birth date and a day, as clinicians count age.
pub fn age_in_years(birth: NaiveDate, on: NaiveDate) -> Option<u32> {
    on.years_since(birth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_fhir_precision() {
        let full = parse_fhir_datetime("2024-03-05T10:30:00+02:00").unwrap();
        assert_eq!(full.to_rfc3339(), "2024-03-05T08:30:00+00:00");
        assert_eq!(
            parse_fhir_datetime("2024-03-05").unwrap().to_rfc3339(),
            "2024-03-05T00:00:00+00:00"
        );
        assert_eq!(
            parse_fhir_datetime("2024-03").unwrap().to_rfc3339(),
            "2024-03-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_fhir_datetime("2024").unwrap().to_rfc3339(),
            "2024-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-02-30",
            "20240101",
            "2024-1",
            "-2024",
            "2024-03-05T25:00:00Z",
            "2024-0a-01",
            "2024+03-01",
            "２０２４-1",
        ] {
            assert!(parse_fhir_datetime(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_partial_birth_date_is_its_youngest_day() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(parse_birth_date_youngest("1938"), day(1938, 12, 31));
        assert_eq!(parse_birth_date_youngest("1938-05"), day(1938, 5, 31));
        assert_eq!(parse_birth_date_youngest("1940-02"), day(1940, 2, 29));
        assert_eq!(parse_birth_date_youngest("1938-12"), day(1938, 12, 31));
        assert_eq!(parse_birth_date_youngest("1938-05-04"), day(1938, 5, 4));
        for bad in ["1938-13", "19x8", "", "1938-5", "+1938"] {
            assert_eq!(parse_birth_date_youngest(bad), None, "{bad}");
        }
    }

    #[test]
    fn counts_age_in_whole_years() {
        let birth = NaiveDate::from_ymd_opt(1976, 6, 15).unwrap();
        assert_eq!(
            age_in_years(birth, NaiveDate::from_ymd_opt(2026, 6, 14).unwrap()),
            Some(49)
        );
        assert_eq!(
            age_in_years(birth, NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()),
            Some(50)
        );
        assert_eq!(
            age_in_years(birth, NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()),
            None
        );
    }
}
