//! Fetching what the EHR did not prefetch from its FHIR server, with the
//! bearer token it gave us, all keys in parallel over one pooled client.
//! Bounded everywhere: per-call timeout, an overall deadline on reading and
//! parsing, a page limit, a byte limit per hook call within a byte budget
//! shared by the whole process, an entry limit per hook call, next links
//! only on the same server, no redirects. A key cut off by a limit keeps
//! the pages read before it and is reported incomplete.

use std::fmt;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use tokio::time::Instant;

use super::trust::{IssuerKey, ServerTrust, Untrusted};
use crate::fhir::resource_type_of;
use crate::limits::{self, ByteBudget, Held};

#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub call_timeout: Duration,
    pub deadline: Duration,
    pub max_pages: usize,
    /// Bytes one hook call's fetches may hold, all keys together.
    pub max_bytes: usize,
    /// Bundle entries one hook call's fetches may bring, all keys together.
    pub max_entries: usize,
    /// Bytes all hook calls' fetches together may hold.
    pub memory: ByteBudget,
}

/// Why a key could not be fetched. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Refused by the trust policy (see `trust`): nothing is sent.
    NotTrusted(Untrusted),
    Template(super::template::TemplateError),
    Timeout,
    Unauthorized(u16),
    Status(u16),
    NotFhir,
    Malformed,
    OperationOutcome,
    TooLarge,
    ForeignPage,
    Connection,
    /// More pages than the page limit: what was read is kept, the rest is not.
    PageLimit,
    /// More Bundle entries than the call may bring.
    TooManyEntries,
    /// The process-wide budget for fetched bytes is held by other calls.
    MemoryBudget,
}

impl FetchError {
    /// A short name, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::NotTrusted(_) => "not-trusted",
            FetchError::Template(_) => "template",
            FetchError::Timeout => "timeout",
            FetchError::Unauthorized(_) => "unauthorized",
            FetchError::Status(_) => "status",
            FetchError::NotFhir => "not-fhir",
            FetchError::Malformed => "malformed",
            FetchError::OperationOutcome => "operation-outcome",
            FetchError::TooLarge => "too-large",
            FetchError::ForeignPage => "foreign-page",
            FetchError::Connection => "connection",
            FetchError::PageLimit => "page-limit",
            FetchError::TooManyEntries => "too-many-entries",
            FetchError::MemoryBudget => "memory-budget",
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NotTrusted(why) => write!(f, "fhirServer not trusted: {why}"),
            FetchError::Template(why) => write!(f, "its query cannot be built from the context: {why}"),
            FetchError::Timeout => write!(f, "the FHIR server did not answer in time"),
            FetchError::Unauthorized(status) => write!(f, "the FHIR server refused the access token ({status})"),
            FetchError::Status(status) => write!(f, "the FHIR server answered {status}"),
            FetchError::NotFhir => write!(f, "the FHIR server's answer is not FHIR JSON"),
            FetchError::Malformed => write!(f, "the FHIR server's answer is not a readable FHIR resource"),
            FetchError::OperationOutcome => write!(f, "the FHIR server answered with an OperationOutcome"),
            FetchError::TooLarge => write!(f, "the FHIR server's answers exceed the size limit of one hook call (--fhir-max-bytes)"),
            FetchError::ForeignPage => write!(f, "a next-page link points outside the FHIR server"),
            FetchError::Connection => write!(f, "the FHIR server could not be reached or dropped the connection"),
            FetchError::PageLimit => write!(f, "the FHIR server had more pages than the page limit; the rest were not read"),
            FetchError::TooManyEntries => {
                write!(f, "the FHIR server's answers hold more entries than one hook call reads (--fhir-max-entries); the rest were not read")
            }
            FetchError::MemoryBudget => write!(
                f,
                "the service's memory for FHIR answers is in use by other calls (--fhir-memory-budget-bytes); the rest were not read"
            ),
        }
    }
}

pub struct FhirFetcher {
    client: reqwest::Client,
    settings: FetchSettings,
    trust: ServerTrust,
}

/// One key's result: the JSON documents (pages) it returned.
pub type Fetched = Result<Pages, FetchError>;

