//! Pop: a worker checks in and is handed jobs; uptime is earned at check-in.

use super::*;

/// What a worker reports when it asks for work.
#[derive(Debug, Clone, PartialEq)]
pub struct PopQuery {
    /// The worker's owner (the caller).
    pub owner: UserId,
    /// The worker's unique name.
    pub name: String,
    /// Models it serves (at least one).
    pub models: Vec<Arc<str>>,
    /// Most tokens it generates.
    pub max_length: u32,
    /// Most context it accepts.
    pub max_context_length: u32,
    /// Users it serves first.
    pub priority_users: Vec<UserId>,
    /// It accepts NSFW requests.
    pub nsfw: bool,
    /// Parallel jobs it runs, 1–50.
    pub threads: u32,
    /// Jobs it takes at once from one request with `n > 1`, 1–20.
    pub amount: u32,
    /// Its bridge software.
    pub bridge_agent: String,
    /// It declares itself extra slow: only requests with `extra_slow_workers` reach it.
    pub extra_slow: bool,
    /// Words whose prompts it does not take (AI Horde's `blacklist`), matched without regard
    /// to case; the horde skips those requests for it.
    pub blacklist: Vec<String>,
    /// An opaque fingerprint of where the worker checks in from (see
    /// [`RequestSpec::origin`]); `None` when unknown.
    pub origin: Option<u64>,
    /// A number the caller drew uniformly at random for this pop: whether the pop is answered
    /// with a spot check depends on it (the core draws nothing itself).
    pub draw: u64,
}

/// Why a pop was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// Anonymous cannot run workers.
    #[error("anonymous users cannot run workers")]
    Anonymous,
    /// The caller is not a known user.
    #[error("unknown user")]
    UnknownUser,
    /// The worker name belongs to another user.
    #[error("this worker name belongs to another user")]
    WrongCredentials,
    /// The worker is in maintenance and its owner has nothing queued.
    #[error("the worker is in maintenance")]
    Maintenance,
    /// The name is blank or holds hidden characters.
    #[error("the worker name {reason}")]
    InvalidName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A model name is blank or holds hidden characters.
    #[error("a model name {reason}")]
    InvalidModelName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A list or text is over its limit.
    #[error(transparent)]
    OverLimit(#[from] OverLimit),
    /// The owner is flagged for review: their workers are paused.
    #[error("this worker's owner is flagged for review; its workers are paused")]
    OwnerFlagged,
    /// The owner has as many workers as their trust allows.
    #[error("you have {max} workers, as many as this horde allows you; reuse one's name")]
    TooManyWorkers {
        /// The cap.
        max: usize,
    },
    /// No model was named.
    #[error("a worker must serve at least one model")]
    NoModels,
    /// A parameter is outside its range.
    #[error("{field} must be between {min} and {max}")]
    OutOfRange {
        /// The parameter's API name.
        field: &'static str,
        /// Lowest allowed.
        min: u32,
        /// Highest allowed.
        max: u32,
    },
}

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The job's id (to submit with).
    pub job: JobId,
    /// The request it serves.
    pub request: Arc<RequestSpec>,
    /// The model to generate with.
    pub model: Arc<str>,
    /// Seconds until the job times out.
    pub ttl_secs: u64,
}

/// The answer to a pop.
#[derive(Debug, Clone, PartialEq)]
pub struct PopResult {
    /// The worker (created by this pop if new).
    pub worker: WorkerId,
    /// Jobs handed out: none, or up to `amount` from one request.
    pub assignments: Vec<Assignment>,
    /// When nothing was handed out: waiting requests skipped, by reason.
    pub skipped: SkipCounts,
}

/// Most prompt text, in bytes, that one pop reads looking for a worker's blacklist words:
/// 1 MiB.
const BLACKLIST_SCAN_BYTES: usize = 1 << 20;

