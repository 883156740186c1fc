//! `horde-cli`: a command line for a horde's HTTP API, for people (tables, a live spinner) and
//! scripts (`--json`, exit codes: 0 ok, 1 the horde said no, 2 usage or connection error,
//! 130 interrupted).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

mod cli;
mod client;
mod commands;
mod error;
mod output;
mod settings;

use cli::{
    Cli, Command, ConfigCommand, Shell, UserCommand, UsersCommand, WorkerCommand, WorkersCommand,
};
use client::Client;
use commands::{account, config, generate, horde, workers};
use error::CliError;
use settings::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("horde-cli: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("horde-cli: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    if let Command::Completions { shell } = cli.command {
        let shell = match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
            Shell::Powershell => clap_complete::Shell::PowerShell,
        };
        // Written whole, and a reader that stops early (`| head -1`) ends it quietly.
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "horde-cli", &mut script);
        let mut out = std::io::stdout();
        if let Err(e) = std::io::Write::write_all(&mut out, &script)
            .and_then(|()| std::io::Write::flush(&mut out))
        {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(CliError::Usage(format!(
                    "cannot write the completions: {e}"
                )));
            }
        }
        return Ok(());
    }
    let settings = Settings::resolve(&cli.global)?;
    // A key given by flag or environment (not the profile's), for `login`.
    let given_key = cli.global.api_key.clone();
    let client = Client::new(&settings)?;
    let s = &settings;
    match cli.command {
        Command::Register { name, save } => account::register(&client, s, &name, save).await,
        Command::Whoami => account::whoami(&client, s).await,
        Command::Balance => account::balance(&client, s).await,
        Command::Transfer { user, amount, yes } => {
            account::transfer(&client, s, &user, amount, yes).await
        }
        Command::User {
            command: UserCommand::Show { user },
        } => account::user_show(&client, s, &user).await,
        Command::Users {
            command: UsersCommand::List { sort, page },
        } => account::users_list(&client, s, sort, page).await,
        Command::Workers {
            command: WorkersCommand::List { mine },
        } => workers::list(&client, s, mine).await,
        Command::Worker { command } => match command {
            WorkerCommand::Show { worker } => workers::show(&client, s, &worker).await,
            WorkerCommand::Maintenance {
                worker,
                state,
                message,
            } => {
                let change = workers::maintenance_change(state, message);
                workers::change(&client, s, &worker, change).await
            }
            WorkerCommand::Rename { worker, name } => {
                let change = horde_api::WorkerUpdateRequest {
                    name: Some(name),
                    ..horde_api::WorkerUpdateRequest::default()
                };
                workers::change(&client, s, &worker, change).await
            }
            WorkerCommand::Info { worker, text } => {
                let change = horde_api::WorkerUpdateRequest {
                    info: Some(text),
                    ..horde_api::WorkerUpdateRequest::default()
                };
                workers::change(&client, s, &worker, change).await
            }
        },
        Command::Generate(args) => generate::generate(&client, s, &args).await,
        Command::Status { id: Some(id) } => generate::status(&client, s, &id).await,
        Command::Status { id: None } => horde::status(&client, s).await,
        Command::Cancel { id } => generate::cancel(&client, s, &id).await,
        Command::Models => horde::models(&client, s).await,
        Command::Config {
            command: ConfigCommand::Path,
        } => {
            if s.json {
                /// `config path --json`.
                #[derive(serde::Serialize)]
                struct ConfigPath<'a> {
                    path: &'a std::path::Path,
                    profile: &'a str,
                }
                output::json(&ConfigPath {
                    path: &s.config_path,
                    profile: &s.profile,
                });
            } else {
                println!("{}", s.config_path.display());
            }
            Ok(())
        }
        Command::Login => config::login(s, given_key).await,
        Command::Config {
            command: ConfigCommand::Profiles,
        } => config::profiles(s),
        Command::Config {
            command: ConfigCommand::Set { key, value },
        } => config::set(s, key, &value),
        Command::Config {
            command: ConfigCommand::UseProfile { name },
        } => config::use_profile(s, &name),
        Command::Completions { .. } => Ok(()),
    }
}
