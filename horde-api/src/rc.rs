//! The `rc` of an error body: what went wrong, for programs.
//!
//! ```
//! use horde_api::Rc;
//! assert_eq!(Rc::KudosUpfront.as_str(), "KudosUpfront");
//! assert_eq!("TooManyPrompts".parse::<Rc>(), Ok(Rc::TooManyPrompts));
//! assert!("SomethingElse".parse::<Rc>().is_err());
//! ```

use serde::{Deserialize, Serialize};

macro_rules! rcs {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// The `rc` of an error body: AI Horde's names where AI Horde has the case (horde-sdk lists
        /// them), ours where it does not (`RegistrationDisabled`, `IdempotencyKeyConflict`,
        /// `StorageFailure`, `StandbyNode`, `TooManyConnections`, `RateLimited`,
        /// `InvalidIdempotencyKey`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum Rc {
            $($(#[$doc])* $name,)*
        }

        impl Rc {
            /// The name clients see.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Rc::$name => stringify!($name),)*
                }
            }
        }

        impl std::str::FromStr for Rc {
            type Err = UnknownRc;

            fn from_str(name: &str) -> Result<Rc, UnknownRc> {
                match name {
                    $(stringify!($name) => Ok(Rc::$name),)*
                    _ => Err(UnknownRc),
                }
            }
        }
    };
}

/// An `rc` this crate does not know (another horde's, or a newer one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown rc")]
pub struct UnknownRc;

rcs! {
    /// The body is not valid JSON, or has wrong types or missing fields.
    BadRequest,
    /// The body is larger than the horde accepts.
    PayloadTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    /// A field is out of range or malformed.
    ValidationError,
    /// The prompt is missing or empty.
    MissingPrompt,
    /// `max_length` exceeds `max_context_length`.
    TokenOverflow,
    /// The alias is not acceptable.
    InvalidUsername,
    /// The `Idempotency-Key` header is empty or too long.
    InvalidIdempotencyKey,
    /// Nothing to do.
    NoValidActions,
    /// A user change named nothing to change.
    NoUserModSelected,
    /// A worker change named nothing to change.
    NoWorkerModSelected,
    /// Another worker has this name.
    WorkerNameAlreadyExists,
    /// The worker name is too long.
    TooLongWorkerName,
    /// No API key, or an unknown one.
    InvalidAPIKey,
    /// The anonymous user may not do this.
    AnonForbidden,
    /// The anonymous user may not run workers.
    AnonForbiddenWorker,
    /// The caller may not act on this resource.
    WrongCredentials,
    /// The worker is in maintenance.
    WorkerMaintenance,
    /// Only administrators may do this.
    NotAdmin,
    /// Registration is turned off.
    RegistrationDisabled,
    /// No such path.
    NotFound,
    /// No such request.
    RequestNotFound,
    /// No such user.
    UserNotFound,
    /// No such worker.
    WorkerNotFound,
    /// No such job.
    InvalidJobID,
    /// The method is not allowed on this path.
    MethodNotAllowed,
    /// Too many open generations.
    TooManyPrompts,
    /// Too many calls; wait as `Retry-After` says.
    RateLimited,
    /// The job was already submitted.
    DuplicateGen,
    /// The job was aborted.
    AbortedGen,
    /// The transfer amount is not a positive number of kudos.
    InvalidKudosTransferAmount,
    /// The transfer amount is negative.
    NegativeKudosTransfer,
    /// A transfer to oneself.
    KudosTransferToSelf,
    /// A transfer from the anonymous user.
    KudosTransferFromAnon,
    /// A transfer to the anonymous user.
    KudosTransferToAnon,
    /// The sender holds fewer kudos than the amount.
    KudosTransferNotEnough,
    /// An `Idempotency-Key` was reused for a different transfer.
    IdempotencyKeyConflict,
    /// The horde could not write to its database and refuses changes until restarted.
    StorageFailure,
    /// This node is a standby; another node is active.
    StandbyNode,
    /// Too many connections from one address.
    TooManyConnections,
    /// A bug in the horde.
    InternalError,
    /// A priority username is malformed or unknown.
    InvalidPriorityUsername,
    /// The owner runs as many workers as the horde allows.
    TooManyWorkers,
    /// The worker's owner is flagged: the worker is paused.
    WorkerFlaggedMaintenance,
    /// The sender is flagged: no transfers.
    SourceAccountFlagged,
    /// The request costs more than the requester may spend upfront under congestion.
    KudosUpfront,
    /// The horde is in maintenance: it takes no new requests for now.
    MaintenanceMode,
    /// The horde takes new workers only from trusted users for now (invite-only or raid mode).
    WorkerInviteOnly,
    /// The action is locked for now (a worker under suspicion cannot be deleted by its owner).
    Locked,
    /// Only moderators (and administrators) may do this.
    NotModerator,
    /// An award's `username` is not the `alias#id` of a user.
    InvalidAwardUsername,
    /// Kudos cannot be awarded to Anonymous.
    KudosAwardToAnon,
    /// No such team.
    TeamNotFound,
    /// Only trusted users create teams.
    UntrustedTeamCreation,
    /// A team change that changes nothing.
    NoTeamModSelected,
    /// Refused for a reason the message gives (a cap reached).
    Forbidden,
}
