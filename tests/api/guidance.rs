//! The guidance pages and the patient handout: served as HTML with a strict
//! policy, cacheable, open without a token, and linked from every card.

use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::{json, Value};

use crate::auth::{key_server, secured_app, ISSUER};
use crate::helpers::*;

const TOPICS: [&str; 4] = [
    "risk-factors",
    "medication-culprits",
    "dvt-rule-out",
    "quinine-warning",
];

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_topic_has_a_cacheable_page_under_a_strict_policy() {
    let app = spawn_app().await;
    let paths = TOPICS
        .iter()
        .map(|t| format!("/guidance/{t}"))
        .chain(["/handouts/leg-cramps".to_owned()]);
    for path in paths {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, CONTENT_TYPE), "text/html; charset=utf-8");
        let csp = header(&response, CONTENT_SECURITY_POLICY);
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(
            !csp.contains("script-src") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(header(&response, CACHE_CONTROL).starts_with("public, max-age="));
        let etag = header(&response, ETAG);
        let html = response.text().await.unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(!html.contains("<script"), "{path}");
        // No asset from anywhere: no external stylesheet, font or image.
        assert!(!html.contains("<link") && !html.contains("<img") && !html.contains("@import"));

        let again = app
            .client
            .get(format!("{}{path}", app.address))
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}: If-None-Match");
        assert_eq!(header(&again, ETAG), etag);
        assert!(again.text().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_pages_say_the_whole_story() {
    let app = spawn_app().await;
    let risk = app
        .get("/guidance/risk-factors")
        .await
        .text()
        .await
        .unwrap();
    for needed in [
        "What triggers this card",
        "Low potassium (hypokalaemia)",
        "potassium: 3.5 mmol/L = 3.5 mEq/L",
        "Red flags",
        "Calf or thigh pain with swelling may be a clot",
        "href=\"/handouts/leg-cramps\"",
    ] {
        assert!(risk.contains(needed), "risk-factors: {needed}");
    }
    let quinine = app
        .get("/guidance/quinine-warning")
        .await
        .text()
        .await
        .unwrap();
    assert!(quinine.contains(
        "href=\"https://www.fda.gov/Drugs/DrugSafety/PostmarketDrugSafetyInformationforPatientsandProviders/ucm218202.htm\""
    ));
    let handout = app.get("/handouts/leg-cramps").await.text().await.unwrap();
    for needed in ["Calf stretch", "Quinine is not a treatment", "@media print"] {
        assert!(handout.contains(needed), "handout: {needed}");
    }
}

#[tokio::test]
async fn an_unknown_page_is_a_404_like_any_other() {
    let app = spawn_app().await;
    let issues = assert_outcome(app.get("/guidance/no-such-topic").await, 404).await;
    let text = issues[0]["diagnostics"].as_str().unwrap();
    assert!(
        text.contains("no-such-topic") && text.contains("risk-factors"),
        "{text}"
    );
    assert_outcome(app.get("/handouts/other").await, 404).await;
    assert_outcome(app.get("/guidance/<script>").await, 404).await;
}

#[tokio::test]
async fn the_pages_need_no_token_when_authentication_is_on() {
    let keys = key_server().await;
    let app = secured_app(json!([{"iss": ISSUER, "jwksUrl": keys.jwks_url}])).await;
    assert_eq!(app.get("/cds-services").await.status(), 401);
    for path in ["/guidance/dvt-rule-out", "/handouts/leg-cramps"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    // An unknown topic is answered 404 without a token: it is not a way
    // around authentication for anything else.
    assert_eq!(app.get("/guidance/nope").await.status(), 404);
    assert_eq!(app.get("/guidance/a/b").await.status(), 401);
}

/// Every card of every example patient links its guidance page, the
/// risk-factors card the handout, under the published base URL.
#[tokio::test]
async fn every_card_links_its_page_under_the_public_base_url() {
    let app = spawn_app_with(|s| {
        s.public_base_url = vec![
            "https://cds.example.org/cramps/".into(),
            "http://other".into(),
        ]
    })
    .await;
    let index: Value = app.get("/examples").await.json().await.unwrap();
    let mut topics_seen = std::collections::BTreeSet::new();
    for patient in index["patients"].as_array().unwrap() {
        let file = patient["file"].as_str().unwrap();
        let bundle: Value = app
            .get(&format!("/examples/{file}"))
            .await
            .json()
            .await
            .unwrap();
        let response = app.post_json("/analyze", &bundle).await;
        assert_eq!(response.status(), 200, "{file}");
        let answer: Value = response.json().await.unwrap();
        for card in answer["cards"].as_array().unwrap() {
            let topic = card["source"]["topic"]["code"].as_str().unwrap();
            topics_seen.insert(topic.to_owned());
            let links = card["links"].as_array().unwrap();
            let why = format!("https://cds.example.org/cramps/guidance/{topic}");
            assert_eq!(
                links[0],
                json!({"label": "Why this card", "url": why, "type": "absolute"}),
                "{file} {topic}"
            );
            assert_eq!(card["source"]["url"], why.as_str());
            let handout = links.iter().any(|l| {
                l == &json!({
                    "label": "Patient handout: leg cramps",
                    "url": "https://cds.example.org/cramps/handouts/leg-cramps",
                    "type": "absolute"
                })
            });
            assert_eq!(handout, topic == "risk-factors", "{file} {topic}: handout");
            assert_eq!(links.len(), 1 + usize::from(handout), "{file} {topic}");
        }
    }
    assert_eq!(
        topics_seen.into_iter().collect::<Vec<_>>(),
        [
            "dvt-rule-out",
            "medication-culprits",
            "quinine-warning",
            "risk-factors"
        ]
    );
}

/// `evaluate` links under its own `--public-base-url`, by default where
/// `cramp-cds` serves, and refuses a base no page can be under.
#[test]
fn evaluate_links_under_its_public_base_url() {
    const EXAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/cds-hooks/examples/cramps-dialysis-diabetes.json"
    );
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cramp-cds"))
            .arg("evaluate")
            .args(extra)
            .arg(EXAMPLE)
            .env_remove("CRAMP_CDS_PUBLIC_BASE_URL")
            .output()
            .unwrap()
    };
    for (extra, expected) in [
        (
            &["--public-base-url", "https://cds.example.org/"][..],
            "https://cds.example.org/guidance/risk-factors",
        ),
        (&[][..], "http://127.0.0.1:8080/guidance/risk-factors"),
    ] {
        let output = run(extra);
        assert!(output.status.success(), "{extra:?}");
        let response: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            response["cards"][0]["links"][0]["url"], expected,
            "{extra:?}"
        );
    }
    let refused = run(&["--public-base-url", "ftp://cds.example.org"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("public base URL"));
}
