//! The `Horde` state machine: requests in, jobs out, kudos settled.
//!
//! Commands ([`Horde::enqueue`], [`Horde::pop`], [`Horde::submit`], [`Horde::cancel`],
//! [`Horde::transfer`], [`Horde::tick`], …) take `now` and caller-minted ids, change the state
//! all-or-nothing, and return the [`Event`]s that describe the change. A binary persists those
//! events; [`Horde::restore`] rebuilds the same state from what it persisted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::matching::{self, SkipCounts, SkipReason};
use crate::queue::{PriorityQueue, Ticket};
use crate::reference::ModelReference;
use crate::request::{
    AbortReason, GenParams, Generation, GenerationState, Job, JobStatus, Outcome, RequestSpec,
    RequestState,
};
use crate::{
    text, AccountState, EconomyConfig, JobId, Kudos, Ledger, LedgerError, Posting, RequestId,
    TeamId, Timestamp, UserId, Worker, WorkerId, WorkerStats,
};
use limits::normalize_names;
use online::Online;

/// Limits and timings of the horde. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HordeConfig {
    /// Reward rules.
    pub economy: EconomyConfig,
    /// Size limits of requests and workers.
    pub limits: Limits,
    /// Rules against farming kudos.
    pub integrity: Integrity,
    /// Spot checks of workers' answers.
    pub spot_checks: SpotChecks,
    /// Priority a waiting request gains per second, in kudos. Default 1 kudos/s: after the
    /// 20 minutes a request may wait, a request has gained 1200 kudos over newer ones.
    pub ageing_per_sec: Kudos,
    /// Generations (waiting plus processing) a user may have open at once, unless their
    /// [`UserPolicy`] says otherwise. Default 30.
    pub default_concurrency: u32,
    /// Times a request's generations may fail or time out before the request is faulted.
    /// Default 3.
    pub max_restarts: u32,
    /// A request without progress for this long expires. Default 1200 s.
    pub request_timeout_secs: u64,
    /// A closed request stays readable for this long. Default 1200 s.
    pub retention_secs: u64,
    /// Job deadline: this many seconds… Default 90.
    pub job_timeout_base_secs: u64,
    /// …plus this many milliseconds per token of `max_length`. Default 500 (512 tokens: 346 s).
    pub job_timeout_per_token_ms: u64,
    /// Bridge software the operator validated, by the name part of `bridge_agent`
    /// (`name:version:url`), e.g. `"horde-worker"`. Requests with `validated_backends` (the
    /// default) go only to workers running one of these. Default empty: the operator
    /// validated nothing in particular and every bridge counts as validated.
    pub validated_bridges: Vec<String>,
}

impl Default for HordeConfig {
    fn default() -> Self {
        HordeConfig {
            economy: EconomyConfig::default(),
            limits: Limits::default(),
            integrity: Integrity::default(),
            spot_checks: SpotChecks::default(),
            ageing_per_sec: Kudos::from_milli(1000),
            default_concurrency: 30,
            max_restarts: 3,
            request_timeout_secs: 1200,
            retention_secs: 1200,
            job_timeout_base_secs: 90,
            job_timeout_per_token_ms: 500,
            validated_bridges: Vec::new(),
        }
    }
}

impl HordeConfig {
    /// Returns true if and only if `bridge_agent` names a bridge the operator validated (any,
    /// while [`HordeConfig::validated_bridges`] is empty).
    ///
    /// ```
    /// use horde_core::HordeConfig;
    /// let mut config = HordeConfig::default();
    /// assert!(config.bridge_validated("anything:1:"));
    /// config.validated_bridges = vec!["horde-worker".into()];
    /// assert!(config.bridge_validated("horde-worker:0.1.0:"));
    /// assert!(!config.bridge_validated("my-fork:9:https://example.org"));
    /// ```
    pub fn bridge_validated(&self, bridge_agent: &str) -> bool {
        let name = bridge_agent.split(':').next().unwrap_or_default();
        self.validated_bridges.is_empty() || self.validated_bridges.iter().any(|v| v == name)
    }

    /// How long a worker has to finish a job of `max_length` tokens.
    pub fn job_timeout_ms(&self, max_length: u32) -> u64 {
        self.job_timeout_base_secs * 1000 + self.job_timeout_per_token_ms * u64::from(max_length)
    }
}

