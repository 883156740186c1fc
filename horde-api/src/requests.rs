//! Request bodies and queries: what clients and workers send.
//!
//! Optional fields are `Option`s (absent or `null` on the wire); the horde applies its
//! defaults. Every type serialises and deserialises, so a client builds the same values a
//! server parses.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use horde_core::Kudos;

#[cfg(feature = "openapi")]
use crate::names::{Alias, ModelName, Username, WorkerName};
use crate::Samplers;

/// `POST /generate/text/async`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AsyncRequest {
    /// The prompt (required, non-empty).
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, min_length = 1, max_length = 400000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Generation parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<ParamsIn>,
    /// Acceptable models; empty or absent: any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ModelName>>, max_items = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Allowed (or, with `worker_blacklist`, refused) worker ids.
    #[cfg_attr(feature = "openapi", schema(max_items = 5))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<Uuid>>,
    /// Treat `workers` as a deny-list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_blacklist: Option<bool>,
    /// Only trusted workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_workers: Option<bool>,
    /// NSFW request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nsfw: Option<bool>,
    /// Only estimate the cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Workers slower than 2 tokens per second may serve it (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_workers: Option<bool>,
    /// Workers that declared themselves extra slow may serve it (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_slow_workers: Option<bool>,
    /// Only workers whose bridge the operator validated (default true; every bridge counts as
    /// validated while the operator lists none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated_backends: Option<bool>,
    /// When the request would need its cost upfront and the account does not hold it, shorten
    /// `max_length` until it does not, instead of refusing (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_downgrade: Option<bool>,
    /// Each worker takes at most one of its generations at a time (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_batching: Option<bool>,
    /// The user of a service account's front-end this request is for (at most 100
    /// characters): service accounts only (else 400); recorded with the request.
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxied_account: Option<String>,
    /// An http(s) URL each finished generation is posted to, signed with your webhook secret
    /// (set it first with `PUT /users/{id}`; the API documentation shows how to verify it).
    /// Refused when its host is a loopback, private or link-local address.
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// AI Horde's softprompt: refused with 400 (no worker here loads softprompts); empty or
    /// absent is accepted.
    #[cfg_attr(feature = "openapi", schema(max_length = 0))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub softprompt: Option<String>,
}

impl AsyncRequest {
    /// A request for `prompt` with the horde's defaults.
    pub fn prompt(prompt: impl Into<String>) -> AsyncRequest {
        AsyncRequest {
            prompt: Some(prompt.into()),
            ..AsyncRequest::default()
        }
    }
}

/// `params` of a generation request: what the core needs, plus the sampler and format fields
/// passed to the worker. Unknown keys are dropped (KoboldAI rejects them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParamsIn {
    /// Generations wanted, 1–20.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 20))]
    #[serde(default, deserialize_with = "crate::numbers::integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Tokens to generate, 16–4096 (default 80).
    #[cfg_attr(feature = "openapi", schema(minimum = 16, maximum = 4096))]
    #[serde(default, deserialize_with = "crate::numbers::integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Tokens of context, 80–131072 (default 2048); at least `max_length` (else 400
    /// `TokenOverflow`).
    #[cfg_attr(feature = "openapi", schema(minimum = 80, maximum = 131072))]
    #[serde(default, deserialize_with = "crate::numbers::integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_context_length: Option<u32>,
    /// Sampler and format fields.
    #[serde(flatten)]
    pub samplers: Samplers,
}

/// `POST /generate/text/pop`. Optional fields may be `null` (older bridges send them so).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PopRequest {
    /// The worker's unique name.
    #[cfg_attr(feature = "openapi", schema(value_type = WorkerName))]
    pub name: String,
    /// Models it serves (at least one).
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<ModelName>, min_items = 1, max_items = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Most tokens it generates, 16–4096. Default 512.
    #[cfg_attr(feature = "openapi", schema(minimum = 16, maximum = 4096))]
    #[serde(default, deserialize_with = "crate::numbers::integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Most context it accepts, 80–131072. Default 2048.
    #[cfg_attr(feature = "openapi", schema(minimum = 80, maximum = 131072))]
    #[serde(default, deserialize_with = "crate::numbers::integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_context_length: Option<u32>,
    /// `alias#id` of users it serves first.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Username>>, max_items = 20))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_usernames: Option<Vec<String>>,
    /// Accepts NSFW requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nsfw: Option<bool>,
    /// Parallel jobs, 1–50.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 50))]
    #[serde(default, deserialize_with = "crate::numbers::integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Jobs to take at once, 1–20.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 20))]
    #[serde(default, deserialize_with = "crate::numbers::integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u32>,
    /// Words whose prompts the worker will not take (AI Horde's `blacklist`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub blacklist: Option<Vec<String>>,
    /// `name:version:url` of the bridge.
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge_agent: Option<String>,
    /// The worker is extra slow: it takes only requests that allow extra slow workers (the
    /// name of AI Horde's image pop field; default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_slow_worker: Option<bool>,
    /// horde's extension: when no job is waiting, hold the answer up to this many seconds
    /// (at most 20) and answer as soon as one arrives (a long poll). Absent or 0: answer at
    /// once, as AI Horde does.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 20))]
    #[serde(default, deserialize_with = "crate::numbers::integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<u32>,
}

