//! The simulated horde: the real `horde-core` state machine, a clock that moves one second
//! at a time, and the agents acting on it — honest workers, farmers of every kind, and
//! requesters of every class.

use std::collections::HashMap;
use std::sync::Arc;

use horde_core::reference::{ModelReference, ReferenceEntry};
use horde_core::{
    Horde, HordeConfig, Kudos, PopQuery, RequestId, RequestSpec, Submission, SubmitState,
    Timestamp, UserId, UserPolicy,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::text;

/// The models of the simulation and their sizes, as the horde's reference knows them.
pub const MODELS: [(&str, f64); 4] = [
    ("sim/Llama-8B", 8.0),
    ("sim/Llama-13B", 13.0),
    ("sim/Llama-70B", 70.0),
    ("sim/Llama-405B", 405.0),
];

/// How a simulated worker behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Generates what its model generates, at `tokens_per_sec`.
    Honest,
    /// No backend: claims a large model and context, serves one job to its owner as its
    /// "proof", then only checks in (advertising a tiny `max_length` so it gets no jobs).
    Claims,
    /// Answers every job with one character repeated, just under its claimed model's speed
    /// limit.
    Degenerate,
    /// Answers with fluent text unrelated to the prompt at `tokens_per_sec` (more than the
    /// model it claims could do).
    Liar,
    /// Declares 50 threads, takes all it can, answers with unrelated text.
    Hoarder,
    /// Faults everything it takes, at once.
    Griefer,
    /// Answers the moment it pops (last round's attack).
    Instant,
}

/// A simulated worker and its owner.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Its name (and its class in the report).
    pub name: String,
    /// What kind of worker it is, for the report: "honest 8B", "farmer: claims", …
    pub class: String,
    /// Its owner.
    pub owner: UserId,
    /// The model it advertises.
    pub model: &'static str,
    /// The model size it really runs, in billions (0: nothing real): the honest worker it is
    /// compared with.
    pub real_b: f64,
    /// Its real speed, tokens per second.
    pub tokens_per_sec: f64,
    /// How it behaves.
    pub behaviour: Behaviour,
    /// Its owner is trusted.
    pub trusted: bool,
    /// Threads it declares.
    pub threads: u32,
    /// Users it serves first.
    pub priority_users: Vec<UserId>,
    next_pop: u64,
    jobs: Vec<Running>,
}

#[derive(Debug, Clone)]
struct Running {
    job: horde_core::JobId,
    done_at: u64,
    submission: Submission,
}

/// The classes of requesters.
pub const CLASSES: [&str; 6] = [
    "rich",
    "new",
    "anonymous",
    "debtor",
    "owner-priority",
    "hoarder",
];

/// One request's fate.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    /// Its requester's class (an index into [`CLASSES`]).
    pub class: usize,
    /// Seconds from queueing to a worker starting it; `None`: never started.
    pub secs: Option<u64>,
}

/// What a run recorded.
#[derive(Debug, Default)]
pub struct Record {
    /// Every request's wait.
    pub waits: Vec<Wait>,
    /// (hour, kudos supply: what the horde's account has given out, net).
    pub supply: Vec<(u64, Kudos)>,
}

/// The simulation.
#[derive(Debug)]
pub struct World {
    /// The horde under test.
    pub horde: Horde,
    /// The workers.
    pub agents: Vec<Agent>,
    /// Requesters by class.
    pub requesters: Vec<Vec<UserId>>,
    /// What was recorded.
    pub record: Record,
    /// Seconds since the start.
    pub secs: u64,
    start: Timestamp,
    rng: SmallRng,
    next_id: u128,
    open: HashMap<RequestId, (usize, u64)>,
    /// Mean arrivals per second, by class.
    arrivals: [f64; 6],
}

/// The simulated epoch: 2023-11-14.
const EPOCH: Timestamp = Timestamp(1_700_000_000_000);

/// Requests ask for one of these lengths, evenly.
const LENGTHS: [u32; 5] = [40, 80, 120, 160, 200];