/// Queue lanes: a request waits in one lane per acceptable model, or in `Any`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Lane {
    Any,
    Model(Arc<str>),
}

#[derive(Debug)]
struct RequestEntry {
    spec: Arc<RequestSpec>,
    state: RequestState,
    jobs: Vec<JobId>,
    /// Its place in line, kept while all its generations are processing (and it is out of
    /// the queue) so that a restart puts it back where it was.
    ticket: Option<Ticket>,
}

/// Waiting generations and processing jobs, counted as they change so that status figures
/// never scan the requests.
#[derive(Debug, Default)]
struct Backlog {
    /// Waiting generations and their requested tokens.
    total: (u64, u64),
    /// The same per model that requests name (requests for any model are only in `total`).
    by_model: BTreeMap<Arc<str>, (u64, u64)>,
    /// Jobs processing per model.
    processing_by_model: BTreeMap<Arc<str>, u64>,
    /// Jobs processing per worker, oldest first (a worker holds at most its threads).
    in_flight: HashMap<WorkerId, Vec<JobId>>,
}

impl Backlog {
    /// `delta` more (or fewer) waiting generations of `spec`.
    fn waiting(&mut self, spec: &RequestSpec, delta: i64) {
        let tokens = delta * i64::from(spec.params.max_length);
        let apply = |(g, t): &mut (u64, u64)| {
            *g = g.saturating_add_signed(delta);
            *t = t.saturating_add_signed(tokens);
        };
        apply(&mut self.total);
        for model in &spec.models {
            let entry = self.by_model.entry(model.clone()).or_default();
            apply(entry);
            if entry.0 == 0 {
                self.by_model.remove(model);
            }
        }
    }

    /// `delta` more (or fewer) jobs processing like `job` (its model, its worker).
    fn processing(&mut self, job: &Job, delta: i64) {
        let entry = self
            .processing_by_model
            .entry(job.model.clone())
            .or_default();
        *entry = entry.saturating_add_signed(delta);
        if *entry == 0 {
            self.processing_by_model.remove(&job.model);
        }
        let held = self.in_flight.entry(job.worker).or_default();
        if delta > 0 {
            held.push(job.id);
        } else {
            held.retain(|id| *id != job.id);
        }
        if held.is_empty() {
            self.in_flight.remove(&job.worker);
        }
    }

    /// Jobs worker `id` is processing.
    fn in_flight(&self, id: WorkerId) -> u32 {
        self.in_flight.get(&id).map_or(0, |jobs| jobs.len() as u32)
    }

    /// The job worker `id` has been processing longest.
    fn oldest_in_flight(&self, id: WorkerId) -> Option<JobId> {
        self.in_flight.get(&id)?.first().copied()
    }
}

