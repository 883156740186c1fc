//! The server's command layer: every change of state that is not one of the core's commands
//! alone — registering users and administrators, new keys, transfers with their idempotency
//! keys, kudos awards, browser sessions, OAuth sign-ins, the model reference, the horde's
//! modes — as one use case each, run in one [`Txn`] so that memory and the database change
//! together.
//!
//! Handlers in `api` and `web` parse, call an op (or a core command through [`Txn::apply`]),
//! and render; they never touch the core's side tables or build a store write themselves (a
//! test over the source checks). Rate limits are counted here, in the same change as what they
//! limit.

use horde_core::Timestamp;

use crate::driver::Txn;
use crate::error::{ApiError, Rc};
use crate::ratelimit::Limited;

pub mod modes;
pub mod oauth;
pub mod reference;
pub mod sessions;
pub mod transfer;
pub mod users;
pub mod webhooks;

/// Counts one more `what` at this change's time against `limit` per minute; over it, the error
/// says how many seconds to wait.
fn rate_limit(txn: &mut Txn<'_>, what: Limited, limit: u32) -> Result<(), ApiError> {
    let now: Timestamp = txn.now();
    txn.memory()
        .rate_limits
        .allow(what, now, limit)
        .map_err(|retry_after| ApiError::TooMany {
            rc: Rc::RateLimited,
            message: match what {
                Limited::Registration(_) => {
                    "too many registrations from this address; try again in a minute".into()
                }
                Limited::TransferByUser(_) | Limited::TransferByAddress(_) => {
                    "too many transfers; try again in a minute".into()
                }
            },
            retry_after: Some(retry_after),
        })
}
