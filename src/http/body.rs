//! Reading a JSON request body: content type first (415), then the size
//! limit while streaming (413), so an oversized body is never buffered whole.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::errors::ApiError;

pub async fn read_json_body(request: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    check_content_type(request)?;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::too_large(limit));
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid("/", format!("the request body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn check_content_type(request: &HttpRequest) -> Result<(), ApiError> {
    let value = request.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(unreadable)"));
    let Some(value) = value else {
        return Err(ApiError::unsupported_media_type("(none)"));
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "application/fhir+json" => Ok(()),
        _ => Err(ApiError::unsupported_media_type(value)),
    }
}
