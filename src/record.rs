//! The patient record: every resource of every prefetch value (and of a
//! posted Bundle), read once into the typed model and de-duplicated by type
//! and id. Malformed resources are skipped and counted; resource types the
//! rules never read are not even parsed.

use foldhash::{HashMap, HashSet};

use crate::fhir::reference::{id_from_full_url, is_fhir_id, relative_reference, type_and_id};

use crate::fhir::model::{
    CodeableConcept, Condition, DateSpan, DiagnosticReport, Encounter, FhirValue, ImagingStudy,
    Medication, MedicationOrder, Observation, Patient, Procedure, Quantity, RawBundle, Reference,
    Resource, ServiceRequest, SpanPeriod, Text, TypedBundle,
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
    /// An order not to give it (`doNotPerform`): never a medicine taken
    /// or about to be.
    pub do_not_perform: bool,
    pub concepts: Vec<CodeableConcept<'a>>,
    /// Dosage routes, and the dose form of a referenced Medication.
    pub routes: Vec<CodeableConcept<'a>>,
    pub dates: MedicationDates,
    subject: Option<Text<'a>>,
    medication_reference: Option<Text<'a>>,
    medication_display: Option<Text<'a>>,
    contained: Vec<Medication<'a>>,
    /// What the medicine is known by when its reference resolved to no
    /// Medication (see [`MedicineKnown`]).
    pub medicine: MedicineKnown,
}

/// How a MedicationRequest or MedicationStatement names its medicine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MedicineKnown {
    /// Coded or written inline, or its referenced Medication was read.
    #[default]
    Read,
    /// Only by the reference's display text: the Medication was not read.
    ByDisplayOnly,
    /// Not at all: a reference to a Medication nobody sent or fetched.
    Unread,
}

/// The dates that say whether a medicine is still taken (clinical-rules.md
/// §3 "current"): a request's order date, validity and expected supply; a
/// statement's assertion date and effective time.
#[derive(Debug, Clone, Default)]
pub struct MedicationDates {
    pub authored_on: Option<DateSpan>,
    pub validity: Option<SpanPeriod>,
    /// Expected supply in days, when its unit is one of time.
    pub supply_days: Option<f64>,
    pub asserted: Option<DateSpan>,
    /// effectiveDateTime (as a start) or effectivePeriod.
    pub effective: Option<SpanPeriod>,
}

impl MedicationDates {
    fn of(order: &MedicationOrder) -> Self {
        let dispense = order.dispense_request.as_ref();
        MedicationDates {
            authored_on: order.authored_on,
            validity: dispense.and_then(|d| d.validity_period),
            supply_days: dispense
                .and_then(|d| d.expected_supply_duration.as_ref())
                .and_then(duration_days),
            asserted: order.date_asserted,
            effective: order.effective_period.or_else(|| {
                order.effective_date_time.map(|at| SpanPeriod {
                    start: Some(at),
                    end: None,
                })
            }),
        }
    }
}

/// A Duration in days (UCUM d, wk, mo, a, or the words); None for a unit
/// that is not one of time, or an impossible value.
fn duration_days(duration: &Quantity) -> Option<f64> {
    let value = duration.value.filter(|v| v.is_finite() && *v > 0.0)?;
    let per_unit = match duration.unit_text()?.trim().to_ascii_lowercase().as_str() {
        "d" | "day" | "days" => 1.0,
        "wk" | "week" | "weeks" => 7.0,
        "mo" | "month" | "months" => 30.0,
        "a" | "year" | "years" => 365.0,
        _ => return None,
    };
    Some(value * per_unit)
}

