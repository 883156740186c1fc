//! The model reference: read again (on SIGHUP or an administrator's call) and paid by from
//! then on.

use horde_core::Applied;

use crate::driver::Driver;
use crate::error::ApiError;
use crate::models::load_reference;

/// Reads the model reference again (the default and `--model-reference`) and pays by it from
/// now on; returns how many models it knows. On an error the old one stays.
pub async fn reload(driver: &Driver) -> Result<usize, ApiError> {
    // Reading and parsing the file is blocking work: off the async workers.
    let config = driver.config().clone();
    let reference = tokio::task::spawn_blocking(move || load_reference(&config))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let count = reference.len();
    driver
        .change(|txn| {
            txn.apply(|horde, _| {
                horde.set_model_reference(reference);
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
