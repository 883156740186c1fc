//! The API's OpenAPI 3 description, served at `/api/swagger.json`, and a readable page of it
//! at `/api`.
//!
//! Request and response bodies come from the [`crate::wire`] types themselves (their
//! `ToSchema` derives), so the description cannot drift from what the handlers parse and
//! answer. The operations are declared here, one stub each, rather than on the handlers; a
//! test checks that every route of [`crate::api::routes`] has its operation here and back.
//! Every operation may also answer 408 (a body sent too slowly), 413 (a body over 1 MiB) and
//! 503 (storage failed, or too many connections): those are added to all of them.

mod page;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, Rc};
#[allow(clippy::wildcard_imports)]
use crate::wire::*;

/// The description as JSON, built once.
pub fn description() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        refine(&mut doc);
        doc
    })
}

/// What utoipa 5 cannot say with attributes: an empty payload has no properties, and an
/// update names at least one field.
fn refine(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    schemas["Empty"]["maxProperties"] = 0.into();
    for update in ["UserUpdate", "WorkerUpdateRequest"] {
        schemas[update]["minProperties"] = 1.into();
    }
}

pub use page::docs_page;

/// `GET /api/swagger.json`.
pub async fn swagger_json() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| description().to_string());
    ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "horde",
        description = "The AI Horde v2 text API as horde serves it, with a few extensions \
                       of its own (marked as such). Send your key in the `apikey` header; the \
                       anonymous key is `0000000000`.",
    ),
    servers((url = "/api/v2")),
    paths(
        register, find_user, list_users, get_user, update_user, transfer, award,
        generate_async, generate_status, generate_cancel, pop, submit, progress, stream,
        list_workers, get_worker, update_worker, delete_worker, worker_by_name,
        list_teams, create_team, get_team, update_team, delete_team,
        heartbeat, status_models, status_model, news, modes, set_modes, performance, totals,
        model_totals,
        reload_model_reference,
    ),
    components(schemas(ErrorBody, Rc)),
    modifiers(&Common),
    tags(
        (name = "generate", description = "Text generation: requests, status, and jobs for workers"),
        (name = "users", description = "Accounts and kudos"),
        (name = "workers", description = "Workers"),
        (name = "status", description = "The horde's state"),
    ),
)]
struct ApiDoc;

/// Adds the `apikey` security scheme, and 408/413/503 to every operation.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apikey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("apikey"))),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                for (status, description) in [
                    (
                        "400",
                        "ValidationError: the path, query or body holds a NUL character",
                    ),
                    ("408", "RequestTimeout: the body arrived too slowly"),
                    ("413", "PayloadTooLarge: the body is over 1 MiB"),
                    (
                        "503",
                        "StorageFailure or TooManyConnections: try again later",
                    ),
                ] {
                    responses
                        .entry(status.into())
                        .or_insert_with(|| error(description).into());
                }
            }
        }
    }
}

/// `sort` of `GET /users`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum UsersSort {
    /// Most kudos first.
    Kudos,
    /// Oldest first.
    Age,
}

/// `type` of `GET /workers` and `GET /status/models`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum HordeType {
    /// Text workers and models.
    Text,
    /// Image ones: none on a text horde.
    Image,
}

// ---------------------------------------------------------------------------------------------
// Operations (stubs that carry the description; the handlers are in `crate::api`).