impl<'a> MedicationUse<'a> {
    fn new(reference: String, source: MedicationSource, order: MedicationOrder<'a>) -> Self {
        let dates = MedicationDates::of(&order);
        MedicationUse {
            reference,
            source,
            status: order.status,
            do_not_perform: order.do_not_perform == Some(true),
            routes: order
                .dosage_instruction
                .into_iter()
                .chain(order.dosage)
                .filter_map(|dosage| dosage.route)
                .collect(),
            dates,
            concepts: order.medication_codeable_concept.into_iter().collect(),
            subject: order.subject.and_then(|s| s.reference),
            medication_display: order
                .medication_reference
                .as_ref()
                .and_then(|r| r.display.clone()),
            medication_reference: order.medication_reference.and_then(|r| r.reference),
            medicine: MedicineKnown::Read,
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

    /// Active per the rules: a request or a statement active or on-hold
    /// (r2: a statement "intended" is not yet taken).
    pub fn is_active(&self) -> bool {
        !self.do_not_perform && matches!(self.status.as_deref(), Some("active" | "on-hold"))
    }

    /// A readable name for card text.
    pub fn label(&self) -> &str {
        self.concepts
            .iter()
            .find_map(|c| c.label())
            .unwrap_or("unnamed medicine")
    }
}

#[derive(Debug, Default)]
/// Borrows its text from the JSON it was read from.
pub struct PatientRecord<'a> {
    /// Every Patient resource read, in order; after `keep_patient`, the
    /// patient's own, theirs by id first.
    pub patients: Vec<Cited<Patient<'a>>>,
    // Boxed as the reader made them: moving a resource out of its box into
    // the list copied a few hundred bytes per resource.
    pub conditions: Vec<Cited<Box<Condition<'a>>>>,
    pub observations: Vec<Cited<Box<Observation<'a>>>>,
    pub medications: Vec<MedicationUse<'a>>,
    pub procedures: Vec<Cited<Box<Procedure<'a>>>>,
    pub encounters: Vec<Cited<Box<Encounter<'a>>>>,
    /// §6: the DVT work-up already ordered or done.
    pub service_requests: Vec<Cited<Box<ServiceRequest<'a>>>>,
    pub diagnostic_reports: Vec<Cited<Box<DiagnosticReport<'a>>>>,
    pub imaging_studies: Vec<Cited<Box<ImagingStudy<'a>>>>,
    pub stats: RecordStats,
    /// Prefetch keys that could not be read, or not whole (r2 §5): the
    /// rules say what they could not check.
    pub unread: Vec<Unread>,
    /// The Medications read, for orders read later (the drafts).
    pub included: IncludedMedications<'a>,
    /// (fullUrl, Patient.id) of each Patient entry, to tell whom a
    /// `urn:uuid:` subject names.
    patient_urls: Vec<(Text<'a>, Option<Text<'a>>)>,
}

/// A prefetch key the record lacks, wholly or in part, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub key: String,
    pub reason: String,
}

/// What building the record skipped, for the logs (never for the cards).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordStats {
    pub read: usize,
    pub malformed: usize,
    pub duplicates: usize,
    pub other_types: usize,
    /// Shown by their subject (or id) to be another patient's: dropped.
    pub other_patient: usize,
}

impl<'a> PatientRecord<'a> {
    pub fn encounter(&self, id: &str) -> Option<&Cited<Box<Encounter<'a>>>> {
        self.encounters
            .iter()
            .find(|e| e.reference.strip_prefix("Encounter/") == Some(id))
    }

    /// The patient the rules read age and sex from.
    pub fn patient(&self) -> Option<&Cited<Patient<'a>>> {
        self.patients.first()
    }

    pub fn patient_reference(&self) -> Option<&str> {
        self.patient().map(|p| p.reference.as_str())
    }

    /// Drops what the record shows to be another patient's: a Patient
    /// with another id, and every resource whose subject names another
    /// Patient. The patient is `patient_id` (a hook's context.patientId),
    /// else, for a posted Bundle, the first Patient with an id. Records the
    /// patient's Patient resources link to (merged or replaced records) are
    /// the same person. A subject that names no Patient id the record can
    /// resolve (an unknown `urn:uuid:`, a Group, none at all) is kept:
    /// nothing shows it is someone else's.
    pub fn keep_patient(&mut self, patient_id: Option<&str>) {
        let Some(own) =
            patient_id.or_else(|| self.patients.iter().find_map(|p| p.resource.id.as_deref()))
        else {
            return;
        };
        let own = own.to_owned();
        // Hashed, so that a Bundle of many Patients and subjects stays linear.
        let mut urls = PatientUrls::default();
        for (url, id) in &self.patient_urls {
            urls.entry(url).or_insert(id.as_deref());
        }
        let same_person = same_person(&own, &self.patients, &urls);
        let is_the_patient = |id: &str| same_person.contains(id);
        // Nearly every subject is written `Patient/<id>`: compared, not parsed.
        let own_reference = format!("Patient/{own}");
        let belongs = |subject: Option<&str>| {
            subject.is_none_or(|r| {
                r == own_reference || patient_named(r, &urls).is_none_or(is_the_patient)
            })
        };
        let before = self.len();
        self.patients
            .retain(|p| p.resource.id.as_deref().is_none_or(is_the_patient));
        // Stable: the Patient whose id is the patient's comes first.
        self.patients
            .sort_by_key(|p| p.resource.id.as_deref() != Some(own.as_str()));
        self.conditions
            .retain(|c| belongs(subject_of(&c.resource.subject)));
        self.observations
            .retain(|o| belongs(subject_of(&o.resource.subject)));
        self.procedures
            .retain(|p| belongs(subject_of(&p.resource.subject)));
        self.encounters
            .retain(|e| belongs(subject_of(&e.resource.subject)));
        self.service_requests
            .retain(|r| belongs(subject_of(&r.resource.subject)));
        self.diagnostic_reports
            .retain(|r| belongs(subject_of(&r.resource.subject)));
        self.imaging_studies
            .retain(|r| belongs(subject_of(&r.resource.subject)));
        self.medications.retain(|m| belongs(m.subject.as_deref()));
        self.stats.other_patient += before - self.len();
    }

    fn len(&self) -> usize {
        self.patients.len()
            + self.conditions.len()
            + self.observations.len()
            + self.procedures.len()
            + self.encounters.len()
            + self.service_requests.len()
            + self.diagnostic_reports.len()
            + self.imaging_studies.len()
            + self.medications.len()
    }
}

