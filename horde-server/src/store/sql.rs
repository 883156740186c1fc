//! What the two database engines have in common: statements named by [`Stmt`] with one SQL
//! text both engines run, parameters and results as [`Value`]s, and the [`Sql`] trait
//! through which [`super::apply`], [`super::load`] and [`super::movements`] write and
//! read without knowing which engine is below.

use super::StoreError;

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (`INTEGER` in SQLite, `BIGINT` in PostgreSQL).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (`BLOB`, `BYTEA`).
    Bytes(Vec<u8>),
    /// A flag (an integer 0/1 in SQLite, `BOOLEAN` in PostgreSQL).
    Bool(bool),
}

impl Value {
    /// Text as both engines can store it. PostgreSQL refuses the NUL character, and a refused
    /// commit stops the node; the HTTP edge refuses requests that carry one (`crate::body`), so
    /// one that arrives here came by a path the edge does not see: it is stored with U+FFFD in
    /// its place and logged, never allowed to fail the commit.
    pub(crate) fn text(text: String) -> Value {
        if text.contains('\0') {
            tracing::warn!(
                "a text with a NUL character reached the store; stored with U+FFFD instead"
            );
            return Value::Text(text.replace('\0', "\u{fffd}"));
        }
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::text(v.to_owned())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Builds a parameter list: `params![a, b, c]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::store::sql::Value::from($value)),*]
    };
}
pub(crate) use params;

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    fn column(&self, index: usize) -> Result<&Value, StoreError> {
        self.0
            .get(index)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {index}")))
    }

    fn wrong(&self, index: usize, wanted: &str) -> StoreError {
        StoreError::Corrupt(format!(
            "column {index} is {:?}, not {wanted}",
            self.0.get(index)
        ))
    }

    /// An integer column.
    pub(crate) fn int(&self, index: usize) -> Result<i64, StoreError> {
        self.opt_int(index)?
            .ok_or_else(|| self.wrong(index, "an integer"))
    }

    /// A non-negative integer column that fits `T`.
    pub(crate) fn uint<T: TryFrom<i64>>(&self, index: usize) -> Result<T, StoreError> {
        T::try_from(self.int(index)?).map_err(|_| self.wrong(index, "a small enough integer"))
    }

    /// An integer column that may be `NULL`.
    pub(crate) fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        match self.column(index)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            _ => Err(self.wrong(index, "an integer")),
        }
    }

    /// A flag column (an integer in SQLite).
    pub(crate) fn flag(&self, index: usize) -> Result<bool, StoreError> {
        match self.column(index)? {
            Value::Bool(v) => Ok(*v),
            Value::Int(v) => Ok(*v != 0),
            _ => Err(self.wrong(index, "a flag")),
        }
    }

    /// A text column.
    pub(crate) fn text(&self, index: usize) -> Result<String, StoreError> {
        self.opt_text(index)?
            .ok_or_else(|| self.wrong(index, "text"))
    }

    /// A text column that may be `NULL`.
    pub(crate) fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.column(index)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            _ => Err(self.wrong(index, "text")),
        }
    }

    /// A bytes column that may be `NULL`.
    pub(crate) fn opt_bytes(&self, index: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.column(index)? {
            Value::Null => Ok(None),
            Value::Bytes(v) => Ok(Some(v.clone())),
            _ => Err(self.wrong(index, "bytes")),
        }
    }
}

/// Every statement the store runs. Each engine maps them to its own SQL text, with the
/// parameters in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Stmt {
    // Writes.
    PutUser,
    PutIdempotency,
    PutSession,
    DeleteSession,
    PutIdentity,
    PutRequest,
    SetRequestState,
    PutJob,
    CountMinute,
    CountModelHour,
    DeleteJobsOf,
    DeleteRequest,
    InsertPosting,
    SetAccount,
    SetPolicy,
    PutWorker,
    PutWorkerStats,
    DeleteWorker,
    DeleteWorkerStats,
    PutTeam,
    DeleteTeam,
    PutWebhook,
    DeleteWebhook,
    PutSecret,
    PutModes,
    EnsureAnonymous,
    // Reads.
    SelectSecret,
    SelectModes,
    SelectUsers,
    SelectWorkers,
    SelectTeams,
    SelectWebhooks,
    SelectJobs,
    SelectRequests,
    SelectIdempotency,
    SelectSessions,
    SelectIdentities,
    SelectMinutes,
    SelectModelHours,
    SelectMovements,
    SumEarned,
    SumSpent,
}

impl Stmt {
    /// The statement's SQL, in the dialect both engines speak: `?N` placeholders (PostgreSQL
    /// gets `$N`, see [`Stmt::numbered`]), upserts with `ON CONFLICT`, `"user"` quoted (a
    /// reserved word in PostgreSQL), `CAST` rather than `::`.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Stmt::PutUser => {
                "INSERT INTO users (id, alias, key_hash, created_at, concurrency, is_admin,
                    webhook_secret)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET alias = excluded.alias,
                    key_hash = excluded.key_hash, is_admin = excluded.is_admin,
                    webhook_secret = excluded.webhook_secret"
            }
            Stmt::PutIdempotency => {
                "INSERT INTO idempotency (\"user\", key, request, response) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (\"user\", key) DO UPDATE SET request = excluded.request,
                    response = excluded.response"
            }
            Stmt::PutSession => {
                "INSERT INTO sessions (digest, \"user\", csrf, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (digest) DO UPDATE SET \"user\" = excluded.\"user\",
                    csrf = excluded.csrf, expires_at = excluded.expires_at"
            }
            Stmt::DeleteSession => "DELETE FROM sessions WHERE digest = ?1",
            Stmt::PutIdentity => {
                "INSERT INTO identities (provider, subject, \"user\") VALUES (?1, ?2, ?3)
                 ON CONFLICT (provider, subject) DO UPDATE SET \"user\" = excluded.\"user\""
            }
            // A new spec starts with no state.
            Stmt::PutRequest => {
                "INSERT INTO requests (id, spec) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, state = NULL"
            }
            Stmt::SetRequestState => "UPDATE requests SET state = ?2 WHERE id = ?1",
            Stmt::PutJob => {
                "INSERT INTO jobs (id, request, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data"
            }
            Stmt::CountMinute => {
                "INSERT INTO minutes (minute, requests, tokens) VALUES (?1, 1, ?2)
                 ON CONFLICT (minute) DO UPDATE SET requests = minutes.requests + 1,
                    tokens = minutes.tokens + excluded.tokens"
            }
            Stmt::CountModelHour => {
                "INSERT INTO model_hours (model, hour, requests) VALUES (?1, ?2, 1)
                 ON CONFLICT (model, hour) DO UPDATE SET requests = model_hours.requests + 1"
            }
            Stmt::DeleteJobsOf => "DELETE FROM jobs WHERE request = ?1",
            Stmt::DeleteRequest => "DELETE FROM requests WHERE id = ?1",
            Stmt::InsertPosting => {
                "INSERT INTO postings (at, kind, from_user, to_user, amount, from_escrow, to_escrow)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            }
            Stmt::SetAccount => {
                "UPDATE users SET balance = ?2, accumulated = ?3, gifted = ?4, received = ?5,
                    awarded = ?6, uptime = ?7, admin = ?8, escrow = ?9 WHERE id = ?1"
            }
            Stmt::SetPolicy => {
                "UPDATE users SET concurrency = ?2, trusted = ?3, public_workers = ?4, flagged = ?5,
                    roles = ?6
                 WHERE id = ?1"
            }
            Stmt::PutWorker => {
                "INSERT INTO workers (id, data) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data"
            }
            Stmt::PutWorkerStats => {
                "INSERT INTO worker_stats (id, data) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data"
            }
            Stmt::DeleteWorker => "DELETE FROM workers WHERE id = ?1",
            Stmt::PutTeam => {
                "INSERT INTO teams (id, data) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data"
            }
            Stmt::DeleteTeam => "DELETE FROM teams WHERE id = ?1",
            Stmt::PutWebhook => {
                "INSERT INTO webhooks (job, url, owner, body, attempts, next_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (job) DO UPDATE SET attempts = excluded.attempts,
                    next_at = excluded.next_at"
            }
            Stmt::DeleteWebhook => "DELETE FROM webhooks WHERE job = ?1",
            Stmt::DeleteWorkerStats => "DELETE FROM worker_stats WHERE id = ?1",
            Stmt::PutSecret => {
                "INSERT INTO meta (key, value) VALUES ('key_secret', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            }
            Stmt::PutModes => {
                "INSERT INTO meta (key, value) VALUES ('modes', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            }
            Stmt::EnsureAnonymous => {
                "INSERT INTO users (id, alias, key_hash, created_at, concurrency)
                 VALUES (0, 'Anonymous', NULL, 0, ?1) ON CONFLICT (id) DO NOTHING"
            }
            Stmt::SelectSecret => "SELECT value FROM meta WHERE key = 'key_secret'",
            Stmt::SelectModes => "SELECT value FROM meta WHERE key = 'modes'",
            Stmt::SelectUsers => {
                "SELECT id, alias, key_hash, created_at, concurrency, trusted, balance, accumulated,
                    gifted, received, awarded, uptime, admin, public_workers, is_admin, flagged,
                    escrow, roles, webhook_secret
                 FROM users"
            }
            Stmt::SelectWorkers => {
                "SELECT workers.data, worker_stats.data FROM workers
                 LEFT JOIN worker_stats ON worker_stats.id = workers.id"
            }
            Stmt::SelectJobs => "SELECT request, data FROM jobs",
            Stmt::SelectTeams => "SELECT data FROM teams",
            Stmt::SelectWebhooks => {
                "SELECT job, url, owner, body, attempts, next_at, created_at FROM webhooks"
            }
            Stmt::SelectRequests => "SELECT id, spec, state FROM requests",
            Stmt::SelectIdempotency => "SELECT \"user\", key, request, response FROM idempotency",
            Stmt::SelectSessions => "SELECT digest, \"user\", csrf, expires_at FROM sessions",
            Stmt::SelectIdentities => "SELECT provider, subject, \"user\" FROM identities",
            Stmt::SelectMinutes => "SELECT minute, requests, tokens FROM minutes",
            Stmt::SelectModelHours => "SELECT model, hour, requests FROM model_hours",
            Stmt::SelectMovements => {
                "SELECT at, kind, from_user, from_escrow, to_user, to_escrow, amount FROM postings
                 WHERE from_user = ?1 OR to_user = ?1 ORDER BY seq DESC LIMIT ?2"
            }
            Stmt::SumEarned => {
                "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM postings
                 WHERE to_user = ?1 AND kind = 'generation'"
            }
            Stmt::SumSpent => {
                "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM postings
                 WHERE from_user = ?1 AND kind = 'generation'"
            }
        }
    }

    /// The statement's SQL with PostgreSQL's `$N` placeholders (no statement has a `?`
    /// elsewhere).
    pub(crate) fn numbered(self) -> String {
        self.text().replace('?', "$")
    }
}

/// Runs named statements on one connection or transaction.
pub(crate) trait Sql {
    /// Runs a statement that returns no rows.
    fn execute(&mut self, stmt: Stmt, params: &[Value]) -> Result<(), StoreError>;
    /// Runs a query and returns all its rows.
    fn query(&mut self, stmt: Stmt, params: &[Value]) -> Result<Vec<Row>, StoreError>;
}

/// A database engine as the writer thread uses it: statements, transactions, a liveness
/// check while idle, and a clean close.
pub(crate) trait Engine: Sql + Send {
    /// Runs `f` in one transaction, committed if and only if `f` succeeds.
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Checks, while no write is waiting, that the engine can still commit (PostgreSQL: the
    /// connection, and with it the lease, is alive).
    fn check(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Called once when the writer stops.
    fn close(&mut self) {}
}