/// The whole horde: users' balances, workers, the queue, requests and jobs.
///
/// ```
/// use horde_core::*;
/// use uuid::Uuid;
///
/// let mut horde = Horde::new(HordeConfig::default());
/// let volunteer = UserId(1);
/// let t0 = Timestamp::from_secs(1_000);
/// // A trusted volunteer is paid in full at once (an untrusted one half now, half in escrow).
/// let policy = UserPolicy {
///     concurrency: 30, trusted: true, public_workers: false, flagged: false, registered_at: t0,
///     roles: Default::default(),
/// };
/// let _registered = horde.set_user(volunteer, policy);
///
/// let mut spec = RequestSpec::new(RequestId(Uuid::from_u128(1)), UserId::ANONYMOUS, "Once upon a time", t0);
/// spec.models = vec!["koboldcpp/Llama-3-8B".into()];
/// horde.enqueue(t0, spec)?;
///
/// let query = PopQuery {
///     owner: volunteer,
///     name: "my-worker".into(),
///     models: vec!["koboldcpp/Llama-3-8B".into()],
///     max_length: 512,
///     max_context_length: 4096,
///     priority_users: vec![],
///     nsfw: false,
///     threads: 1,
///     amount: 1,
///     bridge_agent: "test:1:none".into(),
///     extra_slow: false,
///     blacklist: vec![],
///     origin: None,
///     draw: 0,
/// };
/// let mut next = 100u128;
/// let popped = horde.pop(t0.plus_secs(1), query, || { next += 1; Uuid::from_u128(next) })?;
/// let job = popped.value.assignments[0].job;
///
/// let done = horde.submit(t0.plus_secs(5), volunteer, job, Submission {
///     state: SubmitState::Ok, text: "there was a horde.".into(), seed: None, metadata: None,
/// })?;
/// assert!(done.value.is_positive());
/// assert_eq!(horde.ledger().balance(volunteer), done.value);
/// assert_eq!(horde.ledger().balance(UserId::ANONYMOUS), -done.value);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Horde {
    config: HordeConfig,
    ledger: Ledger,
    users: HashMap<UserId, UserPolicy>,
    workers: HashMap<WorkerId, Worker>,
    /// The size in billions of each worker's largest model, computed when it checks in, so
    /// that estimates and uptime awards do not parse every model name each time.
    worker_sizes: HashMap<WorkerId, f64>,
    online: Online,
    /// Workers of each owner.
    workers_by_owner: HashMap<UserId, Vec<WorkerId>>,
    /// Which models the horde knows, and their sizes.
    reference: ModelReference,
    worker_names: HashMap<String, WorkerId>,
    /// A B-tree, not a hash map: it grows a node at a time, where a hash map of 100,000
    /// requests doubled (rehashing them all) under the server's lock, 15–29 ms once in fifty
    /// enqueues.
    requests: BTreeMap<RequestId, RequestEntry>,
    jobs: HashMap<JobId, Job>,
    queue: PriorityQueue<UserId, Lane, RequestId>,
    /// Open generations (waiting + processing) per user.
    open_slots: HashMap<UserId, u32>,
    /// Open anonymous generations per address fingerprint.
    anonymous_slots: HashMap<u64, u32>,
    backlog: Backlog,
    deadlines: BTreeSet<(Timestamp, JobId)>,
    expiries: BTreeSet<(Timestamp, RequestId)>,
    removals: BTreeSet<(Timestamp, RequestId)>,
    /// Spot checks under way and trusted answers known.
    checks: checks::Checks,
    /// Teams of workers.
    teams: HashMap<TeamId, teams::Team>,
}

/// The lanes a request waits in: one per acceptable model, or `Any`.
fn lanes_of(spec: &RequestSpec) -> Vec<Lane> {
    if spec.models.is_empty() {
        vec![Lane::Any]
    } else {
        spec.models.iter().cloned().map(Lane::Model).collect()
    }
}

use ranges::{
    AMOUNT as AMOUNT_RANGE, MAX_CONTEXT_LENGTH as MAX_CONTEXT_RANGE,
    MAX_LENGTH as MAX_LENGTH_RANGE, N as N_RANGE, THREADS as THREADS_RANGE,
};

/// AI Horde's ranges of request and worker parameters, `(min, max)` inclusive: what the horde
/// accepts, and what a worker advertises within.
///
/// ```
/// use horde_core::ranges;
/// assert_eq!(ranges::MAX_LENGTH, (16, 4096));
/// assert_eq!(ranges::clamp(8, ranges::MAX_LENGTH), 16);
/// ```
pub mod ranges {
    /// Generations per request.
    pub const N: (u32, u32) = (1, 20);
    /// Tokens to generate (a request's, and the most a worker generates).
    pub const MAX_LENGTH: (u32, u32) = (16, 4096);
    /// Tokens of context (a request's, and the most a worker accepts).
    pub const MAX_CONTEXT_LENGTH: (u32, u32) = (80, 131_072);
    /// A worker's parallel jobs.
    pub const THREADS: (u32, u32) = (1, 50);
    /// Jobs a worker takes in one pop.
    pub const AMOUNT: (u32, u32) = (1, 20);
    /// A user's open generations, as an administrator may set them.
    pub const CONCURRENCY: (u32, u32) = (0, 500);

    /// `value` moved into `range`.
    pub fn clamp(value: u32, (min, max): (u32, u32)) -> u32 {
        value.clamp(min, max)
    }
}

fn in_range<E>(
    value: u32,
    (min, max): (u32, u32),
    err: impl FnOnce(u32, u32) -> E,
) -> Result<(), E> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(err(min, max))
    }
}

impl Horde {
    /// An empty horde with only the Anonymous user.
    pub fn new(config: HordeConfig) -> Horde {
        Horde::restore(config, [], [], [], [])
    }

