//! The worker's loop: watch the backend, pop, generate, submit; stop on a signal.
//!
//! `threads` job loops run side by side. Each waits while the backend is down, pops one job,
//! generates it (retrying a busy backend, and a failing one a bounded number of times),
//! submits the result (retrying while the horde is unreachable), and backs off when there is
//! nothing to do or the horde errs. A watcher re-probes a backend that stopped answering and
//! re-reads its model and limits when it is back. The first SIGINT/SIGTERM stops popping and
//! lets jobs in flight finish; a second abandons them (backend abort, `faulted` submit).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use horde_api::PopRequest;
use horde_core::ranges::{MAX_CONTEXT_LENGTH as MAX_CONTEXT_RANGE, MAX_LENGTH as MAX_LENGTH_RANGE};
use horde_core::SubmitState;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::backend::{Backend, BackendError, BackendInfo, Generated};
use crate::backoff::Backoff;
use crate::error::WorkerError;
use crate::horde::{Horde, Job, Popped, BRIDGE_AGENT};
use crate::report::{JobReport, Stats};
use crate::settings::{LogFormat, Settings};
use crate::yielding::LocalUse;

/// Time between checks of a backend that is down.
const BACKEND_CHECK: Duration = Duration::from_secs(3);
/// How long a successful backend contact vouches for it before a pop checks it again.
const BACKEND_FRESH: Duration = Duration::from_secs(2);
/// A job is given up this long before the horde's deadline, so that the abort lands first.
const DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// Tries of one submit while the horde is unreachable (about two minutes of backoff).
const SUBMIT_TRIES: u32 = 8;
/// How long a pop may wait for a job (horde's long poll; a horde without it answers at once,
/// and the worker then paces its pops itself).
const LONG_POLL_SECS: u32 = 20;
/// How long a long poll may still answer once the worker is told to stop.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// How long a pop may wait for a job while the worker watches the backend for other users.
const YIELD_POLL_SECS: u32 = 2;
/// How long the greeting may wait for the horde to say whose key this is.
const GREET_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a job may run when the horde gives it no deadline (`ttl`).
const UNBOUNDED_JOB_LIMIT: Duration = Duration::from_secs(10 * 60);
/// How long the worker may take to end after the second stop signal, whatever hangs (a
/// backend that never answers its abort, a horde that never takes the faulted submit).
const ABANDON_LIMIT: Duration = Duration::from_secs(15);
/// The horde's defaults for a worker that does not say its limits.
const DEFAULT_MAX_LENGTH: u32 = 512;
const DEFAULT_MAX_CONTEXT: u32 = 2048;

/// Where the worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Popping and serving.
    Running,
    /// Asked to stop: no more pops; jobs in flight finish.
    Draining,
    /// Asked twice: jobs in flight are given up.
    Abandoning,
}

/// What the worker advertises to the horde.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Advert {
    model: String,
    max_length: u32,
    max_context_length: u32,
}

/// How one job's generation ended.
#[derive(Debug)]
enum Outcome {
    Done(Generated),
    Failed(BackendError),
    PastDeadline,
    Abandoned,
    /// The horde said the request was cancelled (a streaming client went away).
    Cancelled,
}

/// The running worker, shared by its tasks.
#[derive(Debug)]
pub(crate) struct Worker {
    settings: Settings,
    horde: Horde,
    backend: Backend,
    threads: u32,
    advert: RwLock<Option<Advert>>,
    backend_up: watch::Sender<bool>,
    last_backend_ok: Mutex<Option<Instant>>,
    phase: watch::Sender<Phase>,
    fatal: Mutex<Option<WorkerError>>,
    in_flight: AtomicUsize,
    stats: Stats,
    /// The last pop failed for the horde's sake (unreachable, 5xx): the next answer is news.
    horde_down: AtomicBool,
    /// The backend's use by others (KoboldCpp), which the worker yields to.
    local: LocalUse,
    /// The horde refused a progress post as an unknown endpoint: text is sent whole.
    no_progress: Arc<AtomicBool>,
}

/// How the worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Stopped by a signal after finishing its jobs.
    Finished,
    /// Stopped by a second signal, jobs given up.
    Abandoned,
}

