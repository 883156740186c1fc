//! The model reference: which models the horde knows and how large they are.
//!
//! A worker names its own model, so a name must never set its pay: the reference (written by
//! the horde's operator, with a default shipped by the server) decides a model's size. Names
//! are matched after [`normalize`], which drops the backend or organisation prefix
//! (`koboldcpp/`, `meta-llama/`), the case, and file and quantisation suffixes (`.gguf`,
//! `.Q4_K_M`, `-GGUF`, `-AWQ`), so the names real workers report find their entry.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One model of the reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceEntry {
    /// Its name.
    pub name: String,
    /// Billions of parameters.
    pub params_b: f64,
    /// The context it supports, in tokens, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u32>,
    /// Other names it is served under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// How a chat becomes this model's prompt: a Hugging Face-style Jinja chat template (as
    /// GGUF files carry in `tokenizer.chat_template`), rendered by the server; absent, the
    /// server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
    /// The template's end-of-turn tokens, sent as stop sequences with every chat request to
    /// this model (with a template of its own; the default template brings its own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chat_stop: Vec<String>,
}

/// A reference file: `[[model]]` entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceFile {
    /// The models.
    #[serde(default, rename = "model")]
    pub models: Vec<ReferenceEntry>,
}

/// Why a reference was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReferenceError {
    /// A size that is not a positive number of at most 10,000 billions.
    #[error("model {name:?} has an impossible size: {params_b} billion parameters")]
    BadSize {
        /// The model.
        name: String,
        /// Its stated size.
        params_b: f64,
    },
    /// Two entries claim one name.
    #[error("the name {name:?} belongs to both {first:?} and {second:?}")]
    Duplicate {
        /// The normalised name.
        name: String,
        /// The first entry.
        first: String,
        /// The second entry.
        second: String,
    },
}

/// Models by normalised name.
///
/// ```
/// use horde_core::reference::{ModelReference, ReferenceEntry};
/// let reference = ModelReference::new(vec![ReferenceEntry {
///     name: "Meta-Llama-3-8B-Instruct".into(),
///     params_b: 8.0,
///     context: Some(8192),
///     aliases: vec!["Llama-3-8B-Instruct".into()],
///     ..ReferenceEntry::default()
/// }])?;
/// let found = reference.lookup("koboldcpp/Llama-3-8B-Instruct.Q4_K_M").map(|e| e.params_b);
/// assert_eq!(found, Some(8.0));
/// assert!(reference.lookup("evil/Totally-Real-99999B").is_none());
/// # Ok::<(), horde_core::reference::ReferenceError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReference {
    entries: Vec<ReferenceEntry>,
    by_name: HashMap<String, usize>,
}

impl ModelReference {
    /// A reference of `entries`; names and aliases must not collide.
    pub fn new(entries: Vec<ReferenceEntry>) -> Result<ModelReference, ReferenceError> {
        let mut reference = ModelReference::default();
        reference.extend(entries)?;
        Ok(reference)
    }

    /// Adds `entries`; an entry whose name (normalised) is already known from before replaces
    /// that model. Within `entries`, a name used twice is an error.
    pub fn extend(&mut self, entries: Vec<ReferenceEntry>) -> Result<(), ReferenceError> {
        let mut claimed: HashMap<String, String> = HashMap::new();
        for entry in entries {
            for name in std::iter::once(&entry.name).chain(&entry.aliases) {
                let key = normalize(name);
                if let Some(first) = claimed.insert(key.clone(), entry.name.clone()) {
                    if first != entry.name {
                        return Err(ReferenceError::Duplicate {
                            name: key,
                            first,
                            second: entry.name.clone(),
                        });
                    }
                }
            }
            if !(entry.params_b.is_finite() && entry.params_b > 0.0 && entry.params_b <= 10_000.0) {
                return Err(ReferenceError::BadSize {
                    name: entry.name,
                    params_b: entry.params_b,
                });
            }
            let index = match self.by_name.get(&normalize(&entry.name)) {
                Some(&old) => {
                    // Replacing a model drops its old aliases.
                    let names: Vec<String> = self
                        .by_name
                        .iter()
                        .filter(|(_, i)| **i == old)
                        .map(|(n, _)| n.clone())
                        .collect();
                    for name in names {
                        self.by_name.remove(&name);
                    }
                    self.entries[old] = entry.clone();
                    old
                }
                None => {
                    self.entries.push(entry.clone());
                    self.entries.len() - 1
                }
            };
            for name in std::iter::once(&entry.name).chain(&entry.aliases) {
                let key = normalize(name);
                match self.by_name.get(&key) {
                    Some(&other) if other != index => {
                        return Err(ReferenceError::Duplicate {
                            name: key,
                            first: self.entries[other].name.clone(),
                            second: entry.name.clone(),
                        })
                    }
                    _ => {
                        self.by_name.insert(key, index);
                    }
                }
            }
        }
        Ok(())
    }

    /// The entry a worker's model name finds, if any.
    pub fn lookup(&self, model: &str) -> Option<&ReferenceEntry> {
        self.by_name
            .get(&normalize(model))
            .and_then(|i| self.entries.get(*i))
    }

