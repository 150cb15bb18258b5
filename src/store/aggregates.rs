//! Hourly counts of cards and outcomes, kept as cards and feedback are
//! written: the summary sums them over its window, so its time and memory
//! depend on the window's hours and the kinds of card, never on how many
//! cards the table holds.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AnyPool, Row};

pub const HOUR_MS: i64 = 3_600_000;
/// Set once the counts hold every card issued before this schema.
const BUILT_SETTING: &str = "card-counts-built";

/// The hour (since the epoch) a time in Unix milliseconds falls in.
pub fn hour_of(millis: i64) -> i64 {
    millis.div_euclid(HOUR_MS)
}

/// Changes to one row of counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub issued: i64,
    pub accepted: i64,
    pub overridden: i64,
    pub changed: i64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.issued += other.issued;
        self.accepted += other.accepted;
        self.overridden += other.overridden;
        self.changed += other.changed;
    }

    fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// (service, hour, card type, finding or '')
type CountKey = (String, i64, String, String);
/// (service, hour, card type, system, code, display), '' for an absent part
type ReasonKey = (String, i64, String, String, String, String);

/// Count changes gathered in memory and written in one go, in key order:
/// every replica's writer locks the rows it upserts in the same order, so
/// two writers on one PostgreSQL never deadlock (with a HashMap each process
/// had its own order, and three replicas under load lost batches of cards to
/// "deadlock detected").
#[derive(Default)]
pub struct Tally {
    counts: BTreeMap<CountKey, Counts>,
    reasons: BTreeMap<ReasonKey, i64>,
}

/// An override reason worth counting: it has a code or a display.
pub fn countable_reason(code: Option<&str>, display: Option<&str>) -> bool {
    code.is_some() || display.is_some()
}

impl Tally {
    /// Adds `delta` to the card type's row and to each of its findings'.
    pub fn card<'f>(
        &mut self,
        service: &str,
        hour: i64,
        card_type: &str,
        findings: impl Iterator<Item = &'f str>,
        delta: Counts,
    ) {
        if delta.is_zero() {
            return;
        }
        for finding in std::iter::once("").chain(findings.filter(|f| !f.is_empty())) {
            self.counts
                .entry((
                    service.to_owned(),
                    hour,
                    card_type.to_owned(),
                    finding.to_owned(),
                ))
                .or_default()
                .add(delta);
        }
    }

    pub fn reason(
        &mut self,
        service: &str,
        hour: i64,
        card_type: &str,
        reason: [Option<&str>; 3],
        delta: i64,
    ) {
        let [system, code, display] = reason.map(|part| part.unwrap_or("").to_owned());
        *self
            .reasons
            .entry((
                service.to_owned(),
                hour,
                card_type.to_owned(),
                system,
                code,
                display,
            ))
            .or_default() += delta;
    }

    pub async fn apply(self, connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
        for ((service, hour, card_type, finding), counts) in self.counts {
            if counts.is_zero() {
                continue;
            }
            sqlx::query(
                "INSERT INTO card_counts (service_id, hour, card_type, finding, issued, accepted, overridden, changed) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (service_id, hour, card_type, finding) DO UPDATE SET \
                 issued = card_counts.issued + excluded.issued, accepted = card_counts.accepted + excluded.accepted, \
                 overridden = card_counts.overridden + excluded.overridden, changed = card_counts.changed + excluded.changed",
            )
            .bind(service)
            .bind(hour)
            .bind(card_type)
            .bind(finding)
            .bind(counts.issued)
            .bind(counts.accepted)
            .bind(counts.overridden)
            .bind(counts.changed)
            .execute(&mut *connection)
            .await?;
        }
        let mut emptied = Vec::new();
        for ((service, hour, card_type, system, code, display), delta) in self.reasons {
            if delta == 0 {
                continue;
            }
            if delta < 0 {
                emptied.push((service.clone(), hour));
            }
            sqlx::query(
                "INSERT INTO override_counts (service_id, hour, card_type, reason_system, reason_code, reason_display, count) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (service_id, hour, card_type, reason_system, reason_code, reason_display) \
                 DO UPDATE SET count = override_counts.count + excluded.count",
            )
            .bind(service)
            .bind(hour)
            .bind(card_type)
            .bind(system)
            .bind(code)
            .bind(display)
            .bind(delta)
            .execute(&mut *connection)
            .await?;
        }
        for (service, hour) in emptied {
            sqlx::query(
                "DELETE FROM override_counts WHERE service_id = $1 AND hour = $2 AND count <= 0",
            )
            .bind(service)
            .bind(hour)
            .execute(&mut *connection)
            .await?;
        }
        Ok(())
    }
}

