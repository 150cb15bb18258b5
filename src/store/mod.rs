//! The store: every card issued and every feedback entry, in SQLite (the
//! default, a file in the working directory) or PostgreSQL (DATABASE_URL
//! postgres://…, for several replicas), through one set of migrations.
//!
//! It runs on its own small runtime, and cards are written by a background
//! writer fed through a bounded queue that it drains on its own clock (every
//! few milliseconds, or at once when a batch fills): an answer pushes its
//! cards under a short lock and wakes the writer only after a quiet spell.
//! A wake-up per answer cost half a context switch per request on two cores
//! (docs/performance.md). A dead database fails fast and never holds up a
//! hook answer; a full queue (hooks answered faster than the
//! database writes) holds each answer at most 250 ms, so that load slows
//! hooks down rather than losing card records. Failures are counted and
//! logged; feedback, which needs the database, answers 503 while it is down.
//!
//! Bounded: feedback keeps one entry per card and outcome, the summary reads
//! hourly counts instead of the cards, and cards older than the retention
//! period are deleted with their feedback every hour.

mod aggregates;
mod summary;
mod used_tokens;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::Any;
use sqlx::Arguments;
use sqlx::{AnyPool, Row};
use tokio::runtime::Runtime;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::knowledge::FindingCode;

pub use summary::{CountRow, OverrideCount, Summary};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
const QUEUE_CAPACITY: usize = 10_000;
const QUEUE_WAIT: Duration = Duration::from_millis(250);
/// Answers per transaction; a full batch wakes the writer before its tick.
const BATCH: usize = 500;
/// How often the writer drains the queue while answers keep coming: one
/// fsync covers every answer of the interval, and no answer wakes it. Each
/// commit rewrites the b-trees' last pages whatever it carries: 20 ms
/// instead of 5 cut SQLite's CPU per card by a quarter (docs/performance.md).
/// Feedback and the summary wait for queued cards, and shutdown writes them.
const TICK: Duration = Duration::from_millis(20);
const HASH_KEY_SETTING: &str = "patient-hash-key";
/// How often cards past the retention period are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Cards deleted per statement while pruning: short transactions.
const PRUNE_BATCH: usize = 500;
/// The stored hook instance (a UUID in CDS Hooks) is cut to this length.
pub const MAX_HOOK_INSTANCE_CHARS: usize = 256;

/// A card as it was sent, without its text.
#[derive(Debug, Clone)]
pub struct IssuedCard {
    pub uuid: Uuid,
    pub service_id: String,
    pub hook_instance: String,
    pub card_type: String,
    pub finding_codes: Vec<FindingCode>,
    pub suggestion_uuids: Vec<Uuid>,
    pub patient_id: Option<String>,
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Overridden,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Overridden => "overridden",
        }
    }
}

