//! The patient record: every resource of every prefetch value (and of a
//! posted Bundle), read once into the typed model and de-duplicated by type
//! and id. Malformed resources are skipped and counted; resource types the
//! rules never read are not even parsed.

use foldhash::{HashMap, HashSet};

use crate::fhir::model::{
    CodeableConcept, Condition, Encounter, FhirValue, Medication, MedicationOrder, Observation, Patient, Procedure,
    RawBundle, Resource, Text, TypedBundle,
};
use crate::fhir::resource_type_of;

/// A resource the rules read, with the "Type/id" reference that cites it.
#[derive(Debug, Clone)]
pub struct Cited<T> {
    pub reference: String,
    pub resource: T,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MedicationSource {
    Request,
    Statement,
}

/// A MedicationRequest or MedicationStatement with its medicine resolved:
/// the inline concept, or the code and ingredients of the contained or
/// included Medication it references.
#[derive(Debug, Clone)]
pub struct MedicationUse<'a> {
    pub reference: String,
    pub source: MedicationSource,
    pub status: Option<Text<'a>>,
    pub concepts: Vec<CodeableConcept<'a>>,
    medication_reference: Option<Text<'a>>,
    contained: Vec<Medication<'a>>,
}

impl<'a> MedicationUse<'a> {
    fn new(reference: String, source: MedicationSource, order: MedicationOrder<'a>) -> Self {
        MedicationUse {
            reference,
            source,
            status: order.status,
            concepts: order.medication_codeable_concept.into_iter().collect(),
            medication_reference: order.medication_reference.and_then(|r| r.reference),
            contained: order
                .contained
                .into_iter()
                .filter_map(|resource| match resource {
                    Resource::Medication(medication) => Some(*medication),
                    _ => None,
                })
                .collect(),
        }
    }

    /// Active per the rules: a request active or on-hold; a statement
    /// active, intended or on-hold.
    pub fn is_active(&self) -> bool {
        let status = self.status.as_deref().unwrap_or("");
        match self.source {
            MedicationSource::Request => matches!(status, "active" | "on-hold"),
            MedicationSource::Statement => matches!(status, "active" | "intended" | "on-hold"),
        }
    }

    /// A readable name for card text.
    pub fn label(&self) -> &str {
        self.concepts.iter().find_map(|c| c.label()).unwrap_or("unnamed medicine")
    }
}

#[derive(Debug, Default)]
/// Borrows its text from the JSON it was read from.
pub struct PatientRecord<'a> {
    pub patient: Option<Cited<Patient<'a>>>,
    // Boxed as the reader made them: moving a resource out of its box into
    // the list copied a few hundred bytes per resource.
    pub conditions: Vec<Cited<Box<Condition<'a>>>>,
    pub observations: Vec<Cited<Box<Observation<'a>>>>,
    pub medications: Vec<MedicationUse<'a>>,
    pub procedures: Vec<Cited<Box<Procedure<'a>>>>,
    pub encounters: Vec<Cited<Box<Encounter<'a>>>>,
    pub stats: RecordStats,
}

/// What building the record skipped, for the logs (never for the cards).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordStats {
    pub read: usize,
    pub malformed: usize,
    pub duplicates: usize,
    pub other_types: usize,
}

impl<'a> PatientRecord<'a> {
    pub fn encounter(&self, id: &str) -> Option<&Cited<Box<Encounter<'a>>>> {
        self.encounters.iter().find(|e| e.reference.strip_prefix("Encounter/") == Some(id))
    }

    pub fn patient_reference(&self) -> Option<&str> {
        self.patient.as_ref().map(|p| p.reference.as_str())
    }
}

/// What a prefetch value turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// A resource or a Bundle of them: data for the record.
    Data,
    /// The EHR could not satisfy the query: treat the key as missing.
    OperationOutcome,
    /// JSON that is not a FHIR resource.
    NotAResource,
}

#[derive(Default)]
pub struct RecordBuilder<'a> {
    record: PatientRecord<'a>,
    /// (type, id) of every resource read: borrowed, not a String each.
    /// foldhash is randomly seeded, so ids chosen to collide cannot make
    /// this set quadratic.
    seen: HashSet<(&'static str, Text<'a>)>,
    medications: HashMap<String, Medication<'a>>,
    medication_aliases: HashMap<Text<'a>, String>,
}

