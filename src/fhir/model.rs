//! The FHIR R4 read model: only the elements the rules read. Unknown elements
//! are skipped by serde. An element the rules decide on (a code, a status,
//! a value) with the wrong shape fails its resource, which the record
//! builder skips, never the request. An element they can do without (a
//! display, the subject, a dosage, a reference range) with the wrong shape
//! is read as absent, so it never costs the resource: an order whose
//! `dispenseRequest` is `5` is still a quinine order.

use chrono::{DateTime, Utc};
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use super::time::parse_fhir_datetime;

/// A string of the FHIR JSON: borrowed from the request body when it has no
/// escapes (nearly always), owned when it had to be unescaped. Reading a
/// record then allocates for structure, not for every code and display.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Text<'a>(Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'a> Text<'a> {
    /// A part of this text, borrowed from the same source when this text is.
    pub fn sub_text(&self, part: impl FnOnce(&str) -> Option<&str>) -> Option<Text<'a>> {
        match &self.0 {
            Cow::Borrowed(text) => part(text).map(|p| Text(Cow::Borrowed(p))),
            Cow::Owned(text) => part(text).map(|p| Text(Cow::Owned(p.to_owned()))),
        }
    }
}

impl std::borrow::Borrow<str> for Text<'_> {
    fn borrow(&self) -> &str {
        self
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Text(Cow::Borrowed(text))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct Coding<'a> {
    pub system: Option<Text<'a>>,
    pub code: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_text")]
    pub display: Option<Text<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct CodeableConcept<'a> {
    pub coding: Vec<Coding<'a>>,
    #[serde(deserialize_with = "lenient_text")]
    pub text: Option<Text<'a>>,
}

impl CodeableConcept<'_> {
    /// Does any coding carry one of these codes (any system)? For the small
    /// HL7 code systems (clinical status, interpretation) the code is unique.
    pub fn has_code(&self, codes: &[&str]) -> bool {
        self.coding
            .iter()
            .filter_map(|c| c.code.as_deref())
            .any(|code| codes.contains(&code))
    }

    /// The human text: `text`, else the first coding display.
    pub fn label(&self) -> Option<&str> {
        self.text
            .as_deref()
            .or_else(|| self.coding.iter().find_map(|c| c.display.as_deref()))
    }

    /// Every piece of free text: `text` and each coding display.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.text
            .as_deref()
            .into_iter()
            .chain(self.coding.iter().filter_map(|c| c.display.as_deref()))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct Reference<'a> {
    pub reference: Option<Text<'a>>,
    /// What the reference names, as text ("quinine sulfate 324 mg").
    #[serde(deserialize_with = "lenient_text")]
    pub display: Option<Text<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Period {
    #[serde(deserialize_with = "lenient_datetime")]
    pub start: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct Quantity<'a> {
    pub value: Option<f64>,
    pub unit: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_text")]
    pub system: Option<Text<'a>>,
    pub code: Option<Text<'a>>,
}

impl Quantity<'_> {
    /// The unit as written: UCUM `code` first, else the human `unit`.
    pub fn unit_text(&self) -> Option<&str> {
        self.code.as_deref().or(self.unit.as_deref())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct ReferenceRange<'a> {
    pub low: Option<Quantity<'a>>,
    pub high: Option<Quantity<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "PatientElements<'a>", bound(deserialize = "'de: 'a"))]
pub struct Patient<'a> {
    pub id: Option<Text<'a>>,
    pub birth_date: Option<Text<'a>>,
    /// deceasedBoolean true, or a deceasedDateTime.
    pub deceased: bool,
    pub deceased_at: Option<DateTime<Utc>>,
    /// Other Patient records of the same person: `link.other` of the links
    /// typed `replaced-by` or `replaces` (a merge), whose resources are
    /// still this patient's. `refer` and `seealso` name records that may
    /// be someone else's and are not kept.
    pub links: Vec<Reference<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct PatientElements<'a> {
    id: Option<Text<'a>>,
    birth_date: Option<Text<'a>>,
    deceased_boolean: Option<bool>,
    #[serde(deserialize_with = "lenient_datetime")]
    deceased_date_time: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient_list")]
    link: Vec<PatientLink<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct PatientLink<'a> {
    other: Reference<'a>,
    #[serde(rename = "type")]
    kind: Option<LinkType>,
}

