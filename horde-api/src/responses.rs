//! Response bodies: what the horde answers.
//!
//! Every type serialises (the server answers with it) and deserialises (a client reads it).
//! Reading is lenient: a missing field takes its default and unknown fields are ignored, so
//! the same types read AI Horde's answers, which carry more.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use horde_core::Kudos;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{GenMetadata, Samplers};

/// `GET /status/heartbeat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    /// `OK`.
    pub message: Cow<'static, str>,
    /// The server's version.
    pub version: Cow<'static, str>,
    /// `active`, or `standby` for a node waiting to take over (PostgreSQL store): a load
    /// balancer routes to the active one.
    /// (AI Horde sends no role: read as `active`.)
    #[serde(default = "active")]
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, pattern = "^(active|standby)$")
    )]
    pub role: Cow<'static, str>,
}

fn active() -> Cow<'static, str> {
    Cow::Borrowed("active")
}

impl Heartbeat {
    /// The heartbeat of a node of `version` in `role` (`active` or `standby`).
    pub fn new(version: &'static str, role: &'static str) -> Heartbeat {
        Heartbeat {
            message: Cow::Borrowed("OK"),
            version: Cow::Borrowed(version),
            role: Cow::Borrowed(role),
        }
    }
}

/// One entry of `GET /status/models`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelStatus {
    /// The model name.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Arc<str>,
    /// Online workers serving it.
    pub count: u32,
    /// Estimated tokens per second.
    pub performance: u64,
    /// Tokens waiting.
    pub queued: u64,
    /// Generations waiting or processing.
    pub jobs: u64,
    /// Estimated seconds to clear the queue.
    pub eta: u64,
    /// `text`.
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
}

/// One piece of `GET /status/news`: what the horde's operators announce.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewsPiece {
    /// When it was published, as written (`2026-12-06`).
    pub date_published: String,
    /// How much it matters (AI Horde's words: `Information`, `Workers`, `Minor`, `Major`,
    /// `Crisis`).
    pub importance: String,
    /// The news.
    pub newspiece: String,
    /// Its title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where to read more.
    #[serde(default)]
    pub more_info_urls: Vec<String>,
}

/// `GET /status/performance`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct Performance {
    pub queued_text_requests: u64,
    pub text_worker_count: u64,
    pub text_thread_count: u64,
    pub queued_tokens: u64,
    pub past_minute_tokens: u64,
    /// Image figures: always 0 on a text horde.
    pub queued_requests: u64,
    pub worker_count: u64,
    pub thread_count: u64,
}

/// Requests and tokens of one period of `GET /stats/text/totals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct Period {
    pub requests: u64,
    pub tokens: u64,
}

/// `GET /stats/text/totals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct Totals {
    pub minute: Period,
    pub hour: Period,
    pub day: Period,
    pub month: Period,
    pub total: Period,
}

/// `GET /stats/text/models`: generations finished per model in the last day (24 hours), month
/// (30 days) and ever.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct ModelTotals {
    pub day: std::collections::BTreeMap<String, u64>,
    pub month: std::collections::BTreeMap<String, u64>,
    pub total: std::collections::BTreeMap<String, u64>,
}

/// `GET|PUT /status/modes`: the horde's modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HordeModes {
    /// No new generation requests (`503 MaintenanceMode`); the queue drains.
    pub maintenance_mode: bool,
    /// New workers only from trusted users (`403 WorkerInviteOnly`).
    pub invite_only_mode: bool,
    /// Under attack: invite-only for new workers, no registration without OAuth, and no
    /// "no worker can serve this" message.
    pub raid_mode: bool,
}

/// `POST /generate/text/async` (202).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AsyncAccepted {
    /// The request id.
    pub id: String,
    /// The estimated cost.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub kudos: Kudos,
    /// Set when no online worker can serve the request now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Cow<'static, str>>,
}

/// `POST /generate/text/async` with `dry_run`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Estimate {
    /// The estimated cost.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub kudos: Kudos,
}

/// `GET` (and `DELETE`) `/generate/text/status/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct RequestStatus {
    pub finished: u32,
    pub processing: u32,
    pub restarted: u32,
    pub waiting: u32,
    pub done: bool,
    pub faulted: bool,
    pub is_possible: bool,
    pub wait_time: u64,
    pub queue_position: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub kudos: Kudos,
    pub generations: Vec<GenerationOut>,
}