/// Register a pseudonymous user; the key is shown once.
#[utoipa::path(post, path = "/register", tag = "users", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = Registered),
        (status = 400, description = "Invalid username", body = ErrorBody),
        (status = 403, description = "RegistrationDisabled", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn register() {}

/// The user the key belongs to (without a key: the anonymous user).
#[utoipa::path(get, path = "/find_user", tag = "users", security((), ("apikey" = [])),
    responses(
        (status = 200, description = "The caller", body = UserDetails),
        (status = 404, description = "UserNotFound: no user has this key (as AI Horde answers)", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn find_user() {}

/// Users, 25 a page, by kudos or by age.
#[utoipa::path(get, path = "/users", tag = "users",
    params(
        ("page" = Option<u64>, Query, minimum = 0, maximum = 4294967295.0,
            description = "Page, from 1 (0 reads as 1)"),
        ("sort" = Option<UsersSort>, Query, description = "`kudos` (default) or `age`"),
    ),
    responses(
        (status = 200, description = "A page of users", body = Vec<UserDetails>),
        (status = 400, description = "A bad page or sort", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn list_users() {}

/// One user.
#[utoipa::path(get, path = "/users/{id}", tag = "users",
    params(("id" = u64, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user", body = UserDetails),
        (status = 400, description = "Not a user id", body = ErrorBody),
        (status = 404, description = "UserNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn get_user() {}

/// Administrators change a user's kudos, trust, concurrency or flag; a user changes their own
/// `public_workers`.
#[utoipa::path(put, path = "/users/{id}", tag = "users", security(("apikey" = [])),
    params(("id" = u64, Path, description = "The user id")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "What changed", body = ModifyUser),
        (status = 400, description = "Invalid values", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "NotAdmin, AnonForbidden", body = ErrorBody),
        (status = 404, description = "UserNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn update_user() {}

/// Send kudos to another user.
#[utoipa::path(post, path = "/kudos/transfer", tag = "users", security(("apikey" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "A repeated key does not transfer twice")),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "Transferred", body = Transferred),
        (status = 400, description = "Invalid amount, to self, not enough kudos, UserNotFound (an unknown receiver, as AI Horde answers)", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "KudosTransferFromAnon, a flagged account", body = ErrorBody),
        (status = 409, description = "IdempotencyKeyConflict", body = ErrorBody),
        (status = 429, description = "Too many transfers", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn transfer() {}

/// Moderators and administrators: award kudos from the horde to a user.
#[utoipa::path(post, path = "/kudos/award", tag = "users", security(("apikey" = [])),
    request_body = AwardRequest,
    responses(
        (status = 200, description = "Awarded", body = KudosAwarded),
        (status = 400, description = "InvalidAwardUsername, KudosAwardToAnon, an amount not positive", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "NotModerator, AnonForbidden", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn award() {}

/// Queue a text generation request (the anonymous key, or none, may too).
#[utoipa::path(post, path = "/generate/text/async", tag = "generate",
    security((), ("apikey" = [])),
    request_body = AsyncRequest,
    responses(
        (status = 202, description = "Queued", body = AsyncAccepted),
        (status = 200, description = "`dry_run`: the estimate only", body = Estimate),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "A flagged account", body = ErrorBody),
        (status = 429, description = "TooManyPrompts", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn generate_async() {}

/// A request's progress and finished generations.
#[utoipa::path(get, path = "/generate/text/status/{id}", tag = "generate",
    params(("id" = uuid::Uuid, Path, description = "The request id")),
    responses(
        (status = 200, description = "The status", body = RequestStatus),
        (status = 400, description = "Not a request id", body = ErrorBody),
        (status = 404, description = "RequestNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn generate_status() {}

/// Cancel a request: what is done stays done and charged.
#[utoipa::path(delete, path = "/generate/text/status/{id}", tag = "generate",
    params(("id" = uuid::Uuid, Path, description = "The request id")),
    responses(
        (status = 200, description = "The status when cancelled", body = RequestStatus),
        (status = 400, description = "Not a request id", body = ErrorBody),
        (status = 404, description = "RequestNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn generate_cancel() {}

/// A worker asks for a job.
#[utoipa::path(post, path = "/generate/text/pop", tag = "generate", security(("apikey" = [])),
    request_body = PopRequest,
    responses(
        (status = 200, description = "A job, or none and why", body = PopAnswer),
        (status = 400, description = "Invalid worker settings", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "AnonForbiddenWorker, WrongCredentials, WorkerMaintenance",
            body = ErrorBody),
    ))]
#[allow(dead_code)]
fn pop() {}

/// A worker submits a job's result.
#[utoipa::path(post, path = "/generate/text/submit", tag = "generate", security(("apikey" = [])),
    request_body = SubmitRequest,
    responses(
        (status = 200, description = "The kudos earned", body = Reward),
        (status = 400, description = "DuplicateGen, AbortedGen, invalid fields", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "WrongCredentials, AnonForbiddenWorker", body = ErrorBody),
        (status = 404, description = "InvalidJobID", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn submit() {}

/// horde's extension: a worker posts the text it has generated so far for a job it holds;
/// requesters reading the request's stream see it at once. The submit still finishes and pays
/// the job.
#[utoipa::path(post, path = "/generate/text/progress", tag = "generate", security(("apikey" = [])),
    request_body = ProgressRequest,
    responses(
        (status = 200, description = "The bytes held, whether anyone reads, whether the \
            request was cancelled", body = ProgressAnswer),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "WrongCredentials, AnonForbidden", body = ErrorBody),
        (status = 404, description = "InvalidJobID", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn progress() {}

/// horde's extension: a request's text as its worker generates it, as server-sent events:
/// `text` events (`{"text": "..."}`, the new part), then one `done` event (the request's
/// status, as `GET /generate/text/status/{id}` answers) or an `error` event
/// (`{"message", "rc"}`). Leaving the stream cancels nothing.
#[utoipa::path(get, path = "/generate/text/stream/{id}", tag = "generate",
    params(("id" = uuid::Uuid, Path, description = "The request id")),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream",
            body = String),
        (status = 404, description = "RequestNotFound", body = ErrorBody),
        (status = 429, description = "The request has its most readers", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn stream() {}

/// Workers (`type=text`).
#[utoipa::path(get, path = "/workers", tag = "workers",
    params(("type" = Option<HordeType>, Query, description = "`text` (default); `image` lists nothing")),
    responses(
        (status = 200, description = "Workers (a key nobody has is ignored, as AI Horde does)", body = Vec<WorkerDetails>),
        (status = 400, description = "An unknown type", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn list_workers() {}

/// One worker.
#[utoipa::path(get, path = "/workers/{id}", tag = "workers",
    params(("id" = uuid::Uuid, Path, description = "The worker id")),
    responses(
        (status = 200, description = "The worker", body = WorkerDetails),
        (status = 400, description = "Not a worker id", body = ErrorBody),
        (status = 404, description = "WorkerNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn get_worker() {}

/// The owner (or an administrator) changes a worker's maintenance, info or name.
#[utoipa::path(put, path = "/workers/{id}", tag = "workers", security(("apikey" = [])),
    params(("id" = uuid::Uuid, Path, description = "The worker id")),
    request_body = WorkerUpdateRequest,
    responses(
        (status = 200, description = "What changed", body = ModifyWorker),
        (status = 400, description = "Invalid values", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "WrongCredentials, AnonForbidden", body = ErrorBody),
        (status = 404, description = "WorkerNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn update_worker() {}

/// Every team, by name.
#[utoipa::path(get, path = "/teams", tag = "workers",
    responses((status = 200, description = "Teams", body = Vec<TeamDetails>)))]
#[allow(dead_code)]
fn list_teams() {}

/// Trusted users create a team (at most 10 each).
#[utoipa::path(post, path = "/teams", tag = "workers", security(("apikey" = [])),
    request_body = CreateTeam,
    responses(
        (status = 200, description = "Created", body = ModifyTeam),
        (status = 400, description = "A name taken, too short or too long; info too long", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "UntrustedTeamCreation, AnonForbidden, Forbidden (10 teams)", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn create_team() {}

/// One team: its counters, workers and models.
#[utoipa::path(get, path = "/teams/{id}", tag = "workers",
    params(("id" = uuid::Uuid, Path, description = "The team id")),
    responses(
        (status = 200, description = "The team", body = TeamDetails),
        (status = 404, description = "TeamNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn get_team() {}

/// Its creator, a moderator or an administrator renames a team or changes its info.
#[utoipa::path(patch, path = "/teams/{id}", tag = "workers", security(("apikey" = [])),
    params(("id" = uuid::Uuid, Path, description = "The team id")),
    request_body = TeamChange,
    responses(
        (status = 200, description = "Changed", body = ModifyTeam),
        (status = 400, description = "NoTeamModSelected, a name taken or invalid", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "WrongCredentials, AnonForbidden", body = ErrorBody),
        (status = 404, description = "TeamNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn update_team() {}

/// Its creator, a moderator or an administrator deletes a team; its workers leave it.
#[utoipa::path(delete, path = "/teams/{id}", tag = "workers", security(("apikey" = [])),
    params(("id" = uuid::Uuid, Path, description = "The team id")),
    responses(
        (status = 200, description = "Deleted", body = DeletedTeam),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "WrongCredentials, AnonForbidden", body = ErrorBody),
        (status = 404, description = "TeamNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn delete_team() {}

/// The owner (or an administrator) deletes a worker: the jobs it holds go back to the queue
/// and its name is free again. A worker under suspicion or being spot-checked can be deleted
/// by an administrator only.
#[utoipa::path(delete, path = "/workers/{id}", tag = "workers", security(("apikey" = [])),
    params(("id" = uuid::Uuid, Path, description = "The worker id")),
    responses(
        (status = 200, description = "Deleted", body = DeletedWorker),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "WrongCredentials, AnonForbidden, Locked", body = ErrorBody),
        (status = 404, description = "WorkerNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn delete_worker() {}

/// A worker by its name.
#[utoipa::path(get, path = "/workers/name/{name}", tag = "workers",
    params(("name" = String, Path, description = "The worker's name")),
    responses(
        (status = 200, description = "The worker", body = WorkerDetails),
        (status = 404, description = "WorkerNotFound", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn worker_by_name() {}

/// One model's entry of `/status/models`, in a list (empty when no worker serves it and no
/// request names it), as AI Horde answers.
#[utoipa::path(get, path = "/status/models/{model_name}", tag = "status",
    params(("model_name" = String, Path, description = "The model's name")),
    responses((status = 200, description = "The model", body = Vec<ModelStatus>)))]
#[allow(dead_code)]
fn status_model() {}

/// What the horde's operators announce.
#[utoipa::path(get, path = "/status/news", tag = "status",
    responses((status = 200, description = "News, newest first", body = Vec<NewsPiece>)))]
#[allow(dead_code)]
fn news() {}

/// The horde's modes: maintenance, invite-only, raid.
#[utoipa::path(get, path = "/status/modes", tag = "status",
    responses((status = 200, description = "The modes in force", body = HordeModes)))]
#[allow(dead_code)]
fn modes() {}

/// Administrators: switch the modes named in the body (absent ones stay).
#[utoipa::path(put, path = "/status/modes", tag = "status",
    security(("apikey" = [])),
    request_body = ModesChange,
    responses(
        (status = 200, description = "The modes now in force", body = HordeModes),
        (status = 400, description = "ValidationError", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "NotAdmin, AnonForbidden", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn set_modes() {}

/// The server answers.
#[utoipa::path(get, path = "/status/heartbeat", tag = "status",
    responses((status = 200, description = "OK", body = Heartbeat)))]
#[allow(dead_code)]
fn heartbeat() {}

/// Models with online workers or waiting requests.
#[utoipa::path(get, path = "/status/models", tag = "status",
    params(("type" = Option<HordeType>, Query, description = "`text` (default); `image` lists nothing")),
    responses(
        (status = 200, description = "Models", body = Vec<ModelStatus>),
        (status = 400, description = "An unknown type", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn status_models() {}

/// Queue and worker figures.
#[utoipa::path(get, path = "/status/performance", tag = "status",
    responses((status = 200, description = "Figures", body = Performance)))]
#[allow(dead_code)]
fn performance() {}

/// Requests and tokens per minute, hour, day, month and in all.
#[utoipa::path(get, path = "/stats/text/totals", tag = "status",
    responses((status = 200, description = "Totals", body = Totals)))]
#[allow(dead_code)]
fn totals() {}

/// Generations finished per model in the last 24 hours, 30 days, and ever (counted from the
/// hour they finished).
#[utoipa::path(get, path = "/stats/text/models", tag = "status",
    responses((status = 200, description = "Per model", body = ModelTotals)))]
#[allow(dead_code)]
fn model_totals() {}

/// Administrators: read the model reference file again.
#[utoipa::path(post, path = "/admin/model_reference/reload", tag = "status",
    security(("apikey" = [])),
    responses(
        (status = 200, description = "Reloaded", body = ReferenceReloaded),
        (status = 400, description = "The file is invalid; the old reference stays", body = ErrorBody),
        (status = 401, description = "InvalidAPIKey", body = ErrorBody),
        (status = 403, description = "NotAdmin, AnonForbidden", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn reload_model_reference() {}