/// Patient.link.type (FHIR R4 link-type).
#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum LinkType {
    ReplacedBy,
    Replaces,
    Refer,
    Seealso,
    #[serde(other)]
    Unknown,
}

impl<'a> From<PatientElements<'a>> for Patient<'a> {
    fn from(e: PatientElements<'a>) -> Self {
        Patient {
            id: e.id,
            birth_date: e.birth_date,
            deceased: e.deceased_boolean == Some(true) || e.deceased_date_time.is_some(),
            deceased_at: e.deceased_date_time,
            links: e
                .link
                .into_iter()
                .filter(|link| matches!(link.kind, Some(LinkType::ReplacedBy | LinkType::Replaces)))
                .map(|link| link.other)
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "ConditionElements<'a>", bound(deserialize = "'de: 'a"))]
pub struct Condition<'a> {
    pub id: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_reference")]
    pub subject: Option<Reference<'a>>,
    pub clinical_status: Option<CodeableConcept<'a>>,
    pub verification_status: Option<CodeableConcept<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    pub onset_date_time: Option<DateTime<Utc>>,
    pub onset_period: Option<Period>,
    pub abatement_date_time: Option<DateTime<Utc>>,
    pub abatement_period: Option<Period>,
    /// abatementString, abatementAge, abatementRange or abatementBoolean
    /// true: an abatement without a date the rules can compare.
    pub abated_undated: bool,
    pub recorded_date: Option<DateTime<Utc>>,
    /// The last instant of onsetDateTime and recordedDate when they are
    /// partial ("2026-03" ends on 31 March): r2 §5 counts a finding when any
    /// part of the interval falls in its window; the fields above are the
    /// first instant, which rules that suppress a card use.
    pub onset_latest: Option<DateTime<Utc>>,
    pub recorded_latest: Option<DateTime<Utc>>,
    /// Where (which leg) the condition is: §6 reads the side of a swelling or a DVT.
    pub body_site: Vec<CodeableConcept<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct ConditionElements<'a> {
    id: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_reference")]
    subject: Option<Reference<'a>>,
    clinical_status: Option<CodeableConcept<'a>>,
    verification_status: Option<CodeableConcept<'a>>,
    code: Option<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_span")]
    onset_date_time: Option<DateSpan>,
    onset_period: Option<Period>,
    #[serde(deserialize_with = "lenient_datetime")]
    abatement_date_time: Option<DateTime<Utc>>,
    abatement_period: Option<Period>,
    abatement_string: Option<IgnoredAny>,
    abatement_age: Option<IgnoredAny>,
    abatement_range: Option<IgnoredAny>,
    abatement_boolean: Option<bool>,
    #[serde(deserialize_with = "lenient_span")]
    recorded_date: Option<DateSpan>,
    #[serde(deserialize_with = "lenient_list")]
    body_site: Vec<CodeableConcept<'a>>,
}

