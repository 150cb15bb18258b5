//! Allocations per hook call, stage by stage (issue #24): the same
//! benchmarks as benches/evaluate.rs (benches/support/stages.rs), with
//! divan's allocation profiler around the server's allocator, so that each
//! stage reports how many allocations (and bytes) one call makes. A bench of
//! its own because counting costs time: benches/evaluate.rs stays the
//! timing of record.
//!
//! Run: cargo bench --bench allocations

#[path = "../tests/support/fhir_json.rs"]
mod fhir_json;
#[path = "support/stages.rs"]
mod stages;

#[global_allocator]
static ALLOCATOR: divan::AllocProfiler<mimalloc::MiMalloc> =
    divan::AllocProfiler::new(mimalloc::MiMalloc);

fn main() {
    divan::main();
}
