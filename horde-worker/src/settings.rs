//! Settings: the command line, the environment and the config file, merged with flags over
//! environment over file over defaults, and checked before anything starts.
//!
//! ```toml
//! horde_url = "https://horde.example.org"
//! api_key = "…"
//! name = "alice's 3090"
//! backend_url = "http://127.0.0.1:5001"
//! backend = "kobold"
//! threads = 1
//! priority_usernames = ["bob#2"]
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Deserialize;

use crate::error::WorkerError;

/// Where the worker looks for its horde when nothing says otherwise.
const DEFAULT_HORDE_URL: &str = "http://127.0.0.1:7001";
/// The most parallel jobs a worker may run (the horde's own limit).
const MAX_THREADS: u32 = 50;
/// The longest worker name the horde accepts.
const MAX_NAME_CHARS: usize = 100;

/// The kind of text-generation server beside the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackendKind {
    /// The KoboldAI API (KoboldAI United, KoboldCpp): `/api/v1/generate`.
    Kobold,
    /// OpenAI-compatible completions (llama.cpp server, vLLM, Ollama, llama-cpp-python):
    /// `/v1/completions`.
    Openai,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// Serve a horde with the text-generation server beside you, and earn kudos for it.
///
/// Every setting can also come from the environment (the variable named in brackets) or from
/// a TOML file given with --config (the same names in snake_case: `backend_url = "..."`).
/// Flags win over the environment, which wins over the file.
#[derive(Debug, Parser)]
#[command(name = "horde-worker", version)]
pub(crate) struct Cli {
    /// The horde's base URL [default: http://127.0.0.1:7001].
    #[arg(long, env = "HORDE_URL", value_name = "URL")]
    pub(crate) horde_url: Option<String>,
    /// Your API key on the horde: kudos earned go to its user.
    #[arg(
        long,
        env = "HORDE_API_KEY",
        hide_env_values = true,
        allow_hyphen_values = true,
        value_name = "KEY"
    )]
    pub(crate) api_key: Option<String>,
    /// The worker's name, unique on the horde; the first pop with a new name creates it.
    #[arg(long, env = "HORDE_WORKER_NAME", value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// The backend's base URL, e.g. http://127.0.0.1:5001 (KoboldCpp) or
    /// http://127.0.0.1:8080/v1 (OpenAI-compatible; with or without /v1).
    #[arg(long, env = "HORDE_BACKEND_URL", value_name = "URL")]
    pub(crate) backend_url: Option<String>,
    /// Which API the backend speaks [default: kobold].
    #[arg(long, env = "HORDE_BACKEND", value_enum)]
    pub(crate) backend: Option<BackendKind>,
    /// The model name to advertise [default: the one the backend reports].
    #[arg(long, env = "HORDE_MODEL", value_name = "NAME")]
    pub(crate) model: Option<String>,
    /// Most tokens to generate per job [default: the backend's, else 512]; never more than
    /// the backend reports.
    #[arg(long, env = "HORDE_MAX_LENGTH", value_name = "N")]
    pub(crate) max_length: Option<u32>,
    /// Most tokens of context per job [default: the backend's, else 2048]; never more than
    /// the backend reports.
    #[arg(long, env = "HORDE_MAX_CONTEXT_LENGTH", value_name = "N")]
    pub(crate) max_context_length: Option<u32>,
    /// Jobs run in parallel, 1–50 [default: 1]. Never more than the backend can queue.
    #[arg(long, env = "HORDE_THREADS", value_name = "N")]
    pub(crate) threads: Option<u32>,
    /// Users served first on this worker, as alias#id, comma-separated.
    #[arg(
        long,
        env = "HORDE_PRIORITY_USERNAMES",
        value_delimiter = ',',
        value_name = "USERS"
    )]
    pub(crate) priority_usernames: Option<Vec<String>>,
    /// Accept requests marked NSFW [default: false].
    #[arg(long, env = "HORDE_NSFW", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL")]
    pub(crate) nsfw: Option<bool>,
    /// Declare the worker extra slow (a CPU or an old card): it then gets only the requests
    /// whose senders allow extra slow workers [default: false].
    #[arg(long, env = "HORDE_EXTRA_SLOW", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL")]
    pub(crate) extra_slow: Option<bool>,
    /// Refuse prompts that contain any of these words (case-insensitive), comma-separated.
    #[arg(
        long,
        env = "HORDE_BLACKLIST",
        value_delimiter = ',',
        value_name = "WORDS"
    )]
    pub(crate) blacklist: Option<Vec<String>>,
    /// Tries of one job on the backend before it is submitted as faulted [default: 3].
    #[arg(long, env = "HORDE_BACKEND_RETRIES", value_name = "N")]
    pub(crate) backend_retries: Option<u32>,
    /// On KoboldCpp: take no horde job while the backend is used by someone else (its owner,
    /// locally) and for this many seconds after; 0 never yields [default: 20].
    #[arg(long, env = "HORDE_YIELD_SECS", value_name = "SECS")]
    pub(crate) yield_secs: Option<u64>,
    /// Seconds between summary lines [default: 300].
    #[arg(long, env = "HORDE_SUMMARY_SECS", value_name = "SECS")]
    pub(crate) summary_secs: Option<u64>,
    /// Log lines as text or as JSON objects [default: text].
    #[arg(long, env = "HORDE_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<LogFormat>,
    /// A TOML file with any of these settings.
    #[arg(long, env = "HORDE_WORKER_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Check the backend and the horde key, print what would be served, and exit.
    #[arg(long)]
    pub(crate) check: bool,
}

