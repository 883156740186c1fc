//! Tests of the state machine with a simulated clock, and properties over random commands.

use std::collections::HashMap;

use super::*;
use crate::{AbortReason, JobStatus, Outcome};

/// What a binary would persist: the core's reference model of a store.
type Store = crate::Replica;

const MODEL: &str = "koboldcpp/Llama-3-8B-Instruct.Q4_K_M";
const OTHER_MODEL: &str = "KoboldAI/OPT-13B-Erebus";

struct Sim {
    horde: Horde,
    now: Timestamp,
    next_id: u128,
    store: Store,
    users: HashMap<UserId, UserPolicy>,
}

/// `chars` characters of ordinary text (a generation the degenerate-text rule lets through).
fn prose(chars: usize) -> String {
    "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(chars)
        .collect()
}

/// A model reference of `(name, size in billions)` entries.
fn reference(entries: &[(&str, f64)]) -> crate::reference::ModelReference {
    let entries = entries
        .iter()
        .map(|&(name, params_b)| crate::reference::ReferenceEntry {
            name: name.into(),
            params_b,
            context: None,
            aliases: vec![],
            ..Default::default()
        })
        .collect();
    crate::reference::ModelReference::new(entries).unwrap()
}

impl Sim {
    /// A horde whose workers may submit at any speed (the tests submit at once); the speed
    /// rule has its own tests.
    fn new() -> Sim {
        Sim::with_config(HordeConfig::default())
    }

    /// Without the speed rule and the upfront rule (the tests submit at once and queue large
    /// requests with no worker online), without escrow, and with workers holding as many jobs
    /// as they like (the tests pop one worker again and again); each rule has its own tests.
    fn with_config(mut config: HordeConfig) -> Sim {
        config.integrity.speed_limits.clear();
        config.integrity.upfront_queue_minutes = 0;
        config.integrity.escrow_untrusted = false;
        config.integrity.max_threads_untrusted = THREADS_RANGE.1;
        config.integrity.max_threads_trusted = THREADS_RANGE.1;
        Sim::with_speed_rule(config)
    }

    fn with_speed_rule(config: HordeConfig) -> Sim {
        let mut sim = Sim {
            horde: Horde::new(config),
            now: Timestamp::from_secs(1_700_000_000),
            next_id: 0,
            store: Store::default(),
            users: HashMap::new(),
        };
        for user in 1..=5 {
            sim.add_user(UserId(user), 30);
        }
        sim.horde
            .set_model_reference(reference(&[(MODEL, 8.0), (OTHER_MODEL, 13.0)]));
        sim
    }

    fn add_user(&mut self, user: UserId, concurrency: u32) {
        let policy = UserPolicy {
            concurrency,
            trusted: false,
            public_workers: false,
            flagged: false,
            registered_at: Timestamp(0),
            roles: Default::default(),
        };
        let applied = self.horde.set_user(user, policy);
        self.store.apply(&applied.events);
        self.users.insert(user, policy);
    }

    fn id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    /// Moves the clock and ticks, as the server's timer does, until nothing more is due.
    fn advance(&mut self, secs: u64) {
        self.now = self.now.plus_secs(secs);
        loop {
            let events = self.horde.tick(self.now);
            self.store.apply(&events);
            if self.horde.next_deadline().is_none_or(|at| at > self.now) {
                break;
            }
        }
    }

    fn spec(&mut self, owner: u64) -> RequestSpec {
        let id = RequestId(self.id());
        RequestSpec::new(id, UserId(owner), "x".repeat(1000), self.now)
    }

    fn enqueue(&mut self, spec: RequestSpec) -> Result<RequestId, EnqueueError> {
        let applied = self.horde.enqueue(self.now, spec)?;
        self.store.apply(&applied.events);
        Ok(applied.value)
    }

    fn request(&mut self, owner: u64) -> RequestId {
        let spec = self.spec(owner);
        self.enqueue(spec).unwrap()
    }

