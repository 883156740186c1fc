//! Text generation: request (async), status, cancel, and the worker side (pop, submit).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use horde_core::{
    GenParams, GenerationState, Horde, JobId, Outcome, PopQuery, RequestId, RequestSpec,
    RequestStatus, Submission, SubmitState, Timestamp, WorkerId,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{parse_uuid, Caller, Json, Registered};
use crate::driver::Driver;
use crate::error::ApiError;

/// `params` of a generation request: the fields the core needs, plus the sampler and format
/// fields passed to the worker. Unknown keys are dropped (KoboldAI rejects them).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ParamsIn {
    n: Option<u32>,
    max_length: Option<u32>,
    max_context_length: Option<u32>,
    #[serde(flatten)]
    samplers: Samplers,
}

/// The KoboldAI generate fields a client may set, passed through verbatim.
#[derive(Debug, Default, Deserialize, Serialize)]
struct Samplers {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_a: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    typical: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tfs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rep_pen: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rep_pen_range: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rep_pen_slope: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dynatemp_range: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dynatemp_exponent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    smoothing_factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sampler_order: Option<Vec<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequence: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    singleline: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frmttriminc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frmtrmblln: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frmtrmspch: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frmtadsnsp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    use_default_badwordsids: Option<bool>,
}

/// `POST /generate/text/async`.
#[derive(Debug, Deserialize)]
pub(crate) struct AsyncRequest {
    prompt: Option<String>,
    params: Option<ParamsIn>,
    models: Option<Vec<String>>,
    workers: Option<Vec<Uuid>>,
    worker_blacklist: Option<bool>,
    trusted_workers: Option<bool>,
    nsfw: Option<bool>,
    dry_run: Option<bool>,
}

impl AsyncRequest {
    fn into_spec(self, owner: horde_core::UserId, now: Timestamp) -> Result<RequestSpec, ApiError> {
        let prompt = self.prompt.unwrap_or_default();
        if prompt.is_empty() {
            return Err(ApiError::invalid(
                "MissingPrompt",
                "prompt",
                "the prompt must not be empty",
            ));
        }
        let params = self.params.unwrap_or_default();
        let defaults = GenParams::default();
        let passthrough = serde_json::to_string(&params.samplers)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut spec = RequestSpec::new(RequestId(new_id()), owner, prompt, now);
        spec.params = GenParams {
            n: params.n.unwrap_or(defaults.n),
            max_length: params.max_length.unwrap_or(defaults.max_length),
            max_context_length: params
                .max_context_length
                .unwrap_or(defaults.max_context_length),
        };
        spec.passthrough = passthrough.into();
        spec.models = self
            .models
            .unwrap_or_default()
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(Arc::from)
            .collect();
        spec.workers = self
            .workers
            .unwrap_or_default()
            .into_iter()
            .map(WorkerId)
            .collect();
        spec.worker_blacklist = self.worker_blacklist.unwrap_or(false);
        spec.trusted_workers = self.trusted_workers.unwrap_or(false);
        spec.nsfw = self.nsfw.unwrap_or(false);
        Ok(spec)
    }
}

/// A new request, job or worker id: a time-ordered UUID (v7), so that the database appends
/// new rows at the end of its indexes instead of touching a random page per insert.
fn new_id() -> Uuid {
    Uuid::now_v7()
}

pub(crate) async fn request(
    State(state): State<Driver>,
    Caller(user): Caller,
    Json(body): Json<AsyncRequest>,
) -> Result<Response, ApiError> {
    let dry_run = body.dry_run.unwrap_or(false);
    let spec = body.into_spec(user, state.now())?;
    if dry_run {
        let kudos = state.read(|core, now| core.horde().estimate(&spec, now));
        return Ok(JsonBody(json!({ "kudos": kudos })).into_response());
    }
    let (id, kudos, possible) = state
        .change(|txn| {
            let kudos = txn.core().horde().estimate(&spec, txn.now());
            let id = txn.apply(|horde, now| horde.enqueue(now, spec))?;
            let possible = txn.core().horde().is_possible(id, txn.now());
            Ok((id, kudos, possible))
        })
        .await?;
    let mut body = json!({ "id": id.to_string(), "kudos": kudos });
    if !possible {
        body["message"] = json!(
            "No worker currently online can serve this request; it will wait in the queue \
             until one can."
        );
    }
    Ok((StatusCode::ACCEPTED, JsonBody(body)).into_response())
}

/// `GET /generate/text/status/{id}` body.
fn status_body(horde: &Horde, status: &RequestStatus) -> Value {
    let state = status.state;
    let outcome = state.closed.map(|(outcome, _)| outcome);
    let generations: Vec<Value> = status
        .generations
        .iter()
        .map(|(job, generation)| {
            // horde-sdk reads gen_metadata as a list of entries and the seed as an integer.
            let metadata = generation
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str::<Value>(m).ok())
                .filter(Value::is_array)
                .unwrap_or_else(|| json!([]));
            let seed = generation
                .seed
                .as_deref()
                .and_then(|s| s.trim().parse::<i64>().ok());
            json!({
                "id": job.id.to_string(),
                "text": generation.text,
                "seed": seed,
                "worker_id": job.worker.to_string(),
                "worker_name": horde.worker(job.worker).map(|w| w.name.as_str()).unwrap_or(""),
                "model": &*job.model,
                "state": match generation.state {
                    GenerationState::Ok => "ok",
                    GenerationState::Censored => "censored",
                },
                "gen_metadata": metadata,
            })
        })
        .collect();
    json!({
        "finished": state.finished,
        "processing": state.processing,
        "restarted": state.restarts,
        "waiting": state.waiting,
        "done": outcome.is_some(),
        "faulted": matches!(outcome, Some(Outcome::Faulted | Outcome::Expired)),
        "is_possible": status.is_possible,
        "wait_time": status.wait_time,
        "queue_position": status.queue_position,
        "kudos": state.kudos,
        "generations": generations,
    })
}

