//! The real binary as an operator runs it: its log and its secure default.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::auth::{claims, issuers_file, key_server, sign, ISSUER};
use crate::helpers::patient_view_request;

pub const BINARY: &str = env!("CARGO_BIN_EXE_cramp-cds");

/// Starts the binary, waits for its "listening on" line, returns it and the port.
pub fn start(args: &[&str]) -> (Child, u16, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(BINARY)
        .args(args)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(at) = line
            .find("listening on ")
            .filter(|_| child.try_wait().ok().flatten().is_none())
        {
            // "listening on 127.0.0.1:PORT", in a text or a JSON line.
            let after_host = &line[at..][line[at..].find(':').unwrap() + 1..];
            let port = after_host
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap();
            return (child, port, stderr);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the service did not start: {line}");
}

#[tokio::test]
async fn tokens_never_reach_the_log() {
    let keys = key_server().await;
    let issuers = issuers_file(json!([{"iss": ISSUER, "jwksUrl": keys.jwks_url}]));
    let (mut child, port, mut stderr) = start(&[
        "--port",
        "0",
        "--issuers",
        issuers.to_str().unwrap(),
        "--fhir-server-allow",
        "http://127.0.0.1:9/fhir",
    ]);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let audience = format!("{base}/cds-services/leg-cramps-patient-view");
    let good = sign(Algorithm::ES384, "test-es384", &claims(&audience));
    let bad = sign(Algorithm::ES384, "no-such-key", &claims(&audience));
    let access_token = "access-token-that-must-not-be-logged-7c1e";
    let mut request = patient_view_request();
    request["fhirServer"] = json!("http://127.0.0.1:9/fhir");
    request["fhirAuthorization"] = json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cds"});
    request["prefetch"]
        .as_object_mut()
        .unwrap()
        .remove("observations");
    for token in [&good, &bad] {
        let response = client
            .post(&audience)
            .bearer_auth(token)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 401 | 412),
            "{}",
            response.status()
        );
    }
    terminate(&mut child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert!(
        log.contains("401 for POST"),
        "the refusal is logged with its reason:\n{log}"
    );
    assert!(
        log.contains("fetching 'observations' failed"),
        "the fetch failure is logged:\n{log}"
    );
    for secret in [good.as_str(), bad.as_str(), access_token] {
        assert!(!log.contains(secret), "a token reached the log");
    }
    // Not even a piece of a JWT (its signature is the unique part).
    for token in [&good, &bad] {
        assert!(!log.contains(token.rsplit('.').next().unwrap()));
    }
}

#[test]
fn a_public_address_without_issuers_is_refused() {
    let output = Command::new(BINARY)
        .args(["--host", "0.0.0.0", "--port", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to serve 0.0.0.0 without authentication"),
        "{stderr}"
    );
}

#[test]
fn allow_unauthenticated_serves_and_says_so_loudly() {
    let mut child = Command::new(BINARY)
        .args([
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--allow-unauthenticated",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        seen.push_str(&line);
        line.clear();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen.contains("AUTHENTICATION IS OFF"), "{seen}");
}

/// Stops the binary as an operator (or a container runtime) does, with
/// SIGTERM, and waits for it: its log lines are all written by then.
pub fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        child.wait().unwrap().success(),
        "SIGTERM is a clean shutdown"
    );
}

/// Feedback survives a graceful restart of the real binary.
async fn feedback_survives_a_restart(database_url: &str) {
    use crate::feedback::{accepted, issue_cards, summary};
    use crate::helpers::TestApp;

    let (mut child, port, mut stderr) = start(&["--port", "0", "--database-url", database_url]);
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
    };
    let cards = issue_cards(&app).await;
    let dvt = cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "dvt-rule-out")
        .unwrap();
    assert_eq!(
        app.post_json(
            "/cds-services/leg-cramps-patient-view/feedback",
            &accepted(dvt)
        )
        .await
        .status(),
        200
    );

    terminate(&mut child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert!(
        log.contains("closing the store") && log.contains("stopped"),
        "{log}"
    );

    let (mut child, port, _stderr) = start(&["--port", "0", "--database-url", database_url]);
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
    };
    let after = summary(&app).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let dvt_row = after["cardTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cardType"] == "dvt-rule-out")
        .unwrap();
    assert_eq!(
        (dvt_row["issued"].as_u64(), dvt_row["accepted"].as_u64()),
        (Some(1), Some(1)),
        "{after:#}"
    );
}

#[tokio::test]
async fn feedback_survives_a_restart_on_sqlite() {
    feedback_survives_a_restart(&crate::helpers::temporary_sqlite()).await;
}

