//! The text-generation server beside the worker: what it serves, and generating with it.
//! One module per API; this one owns what they share.

mod events;
mod fit;
mod kobold;
mod openai;
mod stops;

use std::time::Duration;

use horde_api::Payload;
use serde_json::{Map, Value};

pub(crate) use self::kobold::Load;
use crate::settings::BackendKind;

/// What the backend reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackendInfo {
    /// The model it has loaded, as it names it.
    pub(crate) model: String,
    /// The most tokens it generates, if it says.
    pub(crate) max_length: Option<u32>,
    /// The most tokens of context it takes, if it says.
    pub(crate) max_context_length: Option<u32>,
    /// What software it is (`KoboldCpp 1.80`, `KoboldAI`, `OpenAI-compatible`).
    pub(crate) software: String,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generated {
    /// The text.
    pub(crate) text: String,
    /// Tokens generated, if the backend counts them.
    pub(crate) tokens: Option<u32>,
    /// The seed it generated with, when the worker chose one.
    pub(crate) seed: Option<u32>,
}

/// The text of a generation so far, as the backend streams it.
pub(crate) type Progress = tokio::sync::watch::Sender<String>;

/// Why the backend did not generate.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum BackendError {
    /// It is busy with other work (503 / 429): try again shortly, not a failure.
    #[error("the backend is busy")]
    Busy,
    /// It cannot be reached.
    #[error("cannot reach the backend: {0}")]
    Unreachable(String),
    /// It answered with an error, or with something that is not a generation.
    #[error("{0}")]
    Failed(String),
    /// It refused this job (a 4xx other than busy or timeout: a prompt over its context, a
    /// field it does not take): trying again cannot succeed, so the job is faulted at once.
    #[error("{0}")]
    Refused(String),
}

/// A backend of either kind.
#[derive(Debug)]
pub(crate) enum Backend {
    /// The KoboldAI API.
    Kobold(kobold::Kobold),
    /// OpenAI-compatible completions.
    OpenAi(openai::OpenAi),
}

impl Backend {
    /// A backend of `kind` at `base_url`.
    pub(crate) fn new(kind: BackendKind, base_url: &str) -> Result<Backend, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("horde-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(match kind {
            BackendKind::Kobold => Backend::Kobold(kobold::Kobold::new(http, base_url)),
            BackendKind::Openai => Backend::OpenAi(openai::OpenAi::new(http, base_url)),
        })
    }

    /// Asks the backend what it serves and its limits (within [`HEALTH_TIMEOUT`]).
    pub(crate) async fn probe(&self) -> Result<BackendInfo, BackendError> {
        within(HEALTH_TIMEOUT, async {
            match self {
                Backend::Kobold(kobold) => kobold.probe().await,
                Backend::OpenAi(openai) => openai.probe().await,
            }
        })
        .await
    }

    /// A cheap check that the backend answers (within [`HEALTH_TIMEOUT`]).
    pub(crate) async fn alive(&self) -> Result<(), BackendError> {
        within(HEALTH_TIMEOUT, async {
            match self {
                Backend::Kobold(kobold) => kobold.alive().await,
                Backend::OpenAi(openai) => openai.alive().await,
            }
        })
        .await
    }

    /// How busy the backend is, where it says (KoboldCpp), within [`HEALTH_TIMEOUT`].
    pub(crate) async fn load(&self) -> Option<Load> {
        match self {
            Backend::Kobold(kobold) => tokio::time::timeout(HEALTH_TIMEOUT, kobold.load())
                .await
                .ok()
                .flatten(),
            Backend::OpenAi(_) => None,
        }
    }

    /// Generates for a job's `payload`; `genkey` names the job to the backend so that
    /// [`Backend::abort`] can stop it. Where the backend streams (KoboldCpp, OpenAI-compatible
    /// servers), the text so far is kept in `progress` as it arrives.
    pub(crate) async fn generate(
        &self,
        payload: &Payload,
        genkey: &str,
        progress: &Progress,
    ) -> Result<Generated, BackendError> {
        match self {
            Backend::Kobold(kobold) => kobold.generate(payload, genkey, progress).await,
            Backend::OpenAi(openai) => openai.generate(payload, Some(progress)).await,
        }
    }

    /// Asks the backend to stop the generation named `genkey`, where it can; errors are
    /// ignored (the job is being given up anyway).
    pub(crate) async fn abort(&self, genkey: &str) {
        if let Backend::Kobold(kobold) = self {
            // A backend that hangs must not hold a worker that is stopping.
            if tokio::time::timeout(HEALTH_TIMEOUT, kobold.abort(genkey))
                .await
                .is_err()
            {
                tracing::debug!("the backend's abort did not answer in time");
            }
        }
    }
}

