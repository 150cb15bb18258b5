//! The `cramp-cds` binary itself: `evaluate` and `--help`.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::helpers::{cramp_condition, patient, quinine_draft, schemas};

const BINARY: &str = env!("CARGO_BIN_EXE_cramp-cds");
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/cds-hooks/examples/cramps-dialysis-diabetes.json"
);

#[test]
fn evaluate_prints_the_cds_hooks_response() {
    let output = Command::new(BINARY)
        .args(["evaluate", EXAMPLE])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let response: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(schemas().check_response(&response).is_empty());
    assert_eq!(
        response["cards"][0]["source"]["topic"]["code"],
        "risk-factors"
    );
}

#[test]
fn evaluate_reads_stdin_and_prints_text_for_order_hooks() {
    let bundle = json!({"resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": patient()}, {"resource": cramp_condition()}, {"resource": quinine_draft()}]});
    let mut child = Command::new(BINARY)
        .args(["evaluate", "--format", "text", "--hook", "order-sign", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bundle.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("[CRITICAL] Quinine"), "{text}");
    assert!(
        text.contains("suggestion: Remove the quinine order (recommended)"),
        "{text}"
    );
}

#[test]
fn evaluate_fails_clearly_on_bad_input() {
    let output = Command::new(BINARY)
        .args(["evaluate", "/nonexistent/bundle.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/bundle.json"));
    let output = Command::new(BINARY)
        .args(["evaluate", "--hook", "encounter-start", EXAMPLE])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn help_documents_every_setting_and_its_environment_variable() {
    let output = Command::new(BINARY)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in [
        "CRAMP_CDS_HOST",
        "CRAMP_CDS_PORT",
        "CRAMP_CDS_PUBLIC_BASE_URL",
        "CRAMP_CDS_MAX_BODY_BYTES",
        "CRAMP_CDS_CORS_ORIGINS",
        "CRAMP_CDS_KNOWLEDGE_DIR",
    ] {
        assert!(help.contains(variable), "{variable} missing from --help");
    }
}
