//! The workers online, counted per model as they check in, change and time out, so that
//! status figures, estimates and `is_possible` never scan every worker and every model.
//!
//! A worker is online from a check-in until `online_timeout_secs` later (or until it enters
//! maintenance). Each online worker has an entry with the instant it goes offline; `tick`
//! takes expired entries out, and that instant is one of the deadlines the horde reports.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::{Timestamp, Worker, WorkerId};

/// One online worker's contribution.
#[derive(Debug)]
struct Presence {
    models: Vec<Arc<str>>,
    threads: u32,
    tokens_per_sec: u64,
    size_key: u64,
    until: Timestamp,
}

/// Online workers of one model.
#[derive(Debug, Default)]
pub(super) struct ModelPresence {
    /// The workers.
    pub(super) workers: HashSet<WorkerId>,
    /// Their threads.
    pub(super) threads: u64,
    /// Their speeds ([`Worker::tokens_per_second`]), summed.
    pub(super) tokens_per_sec: u64,
}

#[derive(Debug, Default)]
pub(super) struct Online {
    workers: HashMap<WorkerId, Presence>,
    /// Sorted by name, so that per-model figures come out in order without sorting.
    by_model: BTreeMap<Arc<str>, ModelPresence>,
    until: BTreeSet<(Timestamp, WorkerId)>,
    /// Largest model size of each online worker (as `f64` bits, which order like the sizes
    /// since sizes are never negative) → how many workers have it.
    sizes: BTreeMap<u64, u32>,
    threads: u64,
    /// The online workers' measured speeds, summed.
    tokens_per_sec: u64,
}

impl Online {
    /// Marks `worker` online until `until`, serving its current models with `threads` (or
    /// offline, if it is in maintenance). `size_b` is its largest model's size,
    /// `tokens_per_sec` its measured speed.
    pub(super) fn set(
        &mut self,
        worker: &Worker,
        size_b: f64,
        threads: u32,
        tokens_per_sec: u64,
        until: Timestamp,
    ) {
        let size_key = size_b.max(0.0).to_bits();
        if let Some(presence) = self.workers.get_mut(&worker.id) {
            // The common check-in: nothing but the time changed.
            if !worker.maintenance
                && presence.threads == threads
                && presence.tokens_per_sec == tokens_per_sec
                && presence.size_key == size_key
                && presence.models == worker.models
            {
                self.until.remove(&(presence.until, worker.id));
                presence.until = until;
                self.until.insert((until, worker.id));
                return;
            }
        }
        self.remove(worker.id);
        if worker.maintenance {
            return;
        }
        for model in &worker.models {
            let entry = self.by_model.entry(model.clone()).or_default();
            entry.workers.insert(worker.id);
            entry.threads += u64::from(threads);
            entry.tokens_per_sec += tokens_per_sec;
        }
        *self.sizes.entry(size_key).or_default() += 1;
        self.threads += u64::from(threads);
        self.tokens_per_sec += tokens_per_sec;
        self.until.insert((until, worker.id));
        self.workers.insert(
            worker.id,
            Presence {
                models: worker.models.clone(),
                threads,
                tokens_per_sec,
                size_key,
                until,
            },
        );
    }

    /// Takes `id` offline.
    pub(super) fn remove(&mut self, id: WorkerId) {
        let Some(presence) = self.workers.remove(&id) else {
            return;
        };
        for model in &presence.models {
            if let Some(entry) = self.by_model.get_mut(model) {
                entry.workers.remove(&id);
                entry.threads -= u64::from(presence.threads);
                entry.tokens_per_sec -= presence.tokens_per_sec;
                if entry.workers.is_empty() {
                    self.by_model.remove(model);
                }
            }
        }
        if let Some(count) = self.sizes.get_mut(&presence.size_key) {
            *count -= 1;
            if *count == 0 {
                self.sizes.remove(&presence.size_key);
            }
        }
        self.threads -= u64::from(presence.threads);
        self.tokens_per_sec -= presence.tokens_per_sec;
        self.until.remove(&(presence.until, id));
    }

    /// The first instant a worker goes offline.
    pub(super) fn next_expiry(&self) -> Option<Timestamp> {
        self.until.first().map(|(at, _)| *at)
    }

    /// Takes offline one worker whose time is up at `now`; false if there is none.
    pub(super) fn expire_one(&mut self, now: Timestamp) -> bool {
        match self.until.first() {
            Some(&(at, id)) if at <= now => {
                self.remove(id);
                true
            }
            _ => false,
        }
    }

    /// Online workers and their threads.
    pub(super) fn capacity(&self) -> (u64, u64) {
        (self.workers.len() as u64, self.threads)
    }

    /// The online workers' measured speed in all, in tokens per second.
    pub(super) fn measured_tokens_per_sec(&self) -> u64 {
        self.tokens_per_sec
    }

    /// The size of the largest model any online worker serves.
    pub(super) fn largest_size_b(&self) -> Option<f64> {
        self.sizes
            .keys()
            .next_back()
            .map(|bits| f64::from_bits(*bits))
    }

    /// Online workers serving `model`.
    pub(super) fn of_model(&self, model: &str) -> Option<&ModelPresence> {
        self.by_model.get(model)
    }

    /// Online workers per model, in name order.
    pub(super) fn models(&self) -> impl Iterator<Item = (&Arc<str>, &ModelPresence)> {
        self.by_model.iter()
    }

    /// All online workers.
    pub(super) fn worker_ids(&self) -> impl Iterator<Item = &WorkerId> {
        self.workers.keys()
    }
}
