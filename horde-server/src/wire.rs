//! The typed wire: every request and response body of the API, as serde types in one place.
//!
//! Handlers parse requests into these types and answer with them; nothing builds JSON by
//! hand. Field names and types follow AI Horde's v2 API (its OpenAPI description is the
//! contract; the deliberate differences are listed in docs/api.md). Response structs hold
//! plain data copied out of the core, so they are serialised after the core lock is released.

use std::collections::BTreeMap;
use std::sync::Arc;

use horde_core::{GenParams, Kudos, RequestId, RequestSpec, Timestamp, UserId, WorkerId};

use crate::error::{ApiError, Rc};
use crate::openapi::{Alias, ModelName, Username, WorkerName};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Requests

/// `POST /generate/text/async`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AsyncRequest {
    /// The prompt (required, non-empty).
    #[schema(value_type = String, min_length = 1, max_length = 400000)]
    pub prompt: Option<String>,
    /// Generation parameters.
    pub params: Option<ParamsIn>,
    /// Acceptable models; empty or absent: any.
    #[schema(value_type = Option<Vec<ModelName>>, max_items = 200)]
    pub models: Option<Vec<String>>,
    /// Allowed (or, with `worker_blacklist`, refused) worker ids.
    #[schema(max_items = 5)]
    pub workers: Option<Vec<Uuid>>,
    /// Treat `workers` as a deny-list.
    pub worker_blacklist: Option<bool>,
    /// Only trusted workers.
    pub trusted_workers: Option<bool>,
    /// NSFW request.
    pub nsfw: Option<bool>,
    /// Only estimate the cost.
    pub dry_run: Option<bool>,
}

impl AsyncRequest {
    /// The core's request for this one, by `owner` at `now` (parsed before the core's lock is
    /// taken). Refuses an empty prompt; the core checks the rest.
    pub fn into_spec(self, owner: UserId, now: Timestamp) -> Result<RequestSpec, ApiError> {
        let body = self;
        let prompt = body.prompt.unwrap_or_default();
        if prompt.is_empty() {
            return Err(ApiError::invalid(
                Rc::MissingPrompt,
                "prompt",
                "the prompt must not be empty",
            ));
        }
        let params = body.params.unwrap_or_default();
        params.samplers.check()?;
        let defaults = GenParams::default();
        let passthrough = serde_json::to_string(&params.samplers)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut spec = RequestSpec::new(RequestId(uuid::Uuid::now_v7()), owner, prompt, now);
        spec.params = GenParams {
            n: params.n.unwrap_or(defaults.n),
            max_length: params.max_length.unwrap_or(defaults.max_length),
            max_context_length: params
                .max_context_length
                .unwrap_or(defaults.max_context_length),
        };
        spec.passthrough = passthrough.into();
        spec.models = body
            .models
            .unwrap_or_default()
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(Arc::from)
            .collect();
        spec.workers = body
            .workers
            .unwrap_or_default()
            .into_iter()
            .map(WorkerId)
            .collect();
        spec.worker_blacklist = body.worker_blacklist.unwrap_or(false);
        spec.trusted_workers = body.trusted_workers.unwrap_or(false);
        spec.nsfw = body.nsfw.unwrap_or(false);
        Ok(spec)
    }
}

/// `params` of a generation request: what the core needs, plus the sampler and format fields
/// passed to the worker. Unknown keys are dropped (KoboldAI rejects them).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ParamsIn {
    /// Generations wanted, 1–20.
    #[schema(minimum = 1, maximum = 20)]
    #[serde(default, deserialize_with = "integer")]
    pub n: Option<u32>,
    /// Tokens to generate, 16–4096 (default 80).
    #[schema(minimum = 16, maximum = 4096)]
    #[serde(default, deserialize_with = "integer")]
    pub max_length: Option<u32>,
    /// Tokens of context, 80–131072 (default 2048); at least `max_length` (else 400
    /// `TokenOverflow`).
    #[schema(minimum = 80, maximum = 131072)]
    #[serde(default, deserialize_with = "integer")]
    pub max_context_length: Option<u32>,
    /// Sampler and format fields.
    #[serde(flatten)]
    pub samplers: Samplers,
}

