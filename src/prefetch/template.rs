//! Prefetch templates: `{{context.x}}` tokens (top-level primitive context
//! members) and the `{{userPractitionerId}}` family, filled in and
//! percent-encoded so a value can never change the query's shape.

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but the unreserved characters of RFC 3986.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why a template cannot be filled for a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed token in '{0}'")]
    Unclosed(String),
    /// The token (`context.encounterId`) this call has no value for.
    #[error("no value for {{{{{0}}}}}")]
    NoValue(String),
}

/// Fills a template. Fails with the token that has no value.
pub fn fill(template: &str, context: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 32);
    walk(template, context, Some(&mut out))?;
    Ok(out)
}

/// Whether every token of the template has a value in this call's context.
/// A key whose template does not (`Encounter/{{context.encounterId}}` on a
/// patient-view with no encounter) does not apply to the call: the EHR
/// cannot send it and there is nothing to fetch or to report missing.
/// Checks without building the query (it runs for each key of each call).
pub fn applies(template: &str, context: &BTreeMap<String, String>) -> bool {
    walk(template, context, None).is_ok()
}

/// Reads the template's tokens; with `out`, writes the filled query.
fn walk(
    template: &str,
    context: &BTreeMap<String, String>,
    mut out: Option<&mut String>,
) -> Result<(), TemplateError> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unclosed(template.to_owned()))?;
        let token = after[..end].trim();
        let value =
            lookup(token, context).ok_or_else(|| TemplateError::NoValue(token.to_owned()))?;
        if let Some(out) = out.as_deref_mut() {
            out.push_str(&rest[..start]);
            out.extend(utf8_percent_encode(value, VALUE));
        }
        rest = &after[end + 2..];
    }
    if let Some(out) = out {
        out.push_str(rest);
    }
    Ok(())
}

fn lookup<'c>(token: &str, context: &'c BTreeMap<String, String>) -> Option<&'c str> {
    if let Some(name) = token.strip_prefix("context.") {
        return context.get(name).map(String::as_str);
    }
    let user = context.get("userId")?;
    let (kind, id) = user.split_once('/')?;
    let wanted = match token {
        "userPractitionerId" => "Practitioner",
        "userPractitionerRoleId" => "PractitionerRole",
        "userPatientId" => "Patient",
        "userRelatedPersonId" => "RelatedPerson",
        _ => return None,
    };
    (kind == wanted).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> BTreeMap<String, String> {
        [("patientId", "p 1&x=2"), ("userId", "Practitioner/dr-7")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into()
    }

    #[test]
    fn fills_and_encodes_tokens() {
        assert_eq!(
            fill("Condition?patient={{context.patientId}}", &context()).unwrap(),
            "Condition?patient=p%201%26x%3D2"
        );
        assert_eq!(
            fill("Practitioner/{{userPractitionerId}}", &context()).unwrap(),
            "Practitioner/dr-7"
        );
        assert_eq!(
            fill("Patient/{{ context.patientId }}", &context()).unwrap(),
            "Patient/p%201%26x%3D2"
        );
    }

    #[test]
    fn a_template_applies_when_every_token_has_a_value() {
        assert!(applies(
            "Condition?patient={{context.patientId}}",
            &context()
        ));
        assert!(!applies("Encounter/{{context.encounterId}}", &context()));
        assert!(!applies("Patient/{{context.patientId", &context()));
        assert!(applies("Observation?code=x", &context()));
    }

    #[test]
    fn a_token_without_a_value_fails() {
        assert_eq!(
            fill("Encounter/{{context.encounterId}}", &context()),
            Err(TemplateError::NoValue("context.encounterId".into()))
        );
        assert_eq!(
            TemplateError::NoValue("context.encounterId".into()).to_string(),
            "no value for {{context.encounterId}}"
        );
        assert!(fill("Patient/{{userPatientId}}", &context()).is_err());
        assert!(fill("Patient/{{context.patientId", &context()).is_err());
    }
}
