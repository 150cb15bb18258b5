//! A stand-in for an EHR's FHIR server: real HTTP on a loopback port,
//! answering the service's prefetch searches from a real sample patient,
//! paginated, and misbehaving on request (slow, 401, 500, garbage, foreign
//! next links, dropped connections), and as slow as a real one on request:
//! a latency per request, a default page size, `_count` honoured up to a
//! maximum (or ignored), requests answered one at a time.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

pub const ACCESS_TOKEN: &str = "test-access-token-3f9a";

/// How the stand-in behaves: by default at once, 40 entries a page, and
/// `_count` honoured up to 1,000 (as HAPI's default maximum).
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Added to every answer (a real server: tens to hundreds of ms a page).
    pub latency: Duration,
    /// Extra latency for searches of one resource type (a slow key).
    pub slow_type: Option<(String, Duration)>,
    /// Entries a page when the search has no `_count`.
    pub page_size: usize,
    /// The largest `_count` honoured; 0: `_count` is ignored.
    pub max_count: usize,
    /// One request at a time, the others queued (a server limiting each client).
    pub serial: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            slow_type: None,
            page_size: 40,
            max_count: 1000,
            serial: false,
        }
    }
}

pub struct FhirServer {
    pub base: String,
    pub requests: Arc<AtomicUsize>,
    /// Every request's path and query, in arrival order.
    pub asked: Arc<Mutex<Vec<String>>>,
    resources: Arc<Vec<Value>>,
}

