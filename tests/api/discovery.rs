use crate::helpers::{schemas, spawn_app};
use serde_json::Value;

#[tokio::test]
async fn discovery_lists_the_three_services_with_their_prefetch() {
    let app = spawn_app().await;
    let response = app.get("/cds-services").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        schemas().check_discovery(&body).is_empty(),
        "{:?}",
        schemas().check_discovery(&body)
    );
    let services = body["services"].as_array().unwrap();
    let ids: Vec<(&str, &str)> = services
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["hook"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("leg-cramps-patient-view", "patient-view"),
            ("leg-cramps-order-select", "order-select"),
            ("leg-cramps-order-sign", "order-sign")
        ]
    );
    for service in services {
        assert!(service["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(service["description"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
        let prefetch = service["prefetch"].as_object().unwrap();
        let keys: Vec<&str> = prefetch.keys().map(String::as_str).collect();
        for key in [
            "patient",
            "conditions",
            "medicationRequests",
            "medicationStatements",
            "observations",
            "procedures",
            "encounter",
            "inpatientEncounters",
            "visitsByReason",
            "visitsByType",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        assert_eq!(prefetch["patient"], "Patient/{{context.patientId}}");
        // The current encounter by id; past ones only by the searches the
        // rules read (inpatient class, dialysis and postpartum codes).
        assert_eq!(prefetch["encounter"], "Encounter/{{context.encounterId}}");
        assert!(
            !keys.contains(&"encounters"),
            "no search for every encounter"
        );
        // The query subset CDS Hooks recommends: reads and patient searches
        // with token and _sort parameters, no _include (referenced
        // Medications are fetched by id instead: tests/api/medications.rs).
        for (key, query) in prefetch {
            let query = query.as_str().unwrap();
            assert!(
                !query.contains("_include") && !query.contains("_revinclude"),
                "{key}: {query}"
            );
            let (path, params) = query.split_once('?').unwrap_or((query, ""));
            assert!(
                path.contains("/{{context.") || params.starts_with("patient={{context.patientId}}"),
                "{key}: {query}"
            );
            for param in params.split('&').filter(|p| !p.is_empty()) {
                let name = param.split_once('=').map_or(param, |(n, _)| n);
                assert!(!name.contains(':'), "{key}: no search modifiers ({name})");
            }
        }
        assert!(prefetch["medicationRequests"]
            .as_str()
            .unwrap()
            .starts_with("MedicationRequest?patient={{context.patientId}}&status="));
        assert!(prefetch["observations"]
            .as_str()
            .unwrap()
            .contains("http://loinc.org|2823-3"));
        assert!(
            service.get("requiredPrefetch").is_none(),
            "internal fields stay internal"
        );
        if service["hook"] == "patient-view" {
            // §6 r2: the DVT work-up and D-dimer results, in the recommended subset (no _include).
            assert!(prefetch["observations"]
                .as_str()
                .unwrap()
                .contains("http://loinc.org|48065-7"));
            for key in ["serviceRequests", "diagnosticReports", "imagingStudies"] {
                let query = prefetch[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{key} missing"));
                assert!(
                    query.contains("patient={{context.patientId}}") && !query.contains("_include"),
                    "{query}"
                );
            }
        }
    }
}

/// The encounter searches ask for every code the rules accept on a visit:
/// the dialysis and postpartum value sets (explicit concepts, and the
/// ICD-10-CM codes under each `is-a` filter), so no visit the rules would
/// count is left out by the query.
#[test]
fn the_encounter_searches_cover_the_value_sets_the_rules_read() {
    let read = |name: &str| -> Value {
        let path = format!(
            "{}/cds-hooks/knowledge/valuesets/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let services: Value =
        serde_json::from_str(include_str!("../../cds-hooks/services.json")).unwrap();
    for service in services["services"].as_array().unwrap() {
        for (key, parameter) in [
            ("visitsByType", "&type="),
            ("visitsByReason", "&reason-code="),
        ] {
            let template = service["prefetch"][key].as_str().unwrap();
            let listed: Vec<&str> = template
                .split(parameter)
                .nth(1)
                .unwrap()
                .split(',')
                .collect();
            for set in [
                "dialysis-encounter",
                "dialysis-procedure",
                "postpartum-encounter",
            ] {
                for include in read(set)["compose"]["include"].as_array().unwrap() {
                    for concept in include["concept"].as_array().into_iter().flatten() {
                        let code = concept["code"].as_str().unwrap();
                        assert!(listed.contains(&code), "{key} lacks {code} of {set}");
                    }
                    for filter in include["filter"].as_array().into_iter().flatten() {
                        let parent = filter["value"].as_str().unwrap();
                        let children = listed.iter().filter(|c| c.starts_with(parent)).count();
                        assert!(
                            children > 1,
                            "{key} lacks the codes under {parent} of {set}"
                        );
                    }
                }
            }
        }
    }
}
