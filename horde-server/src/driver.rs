//! The driver: the one place where the pure core meets time, storage and failure.
//!
//! It owns the [`Horde`] (inside [`Core`], behind a `parking_lot::Mutex` that is held only
//! around synchronous calls), the [`Clock`], the timer and the [`Store`]. Handlers never touch
//! the core's state directly:
//!
//! * [`Driver::read`] runs a closure over the core and `now`.
//! * [`Driver::change`] runs a closure with a [`Txn`]. The only way to run a core command is
//!   [`Txn::apply`], which absorbs the command's events into the transaction, so no event can
//!   be forgotten. When the closure returns, everything it applied is handed to the store's
//!   writer *before* the lock is released (commit order is apply order), and the response
//!   waits for the commit. A closure that fails after applying commands still has what it
//!   applied committed: memory never holds a change the database does not get.
//! * The timer sleeps until the core's [`Horde::next_deadline`] and is woken when a change
//!   moves that deadline earlier; it runs [`Horde::tick`] like any other change.
//!
//! The driver knows nothing of HTTP: its one error is [`Unavailable`], which callers turn into
//! theirs (`From<Unavailable>`). What changes state beside the core's commands (users,
//! sessions, idempotency keys) is written in `crate::ops`, the server's command layer.
//!
//! **Fail-stop.** If a commit fails (disk full, I/O error), memory holds changes the database
//! lacks. The driver then stops: every later call answers `503 StorageFailure`, the store
//! writes nothing more, and [`Driver::failed`] resolves so that the server shuts down and the
//! process exits non-zero. A supervisor restarts it, and the restart rebuilds the state from
//! the database — the last state that was acknowledged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use horde_core::{Applied, Event, Horde, JobStatus, Timestamp, UserId};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::auth::Users;
use crate::clock::Clock;
use crate::config::Config;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::models::ReferenceError;
use crate::ratelimit::RateLimits;
use crate::sessions::{Identities, PendingLogins, Sessions};
use crate::stats::Stats;
use crate::store::{Contention, Database, Recorded, Store, StoreError, Write};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

/// The driver refuses changes (and committed reads): a commit failed or the database can no
/// longer be written; the server is on its way down and a restart rebuilds the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the database can no longer be written")]
pub struct Unavailable;

/// A transfer answered earlier under an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentAnswer {
    /// What was asked (receiver and amount), to tell a retry from a different request.
    pub request: String,
    /// The JSON response body sent.
    pub response: String,
}

/// Transfers answered under an `Idempotency-Key`, by `(sender, key)`.
#[derive(Debug, Default)]
pub struct IdempotencyKeys(HashMap<(UserId, String), IdempotentAnswer>);

impl IdempotencyKeys {
    /// The keys `rows` (sender, key, request, response).
    pub fn new(rows: impl IntoIterator<Item = (UserId, String, String, String)>) -> Self {
        IdempotencyKeys(
            rows.into_iter()
                .map(|(user, key, request, response)| {
                    ((user, key), IdempotentAnswer { request, response })
                })
                .collect(),
        )
    }

    /// The answer `user` got under `key`.
    pub fn get(&self, user: UserId, key: &str) -> Option<&IdempotentAnswer> {
        self.0.get(&(user, key.to_owned()))
    }

    /// Remembers `answer` for `user`'s `key`, with the write that persists it.
    pub fn remember(
        &mut self,
        user: UserId,
        key: String,
        answer: IdempotentAnswer,
    ) -> Recorded<()> {
        let write = Write::Idempotency {
            user,
            key: key.clone(),
            request: answer.request.clone(),
            response: answer.response.clone(),
        };
        self.0.insert((user, key), answer);
        Recorded::new((), vec![write])
    }
}

