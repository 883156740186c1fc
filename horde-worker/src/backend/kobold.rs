//! The KoboldAI API (KoboldAI United, KoboldCpp): `/api/v1/model`, `/api/v1/config/*`,
//! `/api/v1/generate`, and KoboldCpp's `/api/extra/version` and `/api/extra/abort`.
//!
//! KoboldAI refuses a generate body with a key it does not define (422), so the body holds
//! only the fields below, whatever else the horde's payload carries.

use std::sync::atomic::{AtomicBool, Ordering};

use horde_api::Payload;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    call_json, call_json_within, events, generation_cap, seed_for, whole, BackendError,
    BackendInfo, Generated, Progress,
};

/// The generate fields of the KoboldAI API that a horde payload may carry.
const KOBOLD_FIELDS: [&str; 21] = [
    "prompt",
    "n",
    "max_length",
    "max_context_length",
    "temperature",
    "top_p",
    "top_k",
    "top_a",
    "typical",
    "tfs",
    "rep_pen",
    "rep_pen_range",
    "rep_pen_slope",
    "sampler_order",
    "stop_sequence",
    "singleline",
    "frmttriminc",
    "frmtrmblln",
    "frmtrmspch",
    "frmtadsnsp",
    "use_default_badwordsids",
];

/// Fields only KoboldCpp defines (sent only to KoboldCpp).
const KOBOLDCPP_FIELDS: [&str; 4] = [
    "min_p",
    "dynatemp_range",
    "dynatemp_exponent",
    "smoothing_factor",
];

/// What KoboldAI answers for the model when none is loaded.
const NO_MODEL: &str = "ReadOnly";

/// A KoboldAI-API backend.
#[derive(Debug)]
pub(crate) struct Kobold {
    http: reqwest::Client,
    base: String,
    /// Set by [`Kobold::probe`]: the backend is KoboldCpp (it takes `genkey` and abort).
    koboldcpp: AtomicBool,
    /// `/api/extra/perf` answered 4xx: it is not asked again.
    no_perf: AtomicBool,
}

/// How busy KoboldCpp is, from `GET /api/extra/perf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Load {
    /// Generations it finished since it started (`total_gens`).
    pub(crate) finished: u64,
    /// Generations running or waiting there now (`queue`, and one if not `idle`).
    pub(crate) busy: u64,
}

impl Kobold {
    /// A backend at `base_url` (`http://host:port`; a trailing `/api` is accepted).
    pub(crate) fn new(http: reqwest::Client, base_url: &str) -> Kobold {
        let base = base_url
            .trim_end_matches("/api/v1")
            .trim_end_matches("/api")
            .to_owned();
        Kobold {
            http,
            base,
            koboldcpp: AtomicBool::new(false),
            no_perf: AtomicBool::new(false),
        }
    }

    /// The loaded model, whether this is KoboldCpp, and the configured limits.
    pub(crate) async fn probe(&self) -> Result<BackendInfo, BackendError> {
        let model = self.model().await?;
        let version = call_json(self.http.get(format!("{}/api/extra/version", self.base))).await;
        let software = match &version {
            Ok(answer) if answer["result"] == "KoboldCpp" => format!(
                "KoboldCpp {}",
                answer["version"].as_str().unwrap_or_default()
            ),
            _ => "KoboldAI".to_owned(),
        };
        self.koboldcpp
            .store(software.starts_with("KoboldCpp"), Ordering::Relaxed);
        let max_length = self.config("max_length").await;
        let max_context_length = self.config("max_context_length").await;
        Ok(BackendInfo {
            model,
            max_length,
            max_context_length,
            software: software.trim().to_owned(),
        })
    }

    /// Checks that the backend answers and has a model loaded.
    pub(crate) async fn alive(&self) -> Result<(), BackendError> {
        self.model().await.map(drop)
    }

