//! Building the application: knowledge, schemas and rules are loaded and
//! checked before the port opens, so a bad deployment fails at start-up.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::Compress;
use actix_web::{web, App, HttpServer};

use crate::auth::{issuers, Authenticator};
use crate::cards::links::RenderSettings;
use crate::config::{EngineSettings, ServeSettings};
use crate::engine::Engine;
use crate::http::{self, AppState};
use crate::knowledge::KnowledgeBase;
use crate::limits::ByteBudget;
use crate::prefetch::fetch::{FetchSettings, FhirFetcher};
use crate::prefetch::trust::{AllowList, ServerTrust};
use crate::protocol::discovery::ServiceCatalog;
use crate::protocol::request::Conformance;
use crate::rules::RuleSettings;
use crate::store::Store;
use crate::validation::Schemas;

/// How long start-up waits for the database before serving without it.
const STORE_STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// Loads the knowledge base (embedded or from a directory) and binds the rules.
/// Cards link the pages under `render.public_base_url`.
pub fn build_engine(
    settings: &EngineSettings,
    render: &RenderSettings,
) -> Result<Engine, StartupError> {
    let kb = match &settings.knowledge_dir {
        Some(dir) => KnowledgeBase::from_dir(dir),
        None => KnowledgeBase::embedded(),
    }
    .map_err(crate::engine::EngineError::from)?;
    Engine::with_render(
        Arc::new(kb),
        RuleSettings {
            older_age_years: settings.older_age_years,
        },
        render,
    )
    .map_err(StartupError::from)
}

/// Which FHIR servers may receive the EHRs' tokens: the allow-list and the
/// issuers' bindings. Key-set URLs the operator configured stay reachable
/// through the same client whatever they resolve to.
fn server_trust(
    settings: &ServeSettings,
    issuers: &[issuers::TrustedIssuer],
) -> Result<ServerTrust, StartupError> {
    let allow = AllowList::parse(&settings.fhir.allowed_servers)?;
    let bindings = issuers
        .iter()
        .map(|i| (i.key(), i.fhir_servers.clone()))
        .collect();
    let key_urls: Vec<String> = issuers
        .iter()
        .flat_map(|i| i.jwks_url.iter().chain(&i.allowed_jku).cloned())
        .collect();
    if allow.any {
        log::warn!("--fhir-server-allow any: the EHRs' access tokens may be sent to any public FHIR server a caller names");
    }
    Ok(ServerTrust::new(
        allow,
        bindings,
        !issuers.is_empty(),
        &key_urls,
    )?)
}

