//! Settings: the config file with its profiles, and how flags and environment override it.
//!
//! ```toml
//! default_profile = "home"
//!
//! [profiles.home]
//! url = "http://127.0.0.1:7001"
//! api_key = "…"
//!
//! [profiles.public]
//! url = "https://horde.example.org"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::Global;
use crate::error::CliError;

/// Where the CLI talks to when nothing says otherwise.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:7001";

/// The config file.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// The profile used when `--profile` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) default_profile: Option<String>,
    /// Named hordes.
    #[serde(default)]
    pub(crate) profiles: BTreeMap<String, Profile>,
}

/// One horde and the key to use there.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// The horde's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    /// The API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api_key: Option<String>,
}

/// The settings a command runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The horde's base URL, without a trailing slash.
    pub(crate) url: String,
    /// The API key, if any.
    pub(crate) api_key: Option<String>,
    /// The profile in use.
    pub(crate) profile: String,
    /// The config file's path.
    pub(crate) config_path: PathBuf,
    /// Print JSON.
    pub(crate) json: bool,
}

/// The default config file: `<user config dir>/horde-cli/config.toml`.
fn default_config_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "horde-cli")
        .map(|dirs| dirs.config_dir().join("config.toml"))
        .unwrap_or_else(|| PathBuf::from("horde-cli.toml"))
}

impl ConfigFile {
    /// Reads the file; a missing file is an empty configuration.
    pub(crate) fn load(path: &Path) -> Result<ConfigFile, CliError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                CliError::Usage(format!(
                    "the config file {} is not valid: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(CliError::Usage(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ))),
        }
    }

    /// Changes the file with `change`, keeping the rest of it — comments, order, other
    /// profiles — as written. The file must be valid before (so that `change` finds tables
    /// where it expects them) and stays valid after.
    pub(crate) fn edit(
        path: &Path,
        change: impl FnOnce(&mut toml_edit::DocumentMut),
    ) -> Result<(), CliError> {
        ConfigFile::load(path)?;
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(CliError::Usage(format!(
                    "cannot read the config file {}: {e}",
                    path.display()
                )))
            }
        };
        let mut document: toml_edit::DocumentMut = text.parse().map_err(|e| {
            CliError::Usage(format!(
                "the config file {} is not valid: {e}",
                path.display()
            ))
        })?;
        change(&mut document);
        let text = document.to_string();
        toml::from_str::<ConfigFile>(&text).map_err(|e| {
            CliError::Usage(format!(
                "the change would make {} invalid: {e}",
                path.display()
            ))
        })?;
        write_private(path, &text)
    }
}

/// Sets `key` of profile `profile` to `value` in `document` (a valid config file).
pub(crate) fn set_in_profile(
    document: &mut toml_edit::DocumentMut,
    profile: &str,
    key: &str,
    value: &str,
) {
    let profiles = document.entry("profiles").or_insert_with(|| {
        let mut table = toml_edit::Table::new();
        table.set_implicit(true);
        toml_edit::Item::Table(table)
    });
    profiles[profile][key] = toml_edit::value(value);
}

/// Writes `text` to `path` (creating its directory), readable by its owner only from the moment
/// it exists: the text goes to a new file created with mode 0600 beside it, synced, then
/// renamed over the old one, so a crash leaves either the old file or the new one whole
/// (never a key readable by others, never a half-written profile).
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    let fail = |e: String| CliError::Usage(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = std::path::PathBuf::from(staged);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // A file left by an earlier attempt keeps its mode: set it before writing.
        if staged.exists() {
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    let mut file = options.open(&staged).map_err(|e| fail(e.to_string()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    drop(file);
    std::fs::rename(&staged, path).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

impl Settings {
    /// Flags and environment (already merged by clap) over the profile over the defaults.
    pub(crate) fn resolve(global: &Global) -> Result<Settings, CliError> {
        let config_path = global.config.clone().unwrap_or_else(default_config_path);
        let file = ConfigFile::load(&config_path)?;
        let profile = global
            .profile
            .clone()
            .or_else(|| file.default_profile.clone())
            .unwrap_or_else(|| "default".into());
        let stored = file.profiles.get(&profile).cloned();
        if global.profile.is_some() && stored.is_none() {
            return Err(CliError::Usage(format!(
                "there is no profile {profile:?} in {}",
                config_path.display()
            )));
        }
        let stored = stored.unwrap_or_default();
        let url = global
            .url
            .clone()
            .or(stored.url)
            .unwrap_or_else(|| DEFAULT_URL.into());
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "the horde URL {url:?} must start with http:// or https://"
            )));
        }
        // An empty key is a mistake (`HORDE_API_KEY=`), not a wish to be anonymous.
        if global
            .api_key
            .as_deref()
            .is_some_and(|key| key.trim().is_empty())
        {
            return Err(CliError::Usage(
                "the API key is empty (is HORDE_API_KEY set to nothing?): give a key, or unset it \
                 to act as the anonymous account"
                    .into(),
            ));
        }
        Ok(Settings {
            url,
            api_key: global.api_key.clone().or(stored.api_key),
            profile,
            config_path,
            json: global.json,
        })
    }

    /// The key this profile of the config file holds, if any.
    pub(crate) fn saved_key(&self) -> Result<Option<String>, CliError> {
        let file = ConfigFile::load(&self.config_path)?;
        Ok(file
            .profiles
            .get(&self.profile)
            .and_then(|profile| profile.api_key.clone()))
    }

    /// Saves `api_key` (and the URL) in this profile of the config file; the first profile
    /// saved becomes the default one.
    pub(crate) fn save_key(&self, api_key: &str) -> Result<(), CliError> {
        ConfigFile::edit(&self.config_path, |document| {
            set_in_profile(document, &self.profile, "url", &self.url);
            set_in_profile(document, &self.profile, "api_key", api_key);
            if !document.contains_key("default_profile") {
                document["default_profile"] = toml_edit::value(self.profile.as_str());
            }
        })
    }
}
