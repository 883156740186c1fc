//! The `Horde` state machine: requests in, jobs out, kudos settled.
//!
//! Commands ([`Horde::enqueue`], [`Horde::pop`], [`Horde::submit`], [`Horde::cancel`],
//! [`Horde::transfer`], [`Horde::tick`], …) take `now` and caller-minted ids, change the state
//! all-or-nothing, and return the [`Event`]s that describe the change. A binary persists those
//! events; [`Horde::restore`] rebuilds the same state from what it persisted.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::matching::{self, SkipCounts, SkipReason};
use crate::queue::{PriorityQueue, Ticket};
use crate::request::{
    AbortReason, GenParams, Generation, GenerationState, Job, JobStatus, Outcome, RequestSpec,
    RequestState,
};
use crate::{
    AccountState, EconomyConfig, JobId, Kudos, Ledger, LedgerError, Posting, RequestId, Timestamp,
    UserId, Worker, WorkerId,
};

/// Limits and timings of the horde. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HordeConfig {
    /// Reward rules.
    pub economy: EconomyConfig,
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
}

impl Default for HordeConfig {
    fn default() -> Self {
        HordeConfig {
            economy: EconomyConfig::default(),
            ageing_per_sec: Kudos::from_milli(1000),
            default_concurrency: 30,
            max_restarts: 3,
            request_timeout_secs: 1200,
            retention_secs: 1200,
            job_timeout_base_secs: 90,
            job_timeout_per_token_ms: 500,
        }
    }
}

impl HordeConfig {
    /// How long a worker has to finish a job of `max_length` tokens.
    pub fn job_timeout_ms(&self, max_length: u32) -> u64 {
        self.job_timeout_base_secs * 1000 + self.job_timeout_per_token_ms * u64::from(max_length)
    }
}

/// What the core needs to know of a user besides their balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPolicy {
    /// Generations the user may have open at once.
    pub concurrency: u32,
    /// The user's workers count as trusted.
    pub trusted: bool,
}

/// A change the core made, for a binary to persist. Replaying the latest value of every
/// entity into [`Horde::restore`] gives back the same state.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A request was accepted (its immutable part; stored once).
    RequestQueued(Arc<RequestSpec>),
    /// A request's mutable state changed.
    RequestChanged {
        /// Which request.
        id: RequestId,
        /// Its new state.
        state: RequestState,
    },
    /// A job started or changed (finished, aborted).
    JobChanged(Job),
    /// A closed request's retention ended; it and its jobs can be deleted.
    RequestRemoved(RequestId),
    /// Kudos moved.
    Posted(Posting),
    /// A user's balance or details changed (the result of a posting).
    AccountChanged {
        /// Whose account.
        user: UserId,
        /// Its new state.
        state: AccountState,
    },
    /// A worker was created or changed.
    WorkerChanged(Worker),
}

/// A command's result and the events it caused.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<T> {
    /// What the command returns to its caller.
    pub value: T,
    /// What changed, in order.
    pub events: Vec<Event>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// The prompt is empty.
    #[error("the prompt must not be empty")]
    EmptyPrompt,
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
    /// `max_context_length` is below `max_length`.
    #[error("max_context_length must not be below max_length")]
    TokenOverflow,
    /// The user has too many generations open.
    #[error("too many open generations: at most {limit} at once")]
    TooManyPrompts {
        /// The user's concurrency.
        limit: u32,
    },
    /// The owner is not a known user.
    #[error("unknown user")]
    UnknownUser,
    /// A request with this id exists.
    #[error("a request with this id exists")]
    DuplicateId,
}

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
    /// The name is empty or too long.
    #[error("the worker name must be 1 to 100 characters")]
    InvalidName,
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

/// How a worker reports a job's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitState {
    /// A generation.
    Ok,
    /// A censored generation (paid like `Ok`).
    Censored,
    /// The worker failed: no reward; the generation goes back to the queue.
    Faulted,
}

/// A worker's result for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Ok, censored or faulted.
    pub state: SubmitState,
    /// The text.
    pub text: String,
    /// The seed, if the backend reports one.
    pub seed: Option<String>,
    /// Backend metadata, JSON text.
    pub metadata: Option<Arc<str>>,
}

