//! The horde's worker API as this bridge calls it: pop, submit, and who the key belongs to.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `bridge_agent` this worker reports: `name:version:url`.
pub(crate) const BRIDGE_AGENT: &str = concat!(
    "horde-worker:",
    env!("CARGO_PKG_VERSION"),
    ":https://example.invalid/horde"
);

/// A client of one horde with one key.
#[derive(Debug, Clone)]
pub(crate) struct Horde {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

/// What the worker tells the horde when it asks for work.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PopQuery {
    pub(crate) name: String,
    pub(crate) models: Vec<String>,
    pub(crate) max_length: u32,
    pub(crate) max_context_length: u32,
    pub(crate) priority_usernames: Vec<String>,
    pub(crate) nsfw: bool,
    pub(crate) threads: u32,
    pub(crate) amount: u32,
    pub(crate) bridge_agent: &'static str,
    /// AI Horde skips prompts with these words for the worker; hordes that do not know the
    /// field ignore it, and the worker checks again itself.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) blacklist: Vec<String>,
}

/// One job handed to this worker.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// The job id, to submit with.
    pub(crate) id: String,
    /// The model the horde chose (one this worker advertised).
    pub(crate) model: String,
    /// What to generate: the prompt and the requester's parameters, as the horde sent them.
    pub(crate) payload: Map<String, Value>,
    /// Seconds until the horde gives the job to someone else.
    pub(crate) ttl: Option<u64>,
}

/// The answer to a pop.
#[derive(Debug)]
pub(crate) enum Popped {
    /// Jobs to run (one per id; usually one).
    Jobs(Vec<Job>),
    /// Nothing to do; waiting requests skipped by reason.
    Idle(BTreeMap<String, Value>),
}

/// How a submit ends the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SubmitState {
    /// Generated.
    Ok,
    /// Could not generate: the horde gives the request to another worker.
    Faulted,
}

/// A horde call that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum HordeError {
    /// The horde answered with an error status.
    #[error("{status} {rc}: {message}")]
    Refused {
        status: StatusCode,
        rc: String,
        message: String,
    },
    /// The horde could not be reached, or its answer could not be read.
    #[error("{0}")]
    Unreachable(String),
}

impl HordeError {
    /// Returns true if and only if trying again later may succeed: the horde is down,
    /// restarting, overloaded or rate-limiting.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            HordeError::Unreachable(_) => true,
            HordeError::Refused { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
        }
    }

    /// The horde's `rc`, if it answered.
    pub(crate) fn rc(&self) -> Option<&str> {
        match self {
            HordeError::Refused { rc, .. } => Some(rc),
            HordeError::Unreachable(_) => None,
        }
    }
}

/// The pop answer on the wire.
#[derive(Debug, Deserialize)]
struct PopAnswer {
    #[serde(default)]
    payload: Option<Map<String, Value>>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    ttl: Option<u64>,
    #[serde(default)]
    skipped: Option<BTreeMap<String, Value>>,
}

/// The submit answer.
#[derive(Debug, Deserialize)]
struct Reward {
    reward: f64,
}

/// The user a key belongs to.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct User {
    /// `alias#id`.
    pub(crate) username: String,
    /// Their balance.
    pub(crate) kudos: f64,
}

/// An error body.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    rc: String,
}

impl Horde {
    /// A client of the horde at `base_url` (no trailing slash) acting with `api_key`.
    pub(crate) fn new(base_url: &str, api_key: &str) -> Result<Horde, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("horde-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Horde {
            http,
            base: format!("{base_url}/api/v2"),
            api_key: api_key.to_owned(),
        })
    }

    /// Asks for work.
    pub(crate) async fn pop(&self, query: &PopQuery) -> Result<Popped, HordeError> {
        let answer: PopAnswer = self.call("/generate/text/pop", Some(query)).await?;
        let mut ids = answer.ids;
        if ids.is_empty() {
            ids.extend(answer.id);
        }
        let (Some(payload), Some(model), false) = (answer.payload, answer.model, ids.is_empty())
        else {
            return Ok(Popped::Idle(answer.skipped.unwrap_or_default()));
        };
        let jobs = ids
            .into_iter()
            .map(|id| Job {
                id,
                model: model.clone(),
                payload: payload.clone(),
                ttl: answer.ttl,
            })
            .collect();
        Ok(Popped::Jobs(jobs))
    }

    /// Submits a job's result; returns the kudos earned.
    pub(crate) async fn submit(
        &self,
        id: &str,
        generation: &str,
        state: SubmitState,
        seed: Option<u64>,
    ) -> Result<f64, HordeError> {
        #[derive(Serialize)]
        struct Submit<'a> {
            id: &'a str,
            generation: &'a str,
            state: SubmitState,
            #[serde(skip_serializing_if = "Option::is_none")]
            seed: Option<u64>,
        }
        let body = Submit {
            id,
            generation,
            state,
            seed,
        };
        let reward: Reward = self.call("/generate/text/submit", Some(&body)).await?;
        Ok(reward.reward)
    }

    /// The user this key belongs to.
    pub(crate) async fn find_user(&self) -> Result<User, HordeError> {
        self.call::<(), _>("/find_user", None).await
    }

    /// `POST path` with `body`, or `GET path` without; the answer parsed as `T`.
    async fn call<B: Serialize, T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, HordeError> {
        let url = format!("{}{path}", self.base);
        let request = match body {
            Some(body) => self.http.post(&url).json(body),
            None => self.http.get(&url),
        };
        let response = request
            .header("apikey", &self.api_key)
            .header("Client-Agent", BRIDGE_AGENT)
            .send()
            .await
            .map_err(|e| HordeError::Unreachable(format!("cannot reach the horde: {e}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| HordeError::Unreachable(format!("the horde's answer broke off: {e}")))?;
        if !status.is_success() {
            let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
            let message = if body.message.is_empty() {
                String::from_utf8_lossy(&bytes).chars().take(200).collect()
            } else {
                body.message
            };
            return Err(HordeError::Refused {
                status,
                rc: body.rc,
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            HordeError::Unreachable(format!(
                "the horde's answer to {path} is not understood: {e}"
            ))
        })
    }
}
