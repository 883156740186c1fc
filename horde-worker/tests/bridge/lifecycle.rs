//! The worker's life: the horde restarting under it, stopping on signals, priority users,
//! and `--check`.

use std::process::Output;
use std::time::Duration;

use serde_json::json;

use crate::backends::koboldcpp;
use crate::support::{eventually, worker_args, worker_command, Backend, Behavior, Horde, Worker};

const SECS_30: Duration = Duration::from_secs(30);

/// A backend whose generations take `delay`.
async fn slow_backend(delay: Duration) -> Backend {
    let backend = Backend::start(koboldcpp).await;
    backend.behave(Behavior {
        delay,
        ..Behavior::default()
    });
    backend
}

/// Waits until the backend has received `count` generate calls.
async fn generating(backend: &Backend, count: usize) {
    eventually("a generation on the backend", SECS_30, || async {
        (backend.state.seen.lock().generates.len() >= count).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_horde_restarting_mid_job_loses_nothing() {
    let mut horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let backend = slow_backend(Duration::from_secs(2)).await;
    let id = horde
        .request(&client, "Persist", json!({ "max_length": 20 }))
        .await;
    let worker = Worker::start(&worker_args(&horde, &owner, "w", &backend.url));
    generating(&backend, 1).await;
    horde.stop().await;
    // Down for longer than the generation: the submit meets a dead horde and retries.
    tokio::time::sleep(Duration::from_secs(3)).await;
    horde.start_again().await;
    let status = horde.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(
        status["restarted"], 0,
        "the job survived the restart: {status}"
    );
    let done = worker.wait_logged("job done", 1, SECS_30).await;
    assert!((horde.kudos(&owner).await - done[0]["kudos"].as_f64().unwrap()).abs() < 0.005);
    assert!(
        !worker.logged("submit failed").is_empty(),
        "the submit was retried"
    );
    worker.wait_logged("the horde is back", 1, SECS_30).await;
    // The worker keeps serving the restarted horde.
    let next = horde
        .request(&owner, "Again", json!({ "max_length": 20 }))
        .await;
    horde.wait_done(&next, SECS_30).await;
}

#[tokio::test]
async fn a_signal_stops_pops_and_the_job_in_flight_finishes() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = slow_backend(Duration::from_secs(2)).await;
    let first = horde
        .request(&owner, "First", json!({ "max_length": 20 }))
        .await;
    let mut worker = Worker::start(&worker_args(&horde, &owner, "w", &backend.url));
    generating(&backend, 1).await;
    worker.signal("TERM");
    worker.wait_logged("stopping", 1, SECS_30).await;
    let second = horde
        .request(&owner, "Second", json!({ "max_length": 20 }))
        .await;
    let status = worker.exited(SECS_30).await;
    assert!(status.success(), "{status}");
    assert_eq!(horde.status(&first).await["done"], true);
    let second = horde.status(&second).await;
    assert_eq!(
        (&second["waiting"], &second["processing"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(worker.logged("summary").len(), 1, "a last summary line");
}

#[tokio::test]
async fn a_second_signal_abandons_the_job_in_flight() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = slow_backend(Duration::from_secs(120)).await;
    let id = horde
        .request(&owner, "Forever", json!({ "max_length": 20 }))
        .await;
    let mut worker = Worker::start(&worker_args(&horde, &owner, "w", &backend.url));
    generating(&backend, 1).await;
    worker.signal("INT");
    worker.wait_logged("stopping", 1, SECS_30).await;
    worker.signal("INT");
    let status = worker.exited(SECS_30).await;
    assert!(status.success(), "{status}");
    let abandoned = worker.logged("job abandoned");
    let genkey = format!("HORDEREQ_{}", abandoned[0]["job"].as_str().unwrap());
    assert_eq!(backend.state.seen.lock().aborts, [genkey]);
    let status = horde.status(&id).await;
    assert_eq!(
        (&status["restarted"], &status["waiting"]),
        (&json!(1), &json!(1))
    );
}

#[tokio::test]
async fn priority_usernames_are_served_first() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, alice) = horde.register("alice").await;
    let (bob_name, bob) = horde.register("bob").await;
    let backend = Backend::start(koboldcpp).await;
    let from_alice = horde
        .request(&alice, "alice's", json!({ "max_length": 20 }))
        .await;
    let from_bob = horde
        .request(&bob, "bob's", json!({ "max_length": 20 }))
        .await;
    let mut args = worker_args(&horde, &owner, "w", &backend.url);
    args.extend(["--priority-usernames", &bob_name]);
    let _worker = Worker::start(&args);
    horde.wait_done(&from_alice, SECS_30).await;
    horde.wait_done(&from_bob, SECS_30).await;
    let prompts: Vec<_> = backend
        .state
        .seen
        .lock()
        .generates
        .iter()
        .map(|body| body["prompt"].clone())
        .collect();
    assert_eq!(prompts, [json!("bob's"), json!("alice's")]);
}

/// Runs `horde-worker` with `args` to the end.
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || worker_command().args(args).output().unwrap())
        .await
        .unwrap()
}