struct Shared {
    resources: Arc<Vec<Value>>,
    requests: Arc<AtomicUsize>,
    asked: Arc<Mutex<Vec<String>>>,
    base: String,
    behaviour: Behaviour,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl FhirServer {
    /// Serves `resources` (one patient's) at `{base}/fhir`, and the fault modes at `{base}/{mode}/fhir`.
    pub async fn start(resources: Vec<Value>) -> Self {
        Self::start_with(resources, Behaviour::default()).await
    }

    pub async fn start_with(resources: Vec<Value>, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let resources = Arc::new(resources);
        let requests = Arc::new(AtomicUsize::new(0));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let shared = web::Data::new(Shared {
            resources: resources.clone(),
            requests: requests.clone(),
            asked: asked.clone(),
            base: base.clone(),
            behaviour,
            one_at_a_time: tokio::sync::Mutex::new(()),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            base,
            requests,
            asked,
            resources,
        }
    }

    pub fn url(&self, mode: &str) -> String {
        match mode {
            "" => format!("{}/fhir", self.base),
            mode => format!("{}/{mode}/fhir", self.base),
        }
    }

    /// What an EHR that resolves the templates itself would prefetch.
    pub fn prefetch_for(
        &self,
        templates: &serde_json::Map<String, Value>,
        patient_id: &str,
    ) -> Value {
        let mut prefetch = serde_json::Map::new();
        for (key, template) in templates {
            let query = template
                .as_str()
                .unwrap()
                .replace("{{context.patientId}}", patient_id);
            // A template this context cannot fill (no encounterId) is not sent.
            if query.contains("{{") {
                continue;
            }
            let everything =
                search(&self.resources, &query, usize::MAX, 0, "").expect("a known query");
            prefetch.insert(key.clone(), everything);
        }
        Value::Object(prefetch)
    }
}

/// A listener that accepts connections and drops them at once.
pub fn dropping_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!(
        "http://127.0.0.1:{}/fhir",
        listener.local_addr().unwrap().port()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    address
}

async fn answer(request: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    shared.asked.lock().unwrap().push(request.uri().to_string());
    let behaviour = &shared.behaviour;
    let _turn = match behaviour.serial {
        true => Some(shared.one_at_a_time.lock().await),
        false => None,
    };
    let mut delay = behaviour.latency;
    if let Some((kind, extra)) = &behaviour.slow_type {
        if request.path().ends_with(&format!("/{kind}")) {
            delay += *extra;
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let path = request.path().to_owned();
    let (mode, rest) = match path.split_once("/fhir/") {
        Some((mode, rest)) => (mode.trim_start_matches('/'), rest.to_owned()),
        None => return HttpResponse::NotFound().finish(),
    };
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {ACCESS_TOKEN}").as_str());
    match mode {
        "slow" => tokio::time::sleep(Duration::from_secs(5)).await,
        "unauthorized" => return HttpResponse::Unauthorized().finish(),
        "error" => return HttpResponse::InternalServerError().content_type("application/fhir+json").body("{}"),
        "garbage" => return HttpResponse::Ok().content_type("text/html").body("<html>oops</html>"),
        "broken" => return HttpResponse::Ok().content_type("application/fhir+json").body("{\"resourceType\": \"Bundle\", \"entry\": ["),
        "outcome" => {
            return HttpResponse::Ok()
                .content_type("application/fhir+json")
                .json(json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}))
        }
        _ => {}
    }
    if !authorized {
        return HttpResponse::Unauthorized().finish();
    }
    let query = match request.query_string() {
        "" => rest.clone(),
        q => format!("{rest}?{q}"),
    };
    let params: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(request.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let page: usize = params
        .get("_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // The next link points back here: to "{base}/fhir" or "{base}/{mode}/fhir".
    let prefix = &path[..path.len() - rest.len() - 1];
    let next_base = if mode == "foreign" {
        "http://169.254.169.254/fhir".to_owned()
    } else {
        format!("{}{prefix}", shared.base)
    };
    let count = params.get("_count").and_then(|c| c.parse::<usize>().ok());
    let page_size = match count {
        Some(count) if behaviour.max_count > 0 => count.clamp(1, behaviour.max_count),
        _ => behaviour.page_size,
    };
    match search(&shared.resources, &query, page_size, page, &next_base) {
        Some(body) => HttpResponse::Ok().content_type("application/fhir+json").json(body),
        None => HttpResponse::NotFound().content_type("application/fhir+json").json(json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]})),
    }
}

/// A read (`Patient/id`) or a search (`Type?patient=..&code=..&status=..&_include=..`),
/// as a searchset Bundle page with a next link when more remain.
fn search(
    resources: &[Value],
    query: &str,
    page_size: usize,
    page: usize,
    next_base: &str,
) -> Option<Value> {
    let (path_part, query_part) = query.split_once('?').unwrap_or((query, ""));
    let params: Vec<(String, String)> = query_part
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some((kind, id)) = path_part.split_once('/') {
        return resources
            .iter()
            .find(|r| r["resourceType"] == kind && r["id"] == id)
            .cloned();
    }
    let kind = path_part;
    let patient = param("patient")?;
    let mut matches: Vec<&Value> = resources
        .iter()
        .filter(|r| r["resourceType"] == kind)
        .filter(|r| {
            let subject = r["subject"]["reference"]
                .as_str()
                .or(r["patient"]["reference"].as_str())
                .unwrap_or("");
            subject.ends_with(patient)
        })
        .filter(|r| match param("status") {
            Some(statuses) => statuses.split(',').any(|s| r["status"] == s),
            None => true,
        })
        .filter(|r| {
            token(
                param("code"),
                r["code"]["coding"].as_array().into_iter().flatten(),
            )
        })
        // Encounter: `class` is one Coding, `type` and `reason-code` lists
        // of CodeableConcepts.
        .filter(|r| token(param("class"), std::iter::once(&r["class"])))
        .filter(|r| token(param("type"), concepts(&r["type"])))
        .filter(|r| token(param("reason-code"), concepts(&r["reasonCode"])))
        .collect();
    let mut included = Vec::new();
    if param("_include").is_some_and(|i| i.ends_with(":medication")) {
        for r in &matches {
            if let Some(reference) = r["medicationReference"]["reference"].as_str() {
                let id = reference.rsplit(['/', ':']).next().unwrap_or("");
                included.extend(
                    resources
                        .iter()
                        .filter(|m| m["resourceType"] == "Medication" && m["id"] == id),
                );
            }
        }
    }
    let total = matches.len();
    let start = page.saturating_mul(page_size).min(total);
    let end = start.saturating_add(page_size).min(total);
    let mut entries: Vec<Value> = matches
        .drain(start..end)
        .map(|r| json!({"resource": r, "search": {"mode": "match"}}))
        .collect();
    entries.extend(
        included
            .into_iter()
            .map(|r| json!({"resource": r, "search": {"mode": "include"}})),
    );
    let mut bundle =
        json!({"resourceType": "Bundle", "type": "searchset", "total": total, "entry": entries});
    if end < total {
        let mut next_query: Vec<&str> = query_part
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("_page="))
            .collect();
        let page_param = format!("_page={}", page + 1);
        next_query.push(&page_param);
        bundle["link"] = json!([{"relation": "next", "url": format!("{next_base}/{kind}?{}", next_query.join("&"))}]);
    }
    Some(bundle)
}

/// A token search: any coding matches any `[system|]code` of the list.
fn token<'a>(wanted: Option<&str>, mut codings: impl Iterator<Item = &'a Value>) -> bool {
    let Some(wanted) = wanted else {
        return true;
    };
    codings.any(|c| {
        wanted.split(',').any(|one| {
            let (system, code) = one.split_once('|').unwrap_or(("", one));
            c["code"] == code && (system.is_empty() || c["system"] == system)
        })
    })
}

fn concepts(list: &Value) -> impl Iterator<Item = &Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .flat_map(|concept| concept["coding"].as_array().into_iter().flatten())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
