//! CDS Hooks feedback: what the clinician did with each card, and the
//! summary a CDS team reads to watch for alert fatigue.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::body::read_json_body;
use super::errors::ApiError;
use super::routes::only;
use super::routes::requested_service;
use super::AppState;
use crate::fhir::outcome::Issue;
use crate::protocol::discovery::DeclaredService;
use crate::protocol::request::json_syntax_issue;
use crate::store::{FeedbackEntry, Outcome, OverrideReason, StoreError};

/// A declared service's feedback endpoints, on literal paths.
pub fn configure_declared(config: &mut web::ServiceConfig, declared: &DeclaredService) {
    let base = format!("/cds-services/{}/feedback", declared.0);
    config
        .service(only(&base, web::post().to(post_feedback)).app_data(declared.clone()))
        .service(
            only(&format!("{base}/summary"), web::get().to(summary)).app_data(declared.clone()),
        );
}

/// Any other id: answered 404 by the handlers.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(only(
            "/cds-services/{id}/feedback",
            web::post().to(post_feedback),
        ))
        .service(only(
            "/cds-services/{id}/feedback/summary",
            web::get().to(summary),
        ));
}

#[derive(Deserialize)]
struct FeedbackDocument {
    feedback: Vec<WireEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEntry {
    card: String,
    outcome: String,
    #[serde(default)]
    accepted_suggestions: Vec<WireSuggestion>,
    override_reason: Option<WireOverride>,
    outcome_timestamp: String,
}

#[derive(Deserialize)]
struct WireSuggestion {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOverride {
    reason: Option<WireCoding>,
    user_comment: Option<String>,
}

#[derive(Deserialize)]
struct WireCoding {
    system: Option<String>,
    code: Option<String>,
    display: Option<String>,
}

async fn post_feedback(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service_id = &requested_service(&state, &request)?.id;
    let body = read_json_body(&request, payload, &state).await?;
    let document: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(vec![json_syntax_issue(&e)]))?;
    let limit = state.request_limits.max_feedback_entries;
    if document["feedback"]
        .as_array()
        .is_some_and(|entries| entries.len() > limit)
    {
        crate::limits::exceeded("max-feedback-entries");
        return Err(ApiError::over_limit(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("more than {limit} feedback entries in one request (--max-feedback-entries); send them in several"),
        ));
    }
    let issues = state.schemas.check_feedback(&document);
    if !issues.is_empty() {
        return Err(ApiError::bad_request(issues));
    }
    let wire: FeedbackDocument = serde_json::from_value(document)
        .map_err(|e| ApiError::invalid("/feedback", format!("unreadable feedback: {e}")))?;
    let entries = wire
        .feedback
        .into_iter()
        .enumerate()
        .map(|(i, entry)| to_entry(i, entry))
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes: Vec<Outcome> = entries.iter().map(|e| e.outcome).collect();
    match state.store.save_feedback(service_id, entries).await {
        Ok(()) => {
            for outcome in outcomes {
                metrics::counter!("cds_feedback_total", "service" => service_id.clone(), "outcome" => outcome.as_str()).increment(1);
            }
            Ok(HttpResponse::Ok().finish())
        }
        Err(StoreError::UnknownCard(card)) => Err(ApiError::not_found(format!(
            "service '{service_id}' issued no card {card}"
        ))),
        Err(StoreError::UnknownSuggestion(card, suggestion)) => Err(ApiError::invalid(
            "/feedback",
            format!("card {card} carried no suggestion {suggestion}"),
        )),
        Err(StoreError::Unavailable(reason)) => {
            log::error!("feedback for {service_id} not stored: {reason}");
            Err(ApiError::unavailable(
                "feedback cannot be stored right now; send it again later",
            ))
        }
    }
}

/// The longest override reason parts stored: a coding from a value set,
/// not a document. Longer ones are refused (400), never cut silently.
const MAX_REASON_SYSTEM_CHARS: usize = 256;
const MAX_REASON_CODE_CHARS: usize = 128;
const MAX_REASON_DISPLAY_CHARS: usize = 512;
/// How far an EHR's clock may run ahead of ours.
const MAX_CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

fn to_entry(index: usize, entry: WireEntry) -> Result<FeedbackEntry, ApiError> {
    let at = |member: &str| format!("/feedback/{index}/{member}");
    let card = Uuid::parse_str(&entry.card)
        .map_err(|_| ApiError::invalid(&at("card"), "card must be a card uuid"))?;
    let outcome = match entry.outcome.as_str() {
        "accepted" => Outcome::Accepted,
        "overridden" => Outcome::Overridden,
        other => {
            return Err(ApiError::invalid(
                &at("outcome"),
                format!("unknown outcome '{other}'"),
            ))
        }
    };
    let outcome_at = DateTime::parse_from_rfc3339(&entry.outcome_timestamp)
        .map_err(|e| ApiError::invalid(&at("outcomeTimestamp"), format!("not an instant: {e}")))?
        .with_timezone(&Utc);
    // The newest outcome wins, so one dated in the future would silence
    // every later real one: beyond the clocks' skew it is refused.
    if outcome_at > Utc::now() + MAX_CLOCK_SKEW {
        return Err(ApiError::invalid(
            &at("outcomeTimestamp"),
            format!(
                "is in the future (more than {} minutes past this server's clock)",
                MAX_CLOCK_SKEW.num_minutes()
            ),
        ));
    }
    let accepted_suggestions = entry
        .accepted_suggestions
        .iter()
        .enumerate()
        .map(|(j, s)| {
            Uuid::parse_str(&s.id).map_err(|_| {
                ApiError::bad_request(vec![Issue::error(
                    "invalid",
                    "a suggestion id must be the suggestion's uuid",
                    Some(at(&format!("acceptedSuggestions/{j}/id"))),
                )])
            })
        })
        .collect::<Result<_, _>>()?;
    let has_comment = entry
        .override_reason
        .as_ref()
        .and_then(|r| r.user_comment.as_deref())
        .is_some_and(|c| !c.trim().is_empty());
    if let Some(coding) = entry
        .override_reason
        .as_ref()
        .and_then(|r| r.reason.as_ref())
    {
        for (member, value, limit) in [
            ("system", &coding.system, MAX_REASON_SYSTEM_CHARS),
            ("code", &coding.code, MAX_REASON_CODE_CHARS),
            ("display", &coding.display, MAX_REASON_DISPLAY_CHARS),
        ] {
            if value
                .as_ref()
                .is_some_and(|text| text.chars().count() > limit)
            {
                crate::limits::exceeded("override-reason-length");
                return Err(ApiError::invalid(
                    &at(&format!("overrideReason/reason/{member}")),
                    format!("the override reason's {member} is longer than the {limit} characters stored"),
                ));
            }
        }
    }
    let override_reason = entry
        .override_reason
        .and_then(|r| r.reason)
        .map(|c| OverrideReason {
            system: c.system,
            code: c.code,
            display: c.display,
        });
    Ok(FeedbackEntry {
        card,
        outcome,
        accepted_suggestions,
        override_reason,
        has_comment,
        outcome_at,
    })
}

#[derive(Deserialize)]
struct Window {
    from: Option<String>,
    to: Option<String>,
}

/// GET /cds-services/{id}/feedback/summary?from=…&to=… (RFC 3339; the
/// last 30 days by default), for cards issued in that window.
async fn summary(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let service_id = &requested_service(&state, &request)?.id;
    let window = web::Query::<Window>::from_query(request.query_string())
        .map_err(|e| ApiError::invalid("from", format!("unreadable query string: {e}")))?;
    let instant = |name: &str, text: &Option<String>| -> Result<Option<DateTime<Utc>>, ApiError> {
        text.as_deref()
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        ApiError::invalid(name, format!("'{t}' is not an RFC 3339 instant: {e}"))
                    })
            })
            .transpose()
    };
    let to = instant("to", &window.to)?.unwrap_or_else(Utc::now);
    let from = instant("from", &window.from)?.unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ApiError::invalid("from", "from must be before to"));
    }
    match state.store.summary(service_id, from, to).await {
        Ok(summary) => Ok(HttpResponse::Ok().json(summary)),
        Err(error) => {
            log::error!("feedback summary for {service_id} failed: {error:?}");
            Err(ApiError::unavailable(
                "the feedback store is not reachable right now",
            ))
        }
    }
}