/// Everything under the core lock.
#[derive(Debug)]
pub struct Core {
    horde: Horde,
    /// Registered users and their keys.
    pub users: Users,
    /// Transfers by `(sender, Idempotency-Key)`.
    pub idempotency: IdempotencyKeys,
    /// Finished generations per minute.
    pub stats: Stats,
    /// Signed-in browsers.
    pub sessions: Sessions,
    /// OAuth identities and their accounts.
    pub identities: Identities,
    /// The horde's modes (maintenance, invite-only, raid).
    pub modes: crate::modes::Modes,
    /// Webhook deliveries not yet made.
    pub webhooks: crate::webhooks::Webhooks,
    /// OAuth sign-ins in progress (not persisted).
    pub pending_logins: PendingLogins,
    rate_limits: RateLimits,
}

impl Core {
    /// The domain state, read-only: changes go through [`Txn::apply`].
    pub fn horde(&self) -> &Horde {
        &self.horde
    }

    /// The one place where events meet the server: records what they mean for the
    /// per-minute stats and the metrics, and wraps them as writes.
    fn absorb(
        &mut self,
        events: Vec<Event>,
        writes: &mut Vec<Write>,
        metrics: &Metrics,
        live: &Live,
    ) {
        for event in &events {
            match event {
                Event::JobChanged(job) => match &job.status {
                    JobStatus::Done(generation) => {
                        self.stats.record(
                            generation.finished_at.millis() / 60_000,
                            1,
                            u64::from(generation.tokens),
                        );
                        self.stats.record_model(
                            generation.finished_at.millis() / 3_600_000,
                            &job.model,
                            1,
                        );
                        // Recorded in the generation's own commit: a crash loses neither.
                        if let Some(delivery) =
                            crate::webhooks::delivery_for(&self.horde, job, generation)
                        {
                            writes.extend(self.webhooks.queue(delivery));
                        }
                        live.request_changed(job.request);
                    }
                    JobStatus::Aborted(_) => live.job_aborted(job.request, job.id),
                    JobStatus::Processing => live.request_changed(job.request),
                },
                Event::RequestQueued(_) => live.work_arrived(),
                Event::RequestChanged { id, .. } => live.request_changed(*id),
                Event::Posted(posting) => metrics.posted(posting),
                _ => {}
            }
        }
        writes.extend(events.into_iter().map(Write::Event));
    }
}

/// One change in progress: the core, `now`, and the writes collected so far.
#[derive(Debug)]
pub struct Txn<'a> {
    core: &'a mut Core,
    now: Timestamp,
    writes: Vec<Write>,
    metrics: &'a Metrics,
    live: &'a Live,
}

impl Txn<'_> {
    /// The time of this change.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The core, read-only.
    pub fn core(&self) -> &Core {
        self.core
    }

    /// Changes the server's own persisted tables (users, idempotency keys, sessions, OAuth
    /// identities) at this change's `now` and absorbs the writes that persist the change:
    /// each of their changing methods returns a [`Recorded`], so none can be forgotten.
    pub fn record<T, E>(
        &mut self,
        change: impl FnOnce(&mut Tables<'_>, Timestamp) -> Result<Recorded<T>, E>,
    ) -> Result<T, E> {
        let mut tables = Tables {
            users: &mut self.core.users,
            idempotency: &mut self.core.idempotency,
            sessions: &mut self.core.sessions,
            identities: &mut self.core.identities,
            modes: &mut self.core.modes,
            webhooks: &mut self.core.webhooks,
        };
        let recorded = change(&mut tables, self.now)?;
        self.writes.extend(recorded.writes);
        Ok(recorded.value)
    }

    /// What the server keeps in memory only (OAuth sign-ins in progress, rate-limit counts):
    /// nothing of it is written.
    pub fn memory(&mut self) -> Memory<'_> {
        Memory {
            pending_logins: &mut self.core.pending_logins,
            rate_limits: &mut self.core.rate_limits,
        }
    }

    /// Runs a core command at this change's `now` and absorbs its events.
    pub fn apply<T, E>(
        &mut self,
        command: impl FnOnce(&mut Horde, Timestamp) -> Result<Applied<T>, E>,
    ) -> Result<T, E> {
        let applied = command(&mut self.core.horde, self.now)?;
        self.core
            .absorb(applied.events, &mut self.writes, self.metrics, self.live);
        Ok(applied.value)
    }
}