impl<'a> RecordBuilder<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one JSON value: a resource, or a Bundle. A Bundle is read in
    /// one typed pass; when some entry is malformed, it is read again entry
    /// by entry so that a bad entry costs only itself.
    pub fn add_json(&mut self, raw: &'a str) -> Payload {
        match resource_type_of(raw) {
            Some("Bundle") => {
                self.add_bundle(raw);
                Payload::Data
            }
            Some("OperationOutcome") => Payload::OperationOutcome,
            Some(_) => {
                self.add_raw_resource(raw, None);
                Payload::Data
            }
            None => Payload::NotAResource,
        }
    }

    /// Takes a value already read in the request's single typed pass.
    pub fn add_value(&mut self, value: FhirValue<'a>) -> Payload {
        match value {
            FhirValue::Bundle(bundle) => {
                self.add_entries(bundle);
                Payload::Data
            }
            FhirValue::OperationOutcome => Payload::OperationOutcome,
            FhirValue::Resource(_, resource) => {
                self.add_resource(resource, None);
                Payload::Data
            }
        }
    }

    fn add_bundle(&mut self, raw: &'a str) {
        if let Ok(bundle) = serde_json::from_str::<TypedBundle>(raw) {
            self.add_entries(bundle);
            return;
        }
        match serde_json::from_str::<RawBundle>(raw) {
            Ok(bundle) => {
                for entry in bundle.entry {
                    if let Some(resource) = entry.resource {
                        self.add_raw_resource(resource.get(), entry.full_url.as_ref());
                    }
                }
            }
            Err(_) => self.record.stats.malformed += 1,
        }
    }

    fn add_entries(&mut self, bundle: TypedBundle<'a>) {
        for entry in bundle.entry {
            if let Some(resource) = entry.resource {
                self.add_resource(resource, entry.full_url.as_ref());
            }
        }
    }

    fn add_raw_resource(&mut self, raw: &'a str, full_url: Option<&Text<'a>>) {
        match serde_json::from_str::<Resource>(raw) {
            Ok(resource) => self.add_resource(resource, full_url),
            Err(_) => self.record.stats.malformed += 1,
        }
    }

    fn add_resource(&mut self, resource: Resource<'a>, full_url: Option<&Text<'a>>) {
        let Some(kind) = resource.type_name() else {
            // OperationOutcome entries are search warnings; nested Bundles
            // and everything else are not part of what the rules read.
            match resource {
                Resource::Untyped => self.record.stats.malformed += 1,
                _ => self.record.stats.other_types += 1,
            }
            return;
        };
        let reference = match self.claim(kind, resource.id(), full_url) {
            Claim::New(reference) => reference,
            Claim::Duplicate => {
                self.record.stats.duplicates += 1;
                return;
            }
            Claim::Malformed => {
                self.record.stats.malformed += 1;
                return;
            }
        };
        self.record.stats.read += 1;
        let record = &mut self.record;
        match resource {
            Resource::Patient(patient) => {
                if record.patient.is_none() {
                    record.patient = Some(Cited { reference, resource: patient });
                }
            }
            Resource::Condition(condition) => record.conditions.push(Cited { reference, resource: condition }),
            Resource::Observation(observation) => record.observations.push(Cited { reference, resource: observation }),
            Resource::Procedure(procedure) => record.procedures.push(Cited { reference, resource: procedure }),
            Resource::Encounter(encounter) => record.encounters.push(Cited { reference, resource: encounter }),
            Resource::Medication(medication) => {
                if let Some(url) = full_url {
                    self.medication_aliases.insert(url.clone(), reference.clone());
                }
                self.medications.insert(reference, *medication);
            }
            Resource::MedicationRequest(order) => record.medications.push(MedicationUse::new(reference, MedicationSource::Request, *order)),
            Resource::MedicationStatement(order) => {
                record.medications.push(MedicationUse::new(reference, MedicationSource::Statement, *order))
            }
            Resource::Other | Resource::Untyped => unreachable!("typed above"),
        }
    }

    /// The "Type/id" reference of a new resource. The id is the resource's,
    /// else the last segment of its fullUrl; it must be a valid FHIR id.
    fn claim(&mut self, resource_type: &'static str, id: Option<&Text<'a>>, full_url: Option<&Text<'a>>) -> Claim {
        let id = match id {
            Some(id) => Some(id.clone()),
            None => full_url.and_then(|url| url.sub_text(id_from_full_url)),
        };
        let Some(id) = id.filter(|id| is_fhir_id(id)) else {
            return Claim::Malformed;
        };
        let mut reference = String::with_capacity(resource_type.len() + 1 + id.len());
        reference.push_str(resource_type);
        reference.push('/');
        reference.push_str(&id);
        if self.seen.insert((resource_type, id)) {
            Claim::New(reference)
        } else {
            Claim::Duplicate
        }
    }

    /// Resolves every medicationReference now that all Medications are known.
    pub fn finish(mut self) -> PatientRecord<'a> {
        for use_ in &mut self.record.medications {
            if !use_.concepts.is_empty() {
                continue;
            }
            let Some(target) = use_.medication_reference.as_deref() else { continue };
            let medication = match target.strip_prefix('#') {
                Some(local) => use_.contained.iter().find(|m| m.id.as_deref() == Some(local)),
                None => {
                    let key = self.medication_aliases.get(target).cloned().unwrap_or_else(|| relative_reference(target));
                    self.medications.get(&key)
                }
            };
            if let Some(medication) = medication {
                use_.concepts.extend(medication.code.iter().cloned());
                use_.concepts
                    .extend(medication.ingredient.iter().filter_map(|i| i.item_codeable_concept.clone()));
            }
        }
        self.record
    }
}

