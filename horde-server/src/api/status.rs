//! Horde status: heartbeat, models, performance, totals.

use axum::extract::State;

use super::{ApiQuery, Json, Registered};
use crate::driver::Driver;
use crate::error::{ApiError, Rc};
use crate::wire::{Heartbeat, ModelStatus, Performance, Period, Totals, TypeQuery};

pub(crate) async fn heartbeat() -> Json<Heartbeat> {
    Json(Heartbeat::new(env!("CARGO_PKG_VERSION"), "active"))
}

pub(crate) async fn models(
    State(state): State<Driver>,
    ApiQuery(query): ApiQuery<TypeQuery>,
) -> Result<Json<Vec<ModelStatus>>, ApiError> {
    match query.kind.as_deref() {
        None | Some("text") => {}
        Some("image") => return Ok(Json(Vec::new())),
        Some(other) => {
            return Err(ApiError::invalid(
                Rc::ValidationError,
                "type",
                format!("type must be text or image, not {other}"),
            ))
        }
    }
    let stats = state.read(|core, now| core.horde().model_stats(now));
    Ok(Json(
        stats
            .into_iter()
            .map(|m| ModelStatus {
                count: m.workers,
                performance: m.performance(),
                queued: m.queued_tokens,
                jobs: m.queued + m.jobs,
                eta: m.eta_secs(),
                kind: "text".into(),
                name: m.name,
            })
            .collect(),
    ))
}

pub(crate) async fn performance(State(state): State<Driver>) -> Json<Performance> {
    Json(state.read(|core, now| {
        let (workers, threads) = core.horde().online_capacity(now);
        let (queued, queued_tokens) = core.horde().queued_totals();
        let (_, past_minute_tokens) = core.stats.since(now, 1);
        Performance {
            queued_text_requests: queued,
            text_worker_count: workers,
            text_thread_count: threads,
            queued_tokens,
            past_minute_tokens,
            queued_requests: 0,
            worker_count: 0,
            thread_count: 0,
        }
    }))
}

pub(crate) async fn totals(State(state): State<Driver>) -> Json<Totals> {
    Json(state.read(|core, now| {
        let period = |minutes| {
            let (requests, tokens) = core.stats.since(now, minutes);
            Period { requests, tokens }
        };
        let (requests, tokens) = core.stats.total();
        Totals {
            minute: period(1),
            hour: period(60),
            day: period(24 * 60),
            month: period(30 * 24 * 60),
            total: Period { requests, tokens },
        }
    }))
}

/// `POST /admin/model_reference/reload` (administrators): reads the model reference again.
pub(crate) async fn reload_model_reference(
    State(state): State<Driver>,
    Registered(caller): Registered,
) -> Result<Json<crate::wire::ReferenceReloaded>, ApiError> {
    if !state.is_admin(caller) {
        return Err(ApiError::NotAdmin);
    }
    let models = crate::ops::reference::reload(&state).await?;
    Ok(Json(crate::wire::ReferenceReloaded { models }))
}
