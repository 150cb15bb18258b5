//! The store stays bounded whatever clients send (issue #21): feedback
//! floods, huge strings, retention, and the summary over a million cards.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{AnyPool, Row};

use crate::feedback::issue_cards;
use crate::helpers::*;
use crate::postgres::postgres_database;

const FEEDBACK: &str = "/cds-services/leg-cramps-patient-view/feedback";
const SUMMARY: &str = "/cds-services/leg-cramps-patient-view/feedback/summary";

async fn database(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(url)
        .await
        .expect("the test database opens")
}

async fn count(pool: &AnyPool, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

fn entry(card: &Value, outcome: &str, second: usize) -> Value {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap()
        + chrono::Duration::seconds(second as i64);
    let mut entry =
        json!({"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": at.to_rfc3339()});
    if outcome == "accepted" {
        entry["acceptedSuggestions"] = json!([{"id": card["suggestions"][0]["uuid"]}]);
    } else {
        entry["overrideReason"] = json!({"reason": {"system": "https://example.org/reasons", "code": format!("r{second}")}});
    }
    entry
}

async fn summary(app: &TestApp) -> Value {
    let response = app.get(SUMMARY).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn row<'a>(summary: &'a Value, topic: &str) -> &'a Value {
    summary["cardTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cardType"] == topic)
        .unwrap()
}

async fn flood_suite(url: String) {
    let app = spawn_app_with(|s| s.database_url = url.clone()).await;
    let cards = issue_cards(&app).await;
    // The DVT card: it has suggestions to accept.
    let dvt = cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "dvt-rule-out")
        .unwrap();
    // 10,000 distinct entries for one card in one request: refused whole.
    let flood: Vec<Value> = (0..10_000)
        .map(|i| entry(dvt, if i % 2 == 0 { "accepted" } else { "overridden" }, i))
        .collect();
    let issues = assert_outcome(
        app.post_json(FEEDBACK, &json!({"feedback": flood})).await,
        413,
    )
    .await;
    assert!(issues[0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("--max-feedback-entries"));
    // The same flood within the limit, 100 at a time: one entry per card and
    // outcome is kept, and the card counts once, under its latest outcome.
    for chunk in 0..20 {
        let entries: Vec<Value> = (chunk * 100..chunk * 100 + 100)
            .map(|i| entry(dvt, if i % 2 == 0 { "accepted" } else { "overridden" }, i))
            .collect();
        let response = app.post_json(FEEDBACK, &json!({"feedback": entries})).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    // An older entry arriving late changes nothing.
    assert_eq!(
        app.post_json(FEEDBACK, &json!({"feedback": [entry(dvt, "accepted", 0)]}))
            .await
            .status(),
        200
    );
    let pool = database(&url).await;
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM feedback").await,
        2,
        "one row per card and outcome"
    );
    let summary = summary(&app).await;
    let counted = row(&summary, "dvt-rule-out");
    assert_eq!(
        (
            counted["issued"].as_u64(),
            counted["accepted"].as_u64(),
            counted["overridden"].as_u64()
        ),
        (Some(1), Some(0), Some(1)),
        "{summary:#}"
    );
    assert_eq!(counted["changedOutcome"], 1, "{summary:#}");
    assert_eq!(
        summary["overrideReasons"],
        json!([{"cardType": "dvt-rule-out", "system": "https://example.org/reasons", "code": "r1999", "count": 1}])
    );

    // Huge strings: an override display is refused with its pointer, and so
    // is a huge hookInstance (the store would cut it to 256 characters).
    let mut huge = entry(dvt, "overridden", 5000);
    huge["overrideReason"]["reason"]["display"] = json!("x".repeat(7 * 1024 * 1024));
    let issues = assert_outcome(
        app.post_json(FEEDBACK, &json!({"feedback": [huge]})).await,
        400,
    )
    .await;
    assert_eq!(
        pointers(&issues),
        ["/feedback/0/overrideReason/reason/display"]
    );
    let mut request = patient_view_request();
    request["hookInstance"] = json!("h".repeat(1024 * 1024));
    let issues = assert_outcome(
        app.post_json("/cds-services/leg-cramps-patient-view", &request)
            .await,
        400,
    )
    .await;
    assert!(
        pointers(&issues).contains(&"/hookInstance".to_owned()),
        "{issues:?}"
    );
    summary_after_flush(&app).await;
    assert!(
        count(
            &pool,
            "SELECT CAST(MAX(LENGTH(hook_instance)) AS BIGINT) FROM issued_cards"
        )
        .await
            <= 256
    );
    pool.close().await;
}

/// The summary waits for queued cards to be written.
async fn summary_after_flush(app: &TestApp) -> Value {
    summary(app).await
}

#[tokio::test]
async fn feedback_floods_and_huge_strings_leave_the_store_bounded_on_sqlite() {
    flood_suite(temporary_sqlite()).await;
}

