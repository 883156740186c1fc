//! Users and kudos: registration, find_user, users, admin changes, transfers.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json as JsonBody};
use horde_core::{Kudos, Timestamp, UserId, UserPolicy};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Caller, Json, Registered};
use crate::auth::username;
use crate::driver::{Core, Driver, IdempotentAnswer};
use crate::error::ApiError;
use crate::store::{UserRow, Write};

/// The public view of a user, as `find_user` and `users/{id}` answer.
fn user_body(core: &Core, row: &UserRow, now: Timestamp) -> Value {
    let account = core.horde().ledger().account(row.id);
    let policy = core.horde().user(row.id).unwrap_or(UserPolicy {
        concurrency: 0,
        trusted: false,
    });
    let d = account.details;
    let workers: Vec<_> = core
        .horde()
        .workers()
        .filter(|w| w.owner == row.id)
        .collect();
    let tokens: u64 = workers.iter().map(|w| w.tokens_generated).sum();
    let fulfilled: u64 = workers.iter().map(|w| w.requests_fulfilled).sum();
    json!({
        "username": username(row),
        "id": row.id.0,
        "kudos": account.balance,
        "kudos_details": {
            "accumulated": d.accumulated,
            "gifted": d.gifted,
            "received": d.received,
            "awarded": d.awarded,
            "admin": d.admin,
            "uptime": d.uptime,
        },
        "concurrency": policy.concurrency,
        "trusted": policy.trusted,
        "worker_ids": workers.iter().map(|w| w.id.to_string()).collect::<Vec<_>>(),
        "worker_count": workers.len(),
        "records": {
            "contribution": { "tokens": tokens, "fulfillments": fulfilled },
        },
        "account_age": now.millis().saturating_sub(row.created_at) / 1000,
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct RegisterRequest {
    username: String,
}

pub(crate) async fn register(
    State(state): State<Driver>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(body): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let ip = connect.map_or([127, 0, 0, 1].into(), |Extension(ConnectInfo(addr))| {
        addr.ip()
    });
    let (row, key) = register_user(&state, ip, &body.username).await?;
    let body = json!({ "id": row.id.0, "username": username(&row), "api_key": key });
    Ok((StatusCode::CREATED, JsonBody(body)).into_response())
}

/// Registers `alias` for a caller at `ip` (rate-limited per address) and commits the new
/// user; returns the user and their API key, to be shown once.
pub(crate) async fn register_user(
    state: &Driver,
    ip: IpAddr,
    alias: &str,
) -> Result<(UserRow, String), ApiError> {
    if !state.config().registration {
        return Err(ApiError::RegistrationDisabled);
    }
    let limit = state.config().registrations_per_minute;
    let concurrency = state.config().horde.default_concurrency;
    state
        .change(|txn| {
            let now = txn.now();
            if !txn.core_mut().allow_registration(ip, now, limit) {
                return Err(ApiError::TooMany {
                    rc: "RateLimited",
                    message: "too many registrations from this address; try again in a minute"
                        .into(),
                });
            }
            let (row, key) = txn.core_mut().users.register(alias, now)?;
            txn.write(Write::User(row.clone()));
            let policy = UserPolicy {
                concurrency,
                trusted: false,
            };
            txn.apply(|horde, _| Ok::<_, ApiError>(horde.set_user(row.id, policy)))?;
            Ok((row, key))
        })
        .await
}

pub(crate) async fn find_user(
    State(state): State<Driver>,
    Caller(user): Caller,
) -> Result<JsonBody<Value>, ApiError> {
    state.read(|core, now| {
        let row = core
            .users
            .get(user)
            .ok_or_else(|| ApiError::not_found("UserNotFound", "no such user"))?;
        Ok(JsonBody(user_body(core, row, now)))
    })
}

pub(crate) async fn one(
    State(state): State<Driver>,
    Path(id): Path<String>,
) -> Result<JsonBody<Value>, ApiError> {
    let id = parse_user_id(&id)?;
    state.read(|core, now| {
        let row = core
            .users
            .get(id)
            .ok_or_else(|| ApiError::not_found("UserNotFound", "no such user"))?;
        Ok(JsonBody(user_body(core, row, now)))
    })
}

fn parse_user_id(text: &str) -> Result<UserId, ApiError> {
    text.parse()
        .map(UserId)
        .map_err(|_| ApiError::not_found("UserNotFound", format!("no such user: {text}")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    page: Option<u32>,
    sort: Option<String>,
}

/// Users per page of `GET /users`.
const PAGE_SIZE: usize = 25;

pub(crate) async fn list(
    State(state): State<Driver>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<JsonBody<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadJson(e.body_text()))?;
    let page = query.page.unwrap_or(1).max(1) as usize;
    let by_age = match query.sort.as_deref() {
        None | Some("kudos") => false,
        Some("age") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "ValidationError",
                "sort",
                format!("sort must be kudos or age, not {other}"),
            ))
        }
    };
    state.read(|core, now| {
        let mut rows: Vec<&UserRow> = core.users.iter().collect();
        if by_age {
            rows.sort_by_key(|r| (r.created_at, r.id));
        } else {
            let ledger = core.horde().ledger();
            rows.sort_by_key(|r| (std::cmp::Reverse(ledger.balance(r.id)), r.id));
        }
        let users: Vec<Value> = rows
            .into_iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .map(|row| user_body(core, row, now))
            .collect();
        Ok(JsonBody(Value::Array(users)))
    })
}

/// `PUT /users/{id}` (admins): add kudos, change trust or concurrency.
#[derive(Debug, Deserialize)]
pub(crate) struct UserUpdate {
    kudos: Option<Kudos>,
    trusted: Option<bool>,
    concurrency: Option<u32>,
}

/// Answers AI Horde's `ModifyUser` shape: the new values of what changed.
pub(crate) async fn update(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Path(id): Path<String>,
    Json(body): Json<UserUpdate>,
) -> Result<JsonBody<Value>, ApiError> {
    if !state.is_admin(caller) {
        return Err(ApiError::NotAdmin);
    }
    let id = parse_user_id(&id)?;
    if body.kudos.is_none() && body.trusted.is_none() && body.concurrency.is_none() {
        return Err(ApiError::invalid(
            "NoValidActions",
            "kudos",
            "nothing to change: send kudos, trusted or concurrency",
        ));
    }
    if body.concurrency.is_some_and(|c| c > 500) {
        return Err(ApiError::invalid(
            "ValidationError",
            "concurrency",
            "concurrency must be at most 500",
        ));
    }
    state
        .change(|txn| {
            let not_found = || ApiError::not_found("UserNotFound", "no such user");
            txn.core().users.get(id).ok_or_else(not_found)?;
            let old = txn.core().horde().user(id).ok_or_else(not_found)?;
            let mut answer = serde_json::Map::new();
            if let Some(delta) = body.kudos {
                txn.apply(|horde, now| horde.admin_adjust(now, id, delta))?;
                let balance = txn.core().horde().ledger().balance(id);
                answer.insert("new_kudos".into(), json!(balance));
            }
            if body.trusted.is_some() || body.concurrency.is_some() {
                let policy = UserPolicy {
                    trusted: body.trusted.unwrap_or(old.trusted),
                    concurrency: body.concurrency.unwrap_or(old.concurrency),
                };
                txn.apply(|horde, _| Ok::<_, ApiError>(horde.set_user(id, policy)))?;
                if body.trusted.is_some() {
                    answer.insert("trusted".into(), json!(policy.trusted));
                }
                if body.concurrency.is_some() {
                    answer.insert("concurrency".into(), json!(policy.concurrency));
                }
            }
            Ok(JsonBody(Value::Object(answer)))
        })
        .await
}

/// `POST /kudos/transfer`.
#[derive(Debug, Deserialize)]
pub(crate) struct TransferRequest {
    username: String,
    amount: Value,
}

pub(crate) async fn transfer(
    State(state): State<Driver>,
    Caller(from): Caller,
    headers: HeaderMap,
    Json(body): Json<TransferRequest>,
) -> Result<JsonBody<Value>, ApiError> {
    let amount_error = |rc, message: &str| ApiError::invalid(rc, "amount", message);
    let amount = match &body.amount {
        Value::Number(n) => n
            .as_f64()
            .and_then(Kudos::from_f64)
            .ok_or_else(|| amount_error("InvalidKudosTransferAmount", "amount out of range"))?,
        _ => {
            return Err(amount_error(
                "InvalidKudosTransferAmount",
                "amount must be a number",
            ))
        }
    };
    if amount.is_negative() {
        return Err(amount_error(
            "NegativeKudosTransfer",
            "cannot transfer a negative amount",
        ));
    }
    let idempotency_key = idempotency_key(&headers)?;
    // What a retry must repeat: the receiver and the amount.
    let request = format!("{} {amount}", body.username.trim());
    state
        .change(|txn| {
            if from.is_anonymous() {
                return Err(amount_error(
                    "KudosTransferFromAnon",
                    "anonymous users cannot transfer kudos",
                ));
            }
            if let Some(key) = &idempotency_key {
                if let Some(previous) = txn.core().idempotency.get(&(from, key.clone())) {
                    // Keys stored before requests were recorded have an empty request.
                    if !previous.request.is_empty() && previous.request != request {
                        return Err(ApiError::IdempotencyKeyConflict);
                    }
                    let body = serde_json::from_str(&previous.response)
                        .map_err(|e| ApiError::Internal(e.to_string()))?;
                    return Ok(JsonBody(body));
                }
            }
            let to = txn
                .core()
                .users
                .find_by_username(&body.username)
                .map(|u| u.id)
                .ok_or_else(|| {
                    ApiError::not_found("UserNotFound", format!("no user {}", body.username))
                })?;
            let posting = txn.apply(|horde, now| horde.transfer(now, from, to, amount))?;
            let response = json!({ "transferred": posting.amount });
            if let Some(key) = idempotency_key {
                let answer = IdempotentAnswer {
                    request,
                    response: response.to_string(),
                };
                txn.write(Write::Idempotency {
                    user: from,
                    key: key.clone(),
                    request: answer.request.clone(),
                    response: answer.response.clone(),
                });
                txn.core_mut().idempotency.insert((from, key), answer);
            }
            Ok(JsonBody(response))
        })
        .await
}

/// Longest `Idempotency-Key` accepted.
const IDEMPOTENCY_KEY_MAX: usize = 200;

/// The `Idempotency-Key` header, if any. One that is not text or is over 200 characters is
/// refused: ignoring it would make a retry pay twice.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid =
        |message: String| ApiError::invalid("InvalidIdempotencyKey", "Idempotency-Key", message);
    let key = value
        .to_str()
        .map_err(|_| invalid("the Idempotency-Key header must be visible ASCII".into()))?
        .trim();
    if key.chars().count() > IDEMPOTENCY_KEY_MAX {
        return Err(invalid(format!(
            "the Idempotency-Key header must be at most {IDEMPOTENCY_KEY_MAX} characters"
        )));
    }
    Ok((!key.is_empty()).then(|| key.to_owned()))
}
