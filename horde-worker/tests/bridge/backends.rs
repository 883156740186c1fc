//! Test backends as strict as the real ones: KoboldAI United refuses a generate body with a
//! key its API does not define (422); KoboldCpp also takes its own samplers, `genkey` and
//! abort; the OpenAI-compatible one takes `/v1/completions` fields only.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::support::BackendState;

/// The generate keys KoboldAI United defines (the ones a horde payload can carry, and more).
const UNITED_KEYS: [&str; 33] = [
    "prompt",
    "use_memory",
    "use_story",
    "use_authors_note",
    "use_world_info",
    "use_userscripts",
    "soft_prompt",
    "max_length",
    "max_context_length",
    "n",
    "disable_output_formatting",
    "frmttriminc",
    "frmtrmblln",
    "frmtrmspch",
    "singleline",
    "use_default_badwordsids",
    "disable_input_formatting",
    "frmtadsnsp",
    "quiet",
    "sampler_order",
    "sampler_seed",
    "sampler_full_determinism",
    "stop_sequence",
    "rep_pen",
    "rep_pen_range",
    "rep_pen_slope",
    "top_k",
    "top_a",
    "top_p",
    "tfs",
    "typical",
    "temperature",
    "eps_cutoff",
];

/// What KoboldCpp adds.
const KOBOLDCPP_KEYS: [&str; 5] = [
    "genkey",
    "min_p",
    "dynatemp_range",
    "dynatemp_exponent",
    "smoothing_factor",
];

/// The completion keys the OpenAI-compatible test backend takes.
const COMPLETION_KEYS: [&str; 12] = [
    "stream",
    "model",
    "prompt",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "stop",
    "seed",
];

/// KoboldAI United: no `/api/extra`, strict generate.
pub fn kobold_united(state: Arc<BackendState>) -> Router {
    kobold_common()
        .route("/api/v1/generate", post(generate_united))
        .with_state(state)
}

/// KoboldCpp: `/api/extra/version`, `genkey`, abort.
pub fn koboldcpp(state: Arc<BackendState>) -> Router {
    kobold_common()
        .route("/api/v1/generate", post(generate_cpp))
        .route("/api/extra/generate/stream", post(stream_cpp))
        .route(
            "/api/extra/version",
            get(|| async { Json(json!({ "result": "KoboldCpp", "version": "1.80.3" })) }),
        )
        .route("/api/extra/abort", post(abort))
        .route(
            "/api/extra/perf",
            get(|State(state): State<Arc<BackendState>>| async move {
                use std::sync::atomic::Ordering::SeqCst;
                if !state.behavior.lock().perf {
                    return StatusCode::NOT_FOUND.into_response();
                }
                // KoboldCpp runs one generation and queues the rest.
                let running = state.running.load(SeqCst);
                Json(json!({
                    "total_gens": state.finished.load(SeqCst),
                    "queue": running.saturating_sub(1),
                    "idle": u64::from(running == 0),
                }))
                .into_response()
            }),
        )
        .with_state(state)
}

