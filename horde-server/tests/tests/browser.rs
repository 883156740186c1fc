//! The web pages in a real browser: headless Chromium driven over WebDriver (fantoccini).
//! Runs when `HORDE_CHROMEDRIVER` names a chromedriver (`.ci/run` installs Debian's `chromium`
//! and `chromium-driver` and sets it); `HORDE_CHROMIUM` names the browser (default
//! `/usr/bin/chromium`). Screenshots of each page at desktop and phone sizes go to
//! `target/screenshots/`.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::oauth::{settings, start_provider};
use crate::util::TestServer;

/// chromedriver in a process group of its own, with the Chromium it starts: the whole group is
/// killed on drop, so a test that panics before closing its session leaves no browser running.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver and a headless Chromium session.
async fn browser(chromedriver: &str) -> (Driver, Client) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new(chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let chromium = std::env::var("HORDE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.keep().display()),
            ]
        }),
    );
    // Plain HTTP to chromedriver on loopback: no TLS needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&url)
        .await
        .unwrap();
    (driver, client)
}

/// Saves a screenshot of the page at desktop and phone sizes.
async fn screenshots(client: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for (size, width, height) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        client.set_window_size(width, height).await.unwrap();
        let png = client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}-{size}.png")), png).unwrap();
        // Nothing wider than the screen: wide tables and commands scroll in their own box.
        let widths = client
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth]",
                vec![],
            )
            .await
            .unwrap();
        let (page, window) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            page <= window,
            "{name} is {page} px wide in a {window} px {size} window"
        );
    }
    client.set_window_size(1280, 900).await.unwrap();
}

