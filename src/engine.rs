//! Patient record and hook context -> findings -> cards: the rules, then
//! the cards. Called by [`crate::application`], which alone builds its input.

use std::sync::Arc;

use crate::cards::links::{BaseUrlError, CardLinks, RenderSettings};
use crate::cards::{CardRecord, CardRenderer};
use crate::knowledge::{KnowledgeBase, KnowledgeError};
use crate::protocol::response::{CdsResponse, IncompleteKey, ResponseExtension, ResponseNotes};
use crate::protocol::Hook;
use crate::record::{MedicationUse, PatientRecord};
use crate::rules::{Assessment, HookInput, RuleSettings, Rules};

/// Why an engine could not be built: the rules need something the
/// knowledge lacks, or the cards cannot link under the base URL.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("knowledge base: {0}")]
    Knowledge(#[from] KnowledgeError),
    #[error(transparent)]
    BaseUrl(#[from] BaseUrlError),
}

pub struct Engine {
    rules: Rules,
    renderer: CardRenderer,
    links: CardLinks,
}

/// One evaluation: the record plus what the hook context adds (the rules'
/// own input, under the name the callers know).
pub type Evaluation<'a> = HookInput<'a>;

impl Engine {
    /// Cards link pages under the default address (`cramp-cds` with no
    /// flags); the server passes its published base URL with [`Self::with_render`].
    pub fn new(kb: Arc<KnowledgeBase>, settings: RuleSettings) -> Result<Self, EngineError> {
        Self::with_render(kb, settings, &RenderSettings::default())
    }

    pub fn with_render(
        kb: Arc<KnowledgeBase>,
        settings: RuleSettings,
        render: &RenderSettings,
    ) -> Result<Self, EngineError> {
        Ok(Self {
            renderer: CardRenderer::new(kb.clone()),
            rules: Rules::new(kb, settings)?,
            links: CardLinks::new(render)?,
        })
    }

    pub fn knowledge(&self) -> &KnowledgeBase {
        self.rules.knowledge()
    }

    pub fn renderer(&self) -> &CardRenderer {
        &self.renderer
    }

    pub fn assess(&self, evaluation: &Evaluation) -> Assessment {
        self.rules.evaluate(evaluation)
    }

    /// The answer, and the store's record of each of its cards.
    pub fn run(&self, evaluation: &Evaluation) -> (CdsResponse, Vec<CardRecord>) {
        let assessment = self.assess(evaluation);
        let incomplete: Vec<IncompleteKey> = evaluation
            .record
            .unread
            .iter()
            .map(|u| IncompleteKey {
                key: u.key.clone(),
                reason: u.reason.clone(),
            })
            .collect();
        let extension = (!incomplete.is_empty()).then_some(ResponseExtension {
            cramp_cds: ResponseNotes { incomplete },
        });
        let (mut cards, records) = self.renderer.render_recorded(&assessment);
        self.links.attach(&mut cards);
        (CdsResponse { cards, extension }, records)
    }
}

/// A posted Bundle for /analyze and `evaluate`: for order hooks, its draft
/// MedicationRequests are the orders being written.
pub fn split_drafts<'a>(record: &mut PatientRecord<'a>, hook: Hook) -> Vec<MedicationUse<'a>> {
    if !hook.is_order_hook() {
        return Vec::new();
    }
    let (drafts, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut record.medications)
        .into_iter()
        .partition(|m| {
            m.source == crate::record::MedicationSource::Request
                && m.status.as_deref() == Some("draft")
        });
    record.medications = rest;
    drafts
}
