//! The tester console in a real browser: Debian's chromium driven by npm
//! playwright-core (tests/browser/), against the real server started here.
//! Skipped where the browser or the npm packages are not installed; CI
//! installs them and sets CRAMP_CDS_REQUIRE_BROWSER=1.

use std::path::{Path, PathBuf};

use crate::helpers::spawn_app;

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    let suite = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let installed =
        suite.join("node_modules/playwright-core").is_dir() && Path::new(CHROMIUM).exists();
    if !installed {
        assert!(
            std::env::var_os("CRAMP_CDS_REQUIRE_BROWSER").is_none(),
            "the browser suite needs chromium and `npm ci` in tests/browser"
        );
        eprintln!("skipping: chromium or tests/browser/node_modules is missing");
        return;
    }
    let app = spawn_app().await;
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let output = tokio::process::Command::new("node")
        .arg("--test")
        .current_dir(&suite)
        .env("CRAMP_CDS_URL", &app.address)
        .env("CRAMP_CDS_ARTIFACTS", &artifacts)
        .output()
        .await
        .expect("node runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}\nscreenshots: {}", artifacts.display());
    assert!(
        output.status.success(),
        "the browser suite failed:\n{report}"
    );
}
