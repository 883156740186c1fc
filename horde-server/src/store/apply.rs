//! Writing: each write of a group commit, keeping only the last value of an entity.

use horde_core::{Account, Event, JobStatus, UserId};
use rusqlite::{params, Connection, Transaction};

use super::{Batch, StoreError, Write};

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
pub(super) fn write_batches(conn: &mut Connection, batches: &[Batch]) -> Result<(), StoreError> {
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
        Write::Session { digest, session } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sessions (digest, user, csrf, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                &digest[..],
                session.user.0 as i64,
                session.csrf,
                session.expires_at as i64
            ])?;
        }
        Write::SessionEnded { digest } => {
            tx.prepare_cached("DELETE FROM sessions WHERE digest = ?1")?
                .execute(params![&digest[..]])?;
        }
        Write::Identity {
            provider,
            subject,
            user,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO identities (provider, subject, user) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![provider, subject, user.0 as i64])?;
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
