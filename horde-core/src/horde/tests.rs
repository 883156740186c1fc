//! Tests of the state machine with a simulated clock, and properties over random commands.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::{AbortReason, JobStatus, Outcome};

/// What a binary would persist: the latest value of every entity, from events alone.
#[derive(Default, Debug)]
struct Store {
    specs: HashMap<RequestId, Arc<RequestSpec>>,
    states: HashMap<RequestId, RequestState>,
    jobs: HashMap<JobId, Job>,
    accounts: HashMap<UserId, AccountState>,
    workers: HashMap<WorkerId, Worker>,
    users: HashMap<UserId, UserPolicy>,
    postings: Vec<Posting>,
}

impl Store {
    fn apply(&mut self, events: &[Event]) {
        for event in events {
            match event {
                Event::RequestQueued(spec) => {
                    self.specs.insert(spec.id, spec.clone());
                }
                Event::RequestChanged { id, state } => {
                    self.states.insert(*id, *state);
                }
                Event::JobChanged(job) => {
                    self.jobs.insert(job.id, job.clone());
                }
                Event::RequestRemoved(id) => {
                    self.specs.remove(id);
                    self.states.remove(id);
                    self.jobs.retain(|_, j| j.request != *id);
                }
                Event::Posted(p) => self.postings.push(*p),
                Event::AccountChanged { user, state } => {
                    self.accounts.insert(*user, *state);
                }
                Event::WorkerChanged(w) => {
                    self.workers.insert(w.id, w.clone());
                }
                Event::UserChanged { user, policy } => {
                    self.users.insert(*user, *policy);
                }
                Event::WorkerCheckedIn { id, stats } => {
                    self.workers
                        .get_mut(id)
                        .expect("a worker checks in after it was created")
                        .set_stats(*stats);
                }
            }
        }
    }

    /// The horde rebuilt from what was persisted; user policies too come from events only.
    fn restore(&self, config: HordeConfig) -> Horde {
        let requests = self.specs.values().map(|spec| {
            let jobs = self
                .jobs
                .values()
                .filter(|j| j.request == spec.id)
                .cloned()
                .collect();
            (spec.clone(), self.states[&spec.id], jobs)
        });
        Horde::restore(
            config,
            self.users.iter().map(|(u, p)| (*u, *p)),
            self.accounts.iter().map(|(u, s)| (*u, *s)),
            self.workers.values().cloned(),
            requests.collect::<Vec<_>>(),
        )
    }
}

const MODEL: &str = "koboldcpp/Llama-3-8B-Instruct.Q4_K_M";
const OTHER_MODEL: &str = "KoboldAI/OPT-13B-Erebus";

