//! Requests and jobs: what a client asked for, and each attempt at one of its generations.
//!
//! A [`RequestSpec`] never changes after it is queued (so it is stored once); its mutable
//! [`RequestState`] is small and stored on every change; every [`Job`] is one generation handed
//! to one worker. While a request is open, `waiting + processing + finished == n`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{JobId, Kudos, RequestId, Timestamp, UserId, WorkerId};

/// Generation parameters the core needs to know (the sampler fields travel opaquely in
/// [`RequestSpec::passthrough`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenParams {
    /// Generations wanted, 1–20.
    pub n: u32,
    /// Tokens to generate, 16–4096.
    pub max_length: u32,
    /// Tokens of context the prompt may fill, 80–131072, at least `max_length`.
    pub max_context_length: u32,
}

impl Default for GenParams {
    /// AI Horde's defaults: one generation of 80 tokens with 2048 tokens of context.
    fn default() -> Self {
        GenParams {
            n: 1,
            max_length: 80,
            max_context_length: 2048,
        }
    }
}

/// A worker slower than this, in tokens per second ([`crate::Worker::tokens_per_second`]),
/// serves no request that says `slow_workers: false` (AI Horde's threshold for text).
pub const SLOW_WORKER_TOKENS_PER_SEC: u64 = 2;

pub(crate) const fn yes() -> bool {
    true
}

/// A text-generation request as the client submitted it. Immutable once queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSpec {
    /// Its id, minted by the caller.
    pub id: RequestId,
    /// Who asked (and pays).
    pub owner: UserId,
    /// The prompt; never empty.
    pub prompt: Arc<str>,
    /// Length and count parameters.
    pub params: GenParams,
    /// Sampler and format fields for the worker, as JSON object text. The core carries it and
    /// never reads it.
    pub passthrough: Arc<str>,
    /// Acceptable models; empty means any.
    pub models: Vec<Arc<str>>,
    /// Workers allowed (or, with `worker_blacklist`, refused); empty means no restriction.
    pub workers: Vec<WorkerId>,
    /// Treat `workers` as a deny-list.
    pub worker_blacklist: bool,
    /// Only trusted workers may serve it.
    pub trusted_workers: bool,
    /// The request may produce NSFW text, so only workers accepting NSFW may serve it.
    pub nsfw: bool,
    /// Workers slower than [`SLOW_WORKER_TOKENS_PER_SEC`] may serve it (AI Horde's
    /// `slow_workers`, default true).
    #[serde(default = "crate::request::yes")]
    pub slow_workers: bool,
    /// Workers that declared themselves extra slow may serve it (AI Horde's
    /// `extra_slow_workers`, default false).
    #[serde(default)]
    pub extra_slow_workers: bool,
    /// Only workers whose bridge software the operator validated may serve it (AI Horde's
    /// `validated_backends`, default true; see [`crate::HordeConfig::validated_bridges`]).
    #[serde(default = "crate::request::yes")]
    pub validated_backends: bool,
    /// Each pop takes at most one of its generations, even from a worker that asks for more
    /// (AI Horde's `disable_batching`, default false).
    #[serde(default)]
    pub disable_batching: bool,
    /// When the request would need its cost upfront and its owner does not hold it, the horde
    /// shortens `max_length` until it does not, instead of refusing (AI Horde's
    /// `allow_downgrade`, default false).
    #[serde(default)]
    pub allow_downgrade: bool,
    /// The user of a service account's front-end this request is for (AI Horde's
    /// `proxied_account`), as the service names them; recorded, never interpreted.
    #[serde(default)]
    pub proxied_account: Option<String>,
    /// Where each finished generation is posted (AI Horde's `webhook`); the server checks and
    /// delivers it, the core only carries it.
    #[serde(default)]
    pub webhook: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// An opaque fingerprint of where the request came from (the server hashes the client's
    /// address), for the self-dealing rule; `None` when unknown.
    #[serde(default)]
    pub origin: Option<u64>,
    /// When it ages from in the queue: when it was queued, later if its owner already had
    /// requests waiting (see `Integrity::queue_spacing_secs`). Set by the horde when it is
    /// queued; kept so that a restart puts it back in the same place.
    #[serde(default)]
    pub queue_at: Option<Timestamp>,
}

