//! The guidance pages (one per card topic) and the patient handout: static
//! HTML made once at start-up from the knowledge files, so they say what the
//! cards say, with the full story the cards leave out. They hold no patient
//! data. Every piece of knowledge text is HTML-escaped; the only style is
//! one inline stylesheet whose hash the Content Security Policy names, and
//! there are no scripts, fonts, images or other origins.

use std::collections::HashMap;

use base64::Engine as _;

use crate::knowledge::guidance::{Handout, Passage};
use crate::knowledge::{GuidanceTopic, KnowledgeBase};

/// Where a topic's guidance page is served: `/guidance/{topic}`.
pub const GUIDANCE_PREFIX: &str = "/guidance/";
/// Where the patient handout is served.
pub const HANDOUT_PATH: &str = "/handouts/leg-cramps";

const STYLE: &str = include_str!("pages.css");

/// One page, ready to send.
pub struct Page {
    pub html: String,
    /// A strong validator: the SHA-256 of the page, quoted.
    pub etag: String,
}

impl Page {
    fn new(html: String) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, html.as_bytes());
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            html,
            etag: format!("\"{hex}\""),
        }
    }
}

/// Every page, built once.
pub struct Pages {
    guidance: HashMap<String, Page>,
    handout: Page,
    /// The Content-Security-Policy every page is sent with.
    pub csp: String,
}

impl Pages {
    pub fn build(kb: &KnowledgeBase) -> Self {
        let guidance = kb
            .guidance_topics()
            .iter()
            .map(|topic| (topic.topic.clone(), Page::new(guidance_page(kb, topic))))
            .collect();
        let style_hash = base64::engine::general_purpose::STANDARD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes()),
        );
        Self {
            guidance,
            handout: Page::new(handout_page(kb, kb.handout())),
            csp: format!(
                "default-src 'none'; style-src 'sha256-{style_hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
        }
    }

    pub fn guidance(&self, topic: &str) -> Option<&Page> {
        self.guidance.get(topic)
    }

    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.guidance.keys().map(String::as_str)
    }

    pub fn handout(&self) -> &Page {
        &self.handout
    }
}

/// Text for HTML, in element content and in quoted attributes alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An http(s) URL for an href (anything else is not linked).
fn safe_href(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| escape(parsed.as_str()))
}

