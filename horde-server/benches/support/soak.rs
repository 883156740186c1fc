//! The soak: a mixed load for a long run against a running server, with the invariants checked
//! through the API at the end. Used by `load.rs --scenario soak`:
//!
//! ```sh
//! printf '[horde.integrity]\nspeed_limits = []\n' > soak.toml
//! export HORDE_SOAK_ADMIN_KEY=$(target/release/horde-server --db /tmp/soak.sqlite \
//!     create-admin soak-admin | sed -n 's/^API key.*: //p')
//! target/release/horde-server --db /tmp/soak.sqlite --listen 127.0.0.1:7301 \
//!     --registrations-per-minute 100000 --config soak.toml &
//! cargo bench -p horde-server --bench load -- --url http://127.0.0.1:7301/api/v2 \
//!     --scenario soak --secs 600 --pid $!
//! ```
//!
//! 48 clients queue requests and poll them (5 % cancel), 8 workers pop and submit (5 % fault),
//! 4 users transfer kudos, an administrator grants kudos. Every 10 s a CSV line: seconds,
//! requests done per second, the server's resident memory (with `--pid`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

async fn register(client: &reqwest::Client, base: &str, name: &str) -> (u64, String) {
    let body: Value = client
        .post(format!("{base}/register"))
        .json(&json!({ "username": name }))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("register json");
    (
        body["id"].as_u64().expect("id"),
        body["api_key"].as_str().expect("key").to_owned(),
    )
}

fn rss_kb(pid: u64) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A tiny deterministic random source per task.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides.max(1)
    }
}

pub(crate) async fn soak(base: String, secs: u64, pid: Option<u64>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let admin = std::env::var("HORDE_SOAK_ADMIN_KEY")
        .expect("HORDE_SOAK_ADMIN_KEY: the key `horde-server create-admin` printed");
    let mut users = Vec::new();
    for i in 0..16 {
        users.push(register(&client, &base, &format!("soak-{i}")).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let granted_milli = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for i in 0..48u64 {
        let (client, base, stop, done, acked) = (
            client.clone(),
            base.clone(),
            stop.clone(),
            done.clone(),
            acked.clone(),
        );
        let key = users[(i % 8) as usize].1.clone();
        tasks.push(tokio::spawn(async move {
            let mut dice = Dice(i * 7919 + 1);
            while !stop.load(Ordering::SeqCst) {
                let body = json!({ "prompt": "soak", "params": { "n": 1 + dice.roll(2), "max_length": 80 }, "models": ["soak/m"] });
                let Ok(response) = client
                    .post(format!("{base}/generate/text/async"))
                    .header("apikey", &key)
                    .json(&body)
                    .send()
                    .await
                else {
                    continue;
                };
                let Ok(queued) = response.json::<Value>().await else { continue };
                let Some(id) = queued["id"].as_str().map(str::to_owned) else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                acked.lock().push(id.clone());
                let cancel = dice.roll(20) == 0;
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let url = format!("{base}/generate/text/status/{id}");
                    let request = if cancel { client.delete(url) } else { client.get(url) };
                    let Ok(response) = request.send().await else { continue };
                    let Ok(status) = response.json::<Value>().await else { continue };
                    if status["done"] == true || cancel {
                        done.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    if stop.load(Ordering::SeqCst) {
                        break; // the drain finishes it
                    }
                }
            }
        }));
    }
    for i in 0..8u64 {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        let key = users[8 + i as usize].1.clone();
        tasks.push(tokio::spawn(async move {
            let mut dice = Dice(i * 104_729 + 3);
            while !stop.load(Ordering::SeqCst) {
                work_once(&client, &base, &key, i, &mut dice).await;
            }
        }));
    }
    for i in 0..4u64 {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        let key = users[i as usize].1.clone();
        let to = users[(i + 4) as usize].0;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let _ = client
                    .post(format!("{base}/kudos/transfer"))
                    .header("apikey", &key)
                    .json(&json!({ "username": format!("soak-{}#{to}", i + 4), "amount": 1 }))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    {
        let (client, base, stop, granted) = (
            client.clone(),
            base.clone(),
            stop.clone(),
            granted_milli.clone(),
        );
        let ids: Vec<u64> = users.iter().map(|u| u.0).collect();
        tasks.push(tokio::spawn(async move {
            let mut dice = Dice(99);
            while !stop.load(Ordering::SeqCst) {
                let id = ids[dice.roll(ids.len() as u64) as usize];
                let granted_now = client
                    .put(format!("{base}/users/{id}"))
                    .header("apikey", &admin)
                    .json(&json!({ "kudos": 10 }))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if granted_now {
                    granted.fetch_add(10_000, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }));
    }
    println!("seconds,requests_done_per_second,server_rss_kb");
    let started = Instant::now();
    let mut last = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let now_done = done.load(Ordering::Relaxed);
        let rss = pid
            .and_then(rss_kb)
            .map_or_else(String::new, |kb| kb.to_string());
        println!(
            "{},{:.0},{rss}",
            started.elapsed().as_secs(),
            (now_done - last) as f64 / 10.0
        );
        last = now_done;
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        let _ = task.await;
    }
    // Drain: serve what is still waiting, then check the invariants through the API.
    let mut dice = Dice(5);
    let drainer = &users[8].1;
    for _ in 0..10_000 {
        if !work_once(&client, &base, drainer, 0, &mut dice).await {
            break;
        }
    }
    let acked = acked.lock().clone();
    let mut open = 0;
    for id in &acked {
        let status: Value = client
            .get(format!("{base}/generate/text/status/{id}"))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("status json");
        if status["done"] != true && status["rc"] != "RequestNotFound" {
            open += 1;
        }
    }
    let mut page = 1;
    let (mut held, mut sources) = (0i64, 0i64);
    loop {
        let list: Value = client
            .get(format!("{base}/users?page={page}"))
            .send()
            .await
            .expect("users")
            .json()
            .await
            .expect("users json");
        let Some(list) = list.as_array().filter(|l| !l.is_empty()) else {
            break;
        };
        for user in list {
            let milli = |v: &Value| (v.as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
            held += milli(&user["kudos"]) + milli(&user["kudos_details"]["evaluating"]);
            sources +=
                milli(&user["kudos_details"]["admin"]) + milli(&user["kudos_details"]["awarded"]);
        }
        page += 1;
    }
    println!(
        "invariants: {} requests acknowledged, {open} not finished after the drain (must be 0); \
         kudos held by users (balances + escrow) {:.3} = admin + awarded {:.3} (must be \
         equal: generations and transfers only move kudos; the soak granted {:.3}); {}",
        acked.len(),
        held as f64 / 1000.0,
        sources as f64 / 1000.0,
        granted_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        if held == sources && open == 0 {
            "OK"
        } else {
            "BROKEN"
        }
    );
}

/// One pop and its submit (5 % faulted); false if there was no job.
async fn work_once(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    i: u64,
    dice: &mut Dice,
) -> bool {
    let Ok(response) = client
        .post(format!("{base}/generate/text/pop"))
        .header("apikey", key)
        .json(&json!({ "name": format!("soak-worker-{i}"), "models": ["soak/m"] }))
        .send()
        .await
    else {
        return false;
    };
    let Ok(job) = response.json::<Value>().await else {
        return false;
    };
    let Some(id) = job["id"].as_str() else {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return false;
    };
    let state = if dice.roll(20) == 0 { "faulted" } else { "ok" };
    let _ = client
        .post(format!("{base}/generate/text/submit"))
        .header("apikey", key)
        .json(&json!({ "id": id, "generation": "soaked text", "state": state }))
        .send()
        .await;
    true
}
