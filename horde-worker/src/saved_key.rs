//! The key `horde-cli` saved (`horde-cli register --save`): a worker given no key uses the one
//! of the CLI's profile (`HORDE_PROFILE`, else the file's `default_profile`), and that
//! profile's horde URL when no horde URL is given. The file is the CLI's:
//! `HORDE_CLI_CONFIG`, else `<user config dir>/horde-cli/config.toml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// A key found in the CLI's config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedKey {
    /// The key.
    pub(crate) api_key: String,
    /// The profile's horde URL, if it has one.
    pub(crate) url: Option<String>,
    /// Where it was found, for the owner: `profile "home" of /home/a/.config/horde-cli/…`.
    pub(crate) source: String,
}

/// The parts of the CLI's config file the worker reads.
#[derive(Debug, Default, Deserialize)]
struct CliConfig {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, CliProfile>,
}

#[derive(Debug, Default, Deserialize)]
struct CliProfile {
    url: Option<String>,
    api_key: Option<String>,
}

/// The CLI's config file.
fn cli_config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HORDE_CLI_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    directories::ProjectDirs::from("", "", "horde-cli")
        .map(|dirs| dirs.config_dir().join("config.toml"))
}

/// The key of the CLI's profile in use, if the CLI saved one.
pub(crate) fn saved_key() -> Option<SavedKey> {
    let path = cli_config_path()?;
    let text = std::fs::read_to_string(&path).ok()?;
    let config: CliConfig = toml::from_str(&text).ok()?;
    let profile = std::env::var("HORDE_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .or(config.default_profile)?;
    let entry = config.profiles.get(&profile)?;
    let api_key = entry.api_key.clone()?.trim().to_owned();
    (!api_key.is_empty()).then(|| SavedKey {
        api_key,
        url: entry.url.clone(),
        source: format!("profile {profile:?} of {}", path.display()),
    })
}
