//! Card rendering: findings become CDS Hooks cards with Markdown a busy
//! clinician can read in seconds, the machine-readable findings, and the
//! sources behind every statement.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use crate::knowledge::statements::fill;
use crate::knowledge::{FindingCode, KnowledgeBase, Say, SourceId};
use crate::protocol::response::{
    Action, ActionKind, Card, CardExtension, CardFindings, Coding, FindingSummary, Indicator,
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

/// What the store keeps of a card, made from the assessment it renders (not
/// read back from the card's JSON): its id, topic, the findings behind it
/// (in the order its extension lists them) and its suggestions' ids.
#[derive(Debug, Clone, PartialEq)]
pub struct CardRecord {
    pub uuid: Uuid,
    pub topic: Topic,
    pub findings: Vec<FindingCode>,
    pub suggestions: Vec<Uuid>,
}

/// Renders assessments; holds the knowledge for displays, sources and the
/// cards' wording.
pub struct CardRenderer {
    kb: Arc<KnowledgeBase>,
}

/// A card under construction: its detail text.
struct Draft<'k> {
    renderer: &'k CardRenderer,
    detail: String,
}

impl<'k> Draft<'k> {
    fn new(renderer: &'k CardRenderer) -> Self {
        Self {
            renderer,
            detail: String::with_capacity(512),
        }
    }

    /// The short tags of these sources ("[Garrison 2012; BMJ leaflet]"); the
    /// full references are on the card's guidance page (its link).
    fn cite(&mut self, ids: &[SourceId]) -> String {
        let mut tags = String::from("[");
        for source in ids.iter().filter_map(|id| self.renderer.kb.source(id)) {
            if tags.len() > 1 {
                tags.push_str("; ");
            }
            tags.push_str(&source.tag);
        }
        tags.push(']');
        tags
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

    /// The card's one next step, after a blank line (a paragraph, not a
    /// continuation of the findings' list).
    fn next_step(&mut self, steps: &[Say]) {
        let mut step = String::new();
        for say in steps {
            if !step.is_empty() {
                step.push(' ');
            }
            step.push_str(&self.say(*say));
        }
        let line = fill(self.renderer.template(Say::NextStep), &[("step", &step)]);
        self.line("");
        self.line(line);
    }

    /// "- and 3 more: diabetes, …" after the findings shown.
    fn and_more(&mut self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let line = fill(
            self.renderer.template(Say::AndMore),
            &[
                ("count", &names.len().to_string()),
                ("names", &names.join(", ")),
            ],
        );
        self.line(format!("- {line}"));
    }

    fn line(&mut self, text: impl AsRef<str>) {
        self.detail.push_str(text.as_ref());
        self.detail.push('\n');
    }

    fn finish(self) -> String {
        let mut detail = self.detail;
        detail.truncate(detail.trim_end().len());
        detail
    }
}

impl CardRenderer {
    pub fn new(kb: Arc<KnowledgeBase>) -> Self {
        Self { kb }
    }

    /// A layout template's text ("Next step: {step}").
    fn template(&self, say: Say) -> &str {
        &self.kb.statement(say).text
    }

    /// A summary template's text before its list ("Leg cramps: "): start-up
    /// checks the list placeholder ends it.
    fn list_prefix(&self, say: Say) -> &str {
        let text = self.template(say);
        text.rfind('{').map_or(text, |at| &text[..at])
    }

    pub fn render(&self, assessment: &Assessment) -> Vec<Card> {
        self.render_recorded(assessment).0
    }

    /// The cards and, for each, the store's record of it.
    pub fn render_recorded(&self, assessment: &Assessment) -> (Vec<Card>, Vec<CardRecord>) {
        let mut cards = Vec::new();
        let mut records = Vec::new();
        let codes = |findings: &[Finding]| findings.iter().map(|f| f.code.clone()).collect();
        let mut push = |card: Card, topic: Topic, findings: Vec<FindingCode>| {
            records.push(CardRecord {
                uuid: card.uuid,
                topic,
                findings,
                suggestions: card.suggestions.iter().map(|s| s.uuid).collect(),
            });
            cards.push(card);
        };
        if let Some(quinine) = &assessment.quinine {
            let findings = vec![quinine.finding.code.clone()];
            push(self.quinine(quinine), Topic::QuinineWarning, findings);
        }
        if let Some(dvt) = &assessment.dvt {
            let mut card = self.dvt(dvt);
            self.say_unchecked(&mut card, assessment, Part::Dvt);
            push(card, Topic::DvtRuleOut, codes(dvt.findings.as_slice()));
        }
        if !assessment.culprits.is_empty() || !assessment.outdated_culprits.is_empty() {
            let (current, outdated) = (
                assessment.culprits.as_slice(),
                assessment.outdated_culprits.as_slice(),
            );
            let mut card = self.culprits(current, outdated, assessment.culprits_are_drafts);
            self.say_unchecked(&mut card, assessment, Part::Culprits);
            let findings = self.culprit_codes(current, outdated);
            push(card, Topic::MedicationCulprits, findings);
        }
        if !assessment.risk_factors.is_empty() {
            let findings = assessment.risk_factors.as_slice();
            let mut card = self.risk_factors(findings);
            self.say_unchecked(&mut card, assessment, Part::RiskFactors);
            push(card, Topic::RiskFactors, codes(findings));
        }
        (cards, records)
    }

