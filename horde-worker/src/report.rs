//! What the worker tells its owner: one line per job with the session's totals, and a
//! periodic summary. Text logs say it in words (`job done: 120 tokens in 3.2 s …`); JSON logs
//! carry the same as fields.

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
    /// Why it was nothing, when the horde says (horde's extension).
    pub(crate) unpaid: Option<&'a str>,
}

/// Totals since the worker started.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    /// Lines in words (text logs) rather than fields (JSON logs).
    plain: bool,
    totals: Mutex<Totals>,
}

#[derive(Debug, Default)]
struct Totals {
    jobs: u64,
    faulted: u64,
    unpaid: u64,
    tokens: u64,
    generation: Duration,
    horde: Duration,
    kudos: f64,
    /// The owner's kudos held in escrow, as the horde last said.
    escrow: Option<f64>,
}

/// Why a job can earn nothing, said the first time it happens when the horde does not say
/// (AI Horde and older hordes do not).
const UNPAID_WHY: &str = "a horde pays nothing for a text it finds degenerate (one character \
     repeated), for a generation faster than its speed limit for the model (the worker is then \
     suspected: see `horde-cli workers show`), or for a request from the worker's own address";

impl Stats {
    /// Empty totals, counting uptime from now; `plain` for text logs.
    pub(crate) fn new(plain: bool) -> Stats {
        Stats {
            started: Instant::now(),
            plain,
            totals: Mutex::default(),
        }
    }

    /// Logs a finished job with the session's totals, and adds it to them.
    pub(crate) fn job_done(&self, job: &JobReport<'_>) {
        let seconds = job.generation.as_secs_f64();
        let tokens_per_second = round2(per_second(f64::from(job.tokens), seconds));
        let mut totals = self.totals.lock();
        totals.jobs += 1;
        totals.tokens += u64::from(job.tokens);
        totals.generation += job.generation;
        totals.horde += job.horde;
        totals.kudos += job.kudos;
        let first_unpaid = job.kudos == 0.0 && totals.unpaid == 0;
        if job.kudos == 0.0 {
            totals.unpaid += 1;
        }
        let (jobs, tokens, kudos) = (totals.jobs, totals.tokens, round2(totals.kudos));
        drop(totals);
        if self.plain {
            tracing::info!(
                job = job.id,
                "job done: {} in {:.1} s ({tokens_per_second} tokens/s), {} kudos; this \
                 session {}, {}, {kudos} kudos",
                counted(u64::from(job.tokens), "token"),
                seconds,
                round2(job.kudos),
                counted(jobs, "job"),
                counted(tokens, "token"),
            );
        } else {
            tracing::info!(
                job = job.id,
                model = job.model,
                tokens = job.tokens,
                seconds = round2(seconds),
                tokens_per_second,
                horde_ms = round2(job.horde.as_secs_f64() * 1000.0),
                kudos = job.kudos,
                session_jobs = jobs,
                session_tokens = tokens,
                session_kudos = kudos,
                "job done"
            );
        }
        match job.unpaid {
            Some(reason) if job.kudos == 0.0 => {
                tracing::warn!(
                    job = job.id,
                    "the horde paid nothing for this job: {reason}"
                );
            }
            _ if first_unpaid => {
                tracing::warn!(
                    job = job.id,
                    "the horde paid nothing for this job: {UNPAID_WHY}"
                );
            }
            _ => {}
        }
    }

    /// Counts a job submitted as faulted.
    pub(crate) fn job_faulted(&self) {
        self.totals.lock().faulted += 1;
    }

    /// Records the owner's kudos in escrow, as the horde says.
    pub(crate) fn set_escrow(&self, kudos: f64) {
        self.totals.lock().escrow = Some(kudos);
    }

    /// Logs the summary line.
    pub(crate) fn summary(&self) {
        let totals = self.totals.lock();
        let uptime = self.started.elapsed().as_secs_f64();
        let kudos = round2(totals.kudos);
        let kudos_per_hour = round2(per_second(totals.kudos, uptime) * 3600.0);
        let tokens_per_second = round2(per_second(
            totals.tokens as f64,
            totals.generation.as_secs_f64(),
        ));
        let horde_ms_per_job = round2(per_job(totals.horde, totals.jobs));
        let escrow = totals.escrow.map(round2);
        if self.plain {
            let held = match escrow {
                Some(escrow) if escrow > 0.0 => format!(
                    "; the account holds {escrow} kudos in escrow until the horde trusts it"
                ),
                _ => String::new(),
            };
            tracing::info!(
                "summary: {} done, {} faulted, {} unpaid in {}; {kudos} kudos \
                 ({kudos_per_hour} per hour); {tokens_per_second} tokens/s on the backend; \
                 {horde_ms_per_job} ms per job talking to the horde{held}",
                counted(totals.jobs, "job"),
                totals.faulted,
                totals.unpaid,
                human_duration(uptime as u64),
            );
        } else {
            tracing::info!(
                jobs = totals.jobs,
                faulted = totals.faulted,
                unpaid = totals.unpaid,
                kudos,
                kudos_per_hour,
                tokens_per_second,
                generation_ms_per_job = round2(per_job(totals.generation, totals.jobs)),
                horde_ms_per_job,
                escrow,
                uptime_secs = uptime.round() as u64,
                "summary"
            );
        }
    }
}

/// `count` and `noun`, plural unless one: `1 job`, `3 jobs`.
fn counted(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
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

/// `seconds` in the two largest units: `45s`, `12m 5s`, `3h 20m`, `2d 4h`.
fn human_duration(seconds: u64) -> String {
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{minutes}m {secs}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_two_largest_units() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(725), "12m 5s");
        assert_eq!(human_duration(3 * 3600 + 20 * 60 + 9), "3h 20m");
        assert_eq!(human_duration(2 * 86_400 + 4 * 3600), "2d 4h");
    }
}
