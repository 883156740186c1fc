//! Spot checks: check jobs, trusted references, the verdict and what follows from it.

use super::*;

const CANARY: &str = "The lighthouse keeper had not spoken to anyone in three weeks when";
const HONEST: &str = "the boat appeared. He watched it come closer, rowing slowly against the \
    tide, and wondered who would come so far to a rock with nothing on it but a lamp.";
const QUANTISED: &str = "the boat appeared. He watched it come closer, rowing slowly against \
    the wind, and asked himself who would travel so far to a rock with only a lamp on it.";
const UNRELATED: &str = "Preheat the oven to two hundred degrees. Mix the flour, the sugar and \
    the butter in a large bowl until the dough is smooth, then bake it for twenty minutes.";

/// Every pop of an untrusted worker is a check (when one is possible); user 3 is trusted.
fn checking() -> Sim {
    let mut config = HordeConfig::default();
    config.spot_checks.rate_untrusted = 1.0;
    config.spot_checks.rate_trusted = 0.0;
    config.integrity.escrow_untrusted = true;
    let mut sim = Sim::with_config(config);
    sim.horde.set_canaries(vec![CANARY.into()]);
    set_trust(&mut sim, 3, true, false);
    sim
}

fn pop_drawn(sim: &mut Sim, owner: u64, name: &str, draw: u64) -> Option<Assignment> {
    let mut query = sim.query(owner, name);
    query.draw = draw;
    query.threads = 1;
    sim.pop_with(query).unwrap().assignments.into_iter().next()
}

#[test]
fn no_check_without_a_trusted_peer_or_a_known_answer() {
    let mut sim = checking();
    let request = sim.request(1);
    let job = pop_drawn(&mut sim, 2, "w", 0).unwrap();
    assert_eq!(job.request.id, request, "an ordinary job");
    assert_eq!(sim.horde.pending_checks(), 0);
}

#[test]
fn an_honest_worker_agrees_and_a_liar_is_caught_paused_and_loses_its_escrow() {
    let mut sim = checking();
    // The trusted peer is online.
    assert!(pop_drawn(&mut sim, 3, "trusted", u64::MAX).is_none());
    let horde_before = sim.horde.ledger().horde_balance();

    // The honest worker's pop is answered with a check job, which looks like any job.
    let check = pop_drawn(&mut sim, 2, "honest", 0).unwrap();
    assert_eq!(&*check.request.prompt, CANARY);
    assert_eq!(check.request.owner, UserId::HORDE);
    assert!(sim.horde.is_check(check.request.id));
    // The trusted worker's next pop gets the same prompt, first in line.
    sim.request(1);
    let reference = pop_drawn(&mut sim, 3, "trusted", u64::MAX).unwrap();
    assert_eq!(&*reference.request.prompt, CANARY);
    assert_eq!(reference.request.params, check.request.params);
    sim.advance(5);
    let paid = sim.submit_text(2, check.job, QUANTISED);
    assert!(paid.is_positive(), "a check pays like any job");
    sim.submit_text(3, reference.job, HONEST);
    assert_eq!(sim.horde.pending_checks(), 0);
    assert_eq!(sim.horde.worker_by_name("honest").unwrap().suspicion, 0);
    // The horde paid both, from its own account.
    assert!(sim.horde.ledger().horde_balance() < horde_before);
    assert_eq!(sim.horde.ledger().balance(UserId(1)), Kudos::ZERO);

    // The liar answers fluent but unrelated text; the known answer needs no peer now.
    let escrow = |sim: &Sim| sim.horde.ledger().account(UserId(4)).escrow;
    for round in 1..=3 {
        let check = pop_drawn(&mut sim, 4, "liar", 0).unwrap();
        assert_eq!(check.request.owner, UserId::HORDE);
        sim.advance(5);
        sim.submit_text(4, check.job, UNRELATED);
        let liar = sim.horde.worker_by_name("liar").unwrap();
        assert_eq!(liar.suspicion, round);
        assert_eq!(escrow(&sim), Kudos::ZERO, "its escrow is forfeited");
    }
    let liar = sim.horde.worker_by_name("liar").unwrap();
    assert!(liar.maintenance);
    assert!(
        liar.maintenance_msg.contains("check prompt"),
        "{}",
        liar.maintenance_msg
    );
    assert!(sim.horde.user(UserId(4)).unwrap().flagged);
    // The forfeits went back to the horde: nothing was lost.
    assert_eq!(sim.horde.ledger().total(), Kudos::ZERO);
    let details = sim.horde.ledger().account(UserId(4));
    assert_eq!(
        details.balance,
        details.details.accumulated + details.details.admin - details.escrow
    );
    // The honest worker is checked again and again and never suspected.
    for _ in 0..5 {
        let check = pop_drawn(&mut sim, 2, "honest", 0).unwrap();
        sim.advance(5);
        sim.submit_text(2, check.job, QUANTISED);
    }
    assert_eq!(sim.horde.worker_by_name("honest").unwrap().suspicion, 0);
}

#[test]
fn a_check_whose_reference_never_comes_is_void() {
    let mut sim = checking();
    pop_drawn(&mut sim, 3, "trusted", u64::MAX);
    let check = pop_drawn(&mut sim, 2, "w", 0).unwrap();
    sim.advance(5);
    sim.submit_text(2, check.job, UNRELATED);
    assert_eq!(sim.horde.pending_checks(), 1);
    // The trusted worker goes away; the reference request expires.
    sim.advance(1300);
    assert_eq!(sim.horde.pending_checks(), 0);
    assert_eq!(sim.horde.worker_by_name("w").unwrap().suspicion, 0);
}

#[test]
fn most_pops_are_ordinary_at_the_default_rate() {
    let mut config = HordeConfig::default();
    config.integrity.escrow_untrusted = false;
    let mut sim = Sim::with_config(config);
    sim.horde.set_canaries(vec![CANARY.into()]);
    set_trust(&mut sim, 3, true, false);
    pop_drawn(&mut sim, 3, "trusted", u64::MAX);
    let mut checks = 0;
    for i in 0..100u64 {
        // Draws spread evenly over u64: one in ten falls under the 0.1 rate.
        let draw = i.wrapping_mul(u64::MAX / 100);
        sim.request(1);
        if let Some(job) = pop_drawn(&mut sim, 2, "w", draw) {
            checks += u32::from(job.request.owner == UserId::HORDE);
            sim.advance(5);
            sim.submit_text(2, job.job, HONEST);
        }
        // The trusted worker answers references as they come.
        while let Some(job) = pop_drawn(&mut sim, 3, "trusted", u64::MAX) {
            sim.submit_text(3, job.job, HONEST);
        }
    }
    assert_eq!(checks, 10);
}