/// Why the service does not start: each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("refusing to serve {0} without authentication: configure trusted issuers (--issuers) or, on a closed test network only, pass --allow-unauthenticated")]
    Unauthenticated(std::net::IpAddr),
    #[error("--fhir-server-allow {0}")]
    AllowList(#[from] crate::prefetch::trust::PatternError),
    #[error(transparent)]
    NothingTrusted(#[from] crate::prefetch::trust::NothingTrusted),
    #[error(transparent)]
    Issuers(#[from] crate::auth::issuers::IssuersError),
    #[error("FHIR client: HTTP client: {0}")]
    FhirClient(#[source] reqwest::Error),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("store: {0}")]
    Store(#[from] crate::store::OpenError),
    #[error(transparent)]
    Schemas(#[from] crate::validation::SchemaError),
}

impl Application {
    pub async fn build(settings: ServeSettings) -> Result<Self, StartupError> {
        let listen = |source| StartupError::Listen {
            address: format!("{}:{}", settings.host, settings.port),
            source,
        };
        let listener = TcpListener::bind((settings.host, settings.port)).map_err(listen)?;
        let port = listener.local_addr().map_err(listen)?.port();
        let issuers = match &settings.issuers {
            Some(path) => issuers::load(path)?,
            None => Vec::new(),
        };
        if issuers.is_empty() {
            if !settings.host.is_loopback() && !settings.allow_unauthenticated {
                return Err(StartupError::Unauthenticated(settings.host));
            }
            if !settings.host.is_loopback() {
                log::warn!("!!! AUTHENTICATION IS OFF on {}: anyone who can reach this port can send patient data and read advice. Use --issuers outside a closed test network. !!!", settings.host);
            } else {
                log::info!("authentication is off (loopback only)");
            }
        } else {
            log::info!("authentication on: {} trusted issuer(s)", issuers.len());
        }
        let trust = server_trust(&settings, &issuers)?;
        let fetcher = FhirFetcher::new(
            FetchSettings {
                call_timeout: std::time::Duration::from_millis(settings.fhir.fhir_timeout_ms),
                deadline: std::time::Duration::from_millis(settings.fhir.fhir_deadline_ms),
                max_pages: settings.fhir.fhir_max_pages.max(1),
                max_bytes: settings.fhir.fhir_max_bytes,
                max_entries: settings.fhir.fhir_max_entries,
                memory: ByteBudget::new(settings.fhir.fhir_memory_budget_bytes),
            },
            trust,
        )
        .map_err(StartupError::FhirClient)?;
        let authenticator = (!issuers.is_empty()).then(|| {
            Authenticator::new(
                issuers,
                fetcher.client().clone(),
                settings.max_token_lifetime_secs,
            )
        });
        let public_base_urls = settings.public_base_urls(port);
        let engine = build_engine(
            &settings.engine,
            &RenderSettings {
                public_base_url: public_base_urls[0].clone(),
            },
        )?;
        log::info!("knowledge base loaded ({})", engine.knowledge().origin);
        let store = Store::open(
            &settings.database_url,
            settings.patient_hash_key.clone(),
            settings.limits.retention_days,
        )?;
        if !store.wait_until_ready(STORE_STARTUP_WAIT).await {
            log::error!("store ({}) not reachable within {STORE_STARTUP_WAIT:?}: serving without it until it is", store.description());
        }
        log::info!("store: {}", store.description());
        crate::telemetry::metrics_handle();
        let workers = settings
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let pages = crate::pages::Pages::build(engine.knowledge());
        let state = web::Data::new(AppState {
            catalog: ServiceCatalog::embedded(),
            schemas: Schemas::compile()?,
            engine,
            max_body_bytes: settings.max_body_bytes,
            body_limits: http::BodyLimits {
                max_bytes: settings.max_body_bytes,
                timeout: std::time::Duration::from_millis(settings.limits.body_timeout_ms),
                in_flight: ByteBudget::new(settings.limits.max_body_bytes_in_flight),
            },
            request_limits: http::RequestLimits {
                max_entries: settings.limits.max_entries,
                large_body_bytes: settings.limits.large_body_bytes,
                large_evaluations: Arc::new(tokio::sync::Semaphore::new(workers)),
                max_feedback_entries: settings.limits.max_feedback_entries,
            },
            public_base_urls,
            fetcher,
            authenticator,
            store,
            conformance: if settings.strict {
                Conformance::Strict
            } else {
                Conformance::Tolerant
            },
            pages,
        });
        let origins = http::cors_origins(
            &settings.cors_origins,
            state.authenticator.is_some(),
            &state.public_base_urls,
        );
        log::info!("CORS origins: {}", origins.join(", "));
        let allowed_origins = http::AllowedOrigins(origins.clone());
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(http::require_jwt))
                .wrap(Compress::default())
                .wrap(actix_web::middleware::from_fn(http::connection_guard))
                .wrap(actix_web::middleware::from_fn(crate::telemetry::observe))
                .wrap(http::cors(&origins))
                .wrap(actix_web::middleware::from_fn(http::cors_refusals))
                .app_data(state.clone())
                .app_data(allowed_origins.clone())
                .configure(|config| http::configure(config, &state.catalog))
        });
        let peers = http::PeerTable::new(
            settings.limits.max_connections_per_peer,
            settings.limits.max_connections,
            std::time::Duration::from_millis(settings.limits.header_timeout_ms),
        );
        server = server
            .workers(workers)
            // actix counts connections per worker.
            .max_connections(settings.limits.max_connections.div_ceil(workers).max(1))
            .client_request_timeout(std::time::Duration::from_millis(
                settings.limits.header_timeout_ms,
            ))
            .on_connect(move |connection, data| peers.on_connect(connection, data));
        server = server.shutdown_timeout(settings.shutdown_timeout_secs);
        let server = server.listen(listener).map_err(listen)?;
        log::info!("cramp-cds listening on {}:{port}", settings.host);
        Ok(Self {
            port,
            server: server.run(),
            state: app_state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until a shutdown signal (SIGTERM, SIGINT): in-flight requests
    /// finish, queued cards are written, and the store is closed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        log::info!("shutting down: closing the store");
        self.state.store.close().await;
        log::info!("stopped");
        result
    }
}
