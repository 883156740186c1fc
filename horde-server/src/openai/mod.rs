//! The OpenAI-compatible front: `GET /v1/models`, `POST /v1/completions` and
//! `POST /v1/chat/completions` (also under `/api/v1`), on the same economy as the v2 API —
//! every call is a horde request, queued by kudos and paid exactly as one.
//!
//! A call waits for its request on the same connection ([`Follower`]); a client that goes away
//! cancels it (nothing unfinished is charged). `stream: true` answers OpenAI's server-sent
//! events as the worker posts its text. The key is `Authorization: Bearer <horde API key>` (or
//! the v2 `apikey` header); none, or `0000000000`, is the anonymous account. Errors have
//! OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the status the v2 API
//! gives the same refusal (`code` is the v2 `rc`).

use std::convert::Infallible;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{self, Stream};
use horde_core::UserId;
use serde::de::DeserializeOwned;

use crate::api::generate::enqueue;
use crate::api::stream::sse;
use crate::api::ClientIp;
use crate::driver::{Driver, Unavailable};
use crate::error::{ApiError, Rc};
use crate::follow::{Finished, Follower, Update};
use crate::wire::openai::{
    Choice, Completion, CompletionRequest, ErrorEnvelope, MessageOut, Model, ModelList,
    OpenAiError as ErrorOut, Usage,
};

mod convert;

use convert::{Plan, Template};

/// The routes, to nest under `/v1` and `/api/v1`.
pub fn routes() -> Router<Driver> {
    Router::new()
        .route("/models", get(models))
        .route("/completions", post(completions))
        .route("/chat/completions", post(chat_completions))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// A refusal in OpenAI's shape: the v2 API's [`ApiError`] (its status and rc), with OpenAI's
/// `code` where OpenAI has one of its own.
#[derive(Debug)]
pub struct OpenAiError {
    error: ApiError,
    code: Option<&'static str>,
}

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        OpenAiError { error, code: None }
    }
}

impl From<Unavailable> for OpenAiError {
    fn from(e: Unavailable) -> Self {
        ApiError::from(e).into()
    }
}

impl OpenAiError {
    /// The body, for an answer or a stream's last event.
    fn body(&self) -> ErrorEnvelope {
        let (status, rc) = self.error.status_and_rc();
        let kind = match status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            500.. => "server_error",
            _ => "invalid_request_error",
        };
        let param = match &self.error {
            ApiError::Validation { field, .. } => field.map(str::to_owned),
            _ => None,
        };
        let message = match &self.error {
            ApiError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        ErrorEnvelope {
            error: ErrorOut {
                message,
                kind: kind.into(),
                param,
                code: Some(self.code.unwrap_or(rc.as_str()).to_owned()),
            },
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = self.body();
        // The v2 answer gives the status and headers (`Retry-After`); the body is OpenAI's.
        let (parts, _) = self.error.into_response().into_parts();
        let mut response = (parts.status, axum::Json(body)).into_response();
        if let Some(value) = parts.headers.get(header::RETRY_AFTER) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, value.clone());
        }
        response
    }
}

async fn not_found() -> OpenAiError {
    ApiError::not_found(
        Rc::NotFound,
        "no such endpoint of the OpenAI-compatible API",
    )
    .into()
}

async fn method_not_allowed() -> OpenAiError {
    ApiError::MethodNotAllowed.into()
}

/// A JSON body, refused in OpenAI's shape.
#[derive(Debug)]
struct Body<T>(T);

impl<T: DeserializeOwned> FromRequest<Driver> for Body<T> {
    type Rejection = OpenAiError;

    async fn from_request(req: Request, state: &Driver) -> Result<Self, OpenAiError> {
        let crate::api::Json(body) = crate::api::Json::<T>::from_request(req, state).await?;
        Ok(Body(body))
    }
}

/// The caller, from `Authorization: Bearer <key>` (or the `apikey` header).
#[derive(Debug, Clone, Copy)]
struct Bearer(UserId);

impl FromRequestParts<Driver> for Bearer {
    type Rejection = OpenAiError;

    async fn from_request_parts(parts: &mut Parts, state: &Driver) -> Result<Self, OpenAiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|value| {
                let value = value.to_str().map_err(|_| ApiError::InvalidApiKey)?;
                let (scheme, key) = value.trim().split_once(' ').unwrap_or((value, ""));
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(ApiError::InvalidApiKey);
                }
                Ok(key.trim().to_owned())
            })
            .transpose()?;
        let apikey = parts
            .headers
            .get("apikey")
            .map(|v| {
                v.to_str()
                    .map(str::to_owned)
                    .map_err(|_| ApiError::InvalidApiKey)
            })
            .transpose()?;
        let key = bearer.or(apikey);
        let user = state
            .read(|core, _| core.users.authenticate(key.as_deref()))
            .map_err(ApiError::from)?;
        Ok(Bearer(user))
    }
}

