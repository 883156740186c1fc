//! The replicated engine: PostgreSQL through `tokio-postgres` (driven by a runtime of the
//! writer thread's own), for a horde that must survive the loss of a machine.
//!
//! A group commit sends `BEGIN`, then all its statements **pipelined** (one round trip for the
//! lot instead of one each), then `COMMIT`.
//!
//! **The lease.** Exactly one horde-server node writes: the one whose writer connection holds
//! the session-level advisory lock [`LEASE_KEY`]. The lock lives exactly as long as that
//! connection, and every commit goes through that same connection, so a node that lost its
//! connection (and with it the lock) cannot commit anything more — the fencing is the
//! connection itself. Other nodes wait for the lock ([`Postgres::open`] with `wait`) and
//! take over when the holder's session ends: killed, crashed, or cut off from the database.
//!
//! **Liveness.** A node that is alive but stopped (SIGSTOP, a hung process, a long pause)
//! keeps its TCP connection, and the kernel answers keepalives for it: its session, and the
//! lease, would live forever. So the lease connections run with PostgreSQL's
//! `idle_session_timeout` and `idle_in_transaction_session_timeout` at [`LEASE_IDLE_TIMEOUT`]:
//! a holder that sends nothing for that long loses its session and the lease. A working
//! writer is never idle that long (it commits, or checks its connection every second while
//! idle); a waiting node asks for the lock four times a second. When a frozen node wakes, its
//! next commit fails on the closed connection and it stops (fail-stop): one writer, always.

use std::time::Duration;

use bytes::BytesMut;
use tokio::runtime::Runtime;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

use super::sql::{Engine, Row, Sql, Stmt, Value};
use super::StoreError;

/// The advisory lock that makes a node the active one ("horde" in ASCII).
pub const LEASE_KEY: i64 = 0x68_6f_72_64_65;

/// How often a waiting node tries to take the lease.
const LEASE_POLL: Duration = Duration::from_millis(250);

/// How long a lease connection may send nothing before PostgreSQL ends its session (and with
/// it the lease): bounds the takeover after the active node freezes.
pub const LEASE_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a commit may wait for the database's answer. Past it the node stops: on a network
/// that drops everything (no reset, no error) a commit would otherwise wait forever, while the
/// database ended the silent session after [`LEASE_IDLE_TIMEOUT`] and a standby took over.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(v), &Type::INT8) => v.to_sql(ty, out),
            (Value::Int(v), &Type::INT4) => i32::try_from(*v)?.to_sql(ty, out),
            (Value::Bool(v), &Type::BOOL) => v.to_sql(ty, out),
            (Value::Text(v), &Type::TEXT | &Type::VARCHAR) => v.to_sql(ty, out),
            (Value::Bytes(v), &Type::BYTEA) => v.to_sql(ty, out),
            (value, ty) => Err(format!("{value:?} does not fit a {ty} parameter").into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        accepted(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::BYTEA => Value::Bytes(Vec::<u8>::from_sql(ty, raw)?),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        accepted(ty)
    }
}

fn accepted(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::INT8 | Type::INT4 | Type::BOOL | Type::TEXT | Type::VARCHAR | Type::BYTEA
    )
}

