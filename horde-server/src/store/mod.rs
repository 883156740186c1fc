//! Durable storage on SQLite (the embedded default) or PostgreSQL (replicated, with a lease
//! for one active node among several): migrations, the group-commit writer thread, and
//! loading everything back on start.
//!
//! One dedicated thread owns the write connection. Handlers hand it the events of their
//! command (in the order the core applied them, because they send while still holding the
//! core lock) and await an acknowledgement; the thread drains every batch waiting in its
//! channel, writes them all in one transaction, commits once and acknowledges them all. Many
//! concurrent requests thus share one fsync, and no tokio worker ever blocks on SQLite.
//!
//! Storage keeps the *latest value* of each entity the core reports (requests, jobs, workers,
//! accounts) plus the postings journal; it never re-derives a domain rule.
//!
//! Its parts: [`sql`] (what both engines offer: named statements, values, transactions),
//! [`sqlite`] and [`postgres`] (the engines, each with its migrations and value conversions;
//! SQLite's checkpoints run beside the writer, in [`checkpoint`]), [`apply`] (writing events and group commits), [`load`] (reading everything back on start)
//! and [`movements`] (the account page's history).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use horde_core::{AccountState, Event, Job, RequestSpec, RequestState, UserId, UserPolicy, Worker};
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};

mod apply;
mod checkpoint;
mod load;
mod movements;
pub mod postgres;
mod schema;
pub(crate) mod sql;
mod sqlite;
mod tls;

pub use movements::{AccountHistory, Movement};
pub use schema::{migrate, open_connection};

/// Where the data lives, from the `--db` setting: a PostgreSQL URL (`postgres://…` or
/// `postgresql://…`) or else a SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file, created on first start.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl Database {
    /// Reads the `--db` setting.
    pub fn of(setting: &Path) -> Database {
        let text = setting.to_string_lossy();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Database::Postgres(text.into_owned())
        } else {
            Database::Sqlite(setting.to_path_buf())
        }
    }

    /// A name for logs and messages (without a password).
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => postgres::redact(url),
        }
    }

    /// A connection for reads beside the writer.
    fn reader(&self) -> Result<Box<dyn sql::Sql + Send>, StoreError> {
        Ok(match self {
            Database::Sqlite(path) => Box::new(sqlite::Sqlite::open_read_only(path)?),
            Database::Postgres(url) => Box::new(postgres::Postgres::open_reader(url)?),
        })
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error (or the connection to it failed).
    #[error("postgres: {}", postgres::describe_error(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The PostgreSQL URL cannot be read.
    #[error("the PostgreSQL URL cannot be read: {0}")]
    Url(String),
    /// TLS to PostgreSQL cannot be set up (`sslrootcert` unreadable, no certificate in it).
    #[error("TLS to PostgreSQL: {0}")]
    Tls(String),
    /// A stored value is not of the expected type.
    #[error("stored value: {0}")]
    Corrupt(String),
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
    /// Another process holds the database (SQLite) or the lease (PostgreSQL).
    #[error("another horde-server is using {0}; stop it first")]
    Locked(String),
    /// The lock file could not be opened.
    #[error("cannot open the lock file {0}: {1}")]
    LockFile(String, std::io::Error),
}

/// One signed-in browser, as stored (kept in memory by `crate::sessions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who is signed in.
    pub user: UserId,
    /// The token every form of this session must carry (CSRF).
    pub csrf: String,
    /// When it ends, ms since the epoch.
    pub expires_at: u64,
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
    /// The secret the user's webhook deliveries are signed with, if they set one.
    pub webhook_secret: Option<String>,
}

/// A change of one of the server's own tables (users, sessions, OAuth identities, idempotency
/// keys) with the writes that persist it. Every method of those tables that changes them
/// returns one, and [`crate::driver::Txn::record`] is the only way in, so a change and its
/// writes cannot part (the core's `Applied` does the same for its events).
#[must_use = "a table change must reach the store: run it through Txn::record"]
#[derive(Debug)]
pub struct Recorded<T> {
    /// What the change returns.
    pub value: T,
    /// What persists it.
    pub writes: Vec<Write>,
}

