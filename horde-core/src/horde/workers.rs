//! Owner changes to workers.

use super::*;

/// Changes an owner (or an admin) may make to a worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerUpdate {
    /// Enter or leave maintenance.
    pub maintenance: Option<bool>,
    /// The maintenance message.
    pub maintenance_msg: Option<String>,
    /// The info text.
    pub info: Option<String>,
    /// A new unique name.
    pub name: Option<String>,
    /// Join a team (`Some(Some(id))`) or leave the one it is on (`Some(None)`).
    pub team: Option<Option<TeamId>>,
}

/// Why a worker's deletion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerDeleteError {
    /// No such worker.
    #[error("no such worker")]
    UnknownWorker,
    /// The caller neither owns the worker nor is an admin.
    #[error("this worker belongs to another user")]
    WrongCredentials,
    /// The worker is suspected or a spot check of it is under way: deleting it would wipe
    /// the record (an administrator may still delete it).
    #[error(
        "this worker is under suspicion or being checked, so its owner cannot delete it; \
         an administrator can"
    )]
    UnderSuspicion,
}

/// Why a worker update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerUpdateError {
    /// No such worker.
    #[error("no such worker")]
    UnknownWorker,
    /// The caller neither owns the worker nor is an admin.
    #[error("this worker belongs to another user")]
    WrongCredentials,
    /// Another worker has the new name.
    #[error("another worker is named so")]
    NameTaken,
    /// The new name is blank, too long, or holds hidden characters.
    #[error("the worker name {reason}")]
    InvalidName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The team to join does not exist.
    #[error("no such team")]
    UnknownTeam,
}

impl Horde {
    /// The owner (or, with `as_admin`, an administrator) deletes worker `id`: the jobs it
    /// holds go back to the queue (each counted as a restart of its request, as if the worker
    /// had vanished), and its name is free again. Returns the name it had.
    ///
    /// The owner may not delete a worker that is suspected or being spot-checked: a new
    /// worker of the same name would start with a clean record.
    pub fn delete_worker(
        &mut self,
        caller: UserId,
        as_admin: bool,
        id: WorkerId,
        now: Timestamp,
    ) -> Result<Applied<String>, WorkerDeleteError> {
        let worker = self
            .workers
            .get(&id)
            .ok_or(WorkerDeleteError::UnknownWorker)?;
        if worker.owner != caller && !as_admin {
            return Err(WorkerDeleteError::WrongCredentials);
        }
        if !as_admin && (worker.suspicion > 0 || self.is_checking(id)) {
            return Err(WorkerDeleteError::UnderSuspicion);
        }
        let mut events = Vec::new();
        while let Some(job) = self.backlog.oldest_in_flight(id) {
            self.abort_job(job, AbortReason::Faulted, now, &mut events);
        }
        let Some(worker) = self.workers.remove(&id) else {
            return Err(WorkerDeleteError::UnknownWorker);
        };
        self.worker_sizes.remove(&id);
        self.online.remove(id);
        self.worker_names.remove(&worker.name);
        if let Some(owned) = self.workers_by_owner.get_mut(&worker.owner) {
            owned.retain(|w| *w != id);
        }
        events.push(Event::WorkerRemoved(id));
        Ok(Applied {
            value: worker.name,
            events,
        })
    }

    /// The owner (or, with `as_admin`, an administrator) changes a worker.
    pub fn update_worker(
        &mut self,
        caller: UserId,
        as_admin: bool,
        id: WorkerId,
        update: WorkerUpdate,
    ) -> Result<Applied<()>, WorkerUpdateError> {
        let worker = self
            .workers
            .get(&id)
            .ok_or(WorkerUpdateError::UnknownWorker)?;
        if worker.owner != caller && !as_admin {
            return Err(WorkerUpdateError::WrongCredentials);
        }
        if let Some(name) = &update.name {
            let taken = self
                .worker_names
                .get(name)
                .is_some_and(|other| *other != id);
            if let Some(reason) = name_problem(name) {
                return Err(WorkerUpdateError::InvalidName { reason });
            }
            let max = self.config.limits.max_worker_name_chars;
            if name.chars().count() > max {
                return Err(WorkerUpdateError::InvalidName {
                    reason: "is too long",
                });
            }
            if taken {
                return Err(WorkerUpdateError::NameTaken);
            }
        }
        if let Some(Some(team)) = update.team {
            if !self.teams.contains_key(&team) {
                return Err(WorkerUpdateError::UnknownTeam);
            }
        }
        let worker = self
            .workers
            .get_mut(&id)
            .ok_or(WorkerUpdateError::UnknownWorker)?;
        if let Some(name) = update.name {
            self.worker_names.remove(&worker.name);
            self.worker_names.insert(name.clone(), id);
            worker.name = name;
        }
        if let Some(maintenance) = update.maintenance {
            worker.maintenance = maintenance;
        }
        if let Some(msg) = update.maintenance_msg {
            worker.maintenance_msg = msg;
        }
        if let Some(info) = update.info {
            worker.info = info;
        }
        if let Some(team) = update.team {
            worker.team = team;
        }
        let worker = worker.clone();
        self.refresh_online(id);
        Ok(Applied {
            value: (),
            events: vec![Event::WorkerChanged(worker)],
        })
    }
}