/// Schema migrations; the `horde_schema` table counts how many were applied. The first one
/// is the whole schema as SQLite's nine migrations left it.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
     CREATE TABLE users (
        id BIGINT PRIMARY KEY,
        alias TEXT NOT NULL,
        key_hash BYTEA UNIQUE,
        created_at BIGINT NOT NULL,
        concurrency BIGINT NOT NULL,
        trusted BOOLEAN NOT NULL DEFAULT FALSE,
        balance BIGINT NOT NULL DEFAULT 0,
        accumulated BIGINT NOT NULL DEFAULT 0,
        gifted BIGINT NOT NULL DEFAULT 0,
        received BIGINT NOT NULL DEFAULT 0,
        awarded BIGINT NOT NULL DEFAULT 0,
        uptime BIGINT NOT NULL DEFAULT 0,
        admin BIGINT NOT NULL DEFAULT 0,
        public_workers BOOLEAN NOT NULL DEFAULT FALSE,
        is_admin BOOLEAN NOT NULL DEFAULT FALSE,
        flagged BOOLEAN NOT NULL DEFAULT FALSE,
        escrow BIGINT NOT NULL DEFAULT 0
     );
     CREATE TABLE workers (id TEXT PRIMARY KEY, data TEXT NOT NULL);
     CREATE TABLE worker_stats (id TEXT PRIMARY KEY, data TEXT NOT NULL);
     CREATE TABLE requests (id TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT);
     CREATE TABLE jobs (id TEXT PRIMARY KEY, request TEXT NOT NULL, data TEXT NOT NULL);
     CREATE INDEX jobs_by_request ON jobs (request);
     CREATE TABLE postings (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        from_user BIGINT,
        to_user BIGINT,
        amount BIGINT NOT NULL,
        from_escrow BOOLEAN NOT NULL DEFAULT FALSE,
        to_escrow BOOLEAN NOT NULL DEFAULT FALSE
     );
     CREATE INDEX postings_from ON postings (from_user, seq);
     CREATE INDEX postings_to ON postings (to_user, seq);
     CREATE TABLE idempotency (
        \"user\" BIGINT NOT NULL,
        key TEXT NOT NULL,
        request TEXT NOT NULL,
        response TEXT NOT NULL,
        PRIMARY KEY (\"user\", key)
     );
     CREATE TABLE minutes (
        minute BIGINT PRIMARY KEY,
        requests BIGINT NOT NULL,
        tokens BIGINT NOT NULL
     );
     CREATE TABLE sessions (
        digest BYTEA PRIMARY KEY,
        \"user\" BIGINT NOT NULL,
        csrf TEXT NOT NULL,
        expires_at BIGINT NOT NULL
     );
     CREATE TABLE identities (
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        \"user\" BIGINT NOT NULL,
        PRIMARY KEY (provider, subject)
     );",
    // 2 (SQLite's 10): finished generations per model and hour.
    "CREATE TABLE model_hours (
        model TEXT NOT NULL,
        hour BIGINT NOT NULL,
        requests BIGINT NOT NULL,
        PRIMARY KEY (model, hour)
     );",
    // 3 (SQLite's 11): a user's roles (bits: moderator 1, service 2, customizer 4, vpn 8).
    "ALTER TABLE users ADD COLUMN roles BIGINT NOT NULL DEFAULT 0;",
    // 4 (SQLite's 12): teams of workers.
    "CREATE TABLE teams (id TEXT PRIMARY KEY, data TEXT NOT NULL);",
    // 5 (SQLite's 13): webhooks: signing secrets and deliveries not yet made.
    "ALTER TABLE users ADD COLUMN webhook_secret TEXT;
     CREATE TABLE webhooks (
        job TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        owner BIGINT NOT NULL,
        body TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        next_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL
     );",
];

/// Prepared statements, by name, for one connection.
type Prepared = std::collections::HashMap<Stmt, Statement>;

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn row_values(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    (0..row.len())
        .map(|i| row.try_get::<_, Value>(i).map_err(StoreError::from))
        .collect::<Result<Vec<_>, _>>()
        .map(Row)
}

/// A connection to PostgreSQL and the runtime that drives it; the writer's holds the lease.
pub(crate) struct Postgres {
    runtime: Runtime,
    client: Client,
    prepared: Prepared,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Postgres")
    }
}

/// What a connection is for: holding (or waiting for) the lease, or reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Lease,
    Reader,
}

