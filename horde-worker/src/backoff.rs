//! Waiting between tries: delays that grow by a factor up to a cap, with ±20 % jitter so that
//! many workers do not retry in step.

use std::time::Duration;

/// A growing delay.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    cap: Duration,
    factor: f64,
    next: Duration,
}

impl Backoff {
    /// Delays from `first`, times `factor` each try, at most `cap`.
    pub(crate) fn new(first: Duration, cap: Duration, factor: f64) -> Backoff {
        Backoff {
            first,
            cap,
            factor,
            next: first,
        }
    }

    /// Between pops that found nothing: 1 s growing to 5 s.
    pub(crate) fn idle() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(5), 1.5)
    }

    /// After a horde error: 1 s doubling to 60 s.
    pub(crate) fn trouble() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 2.0)
    }

    /// While the backend is busy: 0.5 s doubling to 5 s.
    pub(crate) fn busy() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(5), 2.0)
    }

    /// The delay to wait now (jittered); the one after grows.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.mul_f64(self.factor).min(self.cap);
        delay.mul_f64(jitter())
    }

    /// Back to the first delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A factor between 0.8 and 1.2 (1.0 if the system has no randomness to give).
fn jitter() -> f64 {
    let unit = getrandom::u32().map_or(0.5, |n| f64::from(n) / f64::from(u32::MAX));
    0.8 + 0.4 * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5), 2.0);
        let delays: Vec<f64> = (0..5).map(|_| backoff.next_delay().as_secs_f64()).collect();
        for (delay, expected) in delays.iter().zip([1.0, 2.0, 4.0, 5.0, 5.0]) {
            assert!(
                (expected * 0.8..=expected * 1.2).contains(delay),
                "{delays:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(1200));
    }
}
