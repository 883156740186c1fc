//! Finished generations and tokens per minute, for `/stats/text/totals` and the home page.

use std::collections::BTreeMap;

use horde_core::Timestamp;

/// Finished generations and tokens per minute.
#[derive(Debug, Default)]
pub struct Stats {
    minutes: BTreeMap<u64, (u64, u64)>,
    total: (u64, u64),
}

/// Minutes of history kept in memory (a month).
const STATS_MINUTES: u64 = 30 * 24 * 60;

impl Stats {
    /// Counts `requests` generations of `tokens` tokens finished in `minute` (since the epoch).
    pub fn record(&mut self, minute: u64, requests: u64, tokens: u64) {
        let bucket = self.minutes.entry(minute).or_default();
        bucket.0 += requests;
        bucket.1 += tokens;
        self.total.0 += requests;
        self.total.1 += tokens;
        if let Some(&oldest) = self.minutes.keys().next() {
            if minute > oldest + STATS_MINUTES {
                self.minutes = self.minutes.split_off(&(minute - STATS_MINUTES));
            }
        }
    }

    /// Requests and tokens finished in the last `minutes` minutes before `now` (the current
    /// minute included).
    pub fn since(&self, now: Timestamp, minutes: u64) -> (u64, u64) {
        let current = now.millis() / 60_000;
        self.minutes
            .range(current.saturating_sub(minutes.saturating_sub(1))..)
            .fold((0, 0), |acc, (_, v)| (acc.0 + v.0, acc.1 + v.1))
    }

    /// All requests and tokens ever finished.
    pub fn total(&self) -> (u64, u64) {
        self.total
    }
}
