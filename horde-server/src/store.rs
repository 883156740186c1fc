//! Durable storage on SQLite: schema migrations, the group-commit writer thread, and loading
//! everything back on start.
//!
//! One dedicated thread owns the write connection. Handlers hand it the events of their
//! command (in the order the core applied them, because they send while still holding the
//! core lock) and await an acknowledgement; the thread drains every batch waiting in its
//! channel, writes them all in one transaction, commits once and acknowledges them all. Many
//! concurrent requests thus share one fsync, and no tokio worker ever blocks on SQLite.
//!
//! Storage keeps the *latest value* of each entity the core reports (requests, jobs, workers,
//! accounts) plus the postings journal; it never re-derives a domain rule. This is the
//! boundary a PostgreSQL store would implement a second time.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use horde_core::{
    Account, AccountState, Event, Job, JobStatus, KudosDetails, RequestSpec, RequestState, UserId,
    UserPolicy, Worker,
};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::oneshot;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored record could not be (de)serialised.
    #[error("stored record: {0}")]
    Json(#[from] serde_json::Error),
    /// The database was written by a newer horde-server.
    #[error("database schema version {0} is newer than this server ({1})")]
    TooNew(i64, i64),
    /// The writer thread is gone.
    #[error("the storage writer has stopped")]
    Closed,
    /// The writer failed to commit.
    #[error("commit failed: {0}")]
    Commit(String),
    /// Another process holds the database.
    #[error("another horde-server is using {0}; stop it first")]
    Locked(String),
    /// The lock file could not be opened.
    #[error("cannot open the lock file {0}: {1}")]
    LockFile(String, std::io::Error),
}

/// A user's identity as stored. Their policy and account state are stored from the core's
/// events (`UserChanged`, `AccountChanged`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Numeric id.
    pub id: UserId,
    /// Display name without `#id`.
    pub alias: String,
    /// Salted hash of the API key; `None` for Anonymous.
    pub key_hash: Option<[u8; 32]>,
    /// Registration time, ms since the epoch.
    pub created_at: u64,
    /// Made an administrator by `horde-server create-admin`.
    pub is_admin: bool,
}

/// One thing to write.
// Most writes are events, the largest variant: boxing them would add an allocation to each of
// them to save memory only on the rare small ones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Write {
    /// A change the core reported.
    Event(Event),
    /// A user's identity was created or changed (registration, a new key). Their policy
    /// follows as a core event in the same commit.
    User(UserRow),
    /// A transfer's idempotency key and the response it got.
    Idempotency {
        /// Who sent it.
        user: UserId,
        /// The `Idempotency-Key` header.
        key: String,
        /// What was asked (to tell a retry from a different request).
        request: String,
        /// The JSON response body.
        response: String,
    },
}

struct Batch {
    writes: Vec<Write>,
    ack: oneshot::Sender<Result<(), String>>,
}

/// Everything stored, read back on start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The secret that salts API-key hashes.
    pub secret: [u8; 32],
    /// Users with their policies and account states.
    pub users: Vec<(UserRow, UserPolicy, AccountState)>,
    /// Workers.
    pub workers: Vec<Worker>,
    /// Requests with their state and jobs.
    pub requests: Vec<(Arc<RequestSpec>, RequestState, Vec<Job>)>,
    /// Transfer idempotency keys: sender, key, request, response.
    pub idempotency: Vec<(UserId, String, String, String)>,
    /// Finished generations per minute: (minute since epoch, requests, tokens).
    pub minutes: Vec<(u64, u64, u64)>,
}

/// A handle to the writer thread.
#[derive(Debug)]
pub struct Store {
    sender: Mutex<Option<mpsc::Sender<Batch>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Held while the store is open: one process per database.
    _lock: std::fs::File,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Batch({} writes)", self.writes.len())
    }
}