impl<T> Recorded<T> {
    /// `value`, persisted by `writes`.
    pub fn new(value: T, writes: Vec<Write>) -> Recorded<T> {
        Recorded { value, writes }
    }
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
    /// A web session began.
    Session {
        /// The digest of its id.
        digest: [u8; 32],
        /// The session.
        session: Session,
    },
    /// A web session ended (signed out, or expired).
    SessionEnded {
        /// The digest of its id.
        digest: [u8; 32],
    },
    /// An OAuth identity was linked to an account.
    Identity {
        /// `github` or `discord`.
        provider: String,
        /// The provider's user id.
        subject: String,
        /// The account.
        user: UserId,
    },
    /// The horde's modes changed.
    Modes(Modes),
    /// A webhook delivery to make (with its generation's commit), or its new schedule after a
    /// failed attempt.
    Webhook(Delivery),
    /// A webhook delivery is over (delivered, or given up).
    WebhookDone(horde_core::JobId),
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

/// A finished generation to post to its request's webhook: kept until delivered or given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The job whose generation it carries (also the delivery's id).
    pub job: horde_core::JobId,
    /// Where to post it.
    pub url: String,
    /// Whose secret signs it (the request's owner).
    pub owner: UserId,
    /// The JSON body.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, ms since the epoch.
    pub next_at: u64,
    /// When the generation finished, ms since the epoch (deliveries are given up after
    /// `webhooks.max_age_secs`).
    pub created_at: u64,
}

/// The horde's modes in force (see [`crate::modes`] for what each does). Default: none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Modes {
    /// No new generation requests.
    pub maintenance: bool,
    /// New workers only from trusted users.
    pub invite_only: bool,
    /// Under attack.
    pub raid: bool,
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
    /// Teams of workers.
    pub teams: Vec<horde_core::Team>,
    /// Requests with their state and jobs.
    pub requests: Vec<(Arc<RequestSpec>, RequestState, Vec<Job>)>,
    /// Transfer idempotency keys: sender, key, request, response.
    pub idempotency: Vec<(UserId, String, String, String)>,
    /// Finished generations per minute: (minute since epoch, requests, tokens).
    pub minutes: Vec<(u64, u64, u64)>,
    /// Webhook deliveries not yet made.
    pub webhooks: Vec<Delivery>,
    /// The horde's modes (none set when never stored).
    pub modes: Modes,
    /// Finished generations per model and hour: (model, hour since epoch, requests).
    pub model_hours: Vec<(String, u64, u64)>,
    /// Web sessions by the digest of their id.
    pub sessions: Vec<([u8; 32], Session)>,
    /// OAuth identities: provider, subject, user.
    pub identities: Vec<(String, String, UserId)>,
}

/// Connections for reads beside the writer (the account page's history), opened on demand
/// and kept for the next read: a PostgreSQL connection costs a handshake.
struct Readers {
    db: Database,
    idle: Mutex<Vec<Box<dyn sql::Sql + Send>>>,
}

/// Most idle readers kept.
const MAX_IDLE_READERS: usize = 4;

impl Readers {
    /// Runs `f` on an idle reader (again on a new one if that fails: an idle connection may
    /// have been closed by the server), or on a new one; keeps the reader unless `f` failed.
    fn with<T>(
        &self,
        f: impl Fn(&mut dyn sql::Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().pop();
        if let Some(mut reader) = idle {
            if let Ok(value) = f(&mut *reader) {
                self.keep(reader);
                return Ok(value);
            }
        }
        let mut reader = self.db.reader()?;
        let value = f(&mut *reader)?;
        self.keep(reader);
        Ok(value)
    }

    fn keep(&self, reader: Box<dyn sql::Sql + Send>) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(reader);
        }
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        // A PostgreSQL reader owns a runtime, which must not be dropped on an async task (the
        // store may go with the last handle to it anywhere): readers still idle are dropped
        // on a thread of their own.
        let idle = std::mem::take(&mut *self.idle.lock());
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("horde-readers-drop".into())
                .spawn(move || drop(idle));
        }
    }
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Readers({}, {} idle)",
            self.db.describe(),
            self.idle.lock().len()
        )
    }
}

/// A handle to the writer thread.
#[derive(Debug)]
pub struct Store {
    sender: Mutex<Option<mpsc::Sender<Batch>>>,
    /// Batches with writes handed to the writer and not yet acknowledged: while there are
    /// none, memory holds nothing the database lacks.
    in_flight: Arc<AtomicU64>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Readers,
    lost: Arc<Lost>,
    /// SQLite: held while the store is open, one process per database file.
    _lock: Option<std::fs::File>,
}

/// Set by the writer when it finds, while idle, that its engine can no longer commit.
#[derive(Debug, Default)]
struct Lost {
    flag: AtomicBool,
    notify: Notify,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Batch({} writes)", self.writes.len())
    }
}

