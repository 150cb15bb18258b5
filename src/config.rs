//! Command line and environment: every setting has a flag, an environment
//! variable and an embedded default, so `cramp-cds` alone just runs.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::protocol::Hook;
use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(name = "cramp-cds", version, about = "CDS Hooks 2.0 decision support for leg cramps", long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, cramp-cds serves with these settings.
    #[command(flatten)]
    pub serve: ServeSettings,
}

// Parsed once at start-up: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the CDS Hooks endpoints (the default).
    Serve(ServeSettings),
    /// Evaluate a FHIR Bundle from a file (or - for stdin) and print the cards.
    Evaluate(EvaluateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address to listen on.
    #[arg(long, env = "CRAMP_CDS_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "CRAMP_CDS_PORT", default_value_t = 8080)]
    pub port: u16,
    /// The URLs clients use to reach the service, comma-separated (e.g.
    /// https://cds.example.org); each is a valid JWT audience, the first is
    /// published. Default: http://HOST:PORT (and http://localhost:PORT on
    /// loopback).
    #[arg(long, env = "CRAMP_CDS_PUBLIC_BASE_URL", value_delimiter = ',')]
    pub public_base_url: Vec<String>,
    /// Longest JWT lifetime accepted (exp - iat), in seconds, plus 60 s leeway.
    #[arg(long, env = "CRAMP_CDS_MAX_TOKEN_LIFETIME_SECS", default_value_t = crate::auth::DEFAULT_MAX_LIFETIME_SECONDS)]
    pub max_token_lifetime_secs: u64,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "CRAMP_CDS_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Browser origins allowed by CORS: `*` (any, without credentials) or a
    /// comma-separated list such as https://sandbox.cds-hooks.org. Default:
    /// `*` with authentication; without it, only the service's own origins.
    #[arg(long, env = "CRAMP_CDS_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CRAMP_CDS_WORKERS")]
    pub workers: Option<usize>,
    /// JSON file of trusted JWT issuers (see README). With at least one
    /// issuer every endpoint requires a valid Bearer JWT.
    #[arg(long, env = "CRAMP_CDS_ISSUERS")]
    pub issuers: Option<PathBuf>,
    /// Serve without authentication on a non-loopback address. Unsafe
    /// outside a closed test network.
    #[arg(long, env = "CRAMP_CDS_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Where cards and feedback are kept: sqlite://FILE (created if
    /// missing) or postgres://user:password@host/db.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://cramp-cds.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Key for the hash that stands for patient ids in the store. Default:
    /// a random key made once and kept in the database.
    #[arg(long, env = "CRAMP_CDS_PATIENT_HASH_KEY", hide_env_values = true)]
    pub patient_hash_key: Option<String>,
    /// Refuse (400, 415) defects in request members the rules do not read
    /// (hookInstance's format, userId, fhirAuthorization's other members, a
    /// missing Content-Type), for conformance testing. Default: answer, log
    /// a warning and count `request_deviations_total`.
    #[arg(long, env = "CRAMP_CDS_STRICT")]
    pub strict: bool,
    /// Log lines as text or JSON.
    #[arg(long, env = "CRAMP_CDS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds given to in-flight requests on shutdown (SIGTERM, Ctrl-C).
    #[arg(long, env = "CRAMP_CDS_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    #[command(flatten)]
    pub fhir: FhirSettings,
    #[command(flatten)]
    pub limits: LimitSettings,
    #[command(flatten)]
    pub engine: EngineSettings,
}

/// What requests, peers and clients may make the service spend. Each limit
/// answers clearly when it trips and counts it in `limit_exceeded_total`.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Open connections, all peers together (further ones wait in the
    /// listen backlog).
    #[arg(long, env = "CRAMP_CDS_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Open connections from one peer address; requests on connections
    /// beyond it get 429. Behind a load balancer every connection is the
    /// balancer's: set it to --max-connections there.
    #[arg(
        long,
        env = "CRAMP_CDS_MAX_CONNECTIONS_PER_PEER",
        default_value_t = 128
    )]
    pub max_connections_per_peer: usize,
    /// Time to receive a request's headers, in milliseconds.
    #[arg(long, env = "CRAMP_CDS_HEADER_TIMEOUT_MS", default_value_t = 5000)]
    pub header_timeout_ms: u64,
    /// Time to receive a request's whole body, in milliseconds (then 408).
    #[arg(long, env = "CRAMP_CDS_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_timeout_ms: u64,
    /// Request body bytes held by all requests together (then 503).
    #[arg(long, env = "CRAMP_CDS_MAX_BODY_BYTES_IN_FLIGHT", default_value_t = 128 * 1024 * 1024)]
    pub max_body_bytes_in_flight: usize,
    /// Bundle entries the request itself may hold: prefetch and draft orders
    /// (then 413). Pages fetched from the FHIR server fall under
    /// --fhir-max-entries instead.
    #[arg(long, env = "CRAMP_CDS_MAX_ENTRIES", default_value_t = 50_000)]
    pub max_entries: usize,
    /// Bodies from this size up are read and evaluated on a separate pool of
    /// threads (one per core), so that they never hold up other requests.
    #[arg(long, env = "CRAMP_CDS_LARGE_BODY_BYTES", default_value_t = 256 * 1024)]
    pub large_body_bytes: usize,
    /// Feedback entries in one feedback request (then 413).
    #[arg(long, env = "CRAMP_CDS_MAX_FEEDBACK_ENTRIES", default_value_t = 100)]
    pub max_feedback_entries: usize,
    /// Days cards and their feedback are kept; older ones are deleted in
    /// the background every hour.
    #[arg(long, env = "CRAMP_CDS_RETENTION_DAYS", default_value_t = 400)]
    pub retention_days: u32,
}

