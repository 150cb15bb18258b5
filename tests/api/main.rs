//! HTTP tests: the real application on a random loopback port, spoken to
//! over HTTP with a real client.

mod analyze;
mod cli;
mod discovery;
mod errors;
mod helpers;
mod hooks;
mod published;
