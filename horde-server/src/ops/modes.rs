//! Switching the horde's modes (maintenance, invite-only, raid).

use crate::driver::Driver;
use crate::error::ApiError;
use crate::modes::Modes;

/// Switches the modes `change` names (absent ones stay) and commits; the modes now in force.
pub async fn switch(
    driver: &Driver,
    maintenance: Option<bool>,
    invite_only: Option<bool>,
    raid: Option<bool>,
) -> Result<Modes, ApiError> {
    driver
        .change(|txn| {
            let now = txn.core().modes;
            let next = Modes {
                maintenance: maintenance.unwrap_or(now.maintenance),
                invite_only: invite_only.unwrap_or(now.invite_only),
                raid: raid.unwrap_or(now.raid),
            };
            txn.record(|tables, _| Ok::<_, ApiError>(tables.modes.set(next)))
        })
        .await
}
