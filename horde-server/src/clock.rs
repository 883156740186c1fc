//! The server's clock: the system's, or a manual one that tests move by hand.
//!
//! The core never reads a clock; the driver reads this one and passes `now` in. With
//! [`Clock::manual`], a test advances time explicitly and the driver's timer wakes up as if
//! that much time had passed: no sleeping in tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use horde_core::Timestamp;
use tokio::sync::Notify;

/// Where the driver gets `now`.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// A clock that moves only when [`ManualClock::advance`] is called.
    Manual(Arc<ManualClock>),
}

/// A clock for tests.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicU64,
    changed: Notify,
}

impl ManualClock {
    /// The current time.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `duration` and wakes whoever sleeps on it.
    pub fn advance(&self, duration: Duration) {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(millis, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

impl Clock {
    /// A manual clock starting at `start`, and the handle that moves it.
    pub fn manual(start: Timestamp) -> (Clock, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock {
            millis: AtomicU64::new(start.millis()),
            changed: Notify::new(),
        });
        (Clock::Manual(clock.clone()), clock)
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => {
                let millis = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                Timestamp(millis)
            }
            Clock::Manual(clock) => clock.now(),
        }
    }

    /// Resolves once the clock reads `at` or later (never, for `None`).
    pub async fn sleep_until(&self, at: Option<Timestamp>) {
        let Some(at) = at else {
            return std::future::pending().await;
        };
        match self {
            Clock::System => {
                let wait = at.millis().saturating_sub(self.now().millis());
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Clock::Manual(clock) => loop {
                let changed = clock.changed.notified();
                tokio::pin!(changed);
                // Register before reading, so an advance in between is not missed.
                changed.as_mut().enable();
                if clock.now() >= at {
                    return;
                }
                changed.await;
            },
        }
    }
}
