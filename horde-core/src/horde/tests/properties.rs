//! Properties over random command sequences, and restoring from events.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

#[test]
fn restore_from_events_gives_the_same_horde() {
    let mut sim = Sim::new();
    sim.give(3, 50);
    let waiting = sim.request(1);
    let rich = sim.request(3);
    let processing = sim.request(1);
    let (first, _) = sim.pop(2, "w").unwrap();
    assert_eq!(first, rich);
    let (second, job) = sim.pop(2, "w").unwrap();
    assert_eq!(second, waiting);
    sim.submit(2, job, SubmitState::Ok).unwrap();
    let (third, in_flight) = sim.pop(2, "w").unwrap();
    assert_eq!(third, processing);
    let late = sim.request(4);

    let mut copy = sim.store.restore(sim.horde.config().clone());
    for user in 0..=5 {
        assert_eq!(
            copy.ledger().account(UserId(user)),
            sim.horde.ledger().account(UserId(user))
        );
    }
    assert_eq!(copy.ledger().total(), Kudos::ZERO);
    assert_eq!(copy.queued_requests(), sim.horde.queued_requests());
    for id in [waiting, rich, processing, late] {
        let (a, b) = (copy.status(id, sim.now), sim.horde.status(id, sim.now));
        assert_eq!(a, b);
    }
    assert_eq!(copy.worker_by_name("w"), sim.horde.worker_by_name("w"));
    assert_eq!(copy.open_generations(UserId(1)), 1);
    assert_eq!(copy.next_deadline(), sim.horde.next_deadline());
    // The restored horde keeps working: the in-flight job can be submitted.
    let submitted = copy.submit(
        sim.now,
        UserId(2),
        in_flight,
        Submission {
            state: SubmitState::Ok,
            text: "done".into(),
            seed: None,
            metadata: None,
        },
    );
    assert!(submitted.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Properties over random command sequences.

#[derive(Debug, Clone)]
enum Cmd {
    Enqueue {
        owner: u64,
        n: u32,
        model: Option<u8>,
        max_length: u32,
    },
    Pop {
        owner: u64,
        worker: u8,
        amount: u32,
        max_length: u32,
    },
    Submit {
        pick: usize,
        faulted: bool,
    },
    Cancel {
        pick: usize,
    },
    Transfer {
        from: u64,
        to: u64,
        kudos: i64,
    },
    Advance {
        secs: u64,
    },
    DeleteWorker {
        owner: u64,
        worker: u8,
    },
}

const MODELS: [&str; 3] = ["a/m-7B", "b/m-13B", "c/m-70B"];

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        3 => (0..5u64, 1..4u32, prop::option::of(0..3u8), prop::sample::select(vec![16u32, 80, 512, 1024]))
            .prop_map(|(owner, n, model, max_length)| Cmd::Enqueue { owner, n, model, max_length }),
        3 => (1..5u64, 0..4u8, 1..3u32, prop::sample::select(vec![80u32, 512, 1024]))
            .prop_map(|(owner, worker, amount, max_length)| Cmd::Pop { owner, worker, amount, max_length }),
        3 => (any::<usize>(), prop::bool::weighted(0.2))
            .prop_map(|(pick, faulted)| Cmd::Submit { pick, faulted }),
        1 => any::<usize>().prop_map(|pick| Cmd::Cancel { pick }),
        1 => (0..5u64, 0..5u64, -5..50i64).prop_map(|(from, to, kudos)| Cmd::Transfer { from, to, kudos }),
        1 => prop::sample::select(vec![1u64, 30, 200, 700]).prop_map(|secs| Cmd::Advance { secs }),
        1 => (1..5u64, 0..4u8).prop_map(|(owner, worker)| Cmd::DeleteWorker { owner, worker }),
    ]
}