/// The KoboldAI generate fields a client may set, passed through to the worker. Fields that
/// AI Horde declares as integers are integers here, so they reach the worker as `100`, not
/// `100.0` (older KoboldCpp refuses floats there); a client's `100.0` is accepted as `100`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[allow(missing_docs)]
pub struct Samplers {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 5)]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.001, maximum = 1)]
    pub top_p: Option<f64>,
    #[serde(
        default,
        deserialize_with = "integer",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 0, maximum = 100)]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub top_a: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub typical: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub tfs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub min_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3)]
    pub rep_pen: Option<f64>,
    #[serde(
        default,
        deserialize_with = "integer",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 0, maximum = 4096)]
    pub rep_pen_range: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 10)]
    pub rep_pen_slope: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 5)]
    pub dynatemp_range: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 5)]
    pub dynatemp_exponent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 10)]
    pub smoothing_factor: Option<f64>,
    #[serde(
        default,
        deserialize_with = "integers",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(max_items = 16)]
    pub sampler_order: Option<Vec<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 128)]
    pub stop_sequence: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub singleline: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frmttriminc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frmtrmblln: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frmtrmspch: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frmtadsnsp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_default_badwordsids: Option<bool>,
}

/// Most stop sequences a request may carry, and the longest one (in characters).
const STOP_SEQUENCES_MAX: usize = 128;
const STOP_SEQUENCE_CHARS_MAX: usize = 1000;
/// Most entries of `sampler_order`, and the largest (KoboldCpp numbers its samplers 0–6).
const SAMPLER_ORDER_MAX: usize = 16;
const SAMPLER_MAX: u32 = 15;

