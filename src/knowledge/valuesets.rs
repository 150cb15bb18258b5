//! Value sets: FHIR ValueSet JSON whose includes list concepts or, for
//! ICD-10-CM and ATC, is-a filters read as code prefixes. One index maps a
//! (system, code) to the set of value sets holding it.

use foldhash::HashMap;

use serde::Deserialize;

use super::codes::CodeSystem;
use super::KnowledgeError;
use crate::fhir::model::{CodeableConcept, Coding};

const SOURCE_EXTENSION: &str = "https://cramp-cds.example.org/fhir/StructureDefinition/source";
const FOCUS_CONTEXT: &str = "focus";

/// A value set, by its position in the index (at most 128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueSetId(u8);

/// The value sets a code or concept belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memberships(u128);

impl Memberships {
    pub fn contains(self, id: ValueSetId) -> bool {
        self.0 & (1u128 << id.0) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOrAssign for Memberships {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// One include of a value set, flattened: a code or a prefix, with its source.
#[derive(Debug, Clone)]
pub struct ValueSetEntry {
    pub value_set: String,
    pub system: CodeSystem,
    pub code: String,
    pub is_prefix: bool,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct ValueSetMeta {
    pub id: String,
    pub title: String,
    /// The finding codes this value set serves (useContext focus).
    pub focus: Vec<String>,
}

pub struct ValueSets {
    meta: Vec<ValueSetMeta>,
    by_name: HashMap<String, ValueSetId>,
    /// Per code system, so a lookup borrows the code instead of building a key.
    exact: HashMap<CodeSystem, HashMap<String, Memberships>>,
    prefixes: HashMap<CodeSystem, HashMap<String, Memberships>>,
    longest_prefix: usize,
    entries: Vec<ValueSetEntry>,
}

pub type ValueSetIndex = ValueSets;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "'de: 'a"))]
struct ValueSetDocument<'a> {
    resource_type: String,
    id: String,
    title: String,
    #[serde(default)]
    use_context: Vec<UsageContext<'a>>,
    compose: Compose,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct UsageContext<'a> {
    code: Coding<'a>,
    value_codeable_concept: Option<CodeableConcept<'a>>,
}

#[derive(Deserialize)]
struct Compose {
    include: Vec<Include>,
}

#[derive(Deserialize)]
struct Include {
    system: String,
    #[serde(default)]
    extension: Vec<Extension>,
    #[serde(default)]
    concept: Vec<Concept>,
    #[serde(default)]
    filter: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Extension {
    url: String,
    value_string: Option<String>,
}

#[derive(Deserialize)]
struct Concept {
    code: String,
}

#[derive(Deserialize)]
struct Filter {
    property: String,
    op: String,
    value: String,
}

impl ValueSets {
    pub fn from_documents<'a>(
        documents: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, KnowledgeError> {
        let mut sets = Self {
            meta: Vec::new(),
            by_name: HashMap::default(),
            exact: HashMap::default(),
            prefixes: HashMap::default(),
            longest_prefix: 0,
            entries: Vec::new(),
        };
        let mut documents: Vec<_> = documents.collect();
        documents.sort_by_key(|(path, _)| *path);
        for (path, text) in documents {
            let document: ValueSetDocument = serde_json::from_str(text)
                .map_err(|e| KnowledgeError::invalid(path, e.to_string()))?;
            sets.add(path, document)?;
        }
        Ok(sets)
    }