/// One CDS Hooks feedback entry, as stored.
#[derive(Debug, Clone)]
pub struct FeedbackEntry {
    pub card: Uuid,
    pub outcome: Outcome,
    pub accepted_suggestions: Vec<Uuid>,
    pub override_reason: Option<OverrideReason>,
    pub has_comment: bool,
    pub outcome_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OverrideReason {
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is not migrated yet.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// No card with this uuid was issued by this service.
    #[error("no card {0} was issued by this service")]
    UnknownCard(Uuid),
    /// The entry accepts a suggestion the card did not carry.
    #[error("card {0} carried no suggestion {1}")]
    UnknownSuggestion(Uuid, Uuid),
}

/// Why the store could not be set up (the database itself may be down:
/// that is not an error at start-up, it is waited for).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("store runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("database URL: {0}")]
    DatabaseUrl(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

struct Shared {
    pool: AnyPool,
    is_sqlite: bool,
    migrated: AtomicBool,
    ready: watch::Sender<bool>,
    /// Set up once: building an HMAC key costs two SHA-256 blocks.
    hash_key: OnceLock<aws_lc_rs::hmac::Key>,
    configured_hash_key: Option<String>,
    settled: watch::Sender<u64>,
    retention: chrono::Duration,
}

/// The runtime the store's tasks run on; shut down without blocking when
/// the store is dropped (possibly inside another runtime).
struct StoreRuntime(Option<Runtime>);

impl Drop for StoreRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Answers' cards waiting for the writer.
#[derive(Default)]
struct Queue {
    pending: std::sync::Mutex<Pending>,
    /// Wakes the writer: a batch filled, or it was idle and work came.
    wake: Notify,
    /// Wakes answers waiting for room in a full queue.
    room: Notify,
}

#[derive(Default)]
struct Pending {
    answers: Vec<Vec<IssuedCard>>,
    /// The writer found the queue empty and sleeps until woken: only the
    /// first answer after a quiet spell wakes it.
    idle: bool,
}

impl Queue {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Nothing held under the lock can be left half-done by a panic.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an answer's cards, or gives them back when the queue is full.
    fn push(&self, cards: Vec<IssuedCard>) -> Result<(), Vec<IssuedCard>> {
        let mut pending = self.pending();
        if pending.answers.len() >= QUEUE_CAPACITY {
            return Err(cards);
        }
        pending.answers.push(cards);
        let wake = pending.answers.len() == BATCH || std::mem::take(&mut pending.idle);
        drop(pending);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Takes up to a batch of answers; marks the writer idle when there are none.
    fn take(&self) -> Vec<Vec<IssuedCard>> {
        let mut pending = self.pending();
        if pending.answers.is_empty() {
            pending.idle = true;
            return Vec::new();
        }
        let at = pending.answers.len().min(BATCH);
        let rest = pending.answers.split_off(at);
        let batch = std::mem::replace(&mut pending.answers, rest);
        // A full batch left behind is written next, not after a tick: `push`
        // wakes the writer only as the queue reaches a batch, so a writer
        // that had fallen behind would otherwise drain one batch per tick.
        let backlog = pending.answers.len() >= BATCH;
        drop(pending);
        if backlog {
            self.wake.notify_one();
        }
        self.room.notify_waiters();
        batch
    }
}

pub struct Store {
    shared: Arc<Shared>,
    queue: Arc<Queue>,
    enqueued: AtomicU64,
    last_queue_warning: std::sync::atomic::AtomicI64,
    /// Answers whose cards are written or counted as lost.
    settled: watch::Receiver<u64>,
    runtime: StoreRuntime,
    description: String,
}

impl Store {
    /// Opens the store lazily: the service starts even when the database is
    /// down, and migrates as soon as it can be reached.
    pub fn open(
        url: &str,
        patient_hash_key: Option<String>,
        retention_days: u32,
    ) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cramp-cds-store")
            .enable_all()
            .build()
            .map_err(OpenError::Runtime)?;
        let pool = {
            let _entered = runtime.enter();
            AnyPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(2))
                .connect_lazy(url)
                .map_err(OpenError::DatabaseUrl)?
        };
        let (settled_tx, settled_rx) = watch::channel(0);
        let shared = Arc::new(Shared {
            pool,
            is_sqlite: url.starts_with("sqlite:"),
            migrated: AtomicBool::new(false),
            ready: watch::channel(false).0,
            hash_key: OnceLock::new(),
            configured_hash_key: patient_hash_key.filter(|k| !k.is_empty()),
            settled: settled_tx,
            retention: chrono::Duration::days(i64::from(retention_days.max(1))),
        });
        let queue = Arc::new(Queue::default());
        runtime.spawn(migrate_until_done(shared.clone()));
        runtime.spawn(write_cards(shared.clone(), queue.clone()));
        Ok(Self {
            shared,
            queue,
            enqueued: AtomicU64::new(0),
            last_queue_warning: std::sync::atomic::AtomicI64::new(0),
            settled: settled_rx,
            runtime: StoreRuntime(Some(runtime)),
            description: describe(url),
        })
    }

    /// Waits until the store is migrated, at most `limit`: start-up waits
    /// so no card of the first requests is lost when the database is up,
    /// and serves without it when it is not.
    pub async fn wait_until_ready(&self, limit: Duration) -> bool {
        let mut ready = self.shared.ready.subscribe();
        let reached = tokio::time::timeout(limit, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok());
        reached
    }

    /// "sqlite (cramp-cds.db)" or "postgres": for logs, never credentials.
    pub fn description(&self) -> &str {
        &self.description
    }

    fn spawn<T: Send + 'static>(
        &self,
        task: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.runtime
            .0
            .as_ref()
            .expect("the store runtime lives as long as the store")
            .spawn(task)
    }