/// Schema migrations; `PRAGMA user_version` counts how many were applied.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
     CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        alias TEXT NOT NULL,
        key_hash BLOB UNIQUE,
        created_at INTEGER NOT NULL,
        concurrency INTEGER NOT NULL,
        trusted INTEGER NOT NULL DEFAULT 0,
        balance INTEGER NOT NULL DEFAULT 0,
        accumulated INTEGER NOT NULL DEFAULT 0,
        gifted INTEGER NOT NULL DEFAULT 0,
        received INTEGER NOT NULL DEFAULT 0,
        awarded INTEGER NOT NULL DEFAULT 0,
        uptime INTEGER NOT NULL DEFAULT 0,
        admin INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE workers (id TEXT PRIMARY KEY, data TEXT NOT NULL);
     CREATE TABLE requests (id TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT);
     CREATE TABLE jobs (id TEXT PRIMARY KEY, request TEXT NOT NULL, data TEXT NOT NULL);
     CREATE INDEX jobs_by_request ON jobs (request);
     CREATE TABLE postings (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        from_user INTEGER,
        to_user INTEGER,
        amount INTEGER NOT NULL
     );
     CREATE TABLE idempotency (
        user INTEGER NOT NULL,
        key TEXT NOT NULL,
        response TEXT NOT NULL,
        PRIMARY KEY (user, key)
     );
     CREATE TABLE minutes (
        minute INTEGER PRIMARY KEY,
        requests INTEGER NOT NULL,
        tokens INTEGER NOT NULL
     );",
    // 2: what a transfer under an idempotency key asked, to refuse a different body.
    "ALTER TABLE idempotency ADD COLUMN request TEXT NOT NULL DEFAULT '';",
    // 3: whether a user shows themselves as the owner of their workers.
    "ALTER TABLE users ADD COLUMN public_workers INTEGER NOT NULL DEFAULT 0;",
    // 4: administrators made on the database (`horde-server create-admin`).
    "ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;",
    // 5: a worker's clock and counters, apart from its record (written on every check-in).
    "CREATE TABLE worker_stats (id TEXT PRIMARY KEY, data TEXT NOT NULL);",
    // 6: users flagged for review.
    "ALTER TABLE users ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0;",
    // 7: escrow (an untrusted user's held earnings), and which postings touch an escrow.
    "ALTER TABLE users ADD COLUMN escrow INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE postings ADD COLUMN from_escrow INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE postings ADD COLUMN to_escrow INTEGER NOT NULL DEFAULT 0;",
];

/// Opens (creating and migrating if needed) the database at `path`.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before the response that depends on it is sent, even across
    // a power cut. Group commit keeps the fsync count low.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Applies the migrations not yet applied, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let latest = MIGRATIONS.len() as i64;
    if current > latest {
        return Err(StoreError::TooNew(current, latest));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(latest)
}