fn document(title: &str, class: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body class=\"{class}\">\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// Citation tags after a passage: each links to its reference below.
fn tags(kb: &KnowledgeBase, passage: &Passage) -> String {
    let mut out = String::new();
    for id in &passage.sources {
        let short = kb.source(id).map_or(id.as_str(), |s| s.short.as_str());
        out.push_str(&format!(
            " <a class=\"cite\" href=\"#ref-{}\">[{}]</a>",
            escape(id),
            escape(short)
        ));
    }
    if let Some(rule) = &passage.rule {
        out.push_str(&format!(" <span class=\"rule\">{}</span>", escape(rule)));
    }
    if passage.decision {
        out.push_str(" <span class=\"rule\">service decision</span>");
    }
    out
}

fn passage_list(kb: &KnowledgeBase, passages: &[Passage]) -> String {
    let items: String = passages
        .iter()
        .map(|p| format!("<li>{}{}</li>\n", escape(&p.text), tags(kb, p)))
        .collect();
    format!("<ul>\n{items}</ul>\n")
}

fn references(kb: &KnowledgeBase, ids: &[&str]) -> String {
    let mut out = String::from("<ol class=\"references\">\n");
    for id in ids {
        let Some(source) = kb.source(id) else {
            continue;
        };
        let link = source
            .url
            .as_deref()
            .and_then(safe_href)
            .map(|href| {
                format!(
                    " <a href=\"{href}\" rel=\"noopener noreferrer\">{}</a>",
                    escape(source.url.as_deref().unwrap_or_default())
                )
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "<li id=\"ref-{}\"><strong>{}</strong>. {}{link}</li>\n",
            escape(id),
            escape(&source.short),
            escape(&source.citation)
        ));
    }
    out.push_str("</ol>\n");
    out
}

fn guidance_page(kb: &KnowledgeBase, topic: &GuidanceTopic) -> String {
    let mut body = String::new();
    body.push_str(
        "<header class=\"masthead\"><p>cramp-cds · clinical guidance behind the cards</p>\n<nav aria-label=\"Card topics\"><ul>",
    );
    for other in kb.guidance_topics() {
        let current = if other.topic == topic.topic {
            " aria-current=\"page\""
        } else {
            ""
        };
        body.push_str(&format!(
            "<li><a href=\"{GUIDANCE_PREFIX}{}\"{current}>{}</a></li>",
            escape(&other.topic),
            escape(&other.title)
        ));
    }
    body.push_str(&format!(
        "<li><a href=\"{HANDOUT_PATH}\">Patient handout</a></li></ul></nav></header>\n<main>\n<h1>{}</h1>\n<p class=\"lead\">{}{}</p>\n",
        escape(&topic.title),
        escape(&topic.purpose.text),
        tags(kb, &topic.purpose)
    ));
    body.push_str("<section>\n<h2>What triggers this card</h2>\n");
    body.push_str(&passage_list(kb, &topic.trigger));
    body.push_str(
        "</section>\n<section>\n<h2>Findings and their windows</h2>\n<dl class=\"findings\">\n",
    );
    let mut finding_sources = Vec::new();
    for finding in &topic.findings {
        let Some(definition) = kb.finding(&finding.code) else {
            continue;
        };
        finding_sources.push(definition.sources.clone());
        let cited = Passage {
            text: String::new(),
            sources: definition.sources.clone(),
            rule: None,
            decision: false,
        };
        body.push_str(&format!(
            "<dt id=\"finding-{}\">{} <code>{}</code></dt>\n<dd><p>{}{}</p>\n<p><span class=\"label\">Counts when:</span> {}</p>\n",
            escape(&finding.code),
            escape(&definition.display),
            escape(&finding.code),
            escape(&definition.rationale),
            tags(kb, &cited),
            escape(&finding.window)
        ));
        let limits: Vec<String> = kb
            .labs
            .iter()
            .filter(|lab| lab.finding == finding.code)
            .map(|lab| {
                let values: Vec<String> = lab
                    .low_limits
                    .iter()
                    .map(|l| format!("{} {}", l.value, l.unit))
                    .collect();
                format!("{}: {}", lab.analyte, values.join(" = "))
            })
            .collect();
        if !limits.is_empty() {
            body.push_str(&format!(
                "<p><span class=\"label\">Default low limits:</span> {}</p>\n",
                escape(&limits.join("; "))
            ));
        }
        if let Some(class) = kb
            .drugs
            .classes()
            .iter()
            .find(|c| c.code == finding.code)
            .filter(|c| c.strength.as_str() != "n/a")
        {
            let ingredients: Vec<&str> =
                class.ingredients.iter().map(|i| i.name.as_str()).collect();
            body.push_str(&format!(
                "<p><span class=\"label\">Evidence:</span> {} ({}). <span class=\"label\">Medicines:</span> {}</p>\n",
                escape(class.strength.as_str()),
                escape(&class.strength_note),
                escape(&ingredients.join(", "))
            ));
        }
        body.push_str("</dd>\n");
    }
    body.push_str("</dl>\n</section>\n<section>\n<h2>Next steps</h2>\n");
    body.push_str(&passage_list(kb, &topic.next_steps));
    body.push_str("</section>\n<section class=\"red-flags\">\n<h2>Red flags</h2>\n");
    body.push_str(&passage_list(kb, &topic.red_flags));
    body.push_str("</section>\n");
    if !topic.notes.is_empty() {
        body.push_str("<section>\n<h2>Notes</h2>\n");
        body.push_str(&passage_list(kb, &topic.notes));
        body.push_str("</section>\n");
    }
    body.push_str("<section>\n<h2>References</h2>\n");
    body.push_str(&references(kb, &topic.cited_sources(&finding_sources)));
    body.push_str(
        "</section>\n</main>\n<footer><p>This page holds no patient data. The card that linked here shows the patient's own findings and their evidence.</p></footer>\n",
    );
    document(
        &format!("{} · cramp-cds guidance", topic.title),
        "guidance",
        &body,
    )
}

fn handout_page(kb: &KnowledgeBase, handout: &Handout) -> String {
    let mut body = format!(
        "<main>\n<h1>{}</h1>\n<p class=\"lead\">{}</p>\n",
        escape(&handout.title),
        escape(&handout.intro.text)
    );
    for section in &handout.sections {
        let class = if section.urgent {
            " class=\"urgent\""
        } else {
            ""
        };
        body.push_str(&format!(
            "<section{class}>\n<h2>{}</h2>\n",
            escape(&section.heading)
        ));
        if section.list {
            let items: String = section
                .items
                .iter()
                .map(|p| format!("<li>{}</li>\n", escape(&p.text)))
                .collect();
            body.push_str(&format!("<ul>\n{items}</ul>\n"));
        } else {
            for item in &section.items {
                body.push_str(&format!("<p>{}</p>\n", escape(&item.text)));
            }
        }
        body.push_str("</section>\n");
    }
    body.push_str("</main>\n<footer>\n<p>Written in our own words from these sources:</p>\n<ul class=\"sources\">\n");
    for id in handout.cited_sources() {
        if let Some(source) = kb.source(id) {
            body.push_str(&format!("<li>{}</li>\n", escape(&source.citation)));
        }
    }
    body.push_str(
        "</ul>\n<p>This leaflet is general information, not a diagnosis: follow the advice of the clinician who gave it to you.</p>\n</footer>\n",
    );
    document(&handout.title, "handout", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages() -> (KnowledgeBase, Pages) {
        let kb = KnowledgeBase::embedded().unwrap();
        let pages = Pages::build(&kb);
        (kb, pages)
    }

    #[test]
    fn knowledge_text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(safe_href("javascript:alert(1)"), None);
        assert_eq!(
            safe_href("https://example.org/a?b=1&c=\"").as_deref(),
            Some("https://example.org/a?b=1&amp;c=%22")
        );
    }

    #[test]
    fn every_card_topic_has_a_page_with_its_whole_story() {
        let (kb, pages) = pages();
        for topic in [
            "risk-factors",
            "medication-culprits",
            "dvt-rule-out",
            "quinine-warning",
        ] {
            let page = pages.guidance(topic).expect(topic);
            let html = &page.html;
            for heading in [
                "What triggers this card",
                "Findings and their windows",
                "Next steps",
                "Red flags",
                "References",
            ] {
                assert!(html.contains(heading), "{topic}: {heading}");
            }
            // Every statement the card can make is on the page: in full, or
            // (concise card wording) through the statements it condenses;
            // layout templates state nothing.
            for statement in kb.statements().filter(|s| s.card == topic && !s.template) {
                let on_page = |id: &str| {
                    kb.statements()
                        .find(|s| s.id == id)
                        .is_some_and(|s| html.contains(&escape(&s.text)))
                };
                assert!(
                    html.contains(&escape(&statement.text))
                        || (!statement.condenses.is_empty()
                            && statement.condenses.iter().all(|id| on_page(id))),
                    "{topic}: {}",
                    statement.id
                );
            }
            assert!(!html.contains("<script"), "{topic}");
            assert!(page.etag.starts_with('"') && page.etag.len() == 34);
        }
        let risk = &pages.guidance("risk-factors").unwrap().html;
        assert!(
            risk.contains("potassium: 3.5 mmol/L = 3.5 mEq/L"),
            "lab limits"
        );
        assert!(risk.contains("294 days"), "pregnancy window");
        let culprits = &pages.guidance("medication-culprits").unwrap().html;
        assert!(
            culprits.contains("adjusted sequence ratio 2.42"),
            "strengths"
        );
        assert!(
            culprits.contains("href=\"https://pubmed.ncbi.nlm.nih.gov/22157068/\""),
            "reference links"
        );
        assert!(pages.guidance("no-such-topic").is_none());
    }

    #[test]
    fn the_handout_covers_what_the_patient_needs_and_cites_its_sources() {
        let (_, pages) = pages();
        let html = &pages.handout().html;
        for needed in [
            "What is a leg cramp?",
            "During a cramp",
            "Calf stretch",
            "Thigh stretch",
            "fluids",
            "heat",
            "ice",
            "swelling in your calf",
            "Quinine is not a treatment",
            "CareNotes patient education",
            "Drug Safety Communication",
        ] {
            assert!(html.contains(needed), "{needed}");
        }
        assert!(html.contains("@media print") && html.contains("@page"));
    }

    #[test]
    fn the_policy_names_the_stylesheet_by_its_hash() {
        let (_, pages) = pages();
        assert!(pages
            .csp
            .starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(!pages.csp.contains("unsafe"));
        let hash = base64::engine::general_purpose::STANDARD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            STYLE.as_bytes(),
        ));
        assert!(pages.csp.contains(&hash));
        assert!(pages
            .handout()
            .html
            .contains(&format!("<style>{STYLE}</style>")));
    }
}
