//! The authentication gate in front of every endpoint when issuers are
//! configured. The audience is the exact URL called, under one of the
//! public base URLs. Failures: 401, a WWW-Authenticate header and an OperationOutcome
//! with no details; the reason goes to the log without the token.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};

use super::errors::FHIR_JSON;
use super::AppState;
use crate::fhir::outcome::OperationOutcome;

pub async fn require_jwt(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let Some(authenticator) = state.authenticator.as_ref().filter(|_| {
        !super::operations::is_probe(request.path())
            && !super::console::is_public(request.path())
            && !super::pages::is_public(request.path())
    }) else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let audiences: Vec<String> = state
        .public_base_urls
        .iter()
        .map(|base| format!("{base}{}", request.path()))
        .collect();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match authenticator
        .verify(authorization.as_deref(), &audiences, &state.store)
        .await
    {
        Ok(caller) => {
            log::debug!(
                "authenticated caller from {}",
                crate::telemetry::escape_for_log(&caller.issuer, 200)
            );
            // The handlers read the calling issuer (its bound FHIR servers).
            request.extensions_mut().insert(caller);
            next.call(request)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        }
        Err(failure) if failure.store_outage => {
            // Every other check passed; only the replay check could not be
            // made. The token is refused (fail closed), but as an outage the
            // EHR may retry, not as a bad token.
            metrics::counter!("auth_replay_store_outages_total").increment(1);
            log::warn!(
                "503 for {} {}: {failure}",
                request.method(),
                crate::telemetry::escape_for_log(request.path(), 200)
            );
            let response = HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
                .content_type(FHIR_JSON)
                .insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")))
                .json(OperationOutcome::error(
                    "transient",
                    "the token cannot be checked against replay now (the service's store does not answer); try again",
                ));
            Ok(request.into_response(response))
        }
        Err(failure) => {
            metrics::counter!("auth_failures_total").increment(1);
            log::warn!(
                "401 for {} {}: {failure}",
                request.method(),
                crate::telemetry::escape_for_log(request.path(), 200)
            );
            let challenge = if authorization.is_some() {
                "Bearer error=\"invalid_token\""
            } else {
                "Bearer"
            };
            let response = HttpResponse::build(StatusCode::UNAUTHORIZED)
                .content_type(FHIR_JSON)
                .insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                ))
                .json(OperationOutcome::error("login", "authentication failed"));
            Ok(request.into_response(response))
        }
    }
}
