//! The horde's modes, as AI Horde has them: what administrators switch on when the horde is
//! under maintenance or under attack. Kept in the database (`meta`), so a restart or a standby
//! taking over keeps them.
//!
//! - **maintenance**: no new generation requests (`503 MaintenanceMode`); the queue drains,
//!   workers keep popping and submitting.
//! - **invite-only**: no new workers but those of trusted users (`403 WorkerInviteOnly`);
//!   workers that exist keep working.
//! - **raid**: invite-only's rule for new workers, no registration by name alone (a new account
//!   must sign in with an OAuth provider), and a request no worker can serve is not told so (an
//!   attacker learns less about the horde's workers).

pub use crate::store::Modes;

use crate::store::{Recorded, Write};

impl Modes {
    /// Switches to `modes`, persisted by the returned write.
    pub fn set(&mut self, modes: Modes) -> Recorded<Modes> {
        *self = modes;
        Recorded::new(modes, vec![Write::Modes(modes)])
    }

    /// Returns true if and only if a new worker may be created for an owner who is trusted
    /// (`trusted`) or not.
    pub fn admits_new_worker(&self, trusted: bool) -> bool {
        trusted || !(self.invite_only || self.raid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_workers_of_untrusted_owners_wait_for_quieter_times() {
        let mut modes = Modes::default();
        assert!(modes.admits_new_worker(false));
        for change in [
            Modes {
                invite_only: true,
                ..Modes::default()
            },
            Modes {
                raid: true,
                ..Modes::default()
            },
        ] {
            let recorded = modes.set(change);
            assert_eq!(recorded.value, change);
            assert!(matches!(recorded.writes[..], [Write::Modes(m)] if m == change));
            assert!(!modes.admits_new_worker(false));
            assert!(modes.admits_new_worker(true));
        }
    }
}
