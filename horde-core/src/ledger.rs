//! The kudos ledger: balances that only ever change by double-entry postings.
//!
//! Every change moves an amount from one [`Account`] to another, including the system
//! [`Account::Horde`] that funds uptime and admin awards. So the sum of all balances is exactly
//! zero at all times, and what a requester pays is exactly what a worker's owner earns.
//! Balances may go negative (debt); only transfers demand cover.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{Kudos, Timestamp, UserId};

/// Where kudos are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    /// The horde itself: the source of uptime and admin awards. Its balance is minus the sum of
    /// all users' balances.
    Horde,
    /// A user's account (Anonymous included).
    User(UserId),
    /// Kudos a user earned while untrusted, held until they are trusted (AI Horde's
    /// "evaluating" kudos). Not spendable; part of the sum of all balances like any account.
    Escrow(UserId),
}

/// Why kudos moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostingKind {
    /// A requester paid a worker's owner for a generation.
    Generation,
    /// The horde awarded a worker's owner for staying online.
    Uptime,
    /// A user gave kudos to another user.
    Transfer,
    /// An administrator added (horde → user) or removed (user → horde) kudos.
    Admin,
    /// A moderator or an administrator awarded kudos (horde → user), counted in `awarded`.
    Award,
    /// A user's escrow was released to them (escrow → user).
    Release,
    /// A user's escrow was forfeited to the horde (escrow → horde): their worker's answers to
    /// spot checks disagreed with trusted workers'.
    Forfeit,
}

/// One movement of kudos: `amount` leaves `from` and arrives at `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// The account debited.
    pub from: Account,
    /// The account credited.
    pub to: Account,
    /// How much moved; never negative.
    pub amount: Kudos,
    /// Why it moved.
    pub kind: PostingKind,
    /// When it moved.
    pub at: Timestamp,
}

/// Where a user's balance came from, as AI Horde's `kudos_details` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KudosDetails {
    /// Earned from generations minus spent on generations.
    pub accumulated: Kudos,
    /// Given away by transfers (a positive number).
    pub gifted: Kudos,
    /// Received by transfers.
    pub received: Kudos,
    /// Awarded by the horde (uptime included).
    pub awarded: Kudos,
    /// The uptime part of `awarded`.
    pub uptime: Kudos,
    /// Added (or, negative, removed) by administrators.
    pub admin: Kudos,
}

/// A user's balance and its details.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// The current balance; may be negative.
    pub balance: Kudos,
    /// Where it came from (escrowed earnings included).
    pub details: KudosDetails,
    /// Earned but held in escrow until the user is trusted; not part of `balance`.
    #[serde(default)]
    pub escrow: Kudos,
}

/// Why a ledger operation was refused. Nothing changes when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// An amount of zero (or, for a payment, less).
    #[error("the amount must be greater than zero")]
    NotPositive,
    /// A transfer of a negative amount (AI Horde tells it apart from zero).
    #[error("cannot transfer a negative amount")]
    Negative,
    /// A transfer to oneself.
    #[error("cannot transfer kudos to yourself")]
    ToSelf,
    /// Anonymous tried to send kudos.
    #[error("anonymous cannot transfer kudos")]
    FromAnonymous,
    /// Kudos were sent to Anonymous.
    #[error("cannot transfer kudos to the anonymous account")]
    ToAnonymous,
    /// The sender's balance does not cover the amount (debt cannot be gifted).
    #[error("not enough kudos: the balance is {balance}")]
    NotEnough {
        /// The sender's balance at the time.
        balance: Kudos,
    },
    /// A balance would leave the representable range.
    #[error("kudos amount out of range")]
    Overflow,
}

/// Balances of all accounts.
///
/// ```
/// use horde_core::{Kudos, Ledger, Timestamp, UserId};
/// let mut ledger = Ledger::new();
/// let (alice, bob) = (UserId(1), UserId(2));
/// ledger.admin_adjust(alice, Kudos::from_milli(5_000), Timestamp(0))?;
/// ledger.transfer(alice, bob, Kudos::from_milli(2_000), Timestamp(1))?;
/// assert_eq!(ledger.balance(bob), Kudos::from_milli(2_000));
/// assert_eq!(ledger.total(), Kudos::ZERO);
/// # Ok::<(), horde_core::LedgerError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    users: HashMap<UserId, AccountState>,
    horde: Kudos,
}

