//! A job's life: pop, submit, faults, timeouts, expiry, cancel, the timer's deadlines.

use super::*;

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
fn a_job_lives_as_long_as_its_timeout_says() {
    let mut sim = Sim::new();
    sim.request(1);
    let result = sim.pop_with(sim.query(2, "w")).unwrap();
    let timeout_ms = sim.horde.config().job_timeout_ms(80);
    assert!(timeout_ms > 1000);
    assert_eq!(result.assignments[0].ttl_secs, timeout_ms / 1000);
}