/// `POST /generate/text/progress` (horde's extension): text a worker has generated so far for
/// a job it holds, streamed to the requester. What pays is still the submit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressRequest {
    /// The job id.
    pub id: Uuid,
    /// Bytes (UTF-8) of the job's text that came before `text`: the `received` of the last
    /// answer, 0 at first. A repeated part is skipped; a gap is refused.
    #[serde(default)]
    pub offset: u64,
    /// The text generated since `offset`.
    #[cfg_attr(feature = "openapi", schema(max_length = 65536))]
    pub text: String,
}

/// `POST /generate/text/submit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubmitRequest {
    /// The job id.
    pub id: Uuid,
    /// The generated text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// `ok`, `censored` or `faulted`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<SubmitStateSchema>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<horde_core::SubmitState>,
    /// The seed the backend used (a number or numeric text).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Value>,
    /// Metadata entries, as AI Horde's `GenerationMetadataKobold`.
    #[cfg_attr(feature = "openapi", schema(max_items = 16))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gen_metadata: Option<Vec<GenMetadata>>,
}

/// One entry of a generation's metadata: AI Horde defines one kind for text, a
/// `censorship` entry whose value is `csam`. Anything else is refused on submit, since
/// horde-sdk would fail to parse the requester's status.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GenMetadata {
    /// `censorship`.
    #[serde(rename = "type")]
    pub kind: MetadataType,
    /// `csam`.
    pub value: MetadataValue,
    /// An optional reference, at most 255 characters.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    pub reference: Option<String>,
}

/// How a job ended, as `POST /generate/text/submit` says it (the schema of the core's
/// `SubmitState`).
#[cfg(feature = "openapi")]
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmitStateSchema {
    /// Generated.
    Ok,
    /// The worker could not generate; the request goes back to the queue.
    Faulted,
    /// The worker censored the generation.
    Censored,
}

/// The `type` of a metadata entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MetadataType {
    /// The worker censored the generation.
    Censorship,
}

/// The `value` of a metadata entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MetadataValue {
    /// Why it was censored.
    Csam,
}

/// `POST /register`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    /// The alias wanted.
    #[cfg_attr(feature = "openapi", schema(value_type = Alias))]
    pub username: String,
}

/// `PUT /users/{id}`: admins change kudos, trust and concurrency; a user changes their own
/// `public_workers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserUpdate {
    /// Kudos to add (negative: remove).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kudos: Option<Kudos>,
    /// Trusted status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted: Option<bool>,
    /// Open generations allowed, 0–500.
    #[cfg_attr(feature = "openapi", schema(maximum = 500))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Show the owner on the user's workers to everyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_workers: Option<bool>,
    /// Flag for review (administrators): no transfers, workers paused, requests last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<bool>,
    /// Moderator role (administrators): awards kudos, switches invite-only and raid modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderator: Option<bool>,
    /// Service-account role (administrators): may send `proxied_account`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<bool>,
    /// Customizer role (administrators): custom models paid by the size in their name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customizer: Option<bool>,
    /// VPN role (administrators): no per-address transfer limit (the per-user one holds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpn: Option<bool>,
    /// The secret your webhook deliveries are signed with (the user themselves): 16 to 128
    /// visible ASCII characters; `""` removes it.
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// `POST /kudos/award` (moderators and administrators): kudos from the horde to a user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AwardRequest {
    /// The receiver, `alias#id`.
    #[cfg_attr(feature = "openapi", schema(value_type = Username))]
    pub username: String,
    /// A positive number of kudos (three decimals).
    #[cfg_attr(feature = "openapi", schema(value_type = f64, minimum = 0.001))]
    pub amount: Value,
}

/// `POST /kudos/transfer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferRequest {
    /// The receiver, `alias#id`.
    #[cfg_attr(feature = "openapi", schema(value_type = Username))]
    pub username: String,
    /// A positive number of kudos (kudos have three decimals).
    #[cfg_attr(feature = "openapi", schema(value_type = f64, minimum = 0.001))]
    pub amount: Value,
}

impl TransferRequest {
    /// A transfer of `amount` to `username` (`alias#id`).
    pub fn new(username: impl Into<String>, amount: Kudos) -> TransferRequest {
        TransferRequest {
            username: username.into(),
            amount: serde_json::to_value(amount).unwrap_or(Value::Null),
        }
    }
}

/// `PUT /workers/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerUpdateRequest {
    /// Enter or leave maintenance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<bool>,
    /// The maintenance message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_msg: Option<String>,
    /// Free text shown on the worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// A new unique name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<WorkerName>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The id of a team to work for; `""` leaves the team.
    #[cfg_attr(feature = "openapi", schema(max_length = 36))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// `POST /teams` (trusted users): AI Horde's `CreateTeamInput`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateTeam {
    /// A unique name, 3–100 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 3, max_length = 100))]
    pub name: String,
    /// What the team is, at most 1,000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
}

/// `PATCH /teams/{id}` (its creator, moderators, administrators): AI Horde's `ModifyTeamInput`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamChange {
    /// A new unique name, 3–100 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 3, max_length = 100))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New info, at most 1,000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
}

/// `?page=N&sort=kudos|age` of `GET /users`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsersQuery {
    /// Page, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// `kudos` (default) or `age`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
}

/// `?type=text|image` of `GET /workers` and `GET /status/models`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypeQuery {
    /// `text` (default) or `image`.
    #[serde(rename = "type")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `PUT /status/modes` (administrators): the modes to switch; absent ones stay as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModesChange {
    /// Maintenance mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<bool>,
    /// Invite-only mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_only: Option<bool>,
    /// Raid mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raid: Option<bool>,
}
