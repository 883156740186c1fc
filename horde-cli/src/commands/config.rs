//! The config file's commands: `login` (save a key you have, checked with the horde), and
//! `config path | profiles | set | use-profile`. Every change keeps the rest of the file as
//! written, and a key that is replaced is printed, so that no key is ever lost.

use std::io::{BufRead, IsTerminal, Write};

use serde::Serialize;

use crate::cli::ConfigKey;
use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::settings::{set_in_profile, ConfigFile, Settings};

/// `login`: checks `given` (from --api-key / HORDE_API_KEY), else a key read from standard
/// input, with the horde, and saves it with the horde's URL in the profile in use.
pub(crate) async fn login(settings: &Settings, given: Option<String>) -> Result<(), CliError> {
    let key = match given {
        Some(key) => key,
        None => read_key(&settings.url)?,
    };
    let key = key.trim().to_owned();
    if key.is_empty() {
        return Err(CliError::Usage(
            "no key was given; nothing was saved".into(),
        ));
    }
    let checking = Settings {
        api_key: Some(key.clone()),
        ..settings.clone()
    };
    let client = Client::new(&checking)?;
    let user = client
        .ask(client.api().find_user())
        .await
        .map_err(crate::client::unknown_key)
        .map_err(|e| match e {
            CliError::Server {
                status,
                rc,
                message,
                hint,
            } => CliError::Server {
                status,
                rc,
                message: format!("{message}; nothing was saved"),
                hint,
            },
            other => other,
        })?;
    let replaced = replaced_key(settings, &key)?;
    settings.save_key(&key)?;
    if settings.json {
        /// `login --json`.
        #[derive(Serialize)]
        struct LoggedIn<'a> {
            username: &'a str,
            profile: &'a str,
            path: &'a std::path::Path,
            replaced: bool,
        }
        output::json(&LoggedIn {
            username: &user.username,
            profile: &settings.profile,
            path: &settings.config_path,
            replaced: replaced.is_some(),
        });
    } else {
        println!(
            "Logged in as {} at {}; the key is saved in profile {:?} of {} (readable by you \
             only).",
            user.username,
            settings.url,
            settings.profile,
            settings.config_path.display()
        );
    }
    if let Some(old) = replaced {
        eprintln!(
            "The profile held another key, now replaced; keep it if you still need its account: \
             {old}"
        );
    }
    Ok(())
}

/// The key to log in with, from standard input (asked for on a terminal).
fn read_key(url: &str) -> Result<String, CliError> {
    let terminal = std::io::stdin().is_terminal();
    if terminal {
        eprint!("API key for {url} (from its web page; shown as you type): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("cannot read the key: {e}")))?;
    Ok(line)
}

/// The key the profile holds, if it is not `key` (it is about to be replaced).
fn replaced_key(settings: &Settings, key: &str) -> Result<Option<String>, CliError> {
    Ok(settings.saved_key()?.filter(|old| old != key))
}

/// `config profiles`.
pub(crate) fn profiles(settings: &Settings) -> Result<(), CliError> {
    let file = ConfigFile::load(&settings.config_path)?;
    let default = file.default_profile.as_deref();
    /// One profile, for `--json`.
    #[derive(Serialize)]
    struct Shown<'a> {
        name: &'a str,
        url: Option<&'a str>,
        has_key: bool,
        default: bool,
    }
    let shown: Vec<Shown<'_>> = file
        .profiles
        .iter()
        .map(|(name, profile)| Shown {
            name,
            url: profile.url.as_deref(),
            has_key: profile.api_key.is_some(),
            default: default == Some(name.as_str()),
        })
        .collect();
    if settings.json {
        output::json(&shown);
        return Ok(());
    }
    if shown.is_empty() {
        println!(
            "No profiles in {} yet: `horde-cli login` or `horde-cli register NAME --save` makes one.",
            settings.config_path.display()
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|p| {
            vec![
                format!("{}{}", p.name, if p.default { " (default)" } else { "" }),
                output::or_dash(p.url),
                if p.has_key { "saved" } else { "none" }.to_owned(),
            ]
        })
        .collect();
    output::table(&["profile", "horde", "key"], &rows);
    Ok(())
}

/// `config set url|api-key VALUE` in the profile in use.
pub(crate) fn set(settings: &Settings, key: ConfigKey, value: &str) -> Result<(), CliError> {
    let value = value.trim();
    let (name, replaced) = match key {
        ConfigKey::Url => {
            let url = value.trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(CliError::Usage(format!(
                    "the horde URL {url:?} must start with http:// or https://"
                )));
            }
            ConfigFile::edit(&settings.config_path, |document| {
                set_in_profile(document, &settings.profile, "url", url);
            })?;
            ("url", None)
        }
        ConfigKey::ApiKey => {
            if value.is_empty() {
                return Err(CliError::Usage("the API key is empty".into()));
            }
            let replaced = replaced_key(settings, value)?;
            ConfigFile::edit(&settings.config_path, |document| {
                set_in_profile(document, &settings.profile, "api_key", value);
            })?;
            ("api_key", replaced)
        }
    };
    if !settings.json {
        println!(
            "Set {name} of profile {:?} in {}.",
            settings.profile,
            settings.config_path.display()
        );
    }
    if let Some(old) = replaced {
        eprintln!("The key it replaced (keep it if you still need its account): {old}");
    }
    Ok(())
}

/// `config use-profile NAME`.
pub(crate) fn use_profile(settings: &Settings, name: &str) -> Result<(), CliError> {
    let file = ConfigFile::load(&settings.config_path)?;
    if !file.profiles.contains_key(name) {
        let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
        return Err(CliError::Usage(format!(
            "there is no profile {name:?} in {} (there are: {})",
            settings.config_path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    ConfigFile::edit(&settings.config_path, |document| {
        document["default_profile"] = toml_edit::value(name);
    })?;
    if !settings.json {
        println!(
            "Profile {name:?} is the default in {}.",
            settings.config_path.display()
        );
    }
    Ok(())
}