    /// Rebuilds a horde from persisted state: user policies, account states, workers, and
    /// requests with their state and jobs (open requests are re-queued in creation order).
    pub fn restore(
        config: HordeConfig,
        users: impl IntoIterator<Item = (UserId, UserPolicy)>,
        accounts: impl IntoIterator<Item = (UserId, AccountState)>,
        workers: impl IntoIterator<Item = Worker>,
        requests: impl IntoIterator<Item = (Arc<RequestSpec>, RequestState, Vec<Job>)>,
    ) -> Horde {
        let anonymous = UserPolicy {
            concurrency: config.default_concurrency,
            trusted: false,
            public_workers: false,
            flagged: false,
            registered_at: Timestamp(0),
            roles: Default::default(),
        };
        let mut horde = Horde {
            queue: PriorityQueue::new(config.ageing_per_sec.milli()),
            ledger: Ledger::restore(accounts),
            users: HashMap::from([(UserId::ANONYMOUS, anonymous)]),
            workers: HashMap::new(),
            worker_sizes: HashMap::new(),
            online: Online::default(),
            workers_by_owner: HashMap::new(),
            reference: ModelReference::default(),
            worker_names: HashMap::new(),
            requests: BTreeMap::new(),
            jobs: HashMap::new(),
            open_slots: HashMap::new(),
            anonymous_slots: HashMap::new(),
            backlog: Backlog::default(),
            deadlines: BTreeSet::new(),
            expiries: BTreeSet::new(),
            removals: BTreeSet::new(),
            checks: checks::Checks::default(),
            teams: HashMap::new(),
            config,
        };
        horde.users.extend(users);
        for mut worker in workers {
            // Stores written before model lists were kept sorted.
            normalize_names(&mut worker.models);
            let size = horde.largest_model_b(worker.owner, &worker.models);
            horde.worker_sizes.insert(worker.id, size);
            horde.worker_names.insert(worker.name.clone(), worker.id);
            let id = worker.id;
            horde
                .workers_by_owner
                .entry(worker.owner)
                .or_default()
                .push(id);
            horde.workers.insert(id, worker);
            // Workers that went offline while the server was down leave at the first tick.
            horde.refresh_online(id);
        }
        let mut requests: Vec<_> = requests.into_iter().collect();
        requests.sort_by_key(|(spec, ..)| (spec.created_at, spec.id));
        for (mut spec, state, jobs) in requests {
            if !spec.models.is_sorted() || spec.models.windows(2).any(|w| w[0] == w[1]) {
                normalize_names(&mut Arc::make_mut(&mut spec).models);
            }
            let id = spec.id;
            for job in &jobs {
                if job.status == JobStatus::Processing {
                    horde.deadlines.insert((job.deadline, job.id));
                    horde.backlog.processing(job, 1);
                }
            }
            if let Some((_, closed_at)) = state.closed {
                horde
                    .removals
                    .insert((closed_at.plus_secs(horde.config.retention_secs), id));
            }
            let mut ticket = None;
            if state.is_open() {
                horde.take_slots(&spec, state.waiting + state.processing);
                ticket = horde.enqueue_item(&spec);
                horde.backlog.waiting(&spec, i64::from(state.waiting));
                if state.waiting == 0 {
                    horde.queue.remove(&id);
                }
                horde.expiries.insert((horde.expiry_of(&state), id));
            }
            let job_ids = jobs.iter().map(|j| j.id).collect();
            horde.jobs.extend(jobs.into_iter().map(|j| (j.id, j)));
            horde.requests.insert(
                id,
                RequestEntry {
                    spec,
                    state,
                    jobs: job_ids,
                    ticket,
                },
            );
        }
        horde
    }

    /// The configuration.
    pub fn config(&self) -> &HordeConfig {
        &self.config
    }

    /// The ledger (balances and details).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The policy of `user`, if known.
    pub fn user(&self, user: UserId) -> Option<UserPolicy> {
        self.users.get(&user).copied()
    }

    /// Generations `user` has open (waiting plus processing).
    pub fn open_generations(&self, user: UserId) -> u32 {
        self.open_slots.get(&user).copied().unwrap_or(0)
    }

    /// A worker by id.
    pub fn worker(&self, id: WorkerId) -> Option<&Worker> {
        self.workers.get(&id)
    }

