//! Running one job: generating it on the backend (waiting for a busy one, for one being
//! restarted, retrying a failing one a bounded number of times), within its deadline and
//! the requester's cancel, then submitting the result (retrying while the horde is away).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use horde_core::SubmitState;
use tokio::sync::watch;

use super::{Phase, Worker, DEADLINE_MARGIN, SUBMIT_TRIES, UNBOUNDED_JOB_LIMIT};
use crate::backend::{BackendError, Generated};
use crate::backoff::Backoff;
use crate::horde::Job;
use crate::report::JobReport;

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

impl Worker {
    /// Generates one job (popped in `pop_time`) and submits the result.
    pub(super) async fn run_job(&self, job: Job, pop_time: Duration) {
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
                if let Some((kudos, unpaid)) = self
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
                        unpaid: unpaid.as_deref(),
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
    pub(super) fn horde_answered(&self) {
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
    ) -> Option<(f64, Option<String>)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_estimated_as_the_horde_counts_them() {
        assert_eq!(estimated_tokens(""), 0);
        assert_eq!(estimated_tokens("abcde"), 2);
    }
}
