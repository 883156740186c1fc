//! `Config`: how the server runs — listen address, database, registration, administrators,
//! proxies, connection limits and every rule of the core — and reading it from a TOML file.
//!
//! Precedence: command-line flags, then environment variables, then the file, then the
//! defaults. `horde-server --print-config` prints the effective configuration in the file's
//! format, so a full file can start from it. Unknown keys are an error, so a typo does not
//! silently leave a default in place.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use horde_core::HordeConfig;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::http::HttpConfig;

/// How the server runs. `Default` is what `horde-server` with no arguments uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:7001`.
    pub listen: SocketAddr,
    /// The SQLite database file. Default `horde.sqlite`.
    pub db: PathBuf,
    /// Most pages (of 4 KiB) the database may grow to; absent (the default) is no cap. At the
    /// cap, commits fail and the server stops as when the disk is full (see
    /// docs/operations.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_db_pages: Option<u32>,
    /// The horde's public base URL (`https://horde.example.org`): OAuth callbacks are built
    /// on it, and session cookies are `Secure` when it is https. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Whether `POST /api/v2/register` is open. Default true.
    pub registration: bool,
    /// Registrations allowed per IP address per minute. Default 10.
    pub registrations_per_minute: u32,
    /// Transfers a user may send per minute. Default 10.
    pub transfers_per_minute: u32,
    /// Transfers that may be sent from one IP address per minute (all users). Default 30.
    pub transfers_per_minute_per_ip: u32,
    /// Administrators as `alias#id` usernames (besides those made with `create-admin`). Both
    /// parts must match a user: a typo in the id does not make someone else an administrator.
    pub admins: Vec<String>,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` header is believed
    /// for the client's address (used by rate limits). Default none: the peer's address.
    pub trusted_proxies: Vec<IpNet>,
    /// A model reference file (TOML `[[model]]` entries) added to the default one; reloaded on
    /// SIGHUP or `POST /api/v2/admin/model_reference/reload`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_reference: Option<PathBuf>,
    /// Use only `model_reference`, without the default reference. Default false.
    pub model_reference_replaces_default: bool,
    /// The check prompts of spot checks (TOML `[[canary]]` entries with a `prompt`), instead
    /// of the shipped ones; reloaded with the model reference. Default: the shipped list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canaries: Option<PathBuf>,
    /// Connection limits and timeouts.
    pub http: HttpConfig,
    /// Sign-in with GitHub, Discord or Google on the web pages. Default: none.
    pub oauth: OAuthConfig,
    /// Core rules and limits.
    pub horde: HordeConfig,
    /// How webhooks are delivered.
    pub webhooks: WebhookConfig,
    /// What `GET /api/v2/status/news` announces (`[[news]]` entries: `date_published`,
    /// `importance`, `newspiece`, optional `title`, `tags`, `more_info_urls`), newest first.
    /// Default none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub news: Vec<horde_api::NewsPiece>,
}

/// How webhooks are delivered (`[webhooks]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Post to loopback, private and link-local addresses too (a horde whose clients live on
    /// its own network). Default false: such targets are refused.
    pub allow_private: bool,
    /// Most deliveries waiting at once; a generation finished beyond that is not posted (and
    /// logged). Default 10,000.
    pub max_pending: usize,
    /// Most deliveries in flight at once. Default 8.
    pub concurrency: usize,
    /// Seconds one attempt may take. Default 10.
    pub timeout_secs: u64,
    /// Seconds before the first retry; each retry waits twice as long. Default 5.
    pub retry_initial_secs: u64,
    /// Longest wait between retries, in seconds. Default 600.
    pub retry_max_secs: u64,
    /// A delivery not made this many seconds after its generation finished is given up.
    /// Default 86,400 (a day).
    pub max_age_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: false,
            max_pending: 10_000,
            concurrency: 8,
            timeout_secs: 10,
            retry_initial_secs: 5,
            retry_max_secs: 600,
            max_age_secs: 86_400,
        }
    }
}

/// The OAuth providers people may sign in with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    /// GitHub (`--oauth-github-client-id`, `--oauth-github-client-secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<OAuthProvider>,
    /// Discord (`--oauth-discord-client-id`, `--oauth-discord-client-secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discord: Option<OAuthProvider>,
    /// Google (`--oauth-google-client-id`, `--oauth-google-client-secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google: Option<OAuthProvider>,
}

/// One OAuth application. The endpoints default to the provider's own; they can be replaced
/// (tests, GitHub Enterprise) with `HORDE_OAUTH_<PROVIDER>_{AUTH,TOKEN,USER}_URL`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthProvider {
    /// The application's client id.
    pub client_id: String,
    /// Its client secret (never printed by `--print-config`).
    #[serde(default, skip_serializing)]
    pub client_secret: String,
    /// The authorize endpoint, if not the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    /// The token endpoint, if not the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// The user endpoint (GitHub's `/user`, Discord's `/users/@me`, Google's OpenID Connect
    /// `userinfo`), if not the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7001)),
            db: PathBuf::from("horde.sqlite"),
            max_db_pages: None,
            public_url: None,
            registration: true,
            registrations_per_minute: 10,
            transfers_per_minute: 10,
            transfers_per_minute_per_ip: 30,
            admins: Vec::new(),
            trusted_proxies: Vec::new(),
            model_reference: None,
            model_reference_replaces_default: false,
            canaries: None,
            http: HttpConfig::default(),
            oauth: OAuthConfig::default(),
            horde: HordeConfig::default(),
            news: Vec::new(),
            webhooks: WebhookConfig::default(),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a configuration (unknown keys included).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// A setting's value is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads a configuration file; keys it does not set keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The configuration as TOML, in the file's format.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// Checks the values no type can check.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for admin in &self.admins {
            let valid = admin
                .rsplit_once('#')
                .is_some_and(|(alias, id)| !alias.is_empty() && id.parse::<u64>().is_ok());
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "admin {admin:?} is not alias#id"
                )));
            }
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "public_url {url:?} must start with http:// or https://"
                )));
            }
        }
        if self.http.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "http.max_connections must be at least 1".into(),
            ));
        }
        let on_postgres = matches!(
            crate::store::Database::of(&self.db),
            crate::store::Database::Postgres(_)
        );
        if on_postgres && self.max_db_pages.is_some() {
            return Err(ConfigError::Invalid(
                "max_db_pages caps a SQLite file; on PostgreSQL set a quota in the database".into(),
            ));
        }
        Ok(())
    }

    /// Returns true if and only if `peer` is one of the trusted proxies.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_cap_on_postgres_is_refused() {
        let config = Config {
            db: PathBuf::from("postgres://horde@db/horde"),
            max_db_pages: Some(100),
            ..Config::default()
        };
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(m)) if m.contains("SQLite")));
        let sqlite = Config {
            max_db_pages: Some(100),
            ..Config::default()
        };
        assert!(sqlite.validate().is_ok());
    }

    #[test]
    fn the_defaults_print_and_read_back_and_unknown_keys_are_errors() {
        let printed = Config::default().to_toml();
        let read: Config = toml::from_str(&printed).expect("printed config parses");
        assert_eq!(read, Config::default());
        assert!(printed.contains("[horde.economy]"), "{printed}");
        assert!(printed.contains("[horde.limits]"), "{printed}");
        let typo = toml::from_str::<Config>("registration_per_minute = 3");
        assert!(typo.is_err());
        let nested = toml::from_str::<Config>("[horde.economy]\ncontext_basis = \"prompt\"\n")
            .expect("economy settings");
        assert_eq!(
            nested.horde.economy.context_basis,
            horde_core::ContextBasis::Prompt
        );
    }
}
