//! What happens now, for those who wait for it: idle workers in a long poll, requesters waiting
//! for a result, and streams of the text a worker has generated so far.
//!
//! Nothing here is persisted and nothing here is the economy: the core's events (absorbed under
//! the core lock, see `driver`) only *wake* waiters, who then read the core themselves; partial
//! text is shown to requesters and never paid (the submit pays). Everything is bounded: the
//! watchers of a request, the requests watched, the text held per request and the progress
//! posts per job. This module has its own short lock and never takes the core's.

use std::collections::HashMap;
use std::sync::Arc;

use horde_core::{JobId, RequestId};
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

/// Most readers of one request at once.
pub const WATCHERS_PER_REQUEST: usize = 4;
/// Most requests watched at once (streams and waiting OpenAI calls).
pub const WATCHED_MAX: usize = 20_000;
/// Most bytes of partial text held for one request; beyond, the rest arrives at submit.
pub const TEXT_MAX: usize = 256 * 1024;
/// Most progress posts taken for one job; beyond, the rest arrives at submit.
pub const POSTS_MAX: u32 = 5_000;
/// The least time between two progress posts of one job whose text is taken; a post sooner is
/// answered with the bytes held, and the worker sends that text again with its next post.
pub const POST_INTERVAL_MS: u64 = 20;

/// Why a request cannot be watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The request has its most readers already.
    #[error("this request already has {WATCHERS_PER_REQUEST} readers")]
    TooManyReaders,
    /// The server follows its most requests already.
    #[error("the server is following {WATCHED_MAX} requests already; try again shortly")]
    Full,
}

/// What a progress post did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progressed {
    /// Bytes of the job's text now held (the next post's offset).
    pub received: u64,
    /// Someone reads the stream.
    pub listening: bool,
}

/// The versions a watcher waits on: of the partial text, and of the request's state in the
/// core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Versions {
    /// Bumped when text arrives or the stream breaks.
    pub text: u64,
    /// Bumped when the core changed the request or one of its jobs.
    pub state: u64,
}

#[derive(Debug)]
struct Watched {
    versions: watch::Sender<Versions>,
    watchers: usize,
    streamers: usize,
    /// The job whose text streams (the first to post while someone streams).
    job: Option<JobId>,
    text: String,
    posts: u32,
    /// When text was last taken, in ms.
    last_post_ms: Option<u64>,
    /// The streamed job ended without a generation after some of its text was shown.
    broken: bool,
}

/// The hub; one per driver.
#[derive(Debug, Default)]
pub struct Live {
    work: Notify,
    requests: Mutex<HashMap<RequestId, Watched>>,
}

/// A reader of one request; stops watching when dropped.
#[derive(Debug)]
pub struct Watch {
    live: Arc<Live>,
    id: RequestId,
    streaming: bool,
    versions: watch::Receiver<Versions>,
}

impl Live {
    /// Starts watching request `id` (`streaming`: its partial text is wanted too).
    pub fn watch(self: &Arc<Self>, id: RequestId, streaming: bool) -> Result<Watch, WatchError> {
        let mut requests = self.requests.lock();
        if !requests.contains_key(&id) && requests.len() >= WATCHED_MAX {
            return Err(WatchError::Full);
        }
        let watched = requests.entry(id).or_insert_with(|| Watched {
            versions: watch::Sender::new(Versions::default()),
            watchers: 0,
            streamers: 0,
            job: None,
            text: String::new(),
            posts: 0,
            last_post_ms: None,
            broken: false,
        });
        if watched.watchers >= WATCHERS_PER_REQUEST {
            return Err(WatchError::TooManyReaders);
        }
        watched.watchers += 1;
        watched.streamers += usize::from(streaming);
        Ok(Watch {
            live: Arc::clone(self),
            id,
            streaming,
            versions: watched.versions.subscribe(),
        })
    }

    /// Requests being watched now.
    pub fn watched(&self) -> usize {
        self.requests.lock().len()
    }

    /// Takes `text` that `job` of request `id` generated after its first `offset` bytes, at
    /// `now_ms`. Held only while someone streams the request; a repeated part is skipped, a
    /// gap (a reader that joined late) or a post sooner than [`POST_INTERVAL_MS`] after the
    /// last answers the bytes held so that the worker sends from there.
    pub fn progress(
        &self,
        id: RequestId,
        job: JobId,
        offset: u64,
        text: &str,
        now_ms: u64,
    ) -> Progressed {
        let passed = Progressed {
            received: offset.saturating_add(text.len() as u64),
            listening: false,
        };
        let mut requests = self.requests.lock();
        let Some(watched) = requests.get_mut(&id) else {
            return passed;
        };
        if watched.streamers == 0 || watched.broken || watched.job.is_some_and(|j| j != job) {
            return passed;
        }
        watched.posts += 1;
        if watched.posts > POSTS_MAX {
            return passed;
        }
        let held = watched.text.len() as u64;
        if watched.job.is_none() && offset > 0 {
            // The reader came after the worker began: the worker sends its text from the start.
            watched.job = Some(job);
            return Progressed {
                received: 0,
                listening: true,
            };
        }
        watched.job = Some(job);
        let too_soon = watched
            .last_post_ms
            .is_some_and(|last| now_ms.saturating_sub(last) < POST_INTERVAL_MS);
        if offset > held || too_soon {
            return Progressed {
                received: held,
                listening: true,
            };
        }
        // `offset..held` was taken before (a retry); the rest is new.
        let skip = usize::try_from(held - offset).unwrap_or(usize::MAX);
        let new = text.get(skip..).unwrap_or_default();
        if watched.text.len() + new.len() > TEXT_MAX {
            return Progressed {
                received: held,
                listening: false,
            };
        }
        if !new.is_empty() {
            watched.last_post_ms = Some(now_ms);
            watched.text.push_str(new);
            watched.versions.send_modify(|v| v.text += 1);
        }
        Progressed {
            received: watched.text.len() as u64,
            listening: true,
        }
    }