    /// A worker by name.
    pub fn worker_by_name(&self, name: &str) -> Option<&Worker> {
        self.workers.get(self.worker_names.get(name)?)
    }

    /// The workers of `owner`, in no particular order. O(workers of `owner`).
    pub fn workers_of(&self, owner: UserId) -> impl Iterator<Item = &Worker> {
        self.workers_by_owner
            .get(&owner)
            .into_iter()
            .flatten()
            .filter_map(|id| self.workers.get(id))
    }

    /// All workers, in no particular order.
    pub fn workers(&self) -> impl Iterator<Item = &Worker> {
        self.workers.values()
    }

    /// A request's immutable part and state.
    pub fn request(&self, id: RequestId) -> Option<(&Arc<RequestSpec>, &RequestState)> {
        self.requests.get(&id).map(|e| (&e.spec, &e.state))
    }

    /// A job by id.
    pub fn job(&self, id: JobId) -> Option<&Job> {
        self.jobs.get(&id)
    }

    /// Requests waiting in the queue (open with generations not yet started, or processing).
    pub fn queued_requests(&self) -> usize {
        self.queue.len()
    }

    /// Number of requests held (open and recently closed).
    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    /// How many queued requests are ahead of `id`, or `None` if it is not queued.
    pub fn queue_position(&self, id: RequestId) -> Option<usize> {
        self.queue.position(&id)
    }

    /// The earliest time at which [`Horde::tick`] has something to do, if any.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        [
            self.deadlines.first().map(|d| d.0),
            self.expiries.first().map(|d| d.0),
            self.removals.first().map(|d| d.0),
            self.online.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// `user`'s place in the queue's order, in thousandths of a kudos: their balance, floored
    /// at [`Integrity::priority_floor`] and, above zero, compressed towards
    /// [`Integrity::priority_ceiling`].
    fn queue_priority(&self, user: UserId) -> i64 {
        if self.users.get(&user).is_some_and(|p| p.flagged) {
            // Behind everyone: ageing would need decades to bring it forward.
            return i64::MIN / 4;
        }
        if user == UserId::HORDE {
            // Spot checks go first: a reference waits for its trusted worker's next pop.
            return i64::MAX / 4;
        }
        let integrity = &self.config.integrity;
        let balance = self.ledger.balance(user).milli();
        let ceiling = integrity.priority_ceiling.milli();
        if balance > 0 && ceiling > 0 {
            // c·b / (b + c): strictly increasing in b, below c however rich.
            let (b, c) = (i128::from(balance), i128::from(ceiling));
            return i64::try_from(c * b / (b + c)).unwrap_or(ceiling);
        }
        balance.max(integrity.priority_floor.milli())
    }

    /// Re-counts worker `id` among the online workers after a check-in or a change: online
    /// until `online_timeout_secs` after its last check-in, unless in maintenance.
    fn refresh_online(&mut self, id: WorkerId) {
        let Some(worker) = self.workers.get(&id) else {
            return;
        };
        let timeout_ms = self.config.economy.online_timeout_secs.saturating_mul(1000);
        let until = worker.last_seen.plus_millis(timeout_ms.saturating_add(1));
        let size = self.worker_sizes.get(&id).copied().unwrap_or(0.0);
        let threads = self
            .config
            .integrity
            .threads(worker.threads, worker.trusted);
        let speed = worker.tokens_per_second();
        self.online.set(worker, size, threads, speed, until);
    }

    /// The size in billions of the largest of `models` served by a worker of `owner` (0 for
    /// none).
    fn largest_model_b(&self, owner: UserId, models: &[Arc<str>]) -> f64 {
        models
            .iter()
            .map(|m| self.model_size_for(owner, m))
            .fold(0.0, f64::max)
    }

    /// The size `model` is paid as: from the model reference, under the configured policy.
    pub fn model_size_b(&self, model: &str) -> f64 {
        self.config.economy.size_of(&self.reference, model)
    }

