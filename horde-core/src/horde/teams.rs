//! Teams: workers grouped under a name, with what they did for the team counted while they
//! belong to it (AI Horde's teams).

use super::*;

/// A team of workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// Its id, minted by the caller.
    pub id: TeamId,
    /// Its unique name.
    pub name: String,
    /// What its creator says of it.
    pub info: String,
    /// Who created it (and may change or delete it).
    pub creator: UserId,
    /// When it was created.
    pub created_at: Timestamp,
    /// Kudos its workers earned (generations and uptime) while on the team.
    pub kudos: Kudos,
    /// Generations its workers finished while on the team.
    pub requests_fulfilled: u64,
    /// Milliseconds its workers were online while on the team.
    pub uptime_ms: u64,
}

/// The longest team name, in characters (AI Horde's).
pub const TEAM_NAME_MAX: usize = 100;
/// The longest team info, in characters (AI Horde's).
pub const TEAM_INFO_MAX: usize = 1000;
/// The most teams one user may create.
pub const TEAMS_PER_CREATOR: usize = 10;

/// Why a team change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeamError {
    /// No such team.
    #[error("no such team")]
    UnknownTeam,
    /// The caller neither created the team nor is a moderator or an administrator.
    #[error("this team belongs to another user")]
    WrongCredentials,
    /// Only trusted users create teams.
    #[error("only trusted users create teams")]
    NotTrusted,
    /// Another team has the name.
    #[error("another team is named so")]
    NameTaken,
    /// The name is too short or too long, or holds hidden characters.
    #[error("the team name {reason}")]
    InvalidName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The info is over its limit.
    #[error("the team info must be at most {TEAM_INFO_MAX} characters")]
    InfoTooLong,
    /// The creator has as many teams as allowed.
    #[error("you have created {TEAMS_PER_CREATOR} teams, as many as one user may")]
    TooManyTeams,
}

fn check_name(name: &str) -> Result<(), TeamError> {
    if let Some(reason) = name_problem(name) {
        return Err(TeamError::InvalidName { reason });
    }
    let chars = name.chars().count();
    if chars < 3 {
        return Err(TeamError::InvalidName {
            reason: "must be at least 3 characters",
        });
    }
    if chars > TEAM_NAME_MAX {
        return Err(TeamError::InvalidName {
            reason: "must be at most 100 characters",
        });
    }
    Ok(())
}

fn check_info(info: &str) -> Result<(), TeamError> {
    if info.chars().count() > TEAM_INFO_MAX {
        return Err(TeamError::InfoTooLong);
    }
    Ok(())
}

impl Horde {
    /// A trusted user creates team `id` named `name`.
    ///
    /// ```
    /// use horde_core::*;
    /// let mut horde = Horde::new(HordeConfig::default());
    /// let policy = UserPolicy { concurrency: 30, trusted: true, public_workers: false,
    ///     flagged: false, registered_at: Timestamp(0), roles: Roles::default() };
    /// let _ = horde.set_user(UserId(1), policy);
    /// let id = TeamId(uuid::Uuid::from_u128(1));
    /// let applied = horde.create_team(id, UserId(1), "Night shift".into(), String::new(), Timestamp(0))?;
    /// assert!(matches!(applied.events[..], [Event::TeamChanged(ref team)] if team.name == "Night shift"));
    /// assert_eq!(
    ///     horde.create_team(TeamId(uuid::Uuid::from_u128(2)), UserId(1), "Night shift".into(), String::new(), Timestamp(0)),
    ///     Err(TeamError::NameTaken)
    /// );
    /// # Ok::<(), TeamError>(())
    /// ```
    pub fn create_team(
        &mut self,
        id: TeamId,
        creator: UserId,
        name: String,
        info: String,
        now: Timestamp,
    ) -> Result<Applied<()>, TeamError> {
        let trusted = self.users.get(&creator).is_some_and(|p| p.trusted);
        if !trusted || creator.is_anonymous() {
            return Err(TeamError::NotTrusted);
        }
        check_name(&name)?;
        check_info(&info)?;
        if self.teams.values().any(|t| t.name == name) {
            return Err(TeamError::NameTaken);
        }
        if self.teams.values().filter(|t| t.creator == creator).count() >= TEAMS_PER_CREATOR {
            return Err(TeamError::TooManyTeams);
        }
        let team = Team {
            id,
            name,
            info,
            creator,
            created_at: now,
            kudos: Kudos::ZERO,
            requests_fulfilled: 0,
            uptime_ms: 0,
        };
        self.teams.insert(id, team.clone());
        Ok(Applied {
            value: (),
            events: vec![Event::TeamChanged(team)],
        })
    }

