//! Start-up refuses a knowledge directory whose files name something that
//! does not exist: the real binary, pointed at a broken copy of
//! cds-hooks/knowledge/, exits with an error naming the file and the key.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::process::BINARY;

/// A copy of the knowledge directory with one JSON file edited.
fn broken_copy(name: &str, file: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/knowledge");
    let copy = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("knowledge-{name}"));
    let _ = std::fs::remove_dir_all(&copy);
    copy_tree(&source, &copy);
    let path = copy.join(file);
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, json.to_string()).unwrap();
    copy
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Starts the binary on the directory; it must exit, failing, before it
/// serves (or opens a database: it runs in the copy's directory).
fn start_up_error(dir: &Path) -> String {
    let output = Command::new(BINARY)
        .args(["--port", "0", "--knowledge-dir"])
        .arg(dir)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "started: {stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    stderr
}

fn entry<'a>(json: &'a mut Value, list: &str, key: &str, id: &str) -> &'a mut Value {
    json[list]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e[key] == id)
        .unwrap()
}

#[test]
fn an_intact_copy_is_accepted_by_the_checks() {
    // The broken copies below fail for their edit, not for being copies.
    let dir = broken_copy("intact", "findings.json", |_| {});
    cramp_cds::knowledge::KnowledgeBase::from_dir(&dir).expect("the copy loads");
}

#[test]
fn an_unknown_finding_fails_start_up() {
    let dir = broken_copy("unknown-finding", "labs.json", |json| {
        entry(json, "labs", "analyte", "potassium")["finding"] = "hypokalaemia-typo".into();
    });
    let stderr = start_up_error(&dir);
    assert!(
        stderr.contains("labs.json: 'potassium' names unknown finding 'hypokalaemia-typo'"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_source_fails_start_up() {
    let dir = broken_copy("unknown-source", "findings.json", |json| {
        entry(json, "findings", "code", "dialysis")["sources"]
            .as_array_mut()
            .unwrap()
            .push("bmj-2099".into());
    });
    let stderr = start_up_error(&dir);
    assert!(
        stderr.contains("findings.json: 'dialysis' cites unknown source 'bmj-2099'"),
        "{stderr}"
    );
    let dir = broken_copy("unknown-order-source", "orders.json", |json| {
        entry(json, "orders", "id", "dvt-d-dimer")["sources"] = serde_json::json!(["nice-2099"]);
    });
    let stderr = start_up_error(&dir);
    assert!(
        stderr.contains("orders.json: 'dvt-d-dimer' cites unknown source 'nice-2099'"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_text_key_fails_start_up() {
    // A next step named on a guidance page that statements.json lacks.
    let dir = broken_copy("unknown-statement", "guidance.json", |json| {
        entry(json, "topics", "topic", "risk-factors")["nextSteps"]
            .as_array_mut()
            .unwrap()
            .push("stretchng".into());
    });
    let stderr = start_up_error(&dir);
    assert!(
        stderr.contains("guidance.json: 'risk-factors' names unknown statement 'stretchng'"),
        "{stderr}"
    );
    // A placeholder the renderer does not fill.
    let dir = broken_copy("unknown-placeholder", "statements.json", |json| {
        entry(json, "statements", "id", "next-step")["text"] = "Next step: {setp}".into();
    });
    let stderr = start_up_error(&dir);
    assert!(
        stderr.contains("statements.json: 'next-step' names unknown placeholder '{setp}'"),
        "{stderr}"
    );
    // An order the DVT card offers, missing from orders.json.
    let dir = broken_copy("unknown-order", "orders.json", |json| {
        json["orders"]
            .as_array_mut()
            .unwrap()
            .retain(|o| o["id"] != "dvt-duplex");
    });
    let stderr = start_up_error(&dir);
    assert!(
        stderr.contains("orders.json: 'the cards' names unknown order 'dvt-duplex'"),
        "{stderr}"
    );
}
