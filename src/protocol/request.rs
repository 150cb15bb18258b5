//! The hook request: parsed once, validated against schemas/request.schema.json
//! on a shallow copy (each prefetch value reduced to its resourceType, which is
//! all CDS Hooks says about it), then read into typed parts.
//!
//! Well-formed FHIR JSON (every prefetch value a resource with `resourceType`
//! first, every element the rules read in its FHIR shape) is read in one typed
//! pass, prefetch included. Anything else is read again the careful way: the
//! prefetch values kept raw, for the record builder to read entry by entry so
//! that a bad resource costs only itself, and for errors to name the member.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::fhir::model::FhirValue;
use crate::fhir::outcome::Issue;
use crate::fhir::resource_type_of;
use crate::validation::Schemas;

/// A validated hook request, borrowing from the request body.
#[derive(Debug)]
pub struct HookRequest<'a> {
    /// Defects tolerated in members the rules do not read.
    pub deviations: Vec<Deviation>,
    pub hook: String,
    pub hook_instance: String,
    pub fhir_server: Option<String>,
    pub fhir_authorization: Option<FhirAuthorization>,
    pub context: HookContext<'a>,
    /// The context's top-level primitive members as text, for prefetch templates.
    pub context_values: BTreeMap<String, String>,
    /// Every prefetch key the client sent; `None` is an explicit `null`.
    pub prefetch: BTreeMap<String, Option<Prefetched<'a>>>,
}

/// A prefetch value as the request's reading left it.
#[derive(Debug)]
pub enum Prefetched<'a> {
    /// Read in the request's typed pass.
    Read(FhirValue<'a>),
    /// Kept as raw JSON: the request had to be read the careful way.
    Raw(&'a RawValue),
}

impl Prefetched<'_> {
    pub fn is_operation_outcome(&self) -> bool {
        match self {
            Prefetched::Read(value) => matches!(value, FhirValue::OperationOutcome),
            Prefetched::Raw(raw) => resource_type_of(raw.get()) == Some("OperationOutcome"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HookContext<'a> {
    /// Not read by the rules: a value that is not a string is a tolerated
    /// deviation, read as absent.
    #[serde(deserialize_with = "lenient_string")]
    pub user_id: Option<String>,
    pub patient_id: Option<String>,
    pub encounter_id: Option<String>,
    /// order-select: the "Type/id" of the orders just selected.
    pub selections: Vec<String>,
    #[serde(borrow)]
    pub draft_orders: Option<&'a RawValue>,
}

/// The bearer token for the EHR's FHIR server. It is never logged: Debug
/// prints no token. Its other members (token_type, expires_in, scope,
/// subject) are not needed to use it: their defects are tolerated.
#[derive(Clone, Deserialize)]
pub struct FhirAuthorization {
    pub access_token: String,
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        _ => None,
    })
}

/// How a request's defects in members the rules do not read are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conformance {
    /// Answer, and record each defect as a deviation (the default).
    Tolerant,
    /// Refuse them with a 400, for conformance testing (`--strict`).
    Strict,
}

/// A tolerated defect: which member (a fixed name, for the metric's label),
/// its JSON pointer, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    pub member: &'static str,
    pub pointer: String,
    pub problem: String,
}

/// What a schema issue says, without the value it quotes.
fn issue_kind(diagnostics: &str) -> &'static str {
    if diagnostics.contains("is not of type") {
        "wrong type"
    } else if diagnostics.contains("does not match") || diagnostics.contains("is not a") {
        "wrong format"
    } else if diagnostics.contains("longer than") || diagnostics.contains("shorter than") {
        "wrong length"
    } else {
        "not valid"
    }
}

/// The longest hookInstance kept (it is logged and stored): beyond this it
/// is refused even when its format is tolerated.
pub const MAX_HOOK_INSTANCE_CHARS: usize = 256;

