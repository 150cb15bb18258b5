//! `cramp-cds evaluate`: the engine on a Bundle from a file or stdin.

use std::io::Read;

use chrono::Utc;

use crate::application;
use crate::cards::links::RenderSettings;
use crate::config::{EvaluateArgs, OutputFormat};
use crate::protocol::response::{CdsResponse, Indicator};
use crate::startup::{build_engine, StartupError};

/// Why `cramp-cds evaluate` printed no answer.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("{}: {error}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] StartupError),
    /// The Bundle is not one the engine can read (the refusal says why).
    #[error("{}: {refusal}", path.display())]
    Refused {
        path: std::path::PathBuf,
        refusal: String,
    },
    #[error("the answer: {0}")]
    Serialise(#[from] serde_json::Error),
}

pub fn evaluate(args: &EvaluateArgs) -> Result<String, EvaluateError> {
    let read_error = |error| EvaluateError::Read {
        path: args.file.clone(),
        error,
    };
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| EvaluateError::Read {
                path: "stdin".into(),
                error,
            })?;
        text
    } else {
        std::fs::read_to_string(&args.file).map_err(read_error)?
    };
    let render = args
        .public_base_url
        .iter()
        .map(|u| u.trim())
        .find(|u| !u.is_empty())
        .map(|u| RenderSettings {
            public_base_url: u.to_owned(),
        })
        .unwrap_or_default();
    let engine = build_engine(&args.engine, &render)?;
    // A file the user chose: no entry limit.
    let answer = application::analyze_bundle(
        &engine,
        usize::MAX,
        args.hook,
        text.as_bytes(),
        args.at.unwrap_or_else(Utc::now),
    )
    .map_err(|refusal| EvaluateError::Refused {
        path: args.file.clone(),
        refusal: refusal.to_string(),
    })?;
    let response = answer.response;
    Ok(match args.format {
        OutputFormat::Json => serde_json::to_string_pretty(&response)?,
        OutputFormat::Text => as_text(&response),
    })
}

fn as_text(response: &CdsResponse) -> String {
    if response.cards.is_empty() {
        return "No cards.\n".into();
    }
    let mut out = String::new();
    for card in &response.cards {
        let indicator = match card.indicator {
            Indicator::Info => "INFO",
            Indicator::Warning => "WARNING",
            Indicator::Critical => "CRITICAL",
        };
        out.push_str(&format!(
            "[{indicator}] {} ({})\n\n{}\n",
            card.summary, card.source.topic.code, card.detail
        ));
        for finding in &card.extension.cramp_cds.findings {
            out.push_str(&format!(
                "  finding {}: {}\n",
                finding.code,
                finding.evidence.join(", ")
            ));
        }
        for suggestion in &card.suggestions {
            let marker = if suggestion.is_recommended {
                " (recommended)"
            } else {
                ""
            };
            out.push_str(&format!("  suggestion: {}{marker}\n", suggestion.label));
        }
        out.push_str(&format!("{}\n", "-".repeat(72)));
    }
    out
}