impl World {
    /// A world on `config` whose honest workers are kept `load` busy (1.0: arrivals as
    /// fast as they can serve), with randomness from `seed`.
    pub fn new(config: HordeConfig, load: f64, seed: u64) -> World {
        let mut horde = Horde::new(config);
        let entries = MODELS
            .iter()
            .map(|&(name, params_b)| ReferenceEntry {
                name: name.into(),
                params_b,
                context: Some(131_072),
                aliases: vec![],
                ..ReferenceEntry::default()
            })
            .collect();
        if let Ok(reference) = ModelReference::new(entries) {
            horde.set_model_reference(reference);
        }
        horde.set_canaries(
            text::CANARIES
                .iter()
                .map(|prompt| Arc::from(*prompt))
                .collect(),
        );
        let mut world = World {
            horde,
            agents: Vec::new(),
            requesters: vec![Vec::new(); CLASSES.len()],
            record: Record::default(),
            secs: 0,
            start: EPOCH,
            rng: SmallRng::seed_from_u64(seed),
            next_id: 0,
            open: HashMap::new(),
            arrivals: [0.0; 6],
        };
        world.populate(load);
        world.self_serve_claims();
        world
    }

    fn user(&mut self, id: u64, trusted: bool) -> UserId {
        let user = UserId(id);
        let policy = UserPolicy {
            concurrency: 30,
            trusted,
            public_workers: false,
            flagged: false,
            registered_at: EPOCH,
            roles: Default::default(),
        };
        let _applied = self.horde.set_user(user, policy);
        user
    }

    fn populate(&mut self, load: f64) {
        let mut id = 100;
        let mut next = || {
            id += 1;
            id
        };
        let priority_user = self.user(next(), false);
        self.requesters[4].push(priority_user);
        let honest = [
            ("honest-8B", "honest 8B", 0, 30.0, false),
            ("trusted-8B", "honest 8B (trusted)", 0, 30.0, true),
            ("honest-13B", "honest 13B", 1, 20.0, false),
            ("trusted-13B", "honest 13B (trusted)", 1, 20.0, true),
            ("trusted-70B", "honest 70B (trusted)", 2, 8.0, true),
            ("trusted-405B", "honest 405B (trusted)", 3, 5.0, true),
        ];
        let mut capacity = 0.0;
        for (name, class, model, speed, trusted) in honest {
            let owner = self.user(next(), trusted);
            capacity += speed;
            let priority = if name == "honest-8B" {
                vec![priority_user]
            } else {
                vec![]
            };
            self.agents.push(agent(
                name,
                class,
                owner,
                MODELS[model],
                MODELS[model].1,
                speed,
                Behaviour::Honest,
                trusted,
                priority,
            ));
        }
        let big = MODELS[3];
        let farmers = [
            (
                "claims-1",
                "farmer: claims",
                big,
                0.0,
                0.0,
                Behaviour::Claims,
            ),
            (
                "claims-2",
                "farmer: claims",
                big,
                0.0,
                0.0,
                Behaviour::Claims,
            ),
            (
                "claims-3",
                "farmer: claims",
                big,
                0.0,
                0.0,
                Behaviour::Claims,
            ),
            (
                "junk",
                "farmer: degenerate junk",
                big,
                0.0,
                45.0,
                Behaviour::Degenerate,
            ),
            (
                "liar",
                "farmer: fluent liar (really 8B)",
                big,
                8.0,
                45.0,
                Behaviour::Liar,
            ),
            (
                "threads",
                "farmer: 50 threads (really 8B)",
                MODELS[0],
                8.0,
                30.0,
                Behaviour::Hoarder,
            ),
            (
                "griefer",
                "farmer: griefer",
                MODELS[0],
                0.0,
                0.0,
                Behaviour::Griefer,
            ),
            (
                "instant",
                "farmer: instant garbage",
                MODELS[1],
                0.0,
                0.0,
                Behaviour::Instant,
            ),
        ];
        let claims_owner = self.user(next(), false);
        for (name, class, model, real_b, speed, behaviour) in farmers {
            let owner = if behaviour == Behaviour::Claims {
                claims_owner
            } else {
                self.user(next(), false)
            };
            self.agents.push(agent(
                name,
                class,
                owner,
                model,
                real_b,
                speed,
                behaviour,
                false,
                vec![],
            ));
        }
        // Requesters: a rich one, a hoarder (rich, keeps 30 waiting), newcomers, debtors.
        let rich = self.user(next(), false);
        let _grant = self
            .horde
            .admin_adjust(EPOCH, rich, Kudos::from_milli(5_000_000));
        self.requesters[0].push(rich);
        let hoarder = self.user(next(), false);
        let _grant = self
            .horde
            .admin_adjust(EPOCH, hoarder, Kudos::from_milli(5_000_000));
        self.requesters[5].push(hoarder);
        for _ in 0..50 {
            let user = self.user(next(), false);
            self.requesters[1].push(user);
        }
        self.requesters[2].push(UserId::ANONYMOUS);
        for _ in 0..10 {
            let user = self.user(next(), false);
            let _debt = self
                .horde
                .admin_adjust(EPOCH, user, Kudos::from_milli(-1_000_000));
            self.requesters[3].push(user);
        }
        // Arrivals so that the honest workers are `load` busy: mean request 120 tokens. The
        // hoarder's requests come on top (it refills 30 as they are served).
        let per_sec = load * capacity / 120.0;
        let shares = [0.10, 0.40, 0.25, 0.15, 0.10, 0.0];
        for (class, share) in shares.iter().enumerate() {
            self.arrivals[class] = per_sec * share;
        }
    }

