//! What operators use: the configuration file and `--print-config`, `create-admin`, and
//! trusted reverse proxies.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::crash::start_binary;
use crate::util::{assert_error, TestServer};

fn horde_server(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_horde-server"))
        .args(args)
        .env(
            "HORDE_DB",
            crate::util::store_for(&dir.join("horde.sqlite")),
        )
        .env_remove("HORDE_CONFIG")
        .env_remove("HORDE_LISTEN")
        .env_remove("HORDE_REGISTRATIONS_PER_MINUTE")
        .output()
        .unwrap()
}

#[test]
fn the_config_file_sets_everything_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("horde.toml");
    std::fs::write(
        &file,
        "registrations_per_minute = 3\nlisten = \"127.0.0.1:7999\"\n\
         [horde]\ndefault_concurrency = 7\n[horde.economy]\ncontext_basis = \"prompt\"\n\
         [horde.limits]\nmax_models = 50\n[http]\nread_timeout_secs = 5\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let output = horde_server(
        &[
            "--config",
            path,
            "--listen",
            "127.0.0.1:7555",
            "--print-config",
        ],
        dir.path(),
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("registrations_per_minute = 3"),
        "{printed}"
    );
    assert!(printed.contains("listen = \"127.0.0.1:7555\""), "{printed}");
    assert!(printed.contains("default_concurrency = 7"), "{printed}");
    assert!(printed.contains("context_basis = \"prompt\""), "{printed}");
    assert!(printed.contains("max_models = 50"), "{printed}");
    assert!(printed.contains("read_timeout_secs = 5"), "{printed}");
    // What it prints is itself a valid configuration file.
    let again = dir.path().join("printed.toml");
    std::fs::write(&again, printed.as_bytes()).unwrap();
    let output = horde_server(
        &["--config", again.to_str().unwrap(), "--print-config"],
        dir.path(),
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), printed);

    // Unknown keys are errors that name the key.
    std::fs::write(&file, "[horde]\ndefault_concurency = 7\n").unwrap();
    let output = horde_server(&["--config", path], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("default_concurency"), "{stderr}");
    let output = horde_server(&["--trusted-proxy", "not-a-net"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not-a-net"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_makes_an_administrator_nobody_can_race_for() {
    let dir = tempfile::tempdir().unwrap();
    let output = horde_server(&["create-admin", "root"], dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("administrator root#1 created"), "{stdout}");
    let key = stdout
        .lines()
        .find_map(|l| l.split_once(": ").filter(|(k, _)| k.starts_with("API key")))
        .map(|(_, key)| key.trim().to_owned())
        .unwrap();

    let db = dir.path().join("horde.sqlite");
    let mut server = start_binary(&db, &[]).await;
    // While the server runs, create-admin refuses the database.
    let output = horde_server(&["create-admin", "intruder"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("another horde-server is using"), "{stderr}");

    let client = reqwest::Client::new();
    let bob = crate::crash::register(&client, &server.base, "bob").await;
    let _ = bob;
    let response = client
        .request(Method::PUT, format!("{}/users/2", server.base))
        .header("apikey", &key)
        .json(&json!({ "kudos": 50 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[tokio::test]
async fn rate_limits_believe_forwarded_addresses_only_from_trusted_proxies() {
    let register = |server: &TestServer, name: String, forwarded: &'static str| {
        let request = server
            .client
            .post(format!("{}/register", server.base))
            .header("X-Forwarded-For", forwarded)
            .json(&json!({ "username": name }));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Behind a trusted proxy, each client has its own limit.
    let server = TestServer::start_with(|config| {
        config.registrations_per_minute = 2;
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for i in 0..2 {
        let (status, _) = register(&server, format!("a{i}"), "203.0.113.7").await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_error(
        &register(&server, "a3".into(), "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS,
        "RateLimited",
    );
    let (status, _) = register(&server, "b0".into(), "198.51.100.1, 203.0.113.9").await;
    assert_eq!(status, StatusCode::CREATED);
    server.stop().await;

    // Without trusted proxies the header is ignored: a client cannot pick a fresh address.
    let server = TestServer::start_with(|config| config.registrations_per_minute = 2).await;
    for (i, forwarded) in ["203.0.113.1", "203.0.113.2"].into_iter().enumerate() {
        let (status, _) = register(&server, format!("c{i}"), forwarded).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_error(
        &register(&server, "c3".into(), "203.0.113.3").await,
        StatusCode::TOO_MANY_REQUESTS,
        "RateLimited",
    );
    server.stop().await;
}

#[tokio::test]
async fn transfers_are_rate_limited_per_user_and_per_address() {
    let server = TestServer::start_with(|config| {
        config.transfers_per_minute = 3;
        config.transfers_per_minute_per_ip = 5;
    })
    .await;
    let (_, admin) = server.admin("admin").await;
    let (_, laundry) = server.register("laundry").await;
    let (bob, _) = server.register("bob").await;
    for user in ["/users/1", "/users/2"] {
        server
            .call(
                Method::PUT,
                user,
                Some(&admin),
                Some(json!({ "kudos": 1000 })),
            )
            .await;
    }
    let send = |key: String, idempotency: Option<&'static str>| {
        let mut request = server
            .client
            .post(format!("{}/kudos/transfer", server.base))
            .header("apikey", key)
            .json(&json!({ "username": format!("bob#{bob}"), "amount": 1 }));
        if let Some(k) = idempotency {
            request = request.header("Idempotency-Key", k);
        }
        async move { request.send().await.unwrap() }
    };
    for i in 0..3 {
        let response = send(admin.clone(), None).await;
        assert_eq!(response.status(), StatusCode::OK, "transfer {i}");
    }
    // The fourth in a minute from one user is refused, saying when to retry.
    let refused = send(admin.clone(), None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["rc"], "RateLimited");
    // Another user from the same address has their own per-user count, but the address's
    // count (5) runs out after two more.
    for _ in 0..2 {
        assert_eq!(send(laundry.clone(), None).await.status(), StatusCode::OK);
    }
    assert_eq!(
        send(laundry.clone(), None).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let (_, bob_user) = server.get(&format!("/users/{bob}"), None).await;
    assert_eq!(bob_user["kudos"], 5);
    server.stop().await;
}

#[tokio::test]
async fn self_dealing_from_one_address_is_not_paid_when_the_operator_asks() {
    let server = TestServer::start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        config.horde.integrity.self_dealing_check = true;
    })
    .await;
    let (_, farmer) = server.register("farmer").await;
    let (throwaway_id, throwaway) = server.register("throwaway").await;
    let post = |path: &str, key: &str, body: serde_json::Value, from: &str| {
        let request = server
            .client
            .post(format!("{}{path}", server.base))
            .header("apikey", key)
            .header("X-Forwarded-For", from)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let cycle = |from_requester: &'static str, from_worker: &'static str| {
        let (farmer, throwaway) = (farmer.clone(), throwaway.clone());
        let post = &post;
        async move {
            post(
                "/generate/text/async",
                &throwaway,
                json!({ "prompt": "x" }),
                from_requester,
            )
            .await;
            let job = post(
                "/generate/text/pop",
                &farmer,
                json!({ "name": "farm", "models": ["m"] }),
                from_worker,
            )
            .await;
            let answer = post(
                "/generate/text/submit",
                &farmer,
                json!({ "id": job["id"], "generation": horde_testkit::prose(80) }),
                from_worker,
            )
            .await;
            answer["reward"].as_f64().unwrap()
        }
    };
    assert_eq!(cycle("203.0.113.9", "203.0.113.9").await, 0.0);
    let (_, user) = server.get(&format!("/users/{throwaway_id}"), None).await;
    assert_eq!(user["kudos"], 0, "the throwaway paid nothing");
    assert!(cycle("198.51.100.4", "203.0.113.9").await > 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_model_reference() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("models.toml");
    std::fs::write(&reference, "").unwrap();
    let db = dir.path().join("horde.sqlite");
    let path = reference.to_str().unwrap().to_owned();
    let mut server = start_binary(&db, &["--model-reference", &path]).await;
    let client = reqwest::Client::new();
    let key = crate::crash::register(&client, &server.base, "w").await;
    // One generation of `model`: its reward.
    let reward = |model: &'static str| {
        let (client, base, key) = (client.clone(), server.base.clone(), key.clone());
        async move {
            let post = |path: &str, body: serde_json::Value| {
                client
                    .post(format!("{base}{path}"))
                    .header("apikey", &key)
                    .json(&body)
                    .send()
            };
            post(
                "/generate/text/async",
                json!({ "prompt": "p", "models": [model] }),
            )
            .await
            .unwrap();
            let job: serde_json::Value = post(
                "/generate/text/pop",
                json!({ "name": "w", "models": [model] }),
            )
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            let done: serde_json::Value = post(
                "/generate/text/submit",
                json!({ "id": job["id"], "generation": horde_testkit::prose(320) }),
            )
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            done["reward"].as_f64().unwrap()
        }
    };
    let unknown = reward("my-new-model").await;
    std::fs::write(
        &reference,
        "[[model]]\nname = \"my-new-model\"\nparams_b = 70.0\n",
    )
    .unwrap();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut known = unknown;
    while known <= unknown && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        known = reward("my-new-model").await;
    }
    assert!(known > unknown * 10.0, "{known} vs {unknown}");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[tokio::test]
async fn metrics_show_requests_commits_lock_holds_kudos_and_the_queue() {
    let server = TestServer::start().await;
    let (_, key) = server.register("w").await;
    server
        .post(
            "/generate/text/async",
            None,
            json!({ "prompt": "p", "models": ["m1"] }),
        )
        .await;
    let (_, job) = server
        .post(
            "/generate/text/pop",
            Some(&key),
            json!({ "name": "w", "models": ["m1"] }),
        )
        .await;
    server
        .post(
            "/generate/text/submit",
            Some(&key),
            json!({ "id": job["id"], "generation": horde_testkit::prose(80) }),
        )
        .await;
    // Waiting: one for the model the online worker serves (listed by name), one for a model
    // only the request names (counted under "other").
    for model in ["m1", "m2"] {
        server
            .post(
                "/generate/text/async",
                None,
                json!({ "prompt": "waiting", "models": [model] }),
            )
            .await;
    }
    let response = server
        .client
        .get(format!(
            "{}/metrics",
            server.base.trim_end_matches("/api/v2")
        ))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let text = response.text().await.unwrap();
    for needle in [
        "horde_http_requests_total{endpoint=\"/api/v2/generate/text/async\",method=\"POST\",status=\"202\"} 3",
        "horde_http_requests_total{endpoint=\"/api/v2/generate/text/submit\",method=\"POST\",status=\"200\"} 1",
        "horde_http_request_seconds_count{endpoint=\"/api/v2/generate/text/pop\"} 1",
        "horde_kudos_moved_total{kind=\"generation\"}",
        "horde_commit_seconds_count",
        "horde_commit_batches_count",
        "horde_core_lock_hold_seconds_count",
        "horde_core_lock_hold_max_seconds",
        "horde_workers_online 1",
        "horde_queued_generations 2",
        "horde_queued_generations_by_model{model=\"m1\"} 1",
        "horde_queued_generations_by_model{model=\"other\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    server.stop().await;
}
