//! The second round of rules against farming: threads enforced, the speed rule over a worker's
//! total rate, uptime from shown work, faults that cost, degenerate text, the anonymous pool
//! shared per address, the priority ceiling.

use super::*;

/// The default rules, with upfront kudos off unless a test wants it (the tests queue large
/// backlogs with few workers).
fn strict() -> Sim {
    let mut config = HordeConfig::default();
    config.integrity.upfront_queue_minutes = 0;
    Sim::with_speed_rule(config)
}

#[test]
fn a_worker_holds_no_more_jobs_than_its_owners_trust_allows() {
    let mut sim = strict();
    for _ in 0..10 {
        sim.request(1);
    }
    // It declares 50 threads and asks for 20 at once: an untrusted owner's worker gets 2.
    let mut query = sim.query(2, "greedy");
    query.threads = 50;
    query.amount = 20;
    let mut spec = sim.spec(1);
    spec.params.n = 10;
    sim.enqueue(spec).unwrap();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.extend(sim.pop_with(query.clone()).unwrap().assignments);
    }
    assert_eq!(held.len(), 2, "two jobs in flight, whatever it declares");
    assert_eq!(sim.horde.online_capacity(sim.now), (1, 2));
    // Finishing one frees one thread.
    sim.advance(10);
    sim.submit(2, held[0].job, SubmitState::Ok).unwrap();
    assert_eq!(sim.pop_with(query.clone()).unwrap().assignments.len(), 1);
    assert!(sim.pop_with(query.clone()).unwrap().assignments.is_empty());
    // A trusted owner's worker holds up to 16.
    set_trust(&mut sim, 3, true, false);
    let mut query = sim.query(3, "trusted");
    query.threads = 50;
    query.amount = 20;
    let mut got = 0;
    for _ in 0..20 {
        got += sim.pop_with(query.clone()).unwrap().assignments.len();
    }
    assert_eq!(got, 16);
}

#[test]
fn the_speed_rule_holds_for_a_workers_total_rate() {
    let mut sim = strict();
    // Alone, a job at 2/3 of the 8B limit (300 tokens/s) is plausible: 80 tokens in 0.4 s.
    sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    sim.advance_millis(400);
    assert!(sim.submit(2, job, SubmitState::Ok).unwrap().is_positive());
    sim.advance(60);
    // Two such jobs at once are 4/3 of the limit in all: the second is too fast.
    sim.request(1);
    sim.request(1);
    let (_, first) = sim.pop(2, "w").unwrap();
    let (_, second) = sim.pop(2, "w").unwrap();
    sim.advance_millis(400);
    assert!(sim.submit(2, first, SubmitState::Ok).unwrap().is_positive());
    assert_eq!(sim.submit(2, second, SubmitState::Ok).unwrap(), Kudos::ZERO);
    assert_eq!(sim.horde.worker_by_name("w").unwrap().suspicion, 1);
    // Two at once, each at 0.4 of the limit, are fine (the refused one came back).
    sim.advance(60);
    let (_, first) = sim.pop(2, "w").unwrap();
    sim.request(1);
    let (_, second) = sim.pop(2, "w").unwrap();
    sim.advance_millis(667);
    assert!(sim.submit(2, first, SubmitState::Ok).unwrap().is_positive());
    assert!(sim
        .submit(2, second, SubmitState::Ok)
        .unwrap()
        .is_positive());
    assert_eq!(sim.horde.worker_by_name("w").unwrap().suspicion, 1);
}

#[test]
fn uptime_is_paid_for_shown_work_never_for_claims() {
    let mut config = HordeConfig::default();
    config.integrity.upfront_queue_minutes = 0;
    config.integrity.escrow_untrusted = false;
    let mut sim = Sim::with_speed_rule(config);
    // The farmer advertises the largest model with the largest context, serves one job to
    // itself as its "proof", then only checks in.
    let mut claim = sim.query(2, "claims");
    claim.models = vec![OTHER_MODEL.into(), MODEL.into()];
    claim.max_context_length = 131_072;
    let mut own = sim.spec(2);
    own.params.max_length = 16;
    sim.enqueue(own).unwrap();
    let job = sim.pop_with(claim.clone()).unwrap().assignments[0].job;
    sim.advance(1);
    sim.submit(2, job, SubmitState::Ok).unwrap();
    for _ in 0..24 {
        sim.advance(150);
        sim.pop_with(claim.clone()).unwrap();
    }
    let uptime = |sim: &Sim, user| sim.horde.ledger().account(UserId(user)).details.uptime;
    assert_eq!(
        uptime(&sim, 2),
        Kudos::ZERO,
        "self-served work proves nothing"
    );
    // Real work for another user on the 8B model, with a 1,000-character prompt (250 tokens):
    // uptime is paid as 8B with 250 tokens of context, not 13B with 131,072.
    let mut spec = sim.spec(1);
    spec.models = vec![MODEL.into()];
    sim.enqueue(spec).unwrap();
    let job = sim.pop_with(claim.clone()).unwrap().assignments[0].job;
    sim.advance(5);
    sim.submit(2, job, SubmitState::Ok).unwrap();
    let worker = sim.horde.worker_by_name("claims").unwrap();
    assert_eq!(worker.shown_model.as_deref(), Some(MODEL));
    assert_eq!(worker.shown_context, 250);
    for _ in 0..4 {
        sim.advance(150);
        sim.pop_with(claim.clone()).unwrap();
    }
    let economy = EconomyConfig::default();
    assert_eq!(uptime(&sim, 2), economy.uptime_reward(8.0, 250));
    assert!(economy.uptime_reward(13.0, 131_072).milli() > 50 * uptime(&sim, 2).milli());
}

