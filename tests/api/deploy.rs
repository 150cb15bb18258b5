//! The Kubernetes manifests (deploy/kubernetes/) validated against the
//! Kubernetes schemas by kubernetes-validate (PyPI; the schemas ship inside
//! the package, so this runs offline), strictly (an unknown or misspelled
//! field fails), and checked against what the image does.

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// None when the tool is missing (allowed unless CRAMP_CDS_REQUIRE_DEPLOY).
fn validate(version: &str, files: &[PathBuf]) -> Option<(bool, String)> {
    let output = match Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", version])
        .args(files)
        .output()
    {
        Ok(output) => output,
        Err(_) => {
            assert!(
                std::env::var_os("CRAMP_CDS_REQUIRE_DEPLOY").is_none(),
                "kubernetes-validate is not installed (pip install kubernetes-validate)"
            );
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Some((output.status.success(), text))
}

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    let files = manifests();
    let kinds: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for kind in [
        "kind: Deployment",
        "kind: Service",
        "kind: PodDisruptionBudget",
        "kind: HorizontalPodAutoscaler",
        "kind: NetworkPolicy",
        "kind: Secret",
    ] {
        assert!(kinds.contains(kind), "no {kind} in deploy/kubernetes");
    }
    // The oldest release still supported by its makers, and the newest the
    // package knows.
    for version in ["1.31.0", "1.37.0"] {
        let Some((ok, text)) = validate(version, &files) else {
            return;
        };
        assert!(ok, "Kubernetes {version}:\n{text}");
    }
}

#[test]
fn the_validator_rejects_a_misspelled_field() {
    // So that a passing validation above means something.
    let deployment = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/deployment.yaml"),
    )
    .unwrap();
    let broken = deployment.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem");
    assert_ne!(broken, deployment);
    let path = std::env::temp_dir().join(format!("cramp-cds-broken-{}.yaml", std::process::id()));
    std::fs::write(&path, broken).unwrap();
    let result = validate("1.37.0", std::slice::from_ref(&path));
    std::fs::remove_file(&path).ok();
    let Some((ok, text)) = result else {
        return;
    };
    assert!(!ok, "{text}");
    assert!(text.contains("readOnlyRootFileSystem"), "{text}");
}

#[test]
fn the_deployment_runs_the_image_as_its_user_read_only_with_the_secrets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deployment =
        std::fs::read_to_string(root.join("deploy/kubernetes/deployment.yaml")).unwrap();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    // The user the image declares is the one the pod runs as.
    assert!(dockerfile.contains("USER 10001:10001"));
    for needed in [
        "runAsUser: 10001",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "path: /readyz",
        "path: /healthz",
        "key: database-url",
        "key: patient-hash-key",
        "key: issuers.json",
        "value: /etc/cramp-cds/issuers.json",
    ] {
        assert!(
            deployment.contains(needed),
            "deployment.yaml lacks {needed}"
        );
    }
    // The grace period outlasts the preStop pause plus the service's drain.
    let number = |key: &str| -> u64 {
        let at = deployment.find(key).unwrap_or_else(|| panic!("{key}")) + key.len();
        let rest = deployment[at..].trim_start_matches([' ', '"', '\n']);
        rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()]
            .parse()
            .unwrap()
    };
    let grace = number("terminationGracePeriodSeconds:");
    let pause = number("seconds:");
    let drain = number("CRAMP_CDS_SHUTDOWN_TIMEOUT_SECS\n              value:");
    assert!(grace > pause + drain, "{grace} <= {pause} + {drain}");
}

/// The release build is trained on these calls (tools/pgo/build.sh, the
/// Dockerfile): every one must be answered 200, or the build stops, and a
/// profile of error paths would train the wrong code.
#[tokio::test]
async fn the_profile_guided_build_trains_on_calls_the_service_answers() {
    let app = crate::helpers::spawn_app().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new("python3")
        .arg(root.join("tools/pgo/train.py"))
        .args(["service", &app.address, "1"])
        .output()
        .await
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    // Every scenario and example chart, each hook among them.
    let scenarios = std::fs::read_dir(root.join("tests/scenarios"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    let calls: usize = text
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        calls > scenarios,
        "{calls} calls for {scenarios} scenarios: {text}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for service in ["patient-view", "order-select", "order-sign"] {
        let answered =
            format!("service=\"leg-cramps-{service}\",method=\"POST\",status=\"200\"}} ");
        assert!(metrics.contains(&answered), "no 200 from {service}");
    }
}
