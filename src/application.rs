//! The application layer: one owner of the flow request -> patient record ->
//! findings -> cards. A hook call from its body to an answer (fetching what
//! prefetch lacks is a step the caller runs between passes), and a
//! patient's chart (a Bundle) to an answer for /analyze, `evaluate` and the
//! clinical tests. HTTP, the CLI, the tests, the benches and the fuzz
//! targets call these; nothing else builds the engine's input.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::cards::CardRecord;
use crate::engine::{split_drafts, Engine, Evaluation};
use crate::fhir::outcome::Issue;
use crate::prefetch::fetch::Fetched;
use crate::prefetch::{self, FetchPlan};
use crate::protocol::discovery::ServiceCatalog;
use crate::protocol::request::{
    json_syntax_issue, parse_hook_request_in, Conformance, Deviation, HookRequest,
};
use crate::protocol::response::CdsResponse;
use crate::protocol::Hook;
use crate::record::{
    record_from, record_knowing, MedicineKnown, PatientRecord, Payload, RecordBuilder, RecordStats,
    Unread,
};
use crate::store::IssuedCard;
use crate::telemetry::escape_for_log;
use crate::validation::Schemas;

/// What a hook call needs of the service, built once at start-up.
#[derive(Clone, Copy)]
pub struct Pipeline<'a> {
    pub engine: &'a Engine,
    pub catalog: &'a ServiceCatalog,
    pub schemas: &'a Schemas,
    pub conformance: Conformance,
    /// Bundle entries the request itself may hold (`--max-entries`).
    pub max_entries: usize,
}

/// Why a call gets no cards: each maps to one HTTP status.
#[derive(Debug)]
pub enum Refusal {
    /// 400: the body is not this hook's call, or a member the rules read is
    /// wrong; each issue names the member.
    Invalid(Vec<Issue>),
    /// 412: a required prefetch key has no usable data.
    Unsatisfied(Vec<Issue>),
    /// 413: more Bundle entries than `--max-entries`.
    TooManyEntries { limit: usize },
    /// 500: a fault of ours.
    Internal(String),
}

impl Refusal {
    pub fn bad_request(issues: Vec<Issue>) -> Self {
        Self::Invalid(issues)
    }

    pub fn invalid(pointer: &str, diagnostics: impl Into<String>) -> Self {
        Self::Invalid(vec![Issue::error(
            "invalid",
            diagnostics,
            Some(pointer.to_owned()),
        )])
    }

    pub fn precondition_failed(issues: Vec<Issue>) -> Self {
        Self::Unsatisfied(issues)
    }

