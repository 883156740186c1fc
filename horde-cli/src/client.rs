//! The horde's HTTP API, as the CLI calls it: [`horde_api::Client`] (the typed wire every part
//! of horde shares), with its errors turned into [`CliError`]s that say what to do next.

use std::future::Future;
use std::time::Duration;

use horde_api::{ClientError, StatusCode};

use crate::error::CliError;
use crate::settings::Settings;

/// An API client for one horde and key.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    api: horde_api::Client,
    url: String,
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
        let mut api = horde_api::Client::with_http(&settings.url, http)
            .map_err(|e| CliError::Usage(format!("{e}; check --url (or HORDE_URL)")))?
            .client_agent(concat!("horde-cli:", env!("CARGO_PKG_VERSION"), ":none"));
        if let Some(key) = &settings.api_key {
            api = api.api_key(key.clone());
        }
        Ok(Client {
            api,
            url: settings.url.clone(),
        })
    }

    /// Returns true if and only if a key is set.
    pub(crate) fn has_key(&self) -> bool {
        self.api.has_api_key()
    }

    /// The typed client, for [`Client::ask`].
    pub(crate) fn api(&self) -> &horde_api::Client {
        &self.api
    }

    /// Awaits a call of [`Client::api`], turning its error into one that says what to do.
    pub(crate) async fn ask<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, CliError> {
        call.await.map_err(|e| self.explain(e))
    }

    pub(crate) fn explain(&self, error: ClientError) -> CliError {
        match error {
            ClientError::Refused { status, body, .. } => {
                let rc = if body.rc.is_empty() {
                    "Error".to_owned()
                } else {
                    body.rc.into_owned()
                };
                let message = if body.message.is_empty() {
                    format!("HTTP {status}")
                } else {
                    body.message
                };
                CliError::Server {
                    status: status.as_u16(),
                    hint: hint(status, &rc, self.has_key()),
                    rc,
                    message,
                }
            }
            ClientError::Unreachable { cause, .. } => CliError::Connection(format!(
                "cannot reach the horde at {}: {cause}. Check --url (or HORDE_URL) and that the \
                 server is running.",
                self.url
            )),
            ClientError::Unreadable { url, status, .. } => CliError::Connection(format!(
                "{url} did not answer with the horde's JSON (HTTP {status}); is --url a horde?"
            )),
            other => CliError::Connection(other.to_string()),
        }
    }
}

/// A refusal of `GET /find_user` with the hint a wrong key needs: the horde answers a key
/// nobody has with `404 UserNotFound` there (as AI Horde does), not with 401.
pub(crate) fn unknown_key(error: CliError) -> CliError {
    match error {
        CliError::Server {
            status,
            rc,
            message,
            ..
        } if rc == "UserNotFound" || rc == "InvalidAPIKey" => CliError::Server {
            status,
            rc,
            message,
            hint: "\nhint: the API key is not valid on this horde: check --api-key, \
                   HORDE_API_KEY or the profile in your config file (`horde-cli config path`)"
                .into(),
        },
        other => other,
    }
}

/// What to do next after an error, where we can tell.
pub(crate) fn hint(status: StatusCode, rc: &str, has_key: bool) -> String {
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
