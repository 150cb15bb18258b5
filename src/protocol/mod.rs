//! The CDS Hooks 2.0 protocol: discovery, the hook request, the response.

pub mod discovery;
pub mod drafts;
pub mod request;
pub mod response;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The hooks this service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Hook {
    #[serde(rename = "patient-view")]
    PatientView,
    #[serde(rename = "order-select")]
    OrderSelect,
    #[serde(rename = "order-sign")]
    OrderSign,
}

impl Hook {
    pub const ALL: [Hook; 3] = [Hook::PatientView, Hook::OrderSelect, Hook::OrderSign];

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::PatientView => "patient-view",
            Hook::OrderSelect => "order-select",
            Hook::OrderSign => "order-sign",
        }
    }

    pub fn is_order_hook(self) -> bool {
        matches!(self, Hook::OrderSelect | Hook::OrderSign)
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hook name this service does not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hook '{0}': expected patient-view, order-select or order-sign")]
pub struct UnknownHook(pub String);

impl FromStr for Hook {
    type Err = UnknownHook;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hook::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| UnknownHook(s.to_owned()))
    }
}