/// The limit to advertise: the configured one, never above the backend's, else the backend's,
/// else the horde's default; within the horde's range.
fn limit(configured: Option<u32>, backend: Option<u32>, default: u32, range: (u32, u32)) -> u32 {
    let chosen = match (configured, backend) {
        (Some(configured), Some(backend)) => configured.min(backend),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => default,
    };
    horde_core::ranges::clamp(chosen, range)
}

impl Worker {
    /// A worker with `settings`, not yet started.
    pub(crate) fn new(settings: Settings) -> Result<Worker, WorkerError> {
        let horde = Horde::new(&settings.horde_url, &settings.api_key)
            .map_err(|e| WorkerError::Config(format!("cannot set up HTTP: {e}")))?;
        let backend = Backend::new(settings.backend, &settings.backend_url)
            .map_err(|e| WorkerError::Config(format!("cannot set up HTTP: {e}")))?;
        let plain = settings.log_format == LogFormat::Text;
        Ok(Worker {
            threads: settings.threads,
            settings,
            horde,
            backend,
            advert: RwLock::new(None),
            backend_up: watch::Sender::new(false),
            last_backend_ok: Mutex::new(None),
            phase: watch::Sender::new(Phase::Running),
            fatal: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            stats: Stats::new(plain),
            horde_down: AtomicBool::new(false),
            local: LocalUse::default(),
            no_progress: Arc::new(AtomicBool::new(false)),
        })
    }

    /// What would be advertised for a backend reporting `info`.
    fn advert_for(&self, info: &BackendInfo) -> Advert {
        let context = limit(
            self.settings.max_context_length,
            info.max_context_length,
            DEFAULT_MAX_CONTEXT,
            MAX_CONTEXT_RANGE,
        );
        let length = limit(
            self.settings.max_length,
            info.max_length,
            DEFAULT_MAX_LENGTH,
            MAX_LENGTH_RANGE,
        );
        Advert {
            model: self
                .settings
                .model
                .clone()
                .unwrap_or_else(|| info.model.clone()),
            max_length: length.min(context),
            max_context_length: context,
        }
    }

    /// `--check`: the backend answers, the key is valid; prints what would be served.
    pub(crate) async fn check(&self) -> Result<(), WorkerError> {
        let info = self.backend.probe().await.map_err(|e| {
            WorkerError::Check(format!(
                "the backend at {} does not work: {e}",
                self.settings.backend_url
            ))
        })?;
        let advert = self.advert_for(&info);
        let user = self.horde.find_user().await.map_err(|e| match e.rc() {
            Some("InvalidAPIKey") => WorkerError::Check(format!(
                "the horde at {} does not know this API key (InvalidAPIKey)",
                self.settings.horde_url
            )),
            _ => WorkerError::Check(format!(
                "the horde at {} does not work: {e}",
                self.settings.horde_url
            )),
        })?;
        // A name another account's worker holds would be refused at the first pop.
        let known = self
            .horde
            .worker_named(&self.settings.name)
            .await
            .map_err(|e| {
                WorkerError::Check(format!(
                    "the horde at {} does not say whether the name {:?} is free: {e}",
                    self.settings.horde_url, self.settings.name
                ))
            })?;
        let standing = match known {
            None => "new: the first pop creates it",
            Some(worker) if worker.owner.as_deref() == Some(user.username.as_str()) => {
                "yours, known to the horde"
            }
            Some(_) => {
                return Err(WorkerError::Check(format!(
                    "the name {:?} belongs to another account's worker on this horde: choose \
                     another --name",
                    self.settings.name
                )))
            }
        };
        println!(
            "backend: {} at {}\nmodel: {} (advertised as {})\nmax_length: {}\n\
             max_context_length: {}\nhorde: {} as {} ({} kudos)\nworker: {} ({standing}), {} \
             thread(s){}\nok",
            info.software,
            self.settings.backend_url,
            info.model,
            advert.model,
            advert.max_length,
            advert.max_context_length,
            self.settings.horde_url,
            user.username,
            user.kudos,
            self.settings.name,
            self.threads,
            match &self.settings.key_source {
                Some(source) => format!("\nkey: saved by horde-cli ({source})"),
                None => String::new(),
            },
        );
        Ok(())
    }

