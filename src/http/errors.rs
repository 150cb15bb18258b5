//! Every non-2xx answer: a status and a FHIR OperationOutcome that says what
//! is wrong and where.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::fhir::outcome::{Issue, OperationOutcome};

pub const FHIR_JSON: &str = "application/fhir+json";

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    outcome: OperationOutcome,
    /// Seconds, for a Retry-After header (a busy service).
    retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, outcome: OperationOutcome) -> Self {
        Self {
            status,
            outcome,
            retry_after: None,
        }
    }

    pub fn bad_request(issues: Vec<Issue>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, OperationOutcome::new(issues))
    }

    pub fn invalid(pointer: &str, diagnostics: impl Into<String>) -> Self {
        Self::bad_request(vec![Issue::error(
            "invalid",
            diagnostics,
            Some(pointer.to_owned()),
        )])
    }

    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            OperationOutcome::error("not-found", diagnostics),
        )
    }

    pub fn method_not_allowed(diagnostics: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            OperationOutcome::error("not-supported", diagnostics),
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            OperationOutcome::error(
                "too-costly",
                format!(
                    "the request body is larger than the limit of {limit} bytes (--max-body-bytes)"
                ),
            ),
        )
    }

    /// A request over one of the service's limits (named in `diagnostics`).
    pub fn over_limit(status: StatusCode, diagnostics: impl Into<String>) -> Self {
        Self::new(status, OperationOutcome::error("too-costly", diagnostics))
    }

    pub fn timeout(diagnostics: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            OperationOutcome::error("timeout", diagnostics),
        )
    }

    /// The service is at a limit shared by all requests: try again soon.
    pub fn busy(diagnostics: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                OperationOutcome::error("throttled", diagnostics),
            )
        }
    }

    pub fn unsupported_encoding(found: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            OperationOutcome::error(
                "not-supported",
                format!("Content-Encoding '{found}' is not accepted: send the body uncompressed"),
            ),
        )
    }

    pub fn unsupported_media_type(found: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            OperationOutcome::error(
                "not-supported",
                format!(
                    "Content-Type must be application/json or application/fhir+json, not '{found}'"
                ),
            ),
        )
    }

    pub fn precondition_failed(issues: Vec<Issue>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            OperationOutcome::new(issues),
        )
    }

    pub fn unavailable(diagnostics: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            OperationOutcome::error("transient", diagnostics),
        )
    }

    pub fn internal(diagnostics: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            OperationOutcome::error("exception", diagnostics),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        response.content_type(FHIR_JSON).json(&self.outcome)
    }
}

impl From<crate::application::Refusal> for ApiError {
    fn from(refusal: crate::application::Refusal) -> Self {
        use crate::application::Refusal;
        match refusal {
            Refusal::Invalid(issues) => Self::bad_request(issues),
            Refusal::Unsatisfied(issues) => Self::precondition_failed(issues),
            Refusal::TooManyEntries { limit } => Self::over_limit(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request holds more than {limit} Bundle entries (--max-entries)"),
            ),
            Refusal::Internal(why) => Self::internal(why),
        }
    }
}