/// A Patient entry's fullUrl -> its Patient.id, when it has one.
type PatientUrls<'r> = HashMap<&'r str, Option<&'r str>>;

fn subject_of<'r>(subject: &'r Option<Reference<'_>>) -> Option<&'r str> {
    subject.as_ref().and_then(|s| s.reference.as_deref())
}

/// The patient's id and the ids of the Patient records that the patient's
/// own Patient resource declares merged with it (`replaced-by`/`replaces`
/// links; the model keeps no other type). A link declared only on another
/// Patient resource merges nothing: anyone can write one.
fn same_person(own: &str, patients: &[Cited<Patient<'_>>], urls: &PatientUrls) -> HashSet<String> {
    let mut ids = HashSet::default();
    ids.insert(own.to_owned());
    for patient in patients
        .iter()
        .filter(|p| p.resource.id.as_deref() == Some(own))
    {
        let linked = patient
            .resource
            .links
            .iter()
            .filter_map(|l| l.reference.as_deref())
            .filter_map(|r| patient_named(r, urls));
        ids.extend(linked.map(str::to_owned));
    }
    ids
}

/// The Patient id a reference names, when the record can tell: a Patient
/// entry's fullUrl resolves to that Patient's id; `Patient/x` and
/// `https://server/fhir/Patient/x[/_history/n]` name x. Anything else (an
/// unresolved `urn:`, a contained `#id`, a Group) names no one.
fn patient_named<'r>(reference: &'r str, urls: &PatientUrls<'r>) -> Option<&'r str> {
    if let Some(id) = urls.get(reference) {
        return *id;
    }
    if reference.starts_with("urn:") || reference.starts_with('#') {
        return None;
    }
    match type_and_id(reference) {
        Some(("Patient", id)) if is_fhir_id(id) => Some(id),
        _ => None,
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
    included: IncludedMedications<'a>,
}

/// The Medication resources a record read (an `_include`, a fetch), by
/// reference, for the orders that name their medicine by reference.
#[derive(Debug, Default, Clone)]
pub struct IncludedMedications<'a> {
    by_reference: HashMap<String, Medication<'a>>,
    /// fullUrl -> "Medication/id".
    aliases: HashMap<Text<'a>, String>,
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
        // One growth instead of a rehash at every doubling (1.9% of the
        // workers' samples at 100 KB).
        self.seen.reserve(bundle.entry.len());
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
                if let Some(url) = full_url {
                    record.patient_urls.push((url.clone(), patient.id.clone()));
                }
                record.patients.push(Cited {
                    reference,
                    resource: *patient,
                });
            }
            Resource::Condition(condition) => record.conditions.push(Cited {
                reference,
                resource: condition,
            }),
            Resource::Observation(observation) => record.observations.push(Cited {
                reference,
                resource: observation,
            }),
            Resource::Procedure(procedure) => record.procedures.push(Cited {
                reference,
                resource: procedure,
            }),
            Resource::Encounter(encounter) => record.encounters.push(Cited {
                reference,
                resource: encounter,
            }),
            Resource::ServiceRequest(request) => record.service_requests.push(Cited {
                reference,
                resource: request,
            }),
            Resource::DiagnosticReport(report) => record.diagnostic_reports.push(Cited {
                reference,
                resource: report,
            }),
            Resource::ImagingStudy(study) => record.imaging_studies.push(Cited {
                reference,
                resource: study,
            }),
            Resource::Medication(medication) => {
                if let Some(url) = full_url {
                    self.included.aliases.insert(url.clone(), reference.clone());
                }
                self.included.by_reference.insert(reference, *medication);
            }
            Resource::MedicationRequest(order) => record.medications.push(MedicationUse::new(
                reference,
                MedicationSource::Request,
                *order,
            )),
            Resource::MedicationStatement(order) => record.medications.push(MedicationUse::new(
                reference,
                MedicationSource::Statement,
                *order,
            )),
            Resource::Other | Resource::Untyped => unreachable!("typed above"),
        }
    }

    /// The "Type/id" reference of a new resource. The id is the resource's,
    /// else the last segment of its fullUrl; it must be a valid FHIR id.
    fn claim(
        &mut self,
        resource_type: &'static str,
        id: Option<&Text<'a>>,
        full_url: Option<&Text<'a>>,
    ) -> Claim {
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
            let Some(target) = use_.medication_reference.as_deref() else {
                use_.medicine = MedicineKnown::Unread;
                continue;
            };
            let medication = match target.strip_prefix('#') {
                Some(local) => use_
                    .contained
                    .iter()
                    .find(|m| m.id.as_deref() == Some(local)),
                None => {
                    let key = self
                        .included
                        .aliases
                        .get(target)
                        .cloned()
                        .unwrap_or_else(|| relative_reference(target));
                    self.included.by_reference.get(&key)
                }
            };
            match (medication, &use_.medication_display) {
                (Some(medication), _) => {
                    use_.concepts.extend(medication.code.iter().cloned());
                    use_.routes.extend(medication.form.iter().cloned());
                    use_.concepts.extend(
                        medication
                            .ingredient
                            .iter()
                            .filter_map(|i| i.item_codeable_concept.clone()),
                    );
                }
                // The reference's own text names the medicine: read as the
                // medicine's text ("quinine sulfate 324 mg"), so it is still
                // checked, and the Medication is still fetched when it can be.
                (None, Some(display)) => {
                    use_.concepts.push(CodeableConcept {
                        coding: Vec::new(),
                        text: Some(display.clone()),
                    });
                    use_.medicine = MedicineKnown::ByDisplayOnly;
                }
                (None, None) => use_.medicine = MedicineKnown::Unread,
            }
        }
        self.record.included = self.included;
        self.record
    }
}

