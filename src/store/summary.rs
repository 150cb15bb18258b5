//! What clinicians did with the cards: issued, accepted and overridden, by
//! card type and by finding, and the override reasons given. A card counts
//! once, under its latest outcome (its latest feedback entry); cards whose
//! outcome changed (accepted, then overridden, say) are counted too. Read
//! from the hourly counts (see `aggregates`), never from the cards.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::{AnyPool, Row};

use super::aggregates::{hour_of, HOUR_MS};

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub service: String,
    /// The window counted: the one asked for, widened to whole hours.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub card_types: Vec<CountRow>,
    pub findings: Vec<CountRow>,
    pub override_reasons: Vec<OverrideCount>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CountRow {
    pub card_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    pub issued: u64,
    /// Cards whose latest feedback accepted them.
    pub accepted: u64,
    /// Cards whose latest feedback overrode them.
    pub overridden: u64,
    pub without_feedback: u64,
    /// Cards that received more than one outcome over time.
    pub changed_outcome: u64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OverrideCount {
    pub card_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    pub count: u64,
}

/// Whole hours covering [from, to).
pub fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> (i64, i64) {
    let first = hour_of(from.timestamp_millis());
    let end = hour_of(to.timestamp_millis() + HOUR_MS - 1);
    (first, end.max(first + 1))
}

fn instant(hour: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(hour * HOUR_MS)
        .single()
        .unwrap_or_default()
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub async fn read(
    pool: &AnyPool,
    service: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Summary, sqlx::Error> {
    let (first, end) = window(from, to);
    let rows = sqlx::query(
        "SELECT card_type, finding, CAST(SUM(issued) AS BIGINT), CAST(SUM(accepted) AS BIGINT), \
         CAST(SUM(overridden) AS BIGINT), CAST(SUM(changed) AS BIGINT) FROM card_counts \
         WHERE service_id = $1 AND hour >= $2 AND hour < $3 GROUP BY card_type, finding ORDER BY card_type, finding",
    )
    .bind(service.clone())
    .bind(first)
    .bind(end)
    .fetch_all(pool)
    .await?;
    let mut card_types = Vec::new();
    let mut findings = Vec::new();
    for row in &rows {
        let finding: String = row.try_get(1)?;
        let (issued, accepted, overridden) = (
            count(row.try_get(2)?),
            count(row.try_get(3)?),
            count(row.try_get(4)?),
        );
        let counted = CountRow {
            card_type: row.try_get(0)?,
            finding: (!finding.is_empty()).then_some(finding),
            issued,
            accepted,
            overridden,
            without_feedback: issued.saturating_sub(accepted + overridden),
            changed_outcome: count(row.try_get(5)?),
        };
        if counted.issued == 0 {
            continue;
        }
        if counted.finding.is_some() {
            findings.push(counted);
        } else {
            card_types.push(counted);
        }
    }
    let reasons = sqlx::query(
        "SELECT card_type, reason_system, reason_code, reason_display, CAST(SUM(count) AS BIGINT) FROM override_counts \
         WHERE service_id = $1 AND hour >= $2 AND hour < $3 \
         GROUP BY card_type, reason_system, reason_code, reason_display HAVING SUM(count) > 0 \
         ORDER BY card_type, reason_system, reason_code, reason_display",
    )
    .bind(service.clone())
    .bind(first)
    .bind(end)
    .fetch_all(pool)
    .await?;
    let part = |text: String| (!text.is_empty()).then_some(text);
    let mut override_reasons = Vec::with_capacity(reasons.len());
    for row in &reasons {
        override_reasons.push(OverrideCount {
            card_type: row.try_get(0)?,
            system: part(row.try_get(1)?),
            code: part(row.try_get(2)?),
            display: part(row.try_get(3)?),
            count: count(row.try_get(4)?),
        });
    }
    Ok(Summary {
        service,
        from: instant(first),
        to: instant(end),
        card_types,
        findings,
        override_reasons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_widens_to_whole_hours() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let (first, end) = window(at("2026-11-30T10:15:00Z"), at("2026-11-30T12:00:00Z"));
        assert_eq!(
            (instant(first), instant(end)),
            (at("2026-11-30T10:00:00Z"), at("2026-11-30T12:00:00Z"))
        );
        let (first, end) = window(at("2026-11-30T10:15:00Z"), at("2026-11-30T10:16:00Z"));
        assert_eq!(
            (instant(first), instant(end)),
            (at("2026-11-30T10:00:00Z"), at("2026-11-30T11:00:00Z"))
        );
    }
}
