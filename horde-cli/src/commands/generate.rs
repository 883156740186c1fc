//! Text generation: generate (queue, wait with a live spinner, print), status, cancel.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use horde_api::{AsyncRequest, ParamsIn, RequestStatus, Samplers, StreamEvent};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

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
    let request = AsyncRequest {
        params: Some(ParamsIn {
            n: Some(args.n),
            max_length: Some(args.max_length),
            max_context_length: args.max_context_length,
            samplers: Samplers {
                temperature: args.temperature,
                ..Samplers::default()
            },
        }),
        models: Some(args.models.clone()),
        ..AsyncRequest::prompt(prompt)
    };
    let queued = client.ask(client.api().generate(&request)).await?;
    let id = queued.id.clone();
    if args.no_wait {
        if settings.json {
            output::json(&queued);
        } else {
            println!("{id}");
        }
        return Ok(());
    }
    let streaming = args.n == 1
        && !settings.json
        && !args.no_stream
        && (args.stream || std::io::stdout().is_terminal());
    if streaming {
        match stream(client, &id, &mut interrupt).await {
            Ok(Streamed::Done(status)) => return finish(settings, &id, *status, true),
            Ok(Streamed::Failed(body)) => {
                return Err(CliError::Server {
                    status: 200,
                    rc: body.rc.into_owned(),
                    message: format!("request {id} ended without a generation: {}", body.message),
                    hint: String::new(),
                })
            }
            // A horde without streams (AI Horde): poll as before.
            Ok(Streamed::Unsupported) => {}
            Err(e) => return Err(e),
        }
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
    if let Some(message) = &queued.message {
        spinner.suspend(|| eprintln!("note: {message}"));
    }
    let poll = Duration::from_secs_f64(args.poll_secs.clamp(0.05, 60.0));
    let status = loop {
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = interrupt.recv() => {
                spinner.finish_and_clear();
                let cancelled = client.ask(client.api().cancel(&id)).await;
                match cancelled {
                    Ok(_) => eprintln!("cancelled request {id} on the horde"),
                    Err(e) => eprintln!("could not cancel request {id}: {e}"),
                }
                return Err(CliError::Interrupted);
            }
        }
        let status = client.ask(client.api().status(&id)).await?;
        if status.done {
            break status;
        }
        spinner.set_message(progress(&status));
    };
    spinner.finish_and_clear();
    finish(settings, &id, status, false)
}

/// Prints a finished request (`streamed`: its text is printed already) and says whether it
/// produced anything.
fn finish(
    settings: &Settings,
    id: &str,
    status: RequestStatus,
    streamed: bool,
) -> Result<(), CliError> {
    let ended_empty = status.generations.is_empty();
    let faulted = status.faulted;
    if settings.json {
        output::json(&WithId { id, status });
    } else {
        if streamed {
            println!();
        } else {
            for (i, generation) in status.generations.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("{}", generation.text);
            }
        }
        eprintln!(
            "{} generation(s), {} kudos",
            status.generations.len(),
            status.kudos
        );
    }
    if ended_empty {
        return Err(CliError::Server {
            status: 200,
            rc: if faulted { "Faulted" } else { "NoGenerations" }.into(),
            message: format!("request {id} ended without a generation"),
            hint: "\nhint: `horde-cli models` shows which models have workers online".into(),
        });
    }
    Ok(())
}

/// How a streamed request ended.
enum Streamed {
    Done(Box<RequestStatus>),
    Failed(horde_api::ErrorBody),
    /// The horde has no streams.
    Unsupported,
}

/// Prints request `id`'s text as it arrives; Ctrl-C cancels the request.
async fn stream(
    client: &Client,
    id: &str,
    interrupt: &mut Interrupt,
) -> Result<Streamed, CliError> {
    let mut events = match client.api().stream(id).await {
        Ok(events) => events,
        Err(e)
            if e.status() == Some(horde_api::StatusCode::NOT_FOUND)
                && e.rc() != Some("RequestNotFound") =>
        {
            return Ok(Streamed::Unsupported)
        }
        Err(e) => return Err(client.explain(e)),
    };
    let mut out = std::io::stdout();
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = interrupt.recv() => {
                let cancelled = client.ask(client.api().cancel(id)).await;
                match cancelled {
                    Ok(_) => eprintln!("\ncancelled request {id} on the horde"),
                    Err(e) => eprintln!("\ncould not cancel request {id}: {e}"),
                }
                return Err(CliError::Interrupted);
            }
        };
        let event = match event {
            Ok(Some(event)) => event,
            Ok(None) => {
                // Ended without a last event (a proxy cut it): the status says how it ended.
                let status = client.ask(client.api().status(id)).await?;
                return Ok(Streamed::Done(Box::new(status)));
            }
            Err(e) => return Err(client.explain(e)),
        };
        match event {
            StreamEvent::Text(text) => {
                // A closed stdout (`| head`) ends the printing, not the request.
                let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            }
            StreamEvent::Done(status) => return Ok(Streamed::Done(status)),
            StreamEvent::Error(body) => return Ok(Streamed::Failed(body)),
        }
    }
}

/// A status with its request's id (`--json`).
#[derive(Serialize)]
struct WithId<'a> {
    #[serde(flatten)]
    status: RequestStatus,
    id: &'a str,
}

/// One line of progress from a status.
fn progress(status: &RequestStatus) -> String {
    let position = status.queue_position;
    let wait = status.wait_time;
    let (waiting, processing, finished) = (status.waiting, status.processing, status.finished);
    // No estimate when no worker serves the models: the wait is unbounded, not `wait_time`.
    let eta = if status.is_possible {
        format!("~{wait} s")
    } else {
        "no online worker serves these models yet".to_owned()
    };
    format!(
        "position {position}, {eta}; {waiting} waiting, {processing} generating, {finished} done"
    )
}

pub(crate) async fn status(client: &Client, settings: &Settings, id: &str) -> Result<(), CliError> {
    let status = client.ask(client.api().status(id)).await?;
    print_status(settings, id, status);
    Ok(())
}

pub(crate) async fn cancel(client: &Client, settings: &Settings, id: &str) -> Result<(), CliError> {
    let status = client.ask(client.api().cancel(id)).await?;
    if !settings.json {
        println!(
            "cancelled request {id} ({} generation(s) finished before stay paid)",
            status.finished
        );
    }
    print_status(settings, id, status);
    Ok(())
}

fn print_status(settings: &Settings, id: &str, status: RequestStatus) {
    if settings.json {
        output::json(&WithId { id, status });
        return;
    }
    output::fields(&[
        ("request", id.to_owned()),
        ("done", status.done.to_string()),
        ("faulted", status.faulted.to_string()),
        ("waiting", status.waiting.to_string()),
        ("processing", status.processing.to_string()),
        ("finished", status.finished.to_string()),
        ("queue position", status.queue_position.to_string()),
        (
            "wait (s)",
            if status.is_possible {
                status.wait_time.to_string()
            } else {
                "unknown: no online worker serves these models".to_owned()
            },
        ),
        ("kudos", status.kudos.to_string()),
    ]);
    for generation in &status.generations {
        println!(
            "\n[{} on {}]\n{}",
            generation.model, generation.worker_name, generation.text
        );
    }
}
