//! Reading everything back on start.

use std::sync::Arc;

use horde_core::{
    AccountState, Job, KudosDetails, RequestSpec, RequestState, UserId, UserPolicy, Worker,
};
use rusqlite::{params, Connection, OptionalExtension};

use super::{Loaded, StoreError, UserRow};

pub(super) fn load(conn: &Connection, default_concurrency: u32) -> Result<Loaded, StoreError> {
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

    let mut sessions = Vec::new();
    let mut stmt = conn.prepare("SELECT digest, user, csrf, expires_at FROM sessions")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let digest: Vec<u8> = row.get(0)?;
        let Ok(digest) = <[u8; 32]>::try_from(digest.as_slice()) else {
            continue;
        };
        sessions.push((
            digest,
            crate::sessions::Session {
                user: UserId(row.get::<_, i64>(1)? as u64),
                csrf: row.get(2)?,
                expires_at: row.get::<_, i64>(3)? as u64,
            },
        ));
    }

    let mut identities = Vec::new();
    let mut stmt = conn.prepare("SELECT provider, subject, user FROM identities")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        identities.push((
            row.get(0)?,
            row.get(1)?,
            UserId(row.get::<_, i64>(2)? as u64),
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
        sessions,
        identities,
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