    pub fn internal(why: impl Into<String>) -> Self {
        Self::Internal(why.into())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issues = |f: &mut fmt::Formatter<'_>, issues: &[Issue]| {
            let texts: Vec<String> = issues
                .iter()
                .map(|i| match i.expression.is_empty() {
                    true => i.diagnostics.clone(),
                    false => format!("{}: {}", i.expression.join(", "), i.diagnostics),
                })
                .collect();
            write!(f, "{}", texts.join("; "))
        };
        match self {
            Self::Invalid(list) => issues(f, list),
            Self::Unsatisfied(list) => issues(f, list),
            Self::TooManyEntries { limit } => write!(
                f,
                "the request holds more than {limit} Bundle entries (--max-entries)"
            ),
            Self::Internal(why) => write!(f, "internal error: {why}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Where a hook call's synchronous part ends: with the answer, or with
/// what must be fetched from the EHR's FHIR server first.
pub enum Step {
    Answered(Answer),
    Fetch(FetchPlan),
}

/// An answer and what the caller records of it.
pub struct Answer {
    pub response: CdsResponse,
    /// The store's record of each card, made with it from the assessment.
    pub records: Vec<CardRecord>,
    /// For the access-log line.
    pub note: String,
    pub hook_instance: String,
    pub patient_id: Option<String>,
    /// What the record reading made of the data.
    pub stats: RecordStats,
}

/// Which reading of the body this is.
pub enum Pass {
    /// The first: deviations are recorded, and keys to fetch end the pass.
    First { missing_content_type: bool },
    /// After fetching what the EHR did not send; `medications_fetched`: the
    /// referenced Medications were looked for too (no further round).
    Fetched {
        fetched: Vec<(String, Fetched)>,
        medications_fetched: bool,
    },
    /// No fetching at all: the answer from what the request holds.
    Offline,
}

/// Reads Bundle entries within the request's allowance: over it, a 413
/// naming the limit, whatever the reading made of the cut-off JSON.
fn within_entry_limit<T>(
    limit: usize,
    read: impl FnOnce() -> Result<T, Refusal>,
) -> Result<T, Refusal> {
    let (result, hit) = crate::limits::with_entry_limit(limit, read);
    if hit {
        crate::limits::exceeded("max-entries");
        return Err(Refusal::TooManyEntries { limit });
    }
    result
}

/// The synchronous part of a hook call: parse, check, (with what was
/// fetched) resolve the record and run the engine.
pub fn hook_call(
    p: &Pipeline,
    service_id: &str,
    body: &[u8],
    pass: Pass,
    arrived: DateTime<Utc>,
) -> Result<Step, Refusal> {
    let service = p
        .catalog
        .get(service_id)
        .ok_or_else(|| Refusal::internal("the service disappeared"))?;
    within_entry_limit(p.max_entries, || {
        let mut hook_request =
            parse_hook_request_in(body, p.schemas, p.conformance).map_err(Refusal::bad_request)?;
        // A prefetch value that is not a resource is tolerated under a key
        // the rules can do without; under a required key (which the rules
        // read) it stays the client's error, named.
        if let Some(broken) = hook_request.deviations.iter().find(|d| {
            d.member == "prefetch"
                && d.pointer
                    .strip_prefix("/prefetch/")
                    .and_then(|rest| rest.split('/').next())
                    .is_some_and(|key| service.required_prefetch.iter().any(|r| r == key))
        }) {
            return Err(Refusal::invalid(
                &broken.pointer,
                "the value of a required prefetch key must be a FHIR resource (an object with a resourceType) or null",
            ));
        }
        if let Pass::First {
            missing_content_type,
        } = pass
        {
            if missing_content_type {
                hook_request.deviations.push(Deviation {
                    member: "Content-Type",
                    pointer: String::new(),
                    problem: "no Content-Type header; the body was read as application/json".into(),
                });
            }
            record_deviations(&hook_request);
        }
        if hook_request.hook != service.hook.as_str() {
            return Err(Refusal::invalid(
                "/hook",
                format!(
                    "service '{}' answers the {} hook, not '{}'",
                    service.id, service.hook, hook_request.hook
                ),
            ));
        }
        if service.hook.is_order_hook() {
            crate::protocol::drafts::check(
                hook_request.context.draft_orders,
                &hook_request.context.selections,
            )
            .map_err(Refusal::bad_request)?;
        }
        let (fetched, medications_fetched) = match pass {
            Pass::Fetched {
                fetched,
                medications_fetched,
            } => (fetched, medications_fetched),
            // Offline: what was sent is all there is (tests, benches, fuzzing).
            Pass::Offline => (Vec::new(), true),
            Pass::First { .. } => {
                let keys = prefetch::keys_to_fetch(
                    service,
                    &hook_request.prefetch,
                    &hook_request.context_values,
                );
                // Taken only when there is something to fetch: the server
                // may still serve referenced Medications below.
                match hook_request.fhir_server.take_if(|_| !keys.is_empty()) {
                    Some(server) => {
                        return Ok(Step::Fetch(FetchPlan {
                            keys,
                            medications: Vec::new(),
                            already: Vec::new(),
                            server,
                            token: hook_request
                                .fhir_authorization
                                .take()
                                .map(|a| a.access_token),
                            context_values: std::mem::take(&mut hook_request.context_values),
                            hook_instance: std::mem::take(&mut hook_request.hook_instance),
                        }))
                    }
                    None => (Vec::new(), false),
                }
            }
        };
        let mut record = prefetch::resolve(
            service,
            std::mem::take(&mut hook_request.prefetch),
            &fetched,
            &hook_request.context_values,
        )
        .map_err(|unsatisfied| {
            Refusal::precondition_failed(
                unsatisfied
                    .keys
                    .into_iter()
                    .map(|(key, reason)| {
                        Issue::error(
                            "incomplete",
                            format!("required prefetch '{key}' is missing: {reason}"),
                            Some(format!("/prefetch/{key}")),
                        )
                    })
                    .collect(),
            )
        })?;
        record.keep_patient(hook_request.context.patient_id.as_deref());
        warn_of_other_patients(&record, &escape_for_log(&hook_request.hook_instance, 100));
        // A draft may reference a Medication fetched in an earlier round.
        let medication_pages = fetched
            .iter()
            .filter(|(key, _)| key.starts_with("Medication/"))
            .filter_map(|(_, r)| r.as_ref().ok());
        // Or one the prefetch included.
        let drafts = match hook_request.context.draft_orders {
            Some(raw) => record_knowing(
                std::iter::once(raw.get())
                    .chain(medication_pages.flat_map(|p| p.documents.iter().map(String::as_str))),
                &record.included,
            ),
            None => record_from([]),
        };
        // Prefetch templates carry no `_include` (outside the query subset
        // CDS Hooks recommends): a medicine an order references but nobody
        // included is fetched by id, once, from a fhirServer.
        if !medications_fetched && hook_request.fhir_server.is_some() {
            let mut wanted = record.unresolved_medications();
            wanted.extend(drafts.unresolved_medications());
            wanted.sort();
            wanted.dedup();
            wanted.truncate(crate::record::MAX_MEDICATION_FETCHES);
            if !wanted.is_empty() {
                drop(drafts);
                drop(record);
                return Ok(Step::Fetch(FetchPlan {
                    keys: Vec::new(),
                    medications: wanted,
                    already: fetched,
                    server: hook_request.fhir_server.take().unwrap_or_default(),
                    token: hook_request
                        .fhir_authorization
                        .take()
                        .map(|a| a.access_token),
                    context_values: std::mem::take(&mut hook_request.context_values),
                    hook_instance: std::mem::take(&mut hook_request.hook_instance),
                }));
            }
        }
        let drafts = drafts.medications;
        // So is an order of the record whose medicine could not be read (a
        // Medication neither sent nor fetched: at most 50 are fetched).
        let unread_orders = record
            .medications
            .iter()
            .filter(|m| m.medicine == MedicineKnown::Unread)
            .count();
        if unread_orders > 0 {
            record.unread.push(Unread {
                key: "Medication".into(),
                reason: format!(
                    "{unread_orders} medication order(s) name their medicine only by a reference that could not be read (not sent, and not fetched: at most {} are fetched per call); they were not checked",
                    crate::record::MAX_MEDICATION_FETCHES
                ),
            });
        }
        // A draft whose medicine nobody could read is said, not hidden.
        record.unread.extend(
            drafts
                .iter()
                .filter(|d| d.medicine == MedicineKnown::Unread)
                .map(|d| Unread {
                    key: "draftOrders".into(),
                    reason: format!(
                        "{} names its medicine only by a reference that could not be read: it was not checked (for quinine among others)",
                        d.reference
                    ),
                }),
        );
        let note = format!(
            "hook {} instance {} patient {}: {} resources read, {} malformed skipped, {} duplicates, {} other types, {} another patient's",
            service.id,
            escape_for_log(&hook_request.hook_instance, 100),
            escape_for_log(hook_request.context.patient_id.as_deref().unwrap_or("-"), 100),
            record.stats.read,
            record.stats.malformed,
            record.stats.duplicates,
            record.stats.other_types,
            record.stats.other_patient
        );
        let (response, records) = p.engine.run(&Evaluation {
            hook: service.hook,
            record: &record,
            draft_orders: &drafts,
            selections: &hook_request.context.selections,
            encounter_id: hook_request.context.encounter_id.as_deref(),
            patient_id: hook_request.context.patient_id.as_deref(),
            now: arrived,
        });
        Ok(Step::Answered(Answer {
            response,
            records,
            note,
            hook_instance: hook_request.hook_instance,
            patient_id: hook_request.context.patient_id,
            stats: record.stats,
        }))
    })
}

/// Each tolerated defect: a warning naming the member and its pointer, and
/// `request_deviations_total{member}` (a fixed set of member names).
fn record_deviations(request: &HookRequest) {
    for deviation in &request.deviations {
        metrics::counter!("request_deviations_total", "member" => deviation.member).increment(1);
        log::warn!(
            "hook {}: tolerated deviation in {} at '{}': {}",
            escape_for_log(&request.hook_instance, 100),
            deviation.member,
            escape_for_log(&deviation.pointer, 100),
            escape_for_log(&deviation.problem, 300)
        );
    }
}

/// A posted FHIR Bundle (/analyze, `evaluate`) to an answer: the Bundle's
/// draft MedicationRequests are the orders of an order hook.
pub fn analyze_bundle(
    engine: &Engine,
    max_entries: usize,
    hook: Hook,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Answer, Refusal> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Refusal::invalid("/", format!("the body is not UTF-8: {e}")))?;
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(Refusal::bad_request(vec![json_syntax_issue(&error)]));
    }
    if crate::fhir::resource_type_of(text) != Some("Bundle") {
        return Err(Refusal::invalid(
            "/resourceType",
            "the body must be a FHIR Bundle (resourceType \"Bundle\")",
        ));
    }
    within_entry_limit(max_entries, || {
        let mut builder = RecordBuilder::new();
        if builder.add_json(text) != Payload::Data {
            return Err(Refusal::invalid(
                "/",
                "the body is not a readable FHIR Bundle",
            ));
        }
        let mut record = builder.finish();
        record.keep_patient(None);
        let analysis = format!("analyze-{}", uuid::Uuid::new_v4());
        warn_of_other_patients(&record, &analysis);
        let chart = Chart {
            hook,
            bundle: text,
            drafts: Drafts::InBundle,
            selections: &[],
            encounter_id: None,
            patient_id: None,
            now,
        };
        Ok(answer_for(engine, record, &chart, analysis))
    })
}

/// Another patient's resources in a request are an EHR fault (a prefetch
/// query without its patient filter, say): worth an alert, though the
/// record has already dropped them.
fn warn_of_other_patients(record: &PatientRecord, request: &str) {
    let count = record.stats.other_patient;
    if count > 0 {
        metrics::counter!("other_patient_resources_total").increment(count as u64);
        log::warn!("{request}: {count} resource(s) of another patient skipped");
    }
}

/// A hook call answered from what the request holds, without fetching:
/// the request path as production runs it, for tests, benches and fuzzing.
pub fn answer_without_fetching(
    p: &Pipeline,
    service_id: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Answer, Refusal> {
    match hook_call(p, service_id, body, Pass::Offline, now)? {
        Step::Answered(answer) => Ok(answer),
        Step::Fetch(_) => Err(Refusal::internal("an offline pass asked to fetch")),
    }
}

/// Where the draft orders of a chart come from.
#[derive(Clone, Copy)]
pub enum Drafts<'a> {
    /// The Bundle's own draft MedicationRequests are the orders being
    /// written (order hooks only), as /analyze reads a posted Bundle.
    InBundle,
    /// A separate Bundle of draft orders, as `context.draftOrders`.
    Separate(Option<&'a str>),
}

/// A patient's chart and the hook context it is evaluated in.
pub struct Chart<'a> {
    pub hook: Hook,
    /// A FHIR Bundle of the patient's resources.
    pub bundle: &'a str,
    pub drafts: Drafts<'a>,
    pub selections: &'a [String],
    pub encounter_id: Option<&'a str>,
    /// The patient the call is for; None: the Bundle's own Patient.
    pub patient_id: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// A chart to an answer (the record is read as the hook path reads
/// prefetch; unreadable resources are skipped and counted in `stats`).
pub fn evaluate_chart(engine: &Engine, chart: &Chart) -> Answer {
    let mut record = record_from([chart.bundle]);
    record.keep_patient(chart.patient_id);
    let analysis = format!("chart-{}", uuid::Uuid::new_v4());
    warn_of_other_patients(&record, &analysis);
    answer_for(engine, record, chart, analysis)
}

fn answer_for(
    engine: &Engine,
    mut record: PatientRecord,
    chart: &Chart,
    hook_instance: String,
) -> Answer {
    let drafts = match chart.drafts {
        Drafts::InBundle => split_drafts(&mut record, chart.hook),
        Drafts::Separate(Some(text)) => record_from([text]).medications,
        Drafts::Separate(None) => Vec::new(),
    };
    let patient_id = match chart.patient_id {
        Some(id) => Some(id.to_owned()),
        None => record.patient_reference().map(str::to_owned),
    };
    let note = format!(
        "{} for {}: {} resources read, {} malformed skipped, {} another patient's",
        chart.hook,
        patient_id.as_deref().unwrap_or("no patient"),
        record.stats.read,
        record.stats.malformed,
        record.stats.other_patient
    );
    let (response, records) = engine.run(&Evaluation {
        hook: chart.hook,
        record: &record,
        draft_orders: &drafts,
        selections: chart.selections,
        encounter_id: chart.encounter_id,
        patient_id: chart.patient_id,
        now: chart.now,
    });
    Answer {
        response,
        records,
        note,
        hook_instance,
        patient_id,
        stats: record.stats,
    }
}

/// The engine's input for a patient-view of a record already read: for the
/// stage-by-stage benchmarks, which time the rules and the cards alone.
pub fn patient_view<'a>(record: &'a PatientRecord<'a>, now: DateTime<Utc>) -> Evaluation<'a> {
    Evaluation {
        hook: Hook::PatientView,
        record,
        draft_orders: &[],
        selections: &[],
        encounter_id: None,
        patient_id: None,
        now,
    }
}

/// The store's records of an answer's cards, counted by type.
pub fn issued_cards(
    service_id: &str,
    answer: &Answer,
    patient_id: Option<&str>,
    issued_at: DateTime<Utc>,
) -> Vec<IssuedCard> {
    answer
        .records
        .iter()
        .map(|record| {
            let card_type = record.topic.code();
            metrics::counter!("cds_cards_total", "service" => service_id.to_owned(), "card_type" => card_type)
                .increment(1);
            IssuedCard {
                uuid: record.uuid,
                service_id: service_id.to_owned(),
                hook_instance: answer.hook_instance.clone(),
                card_type: card_type.to_owned(),
                finding_codes: record.findings.clone(),
                suggestion_uuids: record.suggestions.clone(),
                patient_id: patient_id.map(str::to_owned),
                issued_at,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::knowledge::KnowledgeBase;
    use crate::rules::RuleSettings;

    /// The store's records come from the assessment, yet say what the
    /// cards show: same ids, topics, findings (in order) and suggestions.
    #[test]
    fn the_records_match_the_cards_they_were_made_with() {
        let kb = Arc::new(KnowledgeBase::embedded().unwrap());
        let engine = Engine::new(kb, RuleSettings::default()).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/examples");
        let mut cards = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".json") || name == "index.json" {
                continue;
            }
            let bundle = std::fs::read(&path).unwrap();
            for hook in Hook::ALL {
                let answer = analyze_bundle(&engine, usize::MAX, hook, &bundle, Utc::now())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let records = issued_cards("s", &answer, None, Utc::now());
                assert_eq!(records.len(), answer.response.cards.len(), "{name}");
                for (record, card) in records.iter().zip(&answer.response.cards) {
                    let codes: Vec<&str> = card.finding_codes().collect();
                    let recorded: Vec<&str> =
                        record.finding_codes.iter().map(|c| c.as_str()).collect();
                    assert_eq!(record.uuid, card.uuid, "{name}");
                    assert_eq!(record.card_type, card.source.topic.code, "{name}");
                    assert_eq!(recorded, codes, "{name} {}", record.card_type);
                    let suggestions: Vec<uuid::Uuid> =
                        card.suggestions.iter().map(|s| s.uuid).collect();
                    assert_eq!(record.suggestion_uuids, suggestions, "{name}");
                    cards += 1;
                }
            }
        }
        assert!(cards >= 8, "only {cards} cards: the examples changed?");
    }
}
