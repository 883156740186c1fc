//! Benchmarks of the horde's hot paths with 100,000 waiting requests from 1,000 users over 20
//! models: `cargo bench -p horde-core`. Figures are recorded in `docs/performance.md`.

use std::sync::atomic::{AtomicU64, Ordering};

use horde_core::{
    Horde, HordeConfig, Kudos, PopQuery, RequestId, RequestSpec, Timestamp, UserId, UserPolicy,
};
use uuid::Uuid;

const REQUESTS: u64 = 100_000;
const USERS: u64 = 1_000;
const MODELS: u64 = 20;
/// The user with 500 waiting requests (the others have ~100).
const BIG_USER: u64 = 1;
const T0: Timestamp = Timestamp(1_700_000_000_000);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn new_id() -> Uuid {
    Uuid::from_u128(u128::from(NEXT_ID.fetch_add(1, Ordering::Relaxed)))
}

fn model(i: u64) -> String {
    format!("koboldcpp/model{i}-13B")
}

fn spec(owner: u64, i: u64) -> RequestSpec {
    let mut spec = RequestSpec::new(RequestId(new_id()), UserId(owner), "p", T0);
    spec.models = vec![model(i % MODELS).into()];
    spec
}

/// A horde with `REQUESTS` waiting requests; user 1 owns 500 of them. Returns one request in
/// the middle of the queue.
fn populated() -> (Horde, RequestId) {
    let mut horde = Horde::new(HordeConfig::default());
    for user in 0..=USERS + 1 {
        let _registered = horde.set_user(
            UserId(user),
            UserPolicy {
                concurrency: 1_000_000,
                trusted: false,
                public_workers: false,
                flagged: false,
                registered_at: Timestamp(0),
                roles: Default::default(),
            },
        );
        // Spread balances so the order is not just FIFO.
        let delta = Kudos::from_milli(((user * 7919) % 1000) as i64 * 1000 - 500_000);
        horde.admin_adjust(T0, UserId(user), delta).ok();
    }
    let mut middle = None;
    for i in 0..REQUESTS {
        let owner = if i % 200 < 1 || i < 400 {
            BIG_USER
        } else {
            2 + i % USERS
        };
        let now = T0.plus_millis(i);
        let id = horde
            .enqueue(now, spec(owner, i))
            .map(|applied| applied.value)
            .ok();
        if i == REQUESTS / 2 {
            middle = id;
        }
    }
    (horde, middle.unwrap_or(RequestId(Uuid::nil())))
}

fn query(models: Vec<String>) -> PopQuery {
    PopQuery {
        owner: UserId(USERS + 1),
        name: "bench-worker".into(),
        models: models.into_iter().map(Into::into).collect(),
        max_length: 512,
        max_context_length: 4096,
        priority_users: vec![],
        nsfw: false,
        threads: 1,
        amount: 1,
        bridge_agent: "bench:1:none".into(),
        extra_slow: false,
        blacklist: Vec::new(),
        origin: None,
        draw: u64::MAX,
    }
}

fn main() {
    report_memory();
    divan::main();
}

/// Resident memory per waiting request, measured from the process RSS before and after
/// building the populated horde (prompts are one byte, so this is overhead only).
fn report_memory() {
    let before = rss_bytes();
    let (horde, _) = populated();
    let after = rss_bytes();
    if let (Some(before), Some(after)) = (before, after) {
        let per = after.saturating_sub(before) / horde.queued_requests().max(1) as u64;
        println!(
            "memory: {} waiting requests, {} bytes resident per request (RSS delta {} KiB)",
            horde.queued_requests(),
            per,
            after.saturating_sub(before) / 1024
        );
    }
    drop(horde);
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[divan::bench(sample_count = 100, sample_size = 20)]
fn enqueue(bencher: divan::Bencher) {
    let (mut horde, _) = populated();
    let mut i = 0;
    bencher.bench_local(|| {
        i += 1;
        let owner = 2 + i % USERS;
        horde.enqueue(T0.plus_secs(200), spec(owner, i)).is_ok()
    });
}

#[divan::bench(sample_count = 100, sample_size = 20)]
fn pop_one_model(bencher: divan::Bencher) {
    let (mut horde, _) = populated();
    let mut i = 0;
    bencher.bench_local(|| {
        i += 1;
        let popped = horde.pop(T0.plus_secs(200), query(vec![model(i % MODELS)]), new_id);
        matches!(popped, Ok(p) if !p.value.assignments.is_empty())
    });
}

#[divan::bench(sample_count = 100, sample_size = 100)]
fn pop_no_matching_model(bencher: divan::Bencher) {
    let (mut horde, _) = populated();
    bencher.bench_local(|| {
        let popped = horde.pop(
            T0.plus_secs(200),
            query(vec!["koboldcpp/unserved-70B".into()]),
            new_id,
        );
        matches!(popped, Ok(p) if p.value.assignments.is_empty())
    });
}

#[divan::bench(sample_count = 100, sample_size = 100)]
fn balance_change_of_user_with_500_requests(bencher: divan::Bencher) {
    let (mut horde, _) = populated();
    let mut sign = 1;
    bencher.bench_local(|| {
        sign = -sign;
        horde
            .admin_adjust(T0, UserId(BIG_USER), Kudos::from_milli(sign * 1_000_000))
            .is_ok()
    });
}

#[divan::bench(sample_count = 100, sample_size = 100)]
fn queue_position(bencher: divan::Bencher) {
    let (horde, middle) = populated();
    bencher.bench_local(|| horde.queue_position(middle));
}
