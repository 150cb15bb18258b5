//! Fetching what the EHR did not prefetch: the plan a hook call's first
//! pass makes, and the fetches it runs on the EHR's FHIR server (trust
//! checked first, every key in parallel, within the call's limits).

use super::fetch::{FetchError, Fetched, FhirFetcher};
use super::trust::IssuerKey;
use crate::protocol::discovery::ServiceDefinition;
use crate::telemetry::escape_for_log;

/// The prefetch keys to fetch and what fetching them needs.
pub struct FetchPlan {
    pub keys: Vec<String>,
    /// `Medication/<id>` referenced by orders but not included.
    pub medications: Vec<String>,
    /// What an earlier round fetched, kept for the next pass.
    pub already: Vec<(String, Fetched)>,
    pub server: String,
    pub token: Option<String>,
    pub context_values: std::collections::BTreeMap<String, String>,
    pub hook_instance: String,
}

/// Fetches, from the EHR's FHIR server, the prefetch keys it did not send.
pub async fn fetch_missing(
    fetcher: &FhirFetcher,
    service: &ServiceDefinition,
    plan: FetchPlan,
    issuer: Option<&IssuerKey>,
) -> (Vec<(String, Fetched)>, crate::limits::Held) {
    let FetchPlan {
        keys,
        medications,
        already,
        server,
        token,
        context_values,
        hook_instance,
    } = plan;
    let hook_instance = escape_for_log(&hook_instance, 100);
    let mut results = already;
    let server = match fetcher.check_server(&server, issuer).await {
        Ok(server) => server,
        Err(error) => {
            metrics::counter!("fhir_fetch_errors_total", "reason" => error.kind()).increment(1);
            log::warn!("hook {hook_instance}: not fetching {keys:?} {medications:?}: {error}");
            results.extend(super::all_failed(&keys, error.clone()));
            results.extend(super::all_failed(&medications, error));
            return (results, crate::limits::Held::none());
        }
    };
    // A referenced Medication is read by id: its key is its reference.
    let mut queries: Vec<(String, String)> = medications
        .into_iter()
        .map(|reference| (reference.clone(), reference))
        .collect();
    let mut failed = Vec::new();
    for key in keys {
        match super::template::fill(&service.prefetch[&key], &context_values) {
            Ok(query) => queries.push((key, query)),
            Err(why) => failed.push((key, Err(FetchError::Template(why)))),
        }
    }
    let started = std::time::Instant::now();
    let (fetched, held) = fetcher.fetch_all(&server, token.as_deref(), queries).await;
    for (key, result) in &fetched {
        match result {
            Ok(pages) => log::info!(
                "hook {hook_instance}: fetched '{key}' ({} page(s))",
                pages.documents.len()
            ),
            Err(error) => {
                metrics::counter!("fhir_fetch_errors_total", "reason" => error.kind()).increment(1);
                log::warn!("hook {hook_instance}: fetching '{key}' failed: {error}");
            }
        }
    }
    log::debug!(
        "hook {hook_instance}: FHIR fetches took {:?}",
        started.elapsed()
    );
    results.extend(fetched);
    results.extend(failed);
    (results, held)
}