/// Connects to `url`, with timeouts that notice a dead server or network within seconds, and
/// for the lease, a session that ends when its node stops talking ([`LEASE_IDLE_TIMEOUT`]).
fn connect(url: &str, role: Role) -> Result<Postgres, StoreError> {
    let (url, tls) = super::tls::Tls::split(url)?;
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| StoreError::Url(format!("{e}")))?;
    config.ssl_mode(tls.ssl_mode());
    let idle_ms = LEASE_IDLE_TIMEOUT.as_millis();
    let options = match role {
        Role::Lease => format!(
            "-c client_min_messages=warning -c idle_session_timeout={idle_ms} \
             -c idle_in_transaction_session_timeout={idle_ms}"
        ),
        Role::Reader => "-c client_min_messages=warning".to_owned(),
    };
    config
        .application_name("horde-server")
        .options(&options)
        .connect_timeout(Duration::from_secs(5))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3);
    #[cfg(target_os = "linux")]
    config.tcp_user_timeout(Duration::from_secs(10));
    // A runtime of this connection's own, on the calling thread: the store's threads are
    // not tokio workers, and the connection must not depend on the server's runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Commit(format!("cannot start the database runtime: {e}")))?;
    let client = match tls.connector()? {
        None => start_connection(&runtime, &config, NoTls)?,
        Some(connector) => start_connection(&runtime, &config, connector)?,
    };
    Ok(Postgres {
        runtime,
        client,
        prepared: Prepared::new(),
    })
}

/// Connects with `tls` on `runtime` and drives the connection there; returns its client.
fn start_connection<T>(
    runtime: &Runtime,
    config: &tokio_postgres::Config,
    tls: T,
) -> Result<Client, StoreError>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let (client, connection) = runtime.block_on(config.connect(tls))?;
    runtime.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %describe_error(&e), "the database connection ended");
        }
    });
    Ok(client)
}

impl Postgres {
    /// Connects to `url`, takes the lease and migrates the schema. Without `wait`, a lease
    /// held by another node is [`StoreError::Locked`]; with it, waits (reconnecting when the
    /// database is away) until `wait` says stop or the lease is free.
    pub(crate) fn open(url: &str, wait: Option<&dyn Fn() -> bool>) -> Result<Postgres, StoreError> {
        let mut told = false;
        let mut last_error: Option<String> = None;
        let mut connection: Option<Postgres> = None;
        let mut db = loop {
            let attempt = match connection.take() {
                Some(db) => Ok(db),
                None => connect(url, Role::Lease),
            }
            .and_then(|db| {
                let row = db.runtime.block_on(
                    db.client
                        .query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_KEY]),
                )?;
                Ok((row.get::<_, bool>(0), db))
            });
            match (attempt, wait) {
                (Ok((true, db)), _) => break db,
                (Ok((false, _)), None) => return Err(StoreError::Locked(redact(url))),
                (Err(e), None) => return Err(e),
                (outcome, Some(go_on)) => {
                    match outcome {
                        // Once per kind of failure, not four times a second.
                        Err(e) if last_error.as_deref() != Some(e.to_string().as_str()) => {
                            tracing::warn!(error = %e, "waiting for the database");
                            last_error = Some(e.to_string());
                        }
                        Err(_) => {}
                        Ok((_, db)) => {
                            if !told {
                                tracing::info!(
                                    "standby: another node holds the lease; waiting for it"
                                );
                                told = true;
                            }
                            connection = Some(db);
                        }
                    }
                    if !go_on() {
                        return Err(StoreError::Closed);
                    }
                    std::thread::sleep(LEASE_POLL);
                }
            }
        };
        db.migrate()?;
        Ok(db)
    }

    /// A plain connection without the lease, for reads beside the writer.
    pub(crate) fn open_reader(url: &str) -> Result<Postgres, StoreError> {
        connect(url, Role::Reader)
    }

    /// Applies the migrations not yet applied, in one transaction, under the lease.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let latest = MIGRATIONS.len() as i64;
        let client = &mut self.client;
        self.runtime.block_on(async {
            let tx = client.transaction().await?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS horde_schema (version BIGINT NOT NULL)")
                .await?;
            let current: i64 = tx
                .query_opt("SELECT version FROM horde_schema", &[])
                .await?
                .map_or(0, |row| row.get(0));
            if current > latest {
                return Err(StoreError::TooNew(current, latest));
            }
            for sql in MIGRATIONS.iter().skip(current as usize) {
                tx.batch_execute(sql).await?;
            }
            tx.execute("DELETE FROM horde_schema", &[]).await?;
            tx.execute("INSERT INTO horde_schema (version) VALUES ($1)", &[&latest])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The prepared statement for `stmt`, preparing it on first use.
    fn statement(&mut self, stmt: Stmt) -> Result<Statement, StoreError> {
        if let Some(statement) = self.prepared.get(&stmt) {
            return Ok(statement.clone());
        }
        let statement = self
            .runtime
            .block_on(self.client.prepare(&stmt.numbered()))?;
        self.prepared.insert(stmt, statement.clone());
        Ok(statement)
    }
}

/// An error with the server's own message when there is one (the `postgres` crate's display
/// says only "db error").
pub(crate) fn describe_error(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// `url` without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            format!(
                "postgres://{}@{}/{}",
                config.get_user().unwrap_or(""),
                hosts.join(","),
                config.get_dbname().unwrap_or("")
            )
        }
        Err(_) => "the PostgreSQL database".to_owned(),
    }
}

