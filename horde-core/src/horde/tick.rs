//! Time: what falls due at `now` (job deadlines, request expiry, retention).

use super::*;

impl Horde {
    /// Does what time makes due at `now`: jobs past their deadline go back to the queue (or
    /// fault their request), requests without progress for too long expire, closed requests
    /// past retention are removed.
    #[must_use = "the events of tick must be persisted"]
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
}
