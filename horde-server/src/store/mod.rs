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
//!
//! Its parts: [`schema`] (migrations), [`apply`] (writing events and group commits), and
//! [`load`] (reading everything back on start).

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use horde_core::{AccountState, Event, Job, RequestSpec, RequestState, UserId, UserPolicy, Worker};
use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::oneshot;

mod apply;
mod load;
mod movements;
mod schema;

pub use movements::{account_history, AccountHistory, Movement};
pub use schema::{migrate, open_connection};

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
    /// A web session began.
    Session {
        /// The digest of its id.
        digest: [u8; 32],
        /// The session.
        session: crate::sessions::Session,
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
    /// Web sessions by the digest of their id.
    pub sessions: Vec<([u8; 32], crate::sessions::Session)>,
    /// OAuth identities: provider, subject, user.
    pub identities: Vec<(String, String, UserId)>,
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
        let loaded = load::load(&conn, config.horde.default_concurrency)?;
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
            None => apply::write_batches(&mut conn, &batches).map_err(|e| {
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
