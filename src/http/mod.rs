//! The HTTP layer: routes, body limits, CORS and error answers. It turns
//! requests into engine calls and never looks at clinical codes.

mod authentication;
mod body;
mod console;
pub mod errors;
mod feedback;
mod operations;
mod routes;

use actix_cors::Cors;
use actix_web::http::header;
use actix_web::web;

use crate::auth::Authenticator;
use crate::engine::Engine;
use crate::prefetch::fetch::FhirFetcher;
use crate::store::Store;
use crate::protocol::discovery::ServiceCatalog;
use crate::validation::Schemas;

pub use authentication::require_jwt;
use crate::protocol::request::Conformance;
pub use routes::DeclaredService;
pub use errors::ApiError;

/// What every handler shares, built once at start-up.
pub struct AppState {
    pub catalog: ServiceCatalog,
    pub schemas: Schemas,
    pub engine: Engine,
    pub max_body_bytes: usize,
    /// The URLs clients call us by (JWT audiences); the first is published.
    pub public_base_urls: Vec<String>,
    pub fetcher: FhirFetcher,
    /// None: authentication is off (loopback, or explicitly allowed).
    pub authenticator: Option<Authenticator>,
    pub store: Store,
    /// Whether defects in members the rules do not read are tolerated.
    pub conformance: Conformance,
}

pub fn configure(config: &mut web::ServiceConfig, catalog: &ServiceCatalog) {
    routes::configure_services(config, catalog);
    operations::configure(config);
    console::configure(config);
    feedback::configure(config);
    routes::configure(config);
}

/// CORS for browser clients (the CDS Hooks Sandbox, SMART apps): `*` allows
/// any origin and then never credentials.
pub fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods(["GET", "POST", "OPTIONS"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(3600);
    if origins.iter().any(|o| o.trim() == "*") {
        cors.allow_any_origin().send_wildcard()
    } else {
        origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).fold(cors, |cors, origin| cors.allowed_origin(origin))
    }
}
