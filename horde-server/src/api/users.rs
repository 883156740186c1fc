//! Users and kudos: registration, find_user, users, user changes, transfers.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use horde_core::{Kudos, UserId, UserPolicy};

use super::{ApiQuery, Caller, ClientIp, Json, Onlooker, Registered};
use crate::auth::username;
use crate::driver::Driver;
use crate::error::{ApiError, Rc};
use crate::ops;
use crate::views::user_details;
use crate::wire::{
    ModifyUser, RegisterRequest, Registered as RegisteredBody, TransferRequest, Transferred,
    UserDetails, UserUpdate, UsersQuery,
};

pub(crate) async fn register(
    State(state): State<Driver>,
    ClientIp(ip): ClientIp,
    Json(body): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let (row, key) = ops::users::register(&state, ip, &body.username).await?;
    let body = RegisteredBody {
        id: row.id.0,
        username: username(&row),
        api_key: key,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /find_user`: the key's user. A key nobody has is `404 UserNotFound`, as AI Horde
/// answers (there is no such user to find).
pub(crate) async fn find_user(
    State(state): State<Driver>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<UserDetails>, ApiError> {
    let user = match caller {
        Ok(Caller(user)) => user,
        Err(ApiError::InvalidApiKey) => {
            return Err(ApiError::not_found(
                Rc::UserNotFound,
                "no user has this API key",
            ))
        }
        Err(other) => return Err(other),
    };
    one_user(&state, user, user)
}

pub(crate) async fn one(
    State(state): State<Driver>,
    Onlooker(viewer): Onlooker,
    Path(id): Path<String>,
) -> Result<Json<UserDetails>, ApiError> {
    one_user(&state, parse_user_id(&id)?, viewer)
}

fn one_user(state: &Driver, id: UserId, viewer: UserId) -> Result<Json<UserDetails>, ApiError> {
    let admin = state.is_admin(viewer);
    state.read(|core, now| {
        let row = core
            .users
            .get(id)
            .ok_or_else(|| ApiError::not_found(Rc::UserNotFound, "no such user"))?;
        Ok(Json(user_details(core, row, now, viewer, admin)))
    })
}

fn parse_user_id(text: &str) -> Result<UserId, ApiError> {
    text.parse()
        .map(UserId)
        .map_err(|_| ApiError::not_found(Rc::UserNotFound, format!("no such user: {text}")))
}

/// Users per page of `GET /users`.
const PAGE_SIZE: usize = 25;

pub(crate) async fn list(
    State(state): State<Driver>,
    Onlooker(viewer): Onlooker,
    ApiQuery(query): ApiQuery<UsersQuery>,
) -> Result<Json<Vec<UserDetails>>, ApiError> {
    let admin = state.is_admin(viewer);
    let page = query.page.unwrap_or(1).max(1) as usize;
    let by_age = match query.sort.as_deref() {
        None | Some("kudos") => false,
        Some("age") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                Rc::ValidationError,
                "sort",
                format!("sort must be kudos or age, not {other}"),
            ))
        }
    };
    // Copy the sort keys under the lock and sort outside it.
    let mut keys: Vec<(i64, u64, UserId)> = state.read(|core, _| {
        let ledger = core.horde().ledger();
        core.users
            .iter()
            .map(|r| (-ledger.balance(r.id).milli(), r.created_at, r.id))
            .collect()
    });
    if by_age {
        keys.sort_unstable_by_key(|&(_, created, id)| (created, id));
    } else {
        keys.sort_unstable_by_key(|&(balance, _, id)| (balance, id));
    }
    let wanted: Vec<UserId> = keys
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|(_, _, id)| id)
        .collect();
    Ok(Json(state.read(|core, now| {
        wanted
            .iter()
            .filter_map(|id| core.users.get(*id))
            .map(|row| user_details(core, row, now, viewer, admin))
            .collect()
    })))
}

/// `PUT /users/{id}`: administrators change kudos, trust and concurrency of anyone; a user
/// changes their own `public_workers`. Answers AI Horde's `ModifyUser` shape.
pub(crate) async fn update(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Path(id): Path<String>,
    Json(body): Json<UserUpdate>,
) -> Result<Json<ModifyUser>, ApiError> {
    let id = parse_user_id(&id)?;
    let admin_fields = body.kudos.is_some()
        || body.trusted.is_some()
        || body.concurrency.is_some()
        || body.flagged.is_some()
        || body.moderator.is_some()
        || body.service.is_some()
        || body.customizer.is_some()
        || body.vpn.is_some();
    let own_fields = body.public_workers.is_some() || body.webhook_secret.is_some();
    if !admin_fields && !own_fields {
        return Err(ApiError::invalid(
            Rc::NoUserModSelected,
            "kudos",
            "nothing to change: send kudos, trusted, concurrency, flagged, a role (moderator, \
             service, customizer, vpn), public_workers or webhook_secret",
        ));
    }
    let is_admin = state.is_admin(caller);
    if (admin_fields || caller != id) && !is_admin {
        return Err(ApiError::NotAdmin);
    }
    // Only the user: an administrator cannot sign deliveries as someone else.
    let webhook_secret = match &body.webhook_secret {
        Some(_) if caller != id => {
            return Err(ApiError::WrongCredentials(
                "only the user sets their webhook secret",
            ))
        }
        Some(secret) => Some(ops::webhooks::valid_secret(secret)?),
        None => None,
    };
    let (_, most) = horde_core::ranges::CONCURRENCY;
    if body.concurrency.is_some_and(|c| c > most) {
        return Err(ApiError::invalid(
            Rc::ValidationError,
            "concurrency",
            format!("concurrency must be at most {most}"),
        ));
    }
    state
        .change(|txn| {
            let not_found = || ApiError::not_found(Rc::UserNotFound, "no such user");
            txn.core().users.get(id).ok_or_else(not_found)?;
            let old = txn.core().horde().user(id).ok_or_else(not_found)?;
            let mut answer = ModifyUser::default();
            if let Some(delta) = body.kudos {
                txn.apply(|horde, now| horde.admin_adjust(now, id, delta))?;
                answer.new_kudos = Some(txn.core().horde().ledger().balance(id));
            }
            let policy = UserPolicy {
                trusted: body.trusted.unwrap_or(old.trusted),
                concurrency: body.concurrency.unwrap_or(old.concurrency),
                public_workers: body.public_workers.unwrap_or(old.public_workers),
                flagged: body.flagged.unwrap_or(old.flagged),
                registered_at: old.registered_at,
                roles: horde_core::Roles {
                    moderator: body.moderator.unwrap_or(old.roles.moderator),
                    service: body.service.unwrap_or(old.roles.service),
                    customizer: body.customizer.unwrap_or(old.roles.customizer),
                    vpn: body.vpn.unwrap_or(old.roles.vpn),
                },
            };
            if policy != old {
                txn.apply(|horde, _| Ok::<_, ApiError>(horde.set_user(id, policy)))?;
            }
            answer.trusted = body.trusted;
            answer.concurrency = body.concurrency;
            answer.public_workers = body.public_workers;
            answer.flagged = body.flagged;
            answer.moderator = body.moderator;
            answer.service = body.service;
            answer.customizer = body.customizer;
            answer.vpn = body.vpn;
            if let Some(secret) = webhook_secret {
                answer.webhook_secret_set = Some(secret.is_some());
                ops::webhooks::set_secret(txn, id, secret)?;
            }
            Ok(Json(answer))
        })
        .await
}

/// `POST /kudos/award` (moderators and administrators): kudos from the horde to a user.
pub(crate) async fn award(
    State(state): State<Driver>,
    Registered(caller): Registered,
    Json(body): Json<crate::wire::AwardRequest>,
) -> Result<Json<crate::wire::KudosAwarded>, ApiError> {
    let moderator =
        state.read(|core, _| core.horde().user(caller).is_some_and(|p| p.roles.moderator));
    if !moderator && !state.is_admin(caller) {
        return Err(ApiError::Forbidden {
            rc: Rc::NotModerator,
            message: "only moderators and administrators award kudos".into(),
        });
    }
    let amount = kudos_amount(&body.amount)?;
    ops::transfer::award(&state, caller, &body.username, amount)
        .await
        .map(Json)
}

/// A positive amount of kudos from a JSON number.
fn kudos_amount(amount: &serde_json::Value) -> Result<Kudos, ApiError> {
    let amount_error = |rc, message: &str| ApiError::invalid(rc, "amount", message);
    let kudos = match amount {
        serde_json::Value::Number(n) => n
            .as_f64()
            .and_then(Kudos::from_f64)
            .ok_or_else(|| amount_error(Rc::InvalidKudosTransferAmount, "amount out of range"))?,
        _ => {
            return Err(amount_error(
                Rc::InvalidKudosTransferAmount,
                "amount must be a number",
            ))
        }
    };
    Ok(kudos)
}

pub(crate) async fn transfer(
    State(state): State<Driver>,
    Caller(from): Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(body): Json<TransferRequest>,
) -> Result<Json<Transferred>, ApiError> {
    let amount = kudos_amount(&body.amount)?;
    let idempotency_key = idempotency_key(&headers)?;
    ops::transfer::transfer(&state, from, ip, &body.username, amount, idempotency_key)
        .await
        .map(Json)
}

/// Longest `Idempotency-Key` accepted.
const IDEMPOTENCY_KEY_MAX: usize = 200;

/// The `Idempotency-Key` header, if any. One that is empty, not text or over 200 characters
/// is refused: ignoring it would make a retry pay twice.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid =
        |message: String| ApiError::invalid(Rc::InvalidIdempotencyKey, "Idempotency-Key", message);
    let key = value
        .to_str()
        .map_err(|_| invalid("the Idempotency-Key header must be visible ASCII".into()))?
        .trim();
    if key.chars().count() > IDEMPOTENCY_KEY_MAX {
        return Err(invalid(format!(
            "the Idempotency-Key header must be at most {IDEMPOTENCY_KEY_MAX} characters"
        )));
    }
    if key.is_empty() {
        return Err(invalid(
            "the Idempotency-Key header is empty; send a unique key per transfer, or none".into(),
        ));
    }
    Ok(Some(key.to_owned()))
}
