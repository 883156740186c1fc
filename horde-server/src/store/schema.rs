//! The schema: migrations counted by SQLite's `user_version`, and opening a connection.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

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
    // 8: web sign-in: sessions (by the digest of their id) and OAuth identities.
    "CREATE TABLE sessions (
        digest BLOB PRIMARY KEY,
        user INTEGER NOT NULL,
        csrf TEXT NOT NULL,
        expires_at INTEGER NOT NULL
     );
     CREATE TABLE identities (
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        user INTEGER NOT NULL,
        PRIMARY KEY (provider, subject)
     );",
    // 9: a user's recent kudos movements, for the account page.
    "CREATE INDEX postings_from ON postings (from_user, seq);
     CREATE INDEX postings_to ON postings (to_user, seq);",
    // 10: finished generations per model and hour, for `/stats/text/models`.
    "CREATE TABLE model_hours (
        model TEXT NOT NULL,
        hour INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        PRIMARY KEY (model, hour)
     );",
    // 11: a user's roles (bits: moderator 1, service 2, customizer 4, vpn 8).
    "ALTER TABLE users ADD COLUMN roles INTEGER NOT NULL DEFAULT 0;",
    // 12: teams of workers (JSON records with their counters).
    "CREATE TABLE teams (id TEXT PRIMARY KEY, data TEXT NOT NULL);",
    // 13: webhooks: each user's signing secret, and the deliveries not yet made.
    "ALTER TABLE users ADD COLUMN webhook_secret TEXT;
     CREATE TABLE webhooks (
        job TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        owner INTEGER NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
     );",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

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
