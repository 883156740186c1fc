//! Streaming end to end: the worker reads its backend's stream (KoboldCpp's
//! `/api/extra/generate/stream`, an OpenAI-compatible server's `stream: true`), posts the text
//! as it arrives, and a requester reading the horde's stream sees it piece by piece, ending
//! with exactly the text that was submitted and paid.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backends::{koboldcpp, openai};
use crate::support::{
    assert_paid_exactly, eventually, worker_args, Backend, Behavior, Horde, Worker, MODEL,
};

/// Reads the horde-native stream of request `id` to its end: its `text` events and its last
/// event's name.
async fn read_stream(url: String) -> (Vec<String>, String) {
    let mut response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let read = async {
        let mut pending = String::new();
        let mut texts = Vec::new();
        let mut event = String::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            pending.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                let line = line.trim_end();
                if let Some(name) = line.strip_prefix("event: ") {
                    event = name.to_owned();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    if event == "text" {
                        let data: Value = serde_json::from_str(data).unwrap();
                        texts.push(data["text"].as_str().unwrap().to_owned());
                    } else {
                        return (texts, event);
                    }
                }
            }
        }
        (texts, event)
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the stream ended in time")
}

#[tokio::test]
async fn text_streams_from_either_backend_to_the_requester_as_it_is_generated() {
    for kind in ["koboldcpp", "openai"] {
        let horde = Horde::start().await;
        let (_, owner) = horde.register("owner").await;
        let (_, client) = horde.register("client").await;
        let backend = match kind {
            "koboldcpp" => Backend::start(koboldcpp).await,
            _ => Backend::start(openai).await,
        };
        let text = "and so the story went on, as stories do.";
        backend.behave(Behavior {
            stream_gap: Duration::from_millis(150),
            text: text.into(),
            ..Behavior::default()
        });
        let id = horde
            .request(&client, "Once", json!({ "max_length": 40 }))
            .await;
        let reader = tokio::spawn(read_stream(format!(
            "{}/api/v2/generate/text/stream/{id}",
            horde.url
        )));
        // The reader is listening before the job starts.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut args = worker_args(&horde, &owner, "streamer", &backend.url);
        if kind == "openai" {
            args.extend(["--backend", "openai"]);
        }
        let worker = Worker::start(&args);
        let (texts, last) = reader.await.unwrap();
        assert_eq!(last, "done", "{kind}");
        assert!(
            texts.len() >= 3,
            "{kind}: the text arrived in pieces as it was generated: {texts:?}"
        );
        let status = horde.wait_done(&id, Duration::from_secs(30)).await;
        assert_eq!(status["generations"][0]["text"], text, "{kind}");
        assert_eq!(
            texts.concat(),
            text,
            "{kind}: the stream is the submitted text"
        );
        let done = worker
            .wait_logged("job done", 1, Duration::from_secs(30))
            .await;
        // One token per event (KoboldCpp), or the server's usage chunk (OpenAI-compatible).
        assert_eq!(done[0]["tokens"], 9, "{kind}");
        assert_paid_exactly(&horde, &owner, &client, &done).await;
    }
}

#[tokio::test]
async fn a_requester_who_leaves_stops_the_generation_and_nothing_is_paid() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let backend = Backend::start(koboldcpp).await;
    backend.behave(Behavior {
        stream_gap: Duration::from_millis(200),
        text: "one two three four five six seven eight nine ten eleven twelve thirteen \
               fourteen fifteen sixteen seventeen eighteen nineteen twenty"
            .into(),
        ..Behavior::default()
    });
    let worker = Worker::start(&worker_args(&horde, &owner, "leftalone", &backend.url));
    let http = reqwest::Client::new();
    let models_url = format!("{}/v1/models", horde.url);
    eventually(
        "the worker to be online",
        Duration::from_secs(30),
        || async {
            let models: Value = http.get(&models_url).send().await.ok()?.json().await.ok()?;
            (models["data"][0]["id"] == MODEL).then_some(())
        },
    )
    .await;
    let mut response = http
        .post(format!("{}/v1/completions", horde.url))
        .bearer_auth(&client)
        .json(&json!({
            "model": MODEL, "prompt": "Count:", "max_tokens": 64, "stream": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The first words arrive; then the requester goes away.
    let first = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let chunk = response.chunk().await.unwrap().expect("a chunk");
            let text = String::from_utf8_lossy(&chunk).into_owned();
            if text.contains("one") {
                return text;
            }
        }
    })
    .await
    .expect("the first words arrived");
    assert!(first.contains("\"text\":\"one \""), "{first}");
    drop(response);
    // The worker hears it at its next progress post, stops KoboldCpp and submits nothing.
    worker
        .wait_logged("the requester cancelled", 1, Duration::from_secs(30))
        .await;
    // The worker says so, then aborts KoboldCpp: the abort may land just after the line (it
    // did under CI's load).
    eventually("KoboldCpp's abort", Duration::from_secs(10), || async {
        (!backend.state.seen.lock().aborts.is_empty()).then_some(())
    })
    .await;
    assert_eq!(backend.state.seen.lock().aborts.len(), 1);
    assert!(worker.logged("job done").is_empty());
    assert_eq!(horde.kudos(&owner).await, 0.0);
    assert_eq!(horde.kudos(&client).await, 0.0);
}