impl<'a> From<ConditionElements<'a>> for Condition<'a> {
    fn from(e: ConditionElements<'a>) -> Self {
        Condition {
            id: e.id,
            subject: e.subject,
            clinical_status: e.clinical_status,
            verification_status: e.verification_status,
            code: e.code,
            onset_date_time: e.onset_date_time.map(|span| span.start),
            onset_latest: e.onset_date_time.map(DateSpan::last_instant),
            onset_period: e.onset_period,
            abatement_date_time: e.abatement_date_time,
            abatement_period: e.abatement_period,
            abated_undated: e.abatement_string.is_some()
                || e.abatement_age.is_some()
                || e.abatement_range.is_some()
                || e.abatement_boolean == Some(true),
            recorded_date: e.recorded_date.map(|span| span.start),
            recorded_latest: e.recorded_date.map(DateSpan::last_instant),
            body_site: e.body_site,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct Observation<'a> {
    pub id: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_reference")]
    pub subject: Option<Reference<'a>>,
    pub status: Option<Text<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub effective_date_time: Option<DateTime<Utc>>,
    pub effective_period: Option<Period>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub effective_instant: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub issued: Option<DateTime<Utc>>,
    pub value_quantity: Option<Quantity<'a>>,
    pub value_codeable_concept: Option<CodeableConcept<'a>>,
    /// A symptom recorded as present (true) or absent (false).
    pub value_boolean: Option<bool>,
    pub value_string: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient")]
    pub body_site: Option<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_list")]
    pub interpretation: Vec<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_list")]
    pub reference_range: Vec<ReferenceRange<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct Medication<'a> {
    pub id: Option<Text<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    /// Dose form ("ophthalmic solution"): read like a route.
    #[serde(deserialize_with = "lenient")]
    pub form: Option<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_list")]
    pub ingredient: Vec<MedicationIngredient<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct MedicationIngredient<'a> {
    pub item_codeable_concept: Option<CodeableConcept<'a>>,
}

/// A MedicationRequest or MedicationStatement as read: the medicine is an
/// inline concept or a reference, possibly to a contained Medication.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct MedicationOrder<'a> {
    pub id: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_reference")]
    pub subject: Option<Reference<'a>>,
    /// Unreadable is unknown: not active, and a draft still checked.
    #[serde(deserialize_with = "lenient_text")]
    pub status: Option<Text<'a>>,
    pub medication_codeable_concept: Option<CodeableConcept<'a>>,
    pub medication_reference: Option<Reference<'a>>,
    /// MedicationRequest: an order *not* to give the medicine. A modifier
    /// element: read strictly, since ignoring it would invert the order.
    pub do_not_perform: Option<bool>,
    #[serde(deserialize_with = "lenient_list")]
    pub contained: Vec<Resource<'a>>,
    /// MedicationRequest: when it was ordered.
    #[serde(deserialize_with = "lenient_span")]
    pub authored_on: Option<DateSpan>,
    /// MedicationRequest: how long the order may be dispensed.
    #[serde(deserialize_with = "lenient")]
    pub dispense_request: Option<DispenseRequest<'a>>,
    /// MedicationRequest: how it is given (route).
    #[serde(deserialize_with = "lenient_list")]
    pub dosage_instruction: Vec<Dosage<'a>>,
    /// MedicationStatement: when it was recorded.
    #[serde(deserialize_with = "lenient_span")]
    pub date_asserted: Option<DateSpan>,
    /// MedicationStatement: when it was (or is) taken.
    #[serde(deserialize_with = "lenient_span")]
    pub effective_date_time: Option<DateSpan>,
    #[serde(deserialize_with = "lenient")]
    pub effective_period: Option<SpanPeriod>,
    /// MedicationStatement: how it is given (route).
    #[serde(deserialize_with = "lenient_list")]
    pub dosage: Vec<Dosage<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct DispenseRequest<'a> {
    pub validity_period: Option<SpanPeriod>,
    pub expected_supply_duration: Option<Quantity<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct Dosage<'a> {
    pub route: Option<CodeableConcept<'a>>,
}

