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
}

/// The generation speed assumed per worker thread for wait estimates, in tokens per second
/// (the horde does not measure workers' speed yet).
pub const TOKENS_PER_SEC_PER_THREAD: u64 = 10;

impl ModelStats {
    /// Estimated tokens per second of the online workers serving this model.
    pub fn performance(&self) -> u64 {
        u64::from(self.threads) * TOKENS_PER_SEC_PER_THREAD
    }

    /// Estimated seconds until this model's waiting tokens are generated.
    pub fn eta_secs(&self) -> u64 {
        self.queued_tokens / self.performance().max(1)
    }
}

impl Horde {
    /// What `spec` is expected to cost: `n` generations of `max_length` tokens by the largest
    /// model it accepts (or, when it accepts any, the largest model an online worker serves).
    /// O(workers + models of `spec`).
    pub fn estimate(&self, spec: &RequestSpec, now: Timestamp) -> Kudos {
        let economy = &self.config.economy;
        let timeout = economy.online_timeout_secs;
        let largest = |sizes: &mut dyn Iterator<Item = f64>| {
            sizes.fold(None, |acc: Option<f64>, s| {
                Some(acc.map_or(s, |a| a.max(s)))
            })
        };
        let size = if spec.models.is_empty() {
            let mut online = self
                .workers
                .values()
                .filter(|w| w.is_online(now, timeout))
                .filter_map(|w| self.worker_sizes.get(&w.id).copied());
            largest(&mut online)
        } else {
            largest(&mut spec.models.iter().map(|m| economy.model_size_b(m)))
        }
        .unwrap_or(economy.unknown_model_size_b);
        let p = spec.params;
        let context = economy.context_tokens(&spec.prompt, p.max_length, p.max_context_length);
        let one = economy.generation_reward(size, p.max_length, context);
        Kudos::from_milli(one.milli().saturating_mul(i64::from(p.n)))
    }

    /// Returns true if and only if some online worker could serve request `id` now (or it
    /// has closed). O(workers).
    pub fn is_possible(&self, id: RequestId, now: Timestamp) -> bool {
        let Some(entry) = self.requests.get(&id) else {
            return false;
        };
        let timeout = self.config.economy.online_timeout_secs;
        !entry.state.is_open()
            || self
                .workers
                .values()
                .any(|w| w.is_online(now, timeout) && matching::check(w, &entry.spec).is_ok())
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
        let (_, threads) = self.online_capacity(now);
        // A rough estimate: everything ahead shares the online threads.
        let ahead = queue_position as u64 + u64::from(entry.state.waiting + entry.state.processing);
        let wait_time = if entry.state.is_open() {
            ahead * u64::from(entry.spec.params.max_length)
                / TOKENS_PER_SEC_PER_THREAD
                / threads.max(1)
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

    /// Figures per model served by an online worker or asked for by a waiting request.
    /// O(workers + models): the backlog is counted as it changes.
    pub fn model_stats(&self, now: Timestamp) -> Vec<ModelStats> {
        let mut stats: HashMap<Arc<str>, ModelStats> = HashMap::new();
        let timeout = self.config.economy.online_timeout_secs;
        let blank = |name: &Arc<str>| ModelStats {
            name: name.clone(),
            workers: 0,
            threads: 0,
            queued: 0,
            queued_tokens: 0,
            jobs: 0,
        };
        for worker in self.workers.values().filter(|w| w.is_online(now, timeout)) {
            for model in &worker.models {
                let s = stats.entry(model.clone()).or_insert_with(|| blank(model));
                s.workers += 1;
                s.threads += worker.threads;
            }
        }
        for (model, &(generations, tokens)) in &self.backlog.by_model {
            let s = stats.entry(model.clone()).or_insert_with(|| blank(model));
            s.queued = generations;
            s.queued_tokens = tokens;
        }
        for (model, &jobs) in &self.backlog.processing_by_model {
            if let Some(s) = stats.get_mut(model) {
                s.jobs = jobs;
            }
        }
        let mut out: Vec<ModelStats> = stats.into_values().collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Workers online at `now` and their threads. O(workers).
    pub fn online_capacity(&self, now: Timestamp) -> (u64, u64) {
        let timeout = self.config.economy.online_timeout_secs;
        self.workers
            .values()
            .filter(|w| w.is_online(now, timeout))
            .fold((0, 0), |(n, t), w| (n + 1, t + u64::from(w.threads)))
    }

    /// Waiting generations and their requested tokens, over all open requests. O(1).
    pub fn queued_totals(&self) -> (u64, u64) {
        self.backlog.total
    }
}
