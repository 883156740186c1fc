//! OpenAI-compatible completions (llama.cpp's server, vLLM, Ollama, KoboldCpp's `/v1`,
//! llama-cpp-python): `GET /v1/models` and `POST /v1/completions`.
//!
//! The horde's KoboldAI-style parameters map onto the completion fields: `max_length` →
//! `max_tokens`, `rep_pen` → `repeat_penalty`, `typical` → `typical_p`; `temperature`,
//! `top_p`, `top_k` and `min_p` keep their names; `seed` is the requester's `sampler_seed` or a
//! random one, reported to the horde as the generation's seed. `stop_sequence` is applied by
//! the worker itself, so that the text ends as KoboldCpp ends it ([`super::stops`]); the
//! prompt is cut to the job's `max_context_length` as KoboldCpp cuts it ([`super::fit`]). The
//! rest (the Kobold-only samplers and formatting flags) has no equivalent there and is dropped.

use horde_api::Payload;
use serde::{Deserialize, Serialize};

use super::fit::{props_context, Fitter};
use super::stops::first_stop;
use super::{
    call_json, call_json_within, events, generation_cap, read_capped, seed_for, whole,
    BackendError, BackendInfo, Generated, Progress, DEFAULT_MAX_LENGTH,
};

/// `POST /v1/completions`, as far as a horde job fills it.
#[derive(Debug, PartialEq, Serialize)]
struct Completion<'a> {
    model: &'a str,
    prompt: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    typical_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat_penalty: Option<f64>,
    seed: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// The parts of a completion answer the worker reads.
#[derive(Debug, Deserialize)]
struct CompletionAnswer {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    completion_tokens: Option<u64>,
}

/// An OpenAI-compatible backend.
#[derive(Debug)]
pub(crate) struct OpenAi {
    http: reqwest::Client,
    /// The API root, ending in `/v1`.
    base: String,
    /// The model id the server listed (set by [`OpenAi::probe`]); completions name it, since
    /// servers such as vLLM refuse any other.
    served: parking_lot::Mutex<String>,
    /// The context length the server reported, if it did (set by [`OpenAi::probe`]).
    context: parking_lot::Mutex<Option<u32>>,
    fitter: Fitter,
}

impl OpenAi {
    /// A backend at `base_url`, given with or without its `/v1`.
    pub(crate) fn new(http: reqwest::Client, base_url: &str) -> OpenAi {
        let root = base_url.trim_end_matches('/').trim_end_matches("/v1");
        OpenAi {
            http,
            base: format!("{root}/v1"),
            served: parking_lot::Mutex::default(),
            context: parking_lot::Mutex::default(),
            fitter: Fitter::new(root),
        }
    }

    /// The first model of `GET /v1/models`, and its context length where the server says
    /// (vLLM's `max_model_len`, llama.cpp's `GET /props`).
    pub(crate) async fn probe(&self) -> Result<BackendInfo, BackendError> {
        let answer = call_json(self.http.get(format!("{}/models", self.base))).await?;
        let first = &answer["data"][0];
        let id = first["id"].as_str().filter(|id| !id.trim().is_empty());
        let Some(id) = id else {
            return Err(BackendError::Failed(format!(
                "GET /v1/models lists no model: {}",
                answer.to_string().chars().take(300).collect::<String>()
            )));
        };
        let mut max_context_length = first
            .as_object()
            .and_then(|model| whole(model, "max_model_len"))
            .and_then(|n| u32::try_from(n).ok());
        if max_context_length.is_none() {
            let root = self.base.trim_end_matches("/v1");
            let props = call_json(self.http.get(format!("{root}/props"))).await;
            max_context_length = props.ok().as_ref().and_then(props_context);
        }
        id.clone_into(&mut self.served.lock());
        *self.context.lock() = max_context_length;
        Ok(BackendInfo {
            model: model_name(id),
            max_length: None,
            max_context_length,
            software: "OpenAI-compatible".into(),
        })
    }

    /// Checks that the backend answers.
    pub(crate) async fn alive(&self) -> Result<(), BackendError> {
        call_json(self.http.get(format!("{}/models", self.base)))
            .await
            .map(drop)
    }

