//! `horde-server`: command line, logging, signals. Everything else is in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use horde_server::{serve, Clock, Config, Driver};
use tokio::net::TcpListener;

/// A horde server speaking the AI Horde v2 text API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "HORDE_LISTEN", default_value = "127.0.0.1:7001")]
    listen: SocketAddr,
    /// SQLite database file (created and migrated on first start).
    #[arg(long, env = "HORDE_DB", default_value = "horde.sqlite")]
    db: PathBuf,
    /// Turn off `POST /api/v2/register` (also HORDE_REGISTRATION=off).
    #[arg(long)]
    no_registration: bool,
    /// Registrations allowed per IP address per minute.
    #[arg(long, env = "HORDE_REGISTRATIONS_PER_MINUTE", default_value_t = 10)]
    registrations_per_minute: u32,
    /// Administrators, as `alias#id` separated by commas.
    #[arg(long, env = "HORDE_ADMINS", value_delimiter = ',')]
    admins: Vec<String>,
    /// Cap the database at this many 4 KiB pages. At the cap, commits fail and the server
    /// stops as it does when the disk is full (exit status 1), keeping everything acknowledged.
    #[arg(long, env = "HORDE_MAX_DB_PAGES")]
    max_db_pages: Option<u32>,
}

fn parse_admin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (alias, id) = text
        .rsplit_once('#')
        .ok_or_else(|| format!("admin {text:?} is not alias#id"))?;
    if alias.is_empty() || id.parse::<u64>().is_err() {
        return Err(format!("admin {text:?} is not alias#id"));
    }
    Ok(text.to_owned())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let registration_env_off = std::env::var("HORDE_REGISTRATION")
        .map(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "off" | "0" | "false" | "no"
            )
        })
        .unwrap_or(false);
    let admins = match args
        .admins
        .iter()
        .filter(|a| !a.trim().is_empty())
        .map(|a| parse_admin(a))
        .collect()
    {
        Ok(admins) => admins,
        Err(e) => {
            eprintln!("horde-server: {e}");
            return ExitCode::from(2);
        }
    };
    let config = Config {
        db: args.db,
        registration: !(args.no_registration || registration_env_off),
        registrations_per_minute: args.registrations_per_minute,
        admins,
        max_db_pages: args.max_db_pages,
        ..Config::default()
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("horde-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let state =
            match tokio::task::spawn_blocking(move || Driver::open(config, Clock::System)).await {
                Ok(Ok(state)) => state,
                Ok(Err(e)) => {
                    eprintln!("horde-server: cannot open the database: {e}");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("horde-server: {e}");
                    return ExitCode::FAILURE;
                }
            };
        let listener = match TcpListener::bind(args.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("horde-server: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(listen = %args.listen, "horde-server ready");
        match serve(listener, state, shutdown_signal()).await {
            Ok(()) => {
                tracing::info!("stopped cleanly");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("horde-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