async fn fill(client: &Client, name: &str, value: &str) {
    let field = client
        .find(Locator::Css(&format!("input[name='{name}']")))
        .await
        .unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn submit(client: &Client, form_action: &str) {
    client
        .find(Locator::Css(&format!(
            "form[action='{form_action}'] button[type='submit']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The text of the element `id`, waiting for it to appear (a page may still be loading).
async fn text_of(client: &Client, id: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The page's path once it is `expected` (waiting up to 10 s for a navigation to finish).
async fn path_becomes(client: &Client, expected: &str) -> String {
    let started = Instant::now();
    loop {
        let path = client.current_url().await.unwrap().path().to_owned();
        if path == expected || started.elapsed() > Duration::from_secs(10) {
            return path;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn page_text(client: &Client) -> String {
    client.source().await.unwrap()
}

/// Waits up to 10 s for the page to contain `needle`.
async fn shows(client: &Client, needle: &str) {
    let started = Instant::now();
    loop {
        let page = page_text(client).await;
        if page.contains(needle) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the page never showed {needle:?}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_pages_work_in_a_real_browser() {
    let Ok(chromedriver) = std::env::var("HORDE_CHROMEDRIVER") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: .ci/run sets HORDE_CHROMEDRIVER after installing chromium"
        );
        eprintln!("skipped: set HORDE_CHROMEDRIVER to a chromedriver (.ci/run does)");
        return;
    };
    let (provider, provider_url) = start_provider().await;
    let server = TestServer::start_with(|config| {
        config.oauth.github = Some(settings(&provider_url));
    })
    .await;
    let (_, admin_key) = server.admin("admin").await;
    let (bob, bob_key) = server.register("bob").await;
    let site = server.base.trim_end_matches("/api/v2").to_owned();
    let (_driver, client) = browser(&chromedriver).await;

    // The home page's figures, before any generation.
    client.goto(&site).await.unwrap();
    shows(&client, "Generations in total</th><td>0<").await;

    // Register: the key is shown once.
    client.goto(&format!("{site}/register")).await.unwrap();
    screenshots(&client, "register").await;
    fill(&client, "username", "alice").await;
    submit(&client, "/register").await;
    let key = text_of(&client, "api-key").await;
    assert_eq!(key.len(), 22, "{key}");
    screenshots(&client, "registered").await;
    // The Copy button says what it did (copied, or the key left selected to copy by hand).
    let copy = client
        .find(Locator::XPath("//button[text()='Copy']"))
        .await
        .unwrap();
    copy.click().await.unwrap();
    // The clipboard answers in its own time.
    let started = Instant::now();
    let said = loop {
        let said = copy.text().await.unwrap();
        if said != "Copy" || started.elapsed() > Duration::from_secs(10) {
            break said;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        said == "Copied" || said == "Selected: copy it by hand",
        "{said}"
    );
    // Registering signed alice in; she signs out to sign in with the key.
    shows(&client, "You are signed in").await;
    submit(&client, "/logout").await;
    assert_eq!(path_becomes(&client, "/").await, "/");
    let alice = server.get("/find_user", Some(&key)).await.1;
    let alice_id = alice["id"].as_u64().unwrap();
    // The administrator gives alice kudos to send.
    let (status, _) = server
        .call(
            Method::PUT,
            &format!("/users/{alice_id}"),
            Some(&admin_key),
            Some(json!({ "kudos": 50 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Sign in with the key.
    client.goto(&format!("{site}/login")).await.unwrap();
    shows(&client, "Sign in with GitHub").await;
    screenshots(&client, "login").await;
    fill(&client, "apikey", &key).await;
    submit(&client, "/login").await;
    assert_eq!(path_becomes(&client, "/account").await, "/account");
    assert_eq!(text_of(&client, "balance").await, "50");
    screenshots(&client, "account").await;

    // A transfer to bob, refused first (to yourself), then confirmed.
    client.goto(&format!("{site}/transfer")).await.unwrap();
    fill(&client, "username", &format!("alice#{alice_id}")).await;
    fill(&client, "amount", "5").await;
    submit(&client, "/transfer").await;
    shows(&client, "to yourself").await;
    fill(&client, "username", &format!("bob#{bob}")).await;
    fill(&client, "amount", "20").await;
    submit(&client, "/transfer").await;
    assert_eq!(text_of(&client, "confirm-to").await, format!("bob#{bob}"));
    assert_eq!(text_of(&client, "confirm-amount").await, "20");
    screenshots(&client, "transfer-confirm").await;
    submit(&client, "/transfer/send").await;
    assert_eq!(text_of(&client, "balance").await, "30");
    screenshots(&client, "transfer-sent").await;
    assert_eq!(
        server.get("/find_user", Some(&bob_key)).await.1["kudos"],
        20
    );
    // Back and send again: the same form pays once.
    client.back().await.unwrap();
    submit(&client, "/transfer/send").await;
    assert_eq!(
        server.get("/find_user", Some(&bob_key)).await.1["kudos"],
        20
    );

    // Sign out, then in through the OAuth provider.
    client.goto(&format!("{site}/account")).await.unwrap();
    submit(&client, "/logout").await;
    assert_eq!(path_becomes(&client, "/").await, "/");
    *provider.user.lock() = json!({ "id": 99, "login": "octo" });
    client.goto(&format!("{site}/login")).await.unwrap();
    client
        .find(Locator::LinkText("Sign in with GitHub"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(path_becomes(&client, "/account").await, "/account");
    assert!(text_of(&client, "balance").await.parse::<f64>().is_ok());
    shows(&client, "octo#").await;

    // A generation moves the home page's figures.
    let (_, worker_key) = server.register("volunteer").await;
    let (_, queued) = server
        .post(
            "/generate/text/async",
            Some(&bob_key),
            json!({ "prompt": "Hello" }),
        )
        .await;
    let (_, job) = server
        .post(
            "/generate/text/pop",
            Some(&worker_key),
            json!({ "name": "gpu-1", "models": ["koboldcpp/Llama-3-8B-Instruct"] }),
        )
        .await;
    assert!(queued["id"].is_string() && job["id"].is_string(), "{job}");
    let (status, _) = server
        .post(
            "/generate/text/submit",
            Some(&worker_key),
            json!({ "id": job["id"], "generation": "Hi there!" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    client.goto(&site).await.unwrap();
    shows(&client, "Generations in total</th><td>1<").await;
    screenshots(&client, "home").await;
    for page in ["workers", "models", "users", "api", "no-such-page"] {
        client.goto(&format!("{site}/{page}")).await.unwrap();
        screenshots(&client, page).await;
    }
    client
        .find(Locator::LinkText("workers"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::LinkText("gpu-1"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shows(&client, "tokens per second").await;
    screenshots(&client, "worker").await;
    client.close().await.unwrap();
    server.stop().await;
}
