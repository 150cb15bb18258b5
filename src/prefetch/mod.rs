//! Prefetch resolution: every prefetch value the EHR sent, and every page
//! fetched from its FHIR server for the keys it did not send, go into one
//! patient record. A required key without usable data leaves the request
//! unsatisfied (412), with the reason.

pub mod fetch;
mod orchestrate;
pub mod template;
pub mod trust;

pub use orchestrate::{fetch_missing, FetchPlan};

use std::collections::BTreeMap;

use crate::protocol::discovery::ServiceDefinition;
use crate::protocol::request::Prefetched;
use crate::record::{PatientRecord, Payload, RecordBuilder, Unread};
use fetch::{FetchError, Fetched};

#[derive(Debug)]
pub struct Unsatisfied {
    /// (key, why) for each required key without usable data.
    pub keys: Vec<(String, String)>,
}

/// The service's prefetch keys the EHR left for us to fetch: absent, or
/// answered with an OperationOutcome (`null` means "no data": nothing to
/// fetch); only keys whose template applies to this call's context.
pub fn keys_to_fetch(
    service: &ServiceDefinition,
    sent: &BTreeMap<String, Option<Prefetched>>,
    context: &BTreeMap<String, String>,
) -> Vec<String> {
    service
        .prefetch
        .iter()
        .filter(|(key, _)| match sent.get(*key) {
            None => true,
            Some(None) => false,
            Some(Some(value)) => value.is_operation_outcome(),
        })
        .filter(|(_, query)| template::applies(query, context))
        .map(|(key, _)| key)
        .cloned()
        .collect()
}

/// `context`: the call's context values, to tell which keys apply to it.
pub fn resolve<'a>(
    service: &ServiceDefinition,
    sent: BTreeMap<String, Option<Prefetched<'a>>>,
    fetched: &'a [(String, Fetched)],
    context: &BTreeMap<String, String>,
) -> Result<PatientRecord<'a>, Unsatisfied> {
    let mut builder = RecordBuilder::new();
    let mut problems: BTreeMap<String, String> = BTreeMap::new();
    let mut sent_keys = Vec::with_capacity(sent.len());
    for (key, value) in sent {
        // `null` means the EHR has no data for the query: satisfied, empty.
        let payload = match value {
            None => None,
            Some(Prefetched::Read(value)) => Some(builder.add_value(value)),
            Some(Prefetched::Raw(raw)) => Some(builder.add_json(raw.get())),
        };
        match payload {
            None | Some(Payload::Data) => {}
            Some(Payload::OperationOutcome) => {
                problems.insert(
                    key.clone(),
                    "the EHR answered it with an OperationOutcome".into(),
                );
            }
            Some(Payload::NotAResource) => {
                problems.insert(key.clone(), "it is not a FHIR resource".into());
            }
        }
        sent_keys.push(key);
    }
    let mut cut_short = Vec::new();
    for (key, result) in fetched {
        match result {
            Ok(pages) => {
                problems.remove(key.as_str());
                // Fetched pages count against --fhir-max-entries (as they
                // arrived), not against the request's own entry limit.
                crate::limits::uncounted(|| {
                    for page in &pages.documents {
                        builder.add_json(page);
                    }
                });
                if let Some(why) = &pages.cut {
                    cut_short.push(Unread {
                        key: key.clone(),
                        reason: why.to_string(),
                    });
                }
            }
            Err(error) => {
                problems.insert(key.clone(), format!("fetching it failed: {error}"));
            }
        }
    }
    let mut unsatisfied = Vec::new();
    for key in &service.required_prefetch {
        let fetched_ok = fetched.iter().any(|(k, r)| k == key && r.is_ok());
        if let Some(reason) = problems.get(key.as_str()) {
            unsatisfied.push((key.clone(), reason.clone()));
        } else if !sent_keys.contains(key) && !fetched_ok {
            unsatisfied.push((
                key.clone(),
                "it was not sent and there is no fhirServer to fetch it from".into(),
            ));
        }
    }
    if unsatisfied.is_empty() {
        let mut record = builder.finish();
        // r2 §5: what could not be read is said, not hidden: an optional key
        // with no usable data (unreadable, not fetched, or neither sent nor
        // fetchable), and any key whose pages were cut short.
        let absent = service.prefetch.iter().filter_map(|(key, query)| {
            // Cheapest first: most keys were sent.
            let absent = !sent_keys.contains(key)
                && !problems.contains_key(key.as_str())
                && !fetched.iter().any(|(k, _)| k == key)
                && template::applies(query, context);
            absent.then_some(key)
        });
        let absent: Vec<Unread> = absent
            .map(|key| Unread {
                key: key.clone(),
                reason: "it was not sent and there is no fhirServer to fetch it from".into(),
            })
            .collect();
        record.unread = problems
            .into_iter()
            // A key the EHR sent that the service never asked for says
            // nothing to the answer; a Medication fetched by id does.
            .filter(|(key, _)| {
                (service.prefetch.contains_key(key) || fetched.iter().any(|(k, _)| k == key))
                    && !service.required_prefetch.contains(key)
            })
            .map(|(key, reason)| Unread { key, reason })
            .chain(absent)
            .chain(cut_short)
            .collect();
        Ok(record)
    } else {
        Err(Unsatisfied { keys: unsatisfied })
    }
}

/// Every key fails the same way (no usable server, say).
pub fn all_failed(keys: &[String], error: FetchError) -> Vec<(String, Fetched)> {
    keys.iter()
        .map(|key| (key.clone(), Err(error.clone())))
        .collect()
}
