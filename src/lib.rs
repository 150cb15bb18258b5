//! cramp-cds: a CDS Hooks 2.0 service for leg cramps.
//!
//! Data flows one way: request -> patient record -> findings -> cards.
//! [`application`] owns that flow: a request is parsed and validated
//! ([`protocol`], [`validation`]), its prefetch (and what [`prefetch`]
//! fetches) becomes a patient record ([`record`], [`fhir`]), the rules
//! ([`rules`]) read it with the knowledge base ([`knowledge`]) and return
//! findings, and [`cards`] renders them ([`engine`]: rules then cards).
//! [`http`], [`cli`], the tests, benches and fuzz targets call
//! [`application`].

pub mod application;
pub mod auth;
pub mod cards;
pub mod cli;
pub mod config;
pub mod engine;
pub mod fhir;
pub mod http;
pub mod knowledge;
pub mod limits;
pub mod pages;
pub mod prefetch;
pub mod protocol;
pub mod record;
pub mod rules;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod validation;
