//! The model reference the server pays by: the default one shipped in `models.toml`, plus or
//! instead of the operator's `--model-reference FILE`, reloadable without a restart.

use std::path::Path;

use horde_core::reference::{ModelReference, ReferenceFile};

use crate::config::Config;

/// The reference shipped with the server.
const DEFAULT_REFERENCE: &str = include_str!("../models.toml");

/// A model reference that cannot be read: which file, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(String);

impl From<String> for ReferenceError {
    fn from(message: String) -> Self {
        ReferenceError(message)
    }
}

/// Builds the reference `config` asks for; the error says which file is wrong and why.
pub fn load_reference(config: &Config) -> Result<ModelReference, ReferenceError> {
    let mut reference = if config.model_reference_replaces_default {
        ModelReference::default()
    } else {
        parse(
            DEFAULT_REFERENCE,
            Path::new("the default model reference"),
            ModelReference::default(),
        )?
    };
    if let Some(path) = &config.model_reference {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the model reference {}: {e}", path.display()))?;
        reference = parse(&text, path, reference)?;
    }
    Ok(reference)
}

fn parse(text: &str, path: &Path, mut into: ModelReference) -> Result<ModelReference, String> {
    let file: ReferenceFile = toml::from_str(text)
        .map_err(|e| format!("the model reference {} is not valid: {e}", path.display()))?;
    for entry in &file.models {
        if let Some(template) = &entry.chat_template {
            crate::chat::check(template).map_err(|e| {
                format!(
                    "the model reference {} is not valid: model {:?}: {e}",
                    path.display(),
                    entry.name
                )
            })?;
        }
    }
    into.extend(file.models)
        .map_err(|e| format!("the model reference {} is not valid: {e}", path.display()))?;
    Ok(into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_reference_knows_the_common_models_by_their_served_names() {
        let reference = load_reference(&Config::default()).unwrap();
        assert!(reference.len() > 80);
        for (name, size) in [
            ("koboldcpp/Llama-3-8B-Instruct.Q4_K_M", 8.0),
            ("KoboldAI/OPT-13B-Erebus", 13.0),
            ("koboldcpp/Mistral-Nemo-Instruct-2407-Q4_K_M", 12.2),
            ("aphrodite/mistralai/Mixtral-8x7B-Instruct-v0.1", 46.7),
            ("TheBloke/MythoMax-L2-13B-GGUF", 13.0),
            ("koboldcpp/L3-8B-Stheno-v3.2.Q5_K_M", 8.0),
            ("Qwen/Qwen2.5-72B-Instruct-AWQ", 72.7),
            ("PygmalionAI/pygmalion-6b", 6.0),
            ("koboldcpp/gemma-2-9b-it-Q6_K", 9.2),
        ] {
            let found = reference.lookup(name).map_or(0.0, |e| e.params_b);
            assert_eq!(found, size, "{name}");
        }
        assert!(reference.lookup("evil/Totally-Real-99999B").is_none());
        let llama = reference
            .lookup("koboldcpp/Llama-3-8B-Instruct.Q4_K_M")
            .unwrap();
        assert_eq!(llama.chat_template.as_deref(), Some("llama3"));
    }

    #[test]
    fn a_chat_template_that_does_not_compile_is_refused_at_load() {
        let text = "[[model]]\nname = \"m\"\nparams_b = 1.0\nchat_template = \"{% for %}\"\n";
        let error = parse(text, Path::new("ops.toml"), ModelReference::default()).unwrap_err();
        assert!(
            error.contains("\"m\"") && error.contains("chat_template"),
            "{error}"
        );
        let good = "[[model]]\nname = \"m\"\nparams_b = 1.0\nchat_template = \"mistral\"\n";
        assert!(parse(good, Path::new("ops.toml"), ModelReference::default()).is_ok());
    }
}