#[tokio::test]
async fn feedback_floods_and_huge_strings_leave_the_store_bounded_on_postgres() {
    if let Some(url) = postgres_database().await {
        flood_suite(url).await;
    }
}

/// Starts an app on `url` and waits until its store answers.
async fn ready_app(url: &str) -> TestApp {
    let app = spawn_app_with(|s| s.database_url = url.to_owned()).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.get(SUMMARY).await.status() != 200 {
        assert!(Instant::now() < deadline, "the store did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app
}

#[tokio::test]
async fn cards_past_retention_are_deleted_with_their_feedback() {
    let _turn = crate::helpers::heavy_turn().await;
    let url = temporary_sqlite();
    let first = ready_app(&url).await;
    issue_cards(&first).await;
    summary(&first).await;
    let pool = database(&url).await;
    let old = (chrono::Utc::now() - chrono::Duration::days(500)).timestamp_millis();
    for i in 0..3 {
        sqlx::query(
            "INSERT INTO issued_cards (card_uuid, service_id, hook_instance, card_type, finding_codes, suggestion_uuids, issued_at) \
             VALUES ($1, 'leg-cramps-patient-view', 'h', 'risk-factors', 'older-age', '', $2)",
        )
        .bind(format!("old-{i}"))
        .bind(old)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO feedback (entry_id, card_uuid, service_id, outcome, accepted_suggestions, has_comment, outcome_at, received_at) \
             VALUES ($1, $2, 'leg-cramps-patient-view', 'accepted', '', 0, $3, $3)",
        )
        .bind(format!("e-{i}"))
        .bind(format!("old-{i}"))
        .bind(old)
        .execute(&pool)
        .await
        .unwrap();
    }
    let recent = count(&pool, "SELECT COUNT(*) FROM issued_cards").await - 3;
    // A replica starting on the store prunes at once, then every hour.
    let _second = ready_app(&url).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&pool, "SELECT COUNT(*) FROM issued_cards").await != recent {
        assert!(Instant::now() < deadline, "old cards were not pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM feedback WHERE card_uuid LIKE 'old-%'"
        )
        .await,
        0
    );
    assert!(recent > 0, "recent cards stay");
    pool.close().await;
}

/// A million cards over the last 29 days, a third accepted and a third
/// overridden: the summary reads hourly counts, not the cards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_over_a_million_cards_answers_in_under_200_ms() {
    let _turn = crate::helpers::heavy_turn().await;
    const CARDS: i64 = 1_000_000;
    let url = temporary_sqlite();
    drop(ready_app(&url).await);
    let pool = database(&url).await;
    let now = chrono::Utc::now().timestamp_millis();
    let started = Instant::now();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1) \
         INSERT INTO issued_cards (card_uuid, service_id, hook_instance, card_type, finding_codes, suggestion_uuids, issued_at, \
                                   outcome, outcome_at, override_code, outcome_changed) \
         SELECT 'card-' || i, 'leg-cramps-patient-view', 'h', \
                CASE i % 4 WHEN 0 THEN 'risk-factors' WHEN 1 THEN 'medication-culprits' WHEN 2 THEN 'dvt-rule-out' ELSE 'quinine-warning' END, \
                CASE i % 4 WHEN 0 THEN 'older-age hypokalemia' WHEN 1 THEN 'loop-diuretic' WHEN 2 THEN 'dvt-signs' ELSE 'quinine' END, \
                '', $2 - i * 2500, \
                CASE i % 3 WHEN 0 THEN 'accepted' WHEN 1 THEN 'overridden' ELSE NULL END, \
                CASE i % 3 WHEN 2 THEN NULL ELSE $2 END, \
                CASE i % 3 WHEN 1 THEN 'not-relevant' ELSE NULL END, \
                CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END \
         FROM n",
    )
    .bind(CARDS)
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    // As if these cards predated the counts: the next start builds them.
    sqlx::query("DELETE FROM settings WHERE name = 'card-counts-built'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    eprintln!("a million cards written in {:?}", started.elapsed());
    let started = Instant::now();
    let app = ready_app(&url).await;
    eprintln!(
        "counts built and the store ready in {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let summary = summary(&app).await;
    let took = started.elapsed();
    eprintln!("summary over {CARDS} cards in {took:?}");
    let total = |member: &str| {
        summary["cardTypes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[member].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(total("issued"), CARDS, "{summary:#}");
    assert_eq!(total("accepted"), (CARDS + 2) / 3);
    assert_eq!(total("overridden"), (CARDS + 1) / 3);
    assert_eq!(total("changedOutcome"), CARDS / 10);
    assert_eq!(row(&summary, "risk-factors")["issued"], CARDS / 4);
    let older_age = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["finding"] == "older-age")
        .unwrap();
    assert_eq!(older_age["issued"], CARDS / 4);
    let reasons: i64 = summary["overrideReasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .sum();
    assert_eq!(reasons, (CARDS + 1) / 3);
    assert!(took < Duration::from_millis(200), "{took:?}");
}
