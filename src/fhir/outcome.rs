//! FHIR OperationOutcome, the body of every non-2xx answer.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OperationOutcome {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    pub issue: Vec<Issue>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    /// FHIR issue-type code (invalid, structure, required, not-found, ...).
    pub code: &'static str,
    pub diagnostics: String,
    /// JSON pointers (or FHIRPath-like paths) to the offending member.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
}

impl OperationOutcome {
    pub fn new(issue: Vec<Issue>) -> Self {
        Self {
            resource_type: "OperationOutcome",
            issue,
        }
    }

    pub fn error(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Self::new(vec![Issue::error(code, diagnostics, None)])
    }
}

impl Issue {
    pub fn error(
        code: &'static str,
        diagnostics: impl Into<String>,
        pointer: Option<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: pointer.into_iter().collect(),
        }
    }
}
