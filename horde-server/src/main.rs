//! `horde-server`: command line, configuration file, logging, signals. Everything else is in
//! the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use horde_server::config::ConfigError;
use horde_server::driver::OpenError;
use horde_server::node::{serve_node, NodeError};
use horde_server::{Clock, Config, Driver};
use ipnet::IpNet;

/// A horde server speaking the AI Horde v2 text API.
///
/// Settings come from flags, then environment variables, then the `--config` file, then the
/// defaults; `--print-config` shows the result.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A TOML configuration file (every setting; see `--print-config`).
    #[arg(long, global = true, env = "HORDE_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long, global = true)]
    print_config: bool,
    /// Address to listen on [default: 127.0.0.1:7001].
    #[arg(long, global = true, env = "HORDE_LISTEN")]
    listen: Option<SocketAddr>,
    /// SQLite database file, created and migrated on first start [default: horde.sqlite];
    /// or a PostgreSQL URL (`postgres://user:password@host:port/dbname`), on which several
    /// nodes run as one active and standbys.
    #[arg(long, global = true, env = "HORDE_DB")]
    db: Option<PathBuf>,
    /// Turn off `POST /api/v2/register` (also HORDE_REGISTRATION=off).
    #[arg(long, global = true)]
    no_registration: bool,
    /// Registrations allowed per IP address per minute [default: 10].
    #[arg(long, global = true, env = "HORDE_REGISTRATIONS_PER_MINUTE")]
    registrations_per_minute: Option<u32>,
    /// Administrators, as `alias#id` separated by commas: users registered before the server
    /// starts, alias exactly as registered (others are ignored with a warning). `create-admin`
    /// is the safer way.
    #[arg(long, global = true, env = "HORDE_ADMINS", value_delimiter = ',')]
    admins: Option<Vec<String>>,
    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For is
    /// believed for rate limits.
    #[arg(
        long,
        global = true,
        env = "HORDE_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    trusted_proxy: Option<Vec<String>>,
    /// Cap the database at this many 4 KiB pages. At the cap, commits fail and the server
    /// stops as it does when the disk is full (exit status 1), keeping everything acknowledged.
    #[arg(long, global = true, env = "HORDE_MAX_DB_PAGES")]
    max_db_pages: Option<u32>,
    /// A model reference file (TOML `[[model]]` entries: name, params_b, context, aliases)
    /// added to the default one. Reloaded on SIGHUP.
    #[arg(long, global = true, env = "HORDE_MODEL_REFERENCE")]
    model_reference: Option<PathBuf>,
    /// Use only --model-reference, without the default reference.
    #[arg(long, global = true)]
    model_reference_replaces_default: bool,
    /// The spot checks' prompts (TOML `[[canary]]` entries with a `prompt`) instead of the
    /// shipped ones, which everyone can read. Reloaded on SIGHUP.
    #[arg(long, global = true, env = "HORDE_CANARIES")]
    canaries: Option<PathBuf>,
    /// The horde's public base URL, e.g. https://horde.example.org: OAuth callbacks are built
    /// on it, and session cookies are Secure when it is https.
    #[arg(long, global = true, env = "HORDE_PUBLIC_URL")]
    public_url: Option<String>,
    /// The GitHub OAuth application's client id: enables "Sign in with GitHub".
    #[arg(long, global = true, env = "HORDE_OAUTH_GITHUB_CLIENT_ID")]
    oauth_github_client_id: Option<String>,
    /// The GitHub OAuth application's client secret.
    #[arg(
        long,
        global = true,
        env = "HORDE_OAUTH_GITHUB_CLIENT_SECRET",
        hide_env_values = true
    )]
    oauth_github_client_secret: Option<String>,
    /// The Discord OAuth application's client id: enables "Sign in with Discord".
    #[arg(long, global = true, env = "HORDE_OAUTH_DISCORD_CLIENT_ID")]
    oauth_discord_client_id: Option<String>,
    /// The Discord OAuth application's client secret.
    #[arg(
        long,
        global = true,
        env = "HORDE_OAUTH_DISCORD_CLIENT_SECRET",
        hide_env_values = true
    )]
    oauth_discord_client_secret: Option<String>,
    /// The Google OAuth client's id: enables "Sign in with Google".
    #[arg(long, global = true, env = "HORDE_OAUTH_GOOGLE_CLIENT_ID")]
    oauth_google_client_id: Option<String>,
    /// The Google OAuth client's secret.
    #[arg(
        long,
        global = true,
        env = "HORDE_OAUTH_GOOGLE_CLIENT_SECRET",
        hide_env_values = true
    )]
    oauth_google_client_secret: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an administrator on the database and print their API key once. Run it with the
    /// server stopped (it refuses a database in use): nobody can take the name first.
    CreateAdmin {
        /// The administrator's alias.
        name: String,
    },
}

