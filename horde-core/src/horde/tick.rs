//! Time: what falls due at `now` (job deadlines, request expiry, retention).

use super::*;

impl Horde {
    /// Does what time makes due at `now`: jobs past their deadline go back to the queue (or
    /// fault their request), requests without progress for too long expire, closed requests
    /// past retention are removed, workers that stopped checking in go offline.
    ///
    /// At most [`Limits::max_tick_batch`] items are handled per call, so that one call holds
    /// a caller's lock for a bounded time; when more are due, [`Horde::next_deadline`] is
    /// still at or before `now` and the caller calls again.
    #[must_use = "the events of tick must be persisted"]
    pub fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        let mut events = Vec::new();
        let mut budget = self.config.limits.max_tick_batch.max(1);
        let mut spend = || {
            if budget == 0 {
                return false;
            }
            budget -= 1;
            true
        };
        while let Some(&(deadline, job)) = self.deadlines.first() {
            if deadline > now || !spend() {
                break;
            }
            self.deadlines.pop_first();
            let worker = self.jobs.get(&job).map(|j| j.worker);
            self.abort_job(job, AbortReason::TimedOut, now, &mut events);
            if let Some(worker) = worker {
                self.count_fault(worker, &mut events);
                self.push_worker_checked_in(worker, &mut events);
            }
        }
        while let Some(&(at, id)) = self.expiries.first() {
            if at > now || !spend() {
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
            if at > now || !spend() {
                break;
            }
            self.removals.pop_first();
            self.check_closed(id);
            if let Some(entry) = self.requests.remove(&id) {
                for job in entry.jobs {
                    self.jobs.remove(&job);
                }
                events.push(Event::RequestRemoved(id));
            }
        }
        while spend() && self.online.expire_one(now) {}
        events
    }
}