/// A FHIR date or dateTime as the interval it names: "2025" is the whole
/// of 2025 (clinical-rules.md §5: a partial date counts when any part of
/// it falls in a window). `end` is exclusive; a full dateTime is an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSpan {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl DateSpan {
    pub fn parse(text: &str) -> Option<Self> {
        let start = parse_fhir_datetime(text)?;
        let end = match text.trim().len() {
            4 => start.checked_add_months(chrono::Months::new(12))?,
            7 => start.checked_add_months(chrono::Months::new(1))?,
            10 => start.checked_add_days(chrono::Days::new(1))?,
            _ => start,
        };
        Some(DateSpan { start, end })
    }

    /// The last instant inside the span (its end is exclusive).
    pub fn last_instant(self) -> DateTime<Utc> {
        if self.end > self.start {
            self.end - chrono::Duration::milliseconds(1)
        } else {
            self.start
        }
    }
}

/// A Period whose bounds keep their precision (see [`DateSpan`]).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SpanPeriod {
    #[serde(deserialize_with = "lenient_span")]
    pub start: Option<DateSpan>,
    #[serde(deserialize_with = "lenient_span")]
    pub end: Option<DateSpan>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct Procedure<'a> {
    pub id: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_reference")]
    pub subject: Option<Reference<'a>>,
    pub status: Option<Text<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub performed_date_time: Option<DateTime<Utc>>,
    pub performed_period: Option<Period>,
    #[serde(deserialize_with = "lenient_list")]
    pub body_site: Vec<CodeableConcept<'a>>,
}

/// §6: a venous duplex ordered (ServiceRequest), reported (DiagnosticReport)
/// or imaged (ImagingStudy) answers the DVT question.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct ServiceRequest<'a> {
    pub id: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_reference")]
    pub subject: Option<Reference<'a>>,
    pub status: Option<Text<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub authored_on: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub occurrence_date_time: Option<DateTime<Utc>>,
    pub occurrence_period: Option<Period>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct DiagnosticReport<'a> {
    pub id: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_reference")]
    pub subject: Option<Reference<'a>>,
    pub status: Option<Text<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub effective_date_time: Option<DateTime<Utc>>,
    pub effective_period: Option<Period>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub issued: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct ImagingStudy<'a> {
    pub id: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_reference")]
    pub subject: Option<Reference<'a>>,
    pub status: Option<Text<'a>>,
    pub procedure_code: Vec<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub started: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct Encounter<'a> {
    pub id: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_reference")]
    pub subject: Option<Reference<'a>>,
    pub status: Option<Text<'a>>,
    /// R4 has a Coding in `class`, R5 a list of CodeableConcepts.
    #[serde(deserialize_with = "lenient_encounter_class")]
    pub class: Vec<Coding<'a>>,
    /// What kind of visit (a dialysis session, postpartum care ...).
    #[serde(rename = "type")]
    pub kind: Vec<CodeableConcept<'a>>,
    pub period: Option<Period>,
    pub reason_code: Vec<CodeableConcept<'a>>,
}

