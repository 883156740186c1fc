//! [`Replica`]: the latest value of every entity, kept from the core's events alone — what a
//! store persists — and the horde rebuilt from it.
//!
//! A binary's store does the same in its database; this in-memory one is the reference model
//! that the core's tests and the fuzz target compare the live horde with, and a small store
//! for embedders that keep state in memory.

use std::collections::HashMap;
use std::sync::Arc;

use crate::{
    AccountState, Event, Horde, HordeConfig, Job, JobId, Posting, RequestId, RequestSpec,
    RequestState, UserId, UserPolicy, Worker, WorkerId,
};

/// The latest value of every entity, from events alone.
///
/// ```
/// use horde_core::{Horde, HordeConfig, Replica, Timestamp, UserId, UserPolicy};
/// let mut horde = Horde::new(HordeConfig::default());
/// let mut replica = Replica::default();
/// let policy = UserPolicy {
///     concurrency: 30,
///     trusted: false,
///     public_workers: false,
///     flagged: false,
///     registered_at: Timestamp(0),
///     roles: Default::default(),
/// };
/// replica.apply(&horde.set_user(UserId(1), policy).events);
/// let rebuilt = replica.restore(HordeConfig::default());
/// assert_eq!(rebuilt.user(UserId(1)), Some(policy));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Replica {
    /// Requests, as queued.
    pub specs: HashMap<RequestId, Arc<RequestSpec>>,
    /// Their latest state.
    pub states: HashMap<RequestId, RequestState>,
    /// Jobs, latest value.
    pub jobs: HashMap<JobId, Job>,
    /// Accounts, latest value.
    pub accounts: HashMap<UserId, AccountState>,
    /// Workers, latest value.
    pub workers: HashMap<WorkerId, Worker>,
    /// User policies, latest value.
    pub users: HashMap<UserId, UserPolicy>,
    /// Teams, latest value.
    pub teams: HashMap<crate::TeamId, crate::Team>,
    /// The journal: every posting, in order.
    pub postings: Vec<Posting>,
    /// Check-ins of workers no event created (always 0 unless the core has a bug).
    pub orphan_check_ins: u64,
}

impl Replica {
    /// Keeps what `events` say.
    pub fn apply(&mut self, events: &[Event]) {
        for event in events {
            match event {
                Event::RequestQueued(spec) => {
                    self.specs.insert(spec.id, spec.clone());
                }
                Event::RequestChanged { id, state } => {
                    self.states.insert(*id, *state);
                }
                Event::JobChanged(job) => {
                    self.jobs.insert(job.id, job.clone());
                }
                Event::RequestRemoved(id) => {
                    self.specs.remove(id);
                    self.states.remove(id);
                    self.jobs.retain(|_, j| j.request != *id);
                }
                Event::Posted(posting) => self.postings.push(*posting),
                Event::AccountChanged { user, state } => {
                    self.accounts.insert(*user, *state);
                }
                Event::WorkerChanged(worker) => {
                    self.workers.insert(worker.id, worker.clone());
                }
                Event::WorkerCheckedIn { id, stats } => match self.workers.get_mut(id) {
                    Some(worker) => worker.set_stats(*stats),
                    None => self.orphan_check_ins += 1,
                },
                Event::WorkerRemoved(id) => {
                    self.workers.remove(id);
                }
                Event::TeamChanged(team) => {
                    self.teams.insert(team.id, team.clone());
                }
                Event::TeamRemoved(id) => {
                    self.teams.remove(id);
                }
                Event::UserChanged { user, policy } => {
                    self.users.insert(*user, *policy);
                }
            }
        }
    }

    /// The horde rebuilt from what was kept (as a binary rebuilds it after a restart); a
    /// request without a state is left out.
    pub fn restore(&self, config: HordeConfig) -> Horde {
        let requests: Vec<_> = self
            .specs
            .values()
            .filter_map(|spec| {
                let state = *self.states.get(&spec.id)?;
                let jobs = self
                    .jobs
                    .values()
                    .filter(|j| j.request == spec.id)
                    .cloned()
                    .collect();
                Some((spec.clone(), state, jobs))
            })
            .collect();
        let mut horde = Horde::restore(
            config,
            self.users.iter().map(|(u, p)| (*u, *p)),
            self.accounts.iter().map(|(u, s)| (*u, *s)),
            self.workers.values().cloned(),
            requests,
        );
        horde.restore_teams(self.teams.values().cloned());
        horde
    }
}
