//! Web sign-in state: sessions (a random id in a cookie, kept only as a salted digest) and the
//! OAuth identities (provider + the provider's user id) that reach an account.
//!
//! Both are persisted like users (through [`crate::store::Write`]), so a restart keeps people
//! signed in and keeps each provider identity on its account.

use std::collections::HashMap;

use horde_core::{Timestamp, UserId};

use crate::store::{Recorded, Write};

/// How long a session lasts: 30 days.
pub const SESSION_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

pub use crate::store::Session;

/// Most sessions one user holds at once: signing in again past it ends their oldest session
/// (a script that signs in 30,000 times keeps 20).
pub const SESSIONS_PER_USER: usize = 20;

/// Sessions by the digest of their id, and by user.
#[derive(Debug, Default)]
pub struct Sessions {
    by_digest: HashMap<[u8; 32], Session>,
    by_user: HashMap<UserId, Vec<[u8; 32]>>,
}

impl Sessions {
    /// The sessions `rows` (expired ones included; they are never returned).
    pub fn new(rows: impl IntoIterator<Item = ([u8; 32], Session)>) -> Sessions {
        let mut sessions = Sessions::default();
        for (digest, session) in rows {
            sessions.put(digest, session);
        }
        sessions
    }

    /// The digests of `user`'s sessions, oldest first.
    pub fn of_user(&self, user: UserId) -> Vec<[u8; 32]> {
        let mut digests = self.by_user.get(&user).cloned().unwrap_or_default();
        digests.sort_by_key(|digest| self.by_digest.get(digest).map(|s| s.expires_at));
        digests
    }

    /// The sessions to end so that `user` may start one more: their oldest, beyond
    /// [`SESSIONS_PER_USER`] − 1.
    pub fn beyond_cap(&self, user: UserId) -> Vec<[u8; 32]> {
        let digests = self.of_user(user);
        let excess = (digests.len() + 1).saturating_sub(SESSIONS_PER_USER);
        digests.into_iter().take(excess).collect()
    }

    /// The live session with this digest.
    pub fn get(&self, digest: &[u8; 32], now: Timestamp) -> Option<&Session> {
        self.by_digest
            .get(digest)
            .filter(|session| session.expires_at > now.millis())
    }

    /// Starts a session, with the write that persists it.
    pub fn start(&mut self, digest: [u8; 32], session: Session) -> Recorded<()> {
        self.put(digest, session.clone());
        Recorded::new((), vec![Write::Session { digest, session }])
    }

    fn put(&mut self, digest: [u8; 32], session: Session) {
        let user = session.user;
        if let Some(old) = self.by_digest.insert(digest, session) {
            self.unindex(old.user, &digest);
        }
        self.by_user.entry(user).or_default().push(digest);
    }

    /// Ends a session, with the write that persists that; true if and only if it existed.
    pub fn end(&mut self, digest: [u8; 32]) -> Recorded<bool> {
        match self.by_digest.remove(&digest) {
            Some(session) => {
                self.unindex(session.user, &digest);
                Recorded::new(true, vec![Write::SessionEnded { digest }])
            }
            None => Recorded::new(false, Vec::new()),
        }
    }

    fn unindex(&mut self, user: UserId, digest: &[u8; 32]) {
        if let Some(digests) = self.by_user.get_mut(&user) {
            digests.retain(|d| d != digest);
            if digests.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }

    /// Digests of the sessions that have expired by `now` (to delete).
    pub fn expired(&self, now: Timestamp) -> Vec<[u8; 32]> {
        self.by_digest
            .iter()
            .filter(|(_, session)| session.expires_at <= now.millis())
            .map(|(digest, _)| *digest)
            .collect()
    }
}

/// How long an OAuth sign-in may take between leaving for the provider and coming back.
pub const PENDING_TTL_MS: u64 = 10 * 60 * 1000;
/// Most OAuth sign-ins in progress at once; more are refused until some finish or expire
/// (never by dropping others': a flood must not end real people's sign-ins).
const PENDING_MAX: usize = 10_000;
/// Most OAuth sign-ins in progress from one address.
pub const PENDING_PER_ADDRESS: usize = 10;

/// An OAuth sign-in in progress: its provider and PKCE verifier, by its `state`. Kept in
/// memory only: a restart in the middle of one means starting it again.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    /// `github` or `discord`.
    pub provider: &'static str,
    /// The PKCE code verifier.
    pub verifier: String,
    /// When it began, ms since the epoch.
    pub started_at: u64,
    /// The digest of the cookie given to the browser that began it: only that browser can
    /// finish it (a link sent to someone else signs nobody in as the sender).
    pub browser: [u8; 32],
    /// The client address that began it, for [`PENDING_PER_ADDRESS`].
    pub address: std::net::IpAddr,
}

