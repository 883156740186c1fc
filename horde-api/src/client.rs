//! A small async client of a horde's v2 API (feature `client`): one method per endpoint, typed
//! in and out, every refusal as a [`ClientError`] carrying the horde's [`ErrorBody`].
//!
//! ```no_run
//! # async fn run() -> Result<(), horde_api::ClientError> {
//! use horde_api::{AsyncRequest, Client};
//!
//! let horde = Client::new("http://127.0.0.1:7001")?.api_key("0000000000");
//! let queued = horde
//!     .generate(&AsyncRequest::prompt("Once upon a time"))
//!     .await?;
//! let status = horde.status(&queued.id).await?;
//! println!("done: {}", status.done);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{
    AsyncAccepted, AsyncRequest, ErrorBody, Heartbeat, ModelStatus, ModifyUser, ModifyWorker,
    Performance, PopAnswer, PopRequest, ProgressAnswer, ProgressRequest, ReferenceReloaded,
    RegisterRequest, Registered, RequestStatus, Reward, SubmitRequest, Totals, TransferRequest,
    Transferred, UserDetails, UserUpdate, WorkerDetails, WorkerUpdateRequest,
};

/// The most bytes of one answer a client reads by default (16 MiB): a horde's largest answer
/// (a status with 20 long generations) is far smaller; an endless answer is cut off.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A horde call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The horde answered with an error status.
    #[error("{status} {}: {}", body.rc, body.message)]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The error body (`rc` empty when the answer had none).
        body: ErrorBody,
        /// Seconds to wait before trying again, when the horde said (`Retry-After`).
        retry_after: Option<u64>,
    },
    /// The horde could not be reached, or its answer broke off.
    #[error("cannot reach the horde at {url}: {cause}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What went wrong, with its causes (e.g. "connection refused").
        cause: String,
    },
    /// The answer is not the JSON this endpoint answers with (is the URL a horde?).
    #[error("{url} did not answer with a horde's JSON (HTTP {status}): {detail}")]
    Unreadable {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// Why it could not be read.
        detail: String,
    },
    /// The answer is larger than the client reads.
    #[error("{url} answered with more than {limit} bytes; the answer was not read")]
    TooLarge {
        /// The URL called.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The URL given is not one a client can call.
    #[error("invalid horde URL {url}: {detail}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is not valid.
        detail: String,
    },
}

impl ClientError {
    /// Returns true if and only if trying again later may succeed: the horde is down,
    /// restarting, overloaded or rate-limiting.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Refused { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            ClientError::Unreadable { status, .. } => status.is_server_error(),
            ClientError::TooLarge { .. } | ClientError::InvalidUrl { .. } => false,
        }
    }

    /// The horde's `rc`, if it refused.
    pub fn rc(&self) -> Option<&str> {
        match self {
            ClientError::Refused { body, .. } => Some(&body.rc),
            _ => None,
        }
    }

    /// The HTTP status, if the horde answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Refused { status, .. } | ClientError::Unreadable { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// `error` and its causes, joined by `: ` (reqwest's own message omits the cause, such as
/// "connection refused").
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A client of one horde, acting with one API key (or none).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `…/api/v2`, without a trailing slash.
    api: Url,
    api_key: Option<String>,
    client_agent: String,
    max_answer_bytes: usize,
}