#[test]
fn a_worker_that_fails_most_of_what_it_takes_is_paused() {
    let mut sim = strict();
    // An honest worker whose backend fails one job in three is never suspected.
    for round in 0..30 {
        sim.request(1);
        let (_, job) = sim.pop(2, "flaky").unwrap();
        sim.advance(5);
        let state = if round % 3 == 0 {
            SubmitState::Faulted
        } else {
            SubmitState::Ok
        };
        sim.submit(2, job, state).unwrap();
        if state == SubmitState::Faulted {
            let (_, job) = sim.pop(2, "flaky").unwrap();
            sim.advance(5);
            sim.submit(2, job, SubmitState::Ok).unwrap();
        }
    }
    assert_eq!(sim.horde.worker_by_name("flaky").unwrap().suspicion, 0);
    // The griefer takes jobs and faults them, or lets them time out: every 5 is a suspicion,
    // and at 3 suspicions (15 failures) it is paused and its owner flagged.
    let mut failures = 0;
    while !sim
        .horde
        .worker_by_name("griefer")
        .is_some_and(|w| w.maintenance)
    {
        sim.request(1);
        let Some((_, job)) = sim.pop(3, "griefer") else {
            break;
        };
        failures += 1;
        if failures % 2 == 0 {
            sim.submit(3, job, SubmitState::Faulted).unwrap();
        } else {
            sim.advance(400); // past the job's deadline
        }
    }
    assert_eq!(failures, 15);
    assert!(sim.horde.user(UserId(3)).unwrap().flagged);
    let griefer = sim.horde.worker_by_name("griefer").unwrap();
    assert!(
        griefer.maintenance_msg.contains("failed"),
        "{}",
        griefer.maintenance_msg
    );
}

#[test]
fn degenerate_text_is_delivered_but_moves_nothing() {
    let mut sim = strict();
    let request = sim.request(1);
    let (_, job) = sim.pop(2, "junk").unwrap();
    sim.advance(30);
    let junk = Submission {
        state: SubmitState::Ok,
        text: "a".repeat(2048),
        seed: None,
        metadata: None,
    };
    let applied = sim.horde.submit(sim.now, UserId(2), job, junk).unwrap();
    sim.store.apply(&applied.events);
    assert_eq!(applied.value, Kudos::ZERO);
    assert_eq!(sim.horde.ledger().balance(UserId(1)), Kudos::ZERO);
    assert_eq!(sim.horde.ledger().balance(UserId(2)), Kudos::ZERO);
    assert_eq!(
        sim.state(request).finished,
        1,
        "the requester has their answer"
    );
    let worker = sim.horde.worker_by_name("junk").unwrap();
    assert_eq!(worker.last_good_at, None, "junk proves no work");
    assert_eq!(
        worker.suspicion, 0,
        "a requester may ask for it; no suspicion"
    );
}

#[test]
fn one_address_cannot_take_the_whole_anonymous_pool() {
    let mut sim = strict();
    let anonymous = |sim: &mut Sim, origin: u64, n: u32| {
        let mut spec = sim.spec(0);
        spec.params.n = n;
        spec.origin = Some(origin);
        sim.enqueue(spec)
    };
    anonymous(&mut sim, 1, 10).unwrap();
    assert_eq!(
        anonymous(&mut sim, 1, 1),
        Err(EnqueueError::AddressShare { limit: 10 })
    );
    // Others still get in.
    anonymous(&mut sim, 2, 10).unwrap();
    anonymous(&mut sim, 3, 1).unwrap();
    // A finished generation frees its address's share.
    let mut query = sim.query(4, "w");
    query.threads = 1;
    let job = sim.pop_with(query).unwrap().assignments[0].job;
    sim.advance(10);
    sim.submit(4, job, SubmitState::Ok).unwrap();
    anonymous(&mut sim, 1, 1).unwrap();
    assert_eq!(sim.horde.open_generations(UserId::ANONYMOUS), 21);
}