impl Samplers {
    /// Refuses values outside the ranges AI Horde documents (a worker's backend would refuse
    /// or misbehave on them: a temperature of 1e308, a top_p of −1e300, 100,000 stop
    /// sequences), naming the field.
    pub fn check(&self) -> Result<(), ApiError> {
        let ranges: [(&'static str, Option<f64>, f64, f64); 13] = [
            ("temperature", self.temperature, 0.0, 5.0),
            ("top_p", self.top_p, 0.001, 1.0),
            ("top_k", self.top_k.map(f64::from), 0.0, 100.0),
            ("top_a", self.top_a, 0.0, 1.0),
            ("typical", self.typical, 0.0, 1.0),
            ("tfs", self.tfs, 0.0, 1.0),
            ("min_p", self.min_p, 0.0, 1.0),
            ("rep_pen", self.rep_pen, 1.0, 3.0),
            (
                "rep_pen_range",
                self.rep_pen_range.map(f64::from),
                0.0,
                4096.0,
            ),
            ("rep_pen_slope", self.rep_pen_slope, 0.0, 10.0),
            ("dynatemp_range", self.dynatemp_range, 0.0, 5.0),
            ("dynatemp_exponent", self.dynatemp_exponent, 0.0, 5.0),
            ("smoothing_factor", self.smoothing_factor, 0.0, 10.0),
        ];
        for (field, value, low, high) in ranges {
            if let Some(value) = value {
                if !(low..=high).contains(&value) {
                    return Err(ApiError::invalid(
                        Rc::ValidationError,
                        field,
                        format!("{field} must be from {low} to {high}, not {value}"),
                    ));
                }
            }
        }
        if let Some(stops) = &self.stop_sequence {
            if stops.len() > STOP_SEQUENCES_MAX {
                return Err(ApiError::invalid(
                    Rc::ValidationError,
                    "stop_sequence",
                    format!(
                        "at most {STOP_SEQUENCES_MAX} stop sequences, not {}",
                        stops.len()
                    ),
                ));
            }
            if stops
                .iter()
                .any(|s| s.chars().count() > STOP_SEQUENCE_CHARS_MAX)
            {
                return Err(ApiError::invalid(
                    Rc::ValidationError,
                    "stop_sequence",
                    format!("a stop sequence may be at most {STOP_SEQUENCE_CHARS_MAX} characters"),
                ));
            }
        }
        if let Some(order) = &self.sampler_order {
            if order.len() > SAMPLER_ORDER_MAX || order.iter().any(|&s| s > SAMPLER_MAX) {
                return Err(ApiError::invalid(
                    Rc::ValidationError,
                    "sampler_order",
                    format!(
                        "sampler_order lists at most {SAMPLER_ORDER_MAX} samplers numbered 0 to \
                         {SAMPLER_MAX}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A whole number given as `100` or `100.0`, at most `i32::MAX` (KoboldAI and KoboldCpp read
/// these fields as C ints; the schema says `int32`).
fn whole(value: f64) -> Option<u32> {
    (value.fract() == 0.0 && (0.0..=f64::from(i32::MAX)).contains(&value)).then_some(value as u32)
}

fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let value = Option::<f64>::deserialize(deserializer)?;
    value
        .map(|v| whole(v).ok_or_else(|| serde::de::Error::custom("expected a whole number")))
        .transpose()
}

fn integers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u32>>, D::Error> {
    let values = Option::<Vec<f64>>::deserialize(deserializer)?;
    values
        .map(|list| {
            list.into_iter()
                .map(|v| whole(v).ok_or_else(|| serde::de::Error::custom("expected whole numbers")))
                .collect()
        })
        .transpose()
}

/// `POST /generate/text/pop`. Optional fields may be `null` (older bridges send them so).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PopRequest {
    /// The worker's unique name.
    #[schema(value_type = WorkerName)]
    pub name: String,
    /// Models it serves (at least one).
    #[schema(value_type = Vec<ModelName>, min_items = 1, max_items = 200)]
    pub models: Option<Vec<String>>,
    /// Most tokens it generates, 16–4096. Default 512.
    #[schema(minimum = 16, maximum = 4096)]
    #[serde(default, deserialize_with = "integer")]
    pub max_length: Option<u32>,
    /// Most context it accepts, 80–131072. Default 2048.
    #[schema(minimum = 80, maximum = 131072)]
    #[serde(default, deserialize_with = "integer")]
    pub max_context_length: Option<u32>,
    /// `alias#id` of users it serves first.
    #[schema(value_type = Option<Vec<Username>>, max_items = 20)]
    pub priority_usernames: Option<Vec<String>>,
    /// Accepts NSFW requests.
    pub nsfw: Option<bool>,
    /// Parallel jobs, 1–50.
    #[schema(minimum = 1, maximum = 50)]
    #[serde(default, deserialize_with = "integer")]
    pub threads: Option<u32>,
    /// Jobs to take at once, 1–20.
    #[schema(minimum = 1, maximum = 20)]
    #[serde(default, deserialize_with = "integer")]
    pub amount: Option<u32>,
    /// `name:version:url` of the bridge.
    #[schema(max_length = 1000)]
    pub bridge_agent: Option<String>,
}

/// `POST /generate/text/submit`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SubmitRequest {
    /// The job id.
    pub id: Uuid,
    /// The generated text.
    pub generation: Option<String>,
    /// `ok`, `censored` or `faulted`.
    #[schema(value_type = Option<SubmitStateSchema>)]
    pub state: Option<horde_core::SubmitState>,
    /// The seed the backend used (a number or numeric text).
    #[schema(value_type = Option<i64>)]
    pub seed: Option<Value>,
    /// Metadata entries, as AI Horde's `GenerationMetadataKobold`.
    #[schema(max_items = 16)]
    pub gen_metadata: Option<Vec<GenMetadata>>,
}

/// One entry of a generation's metadata: AI Horde defines one kind for text, a
/// `censorship` entry whose value is `csam`. Anything else is refused on submit, since
/// horde-sdk would fail to parse the requester's status.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenMetadata {
    /// `censorship`.
    #[serde(rename = "type")]
    pub kind: MetadataType,
    /// `csam`.
    pub value: MetadataValue,
    /// An optional reference, at most 255 characters.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub reference: Option<String>,
}

/// How a job ended, as `POST /generate/text/submit` says it (the schema of the core's
/// `SubmitState`).
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetadataType {
    /// The worker censored the generation.
    Censorship,
}

/// The `value` of a metadata entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetadataValue {
    /// Why it was censored.
    Csam,
}

/// `POST /register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// The alias wanted.
    #[schema(value_type = Alias)]
    pub username: String,
}

/// `PUT /users/{id}`: admins change kudos, trust and concurrency; a user changes their own
/// `public_workers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UserUpdate {
    /// Kudos to add (negative: remove).
    #[schema(value_type = Option<f64>)]
    pub kudos: Option<Kudos>,
    /// Trusted status.
    pub trusted: Option<bool>,
    /// Open generations allowed, 0–500.
    #[schema(maximum = 500)]
    pub concurrency: Option<u32>,
    /// Show the owner on the user's workers to everyone.
    pub public_workers: Option<bool>,
    /// Flag for review (administrators): no transfers, workers paused, requests last.
    pub flagged: Option<bool>,
}

/// `POST /kudos/transfer`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TransferRequest {
    /// The receiver, `alias#id`.
    #[schema(value_type = Username)]
    pub username: String,
    /// A positive number of kudos (kudos have three decimals).
    #[schema(value_type = f64, minimum = 0.001)]
    pub amount: Value,
}

