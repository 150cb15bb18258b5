//! Card rendering: findings become CDS Hooks cards with Markdown a busy
//! clinician can read in seconds, the machine-readable findings, and the
//! sources behind every statement.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use crate::knowledge::KnowledgeBase;
use crate::protocol::response::{
    Action, ActionKind, Card, CardExtension, CardFindings, Coding, FindingSummary, Indicator, Link, SelectionBehavior,
    Source, Suggestion,
};
use crate::rules::{Assessment, DvtAssessment, Finding, QuinineAlert};

pub const TOPIC_SYSTEM: &str = "https://cramp-cds.example.org/fhir/CodeSystem/card-topic";
pub const OVERRIDE_REASON_SYSTEM: &str = "https://cramp-cds.example.org/fhir/CodeSystem/override-reason";
const SOURCE_LABEL: &str = "cramp-cds leg cramp guidance";
const MAX_SUMMARY_CHARS: usize = 139;
const ELECTROLYTE_FINDINGS: [&str; 4] = ["hypokalemia", "hyponatremia", "hypocalcemia", "hypomagnesemia"];
const WELLS_ITEMS: [&str; 4] = ["active-cancer", "immobilization", "recent-surgery", "previous-dvt"];

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
        Self { renderer, detail: String::new(), sources: Vec::new() }
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

    fn cite_ids(&mut self, ids: &[&str]) -> String {
        self.cite(&ids.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn line(&mut self, text: impl AsRef<str>) {
        self.detail.push_str(text.as_ref());
        self.detail.push('\n');
    }

    fn finish(mut self) -> (String, Vec<Link>, Option<String>) {
        self.line("");
        self.line("**Sources**");
        let mut links = Vec::new();
        for id in &self.sources {
            let (Some(source), Some(line)) = (self.renderer.kb.source(id), self.renderer.citation_lines.get(id)) else {
                continue;
            };
            self.detail.push_str(line);
            if let Some(url) = &source.url {
                links.push(Link { label: truncate(&source.short, 100), url: url.clone(), kind: "absolute" });
            }
        }
        let url = links.first().map(|l| l.url.clone());
        (self.detail.trim_end().to_owned(), links, url)
    }
}

impl CardRenderer {
    pub fn new(kb: Arc<KnowledgeBase>) -> Self {
        let citation_lines =
            kb.sources().map(|source| (source.id.clone(), format!("- {}\n", markdown_escape(&source.citation)))).collect();
        Self { kb, citation_lines }
    }

    pub fn render(&self, assessment: &Assessment) -> Vec<Card> {
        let mut cards = Vec::new();
        if let Some(quinine) = &assessment.quinine {
            cards.push(self.quinine(quinine));
        }
        if let Some(dvt) = &assessment.dvt {
            cards.push(self.dvt(dvt));
        }
        if !assessment.culprits.is_empty() {
            cards.push(self.culprits(assessment.culprits.as_slice(), assessment.culprits_are_drafts));
        }
        if !assessment.risk_factors.is_empty() {
            cards.push(self.risk_factors(assessment.risk_factors.as_slice()));
        }
        cards
    }

    fn display(&self, code: &str) -> String {
        self.kb.finding(code).map(|f| f.display.clone()).unwrap_or_else(|| code.to_owned())
    }

    fn summaries(&self, findings: &[Finding]) -> Vec<FindingSummary> {
        findings
            .iter()
            .map(|f| FindingSummary {
                code: f.code.clone(),
                category: self.kb.finding(&f.code).map(|d| d.category.as_str()).unwrap_or("risk-factor").to_owned(),
                display: self.display(&f.code),
                evidence: f.evidence.clone(),
            })
            .collect()
    }

    fn card(&self, topic: Topic, indicator: Indicator, summary: String, draft: Draft, findings: &[Finding]) -> Card {
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
                topic: Coding { system: TOPIC_SYSTEM.into(), code: topic.code().into(), display: topic.display().into() },
            },
            suggestions: Vec::new(),
            selection_behavior: None,
            override_reasons: Vec::new(),
            links,
            extension: CardExtension { cramp_cds: CardFindings { findings: self.summaries(findings) } },
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
        draft.line(format!("- **{}**: {evidence}. {rationale} {cite}", self.display(&finding.code)));
    }

    fn risk_factors(&self, findings: &[Finding]) -> Card {
        let low_electrolyte = findings.iter().any(|f| ELECTROLYTE_FINDINGS.contains(&f.code.as_str()));
        let names: Vec<String> = findings.iter().map(|f| self.display(&f.code)).collect();
        let summary = listing("Leg cramp risk factors in the record: ", &names);
        let mut draft = Draft::new(self);
        draft.line("**Leg cramps are documented. Risk factors found in the record:**");
        draft.line("");
        for finding in findings {
            self.bullet(&mut draft, finding);
        }
        draft.line("");
        draft.line("**What to do**");
        let carenotes = draft.cite_ids(&["carenotes-2022"]);
        draft.line(format!("- Gentle calf and hamstring stretching, before bed and when a cramp starts; warm up before exercise. {carenotes}"));
        draft.line(format!("- Drink enough fluids, more in hot weather or with exercise. {carenotes}"));
        draft.line(format!("- Heat or ice on the sore muscle eases pain after a cramp. {carenotes}"));
        if low_electrolyte {
            let bmj = draft.cite_ids(&["bmj-bp-2012"]);
            draft.line(format!(
                "- **Low electrolyte found**: recheck and correct it, and look for its cause (diuretics, vomiting or diarrhoea, dialysis, diet). {bmj}"
            ));
        }
        if findings.iter().any(|f| f.code == "older-age") {
            let cochrane = draft.cite_ids(&["cochrane-2020-magnesium"]);
            draft.line(format!("- Magnesium is unlikely to help idiopathic cramps in older adults. {cochrane}"));
        }
        let fda = draft.cite_ids(&["fda-2010-quinine", "aan-2010"]);
        draft.line(format!("- Quinine is not recommended for leg cramps: risk of serious blood disorders. {fda}"));
        draft.line("");
        let red_flags = draft.cite_ids(&["carenotes-2022", "diagnosis-pad-2025"]);
        draft.line(format!(
            "**Red flags, reassess if:** cramps get worse or more frequent; numbness, tingling or weakness; no relief from stretching; dizziness or confusion when exercising in the heat. {red_flags}"
        ));
        let indicator = if low_electrolyte { Indicator::Warning } else { Indicator::Info };
        self.card(Topic::RiskFactors, indicator, summary, draft, findings)
    }

    fn culprits(&self, findings: &[Finding], drafts: bool) -> Card {
        let names: Vec<String> = findings.iter().map(|f| self.display(&f.code)).collect();
        let summary = if drafts {
            listing("Ordered medicine may cause leg cramps: ", &names)
        } else {
            listing("Medicines that may cause leg cramps: ", &names)
        };
        let mut draft = Draft::new(self);
        draft.line(if drafts {
            "**This patient has documented leg cramps. The medicine being ordered is associated with cramps:**"
        } else {
            "**Leg cramps are documented. Current medicines associated with cramps:**"
        });
        draft.line("");
        for finding in findings {
            let Some(class) = self.kb.drugs.position(&finding.code).map(|p| self.kb.drugs.class(p)) else { continue };
            let medicines = describe_notes(&finding.notes);
            let cite = draft.cite(&class.sources);
            draft.line(format!(
                "- **{}** ({medicines}). Evidence: **{}**, {}. {cite}",
                self.display(&finding.code),
                class.strength.as_str(),
                markdown_escape(&class.strength_note)
            ));
        }
        let garrison = draft.cite_ids(&["garrison-2012"]);
        draft.line(format!(
            "_Evidence strength: a ratio is the adjusted sequence ratio measured in adults over 50 starting each class; \"reported\" means named as a cause without a measured ratio._ {garrison}"
        ));
        draft.line("");
        draft.line("**What to do**");
        draft.line("- Review whether each medicine is still needed, and whether a lower dose or an alternative would do.");
        draft.line("- Do not stop a medicine abruptly because of cramps: weigh the reason it was prescribed first.");
        self.card(Topic::MedicationCulprits, Indicator::Warning, summary, draft, findings)
    }

    fn dvt(&self, dvt: &DvtAssessment) -> Card {
        let mut draft = Draft::new(self);
        let wells = draft.cite_ids(&["wells-2003"]);
        let bmj = draft.cite_ids(&["bmj-bp-2012"]);
        draft.line(format!("**Leg swelling with leg pain or cramps: a clot is not a cramp. Rule out deep vein thrombosis.** {bmj}"));
        draft.line("");
        let findings = dvt.findings.as_slice();
        for finding in findings.iter().filter(|f| ["leg-swelling", "leg-pain", "leg-cramps"].contains(&f.code.as_str())) {
            self.bullet(&mut draft, finding);
        }
        draft.line("");
        let shown: Vec<&Finding> = findings.iter().filter(|f| WELLS_ITEMS.contains(&f.code.as_str())).collect();
        if dvt.pregnant {
            // Wells is not validated in pregnancy: list the risks, score nothing.
            let le_gal = draft.cite_ids(&["le-gal-2012"]);
            draft.line(format!("- **Pregnancy**: pregnancy itself raises the risk of a clot; the Wells score is not validated and D-dimer is unreliable in pregnancy. {le_gal}"));
            for finding in &shown {
                self.bullet(&mut draft, finding);
            }
        } else {
            draft.line(format!("**Wells items the record shows** {wells}"));
            if shown.is_empty() {
                draft.line("- None found in the record.");
            }
            for finding in &shown {
                self.bullet(&mut draft, finding);
            }
            draft.line(format!(
                "- Points known from the chart: **{}**. The record cannot show the examination items, so this is not a Wells score.",
                dvt.known_points
            ));
            draft.line("");
            draft.line("**Still to assess at the bedside (Wells)**");
            for item in [
                "Localised tenderness along the deep venous system (+1)",
                "Entire leg swollen (+1)",
                "Calf swelling at least 3 cm more than the other leg, 10 cm below the tibial tuberosity (+1)",
                "Pitting oedema confined to the symptomatic leg (+1)",
                "Collateral superficial veins, not varicose (+1)",
                "An alternative diagnosis at least as likely as DVT (-2)",
            ] {
                draft.line(format!("- {item}"));
            }
        }
        let alternatives: Vec<&Finding> =
            findings.iter().filter(|f| ["bakers-cyst", "leg-injury"].contains(&f.code.as_str())).collect();
        if !alternatives.is_empty() {
            draft.line("");
            draft.line("**Alternatives seen in the record** (weigh them in the last item)");
            for finding in alternatives {
                self.bullet(&mut draft, finding);
            }
        }
        for finding in findings.iter().filter(|f| f.code == "anticoagulated") {
            draft.line("");
            self.bullet(&mut draft, finding);
        }
        draft.line("");
        draft.line("**Next step**");
        if dvt.pregnant {
            let le_gal = draft.cite_ids(&["le-gal-2012"]);
            draft.line(format!(
                "- Pregnant: go straight to compression ultrasound. D-dimer is unreliable in pregnancy and the Wells score is not validated there. {le_gal}"
            ));
        } else if dvt.known_points >= 2 {
            let nice = draft.cite_ids(&["wells-2003"]);
            draft.line(format!("- The chart alone gives 2 or more points: proximal leg vein ultrasound first. {nice}"));
        } else {
            let nice = draft.cite_ids(&["wells-2003"]);
            draft.line(format!(
                "- Complete the Wells score at the bedside. With fewer than 2 points, D-dimer first and ultrasound if it is positive; with 2 or more, ultrasound first. {nice}"
            ));
        }
        let summary = if dvt.pregnant {
            "Leg swelling in pregnancy with pain or cramps: rule out a DVT with compression ultrasound".to_owned()
        } else {
            "Leg swelling with pain or cramps: rule out a DVT (Wells, ultrasound or D-dimer)".to_owned()
        };
        if dvt.patient.is_none() {
            draft.line("");
            draft.line("_No orders are offered: the record does not say which patient they would be for._");
        }
        let mut card = self.card(Topic::DvtRuleOut, Indicator::Warning, summary, draft, findings);
        let Some(patient) = dvt.patient.as_deref() else { return card };
        let ultrasound = self.service_request(dvt, patient, Test::Ultrasound);
        let d_dimer = self.service_request(dvt, patient, Test::DDimer);
        card.suggestions = if dvt.pregnant {
            vec![suggestion(ultrasound, true)]
        } else if dvt.known_points >= 2 {
            vec![suggestion(ultrasound, true), suggestion(d_dimer, false)]
        } else {
            vec![suggestion(d_dimer, true), suggestion(ultrasound, false)]
        };
        card.selection_behavior = Some(SelectionBehavior::AtMostOne);
        card
    }

    fn service_request(&self, dvt: &DvtAssessment, patient: &str, test: Test) -> (String, Action) {
        let (label, coding, text) = match test {
            Test::Ultrasound => (
                "Order venous duplex ultrasound of the leg",
                json!({"system": "http://www.ama-assn.org/go/cpt", "code": "93971", "display": "Duplex scan of the veins of one leg"}),
                "Venous duplex ultrasound of the lower extremity to rule out DVT",
            ),
            Test::DDimer => (
                "Order D-dimer",
                json!({"system": "http://loinc.org", "code": "48065-7", "display": "Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma"}),
                "D-dimer to rule out DVT",
            ),
        };
        let resource = json!({
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "code": {"coding": [coding], "text": text},
            "subject": {"reference": patient},
            "reasonReference": dvt.reasons.iter().map(|r| json!({"reference": r})).collect::<Vec<_>>(),
        });
        let action = Action { kind: ActionKind::Create, description: format!("Create a draft order: {text}"), resource: Some(resource), resource_id: None };
        (label.to_owned(), action)
    }

    fn quinine(&self, alert: &QuinineAlert) -> Card {
        let mut draft = Draft::new(self);
        let fda = draft.cite_ids(&["fda-2010-quinine"]);
        let aan = draft.cite_ids(&["aan-2010"]);
        let ordered = !alert.drafts.is_empty();
        let medicines = describe_notes(&alert.finding.notes);
        draft.line(if ordered {
            format!("**Quinine is being ordered** ({medicines}).")
        } else {
            format!("**The patient is taking quinine** ({medicines}).")
        });
        draft.line("");
        draft.line(format!(
            "- FDA: quinine must not be used to treat or prevent night-time leg cramps. It can cause serious and life-threatening blood disorders: thrombocytopenia and haemolytic uraemic syndrome / thrombotic thrombocytopenic purpura (HUS/TTP). {fda}"
        ));
        draft.line(format!(
            "- AAN guideline: quinine works for cramps but should be avoided for routine use because of its toxicity. {aan}"
        ));
        let carenotes = draft.cite_ids(&["carenotes-2022"]);
        draft.line(format!("- For cramps, use stretching, fluids and heat or ice instead. {carenotes}"));
        if ordered {
            draft.line("- If quinine is prescribed for malaria, record that as the override reason.");
        } else {
            draft.line("- If it is taken for cramps, discuss stopping it with the patient; if it is for malaria, no change is needed.");
        }
        let summary = if ordered {
            "Quinine must not be used for leg cramps (FDA): risk of life-threatening blood disorders"
        } else {
            "Patient takes quinine: not for leg cramps (FDA), risk of serious blood disorders"
        };
        let findings = std::slice::from_ref(&alert.finding);
        let indicator = if ordered { Indicator::Critical } else { Indicator::Warning };
        let mut card = self.card(Topic::QuinineWarning, indicator, summary.to_owned(), draft, findings);
        if ordered {
            card.suggestions = vec![Suggestion {
                label: "Remove the quinine order".into(),
                uuid: Uuid::new_v4(),
                is_recommended: true,
                actions: alert
                    .drafts
                    .iter()
                    .map(|reference| Action {
                        kind: ActionKind::Delete,
                        description: format!("Remove the draft order {reference}"),
                        resource: None,
                        resource_id: Some(reference.clone()),
                    })
                    .collect(),
            }];
            card.selection_behavior = Some(SelectionBehavior::AtMostOne);
            card.override_reasons = vec![
                Coding { system: OVERRIDE_REASON_SYSTEM.into(), code: "malaria-treatment".into(), display: "Prescribed to treat malaria".into() },
                Coding {
                    system: OVERRIDE_REASON_SYSTEM.into(),
                    code: "patient-informed-of-risk".into(),
                    display: "Patient informed of the risks and agrees".into(),
                },
            ];
        }
        card
    }
}

