//! Reading everything back on start, on either engine.

use std::sync::Arc;

use horde_core::{
    AccountState, Job, Kudos, KudosDetails, RequestSpec, RequestState, UserId, UserPolicy, Worker,
};

use super::sql::{params, Sql, Stmt};
use super::{Loaded, StoreError, UserRow};

pub(super) fn load(sql: &mut dyn Sql, default_concurrency: u32) -> Result<Loaded, StoreError> {
    let secret = load_secret(sql)?;
    sql.execute(Stmt::EnsureAnonymous, &params![default_concurrency])?;
    let mut users = Vec::new();
    for row in sql.query(Stmt::SelectUsers, &[])? {
        let kudos = |i| row.int(i).map(Kudos::from_milli);
        let created_at = row.int(3)? as u64;
        let user = UserRow {
            id: UserId(row.int(0)? as u64),
            alias: row.text(1)?,
            key_hash: row.opt_bytes(2)?.and_then(|h| h.try_into().ok()),
            created_at,
            is_admin: row.flag(14)?,
            webhook_secret: row.opt_text(18)?,
        };
        let policy = UserPolicy {
            concurrency: row.uint(4)?,
            trusted: row.flag(5)?,
            public_workers: row.flag(13)?,
            flagged: row.flag(15)?,
            registered_at: horde_core::Timestamp(created_at),
            roles: horde_core::Roles::from_bits(row.int(17)?.clamp(0, 255) as u8),
        };
        let state = AccountState {
            balance: kudos(6)?,
            details: KudosDetails {
                accumulated: kudos(7)?,
                gifted: kudos(8)?,
                received: kudos(9)?,
                awarded: kudos(10)?,
                uptime: kudos(11)?,
                admin: kudos(12)?,
            },
            escrow: kudos(16)?,
        };
        users.push((user, policy, state));
    }

    let mut workers = Vec::new();
    for row in sql.query(Stmt::SelectWorkers, &[])? {
        let mut worker: Worker = serde_json::from_str(&row.text(0)?)?;
        if let Some(stats) = row.opt_text(1)? {
            worker.set_stats(serde_json::from_str(&stats)?);
        }
        workers.push(worker);
    }

    let mut teams = Vec::new();
    for row in sql.query(Stmt::SelectTeams, &[])? {
        teams.push(serde_json::from_str(&row.text(0)?)?);
    }

    let mut jobs_by_request: std::collections::HashMap<String, Vec<Job>> = Default::default();
    for row in sql.query(Stmt::SelectJobs, &[])? {
        let job: Job = serde_json::from_str(&row.text(1)?)?;
        jobs_by_request.entry(row.text(0)?).or_default().push(job);
    }
    let mut requests = Vec::new();
    for row in sql.query(Stmt::SelectRequests, &[])? {
        let id = row.text(0)?;
        let Some(state) = row.opt_text(2)? else {
            continue;
        };
        let spec: RequestSpec = serde_json::from_str(&row.text(1)?)?;
        let state: RequestState = serde_json::from_str(&state)?;
        let jobs = jobs_by_request.remove(&id).unwrap_or_default();
        requests.push((Arc::new(spec), state, jobs));
    }

    let mut idempotency = Vec::new();
    for row in sql.query(Stmt::SelectIdempotency, &[])? {
        idempotency.push((
            UserId(row.int(0)? as u64),
            row.text(1)?,
            row.text(2)?,
            row.text(3)?,
        ));
    }

    let mut sessions = Vec::new();
    for row in sql.query(Stmt::SelectSessions, &[])? {
        let Some(Ok(digest)) = row.opt_bytes(0)?.map(<[u8; 32]>::try_from) else {
            continue;
        };
        sessions.push((
            digest,
            super::Session {
                user: UserId(row.int(1)? as u64),
                csrf: row.text(2)?,
                expires_at: row.int(3)? as u64,
            },
        ));
    }

    let mut identities = Vec::new();
    for row in sql.query(Stmt::SelectIdentities, &[])? {
        identities.push((row.text(0)?, row.text(1)?, UserId(row.int(2)? as u64)));
    }

    let mut minutes = Vec::new();
    for row in sql.query(Stmt::SelectMinutes, &[])? {
        minutes.push((row.int(0)? as u64, row.int(1)? as u64, row.int(2)? as u64));
    }

    let mut model_hours = Vec::new();
    for row in sql.query(Stmt::SelectModelHours, &[])? {
        model_hours.push((row.text(0)?, row.int(1)? as u64, row.int(2)? as u64));
    }

    let mut webhooks = Vec::new();
    for row in sql.query(Stmt::SelectWebhooks, &[])? {
        let Ok(job) = row.text(0)?.parse() else {
            continue;
        };
        webhooks.push(super::Delivery {
            job: horde_core::JobId(job),
            url: row.text(1)?,
            owner: UserId(row.int(2)? as u64),
            body: row.text(3)?,
            attempts: row.int(4)?.clamp(0, i64::from(u32::MAX)) as u32,
            next_at: row.int(5)?.max(0) as u64,
            created_at: row.int(6)?.max(0) as u64,
        });
    }

    let modes = match sql.query(Stmt::SelectModes, &[])?.first() {
        Some(row) => serde_json::from_slice(&row.opt_bytes(0)?.unwrap_or_default())?,
        None => super::Modes::default(),
    };

    Ok(Loaded {
        webhooks,
        teams,
        modes,
        model_hours,
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
fn load_secret(sql: &mut dyn Sql) -> Result<[u8; 32], StoreError> {
    let stored = sql
        .query(Stmt::SelectSecret, &[])?
        .first()
        .map(|row| row.opt_bytes(0))
        .transpose()?
        .flatten();
    if let Some(secret) = stored.and_then(|s| <[u8; 32]>::try_from(s).ok()) {
        return Ok(secret);
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| StoreError::Commit(e.to_string()))?;
    sql.execute(Stmt::PutSecret, &params![secret.to_vec()])?;
    Ok(secret)
}