    /// `GET /api/v1/model`.
    async fn model(&self) -> Result<String, BackendError> {
        let answer = call_json(self.http.get(format!("{}/api/v1/model", self.base))).await?;
        match answer["result"].as_str() {
            Some(NO_MODEL) => Err(BackendError::Failed(
                "the backend has no model loaded (it answers \"ReadOnly\")".into(),
            )),
            Some(name) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
            _ => Err(BackendError::Failed(format!(
                "GET /api/v1/model answered {answer}, not {{\"result\": \"<model>\"}}"
            ))),
        }
    }

    /// `GET /api/v1/config/<name>` → `{"value": n}`; `None` if it does not say.
    async fn config(&self, name: &str) -> Option<u32> {
        let url = format!("{}/api/v1/config/{name}", self.base);
        let answer = call_json(self.http.get(url)).await.ok()?;
        whole(answer.as_object()?, "value").and_then(|n| u32::try_from(n).ok())
    }

    /// `POST /api/v1/generate` with the KoboldAI fields of `payload`; on KoboldCpp, its
    /// stream (`/api/extra/generate/stream`), keeping the text so far in `progress`.
    pub(crate) async fn generate(
        &self,
        payload: &Payload,
        genkey: &str,
        progress: &Progress,
    ) -> Result<Generated, BackendError> {
        let seed = seed_for(payload)?;
        let koboldcpp = self.koboldcpp.load(Ordering::Relaxed);
        let mut body = generate_body(payload, koboldcpp, genkey);
        if let Value::Object(fields) = &mut body {
            fields.insert("sampler_seed".into(), Value::from(seed));
        }
        if koboldcpp {
            let request = self
                .http
                .post(format!("{}/api/extra/generate/stream", self.base))
                .json(&body);
            let cap = generation_cap(payload.max_length);
            let (text, tokens) = stream_tokens(request, cap, progress).await?;
            return Ok(Generated {
                text,
                tokens,
                seed: Some(seed),
            });
        }
        let request = self
            .http
            .post(format!("{}/api/v1/generate", self.base))
            .json(&body);
        let answer = call_json_within(request, generation_cap(payload.max_length)).await?;
        let text = answer["results"][0]["text"].as_str().ok_or_else(|| {
            BackendError::Failed(format!(
                "the generate answer has no results[0].text: {}",
                truncate(&answer.to_string())
            ))
        })?;
        Ok(Generated {
            text: text.to_owned(),
            tokens: None,
            seed: Some(seed),
        })
    }

    /// KoboldCpp's load; `None` on KoboldAI, or if it does not say.
    pub(crate) async fn load(&self) -> Option<Load> {
        if !self.koboldcpp.load(Ordering::Relaxed) || self.no_perf.load(Ordering::Relaxed) {
            return None;
        }
        let url = format!("{}/api/extra/perf", self.base);
        match call_json(self.http.get(url)).await {
            Ok(answer) => {
                let fields = answer.as_object()?;
                let running = whole(fields, "idle").is_some_and(|idle| idle == 0);
                Some(Load {
                    finished: whole(fields, "total_gens")?,
                    busy: whole(fields, "queue").unwrap_or(0) + u64::from(running),
                })
            }
            Err(BackendError::Refused(_)) => {
                self.no_perf.store(true, Ordering::Relaxed);
                None
            }
            Err(_) => None,
        }
    }

    /// `POST /api/extra/abort {"genkey"}` on KoboldCpp; nothing elsewhere.
    pub(crate) async fn abort(&self, genkey: &str) {
        if self.koboldcpp.load(Ordering::Relaxed) {
            let request = self
                .http
                .post(format!("{}/api/extra/abort", self.base))
                .json(&Abort { genkey });
            if let Err(e) = call_json(request).await {
                tracing::debug!(error = %e, "the backend's abort failed");
            }
        }
    }
}