/// A finished generation in a status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct GenerationOut {
    /// The job id (our addition; clients ignore it, and AI Horde sends none).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub id: String,
    pub text: String,
    /// The seed, or 0 when the worker reported none (the contract says integer).
    pub seed: i64,
    pub worker_id: String,
    pub worker_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub model: Arc<str>,
    /// `ok` or `censored`.
    pub state: Cow<'static, str>,
    pub gen_metadata: Vec<GenMetadata>,
}

/// `POST /generate/text/pop`: a job, or nothing and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PopAnswer {
    /// What to send to the backend (`{}` when there is no job).
    pub payload: PayloadField,
    /// The first job id, or `null`.
    pub id: Option<String>,
    /// All job ids handed out.
    pub ids: Vec<String>,
    /// The model to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub model: Option<Arc<str>>,
    /// Always `null` (soft prompts are not supported).
    pub softprompt: Option<String>,
    /// Seconds until the job times out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// Waiting requests skipped, by reason (empty with a job).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub skipped: BTreeMap<Cow<'static, str>, u64>,
}

/// A pop's `payload`: the job's, or `{}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PayloadField {
    /// There is a job.
    Job(Box<Payload>),
    /// There is none: `{}`.
    Empty(Empty),
}

impl Default for PayloadField {
    fn default() -> PayloadField {
        PayloadField::Empty(Empty {})
    }
}

impl PayloadField {
    /// The job's payload, if there is a job.
    pub fn job(&self) -> Option<&Payload> {
        match self {
            PayloadField::Job(payload) => Some(payload),
            PayloadField::Empty(_) => None,
        }
    }
}

/// Serialises as `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Empty {}

/// A job's payload: only KoboldAI generate fields (real bridges forward it verbatim).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payload {
    /// The prompt.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub prompt: Arc<str>,
    /// Always 1: each job is one generation.
    pub n: u32,
    /// Tokens to generate.
    pub max_length: u32,
    /// Tokens of context.
    pub max_context_length: u32,
    /// The client's sampler and format fields.
    #[serde(flatten)]
    pub samplers: Samplers,
    /// Fields this crate does not know (another horde's), kept so that a worker can pass
    /// them to its backend; a horde-server sends none.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Map<String, Value>,
}

/// `POST /generate/text/progress` (horde's extension).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressAnswer {
    /// Bytes of the job's text the horde holds: the `offset` of the next post.
    pub received: u64,
    /// Someone is reading the stream; when false, further progress is not needed.
    pub listening: bool,
    /// The request was cancelled (or the job given to another worker): stop generating, the
    /// submit will not be taken.
    pub cancelled: bool,
}

/// `POST /generate/text/submit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reward {
    /// Kudos earned.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub reward: Kudos,
    /// Why a generation earned nothing, when a rule made it so: `TooFast`, `Degenerate`,
    /// `SelfDealing` (horde's extension; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpaid: Option<String>,
    /// The same, in words (horde's extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpaid_reason: Option<String>,
}

/// `POST /register` (201).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    /// The user id.
    pub id: u64,
    /// `alias#id`.
    pub username: String,
    /// The API key, shown once.
    pub api_key: String,
}

/// `GET /find_user`, `GET /users`, `GET /users/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct UserDetails {
    pub username: String,
    pub id: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub kudos: Kudos,
    pub kudos_details: UserKudosDetails,
    pub concurrency: u32,
    pub trusted: bool,
    pub public_workers: bool,
    pub worker_ids: Vec<String>,
    pub worker_count: usize,
    pub records: UserRecords,
    /// Seconds since registration.
    pub account_age: u64,
    /// Roles (AI Horde's field names): a moderator awards kudos and switches the horde's
    /// invite-only and raid modes.
    #[serde(default)]
    pub moderator: bool,
    /// A service account: may name the user a request is for.
    #[serde(default)]
    pub service: bool,
    /// A customizer: custom models paid by the size in their name.
    #[serde(default)]
    pub customizer: bool,
    /// Shares its address with strangers: no per-address transfer limit.
    #[serde(default)]
    pub vpn: bool,
}

