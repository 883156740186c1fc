//! Following one request to its end, for a caller that waits on the same connection (an
//! OpenAI call, a stream): the text as the worker posts it, then the committed result.
//!
//! A [`Follower`] reads the core only when the core changed the request (the `live` hub wakes
//! it) and only once the change is committed, so that what it reports as finished is never lost
//! by a crash. Dropped before the end (the client went away), it cancels the request: nothing
//! unfinished is charged, and the worker's next progress post is told to stop.

use horde_core::{Horde, Outcome, RequestId, Timestamp};

use crate::driver::{Driver, Unavailable};
use crate::live::{Watch, WatchError};

/// One finished generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its text.
    pub text: String,
    /// Tokens counted for its reward.
    pub tokens: u32,
    /// The model that generated it.
    pub model: String,
}

/// What happened next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// More text of the (single) generation being streamed.
    Text(String),
    /// The request finished: its generations, in the order they were started.
    Done(Vec<Finished>),
    /// The request ended without a result, and why (for people).
    Failed(String),
}

/// Follows one request; see the module.
#[derive(Debug)]
pub struct Follower {
    driver: Driver,
    watch: Watch,
    streaming: bool,
    /// The text sent so far.
    streamed: String,
    state_seen: Option<u64>,
    /// The update to give after the rest of the text.
    pending: Option<Update>,
    done: bool,
    /// Cancel the request when dropped before its end.
    owns: bool,
}

impl Follower {
    /// Follows request `id`; with `streaming`, its partial text too.
    pub fn new(driver: &Driver, id: RequestId, streaming: bool) -> Result<Self, WatchError> {
        let watch = driver.live().watch(id, streaming)?;
        Ok(Follower {
            driver: driver.clone(),
            watch,
            streaming,
            streamed: String::new(),
            state_seen: None,
            pending: None,
            done: false,
            owns: true,
        })
    }

    /// Leaves the request alone when dropped early (a reader of a request made elsewhere).
    pub fn keep_on_drop(&mut self) {
        self.owns = false;
    }

    /// The request followed.
    pub fn id(&self) -> RequestId {
        self.watch.id()
    }

    /// The next update; `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Update>, Unavailable> {
        loop {
            if let Some(update) = self.pending.take() {
                return Ok(Some(update));
            }
            if self.done {
                return Ok(None);
            }
            let versions = self.watch.seen();
            if self.streaming {
                let (text, broken) = self.watch.text_since(self.streamed.len());
                if !text.is_empty() {
                    self.streamed.push_str(&text);
                    return Ok(Some(Update::Text(text)));
                }
                if broken {
                    self.end();
                    self.cancel();
                    return Ok(Some(Update::Failed(
                        "the worker serving this request failed after part of its text was \
                         sent; the request is cancelled (nothing is charged for it)"
                            .into(),
                    )));
                }
            }
            if self.state_seen != Some(versions.state) {
                self.state_seen = Some(versions.state);
                let id = self.id();
                let ended = self
                    .driver
                    .read_committed(|core, now| ended(core.horde(), id, now))
                    .await?;
                if let Some(update) = ended {
                    self.end();
                    return Ok(Some(self.finish(update)));
                }
            }
            self.watch.changed().await;
        }
    }

    fn end(&mut self) {
        self.done = true;
    }

    /// The final update, after the rest of the streamed generation's text.
    fn finish(&mut self, update: Update) -> Update {
        let Update::Done(generations) = &update else {
            return update;
        };
        if !self.streaming {
            return update;
        }
        let Some(first) = generations.first() else {
            return update;
        };
        match first.text.strip_prefix(self.streamed.as_str()) {
            Some("") => update,
            Some(rest) => {
                let rest = rest.to_owned();
                self.streamed.push_str(&rest);
                self.pending = Some(update);
                Update::Text(rest)
            }
            None => {
                tracing::warn!(
                    request = %self.id(),
                    "the submitted text differs from the text the worker streamed; the stream \
                     showed the streamed text"
                );
                update
            }
        }
    }

    /// Cancels the request (at once, on a task of its own).
    fn cancel(&self) {
        let driver = self.driver.clone();
        let id = self.id();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let cancelled = driver
                .change(|txn| {
                    txn.apply(|horde, now| {
                        Ok::<_, Unavailable>(horde.cancel(now, id).unwrap_or(horde_core::Applied {
                            value: (),
                            events: Vec::new(),
                        }))
                    })
                })
                .await;
            if cancelled.is_ok() {
                tracing::debug!(request = %id, "the client went away: request cancelled");
            }
        });
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if !self.done && self.owns {
            self.cancel();
        }
    }
}

/// How request `id` ended, once it has.
fn ended(horde: &Horde, id: RequestId, now: Timestamp) -> Option<Update> {
    let Some((_, state)) = horde.request(id) else {
        return Some(Update::Failed(
            "the request is gone (expired or removed)".into(),
        ));
    };
    let (outcome, _) = state.closed?;
    Some(match outcome {
        Outcome::Done => {
            let generations = horde
                .status(id, now)
                .map(|status| status.generations)
                .unwrap_or_default();
            Update::Done(
                generations
                    .into_iter()
                    .map(|(job, generation)| Finished {
                        text: generation.text,
                        tokens: generation.tokens,
                        model: job.model.to_string(),
                    })
                    .collect(),
            )
        }
        Outcome::Cancelled => Update::Failed("the request was cancelled".into()),
        Outcome::Faulted => {
            Update::Failed("the request failed: its workers failed too many times".into())
        }
        Outcome::Expired => {
            Update::Failed("the request expired: no worker finished it in time".into())
        }
    })
}
