//! Shared by the tests and the benches (included with `#[path]`).

use serde_json::Value;

/// JSON as FHIR servers write it: `resourceType` first in every object.
/// serde_json's own maps sort their keys, which puts it after `code`,
/// `entry`, `id` ... and sends a request down the careful path.
pub fn fhir_order(value: &Value) -> String {
    match value {
        Value::Object(members) => {
            let mut keys: Vec<&String> = members.keys().collect();
            keys.sort_by_key(|key| *key != "resourceType");
            let members: Vec<String> = keys
                .iter()
                .map(|key| {
                    format!(
                        "{}:{}",
                        Value::from(key.as_str()),
                        fhir_order(&members[*key])
                    )
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(fhir_order).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}
