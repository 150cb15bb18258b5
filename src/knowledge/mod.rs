//! The knowledge base: value sets (FHIR ValueSet JSON), drug classes, lab
//! limits, findings, sources, the cards' statements and draft orders, all
//! data under cds-hooks/knowledge/. Loading checks every id one file names
//! in another and fails with a [`KnowledgeError`] naming the file and id.
//! Embedded at build time, or read from a directory at run time; indexed
//! once at start-up so that every lookup is a few hash probes.

pub mod codes;
pub mod drugs;
pub mod error;
pub mod files;
pub mod guidance;
pub mod ids;
pub mod orders;
pub mod statements;
pub mod units;
pub mod valuesets;

use std::collections::HashMap;

use serde::Deserialize;

pub use codes::CodeSystem;
pub use drugs::{DrugClass, DrugIndex};
pub use error::KnowledgeError;
pub use files::KnowledgeFiles;
pub use guidance::{GuidanceTopic, Handout};
pub use ids::{FindingCode, SourceId};
pub use orders::{Order, OrderDefinition};
pub use statements::{Say, Statement};
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
    pub code: FindingCode,
    pub category: Category,
    pub display: String,
    /// The words a card's summary names it by ("low potassium"), before
    /// the patient's value; the display, lower-cased, when absent.
    #[serde(default)]
    pub short: Option<String>,
    /// Say in one line why it matters for cramps (or for DVT).
    pub rationale: String,
    pub sources: Vec<SourceId>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    pub id: SourceId,
    pub short: String,
    /// The tag a card line cites it by ("Allen 2012"): a card names its
    /// sources in a few characters; the full citation is on the guidance page.
    pub tag: String,
    pub citation: String,
    pub url: Option<String>,
    /// What the source says, finding by finding and statement by
    /// statement (where in it, in our words): a card may cite it for these
    /// and nothing else.
    #[serde(default)]
    pub supports: Vec<Support>,
}

/// One thing a source says: a finding, a statement or an order, and where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Support {
    pub finding: Option<FindingCode>,
    pub statement: Option<String>,
    pub order: Option<String>,
    #[serde(rename = "where")]
    pub location: String,
}

/// An electrolyte the rules read from labs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabDefinition {
    pub finding: FindingCode,
    pub analyte: String,
    pub value_set: String,
    pub condition_value_set: String,
    /// The default low limit in every unit clinical-rules.md writes it in;
    /// a result is compared with the one in its own unit.
    pub low_limits: Vec<LabLimit>,
    pub molar_mass: f64,
    pub charge: u8,
    /// Total calcium: adjusted for a nearby albumin before comparing (r2).
    #[serde(default)]
    pub albumin_adjusted: bool,
    pub source: String,
}

/// A limit as written: decimal text (its decimals matter for rounding a
/// converted result) and a unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabLimit {
    pub value: String,
    pub unit: String,
}

impl LabLimit {
    pub fn number(&self) -> Option<f64> {
        self.value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
    }

    /// Digits after the decimal point: "0.70" has 2.
    pub fn decimals(&self) -> u32 {
        self.value
            .split_once('.')
            .map_or(0, |(_, fraction)| fraction.len() as u32)
    }
}

pub struct KnowledgeBase {
    pub value_sets: ValueSets,
    pub drugs: DrugIndex,
    pub labs: Vec<LabDefinition>,
    findings: HashMap<FindingCode, FindingDefinition>,
    sources: HashMap<SourceId, Source>,
    statements: HashMap<String, Statement>,
    /// The draft orders the cards offer (orders.json).
    orders: HashMap<String, OrderDefinition>,
    /// The guidance pages' text, one topic per card (guidance.json).
    guidance: Vec<GuidanceTopic>,
    /// The patient handout's text (handout.json).
    handout: Handout,
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
    pub fn embedded() -> Result<Self, KnowledgeError> {
        Self::from_files(KnowledgeFiles::embedded())
    }

    /// Knowledge read from a directory laid out like cds-hooks/knowledge/.
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, KnowledgeError> {
        Self::from_files(KnowledgeFiles::read_dir(dir)?)
    }