/// `GET /v1/models`: the models an online worker serves.
async fn models(State(driver): State<Driver>) -> Response {
    let data = driver.read(|core, now| {
        core.horde()
            .model_stats(now)
            .into_iter()
            .filter(|m| m.workers > 0)
            .map(|m| Model {
                id: m.name.to_string(),
                object: "model".into(),
                created: 0,
                owned_by: "horde".into(),
            })
            .collect()
    });
    axum::Json(ModelList {
        object: "list".into(),
        data,
    })
    .into_response()
}

async fn completions(
    State(driver): State<Driver>,
    Bearer(user): Bearer,
    ClientIp(ip): ClientIp,
    Body(body): Body<CompletionRequest>,
) -> Result<Response, OpenAiError> {
    let plan = convert::plan(body, None)?;
    serve(driver, user, ip, plan, false).await
}

async fn chat_completions(
    State(driver): State<Driver>,
    Bearer(user): Bearer,
    ClientIp(ip): ClientIp,
    Body(body): Body<CompletionRequest>,
) -> Result<Response, OpenAiError> {
    let asked = convert::models(body.model.as_deref())?;
    let template = match asked.as_slice() {
        [one] => driver.read(|core, _| {
            core.horde()
                .model_reference()
                .lookup(one)
                .map(Template::of)
                .unwrap_or_default()
        }),
        _ => Template::default(),
    };
    let plan = convert::plan(body, Some(&template))?;
    serve(driver, user, ip, plan, true).await
}

/// What every answer of one call shares.
#[derive(Debug, Clone)]
struct Answer {
    id: String,
    created: u64,
    model: String,
    chat: bool,
    prompt_tokens: u32,
    max_length: u32,
}

impl Answer {
    fn completion(&self, choices: Vec<Choice>, usage: Option<Usage>, chunk: bool) -> Completion {
        let object = match (self.chat, chunk) {
            (true, true) => "chat.completion.chunk",
            (true, false) => "chat.completion",
            (false, _) => "text_completion",
        };
        Completion {
            id: self.id.clone(),
            object: object.into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        }
    }

    fn finish_reason(&self, finished: &Finished) -> String {
        if finished.tokens >= self.max_length {
            "length".into()
        } else {
            "stop".into()
        }
    }

    fn usage(&self, generations: &[Finished]) -> Usage {
        let completion_tokens = generations.iter().map(|g| g.tokens).sum::<u32>();
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens,
            total_tokens: self.prompt_tokens.saturating_add(completion_tokens),
        }
    }

    /// A choice holding `text` (the whole text, or in a chunk the new part).
    fn choice(&self, index: u32, text: String, finish: Option<String>, chunk: bool) -> Choice {
        let message = MessageOut {
            role: (!chunk).then(|| "assistant".to_owned()),
            content: Some(text.clone()),
        };
        Choice {
            index,
            text: (!self.chat).then_some(text),
            message: (self.chat && !chunk).then(|| message.clone()),
            delta: (self.chat && chunk).then_some(message),
            logprobs: None,
            finish_reason: finish,
        }
    }
}