impl Ledger {
    /// An empty ledger: every balance zero.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// A ledger holding the given users' states (from storage). The horde account's balance is
    /// derived so that the total is zero.
    ///
    /// The sum is taken in 128 bits: users' balances may each be near the `i64` limits (an
    /// administrator may grant almost 9.2e15 kudos to one user and take as much from another),
    /// so a running 64-bit sum could overflow part-way depending on the order of the accounts
    /// even though the final sum fits. The horde's balance always fits, because it was reached
    /// by checked postings; should a damaged store hand in states whose sum does not fit, the
    /// horde's balance saturates rather than panicking.
    pub fn restore(users: impl IntoIterator<Item = (UserId, AccountState)>) -> Ledger {
        let users: HashMap<_, _> = users.into_iter().collect();
        let horde = saturate(-sum_milli(
            users.values().flat_map(|s| [s.balance, s.escrow]),
        ));
        Ledger { users, horde }
    }

    /// The balance of `user` (zero if it never had a posting).
    pub fn balance(&self, user: UserId) -> Kudos {
        self.account(user).balance
    }

    /// The balance and details of `user`.
    pub fn account(&self, user: UserId) -> AccountState {
        self.users.get(&user).copied().unwrap_or_default()
    }

    /// The horde system account's balance.
    pub fn horde_balance(&self) -> Kudos {
        self.horde
    }

    /// The sum of all balances, horde included. Always zero; exposed for tests and checks.
    /// Summed in 128 bits, so it never overflows part-way (see [`Ledger::restore`]).
    pub fn total(&self) -> Kudos {
        saturate(
            sum_milli(self.users.values().flat_map(|s| [s.balance, s.escrow]))
                + i128::from(self.horde.milli()),
        )
    }

    /// Users with a ledger entry and their states, in no particular order.
    pub fn accounts(&self) -> impl Iterator<Item = (UserId, &AccountState)> {
        self.users.iter().map(|(id, s)| (*id, s))
    }

    /// The requester pays the worker's owner `amount` for a generation. Balances may go
    /// negative. `requester == earner` is allowed (it nets to zero).
    pub fn settle_generation(
        &mut self,
        requester: UserId,
        earner: UserId,
        amount: Kudos,
        at: Timestamp,
    ) -> Result<Posting, LedgerError> {
        self.post(
            Account::User(requester),
            Account::User(earner),
            non_negative(amount)?,
            PostingKind::Generation,
            at,
        )
    }

    /// The requester pays `now` to the worker's owner and `escrowed` into the owner's escrow,
    /// both or neither.
    pub fn settle_generation_escrowed(
        &mut self,
        requester: UserId,
        earner: UserId,
        now: Kudos,
        escrowed: Kudos,
        at: Timestamp,
    ) -> Result<[Posting; 2], LedgerError> {
        let saved = (
            self.users.get(&requester).copied(),
            self.users.get(&earner).copied(),
        );
        let first = self.settle_generation(requester, earner, now, at)?;
        let second = self.post(
            Account::User(requester),
            Account::Escrow(earner),
            non_negative(escrowed)?,
            PostingKind::Generation,
            at,
        );
        match second {
            Ok(second) => Ok([first, second]),
            Err(e) => {
                for (user, state) in [(requester, saved.0), (earner, saved.1)] {
                    match state {
                        Some(state) => self.users.insert(user, state),
                        None => self.users.remove(&user),
                    };
                }
                Err(e)
            }
        }
    }

    /// The horde pays `earner` for a spot check's generation: `now` to their balance and
    /// `escrowed` into their escrow (a zero part is not posted), both or neither.
    pub fn settle_check(
        &mut self,
        earner: UserId,
        now: Kudos,
        escrowed: Kudos,
        at: Timestamp,
    ) -> Result<Vec<Posting>, LedgerError> {
        let (saved_horde, saved_earner) = (self.horde, self.users.get(&earner).copied());
        let mut postings = Vec::new();
        for (to, amount) in [
            (Account::User(earner), now),
            (Account::Escrow(earner), escrowed),
        ] {
            if amount == Kudos::ZERO {
                continue;
            }
            let posted = non_negative(amount).and_then(|amount| {
                self.post(Account::Horde, to, amount, PostingKind::Generation, at)
            });
            match posted {
                Ok(posting) => postings.push(posting),
                Err(e) => {
                    self.horde = saved_horde;
                    match saved_earner {
                        Some(state) => self.users.insert(earner, state),
                        None => self.users.remove(&earner),
                    };
                    return Err(e);
                }
            }
        }
        Ok(postings)
    }

