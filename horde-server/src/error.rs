//! `ApiError`: every way a request can fail, and the one place that maps it to HTTP.
//!
//! Handlers return `Result<_, ApiError>` and use `?`; core errors convert with `From`. The body
//! is always `{"message": "...", "rc": "CodeName"}` (plus `errors` for field validation), the
//! shape AI Horde clients parse.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use horde_core::{
    EnqueueError, LedgerError, PopError, SubmitError, TransferError, WorkerUpdateError,
};

pub use horde_api::{ErrorBody, Rc};

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON or has wrong types or missing fields.
    #[error("invalid request body: {0}")]
    BadJson(String),
    /// The body did not arrive within the read timeout.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// The body is larger than the server accepts.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// A field failed validation.
    #[error("{message}")]
    Validation {
        /// The rc code (AI Horde's name for the failure).
        rc: Rc,
        /// What is wrong.
        message: String,
        /// Field → message, when a field is to blame.
        field: Option<&'static str>,
    },
    /// No or unknown API key.
    #[error("invalid API key")]
    InvalidApiKey,
    /// Anonymous may not do this.
    #[error("{0}")]
    AnonForbidden(&'static str),
    /// Refused for a reason its rc names.
    #[error("{message}")]
    Forbidden {
        /// The rc.
        rc: Rc,
        /// Why.
        message: String,
    },
    /// Anonymous may not run workers.
    #[error("anonymous users cannot run workers: register and use your API key")]
    AnonForbiddenWorker,
    /// The caller may not act on this resource.
    #[error("{0}")]
    WrongCredentials(&'static str),
    /// The worker is in maintenance.
    #[error("this worker is in maintenance mode")]
    WorkerMaintenance,
    /// Only admins may do this.
    #[error("only administrators may do this")]
    NotAdmin,
    /// Registration is turned off on this horde.
    #[error("registration is disabled on this horde")]
    RegistrationDisabled,
    /// Something named does not exist.
    #[error("{message}")]
    NotFound {
        /// `RequestNotFound`, `UserNotFound`, `WorkerNotFound`, `InvalidJobID`, `NotFound`.
        rc: Rc,
        /// What was not found.
        message: String,
    },
    /// The method is not allowed on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too many prompts open, or too many calls.
    #[error("{message}")]
    TooMany {
        /// `TooManyPrompts` or `RateLimited`.
        rc: Rc,
        /// Details.
        message: String,
        /// Seconds until a retry may succeed (sent as `Retry-After`).
        retry_after: Option<u64>,
    },
    /// The job was already submitted.
    #[error("this generation was already submitted")]
    DuplicateGen,
    /// The job was aborted.
    #[error("this generation was aborted (timed out, faulted or cancelled)")]
    AbortedGen,
    /// A request that a call waited for ended without its result (expired, failed, cancelled).
    #[error("{0}")]
    Unfinished(String),
    /// An `Idempotency-Key` was reused with a different request.
    #[error("this Idempotency-Key was used for a different transfer")]
    IdempotencyKeyConflict,
    /// The database could not commit; the server refuses changes until it is restarted.
    #[error(
        "the server could not write to its database and stopped accepting requests; it will be \
         back after a restart"
    )]
    Storage,
    /// This node is a standby: another node of the horde is active.
    #[error(
        "this horde-server node is a standby and serves nothing until the active node stops; \
         send requests to the active node (its heartbeat says \"role\": \"active\")"
    )]
    Standby,
    /// The horde is in maintenance mode.
    #[error(
        "this horde is in maintenance: it finishes the requests it has and takes no new ones \
         for now; try again later"
    )]
    HordeMaintenance,
    /// A bug; the message is logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A validation failure of one field.
    pub fn invalid(rc: Rc, field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            rc,
            message: message.into(),
            field: Some(field),
        }
    }

    /// A 404 with the given rc.
    pub fn not_found(rc: Rc, message: impl Into<String>) -> Self {
        ApiError::NotFound {
            rc,
            message: message.into(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status_and_rc().0
    }

    /// The HTTP status and rc of this error: the one mapping in the server.
    pub fn status_and_rc(&self) -> (StatusCode, Rc) {
        match self {
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, Rc::BadRequest),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, Rc::PayloadTooLarge),
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, Rc::RequestTimeout),
            ApiError::Validation { rc, .. } => (StatusCode::BAD_REQUEST, *rc),
            ApiError::InvalidApiKey => (StatusCode::UNAUTHORIZED, Rc::InvalidAPIKey),
            ApiError::AnonForbidden(_) => (StatusCode::FORBIDDEN, Rc::AnonForbidden),
            ApiError::AnonForbiddenWorker => (StatusCode::FORBIDDEN, Rc::AnonForbiddenWorker),
            ApiError::Forbidden { rc, .. } => (StatusCode::FORBIDDEN, *rc),
            ApiError::WrongCredentials(_) => (StatusCode::FORBIDDEN, Rc::WrongCredentials),
            ApiError::WorkerMaintenance => (StatusCode::FORBIDDEN, Rc::WorkerMaintenance),
            ApiError::NotAdmin => (StatusCode::FORBIDDEN, Rc::NotAdmin),
            ApiError::RegistrationDisabled => (StatusCode::FORBIDDEN, Rc::RegistrationDisabled),
            ApiError::NotFound { rc, .. } => (StatusCode::NOT_FOUND, *rc),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, Rc::MethodNotAllowed),
            ApiError::TooMany { rc, .. } => (StatusCode::TOO_MANY_REQUESTS, *rc),
            ApiError::DuplicateGen => (StatusCode::BAD_REQUEST, Rc::DuplicateGen),
            ApiError::AbortedGen => (StatusCode::BAD_REQUEST, Rc::AbortedGen),
            ApiError::Unfinished(_) => (StatusCode::SERVICE_UNAVAILABLE, Rc::AbortedGen),
            ApiError::IdempotencyKeyConflict => (StatusCode::CONFLICT, Rc::IdempotencyKeyConflict),
            ApiError::Storage => (StatusCode::SERVICE_UNAVAILABLE, Rc::StorageFailure),
            ApiError::Standby => (StatusCode::SERVICE_UNAVAILABLE, Rc::StandbyNode),
            ApiError::HordeMaintenance => (StatusCode::SERVICE_UNAVAILABLE, Rc::MaintenanceMode),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, Rc::InternalError),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, rc) = self.status_and_rc();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let mut body = ErrorBody::new(rc, self.to_string());
        if let ApiError::Validation {
            field: Some(field),
            message,
            ..
        } = &self
        {
            body.errors = Some(BTreeMap::from([((*field).to_owned(), message.clone())]));
        }
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooMany {
            retry_after: Some(secs),
            ..
        } = &self
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, (*secs).into());
        }
        if let ApiError::Standby = &self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, 1.into());
        }
        response
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match e {
            AuthError::UnknownKey => ApiError::InvalidApiKey,
            AuthError::InvalidAlias(message) => {
                ApiError::invalid(Rc::InvalidUsername, "username", message)
            }
            AuthError::UnknownUser => ApiError::not_found(Rc::UserNotFound, "no such user"),
            AuthError::Randomness(detail) => ApiError::Internal(format!("OS RNG: {detail}")),
        }
    }
}