impl Sql for Postgres {
    fn execute(&mut self, stmt: Stmt, params: &[Value]) -> Result<(), StoreError> {
        let statement = self.statement(stmt)?;
        self.runtime
            .block_on(self.client.execute(&statement, &refs(params)))?;
        Ok(())
    }

    fn query(&mut self, stmt: Stmt, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(stmt)?;
        let rows = self
            .runtime
            .block_on(self.client.query(&statement, &refs(params)))?;
        rows.iter().map(row_values).collect()
    }
}

/// The statements of a write transaction, collected to be sent pipelined.
#[derive(Default)]
struct Collected(Vec<(Stmt, Vec<Value>)>);

impl Sql for Collected {
    fn execute(&mut self, stmt: Stmt, params: &[Value]) -> Result<(), StoreError> {
        self.0.push((stmt, params.to_vec()));
        Ok(())
    }

    fn query(&mut self, stmt: Stmt, _: &[Value]) -> Result<Vec<Row>, StoreError> {
        Err(StoreError::Corrupt(format!(
            "{stmt:?}: a write transaction does not read"
        )))
    }
}

impl Engine for Postgres {
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut collected = Collected::default();
        f(&mut collected)?;
        let mut statements = Vec::with_capacity(collected.0.len());
        for (stmt, _) in &collected.0 {
            statements.push(self.statement(*stmt)?);
        }
        let params: Vec<Vec<&(dyn ToSql + Sync)>> =
            collected.0.iter().map(|(_, values)| refs(values)).collect();
        let client = &self.client;
        let committed = self.runtime.block_on(async {
            tokio::time::timeout(COMMIT_TIMEOUT, async {
                client.batch_execute("BEGIN").await?;
                // Sent in order without waiting for each answer; PostgreSQL runs them in order.
                let writes = statements
                    .iter()
                    .zip(&params)
                    .map(|(statement, params)| client.execute(statement, params));
                match futures_util::future::try_join_all(writes).await {
                    Ok(_) => client.batch_execute("COMMIT").await,
                    Err(e) => {
                        let _ = client.batch_execute("ROLLBACK").await;
                        Err(e)
                    }
                }
            })
            .await
        });
        match committed {
            Ok(result) => Ok(result?),
            // Nothing is acknowledged and the node stops (fail-stop). A silent session has lost
            // the lease by now (its idle timeouts are shorter); a commit that was only slow may
            // still land, and its callers got 503 (the case docs/operations.md describes).
            Err(_) => Err(StoreError::Commit(format!(
                "the database did not answer a commit within {} s (a network cut?)",
                COMMIT_TIMEOUT.as_secs()
            ))),
        }
    }

    fn check(&mut self) -> Result<(), StoreError> {
        let client = &self.client;
        let alive = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(3), client.simple_query("")).await
        });
        match alive {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(StoreError::Commit(
                "the database did not answer within 3 s".into(),
            )),
        }
    }
}
