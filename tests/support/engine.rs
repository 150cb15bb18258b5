//! The engine and schemas the clinical test binaries share, made once.

use std::sync::{Arc, OnceLock};

use cramp_cds::engine::Engine;
use cramp_cds::knowledge::KnowledgeBase;
use cramp_cds::rules::RuleSettings;
use cramp_cds::validation::Schemas;

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let kb = KnowledgeBase::embedded().expect("embedded knowledge loads");
        Engine::new(Arc::new(kb), RuleSettings::default()).expect("rules bind to the knowledge")
    })
}

pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| Schemas::compile().expect("schemas compile"))
}

/// Every card must validate against our published response schema.
pub fn assert_schema_valid(response: &cramp_cds::protocol::response::CdsResponse, context: &str) {
    let document = serde_json::to_value(response).unwrap();
    let issues = schemas().check_response(&document);
    assert!(
        issues.is_empty(),
        "{context}: response breaks the schema: {issues:?}"
    );
}
