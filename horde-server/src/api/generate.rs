//! Text generation: request (async), status, cancel, and the worker side (pop, submit).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use horde_core::{Horde, JobId, Outcome, PopQuery, RequestId, Submission, SubmitState, Timestamp};
use serde_json::Value;
use uuid::Uuid;

use super::{parse_uuid, Caller, ClientIp, Json, Registered};
use crate::driver::Driver;
use crate::error::{ApiError, Rc};
use crate::wire::{
    AsyncAccepted, AsyncRequest, Empty, Estimate, GenMetadata, GenerationOut, Payload,
    PayloadField, PopAnswer, PopRequest, RequestStatus, Reward, Samplers, SubmitRequest,
};

/// The message of a request no online worker can serve yet.
const NOT_POSSIBLE: &str = "No worker currently online can serve this request; it will wait \
     in the queue until one can.";

/// The longest a pop may wait for a job (`wait`, horde's long poll).
const LONG_POLL_MAX_SECS: u32 = 20;

/// Most metadata entries a submission may carry.
const METADATA_MAX: usize = 16;

/// A new request, job or worker id: a time-ordered UUID (v7), so that the database appends
/// new rows at the end of its indexes instead of touching a random page per insert.
fn new_id() -> Uuid {
    Uuid::now_v7()
}