    /// r2 §5: one line per prefetch key the record lacks, naming what it
    /// left unchecked ("Procedures could not be read: dialysis not
    /// checked"), at the end of the detail.
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
                        "medication-culprits" => {
                            self.template(Say::UncheckedMedicationStatements).to_owned()
                        }
                        crate::rules::WORK_UP => self.template(Say::UncheckedWorkUp).to_owned(),
                        code => self.display(code).to_lowercase(),
                    })
                    .collect();
                fill(
                    self.template(Say::Unchecked),
                    &[("key", &key_label(&u.key)), ("what", &what.join(", "))],
                )
            })
            .collect();
        if lines.is_empty() {
            return;
        }
        card.detail.push_str("\n\n");
        card.detail.push_str(&lines.join("\n"));
    }

    fn display(&self, code: &str) -> String {
        self.kb
            .finding(code)
            .map(|f| f.display.clone())
            .unwrap_or_else(|| code.to_owned())
    }

    fn summaries<'f>(
        &self,
        findings: impl IntoIterator<Item = &'f Finding>,
    ) -> Vec<FindingSummary> {
        findings
            .into_iter()
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
        findings: Vec<FindingSummary>,
    ) -> Card {
        let detail = draft.finish();
        Card {
            // Time-ordered (v7): the store keys cards by uuid, and ordered
            // keys append to its index instead of dirtying a random page each.
            uuid: Uuid::now_v7(),
            summary: truncate(&summary, MAX_SUMMARY_CHARS),
            detail,
            indicator,
            source: Source {
                label: SOURCE_LABEL.to_owned(),
                // The guidance page and the links are the engine's to attach
                // (links.rs): they depend on the public base URL.
                url: None,
                topic: Coding {
                    system: TOPIC_SYSTEM.into(),
                    code: topic.code().into(),
                    display: topic.display().into(),
                },
            },
            suggestions: Vec::new(),
            selection_behavior: None,
            override_reasons: Vec::new(),
            links: Vec::new(),
            extension: CardExtension {
                cramp_cds: CardFindings { findings },
            },
        }
    }

    /// A finding as one line: display, its newest (most telling) evidence,
    /// and the short tags of its sources; why it matters is on the guidance
    /// page.
    fn bullet(&self, draft: &mut Draft, finding: &Finding) {
        let evidence = describe_notes(&finding.notes);
        match self.kb.finding(&finding.code) {
            Some(d) => {
                let cite = draft.cite(&d.sources);
                draft.line(format!("- **{}**: {evidence} {cite}", d.display));
            }
            None => draft.line(format!("- **{}**: {evidence}", finding.code)),
        }
    }

    /// A finding as the summary names it: "low potassium 3.1 mmol/L", "age 72".
    fn fact(&self, finding: &Finding) -> String {
        let definition = self.kb.finding(&finding.code);
        let mut fact = match definition.and_then(|d| d.short.as_deref()) {
            Some(short) => short.to_owned(),
            None => self.display(&finding.code).to_lowercase(),
        };
        if let Some(value) = &finding.value {
            fact.push(' ');
            fact.push_str(value);
        }
        fact
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

/// A finding's evidence in card text: its first note (the newest, most
/// telling), Markdown-escaped, with a count when the record repeats it
/// (refills of one medicine, say) and how many other records there are; the
/// finding's `evidence` still lists every resource.
fn describe_notes(notes: &[String]) -> String {
    let Some(first) = notes.first() else {
        return String::new();
    };
    let same = notes.iter().filter(|note| *note == first).count();
    let mut text = markdown_escape(first);
    if same > 1 {
        text.push_str(&format!(" ({same} records)"));
    }
    match notes.len() - same {
        0 => {}
        1 => text.push_str("; and 1 more record"),
        more => text.push_str(&format!("; and {more} more records")),
    }
    text
}

/// "Prefix: a, b and 2 more", within the summary limit.
fn listing(prefix: &str, names: &[String]) -> String {
    let mut shown = names.len();
    loop {
        let mut text = format!("{prefix}{}", names[..shown].join(", "));
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
            "furosemide (2 records); and 1 more record"
        );
        assert_eq!(describe_notes(&notes(&["Age 72"])), "Age 72");
        let many: Vec<String> = (0..20_000)
            .map(|day| format!("Diabetes (recorded day {})", day % 10_000))
            .collect();
        assert_eq!(
            describe_notes(&many),
            "Diabetes (recorded day 0) (2 records); and 19998 more records"
        );
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
