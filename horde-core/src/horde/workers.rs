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
}

impl Horde {
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
        let worker = worker.clone();
        self.refresh_online(id);
        Ok(Applied {
            value: (),
            events: vec![Event::WorkerChanged(worker)],
        })
    }
}
