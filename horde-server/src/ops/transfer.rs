//! Kudos transfers between users, rate-limited, and idempotent under a key.

use std::net::IpAddr;

use horde_core::{Kudos, LedgerError, TransferError, UserId};

use super::rate_limit;
use crate::driver::{Driver, IdempotentAnswer, Txn};
use crate::error::{ApiError, Rc};
use crate::ratelimit::Limited;
use crate::wire::Transferred;

/// Moves `amount` kudos from `from` to the user named `username` (`alias#id`), rate-limited
/// per sender and per address; with an idempotency key, a repeat of the same transfer answers
/// as the first did and moves nothing (a different transfer under the same key is refused).
/// The ledger refuses what it must (to oneself, from or to Anonymous, more than held).
pub async fn transfer(
    driver: &Driver,
    from: UserId,
    ip: IpAddr,
    username: &str,
    amount: Kudos,
    idempotency_key: Option<String>,
) -> Result<Transferred, ApiError> {
    // What a retry must repeat: the receiver and the amount.
    let request = format!("{} {amount}", username.trim());
    let per_user = driver.config().transfers_per_minute;
    let per_ip = driver.config().transfers_per_minute_per_ip;
    driver
        .change(|txn| {
            if from.is_anonymous() {
                // Before the receiver is looked up: whoever it is, the answer is this one.
                return Err(TransferError::Ledger(LedgerError::FromAnonymous).into());
            }
            if let Some(key) = &idempotency_key {
                if let Some(previous) = txn.core().idempotency.get(from, key) {
                    // Keys stored before requests were recorded have an empty request.
                    if !previous.request.is_empty() && previous.request != request {
                        return Err(ApiError::IdempotencyKeyConflict);
                    }
                    return serde_json::from_str(&previous.response)
                        .map_err(|e| ApiError::Internal(e.to_string()));
                }
            }
            // Counted after a replay is recognised: retrying one transfer is not a new one.
            rate_limit(txn, Limited::TransferByUser(from), per_user)?;
            // A VPN user shares the address with strangers: the per-user limit is theirs.
            let vpn = txn.core().horde().user(from).is_some_and(|p| p.roles.vpn);
            if !vpn {
                rate_limit(txn, Limited::TransferByAddress(ip), per_ip)?;
            }
            // 400, as AI Horde answers a transfer to a username it does not know.
            let to = receiver(txn, username, Rc::UserNotFound)?;
            let posting = txn.apply(|horde, now| horde.transfer(now, from, to, amount))?;
            let response = Transferred {
                transferred: posting.amount,
            };
            if let Some(key) = idempotency_key {
                let answer = IdempotentAnswer {
                    request,
                    response: serde_json::to_string(&response)
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                };
                txn.record(|tables, _| {
                    Ok::<_, ApiError>(tables.idempotency.remember(from, key, answer))
                })?;
            }
            Ok(response)
        })
        .await
}

/// A moderator's (or an administrator's) award of `amount` kudos from the horde to the user
/// named `username` (`alias#id`). Awarding is for people: what the caller may do is checked by
/// the handler.
pub async fn award(
    driver: &Driver,
    by: UserId,
    username: &str,
    amount: Kudos,
) -> Result<crate::wire::KudosAwarded, ApiError> {
    let posting = driver
        .change(|txn| {
            let to = receiver(txn, username, Rc::InvalidAwardUsername)?;
            if to.is_anonymous() {
                return Err(ApiError::invalid(
                    Rc::KudosAwardToAnon,
                    "username",
                    "kudos cannot be awarded to Anonymous",
                ));
            }
            Ok(txn.apply(|horde, now| horde.award(now, to, amount))?)
        })
        .await?;
    tracing::info!(by = by.0, to = ?posting.to, amount = %posting.amount, "kudos awarded");
    Ok(crate::wire::KudosAwarded {
        awarded: posting.amount,
    })
}

/// The user `username` (`alias#id`) names; a 400 with `rc` when nobody.
fn receiver(txn: &Txn<'_>, username: &str, rc: Rc) -> Result<UserId, ApiError> {
    txn.core()
        .users
        .find_by_username(username)
        .map(|u| u.id)
        .ok_or_else(|| ApiError::invalid(rc, "username", format!("no user {username}")))
}
