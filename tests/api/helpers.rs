use std::sync::OnceLock;

use cramp_cds::config::ServeSettings;
use cramp_cds::startup::Application;
use cramp_cds::validation::Schemas;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app on 127.0.0.1 and a free port, with settings adjusted by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut ServeSettings)) -> TestApp {
    let mut settings = ServeSettings::defaults();
    settings.host = "127.0.0.1".parse().unwrap();
    settings.port = 0;
    settings.workers = Some(1);
    settings.database_url = temporary_sqlite();
    tweak(&mut settings);
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
    }
}

/// A fresh SQLite database file for one app.
pub fn temporary_sqlite() -> String {
    let path = std::env::temp_dir().join(format!("cramp-cds-test-{}.db", uuid::Uuid::new_v4()));
    format!("sqlite://{}?mode=rwc", path.display())
}

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_raw(path, "application/json", body.to_string())
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the request is sent")
    }
}

pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| Schemas::compile().unwrap())
}

/// A 200 whose body validates against our response schema.
pub async fn assert_valid_cards(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(status, 200, "{body:#}");
    let issues = schemas().check_response(&body);
    assert!(issues.is_empty(), "response breaks the schema: {issues:?}");
    body
}

/// A 4xx whose body is an OperationOutcome; returns the issues.
pub async fn assert_outcome(response: reqwest::Response, status: u16) -> Vec<Value> {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/fhir+json"),
        "content type {content_type}"
    );
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body:#}");
    let issues = body["issue"].as_array().cloned().unwrap_or_default();
    assert!(
        !issues.is_empty(),
        "an OperationOutcome without issues: {body:#}"
    );
    for issue in &issues {
        assert_eq!(issue["severity"], "error");
        assert!(issue["diagnostics"].as_str().is_some_and(|d| !d.is_empty()));
    }
    issues
}

pub fn pointers(issues: &[Value]) -> Vec<String> {
    issues
        .iter()
        .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect()
}

pub fn topics(body: &Value) -> Vec<String> {
    body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"]["topic"]["code"].as_str().unwrap().to_owned())
        .collect()
}

pub fn finding_codes(body: &Value, topic: &str) -> Vec<String> {
    body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"]["topic"]["code"] == topic)
        .flat_map(|c| {
            c["extension"]["cramp-cds"]["findings"]
                .as_array()
                .unwrap()
                .iter()
        })
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

pub const PATIENT_ID: &str = "p1";

pub fn searchset(resources: Vec<Value>) -> Value {
    json!({
        "resourceType": "Bundle", "type": "searchset", "total": resources.len(),
        "entry": resources.into_iter().map(|r| json!({"resource": r, "search": {"mode": "match"}})).collect::<Vec<_>>()
    })
}

pub fn patient() -> Value {
    json!({"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1950-03-04", "gender": "female"})
}

pub fn cramp_condition() -> Value {
    json!({
        "resourceType": "Condition", "id": "cramp",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R25.2", "display": "Cramp and spasm"}]},
        "subject": {"reference": "Patient/p1"},
        // Documented today: §6 r2 counts a cramp beside leg swelling only within 30 days.
        "recordedDate": chrono::Utc::now().to_rfc3339()
    })
}

pub fn furosemide() -> Value {
    json!({
        "resourceType": "MedicationRequest", "id": "furosemide", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "313988", "display": "furosemide 40 MG Oral Tablet"}]},
        "subject": {"reference": "Patient/p1"}
    })
}

pub fn low_potassium() -> Value {
    json!({
        "resourceType": "Observation", "id": "k", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": chrono::Utc::now().to_rfc3339(),
        "valueQuantity": {"value": 3.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
    })
}

/// A patient-view request whose prefetch documents cramps, a culprit and a low potassium.
pub fn patient_view_request() -> Value {
    json!({
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/123", "patientId": PATIENT_ID},
        "prefetch": {
            "patient": patient(),
            "conditions": searchset(vec![cramp_condition()]),
            "medicationRequests": searchset(vec![furosemide()]),
            "observations": searchset(vec![low_potassium()]),
            "medicationStatements": null,
            "procedures": null,
            "inpatientEncounters": null,
            "visitsByReason": null,
            "visitsByType": null,
            "serviceRequests": null,
            "diagnosticReports": null,
            "imagingStudies": null
        }
    })
}

pub fn quinine_draft() -> Value {
    json!({
        "resourceType": "MedicationRequest", "id": "draft-quinine", "status": "draft", "intent": "proposal",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "9071", "display": "quinine"}], "text": "quinine sulfate 324 mg capsule"},
        "subject": {"reference": "Patient/p1"}
    })
}

pub fn order_request(hook: &str, drafts: Vec<Value>) -> Value {
    let mut request = patient_view_request();
    request["hook"] = json!(hook);
    request["context"]["draftOrders"] = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": drafts.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()
    });
    if hook == "order-select" {
        request["context"]["selections"] = json!(["MedicationRequest/draft-quinine"]);
    }
    request
}

/// Tests that load the machine for seconds (a million rows, hundreds of
/// connections) or time themselves take turns: on a 2-core machine one
/// must not eat another's time bound.
pub async fn heavy_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}