    pub fn from_files(files: KnowledgeFiles) -> Result<Self, KnowledgeError> {
        let sources: SourcesFile = files.parse("sources.json")?;
        let sources: HashMap<SourceId, Source> = sources
            .sources
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let findings: FindingsFile = files.parse("findings.json")?;
        let labs: LabsFile = files.parse("labs.json")?;
        let statements: statements::StatementsFile = files.parse("statements.json")?;
        let orders: orders::OrdersFile = files.parse("orders.json")?;
        let value_sets = ValueSets::from_documents(files.value_sets())?;
        let drugs = DrugIndex::from_json(files.text("drug-classes.json")?)?;

        let statements: HashMap<String, Statement> = statements
            .statements
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let finding_order = findings.findings.clone();
        let mut kb = Self {
            value_sets,
            drugs,
            labs: labs.labs,
            findings: findings
                .findings
                .into_iter()
                .map(|f| (f.code.clone(), f))
                .collect(),
            sources,
            statements,
            orders: orders
                .orders
                .into_iter()
                .map(|o| (o.id.clone(), o))
                .collect(),
            guidance: Vec::new(),
            handout: Handout::default(),
            origin: files.origin.clone(),
        };
        kb.check_references()?;
        kb.check_citations()?;
        kb.check_texts()?;
        let known = guidance::Known {
            sources: &kb.sources,
            statements: &kb.statements,
            findings: &finding_order,
        };
        let guidance = known.guidance(files.parse("guidance.json")?)?;
        let handout = known.handout(files.parse("handout.json")?)?;
        kb.guidance = guidance;
        kb.handout = handout;
        if let Some(order) = kb.orders.values().find(|o| kb.guidance(&o.card).is_none()) {
            return Err(KnowledgeError::UnknownText {
                file: "orders.json".into(),
                owner: order.id.clone(),
                kind: "card topic",
                key: order.card.clone(),
            });
        }
        Ok(kb)
    }

    /// Every source cited exists; every lab names known value sets and findings.
    fn check_references(&self) -> Result<(), KnowledgeError> {
        let cited = self
            .findings
            .values()
            .flat_map(|f| {
                f.sources
                    .iter()
                    .map(move |s| ("findings.json", f.code.as_str(), s))
            })
            .chain(self.drugs.classes().iter().flat_map(|c| {
                c.sources
                    .iter()
                    .map(move |s| ("drug-classes.json", c.code.as_str(), s))
            }))
            .chain(self.statements.values().flat_map(|st| {
                st.sources
                    .iter()
                    .map(move |s| ("statements.json", st.id.as_str(), s))
            }))
            .chain(self.orders.values().flat_map(|o| {
                o.sources
                    .iter()
                    .map(move |s| ("orders.json", o.id.as_str(), s))
            }));
        for (file, owner, source) in cited {
            if !self.sources.contains_key(source) {
                return Err(KnowledgeError::UnknownSource {
                    file: file.into(),
                    owner: owner.into(),
                    id: source.to_string(),
                });
            }
        }
        for lab in &self.labs {
            if lab.low_limits.is_empty()
                || lab
                    .low_limits
                    .iter()
                    .any(|l| l.number().is_none() || !labs_unit_known(&l.unit))
            {
                return Err(KnowledgeError::invalid(
                    "labs.json",
                    format!(
                        "'{}' needs low limits with a positive decimal value and a known unit",
                        lab.analyte
                    ),
                ));
            }
            self.value_sets.id(&lab.value_set)?;
            self.value_sets.id(&lab.condition_value_set)?;
            self.finding(&lab.finding)
                .ok_or_else(|| KnowledgeError::UnknownFinding {
                    file: "labs.json".into(),
                    owner: lab.analyte.clone(),
                    id: lab.finding.to_string(),
                })?;
        }
        for class in self.drugs.classes() {
            self.finding(&class.code)
                .ok_or_else(|| KnowledgeError::UnknownFinding {
                    file: "drug-classes.json".into(),
                    owner: format!("class {}", class.code),
                    id: class.code.to_string(),
                })?;
        }
        for order in self.orders.values() {
            if let Some(problem) = order.problem() {
                return Err(KnowledgeError::invalid("orders.json", problem));
            }
        }
        Ok(())
    }

