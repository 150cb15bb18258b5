//! The endpoints: discovery, hook calls, /analyze, and the published
//! OpenAPI document and JSON Schemas.

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;

use super::body::{read_json_body, Body};
use super::errors::ApiError;
use super::AppState;
use crate::application::{self, Pass, Step};
use crate::auth::Caller;
use crate::prefetch;
use crate::protocol::discovery::{DeclaredService, ServiceCatalog, ServiceDefinition};
use crate::protocol::request::Conformance;
use crate::protocol::response::CdsResponse;
use crate::protocol::Hook;
use crate::telemetry::note_for_access_log;
use crate::validation::Schemas;

/// Each declared service gets literal routes: actix matches a literal path
/// by comparing strings, a `{id}` pattern by running a regex, which cost a
/// sixth of a small hook call. Registered before every patterned route.
pub fn configure_services(config: &mut web::ServiceConfig, catalog: &ServiceCatalog) {
    for service in catalog.services() {
        let declared = DeclaredService(service.id.clone());
        config.service(
            web::resource(format!("/cds-services/{}", service.id))
                .wrap(actix_web::middleware::from_fn(
                    tolerate_missing_content_type,
                ))
                .app_data(declared.clone())
                .route(web::post().to(call_hook))
                .default_service(web::to(not_allowed)),
        );
        super::feedback::configure_declared(config, &declared);
    }
}

/// The service a request is for: its declared route's. On a `{id}` route
/// the caller typed an id we do not have: 404.
pub fn requested_service<'s>(
    state: &'s AppState,
    request: &HttpRequest,
) -> Result<&'s ServiceDefinition, ApiError> {
    let requested = match request.app_data::<DeclaredService>() {
        Some(declared) => &declared.0,
        None => request.match_info().get("id").unwrap_or_default(),
    };
    state.catalog.get(requested).ok_or_else(|| {
        ApiError::not_found(format!(
            "no CDS service '{requested}' here; GET /cds-services lists them"
        ))
    })
}

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/cds-services")
                .route(web::get().to(discovery))
                .default_service(web::to(not_allowed)),
        )
        // Any other id: answered 404 by call_hook with a helpful message.
        .service(
            web::resource("/cds-services/{id}")
                .route(web::post().to(call_hook))
                .default_service(web::to(not_allowed)),
        )
        .service(
            web::resource("/analyze")
                .route(web::post().to(analyze))
                .default_service(web::to(not_allowed)),
        )
        .service(
            web::resource("/openapi.json")
                .route(web::get().to(openapi))
                .default_service(web::to(not_allowed)),
        )
        .service(
            web::resource("/schemas/{file}")
                .route(web::get().to(schema))
                .default_service(web::to(not_allowed)),
        )
        .default_service(web::to(not_found));
}

async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.catalog.discovery())
}

async fn call_hook(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service_id = requested_service(&state, &request)?.id.clone();
    let body = read_json_body(&request, payload, &state).await?;
    let arrived = Utc::now();
    let missing_content_type = request.extensions().contains::<MissingContentType>();
    let (body, step) = {
        let service_id = service_id.clone();
        off_the_answering_threads(&state, body, 0, move |state, body| {
            application::hook_call(
                &state.pipeline(),
                &service_id,
                body,
                Pass::First {
                    missing_content_type,
                },
                arrived,
            )
        })
        .await?
    };
    // At most two fetch rounds: the keys the EHR did not send, then the
    // Medications that orders reference but nobody included.
    let (mut body, mut step) = (body, step);
    let mut rounds = 0;
    // The pages hold their share of the fetch budget until read.
    let mut held = Vec::new();
    let mut answer = loop {
        match step? {
            Step::Answered(answer) => break answer,
            Step::Fetch(plan) => {
                rounds += 1;
                if rounds > 2 {
                    return Err(ApiError::internal("the fetched prefetch was not used"));
                }
                let medications_fetched = !plan.medications.is_empty() || rounds == 2;
                let service = requested_service(&state, &request)?;
                let issuer = request
                    .extensions()
                    .get::<Caller>()
                    .map(|caller| caller.key.clone());
                let (fetched, pages_held) =
                    prefetch::fetch_missing(&state.fetcher, service, plan, issuer.as_ref()).await;
                held.push(pages_held);
                let service_id = service_id.clone();
                // A small call whose FHIR server sent megabytes is a large
                // evaluation too.
                let fetched_bytes: usize = fetched
                    .iter()
                    .filter_map(|(_, pages)| pages.as_ref().ok())
                    .flat_map(|pages| &pages.documents)
                    .map(String::len)
                    .sum();
                (body, step) =
                    off_the_answering_threads(&state, body, fetched_bytes, move |state, body| {
                        application::hook_call(
                            &state.pipeline(),
                            &service_id,
                            body,
                            Pass::Fetched {
                                fetched,
                                medications_fetched,
                            },
                            arrived,
                        )
                    })
                    .await?;
            }
        }
    };
    note_for_access_log(&request, std::mem::take(&mut answer.note));
    let response = respond(&answer.response)?;
    let service = requested_service(&state, &request)?;
    let cards =
        application::issued_cards(&service.id, &answer, answer.patient_id.as_deref(), arrived);
    state.store.record_cards(cards).await;
    Ok(response)
}

