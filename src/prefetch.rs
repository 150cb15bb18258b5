//! Prefetch resolution: every prefetch value goes into one patient record;
//! required keys that are absent, or answered with an OperationOutcome or
//! something that is not FHIR, leave the request unsatisfied (412).

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::protocol::discovery::ServiceDefinition;
use crate::record::{Payload, PatientRecord, RecordBuilder};

#[derive(Debug)]
pub struct Unsatisfied {
    /// (key, why) for each required key without usable data.
    pub keys: Vec<(String, &'static str)>,
}

pub fn resolve(
    service: &ServiceDefinition,
    prefetch: &BTreeMap<String, Option<&RawValue>>,
) -> Result<PatientRecord, Unsatisfied> {
    let mut builder = RecordBuilder::new();
    let mut unusable = Vec::new();
    for (key, value) in prefetch {
        // `null` means the EHR has no data for the query: satisfied, empty.
        let Some(value) = value else { continue };
        match builder.add_json(value.get()) {
            Payload::Data => {}
            Payload::OperationOutcome => unusable.push((key.clone(), "the EHR answered it with an OperationOutcome")),
            Payload::NotAResource => unusable.push((key.clone(), "it is not a FHIR resource")),
        }
    }
    let mut missing: Vec<(String, &'static str)> = service
        .required_prefetch
        .iter()
        .filter(|key| !prefetch.contains_key(*key))
        .map(|key| (key.clone(), "it was not sent"))
        .collect();
    missing.extend(unusable.into_iter().filter(|(key, _)| service.required_prefetch.contains(key)));
    if missing.is_empty() {
        Ok(builder.finish())
    } else {
        Err(Unsatisfied { keys: missing })
    }
}