impl Horde {
    /// A worker asks for work. Creates the worker on its first pop (with an id from `new_id`),
    /// records its check-in (earning uptime), and hands out up to `amount` jobs — never more
    /// than its free threads — of the first request it may serve: first requests of its owner
    /// and `priority_users`, oldest first; then everyone's, by effective priority. Now and then
    /// (by `query.draw`) the job is a spot check instead. A worker asking while it holds as
    /// many jobs as it declares threads gives its oldest back first. Job ids come from
    /// `new_id`.
    pub fn pop(
        &mut self,
        now: Timestamp,
        query: PopQuery,
        mut new_id: impl FnMut() -> Uuid,
    ) -> Result<Applied<PopResult>, PopError> {
        let owner_policy = self.validate_pop(&query)?;
        let draw = query.draw;
        let existing = self.worker_names.get(&query.name).copied();
        if let Some(worker) = existing.and_then(|id| self.workers.get(&id)) {
            if worker.owner != query.owner {
                return Err(PopError::WrongCredentials);
            }
        }
        let mut events = Vec::new();
        if let Some(id) = existing {
            self.reclaim_lost_job(id, query.threads, now, &mut events);
        }
        let mut profile = match existing.and_then(|id| self.workers.get(&id)) {
            Some(worker) => worker.clone(),
            None => {
                let max = self.config.integrity.max_workers(owner_policy.trusted);
                let count = self.workers_by_owner.get(&query.owner).map_or(0, Vec::len);
                if count >= max {
                    return Err(PopError::TooManyWorkers { max });
                }
                Worker::new(WorkerId(new_id()), query.owner, query.name.clone(), now)
            }
        };
        profile.models = query.models;
        normalize_names(&mut profile.models);
        let size = self.largest_model_b(profile.owner, &profile.models);
        self.worker_sizes.insert(profile.id, size);
        profile.max_length = query.max_length;
        profile.max_context_length = query.max_context_length;
        profile.nsfw = query.nsfw;
        profile.threads = query.threads;
        profile.validated = self.config.bridge_validated(&query.bridge_agent);
        profile.bridge_agent = query.bridge_agent;
        profile.extra_slow = query.extra_slow;
        profile.blacklist = query
            .blacklist
            .iter()
            .map(|word| word.trim().to_lowercase())
            .filter(|word| !word.is_empty())
            .collect();
        profile.last_origin = query.origin;
        profile.trusted = owner_policy.trusted;
        let mut priority_keys = vec![query.owner];
        for user in query.priority_users {
            if !priority_keys.contains(&user) {
                priority_keys.push(user);
            }
        }
        profile.priority_users = priority_keys[1..].to_vec();
        // Most pops change nothing but the worker's clock: then only its stats are reported.
        let profile_changed = existing
            .and_then(|id| self.workers.get(&id))
            .is_none_or(|old| {
                old.models != profile.models
                    || old.max_length != profile.max_length
                    || old.max_context_length != profile.max_context_length
                    || old.nsfw != profile.nsfw
                    || old.threads != profile.threads
                    || old.bridge_agent != profile.bridge_agent
                    || old.extra_slow != profile.extra_slow
                    || old.validated != profile.validated
                    || old.blacklist != profile.blacklist
                    || old.priority_users != profile.priority_users
                    || old.trusted != profile.trusted
                    || old.last_origin != profile.last_origin
            });

        let keys = if profile.maintenance {
            &priority_keys[..1]
        } else {
            &priority_keys[..]
        };
        // A worker holds at most its threads' jobs, and its threads at most what its owner's
        // trust allows: declaring more buys nothing.
        let threads = self
            .config
            .integrity
            .threads(profile.threads, owner_policy.trusted);
        let free = threads.saturating_sub(self.backlog.in_flight(profile.id));
        let (found, skipped) = if free == 0 {
            (None, SkipCounts::default())
        } else {
            self.search(&profile, keys)
        };
        if found.is_none() && profile.maintenance && events.is_empty() {
            return Err(PopError::Maintenance);
        }

        let worker_id = profile.id;
        if existing.is_none() {
            self.worker_names.insert(profile.name.clone(), worker_id);
            self.workers_by_owner
                .entry(profile.owner)
                .or_default()
                .push(worker_id);
        }
        self.workers.insert(worker_id, profile);
        self.check_in(worker_id, now, &mut events);
        let maintenance = self.workers.get(&worker_id).is_none_or(|w| w.maintenance);
        let mut found = found;
        if free > 0 && !maintenance {
            if let Some(check) = self.plan_check(worker_id, draw, now, &mut new_id, &mut events) {
                found = Some(check);
            }
        }
        let assignments = match found {
            Some(request) => {
                let amount = query.amount.min(free);
                self.assign(request, worker_id, amount, now, new_id, &mut events)
            }
            None => Vec::new(),
        };
        if profile_changed {
            self.push_worker_changed(worker_id, &mut events);
        } else {
            self.push_worker_checked_in(worker_id, &mut events);
        }
        Ok(Applied {
            value: PopResult {
                worker: worker_id,
                assignments,
                skipped,
            },
            events,
        })
    }

