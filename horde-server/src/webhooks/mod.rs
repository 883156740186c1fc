//! Webhooks: each finished generation of a request that names a `webhook` is posted there,
//! signed with its owner's secret (HMAC-SHA256 over the timestamp and the body), durably — the
//! delivery is recorded in the commit of its generation and retried with backoff, across
//! restarts, for a bounded time — with bounded concurrency and size, and never to a loopback,
//! private or link-local address unless the operator allows it ([`guard`]).
//!
//! This module holds what waits and what is sent; [`crate::delivery`] posts it beside the
//! core: it copies the due deliveries under the lock, posts them without it, and records each
//! outcome through [`crate::ops::webhooks`].

pub mod guard;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use horde_core::{Generation, Horde, Job, JobId};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::Notify;

pub use crate::config::WebhookConfig;
pub use crate::store::Delivery;
use crate::store::{Recorded, Write};

/// The longest generation text a delivery carries, in bytes; longer texts are cut there (and
/// `text_truncated` says so).
pub const TEXT_MAX_BYTES: usize = 256 * 1024;

/// The shortest and longest webhook secret a user may set.
pub const SECRET_CHARS: (usize, usize) = (16, 128);

/// The deliveries not yet made (mirrors the `webhooks` table).
#[derive(Debug, Default)]
pub struct Webhooks {
    pending: BTreeMap<JobId, Delivery>,
    /// `(next_at, job)` of every pending delivery: the due ones are found without a scan.
    schedule: BTreeSet<(u64, JobId)>,
    max_pending: usize,
    arrived: Arc<Notify>,
}

/// How an attempt ended, for [`Webhooks::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered (a 2xx answer), or given up for good: the delivery is over.
    Over,
    /// Failed; try again at this time (ms since the epoch).
    RetryAt(u64),
}

impl Webhooks {
    /// The deliveries read back on start, holding at most `max_pending`.
    pub fn new(loaded: Vec<Delivery>, max_pending: usize) -> Webhooks {
        Webhooks {
            schedule: loaded.iter().map(|d| (d.next_at, d.job)).collect(),
            pending: loaded.into_iter().map(|d| (d.job, d)).collect(),
            max_pending,
            arrived: Arc::default(),
        }
    }

    /// Deliveries waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Returns true if and only if none waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Woken when a delivery is queued.
    pub fn arrivals(&self) -> Arc<Notify> {
        Arc::clone(&self.arrived)
    }

    /// Queues `delivery`; the write that records it, or `None` when the queue is full (the
    /// delivery is dropped and logged).
    pub(crate) fn queue(&mut self, delivery: Delivery) -> Option<Write> {
        if self.pending.len() >= self.max_pending {
            tracing::warn!(job = %delivery.job, limit = self.max_pending, "webhook queue full; delivery dropped");
            return None;
        }
        if let Some(old) = self.pending.insert(delivery.job, delivery.clone()) {
            self.schedule.remove(&(old.next_at, old.job));
        }
        self.schedule.insert((delivery.next_at, delivery.job));
        self.arrived.notify_one();
        Some(Write::Webhook(delivery))
    }

    /// Up to `limit` deliveries due at `now_ms`, other than `busy` ones, earliest first.
    /// O(limit + busy) with the schedule's index.
    pub fn due(&self, now_ms: u64, limit: usize, busy: &HashSet<JobId>) -> Vec<Delivery> {
        self.schedule
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .filter(|(_, job)| !busy.contains(job))
            .take(limit)
            .filter_map(|(_, job)| self.pending.get(job).cloned())
            .collect()
    }

    /// When the next delivery other than `busy` ones is due, ms since the epoch.
    pub fn next_due(&self, busy: &HashSet<JobId>) -> Option<u64> {
        self.schedule
            .iter()
            .find(|(_, job)| !busy.contains(job))
            .map(|(at, _)| *at)
    }

    /// Records how an attempt at delivery `job` ended.
    pub fn settle(&mut self, job: JobId, outcome: Outcome) -> Recorded<()> {
        match outcome {
            Outcome::Over => {
                if let Some(old) = self.pending.remove(&job) {
                    self.schedule.remove(&(old.next_at, job));
                }
                Recorded::new((), vec![Write::WebhookDone(job)])
            }
            Outcome::RetryAt(at) => match self.pending.get_mut(&job) {
                Some(delivery) => {
                    self.schedule.remove(&(delivery.next_at, job));
                    self.schedule.insert((at, job));
                    delivery.attempts = delivery.attempts.saturating_add(1);
                    delivery.next_at = at;
                    Recorded::new((), vec![Write::Webhook(delivery.clone())])
                }
                None => Recorded::new((), Vec::new()),
            },
        }
    }
}

