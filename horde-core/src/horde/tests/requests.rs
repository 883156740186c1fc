//! Enqueueing: parameters, limits, concurrency, kudos upfront under congestion, estimates.

use super::*;

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
    // One worker online, measured at 10 tokens a second (600 a minute, whatever threads it
    // declares); a 10-minute backlog is 6,000.
    sim.serve(2, "w", 1, 10);
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
    // The owner of a worker that did paid work for others lately is served first anyway and
    // is exempt; a worker that only claims, or whose proof is older, exempts nobody.
    large(&mut sim, 2).unwrap();
    let mut idle = sim.query(3, "idle");
    idle.threads = 50;
    sim.pop_with(idle).unwrap();
    assert!(
        sim.horde.congested(),
        "an idle worker's 50 threads add no capacity"
    );
    assert!(matches!(
        large(&mut sim, 3),
        Err(EnqueueError::KudosUpfront { .. })
    ));
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
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
fn congestion_begins_past_the_configured_minutes_of_work() {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    config.integrity.upfront_queue_minutes = 10;
    // Nobody needs the cost upfront here: only the congestion figure is under test.
    config.integrity.upfront_exempt_tokens = u32::MAX;
    let mut sim = Sim::with_speed_rule(config);
    // A worker not yet measured counts as one thread at 10 tokens a second, whatever it
    // declares: 6,000 tokens in ten minutes.
    let mut query = sim.query(2, "w");
    query.threads = 50;
    sim.pop_with(query).unwrap();
    let queue = |sim: &mut Sim, max_length: u32, n: u32| {
        let mut spec = sim.spec(1);
        spec.params.max_length = max_length;
        spec.params.n = n;
        spec.workers = vec![WorkerId(Uuid::from_u128(u128::MAX))];
        sim.enqueue(spec).unwrap();
    };
    queue(&mut sim, 1000, 6);
    assert!(!sim.horde.congested(), "exactly ten minutes of work");
    queue(&mut sim, 16, 1);
    assert!(sim.horde.congested(), "a little more");
    // Measured at 20 tokens a second (100 tokens in 5 s), it carries twice that.
    sim.serve(2, "w", 3, 5);
    assert!(!sim.horde.congested());
    queue(&mut sim, 1000, 6);
    assert!(sim.horde.congested());
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
fn allow_downgrade_shortens_a_request_that_would_need_its_cost_upfront() {
    let mut config = HordeConfig::default();
    config.integrity.speed_limits.clear();
    config.integrity.upfront_exempt_tokens = 200;
    let mut sim = Sim::with_speed_rule(config);
    sim.serve(2, "w", 1, 10);
    let mut filler = sim.spec(1);
    (filler.params.max_length, filler.params.n) = (1024, 10);
    sim.enqueue(filler).unwrap();
    assert!(sim.horde.congested());
    let large = |sim: &mut Sim, downgrade: bool| {
        let mut spec = sim.spec(4);
        (spec.params.max_length, spec.params.n) = (1024, 2);
        spec.allow_downgrade = downgrade;
        sim.enqueue(spec)
    };
    assert!(matches!(
        large(&mut sim, false),
        Err(EnqueueError::KudosUpfront { .. })
    ));
    let id = large(&mut sim, true).unwrap();
    // Two generations within the 200 exempt tokens: 100 each.
    let exempt = sim.horde.config.integrity.upfront_exempt_tokens;
    assert_eq!(sim.horde.requests[&id].spec.params.max_length, exempt / 2);
    // Where even the shortest generations (16 tokens) would not be exempt, it is refused.
    let mut many = sim.spec(4);
    (many.params.max_length, many.params.n) = (1024, 20);
    many.allow_downgrade = true;
    assert!(matches!(
        sim.enqueue(many),
        Err(EnqueueError::KudosUpfront { .. })
    ));
}

#[test]
fn slow_extra_slow_and_unvalidated_workers_serve_only_requests_that_allow_them() {
    let config = HordeConfig {
        validated_bridges: vec!["horde-worker".into()],
        ..HordeConfig::default()
    };
    let mut sim = Sim::with_config(config);
    let mut query = sim.query(2, "w");
    query.bridge_agent = "horde-worker:0.1.0:".into();
    sim.pop_with(query.clone()).unwrap();
    let worker_id = sim.horde.worker_names["w"];
    let spec = sim.spec(1);
    let check =
        |sim: &Sim, spec: &RequestSpec| matching::check(&sim.horde.workers[&worker_id], spec);
    assert_eq!(check(&sim, &spec), Ok(()));

    // Slow: measured below 2 tokens per second (unmeasured counts at 10).
    let mut fast_only = spec.clone();
    fast_only.slow_workers = false;
    assert_eq!(check(&sim, &fast_only), Ok(()));
    sim.horde
        .workers
        .get_mut(&worker_id)
        .unwrap()
        .measured_tps_milli = 1_500;
    assert_eq!(check(&sim, &fast_only), Err(SkipReason::Performance));
    assert_eq!(check(&sim, &spec), Ok(()));

    // Extra slow, as the worker declares at its next pop.
    query.extra_slow = true;
    sim.pop_with(query.clone()).unwrap();
    assert_eq!(check(&sim, &spec), Err(SkipReason::Performance));
    let mut patient = spec.clone();
    patient.extra_slow_workers = true;
    assert_eq!(check(&sim, &patient), Ok(()));

    // A bridge the operator did not validate.
    query.extra_slow = false;
    query.bridge_agent = "my-fork:9:".into();
    sim.pop_with(query).unwrap();
    assert_eq!(check(&sim, &spec), Err(SkipReason::BridgeVersion));
    let mut any_bridge = spec.clone();
    any_bridge.validated_backends = false;
    assert_eq!(check(&sim, &any_bridge), Ok(()));
    // The pop says why the worker idles.
    sim.enqueue(spec).unwrap();
    let mut query = sim.query(2, "w");
    query.bridge_agent = "my-fork:9:".into();
    let result = sim.pop_with(query).unwrap();
    assert!(result.assignments.is_empty());
    assert_eq!(result.skipped.get(SkipReason::BridgeVersion), 1);
}

#[test]
fn disable_batching_hands_one_generation_per_pop() {
    let mut sim = Sim::new();
    for disable in [false, true] {
        let mut spec = sim.spec(1);
        spec.params.n = 3;
        spec.disable_batching = disable;
        sim.enqueue(spec).unwrap();
        let mut query = sim.query(2, &format!("w{disable}"));
        query.amount = 3;
        let result = sim.pop_with(query).unwrap();
        assert_eq!(result.assignments.len(), if disable { 1 } else { 3 });
    }
}
