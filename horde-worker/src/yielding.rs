//! Yielding KoboldCpp to its owner, as KoboldCpp's own horde worker does: while someone else
//! uses the backend (its owner in KoboldAI Lite on the same machine, say), and for
//! `--yield-secs` after, the worker takes no horde job. KoboldCpp says how busy it is
//! (`/api/extra/perf`: generations running or queued, and finished since it started); what the
//! worker itself runs is subtracted, and whatever is left is someone else's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::backend::Load;

/// What the worker knows of the backend's use by others.
#[derive(Debug, Default)]
pub(crate) struct LocalUse {
    /// The backend's last load, and this worker's generations then.
    last: Mutex<Option<Seen>>,
    /// Generations this worker ran that ended (successfully or not).
    own_ended: AtomicU64,
    /// The worker is yielding now.
    yielding: AtomicBool,
    /// The backend reported its load at least once (the worker then polls the horde briefly,
    /// so that it looks again often).
    reported: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    finished: u64,
    own_ended: u64,
    /// None of the worker's jobs was in flight then.
    quiet: bool,
}

impl LocalUse {
    /// Counts one of the worker's generations ended on the backend.
    pub(crate) fn generation_ended(&self) {
        self.own_ended.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns true if and only if the backend has reported its load.
    pub(crate) fn reported(&self) -> bool {
        self.reported.load(Ordering::Relaxed)
    }

    /// Takes the backend's `load` while the worker has `in_flight` jobs; returns true if and
    /// only if someone else uses it now, or used it since the last look.
    pub(crate) fn used_by_others(&self, load: Load, in_flight: u64) -> bool {
        self.reported.store(true, Ordering::Relaxed);
        let own_ended = self.own_ended.load(Ordering::Relaxed);
        let quiet = in_flight == 0;
        let now = Seen {
            finished: load.finished,
            own_ended,
            quiet,
        };
        let before = self.last.lock().replace(now);
        // More running or queued there than the worker has in flight.
        let busy = load.busy > in_flight;
        // More finished there than the worker ended — counted only between two looks with none
        // of its jobs in flight, so that one finishing at the instant of a look is not taken for
        // someone else's.
        let finished = before.is_some_and(|before| {
            before.quiet
                && quiet
                && load.finished.saturating_sub(before.finished)
                    > own_ended.saturating_sub(before.own_ended)
        });
        busy || finished
    }

    /// Records whether the worker yields now; returns true if and only if that changed.
    pub(crate) fn set_yielding(&self, yielding: bool) -> bool {
        self.yielding.swap(yielding, Ordering::Relaxed) != yielding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(finished: u64, busy: u64) -> Load {
        Load { finished, busy }
    }

    #[test]
    fn a_generation_that_is_not_the_workers_is_someone_elses() {
        let local = LocalUse::default();
        assert!(!local.used_by_others(load(5, 0), 0), "the first look");
        assert!(
            local.used_by_others(load(5, 1), 0),
            "one running, none ours"
        );
        assert!(
            !local.used_by_others(load(5, 1), 1),
            "the one running is ours"
        );
        local.generation_ended();
        assert!(!local.used_by_others(load(6, 0), 0), "ours ended");
        assert!(!local.used_by_others(load(6, 0), 0));
        assert!(
            local.used_by_others(load(7, 0), 0),
            "one finished between two looks, not ours"
        );
        assert!(
            !local.used_by_others(load(8, 1), 1),
            "ours in flight: finished counts wait"
        );
        assert!(!local.used_by_others(load(8, 0), 0));
    }

    #[test]
    fn yielding_is_reported_when_it_changes() {
        let local = LocalUse::default();
        assert!(local.set_yielding(true));
        assert!(!local.set_yielding(true));
        assert!(local.set_yielding(false));
        assert!(!local.set_yielding(false));
    }
}
