//! The horde's HTTP API, as the CLI calls it: JSON in and out, errors turned into
//! [`CliError`]s that say what to do next.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::CliError;
use crate::settings::Settings;

/// An API client for one horde and key.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
}

impl Client {
    /// A client for the settings' horde and key.
    pub(crate) fn new(settings: &Settings) -> Result<Client, CliError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("horde-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Connection(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base: format!("{}/api/v2", settings.url),
            api_key: settings.api_key.clone(),
        })
    }

    /// Returns true if and only if a key is set.
    pub(crate) fn has_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// Calls `method path` with an optional JSON body and extra headers; returns the answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).header(
            "Client-Agent",
            concat!("horde-cli:", env!("CARGO_PKG_VERSION"), ":none"),
        );
        if let Some(key) = &self.api_key {
            request = request.header("apikey", key);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            CliError::Connection(format!(
                "cannot reach the horde at {}: {e}. Check --url (or HORDE_URL) and that the \
                 server is running.",
                self.base.trim_end_matches("/api/v2")
            ))
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CliError::Connection(format!("the horde's answer broke off: {e}")))?;
        let value: Value = serde_json::from_str(&text).map_err(|_| {
            CliError::Connection(format!(
                "{url} did not answer with the horde's JSON (HTTP {status}); is --url a horde?"
            ))
        })?;
        if status.is_success() {
            return Ok(value);
        }
        let rc = value["rc"].as_str().unwrap_or("Error").to_owned();
        let message = value["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned);
        Err(CliError::Server {
            status: status.as_u16(),
            hint: hint(status, &rc, self.has_key()),
            rc,
            message,
        })
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None, &[]).await
    }

    /// `POST path` with `body`.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    /// `PUT path` with `body`.
    pub(crate) async fn put(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call(Method::PUT, path, Some(body), &[]).await
    }

    /// `DELETE path`.
    pub(crate) async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::DELETE, path, None, &[]).await
    }
}

/// What to do next after an error, where we can tell.
fn hint(status: StatusCode, rc: &str, has_key: bool) -> String {
    let text = match (status.as_u16(), rc) {
        (401, _) if has_key => {
            "the API key is not valid on this horde: check --api-key, HORDE_API_KEY or the \
             profile in your config file (`horde-cli config path`)"
        }
        (401, _) | (_, "AnonForbidden" | "AnonForbiddenWorker" | "KudosTransferFromAnon") => {
            "this needs your API key: pass --api-key, set HORDE_API_KEY, or save it with \
             `horde-cli register NAME --save`"
        }
        (_, "NotAdmin") => "only the horde's administrators may do this",
        (_, "UserNotFound") => "users are named alias#id, as `horde-cli users list` shows them",
        (_, "WorkerNotFound") => "`horde-cli workers list` shows the workers",
        (_, "TooManyPrompts") => "wait for your open requests to finish, or cancel one",
        (_, "KudosTransferNotEnough") => "`horde-cli balance` shows what you hold",
        (_, "RateLimited") => "try again in a minute",
        (503, _) => "the horde is unavailable; try again shortly",
        _ => "",
    };
    if text.is_empty() {
        String::new()
    } else {
        format!("\nhint: {text}")
    }
}
