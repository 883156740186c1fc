//! The horde as this bridge sees it: pop, submit, and who the key belongs to, through
//! [`horde_api::Client`] (the typed wire every part of horde shares).

use std::collections::BTreeMap;
use std::time::Duration;

use horde_api::{
    Client, ClientError, Payload, PopRequest, ProgressAnswer, ProgressRequest, SubmitRequest,
    UserDetails, WorkerDetails,
};
use horde_core::SubmitState;

/// The `bridge_agent` this worker reports: `name:version:url`, as AI Horde parses it. The URL is
/// the workspace's `repository` (the root `Cargo.toml`), which stays unset — an empty third
/// part — until the project has a public home: no made-up address reaches a horde's pages.
pub(crate) const BRIDGE_AGENT: &str = concat!(
    "horde-worker:",
    env!("CARGO_PKG_VERSION"),
    ":",
    env!("CARGO_PKG_REPOSITORY")
);

/// The most bytes of a horde's answer the worker reads (a pop holds at most a 400,000-character
/// prompt with its parameters): an endless answer is cut off instead of filling memory.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// One job handed to this worker.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// The job id, to submit with.
    pub(crate) id: String,
    /// The model the horde chose (one this worker advertised).
    pub(crate) model: String,
    /// What to generate: the prompt and the requester's parameters, as the horde sent them.
    pub(crate) payload: Payload,
    /// Seconds until the horde gives the job to someone else.
    pub(crate) ttl: Option<u64>,
}

/// The answer to a pop.
#[derive(Debug)]
pub(crate) enum Popped {
    /// Jobs to run (one per id; usually one).
    Jobs(Vec<Job>),
    /// Nothing to do; waiting requests skipped by reason.
    Idle(BTreeMap<String, u64>),
}

/// A client of one horde with one key.
#[derive(Debug, Clone)]
pub(crate) struct Horde {
    client: Client,
}

impl Horde {
    /// A client of the horde at `base_url` (no trailing slash) acting with `api_key`.
    pub(crate) fn new(base_url: &str, api_key: &str) -> Result<Horde, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("horde-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::InvalidUrl {
                url: base_url.to_owned(),
                detail: horde_api::with_causes(&e),
            })?;
        let client = Client::with_http(base_url, http)?
            .api_key(api_key)
            .client_agent(BRIDGE_AGENT)
            .max_answer_bytes(MAX_ANSWER_BYTES);
        Ok(Horde { client })
    }

    /// Asks for work.
    pub(crate) async fn pop(&self, query: &PopRequest) -> Result<Popped, ClientError> {
        let answer = self.client.pop(query).await?;
        let mut ids = answer.ids;
        if ids.is_empty() {
            ids.extend(answer.id);
        }
        let (Some(payload), Some(model), false) =
            (answer.payload.job(), answer.model, ids.is_empty())
        else {
            let skipped = answer
                .skipped
                .into_iter()
                .map(|(reason, count)| (reason.into_owned(), count))
                .collect();
            return Ok(Popped::Idle(skipped));
        };
        let jobs = ids
            .into_iter()
            .map(|id| Job {
                id,
                model: model.to_string(),
                payload: payload.clone(),
                ttl: answer.ttl,
            })
            .collect();
        Ok(Popped::Jobs(jobs))
    }

    /// Submits a job's result; returns the kudos earned and, when it is nothing because of a
    /// rule, the horde's reason (horde's extension; other hordes say nothing).
    pub(crate) async fn submit(
        &self,
        id: &str,
        generation: &str,
        state: SubmitState,
        seed: Option<u32>,
    ) -> Result<(f64, Option<String>), ClientError> {
        let id = self.job_id(id)?;
        let result = SubmitRequest {
            id,
            generation: Some(generation.to_owned()),
            state: Some(state),
            seed: seed.map(serde_json::Value::from),
            ..SubmitRequest::default()
        };
        let reward = self.client.submit(&result).await?;
        Ok((reward.reward.as_f64(), reward.unpaid_reason))
    }

    /// Posts text generated so far for job `id` (horde's extension).
    pub(crate) async fn progress(
        &self,
        id: &str,
        offset: u64,
        text: &str,
    ) -> Result<ProgressAnswer, ClientError> {
        let id = self.job_id(id)?;
        self.client
            .progress(&ProgressRequest {
                id,
                offset,
                text: text.to_owned(),
            })
            .await
    }

    fn job_id(&self, id: &str) -> Result<uuid::Uuid, ClientError> {
        id.parse().map_err(|_| ClientError::Unreadable {
            url: self.client.api_url().to_string(),
            status: horde_api::StatusCode::OK,
            detail: format!("the horde gave a job id that is not a UUID: {id}"),
        })
    }

    /// The worker of this horde named `name`, `None` if there is none.
    pub(crate) async fn worker_named(
        &self,
        name: &str,
    ) -> Result<Option<WorkerDetails>, ClientError> {
        match self.client.worker_by_name(name).await {
            Ok(worker) => Ok(Some(worker)),
            Err(e) if e.rc() == Some("WorkerNotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user this key belongs to.
    pub(crate) async fn find_user(&self) -> Result<UserDetails, ClientError> {
        self.client.find_user().await
    }
}
