//! The errors that end the worker, each with the exit code it leaves with.

/// Why the worker stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    /// A setting is missing or wrong.
    #[error("{0}")]
    Config(String),
    /// The horde refused the worker for good (wrong key, a name owned by someone else).
    #[error("the horde refused this worker: {0}")]
    Refused(String),
    /// `--check` found a problem.
    #[error("check failed: {0}")]
    Check(String),
}

impl WorkerError {
    /// The process exit code: 2 for settings, 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            WorkerError::Config(_) => 2,
            WorkerError::Refused(_) | WorkerError::Check(_) => 1,
        }
    }
}