/// The member a schema issue is about, when the rules do not read it and its
/// defect can be tolerated; None for everything else.
fn tolerable(issue: &Issue, shallow: &Value) -> Option<&'static str> {
    let pointer = issue.expression.first()?.as_str();
    match pointer {
        // Its format only: a missing hookInstance, or not a string, stays a 400.
        "/hookInstance" => shallow
            .get("hookInstance")
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty() && text.chars().count() <= MAX_HOOK_INSTANCE_CHARS)
            .map(|_| "hookInstance"),
        "/context/userId" => Some("context.userId"),
        // A prefetch value that is not a FHIR resource: the record builder
        // reads it as unreadable data (a required key: 412 naming it; an
        // optional one: said on the cards; a key not asked for: ignored).
        _ if pointer.starts_with("/prefetch/") => Some("prefetch"),
        _ => match pointer.strip_prefix("/fhirAuthorization/") {
            Some(member)
                if !member.is_empty() && member.split('/').next() != Some("access_token") =>
            {
                Some("fhirAuthorization")
            }
            _ => None,
        },
    }
}

impl fmt::Debug for FhirAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FhirAuthorization")
            .field("access_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The top level, every member but `prefetch` kept raw.
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "'de: 'a, P: Deserialize<'de>")
)]
struct Envelope<'a, P> {
    #[serde(borrow)]
    hook: Option<&'a RawValue>,
    #[serde(borrow)]
    hook_instance: Option<&'a RawValue>,
    #[serde(borrow)]
    fhir_server: Option<&'a RawValue>,
    #[serde(borrow)]
    fhir_authorization: Option<&'a RawValue>,
    #[serde(borrow)]
    context: Option<&'a RawValue>,
    prefetch: Option<P>,
}

/// `prefetch` in the single typed pass: fails on anything but FHIR JSON in
/// the shape the rules read.
type TypedPrefetch<'a> = UniqueKeys<Option<FhirValue<'a>>>;

/// A key as a JSON pointer token (RFC 6901: `~` and `/` escaped).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Prefetch values by key, and the keys given twice: of a key given twice
/// (a quinine order's Bundle, then `null`), which value counts would be a
/// guess, so the call is refused, as for the request's own members.
struct UniqueKeys<V> {
    values: BTreeMap<String, V>,
    twice: Vec<String>,
}

impl<V> Default for UniqueKeys<V> {
    fn default() -> Self {
        UniqueKeys {
            values: BTreeMap::new(),
            twice: Vec::new(),
        }
    }
}

impl<V> UniqueKeys<V> {
    fn read<'de, A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Self, A::Error>
    where
        V: Deserialize<'de>,
    {
        let mut keys = UniqueKeys::default();
        while let Some((key, value)) = map.next_entry::<String, V>()? {
            if keys.values.insert(key.clone(), value).is_some() {
                keys.twice.push(key);
            }
        }
        Ok(keys)
    }

    /// A 400 naming each key given twice.
    fn refuse_twice(&self) -> Result<(), Vec<Issue>> {
        if self.twice.is_empty() {
            return Ok(());
        }
        Err(self
            .twice
            .iter()
            .map(|key| {
                Issue::error(
                    "invalid",
                    "this prefetch key is given twice: which value counts would be a guess",
                    Some(format!("/prefetch/{}", pointer_token(key))),
                )
            })
            .collect())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueKeys<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeysVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for KeysVisitor<V> {
            type Value = UniqueKeys<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of prefetch values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                UniqueKeys::read(map)
            }
        }
        deserializer.deserialize_map(KeysVisitor(std::marker::PhantomData))
    }
}

/// `prefetch` read in the same pass as the envelope: an object's values are
/// kept raw; anything else is kept as a value for the schema to reject.
enum PrefetchMember<'a> {
    Values(UniqueKeys<&'a RawValue>),
    Other(Value),
}

