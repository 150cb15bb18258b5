//! The hook request path from raw bytes: parse and validate, build the
//! record from prefetch, run the rules, render and check the cards.
#![no_main]

use std::sync::{Arc, OnceLock};

use cramp_cds::engine::{Engine, Evaluation};
use cramp_cds::knowledge::KnowledgeBase;
use cramp_cds::protocol::discovery::ServiceCatalog;
use cramp_cds::protocol::request::parse_hook_request;
use cramp_cds::protocol::Hook;
use cramp_cds::record::record_from;
use cramp_cds::rules::RuleSettings;
use cramp_cds::validation::Schemas;
use libfuzzer_sys::fuzz_target;

struct Parts {
    engine: Engine,
    schemas: Schemas,
    catalog: ServiceCatalog,
}

fn parts() -> &'static Parts {
    static PARTS: OnceLock<Parts> = OnceLock::new();
    PARTS.get_or_init(|| Parts {
        engine: Engine::new(
            Arc::new(KnowledgeBase::embedded().unwrap()),
            RuleSettings::default(),
        )
        .unwrap(),
        schemas: Schemas::compile().unwrap(),
        catalog: ServiceCatalog::embedded(),
    })
}

fuzz_target!(|body: &[u8]| {
    let parts = parts();
    let Ok(request) = parse_hook_request(body, &parts.schemas) else {
        return;
    };
    let Ok(hook) = request.hook.parse::<Hook>() else {
        return;
    };
    let Some(service) = parts.catalog.for_hook(hook) else {
        return;
    };
    let Ok(mut record) =
        cramp_cds::prefetch::resolve(service, request.prefetch, &[], &request.context_values)
    else {
        return;
    };
    record.keep_patient(request.context.patient_id.as_deref());
    let drafts = request
        .context
        .draft_orders
        .map(|raw| record_from([raw.get()]).medications)
        .unwrap_or_default();
    let response = parts.engine.run(&Evaluation {
        hook: service.hook,
        record: &record,
        draft_orders: &drafts,
        selections: &request.context.selections,
        encounter_id: request.context.encounter_id.as_deref(),
        patient_id: request.context.patient_id.as_deref(),
        now: chrono::Utc::now(),
    });
    let document = serde_json::to_value(&response).unwrap();
    assert!(
        parts.schemas.check_response(&document).is_empty(),
        "an invalid response"
    );
});
