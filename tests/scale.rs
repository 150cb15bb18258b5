//! The scale test (tools/scale/run.sh) with the debug binary this build made:
//! three replicas behind HAProxy, one PostgreSQL, load through the balancer,
//! a replica killed mid-run, a rolling restart, feedback and replay across
//! replicas. A test binary of its own, so that its load never runs beside
//! the other suites. Skipped when haproxy, wrk, PostgreSQL or PyJWT is
//! missing, unless CRAMP_CDS_REQUIRE_SCALE is set (CI sets it).

use std::path::Path;
use std::process::Command;

fn missing_tools() -> Vec<&'static str> {
    let mut missing = Vec::new();
    for tool in ["haproxy", "wrk", "psql"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            missing.push(tool);
        }
    }
    if !Path::new("/usr/lib/postgresql").exists() {
        missing.push("postgresql");
    }
    let pyjwt = Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !pyjwt {
        missing.push("PyJWT");
    }
    missing
}

#[test]
fn three_replicas_behind_haproxy_survive_a_kill_and_a_rolling_restart() {
    let missing = missing_tools();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CRAMP_CDS_REQUIRE_SCALE").is_none(),
            "the scale test needs {missing:?}"
        );
        eprintln!("skipped: the scale test needs {missing:?}");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(format!("{root}/tools/scale/run.sh"))
        .env("CRAMP_CDS_BIN", env!("CARGO_BIN_EXE_cramp-cds"))
        .env("PHASE_SECS", "8")
        .env("TOKENS", "60000")
        .output()
        .expect("tools/scale/run.sh runs");
    let report = String::from_utf8_lossy(&output.stdout);
    // The report, for the CI log.
    println!("{report}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "scale test goals missed:\n{report}"
    );
    assert!(report.contains("scale test: all goals met"), "{report}");
}