impl From<crate::driver::Unavailable> for ApiError {
    fn from(_: crate::driver::Unavailable) -> Self {
        ApiError::Storage
    }
}

impl From<crate::models::ReferenceError> for ApiError {
    fn from(e: crate::models::ReferenceError) -> Self {
        ApiError::invalid(Rc::ValidationError, "model_reference", e.to_string())
    }
}

impl From<horde_api::FieldError> for ApiError {
    fn from(e: horde_api::FieldError) -> Self {
        ApiError::invalid(Rc::ValidationError, e.field, e.message)
    }
}

impl From<EnqueueError> for ApiError {
    fn from(e: EnqueueError) -> Self {
        let message = e.to_string();
        match e {
            EnqueueError::EmptyPrompt => ApiError::invalid(Rc::MissingPrompt, "prompt", message),
            EnqueueError::OutOfRange { field, .. } => {
                ApiError::invalid(Rc::ValidationError, field, message)
            }
            EnqueueError::TokenOverflow => {
                ApiError::invalid(Rc::TokenOverflow, "max_context_length", message)
            }
            EnqueueError::InvalidModelName { .. } => {
                ApiError::invalid(Rc::ValidationError, "models", message)
            }
            EnqueueError::TooManyPrompts { .. } | EnqueueError::AddressShare { .. } => {
                ApiError::TooMany {
                    rc: Rc::TooManyPrompts,
                    message,
                    retry_after: None,
                }
            }
            EnqueueError::UnknownUser => ApiError::InvalidApiKey,
            EnqueueError::DuplicateId => ApiError::Internal(message),
            EnqueueError::KudosUpfront { .. } => ApiError::Forbidden {
                rc: Rc::KudosUpfront,
                message,
            },
            EnqueueError::OverLimit(limit) => {
                ApiError::invalid(Rc::ValidationError, limit.field, message)
            }
        }
    }
}