    /// The request `worker` should serve: the oldest eligible one of `priority_keys`, else
    /// (unless in maintenance, where `priority_keys` is the owner alone and nothing else is
    /// searched) the best eligible one of everyone. When there is none, the waiting requests
    /// skipped, by reason.
    pub(super) fn search(
        &self,
        worker: &Worker,
        priority_keys: &[UserId],
    ) -> (Option<RequestId>, SkipCounts) {
        let lanes: Vec<Lane> = worker
            .models
            .iter()
            .cloned()
            .map(Lane::Model)
            .chain([Lane::Any])
            .collect();
        // Blacklist words are looked for only in requests that pass every other rule, and in
        // at most BLACKLIST_SCAN_BYTES of prompt per pop: a blacklist holding a common word
        // must not make each pop read the whole queue's text under the lock. Past the budget a
        // candidate counts as blacklisted (the worker gets no job it may not want).
        let scanned = std::cell::Cell::new(0usize);
        let blacklisted = |spec: &RequestSpec| {
            if worker.blacklist.is_empty() {
                return false;
            }
            let total = scanned.get().saturating_add(spec.prompt.len());
            scanned.set(total);
            total > BLACKLIST_SCAN_BYTES || matching::blacklisted(worker, spec)
        };
        let eligible = |id: &RequestId| {
            self.requests.get(id).is_some_and(|e| {
                e.state.waiting > 0
                    && matching::check(worker, &e.spec).is_ok()
                    && !blacklisted(&e.spec)
            })
        };
        let mut skipped = SkipCounts::default();
        let own = self
            .queue
            .find_first_of_keys(priority_keys, Some(&lanes), eligible);
        if own.item.is_some() || worker.maintenance {
            return (own.item, skipped);
        }
        let search = self.queue.find_first(Some(&lanes), |id| {
            let Some(entry) = self.requests.get(id) else {
                return false;
            };
            match matching::check(worker, &entry.spec) {
                Ok(()) if entry.state.waiting == 0 => false,
                Ok(()) if blacklisted(&entry.spec) => {
                    skipped.add(SkipReason::Blacklist, 1);
                    false
                }
                Ok(()) => true,
                Err(reason) => {
                    skipped.add(reason, 1);
                    false
                }
            }
        });
        if search.item.is_some() {
            return (search.item, SkipCounts::default());
        }
        // Requests in none of the worker's lanes were never looked at: their models differ.
        let not_in_lanes = self.queue.len().saturating_sub(search.examined);
        skipped.add(SkipReason::Models, not_in_lanes as u64);
        (None, skipped)
    }

    /// Hands up to `amount` generations of `request_id` to `worker_id` as new jobs.
    pub(super) fn assign(
        &mut self,
        request_id: RequestId,
        worker_id: WorkerId,
        amount: u32,
        now: Timestamp,
        mut new_id: impl FnMut() -> Uuid,
        events: &mut Vec<Event>,
    ) -> Vec<Assignment> {
        let mut assignments = Vec::new();
        let (Some(entry), Some(worker)) = (
            self.requests.get_mut(&request_id),
            self.workers.get(&worker_id),
        ) else {
            return assignments;
        };
        let model = matching::chosen_model(worker, &entry.spec)
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        let timeout = self.config.job_timeout_ms(entry.spec.params.max_length);
        let amount = if entry.spec.disable_batching {
            amount.min(1)
        } else {
            amount
        };
        let take = amount.min(entry.state.waiting);
        for _ in 0..take {
            let job = Job {
                id: JobId(new_id()),
                request: request_id,
                worker: worker_id,
                model: model.clone(),
                started_at: now,
                deadline: now.plus_millis(timeout),
                status: JobStatus::Processing,
            };
            self.deadlines.insert((job.deadline, job.id));
            self.backlog.processing(&job, 1);
            entry.jobs.push(job.id);
            assignments.push(Assignment {
                job: job.id,
                request: entry.spec.clone(),
                model: model.clone(),
                ttl_secs: timeout / 1000,
            });
            events.push(Event::JobChanged(job.clone()));
            self.jobs.insert(job.id, job);
        }
        entry.state.waiting -= take;
        self.backlog.waiting(&entry.spec, -i64::from(take));
        entry.state.processing += take;
        if entry.state.waiting == 0 {
            // Out of line while all its generations are processing; the ticket in the entry
            // brings it back to its place on a restart.
            self.queue.remove(&request_id);
        }
        let last_progress = entry.state.last_progress;
        self.touch(request_id, last_progress, now);
        self.push_request_changed(request_id, events);
        assignments
    }

    /// Worker `id` asks for work while holding as many jobs as the `threads` it declares: it
    /// lost one (a restart, a submit that never arrived). Its oldest job goes back to the
    /// queue now, rather than at its deadline, and counts as a failure: a worker cannot hold
    /// more than its threads by asking again, and a restarted one is not left idle.
    fn reclaim_lost_job(
        &mut self,
        id: WorkerId,
        threads: u32,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) {
        let held = self.backlog.in_flight(id);
        if held == 0 || held < threads {
            return;
        }
        if let Some(job) = self.backlog.oldest_in_flight(id) {
            self.abort_job(job, AbortReason::Faulted, now, events);
            self.count_fault(id, events);
        }
    }

