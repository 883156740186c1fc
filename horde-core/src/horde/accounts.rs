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
        self.users.insert(user, policy);
        // Flagging moves the user's requests to the back (and unflagging brings them back).
        let priority = self.queue_priority(user);
        self.queue.set_priority(&user, priority);
        Applied {
            value: (),
            events: vec![Event::UserChanged { user, policy }],
        }
    }

    /// Emits a posting and the account changes it caused, and re-prioritises the users.
    pub(super) fn record_posting(&mut self, posting: Posting, events: &mut Vec<Event>) {
        events.push(Event::Posted(posting));
        for account in [posting.from, posting.to] {
            if let crate::Account::User(user) = account {
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
        let (Some(sender), true) = (self.users.get(&from), self.users.contains_key(&to)) else {
            return Err(TransferError::UnknownUser);
        };
        if sender.flagged {
            return Err(TransferError::Flagged);
        }
        let posting = self.ledger.transfer(from, to, amount, now)?;
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