/// A resource the rules read, in its own shape. Read straight into its
/// type when `resourceType` comes first, as FHIR servers write it;
/// otherwise its members are kept raw until `resourceType` is found.
#[derive(Debug)]
pub enum Resource<'a> {
    /// Boxed like the rest: an entry stays small, and the entry list that
    /// serde grows by doubling copies less (a Patient inline made every
    /// entry 136 bytes).
    Patient(Box<Patient<'a>>),
    Condition(Box<Condition<'a>>),
    Observation(Box<Observation<'a>>),
    MedicationRequest(Box<MedicationOrder<'a>>),
    MedicationStatement(Box<MedicationOrder<'a>>),
    Medication(Box<Medication<'a>>),
    Procedure(Box<Procedure<'a>>),
    Encounter(Box<Encounter<'a>>),
    ServiceRequest(Box<ServiceRequest<'a>>),
    DiagnosticReport(Box<DiagnosticReport<'a>>),
    ImagingStudy(Box<ImagingStudy<'a>>),
    /// A type the rules never read: a nested Bundle, an OperationOutcome
    /// entry (a search warning), a Claim ...
    Other,
    /// No resourceType at all.
    Untyped,
}

impl<'a> Resource<'a> {
    /// The type name when the rules read this type.
    pub fn type_name(&self) -> Option<&'static str> {
        Some(match self {
            Resource::Patient(_) => "Patient",
            Resource::Condition(_) => "Condition",
            Resource::Observation(_) => "Observation",
            Resource::MedicationRequest(_) => "MedicationRequest",
            Resource::MedicationStatement(_) => "MedicationStatement",
            Resource::Medication(_) => "Medication",
            Resource::Procedure(_) => "Procedure",
            Resource::Encounter(_) => "Encounter",
            Resource::ServiceRequest(_) => "ServiceRequest",
            Resource::DiagnosticReport(_) => "DiagnosticReport",
            Resource::ImagingStudy(_) => "ImagingStudy",
            Resource::Other | Resource::Untyped => return None,
        })
    }

    pub fn id(&self) -> Option<&Text<'a>> {
        match self {
            Resource::Patient(r) => r.id.as_ref(),
            Resource::Condition(r) => r.id.as_ref(),
            Resource::Observation(r) => r.id.as_ref(),
            Resource::MedicationRequest(r) | Resource::MedicationStatement(r) => r.id.as_ref(),
            Resource::Medication(r) => r.id.as_ref(),
            Resource::Procedure(r) => r.id.as_ref(),
            Resource::Encounter(r) => r.id.as_ref(),
            Resource::ServiceRequest(r) => r.id.as_ref(),
            Resource::DiagnosticReport(r) => r.id.as_ref(),
            Resource::ImagingStudy(r) => r.id.as_ref(),
            Resource::Other | Resource::Untyped => None,
        }
    }

    /// Reads the rest of a resource whose `resourceType` was its first member.
    fn read_rest<'de: 'a, A: MapAccess<'de>>(
        resource_type: &str,
        rest: A,
    ) -> Result<Self, A::Error> {
        let rest = MapAccessDeserializer::new(rest);
        Ok(match resource_type {
            "Patient" => Resource::Patient(Box::new(Patient::deserialize(rest)?)),
            "Condition" => Resource::Condition(Box::new(Condition::deserialize(rest)?)),
            "Observation" => Resource::Observation(Box::new(Observation::deserialize(rest)?)),
            "MedicationRequest" => {
                Resource::MedicationRequest(Box::new(MedicationOrder::deserialize(rest)?))
            }
            "MedicationStatement" => {
                Resource::MedicationStatement(Box::new(MedicationOrder::deserialize(rest)?))
            }
            "Medication" => Resource::Medication(Box::new(Medication::deserialize(rest)?)),
            "Procedure" => Resource::Procedure(Box::new(Procedure::deserialize(rest)?)),
            "Encounter" => Resource::Encounter(Box::new(Encounter::deserialize(rest)?)),
            "ServiceRequest" => {
                Resource::ServiceRequest(Box::new(ServiceRequest::deserialize(rest)?))
            }
            "DiagnosticReport" => {
                Resource::DiagnosticReport(Box::new(DiagnosticReport::deserialize(rest)?))
            }
            "ImagingStudy" => Resource::ImagingStudy(Box::new(ImagingStudy::deserialize(rest)?)),
            _ => {
                IgnoredAny::deserialize(rest)?;
                Resource::Other
            }
        })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Resource<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ResourceVisitor;
        impl<'de> Visitor<'de> for ResourceVisitor {
            type Value = Resource<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a FHIR resource")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                match map.next_key::<Text<'de>>()? {
                    Some(key) if &*key == "resourceType" => {
                        let resource_type: Text<'de> = map.next_value()?;
                        Resource::read_rest(&resource_type, map)
                    }
                    Some(key) => {
                        let mut members = vec![(key, map.next_value::<&'de RawValue>()?)];
                        while let Some(member) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                            members.push(member);
                        }
                        let Some(at) = members.iter().position(|(key, _)| &**key == "resourceType")
                        else {
                            return Ok(Resource::Untyped);
                        };
                        let (_, resource_type) = members.swap_remove(at);
                        let resource_type: Text<'de> =
                            serde_json::from_str(resource_type.get()).map_err(de::Error::custom)?;
                        Resource::read_rest(&resource_type, RawMembers::new(members))
                    }
                    None => Ok(Resource::Untyped),
                }
            }
        }
        deserializer.deserialize_map(ResourceVisitor)
    }
}

/// The members of an object read raw (`resourceType` came late), read
/// again as a map. Text stays borrowed from the request body.
struct RawMembers<'de, E> {
    members: std::vec::IntoIter<(Text<'de>, &'de RawValue)>,
    value: Option<&'de RawValue>,
    error: std::marker::PhantomData<E>,
}

impl<'de, E> RawMembers<'de, E> {
    fn new(members: Vec<(Text<'de>, &'de RawValue)>) -> Self {
        RawMembers {
            members: members.into_iter(),
            value: None,
            error: std::marker::PhantomData,
        }
    }
}

impl<'de, E: de::Error> MapAccess<'de> for RawMembers<'de, E> {
    type Error = E;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, E> {
        let Some((key, value)) = self.members.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        match key.0 {
            Cow::Borrowed(key) => seed
                .deserialize(BorrowedStrDeserializer::new(key))
                .map(Some),
            Cow::Owned(key) => seed.deserialize(StringDeserializer::new(key)).map(Some),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, E> {
        let value = self
            .value
            .take()
            .ok_or_else(|| E::custom("a value without its key"))?;
        seed.deserialize(&mut serde_json::Deserializer::from_str(value.get()))
            .map_err(E::custom)
    }
}

/// A prefetch value read in the request's single pass: a Bundle, an
/// OperationOutcome or one resource. Only for well-formed FHIR JSON with
/// `resourceType` first; anything else fails, and the request is read again
/// the careful way (raw values, entry by entry).
#[derive(Debug)]
pub enum FhirValue<'a> {
    Bundle(TypedBundle<'a>),
    OperationOutcome,
    Resource(Text<'a>, Resource<'a>),
}

impl FhirValue<'_> {
    pub fn resource_type(&self) -> &str {
        match self {
            FhirValue::Bundle(_) => "Bundle",
            FhirValue::OperationOutcome => "OperationOutcome",
            FhirValue::Resource(name, _) => name,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for FhirValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = FhirValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a FHIR resource with resourceType first")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                if map.next_key::<Text<'de>>()?.as_deref() != Some("resourceType") {
                    return Err(de::Error::custom("resourceType is not the first member"));
                }
                let resource_type: Text<'de> = map.next_value()?;
                Ok(match &*resource_type {
                    "Bundle" => FhirValue::Bundle(TypedBundle::deserialize(
                        MapAccessDeserializer::new(map),
                    )?),
                    "OperationOutcome" => {
                        IgnoredAny::deserialize(MapAccessDeserializer::new(map))?;
                        FhirValue::OperationOutcome
                    }
                    _ => {
                        let resource = Resource::read_rest(&resource_type, map)?;
                        FhirValue::Resource(resource_type, resource)
                    }
                })
            }
        }
        deserializer.deserialize_map(ValueVisitor)
    }
}

/// A Bundle read in one typed pass: fails as a whole if any entry is malformed.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct TypedBundle<'a> {
    #[serde(deserialize_with = "limited_entries")]
    pub entry: Vec<TypedEntry<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct TypedEntry<'a> {
    pub full_url: Option<Text<'a>>,
    pub resource: Option<Resource<'a>>,
}

/// A Bundle whose entries are kept raw, to read them one by one when the
/// typed pass failed: a bad entry then costs only itself.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RawBundle<'a> {
    #[serde(borrow, deserialize_with = "limited_entries")]
    pub entry: Vec<RawEntry<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RawEntry<'a> {
    #[serde(borrow)]
    pub full_url: Option<Text<'a>>,
    #[serde(borrow)]
    pub resource: Option<&'a RawValue>,
}

/// Bundle entries, each taken from the reading's allowance
/// ([`crate::limits::with_entry_limit`]): at the limit reading stops with an
/// error, before millions of `{}` entries become millions of structs.
fn limited_entries<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    struct EntriesVisitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of Bundle entries")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = seq.next_element()? {
                if !crate::limits::take_entry() {
                    return Err(de::Error::custom("too many Bundle entries"));
                }
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    d.deserialize_seq(EntriesVisitor(std::marker::PhantomData))
}

