//! The one-way pipeline: patient record and hook context -> findings -> cards.
//! Used alike by the hook endpoint, /analyze and the `evaluate` command.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::cards::CardRenderer;
use crate::knowledge::KnowledgeBase;
use crate::protocol::response::CdsResponse;
use crate::protocol::Hook;
use crate::record::{MedicationUse, PatientRecord};
use crate::rules::{Assessment, HookInput, RuleSettings, Rules};

pub struct Engine {
    rules: Rules,
}

/// One evaluation: the record plus what the hook context adds.
pub struct Evaluation<'a> {
    pub hook: Hook,
    pub record: &'a PatientRecord,
    pub draft_orders: &'a [MedicationUse],
    pub selections: &'a [String],
    pub encounter_id: Option<&'a str>,
    /// context.patientId, for when the record holds no Patient resource.
    pub patient_id: Option<&'a str>,
    pub now: DateTime<Utc>,
}

impl Engine {
    pub fn new(kb: Arc<KnowledgeBase>, settings: RuleSettings) -> Result<Self, String> {
        Ok(Self { rules: Rules::new(kb, settings)? })
    }

    pub fn knowledge(&self) -> &KnowledgeBase {
        self.rules.knowledge()
    }

    pub fn assess(&self, evaluation: &Evaluation) -> Assessment {
        self.rules.evaluate(&HookInput {
            hook: evaluation.hook,
            record: evaluation.record,
            draft_orders: evaluation.draft_orders,
            selections: evaluation.selections,
            encounter_id: evaluation.encounter_id,
            patient_id: evaluation.patient_id,
            now: evaluation.now,
        })
    }

    pub fn run(&self, evaluation: &Evaluation) -> CdsResponse {
        let assessment = self.assess(evaluation);
        CdsResponse { cards: CardRenderer::new(self.knowledge()).render(&assessment) }
    }
}

/// A posted Bundle for /analyze and `evaluate`: for order hooks, its draft
/// MedicationRequests are the orders being written.
pub fn split_drafts(record: &mut PatientRecord, hook: Hook) -> Vec<MedicationUse> {
    if !hook.is_order_hook() {
        return Vec::new();
    }
    let (drafts, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut record.medications)
        .into_iter()
        .partition(|m| m.source == crate::record::MedicationSource::Request && m.status.as_deref() == Some("draft"));
    record.medications = rest;
    drafts
}
