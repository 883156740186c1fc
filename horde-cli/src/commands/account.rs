//! Users and kudos: register, whoami, balance, transfer, user show, users list.

use std::io::IsTerminal;

use horde_api::{Registered, TransferRequest, UserDetails, UserKudosDetails};
use horde_core::Kudos;
use serde::Serialize;

use super::confirm;
use crate::cli::UserSort;
use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::settings::Settings;

pub(crate) async fn register(
    client: &Client,
    settings: &Settings,
    name: &str,
    save: bool,
) -> Result<(), CliError> {
    // A saved key is never overwritten: refused before anything is registered.
    let holds_key = settings.saved_key()?.is_some();
    if save && holds_key {
        return Err(CliError::Usage(format!(
            "profile {:?} of {} already holds a key, which --save would overwrite; nothing was \
             registered. Use another profile (--profile NAME --save) or remove that key first",
            settings.profile,
            settings.config_path.display()
        )));
    }
    let answer = client.ask(client.api().register(name)).await?;
    let key = answer.api_key.clone();
    if settings.json {
        if save {
            settings.save_key(&key)?;
        }
        /// `register --json`: the answer, and whether the key was saved.
        #[derive(Serialize)]
        struct Shown {
            #[serde(flatten)]
            answer: Registered,
            saved: bool,
        }
        output::json(&Shown {
            answer,
            saved: save,
        });
        return Ok(());
    }
    // The key is shown before anything is asked: an interrupted question loses nothing.
    println!("Registered {}.", answer.username);
    println!("API key: {key}");
    println!("This is the only time the horde shows it.");
    let save = save
        || (!holds_key
            && std::io::stdin().is_terminal()
            && confirm(
                &format!(
                    "Save the key in profile {:?} of {}?",
                    settings.profile,
                    settings.config_path.display()
                ),
                "--save",
            )?);
    if save {
        settings.save_key(&key)?;
        println!(
            "Saved in profile {:?} of {}.",
            settings.profile,
            settings.config_path.display()
        );
    } else {
        println!(
            "Keep it: pass it as --api-key, set HORDE_API_KEY, or write it as api_key = \"…\" \
             under [profiles.{}] in {} (registering again would make another account).",
            settings.profile,
            settings.config_path.display()
        );
    }
    Ok(())
}

/// `GET /find_user`, refusing to run anonymously (the answer would be the shared account).
async fn me(client: &Client) -> Result<UserDetails, CliError> {
    if !client.has_key() {
        return Err(CliError::Usage(
            "this needs your API key: pass --api-key, set HORDE_API_KEY, save one you have with \
             `horde-cli login`, or register with `horde-cli register NAME --save`"
                .into(),
        ));
    }
    client
        .ask(client.api().find_user())
        .await
        .map_err(crate::client::unknown_key)
}

pub(crate) async fn whoami(client: &Client, settings: &Settings) -> Result<(), CliError> {
    let user = me(client).await?;
    if settings.json {
        output::json(&user);
    } else {
        print_user(&user);
    }
    Ok(())
}

pub(crate) async fn balance(client: &Client, settings: &Settings) -> Result<(), CliError> {
    let user = me(client).await?;
    if settings.json {
        /// `balance --json`.
        #[derive(Serialize)]
        struct Balance<'a> {
            username: &'a str,
            kudos: Kudos,
            kudos_details: &'a UserKudosDetails,
        }
        output::json(&Balance {
            username: &user.username,
            kudos: user.kudos,
            kudos_details: &user.kudos_details,
        });
        return Ok(());
    }
    println!("{} has {} kudos", user.username, user.kudos);
    print_details(&user.kudos_details);
    Ok(())
}

fn print_details(details: &UserKudosDetails) {
    output::fields(&[
        ("accumulated", details.accumulated.to_string()),
        ("gifted", details.gifted.to_string()),
        ("received", details.received.to_string()),
        ("awarded", details.awarded.to_string()),
        ("uptime", details.uptime.to_string()),
        ("admin", details.admin.to_string()),
    ]);
}

fn print_user(user: &UserDetails) {
    output::fields(&[
        ("username", user.username.clone()),
        ("kudos", user.kudos.to_string()),
        ("concurrency", user.concurrency.to_string()),
        ("trusted", user.trusted.to_string()),
        ("workers", user.worker_count.to_string()),
        (
            "tokens generated",
            user.records.contribution.tokens.to_string(),
        ),
        ("account age", output::age(user.account_age)),
    ]);
    print_details(&user.kudos_details);
}