#[test]
fn the_rich_come_first_but_cannot_hold_a_newcomer_past_the_bound() {
    let mut sim = strict();
    sim.give(2, 5_000);
    sim.give(3, 300);
    // Richer is still first…
    let modest = sim.request(3);
    let rich = sim.request(2);
    for expected in [rich, modest] {
        let (got, job) = sim.pop(4, "w").unwrap();
        assert_eq!(got, expected);
        sim.advance(5);
        sim.submit(4, job, SubmitState::Ok).unwrap();
    }
    // …but 5,000 kudos count for less than 300 s of waiting: a newcomer's request is served
    // before any rich request made 300 s after it.
    let newcomer = sim.request(1);
    sim.advance(300);
    let later_rich = sim.request(2);
    sim.advance(60);
    let (_, job) = sim.pop(5, "v").unwrap_or_else(|| panic!("nothing served"));
    let served = sim.horde.job(job).unwrap().request;
    assert_eq!(served, newcomer);
    assert_ne!(served, later_rich);
}

#[test]
fn asking_again_while_holding_its_threads_gives_up_the_oldest_job() {
    let mut sim = strict();
    let first = sim.request(1);
    let second = sim.request(1);
    let mut query = sim.query(2, "restarted");
    query.threads = 1;
    let job = sim.pop_with(query.clone()).unwrap().assignments[0].job;
    // The worker restarts and asks again: its lost job goes back to the queue at once (first
    // in line again) and counts as a failure; the worker is not left idle.
    let again = sim.pop_with(query.clone()).unwrap().assignments[0].clone();
    assert_eq!(again.request.id, first);
    assert_ne!(again.job, job);
    assert!(matches!(
        sim.horde.job(job).unwrap().status,
        JobStatus::Aborted(AbortReason::Faulted)
    ));
    assert_eq!(sim.state(first).restarts, 1);
    assert_eq!(sim.state(second).waiting, 1);
    let worker = sim.horde.worker_by_name("restarted").unwrap();
    assert_eq!(worker.fault_score, 1);
    // Asking again and again to hold more is a string of failures: suspected at five.
    for _ in 0..4 {
        sim.pop_with(query.clone()).unwrap();
    }
    assert_eq!(sim.horde.worker_by_name("restarted").unwrap().suspicion, 1);
    // A worker declaring more threads than its owner's trust allows is not reclaimed from: it
    // just gets nothing more.
    let mut wide = sim.query(3, "wide");
    wide.threads = 4;
    sim.request(1);
    sim.request(1);
    let mut got = 0;
    for _ in 0..4 {
        got += sim.pop_with(wide.clone()).unwrap().assignments.len();
    }
    assert_eq!(got, 2);
    assert_eq!(sim.horde.worker_by_name("wide").unwrap().fault_score, 0);
}

#[test]
fn a_submission_that_earns_nothing_says_which_rule() {
    let mut config = HordeConfig::default();
    config.integrity.upfront_queue_minutes = 0;
    config.integrity.self_dealing_check = true;
    let mut sim = Sim::with_speed_rule(config);
    let text = |text: &str| Submission {
        state: SubmitState::Ok,
        text: text.into(),
        seed: None,
        metadata: None,
    };
    let submit = |sim: &mut Sim, origins: (Option<u64>, Option<u64>), wait: u64, said: &str| {
        let mut spec = sim.spec(1);
        spec.origin = origins.0;
        sim.enqueue(spec).unwrap();
        let mut query = sim.query(2, "w");
        query.origin = origins.1;
        let job = sim.pop_with(query).unwrap().assignments[0].job;
        sim.advance(wait);
        let applied = sim
            .horde
            .submit_paid(sim.now, UserId(2), job, text(said))
            .unwrap();
        sim.store.apply(&applied.events);
        sim.advance(60);
        applied.value
    };
    let fluent = "and so the story went on, as stories do, until the very end";
    let paid = submit(&mut sim, (None, None), 30, fluent);
    assert!(
        paid.reward.is_positive() && paid.unpaid.is_none(),
        "{paid:?}"
    );
    let rushed = submit(&mut sim, (None, None), 0, fluent);
    assert_eq!(
        (rushed.reward, rushed.unpaid),
        (Kudos::ZERO, Some(Unpaid::TooFast))
    );
    // The rushed job came back; serve it properly before the next case.
    let (_, job) = sim.pop(2, "w").unwrap();
    sim.advance(30);
    sim.submit(2, job, SubmitState::Ok).unwrap();
    sim.advance(60);
    let junk = submit(&mut sim, (None, None), 30, &"a".repeat(200));
    assert_eq!(junk.unpaid, Some(Unpaid::Degenerate));
    let own = submit(&mut sim, (Some(7), Some(7)), 30, fluent);
    assert_eq!(own.unpaid, Some(Unpaid::SelfDealing));
    assert_eq!(Unpaid::TooFast.code(), "TooFast");
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
}
