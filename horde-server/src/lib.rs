//! `horde-server`: the AI Horde v2 text API over [`horde_core`], durable on SQLite.
//!
//! * [`AppState`] holds the core (behind a `parking_lot::Mutex`, held only around synchronous
//!   core calls, never across `.await`) and the [`store::Store`] handle.
//! * Every command runs under the lock, hands its events to the store's writer thread *before*
//!   releasing the lock (so commit order is apply order), then awaits the group commit; only
//!   then is the HTTP response sent.
//! * [`app`] builds the router (for in-process tests); [`serve`] runs it on a listener with a
//!   graceful shutdown (for the binary and end-to-end tests on port 0).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method};
use axum::Router;
use horde_core::{Event, Horde, HordeConfig, JobStatus, Timestamp, UserId, UserPolicy};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

pub mod api;
pub mod auth;
pub mod error;
pub mod store;
pub mod web;

use auth::Users;
use error::ApiError;
use store::{Store, StoreError, Write};

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// How the server runs. `Default` is what `horde-server` with no arguments uses, except for
/// the listen address and database, which the binary fills in.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite database file.
    pub db: PathBuf,
    /// Whether `POST /api/v2/register` is open. Default true.
    pub registration: bool,
    /// Registrations allowed per IP address per minute. Default 10.
    pub registrations_per_minute: u32,
    /// Administrators as `alias#id` usernames (from `--admins`). Both parts must match a
    /// user: a typo in the id does not make someone else an administrator.
    pub admins: Vec<String>,
    /// Core rules and limits.
    pub horde: HordeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db: PathBuf::from("horde.sqlite"),
            registration: true,
            registrations_per_minute: 10,
            admins: Vec::new(),
            horde: HordeConfig::default(),
        }
    }
}

/// Everything under the core lock.
#[derive(Debug)]
pub struct Core {
    /// The domain state.
    pub horde: Horde,
    /// Registered users and their keys.
    pub users: Users,
    /// Responses of transfers by `(sender, Idempotency-Key)`.
    pub idempotency: HashMap<(UserId, String), String>,
    /// Finished generations per minute, for `/stats/text/totals`.
    pub stats: Stats,
    registrations: HashMap<IpAddr, (u64, u32)>,
}

impl Core {
    /// Wraps core events as writes, counting finished generations in the stats.
    pub fn absorb(&mut self, events: Vec<Event>) -> Vec<Write> {
        for event in &events {
            if let Event::JobChanged(job) = event {
                if let JobStatus::Done(generation) = &job.status {
                    self.stats.record(
                        generation.finished_at.millis() / 60_000,
                        1,
                        u64::from(generation.tokens),
                    );
                }
            }
        }
        events.into_iter().map(Write::Event).collect()
    }

    /// Counts a registration from `ip` at `now`; false if over the per-minute limit.
    pub(crate) fn allow_registration(&mut self, ip: IpAddr, now: Timestamp, limit: u32) -> bool {
        let minute = now.millis() / 60_000;
        if self.registrations.len() > 10_000 {
            self.registrations.retain(|_, (m, _)| *m == minute);
        }
        let entry = self.registrations.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }
}

/// Finished generations and tokens per minute.
#[derive(Debug, Default)]
pub struct Stats {
    minutes: BTreeMap<u64, (u64, u64)>,
    total: (u64, u64),
}

/// Minutes of history kept in memory (a month).
const STATS_MINUTES: u64 = 30 * 24 * 60;

impl Stats {
    fn record(&mut self, minute: u64, requests: u64, tokens: u64) {
        let bucket = self.minutes.entry(minute).or_default();
        bucket.0 += requests;
        bucket.1 += tokens;
        self.total.0 += requests;
        self.total.1 += tokens;
        if let Some(&oldest) = self.minutes.keys().next() {
            if minute > oldest + STATS_MINUTES {
                self.minutes = self.minutes.split_off(&(minute - STATS_MINUTES));
            }
        }
    }

    /// Requests and tokens finished in the last `minutes` minutes before `now` (the current
    /// minute included).
    pub fn since(&self, now: Timestamp, minutes: u64) -> (u64, u64) {
        let current = now.millis() / 60_000;
        self.minutes
            .range(current.saturating_sub(minutes.saturating_sub(1))..)
            .fold((0, 0), |acc, (_, v)| (acc.0 + v.0, acc.1 + v.1))
    }

