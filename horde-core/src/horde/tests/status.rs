//! What the horde reports: possibility, estimates, per-model figures, the model reference.

use super::*;

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
fn the_model_reference_reads_back() {
    let sim = Sim::new();
    let reference = sim.horde.model_reference();
    assert!(!reference.is_empty());
    assert!(reference.lookup(MODEL).is_some());
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
fn model_figures_estimate_time_from_the_workers_speed() {
    let stats = ModelStats {
        name: MODEL.into(),
        workers: 2,
        threads: 3,
        queued: 4,
        queued_tokens: 600,
        jobs: 0,
        tokens_per_sec: 30,
    };
    assert_eq!(stats.performance(), 30);
    assert_eq!(stats.eta_secs(), 20);
    // No worker online: the time is counted at one token a second, not divided by zero.
    let idle = ModelStats {
        workers: 0,
        threads: 0,
        tokens_per_sec: 0,
        ..stats
    };
    assert_eq!(idle.performance(), 0);
    assert_eq!(idle.eta_secs(), 600);
}

#[test]
fn a_models_speed_is_its_workers_speeds_whatever_threads_they_claim() {
    let mut sim = Sim::new();
    let mut query = sim.query(2, "claims-8");
    query.threads = 8;
    sim.pop_with(query).unwrap();
    sim.pop(3, "w2");
    let stats = sim.horde.model_stats(sim.now);
    let model = stats.iter().find(|m| &*m.name == MODEL).unwrap();
    // Two workers not yet measured: 10 tokens/s each, the claimed threads add nothing.
    assert_eq!(model.performance(), 2 * TOKENS_PER_SEC_PER_THREAD);
}

#[test]
fn the_wait_estimate_counts_what_is_ahead_at_the_online_workers_speed() {
    let mut sim = Sim::new();
    let mut query = sim.query(2, "w");
    query.threads = 2;
    sim.pop_with(query).unwrap();
    sim.request(1);
    sim.request(1);
    let third = sim.request(1);
    let status = sim.horde.status(third, sim.now).unwrap();
    assert_eq!(status.queue_position, 2);
    // Two ahead and its own one generation, 80 tokens each, at the one worker's 10 tokens/s
    // (not yet measured: its 2 threads add nothing): 3 × 80 / 10 = 24 s.
    assert_eq!(status.wait_time, 24);
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
fn a_model_is_served_while_an_online_worker_serves_it() {
    let mut sim = Sim::new();
    assert!(!sim.horde.serves_model(MODEL));
    sim.pop(2, "w");
    assert!(sim.horde.serves_model(MODEL));
    assert!(!sim.horde.serves_model(OTHER_MODEL));
}
