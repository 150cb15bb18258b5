//! Shared by the tests and the fuzz targets (included with `#[path]`).

/// A patient-view call with `bundle` as its `conditions` prefetch and the
/// other required keys `null`.
pub fn with_conditions(bundle: &str) -> String {
    format!(
        r#"{{"hook":"patient-view","hookInstance":"3f1d7c2e-5b8a-4f0e-9c1d-2a6b8e4f0a11","context":{{"userId":"Practitioner/1","patientId":"p1"}},"prefetch":{{"patient":null,"medicationRequests":null,"observations":null,"conditions":{bundle}}}}}"#
    )
}