/// `PUT /workers/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct WorkerUpdateRequest {
    /// Enter or leave maintenance.
    pub maintenance: Option<bool>,
    /// The maintenance message.
    pub maintenance_msg: Option<String>,
    /// Free text shown on the worker.
    pub info: Option<String>,
    /// A new unique name.
    #[schema(value_type = Option<WorkerName>)]
    pub name: Option<String>,
}

/// `?page=N&sort=kudos|age` of `GET /users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UsersQuery {
    /// Page, from 1.
    pub page: Option<u32>,
    /// `kudos` (default) or `age`.
    pub sort: Option<String>,
}

/// `?type=text|image` of `GET /workers` and `GET /status/models`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TypeQuery {
    /// `text` (default) or `image`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Responses

/// `GET /status/heartbeat`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Heartbeat {
    /// `OK`.
    pub message: &'static str,
    /// The server's version.
    pub version: &'static str,
    /// `active`, or `standby` for a node waiting to take over (PostgreSQL store): a load
    /// balancer routes to the active one.
    #[schema(pattern = "^(active|standby)$")]
    pub role: &'static str,
}

impl Heartbeat {
    /// The heartbeat of a node in `role`.
    pub fn of(role: &'static str) -> Heartbeat {
        Heartbeat {
            message: "OK",
            version: env!("CARGO_PKG_VERSION"),
            role,
        }
    }
}

/// One entry of `GET /status/models`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelStatus {
    /// The model name.
    #[schema(value_type = String)]
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
    pub kind: &'static str,
}

/// `GET /status/performance`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(missing_docs)]
pub struct Period {
    pub requests: u64,
    pub tokens: u64,
}

/// `GET /stats/text/totals`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(missing_docs)]
pub struct Totals {
    pub minute: Period,
    pub hour: Period,
    pub day: Period,
    pub month: Period,
    pub total: Period,
}

/// `POST /generate/text/async` (202).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AsyncAccepted {
    /// The request id.
    pub id: String,
    /// The estimated cost.
    #[schema(value_type = f64)]
    pub kudos: Kudos,
    /// Set when no online worker can serve the request now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
}

/// `POST /generate/text/async` with `dry_run`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Estimate {
    /// The estimated cost.
    #[schema(value_type = f64)]
    pub kudos: Kudos,
}

/// `GET` (and `DELETE`) `/generate/text/status/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    #[schema(value_type = f64)]
    pub kudos: Kudos,
    pub generations: Vec<GenerationOut>,
}

/// A finished generation in a status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(missing_docs)]
pub struct GenerationOut {
    /// The job id (our addition; clients ignore it).
    pub id: String,
    pub text: String,
    /// The seed, or 0 when the worker reported none (the contract says integer).
    pub seed: i64,
    pub worker_id: String,
    pub worker_name: String,
    #[schema(value_type = String)]
    pub model: Arc<str>,
    /// `ok` or `censored`.
    pub state: &'static str,
    pub gen_metadata: Vec<GenMetadata>,
}

