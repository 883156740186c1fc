//! `horde-worker`: the bridge a volunteer runs beside KoboldAI, KoboldCpp or an
//! OpenAI-compatible server. It pops jobs from a horde, generates them on the backend and
//! submits the results; the kudos go to the owner of the API key.

mod backend;
mod backoff;
mod error;
mod horde;
mod progress;
mod report;
mod run;
mod saved_key;
mod settings;
mod yielding;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::error::WorkerError;
use crate::run::Worker;
use crate::settings::{Cli, LogFormat, Settings};

fn main() -> ExitCode {
    let settings = match Settings::resolve(Cli::parse()) {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    init_logging(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&WorkerError::Config(format!("cannot start: {e}"))),
    };
    let result = runtime.block_on(async move {
        let worker = Worker::new(settings.clone())?;
        if settings.check {
            worker.check().await
        } else {
            worker.run().await.map(drop)
        }
    });
    // Whatever still hangs (a lookup of a host that never answers) does not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Prints `error` and returns its exit code.
fn fail(error: &WorkerError) -> ExitCode {
    eprintln!("horde-worker: {error}");
    ExitCode::from(error.exit_code())
}

/// Logs to stdout at `info` (`RUST_LOG` overrides), as text (coloured on a terminal only) or
/// JSON lines.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
