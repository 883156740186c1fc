//! Kudos and users: transfers, admin adjustments, user policies, postings.

use super::*;

/// Why a transfer or an adjustment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// A user does not exist.
    #[error("unknown user")]
    UnknownUser,
    /// The sender is flagged for review.
    #[error("this account is flagged for review and cannot transfer kudos")]
    Flagged,
    /// The ledger refused it.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl Horde {
    /// Registers a user or changes their policy. Users must be known before they request,
    /// run workers or receive transfers.
    pub fn set_user(&mut self, user: UserId, policy: UserPolicy) -> Applied<()> {
        let was_customizer = self
            .users
            .insert(user, policy)
            .is_some_and(|old| old.roles.customizer);
        // Flagging moves the user's requests to the back (and unflagging brings them back).
        let priority = self.queue_priority(user);
        self.queue.set_priority(&user, priority);
        // The customizer role changes what the user's workers' models are paid as.
        if was_customizer != policy.roles.customizer {
            let owned = self
                .workers_by_owner
                .get(&user)
                .cloned()
                .unwrap_or_default();
            for id in owned {
                let size = self
                    .workers
                    .get(&id)
                    .map_or(0.0, |w| self.largest_model_b(user, &w.models));
                self.worker_sizes.insert(id, size);
                self.refresh_online(id);
            }
        }
        Applied {
            value: (),
            events: vec![Event::UserChanged { user, policy }],
        }
    }

    /// Releases `user`'s escrow if they are trusted and not flagged.
    pub(super) fn release_if_trusted(
        &mut self,
        user: UserId,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) {
        let releasable = self
            .users
            .get(&user)
            .is_some_and(|p| p.trusted && !p.flagged);
        if !releasable {
            return;
        }
        if let Ok(Some(posting)) = self.ledger.release_escrow(user, now) {
            self.record_posting(posting, events);
        }
    }

    /// Trusts an untrusted `user` automatically once they have earned enough in escrow, their
    /// account is old enough, they are not flagged and none of their workers is suspected;
    /// then their escrow is released.
    pub(super) fn trust_if_earned(
        &mut self,
        user: UserId,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) {
        let integrity = &self.config.integrity;
        let Some(policy) = self.users.get(&user).copied() else {
            return;
        };
        if !policy.trusted {
            let old_enough = now.millis_since(policy.registered_at)
                >= integrity.trust_after_days.saturating_mul(86_400_000);
            let earned = self.ledger.account(user).escrow >= integrity.trust_after_escrow;
            let clean = !policy.flagged && self.workers_of(user).all(|w| w.suspicion == 0);
            if !(old_enough && earned && clean) {
                return;
            }
            let applied = self.set_user(
                user,
                UserPolicy {
                    trusted: true,
                    ..policy
                },
            );
            events.extend(applied.events);
        }
        self.release_if_trusted(user, now, events);
    }

    /// Emits a posting and the account changes it caused, and re-prioritises the users.
    pub(super) fn record_posting(&mut self, posting: Posting, events: &mut Vec<Event>) {
        events.push(Event::Posted(posting));
        for account in [posting.from, posting.to] {
            if let crate::Account::User(user) | crate::Account::Escrow(user) = account {
                let state = self.ledger.account(user);
                let priority = self.queue_priority(user);
                self.queue.set_priority(&user, priority);
                let event = Event::AccountChanged { user, state };
                if !events.contains(&event) {
                    events.push(event);
                }
            }
        }
    }

    /// `from` gives `amount` kudos to `to`.
    pub fn transfer(
        &mut self,
        now: Timestamp,
        from: UserId,
        to: UserId,
        amount: Kudos,
    ) -> Result<Applied<Posting>, TransferError> {
        self.check_transfer(from, to, amount)?;
        let posting = self.ledger.transfer(from, to, amount, now)?;
        let mut events = Vec::new();
        self.record_posting(posting, &mut events);
        Ok(Applied {
            value: posting,
            events,
        })
    }

    /// Whether `from` may give `amount` to `to` now (both known, the sender not flagged, and
    /// the ledger's rules); changes nothing. [`Horde::transfer`] checks the same.
    pub fn check_transfer(
        &self,
        from: UserId,
        to: UserId,
        amount: Kudos,
    ) -> Result<(), TransferError> {
        let (Some(sender), true) = (self.users.get(&from), self.users.contains_key(&to)) else {
            return Err(TransferError::UnknownUser);
        };
        if sender.flagged {
            return Err(TransferError::Flagged);
        }
        Ok(self.ledger.check_transfer(from, to, amount)?)
    }

    /// A moderator (or an administrator) awards `amount` kudos from the horde to `user`:
    /// counted in their `awarded` details, refused for Anonymous and amounts not positive.
    pub fn award(
        &mut self,
        now: Timestamp,
        user: UserId,
        amount: Kudos,
    ) -> Result<Applied<Posting>, TransferError> {
        if !self.users.contains_key(&user) {
            return Err(TransferError::UnknownUser);
        }
        let posting = self.ledger.award(user, amount, now)?;
        let mut events = Vec::new();
        self.record_posting(posting, &mut events);
        Ok(Applied {
            value: posting,
            events,
        })
    }

    /// An administrator adds `delta` (negative: removes) to `user`'s balance.
    pub fn admin_adjust(
        &mut self,
        now: Timestamp,
        user: UserId,
        delta: Kudos,
    ) -> Result<Applied<Posting>, TransferError> {
        if !self.users.contains_key(&user) {
            return Err(TransferError::UnknownUser);
        }
        let posting = self.ledger.admin_adjust(user, delta, now)?;
        let mut events = Vec::new();
        self.record_posting(posting, &mut events);
        Ok(Applied {
            value: posting,
            events,
        })
    }
}
