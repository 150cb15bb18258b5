//! Card rendering: findings become CDS Hooks cards with Markdown a busy
//! clinician can read in seconds, the machine-readable findings, and the
//! sources behind every statement.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use crate::knowledge::{KnowledgeBase, Say};
use crate::protocol::response::{
    Action, ActionKind, Card, CardExtension, CardFindings, Coding, FindingSummary, Indicator, Link,
    SelectionBehavior, Source, Suggestion,
};
use crate::rules::{
    Assessment, DvtAssessment, DvtNextStep, Finding, Part, QuinineAlert, CHART_WELLS_ITEMS,
};

mod culprits;
mod dvt;
pub mod links;
mod quinine;
mod risk_factors;

pub const TOPIC_SYSTEM: &str = "https://cramp-cds.example.org/fhir/CodeSystem/card-topic";
pub const OVERRIDE_REASON_SYSTEM: &str =
    "https://cramp-cds.example.org/fhir/CodeSystem/override-reason";
const SOURCES_HEADING: &str = "**Sources**";
const SOURCE_LABEL: &str = "cramp-cds leg cramp guidance";
const MAX_SUMMARY_CHARS: usize = 139;
const ELECTROLYTE_FINDINGS: [&str; 4] = [
    "hypokalemia",
    "hyponatremia",
    "hypocalcemia",
    "hypomagnesemia",
];

/// The four card types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    RiskFactors,
    MedicationCulprits,
    DvtRuleOut,
    QuinineWarning,
}

impl Topic {
    pub fn code(self) -> &'static str {
        match self {
            Topic::RiskFactors => "risk-factors",
            Topic::MedicationCulprits => "medication-culprits",
            Topic::DvtRuleOut => "dvt-rule-out",
            Topic::QuinineWarning => "quinine-warning",
        }
    }

    fn display(self) -> &'static str {
        match self {
            Topic::RiskFactors => "Leg cramp risk factors",
            Topic::MedicationCulprits => "Medicines that may cause leg cramps",
            Topic::DvtRuleOut => "DVT rule-out for leg pain and swelling",
            Topic::QuinineWarning => "Quinine safety warning",
        }
    }
}

/// Renders assessments; holds the knowledge for displays and sources, and
/// each source's citation line already made Markdown-safe (built once, not
/// escaped again for every card).
pub struct CardRenderer {
    kb: Arc<KnowledgeBase>,
    citation_lines: HashMap<String, String>,
}

/// A card under construction: text plus the sources it cites.
struct Draft<'k> {
    renderer: &'k CardRenderer,
    detail: String,
    sources: Vec<String>,
}

impl<'k> Draft<'k> {
    fn new(renderer: &'k CardRenderer) -> Self {
        Self {
            renderer,
            detail: String::new(),
            sources: Vec::new(),
        }
    }

    fn cite(&mut self, ids: &[String]) -> String {
        let mut shorts = Vec::new();
        for id in ids {
            if !self.sources.contains(id) {
                self.sources.push(id.clone());
            }
            if let Some(source) = self.renderer.kb.source(id) {
                shorts.push(source.short.clone());
            }
        }
        format!("[{}]", shorts.join("; "))
    }

    /// A statement from statements.json with its source tags ("" for a
    /// service decision, which cites none).
    fn say(&mut self, say: Say) -> String {
        let statement = self.renderer.kb.statement(say);
        if statement.sources.is_empty() {
            return statement.text.clone();
        }
        let tags = self.cite(&statement.sources);
        format!("{} {tags}", statement.text)
    }

    /// A statement as a bullet point.
    fn point(&mut self, say: Say) {
        let text = self.say(say);
        self.line(format!("- {text}"));
    }

    fn line(&mut self, text: impl AsRef<str>) {
        self.detail.push_str(text.as_ref());
        self.detail.push('\n');
    }

    fn finish(mut self) -> (String, Vec<Link>, Option<String>) {
        self.line("");
        self.line(SOURCES_HEADING);
        let mut links = Vec::new();
        for id in &self.sources {
            let (Some(source), Some(line)) = (
                self.renderer.kb.source(id),
                self.renderer.citation_lines.get(id),
            ) else {
                continue;
            };
            self.detail.push_str(line);
            if let Some(url) = &source.url {
                links.push(Link {
                    label: truncate(&source.short, 100),
                    url: url.clone(),
                    kind: "absolute",
                });
            }
        }
        let url = links.first().map(|l| l.url.clone());
        (self.detail.trim_end().to_owned(), links, url)
    }
}

