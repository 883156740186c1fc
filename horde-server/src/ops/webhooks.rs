//! Recording how a webhook delivery attempt ended, and users' webhook secrets.

use horde_core::{JobId, UserId};

use crate::driver::{Driver, Txn};
use crate::error::{ApiError, Rc};
use crate::webhooks::{Outcome, SECRET_CHARS};

/// Records `outcome` of an attempt at delivery `job` and commits it.
pub async fn settle(driver: &Driver, job: JobId, outcome: Outcome) -> Result<(), ApiError> {
    driver
        .change(|txn| {
            txn.record(|tables, _| Ok::<_, ApiError>(tables.webhooks.settle(job, outcome)))
        })
        .await
}

/// A webhook secret as sent: 16 to 128 visible ASCII characters (`Some`), or `""` to remove
/// it (`None`). Checked before anything changes.
pub fn valid_secret(secret: &str) -> Result<Option<String>, ApiError> {
    let secret = secret.trim();
    let (least, most) = SECRET_CHARS;
    let visible = secret.chars().all(|c| c.is_ascii_graphic());
    if !secret.is_empty() && (!(least..=most).contains(&secret.len()) || !visible) {
        return Err(ApiError::invalid(
            Rc::ValidationError,
            "webhook_secret",
            format!(
                "webhook_secret must be {least} to {most} visible ASCII characters, or \"\" to \
                 remove it"
            ),
        ));
    }
    Ok((!secret.is_empty()).then(|| secret.to_owned()))
}

/// Sets (`Some`) or removes (`None`) `user`'s webhook secret in `txn`.
pub fn set_secret(txn: &mut Txn<'_>, user: UserId, secret: Option<String>) -> Result<(), ApiError> {
    txn.record(|tables, _| tables.users.set_webhook_secret(user, secret))
        .map_err(ApiError::from)
}
