//! Workers: list, by id, by name, and owner changes.

use axum::extract::{Path, State};
use horde_core::{UserId, Worker, WorkerId, WorkerUpdate};

use super::{parse_uuid, ApiQuery, Json, Onlooker, Registered};
use crate::auth::username;
use crate::driver::{Core, Driver};
use crate::error::{ApiError, Rc};
use crate::wire::{
    ModifyWorker, TypeQuery, WorkerDetails, WorkerKudosDetails, WorkerUpdateRequest,
};

/// A worker as `viewer` may see it: its owner is shown to the owner and administrators, and
/// to everyone when the owner made their workers public.
pub(crate) fn worker_details(core: &Core, worker: &Worker, viewer: Viewer) -> WorkerDetails {
    let horde = core.horde();
    let now = viewer.now;
    let timeout = horde.config().economy.online_timeout_secs;
    let uptime_secs = worker.uptime_ms / 1000;
    // The one speed the horde shows and plans with (a model's is the sum of its workers').
    let performance = worker.tokens_per_second();
    let privileged = viewer.user == worker.owner || viewer.admin;
    let public = horde
        .user(worker.owner)
        .is_some_and(|policy| policy.public_workers);
    let owner = (privileged || public)
        .then(|| core.users.get(worker.owner).map(username))
        .flatten();
    WorkerDetails {
        id: worker.id.to_string(),
        name: worker.name.clone(),
        kind: "text".into(),
        online: worker.is_online(now, timeout),
        models: worker.models.clone(),
        max_length: worker.max_length,
        max_context_length: worker.max_context_length,
        uptime: uptime_secs,
        requests_fulfilled: worker.requests_fulfilled,
        kudos_rewards: worker.kudos_rewards(),
        kudos_details: WorkerKudosDetails {
            generated: worker.kudos_generated,
            uptime: worker.kudos_uptime.milli() / 1000,
        },
        performance: format!("{performance} tokens per second"),
        maintenance_mode: worker.maintenance,
        trusted: worker.trusted,
        nsfw: worker.nsfw,
        bridge_agent: worker.bridge_agent.clone(),
        threads: worker.threads,
        info: worker.info.clone(),
        owner,
        maintenance_msg: privileged.then(|| worker.maintenance_msg.clone()),
        suspicious: privileged.then_some(worker.suspicion),
        team: crate::wire::TeamLite {
            id: worker.team.map(|t| t.to_string()),
            name: worker
                .team
                .and_then(|t| horde.team(t))
                .map(|t| t.name.clone()),
        },
    }
}

/// Who is looking, and when.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Viewer {
    pub(crate) user: UserId,
    pub(crate) admin: bool,
    pub(crate) now: horde_core::Timestamp,
}

pub(crate) async fn list(
    State(state): State<Driver>,
    Onlooker(user): Onlooker,
    ApiQuery(query): ApiQuery<TypeQuery>,
) -> Result<Json<Vec<WorkerDetails>>, ApiError> {
    if query.kind.as_deref().is_some_and(|k| k != "text") {
        return Ok(Json(Vec::new()));
    }
    let admin = state.is_admin(user);
    let mut list: Vec<WorkerDetails> = state.read(|core, now| {
        let viewer = Viewer { user, admin, now };
        core.horde()
            .workers()
            .map(|w| worker_details(core, w, viewer))
            .collect()
    });
    list.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(list))
}

pub(crate) async fn one(
    State(state): State<Driver>,
    Onlooker(user): Onlooker,
    Path(id): Path<String>,
) -> Result<Json<WorkerDetails>, ApiError> {
    let id = WorkerId(parse_uuid(&id, Rc::WorkerNotFound)?);
    let admin = state.is_admin(user);
    state.read(|core, now| {
        let worker = core
            .horde()
            .worker(id)
            .ok_or_else(|| ApiError::not_found(Rc::WorkerNotFound, "no such worker"))?;
        Ok(Json(worker_details(
            core,
            worker,
            Viewer { user, admin, now },
        )))
    })
}

pub(crate) async fn by_name(
    State(state): State<Driver>,
    Onlooker(user): Onlooker,
    Path(name): Path<String>,
) -> Result<Json<WorkerDetails>, ApiError> {
    let admin = state.is_admin(user);
    state.read(|core, now| {
        let worker = core
            .horde()
            .worker_by_name(&name)
            .ok_or_else(|| ApiError::not_found(Rc::WorkerNotFound, "no such worker"))?;
        Ok(Json(worker_details(
            core,
            worker,
            Viewer { user, admin, now },
        )))
    })
}

/// Longest `info` / `maintenance_msg` accepted.
const TEXT_MAX: usize = 1000;

/// `PUT /workers/{id}` (owner or admin): answers AI Horde's `ModifyWorker` shape, the new
/// values of what changed.
pub(crate) async fn update(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Path(id): Path<String>,
    Json(body): Json<WorkerUpdateRequest>,
) -> Result<Json<ModifyWorker>, ApiError> {
    let id = WorkerId(parse_uuid(&id, Rc::WorkerNotFound)?);
    if body.maintenance.is_none()
        && body.maintenance_msg.is_none()
        && body.info.is_none()
        && body.name.is_none()
        && body.team.is_none()
    {
        return Err(ApiError::invalid(
            Rc::NoWorkerModSelected,
            "maintenance",
            "nothing to change: send maintenance, maintenance_msg, info, name or team",
        ));
    }
    // A team id, or "" to leave the team.
    let team = match body.team.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(team) => Some(Some(horde_core::TeamId(parse_uuid(
            team,
            Rc::TeamNotFound,
        )?))),
    };
    for (field, text) in [
        ("info", &body.info),
        ("maintenance_msg", &body.maintenance_msg),
    ] {
        if text.as_ref().is_some_and(|t| t.chars().count() > TEXT_MAX) {
            return Err(ApiError::invalid(
                Rc::ValidationError,
                field,
                format!("{field} must be at most {TEXT_MAX} characters"),
            ));
        }
    }
    let as_admin = state.is_admin(caller);
    let mut answer = ModifyWorker {
        maintenance: body.maintenance,
        maintenance_msg: body.maintenance_msg.clone(),
        info: body.info.clone(),
        name: body.name.clone(),
        team: None,
    };
    let update = WorkerUpdate {
        maintenance: body.maintenance,
        maintenance_msg: body.maintenance_msg,
        info: body.info,
        name: body.name,
        team,
    };
    state
        .change(|txn| {
            txn.apply(|horde, _| horde.update_worker(caller, as_admin, id, update))?;
            // AI Horde answers the team's name ("" when the worker left its team).
            answer.team = team.map(|team| {
                team.and_then(|t| txn.core().horde().team(t))
                    .map(|t| t.name.clone())
                    .unwrap_or_default()
            });
            Ok(Json(answer))
        })
        .await
}

/// `DELETE /workers/{id}` (owner or admin): deletes the worker; its jobs go back to the queue.
pub(crate) async fn delete(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Path(id): Path<String>,
) -> Result<Json<crate::wire::DeletedWorker>, ApiError> {
    let id = WorkerId(parse_uuid(&id, Rc::WorkerNotFound)?);
    let as_admin = state.is_admin(caller);
    let name = state
        .change(|txn| {
            Ok::<_, ApiError>(
                txn.apply(|horde, now| horde.delete_worker(caller, as_admin, id, now))?,
            )
        })
        .await?;
    tracing::info!(worker = %id, %name, by = caller.0, "worker deleted");
    Ok(Json(crate::wire::DeletedWorker {
        deleted_id: id.to_string(),
        deleted_name: name,
    }))
}
