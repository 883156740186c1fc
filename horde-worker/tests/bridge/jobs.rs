//! Jobs end to end: requests complete, kudos move exactly, backends get only what their API
//! defines, limits and names are advertised as the issue says.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backends::{kobold_united, koboldcpp, openai};
use crate::support::{assert_paid_exactly, worker_args, Backend, Behavior, Horde, Worker, MODEL};

const SECS_30: Duration = Duration::from_secs(30);

/// Parameters a client may set, some of them KoboldCpp's own.
fn rich_params() -> Value {
    json!({
        "max_length": 40, "max_context_length": 1024, "temperature": 0.7, "min_p": 0.05,
        "smoothing_factor": 0.2, "sampler_order": [6, 0, 1, 3, 4, 2, 5],
        "stop_sequence": ["\n###"], "frmttriminc": true, "rep_pen": 1.1
    })
}

#[tokio::test]
async fn kobold_jobs_complete_and_the_owner_earns_exactly_the_rewards() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let backend = Backend::start(koboldcpp).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            horde
                .request(&client, &format!("Tale {i}:"), rich_params())
                .await,
        );
    }
    let mut args = worker_args(&horde, &owner, "cpp-worker", &backend.url);
    args.extend(["--threads", "2"]);
    let worker = Worker::start(&args);
    for id in &ids {
        let status = horde.wait_done(id, SECS_30).await;
        let generation = &status["generations"][0];
        assert_eq!(
            generation["text"],
            backend.state.behavior.lock().text.as_str()
        );
        assert_eq!(generation["worker_name"], "cpp-worker");
        assert_eq!(generation["model"], MODEL);
    }
    let done = worker.wait_logged("job done", 4, SECS_30).await;
    assert_paid_exactly(&horde, &owner, &client, &done).await;
    for line in &done {
        assert_eq!(line["model"], MODEL);
        assert_eq!(
            line["tokens"], 9,
            "one token per event of KoboldCpp's stream: {line}"
        );
        for figure in ["seconds", "tokens_per_second", "horde_ms"] {
            assert!(line[figure].is_number(), "{figure}: {line}");
        }
    }
    let seen = backend.state.seen.lock();
    assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    assert_eq!(seen.generates.len(), 4);
    for body in &seen.generates {
        assert!(body["genkey"].as_str().unwrap().starts_with("HORDEREQ_"));
        assert_eq!(body["min_p"], 0.05);
        assert_eq!(body["quiet"], true);
        assert_eq!(body["max_length"], 40);
        assert_eq!(body["stop_sequence"], json!(["\n###"]));
    }
}

#[tokio::test]
async fn each_generation_gets_its_own_seed_and_the_horde_is_told_it() {
    // KoboldCpp seeds from the clock in whole seconds: without a seed per job, the two
    // generations of an n = 2 request run in the same second would be the same text.
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let backend = Backend::start(koboldcpp).await;
    let id = horde
        .request(&client, "Twice:", json!({ "max_length": 20, "n": 2 }))
        .await;
    let _worker = Worker::start(&worker_args(&horde, &owner, "seeder", &backend.url));
    let status = horde.wait_done(&id, SECS_30).await;
    let sent: Vec<u64> = backend
        .state
        .seen
        .lock()
        .generates
        .iter()
        .map(|body| body["sampler_seed"].as_u64().expect("a seed is sent"))
        .collect();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0], sent[1], "each job its own seed");
    assert!(sent.iter().all(|&seed| seed <= i32::MAX as u64), "a C int");
    let mut reported: Vec<u64> = status["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["seed"].as_u64().unwrap())
        .collect();
    let mut sent = sent;
    sent.sort_unstable();
    reported.sort_unstable();
    assert_eq!(reported, sent, "the horde shows the seeds used: {status}");
}

#[tokio::test]
async fn kobold_united_gets_only_the_fields_it_defines() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = Backend::start(kobold_united).await;
    let id = horde
        .request(&owner, "Once upon a time", rich_params())
        .await;
    let _worker = Worker::start(&worker_args(&horde, &owner, "united", &backend.url));
    horde.wait_done(&id, SECS_30).await;
    let seen = backend.state.seen.lock();
    assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    let body = &seen.generates[0];
    assert_eq!(body["prompt"], "Once upon a time");
    assert_eq!(body["temperature"], 0.7);
    for absent in ["genkey", "min_p", "smoothing_factor"] {
        assert!(
            body.get(absent).is_none(),
            "{absent} reached KoboldAI: {body}"
        );
    }
}