/// The pages read for a key, and, when reading stopped before the last
/// page, why: the pages read are used, and the key is reported incomplete.
#[derive(Debug, Default)]
pub struct Pages {
    pub documents: Vec<String>,
    pub cut: Option<FetchError>,
}

impl FhirFetcher {
    pub fn new(settings: FetchSettings, trust: ServerTrust) -> Result<Self, reqwest::Error> {
        // The resolver refuses names that resolve to non-public addresses,
        // so the check holds for what the client really connects to; no
        // proxy, so the resolver sees every host.
        let client = reqwest::Client::builder()
            .dns_resolver(trust.resolver())
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.call_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("cramp-cds/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            settings,
            trust,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Whether fhirServer may receive the token of a call from `issuer`
    /// (None: authentication is off); see `trust`.
    pub async fn check_server(
        &self,
        server: &str,
        issuer: Option<&IssuerKey>,
    ) -> Result<String, FetchError> {
        // The check resolves the host name: a resolver that never answers
        // must not hold the call past the deadline its fetches would have had.
        match tokio::time::timeout(self.settings.deadline, self.trust.check(server, issuer)).await {
            Ok(checked) => checked.map_err(FetchError::NotTrusted),
            Err(_) => {
                limits::exceeded("fhir-deadline-ms");
                Err(FetchError::Timeout)
            }
        }
    }

    /// Fetches every (key, relative query) in parallel within the deadline.
    /// The pages hold their share of the process-wide budget until the
    /// returned [`Held`] is dropped: keep it until they are read.
    pub async fn fetch_all(
        &self,
        server: &str,
        token: Option<&str>,
        queries: Vec<(String, String)>,
    ) -> (Vec<(String, Fetched)>, Held) {
        let deadline = Instant::now() + self.settings.deadline;
        let call = CallAllowance::new(&self.settings);
        let fetches = queries.into_iter().map(|(key, query)| {
            let call = &call;
            async move {
                let url = format!("{server}/{}", with_count(&query));
                // A margin over the deadline: the reading below stops at the
                // deadline itself and keeps what it read.
                let result = match tokio::time::timeout_at(
                    deadline + Duration::from_millis(200),
                    self.fetch_pages(server, &url, token, call, deadline),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) => Err(FetchError::Timeout),
                };
                (key, result)
            }
        });
        let results = join_all(fetches).await;
        (results, call.into_held())
    }

    async fn fetch_pages(
        &self,
        server: &str,
        first: &str,
        token: Option<&str>,
        call: &CallAllowance<'_>,
        deadline: Instant,
    ) -> Fetched {
        let mut pages = Vec::new();
        let mut next = Some(first.to_owned());
        // A limit that trips keeps what was read before it.
        let cut = |pages: Vec<String>, why: FetchError| {
            limits::exceeded(match why {
                FetchError::TooLarge => "fhir-max-bytes",
                FetchError::MemoryBudget => "fhir-memory-budget-bytes",
                FetchError::TooManyEntries => "fhir-max-entries",
                FetchError::PageLimit => "fhir-max-pages",
                _ => "fhir-deadline-ms",
            });
            if pages.is_empty() {
                Err(why)
            } else {
                Ok(Pages {
                    documents: pages,
                    cut: Some(why),
                })
            }
        };
        while let Some(url) = next.take() {
            if pages.len() == self.settings.max_pages {
                log::warn!(
                    "FHIR fetch stopped at the page limit ({}); later pages are not read",
                    self.settings.max_pages
                );
                return cut(pages, FetchError::PageLimit);
            }
            let body = match tokio::time::timeout_at(deadline, self.get(&url, token, call)).await {
                Ok(Ok(body)) => body,
                Ok(Err(
                    why @ (FetchError::TooLarge | FetchError::MemoryBudget | FetchError::Timeout),
                )) => return cut(pages, why),
                Ok(Err(error)) => return Err(error),
                Err(_) => return cut(pages, FetchError::Timeout),
            };
            let entries = match resource_type_of(&body) {
                Some("OperationOutcome") => return Err(FetchError::OperationOutcome),
                Some("Bundle") => {
                    let (link, entries) = next_link(&body)?;
                    next = link;
                    entries
                }
                Some(_) => 1,
                None => return Err(FetchError::Malformed),
            };
            if !call.take_entries(entries) {
                return cut(pages, FetchError::TooManyEntries);
            }
            // Parsing counts against the deadline too.
            if Instant::now() >= deadline {
                return cut(pages, FetchError::Timeout);
            }
            if let Some(link) = &next {
                if !same_server(server, link) {
                    return Err(FetchError::ForeignPage);
                }
            }
            pages.push(body);
        }
        Ok(Pages {
            documents: pages,
            cut: None,
        })
    }

    async fn get(
        &self,
        url: &str,
        token: Option<&str>,
        call: &CallAllowance<'_>,
    ) -> Result<String, FetchError> {
        let mut request = self
            .client
            .get(url)
            .timeout(self.settings.call_timeout)
            .header(ACCEPT, "application/fhir+json");
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        match status {
            200..=299 => {}
            401 | 403 => return Err(FetchError::Unauthorized(status)),
            _ => return Err(FetchError::Status(status)),
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            essence.as_str(),
            "application/fhir+json" | "application/json" | "application/json+fhir"
        ) {
            return Err(FetchError::NotFhir);
        }
        if response
            .content_length()
            .is_some_and(|length| length as usize > call.bytes_left())
        {
            return Err(FetchError::TooLarge);
        }
        // Read as it arrives, every byte of capacity taken from the call's
        // allowance and the process budget before it is allocated.
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            let needed = body.len() + chunk.len();
            if needed > body.capacity() {
                let capacity = needed.max(body.capacity() * 2);
                call.take_bytes(capacity - body.capacity())?;
                body.reserve_exact(capacity - body.len());
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| FetchError::Malformed)
    }
}

/// What one hook call's fetches may still take: bytes (within the process
/// budget) and entries, shared by its keys.
struct CallAllowance<'b> {
    budget: &'b ByteBudget,
    state: std::sync::Mutex<(usize, usize, Held)>,
}

