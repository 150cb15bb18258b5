//! The HTTP layer: routes, body limits, CORS and error answers. It reads a
//! body, hands it to [`crate::application`], answers, and queues the store's
//! records; it never looks at clinical codes.

mod authentication;
mod body;
mod connections;
mod console;
pub mod errors;
mod feedback;
mod operations;
mod pages;
mod routes;

use actix_cors::Cors;
use actix_web::http::header;
use actix_web::web;

use crate::auth::Authenticator;
use crate::engine::Engine;
use crate::prefetch::fetch::FhirFetcher;
use crate::protocol::discovery::ServiceCatalog;
use crate::store::Store;
use crate::validation::Schemas;

use crate::protocol::request::Conformance;
pub use authentication::require_jwt;
pub use body::BodyLimits;
pub use connections::{guard as connection_guard, PeerTable};
pub use errors::ApiError;

/// What every handler shares, built once at start-up.
pub struct AppState {
    pub catalog: ServiceCatalog,
    pub schemas: Schemas,
    pub engine: Engine,
    pub max_body_bytes: usize,
    pub body_limits: body::BodyLimits,
    pub request_limits: RequestLimits,
    /// The URLs clients call us by (JWT audiences); the first is published.
    pub public_base_urls: Vec<String>,
    pub fetcher: FhirFetcher,
    /// None: authentication is off (loopback, or explicitly allowed).
    pub authenticator: Option<Authenticator>,
    pub store: Store,
    /// Whether defects in members the rules do not read are tolerated.
    pub conformance: Conformance,
    /// The guidance pages and the handout, built from the knowledge.
    pub pages: crate::pages::Pages,
}

impl AppState {
    /// What the application layer needs for a hook call.
    pub fn pipeline(&self) -> crate::application::Pipeline<'_> {
        crate::application::Pipeline {
            engine: &self.engine,
            catalog: &self.catalog,
            schemas: &self.schemas,
            conformance: self.conformance,
            max_entries: self.request_limits.max_entries,
        }
    }
}

/// What one request may make the service read and hold.
pub struct RequestLimits {
    /// Bundle entries read for one request, all sources together.
    pub max_entries: usize,
    /// Bodies from this size up are evaluated on the blocking pool.
    pub large_body_bytes: usize,
    /// Large evaluations at once (one per core): the rest wait their turn.
    pub large_evaluations: std::sync::Arc<tokio::sync::Semaphore>,
    pub max_feedback_entries: usize,
}

pub fn configure(config: &mut web::ServiceConfig, catalog: &ServiceCatalog) {
    routes::configure_services(config, catalog);
    operations::configure(config);
    console::configure(config);
    pages::configure(config);
    feedback::configure(config);
    routes::configure(config);
}

/// The header that carries a request's id both ways.
const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// CORS for browser clients (the CDS Hooks Sandbox, SMART apps): `*` allows
/// any origin and then never credentials. Scripts may send and read
/// `X-Request-Id`.
pub fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods(["GET", "POST", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            REQUEST_ID,
        ])
        .expose_headers([REQUEST_ID])
        .max_age(3600);
    if origins.iter().any(|o| o.trim() == "*") {
        cors.allow_any_origin().send_wildcard()
    } else {
        origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .fold(cors, |cors, origin| cors.allowed_origin(origin))
    }
}

/// The origins CORS allows: `--cors-origins` when given; otherwise `*` with
/// authentication (every call needs a token anyway), and without it only
/// the service's own origins, so a web page the user happens to open
/// cannot call an open service on loopback.
pub fn cors_origins(
    configured: &[String],
    authentication: bool,
    public_base_urls: &[String],
) -> Vec<String> {
    let configured: Vec<String> = configured
        .iter()
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    if !configured.is_empty() {
        return configured;
    }
    if authentication {
        return vec!["*".to_owned()];
    }
    let mut own: Vec<String> = public_base_urls
        .iter()
        .filter_map(|base| url::Url::parse(base).ok())
        .map(|url| url.origin().ascii_serialization())
        .filter(|origin| origin != "null")
        .collect();
    own.dedup();
    own
}

/// The origins a browser may call from (`*`: any), for `cors_refusals`.
#[derive(Clone)]
pub struct AllowedOrigins(pub Vec<String>);

/// A request CORS refuses answers an OperationOutcome, as every error does:
/// a preflight asking for a method, header or origin not allowed (400), and
/// an actual request from a web page of another origin (403), which is
/// refused before it is handled, so a page cannot make the service act (a
/// "simple" POST needs no preflight). Same-origin requests (the console)
/// always pass.
pub async fn cors_refusals(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let foreign = request.method() != actix_web::http::Method::OPTIONS
        && request.headers().get(header::ORIGIN).is_some_and(|origin| {
            let allowed = request
                .app_data::<AllowedOrigins>()
                .map(|a| a.0.as_slice())
                .unwrap_or_default();
            !origin_allowed(
                origin.to_str().unwrap_or(""),
                allowed,
                request.headers().get(header::HOST),
            )
        });
    if foreign {
        metrics::counter!("cors_refusals_total").increment(1);
        let answer = actix_web::HttpResponse::Forbidden()
            .content_type(errors::FHIR_JSON)
            .json(crate::fhir::outcome::OperationOutcome::error(
                "forbidden",
                "CORS: requests from this origin are not allowed",
            ));
        return Ok(request.into_response(answer));
    }
    let response = next.call(request).await?;
    // actix-cors answers a refused preflight itself, as a plain-text error.
    let refusal = response
        .response()
        .error()
        .and_then(|error| error.as_error::<actix_cors::CorsError>())
        .map(|e| (e.to_string(), actix_web::ResponseError::status_code(e)));
    let Some((message, status)) = refusal else {
        return Ok(response.map_into_boxed_body());
    };
    metrics::counter!("cors_refusals_total").increment(1);
    let (request, _) = response.into_parts();
    let answer = actix_web::HttpResponse::build(status)
        .content_type(errors::FHIR_JSON)
        .json(crate::fhir::outcome::OperationOutcome::error(
            "forbidden",
            format!("CORS: {message}"),
        ));
    Ok(actix_web::dev::ServiceResponse::new(request, answer))
}

/// On the list, any origin allowed, or the request's own origin (its host
/// and port are the Host the browser called).
fn origin_allowed(origin: &str, allowed: &[String], host: Option<&header::HeaderValue>) -> bool {
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = host.and_then(|h| h.to_str().ok()).unwrap_or("");
    url::Url::parse(origin).is_ok_and(|url| {
        let Some(name) = url.host_str() else {
            return false;
        };
        let own = match url.port() {
            Some(port) => format!("{name}:{port}"),
            None => name.to_owned(),
        };
        !host.is_empty() && own.eq_ignore_ascii_case(host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_origin_passes_and_look_alikes_do_not() {
        let host = header::HeaderValue::from_static("127.0.0.1:8080");
        assert!(origin_allowed("http://127.0.0.1:8080", &[], Some(&host)));
        assert!(!origin_allowed("http://127.0.0.1:8081", &[], Some(&host)));
        assert!(!origin_allowed(
            "https://evil.example",
            &["https://sandbox.cds-hooks.org".into()],
            Some(&host)
        ));
        assert!(origin_allowed(
            "https://sandbox.cds-hooks.org",
            &["https://sandbox.cds-hooks.org".into()],
            None
        ));
        assert!(origin_allowed("https://any.example", &["*".into()], None));
        assert!(!origin_allowed("null", &[], Some(&host)));
    }
}