    /// All requests and tokens ever finished.
    pub fn total(&self) -> (u64, u64) {
        self.total
    }
}

/// The server's shared state.
#[derive(Debug, Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    core: Mutex<Core>,
    store: Store,
    config: Config,
}

/// The current time as the core sees it.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp(millis)
}

impl AppState {
    /// Opens the database (creating and migrating it), and rebuilds the core from it.
    pub fn open(config: Config) -> Result<AppState, StoreError> {
        let (store, loaded) = Store::open(&config.db, config.horde.default_concurrency)?;
        let policies: Vec<(UserId, UserPolicy)> = loaded
            .users
            .iter()
            .map(|(row, _)| {
                (
                    row.id,
                    UserPolicy {
                        concurrency: row.concurrency,
                        trusted: row.trusted,
                    },
                )
            })
            .collect();
        let accounts: Vec<_> = loaded.users.iter().map(|(row, s)| (row.id, *s)).collect();
        let horde = Horde::restore(
            config.horde.clone(),
            policies,
            accounts,
            loaded.workers,
            loaded.requests,
        );
        let users = Users::new(loaded.secret, loaded.users.into_iter().map(|(row, _)| row));
        let mut stats = Stats::default();
        for (minute, requests, tokens) in loaded.minutes {
            stats.record(minute, requests, tokens);
        }
        let idempotency = loaded
            .idempotency
            .into_iter()
            .map(|(user, key, response)| ((user, key), response))
            .collect();
        tracing::info!(
            db = %config.db.display(),
            users = users.iter().count(),
            requests = horde.request_count(),
            queued = horde.queued_requests(),
            "state restored"
        );
        Ok(AppState {
            shared: Arc::new(Shared {
                core: Mutex::new(Core {
                    horde,
                    users,
                    idempotency,
                    stats,
                    registrations: HashMap::new(),
                }),
                store,
                config,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Reads the core under the lock.
    pub fn read<T>(&self, f: impl FnOnce(&Core, Timestamp) -> T) -> T {
        let core = self.shared.core.lock();
        f(&core, now())
    }

    /// Changes the core under the lock and waits until the writes it returns are committed.
    pub async fn change<T>(
        &self,
        f: impl FnOnce(&mut Core, Timestamp) -> Result<(T, Vec<Write>), ApiError>,
    ) -> Result<T, ApiError> {
        let (value, committed) = {
            let mut core = self.shared.core.lock();
            let (value, writes) = f(&mut core, now())?;
            (value, self.shared.store.submit(writes))
        };
        committed.wait().await.map_err(|e| {
            tracing::error!(error = %e, "a change could not be committed");
            ApiError::Storage
        })?;
        Ok(value)
    }

    /// Returns true if and only if `user` is an administrator.
    pub fn is_admin(&self, user: UserId) -> bool {
        !user.is_anonymous()
            && self.read(|core, _| {
                self.shared.config.admins.iter().any(|name| {
                    core.users
                        .find_by_username(name)
                        .is_some_and(|u| u.id == user)
                })
            })
    }

    /// Runs `tick` once and commits what it changed.
    pub async fn tick(&self) -> Result<(), ApiError> {
        self.change(|core, now| {
            let events = core.horde.tick(now);
            Ok(((), core.absorb(events)))
        })
        .await
    }

    /// Stops the writer after it commits what it has.
    pub fn close(&self) {
        self.shared.store.close();
    }
}

/// The router: the API under `/api/v2`, the web pages, CORS for browser clients, a 1 MiB body
/// limit, and JSON errors for unknown paths.
pub fn app(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            HeaderName::from_static("apikey"),
            HeaderName::from_static("client-agent"),
            HeaderName::from_static("idempotency-key"),
            header::CONTENT_TYPE,
        ]);
    Router::new()
        .nest("/api/v2", api::routes())
        .merge(web::routes())
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(cors)
        // Each request as a `debug` span with its method and path (`RUST_LOG=tower_http=debug`).
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then finishes in-flight requests,
/// stops the timer and flushes the database.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ticker = tokio::spawn(tick_loop(state.clone()));
    let result = axum::serve(
        listener,
        app(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    ticker.abort();
    let closing = state.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    result
}

/// Calls the core's `tick` every second (job deadlines, expiry, retention).
async fn tick_loop(state: AppState) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        if let Err(e) = state.tick().await {
            tracing::warn!(error = %e, "tick failed");
        }
    }
}