/// The visits of a lenient element for the JSON shapes it does not read:
/// the value is consumed and the element is `$absent`.
macro_rules! absent_otherwise {
    ($de:lifetime, $absent:expr; $($shape:ident),+) => {
        $(absent_otherwise!(@one $de, $absent, $shape);)+
    };
    (@one $de:lifetime, $absent:expr, scalars) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($absent)
        }
    };
    (@one $de:lifetime, $absent:expr, str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($absent)
        }
    };
    (@one $de:lifetime, $absent:expr, seq) => {
        fn visit_seq<A: de::SeqAccess<$de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($absent)
        }
    };
    (@one $de:lifetime, $absent:expr, map) => {
        fn visit_map<A: de::MapAccess<$de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($absent)
        }
    };
}

/// An element the rules can do without: when anything in it has the wrong
/// shape it is absent, and its resource is kept. Read twice (raw, then
/// typed), so only for small elements.
fn lenient<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    Ok(serde_json::from_str(raw.get()).ok())
}

/// A reference the rules can do without (a subject): read in one pass, as
/// it is on every resource; anything but an object is absent, and so is a
/// `reference` that is not a string.
fn lenient_reference<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Reference<'a>>, D::Error> {
    struct ReferenceOrNothing;
    impl<'de> Visitor<'de> for ReferenceOrNothing {
        type Value = Option<Reference<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a Reference")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut reference = None;
            while let Some(key) = map.next_key::<Text<'de>>()? {
                if &*key == "reference" {
                    reference = map.next_value_seed(LenientTextSeed)?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Some(Reference {
                reference,
                display: None,
            }))
        }
        absent_otherwise!('de, None; seq, str, scalars);
    }
    d.deserialize_any(ReferenceOrNothing)
}

