//! The endpoints: discovery, hook calls, /analyze, and the published
//! OpenAPI document and JSON Schemas.

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;

use super::body::{read_json_body, Body};
use super::errors::ApiError;
use super::AppState;
use crate::auth::Caller;
use crate::engine::{split_drafts, Evaluation};
use crate::fhir::outcome::Issue;
use crate::prefetch::fetch::{FetchError, Fetched};
use crate::prefetch::{self, template};
use crate::protocol::discovery::{ServiceCatalog, ServiceDefinition};
use crate::protocol::request::{
    json_syntax_issue, parse_hook_request_in, Conformance, Deviation, HookRequest,
};
use crate::protocol::response::CdsResponse;
use crate::protocol::Hook;
use crate::record::{record_from, PatientRecord, Payload, RecordBuilder};
use crate::store::IssuedCard;
use crate::telemetry::{escape_for_log, note_for_access_log};
use crate::validation::Schemas;

/// The service a hook route was declared for.
#[derive(Clone)]
pub struct DeclaredService(pub String);

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
        off_the_answering_threads(&state, body, move |state, body| {
            evaluate_hook(
                state,
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
    let answer = loop {
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
                    .map(|caller| caller.issuer.clone());
                let (fetched, pages_held) =
                    fetch_missing(&state, service, plan, issuer.as_deref()).await;
                held.push(pages_held);
                let service_id = service_id.clone();
                (body, step) = off_the_answering_threads(&state, body, move |state, body| {
                    evaluate_hook(
                        state,
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
    note_for_access_log(&request, answer.note);
    let response = respond(&answer.response)?;
    let service = requested_service(&state, &request)?;
    record_cards(
        &state,
        &service.id,
        &answer.hook_instance,
        answer.patient_id.as_deref(),
        &answer.response,
        arrived,
    )
    .await;
    Ok(response)
}

/// Where a hook call's synchronous part ends: with the answer, or with
/// what must be fetched from the EHR's FHIR server first.
enum Step {
    Answered(Answer),
    Fetch(FetchPlan),
}

struct Answer {
    response: CdsResponse,
    /// For the access-log line.
    note: String,
    hook_instance: String,
    patient_id: Option<String>,
}

/// The prefetch keys to fetch and what fetching them needs.
struct FetchPlan {
    keys: Vec<String>,
    /// `Medication/<id>` referenced by orders but not included.
    medications: Vec<String>,
    /// What an earlier round fetched, kept for the next pass.
    already: Vec<(String, Fetched)>,
    server: String,
    token: Option<String>,
    context_values: std::collections::BTreeMap<String, String>,
    hook_instance: String,
}

/// Runs `work` on the body: inline when it is small, else on the blocking
/// pool, at most one large evaluation per core at a time, so that a huge
/// record never holds up the threads that answer other requests (/healthz
/// among them). Gives the body back for a second step.
async fn off_the_answering_threads<T: Send + 'static>(
    state: &web::Data<AppState>,
    body: Body,
    work: impl FnOnce(&AppState, &[u8]) -> T + Send + 'static,
) -> Result<(Body, T), ApiError> {
    if body.len() < state.request_limits.large_body_bytes {
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

/// Reads Bundle entries within the request's allowance: over it, a 413
/// naming the limit, whatever the reading made of the cut-off JSON.
fn within_entry_limit<T>(
    state: &AppState,
    read: impl FnOnce() -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let limit = state.request_limits.max_entries;
    let (result, hit) = crate::limits::with_entry_limit(limit, read);
    if hit {
        crate::limits::exceeded("max-entries");
        return Err(ApiError::over_limit(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request holds more than {limit} Bundle entries (--max-entries)"),
        ));
    }
    result
}

/// Which reading of the body this is.
enum Pass {
    /// The first: deviations are recorded, and keys to fetch end the pass.
    First { missing_content_type: bool },
    /// After fetching what the EHR did not send; `medications_fetched`: the
    /// referenced Medications were looked for too (no further round).
    Fetched {
        fetched: Vec<(String, Fetched)>,
        medications_fetched: bool,
    },
}

/// The synchronous part of a hook call: parse, check, (with what was
/// fetched) resolve the record and run the engine.
fn evaluate_hook(
    state: &AppState,
    service_id: &str,
    body: &[u8],
    pass: Pass,
    arrived: chrono::DateTime<Utc>,
) -> Result<Step, ApiError> {
    let service = state
        .catalog
        .get(service_id)
        .ok_or_else(|| ApiError::internal("the service disappeared"))?;
    within_entry_limit(state, || {
        let mut hook_request = parse_hook_request_in(body, &state.schemas, state.conformance)
            .map_err(ApiError::bad_request)?;
        if let Pass::First {
            missing_content_type,
        } = pass
        {
            if missing_content_type {
                hook_request.deviations.push(Deviation {
                    member: "Content-Type",
                    pointer: String::new(),
                    problem: "no Content-Type header; the body was read as application/json".into(),
                });
            }
            record_deviations(&hook_request);
        }
        if hook_request.hook != service.hook.as_str() {
            return Err(ApiError::invalid(
                "/hook",
                format!(
                    "service '{}' answers the {} hook, not '{}'",
                    service.id, service.hook, hook_request.hook
                ),
            ));
        }
        if service.hook.is_order_hook() {
            crate::protocol::drafts::check(
                hook_request.context.draft_orders,
                &hook_request.context.selections,
            )
            .map_err(ApiError::bad_request)?;
        }
        let (fetched, medications_fetched) = match pass {
            Pass::Fetched {
                fetched,
                medications_fetched,
            } => (fetched, medications_fetched),
            Pass::First { .. } => {
                let keys = prefetch::keys_to_fetch(
                    service,
                    &hook_request.prefetch,
                    &hook_request.context_values,
                );
                // Taken only when there is something to fetch: the server
                // may still serve referenced Medications below.
                match hook_request.fhir_server.take_if(|_| !keys.is_empty()) {
                    Some(server) => {
                        return Ok(Step::Fetch(FetchPlan {
                            keys,
                            medications: Vec::new(),
                            already: Vec::new(),
                            server,
                            token: hook_request
                                .fhir_authorization
                                .take()
                                .map(|a| a.access_token),
                            context_values: std::mem::take(&mut hook_request.context_values),
                            hook_instance: std::mem::take(&mut hook_request.hook_instance),
                        }))
                    }
                    None => (Vec::new(), false),
                }
            }
        };
        let mut record = prefetch::resolve(
            service,
            std::mem::take(&mut hook_request.prefetch),
            &fetched,
            &hook_request.context_values,
        )
        .map_err(|unsatisfied| {
            ApiError::precondition_failed(
                unsatisfied
                    .keys
                    .into_iter()
                    .map(|(key, reason)| {
                        Issue::error(
                            "incomplete",
                            format!("required prefetch '{key}' is missing: {reason}"),
                            Some(format!("/prefetch/{key}")),
                        )
                    })
                    .collect(),
            )
        })?;
        record.keep_patient(hook_request.context.patient_id.as_deref());
        warn_of_other_patients(&record, &escape_for_log(&hook_request.hook_instance, 100));
        // A draft may reference a Medication fetched in an earlier round.
        let medication_pages = fetched
            .iter()
            .filter(|(key, _)| key.starts_with("Medication/"))
            .filter_map(|(_, r)| r.as_ref().ok());
        let drafts = match hook_request.context.draft_orders {
            Some(raw) => record_from(
                std::iter::once(raw.get())
                    .chain(medication_pages.flat_map(|p| p.documents.iter().map(String::as_str))),
            ),
            None => record_from([]),
        };
        // Prefetch templates carry no `_include` (outside the query subset
        // CDS Hooks recommends): a medicine an order references but nobody
        // included is fetched by id, once, from a fhirServer.
        if !medications_fetched && hook_request.fhir_server.is_some() {
            let mut wanted = record.unresolved_medications();
            wanted.extend(drafts.unresolved_medications());
            wanted.sort();
            wanted.dedup();
            wanted.truncate(crate::record::MAX_MEDICATION_FETCHES);
            if !wanted.is_empty() {
                drop(drafts);
                drop(record);
                return Ok(Step::Fetch(FetchPlan {
                    keys: Vec::new(),
                    medications: wanted,
                    already: fetched,
                    server: hook_request.fhir_server.take().unwrap_or_default(),
                    token: hook_request
                        .fhir_authorization
                        .take()
                        .map(|a| a.access_token),
                    context_values: std::mem::take(&mut hook_request.context_values),
                    hook_instance: std::mem::take(&mut hook_request.hook_instance),
                }));
            }
        }
        let drafts = drafts.medications;
        let note = format!(
            "hook {} instance {} patient {}: {} resources read, {} malformed skipped, {} duplicates, {} other types, {} another patient's",
            service.id,
            escape_for_log(&hook_request.hook_instance, 100),
            escape_for_log(hook_request.context.patient_id.as_deref().unwrap_or("-"), 100),
            record.stats.read,
            record.stats.malformed,
            record.stats.duplicates,
            record.stats.other_types,
            record.stats.other_patient
        );
        let response = state.engine.run(&Evaluation {
            hook: service.hook,
            record: &record,
            draft_orders: &drafts,
            selections: &hook_request.context.selections,
            encounter_id: hook_request.context.encounter_id.as_deref(),
            patient_id: hook_request.context.patient_id.as_deref(),
            now: arrived,
        });
        Ok(Step::Answered(Answer {
            response,
            note,
            hook_instance: hook_request.hook_instance,
            patient_id: hook_request.context.patient_id,
        }))
    })
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

/// Each tolerated defect: a warning naming the member and its pointer, and
/// `request_deviations_total{member}` (a fixed set of member names).
fn record_deviations(request: &HookRequest) {
    for deviation in &request.deviations {
        metrics::counter!("request_deviations_total", "member" => deviation.member).increment(1);
        log::warn!(
            "hook {}: tolerated deviation in {} at '{}': {}",
            escape_for_log(&request.hook_instance, 100),
            deviation.member,
            escape_for_log(&deviation.pointer, 100),
            escape_for_log(&deviation.problem, 300)
        );
    }
}

/// Fetches, from the EHR's FHIR server, the prefetch keys it did not send.
async fn fetch_missing(
    state: &AppState,
    service: &ServiceDefinition,
    plan: FetchPlan,
    issuer: Option<&str>,
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
    let server = match state.fetcher.check_server(&server, issuer).await {
        Ok(server) => server,
        Err(error) => {
            metrics::counter!("fhir_fetch_errors_total", "reason" => error.kind()).increment(1);
            log::warn!("hook {hook_instance}: not fetching {keys:?} {medications:?}: {error}");
            results.extend(prefetch::all_failed(&keys, error.clone()));
            results.extend(prefetch::all_failed(&medications, error));
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
        match template::fill(&service.prefetch[&key], &context_values) {
            Ok(query) => queries.push((key, query)),
            Err(why) => failed.push((key, Err(FetchError::Template(why)))),
        }
    }
    let started = std::time::Instant::now();
    let (fetched, held) = state
        .fetcher
        .fetch_all(&server, token.as_deref(), queries)
        .await;
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
            .map_err(|e: String| ApiError::invalid("hook", e))?,
        None => Hook::PatientView,
    };
    let body = read_json_body(&request, payload, &state).await?;
    let now = Utc::now();
    let (_, answer) = off_the_answering_threads(&state, body, move |state, body| {
        analyze_bundle(state, hook, body, now)
    })
    .await?;
    let answer = answer?;
    note_for_access_log(&request, answer.note);
    let response = respond(&answer.response)?;
    // Cards from /analyze can receive feedback too, under the hook's service.
    if let Some(service) = state.catalog.for_hook(hook) {
        let patient = answer
            .patient_id
            .as_deref()
            .and_then(|r| r.strip_prefix("Patient/"));
        record_cards(
            &state,
            &service.id,
            &answer.hook_instance,
            patient,
            &answer.response,
            now,
        )
        .await;
    }
    Ok(response)
}

fn analyze_bundle(
    state: &AppState,
    hook: Hook,
    body: &[u8],
    now: chrono::DateTime<Utc>,
) -> Result<Answer, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::invalid("/", format!("the body is not UTF-8: {e}")))?;
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(ApiError::bad_request(vec![json_syntax_issue(&error)]));
    }
    if crate::fhir::resource_type_of(text) != Some("Bundle") {
        return Err(ApiError::invalid(
            "/resourceType",
            "the body must be a FHIR Bundle (resourceType \"Bundle\")",
        ));
    }
    within_entry_limit(state, || {
        let mut builder = RecordBuilder::new();
        if builder.add_json(text) != Payload::Data {
            return Err(ApiError::invalid(
                "/",
                "the body is not a readable FHIR Bundle",
            ));
        }
        let mut record = builder.finish();
        record.keep_patient(None);
        let analysis = format!("analyze-{}", uuid::Uuid::new_v4());
        warn_of_other_patients(&record, &analysis);
        let drafts = split_drafts(&mut record, hook);
        let patient_id = record.patient_reference().map(str::to_owned);
        let note = format!(
            "analyze {hook} for {}: {} resources read, {} malformed skipped, {} another patient's",
            patient_id.as_deref().unwrap_or("no patient"),
            record.stats.read,
            record.stats.malformed,
            record.stats.other_patient
        );
        let response = state.engine.run(&Evaluation {
            hook,
            record: &record,
            draft_orders: &drafts,
            selections: &[],
            encounter_id: None,
            patient_id: None,
            now,
        });
        Ok(Answer {
            response,
            note,
            hook_instance: analysis,
            patient_id,
        })
    })
}

/// Another patient's resources in a request are an EHR fault (a prefetch
/// query without its patient filter, say): worth an alert, though the
/// record has already dropped them.
fn warn_of_other_patients(record: &PatientRecord, request: &str) {
    let count = record.stats.other_patient;
    if count > 0 {
        metrics::counter!("other_patient_resources_total").increment(count as u64);
        log::warn!("{request}: {count} resource(s) of another patient skipped");
    }
}

/// Queues the cards for the store and counts them.
async fn record_cards(
    state: &AppState,
    service_id: &str,
    hook_instance: &str,
    patient_id: Option<&str>,
    response: &CdsResponse,
    issued_at: chrono::DateTime<Utc>,
) {
    let cards = response
        .cards
        .iter()
        .map(|card| {
            metrics::counter!("cds_cards_total", "service" => service_id.to_owned(), "card_type" => card.source.topic.code.clone())
                .increment(1);
            IssuedCard {
                uuid: card.uuid,
                service_id: service_id.to_owned(),
                hook_instance: hook_instance.to_owned(),
                card_type: card.source.topic.code.clone(),
                finding_codes: card.extension.cramp_cds.findings.iter().map(|f| f.code.clone()).collect(),
                suggestion_uuids: card.suggestions.iter().map(|s| s.uuid).collect(),
                patient_id: patient_id.map(str::to_owned),
                issued_at,
            }
        })
        .collect();
    state.store.record_cards(cards).await;
}

/// The answer, serialised straight from the typed response. Its shape is
/// fixed by the types; that every answer meets our response schema is
/// checked by the tests (every answer of the HTTP suites, every clinical
/// scenario, and cards from generated records), not by each request.
fn respond(response: &CdsResponse) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_vec(response)
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

async fn not_allowed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed(format!(
        "{} is not allowed on {}",
        request.method(),
        request.path()
    )))
}