#[tokio::test]
async fn feedback_survives_a_restart_on_postgres() {
    let Some(url) = crate::postgres::postgres_database().await else {
        return;
    };
    feedback_survives_a_restart(&url).await;
}

/// Calls patient-view on the binary at `port` with this request id; its status.
async fn patient_view_as(port: u16, request_id: &str) -> u16 {
    reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/cds-services/leg-cramps-patient-view"
        ))
        .header("X-Request-Id", request_id)
        .json(&patient_view_request())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Log lines are written in blocks, but an access line reaches the log
/// within a moment while the service runs, not only at shutdown.
#[tokio::test]
async fn access_lines_reach_the_log_while_the_service_runs() {
    let (mut child, port, stderr) = start(&[
        "--port",
        "0",
        "--database-url",
        &crate::helpers::temporary_sqlite(),
    ]);
    let (lines, arriving) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    assert_eq!(patient_view_as(port, "written-while-running").await, 200);
    let sent = Instant::now();
    let deadline = sent + Duration::from_secs(5);
    let found = loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break false;
        };
        match arriving.recv_timeout(left) {
            Ok(line) if line.contains("[written-while-running]") && line.contains(" 200 ") => {
                break true
            }
            Ok(_) => {}
            Err(_) => break false,
        }
    };
    let waited = sent.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "the access line was not written within 5 s");
    // The clock writes every 20 ms; a second allows for a loaded CI machine.
    assert!(waited < Duration::from_secs(1), "{waited:?}");
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let (mut child, port, mut stderr) = start(&[
        "--port",
        "0",
        "--log-format",
        "json",
        "--database-url",
        &crate::helpers::temporary_sqlite(),
    ]);
    assert_eq!(patient_view_as(port, "ci-request-42").await, 200);
    terminate(&mut child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let hook_line = lines
        .iter()
        .find(|l| {
            l["message"].as_str().is_some_and(|m| {
                m.contains("\"POST /cds-services/leg-cramps-patient-view\" 200")
                    && m.contains(" hook leg-cramps-patient-view instance ")
            })
        })
        .expect("the hook is logged");
    assert_eq!(hook_line["request_id"], "ci-request-42");
    let lines_for_the_call = lines
        .iter()
        .filter(|l| l["request_id"] == "ci-request-42")
        .count();
    assert_eq!(lines_for_the_call, 1, "one access line per request:\n{log}");
    assert_eq!(hook_line["level"], "INFO");
}

#[tokio::test]
async fn another_patients_resources_are_a_warning_and_a_metric_without_their_ids() {
    let (child, port, stderr) = start(&[
        "--port",
        "0",
        "--database-url",
        &crate::helpers::temporary_sqlite(),
    ]);
    let mut request = patient_view_request();
    request["context"]["patientId"] = json!("p9");
    let client = reqwest::Client::new();
    let response = client
        .post(format!(
            "http://127.0.0.1:{port}/cds-services/leg-cramps-patient-view"
        ))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (metrics, log) = metrics_then_log(child, port, stderr).await;
    // The patient, the cramp, the furosemide and the potassium are all p1's.
    assert!(
        metrics.contains("other_patient_resources_total 4"),
        "{metrics}"
    );
    let warning = log
        .lines()
        .find(|l| l.contains("of another patient skipped"))
        .expect("a warning");
    assert!(
        warning.contains("WARN") && warning.contains(": 4 resource(s)"),
        "{warning}"
    );
    assert!(
        !warning.contains("p1"),
        "the other patient is not named: {warning}"
    );
    let access = log
        .lines()
        .find(|l| l.contains(" hook leg-cramps-patient-view instance "))
        .expect("the access line");
    assert!(access.contains("4 another patient's"), "{access}");
}

/// A malformed request is the client's fault: actix's parser logs it as an
/// ERROR, which the service turns into a counted INFO line, so no client
/// can fill the log with ERRORs.
#[tokio::test]
async fn malformed_http_makes_no_error_lines() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let database = crate::helpers::temporary_sqlite();
    let (child, port, stderr) = start(&["--port", "0", "--database-url", &database]);
    for _ in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad\x01Header: y\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    }
    let (metrics, log) = metrics_then_log(child, port, stderr).await;
    assert!(!log.lines().any(|l| l.contains(" ERROR ")), "{log}");
    assert!(log.contains("client protocol error"), "{log}");
    assert!(metrics.contains("http_protocol_errors_total"), "{metrics}");
}

/// The running binary's metrics, then its whole log once it has stopped.
async fn metrics_then_log(
    mut child: Child,
    port: u16,
    mut stderr: BufReader<std::process::ChildStderr>,
) -> (String, String) {
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    terminate(&mut child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    (metrics, log)
}