    /// The core changed request `id` or one of its jobs (called under the core lock).
    pub(crate) fn request_changed(&self, id: RequestId) {
        if let Some(watched) = self.requests.lock().get(&id) {
            watched.versions.send_modify(|v| v.state += 1);
        }
    }

    /// `job` of request `id` ended without a generation; its request may go back to the queue
    /// (called under the core lock).
    pub(crate) fn job_aborted(&self, id: RequestId, job: JobId) {
        if let Some(watched) = self.requests.lock().get_mut(&id) {
            if watched.job == Some(job) {
                if watched.text.is_empty() {
                    watched.job = None;
                } else {
                    watched.broken = true;
                }
            }
            watched.versions.send_modify(|v| v.state += 1);
        }
        self.work.notify_waiters();
    }

    /// A request was queued (called under the core lock): wakes the workers in a long poll.
    pub(crate) fn work_arrived(&self) {
        self.work.notify_waiters();
    }

    /// Resolves at the next [`Live::work_arrived`] after it is enabled (pin it and call
    /// `enable` before looking for work, so that nothing is missed in between).
    pub fn work(&self) -> tokio::sync::futures::Notified<'_> {
        self.work.notified()
    }
}

impl Watch {
    /// The request watched.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The versions now, marked as seen.
    pub fn seen(&mut self) -> Versions {
        *self.versions.borrow_and_update()
    }

    /// Waits until the versions change after the last [`Watch::seen`].
    pub async fn changed(&mut self) {
        if self.versions.changed().await.is_err() {
            // The sender lives as long as any watch: unreachable, but never spin.
            std::future::pending::<()>().await;
        }
    }

    /// The partial text from byte `from` on, and whether the stream broke.
    pub fn text_since(&self, from: usize) -> (String, bool) {
        let requests = self.live.requests.lock();
        let Some(watched) = requests.get(&self.id) else {
            return (String::new(), false);
        };
        let text = watched.text.get(from..).unwrap_or_default().to_owned();
        (text, watched.broken)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut requests = self.live.requests.lock();
        if let Some(watched) = requests.get_mut(&self.id) {
            watched.watchers = watched.watchers.saturating_sub(1);
            watched.streamers = watched
                .streamers
                .saturating_sub(usize::from(self.streaming));
            if watched.watchers == 0 {
                requests.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (RequestId, JobId) {
        (
            RequestId(uuid::Uuid::from_u128(1)),
            JobId(uuid::Uuid::from_u128(2)),
        )
    }

    #[test]
    fn text_is_held_only_while_someone_streams_and_retries_are_skipped() {
        let live = Arc::new(Live::default());
        let (id, job) = ids();
        assert!(!live.progress(id, job, 0, "Once", 0).listening);
        let mut watch = live.watch(id, true).unwrap();
        let before = watch.seen();
        // A reader that came late: the worker is told to start over.
        assert_eq!(live.progress(id, job, 4, " upon", 0).received, 0);
        assert_eq!(live.progress(id, job, 0, "Once", 0).received, 4);
        // Too soon after the last: sent again later.
        assert_eq!(live.progress(id, job, 4, " upon", 10).received, 4);
        assert_eq!(live.progress(id, job, 0, "Once upon", 20).received, 9);
        assert_eq!(live.progress(id, job, 20, "gap", 60).received, 9);
        assert_ne!(watch.seen(), before);
        assert_eq!(watch.text_since(0), ("Once upon".to_owned(), false));
        assert_eq!(watch.text_since(4), (" upon".to_owned(), false));
        // Another job of the request does not mix in.
        let other = JobId(uuid::Uuid::from_u128(3));
        assert!(!live.progress(id, other, 0, "x", 100).listening);
        live.job_aborted(id, job);
        assert!(
            watch.text_since(9).1,
            "the shown text can no longer be completed"
        );
        drop(watch);
        assert_eq!(live.watched(), 0);
    }

    #[test]
    fn readers_per_request_are_bounded() {
        let live = Arc::new(Live::default());
        let (id, _) = ids();
        let watches: Vec<_> = (0..WATCHERS_PER_REQUEST)
            .map(|_| live.watch(id, false).unwrap())
            .collect();
        assert_eq!(
            live.watch(id, false).unwrap_err(),
            WatchError::TooManyReaders
        );
        drop(watches);
        assert!(live.watch(id, false).is_ok());
    }
}