    /// Runs until a signal (or a refusal by the horde) stops it.
    pub(crate) async fn run(mut self) -> Result<Ended, WorkerError> {
        tracing::info!(
            horde = %self.settings.horde_url,
            backend = %self.settings.backend_url,
            name = %self.settings.name,
            "horde-worker {} starting",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(source) = &self.settings.key_source {
            tracing::info!("using the API key horde-cli saved ({source})");
        }
        let Some(info) = self.first_probe().await else {
            return Ok(Ended::Finished);
        };
        if info.software == "KoboldAI" && self.threads > 1 {
            tracing::warn!(
                threads = self.threads,
                "KoboldAI runs one generation at a time: using 1 thread"
            );
            self.threads = 1;
        }
        self.backend_is_up(&info);
        self.greet().await?;
        let worker = Arc::new(self);
        let signals = tokio::spawn(Arc::clone(&worker).handle_signals());
        let watcher = tokio::spawn(Arc::clone(&worker).watch_backend());
        let summary = tokio::spawn(Arc::clone(&worker).summaries());
        let loops: Vec<_> = (0..worker.threads)
            .map(|_| tokio::spawn(Arc::clone(&worker).job_loop()))
            .collect();
        let all_ended = async {
            for job_loop in loops {
                let _ = job_loop.await;
            }
        };
        tokio::select! {
            () = all_ended => {}
            () = worker.abandoned_for(ABANDON_LIMIT) => {
                tracing::warn!(
                    "the jobs in flight did not end within {} s of the second signal; exiting",
                    ABANDON_LIMIT.as_secs()
                );
            }
        }
        signals.abort();
        watcher.abort();
        summary.abort();
        worker.stats.summary();
        if let Some(error) = worker.fatal.lock().take() {
            return Err(error);
        }
        let phase = *worker.phase.borrow();
        Ok(match phase {
            Phase::Abandoning => Ended::Abandoned,
            Phase::Running | Phase::Draining => Ended::Finished,
        })
    }

    /// Says which account the worker earns for and that it waits for jobs; a key the horde
    /// does not know ends the worker here, before any pop.
    async fn greet(&self) -> Result<(), WorkerError> {
        let asked = tokio::time::timeout(GREET_TIMEOUT, self.horde.find_user()).await;
        match asked {
            Ok(Ok(user)) => {
                self.stats
                    .set_escrow(user.kudos_details.evaluating.as_f64());
                tracing::info!(
                    account = %user.username,
                    "earning kudos for {} (it holds {} kudos) as worker {:?}; waiting for jobs",
                    user.username,
                    user.kudos.as_f64(),
                    self.settings.name
                );
            }
            Ok(Err(e)) if e.rc() == Some("InvalidAPIKey") => {
                return Err(WorkerError::Refused(format!(
                    "the horde at {} does not know this API key (InvalidAPIKey)",
                    self.settings.horde_url
                )));
            }
            Ok(Err(e)) => tracing::warn!(
                error = %e,
                "cannot ask the horde whose key this is; waiting for jobs anyway"
            ),
            Err(_) => tracing::warn!(
                "the horde did not say whose key this is within {} s; waiting for jobs anyway",
                GREET_TIMEOUT.as_secs()
            ),
        }
        Ok(())
    }

    /// Probes the backend until it answers; `None` if stopped first.
    async fn first_probe(&self) -> Option<BackendInfo> {
        let signal = tokio::signal::ctrl_c();
        tokio::pin!(signal);
        let mut warned = false;
        loop {
            let probed = tokio::select! {
                probed = self.backend.probe() => probed,
                _ = &mut signal => return None,
                () = terminated() => return None,
            };
            match probed {
                Ok(info) => return Some(info),
                Err(e) if !warned => {
                    tracing::warn!(
                        error = %e,
                        "waiting for the backend at {}; checking every {} s",
                        self.settings.backend_url,
                        BACKEND_CHECK.as_secs()
                    );
                    warned = true;
                }
                Err(e) => tracing::debug!(error = %e, "the backend is still not there"),
            }
            tokio::select! {
                () = tokio::time::sleep(BACKEND_CHECK) => {}
                _ = &mut signal => return None,
                () = terminated() => return None,
            }
        }
    }

    /// Records a backend that answered with `info`, and what is now advertised.
    fn backend_is_up(&self, info: &BackendInfo) {
        let advert = self.advert_for(info);
        let mut current = self.advert.write();
        if current.as_ref() != Some(&advert) {
            if info.max_context_length.is_none() && self.settings.max_context_length.is_none() {
                tracing::warn!(
                    "the backend does not say how many tokens of context it takes: advertising \
                     {DEFAULT_MAX_CONTEXT}; set --max-context-length to its context size \
                     (llama-cpp-python's --n_ctx, vLLM's --max-model-len)"
                );
            }
            tracing::info!(
                software = %info.software,
                model = %advert.model,
                max_length = advert.max_length,
                max_context_length = advert.max_context_length,
                threads = self.threads,
                "serving"
            );
            *current = Some(advert);
        }
        drop(current);
        *self.last_backend_ok.lock() = Some(Instant::now());
        self.backend_up.send_replace(true);
    }

    /// Records a backend that stopped answering: pops stop until the watcher sees it back.
    fn backend_is_down(&self, error: &BackendError) {
        if self.backend_up.send_replace(false) {
            tracing::warn!(
                error = %error,
                "the backend stopped answering; no new jobs until it is back (checking every {} s)",
                BACKEND_CHECK.as_secs()
            );
        }
    }

    /// Re-probes a backend that is down until it answers.
    async fn watch_backend(self: Arc<Self>) {
        let mut up = self.backend_up.subscribe();
        loop {
            if up.wait_for(|up| !*up).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(BACKEND_CHECK).await;
                match self.backend.probe().await {
                    Ok(info) => {
                        tracing::info!("the backend is back");
                        self.backend_is_up(&info);
                        break;
                    }
                    Err(e) => tracing::debug!(error = %e, "the backend is still down"),
                }
            }
        }
    }

