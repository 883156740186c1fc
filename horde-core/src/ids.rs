//! Identifiers and time: the newtypes every other module speaks in.
//!
//! The core never makes ids nor reads a clock: callers mint UUIDs and pass `now` in as a
//! [`Timestamp`], so the same inputs always give the same outputs (and tests use a simulated
//! clock).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user account. `UserId(0)` is the shared Anonymous account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub u64);

impl UserId {
    /// The shared Anonymous account (`Anonymous#0`, API key `0000000000`).
    pub const ANONYMOUS: UserId = UserId(0);

    /// The horde itself as a requester: its spot checks are its requests, paid from the
    /// horde's account. No one signs in as it.
    pub const HORDE: UserId = UserId(u64::MAX);

    /// Returns true if and only if this is the Anonymous account.
    pub const fn is_anonymous(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A text-generation request (what a client submitted; may ask for `n` generations).
    RequestId
);
uuid_id!(
    /// One job: one generation of a request handed to one worker.
    JobId
);
uuid_id!(
    /// A team of workers.
    TeamId
);
uuid_id!(
    /// A worker (a volunteer's text-generation backend bridge).
    WorkerId
);

/// A point in time in milliseconds since the Unix epoch, as passed in by the caller.
///
/// ```
/// use horde_core::Timestamp;
/// let t = Timestamp::from_secs(10);
/// assert_eq!(t.plus_secs(5).millis(), 15_000);
/// assert_eq!(t.plus_secs(5).secs_since(t), 5);
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Timestamp {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// This time plus `secs` seconds (saturating).
    pub const fn plus_secs(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// This time plus `millis` milliseconds (saturating).
    pub const fn plus_millis(self, millis: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(millis))
    }

    /// Whole seconds from `earlier` to `self`, zero if `earlier` is later.
    pub const fn secs_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0) / 1000
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub const fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
