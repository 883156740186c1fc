//! Read-only views: estimates, request status, per-model and horde-wide figures.

use super::*;

/// A request's progress, as `GET /generate/text/status` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestStatus {
    /// The request.
    pub spec: Arc<RequestSpec>,
    /// Its state.
    pub state: RequestState,
    /// Requests ahead of it in the queue (0 once all its generations started).
    pub queue_position: usize,
    /// Estimated seconds until done.
    pub wait_time: u64,
    /// Some online worker could serve it.
    pub is_possible: bool,
    /// Its finished generations, oldest first.
    pub generations: Vec<(Job, Generation)>,
}

/// Per-model figures for `GET /status/models`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelStats {
    /// The model name.
    pub name: Arc<str>,
    /// Online workers serving it.
    pub workers: u32,
    /// Their threads.
    pub threads: u32,
    /// Waiting generations that this model could serve.
    pub queued: u64,
    /// Their requested tokens.
    pub queued_tokens: u64,
    /// Generations being processed with it.
    pub jobs: u64,
    /// Its online workers' speeds ([`crate::Worker::tokens_per_second`]), summed.
    pub tokens_per_sec: u64,
}

/// The models [`Horde::listed_model_stats`] adds up instead of listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtherModels {
    /// How many models.
    pub models: u64,
    /// Waiting generations that name them (a request naming several counts for each).
    pub queued: u64,
    /// Their requested tokens.
    pub queued_tokens: u64,
}

/// The speed, in tokens per second, a worker is counted at until the horde has measured it
/// ([`crate::Worker::tokens_per_second`]).
pub const TOKENS_PER_SEC_PER_THREAD: u64 = 10;

impl ModelStats {
    /// Tokens per second of the online workers serving this model: their speeds
    /// ([`crate::Worker::tokens_per_second`]), summed.
    pub fn performance(&self) -> u64 {
        self.tokens_per_sec
    }

    /// Estimated seconds until this model's waiting tokens are generated.
    pub fn eta_secs(&self) -> u64 {
        self.queued_tokens / self.performance().max(1)
    }
}

impl Horde {
    /// What `spec` is expected to cost: `n` generations of `max_length` tokens by the largest
    /// model it accepts (or, when it accepts any, the largest model an online worker serves).
    /// O(models of `spec`): online workers' sizes are kept in order as they change.
    pub fn estimate(&self, spec: &RequestSpec, _now: Timestamp) -> Kudos {
        let economy = &self.config.economy;
        let size = if spec.models.is_empty() {
            self.online.largest_size_b()
        } else {
            spec.models
                .iter()
                .map(|m| self.model_size_b(m))
                .fold(None, |acc: Option<f64>, s| {
                    Some(acc.map_or(s, |a| a.max(s)))
                })
        }
        .unwrap_or(economy.unknown_model_size_b);
        let p = spec.params;
        let context = economy.context_tokens(&spec.prompt, p.max_length, p.max_context_length);
        let one = economy.generation_reward(size, p.max_length, context);
        Kudos::from_milli(one.milli().saturating_mul(i64::from(p.n)))
    }

    /// Returns true if and only if some online worker could serve request `id` now (or it
    /// has closed). Only online workers serving one of the request's models are examined,
    /// each once, stopping at the first that may serve it: O(r + k·r log w) for k such
    /// workers (for a request of any model, the online workers until the first match).
    pub fn is_possible(&self, id: RequestId, now: Timestamp) -> bool {
        let Some(entry) = self.requests.get(&id) else {
            return false;
        };
        if !entry.state.is_open() {
            return true;
        }
        let timeout = self.config.economy.online_timeout_secs;
        let serves = |worker_id: &WorkerId| {
            self.workers.get(worker_id).is_some_and(|w| {
                w.is_online(now, timeout) && matching::check(w, &entry.spec).is_ok()
            })
        };
        if entry.spec.models.is_empty() {
            return self.online.worker_ids().any(serves);
        }
        let mut examined = std::collections::HashSet::new();
        entry.spec.models.iter().any(|model| {
            self.online.of_model(model).is_some_and(|presence| {
                presence
                    .workers
                    .iter()
                    .any(|w| examined.insert(*w) && serves(w))
            })
        })
    }

