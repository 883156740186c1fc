//! Fitting a prompt into an OpenAI-compatible backend's context, as KoboldCpp does by itself:
//! the prompt loses its start until it and the tokens to generate fit the job's
//! `max_context_length`. Tokens are counted by the backend's own tokenizer where it offers one
//! (llama.cpp's `POST /tokenize`, llama-cpp-python's `POST /extras/tokenize/count`); without
//! one, the prompt keeps at most [`CHARS_PER_TOKEN`] characters per token of room.

use std::borrow::Cow;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::{call_json_within, whole};

/// Characters per token assumed when the backend cannot count (the horde estimates four; most
/// text in most tokenizers takes more than three).
pub(super) const CHARS_PER_TOKEN: usize = 3;
/// The most bytes a tokenizer's answer may take (a list of token ids for a 400,000-character
/// prompt).
const TOKENS_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Cuts tried before the prompt is taken as it is.
const CUTS: usize = 4;

/// How a backend counts tokens, found on first need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tokenizer {
    Unknown,
    /// llama.cpp's server: `POST /tokenize {"content"}` → `{"tokens": [...]}`.
    LlamaCpp,
    /// llama-cpp-python's server: `POST /extras/tokenize/count {"input"}` → `{"count"}`.
    LlamaCppPython,
    /// Neither answers.
    Absent,
}

/// The prompt fitter of one backend.
#[derive(Debug)]
pub(super) struct Fitter {
    /// The server's root (without `/v1`).
    root: String,
    tokenizer: Mutex<Tokenizer>,
}

impl Fitter {
    /// A fitter for the backend whose API root (without `/v1`) is `root`.
    pub(super) fn new(root: &str) -> Fitter {
        Fitter {
            root: root.to_owned(),
            tokenizer: Mutex::new(Tokenizer::Unknown),
        }
    }

    /// `prompt` cut from its start so that it and `max_tokens` fit in `context` tokens (no
    /// cut when `context` is 0: the job does not say).
    pub(super) async fn fit<'a>(
        &self,
        http: &reqwest::Client,
        prompt: &'a str,
        context: u32,
        max_tokens: u32,
    ) -> Cow<'a, str> {
        if context == 0 {
            return Cow::Borrowed(prompt);
        }
        // One token is kept for the beginning-of-text token the backend adds.
        let room = context.saturating_sub(max_tokens).saturating_sub(1).max(1) as usize;
        // A token is at least one byte: a prompt of fewer bytes fits whatever the tokenizer.
        if prompt.len() <= room {
            return Cow::Borrowed(prompt);
        }
        let mut kept = prompt;
        for _ in 0..CUTS {
            let Some(tokens) = self.count(http, kept).await else {
                return Cow::Borrowed(tail(kept, room * CHARS_PER_TOKEN));
            };
            if tokens <= room {
                break;
            }
            // Keep the share that fits, and a tenth less for the tokens' uneven lengths.
            let chars = kept.chars().count();
            kept = tail(kept, chars * room / tokens * 9 / 10);
        }
        Cow::Borrowed(kept)
    }

    /// The tokens of `text` as the backend counts them; `None` if it cannot.
    async fn count(&self, http: &reqwest::Client, text: &str) -> Option<usize> {
        let known = *self.tokenizer.lock();
        let candidates: &[Tokenizer] = match known {
            Tokenizer::Unknown => &[Tokenizer::LlamaCpp, Tokenizer::LlamaCppPython],
            Tokenizer::Absent => return None,
            Tokenizer::LlamaCpp => &[Tokenizer::LlamaCpp],
            Tokenizer::LlamaCppPython => &[Tokenizer::LlamaCppPython],
        };
        for &tokenizer in candidates {
            if let Some(count) = self.count_with(http, tokenizer, text).await {
                *self.tokenizer.lock() = tokenizer;
                return Some(count);
            }
        }
        if known == Tokenizer::Unknown {
            tracing::info!(
                "the backend offers no tokenizer; prompts over the context are cut to {} \
                 characters per token",
                CHARS_PER_TOKEN
            );
            *self.tokenizer.lock() = Tokenizer::Absent;
        }
        None
    }

    async fn count_with(
        &self,
        http: &reqwest::Client,
        tokenizer: Tokenizer,
        text: &str,
    ) -> Option<usize> {
        let (path, body) = match tokenizer {
            Tokenizer::LlamaCpp => ("tokenize", json!({ "content": text })),
            Tokenizer::LlamaCppPython => ("extras/tokenize/count", json!({ "input": text })),
            Tokenizer::Unknown | Tokenizer::Absent => return None,
        };
        let request = http.post(format!("{}/{path}", self.root)).json(&body);
        let answer = call_json_within(request, TOKENS_MAX_BYTES).await.ok()?;
        match tokenizer {
            Tokenizer::LlamaCpp => answer["tokens"].as_array().map(Vec::len),
            _ => answer
                .as_object()
                .and_then(|fields| whole(fields, "count"))
                .and_then(|n| usize::try_from(n).ok()),
        }
    }
}

/// The last `chars` characters of `text`.
fn tail(text: &str, chars: usize) -> &str {
    if chars == 0 {
        return "";
    }
    match text.char_indices().rev().nth(chars - 1) {
        Some((at, _)) => &text[at..],
        None => text,
    }
}

/// The context length llama.cpp's `GET /props` reports (`default_generation_settings.n_ctx`,
/// or `n_ctx`).
pub(super) fn props_context(props: &Value) -> Option<u32> {
    [&props["default_generation_settings"], props]
        .into_iter()
        .find_map(|fields| whole(fields.as_object()?, "n_ctx"))
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_counted_in_characters() {
        assert_eq!(tail("héllo", 3), "llo");
        assert_eq!(tail("héllo", 4), "éllo");
        assert_eq!(tail("héllo", 9), "héllo");
        assert_eq!(tail("héllo", 0), "");
    }

    #[test]
    fn the_context_is_read_from_either_place() {
        let props = json!({ "default_generation_settings": { "n_ctx": 4096 } });
        assert_eq!(props_context(&props), Some(4096));
        assert_eq!(props_context(&json!({ "n_ctx": 512 })), Some(512));
        assert_eq!(props_context(&json!({ "detail": "Not Found" })), None);
    }

    #[tokio::test]
    async fn without_a_tokenizer_a_long_prompt_keeps_three_characters_per_token() {
        // Nothing listens on port 9 of loopback: no tokenizer answers.
        let fitter = Fitter::new("http://127.0.0.1:9");
        let http = reqwest::Client::new();
        let prompt = "a".repeat(10_000);
        let fitted = fitter.fit(&http, &prompt, 1024, 24).await;
        assert_eq!(fitted.len(), 999 * CHARS_PER_TOKEN);
        let short = "short prompt";
        assert_eq!(fitter.fit(&http, short, 1024, 24).await, short);
        assert_eq!(fitter.fit(&http, &prompt, 0, 24).await.len(), 10_000);
    }
}