pub(crate) async fn status(
    State(state): State<Driver>,
    Path(id): Path<String>,
) -> Result<JsonBody<Value>, ApiError> {
    let id = RequestId(parse_uuid(&id, "RequestNotFound")?);
    state.read(|core, now| {
        let status = core
            .horde()
            .status(id, now)
            .ok_or_else(|| ApiError::not_found("RequestNotFound", "no such request"))?;
        Ok(JsonBody(status_body(core.horde(), &status)))
    })
}

pub(crate) async fn cancel(
    State(state): State<Driver>,
    Path(id): Path<String>,
) -> Result<JsonBody<Value>, ApiError> {
    let id = RequestId(parse_uuid(&id, "RequestNotFound")?);
    state
        .change(|txn| {
            let not_found = || ApiError::not_found("RequestNotFound", "no such request");
            txn.apply(|horde, now| horde.cancel(now, id).ok_or_else(not_found))?;
            let horde = txn.core().horde();
            let status = horde.status(id, txn.now()).ok_or_else(not_found)?;
            Ok(JsonBody(status_body(horde, &status)))
        })
        .await
}

/// `POST /generate/text/pop`. Optional fields may be `null`.
#[derive(Debug, Deserialize)]
pub(crate) struct PopRequest {
    name: String,
    models: Option<Vec<String>>,
    max_length: Option<u32>,
    max_context_length: Option<u32>,
    priority_usernames: Option<Vec<String>>,
    nsfw: Option<bool>,
    threads: Option<u32>,
    amount: Option<u32>,
    bridge_agent: Option<String>,
}

pub(crate) async fn pop(
    State(state): State<Driver>,
    Registered(owner): Registered,
    Json(body): Json<PopRequest>,
) -> Result<JsonBody<Value>, ApiError> {
    state
        .change(|txn| {
            let priority_users = body
                .priority_usernames
                .unwrap_or_default()
                .iter()
                .filter_map(|name| txn.core().users.find_by_username(name).map(|u| u.id))
                .collect();
            let query = PopQuery {
                owner,
                name: body.name,
                models: body
                    .models
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| !m.is_empty())
                    .map(Arc::from)
                    .collect(),
                max_length: body.max_length.unwrap_or(512),
                max_context_length: body.max_context_length.unwrap_or(2048),
                priority_users,
                nsfw: body.nsfw.unwrap_or(false),
                threads: body.threads.unwrap_or(1),
                amount: body.amount.unwrap_or(1),
                bridge_agent: body
                    .bridge_agent
                    .unwrap_or_else(|| "unknown:0:unknown".into()),
            };
            let result = txn.apply(|horde, now| horde.pop(now, query, new_id))?;
            let body = match result.assignments.first() {
                Some(first) => {
                    let spec = &first.request;
                    let mut payload: Map<String, Value> =
                        serde_json::from_str(&spec.passthrough).unwrap_or_default();
                    payload.insert("prompt".into(), json!(&*spec.prompt));
                    payload.insert("n".into(), json!(1));
                    payload.insert("max_length".into(), json!(spec.params.max_length));
                    payload.insert(
                        "max_context_length".into(),
                        json!(spec.params.max_context_length),
                    );
                    let ids: Vec<String> = result
                        .assignments
                        .iter()
                        .map(|a| a.job.to_string())
                        .collect();
                    json!({
                        "payload": payload,
                        "id": first.job.to_string(),
                        "ids": ids,
                        "model": &*first.model,
                        "softprompt": null,
                        "ttl": first.ttl_secs,
                        "skipped": {},
                    })
                }
                None => {
                    let skipped: Map<String, Value> = result
                        .skipped
                        .iter()
                        .map(|(reason, count)| (reason.as_str().to_owned(), json!(count)))
                        .collect();
                    json!({
                        "payload": {},
                        "id": null,
                        "ids": [],
                        "softprompt": null,
                        "skipped": skipped,
                    })
                }
            };
            Ok(JsonBody(body))
        })
        .await
}

/// `POST /generate/text/submit`.
#[derive(Debug, Deserialize)]
pub(crate) struct SubmitRequest {
    id: Uuid,
    generation: Option<String>,
    state: Option<SubmitState>,
    seed: Option<Value>,
    gen_metadata: Option<Value>,
}

pub(crate) async fn submit(
    State(state): State<Driver>,
    Registered(owner): Registered,
    Json(body): Json<SubmitRequest>,
) -> Result<JsonBody<Value>, ApiError> {
    let seed = match body.seed {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    };
    let submission = Submission {
        state: body.state.unwrap_or(SubmitState::Ok),
        text: body.generation.unwrap_or_default(),
        seed,
        metadata: body
            .gen_metadata
            .filter(|m| !m.is_null())
            .map(|m| Arc::from(m.to_string())),
    };
    state
        .change(|txn| {
            let reward =
                txn.apply(|horde, now| horde.submit(now, owner, JobId(body.id), submission))?;
            Ok(JsonBody(json!({ "reward": reward })))
        })
        .await
}