pub(crate) async fn request(
    State(state): State<Driver>,
    Caller(user): Caller,
    ClientIp(ip): ClientIp,
    Json(body): Json<AsyncRequest>,
) -> Result<Response, ApiError> {
    let dry_run = body.dry_run.unwrap_or(false);
    let mut spec = crate::wire::request_spec(body, user, state.now())?;
    if let Some(url) = &spec.webhook {
        // The secret first: nobody makes the horde resolve names without one.
        state.read(|core, _| crate::wire::check_webhook_secret(&core.users, &spec))?;
        let allow_private = state.config().webhooks.allow_private;
        crate::webhooks::guard::check_target(url, allow_private)
            .await
            .map_err(|e| ApiError::invalid(Rc::BadRequest, "webhook", e.to_string()))?;
    }
    spec.origin = Some(state.read(|core, _| core.users.fingerprint(ip)));
    if dry_run {
        // The same 400s as a real request: a dry run tells a client whether it would work.
        let kudos = state.read(|core, now| {
            crate::wire::check_proxied_account(core.horde(), &spec)?;
            crate::wire::check_webhook_secret(&core.users, &spec)?;
            core.horde().check_request(&spec)?;
            Ok::<_, ApiError>(core.horde().estimate(&spec, now))
        })?;
        return Ok(Json(Estimate { kudos }).into_response());
    }
    let asked = spec.params.max_length;
    let (id, kudos, possible, queued) = enqueue(&state, spec).await?;
    let mut notes = Vec::new();
    if queued.max_length < asked {
        notes.push(format!(
            "downgraded to max_length {} (from {asked}) so that no kudos are needed upfront",
            queued.max_length
        ));
    }
    if !possible {
        notes.push(NOT_POSSIBLE.into());
    }
    let body = AsyncAccepted {
        id: id.to_string(),
        kudos,
        message: (!notes.is_empty()).then(|| notes.join("; ").into()),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Queues `spec`: its id, the kudos it is estimated to cost, whether an online worker can
/// serve it now, and its parameters as queued (shortened when `allow_downgrade` applied).
pub(crate) async fn enqueue(
    state: &Driver,
    spec: horde_core::RequestSpec,
) -> Result<(RequestId, horde_core::Kudos, bool, horde_core::GenParams), ApiError> {
    state
        .change(|txn| {
            if txn.core().modes.maintenance {
                return Err(ApiError::HordeMaintenance);
            }
            crate::wire::check_proxied_account(txn.core().horde(), &spec)?;
            crate::wire::check_webhook_secret(&txn.core().users, &spec)?;
            if let Some(proxied) = &spec.proxied_account {
                tracing::info!(service = spec.owner.0, proxied_account = %proxied, "proxied request");
            }
            let id = txn.apply(|horde, now| horde.enqueue(now, spec))?;
            let horde = txn.core().horde();
            let (queued, _) = horde
                .request(id)
                .ok_or_else(|| ApiError::Internal("a queued request is missing".into()))?;
            let kudos = horde.estimate(queued, txn.now());
            // Under attack, nobody is told which requests no worker can serve.
            let possible = horde.is_possible(id, txn.now()) || txn.core().modes.raid;
            Ok::<_, ApiError>((id, kudos, possible, queued.params))
        })
        .await
}

/// The status of request `id`, copied out of the core (serialised after the lock is gone).
pub(crate) fn status_of(
    horde: &Horde,
    id: RequestId,
    now: Timestamp,
) -> Result<RequestStatus, ApiError> {
    let status = horde
        .status(id, now)
        .ok_or_else(|| ApiError::not_found(Rc::RequestNotFound, "no such request"))?;
    let state = status.state;
    let outcome = state.closed.map(|(outcome, _)| outcome);
    let generations = status
        .generations
        .iter()
        .map(|(job, generation)| GenerationOut {
            id: job.id.to_string(),
            text: generation.text.clone(),
            seed: generation.seed_number(),
            worker_id: job.worker.to_string(),
            worker_name: horde
                .worker(job.worker)
                .map(|w| w.name.clone())
                .unwrap_or_default(),
            model: job.model.clone(),
            state: generation.state.as_str().into(),
            // Validated on submit; older rows that do not parse show none.
            gen_metadata: generation
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or_default(),
        })
        .collect();
    Ok(RequestStatus {
        finished: state.finished,
        processing: state.processing,
        restarted: state.restarts,
        waiting: state.waiting,
        done: outcome.is_some(),
        faulted: matches!(outcome, Some(Outcome::Faulted | Outcome::Expired)),
        is_possible: status.is_possible,
        wait_time: status.wait_time,
        queue_position: status.queue_position as u64,
        kudos: state.kudos,
        generations,
    })
}

pub(crate) async fn status(
    State(state): State<Driver>,
    Path(id): Path<String>,
) -> Result<Json<RequestStatus>, ApiError> {
    let id = RequestId(parse_uuid(&id, Rc::RequestNotFound)?);
    // A finished generation is reported only once its submission is committed.
    state
        .read_committed(|core, now| status_of(core.horde(), id, now))
        .await?
        .map(Json)
}

pub(crate) async fn cancel(
    State(state): State<Driver>,
    Path(id): Path<String>,
) -> Result<Json<RequestStatus>, ApiError> {
    let id = RequestId(parse_uuid(&id, Rc::RequestNotFound)?);
    state
        .change(|txn| {
            let not_found = || ApiError::not_found(Rc::RequestNotFound, "no such request");
            txn.apply(|horde, now| horde.cancel(now, id).ok_or_else(not_found))?;
            status_of(txn.core().horde(), id, txn.now())
        })
        .await
        .map(Json)
}

/// Anonymous callers reach the core, which refuses them as `AnonForbiddenWorker`.
pub(crate) async fn pop(
    State(state): State<Driver>,
    Caller(owner): Caller,
    ClientIp(ip): ClientIp,
    Json(body): Json<PopRequest>,
) -> Result<Json<PopAnswer>, ApiError> {
    let usernames = body.priority_usernames.unwrap_or_default();
    let limit = state.config().horde.limits.max_priority_users;
    if usernames.len() > limit {
        return Err(ApiError::invalid(
            Rc::ValidationError,
            "priority_usernames",
            format!("priority_usernames is over its limit of {limit} entries"),
        ));
    }
    let query = PopQuery {
        owner,
        name: body.name,
        models: body
            .models
            .unwrap_or_default()
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(Arc::from)
            .collect(),
        max_length: body.max_length.unwrap_or(512),
        max_context_length: body.max_context_length.unwrap_or(2048),
        priority_users: Vec::new(),
        nsfw: body.nsfw.unwrap_or(false),
        threads: body.threads.unwrap_or(1),
        amount: body.amount.unwrap_or(1),
        bridge_agent: body
            .bridge_agent
            .unwrap_or_else(|| "unknown:0:unknown".into()),
        extra_slow: body.extra_slow_worker.unwrap_or(false),
        blacklist: body.blacklist.unwrap_or_default(),
        origin: Some(state.read(|core, _| core.users.fingerprint(ip))),
        draw: 0,
    };
    let wait = Duration::from_secs(u64::from(body.wait.unwrap_or(0).min(LONG_POLL_MAX_SECS)));
    let until = tokio::time::Instant::now() + wait;
    let result = loop {
        // Armed before looking, so that a request queued meanwhile is not missed.
        let arrived = state.live().work();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        let mut attempt = query.clone();
        attempt.draw = uuid::Uuid::new_v4().as_u64_pair().0;
        let result = state
            .change(|txn| {
                // A name that is not a user's `alias#id` is refused, not silently dropped: the
                // owner would believe those users are served first.
                attempt.priority_users = usernames
                    .iter()
                    .map(|name| {
                        txn.core()
                            .users
                            .find_by_username(name)
                            .map(|u| u.id)
                            .ok_or_else(|| {
                                ApiError::invalid(
                                    Rc::InvalidPriorityUsername,
                                    "priority_usernames",
                                    format!("{name:?} is not the alias#id of a user of this horde"),
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?;
                let horde = txn.core().horde();
                let trusted = horde.user(attempt.owner).is_some_and(|p| p.trusted);
                if horde.worker_by_name(&attempt.name).is_none()
                    && !txn.core().modes.admits_new_worker(trusted)
                {
                    return Err(ApiError::Forbidden {
                        rc: Rc::WorkerInviteOnly,
                        message: "this horde takes new workers only from trusted users for now \
                                  (invite-only); ask its operators to invite you"
                            .into(),
                    });
                }
                Ok::<_, ApiError>(txn.apply(|horde, now| horde.pop(now, attempt, new_id))?)
            })
            .await?;
        if !result.assignments.is_empty() || tokio::time::Instant::now() >= until {
            break result;
        }
        tokio::select! {
            () = arrived => {}
            () = tokio::time::sleep_until(until) => {}
        }
    };
    // The answer is built after the lock is released.
    let Some(first) = result.assignments.first() else {
        return Ok(Json(PopAnswer {
            payload: PayloadField::Empty(Empty {}),
            id: None,
            ids: Vec::new(),
            model: None,
            softprompt: None,
            ttl: None,
            skipped: result
                .skipped
                .iter()
                .map(|(reason, count)| (reason.as_str().into(), count))
                .collect(),
        }));
    };
    let spec = &first.request;
    // Written by `request_spec` from samplers it checked; a row that does not read back (from
    // another version) is sent without them, and said so.
    let samplers: Samplers = serde_json::from_str(&spec.passthrough).unwrap_or_else(|e| {
        tracing::warn!(request = %spec.id, error = %e, "stored samplers do not read back; sent none");
        Samplers::default()
    });
    Ok(Json(PopAnswer {
        payload: PayloadField::Job(Box::new(Payload {
            prompt: spec.prompt.clone(),
            n: 1,
            max_length: spec.params.max_length,
            max_context_length: spec.params.max_context_length,
            samplers,
            extra: serde_json::Map::new(),
        })),
        id: Some(first.job.to_string()),
        ids: result
            .assignments
            .iter()
            .map(|a| a.job.to_string())
            .collect(),
        model: Some(first.model.clone()),
        softprompt: None,
        ttl: Some(first.ttl_secs),
        skipped: Default::default(),
    }))
}

/// The seed as text when it is an integer (or integer text). AI Horde's text submit has no
/// seed field, so anything else is ignored rather than refused; the status shows 0 then.
fn parse_seed(seed: Option<Value>) -> Option<String> {
    match seed? {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::String(s) if s.trim().parse::<i64>().is_ok() => Some(s.trim().into()),
        _ => None,
    }
}

pub(crate) async fn submit(
    State(state): State<Driver>,
    Registered(owner): Registered,
    Json(body): Json<SubmitRequest>,
) -> Result<Json<Reward>, ApiError> {
    let metadata: Vec<GenMetadata> = body.gen_metadata.unwrap_or_default();
    if metadata.len() > METADATA_MAX
        || metadata.iter().any(|m| {
            m.reference
                .as_ref()
                .is_some_and(|r| r.chars().count() > 255)
        })
    {
        return Err(ApiError::invalid(
            Rc::ValidationError,
            "gen_metadata",
            format!("gen_metadata takes at most {METADATA_MAX} entries with refs of at most 255 characters"),
        ));
    }
    let submission = Submission {
        state: body.state.unwrap_or(SubmitState::Ok),
        text: body.generation.unwrap_or_default(),
        seed: parse_seed(body.seed),
        metadata: (!metadata.is_empty())
            .then(|| serde_json::to_string(&metadata))
            .transpose()
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map(Arc::from),
    };
    state
        .change(|txn| {
            let job = JobId(body.id);
            let paid = txn.apply(|horde, now| horde.submit_paid(now, owner, job, submission))?;
            Ok(Json(Reward {
                reward: paid.reward,
                unpaid: paid.unpaid.map(|why| why.code().to_owned()),
                unpaid_reason: paid.unpaid.map(|why| why.to_string()),
            }))
        })
        .await
}