    pub(super) fn validate_pop(&self, query: &PopQuery) -> Result<UserPolicy, PopError> {
        if query.owner.is_anonymous() {
            return Err(PopError::Anonymous);
        }
        let policy = *self.users.get(&query.owner).ok_or(PopError::UnknownUser)?;
        if policy.flagged {
            return Err(PopError::OwnerFlagged);
        }
        if let Some(reason) = name_problem(&query.name) {
            return Err(PopError::InvalidName { reason });
        }
        let limits = &self.config.limits;
        OverLimit::chars("name", &query.name, limits.max_worker_name_chars)?;
        if query.models.is_empty() {
            return Err(PopError::NoModels);
        }
        OverLimit::entries("models", &query.models, limits.max_models)?;
        for model in &query.models {
            OverLimit::chars("models", model, limits.max_model_name_chars)?;
            if let Some(reason) = name_problem(model) {
                return Err(PopError::InvalidModelName { reason });
            }
        }
        OverLimit::entries(
            "priority_usernames",
            &query.priority_users,
            limits.max_priority_users,
        )?;
        OverLimit::chars(
            "bridge_agent",
            &query.bridge_agent,
            limits.max_bridge_agent_chars,
        )?;
        OverLimit::entries("blacklist", &query.blacklist, limits.max_blacklist_words)?;
        for word in &query.blacklist {
            OverLimit::chars("blacklist", word, limits.max_blacklist_word_chars)?;
        }
        let out_of_range = |field| move |min, max| PopError::OutOfRange { field, min, max };
        in_range(query.threads, THREADS_RANGE, out_of_range("threads"))?;
        in_range(query.amount, AMOUNT_RANGE, out_of_range("amount"))?;
        in_range(
            query.max_length,
            MAX_LENGTH_RANGE,
            out_of_range("max_length"),
        )?;
        in_range(
            query.max_context_length,
            MAX_CONTEXT_RANGE,
            out_of_range("max_context_length"),
        )?;
        Ok(policy)
    }

    /// Returns true if and only if worker `id` may earn uptime at `now`: it submitted a paid
    /// generation for another user within the proof window (uptime from a worker with no
    /// backend, or serving only its owner, is not work), and it is among the first workers
    /// its owner may have.
    fn earns_uptime(&self, id: WorkerId, now: Timestamp) -> bool {
        let Some(worker) = self.workers.get(&id) else {
            return false;
        };
        let integrity = &self.config.integrity;
        let window_ms = integrity.uptime_proof_window_secs.saturating_mul(1000);
        let proven = worker
            .last_good_at
            .is_some_and(|at| now.millis_since(at) <= window_ms);
        let trusted = self.users.get(&worker.owner).is_some_and(|p| p.trusted);
        let within_cap = self
            .workers_by_owner
            .get(&worker.owner)
            .and_then(|ids| ids.iter().position(|w| *w == id))
            .is_some_and(|rank| rank < integrity.max_workers(trusted));
        proven && within_cap
    }

    /// Records a worker's check-in and pays any uptime award that fell due.
    pub(super) fn check_in(&mut self, id: WorkerId, now: Timestamp, events: &mut Vec<Event>) {
        let economy = &self.config.economy;
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        let uptime_before = worker.uptime_ms;
        let due = worker.check_in(
            now,
            economy.online_timeout_secs,
            economy.uptime_interval_secs,
        );
        let online_ms = worker.uptime_ms.saturating_sub(uptime_before);
        self.refresh_online(id);
        if online_ms > 0 {
            self.credit_team(id, Kudos::ZERO, 0, online_ms, events);
        }
        if due == 0 || !self.earns_uptime(id, now) {
            return;
        }
        let Some(worker) = self.workers.get(&id) else {
            return;
        };
        // Paid for what the worker has shown (the model and context of its recent paid work
        // for others), never for what it advertises — sized as its generations are. One award
        // per interval at most, however long the worker was away.
        let owner = worker.owner;
        let size = worker
            .shown_model
            .as_deref()
            .map_or(0.0, |model| self.model_size_for(owner, model));
        let award = self
            .config
            .economy
            .uptime_reward(size, worker.shown_context);
        let escrowed = self.config.integrity.escrow_untrusted
            && self.users.get(&owner).is_some_and(|p| !p.trusted);
        let posted = if escrowed {
            self.ledger.escrow_uptime(owner, award, now)
        } else {
            self.ledger.award_uptime(owner, award, now)
        };
        if let Ok(posting) = posted {
            if let Some(worker) = self.workers.get_mut(&id) {
                worker.kudos_uptime = worker
                    .kudos_uptime
                    .checked_add(award)
                    .unwrap_or(worker.kudos_uptime);
            }
            self.record_posting(posting, events);
            self.credit_team(id, award, 0, 0, events);
            self.trust_if_earned(owner, now, events);
        }
    }
}
