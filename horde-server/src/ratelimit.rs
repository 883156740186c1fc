//! Per-minute rate limits (registrations per address; transfers per user and per address).
//!
//! Fixed one-minute windows: simple, exact, and a refusal says how many seconds remain until
//! the window turns (`Retry-After`).

use std::collections::HashMap;
use std::net::IpAddr;

use horde_core::{Timestamp, UserId};

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limited {
    /// Registrations from an address.
    Registration(IpAddr),
    /// Transfers sent by a user.
    TransferByUser(UserId),
    /// Transfers sent from an address.
    TransferByAddress(IpAddr),
}

/// Counts per key in the current minute.
#[derive(Debug, Default)]
pub struct RateLimits {
    counts: HashMap<Limited, (u64, u32)>,
}

impl RateLimits {
    /// Counts one more `what` at `now`; past `limit` in this minute, the seconds until the
    /// next minute.
    pub fn allow(&mut self, what: Limited, now: Timestamp, limit: u32) -> Result<(), u64> {
        let minute = now.millis() / 60_000;
        if self.counts.len() > 100_000 {
            self.counts.retain(|_, (m, _)| *m == minute);
        }
        let entry = self.counts.entry(what).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= limit {
            let next = (minute + 1) * 60_000;
            return Err(next.saturating_sub(now.millis()).div_ceil(1000).max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_limit_and_says_when_to_retry() {
        let mut limits = RateLimits::default();
        let key = Limited::TransferByUser(UserId(1));
        let t = Timestamp(60_000 * 100 + 15_000);
        assert!(limits.allow(key, t, 2).is_ok());
        assert!(limits.allow(key, t, 2).is_ok());
        assert_eq!(limits.allow(key, t, 2), Err(45));
        // Others are counted apart; the next minute starts afresh.
        assert!(limits
            .allow(Limited::TransferByUser(UserId(2)), t, 2)
            .is_ok());
        assert!(limits.allow(key, Timestamp(60_000 * 101), 2).is_ok());
    }
}
