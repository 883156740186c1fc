//! Streaming a job's text to the horde while it is generated (horde's extension,
//! `POST /generate/text/progress`): the first text at once, then whatever arrived every
//! [`PROGRESS_EVERY`]. The horde says whether anyone reads the stream (if not, the worker posts
//! only every [`QUIET`], in case a reader comes) and whether the request was cancelled (the job
//! is then dropped). A horde without the extension (404) is not asked again. The submit is
//! unchanged and is what pays.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::horde::Horde;

/// Time between progress posts of one job.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_millis(50);
/// Time between posts while nobody reads the stream.
const QUIET: Duration = Duration::from_secs(2);

/// Posts the text in `text` for job `id` until the generation ends (the sender is dropped);
/// sets `cancelled` when the horde says the request is gone. `unsupported` is set (and
/// read) for the whole worker.
pub(crate) async fn post_progress(
    horde: Horde,
    id: String,
    mut text: watch::Receiver<String>,
    cancelled: watch::Sender<bool>,
    unsupported: Arc<AtomicBool>,
) {
    let mut received: u64 = 0;
    let mut quiet_until: Option<Instant> = None;
    loop {
        if text.changed().await.is_err() {
            return;
        }
        if let Some(until) = quiet_until {
            tokio::time::sleep_until(until).await;
        }
        let so_far = text.borrow_and_update().clone();
        let (offset, part) = match usize::try_from(received)
            .ok()
            .and_then(|from| so_far.get(from..))
        {
            Some(part) => (received, part),
            None => (0, so_far.as_str()),
        };
        match horde.progress(&id, offset, part).await {
            Ok(answer) if answer.cancelled => {
                cancelled.send_replace(true);
                return;
            }
            Ok(answer) => {
                received = answer.received;
                quiet_until = (!answer.listening).then(|| Instant::now() + QUIET);
            }
            Err(e)
                if e.status() == Some(horde_api::StatusCode::NOT_FOUND)
                    && e.rc() != Some("InvalidJobID") =>
            {
                tracing::info!(
                    "this horde does not take streamed text; jobs are sent whole at submit"
                );
                unsupported.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tracing::debug!(job = %id, error = %e, "a progress post failed");
                quiet_until = Some(Instant::now() + QUIET);
            }
        }
        tokio::time::sleep(PROGRESS_EVERY).await;
    }
}
