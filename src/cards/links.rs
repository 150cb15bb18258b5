//! The links every card carries: "Why this card" to its topic's guidance
//! page, and on the risk-factors card the patient handout. Absolute URLs
//! under the service's published base URL, which the renderer is given as
//! configuration (the rules never see HTTP). The full references with their
//! own links live on the guidance page, so a card keeps to a few links an
//! EHR can show as buttons.

use crate::pages::{GUIDANCE_PREFIX, HANDOUT_PATH};
use crate::protocol::response::{Card, Link};

use super::Topic;

/// A public base URL links cannot be made under.
#[derive(Debug, thiserror::Error)]
pub enum BaseUrlError {
    #[error("public base URL '{text}' for card links: {error}")]
    Unparsed {
        text: String,
        #[source]
        error: url::ParseError,
    },
    #[error(
        "public base URL '{0}' for card links: an http(s) URL with a host and no query or fragment"
    )]
    CannotHoldPages(String),
}

pub const WHY_LABEL: &str = "Why this card";
pub const HANDOUT_LABEL: &str = "Patient handout: leg cramps";

/// Where the served pages are: `cramp-cds` run with no flags serves here.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";

const TOPICS: [Topic; 4] = [
    Topic::RiskFactors,
    Topic::MedicationCulprits,
    Topic::DvtRuleOut,
    Topic::QuinineWarning,
];

/// How cards are rendered beyond the knowledge: the base URL of the pages
/// they link to (the first `--public-base-url`).
#[derive(Debug, Clone)]
pub struct RenderSettings {
    pub public_base_url: String,
}

impl Default for RenderSettings {
    fn default() -> Self {
        Self {
            public_base_url: DEFAULT_BASE_URL.to_owned(),
        }
    }
}

/// The links, made once: a guidance URL per topic and the handout URL.
#[derive(Debug, Clone)]
pub struct CardLinks {
    guidance: Vec<(Topic, String)>,
    handout: String,
}

impl CardLinks {
    /// Refuses a base that is not an absolute http(s) URL without query or
    /// fragment: links under it would not reach the pages.
    pub fn new(settings: &RenderSettings) -> Result<Self, BaseUrlError> {
        let text = settings.public_base_url.trim();
        let base = url::Url::parse(text).map_err(|error| BaseUrlError::Unparsed {
            text: text.to_owned(),
            error,
        })?;
        if !matches!(base.scheme(), "http" | "https")
            || base.host_str().is_none()
            || base.query().is_some()
            || base.fragment().is_some()
        {
            return Err(BaseUrlError::CannotHoldPages(text.to_owned()));
        }
        let root = base.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            guidance: TOPICS
                .iter()
                .map(|&topic| (topic, format!("{root}{GUIDANCE_PREFIX}{}", topic.code())))
                .collect(),
            handout: format!("{root}{HANDOUT_PATH}"),
        })
    }

    pub fn guidance_url(&self, topic: Topic) -> &str {
        self.guidance
            .iter()
            .find(|(t, _)| *t == topic)
            .map(|(_, url)| url.as_str())
            .unwrap_or_default()
    }

    /// Gives each card its links (replacing the per-source links: the
    /// references are on the guidance page) and makes the guidance page
    /// the card's source URL.
    pub fn attach(&self, cards: &mut [Card]) {
        for card in cards {
            let Some(&(topic, ref why)) = self
                .guidance
                .iter()
                .find(|(t, _)| t.code() == card.source.topic.code)
            else {
                continue;
            };
            card.links = vec![link(WHY_LABEL, why)];
            if topic == Topic::RiskFactors {
                card.links.push(link(HANDOUT_LABEL, &self.handout));
            }
            card.source.url = Some(why.clone());
        }
    }
}

fn link(label: &str, url: &str) -> Link {
    Link {
        label: label.to_owned(),
        url: url.to_owned(),
        kind: "absolute",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(base: &str) -> Result<CardLinks, BaseUrlError> {
        CardLinks::new(&RenderSettings {
            public_base_url: base.to_owned(),
        })
    }

    #[test]
    fn urls_sit_under_the_base_with_or_without_its_slash() {
        for base in [
            "https://cds.example.org/cramps",
            "https://cds.example.org/cramps/",
        ] {
            let links = links(base).unwrap();
            assert_eq!(
                links.guidance_url(Topic::DvtRuleOut),
                "https://cds.example.org/cramps/guidance/dvt-rule-out"
            );
            assert_eq!(
                links.handout,
                "https://cds.example.org/cramps/handouts/leg-cramps"
            );
        }
        assert_eq!(
            links("http://[::1]:8080")
                .unwrap()
                .guidance_url(Topic::QuinineWarning),
            "http://[::1]:8080/guidance/quinine-warning"
        );
    }

    #[test]
    fn a_base_that_cannot_hold_pages_is_refused() {
        for base in [
            "",
            "cds.example.org",
            "ftp://x.org",
            "https://x.org/?a=1",
            "https://x.org/#f",
        ] {
            assert!(links(base).is_err(), "{base}");
        }
    }
}
