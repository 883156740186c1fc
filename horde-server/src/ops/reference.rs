//! The model reference and the spot checks' canaries: read again (on SIGHUP or an
//! administrator's call) and used from then on.

use horde_core::Applied;

use crate::canaries::load_canaries;
use crate::driver::Driver;
use crate::error::ApiError;
use crate::models::load_reference;

/// Reads the model reference again (the default and `--model-reference`) and the canaries, and
/// uses them from now on; returns how many models the reference knows. On an error the old
/// ones stay.
pub async fn reload(driver: &Driver) -> Result<usize, ApiError> {
    // Reading and parsing the file is blocking work: off the async workers.
    let config = driver.config().clone();
    let (reference, canaries) = tokio::task::spawn_blocking(move || {
        Ok::<_, ApiError>((load_reference(&config)?, load_canaries(&config)?))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let count = reference.len();
    driver
        .change(|txn| {
            txn.apply(|horde, _| {
                horde.set_model_reference(reference);
                horde.set_canaries(canaries);
                Ok::<_, ApiError>(Applied {
                    value: (),
                    events: Vec::new(),
                })
            })
        })
        .await?;
    tracing::info!(models = count, "model reference reloaded");
    Ok(count)
}
