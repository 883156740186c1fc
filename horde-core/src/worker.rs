//! Workers: a volunteer's backend as the horde knows it, and its uptime clock.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Kudos, Timestamp, UserId, WorkerId};

/// A worker and what it reported at its last check-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    /// Its id, minted when it first popped.
    pub id: WorkerId,
    /// The user who runs it and earns its kudos.
    pub owner: UserId,
    /// Its unique name.
    pub name: String,
    /// Models it serves.
    pub models: Vec<Arc<str>>,
    /// Most tokens it generates per job.
    pub max_length: u32,
    /// Most context tokens it accepts.
    pub max_context_length: u32,
    /// It accepts NSFW requests.
    pub nsfw: bool,
    /// Parallel jobs it runs.
    pub threads: u32,
    /// Its bridge software, `name:version:url`.
    pub bridge_agent: String,
    /// Words whose prompts it does not take, lowercased.
    #[serde(default)]
    pub blacklist: Vec<String>,
    /// Where it last checked in from (an opaque fingerprint), for the self-dealing rule.
    #[serde(default)]
    pub last_origin: Option<u64>,
    /// Users served first on this worker, whatever their balance.
    pub priority_users: Vec<UserId>,
    /// Its owner is trusted.
    pub trusted: bool,
    /// In maintenance it only serves its owner.
    pub maintenance: bool,
    /// Shown to the owner's clients during maintenance.
    pub maintenance_msg: String,
    /// Free text the owner shows on the worker page.
    pub info: String,
    /// Generations it submitted faster than its model can plausibly generate.
    #[serde(default)]
    pub suspicion: u32,
    /// When it first popped.
    pub created_at: Timestamp,
    /// Its last check-in (pop or submit).
    pub last_seen: Timestamp,
    /// Milliseconds online in total.
    pub uptime_ms: u64,
    /// Online milliseconds not yet paid as an uptime award.
    pub unpaid_uptime_ms: u64,
    /// Generations submitted.
    pub requests_fulfilled: u64,
    /// Tokens generated.
    pub tokens_generated: u64,
    /// Kudos earned by generations.
    pub kudos_generated: Kudos,
    /// Kudos earned by uptime.
    pub kudos_uptime: Kudos,
    /// When it last submitted a paid generation for another user (uptime is earned only
    /// with recent ones).
    #[serde(default)]
    pub last_good_at: Option<Timestamp>,
    /// The model of its latest paid generation for another user: its uptime is paid as this
    /// model's size, never as the largest model it advertises.
    #[serde(default)]
    pub shown_model: Option<Arc<str>>,
    /// The most context (prompt tokens) its paid work for others used within the proof
    /// window: its uptime is paid for this context, never the one it advertises.
    #[serde(default)]
    pub shown_context: u32,
    /// When its paid generations so far would have finished at its model's speed limit: a
    /// generation that would finish after its submission is too fast, however many jobs the
    /// worker runs at once.
    #[serde(default)]
    pub speed_clock: Timestamp,
    /// Its measured speed in thousandths of a token per second: a moving average of its paid
    /// generations' speeds, times the jobs it ran at once. What congestion is judged by.
    #[serde(default)]
    pub measured_tps_milli: u64,
    /// Faulted and timed-out jobs, less one per paid generation (never below zero): a worker
    /// that fails most of what it takes is suspected when this reaches the limit.
    #[serde(default)]
    pub fault_score: u32,
    /// It declared itself extra slow (the pop's `extra_slow_worker`): it serves only requests
    /// that allow extra slow workers.
    #[serde(default)]
    pub extra_slow: bool,
    /// Its bridge software is one the operator validated (always, while the operator lists
    /// none); set at each check-in from `bridge_agent`.
    #[serde(default = "crate::request::yes")]
    pub validated: bool,
    /// The team it works for, if any: its paid work and uptime count for the team too.
    #[serde(default)]
    pub team: Option<crate::TeamId>,
}

/// What changes every time a worker checks in or finishes a job: its clock and counters.
/// Stored apart from the rest of the worker, which changes rarely, so that a busy worker's
/// check-ins write a few numbers rather than its whole record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Its last check-in.
    pub last_seen: Timestamp,
    /// Milliseconds online in total.
    pub uptime_ms: u64,
    /// Online milliseconds not yet paid as an uptime award.
    pub unpaid_uptime_ms: u64,
    /// Generations submitted.
    pub requests_fulfilled: u64,
    /// Tokens generated.
    pub tokens_generated: u64,
    /// Kudos earned by generations.
    pub kudos_generated: Kudos,
    /// Kudos earned by uptime.
    pub kudos_uptime: Kudos,
    /// When it last submitted a paid generation for another user.
    #[serde(default)]
    pub last_good_at: Option<Timestamp>,
    /// See [`Worker::shown_context`].
    #[serde(default)]
    pub shown_context: u32,
    /// See [`Worker::speed_clock`].
    #[serde(default)]
    pub speed_clock: Timestamp,
    /// See [`Worker::measured_tps_milli`].
    #[serde(default)]
    pub measured_tps_milli: u64,
    /// See [`Worker::fault_score`].
    #[serde(default)]
    pub fault_score: u32,
}