impl CardRenderer {
    pub fn new(kb: Arc<KnowledgeBase>) -> Self {
        let citation_lines = kb
            .sources()
            .map(|source| {
                (
                    source.id.clone(),
                    format!("- {}\n", markdown_escape(&source.citation)),
                )
            })
            .collect();
        Self { kb, citation_lines }
    }

    pub fn render(&self, assessment: &Assessment) -> Vec<Card> {
        let mut cards = Vec::new();
        if let Some(quinine) = &assessment.quinine {
            cards.push(self.quinine(quinine));
        }
        if let Some(dvt) = &assessment.dvt {
            let mut card = self.dvt(dvt);
            self.say_unchecked(&mut card, assessment, Part::Dvt);
            cards.push(card);
        }
        if !assessment.culprits.is_empty() || !assessment.outdated_culprits.is_empty() {
            let mut card = self.culprits(
                assessment.culprits.as_slice(),
                assessment.outdated_culprits.as_slice(),
                assessment.culprits_are_drafts,
            );
            self.say_unchecked(&mut card, assessment, Part::Culprits);
            cards.push(card);
        }
        if !assessment.risk_factors.is_empty() {
            let mut card = self.risk_factors(assessment.risk_factors.as_slice());
            self.say_unchecked(&mut card, assessment, Part::RiskFactors);
            cards.push(card);
        }
        cards
    }

    /// r2 §5: one line per prefetch key the record lacks, naming what it
    /// left unchecked ("Procedures could not be read: dialysis not
    /// checked"), placed before the sources.
    fn say_unchecked(&self, card: &mut Card, assessment: &Assessment, part: Part) {
        let lines: Vec<String> = assessment
            .unchecked
            .iter()
            .filter(|u| u.part == part)
            .map(|u| {
                let what: Vec<String> = u
                    .findings
                    .iter()
                    .map(|code| match *code {
                        "medication-culprits" => "medicines recorded as statements".to_owned(),
                        crate::rules::WORK_UP => {
                            "a duplex ultrasound already done or ordered".to_owned()
                        }
                        code => self.display(code).to_lowercase(),
                    })
                    .collect();
                format!(
                    "_{} could not be read: {} not checked._",
                    key_label(&u.key),
                    what.join(", ")
                )
            })
            .collect();
        if lines.is_empty() {
            return;
        }
        let text = format!("{}\n\n", lines.join("\n"));
        match card.detail.find(SOURCES_HEADING) {
            Some(at) => card.detail.insert_str(at, &text),
            None => {
                card.detail.push_str("\n\n");
                card.detail.push_str(text.trim_end());
            }
        }
    }

    fn display(&self, code: &str) -> String {
        self.kb
            .finding(code)
            .map(|f| f.display.clone())
            .unwrap_or_else(|| code.to_owned())
    }

    fn summaries(&self, findings: &[Finding]) -> Vec<FindingSummary> {
        findings
            .iter()
            .map(|f| FindingSummary {
                code: f.code.clone(),
                category: self
                    .kb
                    .finding(&f.code)
                    .map(|d| d.category.as_str())
                    .unwrap_or("risk-factor")
                    .to_owned(),
                display: self.display(&f.code),
                evidence: f.evidence.clone(),
                possibly_outdated: Vec::new(),
            })
            .collect()
    }

    fn card(
        &self,
        topic: Topic,
        indicator: Indicator,
        summary: String,
        draft: Draft,
        findings: &[Finding],
    ) -> Card {
        let (detail, links, url) = draft.finish();
        Card {
            // Time-ordered (v7): the store keys cards by uuid, and ordered
            // keys append to its index instead of dirtying a random page each.
            uuid: Uuid::now_v7(),
            summary: truncate(&summary, MAX_SUMMARY_CHARS),
            detail,
            indicator,
            source: Source {
                label: SOURCE_LABEL.to_owned(),
                url,
                topic: Coding {
                    system: TOPIC_SYSTEM.into(),
                    code: topic.code().into(),
                    display: topic.display().into(),
                },
            },
            suggestions: Vec::new(),
            selection_behavior: None,
            override_reasons: Vec::new(),
            links,
            extension: CardExtension {
                cramp_cds: CardFindings {
                    findings: self.summaries(findings),
                },
            },
        }
    }

    /// A finding as a bullet: display, the dated evidence, why it matters.
    fn bullet(&self, draft: &mut Draft, finding: &Finding) {
        let definition = self.kb.finding(&finding.code);
        let evidence = describe_notes(&finding.notes);
        let (rationale, cite) = match definition {
            Some(d) => (d.rationale.clone(), draft.cite(&d.sources)),
            None => (String::new(), String::new()),
        };
        draft.line(format!(
            "- **{}**: {evidence}. {rationale} {cite}",
            self.display(&finding.code)
        ));
    }
}

