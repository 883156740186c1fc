//! The commands, one module per area.

pub(crate) mod account;
pub(crate) mod config;
pub(crate) mod generate;
pub(crate) mod horde;
pub(crate) mod workers;

use std::io::{BufRead, IsTerminal, Write};

use crate::error::CliError;

/// Asks a yes/no question on the terminal. Without a terminal there is nobody to ask, so
/// the answer is an error that says how to confirm from a script.
pub(crate) fn confirm(question: &str, flag: &str) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "{question} — there is no terminal to confirm on; pass {flag} to confirm"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