/// Why a submission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// No such job (or its request is gone).
    #[error("no such job")]
    UnknownJob,
    /// The job belongs to another user's worker.
    #[error("this job belongs to another worker")]
    WrongCredentials,
    /// The job was already submitted.
    #[error("this generation was already submitted")]
    Duplicate,
    /// The job timed out, failed or was cancelled.
    #[error("this generation was aborted")]
    Aborted,
    /// Settling would overflow a balance.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Why a transfer or an adjustment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// A user does not exist.
    #[error("unknown user")]
    UnknownUser,
    /// The ledger refused it.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Changes an owner (or an admin) may make to a worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerUpdate {
    /// Enter or leave maintenance.
    pub maintenance: Option<bool>,
    /// The maintenance message.
    pub maintenance_msg: Option<String>,
    /// The info text.
    pub info: Option<String>,
    /// A new unique name.
    pub name: Option<String>,
}

/// Why a worker update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerUpdateError {
    /// No such worker.
    #[error("no such worker")]
    UnknownWorker,
    /// The caller neither owns the worker nor is an admin.
    #[error("this worker belongs to another user")]
    WrongCredentials,
    /// The new name is taken or invalid.
    #[error("this worker name is taken or invalid")]
    InvalidName,
}

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

/// Queue lanes: a request waits in one lane per acceptable model, or in `Any`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    by_model: HashMap<Arc<str>, (u64, u64)>,
    /// Jobs processing per model.
    processing_by_model: HashMap<Arc<str>, u64>,
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

    /// `delta` more (or fewer) jobs processing with `model`.
    fn processing(&mut self, model: &Arc<str>, delta: i64) {
        let entry = self.processing_by_model.entry(model.clone()).or_default();
        *entry = entry.saturating_add_signed(delta);
        if *entry == 0 {
            self.processing_by_model.remove(model);
        }
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
/// horde.set_user(volunteer, UserPolicy { concurrency: 30, trusted: false });
/// let t0 = Timestamp::from_secs(1_000);
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
    worker_names: HashMap<String, WorkerId>,
    requests: HashMap<RequestId, RequestEntry>,
    jobs: HashMap<JobId, Job>,
    queue: PriorityQueue<UserId, Lane, RequestId>,
    /// Open generations (waiting + processing) per user.
    open_slots: HashMap<UserId, u32>,
    backlog: Backlog,
    deadlines: BTreeSet<(Timestamp, JobId)>,
    expiries: BTreeSet<(Timestamp, RequestId)>,
    removals: BTreeSet<(Timestamp, RequestId)>,
}

/// The lanes a request waits in: one per acceptable model, or `Any`.
fn lanes_of(spec: &RequestSpec) -> Vec<Lane> {
    if spec.models.is_empty() {
        vec![Lane::Any]
    } else {
        spec.models.iter().cloned().map(Lane::Model).collect()
    }
}