/// The server's own persisted tables, to change through [`Txn::record`].
#[derive(Debug)]
pub struct Tables<'a> {
    /// Registered users and their keys.
    pub users: &'a mut Users,
    /// Transfers by `(sender, Idempotency-Key)`.
    pub idempotency: &'a mut IdempotencyKeys,
    /// Signed-in browsers.
    pub sessions: &'a mut Sessions,
    /// OAuth identities and their accounts.
    pub identities: &'a mut Identities,
    /// The horde's modes.
    pub modes: &'a mut crate::modes::Modes,
    /// Webhook deliveries not yet made.
    pub webhooks: &'a mut crate::webhooks::Webhooks,
}

/// What the server keeps in memory only.
#[derive(Debug)]
pub struct Memory<'a> {
    /// OAuth sign-ins in progress.
    pub pending_logins: &'a mut PendingLogins,
    /// Calls per minute, by who and what.
    pub rate_limits: &'a mut RateLimits,
}

/// The users `admins` names (`alias#id`, the alias exactly as registered), among those who
/// exist now. A name nobody has yet is ignored with a warning, never kept for later: whoever
/// registered that alias first, after filling the ids below it, would become an administrator.
fn resolve_admins(admins: &[String], users: &Users) -> std::collections::HashSet<UserId> {
    let mut resolved = std::collections::HashSet::new();
    for name in admins {
        let found = users.find_by_username(name).filter(|row| {
            name.rsplit_once('#')
                .is_some_and(|(alias, _)| alias.trim() == row.alias)
        });
        match found {
            Some(row) => {
                resolved.insert(row.id);
            }
            None => tracing::warn!(
                admin = %name,
                "the configuration names an administrator who does not exist (or whose alias \
                 differs): ignored; create administrators with `horde-server create-admin NAME`"
            ),
        }
    }
    resolved
}

/// A handle to the driver; cheap to clone.
#[derive(Debug, Clone)]
pub struct Driver {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    core: Mutex<Core>,
    store: Store,
    config: Config,
    /// The users the configuration's `admins` named, as they were when the node started.
    named_admins: std::collections::HashSet<UserId>,
    clock: Clock,
    metrics: Arc<Metrics>,
    /// Waiters woken by the core's events (long polls, streams).
    live: Arc<Live>,
    /// The deadline the timer sleeps until, in ms (`u64::MAX`: none).
    scheduled: AtomicU64,
    /// Wakes the timer when a change moves the next deadline earlier.
    timer: Notify,
    /// Set once a commit failed; never cleared.
    failed: AtomicBool,
    /// Notified when `failed` is set.
    failure: Notify,
}

impl Driver {
    /// Opens the database (creating and migrating it), rebuilds the core from it, and loads
    /// the model reference. A database another node is using is refused.
    pub fn open(config: Config, clock: Clock) -> Result<Driver, OpenError> {
        Self::open_with(config, clock, Contention::Refuse, &|| true)
    }

