//! `CliError`: every way a command fails, each with its exit status and a hint of what to do.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The horde refused (exit status 1): its message and code.
    #[error("{message} ({rc}){hint}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The horde's error code.
        rc: String,
        /// The horde's message.
        message: String,
        /// What to do next, if we know.
        hint: String,
    },
    /// The horde could not be reached, or answered something that is not its API (exit
    /// status 2).
    #[error("{0}")]
    Connection(String),
    /// The command line or the config file is wrong (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The user stopped the command with Ctrl-C (exit status 130).
    #[error("interrupted")]
    Interrupted,
}

impl CliError {
    /// The process exit status for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Server { .. } => 1,
            CliError::Connection(_) | CliError::Usage(_) => 2,
            CliError::Interrupted => 130,
        }
    }
}
