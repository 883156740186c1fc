//! Horde status: heartbeat, models, performance, totals.

use axum::extract::{Query, State};
use axum::Json as JsonBody;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::driver::Driver;
use crate::error::ApiError;

pub(crate) async fn heartbeat() -> JsonBody<Value> {
    JsonBody(json!({ "message": "OK", "version": env!("CARGO_PKG_VERSION") }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ModelsQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub(crate) async fn models(
    State(state): State<Driver>,
    query: Result<Query<ModelsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<JsonBody<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadJson(e.body_text()))?;
    match query.kind.as_deref() {
        None | Some("text") => {}
        Some("image") => return Ok(JsonBody(json!([]))),
        Some(other) => {
            return Err(ApiError::invalid(
                "ValidationError",
                "type",
                format!("type must be text or image, not {other}"),
            ))
        }
    }
    Ok(state.read(|core, now| {
        let models: Vec<Value> = core
            .horde()
            .model_stats(now)
            .into_iter()
            .map(|m| {
                json!({
                    "name": &*m.name,
                    "count": m.workers,
                    "performance": m.performance(),
                    "queued": m.queued_tokens,
                    "jobs": m.queued + m.jobs,
                    "eta": m.eta_secs(),
                    "type": "text",
                })
            })
            .collect();
        JsonBody(Value::Array(models))
    }))
}

pub(crate) async fn performance(State(state): State<Driver>) -> JsonBody<Value> {
    state.read(|core, now| {
        let (workers, threads) = core.horde().online_capacity(now);
        let (queued, queued_tokens) = core.horde().queued_totals();
        let (_, past_minute_tokens) = core.stats.since(now, 1);
        JsonBody(json!({
            "queued_text_requests": queued,
            "text_worker_count": workers,
            "text_thread_count": threads,
            "queued_tokens": queued_tokens,
            "past_minute_tokens": past_minute_tokens,
            "queued_requests": 0,
            "worker_count": 0,
            "thread_count": 0,
        }))
    })
}

pub(crate) async fn totals(State(state): State<Driver>) -> JsonBody<Value> {
    state.read(|core, now| {
        let period = |minutes| {
            let (requests, tokens) = core.stats.since(now, minutes);
            json!({ "requests": requests, "tokens": tokens })
        };
        let (requests, tokens) = core.stats.total();
        JsonBody(json!({
            "minute": period(1),
            "hour": period(60),
            "day": period(24 * 60),
            "month": period(30 * 24 * 60),
            "total": { "requests": requests, "tokens": tokens },
        }))
    })
}
