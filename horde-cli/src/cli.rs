//! The command line: every command, argument and global option.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Talk to a horde: balances, transfers, users, workers and text generation.
///
/// Settings come from flags, then environment variables, then the profile in the config file
/// (`horde-cli config path` shows where it is), then the defaults.
#[derive(Debug, Parser)]
#[command(name = "horde-cli", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The horde's base URL [default: http://127.0.0.1:7001].
    #[arg(long, env = "HORDE_URL", global = true, hide_env_values = true)]
    pub(crate) url: Option<String>,
    /// Your API key (anonymous when unset). Keys may start with `-`.
    #[arg(
        long,
        env = "HORDE_API_KEY",
        global = true,
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub(crate) api_key: Option<String>,
    /// The profile of the config file to use [default: the file's `default_profile`].
    #[arg(long, env = "HORDE_PROFILE", global = true, hide_env_values = true)]
    pub(crate) profile: Option<String>,
    /// The config file [default: in your user config directory].
    #[arg(long, env = "HORDE_CLI_CONFIG", global = true, hide_env_values = true)]
    pub(crate) config: Option<PathBuf>,
    /// Print JSON (stable field names) instead of text for people.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Register a new user; prints the API key once.
    Register {
        /// The alias; the horde adds `#id`.
        name: String,
        /// Save the key in the config file's profile without asking.
        #[arg(long)]
        save: bool,
    },
    /// Show who the API key belongs to, with balance and kudos details.
    Whoami,
    /// Show your kudos balance and where it came from.
    Balance,
    /// Give kudos to another user.
    Transfer {
        /// The receiver, as `alias#id`.
        user: String,
        /// How many kudos (up to three decimals).
        #[arg(allow_negative_numbers = true)]
        amount: f64,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// One user.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// All users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// All workers.
    Workers {
        #[command(subcommand)]
        command: WorkersCommand,
    },
    /// One worker: show it, or (as its owner) change it.
    Worker {
        #[command(subcommand)]
        command: WorkerCommand,
    },
    /// Generate text: queue a prompt, wait for it, print the text.
    Generate(GenerateArgs),
    /// Show a generation request's progress.
    Status {
        /// The request id (what `generate --no-wait` printed).
        id: Option<String>,
    },
    /// Cancel a generation request (what is done stays done and paid).
    Cancel {
        /// The request id.
        id: String,
    },
    /// The models the horde's workers serve, with queues and speed.
    Models,
    /// Print shell completions for bash, zsh, fish or PowerShell (`--help` says where to put
    /// them).
    ///
    /// bash: `horde-cli completions bash > ~/.local/share/bash-completion/completions/horde-cli`
    ///
    /// zsh: `horde-cli completions zsh > ~/.zfunc/_horde-cli`, with `fpath+=~/.zfunc` before
    /// `compinit` in `~/.zshrc`
    ///
    /// fish: `horde-cli completions fish > ~/.config/fish/completions/horde-cli.fish`
    ///
    /// PowerShell: add `horde-cli completions powershell | Out-String | Invoke-Expression` to
    /// the file `$PROFILE` names
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Save an API key you already have (from the horde's web page) in a profile, after
    /// checking it with the horde. The key is read from standard input (asked for on a
    /// terminal), or taken from --api-key / HORDE_API_KEY.
    Login,
    /// The config file: where it is, its profiles, and setting them.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Show a user by `alias#id` or id.
    Show {
        /// `alias#id` or the numeric id.
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// List users, 25 a page.
    List {
        /// Order.
        #[arg(long, value_enum, default_value_t = UserSort::Kudos)]
        sort: UserSort,
        /// Page, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum UserSort {
    Kudos,
    Age,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkersCommand {
    /// List workers.
    List {
        /// Only yours.
        #[arg(long)]
        mine: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkerCommand {
    /// Show a worker by name or id.
    Show {
        /// The worker's name or id.
        worker: String,
    },
    /// Turn maintenance on or off (a worker in maintenance serves only its owner).
    Maintenance {
        /// The worker's name or id.
        worker: String,
        /// `on` or `off`.
        state: OnOff,
        /// A message shown to you while it is in maintenance.
        #[arg(long)]
        message: Option<String>,
    },
    /// Rename a worker.
    Rename {
        /// The worker's name or id.
        worker: String,
        /// The new name.
        name: String,
    },
    /// Set the worker's info text.
    Info {
        /// The worker's name or id.
        worker: String,
        /// The text (at most 1,000 characters).
        text: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The prompt (or use --file).
    pub(crate) prompt: Option<String>,
    /// Read the prompt from this file (`-` for standard input).
    #[arg(long, short, conflicts_with = "prompt")]
    pub(crate) file: Option<PathBuf>,
    /// A model to accept (repeat for several; none: any).
    #[arg(long = "model", short)]
    pub(crate) models: Vec<String>,
    /// Tokens to generate.
    #[arg(long, default_value_t = 80)]
    pub(crate) max_length: u32,
    /// Tokens of context.
    #[arg(long)]
    pub(crate) max_context_length: Option<u32>,
    /// Generations wanted.
    #[arg(short, long, default_value_t = 1)]
    pub(crate) n: u32,
    /// Sampling temperature.
    #[arg(long)]
    pub(crate) temperature: Option<f64>,
    /// Seconds between status checks.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) poll_secs: f64,
    /// Queue the request, print its id and return without waiting.
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// Print the text as the worker generates it even when the output is not a terminal (it
    /// is streamed on a terminal anyway; one generation only).
    #[arg(long, conflicts_with_all = ["no_stream", "no_wait"])]
    pub(crate) stream: bool,
    /// Wait for the whole text instead of printing it as it is generated.
    #[arg(long)]
    pub(crate) no_stream: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the config file's path.
    Path,
    /// List the profiles: their horde, whether they hold a key, which is the default.
    Profiles,
    /// Set a value of the profile in use (--profile, else the default one; created if new).
    Set {
        /// `url` or `api-key`.
        key: ConfigKey,
        /// The value (a key replaced is printed, so that it is not lost).
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Make a profile the default one.
    UseProfile {
        /// The profile's name.
        name: String,
    },
}

/// What `config set` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConfigKey {
    Url,
    ApiKey,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}