    /// Logs a summary line every `summary_every`.
    async fn summaries(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.settings.summary_every);
        every.tick().await;
        loop {
            every.tick().await;
            if let Ok(Ok(user)) = tokio::time::timeout(GREET_TIMEOUT, self.horde.find_user()).await
            {
                self.stats
                    .set_escrow(user.kudos_details.evaluating.as_f64());
            }
            self.stats.summary();
        }
    }

    /// First signal: drain; second: abandon.
    async fn handle_signals(self: Arc<Self>) {
        loop {
            tokio::select! {
                result = tokio::signal::ctrl_c() => if result.is_err() { return },
                () = terminated() => {}
            }
            if *self.phase.borrow() == Phase::Running {
                tracing::info!(
                    in_flight = self.in_flight.load(Ordering::Relaxed),
                    "stopping: no new jobs; finishing the ones in flight (a second signal \
                     abandons them)"
                );
                self.phase.send_replace(Phase::Draining);
            } else {
                tracing::warn!("abandoning the jobs in flight");
                self.phase.send_replace(Phase::Abandoning);
                return;
            }
        }
    }

    /// Resolves once the worker has been abandoning its jobs for `limit`.
    async fn abandoned_for(&self, limit: Duration) {
        let mut phase = self.phase.subscribe();
        if phase.wait_for(|p| *p == Phase::Abandoning).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(limit).await;
    }

    /// Returns true if and only if the worker should still pop.
    fn running(&self) -> bool {
        *self.phase.borrow() == Phase::Running
    }

    /// Sleeps `delay`, or less if the worker is asked to stop. Returns true if and only if
    /// the worker is still running.
    async fn pause(&self, delay: Duration) -> bool {
        let mut phase = self.phase.subscribe();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = phase.wait_for(|p| *p != Phase::Running) => {}
        }
        self.running()
    }

    /// Waits until the backend is up; false if the worker is asked to stop first.
    async fn backend_ready(&self) -> bool {
        let mut up = self.backend_up.subscribe();
        let mut phase = self.phase.subscribe();
        tokio::select! {
            result = up.wait_for(|up| *up) => result.is_ok() && self.running(),
            _ = phase.wait_for(|p| *p != Phase::Running) => false,
        }
    }

    /// Checks the backend if nothing vouched for it lately; false if it is down.
    async fn backend_fresh(&self) -> bool {
        let recent = self
            .last_backend_ok
            .lock()
            .is_some_and(|at| at.elapsed() < BACKEND_FRESH);
        if recent {
            return true;
        }
        match self.backend.alive().await {
            Ok(()) => {
                *self.last_backend_ok.lock() = Some(Instant::now());
                true
            }
            Err(e) => {
                self.backend_is_down(&e);
                false
            }
        }
    }

    /// Pauses for `--yield-secs` if someone else uses the backend (KoboldCpp only); returns
    /// true if and only if it paused.
    async fn yields_to_others(&self) -> bool {
        if self.settings.yield_for.is_zero() {
            return false;
        }
        let Some(load) = self.backend.load().await else {
            return false;
        };
        let in_flight = self.in_flight.load(Ordering::Relaxed) as u64;
        let used = self.local.used_by_others(load, in_flight);
        if self.local.set_yielding(used) {
            if used {
                tracing::info!(
                    "the backend is in use by someone else: no horde jobs until it has been left \
                     alone for {} s",
                    self.settings.yield_for.as_secs()
                );
            } else {
                tracing::info!("the backend has been left alone: taking horde jobs again");
            }
        }
        if used {
            self.pause(self.settings.yield_for).await;
        }
        used
    }

    /// How long a pop waits at the horde: briefly when the worker yields to the backend's other
    /// users, so that it looks at the backend again often.
    fn pop_wait(&self) -> u32 {
        if self.local.reported() {
            YIELD_POLL_SECS
        } else {
            LONG_POLL_SECS
        }
    }

    /// What a pop says about this worker now.
    fn pop_query(&self) -> Option<PopRequest> {
        let advert = self.advert.read().clone()?;
        // AI Horde skips prompts with the blacklist's words for the worker; hordes that do not
        // know the field ignore it, and the worker checks again itself.
        let blacklist = &self.settings.blacklist;
        Some(PopRequest {
            name: self.settings.name.clone(),
            models: Some(vec![advert.model]),
            max_length: Some(advert.max_length),
            max_context_length: Some(advert.max_context_length),
            priority_usernames: Some(self.settings.priority_usernames.clone()),
            nsfw: Some(self.settings.nsfw),
            threads: Some(self.threads),
            amount: Some(1),
            bridge_agent: Some(BRIDGE_AGENT.to_owned()),
            blacklist: (!blacklist.is_empty()).then(|| blacklist.clone()),
            wait: Some(self.pop_wait()),
        })
    }

    /// One thread of work: pop, run, repeat, until asked to stop.
    async fn job_loop(self: Arc<Self>) {
        let mut idle = Backoff::idle();
        let mut trouble = Backoff::trouble();
        while self.backend_ready().await {
            if !self.backend_fresh().await {
                continue;
            }
            if self.yields_to_others().await {
                continue;
            }
            // The checks may have taken a while: a worker told to stop meanwhile takes no job.
            if !self.running() {
                break;
            }
            let Some(query) = self.pop_query() else {
                continue;
            };
            let popping = Instant::now();
            let mut phase = self.phase.subscribe();
            let pop = self.horde.pop(&query);
            tokio::pin!(pop);
            // Told to stop during a long poll, the worker still takes an answer already on its
            // way (a job handed out in that instant is run, not lost), then gives up waiting.
            let answered = tokio::select! {
                biased;
                popped = &mut pop => Some(popped),
                _ = phase.wait_for(|p| *p != Phase::Running) => None,
            };
            let popped = match answered {
                Some(popped) => popped,
                None => match tokio::time::timeout(STOP_GRACE, &mut pop).await {
                    Ok(popped) => popped,
                    Err(_) => break,
                },
            };
            if popped.is_ok() {
                self.horde_answered();
            }
            match popped {
                Ok(Popped::Jobs(jobs)) => {
                    let pop_time = popping.elapsed();
                    idle.reset();
                    trouble.reset();
                    for job in jobs {
                        self.run_job(job, pop_time).await;
                    }
                }
                Ok(Popped::Idle(skipped)) => {
                    trouble.reset();
                    tracing::debug!(?skipped, "no job");
                    // After a long poll that waited, ask again at once; a horde that answered
                    // at once is paced.
                    if popping.elapsed()
                        < Duration::from_secs(u64::from(query.wait.unwrap_or(0)) / 2)
                    {
                        self.pause(idle.next_delay()).await;
                    } else {
                        idle.reset();
                    }
                }
                Err(e) if e.is_transient() || e.rc() == Some("WorkerMaintenance") => {
                    if e.is_transient() {
                        self.horde_down.store(true, Ordering::Relaxed);
                    }
                    let delay = trouble.next_delay();
                    tracing::warn!(
                        error = %e,
                        "the horde did not give work; trying again in {:.1} s",
                        delay.as_secs_f64()
                    );
                    self.pause(delay).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the horde refused this worker; stopping");
                    self.fatal
                        .lock()
                        .get_or_insert(WorkerError::Refused(e.to_string()));
                    self.phase.send_replace(Phase::Draining);
                    return;
                }
            }
        }
    }

    /// Generates one job (popped in `pop_time`) and submits the result.
    async fn run_job(&self, job: Job, pop_time: Duration) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let time = job.ttl.map_or(UNBOUNDED_JOB_LIMIT, Duration::from_secs);
        let deadline = started + time.saturating_sub(DEADLINE_MARGIN);
        let genkey = format!("HORDEREQ_{}", job.id);
        let outcome = match self.blacklisted(&job) {
            Some(word) => Outcome::Failed(BackendError::Failed(format!(
                "the prompt holds the blacklisted word {word:?}"
            ))),
            None => self.generate(&job, &genkey, deadline).await,
        };
        let generation = started.elapsed();
        match outcome {
            Outcome::Done(generated) => {
                // The backend's count where it gives one (llama-cpp-python counts the text
                // re-tokenized, which can exceed what was asked: capped), else the horde's.
                let asked = Some(job.payload.max_length).filter(|&n| n > 0);
                let tokens = generated
                    .tokens
                    .map(|n| asked.map_or(n, |asked| n.min(asked)))
                    .unwrap_or_else(|| estimated_tokens(&generated.text));
                let submitting = Instant::now();
                if let Some(kudos) = self
                    .submit(&job, &generated.text, SubmitState::Ok, generated.seed)
                    .await
                {
                    self.stats.job_done(&JobReport {
                        id: &job.id,
                        model: &job.model,
                        tokens,
                        generation,
                        horde: pop_time + submitting.elapsed(),
                        kudos,
                    });
                }
            }
            Outcome::Failed(error) => {
                tracing::warn!(job = %job.id, error = %error, "job failed; submitting it as faulted");
                self.stats.job_faulted();
                self.submit(&job, "", SubmitState::Faulted, None).await;
            }
            Outcome::PastDeadline => {
                tracing::warn!(
                    job = %job.id,
                    "job ran past its deadline; aborted on the backend and not submitted \
                     (the horde gives it to another worker)"
                );
                self.backend.abort(&genkey).await;
                self.local.generation_ended();
            }
            Outcome::Cancelled => {
                tracing::info!(
                    job = %job.id,
                    "the requester cancelled; the generation is stopped and not submitted"
                );
                self.backend.abort(&genkey).await;
                self.local.generation_ended();
            }
            Outcome::Abandoned => {
                tracing::warn!(job = %job.id, "job abandoned; aborting it and submitting it as faulted");
                self.backend.abort(&genkey).await;
                self.local.generation_ended();
                self.stats.job_faulted();
                self.submit(&job, "", SubmitState::Faulted, None).await;
            }
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The first blacklisted word in the job's prompt.
    fn blacklisted(&self, job: &Job) -> Option<&str> {
        if self.settings.blacklist.is_empty() {
            return None;
        }
        let prompt = job.payload.prompt.to_lowercase();
        self.settings
            .blacklist
            .iter()
            .find(|word| prompt.contains(word.as_str()))
            .map(String::as_str)
    }

    /// Runs a job on the backend: a busy backend is waited for, one that cannot be reached
    /// (restarting) is waited for until it is back, a failing one retried up to
    /// `backend_retries` tries; the deadline, the requester's cancel and abandonment end it
    /// early.
    async fn generate(&self, job: &Job, genkey: &str, deadline: Instant) -> Outcome {
        let mut failures = 0;
        let mut busy = Backoff::busy();
        let mut phase = self.phase.subscribe();
        let (progress, text) = watch::channel(String::new());
        let (cancel, mut cancelled) = watch::channel(false);
        let poster = (!self.no_progress.load(Ordering::Relaxed)).then(|| {
            tokio::spawn(crate::progress::post_progress(
                self.horde.clone(),
                job.id.clone(),
                text,
                cancel,
                Arc::clone(&self.no_progress),
            ))
        });
        let _stop_posting = AbortOnDrop(poster);
        let past_deadline = tokio::time::sleep_until(deadline.into());
        tokio::pin!(past_deadline);
        let mut backend_up = self.backend_up.subscribe();
        loop {
            let result = tokio::select! {
                result = self.backend.generate(&job.payload, genkey, &progress) => {
                    self.local.generation_ended();
                    result
                }
                _ = cancelled.wait_for(|c| *c) => return Outcome::Cancelled,
                () = &mut past_deadline => return Outcome::PastDeadline,
                _ = phase.wait_for(|p| *p == Phase::Abandoning) => return Outcome::Abandoned,
            };
            let delay = match result {
                Ok(generated) => {
                    *self.last_backend_ok.lock() = Some(Instant::now());
                    return Outcome::Done(generated);
                }
                Err(BackendError::Busy) => {
                    tracing::debug!(job = %job.id, "the backend is busy; waiting");
                    busy.next_delay()
                }
                // A refusal of this job (e.g. a prompt over the backend's context) cannot
                // succeed on a retry: fault it now, so the horde gives it to another worker.
                Err(error @ BackendError::Refused(_)) => return Outcome::Failed(error),
                // A backend being restarted: the job waits for it (the watcher probes it) until
                // its deadline, instead of using up its tries in seconds.
                Err(error @ BackendError::Unreachable(_)) => {
                    self.backend_is_down(&error);
                    tracing::warn!(
                        job = %job.id,
                        error = %error,
                        "cannot reach the backend; the job waits for it until its deadline"
                    );
                    tokio::select! {
                        result = backend_up.wait_for(|up| *up) => if result.is_err() {
                            return Outcome::Failed(error);
                        },
                        _ = cancelled.wait_for(|c| *c) => return Outcome::Cancelled,
                        () = &mut past_deadline => return Outcome::PastDeadline,
                        _ = phase.wait_for(|p| *p == Phase::Abandoning) => return Outcome::Abandoned,
                    }
                    continue;
                }
                Err(error) => {
                    failures += 1;
                    if failures >= self.settings.backend_retries {
                        return Outcome::Failed(error);
                    }
                    tracing::warn!(
                        job = %job.id,
                        error = %error,
                        "generation failed (try {failures} of {}); retrying",
                        self.settings.backend_retries
                    );
                    Duration::from_secs(u64::from(failures))
                }
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = &mut past_deadline => return Outcome::PastDeadline,
                _ = phase.wait_for(|p| *p == Phase::Abandoning) => return Outcome::Abandoned,
            }
        }
    }

    /// Notes an answer from the horde: after an outage, says it is back.
    fn horde_answered(&self) {
        if self.horde_down.swap(false, Ordering::Relaxed) {
            tracing::info!("the horde is back");
        }
    }

    /// Submits a result, retrying while the horde is unreachable (but once only when
    /// abandoning); returns the kudos earned.
    async fn submit(
        &self,
        job: &Job,
        text: &str,
        state: SubmitState,
        seed: Option<u32>,
    ) -> Option<f64> {
        let mut backoff = Backoff::trouble();
        for attempt in 1..=SUBMIT_TRIES {
            match self.horde.submit(&job.id, text, state, seed).await {
                Ok(reward) => {
                    self.horde_answered();
                    return Some(reward);
                }
                Err(e)
                    if e.is_transient()
                        && attempt < SUBMIT_TRIES
                        && *self.phase.borrow() != Phase::Abandoning =>
                {
                    self.horde_down.store(true, Ordering::Relaxed);
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        job = %job.id,
                        error = %e,
                        "submit failed; trying again in {:.1} s",
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "the horde did not take the result");
                    return None;
                }
            }
        }
        None
    }
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// The horde's token count for a text (with its default economy: a quarter of its
/// characters, rounded up).
fn estimated_tokens(text: &str) -> u32 {
    horde_core::EconomyConfig::default().estimate_tokens(text)
}

/// Resolves on SIGTERM (never on platforms without it).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_wins_but_never_above_the_backend() {
        assert_eq!(limit(Some(300), Some(200), 512, MAX_LENGTH_RANGE), 200);
        assert_eq!(limit(Some(100), Some(200), 512, MAX_LENGTH_RANGE), 100);
        assert_eq!(limit(None, Some(200), 512, MAX_LENGTH_RANGE), 200);
        assert_eq!(limit(Some(100), None, 512, MAX_LENGTH_RANGE), 100);
        assert_eq!(limit(None, None, 512, MAX_LENGTH_RANGE), 512);
        assert_eq!(limit(None, Some(8), 512, MAX_LENGTH_RANGE), 16);
    }

    #[test]
    fn tokens_are_estimated_as_the_horde_counts_them() {
        assert_eq!(estimated_tokens(""), 0);
        assert_eq!(estimated_tokens("abcde"), 2);
    }
}