enum Claim {
    New(String),
    Duplicate,
    Malformed,
}

/// Builds a record from any number of JSON values (prefetch values, a Bundle).
/// At most this many referenced Medications are fetched for one call.
pub const MAX_MEDICATION_FETCHES: usize = 50;

impl PatientRecord<'_> {
    /// `Medication/<id>` of each medicine a MedicationRequest or
    /// MedicationStatement references but the record neither contains nor
    /// includes: what to fetch by id (prefetch templates use no `_include`).
    pub fn unresolved_medications(&self) -> Vec<String> {
        let mut references: Vec<String> = self
            .medications
            .iter()
            .filter(|m| m.medicine != MedicineKnown::Read)
            .filter_map(|m| m.medication_reference.as_deref())
            .filter(|r| !r.starts_with('#'))
            .map(relative_reference)
            .filter(|r| r.strip_prefix("Medication/").is_some_and(is_fhir_id))
            .collect();
        references.sort();
        references.dedup();
        references.truncate(MAX_MEDICATION_FETCHES);
        references
    }
}

pub fn record_from<'a>(values: impl IntoIterator<Item = &'a str>) -> PatientRecord<'a> {
    record_knowing(values, &IncludedMedications::default())
}

/// [`record_from`], its orders' references resolved also against Medications
/// read elsewhere: draft orders may name a Medication the prefetch holds.
pub fn record_knowing<'a>(
    values: impl IntoIterator<Item = &'a str>,
    known: &IncludedMedications<'a>,
) -> PatientRecord<'a> {
    let mut builder = RecordBuilder::new();
    builder.included = known.clone();
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
        assert_eq!(record.patient_reference(), Some("Patient/p-1"));
        assert_eq!(
            record.stats,
            RecordStats {
                read: 2,
                malformed: 2,
                duplicates: 1,
                other_types: 1,
                other_patient: 0
            }
        );
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
        let labels: Vec<Vec<&str>> = record
            .medications
            .iter()
            .map(|m| m.concepts.iter().filter_map(|c| c.label()).collect())
            .collect();
        assert_eq!(
            labels,
            vec![
                vec!["furosemide 40 mg"],
                vec!["simvastatin", "ezetimibe"],
                vec!["atenolol"]
            ]
        );
    }

    #[test]
    fn operation_outcome_and_non_resources_are_reported() {
        let mut builder = RecordBuilder::new();
        assert_eq!(
            builder.add_json(r#"{"resourceType":"OperationOutcome","issue":[]}"#),
            Payload::OperationOutcome
        );
        assert_eq!(builder.add_json(r#"[1,2]"#), Payload::NotAResource);
        assert_eq!(
            builder.add_json(r#"{"resourceType":"Bundle","entry":"oops"}"#),
            Payload::Data
        );
        assert_eq!(builder.finish().stats.malformed, 1);
    }

    fn references(record: &PatientRecord) -> Vec<String> {
        let mut all: Vec<String> = record
            .patients
            .iter()
            .map(|p| p.reference.clone())
            .collect();
        all.extend(record.conditions.iter().map(|c| c.reference.clone()));
        all.extend(record.observations.iter().map(|o| o.reference.clone()));
        all.extend(record.medications.iter().map(|m| m.reference.clone()));
        all
    }

    #[test]
    fn what_is_shown_to_be_another_patients_is_dropped() {
        let bundle = r#"{"resourceType":"Bundle","entry":[
            {"fullUrl":"urn:uuid:other","resource":{"resourceType":"Patient","id":"p2"}},
            {"fullUrl":"urn:uuid:own","resource":{"resourceType":"Patient","id":"p1"}},
            {"resource":{"resourceType":"Condition","id":"by-id","subject":{"reference":"Patient/p2"}}},
            {"resource":{"resourceType":"Condition","id":"by-url","subject":{"reference":"https://ehr/fhir/Patient/p2/_history/4"}}},
            {"resource":{"resourceType":"Condition","id":"by-full-url","subject":{"reference":"urn:uuid:other"}}},
            {"resource":{"resourceType":"MedicationRequest","id":"theirs","subject":{"reference":"Patient/p2"}}},
            {"resource":{"resourceType":"Condition","id":"own","subject":{"reference":"Patient/p1"}}},
            {"resource":{"resourceType":"Condition","id":"own-full-url","subject":{"reference":"urn:uuid:own"}}},
            {"resource":{"resourceType":"Condition","id":"no-subject"}},
            {"resource":{"resourceType":"Condition","id":"unknown-urn","subject":{"reference":"urn:uuid:nobody-here"}}},
            {"resource":{"resourceType":"Observation","id":"group","subject":{"reference":"Group/g1"}}}
        ]}"#;
        let mut record = record_from([bundle]);
        record.keep_patient(Some("p1"));
        assert_eq!(
            references(&record),
            [
                "Patient/p1",
                "Condition/own",
                "Condition/own-full-url",
                "Condition/no-subject",
                "Condition/unknown-urn",
                "Observation/group"
            ]
        );
        assert_eq!(record.stats.other_patient, 5);
    }

    #[test]
    fn a_context_patient_who_is_not_in_the_record_keeps_what_names_them() {
        let bundle = r#"{"resourceType":"Bundle","entry":[
            {"resource":{"resourceType":"Patient","id":"p2","birthDate":"1930-01-01"}},
            {"resource":{"resourceType":"Condition","id":"theirs","subject":{"reference":"Patient/p2"}}},
            {"resource":{"resourceType":"Condition","id":"own","subject":{"reference":"Patient/p1"}}}
        ]}"#;
        let mut record = record_from([bundle]);
        record.keep_patient(Some("p1"));
        assert_eq!(references(&record), ["Condition/own"]);
        assert!(
            record.patient().is_none(),
            "another patient's age must not be used"
        );
    }

    #[test]
    fn medicines_referenced_but_not_included_are_listed_for_fetching() {
        let bundle = r##"{"resourceType":"Bundle","entry":[
            {"resource":{"resourceType":"MedicationRequest","id":"a","status":"active","medicationReference":{"reference":"Medication/q"}}},
            {"resource":{"resourceType":"MedicationRequest","id":"b","status":"active","medicationReference":{"reference":"https://ehr/fhir/Medication/q/_history/2"}}},
            {"resource":{"resourceType":"MedicationRequest","id":"c","status":"active","medicationReference":{"reference":"Medication/here"}}},
            {"resource":{"resourceType":"Medication","id":"here","code":{"text":"atenolol"}}},
            {"resource":{"resourceType":"MedicationRequest","id":"d","status":"active","medicationReference":{"reference":"#local"}}},
            {"resource":{"resourceType":"MedicationRequest","id":"e","status":"active","medicationReference":{"reference":"Medication/../x"}}}
        ]}"##;
        assert_eq!(
            record_from([bundle]).unresolved_medications(),
            ["Medication/q"]
        );
    }

    #[test]
    fn only_merge_links_on_the_patients_own_record_merge() {
        let bundle = r#"{"resourceType":"Bundle","entry":[
            {"resource":{"resourceType":"Patient","id":"claims-p1","link":[{"other":{"reference":"Patient/p1"},"type":"replaced-by"}]}},
            {"resource":{"resourceType":"Patient","id":"p1","link":[
                {"other":{"reference":"Patient/merged"},"type":"replaces"},
                {"other":{"reference":"Patient/newer"},"type":"replaced-by"},
                {"other":{"reference":"Patient/relative"},"type":"seealso"},
                {"other":{"reference":"Patient/referred"},"type":"refer"},
                {"other":{"reference":"Patient/untyped"}}
            ]}},
            {"resource":{"resourceType":"Condition","id":"merged","subject":{"reference":"Patient/merged"}}},
            {"resource":{"resourceType":"Condition","id":"newer","subject":{"reference":"Patient/newer"}}},
            {"resource":{"resourceType":"Condition","id":"claims","subject":{"reference":"Patient/claims-p1"}}},
            {"resource":{"resourceType":"Condition","id":"relative","subject":{"reference":"Patient/relative"}}},
            {"resource":{"resourceType":"Condition","id":"referred","subject":{"reference":"Patient/referred"}}},
            {"resource":{"resourceType":"Condition","id":"untyped","subject":{"reference":"Patient/untyped"}}}
        ]}"#;
        let mut record = record_from([bundle]);
        record.keep_patient(Some("p1"));
        assert_eq!(
            references(&record),
            ["Patient/p1", "Condition/merged", "Condition/newer"]
        );
        assert_eq!(record.patient_reference(), Some("Patient/p1"));
    }

    #[test]
    fn without_a_context_patient_the_first_patient_with_an_id_is_the_patient() {
        let bundle = r#"{"resourceType":"Bundle","entry":[
            {"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient","id":"a"}},
            {"fullUrl":"urn:uuid:b","resource":{"resourceType":"Patient","id":"b"}},
            {"resource":{"resourceType":"Condition","id":"of-a","subject":{"reference":"urn:uuid:a"}}},
            {"resource":{"resourceType":"Condition","id":"of-b","subject":{"reference":"urn:uuid:b"}}}
        ]}"#;
        let mut record = record_from([bundle]);
        record.keep_patient(None);
        assert_eq!(references(&record), ["Patient/a", "Condition/of-a"]);

        let mut nobody = record_from([
            r#"{"resourceType":"Condition","id":"c","subject":{"reference":"Patient/x"}}"#,
        ]);
        nobody.keep_patient(None);
        assert_eq!(
            references(&nobody),
            ["Condition/c"],
            "no patient to compare with: nothing is dropped"
        );
    }

    #[test]
    fn patient_references_are_resolved_only_when_they_name_a_patient() {
        let urls: PatientUrls = [("urn:uuid:u1", Some("p1")), ("urn:uuid:no-id", None)]
            .into_iter()
            .collect();
        assert_eq!(patient_named("Patient/p1", &urls), Some("p1"));
        assert_eq!(
            patient_named("https://ehr/fhir/Patient/p1/_history/2", &urls),
            Some("p1")
        );
        assert_eq!(patient_named("urn:uuid:u1", &urls), Some("p1"));
        assert_eq!(patient_named("urn:uuid:no-id", &urls), None);
        assert_eq!(patient_named("urn:uuid:u2", &urls), None);
        assert_eq!(patient_named("#p1", &urls), None);
        assert_eq!(patient_named("Group/p1", &urls), None);
        assert_eq!(patient_named("Patient?identifier=x|1", &urls), None);
        assert_eq!(patient_named("Patient/", &urls), None);
    }
}