/// Queues `plan` for `user` and answers when it is done, or streams it.
async fn serve(
    driver: Driver,
    user: UserId,
    ip: std::net::IpAddr,
    plan: Plan,
    chat: bool,
) -> Result<Response, OpenAiError> {
    let now = driver.now();
    let mut spec = crate::wire::request_spec(plan.request, user, now)?;
    // What the answer needs from the core, in one look: the caller's address fingerprint,
    // whether a named model is served, and the prompt's tokens as the horde counts them.
    let (origin, served, prompt_tokens) = driver.read(|core, _| {
        let horde = core.horde();
        (
            core.users.fingerprint(ip),
            plan.models.is_empty() || plan.models.iter().any(|m| horde.serves_model(m)),
            horde.config().economy.estimate_tokens(&spec.prompt),
        )
    });
    spec.origin = Some(origin);
    if !served {
        return Err(OpenAiError {
            error: ApiError::not_found(
                Rc::NotFound,
                format!(
                    "no online worker serves {}; GET /v1/models lists the models served now",
                    plan.models.join(", ")
                ),
            ),
            code: Some("model_not_found"),
        });
    }
    let answer = Answer {
        id: format!("{}-{}", if chat { "chatcmpl" } else { "cmpl" }, spec.id),
        created: now.millis() / 1000,
        model: plan.models.first().cloned().unwrap_or_else(|| "*".into()),
        chat,
        prompt_tokens,
        max_length: plan.max_length,
    };
    let mut follower =
        Follower::new(&driver, spec.id, plan.stream).map_err(|e| ApiError::TooMany {
            rc: Rc::RateLimited,
            message: e.to_string(),
            retry_after: Some(1),
        })?;
    if let Err(e) = enqueue(&driver, spec).await {
        follower.keep_on_drop();
        return Err(e.into());
    }
    if plan.stream {
        return Ok(sse(chunks(follower, answer, plan.include_usage)));
    }
    loop {
        match follower.next().await? {
            Some(Update::Done(generations)) => {
                let mut answer = answer;
                if let Some(first) = generations.first() {
                    answer.model.clone_from(&first.model);
                }
                let choices = generations
                    .iter()
                    .zip(0..)
                    .map(|(g, index)| {
                        answer.choice(index, g.text.clone(), Some(answer.finish_reason(g)), false)
                    })
                    .collect();
                let usage = answer.usage(&generations);
                let body = answer.completion(choices, Some(usage), false);
                return Ok((StatusCode::OK, axum::Json(body)).into_response());
            }
            Some(Update::Failed(message)) => return Err(ApiError::Unfinished(message).into()),
            Some(Update::Text(_)) => {}
            None => {
                return Err(
                    ApiError::Unfinished("the request ended without a result".into()).into(),
                )
            }
        }
    }
}

/// Where a stream is.
#[derive(Debug)]
enum Step {
    /// The chat's first chunk (the role) is next.
    Start,
    /// Text chunks, until the end.
    Text,
    /// The usage chunk, then `[DONE]`.
    Usage(Usage),
    /// `[DONE]`, then nothing.
    Done,
    Over,
}

/// OpenAI's stream of `follower`'s request.
fn chunks(
    follower: Follower,
    answer: Answer,
    include_usage: bool,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let data = |value: &Completion| {
        Event::default().data(serde_json::to_string(value).unwrap_or_else(|_| "{}".into()))
    };
    let first = if answer.chat { Step::Start } else { Step::Text };
    stream::unfold(
        (follower, answer, first),
        move |(mut follower, mut answer, step)| async move {
            let (event, next) = match step {
                Step::Over => return None,
                Step::Done => (Event::default().data("[DONE]"), Step::Over),
                Step::Usage(usage) => (
                    data(&answer.completion(Vec::new(), Some(usage), true)),
                    Step::Done,
                ),
                Step::Start => {
                    let mut choice = answer.choice(0, String::new(), None, true);
                    if let Some(delta) = &mut choice.delta {
                        delta.role = Some("assistant".into());
                    }
                    (
                        data(&answer.completion(vec![choice], None, true)),
                        Step::Text,
                    )
                }
                Step::Text => match follower.next().await {
                    Ok(Some(Update::Text(text))) => (
                        data(&answer.completion(
                            vec![answer.choice(0, text, None, true)],
                            None,
                            true,
                        )),
                        Step::Text,
                    ),
                    Ok(Some(Update::Done(generations))) => {
                        if let Some(first) = generations.first() {
                            answer.model.clone_from(&first.model);
                        }
                        let finish = generations.first().map(|g| answer.finish_reason(g));
                        let mut choice = answer.choice(0, String::new(), finish, true);
                        choice.text = choice.text.filter(|_| !answer.chat);
                        if let Some(delta) = &mut choice.delta {
                            delta.content = None;
                        }
                        let next = if include_usage {
                            Step::Usage(answer.usage(&generations))
                        } else {
                            Step::Done
                        };
                        (data(&answer.completion(vec![choice], None, true)), next)
                    }
                    Ok(Some(Update::Failed(message))) => {
                        (error_event(ApiError::Unfinished(message)), Step::Over)
                    }
                    Ok(None) => return None,
                    Err(e) => (error_event(e.into()), Step::Over),
                },
            };
            Some((Ok(event), (follower, answer, next)))
        },
    )
}

/// A stream's last event when it fails: OpenAI's error body (the SDKs raise it).
fn error_event(error: ApiError) -> Event {
    let body = OpenAiError::from(error).body();
    Event::default().data(serde_json::to_string(&body).unwrap_or_else(|_| "{}".into()))
}