impl<'b> CallAllowance<'b> {
    fn new(settings: &'b FetchSettings) -> Self {
        Self {
            budget: &settings.memory,
            state: std::sync::Mutex::new((
                settings.max_bytes,
                settings.max_entries,
                settings.memory.hold_nothing(),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, usize, Held)> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bytes_left(&self) -> usize {
        self.lock().0
    }

    fn take_bytes(&self, bytes: usize) -> Result<(), FetchError> {
        let mut state = self.lock();
        if bytes > state.0 {
            return Err(FetchError::TooLarge);
        }
        if !self.budget.grow(&mut state.2, bytes) {
            return Err(FetchError::MemoryBudget);
        }
        state.0 -= bytes;
        Ok(())
    }

    fn take_entries(&self, entries: usize) -> bool {
        let mut state = self.lock();
        match state.1.checked_sub(entries) {
            Some(left) => {
                state.1 = left;
                true
            }
            None => false,
        }
    }

    fn into_held(self) -> Held {
        self.state
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .2
    }
}

fn classify(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Connection
    }
}

/// The Bundle's `next` link, if any, and how many entries it holds
/// (counted, not read).
fn next_link(bundle: &str) -> Result<(Option<String>, usize), FetchError> {
    #[derive(Deserialize)]
    struct Links {
        #[serde(default)]
        link: Vec<Link>,
        #[serde(default)]
        entry: EntryCount,
    }
    #[derive(Default)]
    struct EntryCount(usize);
    impl<'de> Deserialize<'de> for EntryCount {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Counter;
            impl<'de> serde::de::Visitor<'de> for Counter {
                type Value = EntryCount;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an array of entries")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<EntryCount, A::Error> {
                    let mut count = 0;
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                        count += 1;
                    }
                    Ok(EntryCount(count))
                }
            }
            deserializer.deserialize_seq(Counter)
        }
    }
    #[derive(Deserialize)]
    struct Link {
        relation: Option<String>,
        url: Option<String>,
    }
    let links: Links = serde_json::from_str(bundle).map_err(|_| FetchError::Malformed)?;
    let next = links
        .link
        .into_iter()
        .find(|l| l.relation.as_deref() == Some("next"))
        .and_then(|l| l.url);
    Ok((next, links.entry.0))
}