/// Runs `work` on the body: inline when it is small, else on the blocking
/// pool, at most one large evaluation per core at a time, so that a huge
/// record never holds up the threads that answer other requests (/healthz
/// among them). `fetched`: the bytes the FHIR server sent for this call,
/// which the evaluation reads too. Gives the body back for a second step.
async fn off_the_answering_threads<T: Send + 'static>(
    state: &web::Data<AppState>,
    body: Body,
    fetched: usize,
    work: impl FnOnce(&AppState, &[u8]) -> T + Send + 'static,
) -> Result<(Body, T), ApiError> {
    if body.len() + fetched < state.request_limits.large_body_bytes {
        let out = work(state, &body);
        return Ok((body, out));
    }
    let _turn = state
        .request_limits
        .large_evaluations
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::unavailable("the service is shutting down"))?;
    let state = state.clone();
    web::block(move || {
        let out = work(&state, &body);
        (body, out)
    })
    .await
    .map_err(|e| ApiError::internal(format!("evaluation thread: {e}")))
}

/// Marks a hook call that came without a Content-Type (and was read as JSON).
struct MissingContentType;

/// A hook call without a Content-Type is read as JSON (EHRs and scripts
/// forget it, and a quinine warning must not be lost over a header), and
/// recorded as a deviation; `--strict` keeps the 415.
async fn tolerate_missing_content_type(
    mut request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let tolerant = request
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.conformance == Conformance::Tolerant);
    if tolerant && !request.headers().contains_key(header::CONTENT_TYPE) {
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        request.extensions_mut().insert(MissingContentType);
    }
    next.call(request).await
}

#[derive(Deserialize)]
struct AnalyzeQuery {
    hook: Option<String>,
}

async fn analyze(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<AnalyzeQuery>::from_query(request.query_string())
        .map_err(|e| ApiError::invalid("hook", format!("unreadable query string: {e}")))?;
    let hook: Hook = match query.hook.as_deref() {
        Some(name) => name
            .parse()
            .map_err(|e: crate::protocol::UnknownHook| ApiError::invalid("hook", e.to_string()))?,
        None => Hook::PatientView,
    };
    let body = read_json_body(&request, payload, &state).await?;
    let now = Utc::now();
    let (_, answer) = off_the_answering_threads(&state, body, 0, move |state, body| {
        application::analyze_bundle(
            &state.engine,
            state.request_limits.max_entries,
            hook,
            body,
            now,
        )
    })
    .await?;
    let mut answer = answer?;
    note_for_access_log(&request, std::mem::take(&mut answer.note));
    let response = respond(&answer.response)?;
    // Cards from /analyze can receive feedback too, under the hook's service.
    if let Some(service) = state.catalog.for_hook(hook) {
        let patient = answer
            .patient_id
            .as_deref()
            .and_then(|r| r.strip_prefix("Patient/"));
        let cards = application::issued_cards(&service.id, &answer, patient, now);
        state.store.record_cards(cards).await;
    }
    Ok(response)
}

/// The answer, serialised straight from the typed response. Its shape is
/// fixed by the types; that every answer meets our response schema is
/// checked by the tests (every answer of the HTTP suites, every clinical
/// scenario, and cards from generated records), not by each request.
fn respond(response: &CdsResponse) -> Result<HttpResponse, ApiError> {
    // Answers of two or three cards are 3-6 KB (the load harness's: 2.7 KB
    // and 5.6 KB): one allocation rather than the seven a buffer growing
    // from serde_json's 128 bytes takes to get there.
    let mut body = Vec::with_capacity(8192);
    serde_json::to_writer(&mut body, response)
        .map_err(|e| ApiError::internal(format!("response encoding: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(body))
}

async fn openapi(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = Schemas::published("openapi.json")
        .ok_or_else(|| ApiError::internal("openapi.json is not built in"))?;
    let mut document: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ApiError::internal(format!("openapi.json: {e}")))?;
    document["servers"] = serde_json::json!([{ "url": state.public_base_urls[0] }]);
    Ok(HttpResponse::Ok().json(document))
}

async fn schema(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let file = path.into_inner();
    let text = Schemas::published(&file)
        .filter(|_| file.ends_with(".json") && !file.contains('/'))
        .ok_or_else(|| ApiError::not_found(format!("no schema '{file}'")))?;
    let content_type = if file.ends_with(".schema.json") {
        "application/schema+json"
    } else {
        "application/json"
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .body(text))
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no endpoint at {}",
        request.path()
    )))
}

/// A path with its one route: any other method is a 405 with an
/// OperationOutcome (actix's own 405 has no body, and a plain `.route` on
/// the configuration makes another method a 404).
pub(super) fn only(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(not_allowed))
}

async fn not_allowed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed(format!(
        "{} is not allowed on {}",
        request.method(),
        request.path()
    )))
}