/// What a webhook receives for one finished generation (AI Horde's generation fields, with
/// the request's id).
#[derive(Debug, Clone, Serialize)]
struct Payload<'a> {
    /// The request.
    request: String,
    /// The job (each generation has its own; also the `X-Horde-Delivery` header).
    id: String,
    text: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    text_truncated: bool,
    seed: i64,
    worker_id: String,
    worker_name: String,
    model: &'a str,
    state: &'static str,
    #[serde(serialize_with = "crate::webhooks::kudos")]
    kudos: horde_core::Kudos,
}

fn kudos<S: serde::Serializer>(kudos: &horde_core::Kudos, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(kudos.as_f64())
}

/// The delivery of `generation` (job `job`), if its request names a webhook.
pub(crate) fn delivery_for(horde: &Horde, job: &Job, generation: &Generation) -> Option<Delivery> {
    let (spec, _) = horde.request(job.request)?;
    let url = spec.webhook.clone()?;
    let mut cut = generation.text.len().min(TEXT_MAX_BYTES);
    while !generation.text.is_char_boundary(cut) {
        cut -= 1;
    }
    let payload = Payload {
        request: job.request.to_string(),
        id: job.id.to_string(),
        text: &generation.text[..cut],
        text_truncated: cut < generation.text.len(),
        seed: generation.seed_number(),
        worker_id: job.worker.to_string(),
        worker_name: horde
            .worker(job.worker)
            .map(|w| w.name.clone())
            .unwrap_or_default(),
        model: &job.model,
        state: generation.state.as_str(),
        kudos: generation.reward,
    };
    let body = serde_json::to_string(&payload).ok()?;
    Some(Delivery {
        job: job.id,
        url,
        owner: spec.owner,
        body,
        attempts: 0,
        next_at: generation.finished_at.millis(),
        created_at: generation.finished_at.millis(),
    })
}

/// The `X-Horde-Signature` of `body` sent at `timestamp` (Unix seconds): `sha256=` and the
/// hex HMAC-SHA256, keyed with the owner's secret, of `"{timestamp}.{body}"`.
///
/// ```
/// use horde_server::webhooks::signature;
/// let signed = signature("0123456789abcdef", 1_700_000_000, "{}");
/// assert!(signed.starts_with("sha256=") && signed.len() == 7 + 64);
/// assert_ne!(signed, signature("0123456789abcdeF", 1_700_000_000, "{}"));
/// ```
pub fn signature(secret: &str, timestamp: u64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for byte in digest.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// The wait before retry number `attempts + 1`: `initial × 2^attempts`, at most `max`.
pub(crate) fn backoff(config: &WebhookConfig, attempts: u32) -> Duration {
    let factor = 1u64.checked_shl(attempts.min(30)).unwrap_or(u64::MAX);
    Duration::from_secs(
        config
            .retry_initial_secs
            .saturating_mul(factor)
            .min(config.retry_max_secs)
            .max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: u128, next_at: u64) -> Delivery {
        Delivery {
            job: JobId(uuid::Uuid::from_u128(n)),
            url: "https://example.org/hook".into(),
            owner: horde_core::UserId(1),
            body: "{}".into(),
            attempts: 0,
            next_at,
            created_at: next_at,
        }
    }

    #[test]
    fn due_deliveries_come_earliest_first_and_settle_out_of_the_queue() {
        let mut hooks = Webhooks::new(vec![delivery(1, 30)], 3);
        assert!(hooks.queue(delivery(2, 10)).is_some());
        assert!(hooks.queue(delivery(3, 20)).is_some());
        // Full: the fourth is dropped, nothing written.
        assert!(hooks.queue(delivery(4, 0)).is_none());
        let none = HashSet::new();
        let jobs = |list: Vec<Delivery>| list.iter().map(|d| d.job.0.as_u128()).collect::<Vec<_>>();
        assert_eq!(jobs(hooks.due(25, 10, &none)), [2, 3]);
        assert_eq!(jobs(hooks.due(25, 1, &none)), [2]);
        let busy = HashSet::from([JobId(uuid::Uuid::from_u128(2))]);
        assert_eq!(jobs(hooks.due(25, 10, &busy)), [3]);
        assert_eq!(hooks.next_due(&busy), Some(20));
        // A retry moves it; delivered, it is gone.
        let job2 = JobId(uuid::Uuid::from_u128(2));
        let retried = hooks.settle(job2, Outcome::RetryAt(100));
        assert!(
            matches!(&retried.writes[..], [Write::Webhook(d)] if d.attempts == 1 && d.next_at == 100)
        );
        assert_eq!(jobs(hooks.due(99, 10, &none)), [3, 1]);
        let over = hooks.settle(job2, Outcome::Over);
        assert!(matches!(over.writes[..], [Write::WebhookDone(j)] if j == job2));
        assert_eq!(hooks.len(), 2);
        assert_eq!(jobs(hooks.due(1_000, 10, &none)), [3, 1]);
    }

    #[test]
    fn retries_back_off_to_the_cap() {
        let config = WebhookConfig::default();
        let waits: Vec<u64> = (0..10).map(|a| backoff(&config, a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(backoff(&config, u32::MAX).as_secs(), 600);
    }
}
