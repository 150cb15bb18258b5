//! The database dies mid-run: hooks keep answering, feedback says 503, and
//! everything recovers when the database comes back. The database is a real
//! PostgreSQL; the outage is a proxy in front of it that drops every
//! connection and refuses new ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::feedback::{accepted, issue_cards, overridden};
use crate::helpers::*;
use crate::postgres::postgres_database;

struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (is_down, live) = (down.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_down.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                live.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            port,
            down,
            connections,
        }
    }

    fn kill(&self) {
        self.down.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn revive(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn hooks_keep_answering_while_the_database_is_down() {
    let Some(url) = postgres_database().await else {
        return;
    };
    let (prefix, rest) = url.split_once('@').unwrap();
    let (host_port, database) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(host_port.to_owned()).await;
    let through_proxy = format!("{prefix}@127.0.0.1:{}/{database}", proxy.port);
    let app = spawn_app_with(move |s| s.database_url = through_proxy).await;
    let feedback = "/cds-services/leg-cramps-patient-view/feedback";

    let before = issue_cards(&app).await;
    assert_eq!(
        app.post_json(feedback, &accepted(&before[0]))
            .await
            .status(),
        200
    );

    proxy.kill();
    let started = Instant::now();
    let during = issue_cards(&app).await;
    assert!(!during.is_empty(), "cards are still answered");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the outage must not slow hooks down: {:?}",
        started.elapsed()
    );
    assert_outcome(app.post_json(feedback, &overridden(&before[1])).await, 503).await;
    assert_outcome(app.get("/readyz").await, 503).await;
    assert_outcome(
        app.get("/cds-services/leg-cramps-patient-view/feedback/summary")
            .await,
        503,
    )
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("store_failures_total"),
        "the failure is counted"
    );

    proxy.revive();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app
            .post_json(feedback, &overridden(&before[1]))
            .await
            .status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "feedback did not recover: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get("/readyz").await.status(), 200);
}

/// The card writer keeps its connection between batches while answers
/// come. When that connection dies in between (here its server process is
/// ended, as a database restart or a dropped proxy would), the next batch
/// begins again on a fresh connection instead of being lost.
#[tokio::test]
async fn a_writer_connection_lost_between_batches_costs_no_card() {
    use cramp_cds::store::{IssuedCard, Store};
    use sqlx::Connection;

    let Some(url) = postgres_database().await else {
        return;
    };
    let answer = || {
        vec![IssuedCard {
            uuid: uuid::Uuid::now_v7(),
            service_id: "leg-cramps-patient-view".into(),
            hook_instance: uuid::Uuid::nil().to_string(),
            card_type: "risk-factors".into(),
            finding_codes: Vec::new(),
            suggestion_uuids: Vec::new(),
            patient_id: None,
            issued_at: chrono::Utc::now(),
        }]
    };
    let store = Store::open(&url, None, 30).unwrap();
    assert!(store.wait_until_ready(Duration::from_secs(10)).await);
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();

    // One answer written: the writer now waits for the next tick, holding
    // its connection.
    store.record_cards(answer()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while cards_written(&mut admin).await < 1 {
        assert!(Instant::now() < deadline, "the first card was not written");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!ended.is_empty(), "the writer's connection was ended");
    store.record_cards(answer()).await;
    store.close().await;
    assert_eq!(
        cards_written(&mut admin).await,
        2,
        "the card after the lost connection was written"
    );
}

async fn cards_written(database: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM issued_cards")
        .fetch_one(database)
        .await
        .unwrap()
}
