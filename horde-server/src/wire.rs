//! The wire as the server speaks it: [`horde_api`]'s types (re-exported here), and what turns
//! a request body into the core's values.
//!
//! Handlers parse requests into these types and answer with them; nothing builds JSON by
//! hand. Field names and types follow AI Horde's v2 API (its OpenAPI description is the
//! contract; the deliberate differences are listed in docs/api.md). Response structs hold
//! plain data copied out of the core, so they are serialised after the core lock is released.

use std::sync::Arc;

use horde_core::{GenParams, RequestId, RequestSpec, Timestamp, UserId, WorkerId};

pub use horde_api::names::{Alias, ModelName, Username, WorkerName};
pub use horde_api::*;

use crate::error::ApiError;

/// The core's request for `body`, by `owner` at `now` (parsed before the core's lock is
/// taken). Refuses an empty prompt and samplers out of range; the core checks the rest.
pub fn request_spec(
    body: AsyncRequest,
    owner: UserId,
    now: Timestamp,
) -> Result<RequestSpec, ApiError> {
    for (field, value, why) in [(
        "softprompt",
        &body.softprompt,
        "softprompts are not supported: no worker of this horde loads them",
    )] {
        if value.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(ApiError::invalid(Rc::BadRequest, field, why));
        }
    }
    let prompt = body.prompt.unwrap_or_default();
    if prompt.is_empty() {
        return Err(ApiError::invalid(
            Rc::MissingPrompt,
            "prompt",
            "the prompt must not be empty",
        ));
    }
    let params = body.params.unwrap_or_default();
    params.samplers.check()?;
    let defaults = GenParams::default();
    let passthrough =
        serde_json::to_string(&params.samplers).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut spec = RequestSpec::new(RequestId(uuid::Uuid::now_v7()), owner, prompt, now);
    spec.params = GenParams {
        n: params.n.unwrap_or(defaults.n),
        max_length: params.max_length.unwrap_or(defaults.max_length),
        max_context_length: params
            .max_context_length
            .unwrap_or(defaults.max_context_length),
    };
    spec.passthrough = passthrough.into();
    spec.models = body
        .models
        .unwrap_or_default()
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(Arc::from)
        .collect();
    spec.workers = body
        .workers
        .unwrap_or_default()
        .into_iter()
        .map(WorkerId)
        .collect();
    spec.worker_blacklist = body.worker_blacklist.unwrap_or(false);
    spec.trusted_workers = body.trusted_workers.unwrap_or(false);
    spec.nsfw = body.nsfw.unwrap_or(false);
    spec.slow_workers = body.slow_workers.unwrap_or(true);
    spec.extra_slow_workers = body.extra_slow_workers.unwrap_or(false);
    spec.validated_backends = body.validated_backends.unwrap_or(true);
    spec.allow_downgrade = body.allow_downgrade.unwrap_or(false);
    spec.disable_batching = body.disable_batching.unwrap_or(false);
    // Whether the owner may name one is checked under the lock (`check_proxied_account`).
    spec.proxied_account = body.proxied_account.filter(|p| !p.is_empty());
    // Checked (form, addresses) by the handler, which may resolve it.
    spec.webhook = body
        .webhook
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty());
    if let Some(proxied) = &spec.proxied_account {
        if proxied.chars().count() > PROXIED_ACCOUNT_MAX
            || horde_core::name_problem(proxied).is_some()
        {
            return Err(ApiError::invalid(
                Rc::ValidationError,
                "proxied_account",
                format!("proxied_account must be at most {PROXIED_ACCOUNT_MAX} visible characters"),
            ));
        }
    }
    Ok(spec)
}

/// Longest `proxied_account`, in characters.
const PROXIED_ACCOUNT_MAX: usize = 100;

/// Refuses a `webhook` from a user without a webhook secret (deliveries are always signed).
pub fn check_webhook_secret(
    users: &crate::auth::Users,
    spec: &RequestSpec,
) -> Result<(), ApiError> {
    let has_secret = users
        .get(spec.owner)
        .is_some_and(|u| u.webhook_secret.is_some());
    if spec.webhook.is_some() && !has_secret {
        return Err(ApiError::invalid(
            Rc::BadRequest,
            "webhook",
            "webhooks are signed with your webhook secret: set one first with PUT \
             /api/v2/users/{your id} {\"webhook_secret\": \"…\"} (Anonymous cannot)",
        ));
    }
    Ok(())
}

/// Refuses a `proxied_account` from a user who is not a service account.
pub fn check_proxied_account(
    horde: &horde_core::Horde,
    spec: &RequestSpec,
) -> Result<(), ApiError> {
    let service = horde.user(spec.owner).is_some_and(|p| p.roles.service);
    if spec.proxied_account.is_some() && !service {
        return Err(ApiError::invalid(
            Rc::BadRequest,
            "proxied_account",
            "proxied_account is for service accounts; an administrator gives an account that role",
        ));
    }
    Ok(())
}
