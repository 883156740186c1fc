//! Posting webhooks beside the core: due deliveries are copied out under the lock, posted
//! without it (at most `webhooks.concurrency` at once), and each outcome recorded as a change
//! of its own through [`crate::ops::webhooks`]. What waits, and how it is signed, is
//! [`crate::webhooks`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use horde_core::{JobId, Timestamp};

use crate::driver::Driver;
use crate::webhooks::{backoff, guard, signature, Delivery, Outcome, WebhookConfig};

/// Why an attempt failed, and whether another could succeed.
#[derive(Debug)]
struct Failure {
    reason: String,
    permanent: bool,
}

/// One attempt at `delivery`, signed with `secret`, at `now` (for the timestamp).
async fn attempt(
    client: &reqwest::Client,
    config: &WebhookConfig,
    delivery: &Delivery,
    secret: &str,
    now: Timestamp,
) -> Result<(), Failure> {
    // Names are resolved by the client (public addresses only, unless allowed), once.
    let url = guard::check_form(&delivery.url, config.allow_private).map_err(|e| Failure {
        permanent: true,
        reason: e.to_string(),
    })?;
    let timestamp = now.millis() / 1000;
    let answer = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Horde-Timestamp", timestamp)
        .header(
            "X-Horde-Signature",
            signature(secret, timestamp, &delivery.body),
        )
        .header("X-Horde-Delivery", delivery.job.to_string())
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(|e| Failure {
            reason: causes(&e),
            permanent: false,
        })?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    // The receiver says the delivery is wrong: another try would be too (408 and 429 say
    // "later").
    let permanent = status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
    Err(Failure {
        reason: format!("the receiver answered {status}"),
        permanent,
    })
}

/// `error` and its causes, in one line ("error sending request: … connection refused").
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The client deliveries are posted with: no redirects (a redirect could lead inside), a
/// timeout per attempt, and (unless private targets are allowed) a resolver that answers only
/// public addresses.
fn client(config: &WebhookConfig) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(config.timeout_secs.max(1)))
        .connect_timeout(Duration::from_secs(config.timeout_secs.clamp(1, 5)))
        .user_agent(concat!(
            "horde-server/",
            env!("CARGO_PKG_VERSION"),
            " (webhook)"
        ));
    if !config.allow_private {
        builder = builder.dns_resolver(Arc::new(guard::PublicOnly));
    }
    builder.build()
}

/// Delivers webhooks until the driver fails (spawned beside the timer by
/// [`crate::serve`]). Never holds the core's lock while posting.
pub async fn deliver(driver: Driver) {
    let config = driver.config().webhooks.clone();
    let client = match client(&config) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; no webhooks delivered");
            return;
        }
    };
    let arrivals = driver.read(|core, _| core.webhooks.arrivals());
    let slots = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
    let (finished, mut finishing) = tokio::sync::mpsc::unbounded_channel::<JobId>();
    let mut busy: HashSet<JobId> = HashSet::new();
    loop {
        if driver.is_failed() {
            return;
        }
        while let Ok(job) = finishing.try_recv() {
            busy.remove(&job);
        }
        let arrived = arrivals.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        let now = driver.now();
        let free = slots.available_permits();
        let (due, next) = driver.read(|core, _| {
            let due: Vec<(Delivery, Option<String>)> = core
                .webhooks
                .due(now.millis(), free, &busy)
                .into_iter()
                .map(|d| {
                    let secret = core
                        .users
                        .get(d.owner)
                        .and_then(|u| u.webhook_secret.clone());
                    (d, secret)
                })
                .collect();
            (due, core.webhooks.next_due(&busy))
        });
        for (delivery, secret) in due {
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                break;
            };
            busy.insert(delivery.job);
            let (driver, client, config, finished) = (
                driver.clone(),
                client.clone(),
                config.clone(),
                finished.clone(),
            );
            tokio::spawn(async move {
                let job = delivery.job;
                let outcome = match &secret {
                    None => {
                        tracing::warn!(%job, "webhook owner has no secret any more; delivery given up");
                        Outcome::Over
                    }
                    Some(secret) => {
                        match attempt(&client, &config, &delivery, secret, driver.now()).await {
                            Ok(()) => {
                                tracing::debug!(%job, "webhook delivered");
                                Outcome::Over
                            }
                            Err(failure) => {
                                let now = driver.now().millis();
                                let retry_at =
                                    now + backoff(&config, delivery.attempts).as_millis() as u64;
                                let too_old = retry_at.saturating_sub(delivery.created_at)
                                    > config.max_age_secs.saturating_mul(1000);
                                if failure.permanent || too_old {
                                    tracing::warn!(%job, url = %delivery.url, attempts = delivery.attempts + 1, reason = %failure.reason, "webhook delivery given up");
                                    Outcome::Over
                                } else {
                                    tracing::info!(%job, url = %delivery.url, reason = %failure.reason, "webhook delivery failed; will retry");
                                    Outcome::RetryAt(retry_at)
                                }
                            }
                        }
                    }
                };
                if let Err(e) = crate::ops::webhooks::settle(&driver, job, outcome).await {
                    tracing::warn!(%job, error = %e, "webhook outcome not recorded");
                }
                drop(permit);
                let _ = finished.send(job);
            });
        }
        let wait = next.map_or(Duration::from_secs(60), |at| {
            Duration::from_millis(at.saturating_sub(driver.now().millis()))
                .min(Duration::from_secs(60))
        });
        tokio::select! {
            () = arrived => {}
            () = tokio::time::sleep(wait) => {}
            Some(job) = finishing.recv() => { busy.remove(&job); }
        }
    }
}
