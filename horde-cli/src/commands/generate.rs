//! Text generation: generate (queue, wait with a live spinner, print), status, cancel.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::cli::GenerateArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::settings::Settings;

/// The prompt from the argument, a file, or standard input (`--file -`).
fn read_prompt(args: &GenerateArgs) -> Result<String, CliError> {
    let prompt = match (&args.prompt, &args.file) {
        (Some(prompt), _) => prompt.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| CliError::Usage(format!("cannot read the prompt from stdin: {e}")))?;
            text
        }
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!(
                "cannot read the prompt from {}: {e}",
                path.display()
            ))
        })?,
        (None, None) => {
            return Err(CliError::Usage(
                "give a prompt: horde-cli generate \"PROMPT\" (or --file FILE)".into(),
            ))
        }
    };
    if prompt.is_empty() {
        return Err(CliError::Usage("the prompt is empty".into()));
    }
    Ok(prompt)
}

/// Resolves on Ctrl-C (SIGINT). Registered when created, so a signal that arrives while a
/// request is on the wire is not missed.
struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> Result<Interrupt, CliError> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| CliError::Usage(format!("cannot watch for Ctrl-C: {e}")))?;
            Ok(Interrupt { signal })
        }
        #[cfg(not(unix))]
        Ok(Interrupt {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            self.signal.recv().await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub(crate) async fn generate(
    client: &Client,
    settings: &Settings,
    args: &GenerateArgs,
) -> Result<(), CliError> {
    let prompt = read_prompt(args)?;
    let mut interrupt = Interrupt::new()?;
    let mut params = json!({ "n": args.n, "max_length": args.max_length });
    if let Some(context) = args.max_context_length {
        params["max_context_length"] = json!(context);
    }
    if let Some(temperature) = args.temperature {
        params["temperature"] = json!(temperature);
    }
    let body = json!({ "prompt": prompt, "params": params, "models": args.models });
    let queued = client.post("/generate/text/async", &body).await?;
    let id = output::text(&queued["id"]);
    if args.no_wait {
        if settings.json {
            output::json(&queued);
        } else {
            println!("{id}");
        }
        return Ok(());
    }
    let show = !settings.json && std::io::stderr().is_terminal();
    let spinner = if show {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner.set_message(format!("queued {id}"));
    if let Some(message) = queued["message"].as_str() {
        spinner.suspend(|| eprintln!("note: {message}"));
    }
    let poll = Duration::from_secs_f64(args.poll_secs.clamp(0.05, 60.0));
    let status = loop {
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = interrupt.recv() => {
                spinner.finish_and_clear();
                let cancelled = client.delete(&format!("/generate/text/status/{id}")).await;
                match cancelled {
                    Ok(_) => eprintln!("cancelled request {id} on the horde"),
                    Err(e) => eprintln!("could not cancel request {id}: {e}"),
                }
                return Err(CliError::Interrupted);
            }
        }
        let status = client.get(&format!("/generate/text/status/{id}")).await?;
        if status["done"] == true {
            break status;
        }
        spinner.set_message(progress(&status));
    };
    spinner.finish_and_clear();
    let generations = status["generations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let faulted = status["faulted"] == true;
    if settings.json {
        let mut status = status;
        status["id"] = json!(id);
        output::json(&status);
    } else {
        for (i, generation) in generations.iter().enumerate() {
            if i > 0 {
                println!();
            }
            println!("{}", generation["text"].as_str().unwrap_or_default());
        }
        eprintln!(
            "{} generation(s), {} kudos",
            generations.len(),
            output::text(&status["kudos"])
        );
    }
    if generations.is_empty() {
        return Err(CliError::Server {
            status: 200,
            rc: if faulted { "Faulted" } else { "NoGenerations" }.into(),
            message: format!("request {id} ended without a generation"),
            hint: "\nhint: `horde-cli models` shows which models have workers online".into(),
        });
    }
    Ok(())
}

/// One line of progress from a status.
fn progress(status: &Value) -> String {
    let position = output::text(&status["queue_position"]);
    let wait = output::text(&status["wait_time"]);
    let (waiting, processing, finished) = (
        output::text(&status["waiting"]),
        output::text(&status["processing"]),
        output::text(&status["finished"]),
    );
    let possible = if status["is_possible"] == false {
        " — no online worker can serve it yet"
    } else {
        ""
    };
    format!(
        "position {position}, ~{wait} s; {waiting} waiting, {processing} generating, \
         {finished} done{possible}"
    )
}

pub(crate) async fn status(client: &Client, settings: &Settings, id: &str) -> Result<(), CliError> {
    let status = client.get(&format!("/generate/text/status/{id}")).await?;
    print_status(settings, id, &status);
    Ok(())
}

pub(crate) async fn cancel(client: &Client, settings: &Settings, id: &str) -> Result<(), CliError> {
    let status = client
        .delete(&format!("/generate/text/status/{id}"))
        .await?;
    print_status(settings, id, &status);
    Ok(())
}

fn print_status(settings: &Settings, id: &str, status: &Value) {
    if settings.json {
        let mut status = status.clone();
        status["id"] = json!(id);
        output::json(&status);
        return;
    }
    output::fields(&[
        ("request", id.to_owned()),
        ("done", output::text(&status["done"])),
        ("faulted", output::text(&status["faulted"])),
        ("waiting", output::text(&status["waiting"])),
        ("processing", output::text(&status["processing"])),
        ("finished", output::text(&status["finished"])),
        ("queue position", output::text(&status["queue_position"])),
        ("wait (s)", output::text(&status["wait_time"])),
        ("kudos", output::text(&status["kudos"])),
    ]);
    for generation in status["generations"].as_array().into_iter().flatten() {
        println!(
            "\n[{} on {}]\n{}",
            output::text(&generation["model"]),
            output::text(&generation["worker_name"]),
            generation["text"].as_str().unwrap_or_default()
        );
    }
}