impl Store {
    /// Opens the database, loads everything, and starts the writer thread.
    pub fn open(
        path: &Path,
        config: &crate::Config,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<(Store, Loaded), StoreError> {
        let lock = lock_database(path)?;
        let conn = open_connection(path)?;
        if let Some(pages) = config.max_db_pages {
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let loaded = load(&conn, config.horde.default_concurrency)?;
        let (sender, receiver) = mpsc::channel::<Batch>();
        let writer = std::thread::Builder::new()
            .name("horde-store-writer".into())
            .spawn(move || run_writer(conn, receiver, &metrics))
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        Ok((
            Store {
                sender: Mutex::new(Some(sender)),
                writer: Mutex::new(Some(writer)),
                _lock: lock,
            },
            loaded,
        ))
    }

    /// Queues `writes` for the next group commit. Never blocks. Call while holding the lock
    /// under which the writes were produced, so that the commit order is the apply order.
    pub fn submit(&self, writes: Vec<Write>) -> Committed {
        let (ack, done) = oneshot::channel();
        if writes.is_empty() {
            let _ = ack.send(Ok(()));
            return Committed(done);
        }
        if let Some(sender) = self.sender.lock().as_ref() {
            let _ = sender.send(Batch { writes, ack });
        }
        Committed(done)
    }

    /// Stops accepting writes, lets the writer commit what it has, and waits for it.
    pub fn close(&self) {
        self.sender.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

/// Takes the advisory lock `<db>.lock`, held as long as the returned file is open, so that
/// two processes (two servers, or `create-admin` beside a running server) never work on one
/// database: each would assign the same new user ids.
fn lock_database(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::LockFile(lock_path.display().to_string(), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StoreError::Locked(path.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(StoreError::LockFile(lock_path.display().to_string(), e))
        }
    }
}

/// A pending commit; await it with [`Committed::wait`].
#[derive(Debug)]
pub struct Committed(oneshot::Receiver<Result<(), String>>);

impl Committed {
    /// Waits until the writes are committed.
    pub async fn wait(self) -> Result<(), StoreError> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Commit(e)),
            Err(_) => Err(StoreError::Closed),
        }
    }
}

/// Most batches one transaction takes, so a flood cannot delay the first acknowledgement
/// without bound.
const MAX_BATCHES_PER_COMMIT: usize = 4096;

fn run_writer(
    mut conn: Connection,
    receiver: mpsc::Receiver<Batch>,
    metrics: &crate::metrics::Metrics,
) {
    // After a failed commit, later batches may depend on the changes that were lost (a job of
    // a request that was never stored): the writer refuses everything from then on.
    let mut failure: Option<String> = None;
    let (mut commits, mut batched, mut since) = (0u64, 0u64, std::time::Instant::now());
    while let Ok(first) = receiver.recv() {
        let mut batches = vec![first];
        while batches.len() < MAX_BATCHES_PER_COMMIT {
            match receiver.try_recv() {
                Ok(batch) => batches.push(batch),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = match &failure {
            Some(e) => Err(format!("an earlier commit failed: {e}")),
            None => write_batches(&mut conn, &batches).map_err(|e| {
                tracing::error!(error = %e, "commit failed");
                failure = Some(e.to_string());
                e.to_string()
            }),
        };
        metrics.committed(batches.len(), started.elapsed());
        commits += 1;
        batched += batches.len() as u64;
        if since.elapsed() >= std::time::Duration::from_secs(10) {
            tracing::debug!(commits, batches = batched, "group commits in the last 10 s");
            (commits, batched, since) = (0, 0, std::time::Instant::now());
        }
        for batch in batches {
            let _ = batch.ack.send(result.clone());
        }
    }
    // Checkpoint so the main file is complete when the server stops cleanly.
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
}

/// An entity whose latest value replaces the earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Latest {
    RequestState(horde_core::RequestId),
    Job(horde_core::JobId),
    Worker(horde_core::WorkerId),
    WorkerStats(horde_core::WorkerId),
    Account(UserId),
    Policy(UserId),
}

impl Latest {
    fn of(write: &Write) -> Option<Latest> {
        match write {
            Write::Event(Event::RequestChanged { id, .. }) => Some(Latest::RequestState(*id)),
            Write::Event(Event::JobChanged(job)) => Some(Latest::Job(job.id)),
            Write::Event(Event::WorkerChanged(worker)) => Some(Latest::Worker(worker.id)),
            Write::Event(Event::WorkerCheckedIn { id, .. }) => Some(Latest::WorkerStats(*id)),
            Write::Event(Event::AccountChanged { user, .. }) => Some(Latest::Account(*user)),
            Write::Event(Event::UserChanged { user, .. }) => Some(Latest::Policy(*user)),
            _ => None,
        }
    }
}

/// Writes the batches in one transaction. A group commit often holds several values of the
/// same entity (a busy worker checks in on every pop; an account changes on every
/// generation): only the last one of each is written, the same result with less work. The
/// journal of postings, new requests and removals are written in full, in order.
fn write_batches(conn: &mut Connection, batches: &[Batch]) -> Result<(), StoreError> {
    let writes = || batches.iter().flat_map(|batch| batch.writes.iter());
    let mut last: std::collections::HashMap<Latest, usize> = std::collections::HashMap::new();
    for (index, write) in writes().enumerate() {
        if let Some(key) = Latest::of(write) {
            last.insert(key, index);
        }
    }
    let tx = conn.transaction()?;
    for (index, write) in writes().enumerate() {
        let superseded = Latest::of(write).is_some_and(|key| last.get(&key) != Some(&index));
        if !superseded {
            apply(&tx, write)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The user an account belongs to (none for the horde), and whether it is their escrow.
fn account_user(account: Account) -> (Option<i64>, bool) {
    match account {
        Account::Horde => (None, false),
        Account::User(user) => (Some(user.0 as i64), false),
        Account::Escrow(user) => (Some(user.0 as i64), true),
    }
}

fn apply(tx: &Transaction<'_>, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::User(user) => {
            tx.prepare_cached(
                "INSERT INTO users (id, alias, key_hash, created_at, concurrency, is_admin)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)
                 ON CONFLICT (id) DO UPDATE SET alias = excluded.alias,
                    key_hash = excluded.key_hash, is_admin = excluded.is_admin",
            )?
            .execute(params![
                user.id.0 as i64,
                user.alias,
                user.key_hash.map(|h| h.to_vec()),
                user.created_at as i64,
                user.is_admin,
            ])?;
        }
        Write::Idempotency {
            user,
            key,
            request,
            response,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency (user, key, request, response)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![user.0 as i64, key, request, response])?;
        }
        Write::Event(event) => apply_event(tx, event)?,
    }
    Ok(())
}

fn apply_event(tx: &Transaction<'_>, event: &Event) -> Result<(), StoreError> {
    match event {
        Event::RequestQueued(spec) => {
            tx.prepare_cached("INSERT OR REPLACE INTO requests (id, spec) VALUES (?1, ?2)")?
                .execute(params![
                    spec.id.to_string(),
                    serde_json::to_string(&**spec)?
                ])?;
        }
        Event::RequestChanged { id, state } => {
            tx.prepare_cached("UPDATE requests SET state = ?2 WHERE id = ?1")?
                .execute(params![id.to_string(), serde_json::to_string(state)?])?;
        }
        Event::JobChanged(job) => {
            tx.prepare_cached(
                // An upsert updates the row in place; `OR REPLACE` would delete and re-insert
                // it and its index entry on every change of the job.
                "INSERT INTO jobs (id, request, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![
                job.id.to_string(),
                job.request.to_string(),
                serde_json::to_string(job)?
            ])?;
            if let JobStatus::Done(generation) = &job.status {
                tx.prepare_cached(
                    "INSERT INTO minutes (minute, requests, tokens) VALUES (?1, 1, ?2)
                     ON CONFLICT (minute) DO UPDATE SET requests = requests + 1,
                        tokens = tokens + excluded.tokens",
                )?
                .execute(params![
                    (generation.finished_at.millis() / 60_000) as i64,
                    generation.tokens
                ])?;
            }
        }
        Event::RequestRemoved(id) => {
            let id = id.to_string();
            tx.prepare_cached("DELETE FROM jobs WHERE request = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM requests WHERE id = ?1")?
                .execute(params![id])?;
        }
        Event::Posted(posting) => {
            let kind = serde_json::to_value(posting.kind)?;
            let (from, from_escrow) = account_user(posting.from);
            let (to, to_escrow) = account_user(posting.to);
            tx.prepare_cached(
                "INSERT INTO postings (at, kind, from_user, to_user, amount, from_escrow, to_escrow)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                posting.at.millis() as i64,
                kind.as_str().unwrap_or_default(),
                from,
                to,
                posting.amount.milli(),
                from_escrow,
                to_escrow,
            ])?;
        }
        Event::AccountChanged { user, state } => {
            let d = state.details;
            tx.prepare_cached(
                "UPDATE users SET balance = ?2, accumulated = ?3, gifted = ?4, received = ?5,
                    awarded = ?6, uptime = ?7, admin = ?8, escrow = ?9 WHERE id = ?1",
            )?
            .execute(params![
                user.0 as i64,
                state.balance.milli(),
                d.accumulated.milli(),
                d.gifted.milli(),
                d.received.milli(),
                d.awarded.milli(),
                d.uptime.milli(),
                d.admin.milli(),
                state.escrow.milli(),
            ])?;
        }
        Event::UserChanged { user, policy } => {
            tx.prepare_cached(
                "UPDATE users SET concurrency = ?2, trusted = ?3, public_workers = ?4, flagged = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                user.0 as i64,
                policy.concurrency,
                policy.trusted,
                policy.public_workers,
                policy.flagged
            ])?;
        }
        Event::WorkerChanged(worker) => {
            tx.prepare_cached(
                "INSERT INTO workers (id, data) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![
                worker.id.to_string(),
                serde_json::to_string(worker)?
            ])?;
            // The stats row, when there is one, must never be older than the record.
            write_worker_stats(tx, worker.id, &worker.stats())?;
        }
        Event::WorkerCheckedIn { id, stats } => write_worker_stats(tx, *id, stats)?,
    }
    Ok(())
}