struct Sim {
    horde: Horde,
    now: Timestamp,
    next_id: u128,
    store: Store,
    users: HashMap<UserId, UserPolicy>,
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
    /// requests with no worker online); both rules have their own tests.
    fn with_config(mut config: HordeConfig) -> Sim {
        config.integrity.speed_limits.clear();
        config.integrity.upfront_queue_minutes = 0;
        config.integrity.escrow_untrusted = false;
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
            threads: 1,
            amount: 1,
            bridge_agent: "test:1:none".into(),
            blacklist: Vec::new(),
            origin: None,
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
            text: "y".repeat(400),
            seed: Some("42".into()),
            metadata: None,
        };
        let applied = self
            .horde
            .submit(self.now, UserId(owner), job, submission)?;
        self.store.apply(&applied.events);
        Ok(applied.value)
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

#[test]
fn enqueue_validates_parameters() {
    let mut sim = Sim::new();
    let mut spec = sim.spec(1);
    spec.prompt = "".into();
    assert_eq!(sim.enqueue(spec), Err(EnqueueError::EmptyPrompt));
    for (n, max_length, ctx, field) in [
        (0, 80, 2048, "n"),
        (21, 80, 2048, "n"),
        (1, 15, 2048, "max_length"),
        (1, 4097, 8192, "max_length"),
        (1, 80, 79, "max_context_length"),
        (1, 80, 131_073, "max_context_length"),
    ] {
        let mut spec = sim.spec(1);
        spec.params = GenParams {
            n,
            max_length,
            max_context_length: ctx,
        };
        assert!(
            matches!(sim.enqueue(spec), Err(EnqueueError::OutOfRange { field: f, .. }) if f == field),
            "{field}"
        );
    }
    let mut spec = sim.spec(1);
    spec.params.max_length = 1024;
    spec.params.max_context_length = 512;
    assert_eq!(sim.enqueue(spec), Err(EnqueueError::TokenOverflow));
    let spec = sim.spec(99);
    assert_eq!(sim.enqueue(spec), Err(EnqueueError::UnknownUser));
    let spec = sim.spec(1);
    let again = spec.clone();
    sim.enqueue(spec).unwrap();
    assert_eq!(sim.enqueue(again), Err(EnqueueError::DuplicateId));
    assert_eq!(sim.horde.queued_requests(), 1);
}

#[test]
fn concurrency_limits_open_generations() {
    let mut sim = Sim::new();
    sim.add_user(UserId(9), 5);
    let mut spec = sim.spec(9);
    spec.params.n = 4;
    sim.enqueue(spec).unwrap();
    let mut spec = sim.spec(9);
    spec.params.n = 2;
    assert_eq!(
        sim.enqueue(spec),
        Err(EnqueueError::TooManyPrompts { limit: 5 })
    );
    sim.request(9);
    assert_eq!(sim.horde.open_generations(UserId(9)), 5);
    // Finishing one frees one slot.
    let (_, job) = sim.pop(1, "w").unwrap();
    sim.submit(1, job, SubmitState::Ok).unwrap();
    assert_eq!(sim.horde.open_generations(UserId(9)), 4);
    sim.request(9);
}

#[test]
fn richer_requesters_first_fifo_among_equals() {
    let mut sim = Sim::new();
    sim.give(2, 100);
    sim.give(3, 100);
    let poor = sim.request(1);
    let rich_a = sim.request(2);
    let rich_b = sim.request(3);
    assert_eq!(sim.horde.status(rich_b, sim.now).unwrap().queue_position, 1);
    assert_eq!(sim.horde.status(poor, sim.now).unwrap().queue_position, 2);
    assert_eq!(sim.pop(4, "w").unwrap().0, rich_a);
    assert_eq!(sim.pop(4, "w").unwrap().0, rich_b);
    assert_eq!(sim.pop(4, "w").unwrap().0, poor);
    assert_eq!(sim.pop(4, "w"), None);
}

#[test]
fn balance_changes_reorder_the_queue() {
    let mut sim = Sim::new();
    let first = sim.request(1);
    let second = sim.request(2);
    sim.give(2, 10);
    assert_eq!(sim.horde.status(first, sim.now).unwrap().queue_position, 1);
    assert_eq!(sim.pop(4, "w").unwrap().0, second);
    assert_eq!(sim.pop(4, "w").unwrap().0, first);
}

#[test]
fn ageing_lets_debtors_through_eventually() {
    let mut sim = Sim::new();
    sim.give(2, 100);
    let debtor = sim.request(1);
    sim.advance(101);
    let rich = sim.request(2);
    // 0 + 101 s × 1 kudos/s beats 100.
    assert_eq!(sim.pop(4, "w").unwrap().0, debtor);
    assert_eq!(sim.pop(4, "w").unwrap().0, rich);
}

#[test]
fn owner_and_priority_users_come_first() {
    let mut sim = Sim::new();
    sim.give(2, 1000);
    let rich = sim.request(2);
    let anon = sim.request(0);
    let friend = sim.request(3);
    let own = sim.request(4);
    let mut query = sim.query(4, "w");
    query.priority_users = vec![UserId(3), UserId(0)];
    let got = sim.pop_with(query.clone()).unwrap();
    assert_eq!(
        got.assignments[0].request.id, anon,
        "oldest priority user first"
    );
    let got = sim.pop_with(query.clone()).unwrap();
    assert_eq!(got.assignments[0].request.id, friend);
    let got = sim.pop_with(query.clone()).unwrap();
    assert_eq!(got.assignments[0].request.id, own);
    let got = sim.pop_with(query).unwrap();
    assert_eq!(got.assignments[0].request.id, rich);
    assert_eq!(
        sim.horde.worker_by_name("w").unwrap().priority_users,
        vec![UserId(3), UserId(0)]
    );
}

#[test]
fn matching_and_skip_counts() {
    let mut sim = Sim::new();
    let mut other_model = sim.spec(1);
    other_model.models = vec![OTHER_MODEL.into()];
    sim.enqueue(other_model).unwrap();
    let mut too_long = sim.spec(1);
    too_long.params.max_length = 1024;
    too_long.params.max_context_length = 2048;
    sim.enqueue(too_long).unwrap();
    let mut big_context = sim.spec(1);
    big_context.params.max_context_length = 8192;
    sim.enqueue(big_context).unwrap();
    let mut trusted = sim.spec(1);
    trusted.trusted_workers = true;
    sim.enqueue(trusted).unwrap();
    let mut nsfw = sim.spec(1);
    nsfw.nsfw = true;
    sim.enqueue(nsfw).unwrap();
    let mut elsewhere = sim.spec(1);
    elsewhere.workers = vec![WorkerId(Uuid::from_u128(u128::MAX))];
    sim.enqueue(elsewhere).unwrap();

    let result = sim.pop_with(sim.query(2, "w")).unwrap();
    assert!(result.assignments.is_empty());
    for reason in [
        SkipReason::Models,
        SkipReason::MaxLength,
        SkipReason::MaxContextLength,
        SkipReason::Untrusted,
        SkipReason::Nsfw,
        SkipReason::WorkerId,
    ] {
        assert_eq!(result.skipped.get(reason), 1, "{reason:?}");
    }

    // A deny-list naming another worker lets this one serve.
    let worker = result.worker;
    let mut denied = sim.spec(1);
    denied.workers = vec![worker];
    denied.worker_blacklist = true;
    sim.enqueue(denied).unwrap();
    let mut allowed = sim.spec(1);
    allowed.workers = vec![worker];
    allowed.models = vec![OTHER_MODEL.into(), MODEL.into()];
    let allowed_id = sim.enqueue(allowed).unwrap();
    let got = sim.pop_with(sim.query(2, "w")).unwrap();
    assert_eq!(got.assignments[0].request.id, allowed_id);
    assert_eq!(&*got.assignments[0].model, MODEL);
    assert!(got.skipped.is_empty());
}

#[test]
fn worker_names_belong_to_their_owner() {
    let mut sim = Sim::new();
    sim.pop(1, "shared-name");
    assert_eq!(
        sim.pop_with(sim.query(2, "shared-name")),
        Err(PopError::WrongCredentials)
    );
    assert_eq!(sim.pop_with(sim.query(0, "anon")), Err(PopError::Anonymous));
    assert_eq!(sim.pop_with(sim.query(77, "x")), Err(PopError::UnknownUser));
    let mut q = sim.query(1, "x");
    q.models.clear();
    assert_eq!(sim.pop_with(q), Err(PopError::NoModels));
    let mut q = sim.query(1, "x");
    q.amount = 21;
    assert!(matches!(
        sim.pop_with(q),
        Err(PopError::OutOfRange {
            field: "amount",
            ..
        })
    ));
    assert!(matches!(
        sim.pop_with(sim.query(1, " ")),
        Err(PopError::InvalidName { .. })
    ));
    assert!(matches!(
        sim.pop_with(sim.query(1, "w\u{202E}x")),
        Err(PopError::InvalidName { .. })
    ));
    let mut q = sim.query(1, "w");
    q.models = vec!["koboldcpp/m\u{0}".into()];
    assert!(matches!(
        sim.pop_with(q),
        Err(PopError::InvalidModelName { .. })
    ));
}

#[test]
fn n_greater_than_one_yields_up_to_amount_jobs() {
    let mut sim = Sim::new();
    let mut spec = sim.spec(1);
    spec.params.n = 3;
    let id = sim.enqueue(spec).unwrap();
    let mut query = sim.query(2, "w");
    query.amount = 2;
    let got = sim.pop_with(query.clone()).unwrap();
    assert_eq!(got.assignments.len(), 2);
    assert_eq!(sim.state(id).waiting, 1);
    assert_eq!(sim.state(id).processing, 2);
    let got2 = sim.pop_with(query).unwrap();
    assert_eq!(got2.assignments.len(), 1);
    for a in got.assignments.iter().chain(&got2.assignments) {
        sim.submit(2, a.job, SubmitState::Ok).unwrap();
    }
    let status = sim.horde.status(id, sim.now).unwrap();
    assert_eq!(status.state.finished, 3);
    assert_eq!(status.state.closed.map(|c| c.0), Some(Outcome::Done));
    assert_eq!(status.generations.len(), 3);
}

#[test]
fn submit_pays_exactly_and_refuses_repeats() {
    let mut sim = Sim::new();
    let id = sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    assert_eq!(
        sim.submit(3, job, SubmitState::Ok),
        Err(SubmitError::WrongCredentials)
    );
    let reward = sim.submit(2, job, SubmitState::Ok).unwrap();
    // 8B model, 100 tokens, context capped at max_length 80: 80 tokens counted.
    let economy = EconomyConfig::default();
    assert_eq!(reward, economy.generation_reward(8.0, 80, 80));
    assert_eq!(sim.horde.ledger().balance(UserId(2)), reward);
    assert_eq!(sim.horde.ledger().balance(UserId(1)), -reward);
    assert_eq!(sim.state(id).kudos, reward);
    assert_eq!(
        sim.submit(2, job, SubmitState::Ok),
        Err(SubmitError::Duplicate)
    );
    assert_eq!(
        sim.submit(2, JobId(Uuid::from_u128(999_999)), SubmitState::Ok),
        Err(SubmitError::UnknownJob)
    );
    let worker = sim.horde.worker_by_name("w").unwrap();
    assert_eq!(worker.requests_fulfilled, 1);
    assert_eq!(worker.kudos_generated, reward);
    // 400 characters are 100 tokens, counted up to max_length 80; the counters add up over
    // generations.
    assert_eq!(worker.tokens_generated, 80);
    sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    let second = sim.submit(2, job, SubmitState::Ok).unwrap();
    let worker = sim.horde.worker_by_name("w").unwrap();
    assert_eq!(worker.requests_fulfilled, 2);
    assert_eq!(worker.tokens_generated, 160);
    assert_eq!(worker.kudos_generated, reward + second);
}

#[test]
fn faulted_generations_restart_then_fault_the_request() {
    let mut sim = Sim::new();
    let id = sim.request(1);
    for restart in 1..=3 {
        let (_, job) = sim.pop(2, "w").unwrap();
        assert_eq!(sim.submit(2, job, SubmitState::Faulted), Ok(Kudos::ZERO));
        assert_eq!(sim.state(id).restarts, restart);
        assert!(sim.state(id).is_open());
    }
    let (_, job) = sim.pop(2, "w").unwrap();
    sim.submit(2, job, SubmitState::Faulted).unwrap();
    assert_eq!(sim.state(id).closed.map(|c| c.0), Some(Outcome::Faulted));
    assert_eq!(sim.horde.queued_requests(), 0);
    assert_eq!(sim.horde.open_generations(UserId(1)), 0);
    assert_eq!(sim.horde.ledger().balance(UserId(2)), Kudos::ZERO);
}

#[test]
fn timed_out_jobs_go_back_and_late_submits_are_aborted() {
    let mut sim = Sim::new();
    let id = sim.request(1);
    let (_, job) = sim.pop(2, "slow").unwrap();
    let deadline = sim.horde.job(job).unwrap().deadline;
    // 90 s + 0.5 s × 80 tokens.
    assert_eq!(deadline.millis_since(sim.now), 130_000);
    sim.advance(129);
    assert_eq!(sim.state(id).processing, 1);
    sim.advance(1);
    assert_eq!(sim.state(id).waiting, 1);
    assert_eq!(sim.state(id).restarts, 1);
    let (_, job2) = sim.pop(3, "fast").unwrap();
    assert_eq!(
        sim.submit(2, job, SubmitState::Ok),
        Err(SubmitError::Aborted)
    );
    sim.submit(3, job2, SubmitState::Ok).unwrap();
    assert_eq!(sim.horde.ledger().balance(UserId(2)), Kudos::ZERO);
    assert!(sim.horde.ledger().balance(UserId(3)).is_positive());
}

#[test]
fn job_deadline_grows_with_max_length() {
    let config = HordeConfig::default();
    assert!(config.job_timeout_ms(4096) > config.job_timeout_ms(512));
    assert!(config.job_timeout_ms(4096) > 150_000);
}

#[test]
fn requests_expire_and_closed_ones_are_removed_after_retention() {
    let mut sim = Sim::new();
    let idle = sim.request(1);
    sim.advance(1199);
    assert!(sim.state(idle).is_open());
    sim.advance(1);
    assert_eq!(sim.state(idle).closed.map(|c| c.0), Some(Outcome::Expired));
    assert_eq!(sim.horde.queued_requests(), 0);
    sim.advance(1200);
    assert!(sim.horde.request(idle).is_none());
    assert!(sim.store.specs.is_empty(), "removal reached the store");
}

#[test]
fn processing_requests_do_not_expire() {
    let mut sim = Sim::new();
    sim.horde = Horde::new(HordeConfig {
        job_timeout_base_secs: 5000,
        ..HordeConfig::default()
    });
    for user in 1..=3 {
        sim.add_user(UserId(user), 30);
    }
    let id = sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    sim.advance(2000);
    assert!(sim.state(id).is_open());
    sim.submit(2, job, SubmitState::Ok).unwrap();
    assert_eq!(sim.state(id).closed.map(|c| c.0), Some(Outcome::Done));
}

#[test]
fn cancel_keeps_done_work_and_charges_nothing_more() {
    let mut sim = Sim::new();
    let mut spec = sim.spec(1);
    spec.params.n = 3;
    let id = sim.enqueue(spec).unwrap();
    let (_, done) = sim.pop(2, "w").unwrap();
    let reward = sim.submit(2, done, SubmitState::Ok).unwrap();
    let (_, in_flight) = sim.pop(2, "w").unwrap();
    let applied = sim.horde.cancel(sim.now, id).unwrap();
    sim.store.apply(&applied.events);
    let status = sim.horde.status(id, sim.now).unwrap();
    assert_eq!(status.state.closed.map(|c| c.0), Some(Outcome::Cancelled));
    assert_eq!(status.generations.len(), 1);
    assert_eq!(
        sim.horde.job(in_flight).unwrap().status,
        JobStatus::Aborted(AbortReason::Cancelled)
    );
    assert_eq!(
        sim.submit(2, in_flight, SubmitState::Ok),
        Err(SubmitError::Aborted)
    );
    assert_eq!(sim.horde.ledger().balance(UserId(1)), -reward);
    assert_eq!(sim.horde.open_generations(UserId(1)), 0);
    // Cancelling again changes nothing.
    assert!(sim.horde.cancel(sim.now, id).unwrap().events.is_empty());
    assert!(sim
        .horde
        .cancel(sim.now, RequestId(Uuid::from_u128(12345)))
        .is_none());
}

#[test]
fn maintenance_serves_only_the_owner() {
    let mut sim = Sim::new();
    let result = sim.pop_with(sim.query(2, "w")).unwrap();
    let update = WorkerUpdate {
        maintenance: Some(true),
        ..WorkerUpdate::default()
    };
    assert_eq!(
        sim.horde
            .update_worker(UserId(3), false, result.worker, update.clone()),
        Err(WorkerUpdateError::WrongCredentials)
    );
    let applied = sim
        .horde
        .update_worker(UserId(2), false, result.worker, update)
        .unwrap();
    sim.store.apply(&applied.events);
    sim.request(1);
    assert_eq!(sim.pop_with(sim.query(2, "w")), Err(PopError::Maintenance));
    let own = sim.request(2);
    assert_eq!(sim.pop(2, "w").unwrap().0, own);
}

#[test]
fn workers_earn_uptime_every_ten_minutes_online() {
    let mut sim = Sim::new();
    // Uptime needs proof of work: first a paid generation.
    sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    sim.submit(2, job, SubmitState::Ok).unwrap();
    for _ in 0..4 {
        sim.advance(150);
        sim.pop(2, "w");
    }
    // 600 s online: one award of (25 + 15 × 4096/1024) × 8/7.
    let award = EconomyConfig::default().uptime_reward(8.0, 4096);
    assert_eq!(award, "97.14".parse().unwrap());
    let uptime = |sim: &Sim| sim.horde.ledger().account(UserId(2)).details.uptime;
    assert_eq!(uptime(&sim), award);
    // A gap over 300 s is not online time.
    sim.advance(301);
    sim.pop(2, "w");
    sim.advance(299);
    sim.pop(2, "w");
    assert_eq!(uptime(&sim), award);
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
}

#[test]
fn uptime_needs_recent_work_and_a_worker_within_the_cap() {
    // The attack: workers with no backend pop forever and collect uptime.
    let mut sim = Sim::new();
    for _ in 0..8 {
        sim.pop(2, "idle");
        sim.advance(150);
    }
    let uptime = |sim: &Sim, user| sim.horde.ledger().account(UserId(user)).details.uptime;
    assert_eq!(uptime(&sim, 2), Kudos::ZERO, "no generation, no uptime");

    // Work proves the worker; an hour later the proof has run out.
    sim.request(1);
    let (_, job) = sim.pop(2, "idle").unwrap();
    sim.submit(2, job, SubmitState::Ok).unwrap();
    for _ in 0..4 {
        sim.advance(150);
        sim.pop(2, "idle");
    }
    let one = uptime(&sim, 2);
    assert!(one.is_positive());
    for _ in 0..(3 * 3600 / 150) {
        sim.advance(150);
        sim.pop(2, "idle");
    }
    let later = uptime(&sim, 2);
    // At most one award per 600 s within the hour after the generation, none after it.
    assert!(later.milli() <= one.milli() * 6, "{later} vs {one}");
    for _ in 0..8 {
        sim.advance(150);
        sim.pop(2, "idle");
    }
    assert_eq!(uptime(&sim, 2), later, "the proof window ran out");
}

#[test]
fn owners_have_a_capped_number_of_workers() {
    let mut sim = Sim::new();
    for name in ["a", "b", "c"] {
        sim.pop(2, name);
    }
    assert_eq!(
        sim.pop_with(sim.query(2, "d")),
        Err(PopError::TooManyWorkers { max: 3 })
    );
    // Existing workers keep working; trust raises the cap.
    sim.pop(2, "a");
    let applied = sim.horde.set_user(
        UserId(2),
        UserPolicy {
            concurrency: 30,
            trusted: true,
            public_workers: false,
            flagged: false,
            registered_at: Timestamp(0),
        },
    );
    sim.store.apply(&applied.events);
    assert!(sim.pop_with(sim.query(2, "d")).is_ok());
}

#[test]
fn transfers_need_known_users() {
    let mut sim = Sim::new();
    sim.give(1, 10);
    let ten = Kudos::from_milli(10_000);
    assert_eq!(
        sim.horde.transfer(sim.now, UserId(1), UserId(42), ten),
        Err(TransferError::UnknownUser)
    );
    assert_eq!(
        sim.horde.transfer(sim.now, UserId(1), UserId(2), ten + ten),
        Err(TransferError::Ledger(LedgerError::NotEnough {
            balance: ten
        }))
    );
    let applied = sim
        .horde
        .transfer(sim.now, UserId(1), UserId(2), ten)
        .unwrap();
    assert_eq!(applied.events.len(), 3, "posting and two accounts");
}

#[test]
fn worker_rename_and_name_clashes() {
    let mut sim = Sim::new();
    let a = sim.pop_with(sim.query(2, "a")).unwrap().worker;
    sim.pop_with(sim.query(2, "b")).unwrap();
    let rename = |name: &str| WorkerUpdate {
        name: Some(name.into()),
        ..WorkerUpdate::default()
    };
    assert_eq!(
        sim.horde.update_worker(UserId(2), false, a, rename("b")),
        Err(WorkerUpdateError::NameTaken)
    );
    let renamed = sim
        .horde
        .update_worker(UserId(2), false, a, rename("c"))
        .unwrap();
    sim.store.apply(&renamed.events);
    assert!(sim.horde.worker_by_name("a").is_none());
    assert_eq!(sim.horde.worker_by_name("c").unwrap().id, a);
    // Admins may change others' workers.
    let renamed = sim
        .horde
        .update_worker(UserId(5), true, a, rename("d"))
        .unwrap();
    sim.store.apply(&renamed.events);
}

#[test]
fn restore_from_events_gives_the_same_horde() {
    let mut sim = Sim::new();
    sim.give(3, 50);
    let waiting = sim.request(1);
    let rich = sim.request(3);
    let processing = sim.request(1);
    let (first, _) = sim.pop(2, "w").unwrap();
    assert_eq!(first, rich);
    let (second, job) = sim.pop(2, "w").unwrap();
    assert_eq!(second, waiting);
    sim.submit(2, job, SubmitState::Ok).unwrap();
    let (third, in_flight) = sim.pop(2, "w").unwrap();
    assert_eq!(third, processing);
    let late = sim.request(4);

    let mut copy = sim.store.restore(HordeConfig::default());
    for user in 0..=5 {
        assert_eq!(
            copy.ledger().account(UserId(user)),
            sim.horde.ledger().account(UserId(user))
        );
    }
    assert_eq!(copy.ledger().total(), Kudos::ZERO);
    assert_eq!(copy.queued_requests(), sim.horde.queued_requests());
    for id in [waiting, rich, processing, late] {
        let (a, b) = (copy.status(id, sim.now), sim.horde.status(id, sim.now));
        assert_eq!(a, b);
    }
    assert_eq!(copy.worker_by_name("w"), sim.horde.worker_by_name("w"));
    assert_eq!(copy.open_generations(UserId(1)), 1);
    assert_eq!(copy.next_deadline(), sim.horde.next_deadline());
    // The restored horde keeps working: the in-flight job can be submitted.
    let submitted = copy.submit(
        sim.now,
        UserId(2),
        in_flight,
        Submission {
            state: SubmitState::Ok,
            text: "done".into(),
            seed: None,
            metadata: None,
        },
    );
    assert!(submitted.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Properties over random command sequences.

#[derive(Debug, Clone)]
enum Cmd {
    Enqueue {
        owner: u64,
        n: u32,
        model: Option<u8>,
        max_length: u32,
    },
    Pop {
        owner: u64,
        worker: u8,
        amount: u32,
        max_length: u32,
    },
    Submit {
        pick: usize,
        faulted: bool,
    },
    Cancel {
        pick: usize,
    },
    Transfer {
        from: u64,
        to: u64,
        kudos: i64,
    },
    Advance {
        secs: u64,
    },
}

const MODELS: [&str; 3] = ["a/m-7B", "b/m-13B", "c/m-70B"];

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        3 => (0..5u64, 1..4u32, prop::option::of(0..3u8), prop::sample::select(vec![16u32, 80, 512, 1024]))
            .prop_map(|(owner, n, model, max_length)| Cmd::Enqueue { owner, n, model, max_length }),
        3 => (1..5u64, 0..4u8, 1..3u32, prop::sample::select(vec![80u32, 512, 1024]))
            .prop_map(|(owner, worker, amount, max_length)| Cmd::Pop { owner, worker, amount, max_length }),
        3 => (any::<usize>(), prop::bool::weighted(0.2))
            .prop_map(|(pick, faulted)| Cmd::Submit { pick, faulted }),
        1 => any::<usize>().prop_map(|pick| Cmd::Cancel { pick }),
        1 => (0..5u64, 0..5u64, -5..50i64).prop_map(|(from, to, kudos)| Cmd::Transfer { from, to, kudos }),
        1 => prop::sample::select(vec![1u64, 30, 200, 700]).prop_map(|secs| Cmd::Advance { secs }),
    ]
}

/// The best effective priority among requests `worker` may serve, per the naive definition.
fn best_eligible_score(horde: &Horde, worker: &Worker, now: Timestamp) -> Option<i128> {
    let rate = i128::from(horde.config.ageing_per_sec.milli());
    horde
        .requests
        .values()
        .filter(|e| e.state.is_open() && e.state.waiting > 0)
        .filter(|e| matching::check(worker, &e.spec).is_ok())
        .map(|e| {
            let balance = i128::from(horde.ledger.balance(e.spec.owner).milli());
            let waited = i128::from(now.millis_since(e.spec.created_at));
            balance * 1000 + rate * waited
        })
        .max()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_over_random_commands(cmds in prop::collection::vec(cmd(), 1..120)) {
        // Escrow on: untrusted owners' earnings are split between balance and escrow.
        let mut config = HordeConfig::default();
        config.integrity.speed_limits.clear();
        config.integrity.upfront_queue_minutes = 0;
        let mut sim = Sim::with_speed_rule(config);
        let mut jobs: Vec<(u64, JobId)> = Vec::new();
        let mut served: HashMap<JobId, u32> = HashMap::new();
        let mut enqueued: Vec<RequestId> = Vec::new();
        for cmd in cmds {
            match cmd {
                Cmd::Enqueue { owner, n, model, max_length } => {
                    let mut spec = sim.spec(owner);
                    spec.params = GenParams { n, max_length, max_context_length: 2048 };
                    spec.models = model.map(|m| vec![MODELS[m as usize].into()]).unwrap_or_default();
                    if let Ok(id) = sim.enqueue(spec) {
                        enqueued.push(id);
                    }
                }
                Cmd::Pop { owner, worker, amount, max_length } => {
                    let name = format!("w{worker}-{owner}");
                    let mut query = sim.query(owner, &name);
                    query.models = vec![MODELS[worker as usize % 3].into()];
                    query.amount = amount;
                    query.max_length = max_length;
                    // The worker's profile as the pop will see it, to check the order.
                    let mut profile = Worker::new(WorkerId(Uuid::nil()), UserId(owner), name.clone(), sim.now);
                    if let Some(existing) = sim.horde.worker_by_name(&name) {
                        profile = existing.clone();
                    }
                    profile.models = query.models.clone();
                    profile.max_length = max_length;
                    profile.max_context_length = query.max_context_length;
                    let best = best_eligible_score(&sim.horde, &profile, sim.now);
                    let own_waiting = sim.horde.requests.values().any(|e| {
                        e.spec.owner == UserId(owner) && e.state.is_open() && e.state.waiting > 0
                            && matching::check(&profile, &e.spec).is_ok()
                    });
                    if let Ok(result) = sim.pop_with(query) {
                        prop_assert!(result.assignments.len() <= amount as usize);
                        match result.assignments.first() {
                            None => prop_assert!(best.is_none(), "a servable request was left waiting"),
                            Some(a) if !own_waiting => {
                                // Not a priority pick: it must be the best eligible request.
                                let e = &sim.horde.requests[&a.request.id];
                                let rate = i128::from(sim.horde.config.ageing_per_sec.milli());
                                let balance = i128::from(sim.horde.ledger.balance(e.spec.owner).milli());
                                let score = balance * 1000 + rate * i128::from(sim.now.millis_since(e.spec.created_at));
                                // The balance can only have changed by this pop's uptime award to the worker's owner.
                                if e.spec.owner != UserId(owner) {
                                    prop_assert_eq!(Some(score), best);
                                }
                            }
                            Some(_) => {}
                        }
                        for a in result.assignments {
                            *served.entry(a.job).or_default() += 1;
                            jobs.push((owner, a.job));
                        }
                    }
                }
                Cmd::Submit { pick, faulted } if !jobs.is_empty() => {
                    let (owner, job) = jobs[pick % jobs.len()];
                    let state = if faulted { SubmitState::Faulted } else { SubmitState::Ok };
                    let before = sim.horde.job(job).map(|j| j.status.clone());
                    let result = sim.submit(owner, job, state);
                    match before {
                        Some(JobStatus::Processing) => prop_assert!(result.is_ok()),
                        Some(JobStatus::Done(_)) => prop_assert_eq!(result, Err(SubmitError::Duplicate)),
                        Some(JobStatus::Aborted(_)) => prop_assert_eq!(result, Err(SubmitError::Aborted)),
                        None => prop_assert_eq!(result, Err(SubmitError::UnknownJob)),
                    }
                }
                Cmd::Submit { .. } => {}
                Cmd::Cancel { pick } if !enqueued.is_empty() => {
                    let id = enqueued[pick % enqueued.len()];
                    if let Some(applied) = sim.horde.cancel(sim.now, id) {
                        sim.store.apply(&applied.events);
                    }
                }
                Cmd::Cancel { .. } => {}
                Cmd::Transfer { from, to, kudos } => {
                    if let Ok(applied) = sim.horde.transfer(sim.now, UserId(from), UserId(to), Kudos::from_milli(kudos * 100)) {
                        sim.store.apply(&applied.events);
                    }
                }
                Cmd::Advance { secs } => sim.advance(secs),
            }

            // Balances always sum to zero, in the core and in what was persisted.
            prop_assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
            let persisted: Kudos = sim.store.accounts.values().map(|a| a.balance + a.escrow).sum();
            prop_assert_eq!(persisted + sim.horde.ledger().horde_balance(), Kudos::ZERO);
            // Every job was handed out once.
            prop_assert!(served.values().all(|&c| c == 1));
            // Requester paid == worker earned, per generation posting.
            let mut paid: HashMap<UserId, Kudos> = HashMap::new();
            for p in sim.store.postings.iter().filter(|p| p.kind == crate::PostingKind::Generation) {
                if let (crate::Account::User(from), crate::Account::User(to) | crate::Account::Escrow(to)) = (p.from, p.to) {
                    *paid.entry(from).or_default() -= p.amount;
                    *paid.entry(to).or_default() += p.amount;
                }
            }
            prop_assert_eq!(paid.values().copied().sum::<Kudos>(), Kudos::ZERO);
            for user in 0..=5 {
                let accumulated = sim.horde.ledger().account(UserId(user)).details.accumulated;
                prop_assert_eq!(accumulated, paid.get(&UserId(user)).copied().unwrap_or_default());
            }
            // No request lost: each one enqueued is open with all n accounted for, or closed,
            // or removed after its retention.
            for id in &enqueued {
                if let Some((spec, state)) = sim.horde.request(*id) {
                    if state.is_open() {
                        prop_assert_eq!(state.waiting + state.processing + state.finished, spec.params.n);
                        prop_assert_eq!(sim.horde.queue.contains(id), state.waiting > 0);
                    } else {
                        prop_assert!(!sim.horde.queue.contains(id));
                        prop_assert_eq!(state.processing, 0);
                    }
                    let done = sim.horde.status(*id, sim.now).unwrap().generations.len() as u32;
                    prop_assert_eq!(done, state.finished);
                    let charged: Kudos = sim.horde.status(*id, sim.now).unwrap().generations.iter().map(|(_, g)| g.reward).sum();
                    prop_assert_eq!(charged, state.kudos);
                } else {
                    prop_assert!(!sim.store.specs.contains_key(id));
                }
            }
            // The backlog counted as it changes matches a recount.
            let open: Vec<_> = sim.horde.requests.values().filter(|e| e.state.is_open()).collect();
            let recount = |filter: &dyn Fn(&RequestSpec) -> bool| {
                open.iter().filter(|e| filter(&e.spec)).fold((0u64, 0u64), |(g, t), e| {
                    let w = u64::from(e.state.waiting);
                    (g + w, t + w * u64::from(e.spec.params.max_length))
                })
            };
            prop_assert_eq!(sim.horde.queued_totals(), recount(&|_| true));
            for model in MODELS {
                let counted = sim.horde.backlog.by_model.get(model).copied().unwrap_or_default();
                prop_assert_eq!(counted, recount(&|spec| spec.models.iter().any(|m| &**m == model)));
                let processing = sim.horde.jobs.values()
                    .filter(|j| j.status == JobStatus::Processing && &*j.model == model)
                    .count() as u64;
                let counted = sim.horde.backlog.processing_by_model.get(model).copied().unwrap_or_default();
                prop_assert_eq!(counted, processing);
            }
            // The online index matches a recount of the workers.
            let timeout = sim.horde.config.economy.online_timeout_secs;
            let online: Vec<&Worker> = sim.horde.workers.values()
                .filter(|w| w.is_online(sim.now, timeout))
                .collect();
            let threads = online.iter().map(|w| u64::from(w.threads)).sum();
            prop_assert_eq!(sim.horde.online_capacity(sim.now), (online.len() as u64, threads));
            // Open generations per user match the requests.
            for user in 0..=5 {
                let open: u32 = sim.horde.requests.values()
                    .filter(|e| e.spec.owner == UserId(user) && e.state.is_open())
                    .map(|e| e.state.waiting + e.state.processing)
                    .sum();
                prop_assert_eq!(sim.horde.open_generations(UserId(user)), open);
            }
        }
        // What was persisted restores to the same state, once a first tick has taken
        // offline the workers whose time ran out (the server's timer does that at start).
        let mut copy = sim.store.restore(HordeConfig::default());
        while copy.next_deadline().is_some_and(|at| at <= sim.now) {
            let _events = copy.tick(sim.now);
        }
        prop_assert_eq!(copy.queued_requests(), sim.horde.queued_requests());
        prop_assert_eq!(copy.queued_totals(), sim.horde.queued_totals());
        prop_assert_eq!(copy.model_stats(sim.now), sim.horde.model_stats(sim.now));
        // Workers (profile, clock and counters) come back exactly, from full records and
        // check-ins alike.
        for worker in sim.horde.workers() {
            prop_assert_eq!(copy.worker(worker.id), Some(worker));
        }
        for id in &enqueued {
            prop_assert_eq!(copy.status(*id, sim.now), sim.horde.status(*id, sim.now));
        }
        for user in 0..=5 {
            prop_assert_eq!(copy.ledger().account(UserId(user)), sim.horde.ledger().account(UserId(user)));
        }
    }
}

#[test]
fn a_restarted_request_keeps_its_place_in_line() {
    let mut sim = Sim::new();
    let older = sim.request(1);
    let newer = sim.request(1);
    let (got, job) = sim.pop(2, "w").unwrap();
    assert_eq!(got, older);
    assert_eq!(
        sim.horde.queue_position(older),
        None,
        "out of line while processing"
    );
    assert_eq!(sim.horde.queue_position(newer), Some(0));
    sim.submit(2, job, SubmitState::Faulted).unwrap();
    assert_eq!(sim.horde.queue_position(older), Some(0));
    assert_eq!(sim.pop(2, "w").unwrap().0, older);
}

#[test]
fn estimates_price_the_largest_acceptable_model() {
    let mut sim = Sim::new();
    let mut spec = sim.spec(1);
    spec.params.n = 2;
    spec.models = vec![MODEL.into(), OTHER_MODEL.into()];
    let economy = EconomyConfig::default();
    // 13B is the larger; the 1000-char prompt (250 tokens) is capped at max_length 80.
    let one = economy.generation_reward(13.0, 80, 80);
    assert_eq!(sim.horde.estimate(&spec, sim.now), one + one);
    // Any model: the largest online worker's, or the fallback when none is online.
    spec.models.clear();
    let fallback = economy.generation_reward(economy.unknown_model_size_b, 80, 80);
    assert_eq!(sim.horde.estimate(&spec, sim.now), fallback + fallback);
    sim.pop(2, "w");
    let eight = economy.generation_reward(8.0, 80, 80);
    assert_eq!(sim.horde.estimate(&spec, sim.now), eight + eight);
}

#[test]
fn inputs_over_the_limits_are_refused_and_lists_are_deduplicated() {
    let mut sim = Sim::new();
    let limits = Limits::default();
    let names = |count: usize| -> Vec<Arc<str>> {
        (0..count)
            .map(|i| Arc::from(format!("org/model-{i}")))
            .collect()
    };

    let mut spec = sim.spec(1);
    spec.models = names(limits.max_models + 1);
    assert_eq!(
        sim.enqueue(spec),
        Err(EnqueueError::OverLimit(OverLimit {
            field: "models",
            max: 200,
            unit: "entries"
        }))
    );
    let mut spec = sim.spec(1);
    spec.models = vec!["x".repeat(limits.max_model_name_chars + 1).into()];
    assert!(matches!(
        sim.enqueue(spec),
        Err(EnqueueError::OverLimit(OverLimit {
            field: "models",
            ..
        }))
    ));
    // Model names that hide or disguise text are refused like such worker names.
    for hidden in ["a\u{0}b", "m\u{202E}x", "zero\u{200B}width", "  "] {
        let mut spec = sim.spec(1);
        spec.models = vec![hidden.into()];
        assert!(
            matches!(
                sim.enqueue(spec),
                Err(EnqueueError::InvalidModelName { .. })
            ),
            "{hidden:?}"
        );
    }
    let mut spec = sim.spec(1);
    // Multi-byte characters count as one each: exactly at the limit passes.
    spec.prompt = "é".repeat(limits.max_prompt_chars).into();
    sim.enqueue(spec).unwrap();
    let mut spec = sim.spec(1);
    spec.prompt = "é".repeat(limits.max_prompt_chars + 1).into();
    assert!(matches!(
        sim.enqueue(spec),
        Err(EnqueueError::OverLimit(OverLimit {
            field: "prompt",
            ..
        }))
    ));
    let mut spec = sim.spec(1);
    spec.workers = (0..6).map(|i| WorkerId(Uuid::from_u128(i))).collect();
    assert!(matches!(
        sim.enqueue(spec),
        Err(EnqueueError::OverLimit(OverLimit {
            field: "workers",
            ..
        }))
    ));

    // Duplicates are dropped and the list sorted, at the limit.
    let mut spec = sim.spec(1);
    let mut models = names(limits.max_models - 3);
    models.reverse();
    models.extend(names(3));
    spec.models = models;
    let id = sim.enqueue(spec).unwrap();
    let (spec, _) = sim.horde.request(id).unwrap();
    assert!(spec.models.is_sorted());
    assert_eq!(spec.models.len(), limits.max_models - 3);

    let mut query = sim.query(2, "w");
    query.models = names(limits.max_models + 1);
    assert!(matches!(
        sim.pop_with(query),
        Err(PopError::OverLimit(OverLimit {
            field: "models",
            ..
        }))
    ));
    let mut query = sim.query(2, "w");
    query.name = "n".repeat(limits.max_worker_name_chars + 1);
    assert!(matches!(
        sim.pop_with(query),
        Err(PopError::OverLimit(OverLimit { field: "name", .. }))
    ));
    let mut query = sim.query(2, "w");
    query.priority_users = (0..=limits.max_priority_users as u64).map(UserId).collect();
    assert!(matches!(
        sim.pop_with(query),
        Err(PopError::OverLimit(OverLimit {
            field: "priority_usernames",
            ..
        }))
    ));
    let mut query = sim.query(2, "w");
    query.bridge_agent = "b".repeat(limits.max_bridge_agent_chars + 1);
    assert!(matches!(
        sim.pop_with(query),
        Err(PopError::OverLimit(OverLimit {
            field: "bridge_agent",
            ..
        }))
    ));

    // A worker at the limit, models given in reverse and doubled, serves a request naming
    // only its last model.
    let mut query = sim.query(2, "w");
    let mut models = names(limits.max_models);
    models.reverse();
    query.models = models.iter().chain(models.iter()).cloned().collect();
    query.models.truncate(limits.max_models);
    let mut spec = sim.spec(3);
    spec.models = vec![models[0].clone()];
    let wanted = sim.enqueue(spec).unwrap();
    let popped = sim.pop_with(query).unwrap();
    assert_eq!(popped.assignments.len(), 1);
    let worker = sim.horde.worker(popped.worker).unwrap();
    assert!(worker.models.is_sorted());
    assert_eq!(worker.models.len(), limits.max_models);
    let (wanted, _) = sim.horde.request(wanted).unwrap();
    assert_eq!(matching::check(worker, wanted), Ok(()));
    let mut other = (**wanted).clone();
    other.models = vec!["org/unserved".into()];
    assert_eq!(matching::check(worker, &other), Err(SkipReason::Models));
}

#[test]
fn a_tick_handles_a_bounded_batch_and_says_when_more_is_due() {
    let mut config = HordeConfig::default();
    config.limits.max_tick_batch = 2;
    let mut sim = Sim::with_config(config);
    let ids: Vec<_> = (0..5).map(|_| sim.request(1)).collect();
    let later = sim.now.plus_secs(1201);
    let first = sim.horde.tick(later);
    sim.store.apply(&first);
    let expired = |sim: &Sim| {
        ids.iter()
            .filter(|id| !sim.horde.request(**id).unwrap().1.is_open())
            .count()
    };
    assert_eq!(expired(&sim), 2);
    assert!(sim.horde.next_deadline().is_some_and(|at| at <= later));
    sim.now = later;
    sim.advance(0);
    assert_eq!(expired(&sim), 5);
}

/// Streams one new request a second from a fresh zero-balance user into a queue with a
/// standing backlog, while one worker serves one a second, and returns how long a request of
/// each debt class waited before it was served (`None`: not within 1,100 s).
fn waits_by_balance(floor: Kudos) -> Vec<(i64, Option<u64>)> {
    let mut config = HordeConfig::default();
    config.integrity.priority_floor = floor;
    let mut sim = Sim::with_config(config);
    let classes = [0i64, -100, -300, -1_000, -5_000];
    let mut next_user = 1_000u64;
    let mut fresh = |sim: &mut Sim| {
        next_user += 1;
        sim.add_user(UserId(next_user), 30);
        sim.request(next_user)
    };
    for _ in 0..60 {
        fresh(&mut sim);
    }
    let mut debtors = Vec::new();
    for (i, balance) in classes.iter().enumerate() {
        let user = 100 + i as u64;
        sim.add_user(UserId(user), 30);
        if *balance != 0 {
            sim.give(user, *balance);
        }
        debtors.push((sim.request(user), sim.now));
    }
    let mut waits = vec![None; classes.len()];
    for _ in 0..1_100 {
        sim.advance(1);
        fresh(&mut sim);
        if let Some((request, job)) = sim.pop(2, "w") {
            sim.submit(2, job, SubmitState::Ok).unwrap();
            if let Some(i) = debtors.iter().position(|(id, _)| *id == request) {
                waits[i] = Some(sim.now.millis_since(debtors[i].1) / 1000);
            }
        }
    }
    classes.iter().copied().zip(waits).collect()
}

#[test]
fn the_priority_floor_bounds_how_long_debtors_wait() {
    let floor = HordeConfig::default().integrity.priority_floor;
    let with_floor = waits_by_balance(floor);
    let without = waits_by_balance(Kudos::from_milli(i64::MIN / 2));
    if std::env::var_os("HORDE_PRINT_WAITS").is_some() {
        for ((balance, w), (_, wo)) in with_floor.iter().zip(&without) {
            eprintln!("| {balance} | {w:?} | {wo:?} |");
        }
    }
    // With the floor, every class is served, none later than the backlog (60 s) plus the
    // floor's 300 s (plus a little for the arrivals in between).
    for (balance, wait) in &with_floor {
        let wait = wait.unwrap_or_else(|| panic!("a request at {balance} was never served"));
        let behind = balance.unsigned_abs().min(300);
        assert!(wait <= 60 + behind + 10, "{balance}: {wait} s");
    }
    // Without it, deep debtors starve under the same stream (the attack in the issue): −1,000
    // waits over 1,000 s, −5,000 past the 20-minute expiry.
    assert!(without[3].1.is_some_and(|w| w > 1_000));
    assert_eq!(without[4].1, None);
}

#[test]
fn implausibly_fast_generations_are_not_paid_and_get_the_worker_paused() {
    let mut sim = Sim::with_speed_rule(HordeConfig::default());
    // An honest 13B worker at 40 tokens/s, for hours: always paid, never suspected.
    for _ in 0..50 {
        sim.request(1);
        let (_, job) = sim.pop_with_model(2, "honest", OTHER_MODEL).unwrap();
        sim.advance_millis(2_500); // 400 characters = 100 tokens in 2.5 s: 40 tokens/s
        assert!(sim.submit(2, job, SubmitState::Ok).unwrap().is_positive());
        sim.advance(1);
    }
    let honest = sim.horde.worker_by_name("honest").unwrap();
    assert_eq!(honest.suspicion, 0);
    assert!(!sim.horde.user(UserId(2)).unwrap().flagged);
    // Exactly at 200 tokens/s (the 13B limit) is still plausible: 100 tokens in 0.5 s.
    sim.request(1);
    let (_, job) = sim.pop_with_model(2, "honest", OTHER_MODEL).unwrap();
    sim.advance_millis(500);
    assert!(sim.submit(2, job, SubmitState::Ok).unwrap().is_positive());

    // The attack: submit the moment the job is popped.
    for round in 1..=3 {
        let victim_before = sim.horde.ledger().balance(UserId(1));
        let request = sim.request(1);
        let (_, job) = sim.pop_with_model(3, "garbage", OTHER_MODEL).unwrap();
        assert_eq!(sim.submit(3, job, SubmitState::Ok).unwrap(), Kudos::ZERO);
        // Not paid, nobody charged, and the request goes back to be served properly.
        assert_eq!(sim.horde.ledger().balance(UserId(3)), Kudos::ZERO);
        assert_eq!(sim.horde.ledger().balance(UserId(1)), victim_before);
        assert_eq!(sim.state(request).waiting, 1);
        assert_eq!(
            sim.horde.worker_by_name("garbage").unwrap().suspicion,
            round
        );
        sim.advance(1);
        // Serve it honestly so the queue stays clear.
        let (_, job) = sim.pop_with_model(2, "honest", OTHER_MODEL).unwrap();
        sim.advance(10);
        sim.submit(2, job, SubmitState::Ok).unwrap();
    }
    let garbage = sim.horde.worker_by_name("garbage").unwrap();
    assert!(garbage.maintenance, "paused after three");
    assert!(sim.horde.user(UserId(3)).unwrap().flagged);
    // A flagged owner's workers are paused, and it cannot move kudos on.
    assert_eq!(
        sim.pop_with(sim.query(3, "another")),
        Err(PopError::OwnerFlagged)
    );
    assert_eq!(
        sim.horde
            .transfer(sim.now, UserId(3), UserId(1), Kudos::from_milli(1)),
        Err(TransferError::Flagged)
    );
    // Its requests wait behind everyone else's, even deep debtors'.
    sim.give(4, -5_000);
    let flagged = sim.request(3);
    let debtor = sim.request(4);
    assert_eq!(
        sim.pop_with_model(2, "honest", OTHER_MODEL).unwrap().0,
        debtor
    );
    assert_eq!(
        sim.pop_with_model(2, "honest", OTHER_MODEL).unwrap().0,
        flagged
    );
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
}

#[test]
fn large_requests_need_their_cost_upfront_only_under_congestion() {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    let mut sim = Sim::with_speed_rule(config);
    let large = |sim: &mut Sim, owner: u64| {
        let mut spec = sim.spec(owner);
        spec.params.max_length = 1024;
        spec.params.n = 4;
        sim.enqueue(spec)
    };
    // One worker online (one thread: 600 tokens a minute); a 10-minute backlog is 6,000.
    sim.pop(2, "w");
    assert!(!sim.horde.congested());
    large(&mut sim, 1).unwrap(); // 4,096 tokens
    large(&mut sim, 3).unwrap(); // 8,192: now congested
    assert!(sim.horde.congested());
    // A throwaway account cannot draw a large debt now…
    assert!(matches!(
        large(&mut sim, 4),
        Err(EnqueueError::KudosUpfront { .. })
    ));
    // …but small requests pass, and so do those who hold the cost.
    sim.request(4);
    sim.give(5, 1_000);
    large(&mut sim, 5).unwrap();
    // A worker's owner is served first anyway and is exempt.
    large(&mut sim, 2).unwrap();
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
}

#[test]
fn self_dealing_from_one_address_moves_no_kudos_when_the_rule_is_on() {
    let mut config = HordeConfig::default();
    config.integrity.self_dealing_check = true;
    let mut sim = Sim::with_config(config);
    let serve = |sim: &mut Sim, request_origin: Option<u64>, worker_origin: Option<u64>| {
        let mut spec = sim.spec(1);
        spec.origin = request_origin;
        sim.enqueue(spec).unwrap();
        let mut query = sim.query(2, "w");
        query.origin = worker_origin;
        let job = sim.pop_with(query).unwrap().assignments[0].job;
        sim.submit(2, job, SubmitState::Ok).unwrap()
    };
    // The farmer's throwaway account and worker share an address: nothing moves.
    assert_eq!(serve(&mut sim, Some(7), Some(7)), Kudos::ZERO);
    assert_eq!(sim.horde.ledger().balance(UserId(1)), Kudos::ZERO);
    assert_eq!(sim.horde.ledger().balance(UserId(2)), Kudos::ZERO);
    // Different addresses, or an unknown one, are paid as usual.
    assert!(serve(&mut sim, Some(7), Some(8)).is_positive());
    assert!(serve(&mut sim, None, Some(8)).is_positive());
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
}

#[test]
fn untrusted_earnings_are_half_escrowed_until_trust_is_earned() {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    config.integrity.upfront_queue_minutes = 0;
    config.integrity.trust_after_escrow = Kudos::from_milli(150_000);
    config.integrity.trust_after_days = 1;
    let mut sim = Sim::with_speed_rule(config);
    // A user who registers now.
    let applied = sim.horde.set_user(
        UserId(7),
        UserPolicy {
            concurrency: 30,
            trusted: false,
            public_workers: false,
            flagged: false,
            registered_at: sim.now,
        },
    );
    sim.store.apply(&applied.events);
    let account = |sim: &Sim| sim.horde.ledger().account(UserId(7));
    let trusted = |sim: &Sim| sim.horde.user(UserId(7)).unwrap().trusted;
    let serve = |sim: &mut Sim| {
        sim.request(1);
        let (_, job) = sim.pop(7, "w").unwrap();
        sim.submit(7, job, SubmitState::Ok).unwrap()
    };
    let reward = serve(&mut sim);
    // Half now, half into escrow; the requester paid all of it; the details count it all.
    let now_part = Kudos::from_milli(reward.milli() - reward.milli() / 2);
    assert_eq!(account(&sim).balance, now_part);
    assert_eq!(account(&sim).escrow, Kudos::from_milli(reward.milli() / 2));
    assert_eq!(account(&sim).details.accumulated, reward);
    assert_eq!(sim.horde.ledger().balance(UserId(1)), -reward);
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
    // Only what was paid now can be sent on (the farmer's "transfer it all away").
    assert!(matches!(
        sim.horde.transfer(sim.now, UserId(7), UserId(3), reward),
        Err(TransferError::Ledger(LedgerError::NotEnough { .. }))
    ));
    // Uptime of an untrusted owner goes wholly to escrow.
    for _ in 0..8 {
        sim.advance(150);
        sim.pop(7, "w");
    }
    assert_eq!(account(&sim).balance, now_part);
    assert!(
        account(&sim).escrow.milli() >= 150_000,
        "{}",
        account(&sim).escrow
    );
    // Enough in escrow, but the account is not a day old: still untrusted.
    assert!(!trusted(&sim));
    // A day later the next generation brings trust, and the escrow is released.
    sim.advance(86_400);
    serve(&mut sim);
    assert!(trusted(&sim));
    let owner = account(&sim);
    assert_eq!(owner.escrow, Kudos::ZERO);
    assert_eq!(
        owner.balance,
        owner.details.accumulated + owner.details.awarded
    );
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
    // What was persisted restores to the same accounts.
    let copy = sim.store.restore(HordeConfig::default());
    assert_eq!(copy.ledger().account(UserId(7)), account(&sim));
    assert_eq!(copy.ledger().total(), Kudos::ZERO);
}

#[test]
fn an_admin_trusting_releases_escrow_and_a_flag_blocks_it() {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    config.integrity.upfront_queue_minutes = 0;
    let mut sim = Sim::with_speed_rule(config);
    sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    sim.submit(2, job, SubmitState::Ok).unwrap();
    let escrow = sim.horde.ledger().account(UserId(2)).escrow;
    assert!(escrow.is_positive());
    let policy = sim.horde.user(UserId(2)).unwrap();
    // Flagged and trusted: nothing is released.
    let applied = sim.horde.set_user(
        UserId(2),
        UserPolicy {
            trusted: true,
            flagged: true,
            ..policy
        },
    );
    sim.store.apply(&applied.events);
    sim.advance(10);
    assert!(matches!(
        sim.pop_with(sim.query(2, "w")),
        Err(PopError::OwnerFlagged)
    ));
    assert_eq!(sim.horde.ledger().account(UserId(2)).escrow, escrow);
    // Trusted and unflagged: released at the worker's next check-in.
    let applied = sim.horde.set_user(
        UserId(2),
        UserPolicy {
            trusted: true,
            flagged: false,
            ..policy
        },
    );
    sim.store.apply(&applied.events);
    sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    sim.submit(2, job, SubmitState::Ok).unwrap();
    let owner = sim.horde.ledger().account(UserId(2));
    assert_eq!(owner.escrow, Kudos::ZERO);
    assert_eq!(owner.balance, owner.details.accumulated);
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
}

#[test]
fn the_owners_own_requests_are_served_only_when_the_worker_can_serve_them() {
    let mut sim = Sim::new();
    // The owner's request needs more tokens than the worker generates.
    let mut spec = sim.spec(2);
    spec.params.max_length = 1024;
    spec.params.max_context_length = 2048;
    sim.enqueue(spec).unwrap();
    let other = sim.request(1);
    let mut query = sim.query(2, "w");
    query.max_length = 512;
    let popped = sim.pop_with(query).unwrap();
    assert_eq!(popped.assignments[0].request.id, other);
}

#[test]
fn is_possible_follows_the_online_workers_and_next_deadline_the_earliest_due() {
    let mut sim = Sim::new();
    let id = sim.request(1);
    assert!(!sim.horde.is_possible(id, sim.now), "no worker online");
    let deadline_before = sim.horde.next_deadline().unwrap();
    // The request's expiry is the only deadline: 20 minutes after it was queued.
    assert_eq!(deadline_before, sim.now.plus_secs(1200));
    // A worker that cannot serve it (too little context) does not make it possible.
    let mut small = sim.query(2, "small");
    small.max_context_length = 1024;
    small.max_length = 512;
    let mut spec = sim.spec(3);
    spec.params.max_context_length = 4096;
    let big = sim.enqueue(spec).unwrap();
    sim.pop_with(small).unwrap();
    assert!(!sim.horde.is_possible(big, sim.now));
    // One that can, online, does; going offline undoes it.
    sim.pop(4, "capable");
    assert!(sim.horde.is_possible(big, sim.now));
    // A job's deadline is earlier than the expiries: next_deadline is the earliest.
    let job_deadline = sim.horde.jobs.values().map(|j| j.deadline).min().unwrap();
    assert_eq!(sim.horde.next_deadline(), Some(job_deadline));
    sim.advance(400);
    assert!(
        !sim.horde.is_possible(big, sim.now),
        "its worker went offline"
    );
}

#[test]
fn the_ledger_refuses_negative_payments() {
    let mut ledger = Ledger::new();
    let minus = Kudos::from_milli(-1);
    let t = Timestamp(0);
    assert_eq!(
        ledger.settle_generation(UserId(1), UserId(2), minus, t),
        Err(LedgerError::NotPositive)
    );
    assert_eq!(
        ledger.award_uptime(UserId(2), minus, t),
        Err(LedgerError::NotPositive)
    );
    assert_eq!(
        ledger.escrow_uptime(UserId(2), minus, t),
        Err(LedgerError::NotPositive)
    );
    assert_eq!(
        ledger.settle_generation_escrowed(UserId(1), UserId(2), Kudos::ZERO, minus, t),
        Err(LedgerError::NotPositive)
    );
    assert_eq!(ledger.balance(UserId(1)), Kudos::ZERO);
    assert_eq!(ledger.balance(UserId(2)), Kudos::ZERO);
    assert_eq!(ledger.total(), Kudos::ZERO);
}

#[test]
fn restore_sorts_and_dedups_stored_model_lists() {
    let mut sim = Sim::new();
    let id = sim.request(1);
    // Lists stored by older versions may be unsorted, or sorted with duplicates.
    for models in [
        vec!["b", "a"],
        vec!["a", "a", "b"],
        vec!["a", "b"],
        vec!["b", "b", "a"],
    ] {
        let mut stored = (*sim.store.specs[&id]).clone();
        stored.models = models.into_iter().map(Arc::from).collect();
        sim.store.specs.insert(id, Arc::new(stored));
        let copy = sim.store.restore(HordeConfig::default());
        let (spec, _) = copy.request(id).unwrap();
        assert_eq!(spec.models, vec![Arc::<str>::from("a"), Arc::from("b")]);
    }
    // Every neighbour equal: only the duplicate check sees it.
    let mut stored = (*sim.store.specs[&id]).clone();
    stored.models = vec![Arc::from("a"), Arc::from("a")];
    sim.store.specs.insert(id, Arc::new(stored));
    let copy = sim.store.restore(HordeConfig::default());
    assert_eq!(
        copy.request(id).unwrap().0.models,
        vec![Arc::<str>::from("a")]
    );
}

#[test]
fn workers_and_the_configuration_can_be_read() {
    let mut sim = Sim::with_config(HordeConfig {
        max_restarts: 7,
        ..HordeConfig::default()
    });
    assert_eq!(sim.horde.config().max_restarts, 7);
    sim.pop(2, "a");
    sim.pop(2, "b");
    sim.pop(3, "c");
    let mut names: Vec<_> = sim.horde.workers().map(|w| w.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    let mut mine: Vec<_> = sim
        .horde
        .workers_of(UserId(2))
        .map(|w| w.name.clone())
        .collect();
    mine.sort();
    assert_eq!(mine, ["a", "b"]);
    assert_eq!(sim.horde.workers_of(UserId(4)).count(), 0);
    assert_eq!(sim.horde.request_count(), 0);
    sim.request(1);
    sim.request(1);
    assert_eq!(sim.horde.request_count(), 2);
}

#[test]
fn the_next_deadline_is_the_earliest_thing_to_do() {
    let mut sim = Sim::new();
    assert_eq!(Horde::new(HordeConfig::default()).next_deadline(), None);
    sim.request(1);
    let popped_at = sim.now;
    sim.pop(2, "w").unwrap();
    let job_deadline = popped_at.plus_millis(sim.horde.config().job_timeout_ms(512));
    let next = sim.horde.next_deadline().unwrap();
    assert!(next > popped_at && next <= job_deadline, "{next:?}");
}

#[test]
fn the_model_reference_reads_back() {
    let sim = Sim::new();
    let reference = sim.horde.model_reference();
    assert!(!reference.is_empty());
    assert!(reference.lookup(MODEL).is_some());
}

#[test]
fn ids_and_skip_reasons_read_as_the_wire_says() {
    assert_eq!(UserId(42).to_string(), "42");
    let names: Vec<&str> = [
        SkipReason::Models,
        SkipReason::MaxLength,
        SkipReason::MaxContextLength,
        SkipReason::WorkerId,
        SkipReason::Untrusted,
        SkipReason::Nsfw,
    ]
    .into_iter()
    .map(SkipReason::as_str)
    .collect();
    assert_eq!(
        names,
        [
            "models",
            "max_length",
            "max_context_length",
            "worker_id",
            "untrusted",
            "nsfw"
        ]
    );
}

/// A horde with escrow for untrusted earners (the default), without the speed and upfront
/// rules.
fn escrow_sim(tweak: impl FnOnce(&mut HordeConfig)) -> Sim {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    config.integrity.upfront_queue_minutes = 0;
    tweak(&mut config);
    Sim::with_speed_rule(config)
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

#[test]
fn a_flagged_owner_is_neither_released_nor_trusted_by_a_late_submit() {
    // Escrow held; the owner becomes trusted but flagged while a job is out.
    let mut sim = escrow_sim(|_| {});
    sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    sim.submit(2, job, SubmitState::Ok).unwrap();
    let escrow = sim.horde.ledger().account(UserId(2)).escrow;
    assert!(escrow.is_positive());
    sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    set_trust(&mut sim, 2, true, true);
    sim.submit(2, job, SubmitState::Ok).unwrap();
    assert_eq!(sim.horde.ledger().account(UserId(2)).escrow, escrow);

    // Enough earned and old enough, but flagged: not trusted automatically.
    let mut sim = escrow_sim(|config| {
        config.integrity.trust_after_escrow = Kudos::from_milli(1);
        config.integrity.trust_after_days = 0;
    });
    sim.request(1);
    let (_, job) = sim.pop(3, "w").unwrap();
    set_trust(&mut sim, 3, false, true);
    sim.submit(3, job, SubmitState::Ok).unwrap();
    assert!(!sim.horde.user(UserId(3)).unwrap().trusted);
    assert!(sim.horde.ledger().account(UserId(3)).escrow.is_positive());
}

#[test]
fn context_equal_to_the_length_is_enough() {
    let mut sim = Sim::new();
    let mut spec = sim.spec(1);
    spec.params.max_length = 512;
    spec.params.max_context_length = 512;
    assert_eq!(sim.horde.check_request(&spec), Ok(()));
    spec.params.max_context_length = 511;
    assert_eq!(
        sim.horde.check_request(&spec),
        Err(EnqueueError::TokenOverflow)
    );
}

#[test]
fn the_speed_rule_takes_the_bracket_of_the_size_and_allows_its_limit() {
    let integrity = Integrity {
        speed_limits: vec![
            SpeedLimit {
                up_to_b: 7.0,
                tokens_per_sec: 100.0,
            },
            SpeedLimit {
                up_to_b: 70.0,
                tokens_per_sec: 50.0,
            },
        ],
        ..Integrity::default()
    };
    // A 7B model is in the first bracket: 100 t/s allowed, 101 not.
    assert!(!integrity.implausibly_fast(7.0, 200, 2_000));
    assert!(integrity.implausibly_fast(7.0, 202, 2_000));
    // A 13B model: 50 t/s.
    assert!(!integrity.implausibly_fast(13.0, 100, 2_000));
    assert!(integrity.implausibly_fast(13.0, 101, 2_000));
    assert!(integrity.implausibly_fast(13.0, 51, 1_000));
    assert!(!integrity.implausibly_fast(13.0, 50, 1_000));
}

#[test]
fn a_text_at_its_limit_passes() {
    assert_eq!(OverLimit::chars("f", "abc", 3), Ok(()));
    assert!(OverLimit::chars("f", "abcd", 3).is_err());
    assert_eq!(
        OverLimit::chars("f", "ééé", 3),
        Ok(()),
        "characters, not bytes"
    );
}

#[test]
fn more_generations_than_the_users_concurrency_are_refused() {
    let mut sim = Sim::new();
    sim.add_user(UserId(9), 3);
    let mut spec = sim.spec(9);
    spec.params.n = 4;
    assert_eq!(
        sim.enqueue(spec),
        Err(EnqueueError::TooManyPrompts { limit: 3 })
    );
    let mut spec = sim.spec(9);
    spec.params.n = 3;
    assert!(sim.enqueue(spec).is_ok());
}

#[test]
fn a_check_in_with_new_threads_or_models_updates_the_online_figures() {
    let mut sim = Sim::new();
    let mut query = sim.query(2, "w");
    query.threads = 1;
    sim.pop_with(query.clone()).unwrap();
    assert_eq!(sim.horde.online_capacity(sim.now), (1, 1));
    query.threads = 4;
    sim.pop_with(query.clone()).unwrap();
    assert_eq!(sim.horde.online_capacity(sim.now), (1, 4));
    query.models = vec![OTHER_MODEL.into()];
    sim.pop_with(query.clone()).unwrap();
    let models: Vec<String> = sim
        .horde
        .model_stats(sim.now)
        .into_iter()
        .filter(|m| m.workers > 0)
        .map(|m| m.name.to_string())
        .collect();
    assert_eq!(models, [OTHER_MODEL]);
}

#[test]
fn maintenance_takes_a_worker_offline_at_once() {
    let mut sim = Sim::new();
    sim.pop(2, "w");
    assert_eq!(sim.horde.online_capacity(sim.now), (1, 1));
    let id = sim.horde.worker_by_name("w").unwrap().id;
    let update = WorkerUpdate {
        maintenance: Some(true),
        ..WorkerUpdate::default()
    };
    let applied = sim
        .horde
        .update_worker(UserId(2), false, id, update)
        .unwrap();
    sim.store.apply(&applied.events);
    assert_eq!(sim.horde.online_capacity(sim.now), (0, 0));
}

#[test]
fn a_larger_model_going_offline_lowers_the_any_model_estimate() {
    let mut sim = Sim::new();
    sim.pop(2, "small");
    let mut large = sim.query(3, "large");
    large.models = vec![OTHER_MODEL.into()];
    sim.pop_with(large).unwrap();
    let any = sim.spec(1);
    let with_both = sim.horde.estimate(&any, sim.now);
    let id = sim.horde.worker_by_name("large").unwrap().id;
    let update = WorkerUpdate {
        maintenance: Some(true),
        ..WorkerUpdate::default()
    };
    let applied = sim
        .horde
        .update_worker(UserId(3), false, id, update)
        .unwrap();
    sim.store.apply(&applied.events);
    let with_small = sim.horde.estimate(&any, sim.now);
    assert!(with_small < with_both, "{with_small} < {with_both}");
}

/// A horde with a second model the size of [`MODEL`], so that a worker can change models
/// without changing size.
fn sim_with_twin_model() -> Sim {
    let mut sim = Sim::new();
    sim.horde.set_model_reference(reference(&[
        (MODEL, 8.0),
        ("twin/of-the-model", 8.0),
        (OTHER_MODEL, 13.0),
    ]));
    sim
}

#[test]
fn a_check_in_with_other_models_of_the_same_size_moves_the_worker_between_models() {
    let mut sim = sim_with_twin_model();
    let mut query = sim.query(2, "w");
    sim.pop_with(query.clone()).unwrap();
    query.models = vec!["twin/of-the-model".into()];
    sim.pop_with(query).unwrap();
    let online: Vec<(String, u32)> = sim
        .horde
        .model_stats(sim.now)
        .into_iter()
        .filter(|m| m.workers > 0)
        .map(|m| (m.name.to_string(), m.workers))
        .collect();
    assert_eq!(online, [("twin/of-the-model".to_string(), 1)]);
}

#[test]
fn a_new_model_reference_resizes_the_online_workers() {
    let mut sim = Sim::new();
    sim.pop(2, "w");
    let any = sim.spec(1);
    let economy = EconomyConfig::default();
    let as_8b = economy.generation_reward(8.0, 80, 80);
    assert_eq!(sim.horde.estimate(&any, sim.now), as_8b);
    sim.horde.set_model_reference(reference(&[(MODEL, 70.0)]));
    let as_70b = economy.generation_reward(70.0, 80, 80);
    assert_eq!(sim.horde.estimate(&any, sim.now), as_70b);
}

#[test]
fn congestion_begins_past_the_configured_minutes_of_work() {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    config.integrity.upfront_queue_minutes = 10;
    // Nobody needs the cost upfront here: only the congestion figure is under test.
    config.integrity.upfront_exempt_tokens = u32::MAX;
    let mut sim = Sim::with_speed_rule(config);
    // One worker with two threads does 20 tokens a second: 12,000 tokens in ten minutes.
    let mut query = sim.query(2, "w");
    query.threads = 2;
    sim.pop_with(query).unwrap();
    let queue = |sim: &mut Sim, max_length: u32, n: u32| {
        let mut spec = sim.spec(1);
        spec.params.max_length = max_length;
        spec.params.n = n;
        sim.enqueue(spec).unwrap();
    };
    queue(&mut sim, 1000, 12);
    assert!(!sim.horde.congested(), "exactly ten minutes of work");
    queue(&mut sim, 16, 1);
    assert!(sim.horde.congested(), "a little more");
}

#[test]
fn holding_exactly_the_estimated_cost_is_enough_under_congestion() {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    let mut sim = Sim::with_speed_rule(config);
    sim.pop(2, "w");
    let large = |sim: &mut Sim, owner: u64| {
        let mut spec = sim.spec(owner);
        spec.params.max_length = 1024;
        spec.params.n = 4;
        spec
    };
    let filler = large(&mut sim, 1);
    sim.enqueue(filler).unwrap();
    let filler = large(&mut sim, 3);
    sim.enqueue(filler).unwrap();
    assert!(sim.horde.congested());
    let spec = large(&mut sim, 4);
    let needed = sim.horde.estimate(&spec, sim.now);
    let applied = sim.horde.admin_adjust(sim.now, UserId(4), needed).unwrap();
    sim.store.apply(&applied.events);
    sim.enqueue(spec).unwrap();
}

#[test]
fn model_figures_estimate_speed_and_time_from_threads() {
    let stats = ModelStats {
        name: MODEL.into(),
        workers: 2,
        threads: 3,
        queued: 4,
        queued_tokens: 600,
        jobs: 0,
    };
    assert_eq!(stats.performance(), 3 * TOKENS_PER_SEC_PER_THREAD);
    assert_eq!(stats.eta_secs(), 20);
    // No thread online: the time is counted at one token a second, not divided by zero.
    let idle = ModelStats {
        threads: 0,
        ..stats
    };
    assert_eq!(idle.performance(), 0);
    assert_eq!(idle.eta_secs(), 600);
}

#[test]
fn the_wait_estimate_counts_what_is_ahead_at_the_online_threads_speed() {
    let mut sim = Sim::new();
    let mut query = sim.query(2, "w");
    query.threads = 2;
    sim.pop_with(query).unwrap();
    sim.request(1);
    sim.request(1);
    let third = sim.request(1);
    let status = sim.horde.status(third, sim.now).unwrap();
    assert_eq!(status.queue_position, 2);
    // Two ahead and its own one generation, 80 tokens each, at 10 tokens/s on each of 2
    // threads: 3 × 80 / 10 / 2 = 12 s.
    assert_eq!(status.wait_time, 12);
}

#[test]
fn a_request_for_named_models_is_possible_only_with_a_worker_that_can_serve_it() {
    let mut sim = Sim::new();
    let mut short = sim.query(2, "short");
    short.models = vec![MODEL.into(), OTHER_MODEL.into()];
    short.max_length = 64;
    sim.pop_with(short).unwrap();
    let mut spec = sim.spec(1);
    spec.models = vec![MODEL.into(), OTHER_MODEL.into()];
    spec.params.max_length = 80;
    let long = sim.enqueue(spec).unwrap();
    assert!(
        !sim.horde.is_possible(long, sim.now),
        "the only worker of its models writes at most 64 tokens"
    );
    let mut spec = sim.spec(1);
    spec.models = vec![OTHER_MODEL.into()];
    spec.params.max_length = 64;
    let fits = sim.enqueue(spec).unwrap();
    assert!(sim.horde.is_possible(fits, sim.now));
}

#[test]
fn a_job_lives_as_long_as_its_timeout_says() {
    let mut sim = Sim::new();
    sim.request(1);
    let result = sim.pop_with(sim.query(2, "w")).unwrap();
    let timeout_ms = sim.horde.config().job_timeout_ms(80);
    assert!(timeout_ms > 1000);
    assert_eq!(result.assignments[0].ttl_secs, timeout_ms / 1000);
}

#[test]
fn only_workers_within_the_owners_cap_earn_uptime() {
    let mut sim = Sim::new();
    // Trusted, the owner runs four workers; untrusted again, the cap is three.
    set_trust(&mut sim, 2, true, false);
    for name in ["a", "b", "c", "d"] {
        sim.request(1);
        let (_, job) = sim.pop(2, name).unwrap();
        sim.submit(2, job, SubmitState::Ok).unwrap();
    }
    set_trust(&mut sim, 2, false, false);
    let uptime = |sim: &Sim| sim.horde.ledger().account(UserId(2)).details.uptime;
    // The fourth worker alone online for ten minutes earns nothing…
    for _ in 0..5 {
        sim.advance(150);
        sim.pop(2, "d");
    }
    assert_eq!(uptime(&sim), Kudos::ZERO, "over the cap");
    // …the third, within the cap, does.
    for _ in 0..5 {
        sim.advance(150);
        sim.pop(2, "c");
    }
    assert!(uptime(&sim).is_positive(), "within the cap");
}

#[test]
fn without_escrow_an_untrusted_owners_uptime_goes_to_the_balance() {
    let mut sim = Sim::new();
    sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    let paid = sim.submit(2, job, SubmitState::Ok).unwrap();
    for _ in 0..4 {
        sim.advance(150);
        sim.pop(2, "w");
    }
    let account = sim.horde.ledger().account(UserId(2));
    let award = EconomyConfig::default().uptime_reward(8.0, 4096);
    assert_eq!(account.details.uptime, award);
    assert_eq!(account.escrow, Kudos::ZERO);
    assert_eq!(account.balance, paid + award);
}

/// A change to one field of a pop.
type ChangeQuery = fn(&mut PopQuery);

#[test]
fn a_check_in_reports_the_whole_worker_only_when_its_profile_changed() {
    let mut sim = Sim::new();
    let base = sim.query(2, "w");
    sim.pop_with(base.clone()).unwrap();
    let reports_worker = |sim: &mut Sim, query: PopQuery| {
        let applied = sim.horde.pop(sim.now, query, Uuid::nil).unwrap();
        sim.store.apply(&applied.events);
        applied
            .events
            .iter()
            .any(|e| matches!(e, Event::WorkerChanged(_)))
    };
    assert!(!reports_worker(&mut sim, base.clone()), "nothing changed");
    let changes: [(&str, ChangeQuery); 8] = [
        ("models", |q| q.models = vec![OTHER_MODEL.into()]),
        ("max_length", |q| q.max_length = 256),
        ("max_context_length", |q| q.max_context_length = 2048),
        ("nsfw", |q| q.nsfw = true),
        ("threads", |q| q.threads = 2),
        ("bridge_agent", |q| q.bridge_agent = "other:2:none".into()),
        ("priority_users", |q| q.priority_users = vec![UserId(3)]),
        ("origin", |q| q.origin = Some(7)),
    ];
    for (field, change) in &changes {
        let mut query = base.clone();
        change(&mut query);
        assert!(reports_worker(&mut sim, query), "{field} changed");
        // Back to the base profile (itself a change), then a check-in that changes nothing.
        assert!(
            reports_worker(&mut sim, base.clone()),
            "{field} changed back"
        );
        assert!(
            !reports_worker(&mut sim, base.clone()),
            "{field}: nothing changed"
        );
    }
    // The owner's trust is part of the profile too.
    set_trust(&mut sim, 2, true, false);
    assert!(reports_worker(&mut sim, base.clone()), "trust changed");
    // What was reported is what a restart restores.
    let restored = sim.store.restore(HordeConfig::default());
    let worker = restored.worker_by_name("w").unwrap();
    assert!(worker.trusted);
}

#[test]
fn a_worker_may_be_renamed_to_a_name_of_exactly_the_longest_length() {
    let mut sim = Sim::new();
    let id = sim.pop_with(sim.query(2, "a")).unwrap().worker;
    let max = sim.horde.config().limits.max_worker_name_chars;
    let rename = |name: String| WorkerUpdate {
        name: Some(name),
        ..WorkerUpdate::default()
    };
    assert!(matches!(
        sim.horde
            .update_worker(UserId(2), false, id, rename("é".repeat(max + 1))),
        Err(WorkerUpdateError::InvalidName { .. })
    ));
    let longest = "é".repeat(max);
    let applied = sim
        .horde
        .update_worker(UserId(2), false, id, rename(longest.clone()))
        .unwrap();
    sim.store.apply(&applied.events);
    assert_eq!(sim.horde.worker_by_name(&longest).unwrap().id, id);
}

#[test]
fn a_tick_takes_only_its_batch_of_workers_offline() {
    let mut config = HordeConfig::default();
    config.limits.max_tick_batch = 2;
    let mut sim = Sim::with_config(config);
    for name in ["a", "b", "c"] {
        sim.pop(2, name);
    }
    for name in ["d", "e"] {
        sim.pop(3, name);
    }
    assert_eq!(sim.horde.online_capacity(sim.now).0, 5);
    // Past the online timeout all five are due to go offline; one tick takes two.
    let later = sim
        .now
        .plus_secs(EconomyConfig::default().online_timeout_secs + 1);
    let events = sim.horde.tick(later);
    sim.store.apply(&events);
    assert_eq!(sim.horde.online.capacity().0, 3);
    let events = sim.horde.tick(later);
    sim.store.apply(&events);
    assert_eq!(sim.horde.online.capacity().0, 1);
}
