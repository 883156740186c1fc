//! Workers: matching and skip counts, names, maintenance, caps, check-ins.

use super::*;

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
            roles: Default::default(),
        },
    );
    sim.store.apply(&applied.events);
    assert!(sim.pop_with(sim.query(2, "d")).is_ok());
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
    let mut query = sim.query(2, "w");
    query.threads = 1;
    sim.pop_with(query).unwrap();
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

#[test]
fn a_blacklist_reads_a_bounded_amount_of_prompt_per_pop() {
    let mut sim = Sim::new();
    // Three prompts of 399,007 characters holding the word fill the pop's 1 MiB budget...
    for _ in 0..3 {
        let mut spec = sim.spec(1);
        spec.prompt = format!("{} dragon", "x".repeat(399_000)).into();
        sim.enqueue(spec).unwrap();
    }
    // ...so the clean request behind them is not read, and not handed out either.
    sim.request(1);
    let mut picky = sim.query(2, "picky");
    picky.blacklist = vec!["dragon".into()];
    let result = sim.pop_with(picky).unwrap();
    assert!(result.assignments.is_empty());
    assert_eq!(result.skipped.get(SkipReason::Blacklist), 4);
    // Without the list the same worker is served at once.
    let plain = sim.query(2, "picky");
    assert_eq!(sim.pop_with(plain).unwrap().assignments.len(), 1);
}

#[test]
fn a_deleted_worker_gives_its_jobs_back_and_frees_its_name() {
    let mut sim = Sim::new();
    let request = sim.request(1);
    let (_, job) = sim.pop(2, "w").unwrap();
    let id = sim.horde.worker_names["w"];
    assert_eq!(
        sim.horde.delete_worker(UserId(3), false, id, sim.now),
        Err(WorkerDeleteError::WrongCredentials)
    );
    let applied = sim
        .horde
        .delete_worker(UserId(2), false, id, sim.now)
        .unwrap();
    sim.store.apply(&applied.events);
    assert_eq!(applied.value, "w");
    assert!(matches!(applied.events.last(), Some(Event::WorkerRemoved(gone)) if *gone == id));
    assert!(sim.horde.worker(id).is_none());
    assert!(!sim.store.workers.contains_key(&id));
    assert_eq!(sim.horde.online_capacity(sim.now), (0, 0));
    // Its job went back: the request waits again, one restart counted.
    let (_, state) = sim.horde.request(request).unwrap();
    assert_eq!((state.waiting, state.processing, state.restarts), (1, 0, 1));
    assert_eq!(
        sim.submit(2, job, SubmitState::Ok),
        Err(SubmitError::Aborted)
    );
    // The name is free: the next pop under it is a new worker, which gets the request.
    let (again, _) = sim.pop(3, "w").unwrap();
    assert_eq!(again, request);
    assert_ne!(sim.horde.worker_names["w"], id);
    assert_eq!(
        sim.horde.delete_worker(UserId(2), false, id, sim.now),
        Err(WorkerDeleteError::UnknownWorker)
    );
}

#[test]
fn a_suspected_worker_is_deleted_by_an_administrator_only() {
    let mut sim = Sim::new();
    sim.pop(2, "w");
    let id = sim.horde.worker_names["w"];
    sim.horde.workers.get_mut(&id).unwrap().suspicion = 1;
    assert_eq!(
        sim.horde.delete_worker(UserId(2), false, id, sim.now),
        Err(WorkerDeleteError::UnderSuspicion)
    );
    let applied = sim
        .horde
        .delete_worker(UserId(9), true, id, sim.now)
        .unwrap();
    sim.store.apply(&applied.events);
    assert!(sim.horde.worker(id).is_none());
}

#[test]
fn teams_count_their_workers_paid_work_and_uptime_while_they_belong() {
    let mut sim = Sim::new();
    let team = TeamId(Uuid::from_u128(77));
    let create = |sim: &mut Sim, creator: u64, name: &str| {
        let applied = sim.horde.create_team(
            team,
            UserId(creator),
            name.into(),
            "we share".into(),
            sim.now,
        )?;
        sim.store.apply(&applied.events);
        Ok::<_, TeamError>(())
    };
    assert_eq!(
        create(&mut sim, 2, "Night shift"),
        Err(TeamError::NotTrusted)
    );
    let mut policy = sim.users[&UserId(2)];
    policy.trusted = true;
    let applied = sim.horde.set_user(UserId(2), policy);
    sim.store.apply(&applied.events);
    assert_eq!(
        create(&mut sim, 2, "NS"),
        Err(TeamError::InvalidName {
            reason: "must be at least 3 characters"
        })
    );
    create(&mut sim, 2, "Night shift").unwrap();

    // Work before joining counts for nobody's team.
    sim.serve(3, "w", 1, 10);
    let worker = sim.horde.worker_names["w"];
    let join = WorkerUpdate {
        team: Some(Some(team)),
        ..WorkerUpdate::default()
    };
    let applied = sim
        .horde
        .update_worker(UserId(3), false, worker, join)
        .unwrap();
    sim.store.apply(&applied.events);
    let reward = sim.serve(3, "w", 1, 10);
    let counted = sim.horde.team(team).unwrap().clone();
    assert_eq!(counted.requests_fulfilled, 1);
    assert_eq!(counted.kudos, reward);
    assert!(counted.uptime_ms >= 10_000, "{counted:?}");
    assert_eq!(sim.horde.team_members(team).count(), 1);
    // An unknown team cannot be joined.
    let elsewhere = WorkerUpdate {
        team: Some(Some(TeamId(Uuid::from_u128(78)))),
        ..WorkerUpdate::default()
    };
    assert_eq!(
        sim.horde.update_worker(UserId(3), false, worker, elsewhere),
        Err(WorkerUpdateError::UnknownTeam)
    );
    // Persisted: a restored horde has the team and its counters.
    let copy = sim.store.restore(sim.horde.config().clone());
    assert_eq!(copy.team(team), Some(&counted));
    assert_eq!(copy.worker(worker).unwrap().team, Some(team));

    // Only the creator (or a moderator) deletes it; its workers leave it.
    assert_eq!(
        sim.horde.delete_team(UserId(3), false, team),
        Err(TeamError::WrongCredentials)
    );
    let applied = sim.horde.delete_team(UserId(2), false, team).unwrap();
    sim.store.apply(&applied.events);
    assert_eq!(applied.value, "Night shift");
    assert_eq!(sim.horde.worker(worker).unwrap().team, None);
    assert!(sim.horde.team(team).is_none());
    assert!(sim.store.teams.is_empty());
}