/// [`lenient_text`] as a seed, for a visitor reading a map by hand.
struct LenientTextSeed;

impl<'de> DeserializeSeed<'de> for LenientTextSeed {
    type Value = Option<Text<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        lenient_text(d)
    }
}

/// A list of elements the rules can do without: an item with the wrong
/// shape is dropped on its own; anything but a list is an empty list.
fn lenient_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    struct ListVisitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                if let Ok(item) = serde_json::from_str(raw.get()) {
                    items.push(item);
                }
            }
            Ok(items)
        }
        absent_otherwise!('de, Vec::new(); map, str, scalars);
    }
    d.deserialize_any(ListVisitor(std::marker::PhantomData))
}

/// Text the rules can do without (a display, a status they only compare):
/// anything but a string is absent. Borrowed like [`Text`].
fn lenient_text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Text<'a>>, D::Error> {
    struct TextOrNothing;
    impl<'de> Visitor<'de> for TextOrNothing {
        type Value = Option<Text<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Text(Cow::Borrowed(v))))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Text(Cow::Owned(v.to_owned()))))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Text(Cow::Owned(v))))
        }
        absent_otherwise!('de, None; scalars, seq, map);
    }
    d.deserialize_any(TextOrNothing)
}

/// A date that cannot be read is absent, not an error: one odd date must not
/// cost the rest of the resource.
fn lenient_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    d.deserialize_any(DateVisitor(parse_fhir_datetime))
}

