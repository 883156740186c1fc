//! OAuth sign-ins: the pending sign-in between the redirect and the callback, and the account
//! an identity signs in to (created on its first sign-in).

use std::net::IpAddr;

use horde_core::UserId;

use super::{rate_limit, users};
use crate::driver::Driver;
use crate::error::{ApiError, Rc};
use crate::ratelimit::Limited;
use crate::sessions::{PendingLogin, PendingRefused};

/// Remembers a sign-in that began with the OAuth `state`, begun by the browser holding the
/// cookie `browser`; refused when its address or the horde has too many in progress.
pub async fn remember(
    driver: &Driver,
    state: String,
    provider: &'static str,
    verifier: String,
    browser: &str,
    address: IpAddr,
) -> Result<(), ApiError> {
    driver
        .change(|txn| {
            let now = txn.now();
            let login = PendingLogin {
                provider,
                verifier,
                started_at: now.millis(),
                browser: txn.core().users.digest(browser),
                address,
            };
            txn.memory()
                .pending_logins
                .insert(state, login, now)
                .map_err(|refused| ApiError::TooMany {
                    rc: Rc::RateLimited,
                    message: match refused {
                        PendingRefused::Address => {
                            "too many sign-ins in progress from this address; finish one, or \
                             try again in ten minutes"
                        }
                        PendingRefused::Full => {
                            "too many sign-ins are in progress; try again in a few minutes"
                        }
                    }
                    .into(),
                    retry_after: Some(60),
                })
        })
        .await
}

/// Takes (ends) the pending sign-in of `state`, if it is still there; with whether the
/// browser finishing it (its cookie `browser`) is the one that began it.
pub async fn take(
    driver: &Driver,
    state: &str,
    browser: Option<&str>,
) -> Result<Option<(PendingLogin, bool)>, ApiError> {
    driver
        .change(|txn| {
            let now = txn.now();
            let pending = txn.memory().pending_logins.take(state, now);
            let this_browser = browser.map(|b| txn.core().users.digest(b));
            Ok(pending.map(|login| {
                let same = this_browser == Some(login.browser);
                (login, same)
            }))
        })
        .await
}

/// The account linked to `provider`'s `subject`, created as `alias` (and linked) on its first
/// sign-in, which counts as a registration from `ip`.
pub async fn account_for(
    driver: &Driver,
    provider: &'static str,
    subject: &str,
    alias: &str,
    ip: IpAddr,
) -> Result<UserId, ApiError> {
    let registration = driver.config().registration;
    let limit = driver.config().registrations_per_minute;
    driver
        .change(|txn| {
            if let Some(user) = txn.core().identities.get(provider, subject) {
                return Ok(user);
            }
            if !registration {
                return Err(ApiError::RegistrationDisabled);
            }
            rate_limit(txn, Limited::Registration(ip), limit)?;
            let (row, _key) = users::new_user(txn, alias, false)?;
            txn.record(|tables, _| {
                Ok::<_, ApiError>(tables.identities.link(provider, subject, row.id))
            })?;
            Ok(row.id)
        })
        .await
}
