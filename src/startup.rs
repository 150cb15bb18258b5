//! Building the application: knowledge, schemas and rules are loaded and
//! checked before the port opens, so a bad deployment fails at start-up.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, Logger};
use actix_web::{web, App, HttpServer};

use crate::config::{EngineSettings, ServeSettings};
use crate::engine::Engine;
use crate::http::{self, AppState};
use crate::knowledge::KnowledgeBase;
use crate::protocol::discovery::ServiceCatalog;
use crate::rules::RuleSettings;
use crate::validation::Schemas;

pub struct Application {
    port: u16,
    server: Server,
}

/// Loads the knowledge base (embedded or from a directory) and binds the rules.
pub fn build_engine(settings: &EngineSettings) -> Result<Engine, String> {
    let kb = match &settings.knowledge_dir {
        Some(dir) => KnowledgeBase::from_dir(dir)?,
        None => KnowledgeBase::embedded()?,
    };
    Engine::new(Arc::new(kb), RuleSettings { older_age_years: settings.older_age_years })
}

impl Application {
    pub fn build(settings: ServeSettings) -> Result<Self, String> {
        let listener = TcpListener::bind((settings.host, settings.port))
            .map_err(|e| format!("cannot listen on {}:{}: {e}", settings.host, settings.port))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let engine = build_engine(&settings.engine)?;
        log::info!("knowledge base loaded ({})", engine.knowledge().origin);
        let state = web::Data::new(AppState {
            catalog: ServiceCatalog::embedded(),
            schemas: Schemas::compile()?,
            engine,
            max_body_bytes: settings.max_body_bytes,
            public_base_url: settings.public_base_url(port),
        });
        let origins = settings.cors_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(Compress::default())
                .wrap(http::cors(&origins))
                .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
                .app_data(state.clone())
                .configure(http::configure)
        });
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener).map_err(|e| e.to_string())?;
        log::info!("cramp-cds listening on {}:{port}", settings.host);
        Ok(Self { port, server: server.run() })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
