//! The knowledge base: value sets (FHIR ValueSet JSON), drug classes, lab
//! limits, findings and sources, all data under cds-hooks/knowledge/.
//! Embedded at build time, or read from a directory at run time; indexed
//! once at start-up so that every lookup is a few hash probes.

pub mod codes;
pub mod drugs;
pub mod files;
pub mod valuesets;

use std::collections::HashMap;

use serde::Deserialize;

pub use codes::CodeSystem;
pub use drugs::{DrugClass, DrugIndex};
pub use files::KnowledgeFiles;
pub use valuesets::{Memberships, ValueSetId, ValueSets};

/// What a finding is about; also the card it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    RiskFactor,
    Medication,
    Dvt,
    Safety,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::RiskFactor => "risk-factor",
            Category::Medication => "medication",
            Category::Dvt => "dvt",
            Category::Safety => "safety",
        }
    }
}

/// A finding the rules can report: its display and the sources behind it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FindingDefinition {
    pub code: String,
    pub category: Category,
    pub display: String,
    /// Say in one line why it matters for cramps (or for DVT).
    pub rationale: String,
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    pub id: String,
    pub short: String,
    pub citation: String,
    pub url: Option<String>,
}

/// An electrolyte the rules read from labs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabDefinition {
    pub finding: String,
    pub analyte: String,
    pub value_set: String,
    pub condition_value_set: String,
    pub default_low: LabLimit,
    pub molar_mass: f64,
    pub charge: u8,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabLimit {
    pub value: f64,
    pub unit: String,
}

pub struct KnowledgeBase {
    pub value_sets: ValueSets,
    pub drugs: DrugIndex,
    pub labs: Vec<LabDefinition>,
    findings: HashMap<String, FindingDefinition>,
    sources: HashMap<String, Source>,
    /// Where it came from, for the logs and /readyz.
    pub origin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingsFile {
    findings: Vec<FindingDefinition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    sources: Vec<Source>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabsFile {
    labs: Vec<LabDefinition>,
}

impl KnowledgeBase {
    /// The knowledge compiled into the binary.
    pub fn embedded() -> Result<Self, String> {
        Self::from_files(KnowledgeFiles::embedded())
    }

    /// Knowledge read from a directory laid out like cds-hooks/knowledge/.
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, String> {
        Self::from_files(KnowledgeFiles::read_dir(dir)?)
    }

    pub fn from_files(files: KnowledgeFiles) -> Result<Self, String> {
        let sources: SourcesFile = files.parse("sources.json")?;
        let sources: HashMap<String, Source> = sources.sources.into_iter().map(|s| (s.id.clone(), s)).collect();
        let findings: FindingsFile = files.parse("findings.json")?;
        let labs: LabsFile = files.parse("labs.json")?;
        let value_sets = ValueSets::from_documents(files.value_sets())?;
        let drugs = DrugIndex::from_json(files.text("drug-classes.json")?)?;

        let kb = Self {
            value_sets,
            drugs,
            labs: labs.labs,
            findings: findings.findings.into_iter().map(|f| (f.code.clone(), f)).collect(),
            sources,
            origin: files.origin.clone(),
        };
        kb.check_references()?;
        Ok(kb)
    }

    /// Every source cited exists; every lab names known value sets and findings.
    fn check_references(&self) -> Result<(), String> {
        let cited = self
            .findings
            .values()
            .flat_map(|f| f.sources.iter().map(move |s| (f.code.as_str(), s)))
            .chain(self.drugs.classes().iter().flat_map(|c| c.sources.iter().map(move |s| (c.code.as_str(), s))));
        for (owner, source) in cited {
            if !self.sources.contains_key(source) {
                return Err(format!("knowledge: '{owner}' cites unknown source '{source}'"));
            }
        }
        for lab in &self.labs {
            self.value_sets.id(&lab.value_set)?;
            self.value_sets.id(&lab.condition_value_set)?;
            self.finding(&lab.finding).ok_or_else(|| format!("labs.json: unknown finding '{}'", lab.finding))?;
        }
        for class in self.drugs.classes() {
            self.finding(&class.code).ok_or_else(|| format!("drug-classes.json: class '{}' has no finding", class.code))?;
        }
        Ok(())
    }

    pub fn finding(&self, code: &str) -> Option<&FindingDefinition> {
        self.findings.get(code)
    }

    pub fn findings(&self) -> impl Iterator<Item = &FindingDefinition> {
        self.findings.values()
    }

    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.get(id)
    }

    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kb() -> KnowledgeBase {
        KnowledgeBase::embedded().expect("the embedded knowledge loads")
    }

    /// Findings that come from demographics or gate the service, not codes.
    const NOT_CODED: &[&str] = &["older-age"];

    #[test]
    fn every_finding_has_a_value_set_or_a_drug_class() {
        let kb = kb();
        let focused: std::collections::HashSet<&str> =
            kb.value_sets.meta().iter().flat_map(|m| m.focus.iter().map(String::as_str)).collect();
        let missing: Vec<&str> = kb
            .findings()
            .map(|f| f.code.as_str())
            .filter(|code| !NOT_CODED.contains(code))
            .filter(|code| !focused.contains(code) && kb.drugs.position(code).is_none())
            .collect();
        assert!(missing.is_empty(), "findings with no value set or drug class: {missing:?}");
    }

    #[test]
    fn every_code_is_well_formed_for_its_system() {
        let kb = kb();
        let bad: Vec<String> = kb
            .value_sets
            .entries()
            .iter()
            .filter(|e| !e.system.is_well_formed(&e.code))
            .map(|e| format!("{}: {:?} {}", e.value_set, e.system, e.code))
            .chain(kb.drugs.classes().iter().flat_map(|class| {
                let rx = class
                    .ingredients
                    .iter()
                    .filter_map(|i| i.rxnorm.as_deref())
                    .chain(class.products.iter().map(|p| p.rxnorm.as_str()))
                    .filter(|code| !CodeSystem::RxNorm.is_well_formed(code))
                    .map(move |code| format!("{}: RxNorm {code}", class.code));
                let atc = class
                    .atc
                    .iter()
                    .filter(|code| !CodeSystem::Atc.is_well_formed(code))
                    .map(move |code| format!("{}: ATC {code}", class.code));
                rx.chain(atc).collect::<Vec<_>>()
            }))
            .collect();
        assert!(bad.is_empty(), "malformed codes: {bad:#?}");
    }

    #[test]
    fn every_entry_cites_a_source() {
        let kb = kb();
        assert!(kb.value_sets.entries().iter().all(|e| !e.source.trim().is_empty()));
        for class in kb.drugs.classes() {
            assert!(!class.sources.is_empty(), "{}", class.code);
            assert!(class.products.iter().all(|p| !p.source.trim().is_empty()), "{}", class.code);
        }
        for finding in kb.findings() {
            assert!(!finding.sources.is_empty(), "{}", finding.code);
            assert!(finding.sources.iter().all(|s| kb.source(s).is_some()), "{}", finding.code);
        }
    }

    #[test]
    fn a_knowledge_directory_loads_like_the_embedded_copy() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/knowledge");
        let from_dir = KnowledgeBase::from_dir(&dir).unwrap();
        assert_eq!(from_dir.value_sets.entries().len(), kb().value_sets.entries().len());
        assert!(KnowledgeBase::from_dir(std::path::Path::new("/nonexistent")).is_err());
    }
}