/// An OpenAI-compatible completions server whose model is a file path, as llama.cpp's is.
pub fn openai(state: Arc<BackendState>) -> Router {
    Router::new()
        .route(
            "/v1/models",
            get(|State(state): State<Arc<BackendState>>| async move {
                let model = state.behavior.lock().model.clone();
                Json(json!({ "object": "list", "data": [{ "id": model, "object": "model" }] }))
            }),
        )
        .route("/v1/completions", post(complete))
        // llama.cpp's server: its context size and its tokenizer (here one token a word).
        .route(
            "/props",
            get(|State(state): State<Arc<BackendState>>| async move {
                match state.behavior.lock().max_context_length {
                    Some(n_ctx) => {
                        Json(json!({ "default_generation_settings": { "n_ctx": n_ctx } }))
                            .into_response()
                    }
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .route(
            "/tokenize",
            post(
                |State(state): State<Arc<BackendState>>, Json(body): Json<Value>| async move {
                    state.seen.lock().tokenized += 1;
                    let words = body["content"]
                        .as_str()
                        .unwrap_or_default()
                        .split_whitespace();
                    Json(json!({ "tokens": words.map(|_| 1).collect::<Vec<u32>>() }))
                },
            ),
        )
        .with_state(state)
}

fn kobold_common() -> Router<Arc<BackendState>> {
    Router::new()
        .route(
            "/api/v1/model",
            get(|State(state): State<Arc<BackendState>>| async move {
                Json(json!({ "result": state.behavior.lock().model }))
            }),
        )
        .route(
            "/api/v1/config/max_length",
            get(|State(state): State<Arc<BackendState>>| async move {
                config_value(state.behavior.lock().max_length)
            }),
        )
        .route(
            "/api/v1/config/max_context_length",
            get(|State(state): State<Arc<BackendState>>| async move {
                config_value(state.behavior.lock().max_context_length)
            }),
        )
}

fn config_value(value: Option<u32>) -> Response {
    match value {
        Some(value) => Json(json!({ "value": value })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn generate_united(state: State<Arc<BackendState>>, body: Json<Value>) -> Response {
    generate(state, body, &UNITED_KEYS).await
}

async fn generate_cpp(state: State<Arc<BackendState>>, body: Json<Value>) -> Response {
    let keys: Vec<&str> = UNITED_KEYS.iter().chain(&KOBOLDCPP_KEYS).copied().collect();
    generate(state, body, &keys).await
}

/// KoboldCpp's stream, written from its documented format: an `event: message` per piece of
/// text with `data: {"token": "...", "finish_reason": null}`, the last with its finish reason.
async fn stream_cpp(state: State<Arc<BackendState>>, body: Json<Value>) -> Response {
    let gap = state.behavior.lock().stream_gap;
    if state.behavior.lock().endless {
        state.seen.lock().generates.push(body.0);
        let piece = "event: message\ndata: {\"token\": \"more \", \"finish_reason\": null}\n\n";
        return endless("text/event-stream", "", piece);
    }
    let answer = generate_cpp(state, body).await;
    if !answer.status().is_success() {
        return answer;
    }
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let whole: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let text = whole["results"][0]["text"].as_str().unwrap_or_default();
    let mut events: Vec<String> = text
        .split_inclusive(' ')
        .map(|piece| {
            let data = json!({ "token": piece, "finish_reason": null });
            format!("event: message\ndata: {data}\n\n")
        })
        .collect();
    let last = json!({ "token": "", "finish_reason": "length" });
    events.push(format!("event: message\ndata: {last}\n\n"));
    event_stream(events, gap)
}

/// A `text/event-stream` answer sending `events` one by one, `gap` apart.
fn event_stream(events: Vec<String>, gap: Duration) -> Response {
    let events = futures_util::stream::unfold(events.into_iter(), move |mut rest| async move {
        let event = rest.next()?;
        tokio::time::sleep(gap).await;
        Some((Ok::<_, std::convert::Infallible>(event), rest))
    });
    (
        [("content-type", "text/event-stream")],
        axum::body::Body::from_stream(events),
    )
        .into_response()
}

/// An answer that never ends: `head`, then `piece` again and again, as fast as it is read.
fn endless(content_type: &'static str, head: &'static str, piece: &'static str) -> Response {
    use futures_util::StreamExt;
    let head = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(head) });
    let rest = futures_util::stream::repeat_with(move || Ok(piece));
    (
        [("content-type", content_type)],
        axum::body::Body::from_stream(head.chain(rest)),
    )
        .into_response()
}

/// Refuses unknown keys with 422, as KoboldAI does; otherwise generates.
async fn generate(
    State(state): State<Arc<BackendState>>,
    Json(body): Json<Value>,
    keys: &[&str],
) -> Response {
    let unknown = body
        .as_object()
        .into_iter()
        .flat_map(|map| map.keys())
        .find(|key| !keys.contains(&key.as_str()));
    if let Some(key) = unknown {
        let detail = json!({ "detail": { key.clone(): ["Unknown field."] } });
        state.seen.lock().refused.push(body);
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(detail)).into_response();
    }
    state.seen.lock().generates.push(body);
    if state.behavior.lock().endless {
        return endless("application/json", "{\"results\": [{\"text\": \"", "more ");
    }
    match state.generate().await {
        Ok(text) => Json(json!({ "results": [{ "text": text }] })).into_response(),
        Err(status) => status_answer(status),
    }
}

async fn abort(State(state): State<Arc<BackendState>>, Json(body): Json<Value>) -> Json<Value> {
    state.abort(body["genkey"].as_str().unwrap_or_default().to_owned());
    Json(json!({ "success": true, "done": true }))
}

async fn complete(State(state): State<Arc<BackendState>>, Json(body): Json<Value>) -> Response {
    let served = state.behavior.lock().model.clone();
    let unknown = body
        .as_object()
        .into_iter()
        .flat_map(|map| map.keys())
        .any(|key| !COMPLETION_KEYS.contains(&key.as_str()));
    if unknown || body["model"] != served.as_str() {
        state.seen.lock().refused.push(body);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "bad request" })),
        )
            .into_response();
    }
    // As llama.cpp refuses a prompt that does not leave room for the tokens asked for.
    let n_ctx = state.behavior.lock().max_context_length;
    let prompt_tokens = body["prompt"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .count();
    let asked = body["max_tokens"].as_u64().unwrap_or(16) as usize;
    if n_ctx.is_some_and(|n_ctx| prompt_tokens + 1 + asked > n_ctx as usize) {
        state.seen.lock().refused.push(body);
        let error = json!({ "error": { "code": 400, "type": "exceed_context_size_error",
            "message": "the request exceeds the available context size" } });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let stream = body["stream"] == true;
    let gap = state.behavior.lock().stream_gap;
    state.seen.lock().generates.push(body);
    match state.generate().await {
        // Server-sent events as llama.cpp's server sends them: a chunk per piece of text.
        Ok(text) if stream => {
            let mut events: Vec<String> = text
                .split_inclusive(' ')
                .map(|piece| {
                    let chunk = json!({
                        "object": "text_completion",
                        "choices": [{ "index": 0, "text": piece, "finish_reason": null }]
                    });
                    format!("data: {chunk}\n\n")
                })
                .collect();
            // A last chunk with the count, as servers asked for `include_usage` send.
            let usage = json!({ "choices": [], "usage": { "completion_tokens": 9 } });
            events.push(format!("data: {usage}\n\ndata: [DONE]\n\n"));
            event_stream(events, gap)
        }
        Ok(text) => Json(json!({
            "object": "text_completion",
            "choices": [{ "index": 0, "text": text, "finish_reason": "length" }],
            "usage": { "prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14 }
        }))
        .into_response(),
        Err(status) => status_answer(status),
    }
}

fn status_answer(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "detail": "test backend error" }))).into_response()
}
