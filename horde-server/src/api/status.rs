//! Horde status: heartbeat, models, performance, totals.

use axum::extract::{Path, State};
use horde_core::ModelStats;

use super::{ApiQuery, Json, Registered};
use crate::driver::Driver;
use crate::error::{ApiError, Rc};
use crate::wire::{Heartbeat, ModelStatus, NewsPiece, Performance, Period, Totals, TypeQuery};

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
    Ok(Json(stats.into_iter().map(model_status).collect()))
}

/// `GET /status/models/{model_name}`: that model's entry of `/status/models`, in a list (as
/// AI Horde answers); an empty list for a model no worker serves and no request names.
pub(crate) async fn model(
    State(state): State<Driver>,
    Path(name): Path<String>,
) -> Json<Vec<ModelStatus>> {
    let stats = state.read(|core, now| core.horde().model_stats(now));
    Json(
        stats
            .into_iter()
            .filter(|m| *m.name == *name)
            .map(model_status)
            .collect(),
    )
}

fn model_status(m: ModelStats) -> ModelStatus {
    ModelStatus {
        count: m.workers,
        performance: m.performance(),
        queued: m.queued_tokens,
        jobs: m.queued + m.jobs,
        eta: m.eta_secs(),
        kind: "text".into(),
        name: m.name,
    }
}

/// `GET /status/news`: what the operators announce (`[[news]]` in the configuration).
pub(crate) async fn news(State(state): State<Driver>) -> Json<Vec<NewsPiece>> {
    Json(state.config().news.clone())
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

/// `GET /stats/text/models`: generations per model in the last 24 hours, 30 days and ever.
pub(crate) async fn model_totals(State(state): State<Driver>) -> Json<crate::wire::ModelTotals> {
    Json(state.read(|core, now| crate::wire::ModelTotals {
        day: core.stats.models_since(now, 24),
        month: core.stats.models_since(now, 30 * 24),
        total: core.stats.model_totals(),
    }))
}

/// `GET /status/modes`: the horde's modes, for anyone.
pub(crate) async fn modes(State(state): State<Driver>) -> Json<crate::wire::HordeModes> {
    Json(state.read(|core, _| wire_modes(core.modes)))
}

/// `PUT /status/modes` (administrators): switches the modes named in the body.
pub(crate) async fn set_modes(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Json(change): Json<crate::wire::ModesChange>,
) -> Result<Json<crate::wire::HordeModes>, ApiError> {
    // Moderators switch invite-only and raid modes; maintenance is for administrators.
    let moderator =
        state.read(|core, _| core.horde().user(caller).is_some_and(|p| p.roles.moderator));
    let admin = state.is_admin(caller);
    let allowed = admin || (moderator && change.maintenance.is_none());
    if !allowed {
        return Err(ApiError::NotAdmin);
    }
    let modes =
        crate::ops::modes::switch(&state, change.maintenance, change.invite_only, change.raid)
            .await?;
    tracing::warn!(
        maintenance = modes.maintenance,
        invite_only = modes.invite_only,
        raid = modes.raid,
        by = caller.0,
        "the horde's modes changed"
    );
    Ok(Json(wire_modes(modes)))
}

fn wire_modes(modes: crate::modes::Modes) -> crate::wire::HordeModes {
    crate::wire::HordeModes {
        maintenance_mode: modes.maintenance,
        invite_only_mode: modes.invite_only,
        raid_mode: modes.raid,
    }
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
