//! Writing: each write of a group commit, keeping only the last value of an entity.

use super::sql::{params, Engine, Sql, Stmt};
use super::{Batch, StoreError, Write};
use horde_core::{Account, Event, JobStatus, UserId};

/// An entity whose latest value replaces the earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Latest {
    RequestState(horde_core::RequestId),
    Job(horde_core::JobId),
    Worker(horde_core::WorkerId),
    WorkerStats(horde_core::WorkerId),
    Account(UserId),
    Policy(UserId),
    Team(horde_core::TeamId),
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
            Write::Event(Event::TeamChanged(team)) => Some(Latest::Team(team.id)),
            _ => None,
        }
    }
}

/// Writes the batches in one transaction. A group commit often holds several values of the
/// same entity (a busy worker checks in on every pop; an account changes on every
/// generation): only the last one of each is written, the same result with less work. The
/// journal of postings, new requests and removals are written in full, in order.
pub(super) fn write_batches(engine: &mut dyn Engine, batches: &[Batch]) -> Result<(), StoreError> {
    let writes = || batches.iter().flat_map(|batch| batch.writes.iter());
    let mut last: std::collections::HashMap<Latest, usize> = std::collections::HashMap::new();
    for (index, write) in writes().enumerate() {
        if let Some(key) = Latest::of(write) {
            last.insert(key, index);
        }
    }
    engine.transaction(&mut |sql| {
        for (index, write) in writes().enumerate() {
            let superseded = Latest::of(write).is_some_and(|key| last.get(&key) != Some(&index));
            if !superseded {
                apply(sql, write)?;
            }
        }
        Ok(())
    })
}

/// The user an account belongs to (none for the horde), and whether it is their escrow.
fn account_user(account: Account) -> (Option<i64>, bool) {
    match account {
        Account::Horde => (None, false),
        Account::User(user) => (Some(user.0 as i64), false),
        Account::Escrow(user) => (Some(user.0 as i64), true),
    }
}

fn apply(sql: &mut dyn Sql, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::User(user) => sql.execute(
            Stmt::PutUser,
            &params![
                user.id.0 as i64,
                user.alias.as_str(),
                user.key_hash.map(|h| h.to_vec()),
                user.created_at as i64,
                user.is_admin,
                user.webhook_secret.clone(),
            ],
        ),
        Write::Webhook(delivery) => sql.execute(
            Stmt::PutWebhook,
            &params![
                delivery.job.to_string(),
                delivery.url.as_str(),
                delivery.owner.0 as i64,
                delivery.body.as_str(),
                i64::from(delivery.attempts),
                delivery.next_at as i64,
                delivery.created_at as i64
            ],
        ),
        Write::WebhookDone(job) => sql.execute(Stmt::DeleteWebhook, &params![job.to_string()]),
        Write::Modes(modes) => sql.execute(Stmt::PutModes, &params![serde_json::to_vec(modes)?]),
        Write::Idempotency {
            user,
            key,
            request,
            response,
        } => sql.execute(
            Stmt::PutIdempotency,
            &params![
                user.0 as i64,
                key.as_str(),
                request.as_str(),
                response.as_str()
            ],
        ),
        Write::Session { digest, session } => sql.execute(
            Stmt::PutSession,
            &params![
                digest.to_vec(),
                session.user.0 as i64,
                session.csrf.as_str(),
                session.expires_at as i64
            ],
        ),
        Write::SessionEnded { digest } => {
            sql.execute(Stmt::DeleteSession, &params![digest.to_vec()])
        }
        Write::Identity {
            provider,
            subject,
            user,
        } => sql.execute(
            Stmt::PutIdentity,
            &params![provider.as_str(), subject.as_str(), user.0 as i64],
        ),
        Write::Event(event) => apply_event(sql, event),
    }
}

fn apply_event(sql: &mut dyn Sql, event: &Event) -> Result<(), StoreError> {
    match event {
        Event::RequestQueued(spec) => sql.execute(
            Stmt::PutRequest,
            &params![spec.id.to_string(), serde_json::to_string(&**spec)?],
        ),
        Event::RequestChanged { id, state } => sql.execute(
            Stmt::SetRequestState,
            &params![id.to_string(), serde_json::to_string(state)?],
        ),
        Event::JobChanged(job) => {
            sql.execute(
                Stmt::PutJob,
                &params![
                    job.id.to_string(),
                    job.request.to_string(),
                    serde_json::to_string(job)?
                ],
            )?;
            if let JobStatus::Done(generation) = &job.status {
                sql.execute(
                    Stmt::CountMinute,
                    &params![
                        (generation.finished_at.millis() / 60_000) as i64,
                        generation.tokens
                    ],
                )?;
                sql.execute(
                    Stmt::CountModelHour,
                    &params![
                        &*job.model,
                        (generation.finished_at.millis() / 3_600_000) as i64
                    ],
                )?;
            }
            Ok(())
        }
        Event::RequestRemoved(id) => {
            let id = id.to_string();
            sql.execute(Stmt::DeleteJobsOf, &params![id.as_str()])?;
            sql.execute(Stmt::DeleteRequest, &params![id])
        }
        Event::Posted(posting) => {
            let kind = serde_json::to_value(posting.kind)?;
            let (from, from_escrow) = account_user(posting.from);
            let (to, to_escrow) = account_user(posting.to);
            sql.execute(
                Stmt::InsertPosting,
                &params![
                    posting.at.millis() as i64,
                    kind.as_str().unwrap_or_default(),
                    from,
                    to,
                    posting.amount.milli(),
                    from_escrow,
                    to_escrow,
                ],
            )
        }
        Event::AccountChanged { user, state } => {
            let d = state.details;
            sql.execute(
                Stmt::SetAccount,
                &params![
                    user.0 as i64,
                    state.balance.milli(),
                    d.accumulated.milli(),
                    d.gifted.milli(),
                    d.received.milli(),
                    d.awarded.milli(),
                    d.uptime.milli(),
                    d.admin.milli(),
                    state.escrow.milli(),
                ],
            )
        }
        Event::UserChanged { user, policy } => sql.execute(
            Stmt::SetPolicy,
            &params![
                user.0 as i64,
                policy.concurrency,
                policy.trusted,
                policy.public_workers,
                policy.flagged,
                i64::from(policy.roles.bits())
            ],
        ),
        Event::WorkerChanged(worker) => {
            sql.execute(
                Stmt::PutWorker,
                &params![worker.id.to_string(), serde_json::to_string(worker)?],
            )?;
            // The stats row, when there is one, must never be older than the record.
            write_worker_stats(sql, worker.id, &worker.stats())
        }
        Event::WorkerCheckedIn { id, stats } => write_worker_stats(sql, *id, stats),
        Event::TeamChanged(team) => sql.execute(
            Stmt::PutTeam,
            &params![team.id.to_string(), serde_json::to_string(team)?],
        ),
        Event::TeamRemoved(id) => sql.execute(Stmt::DeleteTeam, &params![id.to_string()]),
        Event::WorkerRemoved(id) => {
            sql.execute(Stmt::DeleteWorkerStats, &params![id.to_string()])?;
            sql.execute(Stmt::DeleteWorker, &params![id.to_string()])
        }
    }
}

fn write_worker_stats(
    sql: &mut dyn Sql,
    id: horde_core::WorkerId,
    stats: &horde_core::WorkerStats,
) -> Result<(), StoreError> {
    sql.execute(
        Stmt::PutWorkerStats,
        &params![id.to_string(), serde_json::to_string(stats)?],
    )
}
