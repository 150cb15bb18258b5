//! The hook request path from raw bytes: parse and validate, build the
//! record from prefetch, run the rules, render and check the cards.
#![no_main]

use std::sync::{Arc, OnceLock};

use cramp_cds::application::{self, Pipeline};
use cramp_cds::engine::Engine;
use cramp_cds::knowledge::KnowledgeBase;
use cramp_cds::protocol::discovery::ServiceCatalog;
use cramp_cds::protocol::request::{parse_hook_request, Conformance};
use cramp_cds::protocol::Hook;
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
    // The service the body names; the rest is the request path as
    // production runs it (minus fetching).
    let Ok(request) = parse_hook_request(body, &parts.schemas) else {
        return;
    };
    let Ok(hook) = request.hook.parse::<Hook>() else {
        return;
    };
    let Some(service) = parts.catalog.for_hook(hook) else {
        return;
    };
    let pipeline = Pipeline {
        engine: &parts.engine,
        catalog: &parts.catalog,
        schemas: &parts.schemas,
        conformance: Conformance::Tolerant,
        max_entries: 50_000,
    };
    let Ok(answer) =
        application::answer_without_fetching(&pipeline, &service.id, body, chrono::Utc::now())
    else {
        return;
    };
    let document = serde_json::to_value(&answer.response).unwrap();
    assert!(
        parts.schemas.check_response(&document).is_empty(),
        "an invalid response"
    );
});
