//! The knowledge files, from the binary or from a directory.

use std::path::Path;

use include_dir::{include_dir, Dir};
use serde::de::DeserializeOwned;

use super::KnowledgeError;

static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/cds-hooks/knowledge");

/// The knowledge files by path relative to the knowledge root.
pub struct KnowledgeFiles {
    pub origin: String,
    files: Vec<(String, String)>,
}

impl KnowledgeFiles {
    pub fn embedded() -> Self {
        let mut files = Vec::new();
        collect_embedded(&EMBEDDED, &mut files);
        Self {
            origin: "embedded".into(),
            files,
        }
    }

    pub fn read_dir(root: &Path) -> Result<Self, KnowledgeError> {
        let mut files = Vec::new();
        read_tree(root, root, &mut files)?;
        Ok(Self {
            origin: root.display().to_string(),
            files,
        })
    }

    pub fn text(&self, name: &str) -> Result<&str, KnowledgeError> {
        self.files
            .iter()
            .find(|(path, _)| path == name)
            .map(|(_, text)| text.as_str())
            .ok_or_else(|| KnowledgeError::Missing {
                origin: self.origin.clone(),
                file: name.to_owned(),
            })
    }

    pub fn parse<T: DeserializeOwned>(&self, name: &str) -> Result<T, KnowledgeError> {
        serde_json::from_str(self.text(name)?).map_err(|error| KnowledgeError::Parse {
            origin: self.origin.clone(),
            file: name.to_owned(),
            error,
        })
    }

    /// The same files with one replaced (tests of the start-up checks).
    pub fn with(mut self, name: &str, text: String) -> Self {
        match self.files.iter_mut().find(|(path, _)| path == name) {
            Some(file) => file.1 = text,
            None => self.files.push((name.to_owned(), text)),
        }
        self
    }

    /// The ValueSet files: valuesets/*.json, by name.
    pub fn value_sets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files
            .iter()
            .filter(|(path, _)| path.starts_with("valuesets/") && path.ends_with(".json"))
            .map(|(path, text)| (path.as_str(), text.as_str()))
    }
}

fn collect_embedded(dir: &Dir<'_>, out: &mut Vec<(String, String)>) {
    for file in dir.files() {
        if let Some(text) = file.contents_utf8() {
            out.push((
                file.path().to_string_lossy().replace('\\', "/"),
                text.to_owned(),
            ));
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

fn read_tree(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, String)>,
) -> Result<(), KnowledgeError> {
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |error| KnowledgeError::Read { path, error }
    };
    for entry in std::fs::read_dir(dir).map_err(failed(dir))? {
        let path = entry.map_err(failed(dir))?.path();
        if path.is_dir() {
            read_tree(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).map_err(failed(&path))?;
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((relative, text));
        }
    }
    Ok(())
}
