//! Logs and metrics. Every log line written while a request is handled
//! carries its request id; logs are text or JSON lines. Metrics are kept by
//! the `metrics` facade and rendered in Prometheus text format.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use clap::ValueEnum;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

tokio::task_local! {
    static REQUEST_ID: String;
}

const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the logger: RUST_LOG filters (default info).
pub fn init_logging(format: LogFormat) {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Text => builder.format(|out, record| {
            let request = current_request_id().map(|id| format!(" [{id}]")).unwrap_or_default();
            writeln!(
                out,
                "{} {:<5} {}{request} {}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                record.level(),
                record.target(),
                record.args()
            )
        }),
        LogFormat::Json => builder.format(|out, record| {
            let line = serde_json::json!({
                "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "level": record.level().as_str(),
                "target": record.target(),
                "request_id": current_request_id(),
                "message": record.args().to_string(),
            });
            writeln!(out, "{line}")
        }),
    };
    let _ = builder.try_init();
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// How often histogram samples are folded into their buckets.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The process-wide metrics recorder (installed once, shared by every app
/// in the process, as tests start several).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0];
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
            .expect("static buckets are valid")
            .install_recorder()
            .expect("the metrics recorder is installed once");
        // The recorder keeps every histogram sample until upkeep folds it
        // into the buckets, which it does on a scrape and nowhere else:
        // unscraped, memory grew with every request (~50 MB in 5 minutes
        // of load).
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(METRICS_UPKEEP);
                upkeep.run_upkeep();
            })
            .expect("a thread for metrics upkeep");
        handle
    })
}

/// Gives every request an id (the caller's X-Request-Id when it is sane),
/// scopes the handler's log lines with it, returns it, and records the
/// request count and latency by route and status.
pub async fn observe(request: ServiceRequest, next: Next<impl MessageBody + 'static>) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let mut response = REQUEST_ID.scope(id.clone(), next.call(request)).await?;
    // Labels are read after routing: the matched route, and the service only
    // when the route was declared for it (never an id the caller typed).
    let served = response.request();
    let route = served.match_pattern().unwrap_or_else(|| "unmatched".into());
    let service = served.app_data::<crate::http::DeclaredService>().map_or_else(|| "-".to_owned(), |s| s.0.clone());
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "service" => service.clone(), "method" => method.clone(), "status" => status.clone())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "service" => service, "method" => method, "status" => status)
        .record(started.elapsed().as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}