impl Worker {
    /// The speed the horde counts this worker at, in tokens per second: its measured speed
    /// ([`Worker::measured_tps_milli`]), or [`crate::TOKENS_PER_SEC_PER_THREAD`] until it has
    /// one (what a worker claims, its threads included, adds nothing). The one definition
    /// behind every speed the horde shows: a worker's `performance`, a model's (the sum over
    /// its online workers) and wait estimates.
    ///
    /// ```
    /// use horde_core::{Timestamp, UserId, Worker, WorkerId, TOKENS_PER_SEC_PER_THREAD};
    ///
    /// let id = WorkerId(uuid::Uuid::nil());
    /// let mut worker = Worker::new(id, UserId(7), "gpu", Timestamp::from_secs(0));
    /// worker.threads = 8;
    /// assert_eq!(worker.tokens_per_second(), TOKENS_PER_SEC_PER_THREAD);
    /// worker.measured_tps_milli = 42_700;
    /// assert_eq!(worker.tokens_per_second(), 42);
    /// ```
    pub fn tokens_per_second(&self) -> u64 {
        match self.measured_tps_milli / 1000 {
            0 => crate::TOKENS_PER_SEC_PER_THREAD,
            measured => measured,
        }
    }

    /// Its clock and counters.
    pub fn stats(&self) -> WorkerStats {
        WorkerStats {
            last_seen: self.last_seen,
            uptime_ms: self.uptime_ms,
            unpaid_uptime_ms: self.unpaid_uptime_ms,
            requests_fulfilled: self.requests_fulfilled,
            tokens_generated: self.tokens_generated,
            kudos_generated: self.kudos_generated,
            kudos_uptime: self.kudos_uptime,
            last_good_at: self.last_good_at,
            shown_context: self.shown_context,
            speed_clock: self.speed_clock,
            measured_tps_milli: self.measured_tps_milli,
            fault_score: self.fault_score,
        }
    }

    /// Sets its clock and counters (from a stored [`WorkerStats`]).
    pub fn set_stats(&mut self, stats: WorkerStats) {
        self.last_seen = stats.last_seen;
        self.uptime_ms = stats.uptime_ms;
        self.unpaid_uptime_ms = stats.unpaid_uptime_ms;
        self.requests_fulfilled = stats.requests_fulfilled;
        self.tokens_generated = stats.tokens_generated;
        self.kudos_generated = stats.kudos_generated;
        self.kudos_uptime = stats.kudos_uptime;
        self.last_good_at = stats.last_good_at;
        self.shown_context = stats.shown_context;
        self.speed_clock = stats.speed_clock;
        self.measured_tps_milli = stats.measured_tps_milli;
        self.fault_score = stats.fault_score;
    }

    /// A new worker named `name` of `owner`, first seen at `now`, serving nothing yet (AI
    /// Horde's defaults: 512 tokens, 2048 context, one thread).
    pub fn new(id: WorkerId, owner: UserId, name: impl Into<String>, now: Timestamp) -> Worker {
        Worker {
            id,
            owner,
            name: name.into(),
            models: Vec::new(),
            max_length: 512,
            max_context_length: 2048,
            nsfw: false,
            threads: 1,
            bridge_agent: String::new(),
            blacklist: Vec::new(),
            last_origin: None,
            priority_users: Vec::new(),
            trusted: false,
            maintenance: false,
            maintenance_msg: String::new(),
            info: String::new(),
            suspicion: 0,
            created_at: now,
            last_seen: now,
            uptime_ms: 0,
            unpaid_uptime_ms: 0,
            requests_fulfilled: 0,
            tokens_generated: 0,
            kudos_generated: Kudos::ZERO,
            kudos_uptime: Kudos::ZERO,
            last_good_at: None,
            shown_model: None,
            shown_context: 0,
            speed_clock: now,
            measured_tps_milli: 0,
            fault_score: 0,
            extra_slow: false,
            validated: true,
            team: None,
        }
    }

    /// Returns true if and only if it checked in within `timeout_secs` of `now` and is not in
    /// maintenance.
    pub fn is_online(&self, now: Timestamp, timeout_secs: u64) -> bool {
        !self.maintenance && now.millis_since(self.last_seen) <= timeout_secs * 1000
    }

    /// Total kudos the worker has earned.
    pub fn kudos_rewards(&self) -> Kudos {
        self.kudos_generated + self.kudos_uptime
    }

    /// Records a check-in at `now`: time since the previous one counts as online if it is at
    /// most `timeout_secs` and the worker is not in maintenance. Returns how many uptime
    /// intervals of `interval_secs` became due.
    pub(crate) fn check_in(
        &mut self,
        now: Timestamp,
        timeout_secs: u64,
        interval_secs: u64,
    ) -> u64 {
        let gap = now.millis_since(self.last_seen);
        if !self.maintenance && gap <= timeout_secs * 1000 {
            self.unpaid_uptime_ms += gap;
            self.uptime_ms += gap;
        }
        self.last_seen = self.last_seen.max(now);
        let interval_ms = interval_secs.max(1) * 1000;
        let due = self.unpaid_uptime_ms / interval_ms;
        self.unpaid_uptime_ms %= interval_ms;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewards_add_up_and_check_ins_accumulate_uptime() {
        let mut worker = Worker::new(WorkerId(uuid::Uuid::nil()), UserId(1), "w", Timestamp(0));
        worker.kudos_generated = Kudos::from_milli(2_500);
        worker.kudos_uptime = Kudos::from_milli(1_000);
        assert_eq!(worker.kudos_rewards(), Kudos::from_milli(3_500));
        // Three check-ins 100 s apart: 300 s online, one 240 s interval due.
        let mut due = 0;
        for secs in [100, 200, 300] {
            due += worker.check_in(Timestamp::from_secs(secs), 300, 240);
        }
        assert_eq!(worker.uptime_ms, 300_000);
        assert_eq!(due, 1);
        assert_eq!(worker.unpaid_uptime_ms, 60_000);
    }
}