    /// `POST /v1/completions`; the text of the first choice. With `progress`, streamed
    /// (`stream: true`): the text so far is kept in `progress` as it arrives.
    pub(crate) async fn generate(
        &self,
        payload: &Payload,
        progress: Option<&Progress>,
    ) -> Result<Generated, BackendError> {
        let model = self.served.lock().clone();
        let seed = seed_for(payload)?;
        let mut body = completion_body(payload, &model, seed);
        let context = match *self.context.lock() {
            Some(known) if payload.max_context_length > 0 => payload.max_context_length.min(known),
            _ => payload.max_context_length,
        };
        let prompt = self
            .fitter
            .fit(&self.http, &payload.prompt, context, body.max_tokens)
            .await;
        body.prompt = &prompt;
        let stops = payload
            .samplers
            .stop_sequence
            .as_deref()
            .unwrap_or_default();
        let cap = generation_cap(payload.max_length);
        if let Some(progress) = progress {
            body.stream = true;
            let request = self
                .http
                .post(format!("{}/completions", self.base))
                .json(&body);
            let (text, tokens) = stream_text(request, cap, stops, progress).await?;
            return Ok(Generated {
                text,
                tokens,
                seed: Some(seed),
            });
        }
        let request = self
            .http
            .post(format!("{}/completions", self.base))
            .json(&body);
        let answer = call_json_within(request, cap).await?;
        let shown = answer.to_string().chars().take(300).collect::<String>();
        let answer: CompletionAnswer = serde_json::from_value(answer).map_err(|e| {
            BackendError::Failed(format!("the completion is not understood ({e}): {shown}"))
        })?;
        let mut text = answer
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.text)
            .ok_or_else(|| {
                BackendError::Failed(format!("the completion has no choices[0].text: {shown}"))
            })?;
        if let Some(end) = first_stop(&text, 0, stops) {
            text.truncate(end);
        }
        let tokens = answer
            .usage
            .and_then(|usage| usage.completion_tokens)
            .and_then(|n| u32::try_from(n).ok());
        Ok(Generated {
            text,
            tokens,
            seed: Some(seed),
        })
    }
}

/// One event of a completion stream, as far as the worker reads it.
#[derive(Debug, Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// Sends a streaming completion and reads its events (`data: {...}`, then `data: [DONE]`),
/// keeping the text so far in `progress`; the whole text at the end, and the tokens
/// generated: the server's `usage` where a chunk has one, else the chunks that carried text
/// (these servers send one token per chunk); at most `cap` bytes. A server that answers with plain JSON instead is
/// read as an ordinary completion.
async fn stream_text(
    request: reqwest::RequestBuilder,
    cap: usize,
    stops: &[String],
    progress: &Progress,
) -> Result<(String, Option<u32>), BackendError> {
    let response = events::send(request).await?;
    if !events::is_event_stream(&response) {
        let bytes = read_capped(response, cap).await?;
        let answer: CompletionAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| BackendError::Failed(format!("the completion is not understood: {e}")))?;
        let tokens = answer
            .usage
            .and_then(|u| u.completion_tokens)
            .and_then(|n| u32::try_from(n).ok());
        let mut text = answer
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.text)
            .unwrap_or_default();
        if let Some(end) = first_stop(&text, 0, stops) {
            text.truncate(end);
        }
        progress.send_replace(text.clone());
        return Ok((text, tokens));
    }
    let mut text = String::new();
    let mut chunks: u32 = 0;
    let mut usage: Option<u32> = None;
    events::each_data(response, cap, |data| {
        if data == "[DONE]" {
            return Ok(true);
        }
        let event: StreamChunk = serde_json::from_str(data).map_err(|e| {
            BackendError::Failed(format!(
                "the backend's stream is not understood ({e}): {data}"
            ))
        })?;
        if let Some(n) = event.usage.and_then(|u| u.completion_tokens) {
            usage = u32::try_from(n).ok();
        }
        if let Some(delta) = event.choices.into_iter().next().and_then(|c| c.text) {
            if !delta.is_empty() {
                chunks += 1;
                let before = text.len();
                text.push_str(&delta);
                // At a stop sequence the text ends, and so does the stream (the server stops
                // generating when the connection closes).
                let stop = first_stop(&text, before, stops);
                if let Some(end) = stop {
                    text.truncate(end);
                }
                progress.send_modify(|so_far| so_far.push_str(&text[before..]));
                return Ok(stop.is_some());
            }
        }
        Ok(false)
    })
    .await?;
    Ok((text, usage.or(Some(chunks))))
}