/// The config file: every setting optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSettings {
    horde_url: Option<String>,
    api_key: Option<String>,
    name: Option<String>,
    backend_url: Option<String>,
    backend: Option<BackendKind>,
    model: Option<String>,
    max_length: Option<u32>,
    max_context_length: Option<u32>,
    threads: Option<u32>,
    priority_usernames: Option<Vec<String>>,
    nsfw: Option<bool>,
    extra_slow: Option<bool>,
    blacklist: Option<Vec<String>>,
    backend_retries: Option<u32>,
    yield_secs: Option<u64>,
    summary_secs: Option<u64>,
    log_format: Option<LogFormat>,
}

impl FileSettings {
    /// Reads and parses `path`.
    fn load(path: &Path) -> Result<FileSettings, WorkerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            WorkerError::Config(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ))
        })?;
        toml::from_str(&text).map_err(|e| {
            WorkerError::Config(format!(
                "the config file {} is not valid: {e}",
                path.display()
            ))
        })
    }
}

/// The settings the worker runs with, checked.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The horde's base URL, without a trailing slash.
    pub(crate) horde_url: String,
    /// The owner's API key.
    pub(crate) api_key: String,
    /// Where the key came from when horde-cli saved it (`profile "home" of …`).
    pub(crate) key_source: Option<String>,
    /// The worker's name.
    pub(crate) name: String,
    /// The backend's base URL, without a trailing slash.
    pub(crate) backend_url: String,
    /// The backend's API.
    pub(crate) backend: BackendKind,
    /// The model name to advertise instead of the backend's.
    pub(crate) model: Option<String>,
    /// The configured generation limit, if any.
    pub(crate) max_length: Option<u32>,
    /// The configured context limit, if any.
    pub(crate) max_context_length: Option<u32>,
    /// Parallel jobs.
    pub(crate) threads: u32,
    /// Users served first.
    pub(crate) priority_usernames: Vec<String>,
    /// Accepts NSFW requests.
    pub(crate) nsfw: bool,
    /// Declared extra slow.
    pub(crate) extra_slow: bool,
    /// Words that make a prompt refused, lowercased.
    pub(crate) blacklist: Vec<String>,
    /// Tries of one job on the backend.
    pub(crate) backend_retries: u32,
    /// How long the worker yields a KoboldCpp used by someone else (zero: never).
    pub(crate) yield_for: Duration,
    /// Time between summary lines.
    pub(crate) summary_every: Duration,
    /// How log lines are written.
    pub(crate) log_format: LogFormat,
    /// Only check, then exit.
    pub(crate) check: bool,
}

impl Settings {
    /// Merges the command line (with the environment, which clap has read) over the config
    /// file over the defaults, and checks every value.
    pub(crate) fn resolve(cli: Cli) -> Result<Settings, WorkerError> {
        Settings::resolve_with(cli, crate::saved_key::saved_key)
    }

