//! Probes and metrics for operators. They carry no patient data and are
//! open even when authentication is on, for orchestrators and scrapers
//! (restrict /metrics at the network edge).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::errors::ApiError;
use super::routes::only;
use super::AppState;

const PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(only("/healthz", web::get().to(healthz)))
        .service(only("/readyz", web::get().to(readyz)))
        .service(only("/metrics", web::get().to(metrics)));
}

pub fn is_probe(path: &str) -> bool {
    PROBES.contains(&path)
}

/// Alive: the process answers.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready: the store is reachable and migrated (the knowledge base is loaded
/// before the port opens).
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store.description().to_owned();
    let knowledge = state.engine.knowledge().origin.clone();
    if state.store.is_ready().await {
        Ok(HttpResponse::Ok()
            .json(json!({"status": "ready", "store": store, "knowledge": knowledge})))
    } else {
        Err(ApiError::unavailable(format!(
            "the store ({store}) is not reachable"
        )))
    }
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::telemetry::metrics_handle().render())
}
