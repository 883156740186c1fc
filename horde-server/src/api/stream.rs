//! Streaming, horde's extension of the v2 API: a worker posts the text it has generated so far
//! (`POST /generate/text/progress`), and a requester reads it as server-sent events
//! (`GET /generate/text/stream/{id}`). The submit stays what finishes and pays a job; a worker
//! that never posts progress (every AI Horde bridge) streams its text in one piece at submit.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use horde_core::{JobId, JobStatus, RequestId};
use serde::Serialize;

use super::{parse_uuid, Json, Registered};
use crate::driver::Driver;
use crate::error::{ApiError, Rc};
use crate::follow::{Follower, Update};
use crate::wire::{ProgressAnswer, ProgressRequest};

/// The most text one progress post may carry.
pub(crate) const PROGRESS_BYTES_MAX: usize = 64 * 1024;
/// How often an idle stream sends a comment, so that proxies keep it open.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `POST /generate/text/progress`: only the owner of the worker holding the job may post, and
/// only while the job is being worked on.
pub(crate) async fn progress(
    State(state): State<Driver>,
    Registered(owner): Registered,
    Json(body): Json<ProgressRequest>,
) -> Result<Json<ProgressAnswer>, ApiError> {
    if body.text.len() > PROGRESS_BYTES_MAX {
        return Err(ApiError::invalid(
            Rc::ValidationError,
            "text",
            format!("a progress post carries at most {PROGRESS_BYTES_MAX} bytes of text"),
        ));
    }
    let job = JobId(body.id);
    let (request, processing) = state.read(|core, _| {
        let horde = core.horde();
        let job = horde
            .job(job)
            .ok_or_else(|| ApiError::not_found(Rc::InvalidJobID, "no such job"))?;
        if horde.worker(job.worker).map(|w| w.owner) != Some(owner) {
            return Err(ApiError::WrongCredentials(
                "this job belongs to another user's worker",
            ));
        }
        Ok((job.request, job.status == JobStatus::Processing))
    })?;
    if !processing {
        return Ok(Json(ProgressAnswer {
            received: body.offset,
            listening: false,
            cancelled: true,
        }));
    }
    let now = state.now().millis();
    let progressed = state
        .live()
        .progress(request, job, body.offset, &body.text, now);
    Ok(Json(ProgressAnswer {
        received: progressed.received,
        listening: progressed.listening,
        cancelled: false,
    }))
}

/// The `text` event of a horde-native stream.
#[derive(Debug, Serialize)]
struct TextEvent<'a> {
    text: &'a str,
}

/// `GET /generate/text/stream/{id}`: `text` events as the worker generates, then one `done`
/// event holding the request's status (as `GET /generate/text/status/{id}` answers it), or
/// an `error` event (`{"message", "rc"}`). Reading the stream does not own the request:
/// leaving it early cancels nothing.
pub(crate) async fn stream(
    State(state): State<Driver>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = RequestId(parse_uuid(&id, Rc::RequestNotFound)?);
    let generations = state
        .read(|core, _| core.horde().request(id).map(|(spec, _)| spec.params.n))
        .ok_or_else(|| ApiError::not_found(Rc::RequestNotFound, "no such request"))?;
    // One generation streams its text; several only their end (whose text would interleave).
    let mut follower =
        Follower::new(&state, id, generations == 1).map_err(|e| ApiError::TooMany {
            rc: Rc::RateLimited,
            message: e.to_string(),
            retry_after: Some(1),
        })?;
    follower.keep_on_drop();
    Ok(sse(native_events(state, follower)))
}

/// An SSE answer of `events`, with keep-alive comments, unbuffered by proxies that honour
/// `X-Accel-Buffering`.
pub(crate) fn sse<S>(events: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // nginx would otherwise buffer the events it relays.
    response.headers_mut().insert(
        axum::http::HeaderName::from_static("x-accel-buffering"),
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

fn native_events(
    driver: Driver,
    follower: Follower,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    stream::unfold(Some(follower), move |follower| {
        let driver = driver.clone();
        async move {
            let mut follower = follower?;
            let event = match follower.next().await {
                Ok(Some(Update::Text(text))) => {
                    let event = json_event("text", &TextEvent { text: &text });
                    return Some((Ok(event), Some(follower)));
                }
                Ok(Some(Update::Done(_))) => {
                    let id = follower.id();
                    match driver
                        .read_committed(|core, now| {
                            super::generate::status_of(core.horde(), id, now)
                        })
                        .await
                    {
                        Ok(Ok(status)) => json_event("done", &status),
                        Ok(Err(e)) => error_event(&e),
                        Err(e) => error_event(&ApiError::from(e)),
                    }
                }
                Ok(Some(Update::Failed(message))) => error_event(&ApiError::Forbidden {
                    rc: Rc::AbortedGen,
                    message,
                }),
                Ok(None) => return None,
                Err(e) => error_event(&ApiError::from(e)),
            };
            Some((Ok(event), None))
        }
    })
}

/// An event named `name` holding `data` as JSON.
fn json_event(name: &str, data: &impl Serialize) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    Event::default().event(name).data(data)
}

/// An `error` event: the body a call would have answered.
fn error_event(error: &ApiError) -> Event {
    let (_, rc) = error.status_and_rc();
    json_event(
        "error",
        &crate::error::ErrorBody::new(rc, error.to_string()),
    )
}