/// AI Horde's ranges of request and worker parameters.
const N_RANGE: (u32, u32) = (1, 20);
const MAX_LENGTH_RANGE: (u32, u32) = (16, 4096);
const MAX_CONTEXT_RANGE: (u32, u32) = (80, 131_072);
const THREADS_RANGE: (u32, u32) = (1, 50);
const AMOUNT_RANGE: (u32, u32) = (1, 20);
const WORKER_NAME_MAX: usize = 100;

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
        };
        let mut horde = Horde {
            queue: PriorityQueue::new(config.ageing_per_sec.milli()),
            ledger: Ledger::restore(accounts),
            users: HashMap::from([(UserId::ANONYMOUS, anonymous)]),
            workers: HashMap::new(),
            worker_names: HashMap::new(),
            requests: HashMap::new(),
            jobs: HashMap::new(),
            open_slots: HashMap::new(),
            backlog: Backlog::default(),
            deadlines: BTreeSet::new(),
            expiries: BTreeSet::new(),
            removals: BTreeSet::new(),
            config,
        };
        horde.users.extend(users);
        for worker in workers {
            horde.worker_names.insert(worker.name.clone(), worker.id);
            horde.workers.insert(worker.id, worker);
        }
        let mut requests: Vec<_> = requests.into_iter().collect();
        requests.sort_by_key(|(spec, ..)| (spec.created_at, spec.id));
        for (spec, state, jobs) in requests {
            let id = spec.id;
            for job in &jobs {
                if job.status == JobStatus::Processing {
                    horde.deadlines.insert((job.deadline, job.id));
                    horde.backlog.processing(&job.model, 1);
                }
            }
            if let Some((_, closed_at)) = state.closed {
                horde
                    .removals
                    .insert((closed_at.plus_secs(horde.config.retention_secs), id));
            }
            let mut ticket = None;
            if state.is_open() {
                *horde.open_slots.entry(spec.owner).or_default() +=
                    state.waiting + state.processing;
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

    /// Registers a user or changes their policy. Users must be known before they request,
    /// run workers or receive transfers.
    pub fn set_user(&mut self, user: UserId, policy: UserPolicy) {
        self.users.insert(user, policy);
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
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Queues a text-generation request. `spec.created_at` is set to `now`.
    pub fn enqueue(
        &mut self,
        now: Timestamp,
        mut spec: RequestSpec,
    ) -> Result<Applied<RequestId>, EnqueueError> {
        let GenParams {
            n,
            max_length,
            max_context_length,
        } = spec.params;
        if spec.prompt.is_empty() {
            return Err(EnqueueError::EmptyPrompt);
        }
        let out_of_range = |field| move |min, max| EnqueueError::OutOfRange { field, min, max };
        in_range(n, N_RANGE, out_of_range("n"))?;
        in_range(max_length, MAX_LENGTH_RANGE, out_of_range("max_length"))?;
        in_range(
            max_context_length,
            MAX_CONTEXT_RANGE,
            out_of_range("max_context_length"),
        )?;
        if max_context_length < max_length {
            return Err(EnqueueError::TokenOverflow);
        }
        let policy = self
            .users
            .get(&spec.owner)
            .ok_or(EnqueueError::UnknownUser)?;
        if self.requests.contains_key(&spec.id) {
            return Err(EnqueueError::DuplicateId);
        }
        let open = self.open_generations(spec.owner);
        if open + n > policy.concurrency {
            return Err(EnqueueError::TooManyPrompts {
                limit: policy.concurrency,
            });
        }
        spec.created_at = now;
        let spec = Arc::new(spec);
        let state = RequestState {
            waiting: n,
            processing: 0,
            finished: 0,
            restarts: 0,
            kudos: Kudos::ZERO,
            last_progress: now,
            closed: None,
        };
        *self.open_slots.entry(spec.owner).or_default() += n;
        self.backlog.waiting(&spec, i64::from(n));
        let ticket = self.enqueue_item(&spec);
        self.expiries.insert((self.expiry_of(&state), spec.id));
        self.requests.insert(
            spec.id,
            RequestEntry {
                spec: spec.clone(),
                state,
                jobs: Vec::new(),
                ticket,
            },
        );
        Ok(Applied {
            value: spec.id,
            events: vec![
                Event::RequestQueued(spec.clone()),
                Event::RequestChanged { id: spec.id, state },
            ],
        })
    }

    fn enqueue_item(&mut self, spec: &RequestSpec) -> Option<Ticket> {
        let priority = self.ledger.balance(spec.owner).milli();
        self.queue.push(
            spec.id,
            spec.owner,
            priority,
            lanes_of(spec),
            spec.created_at,
        )
    }

    /// Puts a request whose generation went back to waiting back in line.
    fn requeue(&mut self, id: RequestId) {
        let Some(entry) = self.requests.get(&id) else {
            return;
        };
        if let Some(ticket) = entry.ticket {
            let priority = self.ledger.balance(entry.spec.owner).milli();
            self.queue.reinsert(
                id,
                entry.spec.owner,
                priority,
                lanes_of(&entry.spec),
                ticket,
            );
        }
    }

    fn expiry_of(&self, state: &RequestState) -> Timestamp {
        state
            .last_progress
            .plus_secs(self.config.request_timeout_secs)
    }

    /// A worker asks for work. Creates the worker on its first pop (with an id from `new_id`),
    /// records its check-in (earning uptime), and hands out up to `amount` jobs of the first
    /// request it may serve: first requests of its owner and `priority_users`, oldest first;
    /// then everyone's, by effective priority. Job ids come from `new_id`.
    pub fn pop(
        &mut self,
        now: Timestamp,
        query: PopQuery,
        mut new_id: impl FnMut() -> Uuid,
    ) -> Result<Applied<PopResult>, PopError> {
        let owner_policy = self.validate_pop(&query)?;
        let existing = self.worker_names.get(&query.name).copied();
        let mut profile = match existing.and_then(|id| self.workers.get(&id)) {
            Some(worker) if worker.owner != query.owner => return Err(PopError::WrongCredentials),
            Some(worker) => worker.clone(),
            None => Worker::new(WorkerId(new_id()), query.owner, query.name.clone(), now),
        };
        profile.models = query.models;
        profile.max_length = query.max_length;
        profile.max_context_length = query.max_context_length;
        profile.nsfw = query.nsfw;
        profile.threads = query.threads;
        profile.bridge_agent = query.bridge_agent;
        profile.trusted = owner_policy.trusted;
        let mut priority_keys = vec![query.owner];
        for user in query.priority_users {
            if !priority_keys.contains(&user) {
                priority_keys.push(user);
            }
        }
        profile.priority_users = priority_keys[1..].to_vec();

        let keys = if profile.maintenance {
            &priority_keys[..1]
        } else {
            &priority_keys[..]
        };
        let (found, skipped) = self.search(&profile, keys);
        if found.is_none() && profile.maintenance {
            return Err(PopError::Maintenance);
        }

        let mut events = Vec::new();
        let worker_id = profile.id;
        if existing.is_none() {
            self.worker_names.insert(profile.name.clone(), worker_id);
        }
        self.workers.insert(worker_id, profile);
        self.check_in(worker_id, now, &mut events);
        let assignments = match found {
            Some(request) => {
                self.assign(request, worker_id, query.amount, now, new_id, &mut events)
            }
            None => Vec::new(),
        };
        self.push_worker_changed(worker_id, &mut events);
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
    fn search(&self, worker: &Worker, priority_keys: &[UserId]) -> (Option<RequestId>, SkipCounts) {
        let lanes: Vec<Lane> = worker
            .models
            .iter()
            .cloned()
            .map(Lane::Model)
            .chain([Lane::Any])
            .collect();
        let eligible = |id: &RequestId| {
            self.requests
                .get(id)
                .is_some_and(|e| e.state.waiting > 0 && matching::check(worker, &e.spec).is_ok())
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
                Ok(()) => entry.state.waiting > 0,
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
    fn assign(
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
            self.backlog.processing(&job.model, 1);
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

    fn validate_pop(&self, query: &PopQuery) -> Result<UserPolicy, PopError> {
        if query.owner.is_anonymous() {
            return Err(PopError::Anonymous);
        }
        let policy = *self.users.get(&query.owner).ok_or(PopError::UnknownUser)?;
        if query.name.trim().is_empty() || query.name.chars().count() > WORKER_NAME_MAX {
            return Err(PopError::InvalidName);
        }
        if query.models.is_empty() {
            return Err(PopError::NoModels);
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

    /// Records a worker's check-in and pays any uptime award that fell due.
    fn check_in(&mut self, id: WorkerId, now: Timestamp, events: &mut Vec<Event>) {
        let economy = &self.config.economy;
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        let due = worker.check_in(
            now,
            economy.online_timeout_secs,
            economy.uptime_interval_secs,
        );
        if due == 0 {
            return;
        }
        let size = worker
            .models
            .iter()
            .map(|m| economy.model_size_b(m))
            .fold(0.0, f64::max);
        let per_interval = economy.uptime_reward(size, worker.max_context_length);
        let Some(award) = i64::try_from(due)
            .ok()
            .and_then(|d| per_interval.milli().checked_mul(d))
            .map(Kudos::from_milli)
        else {
            return;
        };
        let owner = worker.owner;
        if let Ok(posting) = self.ledger.award_uptime(owner, award, now) {
            worker.kudos_uptime = worker
                .kudos_uptime
                .checked_add(award)
                .unwrap_or(worker.kudos_uptime);
            self.record_posting(posting, events);
        }
    }

    /// Emits a posting and the account changes it caused, and re-prioritises the users.
    fn record_posting(&mut self, posting: Posting, events: &mut Vec<Event>) {
        events.push(Event::Posted(posting));
        for account in [posting.from, posting.to] {
            if let crate::Account::User(user) = account {
                let state = self.ledger.account(user);
                self.queue.set_priority(&user, state.balance.milli());
                let event = Event::AccountChanged { user, state };
                if !events.contains(&event) {
                    events.push(event);
                }
            }
        }
    }

    /// A worker's owner submits a job's result. Ok and censored generations are paid: the
    /// requester pays the worker's owner the reward, returned. Faulted ones earn nothing and
    /// go back to the queue (the request faults after too many restarts).
    pub fn submit(
        &mut self,
        now: Timestamp,
        caller: UserId,
        job_id: JobId,
        submission: Submission,
    ) -> Result<Applied<Kudos>, SubmitError> {
        let job = self.jobs.get(&job_id).ok_or(SubmitError::UnknownJob)?;
        let worker = self
            .workers
            .get(&job.worker)
            .ok_or(SubmitError::UnknownJob)?;
        if worker.owner != caller {
            return Err(SubmitError::WrongCredentials);
        }
        match job.status {
            JobStatus::Processing => {}
            JobStatus::Done(_) => return Err(SubmitError::Duplicate),
            JobStatus::Aborted(_) => return Err(SubmitError::Aborted),
        }
        let entry = self
            .requests
            .get(&job.request)
            .ok_or(SubmitError::UnknownJob)?;
        let (request_id, worker_id, earner, deadline) =
            (job.request, job.worker, worker.owner, job.deadline);
        let mut events = Vec::new();
        let generation_state = match submission.state {
            SubmitState::Faulted => {
                self.check_in(worker_id, now, &mut events);
                self.abort_job(job_id, AbortReason::Faulted, now, &mut events);
                self.push_worker_changed(worker_id, &mut events);
                return Ok(Applied {
                    value: Kudos::ZERO,
                    events,
                });
            }
            SubmitState::Ok => GenerationState::Ok,
            SubmitState::Censored => GenerationState::Censored,
        };
        let economy = &self.config.economy;
        let params = entry.spec.params;
        let tokens = economy.generation_tokens(&submission.text, params.max_length);
        let context = economy.context_tokens(
            &entry.spec.prompt,
            params.max_length,
            params.max_context_length,
        );
        let reward = economy.generation_reward(economy.model_size_b(&job.model), tokens, context);
        let requester = entry.spec.owner;
        let posting = self
            .ledger
            .settle_generation(requester, earner, reward, now)?;
        self.record_posting(posting, &mut events);
        self.check_in(worker_id, now, &mut events);
        self.deadlines.remove(&(deadline, job_id));
        let generation = Generation {
            text: submission.text,
            seed: submission.seed,
            state: generation_state,
            metadata: submission.metadata,
            tokens,
            reward,
            finished_at: now,
        };
        if let Some(job) = self.jobs.get_mut(&job_id) {
            self.backlog.processing(&job.model, -1);
            job.status = JobStatus::Done(generation);
            events.push(Event::JobChanged(job.clone()));
        }
        if let Some(worker) = self.workers.get_mut(&worker_id) {
            worker.requests_fulfilled += 1;
            worker.tokens_generated += u64::from(tokens);
            worker.kudos_generated = worker
                .kudos_generated
                .checked_add(reward)
                .unwrap_or(worker.kudos_generated);
        }
        self.release_slots(requester, 1);
        if let Some(entry) = self.requests.get_mut(&request_id) {
            entry.state.processing -= 1;
            entry.state.finished += 1;
            entry.state.kudos = entry
                .state
                .kudos
                .checked_add(reward)
                .unwrap_or(entry.state.kudos);
            let (old, all_done) = (
                entry.state.last_progress,
                entry.state.finished >= entry.spec.params.n,
            );
            self.touch(request_id, old, now);
            if all_done {
                self.close(request_id, Outcome::Done, now, &mut events);
            } else {
                self.push_request_changed(request_id, &mut events);
            }
        }
        self.push_worker_changed(worker_id, &mut events);
        Ok(Applied {
            value: reward,
            events,
        })
    }

    fn push_worker_changed(&self, id: WorkerId, events: &mut Vec<Event>) {
        if let Some(worker) = self.workers.get(&id) {
            events.push(Event::WorkerChanged(worker.clone()));
        }
    }

    fn release_slots(&mut self, user: UserId, count: u32) {
        if let Some(open) = self.open_slots.get_mut(&user) {
            *open = open.saturating_sub(count);
            if *open == 0 {
                self.open_slots.remove(&user);
            }
        }
    }

    /// Ends a processing job without a generation. Faults and time-outs count as restarts
    /// and put the generation back to waiting; past `max_restarts` the request faults.
    fn abort_job(
        &mut self,
        job_id: JobId,
        reason: AbortReason,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) {
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return;
        };
        if job.status != JobStatus::Processing {
            return;
        }
        job.status = JobStatus::Aborted(reason);
        self.backlog.processing(&job.model, -1);
        self.deadlines.remove(&(job.deadline, job_id));
        events.push(Event::JobChanged(job.clone()));
        let request_id = job.request;
        let Some(entry) = self.requests.get_mut(&request_id) else {
            return;
        };
        entry.state.processing -= 1;
        if reason == AbortReason::Cancelled {
            return;
        }
        entry.state.restarts += 1;
        entry.state.waiting += 1;
        self.backlog.waiting(&entry.spec, 1);
        if entry.state.restarts > self.config.max_restarts {
            self.close(request_id, Outcome::Faulted, now, events);
        } else {
            self.requeue(request_id);
            self.push_request_changed(request_id, events);
        }
    }

    /// Ends an open request: aborts its processing jobs, drops its waiting generations, and
    /// schedules its removal after the retention time.
    fn close(&mut self, id: RequestId, outcome: Outcome, now: Timestamp, events: &mut Vec<Event>) {
        let Some(entry) = self.requests.get(&id) else {
            return;
        };
        if !entry.state.is_open() {
            return;
        }
        let processing: Vec<JobId> = entry
            .jobs
            .iter()
            .copied()
            .filter(|j| {
                self.jobs
                    .get(j)
                    .is_some_and(|j| j.status == JobStatus::Processing)
            })
            .collect();
        let aborted = processing.len() as u32;
        for job in processing {
            self.abort_job(job, AbortReason::Cancelled, now, events);
        }
        let Some(entry) = self.requests.get_mut(&id) else {
            return;
        };
        let (owner, waiting, last) = (
            entry.spec.owner,
            entry.state.waiting,
            entry.state.last_progress,
        );
        self.backlog.waiting(&entry.spec, -i64::from(waiting));
        entry.state.waiting = 0;
        entry.state.closed = Some((outcome, now));
        self.release_slots(owner, waiting + aborted);
        self.queue.remove(&id);
        self.expiries
            .remove(&(last.plus_secs(self.config.request_timeout_secs), id));
        self.removals
            .insert((now.plus_secs(self.config.retention_secs), id));
        self.push_request_changed(id, events);
    }

    /// The client cancels a request: generations already finished stay (and stay paid);
    /// jobs in progress are aborted and will not be paid. Cancelling a closed request changes
    /// nothing. Returns `None` for an unknown request.
    pub fn cancel(&mut self, now: Timestamp, id: RequestId) -> Option<Applied<()>> {
        self.requests.get(&id)?;
        let mut events = Vec::new();
        self.close(id, Outcome::Cancelled, now, &mut events);
        Some(Applied { value: (), events })
    }

    /// `from` gives `amount` kudos to `to`.
    pub fn transfer(
        &mut self,
        now: Timestamp,
        from: UserId,
        to: UserId,
        amount: Kudos,
    ) -> Result<Applied<Posting>, TransferError> {
        if !self.users.contains_key(&from) || !self.users.contains_key(&to) {
            return Err(TransferError::UnknownUser);
        }
        let posting = self.ledger.transfer(from, to, amount, now)?;
        let mut events = Vec::new();
        self.record_posting(posting, &mut events);
        Ok(Applied {
            value: posting,
            events,
        })
    }

    /// An administrator adds `delta` (negative: removes) to `user`'s balance.
    pub fn admin_adjust(
        &mut self,
        now: Timestamp,
        user: UserId,
        delta: Kudos,
    ) -> Result<Applied<Posting>, TransferError> {
        if !self.users.contains_key(&user) {
            return Err(TransferError::UnknownUser);
        }
        let posting = self.ledger.admin_adjust(user, delta, now)?;
        let mut events = Vec::new();
        self.record_posting(posting, &mut events);
        Ok(Applied {
            value: posting,
            events,
        })
    }

    /// The owner (or, with `as_admin`, an administrator) changes a worker.
    pub fn update_worker(
        &mut self,
        caller: UserId,
        as_admin: bool,
        id: WorkerId,
        update: WorkerUpdate,
    ) -> Result<Applied<()>, WorkerUpdateError> {
        let worker = self
            .workers
            .get(&id)
            .ok_or(WorkerUpdateError::UnknownWorker)?;
        if worker.owner != caller && !as_admin {
            return Err(WorkerUpdateError::WrongCredentials);
        }
        if let Some(name) = &update.name {
            let taken = self
                .worker_names
                .get(name)
                .is_some_and(|other| *other != id);
            if taken || name.trim().is_empty() || name.chars().count() > WORKER_NAME_MAX {
                return Err(WorkerUpdateError::InvalidName);
            }
        }
        let worker = self
            .workers
            .get_mut(&id)
            .ok_or(WorkerUpdateError::UnknownWorker)?;
        if let Some(name) = update.name {
            self.worker_names.remove(&worker.name);
            self.worker_names.insert(name.clone(), id);
            worker.name = name;
        }
        if let Some(maintenance) = update.maintenance {
            worker.maintenance = maintenance;
        }
        if let Some(msg) = update.maintenance_msg {
            worker.maintenance_msg = msg;
        }
        if let Some(info) = update.info {
            worker.info = info;
        }
        Ok(Applied {
            value: (),
            events: vec![Event::WorkerChanged(worker.clone())],
        })
    }

    /// Does what time makes due at `now`: jobs past their deadline go back to the queue (or
    /// fault their request), requests without progress for too long expire, closed requests
    /// past retention are removed.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(&(deadline, job)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            self.abort_job(job, AbortReason::TimedOut, now, &mut events);
        }
        while let Some(&(at, id)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            let processing = self.requests.get(&id).map_or(0, |e| e.state.processing);
            if processing > 0 {
                // Its jobs have their own deadlines; look again after the timeout.
                self.expiries
                    .insert((now.plus_secs(self.config.request_timeout_secs), id));
                continue;
            }
            self.close(id, Outcome::Expired, now, &mut events);
        }
        while let Some(&(at, id)) = self.removals.first() {
            if at > now {
                break;
            }
            self.removals.pop_first();
            if let Some(entry) = self.requests.remove(&id) {
                for job in entry.jobs {
                    self.jobs.remove(&job);
                }
                events.push(Event::RequestRemoved(id));
            }
        }
        events
    }

    /// What `spec` is expected to cost: `n` generations of `max_length` tokens by the largest
    /// model it accepts (or, when it accepts any, the largest model an online worker serves).
    /// O(workers).
    pub fn estimate(&self, spec: &RequestSpec, now: Timestamp) -> Kudos {
        let economy = &self.config.economy;
        let timeout = economy.online_timeout_secs;
        let largest = |models: &mut dyn Iterator<Item = &Arc<str>>| {
            models
                .map(|m| economy.model_size_b(m))
                .fold(None, |acc: Option<f64>, s| {
                    Some(acc.map_or(s, |a| a.max(s)))
                })
        };
        let size = if spec.models.is_empty() {
            let mut online = self
                .workers
                .values()
                .filter(|w| w.is_online(now, timeout))
                .flat_map(|w| w.models.iter());
            largest(&mut online)
        } else {
            largest(&mut spec.models.iter())
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

#[cfg(test)]
mod tests;