enum Test {
    Ultrasound,
    DDimer,
}

fn suggestion((label, action): (String, Action), recommended: bool) -> Suggestion {
    Suggestion { label, uuid: Uuid::new_v4(), is_recommended: recommended, actions: vec![action] }
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
    match distinct[shown..].iter().map(|(_, count)| count).sum::<usize>() {
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
        let special = matches!(byte, b'\\' | b'`' | b'*' | b'_' | b'[' | b']' | b'<' | b'>' | b'#' | b'|' | b'!');
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
        assert_eq!(describe_notes(&notes(&["furosemide", "atenolol", "furosemide"])), "furosemide (2 records); atenolol");
        let many: Vec<String> = (0..20_000).map(|day| format!("Diabetes (recorded day {})", day % 10_000)).collect();
        let text = describe_notes(&many);
        assert!(text.starts_with("Diabetes (recorded day 0) (2 records); "), "{text}");
        assert!(text.ends_with("; and 19984 more records"), "{text}");
        assert_eq!(text.matches("; ").count(), NOTES_SHOWN);
        assert!(describe_notes(&many[..NOTES_SHOWN + 1]).ends_with("; and 1 more record"));
    }

    #[test]
    fn summaries_stay_under_140_characters() {
        let names: Vec<String> = (0..30).map(|i| format!("Some long risk factor name {i}")).collect();
        let text = listing("Leg cramp risk factors in the record: ", &names);
        assert!(text.chars().count() <= MAX_SUMMARY_CHARS, "{text}");
        assert!(text.ends_with("more"));
    }

    #[test]
    fn record_text_cannot_inject_markdown() {
        assert_eq!(markdown_escape("[click](javascript:x) <b>"), "\\[click\\](javascript:x) \\<b\\>");
        assert_eq!(markdown_escape("é_1\r\n#"), "é\\_1  \\#");
    }
}
