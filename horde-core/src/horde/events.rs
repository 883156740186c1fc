//! What a command changed, as values a binary persists: [`Event`]s, and [`Applied`] (a
//! command's result with its events).

use super::*;

/// A change the core made, for a binary to persist. Replaying the latest value of every
/// entity into [`Horde::restore`] gives back the same state.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A request was accepted (its immutable part; stored once).
    RequestQueued(Arc<RequestSpec>),
    /// A request's mutable state changed.
    RequestChanged {
        /// Which request.
        id: RequestId,
        /// Its new state.
        state: RequestState,
    },
    /// A job started or changed (finished, aborted).
    JobChanged(Job),
    /// A closed request's retention ended; it and its jobs can be deleted.
    RequestRemoved(RequestId),
    /// Kudos moved.
    Posted(Posting),
    /// A user's balance or details changed (the result of a posting).
    AccountChanged {
        /// Whose account.
        user: UserId,
        /// Its new state.
        state: AccountState,
    },
    /// A worker was created or its profile changed (the record includes its stats).
    WorkerChanged(Worker),
    /// Only a worker's clock and counters changed (a check-in, a finished job).
    WorkerCheckedIn {
        /// Which worker.
        id: WorkerId,
        /// Its new clock and counters.
        stats: WorkerStats,
    },
    /// A worker was deleted (its owner's or an administrator's choice): its record and stats
    /// go; the jobs it did keep its id.
    WorkerRemoved(WorkerId),
    /// A team was created or changed (its counters included).
    TeamChanged(teams::Team),
    /// A team was deleted (its workers left it first, each a `WorkerChanged`).
    TeamRemoved(TeamId),
    /// A user was registered or their policy changed.
    UserChanged {
        /// Which user.
        user: UserId,
        /// Their new policy.
        policy: UserPolicy,
    },
}

/// A command's result and the events it caused. The events must reach the store, or memory
/// and disk drift apart: hence `#[must_use]`.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "the events of a command must be persisted"]
pub struct Applied<T> {
    /// What the command returns to its caller.
    pub value: T,
    /// What changed, in order.
    pub events: Vec<Event>,
}