/// Where a user's kudos came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct UserKudosDetails {
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub accumulated: Kudos,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub gifted: Kudos,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub received: Kudos,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub awarded: Kudos,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub admin: Kudos,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub uptime: Kudos,
    /// Earned while untrusted and held in escrow until trust (AI Horde's name).
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub evaluating: Kudos,
}

/// A user's records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserRecords {
    /// What their workers produced.
    pub contribution: Contribution,
}

/// What a user's workers produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct Contribution {
    pub tokens: u64,
    pub fulfillments: u64,
}

/// `PUT /users/{id}`: AI Horde's `ModifyUser`, the new values of what changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct ModifyUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub new_kudos: Option<Kudos>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_workers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderator: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customizer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpn: Option<bool>,
    /// Whether a webhook secret is now set (the secret itself is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_set: Option<bool>,
}

/// `POST /kudos/award`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KudosAwarded {
    /// Kudos awarded.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub awarded: Kudos,
}

/// `POST /kudos/transfer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transferred {
    /// Kudos moved.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub transferred: Kudos,
}

/// `GET /workers`, `GET /workers/{id}`, `GET /workers/name/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct WorkerDetails {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    pub online: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub models: Vec<Arc<str>>,
    pub max_length: u32,
    pub max_context_length: u32,
    /// Seconds online.
    pub uptime: u64,
    pub requests_fulfilled: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub kudos_rewards: Kudos,
    pub kudos_details: WorkerKudosDetails,
    pub performance: String,
    pub maintenance_mode: bool,
    pub trusted: bool,
    pub nsfw: bool,
    pub bridge_agent: String,
    pub threads: u32,
    pub info: String,
    /// Shown to the owner and admins, or to everyone when the owner's workers are public.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Shown to the owner and admins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_msg: Option<String>,
    /// How many of its results the horde found suspicious (too fast, failing, or disagreeing
    /// with spot checks); shown to the owner and admins (AI Horde's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspicious: Option<u32>,
    /// The team it works for (`id` and `name` null when none), as AI Horde answers.
    #[serde(default)]
    pub team: TeamLite,
}

/// A team's id and name (AI Horde's `TeamDetailsLite`); both null for "no team".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamLite {
    /// The team's id.
    pub id: Option<String>,
    /// The team's name.
    pub name: Option<String>,
}

/// `GET /teams`, `GET /teams/{id}`: AI Horde's `TeamDetails`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamDetails {
    /// The team's id.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// What its creator says of it.
    pub info: String,
    /// Who created it, `alias#id`.
    pub creator: String,
    /// Kudos its workers earned while on it.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub kudos: Kudos,
    /// Generations its workers finished while on it.
    pub requests_fulfilled: u64,
    /// Seconds its workers were online while on it.
    pub uptime: u64,
    /// How many workers are on it.
    pub worker_count: usize,
    /// Its workers (id, name, online).
    pub workers: Vec<TeamWorker>,
    /// The models its online workers serve, with how many serve each.
    pub models: Vec<TeamModel>,
}

/// A worker of a team (AI Horde's `WorkerDetailsLite`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct TeamWorker {
    pub id: String,
    pub name: String,
    pub online: bool,
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
}

/// A model a team serves (AI Horde's `ActiveModelLite`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamModel {
    /// The model.
    pub name: String,
    /// How many of the team's online workers serve it.
    pub count: u64,
}

/// `POST /teams`, `PATCH /teams/{id}`: AI Horde's `ModifyTeam`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct ModifyTeam {
    pub id: String,
    pub name: String,
    pub info: String,
}

/// `DELETE /teams/{id}`: which team went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeletedTeam {
    /// Its id.
    pub deleted_id: String,
    /// The name it had.
    pub deleted_name: String,
}

/// Kudos a worker earned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerKudosDetails {
    /// From generations.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub generated: Kudos,
    /// From uptime, in whole kudos (the contract says integer).
    pub uptime: i64,
}

/// `DELETE /workers/{id}`: which worker went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeletedWorker {
    /// Its id.
    pub deleted_id: String,
    /// The name it had (free again).
    pub deleted_name: String,
}

/// `PUT /workers/{id}`: AI Horde's `ModifyWorker`, the new values of what changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct ModifyWorker {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The new team's name (`""`: left its team).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// `POST /admin/model_reference/reload`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReferenceReloaded {
    /// Models the reference now knows.
    pub models: usize,
}