    fn now(&self) -> Timestamp {
        self.start.plus_secs(self.secs)
    }

    fn uuid(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    /// Runs `seconds` of simulated time and closes the books (see [`World::finish`]).
    pub fn run(&mut self, seconds: u64) {
        self.run_chunk(seconds);
        self.finish();
    }

    /// Runs `seconds` more of simulated time.
    pub fn run_chunk(&mut self, seconds: u64) {
        let end = self.secs + seconds;
        while self.secs < end {
            self.secs += 1;
            let now = self.now();
            while self.horde.next_deadline().is_some_and(|at| at <= now) {
                let _events = self.horde.tick(now);
            }
            self.arrive();
            for i in 0..self.agents.len() {
                self.act(i);
            }
            if self.secs.is_multiple_of(3600) {
                let supply = Kudos::from_milli(-self.horde.ledger().horde_balance().milli());
                self.record.supply.push((self.secs / 3600, supply));
            }
        }
    }

    /// New requests of this second, by class (Poisson arrivals); the hoarder tops up.
    fn arrive(&mut self) {
        for class in 0..CLASSES.len() - 1 {
            let mut count = poisson(&mut self.rng, self.arrivals[class]);
            while count > 0 {
                count -= 1;
                let users = &self.requesters[class];
                let user = users[self.rng.gen_range(0..users.len())];
                self.request(class, user);
            }
        }
        let hoarder = self.requesters[5][0];
        while self.horde.open_generations(hoarder) < 30 {
            if !self.request(5, hoarder) {
                break;
            }
        }
    }

    fn request(&mut self, class: usize, user: UserId) -> bool {
        let id = RequestId(self.uuid());
        let topic = self.rng.gen_range(0..1_000_000u32);
        let words = self.rng.gen_range(50..400);
        let mut spec = RequestSpec::new(id, user, text::prompt(topic, words), self.now());
        spec.params.max_length = LENGTHS[self.rng.gen_range(0..LENGTHS.len())];
        if user.is_anonymous() {
            spec.origin = Some(self.rng.gen_range(0..40));
        }
        match self.horde.enqueue(self.now(), spec) {
            Ok(_) => {
                self.open.insert(id, (class, self.secs));
                true
            }
            Err(_) => false,
        }
    }

    /// One second of agent `i`: submits what is due, pops when it may.
    fn act(&mut self, i: usize) {
        let now = self.now();
        let secs = self.secs;
        let due: Vec<Running> = {
            let agent = &mut self.agents[i];
            let (due, running) = agent.jobs.drain(..).partition(|r| r.done_at <= secs);
            agent.jobs = running;
            due
        };
        let owner = self.agents[i].owner;
        for running in due {
            let _done = self
                .horde
                .submit(now, owner, running.job, running.submission);
        }
        let agent = &self.agents[i];
        if agent.next_pop > secs || agent.jobs.len() >= agent.threads as usize {
            return;
        }
        let query = PopQuery {
            owner,
            name: agent.name.clone(),
            models: vec![agent.model.into()],
            max_length: if agent.behaviour == Behaviour::Claims {
                16
            } else {
                512
            },
            max_context_length: if agent.behaviour == Behaviour::Claims {
                131_072
            } else {
                8192
            },
            priority_users: agent.priority_users.clone(),
            nsfw: false,
            threads: agent.threads,
            amount: 1,
            bridge_agent: "horde-sim:1:none".into(),
            extra_slow: false,
            blacklist: vec![],
            origin: None,
            draw: self.rng.gen(),
        };
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(self.uuid());
        }
        let mut ids = ids.into_iter();
        let popped = self
            .horde
            .pop(now, query, || ids.next().unwrap_or_else(Uuid::nil));
        let assignments = match popped {
            Ok(applied) => applied.value.assignments,
            Err(_) => {
                // Paused or flagged: it tries again in a minute.
                self.agents[i].next_pop = secs + 60;
                return;
            }
        };
        let Some(assignment) = assignments.into_iter().next() else {
            let idle = if self.agents[i].behaviour == Behaviour::Claims {
                60
            } else {
                5
            };
            self.agents[i].next_pop = secs + idle;
            return;
        };
        if let Some((class, queued)) = self.open.remove(&assignment.request.id) {
            self.record.waits.push(Wait {
                class,
                secs: Some(secs - queued),
            });
        }
        let agent = &self.agents[i];
        let tokens = assignment.request.params.max_length;
        let prompt = &assignment.request.prompt;
        let (text, duration) = match agent.behaviour {
            Behaviour::Honest => (
                text::answer(&assignment.model, prompt, tokens),
                (f64::from(tokens) / agent.tokens_per_sec.max(1.0)).ceil() as u64,
            ),
            Behaviour::Degenerate => (
                ".".repeat(tokens as usize * 4),
                (f64::from(tokens) / agent.tokens_per_sec).ceil() as u64,
            ),
            // No backend: whatever it is given (its own 16-token request, a check) gets filler.
            Behaviour::Claims => (text::unrelated(secs, tokens), 16),
            Behaviour::Liar | Behaviour::Hoarder => (
                text::unrelated(secs, tokens),
                (f64::from(tokens) / agent.tokens_per_sec).ceil() as u64,
            ),
            Behaviour::Griefer => (String::new(), 0),
            Behaviour::Instant => (text::unrelated(secs, tokens), 0),
        };
        let state = if agent.behaviour == Behaviour::Griefer {
            SubmitState::Faulted
        } else {
            SubmitState::Ok
        };
        let agent = &mut self.agents[i];
        agent.jobs.push(Running {
            job: assignment.job,
            done_at: secs + duration,
            submission: Submission {
                state,
                text,
                seed: None,
                metadata: None,
            },
        });
        if duration == 0 {
            // The moment it popped.
            if let Some(running) = agent.jobs.pop() {
                let _done = self
                    .horde
                    .submit(now, owner, running.job, running.submission);
            }
        }
        let agent = &mut self.agents[i];
        // It pops again when a thread is free (the hoarder at once).
        agent.next_pop = if agent.behaviour == Behaviour::Hoarder {
            secs
        } else {
            secs + duration
        };
    }

