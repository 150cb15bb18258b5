//! The framework's ceiling, run by the load harness beside cramp-cds
//! (tools/load/run.sh): a bare actix-web 4 server, built with the same
//! release profile and allocator, that does the least a hook service can.
//!
//! - `POST /read` reads the whole body and answers a fixed card;
//! - `POST /lex` also lexes the body as JSON (serde's `IgnoredAny`: every
//!   byte checked, nothing built) and answers the same card, or 400.
//!
//! The service cannot be faster than `/read`, and any service that checks
//! its input is JSON pays at least `/lex`: the gap between cramp-cds and
//! these is what its own work costs.
//!
//!   cargo run --release --example ceiling -- PORT
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::de::IgnoredAny;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Node baseline's answer (tools/load/baseline.mjs), byte for byte but
/// the label.
const CARD: &str = r#"{"cards":[{"uuid":"7c8d5b9e-0000-4000-8000-000000000000","summary":"A fixed card","indicator":"info","source":{"label":"ceiling"}}]}"#;

/// Bodies up to the service's own default limit are read whole.
const BODY_LIMIT: usize = 4 << 20;

fn card() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(CARD)
}

async fn read(body: web::Bytes) -> HttpResponse {
    // The body is read (the extractor waits for all of it), then dropped.
    std::hint::black_box(body.len());
    card()
}

async fn lex(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<IgnoredAny>(&body) {
        Ok(_) => card(),
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(18091);
    actix_web::rt::System::new().block_on(async move {
        // Workers: one per core, as cramp-cds defaults to.
        HttpServer::new(|| {
            App::new()
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .route("/read", web::post().to(read))
                .route("/lex", web::post().to(lex))
        })
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
