//! Users: registration (by the API, the web page or a first OAuth sign-in), administrators,
//! new API keys.

use std::net::IpAddr;

use horde_core::{UserId, UserPolicy};

use super::{rate_limit, sessions};
use crate::driver::{Driver, Txn};
use crate::error::ApiError;
use crate::ratelimit::Limited;
use crate::store::UserRow;

/// Registers `alias` for a caller at `ip` (rate-limited per address) and commits the new
/// user; returns the user and their API key, to be shown once.
pub async fn register(
    driver: &Driver,
    ip: IpAddr,
    alias: &str,
) -> Result<(UserRow, String), ApiError> {
    if !driver.config().registration {
        return Err(ApiError::RegistrationDisabled);
    }
    let limit = driver.config().registrations_per_minute;
    driver
        .change(|txn| {
            if txn.core().modes.raid {
                return Err(ApiError::Forbidden {
                    rc: horde_api::Rc::RegistrationDisabled,
                    message: "this horde is under attack and takes no registration by name \
                              alone for now: sign in with an OAuth provider to create an account"
                        .into(),
                });
            }
            rate_limit(txn, Limited::Registration(ip), limit)?;
            new_user(txn, alias, false)
        })
        .await
}

/// Registers `alias` as an administrator and commits it; returns the user and the API key,
/// to be shown once. For `horde-server create-admin`, on a database no server is using.
pub async fn create_admin(driver: &Driver, alias: &str) -> Result<(UserRow, String), ApiError> {
    driver.change(|txn| new_user(txn, alias, true)).await
}

/// Creates the user `alias` in `txn` — an administrator (trusted) if `admin`, else with the
/// default policy; returns the row and the API key, to be shown once.
pub fn new_user(
    txn: &mut Txn<'_>,
    alias: &str,
    admin: bool,
) -> Result<(UserRow, String), ApiError> {
    let now = txn.now();
    let concurrency = txn.core().horde().config().default_concurrency;
    let (row, key) = txn.record(|tables, now| tables.users.register(alias, now, admin))?;
    let policy = UserPolicy {
        concurrency,
        trusted: admin,
        public_workers: false,
        flagged: false,
        registered_at: now,
        roles: Default::default(),
    };
    txn.apply(|horde, _| Ok::<_, ApiError>(horde.set_user(row.id, policy)))?;
    Ok((row, key))
}

/// Gives `user` a new API key (the old one stops working) and signs out every browser of
/// theirs but the session `keep`; returns the key, to be shown once.
pub async fn rekey(driver: &Driver, user: UserId, keep: [u8; 32]) -> Result<String, ApiError> {
    driver
        .change(|txn| {
            let (_, key) = txn.record(|tables, _| tables.users.rekey(user))?;
            // A new key is how someone locks out whoever had the old one: a browser signed in
            // with it must not stay signed in (and rotate the key again to read the new one).
            let others = txn.core().sessions.of_user(user);
            sessions::end_in(txn, others.into_iter().filter(|d| *d != keep).collect());
            Ok(key)
        })
        .await
}