impl Client {
    /// A client of the horde at `url` (its root, e.g. `https://horde.example`; `/api/v2` is
    /// appended), with a 10 s connect timeout and a 60 s timeout per call.
    pub fn new(url: &str) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("horde-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::InvalidUrl {
                url: url.to_owned(),
                detail: with_causes(&e),
            })?;
        Client::with_http(url, http)
    }

    /// A client of the horde at `url` that calls through `http` (its timeouts, proxy and user
    /// agent).
    pub fn with_http(url: &str, http: reqwest::Client) -> Result<Client, ClientError> {
        let invalid = |detail: String| ClientError::InvalidUrl {
            url: url.to_owned(),
            detail,
        };
        let api = Url::parse(&format!("{}/api/v2", url.trim_end_matches('/')))
            .map_err(|e| invalid(e.to_string()))?;
        if !matches!(api.scheme(), "http" | "https") || api.cannot_be_a_base() {
            return Err(invalid(
                "the URL must start with http:// or https://".into(),
            ));
        }
        Ok(Client {
            http,
            api,
            api_key: None,
            client_agent: concat!("horde-api:", env!("CARGO_PKG_VERSION"), ":none").into(),
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        })
    }

    /// This client, acting with `key` (sent as `apikey`).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Client {
        self.api_key = Some(key.into());
        self
    }

    /// This client, naming itself `agent` (`name:version:contact`) in `Client-Agent`.
    #[must_use]
    pub fn client_agent(mut self, agent: impl Into<String>) -> Client {
        self.client_agent = agent.into();
        self
    }

    /// This client, reading at most `limit` bytes of an answer (default
    /// [`DEFAULT_MAX_ANSWER_BYTES`]).
    #[must_use]
    pub fn max_answer_bytes(mut self, limit: usize) -> Client {
        self.max_answer_bytes = limit;
        self
    }

    /// Returns true if and only if an API key is set.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The horde's API root (`…/api/v2`).
    pub fn api_url(&self) -> &Url {
        &self.api
    }

    /// `GET /status/heartbeat`.
    pub async fn heartbeat(&self) -> Result<Heartbeat, ClientError> {
        self.get(&["status", "heartbeat"]).await
    }

    /// `GET /status/performance`.
    pub async fn performance(&self) -> Result<Performance, ClientError> {
        self.get(&["status", "performance"]).await
    }

    /// `GET /stats/text/totals`.
    pub async fn totals(&self) -> Result<Totals, ClientError> {
        self.get(&["stats", "text", "totals"]).await
    }

    /// `GET /status/models?type=text`.
    pub async fn models(&self) -> Result<Vec<ModelStatus>, ClientError> {
        self.call(
            Method::GET,
            &["status", "models"],
            &[("type", "text")],
            None::<&()>,
            &[],
        )
        .await
    }

    /// `POST /register`: a new user named `alias`; the answer holds its API key.
    pub async fn register(&self, alias: &str) -> Result<Registered, ClientError> {
        let body = RegisterRequest {
            username: alias.to_owned(),
        };
        self.post(&["register"], &body).await
    }

    /// `GET /find_user`: the user this client's key belongs to.
    pub async fn find_user(&self) -> Result<UserDetails, ClientError> {
        self.get(&["find_user"]).await
    }

    /// `GET /users/{id}`.
    pub async fn user(&self, id: u64) -> Result<UserDetails, ClientError> {
        self.get(&["users", &id.to_string()]).await
    }

    /// `GET /users?page=…&sort=…` (`sort`: `kudos` or `age`).
    pub async fn users(&self, page: u32, sort: &str) -> Result<Vec<UserDetails>, ClientError> {
        let page = page.to_string();
        self.call(
            Method::GET,
            &["users"],
            &[("page", &page), ("sort", sort)],
            None::<&()>,
            &[],
        )
        .await
    }

    /// `PUT /users/{id}`.
    pub async fn update_user(
        &self,
        id: u64,
        change: &UserUpdate,
    ) -> Result<ModifyUser, ClientError> {
        self.call(
            Method::PUT,
            &["users", &id.to_string()],
            &[],
            Some(change),
            &[],
        )
        .await
    }

    /// `POST /kudos/transfer`, under `idempotency_key` if given (a retry with the same key
    /// and request is answered as the first was, and moves nothing again).
    pub async fn transfer(
        &self,
        transfer: &TransferRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Transferred, ClientError> {
        let headers: Vec<_> = idempotency_key
            .map(|key| ("Idempotency-Key", key))
            .into_iter()
            .collect();
        self.call(
            Method::POST,
            &["kudos", "transfer"],
            &[],
            Some(transfer),
            &headers,
        )
        .await
    }

    /// `POST /generate/text/async`: queues a request (with `dry_run`, only its estimate).
    pub async fn generate(&self, request: &AsyncRequest) -> Result<AsyncAccepted, ClientError> {
        self.post(&["generate", "text", "async"], request).await
    }

    /// `GET /generate/text/status/{id}`.
    pub async fn status(&self, id: &str) -> Result<RequestStatus, ClientError> {
        self.get(&["generate", "text", "status", id]).await
    }

    /// `DELETE /generate/text/status/{id}`: cancels a request; the answer holds what was
    /// finished.
    pub async fn cancel(&self, id: &str) -> Result<RequestStatus, ClientError> {
        self.call(
            Method::DELETE,
            &["generate", "text", "status", id],
            &[],
            None::<&()>,
            &[],
        )
        .await
    }

    /// `POST /generate/text/pop`: asks for work as a worker.
    pub async fn pop(&self, query: &PopRequest) -> Result<PopAnswer, ClientError> {
        self.post(&["generate", "text", "pop"], query).await
    }

    /// `POST /generate/text/submit`: a job's result; the answer holds the reward.
    pub async fn submit(&self, result: &SubmitRequest) -> Result<Reward, ClientError> {
        self.post(&["generate", "text", "submit"], result).await
    }

    /// `POST /generate/text/progress` (horde's extension): text generated so far for a job.
    pub async fn progress(
        &self,
        progress: &ProgressRequest,
    ) -> Result<ProgressAnswer, ClientError> {
        self.post(&["generate", "text", "progress"], progress).await
    }

    /// `GET /workers?type=text`.
    pub async fn workers(&self) -> Result<Vec<WorkerDetails>, ClientError> {
        self.call(
            Method::GET,
            &["workers"],
            &[("type", "text")],
            None::<&()>,
            &[],
        )
        .await
    }

    /// `GET /workers/{id}`.
    pub async fn worker(&self, id: &str) -> Result<WorkerDetails, ClientError> {
        self.get(&["workers", id]).await
    }

    /// `GET /workers/name/{name}`.
    pub async fn worker_by_name(&self, name: &str) -> Result<WorkerDetails, ClientError> {
        self.get(&["workers", "name", name]).await
    }

    /// `PUT /workers/{id}`.
    pub async fn update_worker(
        &self,
        id: &str,
        change: &WorkerUpdateRequest,
    ) -> Result<ModifyWorker, ClientError> {
        self.call(Method::PUT, &["workers", id], &[], Some(change), &[])
            .await
    }

    /// `POST /admin/model_reference/reload` (administrators).
    pub async fn reload_model_reference(&self) -> Result<ReferenceReloaded, ClientError> {
        self.call(
            Method::POST,
            &["admin", "model_reference", "reload"],
            &[],
            None::<&()>,
            &[],
        )
        .await
    }

    /// A request to `url` with this client's agent and key.
    pub(crate) fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, url)
            .header("Client-Agent", &self.client_agent);
        if let Some(key) = &self.api_key {
            request = request.header("apikey", key);
        }
        request
    }

    async fn get<T: DeserializeOwned>(&self, path: &[&str]) -> Result<T, ClientError> {
        self.call(Method::GET, path, &[], None::<&()>, &[]).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &[&str],
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, &[], Some(body), &[]).await
    }

    /// Calls `method` on the path made of `segments` (each percent-encoded) under `/api/v2`,
    /// with `query`, an optional JSON `body` and extra `headers`; reads the answer as `T`.
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&B>,
        headers: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        let mut url = self.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.request(method, url.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: url.to_string(),
            cause: with_causes(&e),
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok());
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if bytes.len() + chunk.len() > self.max_answer_bytes {
                return Err(ClientError::TooLarge {
                    url: url.to_string(),
                    limit: self.max_answer_bytes,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(refusal(status, &bytes, retry_after));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unreadable {
            url: url.to_string(),
            status,
            detail: e.to_string(),
        })
    }
}

/// The error of an answer with a failing `status` and `body` (our `{"message", "rc"}`, else
/// the start of the text).
pub(crate) fn refusal(status: StatusCode, bytes: &[u8], retry_after: Option<u64>) -> ClientError {
    let body = serde_json::from_slice::<ErrorBody>(bytes)
        .ok()
        .filter(|body| !body.message.is_empty() || !body.rc.is_empty())
        .unwrap_or_else(|| ErrorBody {
            message: String::from_utf8_lossy(bytes).chars().take(200).collect(),
            ..ErrorBody::default()
        });
    ClientError::Refused {
        status,
        body,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_and_get_the_api_root() {
        let client = Client::new("http://127.0.0.1:7001/").unwrap();
        assert_eq!(client.api_url().as_str(), "http://127.0.0.1:7001/api/v2");
        assert!(Client::new("ftp://example.com").is_err());
        assert!(Client::new("not a url").is_err());
    }

    #[test]
    fn causes_are_kept() {
        let inner =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = std::io::Error::other(inner);
        assert!(with_causes(&outer).contains("connection refused"));
    }
}