    fn query(&self, owner: u64, name: &str) -> PopQuery {
        PopQuery {
            owner: UserId(owner),
            name: name.into(),
            models: vec![MODEL.into()],
            max_length: 512,
            max_context_length: 4096,
            priority_users: vec![],
            nsfw: false,
            threads: THREADS_RANGE.1,
            amount: 1,
            bridge_agent: "test:1:none".into(),
            extra_slow: false,
            blacklist: Vec::new(),
            origin: None,
            draw: u64::MAX,
        }
    }

    fn pop_with(&mut self, query: PopQuery) -> Result<PopResult, PopError> {
        let mut ids = Vec::new();
        for _ in 0..32 {
            ids.push(self.id());
        }
        let mut ids = ids.into_iter();
        let applied = self
            .horde
            .pop(self.now, query, || ids.next().unwrap_or_default())?;
        self.store.apply(&applied.events);
        Ok(applied.value)
    }

    /// Pops for worker `name` of `owner`; returns the request and job it got, if any.
    fn pop_with_model(
        &mut self,
        owner: u64,
        name: &str,
        model: &str,
    ) -> Option<(RequestId, JobId)> {
        let mut query = self.query(owner, name);
        query.models = vec![model.into()];
        let result = self.pop_with(query).unwrap();
        result.assignments.first().map(|a| (a.request.id, a.job))
    }

    fn advance_millis(&mut self, millis: u64) {
        self.now = self.now.plus_millis(millis);
    }

    fn pop(&mut self, owner: u64, name: &str) -> Option<(RequestId, JobId)> {
        let result = self.pop_with(self.query(owner, name)).unwrap();
        result.assignments.first().map(|a| (a.request.id, a.job))
    }

    fn submit(&mut self, owner: u64, job: JobId, state: SubmitState) -> Result<Kudos, SubmitError> {
        let submission = Submission {
            state,
            text: prose(400),
            seed: Some("42".into()),
            metadata: None,
        };
        let applied = self
            .horde
            .submit(self.now, UserId(owner), job, submission)?;
        self.store.apply(&applied.events);
        Ok(applied.value)
    }

    /// Worker `name` of `owner` serves one ordinary request of `requester`, taking `secs`
    /// seconds (100 tokens): paid work for another user, which proves the worker and measures
    /// its speed.
    fn serve(&mut self, owner: u64, name: &str, requester: u64, secs: u64) -> Kudos {
        let mut spec = self.spec(requester);
        spec.workers = self
            .horde
            .worker_by_name(name)
            .map(|w| w.id)
            .into_iter()
            .collect();
        self.enqueue(spec).unwrap();
        let (_, job) = self.pop(owner, name).unwrap();
        self.advance(secs);
        self.submit(owner, job, SubmitState::Ok).unwrap()
    }

    fn submit_text(&mut self, owner: u64, job: JobId, text: &str) -> Kudos {
        let submission = Submission {
            state: SubmitState::Ok,
            text: text.into(),
            seed: None,
            metadata: None,
        };
        let applied = self
            .horde
            .submit(self.now, UserId(owner), job, submission)
            .unwrap();
        self.store.apply(&applied.events);
        applied.value
    }

    fn give(&mut self, user: u64, kudos: i64) {
        let applied = self
            .horde
            .admin_adjust(self.now, UserId(user), Kudos::from_milli(kudos * 1000))
            .unwrap();
        self.store.apply(&applied.events);
    }

    fn state(&self, id: RequestId) -> RequestState {
        *self.horde.request(id).unwrap().1
    }
}

/// Sets `user`'s trust and flag.
fn set_trust(sim: &mut Sim, user: u64, trusted: bool, flagged: bool) {
    let policy = sim.horde.user(UserId(user)).unwrap();
    let applied = sim.horde.set_user(
        UserId(user),
        UserPolicy {
            trusted,
            flagged,
            ..policy
        },
    );
    sim.store.apply(&applied.events);
}

mod checks;
mod economy;
mod integrity;
mod jobs;
mod properties;
mod queue;
mod requests;
mod status;
mod workers;