/// A random `Idempotency-Key`, so that a retried transfer never pays twice.
fn idempotency_key() -> Result<String, CliError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| CliError::Usage(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) async fn transfer(
    client: &Client,
    settings: &Settings,
    user: &str,
    amount: f64,
    yes: bool,
) -> Result<(), CliError> {
    if !(amount.is_finite() && amount > 0.0) {
        return Err(CliError::Usage(
            "the amount must be a number above 0".into(),
        ));
    }
    let sender = me(client).await?;
    // Refused before anything is asked: the horde would refuse it too.
    if sender.kudos.as_f64() < amount {
        return Err(CliError::Server {
            status: 400,
            rc: "KudosTransferNotEnough".into(),
            message: format!(
                "{} holds {} kudos, less than the {amount} to give",
                sender.username, sender.kudos
            ),
            hint: crate::client::hint(
                horde_api::StatusCode::BAD_REQUEST,
                "KudosTransferNotEnough",
                true,
            ),
        });
    }
    let receiver = lookup_user(client, user).await?;
    if !yes
        && !confirm(
            &format!(
                "Give {amount} kudos from {} (holding {}) to {}?",
                sender.username, sender.kudos, receiver.username
            ),
            "--yes",
        )?
    {
        return Err(CliError::Usage("not transferred".into()));
    }
    // One key for this transfer: if the answer is lost on the way and we send it again, the
    // horde recognises the key and does not pay twice.
    let key = idempotency_key()?;
    let body = TransferRequest {
        username: receiver.username.clone(),
        amount: serde_json::Value::from(amount),
    };
    let mut attempts = 0;
    let answer = loop {
        attempts += 1;
        let sent = client.ask(client.api().transfer(&body, Some(&key))).await;
        match sent {
            Err(CliError::Connection(e)) if attempts < 3 => {
                eprintln!("{e}\nretrying the same transfer (it will not pay twice)");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => break other?,
        }
    };
    let after = me(client).await?;
    if settings.json {
        /// `transfer --json`.
        #[derive(Serialize)]
        struct Transfer<'a> {
            transferred: Kudos,
            to: &'a str,
            kudos: Kudos,
        }
        output::json(&Transfer {
            transferred: answer.transferred,
            to: &receiver.username,
            kudos: after.kudos,
        });
    } else {
        println!(
            "Gave {} kudos to {}. Your balance: {}",
            answer.transferred, receiver.username, after.kudos
        );
    }
    Ok(())
}

/// The numeric id of `alias#id` or `id`.
fn user_id(user: &str) -> Result<u64, CliError> {
    let id = user.rsplit_once('#').map_or(user, |(_, id)| id);
    id.trim().parse().map_err(|_| {
        CliError::Usage(format!(
            "{user:?} is not a user: write alias#id (as `horde-cli users list` shows) or the id"
        ))
    })
}

/// The user `user` (`alias#id` or id) names; with an alias, it must be theirs.
async fn lookup_user(client: &Client, user: &str) -> Result<UserDetails, CliError> {
    let answer = client.ask(client.api().user(user_id(user)?)).await?;
    if let Some((alias, _)) = user.rsplit_once('#') {
        let name = &answer.username;
        let matches = name
            .rsplit_once('#')
            .is_some_and(|(a, _)| a.eq_ignore_ascii_case(alias.trim()));
        if !matches {
            return Err(CliError::Server {
                status: 404,
                rc: "UserNotFound".into(),
                message: format!("no user {user} (that id is {name})"),
                hint: String::new(),
            });
        }
    }
    Ok(answer)
}

pub(crate) async fn user_show(
    client: &Client,
    settings: &Settings,
    user: &str,
) -> Result<(), CliError> {
    let answer = lookup_user(client, user).await?;
    if settings.json {
        output::json(&answer);
    } else {
        print_user(&answer);
    }
    Ok(())
}

pub(crate) async fn users_list(
    client: &Client,
    settings: &Settings,
    sort: UserSort,
    page: u32,
) -> Result<(), CliError> {
    let sort = match sort {
        UserSort::Kudos => "kudos",
        UserSort::Age => "age",
    };
    let answer = client.ask(client.api().users(page.max(1), sort)).await?;
    if settings.json {
        output::json(&answer);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = answer
        .iter()
        .map(|u| {
            vec![
                u.username.clone(),
                u.kudos.to_string(),
                u.worker_count.to_string(),
                output::age(u.account_age),
            ]
        })
        .collect();
    output::table(&["USER", "KUDOS", "WORKERS", "AGE"], &rows);
    Ok(())
}
