//! `horde-core`: the pure domain of a crowdsourced text-generation horde.
//!
//! This crate does no I/O, reads no clock and draws no random numbers: time (`now`) and new
//! ids come in as arguments, and every change comes out as [`Event`] values that a binary
//! persists. That keeps the economy exact and every rule testable with a simulated clock.
//!
//! ```text
//!   commands (enqueue, pop, submit, cancel, transfer, tick) + now + ids
//!                               │
//!                         ┌─────▼─────┐
//!                         │   Horde   │  ledger · queue · requests · jobs · workers
//!                         └─────┬─────┘
//!                               │
//!            results + events (RequestQueued, JobChanged, Posted, …)
//! ```
//!
//! The main types:
//! - [`Kudos`]: an exact fixed-point amount.
//! - [`Ledger`]: double-entry postings; all balances always sum to zero.
//! - [`EconomyConfig`]: the reward formulas (model size, tokens, context, uptime).
//! - [`queue::PriorityQueue`]: a queue whose owners' priorities change without rescans.
//! - [`matching`]: may a worker serve a request, and why not.
//! - [`Horde`]: the state machine composing them.
//!
//! ```
//! use horde_core::{Kudos, Ledger, Timestamp, UserId};
//! let mut ledger = Ledger::new();
//! ledger.settle_generation(UserId::ANONYMOUS, UserId(7), "10.44".parse()?, Timestamp(0))?;
//! assert_eq!(ledger.balance(UserId(7)), Kudos::from_milli(10_440));
//! assert_eq!(ledger.total(), Kudos::ZERO);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod horde;
mod ids;
mod kudos;
mod ledger;
pub mod matching;
pub mod queue;
pub mod reference;
mod replica;
mod request;
pub mod reward;
pub mod text;
mod worker;

pub use horde::{
    name_problem, ranges, Applied, Assignment, CheckVerdict, EnqueueError, Event, Horde,
    HordeConfig, Integrity, Limits, ModelStats, OtherModels, OverLimit, Payment, PopError,
    PopQuery, PopResult, RequestStatus, Roles, SpeedLimit, SpotChecks, Submission, SubmitError,
    SubmitState, Team, TeamError, TransferError, Unpaid, UserPolicy, WorkerDeleteError,
    WorkerUpdate, WorkerUpdateError, HIDDEN_CHARACTERS, TEAMS_PER_CREATOR, TEAM_INFO_MAX,
    TEAM_NAME_MAX, TOKENS_PER_SEC_PER_THREAD,
};
pub use ids::{JobId, RequestId, TeamId, Timestamp, UserId, WorkerId};
pub use kudos::{Kudos, ParseKudosError};
pub use ledger::{Account, AccountState, KudosDetails, Ledger, LedgerError, Posting, PostingKind};
pub use matching::{SkipCounts, SkipReason};
pub use replica::Replica;
pub use request::{
    AbortReason, GenParams, Generation, GenerationState, Job, JobStatus, Outcome, RequestSpec,
    RequestState, SLOW_WORKER_TOKENS_PER_SEC,
};
pub use reward::{ContextBasis, EconomyConfig, ModelSizePolicy};
pub use worker::{Worker, WorkerStats};
