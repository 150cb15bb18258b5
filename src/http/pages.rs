//! The guidance pages and the patient handout (built at start-up by
//! [`crate::pages`]): public, since they hold no patient data, cacheable
//! (a strong ETag and an hour's max-age; the text changes only with a new
//! deployment), and sent with a Content Security Policy that allows the one
//! inline stylesheet and nothing else.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::errors::ApiError;
use super::routes::only;
use super::AppState;
use crate::pages::{Page, GUIDANCE_PREFIX, HANDOUT_PATH};

const CACHE_CONTROL: &str = "public, max-age=3600";

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(only(
            &format!("{GUIDANCE_PREFIX}{{topic}}"),
            web::get().to(guidance),
        ))
        .service(only(HANDOUT_PATH, web::get().to(handout)));
}

/// Open even with authentication on: no patient data, and an EHR opens
/// them in a browser that carries no token.
pub fn is_public(path: &str) -> bool {
    path == HANDOUT_PATH
        || path
            .strip_prefix(GUIDANCE_PREFIX)
            .is_some_and(|topic| !topic.is_empty() && !topic.contains('/'))
}

async fn guidance(
    state: web::Data<AppState>,
    request: HttpRequest,
    topic: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let topic = topic.into_inner();
    let page = state.pages.guidance(&topic).ok_or_else(|| {
        let mut known: Vec<&str> = state.pages.topics().collect();
        known.sort_unstable();
        ApiError::not_found(format!(
            "no guidance page '{topic}': the topics are {}",
            known.join(", ")
        ))
    })?;
    Ok(serve(&request, page, &state.pages.csp))
}

async fn handout(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    serve(&request, state.pages.handout(), &state.pages.csp)
}

fn serve(request: &HttpRequest, page: &Page, csp: &str) -> HttpResponse {
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t == page.etag)
        });
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, page.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if fresh {
        return response.finish();
    }
    response
        .content_type("text/html; charset=utf-8")
        .body(page.html.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pages_are_public() {
        assert!(is_public("/guidance/risk-factors"));
        assert!(is_public("/guidance/anything-else"));
        assert!(is_public("/handouts/leg-cramps"));
        assert!(!is_public("/guidance/"));
        assert!(!is_public("/guidance/a/b"));
        assert!(!is_public("/handouts/other"));
        assert!(!is_public("/cds-services"));
    }
}
