//! The service catalogue, declared as data in cds-hooks/services.json.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Hook;

/// One CDS service: what discovery shows plus which prefetch keys the rules
/// cannot do without.
/// The service a hook route was declared for (set by the routes, read by
/// the request metrics: a label from our catalogue, never a typed id).
#[derive(Clone)]
pub struct DeclaredService(pub String);

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceDefinition {
    pub id: String,
    pub hook: Hook,
    pub title: String,
    pub description: String,
    pub prefetch: BTreeMap<String, String>,
    pub required_prefetch: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServiceCatalog {
    services: Vec<ServiceDefinition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    services: Vec<ServiceDefinition>,
}

/// The discovery document, as CDS Hooks defines it.
#[derive(Debug, Serialize)]
pub struct Discovery<'a> {
    pub services: Vec<DiscoveredService<'a>>,
}

#[derive(Debug, Serialize)]
pub struct DiscoveredService<'a> {
    pub hook: Hook,
    pub id: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub prefetch: &'a BTreeMap<String, String>,
}

/// Why services.json was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("services.json: {0}")]
    Unreadable(#[from] serde_json::Error),
    #[error("services.json: duplicate service id '{0}'")]
    DuplicateId(String),
    #[error("services.json: service '{service}' requires undeclared prefetch key '{key}'")]
    UndeclaredKey { service: String, key: String },
    #[error("services.json: no services")]
    NoServices,
}

impl ServiceCatalog {
    /// Parses and checks a catalogue: unique ids, required keys declared.
    pub fn from_json(json: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = serde_json::from_str(json)?;
        let mut ids = std::collections::HashSet::new();
        for service in &file.services {
            if !ids.insert(&service.id) {
                return Err(CatalogError::DuplicateId(service.id.clone()));
            }
            if let Some(key) = service
                .required_prefetch
                .iter()
                .find(|k| !service.prefetch.contains_key(*k))
            {
                return Err(CatalogError::UndeclaredKey {
                    service: service.id.clone(),
                    key: key.clone(),
                });
            }
        }
        if file.services.is_empty() {
            return Err(CatalogError::NoServices);
        }
        Ok(Self {
            services: file.services,
        })
    }

    pub fn embedded() -> Self {
        Self::from_json(include_str!("../../cds-hooks/services.json"))
            .expect("the embedded services.json is valid")
    }

    /// The first service answering this hook.
    pub fn for_hook(&self, hook: Hook) -> Option<&ServiceDefinition> {
        self.services.iter().find(|s| s.hook == hook)
    }

    pub fn services(&self) -> impl Iterator<Item = &ServiceDefinition> {
        self.services.iter()
    }

    pub fn get(&self, id: &str) -> Option<&ServiceDefinition> {
        self.services.iter().find(|s| s.id == id)
    }

    pub fn discovery(&self) -> Discovery<'_> {
        Discovery {
            services: self
                .services
                .iter()
                .map(|s| DiscoveredService {
                    hook: s.hook,
                    id: &s.id,
                    title: &s.title,
                    description: &s.description,
                    prefetch: &s.prefetch,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalogue_declares_the_three_services() {
        let catalog = ServiceCatalog::embedded();
        for (id, hook) in [
            ("leg-cramps-patient-view", Hook::PatientView),
            ("leg-cramps-order-select", Hook::OrderSelect),
            ("leg-cramps-order-sign", Hook::OrderSign),
        ] {
            let service = catalog.get(id).unwrap();
            assert_eq!(service.hook, hook);
            assert_eq!(service.prefetch["patient"], "Patient/{{context.patientId}}");
            assert_eq!(
                service.required_prefetch,
                [
                    "patient",
                    "conditions",
                    "medicationRequests",
                    "observations"
                ]
            );
        }
    }

    #[test]
    fn rejects_a_required_key_without_a_template() {
        let json = r#"{"services":[{"id":"a","hook":"patient-view","title":"t","description":"d","prefetch":{},"requiredPrefetch":["patient"]}]}"#;
        assert!(ServiceCatalog::from_json(json)
            .unwrap_err()
            .to_string()
            .contains("undeclared prefetch key"));
    }
}