/// Builds the effective configuration: defaults, then the file, then env and flags.
fn configure(args: &Args) -> Result<Config, ConfigError> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(db) = &args.db {
        config.db = db.clone();
    }
    let registration_env_off = std::env::var("HORDE_REGISTRATION").is_ok_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        )
    });
    if args.no_registration || registration_env_off {
        config.registration = false;
    }
    if let Some(n) = args.registrations_per_minute {
        config.registrations_per_minute = n;
    }
    if let Some(admins) = &args.admins {
        config.admins = admins
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
    }
    if let Some(proxies) = &args.trusted_proxy {
        config.trusted_proxies = proxies
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(parse_proxy)
            .collect::<Result<_, _>>()?;
    }
    if args.max_db_pages.is_some() {
        config.max_db_pages = args.max_db_pages;
    }
    if let Some(path) = &args.model_reference {
        config.model_reference = Some(path.clone());
    }
    if args.model_reference_replaces_default {
        config.model_reference_replaces_default = true;
    }
    if let Some(path) = &args.canaries {
        config.canaries = Some(path.clone());
    }
    if let Some(url) = &args.public_url {
        config.public_url = Some(url.trim().trim_end_matches('/').to_owned());
    }
    oauth_provider(
        &mut config.oauth.github,
        "GITHUB",
        &args.oauth_github_client_id,
        &args.oauth_github_client_secret,
    );
    oauth_provider(
        &mut config.oauth.discord,
        "DISCORD",
        &args.oauth_discord_client_id,
        &args.oauth_discord_client_secret,
    );
    oauth_provider(
        &mut config.oauth.google,
        "GOOGLE",
        &args.oauth_google_client_id,
        &args.oauth_google_client_secret,
    );
    config.validate()?;
    Ok(config)
}

/// An address or a CIDR range.
fn parse_proxy(text: &str) -> Result<IpNet, ConfigError> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ConfigError::Invalid(format!(
                "trusted proxy {text:?} is not an address or a CIDR range"
            ))
        })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = match configure(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("horde-server: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("horde-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        if let Some(Command::CreateAdmin { name }) = &args.command {
            return match open(config).await {
                Some(driver) => create_admin(driver, name).await,
                None => ExitCode::FAILURE,
            };
        }
        let listen = config.listen;
        let listener = match std::net::TcpListener::bind(listen) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("horde-server: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(%listen, "horde-server listening");
        let on_active = |driver: &Driver| {
            tracing::info!(%listen, "horde-server ready");
            reload_on_sighup(driver.clone());
        };
        match serve_node(
            listener,
            config,
            Clock::System,
            shutdown_signal(),
            on_active,
        )
        .await
        {
            Ok(()) => {
                tracing::info!("stopped cleanly");
                ExitCode::SUCCESS
            }
            Err(NodeError::Open(OpenError::Store(e))) => {
                eprintln!("horde-server: cannot open the database: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("horde-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Opens the database for a one-off command (no standby: a database in use is refused).
async fn open(config: Config) -> Option<Driver> {
    match tokio::task::spawn_blocking(move || Driver::open(config, Clock::System)).await {
        Ok(Ok(driver)) => Some(driver),
        Ok(Err(OpenError::Store(e))) => {
            eprintln!("horde-server: cannot open the database: {e}");
            None
        }
        Ok(Err(e)) => {
            eprintln!("horde-server: {e}");
            None
        }
        Err(e) => {
            eprintln!("horde-server: {e}");
            None
        }
    }
}

async fn create_admin(driver: Driver, name: &str) -> ExitCode {
    let result = horde_server::ops::users::create_admin(&driver, name).await;
    let closing = driver.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    match result {
        Ok((row, key)) => {
            println!("administrator {}#{} created", row.alias, row.id.0);
            println!("API key (shown once, keep it safe): {key}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("horde-server: cannot create the administrator: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reloads the model reference on each SIGHUP.
fn reload_on_sighup(driver: Driver) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let kind = tokio::signal::unix::SignalKind::hangup();
        let Ok(mut hangups) = tokio::signal::unix::signal(kind) else {
            return;
        };
        while hangups.recv().await.is_some() {
            if let Err(e) = horde_server::ops::reference::reload(&driver).await {
                tracing::error!(error = %e, "the model reference was not reloaded");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = driver;
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

/// Applies a provider's flags (or their environment variables) and its endpoint overrides
/// (`HORDE_OAUTH_<NAME>_AUTH_URL`, `_TOKEN_URL`, `_USER_URL`) over the file's settings.
fn oauth_provider(
    provider: &mut Option<horde_server::config::OAuthProvider>,
    name: &str,
    client_id: &Option<String>,
    client_secret: &Option<String>,
) {
    if let Some(id) = client_id {
        let entry = provider.get_or_insert_with(|| horde_server::config::OAuthProvider {
            client_id: String::new(),
            client_secret: String::new(),
            auth_url: None,
            token_url: None,
            user_url: None,
        });
        entry.client_id = id.trim().to_owned();
    }
    let Some(entry) = provider.as_mut() else {
        return;
    };
    if let Some(secret) = client_secret {
        entry.client_secret = secret.trim().to_owned();
    }
    let env = |what: &str| {
        std::env::var(format!("HORDE_OAUTH_{name}_{what}_URL"))
            .ok()
            .filter(|v| !v.trim().is_empty())
    };
    if let Some(url) = env("AUTH") {
        entry.auth_url = Some(url);
    }
    if let Some(url) = env("TOKEN") {
        entry.token_url = Some(url);
    }
    if let Some(url) = env("USER") {
        entry.user_url = Some(url);
    }
}