/// `POST /generate/text/pop`: a job, or nothing and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PopAnswer {
    /// What to send to the backend (`{}` when there is no job).
    pub payload: PayloadField,
    /// The first job id, or `null`.
    pub id: Option<String>,
    /// All job ids handed out.
    pub ids: Vec<String>,
    /// The model to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub model: Option<Arc<str>>,
    /// Always `null` (soft prompts are not supported).
    pub softprompt: Option<String>,
    /// Seconds until the job times out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// Waiting requests skipped, by reason (empty with a job).
    #[schema(value_type = BTreeMap<String, u64>)]
    pub skipped: BTreeMap<&'static str, u64>,
}

/// A pop's `payload`: the job's, or `{}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PayloadField {
    /// There is a job.
    Job(Box<Payload>),
    /// There is none: `{}`.
    Empty(Empty),
}

/// Serialises as `{}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Empty {}

/// A job's payload: only KoboldAI generate fields (real bridges forward it verbatim).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Payload {
    /// The prompt.
    #[schema(value_type = String)]
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
}

/// `POST /generate/text/submit`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reward {
    /// Kudos earned.
    #[schema(value_type = f64)]
    pub reward: Kudos,
}

/// `POST /register` (201).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Registered {
    /// The user id.
    pub id: u64,
    /// `alias#id`.
    pub username: String,
    /// The API key, shown once.
    pub api_key: String,
}

/// `GET /find_user`, `GET /users`, `GET /users/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(missing_docs)]
pub struct UserDetails {
    pub username: String,
    pub id: u64,
    #[schema(value_type = f64)]
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
}

/// Where a user's kudos came from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(missing_docs)]
pub struct UserKudosDetails {
    #[schema(value_type = f64)]
    pub accumulated: Kudos,
    #[schema(value_type = f64)]
    pub gifted: Kudos,
    #[schema(value_type = f64)]
    pub received: Kudos,
    #[schema(value_type = f64)]
    pub awarded: Kudos,
    #[schema(value_type = f64)]
    pub admin: Kudos,
    #[schema(value_type = f64)]
    pub uptime: Kudos,
    /// Earned while untrusted and held in escrow until trust (AI Horde's name).
    #[schema(value_type = f64)]
    pub evaluating: Kudos,
}

/// A user's records.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserRecords {
    /// What their workers produced.
    pub contribution: Contribution,
}

/// What a user's workers produced.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(missing_docs)]
pub struct Contribution {
    pub tokens: u64,
    pub fulfillments: u64,
}

/// `PUT /users/{id}`: AI Horde's `ModifyUser`, the new values of what changed.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[allow(missing_docs)]
pub struct ModifyUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub new_kudos: Option<Kudos>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_workers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<bool>,
}

/// `POST /kudos/transfer`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transferred {
    /// Kudos moved.
    #[schema(value_type = f64)]
    pub transferred: Kudos,
}

/// `GET /workers`, `GET /workers/{id}`, `GET /workers/name/{name}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(missing_docs)]
pub struct WorkerDetails {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub online: bool,
    #[schema(value_type = Vec<String>)]
    pub models: Vec<Arc<str>>,
    pub max_length: u32,
    pub max_context_length: u32,
    /// Seconds online.
    pub uptime: u64,
    pub requests_fulfilled: u64,
    #[schema(value_type = f64)]
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
}

/// Kudos a worker earned.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerKudosDetails {
    /// From generations.
    #[schema(value_type = f64)]
    pub generated: Kudos,
    /// From uptime, in whole kudos (the contract says integer).
    pub uptime: i64,
}

/// `PUT /workers/{id}`: AI Horde's `ModifyWorker`, the new values of what changed.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
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
}

/// `POST /admin/model_reference/reload`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferenceReloaded {
    /// Models the reference now knows.
    pub models: usize,
}
