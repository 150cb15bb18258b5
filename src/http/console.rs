//! The tester console: a page served from assets embedded in the binary (no
//! CDN, nothing fetched at run time), and the example patients it offers.
//! Examples are written as of a fixed day; every date in them is moved
//! forward to today when served, so they never go stale.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{Duration, NaiveDate, Utc};
use include_dir::{include_dir, Dir};
use serde_json::Value;

use super::errors::ApiError;
use super::routes::only;

static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/http/console");
static EXAMPLES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/cds-hooks/examples");

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(only("/", web::get().to(index)))
        .service(only("/console/{file}", web::get().to(asset)))
        .service(only("/examples", web::get().to(example_index)))
        .service(only("/examples/{path:.+}", web::get().to(example)));
}

/// The console and the examples hold no patient data: open even with
/// authentication on (the API calls the page makes are not).
pub fn is_public(path: &str) -> bool {
    path == "/"
        || path.starts_with("/console/")
        || path == "/examples"
        || path.starts_with("/examples/")
}

async fn index() -> Result<HttpResponse, ApiError> {
    asset(web::Path::from("index.html".to_owned())).await
}

async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let file = ASSETS
        .get_file(&name)
        .filter(|_| !name.contains('/'))
        .ok_or_else(|| ApiError::not_found(format!("no console file '{name}'")))?;
    let content_type = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(file.contents()))
}

fn example_json(path: &str) -> Result<Value, ApiError> {
    let file = EXAMPLES
        .get_file(path)
        .filter(|_| path.ends_with(".json") && !path.contains(".."))
        .ok_or_else(|| ApiError::not_found(format!("no example '{path}'")))?;
    serde_json::from_slice(file.contents())
        .map_err(|e| ApiError::internal(format!("example {path}: {e}")))
}

async fn example_index() -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(example_json("index.json")?))
}

async fn example(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let index = example_json("index.json")?;
    let as_of = index["asOf"]
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let mut document = example_json(&path)?;
    if let Some(as_of) = as_of {
        shift_dates(&mut document, Utc::now().date_naive() - as_of);
    }
    Ok(HttpResponse::Ok()
        .content_type("application/fhir+json")
        .json(document))
}

/// Moves every FHIR date or dateTime string by `by` (whole days), keeping
/// the rest of the string (time, offset) as it is.
pub fn shift_dates(value: &mut Value, by: Duration) {
    match value {
        Value::String(text) => {
            if let Some(shifted) = shift_date(text, by) {
                *text = shifted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| shift_dates(v, by)),
        Value::Object(members) => members.values_mut().for_each(|v| shift_dates(v, by)),
        _ => {}
    }
}

fn shift_date(text: &str, by: Duration) -> Option<String> {
    let bytes = text.as_bytes();
    let is_date = bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
        && (bytes.len() == 10 || bytes[10] == b'T');
    if !is_date {
        return None;
    }
    let date = NaiveDate::parse_from_str(&text[..10], "%Y-%m-%d").ok()? + by;
    Some(format!("{}{}", date.format("%Y-%m-%d"), &text[10..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_move_and_nothing_else_does() {
        let mut value = serde_json::json!({
            "birthDate": "1950-03-04", "recordedDate": "2026-11-18T09:30:00+01:00",
            "id": "2026-11-18-note", "code": "2026", "values": ["2026-02-28", 42]
        });
        shift_dates(&mut value, Duration::days(2));
        assert_eq!(value["birthDate"], "1950-03-06");
        assert_eq!(value["recordedDate"], "2026-11-20T09:30:00+01:00");
        assert_eq!(value["id"], "2026-11-18-note");
        assert_eq!(value["code"], "2026");
        assert_eq!(value["values"][0], "2026-03-02");
    }
}
