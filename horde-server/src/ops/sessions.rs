//! Browser sessions: signing in (with the cap of sessions per user) and out.

use horde_core::UserId;

use crate::driver::{Driver, Txn, Unavailable};
use crate::error::ApiError;
use crate::sessions::{Session, SESSION_TTL_MS};

/// Expired sessions deleted per sign-in (bounded work; the rest go at later sign-ins).
const EXPIRED_PER_SIGN_IN: usize = 100;

/// Starts a session for `user` under the cookie `token` with the form token `csrf`, ending
/// some expired sessions and the user's oldest beyond the cap.
pub async fn start(
    driver: &Driver,
    user: UserId,
    token: &str,
    csrf: String,
) -> Result<(), ApiError> {
    driver
        .change(|txn| {
            let now = txn.now();
            let digest = txn.core().users.digest(token);
            let session = Session {
                user,
                csrf,
                expires_at: now.millis().saturating_add(SESSION_TTL_MS),
            };
            let mut ended = txn.core().sessions.expired(now);
            ended.truncate(EXPIRED_PER_SIGN_IN);
            ended.extend(txn.core().sessions.beyond_cap(user));
            end_in(txn, ended);
            txn.record(|tables, _| Ok::<_, ApiError>(tables.sessions.start(digest, session)))
        })
        .await
}

/// Which sessions to end.
#[derive(Debug, Clone, Copy)]
pub enum Ending {
    /// This one (its digest).
    One([u8; 32]),
    /// All of this user's (a lost phone, a shared computer).
    AllOf(UserId),
}

/// Ends the sessions `ending` names.
pub async fn end(driver: &Driver, ending: Ending) -> Result<(), ApiError> {
    driver
        .change(|txn| {
            let digests = match ending {
                Ending::One(digest) => vec![digest],
                Ending::AllOf(user) => txn.core().sessions.of_user(user),
            };
            end_in(txn, digests);
            Ok(())
        })
        .await
}

/// Ends the sessions `digests` (those that exist) in `txn`.
pub(super) fn end_in(txn: &mut Txn<'_>, digests: Vec<[u8; 32]>) {
    for digest in digests {
        let _ended = txn.record(|tables, _| Ok::<_, Unavailable>(tables.sessions.end(digest)));
    }
}
