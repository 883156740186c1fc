//! Integrity of the economy: uptime and its proof, the speed rule, escrow, self-dealing, the ledger.

use super::*;

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
    // 600 s online: one award of (25 + 15 × 250/1024) × 8/7, for the context its work used
    // (a 1,000-character prompt: 250 tokens), not the 4,096 it advertises.
    let award = EconomyConfig::default().uptime_reward(8.0, 250);
    assert_eq!(award, "32.76".parse().unwrap());
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
    config.integrity.trust_after_escrow = Kudos::from_milli(60_000);
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
            roles: Default::default(),
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
    let two_awards = EconomyConfig::default().uptime_reward(8.0, 250).milli() * 2;
    assert!(
        account(&sim).escrow.milli() >= two_awards,
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

/// A horde with escrow for untrusted earners (the default), without the speed and upfront
/// rules.
fn escrow_sim(tweak: impl FnOnce(&mut HordeConfig)) -> Sim {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    config.integrity.upfront_queue_minutes = 0;
    tweak(&mut config);
    Sim::with_speed_rule(config)
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
    let award = EconomyConfig::default().uptime_reward(8.0, 250);
    assert_eq!(account.details.uptime, award);
    assert_eq!(account.escrow, Kudos::ZERO);
    assert_eq!(account.balance, paid + award);
}

#[test]
fn a_customizers_unknown_models_are_sized_by_name_and_resized_when_the_role_changes() {
    let mut sim = Sim::new();
    let custom = "maker/My-Finetune-13B";
    assert_eq!(sim.horde.model_size_for(UserId(2), custom), 1.0);
    let mut query = sim.query(2, "w");
    query.models = vec![custom.into()];
    sim.pop_with(query).unwrap();
    let id = sim.horde.worker_names["w"];
    assert_eq!(sim.horde.worker_sizes[&id], 1.0);
    let mut policy = sim.users[&UserId(2)];
    policy.roles.customizer = true;
    let applied = sim.horde.set_user(UserId(2), policy);
    sim.store.apply(&applied.events);
    assert_eq!(sim.horde.model_size_for(UserId(2), custom), 13.0);
    assert_eq!(sim.horde.worker_sizes[&id], 13.0);
    // A model the reference knows keeps its reference size; others' workers are unaffected.
    assert_eq!(sim.horde.model_size_for(UserId(2), MODEL), 8.0);
    assert_eq!(sim.horde.model_size_for(UserId(3), custom), 1.0);
    // The role is persisted with the policy.
    let copy = sim.store.restore(sim.horde.config().clone());
    assert_eq!(copy.model_size_for(UserId(2), custom), 13.0);
    // Uptime is paid for the model shown, sized as its generations are.
    let mut spec = sim.spec(1);
    spec.models = vec![custom.into()];
    sim.enqueue(spec).unwrap();
    let (_, job) = sim.pop_with_model(2, "w", custom).unwrap();
    sim.advance(10);
    sim.submit(2, job, SubmitState::Ok).unwrap();
    // Online (checking in every 30 s) for one uptime interval.
    let interval = sim.horde.config().economy.uptime_interval_secs;
    for _ in 0..=interval / 30 {
        sim.advance(30);
        sim.pop_with_model(2, "w", custom);
    }
    let worker = sim.horde.worker(id).unwrap();
    let economy = &sim.horde.config().economy;
    assert_eq!(
        worker.kudos_uptime,
        economy.uptime_reward(13.0, worker.shown_context)
    );
    assert_ne!(
        worker.kudos_uptime,
        economy.uptime_reward(1.0, worker.shown_context)
    );
}