    /// A request's progress at `now`, or `None` if unknown.
    pub fn status(&self, id: RequestId, now: Timestamp) -> Option<RequestStatus> {
        let entry = self.requests.get(&id)?;
        let queue_position = if entry.state.waiting > 0 {
            self.queue.position(&id).unwrap_or(0)
        } else {
            0
        };
        let is_possible = self.is_possible(id, now);
        // A rough estimate: everything ahead shares the online workers' speed.
        let speed = self.online.measured_tokens_per_sec();
        let ahead = queue_position as u64 + u64::from(entry.state.waiting + entry.state.processing);
        let wait_time = if entry.state.is_open() {
            ahead * u64::from(entry.spec.params.max_length) / speed.max(1)
        } else {
            0
        };
        let mut generations: Vec<(Job, Generation)> = entry
            .jobs
            .iter()
            .filter_map(|id| self.jobs.get(id))
            .filter_map(|job| match &job.status {
                JobStatus::Done(g) => Some((job.clone(), g.clone())),
                _ => None,
            })
            .collect();
        generations.sort_by_key(|(job, _)| (job.started_at, job.id));
        Some(RequestStatus {
            spec: entry.spec.clone(),
            state: entry.state,
            queue_position,
            wait_time,
            is_possible,
            generations,
        })
    }

    /// Figures per model served by an online worker or asked for by a waiting request, in
    /// name order, as of the last check-in or tick. O(m) for m such models: online workers and
    /// the backlog are counted per model, in name order, as they change, and merged here.
    pub fn model_stats(&self, _now: Timestamp) -> Vec<ModelStats> {
        let mut online = self.online.models().peekable();
        let mut queued = self.backlog.by_model.iter().peekable();
        let mut out = Vec::new();
        loop {
            let name = match (online.peek(), queued.peek()) {
                (None, None) => break,
                (Some((a, _)), Some((b, _))) => (*a).min(*b).clone(),
                (Some((a, _)), None) => (*a).clone(),
                (None, Some((b, _))) => (*b).clone(),
            };
            let mut stats = ModelStats {
                name,
                workers: 0,
                threads: 0,
                queued: 0,
                queued_tokens: 0,
                jobs: 0,
                tokens_per_sec: 0,
            };
            if let Some((_, presence)) = online.next_if(|(m, _)| **m == stats.name) {
                stats.workers = u32::try_from(presence.workers.len()).unwrap_or(u32::MAX);
                stats.threads = u32::try_from(presence.threads).unwrap_or(u32::MAX);
                stats.tokens_per_sec = presence.tokens_per_sec;
            }
            if let Some((_, &(generations, tokens))) = queued.next_if(|(m, _)| **m == stats.name) {
                stats.queued = generations;
                stats.queued_tokens = tokens;
            }
            stats.jobs = self
                .backlog
                .processing_by_model
                .get(&stats.name)
                .copied()
                .unwrap_or(0);
            out.push(stats);
        }
        out
    }

    /// [`Horde::model_stats`] split for display: the models an online worker serves or the
    /// model reference knows, each on its own, and the rest (names only waiting requests
    /// give, which anyone can make up by the thousand) added up as one [`OtherModels`]. What
    /// pages and metrics list is then bounded by the workers and the reference, not by what
    /// clients send.
    ///
    /// ```
    /// use horde_core::{Horde, HordeConfig, RequestId, RequestSpec, Timestamp, UserId};
    /// let mut horde = Horde::new(HordeConfig::default());
    /// let mut spec = RequestSpec::new(RequestId(uuid::Uuid::nil()), UserId::ANONYMOUS, "Hi", Timestamp(0));
    /// spec.models = vec!["made-up/model-1".into(), "made-up/model-2".into()];
    /// horde.enqueue(Timestamp(0), spec).unwrap();
    /// let (listed, other) = horde.listed_model_stats(Timestamp(0));
    /// assert!(listed.is_empty());
    /// assert_eq!((other.models, other.queued), (2, 2));
    /// ```
    pub fn listed_model_stats(&self, now: Timestamp) -> (Vec<ModelStats>, OtherModels) {
        let mut other = OtherModels::default();
        let reference = self.model_reference();
        let listed = self
            .model_stats(now)
            .into_iter()
            .filter(|stats| {
                let listed = stats.workers > 0 || reference.lookup(&stats.name).is_some();
                if !listed {
                    other.models += 1;
                    other.queued += stats.queued;
                    other.queued_tokens += stats.queued_tokens;
                }
                listed
            })
            .collect();
        (listed, other)
    }

    /// Returns true if and only if an online worker serves `model`. O(log models).
    pub fn serves_model(&self, model: &str) -> bool {
        self.online
            .of_model(model)
            .is_some_and(|presence| !presence.workers.is_empty())
    }

    /// Workers online and their threads, as of the last check-in or tick. O(1).
    pub fn online_capacity(&self, _now: Timestamp) -> (u64, u64) {
        self.online.capacity()
    }

    /// Waiting generations and their requested tokens, over all open requests. O(1).
    pub fn queued_totals(&self) -> (u64, u64) {
        self.backlog.total
    }
}