impl From<PopError> for ApiError {
    fn from(e: PopError) -> Self {
        let message = e.to_string();
        match e {
            PopError::Anonymous => ApiError::AnonForbiddenWorker,
            PopError::UnknownUser => ApiError::InvalidApiKey,
            PopError::WrongCredentials => {
                ApiError::WrongCredentials("this worker name belongs to another user")
            }
            PopError::Maintenance => ApiError::WorkerMaintenance,
            PopError::InvalidName { .. } => ApiError::invalid(Rc::ValidationError, "name", message),
            PopError::InvalidModelName { .. } => {
                ApiError::invalid(Rc::ValidationError, "models", message)
            }
            PopError::NoModels => ApiError::invalid(Rc::ValidationError, "models", message),
            PopError::OutOfRange { field, .. } => {
                ApiError::invalid(Rc::ValidationError, field, message)
            }
            PopError::OverLimit(limit) => {
                ApiError::invalid(Rc::ValidationError, limit.field, message)
            }
            PopError::TooManyWorkers { .. } => ApiError::Forbidden {
                rc: Rc::TooManyWorkers,
                message,
            },
            PopError::OwnerFlagged => ApiError::Forbidden {
                rc: Rc::WorkerFlaggedMaintenance,
                message,
            },
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::UnknownJob => ApiError::not_found(Rc::InvalidJobID, "no such job"),
            SubmitError::WrongCredentials => {
                ApiError::WrongCredentials("this job belongs to another user's worker")
            }
            SubmitError::Duplicate => ApiError::DuplicateGen,
            SubmitError::Aborted => ApiError::AbortedGen,
            SubmitError::Ledger(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<TransferError> for ApiError {
    fn from(e: TransferError) -> Self {
        let message = e.to_string();
        let amount = |rc| ApiError::invalid(rc, "amount", message.clone());
        match e {
            TransferError::UnknownUser => ApiError::not_found(Rc::UserNotFound, "no such user"),
            TransferError::Flagged => ApiError::Forbidden {
                rc: Rc::SourceAccountFlagged,
                message,
            },
            TransferError::Ledger(LedgerError::NotPositive) => {
                amount(Rc::InvalidKudosTransferAmount)
            }
            TransferError::Ledger(LedgerError::Negative) => amount(Rc::NegativeKudosTransfer),
            TransferError::Ledger(LedgerError::ToSelf) => amount(Rc::KudosTransferToSelf),
            TransferError::Ledger(LedgerError::FromAnonymous) => amount(Rc::KudosTransferFromAnon),
            TransferError::Ledger(LedgerError::ToAnonymous) => amount(Rc::KudosTransferToAnon),
            TransferError::Ledger(LedgerError::NotEnough { .. }) => {
                amount(Rc::KudosTransferNotEnough)
            }
            TransferError::Ledger(LedgerError::Overflow) => amount(Rc::InvalidKudosTransferAmount),
        }
    }
}

impl From<horde_core::WorkerDeleteError> for ApiError {
    fn from(e: horde_core::WorkerDeleteError) -> Self {
        use horde_core::WorkerDeleteError;
        match e {
            WorkerDeleteError::UnknownWorker => {
                ApiError::not_found(Rc::WorkerNotFound, "no such worker")
            }
            WorkerDeleteError::WrongCredentials => {
                ApiError::WrongCredentials("this worker belongs to another user")
            }
            WorkerDeleteError::UnderSuspicion => ApiError::Forbidden {
                rc: Rc::Locked,
                message: e.to_string(),
            },
        }
    }
}

impl From<horde_core::TeamError> for ApiError {
    fn from(e: horde_core::TeamError) -> Self {
        use horde_core::TeamError;
        let message = e.to_string();
        match e {
            TeamError::UnknownTeam => ApiError::not_found(Rc::TeamNotFound, message),
            TeamError::WrongCredentials => {
                ApiError::WrongCredentials("this team belongs to another user")
            }
            TeamError::NotTrusted => ApiError::Forbidden {
                rc: Rc::UntrustedTeamCreation,
                message,
            },
            TeamError::NameTaken => ApiError::invalid(Rc::BadRequest, "name", message),
            TeamError::InvalidName { .. } => {
                ApiError::invalid(Rc::ValidationError, "name", message)
            }
            TeamError::InfoTooLong => ApiError::invalid(Rc::ValidationError, "info", message),
            TeamError::TooManyTeams => ApiError::Forbidden {
                rc: Rc::Forbidden,
                message,
            },
        }
    }
}

impl From<WorkerUpdateError> for ApiError {
    fn from(e: WorkerUpdateError) -> Self {
        match &e {
            WorkerUpdateError::UnknownWorker => {
                ApiError::not_found(Rc::WorkerNotFound, "no such worker")
            }
            WorkerUpdateError::WrongCredentials => {
                ApiError::WrongCredentials("this worker belongs to another user")
            }
            WorkerUpdateError::NameTaken => ApiError::invalid(
                Rc::WorkerNameAlreadyExists,
                "name",
                "another worker already has this name",
            ),
            WorkerUpdateError::InvalidName { .. } => {
                ApiError::invalid(Rc::ValidationError, "name", e.to_string())
            }
            WorkerUpdateError::UnknownTeam => ApiError::not_found(Rc::TeamNotFound, "no such team"),
        }
    }
}
