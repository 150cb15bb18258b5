//! Reading a JSON request body: content type and encoding first (415), then
//! the body as it arrives, within the size limit (413), the time limit (408)
//! and the process-wide budget of body bytes in flight (503). Nothing is
//! reserved for the length a client declares: memory grows with the bytes
//! that actually arrive, and goes back to the budget when the request ends.

use std::ops::Deref;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::errors::ApiError;
use super::AppState;
use crate::limits::{self, ByteBudget, Held};

/// A request body, holding its share of the in-flight budget.
pub struct Body {
    bytes: web::BytesMut,
    _held: Held,
}

impl Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The body limits of [`AppState`].
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
    pub in_flight: ByteBudget,
}

pub async fn read_json_body(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Body, ApiError> {
    check_content_type(request)?;
    check_encoding(request)?;
    let body = &state.body_limits;
    let limit = body.max_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        limits::exceeded("max-body-bytes");
        return Err(ApiError::too_large(limit));
    }
    match tokio::time::timeout(body.timeout, read(payload, limit, &body.in_flight)).await {
        Ok(result) => result,
        Err(_) => {
            limits::exceeded("body-timeout-ms");
            Err(ApiError::timeout(format!(
                "the request body did not arrive within {} ms (--body-timeout-ms)",
                body.timeout.as_millis()
            )))
        }
    }
}

async fn read(
    mut payload: web::Payload,
    limit: usize,
    budget: &ByteBudget,
) -> Result<Body, ApiError> {
    let mut held = budget.hold_nothing();
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid("/", format!("the request body could not be read: {e}"))
        })?;
        if bytes.len() + chunk.len() > limit {
            limits::exceeded("max-body-bytes");
            return Err(ApiError::too_large(limit));
        }
        // The buffer may double as it grows: hold what it may take.
        let needed = (bytes.len() + chunk.len())
            .max(bytes.capacity())
            .saturating_sub(held.bytes());
        if !budget.grow(&mut held, needed) {
            limits::exceeded("max-body-bytes-in-flight");
            return Err(ApiError::busy(format!(
                "the service is receiving more request data than it holds at once ({} bytes, --max-body-bytes-in-flight); send it again shortly",
                budget.capacity()
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body { bytes, _held: held })
}

fn check_content_type(request: &HttpRequest) -> Result<(), ApiError> {
    let value = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(unreadable)"));
    let Some(value) = value else {
        return Err(ApiError::unsupported_media_type("(none)"));
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "application/fhir+json" => Ok(()),
        _ => Err(ApiError::unsupported_media_type(value)),
    }
}

/// A compressed body is refused, not decompressed: a small gzip body can
/// expand past every limit before it is read.
fn check_encoding(request: &HttpRequest) -> Result<(), ApiError> {
    for value in request.headers().get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().unwrap_or("(unreadable)");
        if !text
            .split(',')
            .all(|coding| coding.trim().eq_ignore_ascii_case("identity"))
        {
            return Err(ApiError::unsupported_encoding(text));
        }
    }
    Ok(())
}
