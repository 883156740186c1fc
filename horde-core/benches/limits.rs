//! The longest a single command holds the server's lock, with every input at its limit and
//! 100,000 waiting requests: `cargo bench -p horde-core --bench limits`.
//!
//! The horde holds 100,000 ordinary waiting requests from 1,000 users over 20 models, plus
//! 1,000 requests at the limits (200 models of 255 characters, 5 named workers), and 1,000
//! online workers each serving 200 models of 255 characters. Each benchmark is one command as
//! the server runs it under its lock (enqueue also computes the estimate and `is_possible`,
//! as `POST /generate/text/async` does). Figures are in `docs/performance.md`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use horde_core::{
    Horde, HordeConfig, Limits, PopQuery, RequestId, RequestSpec, Submission, SubmitState,
    Timestamp, UserId, UserPolicy, WorkerId,
};
use uuid::Uuid;

const REQUESTS: u64 = 100_000;
const USERS: u64 = 1_000;
const MODELS: u64 = 20;
const WORKERS: u64 = 1_000;
const T0: Timestamp = Timestamp(1_700_000_000_000);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn new_id() -> Uuid {
    Uuid::from_u128(u128::from(NEXT_ID.fetch_add(1, Ordering::Relaxed)))
}

fn model(i: u64) -> String {
    format!("koboldcpp/model{i}-13B")
}

/// A model name of exactly the longest length allowed.
fn long_model(i: u64) -> Arc<str> {
    let limits = Limits::default();
    let mut name = format!("org/long-model-{i}-");
    while name.len() < limits.max_model_name_chars {
        name.push('x');
    }
    name.into()
}

fn limits_spec(owner: u64, seed: u64, now: Timestamp) -> RequestSpec {
    let limits = Limits::default();
    let prompt: Arc<str> = "p".repeat(limits.max_prompt_chars).into();
    let mut spec = RequestSpec::new(RequestId(new_id()), UserId(owner), prompt, now);
    spec.models = (0..limits.max_models as u64)
        .map(|m| long_model(seed * 1_000 + m))
        .collect();
    spec.workers = (0..limits.max_request_workers as u128)
        .map(|w| WorkerId(Uuid::from_u128(u128::MAX - w)))
        .collect();
    spec
}

fn worker_query(owner: u64, name: String, models: Vec<Arc<str>>) -> PopQuery {
    let limits = Limits::default();
    PopQuery {
        owner: UserId(owner),
        name,
        models,
        max_length: 512,
        max_context_length: 4096,
        priority_users: (0..limits.max_priority_users as u64)
            .map(|u| UserId(2 + u))
            .collect(),
        nsfw: false,
        threads: 4,
        amount: 1,
        bridge_agent: "b".repeat(limits.max_bridge_agent_chars),
        extra_slow: false,
        blacklist: Vec::new(),
        origin: None,
        draw: u64::MAX,
    }
}

/// The populated horde, and the id of the last request queued.
fn populated() -> (Horde, RequestId) {
    // The bench's worker submits the moment it pops: without this the speed rule flags its
    // owner after three generations, and every later pop is refused in a microsecond.
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    let mut horde = Horde::new(config);
    for user in 0..=USERS + WORKERS + 1 {
        let policy = UserPolicy {
            concurrency: 1_000_000,
            trusted: false,
            public_workers: false,
            flagged: false,
            registered_at: Timestamp(0),
            roles: Default::default(),
        };
        let _registered = horde.set_user(UserId(user), policy);
    }
    let mut last = RequestId(Uuid::nil());
    for i in 0..REQUESTS {
        let mut spec = RequestSpec::new(RequestId(new_id()), UserId(2 + i % USERS), "p", T0);
        spec.models = vec![model(i % MODELS).into()];
        if let Ok(applied) = horde.enqueue(T0.plus_millis(i), spec) {
            last = applied.value;
        }
    }
    for i in 0..1_000 {
        let spec = limits_spec(2 + i % USERS, i, T0.plus_millis(REQUESTS + i));
        if let Ok(applied) = horde.enqueue(T0.plus_millis(REQUESTS + i), spec) {
            last = applied.value;
        }
    }
    // Online workers at the limits whose models nobody asks for, so they take no job here.
    for w in 0..WORKERS {
        let models = (0..200)
            .map(|m| long_model(9_000_000 + w * 1_000 + m))
            .collect();
        let query = worker_query(USERS + 2 + w, format!("worker-{w}"), models);
        let _ = horde.pop(T0.plus_secs(100), query, new_id);
    }
    (horde, last)
}

fn main() {
    divan::main();
}

const NOW: Timestamp = Timestamp(T0.0 + 200_000);

#[divan::bench(sample_count = 50, sample_size = 5)]
fn enqueue_with_estimate_at_limits(bencher: divan::Bencher) {
    let (mut horde, _) = populated();
    let mut seed = 10_000;
    // The request is parsed outside the lock: only the core's work is timed.
    let inputs = || {
        seed += 1;
        limits_spec(2 + seed % USERS, seed, NOW)
    };
    bencher.with_inputs(inputs).bench_local_values(|spec| {
        let kudos = horde.estimate(&spec, NOW);
        let id = horde.enqueue(NOW, spec).map(|a| a.value);
        (kudos, id.map(|id| horde.is_possible(id, NOW)))
    });
}

#[divan::bench(sample_count = 50, sample_size = 5)]
fn pop_at_limits_nothing_matches(bencher: divan::Bencher) {
    let (mut horde, _) = populated();
    let models: Vec<Arc<str>> = (0..200).map(|m| long_model(50_000_000 + m)).collect();
    let inputs = || worker_query(USERS + 1, "limits-worker".into(), models.clone());
    bencher
        .with_inputs(inputs)
        .bench_local_values(|query| horde.pop(NOW, query, new_id).is_ok());
}

#[divan::bench(sample_count = 50, sample_size = 5)]
fn pop_at_limits_and_submit(bencher: divan::Bencher) {
    let (mut horde, _) = populated();
    let mut models: Vec<Arc<str>> = (0..199).map(|m| long_model(60_000_000 + m)).collect();
    models.push(model(3).into());
    let inputs = || worker_query(USERS + 1, "serving-worker".into(), models.clone());
    bencher.with_inputs(inputs).bench_local_values(|query| {
        let popped = horde.pop(NOW, query, new_id);
        let job = popped
            .ok()
            .and_then(|p| p.value.assignments.first().map(|a| a.job));
        job.map(|job| {
            let text = "t".repeat(2_000);
            let submission = Submission {
                state: SubmitState::Ok,
                text,
                seed: None,
                metadata: None,
            };
            horde
                .submit(NOW, UserId(USERS + 1), job, submission)
                .is_ok()
        })
    });
}

#[divan::bench(sample_count = 50, sample_size = 5)]
fn status_of_the_last_request(bencher: divan::Bencher) {
    let (horde, last) = populated();
    bencher.bench_local(|| horde.status(last, NOW).map(|s| s.queue_position));
}

#[divan::bench(sample_count = 20, sample_size = 2)]
fn model_stats_with_1000_workers_of_200_models(bencher: divan::Bencher) {
    let (horde, _) = populated();
    bencher.bench_local(|| horde.model_stats(NOW).len());
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn tick_with_a_full_batch_due(bencher: divan::Bencher) {
    let (mut horde, _) = populated();
    // Twenty minutes later every request has expired: each tick handles one batch.
    let later = NOW.plus_secs(1_300);
    bencher.bench_local(|| horde.tick(later).len());
}
