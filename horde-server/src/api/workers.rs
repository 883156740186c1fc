//! Workers: list, by id, by name, and owner changes.

use axum::extract::{Path, Query, State};
use axum::Json as JsonBody;
use horde_core::{Timestamp, Worker, WorkerId, WorkerUpdate};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_uuid, Caller, Json, Registered};
use crate::auth::username;
use crate::driver::{Core, Driver};
use crate::error::ApiError;

fn worker_body(
    core: &Core,
    worker: &Worker,
    now: Timestamp,
    viewer: Option<horde_core::UserId>,
) -> Value {
    let timeout = core.horde().config().economy.online_timeout_secs;
    let uptime_secs = worker.uptime_ms / 1000;
    let performance = if uptime_secs > 0 {
        worker.tokens_generated as f64 / uptime_secs as f64
    } else {
        0.0
    };
    let mut body = json!({
        "id": worker.id.to_string(),
        "name": worker.name,
        "type": "text",
        "online": worker.is_online(now, timeout),
        "models": worker.models.iter().map(|m| &**m).collect::<Vec<_>>(),
        "max_length": worker.max_length,
        "max_context_length": worker.max_context_length,
        "uptime": uptime_secs,
        "requests_fulfilled": worker.requests_fulfilled,
        "kudos_rewards": worker.kudos_rewards(),
        "kudos_details": {
            "generated": worker.kudos_generated,
            "uptime": worker.kudos_uptime,
        },
        "performance": format!("{performance:.1} tokens per second"),
        "maintenance_mode": worker.maintenance,
        "trusted": worker.trusted,
        "nsfw": worker.nsfw,
        "bridge_agent": worker.bridge_agent,
        "threads": worker.threads,
        "info": worker.info,
    });
    if viewer == Some(worker.owner) {
        if let Some(owner) = core.users.get(worker.owner) {
            body["owner"] = json!(username(owner));
        }
        body["maintenance_msg"] = json!(worker.maintenance_msg);
    }
    body
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub(crate) async fn list(
    State(state): State<Driver>,
    Caller(viewer): Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<JsonBody<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadJson(e.body_text()))?;
    if query.kind.as_deref().is_some_and(|k| k != "text") {
        return Ok(JsonBody(json!([])));
    }
    state.read(|core, now| {
        let mut workers: Vec<&Worker> = core.horde().workers().collect();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        let list = workers
            .into_iter()
            .map(|w| worker_body(core, w, now, Some(viewer)))
            .collect();
        Ok(JsonBody(Value::Array(list)))
    })
}

pub(crate) async fn one(
    State(state): State<Driver>,
    Caller(viewer): Caller,
    Path(id): Path<String>,
) -> Result<JsonBody<Value>, ApiError> {
    let id = WorkerId(parse_uuid(&id, "WorkerNotFound")?);
    state.read(|core, now| {
        let worker = core
            .horde()
            .worker(id)
            .ok_or_else(|| ApiError::not_found("WorkerNotFound", "no such worker"))?;
        Ok(JsonBody(worker_body(core, worker, now, Some(viewer))))
    })
}

pub(crate) async fn by_name(
    State(state): State<Driver>,
    Caller(viewer): Caller,
    Path(name): Path<String>,
) -> Result<JsonBody<Value>, ApiError> {
    state.read(|core, now| {
        let worker = core
            .horde()
            .worker_by_name(&name)
            .ok_or_else(|| ApiError::not_found("WorkerNotFound", "no such worker"))?;
        Ok(JsonBody(worker_body(core, worker, now, Some(viewer))))
    })
}

/// `PUT /workers/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct UpdateRequest {
    maintenance: Option<bool>,
    maintenance_msg: Option<String>,
    info: Option<String>,
    name: Option<String>,
}

/// Longest `info` / `maintenance_msg` accepted.
const TEXT_MAX: usize = 1000;

pub(crate) async fn update(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Path(id): Path<String>,
    Json(body): Json<UpdateRequest>,
) -> Result<JsonBody<Value>, ApiError> {
    let id = WorkerId(parse_uuid(&id, "WorkerNotFound")?);
    for (field, text) in [
        ("info", &body.info),
        ("maintenance_msg", &body.maintenance_msg),
    ] {
        if text.as_ref().is_some_and(|t| t.chars().count() > TEXT_MAX) {
            return Err(ApiError::invalid(
                "ValidationError",
                field,
                format!("{field} must be at most {TEXT_MAX} characters"),
            ));
        }
    }
    let as_admin = state.is_admin(caller);
    let update = WorkerUpdate {
        maintenance: body.maintenance,
        maintenance_msg: body.maintenance_msg,
        info: body.info,
        name: body.name,
    };
    state
        .change(|txn| {
            txn.apply(|horde, _| horde.update_worker(caller, as_admin, id, update))?;
            let worker = txn
                .core()
                .horde()
                .worker(id)
                .ok_or_else(|| ApiError::not_found("WorkerNotFound", "no such worker"))?;
            Ok(JsonBody(worker_body(
                txn.core(),
                worker,
                txn.now(),
                Some(caller),
            )))
        })
        .await
}
