//! What clinicians did with the cards: issued, accepted and overridden, by
//! card type and by finding, and the override reasons given.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub service: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub card_types: Vec<CountRow>,
    pub findings: Vec<CountRow>,
    pub override_reasons: Vec<OverrideCount>,
}

/// Cards with feedback count once per outcome they received.
#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CountRow {
    pub card_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    pub issued: u64,
    pub accepted: u64,
    pub overridden: u64,
    pub without_feedback: u64,
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

/// One card joined with one of its feedback entries (or none).
pub struct JoinedRow {
    card_uuid: String,
    card_type: String,
    finding_codes: String,
    outcome: Option<String>,
    reason: (Option<String>, Option<String>, Option<String>),
}

impl JoinedRow {
    pub fn from_row(row: &AnyRow) -> Self {
        Self {
            card_uuid: row.try_get(0).unwrap_or_default(),
            card_type: row.try_get(1).unwrap_or_default(),
            finding_codes: row.try_get(2).unwrap_or_default(),
            outcome: row.try_get(3).ok().flatten(),
            reason: (row.try_get(4).ok().flatten(), row.try_get(5).ok().flatten(), row.try_get(6).ok().flatten()),
        }
    }
}

/// (card type, system, code, display) of an override reason.
type ReasonKey = (String, Option<String>, Option<String>, Option<String>);

#[derive(Default)]
struct CardOutcomes {
    card_type: String,
    findings: Vec<String>,
    accepted: bool,
    overridden: bool,
}

pub fn aggregate(service: String, from: DateTime<Utc>, to: DateTime<Utc>, rows: impl Iterator<Item = JoinedRow>) -> Summary {
    let mut cards: HashMap<String, CardOutcomes> = HashMap::new();
    let mut reasons: BTreeMap<ReasonKey, u64> = BTreeMap::new();
    for row in rows {
        let card = cards.entry(row.card_uuid).or_insert_with(|| CardOutcomes {
            card_type: row.card_type.clone(),
            findings: row.finding_codes.split(' ').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
            ..Default::default()
        });
        match row.outcome.as_deref() {
            Some("accepted") => card.accepted = true,
            Some("overridden") => {
                card.overridden = true;
                let (system, code, display) = row.reason;
                if code.is_some() || display.is_some() {
                    *reasons.entry((row.card_type, system, code, display)).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    let mut by_type: BTreeMap<String, CountRow> = BTreeMap::new();
    let mut by_finding: BTreeMap<(String, String), CountRow> = BTreeMap::new();
    for card in cards.values() {
        let count = |row: &mut CountRow| {
            row.issued += 1;
            row.accepted += u64::from(card.accepted);
            row.overridden += u64::from(card.overridden);
            row.without_feedback += u64::from(!card.accepted && !card.overridden);
        };
        count(by_type.entry(card.card_type.clone()).or_insert_with(|| CountRow { card_type: card.card_type.clone(), ..Default::default() }));
        for finding in &card.findings {
            count(by_finding.entry((card.card_type.clone(), finding.clone())).or_insert_with(|| CountRow {
                card_type: card.card_type.clone(),
                finding: Some(finding.clone()),
                ..Default::default()
            }));
        }
    }
    Summary {
        service,
        from,
        to,
        card_types: by_type.into_values().collect(),
        findings: by_finding.into_values().collect(),
        override_reasons: reasons
            .into_iter()
            .map(|((card_type, system, code, display), count)| OverrideCount { card_type, system, code, display, count })
            .collect(),
    }
}
