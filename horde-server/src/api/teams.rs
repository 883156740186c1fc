//! Teams: `GET /teams`, `POST /teams` (trusted users), `GET|PATCH|DELETE /teams/{id}` (the
//! creator, moderators, administrators). Workers join with `PUT /workers/{id}` `team`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use horde_core::{Team, TeamId, UserId};

use super::{parse_uuid, Json, Registered};
use crate::driver::{Core, Driver};
use crate::error::{ApiError, Rc};
use crate::wire::{
    CreateTeam, DeletedTeam, ModifyTeam, TeamChange, TeamDetails, TeamModel, TeamWorker,
};

/// A team as AI Horde shows it: its counters, its workers, and its online workers' models.
fn details(core: &Core, team: &Team, now: horde_core::Timestamp) -> TeamDetails {
    let horde = core.horde();
    let timeout = horde.config().economy.online_timeout_secs;
    let mut workers = Vec::new();
    let mut models: BTreeMap<String, u64> = BTreeMap::new();
    for worker in horde.team_members(team.id) {
        let online = worker.is_online(now, timeout);
        if online {
            for model in &worker.models {
                *models.entry(model.to_string()).or_default() += 1;
            }
        }
        workers.push(TeamWorker {
            id: worker.id.to_string(),
            name: worker.name.clone(),
            online,
            kind: "text".into(),
        });
    }
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    TeamDetails {
        id: team.id.to_string(),
        name: team.name.clone(),
        info: team.info.clone(),
        creator: core
            .users
            .get(team.creator)
            .map(crate::auth::username)
            .unwrap_or_default(),
        kudos: team.kudos,
        requests_fulfilled: team.requests_fulfilled,
        uptime: team.uptime_ms / 1000,
        worker_count: workers.len(),
        workers,
        models: models
            .into_iter()
            .map(|(name, count)| TeamModel { name, count })
            .collect(),
    }
}

/// `GET /teams`: every team, by name.
pub(crate) async fn list(State(state): State<Driver>) -> Json<Vec<TeamDetails>> {
    Json(state.read(|core, now| {
        let mut teams: Vec<TeamDetails> = core
            .horde()
            .teams()
            .map(|team| details(core, team, now))
            .collect();
        teams.sort_by(|a, b| a.name.cmp(&b.name));
        teams
    }))
}

fn team_id(id: &str) -> Result<TeamId, ApiError> {
    Ok(TeamId(parse_uuid(id, Rc::TeamNotFound)?))
}

/// `GET /teams/{id}`.
pub(crate) async fn one(
    State(state): State<Driver>,
    Path(id): Path<String>,
) -> Result<Json<TeamDetails>, ApiError> {
    let id = team_id(&id)?;
    state.read(|core, now| {
        let team = core
            .horde()
            .team(id)
            .ok_or_else(|| ApiError::not_found(Rc::TeamNotFound, "no such team"))?;
        Ok(Json(details(core, team, now)))
    })
}

/// Moderators and administrators may change and delete any team.
fn moderates(state: &Driver, caller: UserId) -> bool {
    state.is_admin(caller)
        || state.read(|core, _| core.horde().user(caller).is_some_and(|p| p.roles.moderator))
}

/// `POST /teams` (trusted users).
pub(crate) async fn create(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Json(body): Json<CreateTeam>,
) -> Result<Json<ModifyTeam>, ApiError> {
    let id = TeamId(uuid::Uuid::now_v7());
    let (name, info) = (body.name.trim().to_owned(), body.info.unwrap_or_default());
    let answer = ModifyTeam {
        id: id.to_string(),
        name: name.clone(),
        info: info.clone(),
    };
    state
        .change(|txn| {
            txn.apply(|horde, now| horde.create_team(id, caller, name, info, now))?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(Json(answer))
}

/// `PATCH /teams/{id}` (the creator, moderators, administrators).
pub(crate) async fn update(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Path(id): Path<String>,
    Json(body): Json<TeamChange>,
) -> Result<Json<ModifyTeam>, ApiError> {
    let id = team_id(&id)?;
    if body.name.is_none() && body.info.is_none() {
        return Err(ApiError::invalid(
            Rc::NoTeamModSelected,
            "name",
            "nothing to change: send name or info",
        ));
    }
    let moderator = moderates(&state, caller);
    let name = body.name.map(|n| n.trim().to_owned());
    state
        .change(|txn| {
            txn.apply(|horde, _| horde.update_team(caller, moderator, id, name, body.info))?;
            let team = txn
                .core()
                .horde()
                .team(id)
                .ok_or_else(|| ApiError::not_found(Rc::TeamNotFound, "no such team"))?;
            Ok(Json(ModifyTeam {
                id: team.id.to_string(),
                name: team.name.clone(),
                info: team.info.clone(),
            }))
        })
        .await
}

/// `DELETE /teams/{id}` (the creator, moderators, administrators): its workers leave it.
pub(crate) async fn delete(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Path(id): Path<String>,
) -> Result<Json<DeletedTeam>, ApiError> {
    let id = team_id(&id)?;
    let moderator = moderates(&state, caller);
    let name = state
        .change(|txn| {
            Ok::<_, ApiError>(txn.apply(|horde, _| horde.delete_team(caller, moderator, id))?)
        })
        .await?;
    Ok(Json(DeletedTeam {
        deleted_id: id.to_string(),
        deleted_name: name,
    }))
}
