//! The draft orders of order-select and order-sign, checked before the
//! rules read them: a draft the record cannot read would otherwise vanish
//! without a word (and with it a quinine warning), and a selection that
//! names no draft would quietly select nothing.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::fhir::outcome::Issue;
use crate::fhir::reference::is_fhir_id;
use crate::fhir::resource_type_of;
use crate::record::record_from;
use crate::validation::MAX_ISSUES;

#[derive(Deserialize)]
struct DraftBundle<'a> {
    #[serde(borrow, default)]
    entry: Vec<Option<&'a RawValue>>,
}

#[derive(Deserialize)]
struct DraftEntry<'a> {
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

/// The id as written: anything but a string is unreadable. `resourceType`
/// is named so that one given twice is an error: the sniffer takes the
/// first, and a quinine draft written
/// `"resourceType":"ServiceRequest","resourceType":"MedicationRequest"`
/// would never be checked.
#[derive(Deserialize)]
struct Identity {
    id: Option<serde_json::Value>,
    #[serde(rename = "resourceType")]
    _resource_type: Option<serde::de::IgnoredAny>,
}

/// Every draft must be readable: a resource with a resourceType and a valid
/// id, not given twice, and a MedicationRequest must read as one. Every
/// selection must name a draft. Each issue points at what is wrong.
pub fn check(draft_orders: Option<&RawValue>, selections: &[String]) -> Result<(), Vec<Issue>> {
    let mut issues = Vec::new();
    let mut references = HashSet::new();
    if let Some(raw) = draft_orders {
        let bundle: DraftBundle = serde_json::from_str(raw.get()).map_err(|e| {
            vec![Issue::error(
                "invalid",
                format!("draftOrders cannot be read: {e}"),
                Some("/context/draftOrders".into()),
            )]
        })?;
        for (index, entry) in bundle.entry.iter().enumerate() {
            let pointer = format!("/context/draftOrders/entry/{index}/resource");
            let resource = entry
                .and_then(|e| serde_json::from_str::<DraftEntry>(e.get()).ok())
                .and_then(|e| e.resource);
            match read_draft(resource) {
                Ok(reference) => {
                    if !references.insert(reference.clone()) {
                        issues.push(Issue::error("invalid", format!("draft {reference} is given twice: it cannot be checked"), Some(pointer)));
                    }
                }
                Err(why) => issues.push(Issue::error(
                    "invalid",
                    format!("this draft order cannot be read, so it cannot be checked (for quinine among others): {why}"),
                    Some(pointer),
                )),
            }
        }
    }
    for (index, selection) in selections.iter().enumerate() {
        if !references.contains(selection) {
            issues.push(Issue::error(
                "invalid",
                format!("selection '{selection}' names no order in draftOrders"),
                Some(format!("/context/selections/{index}")),
            ));
        }
    }
    if issues.is_empty() {
        return Ok(());
    }
    // An answer no larger than it needs to be: 200,000 unmatched selections
    // made a 33 MB OperationOutcome.
    if issues.len() > MAX_ISSUES {
        let more = issues.len() - MAX_ISSUES;
        issues.truncate(MAX_ISSUES);
        issues.push(Issue::error(
            "invalid",
            format!("and {more} more issues of the same kinds, not listed"),
            None,
        ));
    }
    Err(issues)
}

/// Why a draft order cannot be read (the OperationOutcome says it after
/// "this draft order cannot be read, ...: ").
#[derive(Debug, thiserror::Error)]
enum UnreadableDraft {
    #[error("the entry has no resource")]
    NoResource,
    #[error("it is not a FHIR resource with a resourceType")]
    NoResourceType,
    #[error("it is not readable JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("its id is not a valid FHIR id")]
    InvalidId,
    #[error("its id is not a string")]
    IdNotAString,
    #[error("it has no id")]
    NoId,
    #[error(
        "it is not a readable MedicationRequest (a member has the wrong type or is given twice)"
    )]
    UnreadableMedicationRequest,
}

/// A draft's "Type/id", or why it cannot be read.
fn read_draft(resource: Option<&RawValue>) -> Result<String, UnreadableDraft> {
    let raw = resource.ok_or(UnreadableDraft::NoResource)?.get();
    let resource_type = resource_type_of(raw).ok_or(UnreadableDraft::NoResourceType)?;
    let identity: Identity = serde_json::from_str(raw)?;
    let id = match identity.id {
        Some(serde_json::Value::String(id)) if is_fhir_id(&id) => id,
        Some(serde_json::Value::String(_)) => return Err(UnreadableDraft::InvalidId),
        Some(_) => return Err(UnreadableDraft::IdNotAString),
        None => return Err(UnreadableDraft::NoId),
    };
    if resource_type == "MedicationRequest" && record_from([raw]).medications.len() != 1 {
        return Err(UnreadableDraft::UnreadableMedicationRequest);
    }
    Ok(format!("{resource_type}/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drafts(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    const QUININE: &str = r#"{"resourceType":"MedicationRequest","id":"q","status":"draft","intent":"proposal","medicationCodeableConcept":{"text":"quinine"}}"#;

    #[test]
    fn readable_drafts_and_matching_selections_pass() {
        let bundle = drafts(&format!(
            r#"{{"resourceType":"Bundle","entry":[{{"resource":{QUININE}}}]}}"#
        ));
        assert!(check(Some(&bundle), &["MedicationRequest/q".into()]).is_ok());
    }

    #[test]
    fn each_unreadable_draft_is_named() {
        let no_id = QUININE.replace(r#""id":"q","#, "");
        let numeric = QUININE.replace(r#""id":"q""#, r#""id":7"#);
        let twice = QUININE.replace(
            r#""status":"draft""#,
            r#""status":"draft","status":"active""#,
        );
        let bundle = drafts(&format!(
            r#"{{"resourceType":"Bundle","entry":[{{"resource":{no_id}}},{{"resource":{numeric}}},{{"resource":{twice}}},{{}},{{"resource":{QUININE}}},{{"resource":{QUININE}}}]}}"#
        ));
        let issues = check(Some(&bundle), &["MedicationRequest/other".into()]).unwrap_err();
        let text = serde_json::to_string(&issues).unwrap();
        for pointer in 0..4 {
            assert!(
                text.contains(&format!("/context/draftOrders/entry/{pointer}/resource")),
                "{text}"
            );
        }
        assert!(
            text.contains("/context/draftOrders/entry/5/resource") && text.contains("given twice"),
            "{text}"
        );
        assert!(text.contains("/context/selections/0"), "{text}");
    }
}
