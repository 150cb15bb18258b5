//! Where the time of a hook call goes, stage by stage (benches/support/
//! stages.rs): request parsing and validation, record building, rule
//! evaluation, card rendering, and the whole call. Inputs: a 4 KB and a
//! 100 KB patient-view request, and a full Synthea patient
//! (../shared/samples) evaluated as /analyze does.
//!
//! Run: cargo bench --bench evaluate

#[path = "../tests/support/fhir_json.rs"]
mod fhir_json;
#[path = "support/stages.rs"]
mod stages;

/// As the server runs (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}