/// How [`Store::open`] treats a database another node is using.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contention {
    /// Refuse with [`StoreError::Locked`].
    Refuse,
    /// PostgreSQL only: wait as a standby until the lease is free (SQLite refuses).
    Wait,
}

impl Store {
    /// Opens the database, loads everything, and starts the writer thread. With
    /// [`Contention::Wait`] on PostgreSQL, first waits for the lease while `go_on` says so.
    pub fn open(
        config: &crate::Config,
        metrics: Arc<crate::metrics::Metrics>,
        contention: Contention,
        go_on: &dyn Fn() -> bool,
    ) -> Result<(Store, Loaded), StoreError> {
        let database = Database::of(&config.db);
        let (mut engine, lock): (Box<dyn sql::Engine>, _) = match database.clone() {
            Database::Sqlite(path) => {
                let lock = sqlite::lock_database(&path)?;
                let engine = sqlite::Sqlite::open(&path, config.max_db_pages)?;
                (Box::new(engine), Some(lock))
            }
            Database::Postgres(url) => {
                let wait = (contention == Contention::Wait).then_some(go_on);
                (Box::new(postgres::Postgres::open(&url, wait)?), None)
            }
        };
        let loaded = load::load(&mut *engine, config.horde.default_concurrency)?;
        let (sender, receiver) = mpsc::channel::<Batch>();
        let lost = Arc::new(Lost::default());
        let writer_lost = lost.clone();
        let in_flight = Arc::new(AtomicU64::new(0));
        let writer_in_flight = in_flight.clone();
        let writer = std::thread::Builder::new()
            .name("horde-store-writer".into())
            .spawn(move || {
                run_writer(engine, receiver, &metrics, &writer_lost, &writer_in_flight);
            })
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        Ok((
            Store {
                sender: Mutex::new(Some(sender)),
                in_flight,
                writer: Mutex::new(Some(writer)),
                readers: Readers {
                    db: database,
                    idle: Mutex::new(Vec::new()),
                },
                lost,
                _lock: lock,
            },
            loaded,
        ))
    }

    /// Queues `writes` for the next group commit. Never blocks. Call while holding the lock
    /// under which the writes were produced, so that the commit order is the apply order.
    ///
    /// Empty `writes` are a barrier: they are acknowledged once everything submitted before
    /// them is committed (at once when nothing is in flight), so that an answer read from
    /// memory never reports a change the database may still lose.
    pub fn submit(&self, writes: Vec<Write>) -> Committed {
        let (ack, done) = oneshot::channel();
        if writes.is_empty() && self.in_flight.load(Ordering::SeqCst) == 0 {
            let _ = ack.send(Ok(()));
            return Committed(done);
        }
        if let Some(sender) = self.sender.lock().as_ref() {
            if !writes.is_empty() {
                self.in_flight.fetch_add(1, Ordering::SeqCst);
            }
            let _ = sender.send(Batch { writes, ack });
        }
        Committed(done)
    }

