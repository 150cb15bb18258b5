//! The Bundle reader and the rules on whatever a Bundle holds.
#![no_main]

use std::sync::{Arc, OnceLock};

use cramp_cds::engine::{split_drafts, Engine, Evaluation};
use cramp_cds::knowledge::KnowledgeBase;
use cramp_cds::protocol::Hook;
use cramp_cds::record::record_from;
use cramp_cds::rules::RuleSettings;
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(Arc::new(KnowledgeBase::embedded().unwrap()), RuleSettings::default()).unwrap())
}

fuzz_target!(|text: &str| {
    for hook in [Hook::PatientView, Hook::OrderSign] {
        let mut record = record_from([text]);
        let drafts = split_drafts(&mut record, hook);
        let response = engine().run(&Evaluation {
            hook,
            record: &record,
            draft_orders: &drafts,
            selections: &[],
            encounter_id: None,
            patient_id: Some("p1"),
            now: chrono::Utc::now(),
        });
        for card in &response.cards {
            assert!(card.summary.chars().count() < 140);
            assert!(card.extension.cramp_cds.findings.iter().all(|f| !f.evidence.is_empty()));
        }
    }
});
