//! Random command sequences into horde-core's `Horde`, with the invariants checked after each
//! step. Shared by the `horde_commands` fuzz target and an ordinary test that replays the
//! committed seeds (`fuzz/seeds/horde_commands`).

use std::collections::HashMap;

use horde_core::{
    Horde, HordeConfig, JobId, Kudos, PopQuery, RequestId, RequestSpec, Submission, SubmitState,
    Timestamp, UserId, UserPolicy,
};
use uuid::Uuid;

/// What a store keeps: the core's reference model.
type Store = horde_core::Replica;

const MODELS: [&str; 3] = ["a/m-7B", "b/m-13B", "c/m-70B"];

/// Runs the commands `data` encodes (four bytes each) and panics if an invariant breaks.
pub(crate) fn run_commands(data: &[u8]) {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    let mut horde = Horde::new(config.clone());
    // Spot checks on: a pop whose draw is 0 is a check when one is possible (user 5 is
    // trusted, so its workers are the peers).
    horde.set_canaries(vec![
        "The days of the week are".into(),
        "Count to ten:".into(),
    ]);
    let mut store = Store::default();
    let mut now = Timestamp::from_secs(1_700_000_000);
    let mut next_id = 0u128;
    let mut id = || {
        next_id += 1;
        Uuid::from_u128(next_id)
    };
    for user in 1..=5 {
        let policy = UserPolicy {
            concurrency: 10,
            trusted: user == 5,
            public_workers: false,
            flagged: false,
            registered_at: Timestamp(0),
            roles: Default::default(),
        };
        store.apply(&horde.set_user(UserId(user), policy).events);
    }
    let mut jobs: Vec<(u64, JobId)> = Vec::new();
    let mut served: HashMap<JobId, u32> = HashMap::new();
    let mut enqueued: Vec<RequestId> = Vec::new();
    for chunk in data.chunks(4).take(300) {
        let [op, a, b, c] = [0, 1, 2, 3].map(|i| chunk.get(i).copied().unwrap_or(0));
        let user = u64::from(a % 6);
        match op % 8 {
            0 | 1 => {
                let mut spec = RequestSpec::new(
                    RequestId(id()),
                    UserId(user),
                    "x".repeat(usize::from(b) * 8 + 1),
                    now,
                );
                spec.params.n = u32::from(c % 3) + 1;
                spec.params.max_length = 16 + u32::from(b) * 4;
                if c % 4 != 0 {
                    spec.models = vec![MODELS[usize::from(c) % 3].into()];
                }
                if let Ok(applied) = horde.enqueue(now, spec) {
                    enqueued.push(applied.value);
                    store.apply(&applied.events);
                }
            }
            2 | 3 => {
                let owner = u64::from(a % 5) + 1;
                let query = PopQuery {
                    owner: UserId(owner),
                    name: format!("w{owner}-{}", b % 2),
                    models: vec![MODELS[usize::from(c) % 3].into()],
                    max_length: 512,
                    max_context_length: 4096,
                    priority_users: vec![UserId(u64::from(b % 6))],
                    nsfw: false,
                    threads: 1,
                    amount: u32::from(c % 3) + 1,
                    bridge_agent: "fuzz:1:none".into(),
                    extra_slow: false,
                    blacklist: Vec::new(),
                    origin: None,
                    draw: if b % 4 == 0 { 0 } else { u64::MAX },
                };
                if let Ok(applied) = horde.pop(now, query, &mut id) {
                    for assignment in &applied.value.assignments {
                        *served.entry(assignment.job).or_default() += 1;
                        jobs.push((owner, assignment.job));
                    }
                    store.apply(&applied.events);
                }
            }
            4 => {
                if !jobs.is_empty() {
                    let (owner, job) = jobs.remove(usize::from(b) % jobs.len());
                    let state = match c % 4 {
                        0 => SubmitState::Faulted,
                        1 => SubmitState::Censored,
                        _ => SubmitState::Ok,
                    };
                    let submission = Submission {
                        state,
                        text: "y".repeat(usize::from(c) * 4),
                        seed: None,
                        metadata: None,
                    };
                    if let Ok(applied) = horde.submit(now, UserId(owner), job, submission) {
                        store.apply(&applied.events);
                    }
                }
            }
            5 => {
                if let Some(request) = enqueued.get(usize::from(b) % enqueued.len().max(1)) {
                    if let Some(applied) = horde.cancel(now, *request) {
                        store.apply(&applied.events);
                    }
                }
            }
            6 => {
                let amount = Kudos::from_milli(i64::from(c) * 1000 - 50_000);
                let applied = if b % 2 == 0 {
                    horde
                        .transfer(now, UserId(user), UserId(u64::from(b % 6)), amount)
                        .ok()
                } else {
                    horde.admin_adjust(now, UserId(user), amount).ok()
                };
                if let Some(applied) = applied {
                    store.apply(&applied.events);
                }
            }
            _ => {
                now = now.plus_secs(u64::from(b) * 10);
                while horde.next_deadline().is_some_and(|at| at <= now) {
                    let events = horde.tick(now);
                    store.apply(&events);
                }
            }
        }
        // Balances always sum to exactly zero.
        assert_eq!(horde.ledger().total(), Kudos::ZERO);
        // No job was handed out twice.
        assert!(served.values().all(|&count| count == 1));
        // No request was lost: open ones account for all n generations.
        for request in &enqueued {
            if let Some((spec, state)) = horde.request(*request) {
                if state.is_open() {
                    assert_eq!(
                        state.waiting + state.processing + state.finished,
                        spec.params.n
                    );
                } else {
                    assert_eq!(state.processing, 0);
                }
            }
        }
    }
    // What was persisted restores to the same state.
    assert_eq!(
        store.orphan_check_ins, 0,
        "a worker checked in before it was created"
    );
    let mut copy = store.restore(config);
    while copy.next_deadline().is_some_and(|at| at <= now) {
        let _ = copy.tick(now);
    }
    assert_eq!(copy.queued_requests(), horde.queued_requests());
    assert_eq!(copy.queued_totals(), horde.queued_totals());
    for user in 0..=5 {
        assert_eq!(
            copy.ledger().account(UserId(user)),
            horde.ledger().account(UserId(user))
        );
    }
    for request in &enqueued {
        assert_eq!(copy.status(*request, now), horde.status(*request, now));
    }
}
