//! Reading a backend's server-sent events (OpenAI-compatible `stream: true`, KoboldCpp's
//! `/api/extra/generate/stream`): the `data:` field of each event, in order, within a bound.

use super::{causes, failed_answer, send_failure, BackendError};

/// Sends `request`, sorting a failure to connect or a failing status into [`BackendError`]s.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, BackendError> {
    let response = request.send().await.map_err(send_failure)?;
    if !response.status().is_success() {
        return Err(failed_answer(response).await);
    }
    Ok(response)
}

/// Returns true if and only if `response` is a stream of events (not JSON).
pub(super) fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Calls `on_data` with the data of each event of `response` until it answers true (the
/// last event); more than `cap` bytes in all is a failure, and so is a stream that ends before
/// its last event (llama-cpp-python, refusing a prompt over its context after it began to
/// answer, sends an empty stream).
pub(super) async fn each_data(
    mut response: reqwest::Response,
    cap: usize,
    mut on_data: impl FnMut(&str) -> Result<bool, BackendError>,
) -> Result<(), BackendError> {
    let mut pending: Vec<u8> = Vec::new();
    let mut total = 0usize;
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            BackendError::Failed(format!("the backend's stream broke off: {}", causes(&e)))
        })?;
        let Some(chunk) = chunk else {
            return Err(BackendError::Failed(
                "the backend's stream ended before the generation did (the backend's log may \
                 say why)"
                    .into(),
            ));
        };
        total += chunk.len();
        if total > cap {
            return Err(BackendError::Failed(format!(
                "the backend's stream went on beyond {} KiB; it is not read further",
                cap / 1024
            )));
        }
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            if on_data(data.trim())? {
                return Ok(());
            }
        }
    }
}