    fn add(&mut self, path: &str, document: ValueSetDocument) -> Result<(), KnowledgeError> {
        if document.resource_type != "ValueSet" {
            return Err(KnowledgeError::invalid(
                path,
                "resourceType must be ValueSet",
            ));
        }
        if self.meta.len() >= 128 {
            return Err(KnowledgeError::invalid(path, "more than 128 value sets"));
        }
        if self.by_name.contains_key(&document.id) {
            return Err(KnowledgeError::invalid(
                path,
                format!("duplicate value set id '{}'", document.id),
            ));
        }
        let id = ValueSetId(self.meta.len() as u8);
        let bit = Memberships(1u128 << id.0);
        for include in &document.compose.include {
            let system = CodeSystem::from_uri(&include.system).ok_or_else(|| {
                KnowledgeError::invalid(path, format!("unknown code system '{}'", include.system))
            })?;
            let source = include
                .extension
                .iter()
                .find(|e| e.url == SOURCE_EXTENSION)
                .and_then(|e| e.value_string.clone())
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    KnowledgeError::invalid(
                        path,
                        format!("an include of {} cites no source", include.system),
                    )
                })?;
            for concept in &include.concept {
                *self
                    .exact
                    .entry(system)
                    .or_default()
                    .entry(system.normalize(&concept.code).into_owned())
                    .or_default() |= bit;
                self.entries.push(ValueSetEntry {
                    value_set: document.id.clone(),
                    system,
                    code: concept.code.clone(),
                    is_prefix: false,
                    source: source.clone(),
                });
            }
            match include.filter.as_slice() {
                [] => {}
                [filter]
                    if filter.property == "concept"
                        && filter.op == "is-a"
                        && system.supports_prefix() =>
                {
                    let prefix = system.normalize(&filter.value).into_owned();
                    self.longest_prefix = self.longest_prefix.max(prefix.len());
                    *self
                        .prefixes
                        .entry(system)
                        .or_default()
                        .entry(prefix)
                        .or_default() |= bit;
                    self.entries.push(ValueSetEntry {
                        value_set: document.id.clone(),
                        system,
                        code: filter.value.clone(),
                        is_prefix: true,
                        source: source.clone(),
                    });
                }
                _ => return Err(KnowledgeError::invalid(
                    path,
                    "only one 'concept is-a' filter per include, on ICD-10-CM or ATC, is supported",
                )),
            }
        }
        let focus = document
            .use_context
            .iter()
            .filter(|c| c.code.code.as_deref() == Some(FOCUS_CONTEXT))
            .flat_map(|c| {
                c.value_codeable_concept
                    .iter()
                    .flat_map(|v| v.coding.iter())
            })
            .filter_map(|c| c.code.as_deref().map(str::to_owned))
            .collect();
        self.by_name.insert(document.id.clone(), id);
        self.meta.push(ValueSetMeta {
            id: document.id,
            title: document.title,
            focus,
        });
        Ok(())
    }

    pub fn id(&self, name: &str) -> Result<ValueSetId, KnowledgeError> {
        self.by_name.get(name).copied().ok_or_else(|| {
            KnowledgeError::invalid("valuesets", format!("value set '{name}' is missing"))
        })
    }

    pub fn meta(&self) -> &[ValueSetMeta] {
        &self.meta
    }

    pub fn entries(&self) -> &[ValueSetEntry] {
        &self.entries
    }

    /// The value sets a coding belongs to: its exact code, then every prefix.
    pub fn classify_coding(&self, coding: &Coding) -> Memberships {
        let (Some(system), Some(code)) = (
            coding.system.as_deref().and_then(CodeSystem::from_uri),
            coding.code.as_deref(),
        ) else {
            return Memberships::default();
        };
        let code = system.normalize(code);
        let mut found = Memberships::default();
        if let Some(m) = self
            .exact
            .get(&system)
            .and_then(|codes| codes.get(code.as_ref()))
        {
            found |= *m;
        }
        if let Some(prefixes) = self.prefixes.get(&system) {
            for end in
                (1..=code.len().min(self.longest_prefix)).filter(|end| code.is_char_boundary(*end))
            {
                if let Some(m) = prefixes.get(&code[..end]) {
                    found |= *m;
                }
            }
        }
        found
    }

    pub fn classify(&self, concept: &CodeableConcept) -> Memberships {
        let mut found = Memberships::default();
        for coding in &concept.coding {
            found |= self.classify_coding(coding);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coding<'a>(system: &'a str, code: &'a str) -> Coding<'a> {
        Coding {
            system: Some(system.into()),
            code: Some(code.into()),
            display: None,
        }
    }

    #[test]
    fn prefixes_and_exact_codes() {
        let doc = r#"{"resourceType":"ValueSet","id":"ckd","title":"CKD","compose":{"include":[
            {"system":"http://hl7.org/fhir/sid/icd-10-cm","extension":[{"url":"https://cramp-cds.example.org/fhir/StructureDefinition/source","valueString":"test"}],
             "filter":[{"property":"concept","op":"is-a","value":"N18"}]},
            {"system":"http://snomed.info/sct","extension":[{"url":"https://cramp-cds.example.org/fhir/StructureDefinition/source","valueString":"test"}],
             "concept":[{"code":"46177005"}]}]}}"#;
        let sets = ValueSets::from_documents([("valuesets/ckd.json", doc)].into_iter()).unwrap();
        let ckd = sets.id("ckd").unwrap();
        assert!(sets
            .classify_coding(&coding("http://hl7.org/fhir/sid/icd-10-cm", "N18.4"))
            .contains(ckd));
        assert!(sets
            .classify_coding(&coding("http://hl7.org/fhir/sid/icd-10-cm", "n184"))
            .contains(ckd));
        assert!(sets
            .classify_coding(&coding("https://snomed.info/sct", "46177005"))
            .contains(ckd));
        assert!(sets
            .classify_coding(&coding("http://hl7.org/fhir/sid/icd-10-cm", "N19"))
            .is_empty());
        assert!(sets
            .classify_coding(&coding("http://loinc.org", "46177005"))
            .is_empty());
    }

    #[test]
    fn an_include_without_a_source_is_refused() {
        let doc = r#"{"resourceType":"ValueSet","id":"x","title":"X","compose":{"include":[
            {"system":"http://snomed.info/sct","concept":[{"code":"46177005"}]}]}}"#;
        assert!(
            ValueSets::from_documents([("valuesets/x.json", doc)].into_iter())
                .err()
                .unwrap()
                .to_string()
                .contains("cites no source")
        );
    }
}