impl<'de: 'a, 'a> Deserialize<'de> for PrefetchMember<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;
        impl<'de> serde::de::Visitor<'de> for MemberVisitor {
            type Value = PrefetchMember<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of prefetch values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                UniqueKeys::read(map).map(PrefetchMember::Values)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(PrefetchMember::Other(Value::Array(Vec::new())))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PrefetchMember::Other(Value::String(v.to_owned())))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(PrefetchMember::Other(Value::Bool(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(PrefetchMember::Other(Value::from(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(PrefetchMember::Other(Value::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(PrefetchMember::Other(Value::from(v)))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(PrefetchMember::Other(Value::Null))
            }
        }
        deserializer.deserialize_any(MemberVisitor)
    }
}

/// Parses and validates a hook request body, tolerating defects in members
/// the rules do not read (see `parse_hook_request_in`).
pub fn parse_hook_request<'a>(
    body: &'a [u8],
    schemas: &Schemas,
) -> Result<HookRequest<'a>, Vec<Issue>> {
    parse_hook_request_in(body, schemas, Conformance::Tolerant)
}

/// Parses and validates a hook request body. Every failure is the client's:
/// the issues name the JSON pointer and the problem. `Tolerant`: a schema
/// issue in a member the rules do not read (hookInstance's format, userId,
/// fhirAuthorization but its access_token) becomes a deviation instead.
pub fn parse_hook_request_in<'a>(
    body: &'a [u8],
    schemas: &Schemas,
    conformance: Conformance,
) -> Result<HookRequest<'a>, Vec<Issue>> {
    let text = std::str::from_utf8(body).map_err(|e| {
        vec![Issue::error(
            "structure",
            format!("the body is not UTF-8: {e}"),
            None,
        )]
    })?;
    let (members, prefetch_summary, prefetch) =
        match serde_json::from_str::<Envelope<TypedPrefetch>>(text) {
            Ok(envelope) => {
                if let Some(keys) = &envelope.prefetch {
                    keys.refuse_twice()?;
                }
                let summary = envelope.prefetch.as_ref().map(|keys| {
                    let summaries = keys.values.iter().map(|(key, value)| {
                        let summary = match value {
                            Some(value) => {
                                summarise(Value::String(value.resource_type().to_owned()))
                            }
                            None => Value::Null,
                        };
                        (key.clone(), summary)
                    });
                    Value::Object(summaries.collect())
                });
                let members = envelope_members(&envelope);
                let prefetch = envelope.prefetch.unwrap_or_default().values;
                let prefetch = prefetch
                    .into_iter()
                    .map(|(key, value)| (key, value.map(Prefetched::Read)))
                    .collect();
                (members, summary, prefetch)
            }
            Err(_) => {
                let envelope: Envelope<PrefetchMember> =
                    serde_json::from_str(text).map_err(|e| vec![json_syntax_issue(&e)])?;
                let summary = envelope.prefetch.as_ref().map(|prefetch| match prefetch {
                    PrefetchMember::Values(keys) => Value::Object(
                        keys.values
                            .iter()
                            .map(|(key, value)| (key.clone(), resource_summary(value)))
                            .collect(),
                    ),
                    PrefetchMember::Other(value) => value.clone(),
                });
                let members = envelope_members(&envelope);
                if let Some(PrefetchMember::Values(keys)) = &envelope.prefetch {
                    keys.refuse_twice()?;
                }
                let prefetch = match envelope.prefetch {
                    Some(PrefetchMember::Values(keys)) => keys
                        .values
                        .into_iter()
                        .map(|(key, value)| {
                            (
                                key,
                                (value.get() != "null").then_some(Prefetched::Raw(value)),
                            )
                        })
                        .collect(),
                    _ => BTreeMap::new(),
                };
                (members, summary, prefetch)
            }
        };

    let shallow = shallow_document(members, prefetch_summary)?;
    let mut deviations = Vec::new();
    let mut issues = schemas.check_request(&shallow);
    if conformance == Conformance::Tolerant {
        issues.retain(|issue| match tolerable(issue, &shallow) {
            Some(member) => {
                deviations.push(Deviation {
                    member,
                    pointer: issue.expression.first().cloned().unwrap_or_default(),
                    // The kind, never the text: the schema's message quotes
                    // the value, and a token may sit in the wrong member.
                    problem: format!(
                        "{} (the schema's '{}')",
                        issue_kind(&issue.diagnostics),
                        issue.code
                    ),
                });
                false
            }
            None => true,
        });
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let [_, _, _, (_, fhir_authorization), (_, context)] = members;
    let string = |member: &str| {
        shallow
            .get(member)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let context = match context {
        Some(raw) => serde_json::from_str::<HookContext>(raw.get())
            .map_err(|e| vec![member_issue("/context", &e)])?,
        None => HookContext::default(),
    };
    let fhir_authorization = fhir_authorization
        .map(|raw| serde_json::from_str(raw.get()))
        .transpose()
        .map_err(|e| vec![member_issue("/fhirAuthorization", &e)])?;
    let context_values = shallow
        .get("context")
        .and_then(Value::as_object)
        .map(|members| {
            members
                .iter()
                .filter_map(|(name, value)| {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((name.clone(), text))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(HookRequest {
        deviations,
        hook: string("hook").unwrap_or_default(),
        context_values,
        hook_instance: string("hookInstance").unwrap_or_default(),
        fhir_server: string("fhirServer"),
        fhir_authorization,
        context,
        prefetch,
    })
}

type Members<'a> = [(&'static str, Option<&'a RawValue>); 5];

fn envelope_members<'a, P>(envelope: &Envelope<'a, P>) -> Members<'a> {
    [
        ("hook", envelope.hook),
        ("hookInstance", envelope.hook_instance),
        ("fhirServer", envelope.fhir_server),
        ("fhirAuthorization", envelope.fhir_authorization),
        ("context", envelope.context),
    ]
}

/// The request with each prefetch value reduced to `{"resourceType": ...}`:
/// what the schema needs, without building a tree of the patient's chart.
fn shallow_document(members: Members, prefetch: Option<Value>) -> Result<Value, Vec<Issue>> {
    let mut document = Map::new();
    for (name, raw) in members {
        if let Some(raw) = raw {
            let value = if name == "context" {
                context_document(raw)?
            } else {
                serde_json::from_str(raw.get())
                    .map_err(|e| vec![member_issue(&format!("/{name}"), &e)])?
            };
            document.insert(name.to_owned(), value);
        }
    }
    if let Some(prefetch) = prefetch {
        document.insert("prefetch".to_owned(), prefetch);
    }
    Ok(Value::Object(document))
}

/// Context members the service reads; any other is ignored, and so is a
/// value serde_json cannot hold (`1e999999`) in one of them.
const CONTEXT_MEMBERS_READ: [&str; 5] = [
    "userId",
    "patientId",
    "encounterId",
    "selections",
    "draftOrders",
];

fn context_document(raw: &RawValue) -> Result<Value, Vec<Issue>> {
    let Ok(members) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else {
        // Not an object: as a value, for the schema to name the problem.
        return serde_json::from_str(raw.get()).map_err(|e| vec![member_issue("/context", &e)]);
    };
    let mut context = Map::new();
    for (name, value) in members {
        // Only the draft orders' envelope is checked: read as a summary, so
        // a value serde_json cannot hold (1e999999) or deep nesting in a
        // draft's unknown member costs nothing (the drafts are read apart).
        if name == "draftOrders" {
            if let Some(summary) = draft_orders_summary(value) {
                context.insert(name, summary);
                continue;
            }
        }
        match serde_json::from_str(value.get()) {
            Ok(value) => {
                context.insert(name, value);
            }
            Err(e) if CONTEXT_MEMBERS_READ.contains(&name.as_str()) => {
                return Err(vec![member_issue(&format!("/context/{name}"), &e)]);
            }
            Err(_) => {}
        }
    }
    Ok(Value::Object(context))
}

/// The draftOrders Bundle as its schema checks it: `resourceType`, `type`,
/// and each entry's `fullUrl` and the resource's `resourceType`. None when
/// it is not an object of that shape, to be read whole for the message.
fn draft_orders_summary(raw: &RawValue) -> Option<Value> {
    let members = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()).ok()?;
    let mut summary = Map::new();
    for (name, value) in members {
        let value = match name.as_str() {
            "resourceType" | "type" => serde_json::from_str(value.get()).ok()?,
            "entry" => {
                let entries = serde_json::from_str::<Vec<&RawValue>>(value.get()).ok()?;
                let mut summarised = Vec::with_capacity(entries.len());
                for entry in entries {
                    let members =
                        serde_json::from_str::<BTreeMap<String, &RawValue>>(entry.get()).ok()?;
                    let mut out = Map::new();
                    for (name, value) in members {
                        match name.as_str() {
                            "fullUrl" => {
                                out.insert(name, serde_json::from_str(value.get()).ok()?);
                            }
                            "resource" => {
                                out.insert(name, resource_summary(value));
                            }
                            _ => {}
                        }
                    }
                    summarised.push(Value::Object(out));
                }
                Value::Array(summarised)
            }
            _ => continue,
        };
        summary.insert(name, value);
    }
    Some(Value::Object(summary))
}

fn summarise(resource_type: Value) -> Value {
    let mut summary = Map::new();
    summary.insert("resourceType".to_owned(), resource_type);
    Value::Object(summary)
}

/// An object becomes `{"resourceType": <its value>}` (skipping the rest at
/// full speed); an array becomes `[]` and a scalar stays, for the schema to
/// reject with the right message.
fn resource_summary(raw: &RawValue) -> Value {
    #[derive(Deserialize)]
    struct Sniff {
        #[serde(rename = "resourceType")]
        resource_type: Option<Value>,
    }
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            // Usually a few bytes at the start; otherwise one skipping pass.
            let resource_type = match resource_type_of(text) {
                Some(name) => Some(Value::String(name.to_owned())),
                None => serde_json::from_str::<Sniff>(text)
                    .ok()
                    .and_then(|s| s.resource_type),
            };
            resource_type.map_or_else(|| Value::Object(Map::new()), summarise)
        }
        Some(b'[') => Value::Array(Vec::new()),
        _ => serde_json::from_str(text).unwrap_or(Value::Null),
    }
}

pub(crate) fn json_syntax_issue(error: &serde_json::Error) -> Issue {
    // serde's own words, without the name of our Rust type.
    let detail = error
        .to_string()
        .replace("struct Envelope with 6 elements", "a JSON object")
        .replace("struct Envelope", "a JSON object");
    let problem = match error.classify() {
        serde_json::error::Category::Eof => "the JSON ends too early",
        // Valid JSON all the same: a number no reader here can hold.
        serde_json::error::Category::Syntax if detail.starts_with("number out of range") => {
            "the body holds a number too large to read"
        }
        serde_json::error::Category::Syntax => "the body is not valid JSON",
        serde_json::error::Category::Data => "the body is not a CDS Hooks request object",
        serde_json::error::Category::Io => "the body could not be read",
    };
    Issue::error(
        "structure",
        format!("{problem}: {detail}"),
        Some("/".into()),
    )
}

fn member_issue(pointer: &str, error: &serde_json::Error) -> Issue {
    Issue::error(
        "invalid",
        format!("{pointer}: {error}"),
        Some(pointer.to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors_speak_of_json_not_of_rust() {
        let schemas = Schemas::compile().unwrap();
        let said = |body: &str| {
            parse_hook_request(body.as_bytes(), &schemas).err().unwrap()[0]
                .diagnostics
                .clone()
        };
        let array = said("[]");
        assert!(
            array.contains("a JSON object") && !array.contains("Envelope"),
            "{array}"
        );
        let huge = said("1e999999");
        assert!(huge.contains("number too large"), "{huge}");
        let early = said("{");
        assert!(
            early.contains("ends too early") && early.contains("line 1 column 1"),
            "{early}"
        );
    }

    /// A tolerated deviation is logged: its text must not carry the value,
    /// which may be a token an EHR put in the wrong member.
    #[test]
    fn a_deviation_names_the_member_and_the_kind_never_the_value() {
        let schemas = Schemas::compile().unwrap();
        let body = serde_json::json!({
            "hook": "patient-view",
            "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "fhirServer": "https://ehr.example.org/fhir",
            "fhirAuthorization": {"access_token": "t", "token_type": ["SECRET-TOKEN-abc123"], "expires_in": 300, "scope": "s", "subject": "x"},
            "context": {"userId": "Practitioner/1", "patientId": "p1"},
            "prefetch": {}
        })
        .to_string();
        let request = parse_hook_request(body.as_bytes(), &schemas).unwrap();
        assert_eq!(request.deviations.len(), 1);
        let deviation = &request.deviations[0];
        assert_eq!(deviation.pointer, "/fhirAuthorization/token_type");
        assert!(
            !deviation.problem.contains("SECRET"),
            "{}",
            deviation.problem
        );
        assert!(
            deviation.problem.contains("wrong type"),
            "{}",
            deviation.problem
        );
    }
}
