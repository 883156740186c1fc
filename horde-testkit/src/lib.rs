//! `horde-testkit`: what the test suites of horde-server, horde-cli and horde-worker share.
//!
//! * [`TestHorde`]: a real horde-server in the test's process on `127.0.0.1:<free port>`, with
//!   a database in a temporary directory, the test configuration ([`test_config`]) and
//!   [`horde_api::Client`]s for it; it can be stopped and started again on the same port and
//!   database, as after a restart.
//! * [`eventually`]: polling until something holds, with a timeout that names what was awaited.
//!
//! Test helpers panic on failure: that is how a test fails.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use horde_api::{Client, Registered};
use horde_server::{serve, Clock, Config, Driver};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `chars` characters of ordinary prose: a generation the horde pays (a text of one character
/// repeated is degenerate and pays nothing).
pub fn prose(chars: usize) -> String {
    "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(chars)
        .collect()
}

/// The configuration tests run with, on the database `db`: registrations and transfers are not
/// rate-limited, and the speed and escrow rules and spot checks are off (the tests' workers
/// submit the moment they pop, check exact balances of untrusted owners and expect the jobs
/// they queued; those rules have their own tests).
pub fn test_config(db: &Path) -> Config {
    let mut config = Config {
        db: db.to_path_buf(),
        registrations_per_minute: 1000,
        transfers_per_minute: 1000,
        transfers_per_minute_per_ip: 1000,
        ..Config::default()
    };
    config.horde.integrity.speed_limits.clear();
    config.horde.integrity.escrow_untrusted = false;
    config.horde.spot_checks.rate_untrusted = 0.0;
    config.horde.spot_checks.rate_trusted = 0.0;
    config
}

/// A horde-server running in this process.
#[derive(Debug)]
pub struct TestHorde {
    /// `http://127.0.0.1:<port>`, the horde's root.
    pub url: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its directory (the SQLite database, and room for the test's own files).
    pub dir: TempDir,
    /// Its driver while it runs (dropped when it stops: the database stays locked while a
    /// driver lives).
    driver: Option<Driver>,
    config: Config,
    clock: Clock,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestHorde {
    /// A horde with [`test_config`] on a new SQLite database.
    pub async fn start() -> TestHorde {
        TestHorde::start_with(|_| {}).await
    }

    /// A horde with [`test_config`] changed by `tweak`, on a new SQLite database.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestHorde {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&dir.path().join("horde.sqlite"));
        tweak(&mut config);
        TestHorde::start_in(dir, Clock::System, config).await
    }

    /// A horde with `config` (its `db` may hold an earlier server's state) and `clock`,
    /// keeping `dir` for as long as it lives.
    pub async fn start_in(dir: TempDir, clock: Clock, config: Config) -> TestHorde {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (driver, stop, task) = serve_on(listener, config.clone(), clock.clone()).await;
        TestHorde {
            url: format!("http://{addr}"),
            addr,
            dir,
            driver: Some(driver),
            config,
            clock,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Its driver, for what only an operator can do (`create-admin`). Panics once stopped.
    pub fn driver(&self) -> &Driver {
        self.driver.as_ref().expect("the horde is stopped")
    }

    /// A client of this horde without a key (the anonymous user).
    pub fn api(&self) -> Client {
        Client::new(&self.url).unwrap()
    }

    /// A client of this horde acting with `key`.
    pub fn client(&self, key: &str) -> Client {
        self.api().api_key(key)
    }

    /// Registers `name`; the answer holds the id, `alias#id` and the key.
    pub async fn register(&self, name: &str) -> Registered {
        self.api().register(name).await.unwrap()
    }

    /// Creates the administrator `name` as `horde-server create-admin` does; returns (id, key).
    pub async fn admin(&self, name: &str) -> (u64, String) {
        let (row, key) = horde_server::ops::users::create_admin(self.driver(), name)
            .await
            .unwrap();
        (row.id.0, key)
    }

    /// Asks the server to stop, without waiting.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until the server has stopped; its result.
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        self.driver = None;
        match self.task.take() {
            Some(task) => task.await.unwrap(),
            None => Ok(()),
        }
    }

    /// Stops the server (in-flight requests finish; the database is flushed and closed) and
    /// keeps what is needed to [`TestHorde::start_again`].
    pub async fn stop_for_now(&mut self) {
        self.begin_stop();
        self.stopped().await.unwrap();
    }

    /// Stops the server and hands back its directory (to start another on it).
    pub async fn stop(mut self) -> TempDir {
        self.stop_for_now().await;
        self.dir
    }

    /// Starts the stopped server again on the same port, from its database.
    pub async fn start_again(&mut self) {
        let addr = self.addr;
        let listener = eventually("the horde's port", Duration::from_secs(10), || async move {
            tokio::net::TcpListener::bind(addr).await.ok()
        })
        .await;
        let (driver, stop, task) =
            serve_on(listener, self.config.clone(), self.clock.clone()).await;
        self.driver = Some(driver);
        self.stop = Some(stop);
        self.task = Some(task);
    }
}

async fn serve_on(
    listener: tokio::net::TcpListener,
    config: Config,
    clock: Clock,
) -> (Driver, oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let driver = tokio::task::spawn_blocking(move || Driver::open(config, clock))
        .await
        .unwrap()
        .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, driver.clone(), async {
        let _ = stopped.await;
    }));
    (driver, stop, task)
}