fn owned(args: Vec<&str>) -> Vec<String> {
    args.into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn check_says_what_would_be_served_or_what_is_wrong() {
    let horde = Horde::start().await;
    let (owner_name, owner) = horde.register("owner").await;
    let backend = Backend::start(koboldcpp).await;

    let mut args = worker_args(&horde, &owner, "w", &backend.url);
    args.push("--check");
    let output = run(owned(args)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("backend: KoboldCpp 1.80.3"), "{stdout}");
    assert!(stdout.contains(&format!("as {owner_name}")), "{stdout}");

    let mut args = worker_args(&horde, "AAAAAAAAAAAAAAAAAAAAAA", "w", &backend.url);
    args.push("--check");
    let output = run(owned(args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("does not know this API key"), "{stderr}");

    let mut gone = Backend::start(koboldcpp).await;
    let gone_url = gone.url.clone();
    gone.stop();
    let mut args = worker_args(&horde, &owner, "w", &gone_url);
    args.push("--check");
    let output = run(owned(args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("the backend at {gone_url} does not work")),
        "{stderr}"
    );

    // Flags over the environment over the file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("horde-worker.toml");
    let toml = format!(
        "horde_url = \"{}\"\napi_key = \"{owner}\"\nname = \"from-file\"\n\
         backend_url = \"{}\"\nthreads = 4\nmax_length = 100\n",
        horde.url, backend.url
    );
    std::fs::write(&file, toml).unwrap();
    let checked = |extra: &'static [&'static str], env: &'static [(&'static str, &'static str)]| {
        let file = file.clone();
        async move {
            let output = tokio::task::spawn_blocking(move || {
                let mut command = worker_command();
                command
                    .arg("--config")
                    .arg(&file)
                    .arg("--check")
                    .args(extra);
                command.envs(env.iter().copied());
                command.output().unwrap()
            })
            .await
            .unwrap();
            assert!(output.status.success(), "{output:?}");
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    };
    let from_file = checked(&[], &[]).await;
    assert!(
        from_file.contains("worker: from-file (new: the first pop creates it), 4 thread(s)"),
        "{from_file}"
    );
    assert!(from_file.contains("max_length: 100"), "{from_file}");
    let from_env = checked(&[], &[("HORDE_THREADS", "3")]).await;
    assert!(from_env.contains("3 thread(s)"), "{from_env}");
    let from_flag = checked(&["--threads", "2"], &[("HORDE_THREADS", "3")]).await;
    assert!(from_flag.contains("2 thread(s)"), "{from_flag}");

    let mut args = worker_args(&horde, &owner, "w", &backend.url);
    args.extend(["--threads", "0"]);
    let output = run(owned(args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("threads must be between 1 and 50"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_worker_name_owned_by_someone_else_stops_the_worker() {
    let horde = Horde::start().await;
    let (_, alice) = horde.register("alice").await;
    let (_, mallory) = horde.register("mallory").await;
    let backend = Backend::start(koboldcpp).await;
    let first = Worker::start(&worker_args(&horde, &alice, "taken", &backend.url));
    eventually("the first worker", SECS_30, || async {
        horde.worker("taken").await["id"].is_string().then_some(())
    })
    .await;
    drop(first);
    // `--check` says so first, and knows the owner's own worker.
    let mut args = worker_args(&horde, &mallory, "taken", &backend.url);
    args.push("--check");
    let output = run(owned(args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the name \"taken\" belongs to another account's worker"),
        "{stderr}"
    );
    let mut args = worker_args(&horde, &alice, "taken", &backend.url);
    args.push("--check");
    let output = run(owned(args)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("worker: taken (yours, known to the horde)"),
        "{stdout}"
    );
    let mut second = Worker::start(&worker_args(&horde, &mallory, "taken", &backend.url));
    let status = second.exited(SECS_30).await;
    assert_eq!(status.code(), Some(1));
}

/// Text logs speak to the volunteer: whom the worker earns for, each job with the session's
/// totals in words (no module paths), and why a job earned nothing when one does. A key the
/// horde does not know stops the worker at start, saying so.
#[tokio::test]
async fn the_worker_tells_its_owner_in_words_what_it_earns() {
    let horde = Horde::start().await;
    let (owner_name, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let backend = Backend::start(koboldcpp).await;
    // Degenerate text: delivered, paid nothing.
    backend.behave(Behavior {
        text: "a".repeat(100),
        ..Behavior::default()
    });
    let id = horde
        .request(&client, "Say a", json!({ "max_length": 40 }))
        .await;
    let worker = Worker::start_logging(&worker_args(&horde, &owner, "w", &backend.url), "text");
    horde.wait_done(&id, SECS_30).await;
    eventually("the unpaid job's lines", SECS_30, || async {
        (!worker
            .raw_lines("the horde paid nothing for this job")
            .is_empty())
        .then_some(())
    })
    .await;
    backend.behave(Behavior::default());
    let id = horde
        .request(&client, "Go on", json!({ "max_length": 40 }))
        .await;
    horde.wait_done(&id, SECS_30).await;
    eventually("the second job's line", SECS_30, || async {
        (!worker.raw_lines("this session 2 jobs").is_empty()).then_some(())
    })
    .await;
    let greeting = worker.raw_lines("earning kudos for");
    assert!(
        greeting.len() == 1 && greeting[0].contains(&owner_name),
        "{greeting:?}"
    );
    assert!(greeting[0].contains("waiting for jobs"), "{greeting:?}");
    let jobs = worker.raw_lines("job done: ");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(
        jobs[0].contains(", 0 kudos; this session 1 job, "),
        "{jobs:?}"
    );
    let unpaid = worker.raw_lines("paid nothing");
    assert_eq!(unpaid.len(), 1, "{unpaid:?}");
    assert!(
        unpaid[0].contains("degenerate"),
        "the horde's reason: {unpaid:?}"
    );
    assert!(worker.raw_lines("horde_worker::").is_empty());

    let mut stranger = Worker::start(&worker_args(
        &horde,
        "BBBBBBBBBBBBBBBBBBBBBB",
        "s",
        &backend.url,
    ));
    assert_eq!(stranger.exited(SECS_30).await.code(), Some(1));
    assert!(stranger.logged("job").is_empty());
}

/// A worker given no key uses the one `horde-cli register --save` stored (the CLI's default
/// profile, or `HORDE_PROFILE`), and that profile's horde.
#[tokio::test]
async fn a_worker_without_a_key_uses_the_one_horde_cli_saved() {
    let horde = Horde::start().await;
    let (owner_name, owner) = horde.register("owner").await;
    let (other_name, other) = horde.register("other").await;
    let backend = Backend::start(koboldcpp).await;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("horde-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "# written by horde-cli\ndefault_profile = \"home\"\n\n[profiles.home]\n\
         url = \"{}\"\napi_key = \"{owner}\"\n\n[profiles.other]\nurl = \"{}\"\n\
         api_key = \"{other}\"\n",
        horde.url, horde.url
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let check = |env: Vec<(&'static str, String)>| {
        let backend_url = backend.url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut command = worker_command();
                command
                    .args(["--name", "w", "--backend-url", &backend_url, "--check"])
                    .envs(env);
                command.output().unwrap()
            })
            .await
            .unwrap()
        }
    };
    let xdg = || ("XDG_CONFIG_HOME", home.path().display().to_string());
    let output = check(vec![xdg()]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains(&format!("as {owner_name}")), "{stdout}");
    assert!(
        stdout.contains("key: saved by horde-cli (profile \"home\""),
        "{stdout}"
    );
    let output = check(vec![xdg(), ("HORDE_PROFILE", "other".into())]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("as {other_name}")), "{stdout}");
    let path = dir.join("config.toml").display().to_string();
    let output = check(vec![("HORDE_CLI_CONFIG", path)]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("as {owner_name}")), "{stdout}");
    // No key anywhere: the error names every way to give one.
    let empty = tempfile::tempdir().unwrap();
    let output = check(vec![(
        "XDG_CONFIG_HOME",
        empty.path().display().to_string(),
    )])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("horde-cli register --save"), "{stderr}");
}

/// A KoboldCpp its owner uses directly (a generation the worker did not send, as KoboldAI Lite
/// on the same machine sends): the worker takes no horde job while it runs nor for
/// `--yield-secs` after, then serves again.
#[tokio::test]
async fn the_worker_yields_while_someone_else_uses_koboldcpp() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let backend = Backend::start(koboldcpp).await;
    let perf = |delay| Behavior {
        perf: true,
        delay,
        ..Behavior::default()
    };
    backend.behave(perf(Duration::ZERO));
    let mut args = worker_args(&horde, &owner, "w", &backend.url);
    args.extend(["--yield-secs", "2"]);
    let worker = Worker::start(&args);
    worker.wait_logged("earning kudos for", 1, SECS_30).await;
    // The owner generates on the backend for 3 s.
    backend.behave(perf(Duration::from_secs(3)));
    let local_url = format!("{}/api/v1/generate", backend.url);
    let local = tokio::spawn(async move {
        reqwest::Client::new()
            .post(local_url)
            .json(&json!({ "prompt": "Mine", "max_length": 20 }))
            .send()
            .await
            .unwrap()
            .status()
    });
    worker
        .wait_logged("the backend is in use by someone else", 1, SECS_30)
        .await;
    let id = horde
        .request(&client, "Waits", json!({ "max_length": 20 }))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = horde.status(&id).await;
    assert_eq!(
        (&status["waiting"], &status["processing"]),
        (&json!(1), &json!(0)),
        "no horde job while the owner generates: {status}"
    );
    assert!(local.await.unwrap().is_success());
    backend.behave(perf(Duration::ZERO));
    horde.wait_done(&id, SECS_30).await;
    let free = worker
        .wait_logged("the backend has been left alone", 1, SECS_30)
        .await;
    let done = worker.wait_logged("job done", 1, SECS_30).await;
    assert!(
        free[0]["timestamp"].as_str() <= done[0]["timestamp"].as_str(),
        "{free:?} {done:?}"
    );
    // The local generation is the only one the worker did not send.
    assert_eq!(backend.state.seen.lock().generates.len(), 2);
}
