//! The CDS Hooks response: cards, suggestions, actions and links. Empty
//! lists and absent values are omitted, never sent as null or [].

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Default)]
pub struct CdsResponse {
    pub cards: Vec<Card>,
    /// `{"cramp-cds": {"incomplete": [...]}}` when some prefetch key could
    /// not be read (clinical-rules.md r2 §5); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<ResponseExtension>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResponseExtension {
    #[serde(rename = "cramp-cds")]
    pub cramp_cds: ResponseNotes,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResponseNotes {
    /// The prefetch keys the answer was made without (wholly or in part).
    pub incomplete: Vec<IncompleteKey>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IncompleteKey {
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Coding {
    pub system: String,
    pub code: String,
    pub display: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub topic: Coding,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub uuid: Uuid,
    pub summary: String,
    pub detail: String,
    pub indicator: Indicator,
    pub source: Source,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_behavior: Option<SelectionBehavior>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub override_reasons: Vec<Coding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    pub extension: CardExtension,
}

impl Card {
    /// The codes of the findings behind the card, in the order it lists them.
    pub fn finding_codes(&self) -> impl Iterator<Item = &str> {
        self.extension
            .cramp_cds
            .findings
            .iter()
            .map(|f| f.code.as_str())
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SelectionBehavior {
    AtMostOne,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub label: String,
    pub uuid: Uuid,
    pub is_recommended: bool,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: ActionKind,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Create,
    Delete,
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub label: String,
    pub url: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// Our vendor data on a card: the machine-readable findings.
#[derive(Debug, Clone, Serialize)]
pub struct CardExtension {
    #[serde(rename = "cramp-cds")]
    pub cramp_cds: CardFindings,
}

#[derive(Debug, Clone, Serialize)]
pub struct CardFindings {
    pub findings: Vec<FindingSummary>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FindingSummary {
    pub code: crate::knowledge::FindingCode,
    pub category: String,
    pub display: String,
    pub evidence: Vec<String>,
    /// The evidence that is an active order over 13 months old, shown as
    /// "possibly outdated" (clinical-rules.md §3); omitted when none.
    #[serde(rename = "possiblyOutdated", skip_serializing_if = "Vec::is_empty")]
    pub possibly_outdated: Vec<String>,
}
