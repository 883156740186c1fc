//! Taking work from the horde: each job loop waits for the backend, yields it to its other
//! users, pops (a long poll), runs what it gets, and paces itself when there is nothing to do
//! or the horde errs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use horde_api::PopRequest;

use super::{Phase, Worker, BACKEND_FRESH, LONG_POLL_SECS, STOP_GRACE, YIELD_POLL_SECS};
use crate::backoff::Backoff;
use crate::error::WorkerError;
use crate::horde::{Popped, BRIDGE_AGENT};

impl Worker {
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
            // Only when declared: a horde that does not know the field reads nothing new.
            extra_slow_worker: self.settings.extra_slow.then_some(true),
            blacklist: (!blacklist.is_empty()).then(|| blacklist.clone()),
            wait: Some(self.pop_wait()),
        })
    }

    /// One thread of work: pop, run, repeat, until asked to stop.
    pub(super) async fn job_loop(self: Arc<Self>) {
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
}
