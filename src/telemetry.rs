//! Logs and metrics. Every request gets one access-log line, with what its
//! handler noted (the hook, its instance, what was read); every log line
//! written while a request is handled carries its request id; logs are text
//! or JSON lines. Metrics are kept by the `metrics` facade and rendered in
//! Prometheus text format.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use clap::ValueEnum;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

tokio::task_local! {
    static REQUEST_ID: String;
}

const REQUEST_ID_HEADER: &str = "x-request-id";

/// The log target of the one line written per request.
const ACCESS_LOG: &str = "cramp_cds::access";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the logger: RUST_LOG filters (default info).
pub fn init_logging(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Text => builder.format(|out, record| {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let (level, target, message) = (record.level(), record.target(), record.args());
            REQUEST_ID
                .try_with(|id| writeln!(out, "{time} {level:<5} {target} [{id}] {message}"))
                .unwrap_or_else(|_| writeln!(out, "{time} {level:<5} {target} {message}"))
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
    builder.target(env_logger::Target::Pipe(Box::new(GatheredLines)));
    let logger = builder.build();
    let level = logger.filter();
    if log::set_boxed_logger(Box::new(BlockLogger(logger))).is_ok() {
        log::set_max_level(level);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // try_lock: the panic may have happened while this thread held it.
            if let Ok(mut lines) = GATHERED.try_lock() {
                write_block(&mut lines);
            }
            previous(info)
        }));
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(|| loop {
                std::thread::sleep(LOG_WRITE_INTERVAL);
                write_gathered_lines();
            })
            .expect("a thread for the log writer");
    }
}

/// Log lines are gathered and written to stderr in blocks: a write system
/// call per line was about 3% of the server's CPU at 4 KB with stderr a
/// file, and with stderr a pipe (a container's) 11-16%, as each write woke
/// the reader (docs/performance.md, "The access log in blocks"). Warnings and
/// errors are written at once (with the lines before them), and so is
/// everything at exit and on a panic; an info line waits at most this long.
const LOG_WRITE_INTERVAL: Duration = Duration::from_millis(20);

/// Gathered lines are written at once when they reach this size.
const LOG_BLOCK_BYTES: usize = 64 * 1024;

static GATHERED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Writes the gathered log lines to stderr. Called by the log writer's
/// clock, for a warning or an error, and at exit.
fn write_gathered_lines() {
    let mut lines = GATHERED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    write_block(&mut lines);
}

fn write_block(lines: &mut Vec<u8>) {
    if !lines.is_empty() {
        // Nowhere to report a failed write to stderr: the lines are dropped.
        let _ = std::io::stderr().lock().write_all(lines);
        lines.clear();
    }
}

/// env_logger's target: each formatted line is added to the gathered block.
struct GatheredLines;

impl Write for GatheredLines {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut lines = GATHERED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        lines.extend_from_slice(line);
        if lines.len() >= LOG_BLOCK_BYTES {
            write_block(&mut lines);
        }
        Ok(line.len())
    }

    /// env_logger flushes after every line: the block is written on its
    /// own clock instead.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// env_logger, with warnings and errors written at once.
struct BlockLogger(env_logger::Logger);

impl log::Log for BlockLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        // actix's HTTP/1 parser logs a client's malformed request (a bad
        // header, a 100 KB URL) as an ERROR: any client could fill the log
        // with ERROR lines and page whoever watches them. It is the
        // client's fault: an INFO line, counted.
        if record.level() == log::Level::Error && record.target().starts_with("actix_http::h1") {
            metrics::counter!("http_protocol_errors_total").increment(1);
            let demoted = format!("client protocol error: {}", record.args());
            self.0.log(
                &log::Record::builder()
                    .args(format_args!("{}", escape_for_log(&demoted, 300)))
                    .level(log::Level::Info)
                    .target(record.target())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
            return;
        }
        self.0.log(record);
        if record.level() <= log::Level::Warn && self.0.matches(record) {
            write_gathered_lines();
        }
    }

    fn flush(&self) {
        write_gathered_lines();
    }
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
        let seconds = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
        ];
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