/// A prefetch key as a reader says it: "medicationStatements" ->
/// "Medication statements".
fn key_label(key: &str) -> String {
    let mut label = String::with_capacity(key.len() + 4);
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() {
            label.push(' ');
            label.push(c.to_ascii_lowercase());
        } else if i == 0 {
            label.push(c.to_ascii_uppercase());
        } else {
            label.push(c);
        }
    }
    label
}

/// At most this many distinct evidence notes per finding in card text; the
/// finding's `evidence` still lists every resource.
const NOTES_SHOWN: usize = 8;

/// Evidence notes for the text: each distinct note once, with a count when
/// the record repeats it (refills of one medicine, say), Markdown-escaped;
/// past NOTES_SHOWN distinct notes, how many more records there are.
fn describe_notes(notes: &[String]) -> String {
    let mut distinct: Vec<(&str, usize)> = Vec::new();
    let mut positions: HashMap<&str, usize> = HashMap::default();
    for note in notes {
        let at = *positions.entry(note).or_insert_with(|| {
            distinct.push((note, 0));
            distinct.len() - 1
        });
        distinct[at].1 += 1;
    }
    let shown = distinct.len().min(NOTES_SHOWN);
    let mut parts: Vec<String> = distinct[..shown]
        .iter()
        .map(|(note, count)| match count {
            1 => markdown_escape(note),
            _ => format!("{} ({count} records)", markdown_escape(note)),
        })
        .collect();
    match distinct[shown..]
        .iter()
        .map(|(_, count)| count)
        .sum::<usize>()
    {
        0 => {}
        1 => parts.push("and 1 more record".into()),
        more => parts.push(format!("and {more} more records")),
    }
    parts.join("; ")
}

/// "Prefix: a, b and 2 more", within the summary limit.
fn listing(prefix: &str, names: &[String]) -> String {
    let mut shown = names.len();
    loop {
        let mut text = format!("{prefix}{}", names[..shown].join(", ").to_lowercase());
        if shown < names.len() {
            text.push_str(&format!(" and {} more", names.len() - shown));
        }
        if text.chars().count() <= MAX_SUMMARY_CHARS || shown <= 1 {
            return text;
        }
        shown -= 1;
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars - 1).collect();
    cut.push('…');
    cut
}

/// Text from the record goes into Markdown inert: no links, no HTML.
/// Copies runs of plain text whole; every special character is ASCII, so
/// byte offsets always fall on character boundaries.
fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut plain_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let special = matches!(
            byte,
            b'\\' | b'`' | b'*' | b'_' | b'[' | b']' | b'<' | b'>' | b'#' | b'|' | b'!'
        );
        if !special && byte != b'\n' && byte != b'\r' {
            continue;
        }
        out.push_str(&text[plain_from..at]);
        if special {
            out.push('\\');
            out.push(char::from(byte));
        } else {
            out.push(' ');
        }
        plain_from = at + 1;
    }
    out.push_str(&text[plain_from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_notes_are_counted_and_a_long_list_is_cut() {
        let notes = |texts: &[&str]| texts.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            describe_notes(&notes(&["furosemide", "atenolol", "furosemide"])),
            "furosemide (2 records); atenolol"
        );
        let many: Vec<String> = (0..20_000)
            .map(|day| format!("Diabetes (recorded day {})", day % 10_000))
            .collect();
        let text = describe_notes(&many);
        assert!(
            text.starts_with("Diabetes (recorded day 0) (2 records); "),
            "{text}"
        );
        assert!(text.ends_with("; and 19984 more records"), "{text}");
        assert_eq!(text.matches("; ").count(), NOTES_SHOWN);
        assert!(describe_notes(&many[..NOTES_SHOWN + 1]).ends_with("; and 1 more record"));
    }

    #[test]
    fn summaries_stay_under_140_characters() {
        let names: Vec<String> = (0..30)
            .map(|i| format!("Some long risk factor name {i}"))
            .collect();
        let text = listing("Leg cramp risk factors in the record: ", &names);
        assert!(text.chars().count() <= MAX_SUMMARY_CHARS, "{text}");
        assert!(text.ends_with("more"));
    }

    #[test]
    fn record_text_cannot_inject_markdown() {
        assert_eq!(
            markdown_escape("[click](javascript:x) <b>"),
            "\\[click\\](javascript:x) \\<b\\>"
        );
        assert_eq!(markdown_escape("é_1\r\n#"), "é\\_1  \\#");
    }
}