/// The model's name as hordes know it: a model file (`/models/x.Q4_K_M.gguf`, as llama.cpp
/// and llama-cpp-python report it) is named as KoboldCpp names the same file
/// (`koboldcpp/x.Q4_K_M`), so that requests for that model reach workers of either backend;
/// a hub name (`org/Model`, as vLLM reports it) stays as it is.
fn model_name(id: &str) -> String {
    let id = id.trim();
    let is_file = id.starts_with('/')
        || id.starts_with('.')
        || [".gguf", ".bin", ".ggml"]
            .iter()
            .any(|ext| id.to_ascii_lowercase().ends_with(ext));
    if !is_file {
        return id.to_owned();
    }
    let file = id.rsplit(['/', '\\']).next().unwrap_or(id);
    let stem = match file.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    };
    // KoboldCpp keeps letters, digits, `_`, `.` and `-` of the file's name.
    let clean: String = stem
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect();
    format!("koboldcpp/{}", if clean.is_empty() { stem } else { &clean })
}

/// The completion request for a job: `max_length` → `max_tokens`, `rep_pen` →
/// `repeat_penalty`, `typical` → `typical_p`, with `seed`; the rest keep their names or are
/// dropped (`stop_sequence` is the worker's to apply).
fn completion_body<'a>(payload: &'a Payload, model: &'a str, seed: u32) -> Completion<'a> {
    let samplers = &payload.samplers;
    Completion {
        model,
        prompt: &payload.prompt,
        max_tokens: Some(payload.max_length)
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_LENGTH),
        temperature: samplers.temperature,
        top_p: samplers.top_p,
        top_k: samplers.top_k,
        min_p: samplers.min_p,
        typical_p: samplers.typical,
        repeat_penalty: samplers.rep_pen,
        seed,
        stream: false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn horde_parameters_map_to_completion_fields() {
        let payload: Payload = serde_json::from_value(json!({
            "prompt": "Once", "n": 1, "max_length": 64, "max_context_length": 1024,
            "temperature": 0.5, "top_k": 40, "rep_pen": 1.1, "typical": 0.9,
            "stop_sequence": ["\n\n"], "frmttriminc": true, "sampler_order": [6, 0]
        }))
        .unwrap();
        let body = serde_json::to_value(completion_body(&payload, "tiny", 7)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "tiny", "prompt": "Once", "max_tokens": 64, "temperature": 0.5,
                "top_k": 40, "repeat_penalty": 1.1, "typical_p": 0.9, "seed": 7
            })
        );
    }

    #[test]
    fn file_paths_become_model_names_and_hub_names_stay() {
        assert_eq!(
            model_name("/models/Llama-3-8B.Q4_K_M.gguf"),
            "koboldcpp/Llama-3-8B.Q4_K_M"
        );
        assert_eq!(model_name("tiny.gguf"), "koboldcpp/tiny");
        assert_eq!(
            model_name("/m/My Model (Q4)+v2.gguf"),
            "koboldcpp/MyModelQ4v2"
        );
        assert_eq!(
            model_name("Mïstral_7B-v0.3.gguf"),
            "koboldcpp/Mïstral_7B-v0.3"
        );
        assert_eq!(model_name("meta-llama/Llama-3-8B"), "meta-llama/Llama-3-8B");
        assert_eq!(model_name("llama3:8b"), "llama3:8b");
    }

    #[test]
    fn the_base_url_works_with_or_without_v1() {
        let http = reqwest::Client::new();
        assert_eq!(
            OpenAi::new(http.clone(), "http://h:8080").base,
            "http://h:8080/v1"
        );
        assert_eq!(
            OpenAi::new(http, "http://h:8080/v1").base,
            "http://h:8080/v1"
        );
    }
}
