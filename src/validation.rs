//! The project's JSON Schemas for CDS Hooks 2.0 (schemas/), embedded in the
//! binary, compiled once at start-up and served for clients to read.

use include_dir::{include_dir, Dir};
use jsonschema::error::ValidationErrorKind;
use jsonschema::{Registry, Validator};
use serde_json::Value;

use crate::fhir::outcome::Issue;

static SCHEMA_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/schemas");

/// At most this many schema errors are reported for one document.
pub const MAX_ISSUES: usize = 20;

pub struct Schemas {
    request: Validator,
    response: Validator,
    feedback: Validator,
    discovery: Validator,
}

/// A built-in schema that does not compile: a build defect, caught at
/// start-up (and by every test that starts the service).
#[derive(Debug, thiserror::Error)]
#[error("schemas/{file}: {why}")]
pub struct SchemaError {
    pub file: String,
    pub why: String,
}

impl SchemaError {
    fn new(file: &str, why: impl std::fmt::Display) -> Self {
        Self {
            file: file.to_owned(),
            why: why.to_string(),
        }
    }
}

impl Schemas {
    /// Compiles every schema against one in-memory registry (no network, no
    /// file system): a broken schema stops start-up, not a request.
    pub fn compile() -> Result<Self, SchemaError> {
        let mut documents = Vec::new();
        for file in SCHEMA_DIR
            .files()
            .filter(|f| f.path().to_string_lossy().ends_with(".schema.json"))
        {
            let name = file.path().display().to_string();
            let text = file
                .contents_utf8()
                .ok_or_else(|| SchemaError::new(&name, "not UTF-8"))?;
            let document: Value =
                serde_json::from_str(text).map_err(|e| SchemaError::new(&name, e))?;
            let id = document["$id"]
                .as_str()
                .ok_or_else(|| SchemaError::new(&name, "no $id"))?
                .to_owned();
            documents.push((name, id, document));
        }
        let registry = Registry::new()
            .extend(
                documents
                    .iter()
                    .map(|(_, id, doc)| (id.clone(), doc.clone())),
            )
            .and_then(|builder| builder.prepare())
            .map_err(|e| SchemaError::new("the schema registry", e))?;
        let build = |file: &str| -> Result<Validator, SchemaError> {
            let (_, _, document) = documents
                .iter()
                .find(|(name, _, _)| name == file)
                .ok_or_else(|| SchemaError::new(file, "missing"))?;
            jsonschema::draft202012::options()
                .with_registry(&registry)
                .should_validate_formats(true)
                // The `regex` engine: our patterns need no look-around, and it
                // matches in linear time without fancy-regex's wrapper.
                .with_pattern_options(jsonschema::PatternOptions::regex())
                .offline()
                .build(document)
                .map_err(|e| SchemaError::new(file, e))
        };
        Ok(Self {
            request: build("request.schema.json")?,
            response: build("response.schema.json")?,
            feedback: build("feedback.schema.json")?,
            discovery: build("discovery.schema.json")?,
        })
    }

    pub fn check_request(&self, document: &Value) -> Vec<Issue> {
        issues(&self.request, document)
    }

    pub fn check_response(&self, document: &Value) -> Vec<Issue> {
        issues(&self.response, document)
    }

    pub fn check_feedback(&self, document: &Value) -> Vec<Issue> {
        issues(&self.feedback, document)
    }

    pub fn check_discovery(&self, document: &Value) -> Vec<Issue> {
        issues(&self.discovery, document)
    }

    /// A published schema or OpenAPI file by name, for GET /schemas/{file}.
    pub fn published(file: &str) -> Option<&'static str> {
        SCHEMA_DIR.get_file(file).and_then(|f| f.contents_utf8())
    }
}

fn issues(validator: &Validator, document: &Value) -> Vec<Issue> {
    // The yes/no check is several times cheaper than collecting errors.
    if validator.is_valid(document) {
        return Vec::new();
    }
    validator
        .iter_errors(document)
        .take(MAX_ISSUES)
        .map(|error| {
            let path = error.instance_path().as_str().to_owned();
            match error.kind() {
                ValidationErrorKind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    Issue::error(
                        "required",
                        format!("missing required member '{name}'"),
                        Some(format!("{path}/{name}")),
                    )
                }
                _ => Issue::error(
                    "invalid",
                    without_long_value(&error.to_string(), &error.instance().to_string()),
                    Some(if path.is_empty() { "/".into() } else { path }),
                ),
            }
        })
        .collect()
}

/// Schema messages start with the offending value: a long one is cut to
/// its start, so the reason after it is kept ("… is not of type").
fn without_long_value(message: &str, value: &str) -> String {
    const VALUE_CHARS: usize = 60;
    match message.strip_prefix(value) {
        Some(reason) if value.chars().count() > VALUE_CHARS => {
            let start: String = value.chars().take(VALUE_CHARS).collect();
            clip(&format!("{start}…{reason}"))
        }
        _ => clip(message),
    }
}

/// Schema messages quote the offending value; a huge value is not echoed.
fn clip(message: &str) -> String {
    const LIMIT: usize = 300;
    if message.len() <= LIMIT {
        return message.to_owned();
    }
    let mut end = LIMIT;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_cut_and_the_reason_kept() {
        let value = format!("\"{}\"", "y".repeat(400));
        let message = format!("{value} is longer than 256 characters");
        let said = without_long_value(&message, &value);
        assert!(said.ends_with("is longer than 256 characters"), "{said}");
        assert!(said.chars().count() < 100, "{said}");
        assert_eq!(
            without_long_value("5 is not of type \"string\"", "5"),
            "5 is not of type \"string\""
        );
    }
}
