//! The FHIR R4 read model: only the elements the rules read. Unknown elements
//! are skipped by serde; a resource whose known elements have the wrong shape
//! fails on its own and is skipped by the record builder, never the request.

use chrono::{DateTime, Utc};
use serde::de::{self, IgnoredAny, Visitor};
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
    pub display: Option<Text<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct CodeableConcept<'a> {
    pub coding: Vec<Coding<'a>>,
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
}

/// Every element the rules read, of every resource type they read. One
/// typed pass reads any resource, wherever its `resourceType` stands, and
/// skips everything else at full speed; the record then sorts it into the
/// type-specific structs below.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct AnyResource<'a> {
    pub resource_type: Option<Text<'a>>,
    pub id: Option<Text<'a>>,
    pub status: Option<Text<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    // Patient
    pub birth_date: Option<Text<'a>>,
    pub deceased_boolean: Option<bool>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub deceased_date_time: Option<DateTime<Utc>>,
    // Condition
    pub clinical_status: Option<CodeableConcept<'a>>,
    pub verification_status: Option<CodeableConcept<'a>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub onset_date_time: Option<DateTime<Utc>>,
    pub onset_period: Option<Period>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub abatement_date_time: Option<DateTime<Utc>>,
    pub abatement_period: Option<Period>,
    pub abatement_string: Option<IgnoredAny>,
    pub abatement_age: Option<IgnoredAny>,
    pub abatement_range: Option<IgnoredAny>,
    pub abatement_boolean: Option<bool>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub recorded_date: Option<DateTime<Utc>>,
    // Observation (and MedicationStatement's effective[x])
    #[serde(deserialize_with = "lenient_datetime")]
    pub effective_date_time: Option<DateTime<Utc>>,
    pub effective_period: Option<Period>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub effective_instant: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient_datetime")]
    pub issued: Option<DateTime<Utc>>,
    pub value_quantity: Option<Quantity<'a>>,
    pub value_codeable_concept: Option<CodeableConcept<'a>>,
    pub interpretation: Vec<CodeableConcept<'a>>,
    pub reference_range: Vec<ReferenceRange<'a>>,
    // MedicationRequest, MedicationStatement, Medication
    pub medication_codeable_concept: Option<CodeableConcept<'a>>,
    pub medication_reference: Option<Reference<'a>>,
    pub contained: Vec<AnyResource<'a>>,
    pub ingredient: Vec<MedicationIngredient<'a>>,
    // Procedure
    #[serde(deserialize_with = "lenient_datetime")]
    pub performed_date_time: Option<DateTime<Utc>>,
    pub performed_period: Option<Period>,
    // Encounter: R4 has a Coding in `class`, R5 a list of CodeableConcepts.
    #[serde(deserialize_with = "lenient_encounter_class")]
    pub class: Vec<Coding<'a>>,
    pub period: Option<Period>,
    pub reason_code: Vec<CodeableConcept<'a>>,
}

#[derive(Debug, Clone, Default)]
pub struct Patient<'a> {
    pub id: Option<Text<'a>>,
    pub birth_date: Option<Text<'a>>,
    /// deceasedBoolean true, or a deceasedDateTime.
    pub deceased: bool,
    pub deceased_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct Condition<'a> {
    pub id: Option<Text<'a>>,
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
}

#[derive(Debug, Clone, Default)]
pub struct Observation<'a> {
    pub id: Option<Text<'a>>,
    pub status: Option<Text<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    pub effective_date_time: Option<DateTime<Utc>>,
    pub effective_period: Option<Period>,
    pub effective_instant: Option<DateTime<Utc>>,
    pub issued: Option<DateTime<Utc>>,
    pub value_quantity: Option<Quantity<'a>>,
    pub value_codeable_concept: Option<CodeableConcept<'a>>,
    pub interpretation: Vec<CodeableConcept<'a>>,
    pub reference_range: Vec<ReferenceRange<'a>>,
}

#[derive(Debug, Clone, Default)]
pub struct Medication<'a> {
    pub id: Option<Text<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    pub ingredient: Vec<MedicationIngredient<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct MedicationIngredient<'a> {
    pub item_codeable_concept: Option<CodeableConcept<'a>>,
}

#[derive(Debug, Clone, Default)]
pub struct Procedure<'a> {
    pub id: Option<Text<'a>>,
    pub status: Option<Text<'a>>,
    pub code: Option<CodeableConcept<'a>>,
    pub performed_date_time: Option<DateTime<Utc>>,
    pub performed_period: Option<Period>,
}

