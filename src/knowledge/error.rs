//! Why a knowledge base did not load: each error names the file and, for a
//! broken reference, the id that names nothing, so an author can fix it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("knowledge ({origin}): {file} is missing")]
    Missing { origin: String, file: String },
    #[error("knowledge ({origin}): {file}: {error}")]
    Parse {
        origin: String,
        file: String,
        #[source]
        error: serde_json::Error,
    },
    #[error("knowledge directory {}: {error}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// An id cited in one file that sources.json does not define.
    #[error("{file}: '{owner}' cites unknown source '{id}'")]
    UnknownSource {
        file: String,
        owner: String,
        id: String,
    },
    /// A finding code that findings.json does not define.
    #[error("{file}: '{owner}' names unknown finding '{id}'")]
    UnknownFinding {
        file: String,
        owner: String,
        id: String,
    },
    /// A text key (a statement, an order, a template placeholder) named in
    /// one place and defined nowhere it is looked for.
    #[error("{file}: '{owner}' names unknown {kind} '{key}'")]
    UnknownText {
        file: String,
        owner: String,
        kind: &'static str,
        key: String,
    },
    /// Anything else a file gets wrong, in the author's terms.
    #[error("{file}: {problem}")]
    Invalid { file: String, problem: String },
}

impl KnowledgeError {
    pub(crate) fn invalid(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            file: file.into(),
            problem: problem.into(),
        }
    }

    /// The file at fault.
    pub fn file(&self) -> Option<&str> {
        match self {
            Self::Read { .. } => None,
            Self::Missing { file, .. }
            | Self::Parse { file, .. }
            | Self::UnknownSource { file, .. }
            | Self::UnknownFinding { file, .. }
            | Self::UnknownText { file, .. }
            | Self::Invalid { file, .. } => Some(file),
        }
    }
}
