//! The check prompts of spot checks: the list shipped in `canaries.toml`, or instead the
//! operator's `--canaries FILE`, reloadable without a restart.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::config::Config;
use crate::models::ReferenceError;

/// The prompts shipped with the server.
const DEFAULT_CANARIES: &str = include_str!("../canaries.toml");

/// Longest canary prompt, in characters.
const MAX_PROMPT_CHARS: usize = 20_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryFile {
    #[serde(default)]
    canary: Vec<Canary>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Canary {
    prompt: String,
}

/// The canary prompts `config` asks for; the error says which file is wrong and why.
pub fn load_canaries(config: &Config) -> Result<Vec<Arc<str>>, ReferenceError> {
    match &config.canaries {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the canaries {}: {e}", path.display()))?;
            Ok(parse(&text, path)?)
        }
        None => Ok(parse(DEFAULT_CANARIES, Path::new("the default canaries"))?),
    }
}

fn parse(text: &str, path: &Path) -> Result<Vec<Arc<str>>, String> {
    let invalid = |why: String| format!("the canaries {} are not valid: {why}", path.display());
    let file: CanaryFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    file.canary
        .into_iter()
        .enumerate()
        .map(|(i, canary)| {
            let chars = canary.prompt.chars().count();
            if canary.prompt.trim().is_empty() || chars > MAX_PROMPT_CHARS {
                return Err(invalid(format!(
                    "canary {} must hold 1 to {MAX_PROMPT_CHARS} characters",
                    i + 1
                )));
            }
            Ok(Arc::from(canary.prompt))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_canaries_read_and_a_broken_file_says_why() {
        let canaries = load_canaries(&Config::default()).unwrap();
        assert_eq!(canaries.len(), 20);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canaries.toml");
        std::fs::write(&path, "[[canary]]\nprompt = \"\"\n").unwrap();
        let config = Config {
            canaries: Some(path.clone()),
            ..Config::default()
        };
        let err = load_canaries(&config).unwrap_err().to_string();
        assert!(err.contains("canary 1"), "{err}");
        std::fs::write(
            &path,
            "[[canary]]\nprompt = \"Hello\"\n[[canary]]\nprompt = \"Bye\"\n",
        )
        .unwrap();
        assert_eq!(load_canaries(&config).unwrap().len(), 2);
    }
}