#[derive(Debug, Clone, Default)]
pub struct Encounter<'a> {
    pub id: Option<Text<'a>>,
    pub status: Option<Text<'a>>,
    pub class: Vec<Coding<'a>>,
    pub period: Option<Period>,
    pub reason_code: Vec<CodeableConcept<'a>>,
}

impl<'a> AnyResource<'a> {
    pub fn into_patient(self) -> Patient<'a> {
        Patient {
            id: self.id,
            birth_date: self.birth_date,
            deceased: self.deceased_boolean == Some(true) || self.deceased_date_time.is_some(),
            deceased_at: self.deceased_date_time,
        }
    }

    pub fn into_condition(self) -> Condition<'a> {
        Condition {
            id: self.id,
            clinical_status: self.clinical_status,
            verification_status: self.verification_status,
            code: self.code,
            onset_date_time: self.onset_date_time,
            onset_period: self.onset_period,
            abatement_date_time: self.abatement_date_time,
            abatement_period: self.abatement_period,
            abated_undated: self.abatement_string.is_some()
                || self.abatement_age.is_some()
                || self.abatement_range.is_some()
                || self.abatement_boolean == Some(true),
            recorded_date: self.recorded_date,
        }
    }

    pub fn into_observation(self) -> Observation<'a> {
        Observation {
            id: self.id,
            status: self.status,
            code: self.code,
            effective_date_time: self.effective_date_time,
            effective_period: self.effective_period,
            effective_instant: self.effective_instant,
            issued: self.issued,
            value_quantity: self.value_quantity,
            value_codeable_concept: self.value_codeable_concept,
            interpretation: self.interpretation,
            reference_range: self.reference_range,
        }
    }

    pub fn into_medication(self) -> Medication<'a> {
        Medication { id: self.id, code: self.code, ingredient: self.ingredient }
    }

    pub fn into_procedure(self) -> Procedure<'a> {
        Procedure {
            id: self.id,
            status: self.status,
            code: self.code,
            performed_date_time: self.performed_date_time,
            performed_period: self.performed_period,
        }
    }

    pub fn into_encounter(self) -> Encounter<'a> {
        Encounter { id: self.id, status: self.status, class: self.class, period: self.period, reason_code: self.reason_code }
    }
}

/// A Bundle read in one typed pass: fails as a whole if any entry is malformed.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct TypedBundle<'a> {
    pub entry: Vec<TypedEntry<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
pub struct TypedEntry<'a> {
    pub full_url: Option<Text<'a>>,
    /// Boxed: the union is large, and entries are moved around.
    pub resource: Option<Box<AnyResource<'a>>>,
}

/// A Bundle whose entries are kept raw, to read them one by one when the
/// typed pass failed: a bad entry then costs only itself.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RawBundle<'a> {
    #[serde(borrow)]
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

/// A date that cannot be read is absent, not an error: one odd date must not
/// cost the rest of the resource.
fn lenient_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct DateVisitor;
    impl<'de> Visitor<'de> for DateVisitor {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a FHIR date or dateTime")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(parse_fhir_datetime(v))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(DateVisitor)
}

fn lenient_encounter_class<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Vec<Coding<'a>>, D::Error> {
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
        let c = serde_json::from_str::<AnyResource>(
            r#"{"id":"c1","onsetDateTime":"last week","recordedDate":20240101,"abatementDateTime":{"x":1},"unknown":[1,2]}"#,
        )
        .unwrap()
        .into_condition();
        assert!(c.onset_date_time.is_none() && c.recorded_date.is_none() && c.abatement_date_time.is_none());
        assert_eq!(c.id.as_deref(), Some("c1"));
    }

    #[test]
    fn encounter_class_in_r4_and_r5_shapes() {
        let read = |json: &'static str| serde_json::from_str::<AnyResource>(json).unwrap().into_encounter();
        let r4 = read(r#"{"class":{"code":"IMP"}}"#);
        let r5 = read(r#"{"class":[{"coding":[{"code":"IMP"}]}]}"#);
        let odd = read(r#"{"class":"IMP"}"#);
        assert_eq!(r4.class[0].code.as_deref(), Some("IMP"));
        assert_eq!(r5.class[0].code.as_deref(), Some("IMP"));
        assert!(odd.class.is_empty());
    }
}
