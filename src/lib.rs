//! cramp-cds: a CDS Hooks 2.0 service for leg cramps.
//!
//! Data flows one way: an HTTP request ([`http`]) is parsed and validated
//! ([`protocol`], [`validation`]), its prefetch becomes a patient record
//! ([`prefetch`], [`record`], [`fhir`]), the rules ([`rules`]) read the record
//! with the knowledge base ([`knowledge`]) and return findings, and
//! [`cards`] renders them. [`engine`] is that pipeline.

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
