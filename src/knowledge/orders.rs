//! The orders a card offers as draft suggestions (orders.json): the code an
//! EHR files them under, the words a clinician reads, and the sources that
//! make the test the right one. Start-up checks each code (its system an
//! absolute URL, its code and display present), that every source exists
//! and says it (sources.json `supports`), and that every order the cards
//! offer has its entry.

use serde::Deserialize;

/// An order a card offers, by its id in orders.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// Venous duplex ultrasound of the leg (DVT rule-out).
    DvtDuplex,
    /// D-dimer (DVT rule-out).
    DvtDDimer,
}

impl Order {
    pub const ALL: &'static [Order] = &[Order::DvtDuplex, Order::DvtDDimer];

    pub fn id(self) -> &'static str {
        match self {
            Order::DvtDuplex => "dvt-duplex",
            Order::DvtDDimer => "dvt-d-dimer",
        }
    }
}

/// One entry of orders.json.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderDefinition {
    pub id: String,
    /// The card topic that offers it.
    pub card: String,
    /// The suggestion's button label ("Order D-dimer").
    pub label: String,
    /// The ServiceRequest's code.text and the action's description.
    pub text: String,
    pub code: OrderCode,
    pub sources: Vec<super::SourceId>,
}

/// A FHIR Coding, as orders.json writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderCode {
    pub system: String,
    pub code: String,
    pub display: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OrdersFile {
    pub orders: Vec<OrderDefinition>,
}

impl OrderDefinition {
    /// What start-up requires of one entry, sources aside.
    pub(super) fn problem(&self) -> Option<String> {
        let system = url::Url::parse(&self.code.system);
        if !system.is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "urn")) {
            return Some(format!(
                "'{}': code system '{}' is not an absolute URL",
                self.id, self.code.system
            ));
        }
        let blank = [
            ("code", &self.code.code),
            ("display", &self.code.display),
            ("label", &self.label),
            ("text", &self.text),
        ]
        .into_iter()
        .find(|(_, value)| value.trim().is_empty() || value.trim() != value.as_str());
        if let Some((member, _)) = blank {
            return Some(format!(
                "'{}': {member} is empty or has surrounding spaces",
                self.id
            ));
        }
        if self.sources.is_empty() {
            return Some(format!("'{}' cites no source", self.id));
        }
        None
    }
}
