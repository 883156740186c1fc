//! Reading a request's text as it is generated: `GET /generate/text/stream/{id}` (horde's
//! extension), server-sent events of `text` (the new part), then `done` (the request's status)
//! or `error` (`{"message", "rc"}`).

use std::time::Duration;

use crate::client::{refusal, with_causes, Client, ClientError};
use crate::{ErrorBody, RequestStatus};

/// How long a stream may stay open (the horde's own timeouts end a request long before).
const STREAM_TIMEOUT: Duration = Duration::from_secs(3600);
/// The most bytes one event may have.
const EVENT_MAX_BYTES: usize = 4 * 1024 * 1024;

/// One event of a request's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// More text of the generation.
    Text(String),
    /// The request finished: its status, as `GET /generate/text/status/{id}` answers.
    Done(Box<RequestStatus>),
    /// The request ended without a result.
    Error(ErrorBody),
}

/// An open stream; see [`Client::stream`].
#[derive(Debug)]
pub struct TextStream {
    response: reqwest::Response,
    url: String,
    pending: Vec<u8>,
    event: String,
    ended: bool,
}

impl Client {
    /// `GET /generate/text/stream/{id}` (horde's extension): the events of request `id` as its
    /// worker generates. A horde without streams refuses with 404 (`NotFound`): poll
    /// [`Client::status`] instead.
    pub async fn stream(&self, id: &str) -> Result<TextStream, ClientError> {
        let mut url = self.api_url().clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["generate", "text", "stream", id]);
        }
        let request = self
            .request(reqwest::Method::GET, url.clone())
            .timeout(STREAM_TIMEOUT);
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: url.to_string(),
            cause: with_causes(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.map_err(unreachable)?;
            return Err(refusal(status, &bytes, None));
        }
        Ok(TextStream {
            response,
            url: url.to_string(),
            pending: Vec::new(),
            event: String::new(),
            ended: false,
        })
    }
}

impl TextStream {
    /// The next event; `None` once the stream has ended.
    pub async fn next(&mut self) -> Result<Option<StreamEvent>, ClientError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\r', '\n']);
                if let Some(name) = line.strip_prefix("event:") {
                    name.trim().clone_into(&mut self.event);
                } else if let Some(data) = line.strip_prefix("data:") {
                    if let Some(event) = self.event(data.trim_start())? {
                        return Ok(Some(event));
                    }
                }
            }
            let chunk = self
                .response
                .chunk()
                .await
                .map_err(|e| ClientError::Unreachable {
                    url: self.url.clone(),
                    cause: with_causes(&e),
                })?;
            match chunk {
                Some(chunk) if self.pending.len() + chunk.len() <= EVENT_MAX_BYTES => {
                    self.pending.extend_from_slice(&chunk);
                }
                Some(_) => {
                    return Err(ClientError::TooLarge {
                        url: self.url.clone(),
                        limit: EVENT_MAX_BYTES,
                    })
                }
                None => self.ended = true,
            }
        }
    }

    fn event(&mut self, data: &str) -> Result<Option<StreamEvent>, ClientError> {
        let unreadable = |e: serde_json::Error| ClientError::Unreadable {
            url: self.url.clone(),
            status: reqwest::StatusCode::OK,
            detail: e.to_string(),
        };
        #[derive(serde::Deserialize)]
        struct Text {
            text: String,
        }
        let event = match self.event.as_str() {
            "text" => {
                StreamEvent::Text(serde_json::from_str::<Text>(data).map_err(unreadable)?.text)
            }
            "done" => StreamEvent::Done(Box::new(serde_json::from_str(data).map_err(unreadable)?)),
            "error" => StreamEvent::Error(serde_json::from_str(data).map_err(unreadable)?),
            _ => return Ok(None),
        };
        if !matches!(event, StreamEvent::Text(_)) {
            self.ended = true;
        }
        Ok(Some(event))
    }
}
