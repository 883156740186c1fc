//! The real `horde-cli` binary against a real horde-server on a loopback port.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use horde_testkit::TestHorde;
use serde_json::{json, Value};

const MODEL: &str = "koboldcpp/Llama-3-8B-Instruct.Q4_K_M";

/// A horde-server in this process (`horde_testkit::TestHorde`: its directory also holds the
/// CLI's config file), and an HTTP client for the tests' own calls.
struct Horde {
    horde: TestHorde,
    http: reqwest::Client,
}

impl std::ops::Deref for Horde {
    type Target = TestHorde;

    fn deref(&self) -> &TestHorde {
        &self.horde
    }
}

impl Horde {
    async fn start() -> Horde {
        Horde {
            horde: TestHorde::start().await,
            http: reqwest::Client::new(),
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("cli.toml")
    }

    /// Runs `horde-cli` with this horde's URL and config file, and `env`.
    async fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = base_command(&self.config_path());
        command.arg("--url").arg(&self.url).args(args);
        for (k, v) in env {
            command.env(k, v);
        }
        run(command).await
    }

    /// Registers `name` over HTTP; returns the key.
    async fn register(&self, name: &str) -> String {
        self.horde.register(name).await.api_key
    }

    async fn api(&self, method: reqwest::Method, path: &str, key: &str, body: Value) -> Value {
        self.http
            .request(method, format!("{}/api/v2{path}", self.url))
            .header("apikey", key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The CLI with no settings leaking in from the environment.
fn base_command(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_horde-cli"));
    command
        .env_remove("HORDE_URL")
        .env_remove("HORDE_API_KEY")
        .env_remove("HORDE_PROFILE")
        .env("HORDE_CLI_CONFIG", config)
        .stdin(Stdio::null());
    command
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    fn assert_ok(&self) -> &Run {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn assert_fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not in: {}",
            self.stderr
        );
    }
}

/// Runs `command` with `input` on its standard input.
async fn run_with_input(mut command: Command, input: String) -> Run {
    use std::io::Write as _;
    let output: Output = tokio::task::spawn_blocking(move || {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn run(mut command: Command) -> Run {
    let output: Output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_balance_and_transfers_with_their_refusals() {
    let horde = Horde::start().await;
    // register --save keeps the key in the profile; later commands use it.
    let registered = horde
        .cli(&["register", "admin", "--save", "--json"], &[])
        .await;
    let body = registered.assert_ok().json();
    assert_eq!(body["username"], "admin#1");
    assert_eq!(body["saved"], true);
    let key = body["api_key"].as_str().unwrap().to_owned();
    let saved = std::fs::read_to_string(horde.config_path()).unwrap();
    assert!(saved.contains(&key), "{saved}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(horde.config_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is readable by others");
        let mut staged = horde.config_path().into_os_string();
        staged.push(".new");
        assert!(
            !std::path::Path::new(&staged).exists(),
            "a staged file was left"
        );
    }
    let me = horde.cli(&["whoami", "--json"], &[]).await;
    assert_eq!(me.assert_ok().json()["username"], "admin#1");
    // A saved key is never overwritten, and nothing is registered when --save would.
    horde
        .cli(&["register", "second", "--save"], &[])
        .await
        .assert_fails(2, "already holds a key");
    assert_eq!(std::fs::read_to_string(horde.config_path()).unwrap(), saved);
    let users = horde
        .http
        .get(format!("{}/api/v2/users", horde.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!users.contains("second"), "{users}");
    let plain = horde.cli(&["whoami"], &[]).await;
    assert!(plain.assert_ok().stdout.contains("admin#1"));

    // An administrator (as `horde-server create-admin` makes one) funds the account.
    let (_, root) = horde.admin("root").await;
    horde
        .api(
            reqwest::Method::PUT,
            "/users/1",
            &root,
            json!({ "kudos": 100 }),
        )
        .await;
    let bob_key = horde.register("bob").await;
    let balance = horde.cli(&["balance", "--json"], &[]).await;
    assert_eq!(balance.assert_ok().json()["kudos"], 100);

    let sent = horde
        .cli(&["transfer", "bob#3", "12.5", "--yes", "--json"], &[])
        .await;
    let sent = sent.assert_ok().json();
    assert_eq!(sent["transferred"], 12.5);
    assert_eq!(sent["to"], "bob#3");
    assert_eq!(sent["kudos"], 87.5);
    let plain = horde.cli(&["transfer", "bob#3", "0.5", "--yes"], &[]).await;
    assert!(
        plain.assert_ok().stdout.contains("Your balance: 87"),
        "{}",
        plain.stdout
    );

    // Refusals, each with its exit status and a message that says what to do.
    horde
        .cli(&["transfer", "admin#1", "1", "--yes"], &[])
        .await
        .assert_fails(1, "KudosTransferToSelf");
    horde
        .cli(&["transfer", "bob#3", "1000", "--yes"], &[])
        .await
        .assert_fails(1, "horde-cli balance");
    horde
        .cli(&["transfer", "ghost#99", "1", "--yes"], &[])
        .await
        .assert_fails(1, "UserNotFound");
    // An alias that does not match the id is not someone else.
    horde
        .cli(&["transfer", "mallory#3", "1", "--yes"], &[])
        .await
        .assert_fails(1, "UserNotFound");
    horde
        .cli(&["transfer", "bob#3", "1"], &[])
        .await
        .assert_fails(2, "--yes");
    // More than is held is refused before anything is asked (no --yes, no terminal).
    horde
        .cli(&["transfer", "bob#3", "1000"], &[])
        .await
        .assert_fails(1, "KudosTransferNotEnough");
    // A negative amount is an amount, refused as one (not an unknown flag).
    horde
        .cli(&["transfer", "bob#3", "-1", "--yes"], &[])
        .await
        .assert_fails(2, "above 0");
    // An empty key is a mistake, not the anonymous account.
    horde
        .cli(&["balance"], &[("HORDE_API_KEY", "")])
        .await
        .assert_fails(2, "API key is empty");
    // Anonymous (an empty profile) cannot send.
    let mut anonymous = base_command(&horde.dir.path().join("none.toml"));
    anonymous.args(["--url", &horde.url, "transfer", "bob#3", "1", "--yes"]);
    run(anonymous).await.assert_fails(2, "API key");
    // A wrong key says how to set the right one.
    horde
        .cli(&["balance", "--api-key", "AAAAAAAAAAAAAAAAAAAAAA"], &[])
        .await
        .assert_fails(1, "HORDE_API_KEY");
    // Keys are url-safe base64, so one in 64 starts with `-`: still a key, not a flag.
    horde
        .cli(&["balance", "--api-key", "-AAAAAAAAAAAAAAAAAAAAA"], &[])
        .await
        .assert_fails(1, "HORDE_API_KEY");

    let bob = horde
        .cli(&["balance", "--json"], &[("HORDE_API_KEY", &bob_key)])
        .await;
    assert_eq!(bob.assert_ok().json()["kudos"], 13);
    let users = horde.cli(&["users", "list", "--json"], &[]).await;
    let users = users.assert_ok().json();
    assert_eq!(users[0]["username"], "admin#1");
    let shown = horde.cli(&["user", "show", "bob#3", "--json"], &[]).await;
    assert_eq!(shown.assert_ok().json()["kudos"], 13);
    let plain = horde.cli(&["user", "show", "bob#3"], &[]).await;
    assert!(
        plain.assert_ok().stdout.contains("account age"),
        "{}",
        plain.stdout
    );

    // Without a terminal nothing is asked: the key is shown, with where to keep it.
    let shown = horde.cli(&["register", "third"], &[]).await;
    let stdout = &shown.assert_ok().stdout;
    assert!(
        stdout.contains("API key: ") && stdout.contains("api_key = "),
        "{stdout}"
    );
}

/// A worker the test runs: pops for `MODEL` and submits `text`, until stopped.
fn run_worker(horde: &Horde, key: String, text: &'static str) -> tokio::task::JoinHandle<()> {
    let (http, url) = (horde.http.clone(), horde.url.clone());
    tokio::spawn(async move {
        loop {
            let job: Value = match http
                .post(format!("{url}/api/v2/generate/text/pop"))
                .header("apikey", &key)
                .json(&json!({ "name": "cli-test-worker", "models": [MODEL] }))
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => return,
            };
            if let Some(id) = job["id"].as_str() {
                let _ = http
                    .post(format!("{url}/api/v2/generate/text/submit"))
                    .header("apikey", &key)
                    .json(&json!({ "id": id, "generation": text }))
                    .send()
                    .await;
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_waits_for_a_worker_and_prints_the_text() {
    let horde = Horde::start().await;
    let owner = horde.register("volunteer").await;
    let worker = run_worker(&horde, owner.clone(), " and the horde answered.");
    let generated = horde
        .cli(
            &[
                "generate",
                "Say something",
                "--model",
                MODEL,
                "--poll-secs",
                "0.1",
            ],
            &[],
        )
        .await;
    assert_eq!(generated.assert_ok().stdout, " and the horde answered.\n");
    let prompt = horde.dir.path().join("prompt.txt");
    std::fs::write(&prompt, "From a file").unwrap();
    let generated = horde
        .cli(
            &[
                "generate",
                "--file",
                prompt.to_str().unwrap(),
                "-n",
                "2",
                "--poll-secs",
                "0.1",
                "--json",
            ],
            &[],
        )
        .await;
    let status = generated.assert_ok().json();
    assert_eq!(status["done"], true);
    assert_eq!(status["generations"].as_array().unwrap().len(), 2);
    assert_eq!(status["generations"][0]["worker_name"], "cli-test-worker");

    // --no-wait prints the id; status and cancel take it.
    let queued = horde
        .cli(
            &[
                "generate",
                "later",
                "--model",
                "none/unserved-7B",
                "--no-wait",
            ],
            &[("HORDE_API_KEY", &owner)],
        )
        .await;
    let id = queued.assert_ok().stdout.trim().to_owned();
    let status = horde.cli(&["status", &id, "--json"], &[]).await;
    let status = status.assert_ok().json();
    assert_eq!(status["waiting"], 1);
    assert_eq!(status["done"], false);
    // Nobody serves that model: no made-up estimate.
    let plain = horde.cli(&["status", &id], &[]).await;
    assert!(
        plain
            .assert_ok()
            .stdout
            .contains("unknown: no online worker serves these models"),
        "{}",
        plain.stdout
    );
    let cancelled = horde.cli(&["cancel", &id], &[]).await;
    let said = &cancelled.assert_ok().stdout;
    assert!(said.contains(&format!("cancelled request {id}")), "{said}");
    let cancelled = horde.cli(&["cancel", &id, "--json"], &[]).await;
    assert_eq!(cancelled.assert_ok().json()["done"], true);
    let plain = horde.cli(&["status", &id], &[]).await;
    assert!(
        plain.assert_ok().stdout.contains("done"),
        "{}",
        plain.stdout
    );
    horde
        .cli(&["status", "00000000-0000-0000-0000-000000000000"], &[])
        .await
        .assert_fails(1, "RequestNotFound");

    // The lists see the worker and its model.
    let workers = horde.cli(&["workers", "list", "--json"], &[]).await;
    assert_eq!(workers.assert_ok().json()[0]["name"], "cli-test-worker");
    let mine = horde
        .cli(
            &["workers", "list", "--mine", "--json"],
            &[("HORDE_API_KEY", &owner)],
        )
        .await;
    assert_eq!(mine.assert_ok().json().as_array().unwrap().len(), 1);
    let someone = horde.register("someone").await;
    let theirs = horde
        .cli(
            &["workers", "list", "--mine", "--json"],
            &[("HORDE_API_KEY", &someone)],
        )
        .await;
    assert_eq!(theirs.assert_ok().json(), json!([]));
    let models = horde.cli(&["models", "--json"], &[]).await;
    assert!(models
        .assert_ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == MODEL));
    let table = horde.cli(&["models"], &[]).await;
    assert!(table.assert_ok().stdout.contains(MODEL));
    let status = horde.cli(&["status", "--json"], &[]).await;
    assert!(
        status.assert_ok().json()["totals"]["total"]["requests"]
            .as_u64()
            .unwrap()
            >= 3
    );

    // The owner changes the worker.
    worker.abort();
    let changed = horde
        .cli(
            &[
                "worker",
                "maintenance",
                "cli-test-worker",
                "on",
                "--message",
                "back soon",
                "--json",
            ],
            &[("HORDE_API_KEY", &owner)],
        )
        .await;
    assert_eq!(
        changed.assert_ok().json(),
        json!({ "maintenance": true, "maintenance_msg": "back soon" })
    );
    horde
        .cli(
            &["worker", "rename", "cli-test-worker", "renamed"],
            &[("HORDE_API_KEY", &owner)],
        )
        .await
        .assert_ok();
    horde
        .cli(
            &["worker", "info", "renamed", "my GPU"],
            &[("HORDE_API_KEY", &owner)],
        )
        .await
        .assert_ok();
    let shown = horde
        .cli(&["worker", "show", "renamed", "--json"], &[])
        .await;
    let shown = shown.assert_ok().json();
    assert_eq!(shown["info"], "my GPU");
    assert_eq!(shown["maintenance_mode"], true);
    horde
        .cli(
            &["worker", "info", "renamed", "x"],
            &[("HORDE_API_KEY", &someone)],
        )
        .await
        .assert_fails(1, "WrongCredentials");
    horde
        .cli(&["worker", "show", "nobody"], &[])
        .await
        .assert_fails(1, "WorkerNotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_request_on_the_horde() {
    let horde = Horde::start().await;
    let key = horde.register("impatient").await;
    let mut command = base_command(&horde.config_path());
    command
        .args(["--url", &horde.url, "--api-key", &key])
        .args([
            "generate",
            "nobody serves this",
            "--model",
            "none/unserved-7B",
            "--poll-secs",
            "0.1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    let performance = |horde: &Horde| {
        let (http, url) = (horde.http.clone(), horde.url.clone());
        async move {
            let body: Value = http
                .get(format!("{url}/api/v2/status/performance"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["queued_text_requests"].as_u64().unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while performance(&horde).await == 0 {
        assert!(Instant::now() < deadline, "the request was never queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelled request"), "{stderr}");
    assert_eq!(performance(&horde).await, 0, "the request is still queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_come_from_flags_then_env_then_the_profile() {
    let horde = Horde::start().await;
    let unreachable = "http://127.0.0.1:9";
    let config = horde.config_path();
    std::fs::write(
        &config,
        format!(
            "default_profile = \"dead\"\n[profiles.dead]\nurl = \"{unreachable}\"\n\
             [profiles.live]\nurl = \"{}\"\n",
            horde.url
        ),
    )
    .unwrap();
    let status = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = base_command(&config);
        command.args(args).arg("status").arg("--json");
        for (k, v) in env {
            command.env(k, v);
        }
        run(command)
    };
    // The default profile points nowhere: a connection error, exit status 2, with a hint.
    status(&[], &[]).await.assert_fails(2, "Check --url");
    // Another profile, by flag or by env.
    status(&["--profile", "live"], &[]).await.assert_ok();
    status(&[], &[("HORDE_PROFILE", "live")]).await.assert_ok();
    status(&["--profile", "missing"], &[])
        .await
        .assert_fails(2, "no profile");
    // HORDE_URL beats the profile; --url beats HORDE_URL.
    let env_wins = status(&[], &[("HORDE_URL", &horde.url)]).await;
    assert_eq!(env_wins.assert_ok().json()["url"], horde.url.as_str());
    status(&["--url", unreachable], &[("HORDE_URL", &horde.url)])
        .await
        .assert_fails(2, "cannot reach");
    let flag_wins = status(&["--url", &horde.url], &[("HORDE_URL", unreachable)]).await;
    flag_wins.assert_ok();
    // Usage errors and a broken config file are exit status 2.
    status(&["--url", "ftp://x"], &[])
        .await
        .assert_fails(2, "http://");
    std::fs::write(&config, "nonsense = [").unwrap();
    status(&[], &[]).await.assert_fails(2, "not valid");
    let mut bad = base_command(&config);
    bad.arg("transfer");
    run(bad).await.assert_fails(2, "Usage");
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let mut command = base_command(Path::new("/nonexistent/cli.toml"));
        command.args(["completions", shell]);
        let done = run(command).await;
        done.assert_ok();
        assert!(done.stdout.contains("horde-cli"), "{shell}");
        // A reader that is gone before the script is written (`| head -1` that finished):
        // a quiet success, not a panic.
        let mut command = base_command(Path::new("/nonexistent/cli.toml"));
        command
            .args(["completions", shell])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{shell}: {stderr}");
        assert!(!stderr.contains("panicked"), "{shell}: {stderr}");
    }
}

/// A child process killed when dropped (a failing test leaves nothing running).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_prints_the_text_as_the_worker_streams_it() {
    let horde = Horde::start().await;
    let owner = horde.register("volunteer").await;
    let mut command = base_command(&horde.config_path());
    command
        .arg("--url")
        .arg(&horde.url)
        .args(["generate", "Say something", "--model", MODEL, "--stream"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(command.spawn().unwrap());
    let mut stdout = child.0.stdout.take().unwrap();
    let (printed, received) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buffer = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0
                || printed
                    .send(String::from_utf8_lossy(&buffer[..n]).into())
                    .is_err()
            {
                return;
            }
        }
    });
    // The test is the worker: it takes the job and posts its first words.
    let pop = json!({ "name": "streamer", "models": [MODEL], "wait": 10 });
    let job = loop {
        let answer = horde
            .api(
                reqwest::Method::POST,
                "/generate/text/pop",
                &owner,
                pop.clone(),
            )
            .await;
        if let Some(id) = answer["id"].as_str() {
            break id.to_owned();
        }
    };
    let mut listening = false;
    for _ in 0..250 {
        let progress = json!({ "id": job, "offset": 0, "text": "Once" });
        let answer = horde
            .api(
                reqwest::Method::POST,
                "/generate/text/progress",
                &owner,
                progress,
            )
            .await;
        if answer["listening"] == true {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(listening, "the CLI reads the request's stream");
    // The first words are printed while the generation is still going.
    let mut shown = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !shown.contains("Once") && Instant::now() < deadline {
        if let Ok(more) = received.recv_timeout(Duration::from_millis(100)) {
            shown.push_str(&more);
        }
    }
    assert_eq!(shown, "Once", "printed before the submit");
    let submitted = horde
        .api(
            reqwest::Method::POST,
            "/generate/text/submit",
            &owner,
            json!({ "id": job, "generation": "Once upon a time." }),
        )
        .await;
    assert!(submitted["reward"].is_number(), "{submitted}");
    let status = tokio::task::spawn_blocking(move || child.0.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    while let Ok(more) = received.recv_timeout(Duration::from_secs(5)) {
        shown.push_str(&more);
    }
    assert_eq!(shown, "Once upon a time.\n");
}

/// `login` saves a key you already have — checked with the horde first, never saved when the
/// horde does not know it —, keeps the file's comments and other profiles, leaves it readable
/// by you only, and prints a key it replaces; `config profiles`, `config set` and `config
/// use-profile` manage profiles as kubectl manages its contexts. No step loses a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_profiles_never_lose_a_key() {
    let horde = Horde::start().await;
    let alice = horde.register("alice").await;
    let bob = horde.register("bob").await;
    let config = horde.config_path();
    std::fs::write(
        &config,
        "# my hordes\n[profiles.public]\nurl = \"https://horde.example.org\" # the big one\n",
    )
    .unwrap();
    let login = |input: &str, env: &[(&str, &str)]| {
        let mut command = base_command(&config);
        command.arg("--url").arg(&horde.url).arg("login");
        for (k, v) in env {
            command.env(k, v);
        }
        run_with_input(command, input.to_owned())
    };
    login("AAAAAAAAAAAAAAAAAAAAAA\n", &[])
        .await
        .assert_fails(1, "nothing was saved");
    assert!(!std::fs::read_to_string(&config)
        .unwrap()
        .contains("api_key"));

    let done = login(&format!("{alice}\n"), &[]).await;
    assert!(
        done.assert_ok().stdout.contains("Logged in as alice#"),
        "{}",
        done.stdout
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("# my hordes") && text.contains("# the big one"),
        "{text}"
    );
    assert!(text.contains(&format!("api_key = \"{alice}\"")), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }
    let who = horde.cli(&["whoami", "--json"], &[]).await;
    assert!(who.assert_ok().json()["username"]
        .as_str()
        .unwrap()
        .starts_with("alice#"));

    // Another key replaces it (from HORDE_API_KEY, nothing read): the old one is printed.
    let replaced = login("", &[("HORDE_API_KEY", &bob)]).await;
    replaced.assert_ok();
    assert!(replaced.stderr.contains(&alice), "{}", replaced.stderr);

    // Profiles, as kubectl's contexts.
    horde
        .cli(
            &["--profile", "public", "config", "set", "api-key", &alice],
            &[],
        )
        .await
        .assert_ok();
    let set_again = horde
        .cli(
            &["--profile", "public", "config", "set", "api-key", &bob],
            &[],
        )
        .await;
    assert!(
        set_again.assert_ok().stderr.contains(&alice),
        "{}",
        set_again.stderr
    );
    horde
        .cli(
            &["--profile", "public", "config", "set", "api-key", &alice],
            &[],
        )
        .await
        .assert_ok();
    horde
        .cli(&["config", "use-profile", "public"], &[])
        .await
        .assert_ok();
    horde
        .cli(&["config", "use-profile", "nope"], &[])
        .await
        .assert_fails(2, "there is no profile \"nope\"");
    let listed = horde.cli(&["config", "profiles", "--json"], &[]).await;
    let listed = listed.assert_ok().json();
    let public = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "public")
        .unwrap()
        .clone();
    assert_eq!(
        public,
        json!({ "name": "public", "url": "https://horde.example.org", "has_key": true,
                "default": true })
    );
    // The default profile is public now (its URL overridden here by --url): alice again.
    let who = horde.cli(&["whoami", "--json"], &[]).await;
    assert!(who.assert_ok().json()["username"]
        .as_str()
        .unwrap()
        .starts_with("alice#"));
    horde
        .cli(&["config", "set", "url", "ftp://x"], &[])
        .await
        .assert_fails(2, "http://");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("# the big one"), "{text}");
}

/// Help never shows an environment variable's value (`[env: HORDE_PROFILE=]` when unset, or
/// a key when set).
#[tokio::test]
async fn help_shows_variables_not_their_values() {
    let mut command = base_command(Path::new("/nonexistent/cli.toml"));
    command
        .env("HORDE_URL", "http://secret.example")
        .arg("--help");
    let help = run(command).await;
    help.assert_ok();
    assert!(
        help.stdout.contains("[env: HORDE_PROFILE]"),
        "{}",
        help.stdout
    );
    assert!(!help.stdout.contains("secret.example"), "{}", help.stdout);
    assert!(
        !help.stdout.contains("HORDE_PROFILE=") && !help.stdout.contains("HORDE_URL="),
        "{}",
        help.stdout
    );
    let mut command = base_command(Path::new("/nonexistent/cli.toml"));
    command.args(["completions", "--help"]);
    let help = run(command).await;
    assert!(
        help.assert_ok().stdout.contains("Invoke-Expression"),
        "{}",
        help.stdout
    );
}