    /// As [`Driver::open`]; with [`Contention::Wait`] on PostgreSQL, first waits as a standby
    /// for the lease (while `go_on` says so), then rebuilds the core from the database.
    pub fn open_with(
        config: Config,
        clock: Clock,
        contention: Contention,
        go_on: &dyn Fn() -> bool,
    ) -> Result<Driver, OpenError> {
        let reference = crate::models::load_reference(&config)?;
        let canaries = crate::canaries::load_canaries(&config)?;
        let metrics = Arc::new(Metrics::new());
        let (store, loaded) = Store::open(&config, metrics.clone(), contention, go_on)?;
        let policies: Vec<_> = loaded.users.iter().map(|u| (u.0.id, u.1)).collect();
        let accounts: Vec<_> = loaded.users.iter().map(|u| (u.0.id, u.2)).collect();
        let mut horde = Horde::restore(
            config.horde.clone(),
            policies,
            accounts,
            loaded.workers,
            loaded.requests,
        );
        horde.restore_teams(loaded.teams);
        horde.set_model_reference(reference);
        horde.set_canaries(canaries);
        let users = Users::new(loaded.secret, loaded.users.into_iter().map(|u| u.0));
        let mut stats = Stats::default();
        for (minute, requests, tokens) in loaded.minutes {
            stats.record(minute, requests, tokens);
        }
        for (model, hour, requests) in loaded.model_hours {
            stats.record_model(hour, &model, requests);
        }
        let idempotency = IdempotencyKeys::new(loaded.idempotency);
        let named_admins = resolve_admins(&config.admins, &users);
        tracing::info!(
            db = %Database::of(&config.db).describe(),
            users = users.iter().count(),
            requests = horde.request_count(),
            queued = horde.queued_requests(),
            "state restored"
        );
        Ok(Driver {
            shared: Arc::new(Shared {
                core: Mutex::new(Core {
                    horde,
                    users,
                    idempotency,
                    stats,
                    sessions: Sessions::new(loaded.sessions),
                    identities: Identities::new(loaded.identities),
                    modes: loaded.modes,
                    webhooks: crate::webhooks::Webhooks::new(
                        loaded.webhooks,
                        config.webhooks.max_pending,
                    ),
                    pending_logins: PendingLogins::default(),
                    rate_limits: RateLimits::default(),
                }),
                store,
                config,
                named_admins,
                clock,
                metrics,
                live: Arc::new(Live::default()),
                scheduled: AtomicU64::new(u64::MAX),
                timer: Notify::new(),
                failed: AtomicBool::new(false),
                failure: Notify::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// The server's figures.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Waiters woken by the core's events: long polls, streams, waiting OpenAI calls.
    pub fn live(&self) -> &Arc<Live> {
        &self.shared.live
    }

    /// Reads the core under the lock, and answers once every change the read could see is
    /// committed: for answers that report a change as done (a generation's status), which
    /// must never be lost by a crash after they were sent. Refused with `StorageFailure` once
    /// a commit has failed.
    pub async fn read_committed<T>(
        &self,
        f: impl FnOnce(&Core, Timestamp) -> T,
    ) -> Result<T, Unavailable> {
        if self.is_failed() {
            return Err(Unavailable);
        }
        let (value, committed) = {
            let core = self.shared.core.lock();
            let held = std::time::Instant::now();
            let value = f(&core, self.now());
            let committed = self.shared.store.submit(Vec::new());
            drop(core);
            self.shared.metrics.lock_held(held.elapsed());
            (value, committed)
        };
        if let Err(e) = committed.wait().await {
            self.fail(&e);
            return Err(Unavailable);
        }
        Ok(value)
    }

    /// Reads the core under the lock.
    pub fn read<T>(&self, f: impl FnOnce(&Core, Timestamp) -> T) -> T {
        let core = self.shared.core.lock();
        let held = std::time::Instant::now();
        let value = f(&core, self.now());
        drop(core);
        self.shared.metrics.lock_held(held.elapsed());
        value
    }

    /// Runs `f` as one change and waits until what it applied is committed. Refused with
    /// `StorageFailure` once a commit has failed.
    pub async fn change<T, E: From<Unavailable>>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.is_failed() {
            return Err(Unavailable.into());
        }
        let (result, committed) = {
            let mut core = self.shared.core.lock();
            let held = std::time::Instant::now();
            let mut txn = Txn {
                now: self.now(),
                core: &mut core,
                writes: Vec::new(),
                metrics: &self.shared.metrics,
                live: &self.shared.live,
            };
            let result = f(&mut txn);
            let writes = std::mem::take(&mut txn.writes);
            let next = core.horde.next_deadline();
            // Even a change that writes nothing waits: its answer (a replayed transfer, a
            // refusal that names the current state) may rest on changes still being committed.
            let committed = self.shared.store.submit(writes);
            drop(core);
            self.shared.metrics.lock_held(held.elapsed());
            self.wake_timer_for(next);
            (result, committed)
        };
        if let Err(e) = committed.wait().await {
            self.fail(&e);
            return Err(Unavailable.into());
        }
        result
    }

    /// Returns true if and only if `user` is an administrator: made by `create-admin`, or
    /// named (alias and id) in the configuration's `admins` and registered before the node
    /// started.
    pub fn is_admin(&self, user: UserId) -> bool {
        !user.is_anonymous()
            && (self.shared.named_admins.contains(&user)
                || self.read(|core, _| core.users.get(user).is_some_and(|row| row.is_admin)))
    }

    /// Returns true if and only if a commit has failed, or the store found that it can no
    /// longer commit (the driver refuses all changes).
    pub fn is_failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst) || self.shared.store.is_lost()
    }

    /// Resolves once a commit has failed or the store can no longer commit.
    pub async fn failed(&self) {
        let commit_failed = async {
            loop {
                let notified = self.shared.failure.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.shared.failed.load(Ordering::SeqCst) {
                    return;
                }
                notified.await;
            }
        };
        tokio::select! {
            () = commit_failed => {}
            () = self.shared.store.lost() => {
                tracing::error!(
                    "the database connection is lost: refusing all changes and stopping; the \
                     restart rebuilds the state from the database"
                );
            }
        }
    }

    fn fail(&self, error: &StoreError) {
        if !self.shared.failed.swap(true, Ordering::SeqCst) {
            tracing::error!(
                %error,
                "a commit failed: refusing all changes and stopping; the restart rebuilds the \
                 state from the database"
            );
        }
        self.shared.failure.notify_waiters();
    }

    fn wake_timer_for(&self, next: Option<Timestamp>) {
        let next = next.map_or(u64::MAX, |t| t.millis());
        if next < self.shared.scheduled.load(Ordering::SeqCst) {
            self.shared.timer.notify_one();
        }
    }

    /// Runs the core's `tick` at `now` and commits what it changed.
    pub async fn tick(&self) -> Result<(), Unavailable> {
        self.change(|txn| {
            txn.apply(|horde, now| {
                Ok::<_, Unavailable>(Applied {
                    value: (),
                    events: horde.tick(now),
                })
            })
        })
        .await
    }

    /// The timer: sleeps until the core's next deadline (or until a change moves it earlier),
    /// then ticks. Runs until the task is aborted or the driver fails.
    pub async fn drive_timer(self) {
        loop {
            if self.is_failed() {
                return;
            }
            let next = self.read(|core, _| core.horde.next_deadline());
            self.shared
                .scheduled
                .store(next.map_or(u64::MAX, |t| t.millis()), Ordering::SeqCst);
            if next.is_some_and(|at| at <= self.now()) {
                if let Err(e) = self.tick().await {
                    tracing::warn!(error = %e, "tick failed");
                }
                continue;
            }
            tokio::select! {
                () = self.shared.clock.sleep_until(next) => {}
                () = self.shared.timer.notified() => {}
            }
        }
    }

    /// `user`'s last `limit` kudos movements and generation totals, from the database.
    /// Blocks (call it on a blocking thread).
    pub fn account_history(
        &self,
        user: UserId,
        limit: usize,
    ) -> Result<crate::store::AccountHistory, StoreError> {
        self.shared.store.account_history(user, limit)
    }

    /// Stops the writer after it commits what it has.
    pub fn close(&self) {
        self.shared.store.close();
    }
}
