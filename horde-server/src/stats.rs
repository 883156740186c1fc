//! Finished generations and tokens per minute, for `/stats/text/totals` and the home page;
//! finished generations per model and hour, for `/stats/text/models`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use horde_core::Timestamp;

/// Finished generations and tokens per minute.
#[derive(Debug, Default)]
pub struct Stats {
    minutes: BTreeMap<u64, (u64, u64)>,
    total: (u64, u64),
    /// Generations per hour (since the epoch) and model, for the last month.
    model_hours: BTreeMap<u64, HashMap<Arc<str>, u64>>,
    /// Generations per model, ever.
    model_totals: HashMap<Arc<str>, u64>,
}

/// Hours of per-model history kept in memory (a month).
const STATS_HOURS: u64 = 30 * 24;

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

    /// Counts `requests` generations by `model` finished in `hour` (since the epoch).
    pub fn record_model(&mut self, hour: u64, model: &str, requests: u64) {
        let name = match self.model_totals.get_key_value(model) {
            Some((name, _)) => name.clone(),
            None => Arc::from(model),
        };
        *self.model_totals.entry(name.clone()).or_default() += requests;
        *self
            .model_hours
            .entry(hour)
            .or_default()
            .entry(name)
            .or_default() += requests;
        if let Some(&oldest) = self.model_hours.keys().next() {
            if hour > oldest + STATS_HOURS {
                self.model_hours = self.model_hours.split_off(&(hour - STATS_HOURS));
            }
        }
    }

    /// Generations per model finished in the last `hours` hours before `now` (the current
    /// hour included), by name.
    pub fn models_since(&self, now: Timestamp, hours: u64) -> BTreeMap<String, u64> {
        let current = now.millis() / 3_600_000;
        let mut counts = BTreeMap::new();
        for models in self
            .model_hours
            .range(current.saturating_sub(hours.saturating_sub(1))..)
            .map(|(_, models)| models)
        {
            for (model, count) in models {
                *counts.entry(model.to_string()).or_default() += count;
            }
        }
        counts
    }

    /// Generations per model ever finished, by name.
    pub fn model_totals(&self) -> BTreeMap<String, u64> {
        self.model_totals
            .iter()
            .map(|(model, count)| (model.to_string(), *count))
            .collect()
    }

    /// All requests and tokens ever finished.
    pub fn total(&self) -> (u64, u64) {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_counted_per_period_and_in_total() {
        let mut stats = Stats::default();
        let hour = 500_000;
        let now = Timestamp::from_secs(hour * 3600 + 10);
        stats.record_model(hour, "a", 2);
        stats.record_model(hour - 23, "b", 1);
        stats.record_model(hour - 24, "a", 1);
        stats.record_model(hour - 24 * 29, "a", 4);
        let day = stats.models_since(now, 24);
        assert_eq!(day, BTreeMap::from([("a".into(), 2), ("b".into(), 1)]));
        let month = stats.models_since(now, 30 * 24);
        assert_eq!(month, BTreeMap::from([("a".into(), 7), ("b".into(), 1)]));
        // Past a month, an hour leaves memory but stays in the total.
        stats.record_model(hour + 24 * 2, "c", 1);
        let later = Timestamp::from_secs((hour + 24 * 2) * 3600);
        assert_eq!(stats.models_since(later, 30 * 24)["a"], 3);
        assert_eq!(stats.model_totals()["a"], 7);
    }
}