/// The best effective priority among requests `worker` may serve, per the naive definition.
fn best_eligible_score(horde: &Horde, worker: &Worker, now: Timestamp) -> Option<i128> {
    let rate = i128::from(horde.config.ageing_per_sec.milli());
    horde
        .requests
        .values()
        .filter(|e| e.state.is_open() && e.state.waiting > 0)
        .filter(|e| matching::check(worker, &e.spec).is_ok())
        .map(|e| {
            let balance = i128::from(horde.queue_priority(e.spec.owner));
            let since = e.ticket.map_or(e.spec.created_at, |t| t.at());
            let waited = i128::from(now.0) - i128::from(since.0);
            balance * 1000 + rate * waited
        })
        .max()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_over_random_commands(cmds in prop::collection::vec(cmd(), 1..120)) {
        // Escrow on: untrusted owners' earnings are split between balance and escrow.
        let mut config = HordeConfig::default();
        config.integrity.speed_limits.clear();
        config.integrity.upfront_queue_minutes = 0;
        let mut sim = Sim::with_speed_rule(config);
        let mut jobs: Vec<(u64, JobId)> = Vec::new();
        let mut served: HashMap<JobId, u32> = HashMap::new();
        let mut enqueued: Vec<RequestId> = Vec::new();
        for cmd in cmds {
            match cmd {
                Cmd::Enqueue { owner, n, model, max_length } => {
                    let mut spec = sim.spec(owner);
                    spec.params = GenParams { n, max_length, max_context_length: 2048 };
                    spec.models = model.map(|m| vec![MODELS[m as usize].into()]).unwrap_or_default();
                    if let Ok(id) = sim.enqueue(spec) {
                        enqueued.push(id);
                    }
                }
                Cmd::Pop { owner, worker, amount, max_length } => {
                    let name = format!("w{worker}-{owner}");
                    let mut query = sim.query(owner, &name);
                    query.models = vec![MODELS[worker as usize % 3].into()];
                    query.amount = amount;
                    query.max_length = max_length;
                    // The worker's profile as the pop will see it, to check the order.
                    let mut profile = Worker::new(WorkerId(Uuid::nil()), UserId(owner), name.clone(), sim.now);
                    if let Some(existing) = sim.horde.worker_by_name(&name) {
                        profile = existing.clone();
                    }
                    profile.models = query.models.clone();
                    profile.max_length = max_length;
                    profile.max_context_length = query.max_context_length;
                    let best = best_eligible_score(&sim.horde, &profile, sim.now);
                    // A worker holding its threads' jobs gets none.
                    let trusted = sim.horde.user(UserId(owner)).is_some_and(|p| p.trusted);
                    let full = sim.horde.backlog.in_flight(profile.id)
                        >= sim.horde.config.integrity.threads(query.threads, trusted);
                    let own_waiting = sim.horde.requests.values().any(|e| {
                        e.spec.owner == UserId(owner) && e.state.is_open() && e.state.waiting > 0
                            && matching::check(&profile, &e.spec).is_ok()
                    });
                    if let Ok(result) = sim.pop_with(query) {
                        prop_assert!(result.assignments.len() <= amount as usize);
                        match result.assignments.first() {
                            None => prop_assert!(best.is_none() || full, "a servable request was left waiting"),
                            Some(a) if !own_waiting => {
                                // Not a priority pick: it must be the best eligible request.
                                let e = &sim.horde.requests[&a.request.id];
                                let rate = i128::from(sim.horde.config.ageing_per_sec.milli());
                                let balance = i128::from(sim.horde.queue_priority(e.spec.owner));
                                let since = e.ticket.map_or(e.spec.created_at, |t| t.at());
                                let score = balance * 1000 + rate * (i128::from(sim.now.0) - i128::from(since.0));
                                // The balance can only have changed by this pop's uptime award to the worker's owner.
                                if e.spec.owner != UserId(owner) {
                                    prop_assert_eq!(Some(score), best);
                                }
                            }
                            Some(_) => {}
                        }
                        for a in result.assignments {
                            *served.entry(a.job).or_default() += 1;
                            jobs.push((owner, a.job));
                        }
                    }
                }
                Cmd::Submit { pick, faulted } if !jobs.is_empty() => {
                    let (owner, job) = jobs[pick % jobs.len()];
                    let state = if faulted { SubmitState::Faulted } else { SubmitState::Ok };
                    let before = sim.horde.job(job).map(|j| j.status.clone());
                    let result = sim.submit(owner, job, state);
                    match before {
                        Some(JobStatus::Processing) => prop_assert!(result.is_ok()),
                        Some(JobStatus::Done(_)) => prop_assert_eq!(result, Err(SubmitError::Duplicate)),
                        Some(JobStatus::Aborted(_)) => prop_assert_eq!(result, Err(SubmitError::Aborted)),
                        None => prop_assert_eq!(result, Err(SubmitError::UnknownJob)),
                    }
                }
                Cmd::Submit { .. } => {}
                Cmd::Cancel { pick } if !enqueued.is_empty() => {
                    let id = enqueued[pick % enqueued.len()];
                    if let Some(applied) = sim.horde.cancel(sim.now, id) {
                        sim.store.apply(&applied.events);
                    }
                }
                Cmd::Cancel { .. } => {}
                Cmd::Transfer { from, to, kudos } => {
                    if let Ok(applied) = sim.horde.transfer(sim.now, UserId(from), UserId(to), Kudos::from_milli(kudos * 100)) {
                        sim.store.apply(&applied.events);
                    }
                }
                Cmd::Advance { secs } => sim.advance(secs),
                Cmd::DeleteWorker { owner, worker } => {
                    let name = format!("w{worker}-{owner}");
                    if let Some(id) = sim.horde.worker_by_name(&name).map(|w| w.id) {
                        if let Ok(applied) = sim.horde.delete_worker(UserId(owner), false, id, sim.now) {
                            sim.store.apply(&applied.events);
                            prop_assert!(sim.horde.worker(id).is_none());
                            prop_assert_eq!(sim.horde.backlog.in_flight(id), 0);
                            prop_assert!(!sim.horde.online.worker_ids().any(|w| *w == id));
                        }
                    }
                }
            }

            // Balances always sum to zero, in the core and in what was persisted.
            prop_assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
            let persisted: Kudos = sim.store.accounts.values().map(|a| a.balance + a.escrow).sum();
            prop_assert_eq!(persisted + sim.horde.ledger().horde_balance(), Kudos::ZERO);
            // Every job was handed out once.
            prop_assert!(served.values().all(|&c| c == 1));
            // Requester paid == worker earned, per generation posting.
            let mut paid: HashMap<UserId, Kudos> = HashMap::new();
            for p in sim.store.postings.iter().filter(|p| p.kind == crate::PostingKind::Generation) {
                if let (crate::Account::User(from), crate::Account::User(to) | crate::Account::Escrow(to)) = (p.from, p.to) {
                    *paid.entry(from).or_default() -= p.amount;
                    *paid.entry(to).or_default() += p.amount;
                }
            }
            prop_assert_eq!(paid.values().copied().sum::<Kudos>(), Kudos::ZERO);
            for user in 0..=5 {
                let accumulated = sim.horde.ledger().account(UserId(user)).details.accumulated;
                prop_assert_eq!(accumulated, paid.get(&UserId(user)).copied().unwrap_or_default());
            }
            // No request lost: each one enqueued is open with all n accounted for, or closed,
            // or removed after its retention.
            for id in &enqueued {
                if let Some((spec, state)) = sim.horde.request(*id) {
                    if state.is_open() {
                        prop_assert_eq!(state.waiting + state.processing + state.finished, spec.params.n);
                        prop_assert_eq!(sim.horde.queue.contains(id), state.waiting > 0);
                    } else {
                        prop_assert!(!sim.horde.queue.contains(id));
                        prop_assert_eq!(state.processing, 0);
                    }
                    let done = sim.horde.status(*id, sim.now).unwrap().generations.len() as u32;
                    prop_assert_eq!(done, state.finished);
                    let charged: Kudos = sim.horde.status(*id, sim.now).unwrap().generations.iter().map(|(_, g)| g.reward).sum();
                    prop_assert_eq!(charged, state.kudos);
                } else {
                    prop_assert!(!sim.store.specs.contains_key(id));
                }
            }
            // The backlog counted as it changes matches a recount.
            let open: Vec<_> = sim.horde.requests.values().filter(|e| e.state.is_open()).collect();
            let recount = |filter: &dyn Fn(&RequestSpec) -> bool| {
                open.iter().filter(|e| filter(&e.spec)).fold((0u64, 0u64), |(g, t), e| {
                    let w = u64::from(e.state.waiting);
                    (g + w, t + w * u64::from(e.spec.params.max_length))
                })
            };
            prop_assert_eq!(sim.horde.queued_totals(), recount(&|_| true));
            for model in MODELS {
                let counted = sim.horde.backlog.by_model.get(model).copied().unwrap_or_default();
                prop_assert_eq!(counted, recount(&|spec| spec.models.iter().any(|m| &**m == model)));
                let processing = sim.horde.jobs.values()
                    .filter(|j| j.status == JobStatus::Processing && &*j.model == model)
                    .count() as u64;
                let counted = sim.horde.backlog.processing_by_model.get(model).copied().unwrap_or_default();
                prop_assert_eq!(counted, processing);
            }
            // The online index matches a recount of the workers.
            let timeout = sim.horde.config.economy.online_timeout_secs;
            let online: Vec<&Worker> = sim.horde.workers.values()
                .filter(|w| w.is_online(sim.now, timeout))
                .collect();
            let integrity = &sim.horde.config.integrity;
            let threads = online.iter().map(|w| u64::from(integrity.threads(w.threads, w.trusted))).sum();
            prop_assert_eq!(sim.horde.online_capacity(sim.now), (online.len() as u64, threads));
            // No worker holds more jobs than its threads, as its owner's trust caps them.
            for worker in sim.horde.workers.values() {
                let held = sim.horde.jobs.values()
                    .filter(|j| j.status == JobStatus::Processing && j.worker == worker.id)
                    .count() as u32;
                prop_assert_eq!(sim.horde.backlog.in_flight(worker.id), held);
                let trusted = sim.horde.user(worker.owner).is_some_and(|p| p.trusted);
                prop_assert!(held <= integrity.threads(worker.threads, trusted) || !trusted);
            }
            // Anonymous generations per address match the requests.
            let mut by_origin: HashMap<u64, u32> = HashMap::new();
            for e in sim.horde.requests.values() {
                if let (true, Some(origin), true) = (e.spec.owner.is_anonymous(), e.spec.origin, e.state.is_open()) {
                    *by_origin.entry(origin).or_default() += e.state.waiting + e.state.processing;
                }
            }
            prop_assert_eq!(&sim.horde.anonymous_slots, &by_origin);
            // Open generations per user match the requests.
            for user in 0..=5 {
                let open: u32 = sim.horde.requests.values()
                    .filter(|e| e.spec.owner == UserId(user) && e.state.is_open())
                    .map(|e| e.state.waiting + e.state.processing)
                    .sum();
                prop_assert_eq!(sim.horde.open_generations(UserId(user)), open);
            }
        }
        // What was persisted restores to the same state, once a first tick has taken
        // offline the workers whose time ran out (the server's timer does that at start).
        prop_assert_eq!(sim.store.orphan_check_ins, 0, "a worker checked in before it was created");
        let mut copy = sim.store.restore(sim.horde.config().clone());
        while copy.next_deadline().is_some_and(|at| at <= sim.now) {
            let _events = copy.tick(sim.now);
        }
        prop_assert_eq!(copy.queued_requests(), sim.horde.queued_requests());
        prop_assert_eq!(copy.queued_totals(), sim.horde.queued_totals());
        prop_assert_eq!(copy.model_stats(sim.now), sim.horde.model_stats(sim.now));
        // Workers (profile, clock and counters) come back exactly, from full records and
        // check-ins alike.
        for worker in sim.horde.workers() {
            prop_assert_eq!(copy.worker(worker.id), Some(worker));
        }
        for id in &enqueued {
            prop_assert_eq!(copy.status(*id, sim.now), sim.horde.status(*id, sim.now));
        }
        for user in 0..=5 {
            prop_assert_eq!(copy.ledger().account(UserId(user)), sim.horde.ledger().account(UserId(user)));
        }
    }
}

#[test]
fn restore_sorts_and_dedups_stored_model_lists() {
    let mut sim = Sim::new();
    let id = sim.request(1);
    // Lists stored by older versions may be unsorted, or sorted with duplicates.
    for models in [
        vec!["b", "a"],
        vec!["a", "a", "b"],
        vec!["a", "b"],
        vec!["b", "b", "a"],
    ] {
        let mut stored = (*sim.store.specs[&id]).clone();
        stored.models = models.into_iter().map(Arc::from).collect();
        sim.store.specs.insert(id, Arc::new(stored));
        let copy = sim.store.restore(HordeConfig::default());
        let (spec, _) = copy.request(id).unwrap();
        assert_eq!(spec.models, vec![Arc::<str>::from("a"), Arc::from("b")]);
    }
    // Every neighbour equal: only the duplicate check sees it.
    let mut stored = (*sim.store.specs[&id]).clone();
    stored.models = vec![Arc::from("a"), Arc::from("a")];
    sim.store.specs.insert(id, Arc::new(stored));
    let copy = sim.store.restore(HordeConfig::default());
    assert_eq!(
        copy.request(id).unwrap().0.models,
        vec![Arc::<str>::from("a")]
    );
}