#[tokio::test]
async fn advertised_limits_never_exceed_the_backends() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = Backend::start(koboldcpp).await;
    backend.behave(Behavior {
        max_length: Some(120),
        max_context_length: Some(1024),
        ..Behavior::default()
    });
    let mut above = worker_args(&horde, &owner, "above", &backend.url);
    above.extend(["--max-length", "300", "--max-context-length", "4096"]);
    let mut below = worker_args(&horde, &owner, "below", &backend.url);
    below.extend(["--max-length", "100"]);
    let bare = worker_args(&horde, &owner, "bare", &backend.url);
    let _workers = [above, below, bare].map(|args| Worker::start(&args));
    for (name, length, context) in [
        ("above", 120, 1024),
        ("below", 100, 1024),
        ("bare", 120, 1024),
    ] {
        let shown = crate::support::eventually(name, SECS_30, || async {
            let worker = horde.worker(name).await;
            worker["max_length"].is_number().then_some(worker)
        })
        .await;
        assert_eq!(shown["max_length"], length, "{name}: {shown}");
        assert_eq!(shown["max_context_length"], context, "{name}: {shown}");
        assert_eq!(shown["models"], json!([MODEL]));
        let agent = shown["bridge_agent"].as_str().unwrap();
        // Name, version and the project's home — empty until it has one, never a made-up URL.
        assert_eq!(
            agent,
            concat!("horde-worker:", env!("CARGO_PKG_VERSION"), ":"),
            "{agent}"
        );
    }
}

#[tokio::test]
async fn openai_backend_maps_parameters_and_names_the_served_model() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = Backend::start(openai).await;
    let served = "/models/Llama-3-8B-Instruct.Q4_K_M.gguf";
    backend.behave(Behavior {
        model: served.into(),
        ..Behavior::default()
    });
    let params = json!({
        "max_length": 50, "temperature": 0.4, "rep_pen": 1.1, "stop_sequence": ["\n"],
        "top_k": 40, "frmtrmblln": true
    });
    let id = horde.request(&owner, "The sea", params).await;
    let url = format!("{}/v1", backend.url);
    let mut args = worker_args(&horde, &owner, "oai", &url);
    args.extend(["--backend", "openai"]);
    let worker = Worker::start(&args);
    let status = horde.wait_done(&id, SECS_30).await;
    assert_eq!(status["generations"][0]["model"], MODEL);
    {
        let seen = backend.state.seen.lock();
        assert!(seen.refused.is_empty(), "{:?}", seen.refused);
        let mut body = seen.generates[0].clone();
        // A seed of its own (the horde passed none), reported with the generation.
        let seed = body["seed"].take();
        assert!(
            seed.as_u64().is_some_and(|s| s <= i32::MAX as u64),
            "{seed}"
        );
        assert_eq!(status["generations"][0]["seed"], seed, "{status}");
        body.as_object_mut().unwrap().remove("seed");
        assert_eq!(
            body,
            json!({
                "model": served, "prompt": "The sea", "max_tokens": 50, "temperature": 0.4,
                "repeat_penalty": 1.1, "top_k": 40, "stream": true
            })
        );
    }
    let shown = horde.worker("oai").await;
    assert_eq!(
        shown["models"],
        json!([MODEL]),
        "named as KoboldCpp names the file"
    );
    let done = worker.wait_logged("job done", 1, SECS_30).await;
    assert_eq!(done[0]["tokens"], 9, "the backend's own count");
}

