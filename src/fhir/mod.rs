//! FHIR R4: the typed, tolerant read model the rules see, and the
//! OperationOutcome every error answer carries.

pub mod model;
pub mod outcome;
pub mod reference;
pub mod time;

use serde::Deserialize;

/// The `resourceType` of a JSON resource. FHIR JSON puts it first by
/// convention, so the common case reads a few bytes; otherwise a skipping
/// parse finds it wherever it is.
pub fn resource_type_of(raw: &str) -> Option<&str> {
    let rest = raw.trim_start().strip_prefix('{')?.trim_start();
    if let Some(rest) = rest.strip_prefix("\"resourceType\"") {
        let rest = rest
            .trim_start()
            .strip_prefix(':')?
            .trim_start()
            .strip_prefix('"')?;
        let end = rest.find('"')?;
        let name = &rest[..end];
        if !name.contains('\\') {
            return Some(name);
        }
    }
    #[derive(Deserialize)]
    struct Sniff<'a> {
        #[serde(rename = "resourceType", borrow)]
        resource_type: Option<&'a str>,
    }
    serde_json::from_str::<Sniff>(raw).ok()?.resource_type
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_resource_type_first_or_later() {
        assert_eq!(
            resource_type_of(r#" { "resourceType" : "Condition", "id": "x"}"#),
            Some("Condition")
        );
        assert_eq!(
            resource_type_of(
                r#"{"id":"x","meta":{"resourceType":"No"},"resourceType":"Observation"}"#
            ),
            Some("Observation")
        );
        assert_eq!(resource_type_of(r#"{"id":"x"}"#), None);
        assert_eq!(resource_type_of(r#"[1]"#), None);
        assert_eq!(resource_type_of(r#"{"resourceType": 7}"#), None);
    }
}