/// How long a probe or health check may take: a backend that accepts connections and never
/// answers (a frozen KoboldCpp) counts as not answering after this, instead of holding the
/// worker (and its stop on SIGTERM) forever.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// `call` within `limit`, or the backend is [`BackendError::Unreachable`].
async fn within<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(BackendError::Unreachable(format!(
            "the backend did not answer within {} s",
            limit.as_secs()
        )))
    })
}

/// The most bytes of an answer that is not a generation (a model list, a config value).
const INFO_MAX_BYTES: usize = 1024 * 1024;
/// The most bytes of an error answer the worker reads (it shows the first 300 characters).
const ERROR_MAX_BYTES: usize = 64 * 1024;
/// Tokens generated when a payload does not say (the horde's default).
pub(super) const DEFAULT_MAX_LENGTH: u32 = 80;

/// The most bytes a generation's answer (JSON, or a stream of events) may take for a job of
/// `max_length` tokens: 1 KiB per token (a token is a few bytes of text; JSON escapes and a
/// stream's framing around each token multiply that) and 64 KiB more. A backend that sends
/// more is cut off: its answer is not held, let alone submitted.
pub(crate) fn generation_cap(max_length: u32) -> usize {
    let tokens = if max_length == 0 {
        DEFAULT_MAX_LENGTH
    } else {
        max_length
    };
    64 * 1024 + tokens as usize * 1024
}

/// Reads `response`'s body, at most `cap` bytes of it.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, BackendError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        BackendError::Failed(format!("the backend's answer broke off: {}", causes(&e)))
    })? {
        if body.len() + chunk.len() > cap {
            return Err(BackendError::Failed(format!(
                "the backend's answer went on beyond {} KiB; it is not read further",
                cap / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends `request` and reads a JSON answer that is not a generation (at most
/// [`INFO_MAX_BYTES`]), sorting failures into [`BackendError`]s.
async fn call_json(request: reqwest::RequestBuilder) -> Result<Value, BackendError> {
    call_json_within(request, INFO_MAX_BYTES).await
}

/// Sends `request` and reads a JSON answer of at most `cap` bytes, sorting failures into
/// [`BackendError`]s.
async fn call_json_within(
    request: reqwest::RequestBuilder,
    cap: usize,
) -> Result<Value, BackendError> {
    let response = request.send().await.map_err(send_failure)?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed_answer(response).await);
    }
    let bytes = read_capped(response, cap).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| BackendError::Failed(format!("the backend's answer is not JSON: {e}")))
}

/// The error of an answer with a failing status, from its first bytes.
async fn failed_answer(response: reqwest::Response) -> BackendError {
    let status = response.status();
    let body = read_capped(response, ERROR_MAX_BYTES)
        .await
        .unwrap_or_default();
    sorted_failure(status, &body)
}

/// `error` with its causes ("connection refused", not only "error sending request").
fn causes(error: &reqwest::Error) -> String {
    horde_api::with_causes(error)
}

/// The error of a request that got no answer: unreachable (no connection, a timeout), or an
/// answer that broke off.
fn send_failure(e: reqwest::Error) -> BackendError {
    if e.is_connect() || e.is_timeout() {
        BackendError::Unreachable(causes(&e))
    } else {
        BackendError::Failed(format!("the backend's answer broke off: {}", causes(&e)))
    }
}

/// The error of an answer with a failing `status` and `body`: busy (503, 429), refused (another
/// 4xx but 408: this job cannot succeed), or failed.
fn sorted_failure(status: reqwest::StatusCode, body: &[u8]) -> BackendError {
    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        return BackendError::Busy;
    }
    let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
    let message = format!("the backend answered {status}: {text}");
    if status.is_client_error() && status != reqwest::StatusCode::REQUEST_TIMEOUT {
        return BackendError::Refused(message);
    }
    BackendError::Failed(message)
}

/// A field of the payload as a whole number (the horde may send `100` or `100.0`).
fn whole(payload: &Map<String, Value>, key: &str) -> Option<u64> {
    let value = payload.get(key)?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
            .map(|f| f as u64)
    })
}

/// The seed to generate with: the requester's `sampler_seed` when the horde passes one, else a
/// random one per job — KoboldCpp seeds from the clock in whole seconds, so the generations of
/// one request (`n` > 1) started in the same second would otherwise be the same text. Below
/// 2^31: KoboldAI reads it as a C int.
pub(super) fn seed_for(payload: &Payload) -> Result<u32, BackendError> {
    let from_extra = || {
        payload
            .extra
            .get("sampler_seed")
            .and_then(Value::as_u64)
            .and_then(|seed| u32::try_from(seed).ok())
    };
    if let Some(seed) = payload
        .samplers
        .sampler_seed
        .or_else(from_extra)
        .filter(|&seed| seed <= i32::MAX as u32)
    {
        return Ok(seed);
    }
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|e| BackendError::Failed(format!("no randomness: {e}")))?;
    Ok(u32::from_le_bytes(bytes) & 0x7FFF_FFFF)
}
