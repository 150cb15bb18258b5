//! Clinical tests: every real sample bundle, properties of the engine, and
//! one-pass reading of the scenarios. The scenarios themselves (the test
//! oracle for clinical-rules.md) run one test per file: tests/clinical/scenarios.rs.

#[path = "../support/card_budget.rs"]
mod card_budget;
mod card_text;
#[path = "../support/fhir_json.rs"]
mod fhir_json;
#[path = "../support/hook_request.rs"]
mod hook_request;
mod one_pass;
mod properties;
mod samples;
#[path = "../support/scenario_files.rs"]
mod scenario_files;
#[path = "../support/engine.rs"]
mod shared;

pub use scenario_files::scenario_files;
pub use shared::{assert_schema_valid, engine, schemas};