    /// [`Settings::resolve`], with `saved` for the key horde-cli saved.
    fn resolve_with(
        cli: Cli,
        saved: impl FnOnce() -> Option<crate::saved_key::SavedKey>,
    ) -> Result<Settings, WorkerError> {
        let file = match &cli.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        let missing = |what: &str, flag: &str, env: &str, key: &str| {
            WorkerError::Config(format!(
                "no {what}: give --{flag}, set {env}, or put {key} in the config file"
            ))
        };
        let given_key = cli
            .api_key
            .or(file.api_key)
            .map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty());
        // No key given: the one horde-cli saved, with its horde unless one is given.
        let saved = match given_key {
            Some(_) => None,
            None => saved(),
        };
        let horde_url = cli
            .horde_url
            .or(file.horde_url)
            .or_else(|| saved.as_ref().and_then(|saved| saved.url.clone()))
            .unwrap_or_else(|| DEFAULT_HORDE_URL.into());
        let horde_url = base_url("horde URL", &horde_url)?;
        let key_source = saved.as_ref().map(|saved| saved.source.clone());
        let api_key = given_key
            .or_else(|| saved.map(|saved| saved.api_key))
            .ok_or_else(|| {
                WorkerError::Config(
                    "no API key: give --api-key, set HORDE_API_KEY, put api_key in the config \
                     file, or save one with `horde-cli register --save`"
                        .into(),
                )
            })?;
        if api_key == "0000000000" {
            return Err(WorkerError::Config(
                "the anonymous key cannot run a worker: register and use your own key".into(),
            ));
        }
        let name = cli
            .name
            .or(file.name)
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| missing("worker name", "name", "HORDE_WORKER_NAME", "name"))?;
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(WorkerError::Config(format!(
                "the worker name is longer than {MAX_NAME_CHARS} characters"
            )));
        }
        let backend_url = cli.backend_url.or(file.backend_url).ok_or_else(|| {
            missing(
                "backend URL",
                "backend-url",
                "HORDE_BACKEND_URL",
                "backend_url",
            )
        })?;
        let backend_url = base_url("backend URL", &backend_url)?;
        let threads = cli.threads.or(file.threads).unwrap_or(1);
        if !(1..=MAX_THREADS).contains(&threads) {
            return Err(WorkerError::Config(format!(
                "threads must be between 1 and {MAX_THREADS}, not {threads}"
            )));
        }
        let max_length = cli.max_length.or(file.max_length);
        if let Some(n) = max_length.filter(|n| !(16..=4096).contains(n)) {
            return Err(WorkerError::Config(format!(
                "max_length must be between 16 and 4096, not {n}"
            )));
        }
        let max_context_length = cli.max_context_length.or(file.max_context_length);
        if let Some(n) = max_context_length.filter(|n| !(80..=131_072).contains(n)) {
            return Err(WorkerError::Config(format!(
                "max_context_length must be between 80 and 131072, not {n}"
            )));
        }
        if let (Some(length), Some(context)) = (max_length, max_context_length) {
            if length > context {
                return Err(WorkerError::Config(format!(
                    "max_length ({length}) cannot exceed max_context_length ({context})"
                )));
            }
        }
        let priority_usernames = cli
            .priority_usernames
            .or(file.priority_usernames)
            .unwrap_or_default()
            .into_iter()
            .map(|user| user.trim().to_owned())
            .filter(|user| !user.is_empty())
            .collect::<Vec<_>>();
        if let Some(bad) = priority_usernames.iter().find(|u| !is_username(u)) {
            return Err(WorkerError::Config(format!(
                "priority username {bad:?} is not of the form alias#id (e.g. alice#7)"
            )));
        }
        let blacklist = cli
            .blacklist
            .or(file.blacklist)
            .unwrap_or_default()
            .into_iter()
            .map(|word| word.trim().to_lowercase())
            .filter(|word| !word.is_empty())
            .collect();
        let model = cli
            .model
            .or(file.model)
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty());
        let summary_secs = cli.summary_secs.or(file.summary_secs).unwrap_or(300);
        if summary_secs == 0 {
            return Err(WorkerError::Config(
                "summary_secs must be at least 1".into(),
            ));
        }
        let yield_for = Duration::from_secs(cli.yield_secs.or(file.yield_secs).unwrap_or(20));
        Ok(Settings {
            yield_for,
            horde_url,
            api_key,
            key_source,
            name,
            backend_url,
            backend: cli.backend.or(file.backend).unwrap_or(BackendKind::Kobold),
            model,
            max_length,
            max_context_length,
            threads,
            priority_usernames,
            nsfw: cli.nsfw.or(file.nsfw).unwrap_or(false),
            extra_slow: cli.extra_slow.or(file.extra_slow).unwrap_or(false),
            blacklist,
            backend_retries: cli
                .backend_retries
                .or(file.backend_retries)
                .unwrap_or(3)
                .max(1),
            summary_every: Duration::from_secs(summary_secs),
            log_format: cli
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            check: cli.check,
        })
    }
}

