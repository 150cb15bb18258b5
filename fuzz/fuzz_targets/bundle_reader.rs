//! The Bundle reader and the rules on whatever a Bundle holds; and the
//! hook request's single typed pass, which must read any Bundle it accepts
//! into the same record as the careful entry-by-entry reader.
#![no_main]

use std::sync::{Arc, OnceLock};

use cramp_cds::application::{self, Chart, Drafts};
use cramp_cds::engine::Engine;
use cramp_cds::knowledge::KnowledgeBase;
use cramp_cds::protocol::discovery::ServiceCatalog;
use cramp_cds::protocol::request::parse_hook_request;
use cramp_cds::protocol::Hook;
use cramp_cds::record::record_from;
use cramp_cds::rules::RuleSettings;
use cramp_cds::validation::Schemas;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/hook_request.rs"]
mod hook_request;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(
            Arc::new(KnowledgeBase::embedded().unwrap()),
            RuleSettings::default(),
        )
        .unwrap()
    })
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| Schemas::compile().unwrap())
}

/// The text sent as the `conditions` prefetch of a patient-view call: the
/// record must not depend on which reader the request took.
fn assert_both_readings_agree(text: &str) {
    // Only one JSON value: trailing text would add members to the request.
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return;
    }
    let body = hook_request::with_conditions(text);
    let Ok(request) = parse_hook_request(body.as_bytes(), schemas()) else {
        return;
    };
    let catalog = ServiceCatalog::embedded();
    let service = catalog.get("leg-cramps-patient-view").unwrap();
    let Ok(mut record) =
        cramp_cds::prefetch::resolve(service, request.prefetch, &[], &request.context_values)
    else {
        return;
    };
    // Keys the request did not send are about the request, not the reading.
    record.unread.clear();
    assert_eq!(
        format!("{record:?}"),
        format!("{:?}", record_from([text])),
        "the two readings differ"
    );
}

fuzz_target!(|text: &str| {
    assert_both_readings_agree(text);
    for hook in [Hook::PatientView, Hook::OrderSign] {
        let chart = Chart {
            hook,
            bundle: text,
            drafts: Drafts::InBundle,
            selections: &[],
            encounter_id: None,
            patient_id: Some("p1"),
            now: chrono::Utc::now(),
        };
        let response = application::evaluate_chart(engine(), &chart).response;
        for card in &response.cards {
            assert!(card.summary.chars().count() < 140);
            assert!(card
                .extension
                .cramp_cds
                .findings
                .iter()
                .all(|f| !f.evidence.is_empty()));
        }
    }
});
