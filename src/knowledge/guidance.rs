//! The text of the guidance pages (guidance.json: one topic per card) and
//! of the patient handout (handout.json). Every passage cites the sources
//! that support it, names the clinical rule it restates, reuses a card
//! statement by id, or is marked a service decision; start-up checks that
//! every id it names exists and that every statement a card makes appears
//! on its topic's page (the full story moves there, it is not cut).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::{
    Category, FindingCode, FindingDefinition, KnowledgeError, Source, SourceId, Statement,
};

const GUIDANCE: &str = "guidance.json";
const HANDOUT: &str = "handout.json";

/// A passage as written in the files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PassageFile {
    /// Our own words; or `statement` instead, to reuse a card statement.
    text: Option<String>,
    statement: Option<String>,
    #[serde(default)]
    sources: Vec<SourceId>,
    /// The section of docs/clinical-rules.md the passage restates.
    rule: Option<String>,
    #[serde(default)]
    decision: bool,
}

/// A passage ready to print: its text and what backs it.
#[derive(Debug, Clone, Default)]
pub struct Passage {
    pub text: String,
    pub sources: Vec<SourceId>,
    pub rule: Option<String>,
    /// A service decision (no source says it).
    pub decision: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FindingWindowFile {
    finding: FindingCode,
    window: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TopicFile {
    topic: String,
    title: String,
    purpose: PassageFile,
    trigger: Vec<PassageFile>,
    finding_categories: Vec<Category>,
    /// The window for findings without their own entry in `findings`.
    default_window: Option<String>,
    findings: Vec<FindingWindowFile>,
    next_steps: Vec<String>,
    red_flags: Vec<String>,
    #[serde(default)]
    notes: Vec<PassageFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GuidanceFile {
    topics: Vec<TopicFile>,
}

/// One finding on a guidance page: its definition and when it counts.
#[derive(Debug, Clone)]
pub struct GuidanceFinding {
    pub code: FindingCode,
    pub window: String,
}

/// A card topic's guidance page, every reference resolved.
#[derive(Debug, Clone)]
pub struct GuidanceTopic {
    pub topic: String,
    pub title: String,
    pub purpose: Passage,
    pub trigger: Vec<Passage>,
    /// In findings.json order.
    pub findings: Vec<GuidanceFinding>,
    pub next_steps: Vec<Passage>,
    pub red_flags: Vec<Passage>,
    pub notes: Vec<Passage>,
}

impl GuidanceTopic {
    /// Every source the page cites, in first-cited order (findings included).
    pub fn cited_sources<'a>(&'a self, finding_sources: &'a [Vec<SourceId>]) -> Vec<&'a str> {
        let mut cited: Vec<&str> = Vec::new();
        let passages = std::iter::once(&self.purpose)
            .chain(&self.trigger)
            .chain(&self.next_steps)
            .chain(&self.red_flags)
            .chain(&self.notes)
            .flat_map(|p| p.sources.iter())
            .chain(finding_sources.iter().flatten());
        for id in passages {
            if !cited.contains(&id.as_str()) {
                cited.push(id);
            }
        }
        cited
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoutSectionFile {
    heading: String,
    items: Vec<PassageFile>,
    /// Shown as a bulleted list rather than paragraphs.
    #[serde(default)]
    list: bool,
    /// Set apart (when to call).
    #[serde(default)]
    urgent: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HandoutFile {
    title: String,
    intro: PassageFile,
    sections: Vec<HandoutSectionFile>,
}

#[derive(Debug, Clone)]
pub struct HandoutSection {
    pub heading: String,
    pub items: Vec<Passage>,
    pub list: bool,
    pub urgent: bool,
}

/// The patient handout: plain language, every passage sourced.
#[derive(Debug, Clone, Default)]
pub struct Handout {
    pub title: String,
    pub intro: Passage,
    pub sections: Vec<HandoutSection>,
}

impl Handout {
    /// Every source the handout cites, in first-cited order.
    pub fn cited_sources(&self) -> Vec<&str> {
        let mut cited: Vec<&str> = Vec::new();
        let all = std::iter::once(&self.intro)
            .chain(self.sections.iter().flat_map(|s| &s.items))
            .flat_map(|p| p.sources.iter());
        for id in all {
            if !cited.contains(&id.as_str()) {
                cited.push(id);
            }
        }
        cited
    }
}

/// What the checks read: the rest of the knowledge base.
pub(super) struct Known<'k> {
    pub sources: &'k HashMap<SourceId, Source>,
    pub statements: &'k HashMap<String, Statement>,
    /// findings.json, in file order.
    pub findings: &'k [FindingDefinition],
}

impl Known<'_> {
    /// `file` and `owner` (a topic, or "" in the handout) say where it is.
    fn passage(
        &self,
        written: &PassageFile,
        file: &'static str,
        owner: &str,
    ) -> Result<Passage, KnowledgeError> {
        let at = |text: &str| match owner {
            "" => excerpt(text),
            topic => format!("{topic}: {}", excerpt(text)),
        };
        let passage = match (&written.text, &written.statement) {
            (Some(text), None) => Passage {
                text: text.trim().to_owned(),
                sources: written.sources.clone(),
                rule: written.rule.clone(),
                decision: written.decision,
            },
            (None, Some(id)) if written.sources.is_empty() && written.rule.is_none() => {
                let statement =
                    self.statements
                        .get(id)
                        .ok_or_else(|| KnowledgeError::UnknownText {
                            file: file.into(),
                            owner: owner.into(),
                            kind: "statement",
                            key: id.clone(),
                        })?;
                Passage {
                    text: statement.text.clone(),
                    sources: statement.sources.clone(),
                    rule: None,
                    decision: statement.decision,
                }
            }
            _ => {
                return Err(KnowledgeError::invalid(
                    file,
                    format!("'{owner}': a passage has either its own text (with sources, a rule or decision) or a statement id alone"),
                ))
            }
        };
        if passage.text.is_empty() {
            return Err(KnowledgeError::invalid(
                file,
                format!("'{owner}': a passage has no text"),
            ));
        }
        if let Some(unknown) = passage
            .sources
            .iter()
            .find(|id| !self.sources.contains_key(*id))
        {
            return Err(KnowledgeError::UnknownSource {
                file: file.into(),
                owner: at(&passage.text),
                id: unknown.to_string(),
            });
        }
        let backed = !passage.sources.is_empty() || passage.rule.is_some() || passage.decision;
        if !backed {
            return Err(KnowledgeError::invalid(
                file,
                format!(
                    "'{}' cites no source, names no rule and is not marked a service decision",
                    at(&passage.text)
                ),
            ));
        }
        Ok(passage)
    }

    fn statement(&self, id: &str, owner: &str) -> Result<Passage, KnowledgeError> {
        self.passage(
            &PassageFile {
                text: None,
                statement: Some(id.to_owned()),
                sources: Vec::new(),
                rule: None,
                decision: false,
            },
            GUIDANCE,
            owner,
        )
    }

    pub fn guidance(&self, file: GuidanceFile) -> Result<Vec<GuidanceTopic>, KnowledgeError> {
        let mut topics = Vec::new();
        for topic in file.topics {
            let owner = topic.topic.as_str();
            let windows: HashMap<&str, &str> = topic
                .findings
                .iter()
                .map(|f| (f.finding.as_str(), f.window.as_str()))
                .collect();
            if let Some(unknown) = topic
                .findings
                .iter()
                .find(|f| !self.findings.iter().any(|d| d.code == f.finding))
            {
                return Err(KnowledgeError::UnknownFinding {
                    file: GUIDANCE.into(),
                    owner: owner.into(),
                    id: unknown.finding.to_string(),
                });
            }
            let mut findings = Vec::new();
            for definition in self
                .findings
                .iter()
                .filter(|d| topic.finding_categories.contains(&d.category))
            {
                let window = windows
                    .get(definition.code.as_str())
                    .copied()
                    .or(topic.default_window.as_deref())
                    .ok_or_else(|| {
                        KnowledgeError::invalid(
                            GUIDANCE,
                            format!("'{owner}': finding '{}' has no window", definition.code),
                        )
                    })?;
                findings.push(GuidanceFinding {
                    code: definition.code.clone(),
                    window: window.to_owned(),
                });
            }
            let statements = |ids: &[String]| -> Result<Vec<Passage>, KnowledgeError> {
                ids.iter().map(|id| self.statement(id, owner)).collect()
            };
            let passages = |files: &[PassageFile]| -> Result<Vec<Passage>, KnowledgeError> {
                files
                    .iter()
                    .map(|p| self.passage(p, GUIDANCE, owner))
                    .collect()
            };
            let resolved = GuidanceTopic {
                purpose: self.passage(&topic.purpose, GUIDANCE, owner)?,
                trigger: passages(&topic.trigger)?,
                next_steps: statements(&topic.next_steps)?,
                red_flags: statements(&topic.red_flags)?,
                notes: passages(&topic.notes)?,
                findings,
                title: topic.title.clone(),
                topic: topic.topic.clone(),
            };
            // Nothing a card says may be missing from its page.
            let shown: HashSet<&str> = topic
                .next_steps
                .iter()
                .chain(&topic.red_flags)
                .map(String::as_str)
                .chain(topic.notes.iter().filter_map(|n| n.statement.as_deref()))
                .collect();
            // Layout templates state nothing; concise card wording is on
            // the page through the full statements it condenses.
            if let Some(missing) = self
                .statements
                .values()
                .filter(|s| s.card == topic.topic && !s.template)
                .filter(|s| {
                    s.condenses.is_empty()
                        || !s.condenses.iter().all(|id| shown.contains(id.as_str()))
                })
                .map(|s| s.id.as_str())
                .filter(|id| !shown.contains(id))
                .min()
            {
                return Err(KnowledgeError::invalid(
                    GUIDANCE,
                    format!("'{owner}': card statement '{missing}' is not on its guidance page"),
                ));
            }
            topics.push(resolved);
        }
        if let Some(orphan) = self
            .statements
            .values()
            .filter(|s| !s.template)
            .find(|s| !topics.iter().any(|t| t.topic == s.card))
        {
            return Err(KnowledgeError::invalid(
                GUIDANCE,
                format!(
                    "no topic '{}' (statement '{}' is made on that card)",
                    orphan.card, orphan.id
                ),
            ));
        }
        Ok(topics)
    }

    pub fn handout(&self, file: HandoutFile) -> Result<Handout, KnowledgeError> {
        let mut sections = Vec::new();
        for section in &file.sections {
            let items = section
                .items
                .iter()
                .map(|p| self.passage(p, HANDOUT, ""))
                .collect::<Result<Vec<_>, _>>()?;
            // Patient advice needs a source; only the framing is ours.
            if let Some(unsourced) = items.iter().find(|p| p.sources.is_empty()) {
                return Err(KnowledgeError::invalid(
                    HANDOUT,
                    format!(
                        "'{}' gives advice without a source",
                        excerpt(&unsourced.text)
                    ),
                ));
            }
            sections.push(HandoutSection {
                heading: section.heading.clone(),
                items,
                list: section.list,
                urgent: section.urgent,
            });
        }
        Ok(Handout {
            title: file.title,
            intro: self.passage(&file.intro, HANDOUT, "")?,
            sections,
        })
    }
}

fn excerpt(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}