/// Entries asked for per page of a search. Servers page by 10 to 50 unless
/// told otherwise, and each page is a round trip: with a 100 ms server a
/// 300-entry key took 15 pages and 1.5 s. Servers cap `_count` at their own
/// maximum; the page, byte and entry limits still bound what is read.
pub const SEARCH_PAGE_SIZE: usize = 1000;

/// A search (`Type?...`) gains `_count` unless its template sets one; a
/// read (`Type/id`) is left as it is.
fn with_count(query: &str) -> String {
    let query = query.trim_start_matches('/');
    let (path, params) = query.split_once('?').unwrap_or((query, ""));
    let is_search = !path.contains('/');
    let has_count = params
        .split('&')
        .any(|p| p == "_count" || p.starts_with("_count="));
    match (is_search, has_count, params.is_empty()) {
        (false, _, _) | (_, true, _) => query.to_owned(),
        (true, false, true) => format!("{path}?_count={SEARCH_PAGE_SIZE}"),
        (true, false, false) => format!("{query}&_count={SEARCH_PAGE_SIZE}"),
    }
}

/// Same scheme, host and port as fhirServer, and a path under its base at
/// a segment boundary: a page cannot send the token elsewhere, not even to
/// another base (another tenant's) on the same host.
fn same_server(server: &str, link: &str) -> bool {
    let segments = |url: &reqwest::Url| -> Vec<String> {
        url.path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    match (reqwest::Url::parse(server), reqwest::Url::parse(link)) {
        (Ok(a), Ok(b)) => {
            let (base, path) = (segments(&a), segments(&b));
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
                && path.starts_with(&base)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_pages_stay_on_the_server() {
        assert!(same_server(
            "https://ehr.example.org/fhir",
            "https://ehr.example.org/fhir?page=2"
        ));
        assert!(same_server(
            "https://ehr.example.org/fhir/",
            "https://ehr.example.org:443/fhir/Observation?page=2"
        ));
        // Another base on the same host (another tenant's) is elsewhere.
        for elsewhere in [
            "https://ehr.example.org/other",
            "https://ehr.example.org/fhirx?page=2",
            "https://ehr.example.org/?page=2",
        ] {
            assert!(
                !same_server("https://ehr.example.org/fhir", elsewhere),
                "{elsewhere}"
            );
        }
        assert!(!same_server(
            "https://ehr.example.org/fhir",
            "http://ehr.example.org/fhir"
        ));
        assert!(!same_server(
            "https://ehr.example.org/fhir",
            "https://169.254.169.254/latest"
        ));
        assert!(!same_server("https://ehr.example.org/fhir", "/relative"));
    }

    #[test]
    fn searches_ask_for_large_pages() {
        assert_eq!(
            with_count("Condition?patient=p1"),
            "Condition?patient=p1&_count=1000"
        );
        assert_eq!(with_count("/Encounter"), "Encounter?_count=1000");
        assert_eq!(
            with_count("Observation?patient=p1&_count=50"),
            "Observation?patient=p1&_count=50"
        );
        assert_eq!(with_count("Patient/p1"), "Patient/p1");
        assert_eq!(with_count("Medication/m%2F1"), "Medication/m%2F1");
    }

    #[test]
    fn reads_the_next_link() {
        let bundle = r#"{"resourceType":"Bundle","link":[{"relation":"self","url":"a"},{"relation":"next","url":"b"}]}"#;
        assert_eq!(next_link(bundle).unwrap().0.as_deref(), Some("b"));
        assert_eq!(
            next_link(r#"{"resourceType":"Bundle"}"#).unwrap(),
            (None, 0)
        );
        assert_eq!(
            next_link(r#"{"resourceType":"Bundle","entry":[{},{},{}]}"#).unwrap(),
            (None, 3)
        );
    }
}
