//! The worker's loop: watch the backend, pop, generate, submit; stop on a signal.
//!
//! `threads` job loops run side by side. Each waits while the backend is down, pops one job,
//! generates it (retrying a busy backend, and a failing one a bounded number of times),
//! submits the result (retrying while the horde is unreachable), and backs off when there is
//! nothing to do or the horde errs. A watcher re-probes a backend that stopped answering and
//! re-reads its model and limits when it is back. The first SIGINT/SIGTERM stops popping and
//! lets jobs in flight finish; a second abandons them (backend abort, `faulted` submit).
//!
//! This module owns the worker's life (start, the backend's watch, signals, the end);
//! [`pop`] takes work from the horde, [`job`] runs one job.

mod job;
mod pop;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use horde_core::ranges::{MAX_CONTEXT_LENGTH as MAX_CONTEXT_RANGE, MAX_LENGTH as MAX_LENGTH_RANGE};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::backend::{Backend, BackendError, BackendInfo};
use crate::error::WorkerError;
use crate::horde::Horde;
use crate::report::Stats;
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
            // A key nobody has: 404 UserNotFound (as AI Horde answers), 401 from older hordes.
            Some("InvalidAPIKey" | "UserNotFound") => WorkerError::Check(format!(
                "the horde at {} does not know this API key",
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
            Ok(Err(e)) if matches!(e.rc(), Some("InvalidAPIKey" | "UserNotFound")) => {
                return Err(WorkerError::Refused(format!(
                    "the horde at {} does not know this API key",
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
}