    /// `user`'s last `limit` kudos movements and generation totals, read beside the writer.
    /// Blocks (call it on a blocking thread).
    pub fn account_history(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<AccountHistory, StoreError> {
        self.readers
            .with(|sql| movements::account_history(sql, user, limit))
    }

    /// Returns true if and only if the writer found its engine unable to commit while idle
    /// (PostgreSQL: the connection, and with it the lease, is gone).
    pub fn is_lost(&self) -> bool {
        self.lost.flag.load(Ordering::SeqCst)
    }

    /// Resolves once [`Store::is_lost`] is true.
    pub async fn lost(&self) {
        loop {
            let notified = self.lost.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_lost() {
                return;
            }
            notified.await;
        }
    }

    /// Stops accepting writes, lets the writer commit what it has, and waits for it; closes
    /// the idle readers. Blocks (call it on a blocking thread).
    pub fn close(&self) {
        self.readers.idle.lock().clear();
        self.sender.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
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

/// How long the writer waits for work before checking that its engine can still commit.
const IDLE_CHECK: Duration = Duration::from_secs(1);

fn run_writer(
    mut engine: Box<dyn sql::Engine>,
    receiver: mpsc::Receiver<Batch>,
    metrics: &crate::metrics::Metrics,
    lost: &Lost,
    in_flight: &AtomicU64,
) {
    // After a failed commit, later batches may depend on the changes that were lost (a job of
    // a request that was never stored): the writer refuses everything from then on.
    let mut failure: Option<String> = None;
    let (mut commits, mut batched, mut since) = (0u64, 0u64, std::time::Instant::now());
    loop {
        let first = match receiver.recv_timeout(IDLE_CHECK) {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if failure.is_none() {
                    if let Err(e) = engine.check() {
                        tracing::error!(error = %e, "the database can no longer commit");
                        failure = Some(e.to_string());
                        lost.flag.store(true, Ordering::SeqCst);
                        lost.notify.notify_waiters();
                    }
                }
                continue;
            }
        };
        let mut batches = vec![first];
        while batches.len() < MAX_BATCHES_PER_COMMIT {
            match receiver.try_recv() {
                Ok(batch) => batches.push(batch),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        // Barriers alone: everything before them is committed (or has failed) already.
        let writing = batches.iter().filter(|b| !b.writes.is_empty()).count() as u64;
        let result = match &failure {
            Some(e) => Err(format!("an earlier commit failed: {e}")),
            None if writing == 0 => Ok(()),
            None => apply::write_batches(&mut *engine, &batches).map_err(|e| {
                tracing::error!(error = %e, "commit failed");
                failure = Some(e.to_string());
                e.to_string()
            }),
        };
        if writing > 0 {
            metrics.committed(batches.len(), started.elapsed());
            commits += 1;
            batched += batches.len() as u64;
        }
        if since.elapsed() >= std::time::Duration::from_secs(10) {
            tracing::debug!(commits, batches = batched, "group commits in the last 10 s");
            (commits, batched, since) = (0, 0, std::time::Instant::now());
        }
        for batch in batches {
            let _ = batch.ack.send(result.clone());
        }
        // After the acknowledgements: a barrier that finds nothing in flight answers at once.
        in_flight.fetch_sub(writing, Ordering::SeqCst);
    }
    engine.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_db_setting_names_a_sqlite_file_or_a_postgres_url() {
        let of = |s: &str| Database::of(Path::new(s));
        assert_eq!(
            of("horde.sqlite"),
            Database::Sqlite(PathBuf::from("horde.sqlite"))
        );
        assert_eq!(
            of("/var/lib/postgres-data/horde.db"),
            Database::Sqlite(PathBuf::from("/var/lib/postgres-data/horde.db"))
        );
        for url in [
            "postgres://u:secret@db:5432/horde",
            "postgresql://u:secret@db/horde",
        ] {
            assert_eq!(of(url), Database::Postgres(url.to_owned()));
            let described = of(url).describe();
            assert!(!described.contains("secret"), "{described}");
            assert!(
                described.contains("db") && described.ends_with("/horde"),
                "{described}"
            );
        }
    }

    #[test]
    fn readers_are_kept_for_the_next_read() {
        let dir = std::env::temp_dir().join(format!("horde-readers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = crate::Config {
            db: dir.join("r.sqlite"),
            ..crate::Config::default()
        };
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let (store, _) = Store::open(&config, metrics, Contention::Refuse, &|| true).unwrap();
        for _ in 0..3 {
            let history = store.account_history(UserId(0), 5).unwrap();
            assert!(history.movements.is_empty());
            assert_eq!(store.readers.idle.lock().len(), 1, "one reader, reused");
        }
        store.close();
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn values_read_back_as_the_columns_they_came_from() {
        let row = sql::Row(vec![
            sql::Value::from(7i64),
            sql::Value::from(true),
            sql::Value::Int(0),
            sql::Value::from("text"),
            sql::Value::from(None::<i64>),
            sql::Value::from(vec![1u8, 2]),
        ]);
        assert_eq!(row.int(0).unwrap(), 7);
        assert_eq!(row.uint::<u32>(0).unwrap(), 7);
        assert!(row.flag(1).unwrap());
        assert!(!row.flag(2).unwrap(), "SQLite's flags are integers");
        assert_eq!(row.text(3).unwrap(), "text");
        assert_eq!(row.opt_int(4).unwrap(), None);
        assert_eq!(row.opt_bytes(5).unwrap(), Some(vec![1, 2]));
        assert!(matches!(row.int(3), Err(StoreError::Corrupt(_))));
        assert!(matches!(row.text(4), Err(StoreError::Corrupt(_))));
        assert!(matches!(row.int(9), Err(StoreError::Corrupt(_))));
        let negative = sql::Row(vec![sql::Value::Int(-1)]);
        assert!(negative.uint::<u32>(0).is_err());
    }
}