fn write_worker_stats(
    tx: &Transaction<'_>,
    id: horde_core::WorkerId,
    stats: &horde_core::WorkerStats,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO worker_stats (id, data) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data",
    )?
    .execute(params![id.to_string(), serde_json::to_string(stats)?])?;
    Ok(())
}

fn load(conn: &Connection, default_concurrency: u32) -> Result<Loaded, StoreError> {
    let secret = load_secret(conn)?;
    ensure_anonymous(conn, default_concurrency)?;
    let kudos = horde_core::Kudos::from_milli;
    let mut users = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT id, alias, key_hash, created_at, concurrency, trusted, balance, accumulated,
            gifted, received, awarded, uptime, admin, public_workers, is_admin, flagged, escrow
            FROM users",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let key_hash: Option<Vec<u8>> = row.get(2)?;
        let user = UserRow {
            id: UserId(row.get::<_, i64>(0)? as u64),
            alias: row.get(1)?,
            key_hash: key_hash.and_then(|h| h.try_into().ok()),
            created_at: row.get::<_, i64>(3)? as u64,
            is_admin: row.get(14)?,
        };
        let policy = UserPolicy {
            concurrency: row.get(4)?,
            trusted: row.get(5)?,
            public_workers: row.get(13)?,
            flagged: row.get(15)?,
            registered_at: horde_core::Timestamp(row.get::<_, i64>(3)? as u64),
        };
        let state = AccountState {
            balance: kudos(row.get(6)?),
            details: KudosDetails {
                accumulated: kudos(row.get(7)?),
                gifted: kudos(row.get(8)?),
                received: kudos(row.get(9)?),
                awarded: kudos(row.get(10)?),
                uptime: kudos(row.get(11)?),
                admin: kudos(row.get(12)?),
            },
            escrow: kudos(row.get(16)?),
        };
        users.push((user, policy, state));
    }

    let mut workers = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT workers.data, worker_stats.data FROM workers
         LEFT JOIN worker_stats ON worker_stats.id = workers.id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mut worker: Worker = serde_json::from_str(&row.get::<_, String>(0)?)?;
        if let Some(stats) = row.get::<_, Option<String>>(1)? {
            worker.set_stats(serde_json::from_str(&stats)?);
        }
        workers.push(worker);
    }

    let mut jobs_by_request: std::collections::HashMap<String, Vec<Job>> = Default::default();
    let mut stmt = conn.prepare("SELECT request, data FROM jobs")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let job: Job = serde_json::from_str(&row.get::<_, String>(1)?)?;
        jobs_by_request.entry(row.get(0)?).or_default().push(job);
    }
    let mut requests = Vec::new();
    let mut stmt = conn.prepare("SELECT id, spec, state FROM requests")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let state: Option<String> = row.get(2)?;
        let Some(state) = state else {
            continue;
        };
        let spec: RequestSpec = serde_json::from_str(&row.get::<_, String>(1)?)?;
        let state: RequestState = serde_json::from_str(&state)?;
        let jobs = jobs_by_request.remove(&id).unwrap_or_default();
        requests.push((Arc::new(spec), state, jobs));
    }

    let mut idempotency = Vec::new();
    let mut stmt = conn.prepare("SELECT user, key, request, response FROM idempotency")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        idempotency.push((
            UserId(row.get::<_, i64>(0)? as u64),
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
        ));
    }

    let mut minutes = Vec::new();
    let mut stmt = conn.prepare("SELECT minute, requests, tokens FROM minutes")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        minutes.push((
            row.get::<_, i64>(0)? as u64,
            row.get::<_, i64>(1)? as u64,
            row.get::<_, i64>(2)? as u64,
        ));
    }

    Ok(Loaded {
        secret,
        users,
        workers,
        requests,
        idempotency,
        minutes,
    })
}

/// The API-key salt: generated from the OS RNG on first start and kept in `meta`.
fn load_secret(conn: &Connection) -> Result<[u8; 32], StoreError> {
    let stored: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'key_secret'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(secret) = stored.and_then(|s| <[u8; 32]>::try_from(s).ok()) {
        return Ok(secret);
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| StoreError::Commit(e.to_string()))?;
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('key_secret', ?1)",
        params![secret.to_vec()],
    )?;
    Ok(secret)
}

fn ensure_anonymous(conn: &Connection, default_concurrency: u32) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO users (id, alias, key_hash, created_at, concurrency)
         VALUES (0, 'Anonymous', NULL, 0, ?1)",
        params![default_concurrency],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_newer_schemas() {
        let dir = std::env::temp_dir().join(format!("horde-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.sqlite");
        let _ = std::fs::remove_file(&path);
        let conn = open_connection(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        drop(conn);
        // Reopening applies nothing again (creating a table twice would fail).
        let mut conn = open_connection(&path).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            open_connection(&path),
            Err(StoreError::TooNew(99, _))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