    /// Citations that hold (clinical-rules.md r2): every source a finding or
    /// a statement cites says it (its `supports` names it); a statement with
    /// no source is a service decision and says so; every statement the
    /// cards make has its text, and no text is left unused.
    fn check_citations(&self) -> Result<(), KnowledgeError> {
        let supported = |source: &str, finding: Option<&str>, statement: Option<&str>| {
            self.sources.get(source).is_some_and(|s| {
                s.supports.iter().any(|x| {
                    (finding.is_some() && x.finding.as_deref() == finding)
                        || (statement.is_some() && x.statement.as_deref() == statement)
                })
            })
        };
        for order in self.orders.values() {
            let says_it = |source: &SourceId| {
                self.sources.get(source).is_some_and(|s| {
                    s.supports
                        .iter()
                        .any(|x| x.order.as_deref() == Some(order.id.as_str()))
                })
            };
            if let Some(source) = order.sources.iter().find(|s| !says_it(s)) {
                return Err(KnowledgeError::invalid(
                    "orders.json",
                    format!(
                        "'{}' cites '{source}', which does not support it (sources.json supports)",
                        order.id
                    ),
                ));
            }
        }
        let finding_citations = self
            .findings
            .values()
            .flat_map(|f| f.sources.iter().map(move |s| (f.code.as_str(), s.as_str())))
            .chain(
                self.drugs
                    .classes()
                    .iter()
                    .flat_map(|c| c.sources.iter().map(move |s| (c.code.as_str(), s.as_str()))),
            );
        for (finding, source) in finding_citations {
            if !supported(source, Some(finding), None) {
                return Err(KnowledgeError::invalid(
                    "findings.json",
                    format!("'{finding}' cites '{source}', which does not support it (sources.json supports)"),
                ));
            }
        }
        for statement in self.statements.values() {
            if statement.template {
                // Card layout wording ("Next step: {step}"): it states no
                // medical fact, so it cites nothing and decides nothing.
                if !statement.sources.is_empty() || statement.decision {
                    return Err(KnowledgeError::invalid(
                        STATEMENTS,
                        format!(
                            "'{}' is a template and cannot cite sources or be a service decision",
                            statement.id
                        ),
                    ));
                }
                continue;
            }
            match (statement.sources.is_empty(), statement.decision) {
                (true, false) => {
                    return Err(KnowledgeError::invalid(
                        STATEMENTS,
                        format!(
                            "'{}' has no source and is not marked a service decision",
                            statement.id
                        ),
                    ))
                }
                (false, true) => {
                    return Err(KnowledgeError::invalid(
                        STATEMENTS,
                        format!("'{}' is a service decision but cites sources", statement.id),
                    ))
                }
                _ => {}
            }
            for source in &statement.sources {
                if !supported(source, None, Some(&statement.id)) {
                    return Err(KnowledgeError::invalid(
                        STATEMENTS,
                        format!(
                            "'{}' cites '{source}', which does not support it (sources.json supports)",
                            statement.id
                        ),
                    ));
                }
            }
        }
        for say in Say::ALL {
            if !self.statements.contains_key(say.id()) {
                return Err(KnowledgeError::UnknownText {
                    file: STATEMENTS.into(),
                    owner: "the cards".into(),
                    kind: "statement",
                    key: say.id().into(),
                });
            }
        }
        for order in Order::ALL {
            if !self.orders.contains_key(order.id()) {
                return Err(KnowledgeError::UnknownText {
                    file: "orders.json".into(),
                    owner: "the cards".into(),
                    kind: "order",
                    key: order.id().into(),
                });
            }
        }
        if let Some(unused) = self
            .orders
            .keys()
            .find(|id| !Order::ALL.iter().any(|o| o.id() == id.as_str()))
        {
            return Err(KnowledgeError::invalid(
                "orders.json",
                format!("order '{unused}' is not offered by any card"),
            ));
        }
        for statement in self.statements.values() {
            if let Some(full) = statement.condenses.iter().find(|id| {
                self.statements
                    .get(id.as_str())
                    .is_none_or(|full| full.card != statement.card)
            }) {
                return Err(KnowledgeError::invalid(
                    STATEMENTS,
                    format!(
                        "'{}' condenses '{full}', which is not a statement of its card",
                        statement.id
                    ),
                ));
            }
        }
        if let Some(unused) = self
            .statements
            .keys()
            .find(|id| !Say::ALL.iter().any(|s| s.id() == id.as_str()))
        {
            return Err(KnowledgeError::invalid(
                STATEMENTS,
                format!("statement '{unused}' is not used by any card"),
            ));
        }
        for source in self.sources.values() {
            for support in &source.supports {
                let names_something = match (&support.finding, &support.statement, &support.order) {
                    (Some(f), None, None) => self.findings.contains_key(f),
                    (None, Some(s), None) => self.statements.contains_key(s),
                    (None, None, Some(o)) => self.orders.contains_key(o),
                    _ => false,
                };
                if !names_something {
                    return Err(KnowledgeError::invalid(
                        "sources.json",
                        format!(
                            "'{}' supports an unknown finding, statement or order ({:?} / {:?} / {:?})",
                            source.id, support.finding, support.statement, support.order
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Text keys that hold: a template uses exactly the placeholders the
    /// renderer fills (a typo would print "{setp}" to a clinician), and
    /// no other statement has any.
    fn check_texts(&self) -> Result<(), KnowledgeError> {
        for say in Say::ALL {
            let statement = &self.statements[say.id()];
            let expected = say.placeholders();
            let unknown_key = |kind, key: &str| KnowledgeError::UnknownText {
                file: STATEMENTS.into(),
                owner: say.id().into(),
                kind,
                key: key.into(),
            };
            let used: Vec<&str> = statements::placeholders_in(&statement.text).collect();
            if let Some(unknown) = used.iter().find(|p| !expected.contains(p)) {
                return Err(unknown_key("placeholder", &format!("{{{unknown}}}")));
            }
            if let Some(missing) = expected.iter().find(|p| !used.contains(p)) {
                return Err(KnowledgeError::invalid(
                    STATEMENTS,
                    format!("'{}' lacks the placeholder '{{{missing}}}'", say.id()),
                ));
            }
            if !expected.is_empty() && !statement.template {
                return Err(KnowledgeError::invalid(
                    STATEMENTS,
                    format!("'{}' has placeholders: mark it a template", say.id()),
                ));
            }
            if say.lists_last() && !statement.text.ends_with(&format!("{{{}}}", expected[0])) {
                return Err(KnowledgeError::invalid(
                    STATEMENTS,
                    format!(
                        "'{}' must end with '{{{}}}' (the list is cut to length)",
                        say.id(),
                        expected[0]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// An order a card offers (checked at start-up to exist).
    pub fn order(&self, order: Order) -> &OrderDefinition {
        &self.orders[order.id()]
    }

    pub fn orders(&self) -> impl Iterator<Item = &OrderDefinition> {
        self.orders.values()
    }

    /// A statement the cards make (checked at start-up to exist).
    pub fn statement(&self, say: Say) -> &Statement {
        &self.statements[say.id()]
    }

    pub fn statements(&self) -> impl Iterator<Item = &Statement> {
        self.statements.values()
    }

    pub fn finding(&self, code: &str) -> Option<&FindingDefinition> {
        self.findings.get(code)
    }

    pub fn findings(&self) -> impl Iterator<Item = &FindingDefinition> {
        self.findings.values()
    }

    /// The guidance page text of a card topic ("risk-factors", ...).
    pub fn guidance(&self, topic: &str) -> Option<&GuidanceTopic> {
        self.guidance.iter().find(|t| t.topic == topic)
    }

    pub fn guidance_topics(&self) -> &[GuidanceTopic] {
        &self.guidance
    }

    pub fn handout(&self) -> &Handout {
        &self.handout
    }

    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.get(id)
    }

    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.values()
    }
}

const STATEMENTS: &str = "statements.json";

fn labs_unit_known(unit: &str) -> bool {
    units::Unit::parse(unit).is_some()
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
        let focused: std::collections::HashSet<&str> = kb
            .value_sets
            .meta()
            .iter()
            .flat_map(|m| m.focus.iter().map(String::as_str))
            .collect();
        let missing: Vec<&str> = kb
            .findings()
            .map(|f| f.code.as_str())
            .filter(|code| !NOT_CODED.contains(code))
            .filter(|code| !focused.contains(code) && kb.drugs.position(code).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "findings with no value set or drug class: {missing:?}"
        );
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
        assert!(kb
            .value_sets
            .entries()
            .iter()
            .all(|e| !e.source.trim().is_empty()));
        for class in kb.drugs.classes() {
            assert!(!class.sources.is_empty(), "{}", class.code);
            assert!(
                class.products.iter().all(|p| !p.source.trim().is_empty()),
                "{}",
                class.code
            );
        }
        for finding in kb.findings() {
            assert!(!finding.sources.is_empty(), "{}", finding.code);
            assert!(
                finding.sources.iter().all(|s| kb.source(s).is_some()),
                "{}",
                finding.code
            );
        }
    }

    /// Knowledge whose `file` is edited as JSON by `edit`.
    fn edited(
        file: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Result<KnowledgeBase, String> {
        let files = KnowledgeFiles::embedded();
        let mut json: serde_json::Value = serde_json::from_str(files.text(file).unwrap()).unwrap();
        edit(&mut json);
        KnowledgeBase::from_files(files.with(file, json.to_string())).map_err(|e| e.to_string())
    }

    #[test]
    fn a_source_cited_for_a_finding_it_does_not_support_is_refused() {
        // Garrison 2012 measured drugs; it does not say age is a risk factor.
        let error = edited("findings.json", |json| {
            let older = json["findings"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|f| f["code"] == "older-age")
                .unwrap();
            older["sources"]
                .as_array_mut()
                .unwrap()
                .push("garrison-2012".into());
        })
        .err()
        .expect("refused");
        assert!(
            error.contains("'older-age' cites 'garrison-2012'"),
            "{error}"
        );

        let error = edited("sources.json", |json| {
            let bmj = json["sources"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|s| s["id"] == "bmj-bp-2012")
                .unwrap();
            bmj["supports"]
                .as_array_mut()
                .unwrap()
                .retain(|s| s["finding"] != "dialysis");
        })
        .err()
        .expect("refused");
        assert!(error.contains("'dialysis' cites 'bmj-bp-2012'"), "{error}");
    }

    #[test]
    fn statements_cite_what_supports_them_or_are_decisions() {
        let statements = |edit: fn(&mut serde_json::Value)| {
            edited("statements.json", |json| {
                let first = json["statements"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|s| s["id"] == "stretching")
                    .unwrap();
                edit(first);
            })
        };
        let wrong_source = statements(|s| s["sources"] = serde_json::json!(["garrison-2012"]))
            .err()
            .expect("refused");
        assert!(
            wrong_source.contains("'stretching' cites 'garrison-2012'"),
            "{wrong_source}"
        );
        let unsourced = statements(|s| s["sources"] = serde_json::json!([]))
            .err()
            .expect("refused");
        assert!(
            unsourced.contains("not marked a service decision"),
            "{unsourced}"
        );
        let template_citing = edited("statements.json", |json| {
            let next = json["statements"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|s| s["id"] == "next-step")
                .unwrap();
            next["sources"] = serde_json::json!(["carenotes-2022"]);
        })
        .err()
        .expect("refused");
        assert!(
            template_citing.contains("'next-step' is a template"),
            "{template_citing}"
        );
        let condenses_other_card = edited("statements.json", |json| {
            let short = json["statements"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|s| s["id"] == "quinine-fda-short")
                .unwrap();
            short["condenses"] = serde_json::json!(["stretching"]);
        })
        .err()
        .expect("refused");
        assert!(
            condenses_other_card.contains("'quinine-fda-short' condenses 'stretching'"),
            "{condenses_other_card}"
        );
        let missing = edited("statements.json", |json| {
            json["statements"]
                .as_array_mut()
                .unwrap()
                .retain(|s| s["id"] != "fluids");
        })
        .err()
        .expect("refused");
        assert!(
            missing.contains("statements.json: 'the cards' names unknown statement 'fluids'"),
            "{missing}"
        );
        let unknown_support = edited("sources.json", |json| {
            json["sources"][0]["supports"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"finding": "no-such", "where": "x"}));
        })
        .err()
        .expect("refused");
        assert!(
            unknown_support.contains("unknown finding, statement or order"),
            "{unknown_support}"
        );
    }

    #[test]
    fn guidance_and_handout_ids_are_checked_at_start_up() {
        let error = edited("guidance.json", |json| {
            json["topics"][0]["trigger"][0]["sources"] = serde_json::json!(["no-such-source"]);
        })
        .err()
        .expect("refused");
        assert!(error.contains("unknown source 'no-such-source'"), "{error}");
        let error = edited("handout.json", |json| {
            json["sections"][0]["items"][0]["sources"] = serde_json::json!(["nope-2020"]);
        })
        .err()
        .expect("refused");
        assert!(
            error.contains("handout.json") && error.contains("unknown source 'nope-2020'"),
            "{error}"
        );
        let error = edited("handout.json", |json| {
            json["sections"][0]["items"][0]["sources"] = serde_json::json!([]);
        })
        .err()
        .expect("refused");
        assert!(
            error.contains("handout.json: 'A leg cramp is a sudden"),
            "{error}"
        );
        let error = edited("guidance.json", |json| {
            json["topics"][0]["nextSteps"] = serde_json::json!(["no-such-statement"]);
        })
        .err()
        .expect("refused");
        assert!(
            error.contains("unknown statement 'no-such-statement'"),
            "{error}"
        );
        let error = edited("guidance.json", |json| {
            json["topics"][0]["findings"][0]["finding"] = serde_json::json!("no-such-finding");
        })
        .err()
        .expect("refused");
        assert!(
            error.contains("unknown finding 'no-such-finding'"),
            "{error}"
        );
    }

    #[test]
    fn every_card_statement_is_on_its_guidance_page() {
        let error = edited("guidance.json", |json| {
            json["topics"][0]["nextSteps"]
                .as_array_mut()
                .unwrap()
                .retain(|s| s != "fluids");
        })
        .err()
        .expect("refused");
        assert!(
            error.contains("card statement 'fluids' is not on its guidance page"),
            "{error}"
        );
        let kb = kb();
        for topic in [
            "risk-factors",
            "medication-culprits",
            "dvt-rule-out",
            "quinine-warning",
        ] {
            let page = kb.guidance(topic).expect(topic);
            assert!(
                !page.findings.is_empty() && !page.trigger.is_empty(),
                "{topic}"
            );
        }
    }

    #[test]
    fn order_codes_are_checked_at_start_up() {
        let order = |edit: fn(&mut serde_json::Value)| {
            edited("orders.json", |json| {
                let duplex = json["orders"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|o| o["id"] == "dvt-duplex")
                    .unwrap();
                edit(duplex);
            })
            .err()
            .expect("refused")
        };
        let error = order(|o| o["code"]["system"] = "cpt".into());
        assert!(
            error.contains("orders.json: 'dvt-duplex': code system 'cpt' is not an absolute URL"),
            "{error}"
        );
        let error = order(|o| o["code"]["code"] = "".into());
        assert!(error.contains("'dvt-duplex': code is empty"), "{error}");
        let error = order(|o| o["sources"] = serde_json::json!(["garrison-2012"]));
        assert!(
            error.contains(
                "orders.json: 'dvt-duplex' cites 'garrison-2012', which does not support it"
            ),
            "{error}"
        );
        let error = edited("orders.json", |json| {
            json["orders"][0]["card"] = "dvt".into();
        })
        .err()
        .expect("refused");
        assert!(error.contains("unknown card topic 'dvt'"), "{error}");
        let kb = kb();
        let d_dimer = kb.order(Order::DvtDDimer);
        assert_eq!(
            (d_dimer.code.system.as_str(), d_dimer.code.code.as_str()),
            ("http://loinc.org", "48065-7")
        );
    }

    #[test]
    fn templates_use_the_placeholders_the_renderer_fills() {
        let template = |id: &'static str, text: &'static str| {
            edited("statements.json", move |json| {
                json["statements"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|s| s["id"] == id)
                    .unwrap()["text"] = text.into();
            })
        };
        let error = template("and-more", "and {count} more: {nmes}")
            .err()
            .unwrap();
        assert!(
            error.contains("statements.json: 'and-more' names unknown placeholder '{nmes}'"),
            "{error}"
        );
        let error = template("and-more", "and {count} more").err().unwrap();
        assert!(
            error.contains("'and-more' lacks the placeholder '{names}'"),
            "{error}"
        );
        let error = template("stretching", "Stretch {daily}").err().unwrap();
        assert!(error.contains("unknown placeholder '{daily}'"), "{error}");
        let error = template("culprits-summary", "{names}: may cause cramps")
            .err()
            .unwrap();
        assert!(error.contains("must end with '{names}'"), "{error}");
        assert_eq!(
            statements::fill("a {x} b {y} {z}", &[("x", "1"), ("y", "{x}")]),
            "a 1 b {x} {z}"
        );
    }

    #[test]
    fn a_knowledge_directory_loads_like_the_embedded_copy() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/knowledge");
        let from_dir = KnowledgeBase::from_dir(&dir).unwrap();
        assert_eq!(
            from_dir.value_sets.entries().len(),
            kb().value_sets.entries().len()
        );
        assert!(KnowledgeBase::from_dir(std::path::Path::new("/nonexistent")).is_err());
    }
}
