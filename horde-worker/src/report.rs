//! What the worker tells its owner: one line per job, and a periodic summary.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// One finished job, as reported.
#[derive(Debug, Clone)]
pub(crate) struct JobReport<'a> {
    /// The job id.
    pub(crate) id: &'a str,
    /// The model it ran on.
    pub(crate) model: &'a str,
    /// Tokens generated (the backend's count, or the horde's estimate of chars / 4).
    pub(crate) tokens: u32,
    /// Time on the backend.
    pub(crate) generation: Duration,
    /// Time talking to the horde for it: its pop and its submit (the worker's overhead).
    pub(crate) horde: Duration,
    /// Kudos the horde paid for it.
    pub(crate) kudos: f64,
}

/// Totals since the worker started.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    totals: Mutex<Totals>,
}

#[derive(Debug, Default)]
struct Totals {
    jobs: u64,
    faulted: u64,
    tokens: u64,
    generation: Duration,
    horde: Duration,
    kudos: f64,
}

impl Stats {
    /// Empty totals, counting uptime from now.
    pub(crate) fn new() -> Stats {
        Stats {
            started: Instant::now(),
            totals: Mutex::default(),
        }
    }

    /// Logs a finished job and adds it to the totals.
    pub(crate) fn job_done(&self, job: &JobReport<'_>) {
        let seconds = job.generation.as_secs_f64();
        tracing::info!(
            job = job.id,
            model = job.model,
            tokens = job.tokens,
            seconds = round2(seconds),
            tokens_per_second = round2(per_second(f64::from(job.tokens), seconds)),
            horde_ms = round2(job.horde.as_secs_f64() * 1000.0),
            kudos = job.kudos,
            "job done"
        );
        let mut totals = self.totals.lock();
        totals.jobs += 1;
        totals.tokens += u64::from(job.tokens);
        totals.generation += job.generation;
        totals.horde += job.horde;
        totals.kudos += job.kudos;
    }

    /// Counts a job submitted as faulted.
    pub(crate) fn job_faulted(&self) {
        self.totals.lock().faulted += 1;
    }

    /// Logs the summary line.
    pub(crate) fn summary(&self) {
        let totals = self.totals.lock();
        let uptime = self.started.elapsed().as_secs_f64();
        tracing::info!(
            jobs = totals.jobs,
            faulted = totals.faulted,
            kudos = round2(totals.kudos),
            kudos_per_hour = round2(per_second(totals.kudos, uptime) * 3600.0),
            tokens_per_second = round2(per_second(
                totals.tokens as f64,
                totals.generation.as_secs_f64()
            )),
            generation_ms_per_job = round2(per_job(totals.generation, totals.jobs)),
            horde_ms_per_job = round2(per_job(totals.horde, totals.jobs)),
            uptime_secs = uptime.round() as u64,
            "summary"
        );
    }
}

/// `amount / seconds`, 0 for no time.
fn per_second(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        amount / seconds
    } else {
        0.0
    }
}

/// Milliseconds of `total` per job, 0 for no jobs.
fn per_job(total: Duration, jobs: u64) -> f64 {
    per_second(total.as_secs_f64() * 1000.0, jobs as f64)
}

/// Two decimals, for readable lines.
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