/// An OpenAI-compatible server that reports its context (llama.cpp's `/props`) and refuses a
/// prompt over it: the worker advertises that context, cuts the prompt's start to fit it with
/// the server's tokenizer (as KoboldCpp cuts), and ends the text after the stop sequence,
/// keeping it, as KoboldCpp does (these servers drop it).
#[tokio::test]
async fn openai_backend_fits_the_prompt_to_its_context_and_stops_as_koboldcpp() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = Backend::start(openai).await;
    backend.behave(Behavior {
        max_context_length: Some(128),
        ..Behavior::default()
    });
    let prompt: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
    let prompt = prompt.join(" ");
    let params = json!({
        "max_length": 20, "max_context_length": 128, "stop_sequence": [" went", "\n\n"]
    });
    let id = horde.request(&owner, &prompt, params).await;
    let mut args = worker_args(&horde, &owner, "oai", &backend.url);
    args.extend(["--backend", "openai"]);
    let worker = Worker::start(&args);
    let status = horde.wait_done(&id, SECS_30).await;
    let generation = &status["generations"][0];
    assert_eq!(generation["state"], "ok", "{status}");
    assert_eq!(generation["text"], "and so the story went", "{status}");
    assert_eq!(horde.worker("oai").await["max_context_length"], 128);
    let seen = backend.state.seen.lock();
    assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    assert!(seen.tokenized >= 1, "the server's tokenizer counted");
    let sent = seen.generates[0]["prompt"].as_str().unwrap();
    assert!(prompt.ends_with(sent) && sent.ends_with("w399"), "{sent}");
    assert!(sent.split_whitespace().count() + 1 + 20 <= 128, "{sent}");
    assert!(
        sent.split_whitespace().count() > 80,
        "cut no more than needed: {sent}"
    );
    assert!(seen.generates[0].get("stop").is_none());
    drop(seen);
    assert!(worker.logged("job failed").is_empty());
}

#[tokio::test]
async fn a_busy_backend_is_waited_for_not_faulted() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = Backend::start(koboldcpp).await;
    backend.behave(Behavior {
        busy: 3,
        ..Behavior::default()
    });
    let id = horde
        .request(&owner, "Busy?", json!({ "max_length": 20 }))
        .await;
    let mut args = worker_args(&horde, &owner, "patient", &backend.url);
    args.extend(["--backend-retries", "1"]);
    let worker = Worker::start(&args);
    let status = horde.wait_done(&id, SECS_30).await;
    assert_eq!(status["restarted"], 0);
    assert!(worker.logged("job failed").is_empty());
    assert_eq!(
        backend.state.seen.lock().generates.len(),
        4,
        "3 busy answers, then text"
    );
}

#[tokio::test]
async fn blacklisted_prompts_are_skipped_by_the_horde_and_never_reach_the_backend() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = Backend::start(koboldcpp).await;
    let id = horde
        .request(
            &owner,
            "Then a DRAGON appeared",
            json!({ "max_length": 20 }),
        )
        .await;
    let mut args = worker_args(&horde, &owner, "picky", &backend.url);
    args.extend(["--blacklist", "dragon,ogre"]);
    let worker = Worker::start(&args);
    // The worker exists once its first pop is done; that pop skipped the request.
    crate::support::eventually("the worker's first pop", SECS_30, || async {
        (horde.worker("picky").await["name"] == "picky").then_some(())
    })
    .await;
    let status = horde.status(&id).await;
    assert_eq!(status["waiting"], 1, "{status}");
    assert_eq!(
        status["restarted"], 0,
        "no job was taken and given back: {status}"
    );
    drop(worker);
    assert!(backend.state.seen.lock().generates.is_empty());
}

#[tokio::test]
async fn an_extra_slow_worker_serves_only_requests_that_allow_it() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let backend = Backend::start(koboldcpp).await;
    let hurried = horde.request(&client, "Quick:", json!({})).await;
    let patient_body = json!({
        "prompt": "Whenever:", "models": [MODEL], "extra_slow_workers": true
    });
    let patient = horde
        .post("/generate/text/async", Some(&client), patient_body)
        .await;
    let patient = patient["id"].as_str().unwrap();
    let mut args = worker_args(&horde, &owner, "old-cpu", &backend.url);
    args.push("--extra-slow");
    let worker = Worker::start(&args);
    horde.wait_done(patient, SECS_30).await;
    worker.wait_logged("job done", 1, SECS_30).await;
    // Served the request that allows it; the other one was skipped and still waits.
    let status = horde.status(&hurried).await;
    assert_eq!(status["waiting"], 1, "{status}");
    assert_eq!(backend.state.seen.lock().generates.len(), 1);
}