    /// The size `model` is paid as when `owner`'s worker serves it: as [`Horde::model_size_b`],
    /// except that a customizer's model the reference does not know is sized by its name
    /// (capped at the reference's largest).
    pub fn model_size_for(&self, owner: UserId, model: &str) -> f64 {
        let customizer = self.users.get(&owner).is_some_and(|p| p.roles.customizer);
        if customizer && self.reference.lookup(model).is_none() {
            return self.config.economy.size_under(
                crate::ModelSizePolicy::Name,
                &self.reference,
                model,
            );
        }
        self.model_size_b(model)
    }

    /// The model reference.
    pub fn model_reference(&self) -> &ModelReference {
        &self.reference
    }

    /// Replaces the model reference (at start, or when the operator reloads it) and re-sizes
    /// every worker. Sizes are configuration, not state: nothing is persisted. O(workers ×
    /// models).
    pub fn set_model_reference(&mut self, reference: ModelReference) {
        self.reference = reference;
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            let size = self
                .workers
                .get(&id)
                .map_or(0.0, |w| self.largest_model_b(w.owner, &w.models));
            self.worker_sizes.insert(id, size);
            self.refresh_online(id);
        }
    }

    /// Moves a request's expiry after progress at `now`.
    fn touch(&mut self, id: RequestId, old_progress: Timestamp, now: Timestamp) {
        let timeout = self.config.request_timeout_secs;
        self.expiries.remove(&(old_progress.plus_secs(timeout), id));
        if let Some(entry) = self.requests.get_mut(&id) {
            entry.state.last_progress = now;
            if entry.state.is_open() {
                self.expiries.insert((now.plus_secs(timeout), id));
            }
        }
    }

    fn push_request_changed(&self, id: RequestId, events: &mut Vec<Event>) {
        if let Some(entry) = self.requests.get(&id) {
            events.push(Event::RequestChanged {
                id,
                state: entry.state,
            });
        }
    }

    fn push_worker_changed(&self, id: WorkerId, events: &mut Vec<Event>) {
        if let Some(worker) = self.workers.get(&id) {
            events.push(Event::WorkerChanged(worker.clone()));
        }
    }

    /// Reports a change of worker `id`'s stats only.
    fn push_worker_checked_in(&self, id: WorkerId, events: &mut Vec<Event>) {
        if let Some(worker) = self.workers.get(&id) {
            events.push(Event::WorkerCheckedIn {
                id,
                stats: worker.stats(),
            });
        }
    }

    /// Counts `count` more open generations of `spec`'s owner (and, for Anonymous, of its
    /// address).
    fn take_slots(&mut self, spec: &RequestSpec, count: u32) {
        *self.open_slots.entry(spec.owner).or_default() += count;
        if let (true, Some(origin)) = (spec.owner.is_anonymous(), spec.origin) {
            *self.anonymous_slots.entry(origin).or_default() += count;
        }
    }

    /// Counts `count` fewer open generations of `spec`'s owner (and address).
    fn release_slots(&mut self, spec: &RequestSpec, count: u32) {
        fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: K, count: u32) {
            if let Some(open) = map.get_mut(&key) {
                *open = open.saturating_sub(count);
                if *open == 0 {
                    map.remove(&key);
                }
            }
        }
        release(&mut self.open_slots, spec.owner, count);
        if let (true, Some(origin)) = (spec.owner.is_anonymous(), spec.origin) {
            release(&mut self.anonymous_slots, origin, count);
        }
    }
}

mod accounts;
mod checks;
mod enqueue;
mod events;
mod limits;
mod online;
mod policy;
mod pop;
mod status;
mod submit;
mod teams;
mod tick;
mod workers;

pub use accounts::TransferError;
pub use checks::{CheckVerdict, SpotChecks};
pub use enqueue::EnqueueError;
pub use events::{Applied, Event};
pub use limits::{name_problem, Integrity, Limits, OverLimit, SpeedLimit, HIDDEN_CHARACTERS};
pub use policy::{Roles, UserPolicy};
pub use pop::{Assignment, PopError, PopQuery, PopResult};
pub use status::{ModelStats, OtherModels, RequestStatus, TOKENS_PER_SEC_PER_THREAD};
pub use submit::{Payment, Submission, SubmitError, SubmitState, Unpaid};
pub use teams::{Team, TeamError, TEAMS_PER_CREATOR, TEAM_INFO_MAX, TEAM_NAME_MAX};
pub use workers::{WorkerDeleteError, WorkerUpdate, WorkerUpdateError};

#[cfg(test)]
mod tests;