    /// Forfeits all of `user`'s escrow to the horde; `None` when there is none.
    pub fn forfeit_escrow(
        &mut self,
        user: UserId,
        at: Timestamp,
    ) -> Result<Option<Posting>, LedgerError> {
        let escrow = self.account(user).escrow;
        if !escrow.is_positive() {
            return Ok(None);
        }
        self.post(
            Account::Escrow(user),
            Account::Horde,
            escrow,
            PostingKind::Forfeit,
            at,
        )
        .map(Some)
    }

    /// Takes `amount` back from `user`'s balance to the horde (the pay of a spot check their
    /// worker failed); the balance may go negative.
    pub fn forfeit_paid(
        &mut self,
        user: UserId,
        amount: Kudos,
        at: Timestamp,
    ) -> Result<Posting, LedgerError> {
        self.post(
            Account::User(user),
            Account::Horde,
            non_negative(amount)?,
            PostingKind::Forfeit,
            at,
        )
    }

    /// The horde awards `amount` of uptime kudos into `user`'s escrow.
    pub fn escrow_uptime(
        &mut self,
        user: UserId,
        amount: Kudos,
        at: Timestamp,
    ) -> Result<Posting, LedgerError> {
        self.post(
            Account::Horde,
            Account::Escrow(user),
            non_negative(amount)?,
            PostingKind::Uptime,
            at,
        )
    }

    /// Releases all of `user`'s escrow to them; `None` when there is none.
    pub fn release_escrow(
        &mut self,
        user: UserId,
        at: Timestamp,
    ) -> Result<Option<Posting>, LedgerError> {
        let escrow = self.account(user).escrow;
        if !escrow.is_positive() {
            return Ok(None);
        }
        self.post(
            Account::Escrow(user),
            Account::User(user),
            escrow,
            PostingKind::Release,
            at,
        )
        .map(Some)
    }

    /// The horde awards `amount` of uptime kudos to `user`.
    pub fn award_uptime(
        &mut self,
        user: UserId,
        amount: Kudos,
        at: Timestamp,
    ) -> Result<Posting, LedgerError> {
        self.post(
            Account::Horde,
            Account::User(user),
            non_negative(amount)?,
            PostingKind::Uptime,
            at,
        )
    }

    /// An administrator adds `delta` to `user`'s balance (negative removes kudos).
    pub fn admin_adjust(
        &mut self,
        user: UserId,
        delta: Kudos,
        at: Timestamp,
    ) -> Result<Posting, LedgerError> {
        if delta.is_negative() {
            let amount = delta.checked_neg().ok_or(LedgerError::Overflow)?;
            self.post(
                Account::User(user),
                Account::Horde,
                amount,
                PostingKind::Admin,
                at,
            )
        } else {
            self.post(
                Account::Horde,
                Account::User(user),
                delta,
                PostingKind::Admin,
                at,
            )
        }
    }

    /// The horde awards `amount` (positive) to `user`, not Anonymous: a moderator's award,
    /// counted in the user's `awarded` details.
    ///
    /// ```
    /// use horde_core::{Kudos, Ledger, LedgerError, Timestamp, UserId};
    /// let mut ledger = Ledger::new();
    /// let ten = Kudos::from_whole(10).unwrap();
    /// ledger.award(UserId(7), ten, Timestamp(0))?;
    /// assert_eq!(ledger.account(UserId(7)).details.awarded, ten);
    /// assert_eq!(ledger.total(), Kudos::ZERO);
    /// assert_eq!(ledger.award(UserId::ANONYMOUS, ten, Timestamp(0)), Err(LedgerError::ToAnonymous));
    /// assert_eq!(ledger.award(UserId(7), Kudos::ZERO, Timestamp(0)), Err(LedgerError::NotPositive));
    /// # Ok::<(), LedgerError>(())
    /// ```
    pub fn award(
        &mut self,
        user: UserId,
        amount: Kudos,
        at: Timestamp,
    ) -> Result<Posting, LedgerError> {
        if user.is_anonymous() {
            return Err(LedgerError::ToAnonymous);
        }
        if amount.is_negative() {
            return Err(LedgerError::Negative);
        }
        if amount == Kudos::ZERO {
            return Err(LedgerError::NotPositive);
        }
        self.post(
            Account::Horde,
            Account::User(user),
            amount,
            PostingKind::Award,
            at,
        )
    }

