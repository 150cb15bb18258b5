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

#[cfg(test)]
mod layering {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Top-level modules each file names through `crate::` (comments and
    /// test modules left out), by the module the file belongs to.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut pending = vec![src.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let relative = path.strip_prefix(&src).unwrap();
                let first = relative.components().next().unwrap();
                let module = first
                    .as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_owned();
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                    for (at, _) in line.match_indices("crate::") {
                        let name: String = line[at + 7..]
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        if !name.is_empty() && name != module {
                            graph.entry(module.clone()).or_default().insert(name);
                        }
                    }
                }
            }
        }
        graph
    }

    /// Data flows one way: no two top-level modules may reach each other.
    #[test]
    fn no_module_imports_one_that_imports_it_back() {
        let graph = imports();
        let reaches = |from: &str| {
            let mut seen = BTreeSet::new();
            let mut pending = vec![from.to_owned()];
            while let Some(module) = pending.pop() {
                for next in graph.get(&module).into_iter().flatten() {
                    if seen.insert(next.clone()) {
                        pending.push(next.clone());
                    }
                }
            }
            seen
        };
        let cycles: Vec<String> = graph
            .iter()
            .flat_map(|(from, to)| to.iter().map(move |to| (from, to)))
            .filter(|(from, to)| reaches(to).contains(*from))
            .map(|(from, to)| format!("{from} -> {to}"))
            .collect();
        assert!(cycles.is_empty(), "import cycles: {cycles:?}");
        assert!(
            graph["http"].contains("application"),
            "the walk reads imports"
        );
    }
}
