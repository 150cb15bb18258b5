//! FHIR references and ids: parsed here, once, for the record and the
//! protocol checks.

/// "urn:uuid:abc" -> "abc"; "https://x/fhir/Condition/abc" -> "abc".
pub fn id_from_full_url(full_url: &str) -> Option<&str> {
    let id = full_url
        .strip_prefix("urn:uuid:")
        .unwrap_or_else(|| full_url.rsplit('/').next().unwrap_or(""));
    (!id.is_empty()).then_some(id)
}

/// "https://x/fhir/Medication/m1/_history/2" -> "Medication/m1".
pub fn relative_reference(reference: &str) -> String {
    match type_and_id(reference) {
        Some((kind, id)) => format!("{kind}/{id}"),
        None => without_history(reference).to_owned(),
    }
}

/// "https://x/fhir/Medication/m1/_history/2" -> ("Medication", "m1").
pub fn type_and_id(reference: &str) -> Option<(&str, &str)> {
    let mut parts = without_history(reference).rsplitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(id), Some(kind)) => Some((kind, id)),
        _ => None,
    }
}

pub fn without_history(reference: &str) -> &str {
    reference.split("/_history/").next().unwrap_or(reference)
}

/// FHIR id: 1-64 of [A-Za-z0-9\-\.].
pub fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised() {
        assert_eq!(
            relative_reference("https://ehr/fhir/Medication/m1/_history/3"),
            "Medication/m1"
        );
        assert_eq!(relative_reference("Medication/m1"), "Medication/m1");
        assert_eq!(id_from_full_url("urn:uuid:abc"), Some("abc"));
    }

    #[test]
    fn ids_follow_the_fhir_pattern() {
        assert!(is_fhir_id("abc-1.2"));
        assert!(!is_fhir_id(""));
        assert!(!is_fhir_id("a/b"));
        assert!(!is_fhir_id(&"x".repeat(65)));
        assert_eq!(type_and_id("Patient/p1"), Some(("Patient", "p1")));
        assert_eq!(without_history("Patient/p1/_history/2"), "Patient/p1");
    }
}