    /// Queues the cards of one answer for writing. When the queue is full
    /// (the database writes slower than hooks are answered), the answer
    /// waits for room, at most QUEUE_WAIT: under load hooks slow to the pace
    /// of the database instead of dropping card records, and a stalled
    /// database costs a hook no more than that wait.
    pub async fn record_cards(&self, cards: Vec<IssuedCard>) {
        if cards.is_empty() {
            return;
        }
        let count = cards.len() as u64;
        self.enqueued.fetch_add(1, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
        let mut cards = cards;
        let queued = loop {
            // Listen for room before trying, so a drain in between is not missed.
            let room = self.queue.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.queue.push(cards) {
                Ok(()) => break true,
                Err(full) => cards = full,
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                break false;
            }
        };
        if !queued {
            metrics::counter!("store_failures_total", "operation" => "queue-cards")
                .increment(count);
            // Once a second at most: an overload must not also flood the log.
            let now = Utc::now().timestamp();
            if self.last_queue_warning.swap(now, Ordering::Relaxed) != now {
                log::error!(
                    "card queue full: cards are not being recorded (see store_failures_total)"
                );
            }
            self.shared.settled.send_modify(|settled| *settled += 1);
        }
    }

    /// Waits (briefly) until every answer's cards queued so far are settled:
    /// written, or counted as not recorded.
    async fn flush(&self) {
        let target = self.enqueued.load(Ordering::SeqCst);
        let mut settled = self.settled.clone();
        let _ =
            tokio::time::timeout(Duration::from_secs(2), settled.wait_for(|n| *n >= target)).await;
    }

    pub async fn is_ready(&self) -> bool {
        let shared = self.shared.clone();
        self.spawn(async move {
            shared.migrated.load(Ordering::SeqCst)
                && tokio::time::timeout(
                    Duration::from_secs(2),
                    sqlx::query("SELECT 1").execute(&shared.pool),
                )
                .await
                .is_ok_and(|r| r.is_ok())
        })
        .await
        .unwrap_or(false)
    }

    /// Stores feedback entries for cards this service issued. Idempotent: an
    /// identical entry sent again changes nothing.
    pub async fn save_feedback(
        &self,
        service_id: &str,
        entries: Vec<FeedbackEntry>,
    ) -> Result<(), StoreError> {
        self.flush().await;
        let shared = self.shared.clone();
        let service_id = service_id.to_owned();
        self.spawn(async move { save_feedback(&shared, &service_id, entries).await })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    pub async fn summary(
        &self,
        service_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Summary, StoreError> {
        self.flush().await;
        let shared = self.shared.clone();
        let service_id = service_id.to_owned();
        self.spawn(async move {
            ready(&shared)?;
            summary::read(&shared.pool, service_id, from, to)
                .await
                .map_err(unavailable)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// Writes what is queued and closes the connections.
    pub async fn close(&self) {
        self.flush().await;
        let shared = self.shared.clone();
        let _ = self.spawn(async move { shared.pool.close().await }).await;
    }
}

fn describe(url: &str) -> String {
    match url.split_once("://") {
        Some(("sqlite", rest)) => format!("sqlite ({})", rest.split('?').next().unwrap_or(rest)),
        Some((scheme, _)) => scheme.to_owned(),
        None => "unknown".into(),
    }
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn ready(shared: &Shared) -> Result<(), StoreError> {
    if shared.migrated.load(Ordering::SeqCst) {
        Ok(())
    } else {
        Err(StoreError::Unavailable(
            "the database is not reachable yet".into(),
        ))
    }
}

async fn migrate_until_done(shared: Arc<Shared>) {
    let mut delay = Duration::from_millis(500);
    loop {
        match migrate(&shared).await {
            Ok(()) => {
                shared.migrated.store(true, Ordering::SeqCst);
                shared.ready.send_replace(true);
                log::info!("store ready");
                prune_forever(shared).await;
                return;
            }
            Err(error) => {
                metrics::counter!("store_failures_total", "operation" => "migrate").increment(1);
                log::error!("store not ready, retrying in {delay:?}: {error}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn migrate(shared: &Shared) -> Result<(), sqlx::Error> {
    if shared.is_sqlite {
        // Write-ahead logging: a commit is one fsync of the log instead of
        // the rollback journal's several, and readers do not block the card
        // writer. synchronous stays FULL: a committed card is on disk. The
        // mode is kept in the database file.
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&shared.pool)
            .await?;
    }
    MIGRATOR.run(&shared.pool).await?;
    aggregates::build_once(&shared.pool).await?;
    let key = match &shared.configured_hash_key {
        Some(key) => key.clone(),
        None => {
            // One key per database, shared by every replica: the first to
            // start makes it.
            let fresh: String = (0..4)
                .map(|_| Uuid::new_v4().simple().to_string())
                .collect();
            sqlx::query(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(HASH_KEY_SETTING)
            .bind(fresh)
            .execute(&shared.pool)
            .await?;
            sqlx::query("SELECT value FROM settings WHERE name = $1")
                .bind(HASH_KEY_SETTING)
                .fetch_one(&shared.pool)
                .await
                .and_then(|row| row.try_get::<String, _>(0))?
        }
    };
    let _ = shared.hash_key.set(aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        key.as_bytes(),
    ));
    Ok(())
}

/// The keyed hash that stands for a patient id in the store.
fn patient_hash(shared: &Shared, patient_id: &str) -> Option<String> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let tag = aws_lc_rs::hmac::sign(shared.hash_key.get()?, patient_id.as_bytes());
    let mut hex = String::with_capacity(tag.as_ref().len() * 2);
    for byte in tag.as_ref() {
        hex.push(HEX[usize::from(byte >> 4)] as char);
        hex.push(HEX[usize::from(byte & 0xf)] as char);
    }
    Some(hex)
}

/// Drains the queue every TICK while answers come (at once when a batch
/// fills), and sleeps while none do, until the next answer wakes it.
///
/// The writer keeps one connection while answers come. Taking whichever the
/// pool handed out next (its longest-idle one) rotated the batches over
/// every open connection, each acquire pinged the connection first, and the
/// sqlx thread of each SQLite connection took its turn on the shared cores.
/// It goes back to the pool when the writer goes idle (closing the pool
/// waits for it) or after an error (it may be broken); a batch whose BEGIN
/// fails on it begins again on a fresh one (`insert_cards`).
async fn write_cards(shared: Arc<Shared>, queue: Arc<Queue>) {
    let mut held: Option<PoolConnection<Any>> = None;
    loop {
        let _ = tokio::time::timeout(TICK, queue.wake.notified()).await;
        let batch = queue.take();
        if batch.is_empty() {
            held = None;
            queue.wake.notified().await;
            continue;
        }
        let answers = batch.len() as u64;
        let cards: Vec<IssuedCard> = batch.into_iter().flatten().collect();
        let count = cards.len() as u64;
        match insert_cards(&shared, &mut held, cards).await {
            Ok(()) => metrics::counter!("store_cards_written_total").increment(count),
            Err(error) => {
                held = None;
                metrics::counter!("store_failures_total", "operation" => "write-cards")
                    .increment(count);
                log::error!("{count} card(s) not recorded: {error}");
            }
        }
        shared.settled.send_modify(|settled| *settled += answers);
    }
}

/// Cards per INSERT statement: one round trip for many rows keeps the
/// writer ahead of thousands of answers a second.
const ROWS_PER_INSERT: usize = 64;
const CARD_COLUMNS: usize = 8;

/// `INSERT … VALUES (…), (…)` for `rows` cards. PostgreSQL numbers its
/// placeholders (`$1`, `$2` …). SQLite gets anonymous `?` ones: sqlx asks
/// SQLite the name of every numbered parameter, a linear search each, and
/// with 512 of them that search was 5% of the server's time at 4 KB.
fn insert_cards_sql(rows: usize, numbered: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO issued_cards (card_uuid, service_id, hook_instance, card_type, finding_codes, suggestion_uuids, patient_hash, issued_at) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..CARD_COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push_str(&format!("${}", row * CARD_COLUMNS + column + 1));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (card_uuid) DO NOTHING");
    sql
}

async fn insert_cards(
    shared: &Shared,
    held: &mut Option<PoolConnection<Any>>,
    cards: Vec<IssuedCard>,
) -> Result<(), StoreError> {
    ready(shared)?;
    let mut tally = aggregates::Tally::default();
    let issued = aggregates::Counts {
        issued: 1,
        ..Default::default()
    };
    for card in &cards {
        let hour = aggregates::hour_of(card.issued_at.timestamp_millis());
        tally.card(
            &card.service_id,
            hour,
            &card.card_type,
            card.finding_codes.iter().map(FindingCode::as_str),
            issued,
        );
    }
    if let Some(connection) = held {
        match sqlx::Connection::begin(&mut **connection).await {
            Ok(transaction) => return write_batch(shared, transaction, tally, cards).await,
            // The held connection may have died since the last batch (the
            // database restarted, a proxy dropped it). Nothing is sent
            // before BEGIN, so the cards go on one the pool checks first.
            Err(error) => {
                log::warn!("the card writer's connection failed ({error}); taking another")
            }
        }
    }
    // Given back before taking another: the pool may be at its limit.
    *held = None;
    let connection = held.insert(shared.pool.acquire().await?);
    let transaction = sqlx::Connection::begin(&mut **connection).await?;
    write_batch(shared, transaction, tally, cards).await
}

/// The batch's cards and their aggregate counts, in one transaction.
async fn write_batch(
    shared: &Shared,
    mut transaction: sqlx::Transaction<'_, Any>,
    tally: aggregates::Tally,
    cards: Vec<IssuedCard>,
) -> Result<(), StoreError> {
    let mut cards = cards.into_iter().peekable();
    // An answer's cards share a patient: hash each patient id once.
    let mut hashed: Option<(String, Option<String>)> = None;
    while cards.peek().is_some() {
        let chunk: Vec<IssuedCard> = cards.by_ref().take(ROWS_PER_INSERT).collect();
        let mut arguments = AnyArguments::default();
        // Sized once: grown bind by bind, the argument vector was copied
        // nine times a statement.
        arguments.reserve(chunk.len() * CARD_COLUMNS, 0);
        let sql = insert_cards_sql(chunk.len(), !shared.is_sqlite);
        for card in chunk {
            bind_card(&mut arguments, shared, card, &mut hashed).map_err(sqlx::Error::Encode)?;
        }
        // Built from constants and row counts only, never from input.
        sqlx::query_with(sqlx::AssertSqlSafe(sql), arguments)
            .execute(&mut *transaction)
            .await?;
    }
    tally.apply(&mut transaction).await?;
    Ok(transaction.commit().await?)
}

/// Adds a card's columns, in `insert_cards_sql`'s order. The card is moved
/// in: its strings become the bound values instead of being copied.
fn bind_card(
    arguments: &mut AnyArguments,
    shared: &Shared,
    card: IssuedCard,
    hashed: &mut Option<(String, Option<String>)>,
) -> Result<(), sqlx::error::BoxDynError> {
    let patient_hash = match card.patient_id {
        None => None,
        Some(id) => {
            if hashed.as_ref().is_none_or(|(seen, _)| *seen != id) {
                let hash = patient_hash(shared, &id);
                *hashed = Some((id, hash));
            }
            hashed.as_ref().and_then(|(_, hash)| hash.clone())
        }
    };
    let mut hook_instance = card.hook_instance;
    if let Some((end, _)) = hook_instance.char_indices().nth(MAX_HOOK_INSTANCE_CHARS) {
        hook_instance.truncate(end);
    }
    arguments.add(card.uuid.to_string())?;
    arguments.add(card.service_id)?;
    arguments.add(hook_instance)?;
    arguments.add(card.card_type)?;
    arguments.add(space_separated(
        card.finding_codes.iter().map(FindingCode::as_str),
    ))?;
    arguments.add(space_separated(&card.suggestion_uuids))?;
    arguments.add(patient_hash)?;
    arguments.add(card.issued_at.timestamp_millis())?;
    Ok(())
}

/// A list column: the items, one space between each.
fn space_separated<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        let _ = write!(text, "{item}");
    }
    text
}

/// A stored card, as feedback reads and updates it.
struct CardState {
    suggestions: String,
    card_type: String,
    findings: String,
    hour: i64,
    outcome: Option<String>,
    outcome_at: Option<i64>,
    reason: [Option<String>; 3],
    changed: bool,
}

/// Feedback's lookup of its card, along the primary key.
const CARD_STATE: &str =
    "SELECT suggestion_uuids, card_type, finding_codes, issued_at, outcome, outcome_at, \
     override_system, override_code, override_display, CAST(outcome_changed AS BIGINT) \
     FROM issued_cards WHERE card_uuid = $1 AND service_id = $2";

async fn card_state(
    shared: &Shared,
    connection: &mut sqlx::AnyConnection,
    service_id: &str,
    card: Uuid,
) -> Result<Option<CardState>, sqlx::Error> {
    // PostgreSQL: two feedback requests for one card update it in turn.
    let lock = if shared.is_sqlite { "" } else { " FOR UPDATE" };
    let row: Option<AnyRow> = sqlx::query(sqlx::AssertSqlSafe(format!("{CARD_STATE}{lock}")))
        .bind(card.to_string())
        .bind(service_id.to_owned())
        .fetch_optional(&mut *connection)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(CardState {
        suggestions: row.try_get(0)?,
        card_type: row.try_get(1)?,
        findings: row.try_get(2)?,
        hour: aggregates::hour_of(row.try_get(3)?),
        outcome: row.try_get(4)?,
        outcome_at: row.try_get(5)?,
        reason: [row.try_get(6)?, row.try_get(7)?, row.try_get(8)?],
        changed: row.try_get::<i64, _>(9)? != 0,
    }))
}

/// Stores each entry (one per card and outcome: a newer one replaces an
/// older), makes the latest entry the card's outcome, and moves the hourly
/// counts with it, all in one transaction.
async fn save_feedback(
    shared: &Shared,
    service_id: &str,
    entries: Vec<FeedbackEntry>,
) -> Result<(), StoreError> {
    ready(shared)?;
    let received_at = Utc::now().timestamp_millis();
    let mut transaction = shared.pool.begin().await.map_err(unavailable)?;
    let mut tally = aggregates::Tally::default();
    for entry in &entries {
        let Some(card) = card_state(shared, &mut transaction, service_id, entry.card)
            .await
            .map_err(unavailable)?
        else {
            return Err(StoreError::UnknownCard(entry.card));
        };
        if let Some(unknown) = entry.accepted_suggestions.iter().find(|s| {
            !card
                .suggestions
                .split(' ')
                .any(|known| known == s.to_string())
        }) {
            return Err(StoreError::UnknownSuggestion(entry.card, *unknown));
        }
        let mut accepted: Vec<String> = entry
            .accepted_suggestions
            .iter()
            .map(Uuid::to_string)
            .collect();
        accepted.sort();
        accepted.dedup();
        let reason = entry.override_reason.as_ref();
        let reason_parts = [
            reason.and_then(|r| r.system.clone()),
            reason.and_then(|r| r.code.clone()),
            reason.and_then(|r| r.display.clone()),
        ];
        let outcome_at = entry.outcome_at.timestamp_millis();
        sqlx::query(
            "INSERT INTO feedback (entry_id, card_uuid, service_id, outcome, accepted_suggestions, override_system, override_code, \
             override_display, has_comment, outcome_at, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (card_uuid, outcome) DO UPDATE SET accepted_suggestions = excluded.accepted_suggestions, \
             override_system = excluded.override_system, override_code = excluded.override_code, \
             override_display = excluded.override_display, has_comment = excluded.has_comment, \
             outcome_at = excluded.outcome_at, received_at = excluded.received_at \
             WHERE excluded.outcome_at >= feedback.outcome_at",
        )
        .bind(entry_id(entry))
        .bind(entry.card.to_string())
        .bind(service_id.to_owned())
        .bind(entry.outcome.as_str())
        .bind(accepted.join(" "))
        .bind(reason_parts[0].clone())
        .bind(reason_parts[1].clone())
        .bind(reason_parts[2].clone())
        .bind(i64::from(entry.has_comment))
        .bind(outcome_at)
        .bind(received_at)
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
        // An entry older than the card's outcome is kept but changes nothing.
        if card.outcome_at.is_some_and(|at| outcome_at < at) {
            continue;
        }
        let new = entry.outcome.as_str();
        let old = card.outcome.as_deref();
        let mut delta = aggregates::Counts::default();
        let mut changed = card.changed;
        if old != Some(new) {
            let mut shift = |outcome: &str, by: i64| match outcome {
                "accepted" => delta.accepted += by,
                "overridden" => delta.overridden += by,
                _ => {}
            };
            if let Some(old) = old {
                shift(old, -1);
            }
            shift(new, 1);
            if old.is_some() && !changed {
                changed = true;
                delta.changed = 1;
            }
        }
        tally.card(
            service_id,
            card.hour,
            &card.card_type,
            card.findings.split(' '),
            delta,
        );
        let [system, code, display] = &card.reason;
        if old == Some("overridden")
            && aggregates::countable_reason(code.as_deref(), display.as_deref())
        {
            tally.reason(
                service_id,
                card.hour,
                &card.card_type,
                [system.as_deref(), code.as_deref(), display.as_deref()],
                -1,
            );
        }
        let [system, code, display] = &reason_parts;
        if entry.outcome == Outcome::Overridden
            && aggregates::countable_reason(code.as_deref(), display.as_deref())
        {
            tally.reason(
                service_id,
                card.hour,
                &card.card_type,
                [system.as_deref(), code.as_deref(), display.as_deref()],
                1,
            );
        }
        sqlx::query(
            "UPDATE issued_cards SET outcome = $1, outcome_at = $2, override_system = $3, override_code = $4, \
             override_display = $5, outcome_changed = $6 WHERE card_uuid = $7",
        )
        .bind(new)
        .bind(outcome_at)
        .bind(reason_parts[0].clone())
        .bind(reason_parts[1].clone())
        .bind(reason_parts[2].clone())
        .bind(i64::from(changed))
        .bind(entry.card.to_string())
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
    }
    tally.apply(&mut transaction).await.map_err(unavailable)?;
    transaction.commit().await.map_err(unavailable)
}

/// One entry per card and outcome.
fn entry_id(entry: &FeedbackEntry) -> String {
    let normalised = format!("{} {}", entry.card, entry.outcome.as_str());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, normalised.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Deletes, every PRUNE_EVERY, cards issued before the retention period,
/// with their feedback and their hours' counts.
async fn prune_forever(shared: Arc<Shared>) {
    loop {
        match prune(&shared).await {
            Ok(0) => {}
            Ok(cards) => log::info!(
                "retention: deleted {cards} card(s) older than {} days with their feedback",
                shared.retention.num_days()
            ),
            Err(error) => {
                metrics::counter!("store_failures_total", "operation" => "prune").increment(1);
                log::error!("retention: pruning failed, retrying in {PRUNE_EVERY:?}: {error}");
            }
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}

/// Retention's walk, oldest first, along `issued_cards_by_time`.
const OLDEST_CARDS: &str =
    "SELECT card_uuid FROM issued_cards WHERE issued_at < $1 ORDER BY issued_at LIMIT $2";

/// Deletes what is past retention, a batch per transaction; returns the
/// number of cards deleted.
async fn prune(shared: &Shared) -> Result<u64, sqlx::Error> {
    let cutoff = (Utc::now() - shared.retention).timestamp_millis();
    let mut deleted = 0;
    loop {
        let mut transaction = shared.pool.begin().await?;
        let batch: Vec<String> = sqlx::query(OLDEST_CARDS)
            .bind(cutoff)
            .bind(PRUNE_BATCH as i64)
            .fetch_all(&mut *transaction)
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        if batch.is_empty() {
            break;
        }
        let placeholders = (1..=batch.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        for table in ["feedback", "issued_cards"] {
            // Built from a table name and placeholder numbers only.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE card_uuid IN ({placeholders})"
            )));
            for uuid in &batch {
                query = query.bind(uuid.clone());
            }
            let rows = query.execute(&mut *transaction).await?.rows_affected();
            metrics::counter!("store_pruned_rows_total", "table" => table).increment(rows);
        }
        transaction.commit().await?;
        deleted += batch.len() as u64;
    }
    let before_hour = aggregates::hour_of(cutoff);
    for table in ["card_counts", "override_counts"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE hour < $1"
        )))
        .bind(before_hour)
        .execute(&shared.pool)
        .await?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: usize) -> Vec<IssuedCard> {
        (0..n)
            .map(|_| IssuedCard {
                uuid: Uuid::now_v7(),
                service_id: "leg-cramps-patient-view".into(),
                hook_instance: Uuid::nil().to_string(),
                card_type: "risk-factors".into(),
                finding_codes: Vec::new(),
                suggestion_uuids: Vec::new(),
                patient_id: None,
                issued_at: Utc::now(),
            })
            .collect()
    }

    #[test]
    fn the_queue_hands_over_answers_in_order_a_batch_at_a_time() {
        let queue = Queue::default();
        for cards in 1..=BATCH + 2 {
            assert!(queue.push(answer(cards % 3 + 1)).is_ok());
        }
        let first = queue.take();
        assert_eq!(first.len(), BATCH);
        assert_eq!(first[0].len(), 2, "the first answer comes first");
        assert_eq!(queue.take().len(), 2, "the rest comes with the next drain");
        assert!(queue.take().is_empty());
    }

    #[test]
    fn a_full_queue_gives_the_cards_back() {
        let queue = Queue::default();
        for _ in 0..QUEUE_CAPACITY {
            assert!(queue.push(answer(1)).is_ok());
        }
        let refused = queue.push(answer(3)).expect_err("no room");
        assert_eq!(
            refused.len(),
            3,
            "the caller keeps its cards to wait for room"
        );
        queue.take();
        assert!(queue.push(refused).is_ok(), "a drain makes room");
    }

    /// Only the first answer after the writer went idle wakes it, and a
    /// wake-up given before the writer waits is not lost.
    #[tokio::test]
    async fn an_idle_writer_is_woken_by_the_next_answer_only() {
        let queue = Queue::default();
        assert!(
            queue.take().is_empty(),
            "the writer finds nothing and goes idle"
        );
        queue.push(answer(1)).unwrap();
        tokio::time::timeout(Duration::from_secs(1), queue.wake.notified())
            .await
            .expect("the first answer after a quiet spell wakes the writer");
        queue.push(answer(1)).unwrap();
        let woken = tokio::time::timeout(Duration::from_millis(50), queue.wake.notified()).await;
        assert!(woken.is_err(), "a busy writer is not woken per answer");
        assert_eq!(queue.take().len(), 2);
    }

    /// A writer that fell behind drains batch after batch: a full batch
    /// left in the queue wakes it again at once.
    #[tokio::test]
    async fn a_backlog_is_written_without_waiting_for_the_tick() {
        let queue = Queue::default();
        for _ in 0..2 * BATCH + 1 {
            queue.push(answer(1)).unwrap();
        }
        let wake = || tokio::time::timeout(Duration::from_secs(1), queue.wake.notified());
        wake().await.expect("reaching a batch wakes the writer");
        assert_eq!(queue.take().len(), BATCH);
        wake()
            .await
            .expect("a full batch left behind wakes the writer again");
        assert_eq!(queue.take().len(), BATCH);
        let woken = tokio::time::timeout(Duration::from_millis(50), queue.wake.notified()).await;
        assert!(woken.is_err(), "less than a batch waits for the tick");
        assert_eq!(queue.take().len(), 1);
    }

    /// The writer holds a connection while answers come and gives it back
    /// when idle: closing the pool waits for every connection, so a writer
    /// that kept one would hang shutdown. Every card is written first.
    #[tokio::test]
    async fn closing_waits_for_the_cards_and_not_for_the_writers_connection() {
        let path = std::env::temp_dir().join(format!("cramp-cds-close-{}.db", Uuid::new_v4()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Store::open(&url, None, 30).unwrap();
        assert!(store.wait_until_ready(Duration::from_secs(10)).await);
        let answers = 3 * BATCH + 7;
        for _ in 0..answers {
            store.record_cards(answer(2)).await;
        }
        tokio::time::timeout(Duration::from_secs(10), store.close())
            .await
            .expect("the store closes once the writer is idle");
        drop(store);
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let written: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM issued_cards")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert_eq!(written, 2 * answers as i64, "no card lost");
    }

    /// Every index on issued_cards costs each card written a b-tree insert,
    /// so each must serve a query the store runs: retention's walk and the
    /// lookup of a card by uuid (feedback). A new index needs a reader here.
    #[tokio::test]
    async fn every_index_on_the_cards_serves_a_query() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        MIGRATOR.run(&pool).await.unwrap();
        let plan = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                rows.iter()
                    .map(|row| row.get::<String, _>("detail"))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        let retention = plan(OLDEST_CARDS).await;
        assert!(
            retention.contains("USING INDEX issued_cards_by_time"),
            "{retention}"
        );
        let lookup = plan(CARD_STATE).await;
        assert!(
            lookup.contains("USING INDEX sqlite_autoindex_issued_cards_1"),
            "{lookup}"
        );
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'issued_cards' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            indexes,
            ["issued_cards_by_time", "sqlite_autoindex_issued_cards_1"]
        );
    }

    #[test]
    fn list_columns_are_space_separated() {
        assert_eq!(space_separated(["a", "b", "c"]), "a b c");
        let one = Uuid::from_u128(1);
        assert_eq!(
            space_separated([Uuid::nil(), one]),
            format!("{} {one}", Uuid::nil())
        );
        assert_eq!(space_separated(Vec::<&str>::new()), "");
    }

    #[test]
    fn multi_row_insert_numbers_every_placeholder_once() {
        let sql = insert_cards_sql(3, true);
        assert!(sql.contains("($1, $2, $3, $4, $5, $6, $7, $8), ($9,") && sql.contains("$24)"));
        assert!(!sql.contains("$25"));
    }

    #[test]
    fn multi_row_insert_for_sqlite_has_one_anonymous_placeholder_per_value() {
        let sql = insert_cards_sql(2, false);
        assert!(
            sql.contains("VALUES (?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT")
        );
        assert_eq!(sql.matches('?').count(), 2 * CARD_COLUMNS);
        assert!(!sql.contains('$'));
    }
}