/// One event of KoboldCpp's stream: `{"token": "...", "finish_reason": null}`; the last has a
/// `finish_reason` (`length`, `stop`).
#[derive(Debug, Deserialize)]
struct StreamEvent {
    #[serde(default)]
    token: String,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// Reads KoboldCpp's stream (`event: message` with `data: {"token", "finish_reason"}`),
/// keeping the text so far in `progress`: the whole text (the tokens joined, as its
/// `/api/v1/generate` answers the same request) and the events that carried text (one token
/// each); at most `cap` bytes.
async fn stream_tokens(
    request: reqwest::RequestBuilder,
    cap: usize,
    progress: &Progress,
) -> Result<(String, Option<u32>), BackendError> {
    let response = events::send(request).await?;
    if !events::is_event_stream(&response) {
        return Err(BackendError::Failed(
            "KoboldCpp's /api/extra/generate/stream answered without an event stream".into(),
        ));
    }
    let mut text = String::new();
    let mut tokens: u32 = 0;
    events::each_data(response, cap, |data| {
        let event: StreamEvent = serde_json::from_str(data).map_err(|e| {
            BackendError::Failed(format!(
                "the backend's stream is not understood ({e}): {data}"
            ))
        })?;
        if !event.token.is_empty() {
            tokens += 1;
            text.push_str(&event.token);
            progress.send_modify(|so_far| so_far.push_str(&event.token));
        }
        Ok(event.finish_reason.is_some())
    })
    .await?;
    Ok((text, Some(tokens)))
}

/// KoboldCpp's `POST /api/extra/abort`.
#[derive(Debug, Serialize)]
struct Abort<'a> {
    genkey: &'a str,
}

/// The generate body: the payload's KoboldAI fields, and on KoboldCpp its own fields and the
/// `genkey`; `quiet` asks KoboldAI to keep the requester's prompt out of its console
/// (KoboldCpp needs its own `--quiet`).
fn generate_body(payload: &Payload, koboldcpp: bool, genkey: &str) -> Value {
    let payload = match serde_json::to_value(payload) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    let extra: &[&str] = if koboldcpp { &KOBOLDCPP_FIELDS } else { &[] };
    let mut body: Map<String, Value> = KOBOLD_FIELDS
        .iter()
        .chain(extra)
        .filter_map(|&key| Some((key.to_owned(), payload.get(key)?.clone())))
        .collect();
    body.insert("quiet".into(), Value::Bool(true));
    if koboldcpp {
        body.insert("genkey".into(), Value::String(genkey.to_owned()));
    }
    Value::Object(body)
}

/// The start of `text`, for error messages.
fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn only_kobold_fields_reach_the_backend() {
        // As another horde may send it: with fields no KoboldAI defines.
        let payload: Payload = serde_json::from_value(json!({
            "prompt": "Hi", "n": 1, "max_length": 80, "max_context_length": 1024,
            "temperature": 0.7, "min_p": 0.1, "models": ["x"], "trusted_workers": true,
            "dry_run": false, "sampler_order": [6, 0, 1], "stop_sequence": ["\n"]
        }))
        .unwrap();
        let payload = &payload;
        let kobold = generate_body(payload, false, "HORDEREQ_1");
        assert_eq!(
            kobold,
            json!({
                "prompt": "Hi", "n": 1, "max_length": 80, "max_context_length": 1024,
                "temperature": 0.7, "sampler_order": [6, 0, 1], "stop_sequence": ["\n"],
                "quiet": true
            })
        );
        let koboldcpp = generate_body(payload, true, "HORDEREQ_1");
        assert_eq!(koboldcpp["min_p"], json!(0.1));
        assert_eq!(koboldcpp["genkey"], json!("HORDEREQ_1"));
        assert!(koboldcpp.get("models").is_none());
    }

    #[test]
    fn the_base_url_may_end_in_api() {
        let http = reqwest::Client::new();
        assert_eq!(
            Kobold::new(http.clone(), "http://h:5001/api").base,
            "http://h:5001"
        );
        assert_eq!(
            Kobold::new(http, "http://h:5001/api/v1").base,
            "http://h:5001"
        );
    }
}