/// Checks that `url` is an http(s) URL and drops trailing slashes.
fn base_url(what: &str, url: &str) -> Result<String, WorkerError> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && reqwest::Url::parse(url).is_ok() => Ok(url.to_owned()),
        _ => Err(WorkerError::Config(format!(
            "the {what} {url:?} must be an http:// or https:// URL"
        ))),
    }
}

/// Returns true if and only if `name` reads `alias#id` with a numeric id.
fn is_username(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(alias, id)| {
        !alias.is_empty() && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Resolves as the worker does, on a machine where horde-cli saved no key.
    fn resolve(cli: Cli) -> Result<Settings, WorkerError> {
        Settings::resolve_with(cli, || None)
    }

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["horde-worker"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    const REQUIRED: [&str; 6] = [
        "--api-key",
        "k3y",
        "--name",
        "w",
        "--backend-url",
        "http://127.0.0.1:5001/",
    ];

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(
            &path,
            "threads = 4\nmax_length = 300\nbackend = \"openai\"\nnsfw = true\n",
        )
        .unwrap();
        let mut args = REQUIRED.to_vec();
        let path_text = path.display().to_string();
        args.extend(["--config", &path_text, "--threads", "2"]);
        let settings = resolve(cli(&args)).unwrap();
        assert_eq!(settings.threads, 2);
        assert_eq!(settings.max_length, Some(300));
        assert_eq!(settings.backend, BackendKind::Openai);
        assert!(settings.nsfw);
        assert_eq!(settings.backend_url, "http://127.0.0.1:5001");
        assert_eq!(settings.horde_url, DEFAULT_HORDE_URL);
        assert_eq!(settings.max_context_length, None);
    }

    #[test]
    fn bad_settings_say_which_and_why() {
        let cases: [(&[&str], &str); 5] = [
            (&["--threads", "0"], "threads must be between 1 and 50"),
            (
                &["--max-length", "5000"],
                "max_length must be between 16 and 4096",
            ),
            (
                &["--priority-usernames", "bob"],
                "\"bob\" is not of the form alias#id",
            ),
            (&["--horde-url", "ftp://x"], "horde URL \"ftp://x\" must be"),
            (
                &["--max-length", "512", "--max-context-length", "256"],
                "cannot exceed max_context_length",
            ),
        ];
        for (extra, expected) in cases {
            let mut args = REQUIRED.to_vec();
            args.extend_from_slice(extra);
            let error = resolve(cli(&args)).unwrap_err().to_string();
            assert!(error.contains(expected), "{extra:?}: {error}");
        }
        let error = resolve(cli(&["--name", "w", "--backend-url", "http://x"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no API key: give --api-key"), "{error}");
        let anonymous = [
            "--api-key",
            "0000000000",
            "--name",
            "w",
            "--backend-url",
            "http://x",
        ];
        let error = resolve(cli(&anonymous)).unwrap_err().to_string();
        assert!(
            error.contains("anonymous key cannot run a worker"),
            "{error}"
        );
    }

    #[test]
    fn a_key_may_start_with_a_hyphen() {
        // Keys are url-safe base64: one in 64 starts with `-`.
        let args = [
            "--api-key",
            "-Uk3y",
            "--name",
            "w",
            "--backend-url",
            "http://x",
        ];
        assert_eq!(resolve(cli(&args)).unwrap().api_key, "-Uk3y");
    }

    #[test]
    fn the_file_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "thread = 4\n").unwrap();
        let path_text = path.display().to_string();
        let mut args = REQUIRED.to_vec();
        args.extend(["--config", &path_text]);
        let error = resolve(cli(&args)).unwrap_err().to_string();
        assert!(error.contains("unknown field `thread`"), "{error}");
    }

    #[test]
    fn lists_split_on_commas_and_blacklist_is_lowercased() {
        let mut args = REQUIRED.to_vec();
        args.extend(["--priority-usernames", "a#1,b#2", "--blacklist", "Foo, BAR"]);
        let settings = resolve(cli(&args)).unwrap();
        assert_eq!(settings.priority_usernames, ["a#1", "b#2"]);
        assert_eq!(settings.blacklist, ["foo", "bar"]);
    }
}