/// Fills the counts from the cards already stored, once per database (the
/// first replica to start after the migration does it; the others find it
/// done). The cards are grouped by the database, so memory grows with the
/// kinds of card per hour, not with the cards.
pub async fn build_once(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(BUILT_SETTING)
    .bind(chrono::Utc::now().to_rfc3339())
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(());
    }
    let started = std::time::Instant::now();
    for table in ["card_counts", "override_counts"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *transaction)
            .await?;
    }
    let mut tally = Tally::default();
    let groups = sqlx::query(
        "SELECT service_id, issued_at / 3600000, card_type, finding_codes, outcome, CAST(outcome_changed AS BIGINT), COUNT(*) \
         FROM issued_cards GROUP BY service_id, issued_at / 3600000, card_type, finding_codes, outcome, outcome_changed",
    )
    .fetch_all(&mut *transaction)
    .await
    ?;
    for row in &groups {
        let service: String = row.try_get(0)?;
        let hour: i64 = row.try_get(1)?;
        let card_type: String = row.try_get(2)?;
        let findings: String = row.try_get(3)?;
        let outcome: Option<String> = row.try_get(4)?;
        let changed: i64 = row.try_get(5)?;
        let n: i64 = row.try_get(6)?;
        let delta = Counts {
            issued: n,
            accepted: if outcome.as_deref() == Some("accepted") {
                n
            } else {
                0
            },
            overridden: if outcome.as_deref() == Some("overridden") {
                n
            } else {
                0
            },
            changed: if changed != 0 { n } else { 0 },
        };
        tally.card(&service, hour, &card_type, findings.split(' '), delta);
    }
    let reasons = sqlx::query(
        "SELECT service_id, issued_at / 3600000, card_type, override_system, override_code, override_display, COUNT(*) \
         FROM issued_cards WHERE outcome = 'overridden' AND (override_code IS NOT NULL OR override_display IS NOT NULL) \
         GROUP BY service_id, issued_at / 3600000, card_type, override_system, override_code, override_display",
    )
    .fetch_all(&mut *transaction)
    .await
    ?;
    for row in &reasons {
        let service: String = row.try_get(0)?;
        let hour: i64 = row.try_get(1)?;
        let card_type: String = row.try_get(2)?;
        let system: Option<String> = row.try_get(3)?;
        let code: Option<String> = row.try_get(4)?;
        let display: Option<String> = row.try_get(5)?;
        let n: i64 = row.try_get(6)?;
        tally.reason(
            &service,
            hour,
            &card_type,
            [system.as_deref(), code.as_deref(), display.as_deref()],
            n,
        );
    }
    tally.apply(&mut transaction).await?;
    transaction.commit().await?;
    log::info!(
        "card counts built from {} group(s) of stored cards in {:?}",
        groups.len(),
        started.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_counts_on_its_type_row_and_each_finding() {
        let mut tally = Tally::default();
        let one = Counts {
            issued: 1,
            ..Default::default()
        };
        tally.card("s", 7, "risk-factors", "a b".split(' '), one);
        tally.card("s", 7, "risk-factors", "a".split(' '), one);
        let issued = |finding: &str| {
            tally.counts[&(
                "s".to_owned(),
                7,
                "risk-factors".to_owned(),
                finding.to_owned(),
            )]
                .issued
        };
        assert_eq!((issued(""), issued("a"), issued("b")), (2, 2, 1));
    }

    #[test]
    fn hours_floor() {
        assert_eq!(hour_of(HOUR_MS - 1), 0);
        assert_eq!(hour_of(HOUR_MS), 1);
    }
}