    /// Whether `from` may give `amount` to `to` now: the amount must be positive, the users
    /// different and not Anonymous, and `from` must hold the amount. Changes nothing.
    ///
    /// ```
    /// use horde_core::{Kudos, Ledger, LedgerError, UserId};
    /// let ledger = Ledger::new();
    /// let (alice, bob) = (UserId(1), UserId(2));
    /// let five = Kudos::from_whole(5).unwrap();
    /// assert_eq!(ledger.check_transfer(alice, alice, five), Err(LedgerError::ToSelf));
    /// assert!(matches!(
    ///     ledger.check_transfer(alice, bob, five),
    ///     Err(LedgerError::NotEnough { .. })
    /// ));
    /// ```
    pub fn check_transfer(
        &self,
        from: UserId,
        to: UserId,
        amount: Kudos,
    ) -> Result<(), LedgerError> {
        if amount.is_negative() {
            return Err(LedgerError::Negative);
        }
        if !amount.is_positive() {
            return Err(LedgerError::NotPositive);
        }
        if from.is_anonymous() {
            return Err(LedgerError::FromAnonymous);
        }
        if to.is_anonymous() {
            return Err(LedgerError::ToAnonymous);
        }
        if from == to {
            return Err(LedgerError::ToSelf);
        }
        let balance = self.balance(from);
        if balance < amount {
            return Err(LedgerError::NotEnough { balance });
        }
        Ok(())
    }

    /// `from` gives `amount` to `to`, if [`Ledger::check_transfer`] allows it.
    pub fn transfer(
        &mut self,
        from: UserId,
        to: UserId,
        amount: Kudos,
        at: Timestamp,
    ) -> Result<Posting, LedgerError> {
        self.check_transfer(from, to, amount)?;
        self.post(
            Account::User(from),
            Account::User(to),
            amount,
            PostingKind::Transfer,
            at,
        )
    }

    /// Applies one posting: both sides or neither.
    fn post(
        &mut self,
        from: Account,
        to: Account,
        amount: Kudos,
        kind: PostingKind,
        at: Timestamp,
    ) -> Result<Posting, LedgerError> {
        let posting = Posting {
            from,
            to,
            amount,
            kind,
            at,
        };
        let new_from = self.applied(from, posting, false)?;
        // Apply the debit first so that `from == to` sees its own first half.
        let old_from = self.replace(from, new_from);
        match self.applied(to, posting, true) {
            Ok(new_to) => {
                self.replace(to, new_to);
                Ok(posting)
            }
            Err(e) => {
                self.replace(from, old_from);
                Err(e)
            }
        }
    }

    /// The state `account` would have after its side of `posting`.
    fn applied(
        &self,
        account: Account,
        posting: Posting,
        credit: bool,
    ) -> Result<AccountSide, LedgerError> {
        let amount = posting.amount;
        let signed = if credit {
            amount
        } else {
            amount.checked_neg().ok_or(LedgerError::Overflow)?
        };
        match account {
            Account::Horde => Ok(AccountSide::Horde(
                self.horde
                    .checked_add(signed)
                    .ok_or(LedgerError::Overflow)?,
            )),
            Account::User(user) => {
                let mut state = self.account(user);
                let add = |a: Kudos, b: Kudos| a.checked_add(b).ok_or(LedgerError::Overflow);
                state.balance = add(state.balance, signed)?;
                let d = &mut state.details;
                match (posting.kind, credit) {
                    (PostingKind::Generation, _) => d.accumulated = add(d.accumulated, signed)?,
                    (PostingKind::Transfer, true) => d.received = add(d.received, amount)?,
                    (PostingKind::Transfer, false) => d.gifted = add(d.gifted, amount)?,
                    (PostingKind::Uptime, _) => {
                        d.uptime = add(d.uptime, signed)?;
                        d.awarded = add(d.awarded, signed)?;
                    }
                    (PostingKind::Admin, _) => d.admin = add(d.admin, signed)?,
                    (PostingKind::Award, _) => d.awarded = add(d.awarded, signed)?,
                    // Released kudos were counted in the details when they were escrowed.
                    (PostingKind::Release, _) => {}
                    // A forfeit is the horde's adjustment.
                    (PostingKind::Forfeit, _) => d.admin = add(d.admin, signed)?,
                }
                Ok(AccountSide::User(user, state))
            }
            Account::Escrow(user) => {
                let mut state = self.account(user);
                let add = |a: Kudos, b: Kudos| a.checked_add(b).ok_or(LedgerError::Overflow);
                state.escrow = add(state.escrow, signed)?;
                let d = &mut state.details;
                // Escrowed earnings count where they came from at once; the balance follows
                // when they are released.
                match (posting.kind, credit) {
                    (PostingKind::Generation, true) => d.accumulated = add(d.accumulated, amount)?,
                    (PostingKind::Uptime, true) => {
                        d.uptime = add(d.uptime, amount)?;
                        d.awarded = add(d.awarded, amount)?;
                    }
                    // Counted where it came from when escrowed; taken back as the horde's
                    // adjustment, so that the details still add up to the balance.
                    (PostingKind::Forfeit, false) => d.admin = add(d.admin, signed)?,
                    _ => {}
                }
                Ok(AccountSide::User(user, state))
            }
        }
    }