/// Fetching missing prefetch from the EHR's FHIR server.
#[derive(Debug, Clone, Args)]
pub struct FhirSettings {
    /// FHIR base URLs the service may send an EHR's token to, comma-separated
    /// (e.g. https://ehr.example.org/fhir), compared by scheme, host, port
    /// and path prefix; hosts listed here may be private addresses. `any`:
    /// any public http(s) server. Empty: any public server without
    /// authentication; with authentication, only servers bound to issuers.
    #[arg(
        long = "fhir-server-allow",
        env = "CRAMP_CDS_FHIR_SERVER_ALLOW",
        value_delimiter = ','
    )]
    pub allowed_servers: Vec<String>,
    /// Timeout of one FHIR request, in milliseconds.
    #[arg(long, env = "CRAMP_CDS_FHIR_TIMEOUT_MS", default_value_t = 1500)]
    pub fhir_timeout_ms: u64,
    /// Time for all FHIR fetches of one hook call together, in milliseconds.
    #[arg(long, env = "CRAMP_CDS_FHIR_DEADLINE_MS", default_value_t = 1800)]
    pub fhir_deadline_ms: u64,
    /// Bundle pages followed per prefetch key.
    #[arg(long, env = "CRAMP_CDS_FHIR_MAX_PAGES", default_value_t = 20)]
    pub fhir_max_pages: usize,
    /// Bytes one hook call may read from the FHIR server, all keys
    /// together; a key cut off keeps what was read and is reported
    /// incomplete.
    #[arg(long, env = "CRAMP_CDS_FHIR_MAX_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub fhir_max_bytes: usize,
    /// Bundle entries one hook call may read from the FHIR server, all keys
    /// together.
    #[arg(long, env = "CRAMP_CDS_FHIR_MAX_ENTRIES", default_value_t = 25_000)]
    pub fhir_max_entries: usize,
    /// Bytes of FHIR answers all hook calls together may hold.
    #[arg(long, env = "CRAMP_CDS_FHIR_MEMORY_BUDGET_BYTES", default_value_t = 128 * 1024 * 1024)]
    pub fhir_memory_budget_bytes: usize,
}

#[derive(Debug, Clone, Args)]
pub struct EngineSettings {
    /// Read the knowledge base from this directory (laid out like
    /// cds-hooks/knowledge/) instead of the copy built into the binary.
    #[arg(long, env = "CRAMP_CDS_KNOWLEDGE_DIR")]
    pub knowledge_dir: Option<PathBuf>,
    /// Age from which `older-age` is reported as a risk factor.
    #[arg(long, env = "CRAMP_CDS_OLDER_AGE_YEARS", default_value_t = 50)]
    pub older_age_years: u32,
}

#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// A FHIR R4 Bundle with one patient's resources; `-` reads stdin.
    pub file: PathBuf,
    /// The hook to evaluate as; for order hooks the Bundle's draft
    /// MedicationRequests are the orders.
    #[arg(long, default_value = "patient-view", value_parser = parse_hook)]
    pub hook: Hook,
    /// Output: the CDS Hooks response as JSON, or readable text.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    /// Evaluate as of this instant (RFC 3339) instead of now: the rules'
    /// windows (labs in 90 days, symptoms in 30, ...) count back from it.
    #[arg(long, value_parser = parse_instant)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The URL the service is reached by: the cards' links to the guidance
    /// pages and the handout sit under the first (default
    /// http://127.0.0.1:8080, where `cramp-cds` serves them).
    #[arg(long, env = "CRAMP_CDS_PUBLIC_BASE_URL", value_delimiter = ',')]
    pub public_base_url: Vec<String>,
    #[command(flatten)]
    pub engine: EngineSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Text,
}

fn parse_hook(text: &str) -> Result<Hook, crate::protocol::UnknownHook> {
    text.parse()
}

// A clap value parser: clap prints the message after the flag's name.
fn parse_instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 instant: {e}"))
}

impl ServeSettings {
    /// The defaults, as `cramp-cds serve` with no flags and no environment.
    pub fn defaults() -> Self {
        Cli::parse_from(["cramp-cds"]).serve
    }

    /// Every URL clients may call the service by (JWT audiences), the
    /// published one first.
    pub fn public_base_urls(&self, port: u16) -> Vec<String> {
        let configured: Vec<String> = self
            .public_base_url
            .iter()
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if !configured.is_empty() {
            return configured;
        }
        let own = match self.host {
            IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
            IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        };
        // A browser or an EHR on this machine may call it by name.
        if self.host.is_loopback() {
            vec![own, format!("http://localhost:{port}")]
        } else {
            vec![own]
        }
    }
}