/// Why a sign-in cannot begin now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingRefused {
    /// This address has [`PENDING_PER_ADDRESS`] sign-ins in progress.
    Address,
    /// The horde has the most sign-ins in progress it keeps.
    Full,
}

/// OAuth sign-ins in progress, by `state`.
#[derive(Debug, Default)]
pub struct PendingLogins {
    by_state: HashMap<String, PendingLogin>,
}

impl PendingLogins {
    /// Remembers a sign-in (dropping expired ones), unless its address or the horde already
    /// has the most sign-ins in progress.
    pub fn insert(
        &mut self,
        state: String,
        login: PendingLogin,
        now: Timestamp,
    ) -> Result<(), PendingRefused> {
        let cutoff = now.millis().saturating_sub(PENDING_TTL_MS);
        self.by_state
            .retain(|_, pending| pending.started_at > cutoff);
        let from_address = self
            .by_state
            .values()
            .filter(|pending| pending.address == login.address)
            .count();
        if from_address >= PENDING_PER_ADDRESS {
            return Err(PendingRefused::Address);
        }
        if self.by_state.len() >= PENDING_MAX {
            return Err(PendingRefused::Full);
        }
        self.by_state.insert(state, login);
        Ok(())
    }

    /// Takes the sign-in with this `state` (once), if it has not expired.
    pub fn take(&mut self, state: &str, now: Timestamp) -> Option<PendingLogin> {
        let login = self.by_state.remove(state)?;
        (login.started_at + PENDING_TTL_MS > now.millis()).then_some(login)
    }
}

/// Which account each OAuth identity reaches: `(provider, subject)` → user.
#[derive(Debug, Default)]
pub struct Identities {
    by_subject: HashMap<(String, String), UserId>,
}

impl Identities {
    /// The identities `rows`.
    pub fn new(rows: impl IntoIterator<Item = (String, String, UserId)>) -> Identities {
        Identities {
            by_subject: rows
                .into_iter()
                .map(|(provider, subject, user)| ((provider, subject), user))
                .collect(),
        }
    }

    /// The account `subject` of `provider` reaches.
    pub fn get(&self, provider: &str, subject: &str) -> Option<UserId> {
        self.by_subject
            .get(&(provider.to_owned(), subject.to_owned()))
            .copied()
    }

    /// Links `subject` of `provider` to `user`, with the write that persists the link.
    pub fn link(&mut self, provider: &str, subject: &str, user: UserId) -> Recorded<()> {
        self.by_subject
            .insert((provider.to_owned(), subject.to_owned()), user);
        Recorded::new(
            (),
            vec![Write::Identity {
                provider: provider.to_owned(),
                subject: subject.to_owned(),
                user,
            }],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_sessions_are_not_returned() {
        let mut sessions = Sessions::default();
        let session = Session {
            user: UserId(3),
            csrf: "t".into(),
            expires_at: 1_000,
        };
        let started = sessions.start([1; 32], session.clone());
        assert!(matches!(
            started.writes[..],
            [Write::Session {
                digest: [1, ..],
                ..
            }]
        ));
        assert_eq!(sessions.get(&[1; 32], Timestamp(999)), Some(&session));
        assert_eq!(sessions.get(&[1; 32], Timestamp(1_000)), None);
        assert_eq!(sessions.expired(Timestamp(1_000)), vec![[1; 32]]);
        let ended = sessions.end([1; 32]);
        assert!(ended.value);
        assert_eq!(ended.writes.len(), 1);
        let again = sessions.end([1; 32]);
        assert!(!again.value && again.writes.is_empty(), "nothing to write");
        assert!(sessions.of_user(UserId(3)).is_empty());
    }

    #[test]
    fn a_user_holds_at_most_the_cap_and_the_oldest_go_first() {
        let mut sessions = Sessions::default();
        let of = |user: u64, at: u64| Session {
            user: UserId(user),
            csrf: String::new(),
            expires_at: at,
        };
        for i in 0..SESSIONS_PER_USER as u8 {
            sessions.put([i; 32], of(1, 100 - u64::from(i)));
        }
        sessions.put([200; 32], of(2, 1));
        assert_eq!(sessions.of_user(UserId(1)).len(), SESSIONS_PER_USER);
        // The one that expires first is the oldest (all last the same time).
        let last = SESSIONS_PER_USER as u8 - 1;
        assert_eq!(sessions.beyond_cap(UserId(1)), vec![[last; 32]]);
        assert!(sessions.beyond_cap(UserId(2)).is_empty());
        assert!(sessions.end([last; 32]).value);
        assert!(sessions.beyond_cap(UserId(1)).is_empty());
    }
}