/// What a handler adds to its request's access-log line: which hook, which
/// instance, how much of the record was read. Opaque ids only.
struct AccessNote(String);

/// Adds `note` to this request's access-log line.
pub fn note_for_access_log(request: &HttpRequest, note: String) {
    request.extensions_mut().insert(AccessNote(note));
}

/// Gives every request an id (the caller's X-Request-Id when it is sane),
/// scopes the handler's log lines with it, returns it, records the request
/// count and latency by route and status, and writes the request's one
/// access-log line (path without its query string, which may carry data).
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = method_label(request.method());
    let peer = request
        .peer_addr()
        .map_or_else(|| "-".to_owned(), |address| address.ip().to_string());
    // The caller's text: escaped and capped like every request-derived string.
    let path = escape_for_log(request.path(), 200);
    let started = Instant::now();
    let mut response = REQUEST_ID.scope(id.clone(), next.call(request)).await?;
    let elapsed = started.elapsed();
    // Labels are read after routing: the matched route, and the service only
    // when the route was declared for it (never an id the caller typed).
    let served = response.request();
    let route = served.match_pattern().unwrap_or_else(|| "unmatched".into());
    let service = served
        .app_data::<crate::protocol::discovery::DeclaredService>()
        .map_or_else(|| "-".to_owned(), |s| s.0.clone());
    let note = served
        .extensions_mut()
        .remove::<AccessNote>()
        .map(|note| note.0);
    let status = response.status().as_u16();
    let bytes = match response.response().body().size() {
        BodySize::None => "0".to_owned(),
        BodySize::Sized(length) => length.to_string(),
        BodySize::Stream => "-".to_owned(),
    };
    REQUEST_ID.sync_scope(id.clone(), || {
        let milliseconds = elapsed.as_secs_f64() * 1000.0;
        match &note {
            Some(note) => log::info!(target: ACCESS_LOG, "{peer} \"{method} {path}\" {status} {bytes} {milliseconds:.3}ms {note}"),
            None => log::info!(target: ACCESS_LOG, "{peer} \"{method} {path}\" {status} {bytes} {milliseconds:.3}ms"),
        }
    });
    let status = status.to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "service" => service.clone(), "method" => method, "status" => status.clone())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "service" => service, "method" => method, "status" => status)
        .record(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// The method as a label and in the log: HTTP's own methods by name, any
/// other (a client may send a 100 KB token) as "other", so a client can
/// neither make series without end nor flood the log with it.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// A request-derived string made safe for a text log line: control
/// characters (newlines included), quotes and backslashes escaped, and at
/// most `max` characters kept, so a caller can neither forge a line nor
/// flood the log.
pub fn escape_for_log(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 2);
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control()
                || matches!(
                    c,
                    // Line separators, and the invisible and direction
                    // marks that make a line display other than it reads.
                    '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
                        | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
                ) =>
            {
                out.extend(c.escape_unicode())
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_for_log;

    #[test]
    fn log_strings_stay_on_one_line_and_short() {
        assert_eq!(
            escape_for_log("a\nb\r\"c\\", 100),
            "a\\u{a}b\\u{d}\\\"c\\\\"
        );
        assert_eq!(escape_for_log("abcdef", 3), "abc…");
        assert!(!escape_for_log("x\u{2028}y\u{1b}[31m", 100)
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}'));
        // Bidi isolates and invisible characters would make a line read
        // other than it is.
        let escaped = escape_for_log(
            "abc\u{2067}\u{202e}FAKE\u{2069}\u{200b}\u{feff}\u{61c}",
            100,
        );
        assert_eq!(
            escaped.chars().filter(|c| !c.is_ascii()).count(),
            0,
            "{escaped}"
        );
    }

    #[test]
    fn methods_outside_http_s_own_are_one_label() {
        use actix_web::http::Method;
        assert_eq!(super::method_label(&Method::POST), "POST");
        let long = Method::from_bytes("X".repeat(20_000).as_bytes()).unwrap();
        assert_eq!(super::method_label(&long), "other");
    }
}
