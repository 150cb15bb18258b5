//! HTTP tests: the real application on a random loopback port, spoken to
//! over HTTP with a real client.

mod analyze;
mod auth;
mod auth_hardening;
mod browser;
mod cli;
mod cors;
mod deploy;
mod discovery;
mod errors;
mod examples;
mod feedback;
mod fetch;
mod fhir_server;
mod guidance;
mod helpers;
mod hooks;
mod hostile;
mod knowledge;
mod limits;
mod medications;
mod merges;
mod outage;
mod postgres;
mod process;
mod published;
mod slow_fhir;
mod store_limits;
mod tolerance;
mod trust;