fn lenient_span<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateSpan>, D::Error> {
    d.deserialize_any(DateVisitor(DateSpan::parse))
}

/// A date the rules cannot read is absent, never fatal to its resource.
struct DateVisitor<T>(fn(&str) -> Option<T>);

impl<'de, T> Visitor<'de> for DateVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a FHIR date or dateTime")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((self.0)(v))
    }
    absent_otherwise!('de, None; scalars, seq, map);
}

fn lenient_encounter_class<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<Coding<'a>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, bound(deserialize = "'de: 'a"))]
    enum ClassShape<'a> {
        R4(Coding<'a>),
        R5(Vec<CodeableConcept<'a>>),
        Other(IgnoredAny),
    }
    Ok(match ClassShape::deserialize(d)? {
        ClassShape::R4(coding) => vec![coding],
        ClassShape::R5(concepts) => concepts.into_iter().flat_map(|c| c.coding).collect(),
        ClassShape::Other(_) => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_dates_are_absent_not_fatal() {
        let c = serde_json::from_str::<Condition>(
            r#"{"id":"c1","onsetDateTime":"last week","recordedDate":20240101,"abatementDateTime":{"x":1},"unknown":[1,2]}"#,
        )
        .unwrap();
        assert!(
            c.onset_date_time.is_none()
                && c.recorded_date.is_none()
                && c.abatement_date_time.is_none()
        );
        assert_eq!(c.id.as_deref(), Some("c1"));
    }

    /// A wrong shape where no decision rests (a display, a code system of a
    /// unit, a reference range, a body site) costs that element only; a
    /// wrong shape in a code still costs the resource.
    #[test]
    fn elements_the_rules_can_do_without_are_absent_when_broken() {
        let c = serde_json::from_str::<Condition>(
            r#"{"id":"c1","clinicalStatus":{"coding":[{"code":"active","display":5}]},"code":{"text":["x"],"coding":[{"code":"39162006"}]},"bodySite":[5,{"text":"left leg"}],"subject":"Patient/p1"}"#,
        )
        .unwrap();
        assert!(c.clinical_status.unwrap().has_code(&["active"]));
        assert_eq!(c.code.unwrap().coding[0].code.as_deref(), Some("39162006"));
        assert_eq!(c.body_site.len(), 1);
        assert!(c.subject.is_none());
        let o = serde_json::from_str::<Observation>(
            r#"{"id":"k","valueQuantity":{"value":3.1,"code":"mmol/L","system":5},"referenceRange":[{"high":{"value":"5.1"}}],"bodySite":"arm","interpretation":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(o.value_quantity.unwrap().value, Some(3.1));
        assert!(
            o.reference_range.is_empty() && o.body_site.is_none() && o.interpretation.is_empty()
        );
        assert!(serde_json::from_str::<Condition>(r#"{"code":{"coding":[{"code":5}]}}"#).is_err());
        assert!(
            serde_json::from_str::<Observation>(r#"{"valueQuantity":{"value":"3.1"}}"#).is_err()
        );
    }

    /// Bundle entries are read into a vector serde grows by doubling: every
    /// byte of an entry is copied about twice. Keep resources boxed.
    #[test]
    fn a_bundle_entry_stays_small() {
        assert!(std::mem::size_of::<TypedEntry>() <= 48);
    }

    #[test]
    fn encounter_class_in_r4_and_r5_shapes() {
        let read = |json: &'static str| serde_json::from_str::<Encounter>(json).unwrap();
        let r4 = read(r#"{"class":{"code":"IMP"}}"#);
        let r5 = read(r#"{"class":[{"coding":[{"code":"IMP"}]}]}"#);
        let odd = read(r#"{"class":"IMP"}"#);
        assert_eq!(r4.class[0].code.as_deref(), Some("IMP"));
        assert_eq!(r5.class[0].code.as_deref(), Some("IMP"));
        assert!(odd.class.is_empty());
    }
}