enum Claim {
    New(String),
    Duplicate,
    Malformed,
}

/// "urn:uuid:abc" -> "abc"; "https://x/fhir/Condition/abc" -> "abc".
fn id_from_full_url(full_url: &str) -> Option<&str> {
    let id = full_url.strip_prefix("urn:uuid:").unwrap_or_else(|| full_url.rsplit('/').next().unwrap_or(""));
    (!id.is_empty()).then_some(id)
}

/// "https://x/fhir/Medication/m1/_history/2" -> "Medication/m1".
fn relative_reference(reference: &str) -> String {
    let without_history = reference.split("/_history/").next().unwrap_or(reference);
    let mut parts = without_history.rsplitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(id), Some(kind)) => format!("{kind}/{id}"),
        _ => without_history.to_owned(),
    }
}

/// FHIR id: 1-64 of [A-Za-z0-9\-\.].
pub fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Builds a record from any number of JSON values (prefetch values, a Bundle).
pub fn record_from<'a>(values: impl IntoIterator<Item = &'a str>) -> PatientRecord<'a> {
    let mut builder = RecordBuilder::new();
    for raw in values {
        builder.add_json(raw);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_entries_are_read_one_by_one_and_deduplicated() {
        let bundle = r#"{"resourceType":"Bundle","type":"searchset","entry":[
            {"resource":{"resourceType":"Condition","id":"c1","code":{"text":"Leg cramps"}}},
            {"resource":{"resourceType":"Condition","id":"c1","code":{"text":"Leg cramps"}}},
            {"resource":{"resourceType":"Condition","id":"c2","code":"not a concept"}},
            {"resource":{"resourceType":"Claim","id":"x"}},
            {"resource":{"id":"no-type"}},
            {"fullUrl":"urn:uuid:p-1","resource":{"resourceType":"Patient","birthDate":"1950-01-01"}}
        ]}"#;
        let record = record_from([bundle]);
        assert_eq!(record.conditions.len(), 1);
        assert_eq!(record.conditions[0].reference, "Condition/c1");
        assert_eq!(record.patient.as_ref().unwrap().reference, "Patient/p-1");
        assert_eq!(record.stats, RecordStats { read: 2, malformed: 2, duplicates: 1, other_types: 1 });
    }

    #[test]
    fn medication_references_resolve_to_contained_and_included() {
        let bundle = r##"{"resourceType":"Bundle","entry":[
            {"resource":{"resourceType":"MedicationRequest","id":"mr1","status":"active","medicationReference":{"reference":"#m"},
              "contained":[{"resourceType":"Medication","id":"m","code":{"text":"furosemide 40 mg"}}]}},
            {"resource":{"resourceType":"MedicationRequest","id":"mr2","status":"active","medicationReference":{"reference":"Medication/m2"}}},
            {"fullUrl":"urn:uuid:m3","resource":{"resourceType":"Medication","id":"m3","code":{"text":"atenolol"}}},
            {"resource":{"resourceType":"MedicationStatement","id":"ms1","status":"active","medicationReference":{"reference":"urn:uuid:m3"}}},
            {"resource":{"resourceType":"Medication","id":"m2","code":{"text":"simvastatin"},
              "ingredient":[{"itemCodeableConcept":{"text":"ezetimibe"}}]}}
        ]}"##;
        let record = record_from([bundle]);
        let labels: Vec<Vec<&str>> =
            record.medications.iter().map(|m| m.concepts.iter().filter_map(|c| c.label()).collect()).collect();
        assert_eq!(labels, vec![vec!["furosemide 40 mg"], vec!["simvastatin", "ezetimibe"], vec!["atenolol"]]);
    }

    #[test]
    fn operation_outcome_and_non_resources_are_reported() {
        let mut builder = RecordBuilder::new();
        assert_eq!(builder.add_json(r#"{"resourceType":"OperationOutcome","issue":[]}"#), Payload::OperationOutcome);
        assert_eq!(builder.add_json(r#"[1,2]"#), Payload::NotAResource);
        assert_eq!(builder.add_json(r#"{"resourceType":"Bundle","entry":"oops"}"#), Payload::Data);
        assert_eq!(builder.finish().stats.malformed, 1);
    }

    #[test]
    fn references_are_normalised() {
        assert_eq!(relative_reference("https://ehr/fhir/Medication/m1/_history/3"), "Medication/m1");
        assert_eq!(relative_reference("Medication/m1"), "Medication/m1");
        assert_eq!(id_from_full_url("urn:uuid:abc"), Some("abc"));
    }
}