impl RequestSpec {
    /// A request by `owner` for `prompt` at `now`, with default parameters, any model and any
    /// worker.
    pub fn new(id: RequestId, owner: UserId, prompt: impl Into<Arc<str>>, now: Timestamp) -> Self {
        RequestSpec {
            id,
            owner,
            prompt: prompt.into(),
            params: GenParams::default(),
            passthrough: Arc::from("{}"),
            models: Vec::new(),
            workers: Vec::new(),
            worker_blacklist: false,
            trusted_workers: false,
            nsfw: false,
            slow_workers: true,
            extra_slow_workers: false,
            validated_backends: true,
            disable_batching: false,
            allow_downgrade: false,
            proxied_account: None,
            webhook: None,
            created_at: now,
            origin: None,
            queue_at: None,
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// All `n` generations finished.
    Done,
    /// The client cancelled; finished generations are kept.
    Cancelled,
    /// Too many restarts.
    Faulted,
    /// No progress for too long.
    Expired,
}

/// The mutable part of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestState {
    /// Generations not yet handed to a worker.
    pub waiting: u32,
    /// Generations handed to a worker and being worked on.
    pub processing: u32,
    /// Generations finished.
    pub finished: u32,
    /// Times a generation failed or timed out and went back to waiting.
    pub restarts: u32,
    /// Kudos charged so far.
    pub kudos: Kudos,
    /// The last time something happened to it (queued, started, finished).
    pub last_progress: Timestamp,
    /// How and when it ended, once it has.
    pub closed: Option<(Outcome, Timestamp)>,
}

impl RequestState {
    /// Returns true if and only if the request has not ended.
    pub const fn is_open(&self) -> bool {
        self.closed.is_none()
    }
}

/// The quality of a finished generation, as the worker reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerationState {
    /// A normal generation.
    Ok,
    /// The worker censored its output.
    Censored,
}

impl GenerationState {
    /// Its name on the wire: `ok` or `censored`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GenerationState::Ok => "ok",
            GenerationState::Censored => "censored",
        }
    }
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// The generated text.
    pub text: String,
    /// The seed the worker reports, if any.
    pub seed: Option<String>,
    /// Ok or censored.
    pub state: GenerationState,
    /// Worker metadata, as JSON text, opaque to the core.
    pub metadata: Option<Arc<str>>,
    /// Tokens counted for the reward.
    pub tokens: u32,
    /// What the requester paid and the worker's owner earned.
    pub reward: Kudos,
    /// When it was submitted.
    pub finished_at: Timestamp,
}

impl Generation {
    /// The seed as the API shows it: the worker's when it reported an integer, else 0.
    ///
    /// ```
    /// use horde_core::{Generation, GenerationState, Kudos, Timestamp};
    /// let mut generation = Generation {
    ///     text: "Hi".into(), seed: Some(" 42".into()), state: GenerationState::Ok,
    ///     metadata: None, tokens: 1, reward: Kudos::ZERO, finished_at: Timestamp(0),
    /// };
    /// assert_eq!(generation.seed_number(), 42);
    /// generation.seed = Some("random".into());
    /// assert_eq!(generation.seed_number(), 0);
    /// ```
    pub fn seed_number(&self) -> i64 {
        self.seed
            .as_deref()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Why a job ended without a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortReason {
    /// The worker reported a failure.
    Faulted,
    /// The worker did not submit before the deadline.
    TimedOut,
    /// The client cancelled the request.
    Cancelled,
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Being worked on.
    Processing,
    /// Submitted and paid.
    Done(Generation),
    /// Ended without a generation.
    Aborted(AbortReason),
}

/// One generation of a request handed to one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its id, minted by the caller of `pop`.
    pub id: JobId,
    /// The request it serves.
    pub request: RequestId,
    /// The worker serving it.
    pub worker: WorkerId,
    /// The model the worker serves it with.
    pub model: Arc<str>,
    /// When the worker took it.
    pub started_at: Timestamp,
    /// When it times out if not submitted.
    pub deadline: Timestamp,
    /// Where it stands.
    pub status: JobStatus,
}