    /// The creator (or, with `as_moderator`, a moderator or an administrator) renames team
    /// `id` or changes its info.
    pub fn update_team(
        &mut self,
        caller: UserId,
        as_moderator: bool,
        id: TeamId,
        name: Option<String>,
        info: Option<String>,
    ) -> Result<Applied<()>, TeamError> {
        let team = self.teams.get(&id).ok_or(TeamError::UnknownTeam)?;
        if team.creator != caller && !as_moderator {
            return Err(TeamError::WrongCredentials);
        }
        if let Some(name) = &name {
            check_name(name)?;
            if self.teams.values().any(|t| t.name == *name && t.id != id) {
                return Err(TeamError::NameTaken);
            }
        }
        if let Some(info) = &info {
            check_info(info)?;
        }
        let team = self.teams.get_mut(&id).ok_or(TeamError::UnknownTeam)?;
        if let Some(name) = name {
            team.name = name;
        }
        if let Some(info) = info {
            team.info = info;
        }
        Ok(Applied {
            value: (),
            events: vec![Event::TeamChanged(team.clone())],
        })
    }

    /// The creator (or a moderator or an administrator) deletes team `id`; its workers leave
    /// it. Returns the name it had.
    pub fn delete_team(
        &mut self,
        caller: UserId,
        as_moderator: bool,
        id: TeamId,
    ) -> Result<Applied<String>, TeamError> {
        let team = self.teams.get(&id).ok_or(TeamError::UnknownTeam)?;
        if team.creator != caller && !as_moderator {
            return Err(TeamError::WrongCredentials);
        }
        let mut events = Vec::new();
        let members: Vec<WorkerId> = self.team_members(id).map(|w| w.id).collect();
        for worker in members {
            if let Some(worker) = self.workers.get_mut(&worker) {
                worker.team = None;
                events.push(Event::WorkerChanged(worker.clone()));
            }
        }
        let team = self.teams.remove(&id).ok_or(TeamError::UnknownTeam)?;
        events.push(Event::TeamRemoved(id));
        Ok(Applied {
            value: team.name,
            events,
        })
    }

    /// Team `id`.
    pub fn team(&self, id: TeamId) -> Option<&Team> {
        self.teams.get(&id)
    }

    /// Every team, in no particular order.
    pub fn teams(&self) -> impl Iterator<Item = &Team> {
        self.teams.values()
    }

    /// The workers on team `id`. O(workers).
    pub fn team_members(&self, id: TeamId) -> impl Iterator<Item = &Worker> {
        self.workers.values().filter(move |w| w.team == Some(id))
    }

    /// Puts back teams read from a store (after [`Horde::restore`]).
    pub fn restore_teams(&mut self, teams: impl IntoIterator<Item = Team>) {
        self.teams = teams.into_iter().map(|t| (t.id, t)).collect();
    }

    /// Counts what worker `id` just did for its team, if it has one.
    pub(super) fn credit_team(
        &mut self,
        worker: WorkerId,
        kudos: Kudos,
        fulfilled: u64,
        uptime_ms: u64,
        events: &mut Vec<Event>,
    ) {
        let Some(team_id) = self.workers.get(&worker).and_then(|w| w.team) else {
            return;
        };
        let Some(team) = self.teams.get_mut(&team_id) else {
            return;
        };
        team.kudos = team.kudos.checked_add(kudos).unwrap_or(team.kudos);
        team.requests_fulfilled = team.requests_fulfilled.saturating_add(fulfilled);
        team.uptime_ms = team.uptime_ms.saturating_add(uptime_ms);
        events.push(Event::TeamChanged(team.clone()));
    }
}