    /// The size of the largest model, 0 for an empty reference.
    pub fn largest_b(&self) -> f64 {
        self.entries.iter().map(|e| e.params_b).fold(0.0, f64::max)
    }

    /// How many models it knows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns true if and only if it knows no model.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The form names are compared in: the part after the last `/`, lower case, without file
/// extensions and quantisation or format suffixes.
///
/// ```
/// use horde_core::reference::normalize;
/// assert_eq!(normalize("koboldcpp/Llama-3-8B-Instruct.Q4_K_M"), "llama-3-8b-instruct");
/// assert_eq!(normalize("TheBloke/Mistral-7B-Instruct-v0.2-GGUF"), "mistral-7b-instruct-v0.2");
/// assert_eq!(normalize("mythomax-l2-13b.Q5_K_M.gguf"), "mythomax-l2-13b");
/// assert_eq!(normalize("KoboldAI/OPT-13B-Erebus"), "opt-13b-erebus");
/// ```
pub fn normalize(name: &str) -> String {
    let base = name.trim().rsplit('/').next().unwrap_or_default();
    let mut name = base.to_lowercase();
    loop {
        let cut = name
            .rfind(['.', '-'])
            .filter(|&at| at > 0 && is_format_suffix(&name[at + 1..]));
        match cut {
            Some(at) => name.truncate(at),
            None => return name,
        }
    }
}

/// Returns true if and only if `tail` names a file format or a quantisation, not a model.
fn is_format_suffix(tail: &str) -> bool {
    const WORDS: [&str; 18] = [
        "gguf",
        "ggml",
        "ggmlv3",
        "bin",
        "safetensors",
        "awq",
        "gptq",
        "exl2",
        "f16",
        "fp16",
        "bf16",
        "f32",
        "fp32",
        "int4",
        "int8",
        "4bit",
        "8bit",
        "imat",
    ];
    let quant = |prefix: &str| {
        tail.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    WORDS.contains(&tail)
        || quant("q")
        || quant("iq")
        || (tail.ends_with("bpw") && tail.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, params_b: f64, aliases: &[&str]) -> ReferenceEntry {
        ReferenceEntry {
            name: name.into(),
            params_b,
            context: None,
            aliases: aliases.iter().map(|a| (*a).into()).collect(),
            ..ReferenceEntry::default()
        }
    }

    #[test]
    fn an_alias_may_repeat_its_own_entrys_name_and_sizes_count() {
        // Name and alias normalise alike: one entry, no collision with itself.
        let reference = ModelReference::new(vec![entry("Foo-7B", 7.0, &["foo-7b.gguf"])]).unwrap();
        assert_eq!(reference.len(), 1);
        let two =
            ModelReference::new(vec![entry("A-1B", 1.0, &[]), entry("B-2B", 2.0, &[])]).unwrap();
        assert_eq!(two.len(), 2);
        assert!(!two.is_empty());
        assert!(ModelReference::new(vec![]).unwrap().is_empty());
    }

    #[test]
    fn zero_sizes_and_aliases_taken_by_an_earlier_batch_are_refused() {
        assert!(matches!(
            ModelReference::new(vec![entry("zero", 0.0, &[])]),
            Err(ReferenceError::BadSize { .. })
        ));
        let mut reference = ModelReference::new(vec![entry("a", 1.0, &[])]).unwrap();
        assert!(matches!(
            reference.extend(vec![entry("c", 3.0, &["a"])]),
            Err(ReferenceError::Duplicate { .. })
        ));
    }

    #[test]
    fn suffixes_are_cut_only_after_a_name() {
        assert_eq!(normalize(".gguf"), ".gguf");
        assert_eq!(normalize("Model-7B-6bpw"), "model-7b");
        assert_eq!(normalize("Model-7B-bpw"), "model-7b-bpw");
    }

    #[test]
    fn names_match_after_normalising_and_collisions_are_refused() {
        let reference =
            ModelReference::new(vec![entry("OPT-13B-Erebus", 13.0, &["Erebus-13B"])]).unwrap();
        for name in [
            "KoboldAI/OPT-13B-Erebus",
            "koboldcpp/opt-13b-erebus.Q8_0",
            "erebus-13b-GGUF",
        ] {
            assert_eq!(
                reference.lookup(name).map(|e| e.params_b),
                Some(13.0),
                "{name}"
            );
        }
        assert!(reference.lookup("OPT-13B-Erebus-v2").is_none());
        assert!(matches!(
            ModelReference::new(vec![entry("a", 1.0, &["b"]), entry("b", 2.0, &[])]),
            Err(ReferenceError::Duplicate { .. })
        ));
        assert!(matches!(
            ModelReference::new(vec![entry("huge", 99_999.0, &[])]),
            Err(ReferenceError::BadSize { .. })
        ));
        // An operator's entry replaces the default one of the same name.
        let mut reference = reference;
        reference
            .extend(vec![entry("OPT-13B-Erebus", 12.0, &[])])
            .unwrap();
        assert_eq!(
            reference.lookup("OPT-13B-Erebus").map(|e| e.params_b),
            Some(12.0)
        );
        assert!(reference.lookup("Erebus-13B").is_none());
        assert_eq!(reference.len(), 1);
        assert_eq!(reference.largest_b(), 12.0);
    }
}
