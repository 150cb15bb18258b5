//! Whose data: only `replaced-by`/`replaces` links on the context patient's
//! own Patient resource merge another record's resources into theirs.

use serde_json::{json, Value};

use crate::helpers::*;

const SERVICE: &str = "/cds-services/leg-cramps-patient-view";

/// p1 documents cramps; a diabetes Condition is filed under `other`.
fn request(p1_links: Value, other_links: Value) -> Value {
    let mut request = patient_view_request();
    let mut patient = patient();
    patient["link"] = p1_links;
    let diabetes = json!({
        "resourceType": "Condition", "id": "dm-of-other",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9", "display": "Type 2 diabetes mellitus"}]},
        "subject": {"reference": "Patient/other"}
    });
    let other = json!({"resourceType": "Patient", "id": "other", "link": other_links});
    request["prefetch"]["patient"] = patient;
    request["prefetch"]["conditions"] = searchset(vec![cramp_condition(), diabetes, other]);
    request
}

async fn merged(app: &TestApp, p1_links: Value, other_links: Value) -> bool {
    let body = assert_valid_cards(
        app.post_json(SERVICE, &request(p1_links, other_links))
            .await,
    )
    .await;
    body.to_string().contains("dm-of-other")
}

#[tokio::test]
async fn a_seealso_link_merges_nothing_and_only_the_patients_own_merge_links_do() {
    let app = spawn_app().await;
    let link = |kind: &str| json!([{"other": {"reference": "Patient/other"}, "type": kind}]);
    let to_p1 = |kind: &str| json!([{"other": {"reference": "Patient/p1"}, "type": kind}]);
    assert!(!merged(&app, link("seealso"), json!([])).await, "seealso");
    assert!(!merged(&app, link("refer"), json!([])).await, "refer");
    assert!(
        !merged(
            &app,
            json!([{"other": {"reference": "Patient/other"}}]),
            json!([])
        )
        .await,
        "untyped"
    );
    // Declared only on the other patient's resource: anyone could write it.
    assert!(
        !merged(&app, json!([]), to_p1("replaces")).await,
        "declared by the other record"
    );
    assert!(
        !merged(&app, json!([]), to_p1("replaced-by")).await,
        "declared by the other record"
    );
    // The patient's own record says it was merged: the same person.
    assert!(merged(&app, link("replaces"), json!([])).await, "replaces");
    assert!(
        merged(&app, link("replaced-by"), json!([])).await,
        "replaced-by"
    );
}