    /// Ends the run: requests never started count as waiting until now, or as never started
    /// if they expired.
    pub fn finish(&mut self) {
        for (id, (class, queued)) in self.open.drain() {
            let closed = self
                .horde
                .request(id)
                .is_some_and(|(_, state)| !state.is_open());
            let secs = if closed {
                None
            } else {
                Some(self.secs - queued)
            };
            self.record.waits.push(Wait { class, secs });
        }
    }

    /// The claims farmer's owner queues one 16-token request per claims worker for
    /// themselves: each worker's "proof of work".
    fn self_serve_claims(&mut self) {
        let claims: Vec<UserId> = self
            .agents
            .iter()
            .filter(|a| a.behaviour == Behaviour::Claims)
            .map(|a| a.owner)
            .collect();
        for owner in claims {
            let id = RequestId(self.uuid());
            let mut spec = RequestSpec::new(id, owner, "Tell me a story.", self.now());
            spec.params.max_length = 16;
            spec.models = vec![MODELS[3].0.into()];
            let _queued = self.horde.enqueue(self.now(), spec);
        }
    }

    /// What an agent's owner holds now (balance plus escrow; owners start with nothing). The
    /// three claims workers share one owner.
    pub fn earned(&self, agent: &Agent) -> Kudos {
        let account = self.horde.ledger().account(agent.owner);
        Kudos::from_milli(account.balance.milli() + account.escrow.milli())
    }
}

#[allow(clippy::too_many_arguments)]
fn agent(
    name: &str,
    class: &str,
    owner: UserId,
    model: (&'static str, f64),
    real_b: f64,
    tokens_per_sec: f64,
    behaviour: Behaviour,
    trusted: bool,
    priority_users: Vec<UserId>,
) -> Agent {
    Agent {
        name: name.into(),
        class: class.into(),
        owner,
        model: model.0,
        real_b,
        tokens_per_sec,
        behaviour,
        trusted,
        threads: if behaviour == Behaviour::Hoarder {
            50
        } else {
            1
        },
        priority_users,
        next_pop: 0,
        jobs: Vec::new(),
    }
}

/// A Poisson-distributed count with mean `mean` (Knuth's method; means here are small).
fn poisson(rng: &mut SmallRng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    let limit = (-mean).exp();
    let mut product: f64 = rng.gen();
    let mut count = 0;
    while product > limit && count < 1000 {
        count += 1;
        product *= rng.gen::<f64>();
    }
    count
}
