//! A test server on a loopback port, and JSON helpers.

use std::path::PathBuf;

use horde_server::{Clock, Config};
use horde_testkit::TestHorde;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

/// A horde-server running in this process on `127.0.0.1:<random port>`
/// (`horde_testkit::TestHorde`, on SQLite or, with `HORDE_TEST_STORE=postgres`, PostgreSQL),
/// with JSON helpers for tests that send bodies as they come.
pub(crate) struct TestServer {
    horde: TestHorde,
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
}

impl std::ops::Deref for TestServer {
    type Target = TestHorde;

    fn deref(&self) -> &TestHorde {
        &self.horde
    }
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, tweak).await
    }

    /// Starts on the database in `dir` (which may hold one from an earlier server).
    pub(crate) async fn start_in(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_with_clock(dir, Clock::System, tweak).await
    }

    /// Starts on the database in `dir` with `clock` (a manual clock lets a test move time).
    pub(crate) async fn start_with_clock(
        dir: TempDir,
        clock: Clock,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = horde_testkit::test_config(&db_path(&dir));
        tweak(&mut config);
        let horde = TestHorde::start_in(dir, clock, config).await;
        TestServer {
            base: format!("{}/api/v2", horde.url),
            horde,
            client: reqwest::Client::new(),
        }
    }

    /// Asks the server to stop without waiting for it.
    pub(crate) fn begin_stop(&mut self) {
        self.horde.begin_stop();
    }

    /// Waits until the server has stopped; returns its result.
    pub(crate) async fn stopped(&mut self) -> std::io::Result<()> {
        self.horde.stopped().await
    }

    /// Stops gracefully (flushing the database) and hands back the directory.
    pub(crate) async fn stop(self) -> TempDir {
        self.horde.stop().await
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("apikey", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text:?}"));
        (status, value)
    }

    pub(crate) async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, key, None).await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(Method::POST, path, key, Some(body)).await
    }

    /// Registers `name`; returns (id, api key).
    pub(crate) async fn register(&self, name: &str) -> (u64, String) {
        let registered = self.horde.register(name).await;
        (registered.id, registered.api_key)
    }
}

/// The database of the server whose files are in `dir`: a SQLite file in it, or, when
/// `HORDE_TEST_STORE=postgres` (with `HORDE_TEST_POSTGRES_URL`), a PostgreSQL database named
/// after it (created on first use), so that the whole suite runs on either store.
pub(crate) fn db_path(dir: &TempDir) -> PathBuf {
    store_for(&dir.path().join("horde.sqlite"))
}

/// The `--db` value for a server whose SQLite file would be `file`: the file itself, or, when
/// the suite runs on PostgreSQL, a database named after it (created on first use).
pub(crate) fn store_for(file: &std::path::Path) -> PathBuf {
    match test_postgres_store() {
        Some(url) => PathBuf::from(postgres_database(&url, &database_name(file))),
        None => file.to_path_buf(),
    }
}

/// Returns true if and only if the suite runs on PostgreSQL (`HORDE_TEST_STORE=postgres`).
pub(crate) fn on_postgres() -> bool {
    test_postgres_store().is_some()
}

/// The PostgreSQL server for tests, when the suite runs on PostgreSQL.
fn test_postgres_store() -> Option<String> {
    let on = std::env::var("HORDE_TEST_STORE").is_ok_and(|s| s == "postgres");
    on.then(|| {
        std::env::var("HORDE_TEST_POSTGRES_URL")
            .expect("HORDE_TEST_STORE=postgres needs HORDE_TEST_POSTGRES_URL")
    })
}

/// The PostgreSQL server for tests that need one, if `HORDE_TEST_POSTGRES_URL` is set.
pub(crate) fn test_postgres_url() -> Option<String> {
    std::env::var("HORDE_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A database name unique to `dir`.
pub(crate) fn database_name(dir: &std::path::Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    format!("horde_test_{:016x}", hasher.finish())
}

/// Creates database `name` on the server of `url` unless it exists; returns its URL.
pub(crate) fn postgres_database(url: &str, name: &str) -> String {
    let (server, name_owned) = (url.to_owned(), name.to_owned());
    // The `postgres` crate blocks on a runtime of its own: not on a tokio worker.
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        if let Err(e) = client.batch_execute(&format!("CREATE DATABASE {name_owned}")) {
            let exists = e
                .as_db_error()
                .is_some_and(|db| db.code() == &postgres::error::SqlState::DUPLICATE_DATABASE);
            assert!(exists, "{e:?}");
        }
    })
    .join()
    .unwrap();
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    format!("{base}/{name}")
}

/// Kudos in a JSON body as thousandths (exact comparisons).
pub(crate) fn milli(value: &Value) -> i64 {
    (value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
        * 1000.0)
        .round() as i64
}

/// Asserts an error body: the status, the rc, and a non-empty message.
pub(crate) fn assert_error(got: &(StatusCode, Value), status: StatusCode, rc: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["rc"], rc, "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

/// The routes declared in the router's source (the API's and the web pages'): `(method, path)`.
pub(crate) fn declared_routes() -> Vec<(Method, String)> {
    let sources = [
        ("/api/v2", include_str!("../../src/api/mod.rs")),
        ("", include_str!("../../src/web/mod.rs")),
    ];
    let mut routes = Vec::new();
    for (prefix, source) in sources {
        let mut rest = source;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's text up to its closing parenthesis.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let call = &rest[..end];
            let Some(path) = call.split('"').nth(1) else {
                continue;
            };
            for (name, method) in [
                ("get(", Method::GET),
                ("post(", Method::POST),
                ("put(", Method::PUT),
                ("delete(", Method::DELETE),
                ("patch(", Method::PATCH),
            ] {
                if call.contains(name) {
                    routes.push((method, format!("{prefix}{path}")));
                }
            }
        }
    }
    routes
}