    /// Stores a side, returning what was there before.
    fn replace(&mut self, account: Account, side: AccountSide) -> AccountSide {
        match side {
            AccountSide::Horde(balance) => {
                AccountSide::Horde(std::mem::replace(&mut self.horde, balance))
            }
            AccountSide::User(user, state) => {
                let old = self.users.insert(user, state).unwrap_or_default();
                debug_assert!(
                    matches!(account, Account::User(u) | Account::Escrow(u) if u == user)
                );
                AccountSide::User(user, old)
            }
        }
    }
}

/// One account's value, before or after a posting.
enum AccountSide {
    Horde(Kudos),
    User(UserId, AccountState),
}

/// The exact sum of `amounts` in thousandths; cannot overflow for fewer than 2^64 amounts.
fn sum_milli(amounts: impl Iterator<Item = Kudos>) -> i128 {
    amounts.map(|k| i128::from(k.milli())).sum()
}

/// `milli` as kudos, clamped to the representable range.
fn saturate(milli: i128) -> Kudos {
    Kudos::from_milli(i64::try_from(milli).unwrap_or(if milli < 0 { i64::MIN } else { i64::MAX }))
}

fn non_negative(amount: Kudos) -> Result<Kudos, LedgerError> {
    if amount.is_negative() {
        Err(LedgerError::NotPositive)
    } else {
        Ok(amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp(0);

    #[test]
    fn sums_beyond_i64_clamp_to_the_nearest_end() {
        assert_eq!(saturate(i128::MAX), Kudos::from_milli(i64::MAX));
        assert_eq!(saturate(i128::MIN), Kudos::from_milli(i64::MIN));
        assert_eq!(
            saturate(i128::from(i64::MAX) + 1),
            Kudos::from_milli(i64::MAX)
        );
        assert_eq!(
            saturate(i128::from(i64::MIN) - 1),
            Kudos::from_milli(i64::MIN)
        );
        assert_eq!(saturate(-5), Kudos::from_milli(-5));
    }

    fn k(milli: i64) -> Kudos {
        Kudos::from_milli(milli)
    }

    #[test]
    fn generation_moves_exactly_the_reward() {
        let mut l = Ledger::new();
        let p = l
            .settle_generation(UserId(0), UserId(5), k(10_440), T)
            .unwrap();
        assert_eq!(p.amount, k(10_440));
        assert_eq!(l.balance(UserId(0)), k(-10_440));
        assert_eq!(l.balance(UserId(5)), k(10_440));
        assert_eq!(l.account(UserId(5)).details.accumulated, k(10_440));
        assert_eq!(l.account(UserId(0)).details.accumulated, k(-10_440));
        assert_eq!(l.total(), Kudos::ZERO);
    }

    #[test]
    fn self_generation_nets_to_zero() {
        let mut l = Ledger::new();
        l.settle_generation(UserId(3), UserId(3), k(500), T)
            .unwrap();
        assert_eq!(l.balance(UserId(3)), Kudos::ZERO);
        assert_eq!(l.total(), Kudos::ZERO);
    }

    #[test]
    fn transfer_rules() {
        let mut l = Ledger::new();
        let (a, b) = (UserId(1), UserId(2));
        l.admin_adjust(a, k(1000), T).unwrap();
        assert_eq!(l.transfer(a, b, k(0), T), Err(LedgerError::NotPositive));
        assert_eq!(l.transfer(a, b, k(-1), T), Err(LedgerError::Negative));
        assert_eq!(l.transfer(a, a, k(1), T), Err(LedgerError::ToSelf));
        assert_eq!(
            l.transfer(UserId::ANONYMOUS, b, k(1), T),
            Err(LedgerError::FromAnonymous)
        );
        assert_eq!(
            l.transfer(a, UserId::ANONYMOUS, k(1), T),
            Err(LedgerError::ToAnonymous)
        );
        assert_eq!(
            l.transfer(a, b, k(1001), T),
            Err(LedgerError::NotEnough { balance: k(1000) })
        );
        l.transfer(a, b, k(1000), T).unwrap();
        assert_eq!(l.account(a).details.gifted, k(1000));
        assert_eq!(l.account(b).details.received, k(1000));
        assert_eq!(l.balance(a), Kudos::ZERO);
        // Debt cannot be gifted.
        l.settle_generation(b, a, k(5000), T).unwrap();
        assert!(matches!(
            l.transfer(b, a, k(1), T),
            Err(LedgerError::NotEnough { .. })
        ));
        assert_eq!(l.total(), Kudos::ZERO);
    }

    #[test]
    fn uptime_and_admin_come_from_the_horde() {
        let mut l = Ledger::new();
        l.award_uptime(UserId(4), k(102_140), T).unwrap();
        l.admin_adjust(UserId(4), k(-2_140), T).unwrap();
        let s = l.account(UserId(4));
        assert_eq!(s.balance, k(100_000));
        assert_eq!(s.details.uptime, k(102_140));
        assert_eq!(s.details.awarded, k(102_140));
        assert_eq!(s.details.admin, k(-2_140));
        assert_eq!(l.horde_balance(), k(-100_000));
        assert_eq!(l.total(), Kudos::ZERO);
    }

    #[test]
    fn overflow_changes_nothing() {
        let mut l = Ledger::new();
        l.admin_adjust(UserId(1), Kudos::from_milli(i64::MAX), T)
            .unwrap();
        assert_eq!(
            l.admin_adjust(UserId(2), k(2), T),
            Err(LedgerError::Overflow),
            "the horde account cannot go below i64::MIN"
        );
        assert_eq!(l.balance(UserId(2)), Kudos::ZERO);
        assert_eq!(
            l.settle_generation(UserId(3), UserId(1), k(1), T),
            Err(LedgerError::Overflow)
        );
        assert_eq!(l.balance(UserId(3)), Kudos::ZERO);
        assert_eq!(l.total(), Kudos::ZERO);
    }

    #[test]
    fn restore_and_total_never_overflow_part_way() {
        // Grants near the limit to two users and a removal from a third: every balance and the
        // horde's fit, but a 64-bit running sum overflows in some orders of the accounts.
        let big = k(8_900_000_000_000_000_000);
        let mut l = Ledger::new();
        l.admin_adjust(UserId(1), big, T).unwrap();
        l.admin_adjust(UserId(2), -big, T).unwrap();
        l.admin_adjust(UserId(3), big, T).unwrap();
        assert_eq!(l.total(), Kudos::ZERO);
        let states: Vec<_> = l.accounts().map(|(id, s)| (id, *s)).collect();
        for order in [[0, 1, 2], [0, 2, 1], [2, 0, 1], [1, 0, 2]] {
            let copy = Ledger::restore(order.iter().map(|&i| states[i]));
            assert_eq!(copy.horde_balance(), l.horde_balance());
            assert_eq!(copy.total(), Kudos::ZERO);
        }
    }

    #[test]
    fn a_damaged_store_shows_in_the_total() {
        // Two balances at the i64 limit: the horde's balance saturates, and the total, which
        // is zero for every ledger reached by postings, says so.
        let full = AccountState {
            balance: Kudos::from_milli(i64::MAX),
            ..AccountState::default()
        };
        let broken = Ledger::restore([(UserId(1), full), (UserId(2), full)]);
        assert_eq!(broken.horde_balance(), Kudos::from_milli(i64::MIN));
        assert_ne!(broken.total(), Kudos::ZERO);
    }

    #[test]
    fn restore_derives_the_horde_balance() {
        let mut l = Ledger::new();
        l.award_uptime(UserId(1), k(700), T).unwrap();
        l.settle_generation(UserId(2), UserId(1), k(300), T)
            .unwrap();
        let copy = Ledger::restore(l.accounts().map(|(id, s)| (id, *s)));
        assert_eq!(copy.horde_balance(), l.horde_balance());
        assert_eq!(copy.account(UserId(1)), l.account(UserId(1)));
    }
}
