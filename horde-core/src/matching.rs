//! Matching: may this worker serve this request, and if not, why not.
//!
//! The reasons are counted per pop and reported to the worker as `skipped`, under AI Horde's
//! field names, so a volunteer can see why their worker idles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{RequestSpec, Worker};

/// Why a worker may not serve a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The worker serves none of the requested models.
    Models,
    /// The request wants more tokens than the worker generates.
    MaxLength,
    /// The request wants more context than the worker accepts.
    MaxContextLength,
    /// The request's worker allow-list excludes it, or its deny-list names it.
    WorkerId,
    /// The request wants trusted workers only.
    Untrusted,
    /// The request is NSFW and the worker does not accept NSFW.
    Nsfw,
    /// The prompt holds a word of the worker's `blacklist`.
    Blacklist,
    /// The request refuses slow workers and this one is slow, or the worker declared itself
    /// extra slow and the request does not allow that.
    Performance,
    /// The request wants validated bridges and the operator has not validated this one's.
    BridgeVersion,
}

impl SkipReason {
    /// The AI Horde field name of this reason in a pop's `skipped` object.
    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::Models => "models",
            SkipReason::MaxLength => "max_length",
            SkipReason::MaxContextLength => "max_context_length",
            SkipReason::WorkerId => "worker_id",
            SkipReason::Untrusted => "untrusted",
            SkipReason::Nsfw => "nsfw",
            SkipReason::Blacklist => "blacklist",
            SkipReason::Performance => "performance",
            SkipReason::BridgeVersion => "bridge_version",
        }
    }
}

/// Requests skipped by one pop, counted per reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipCounts(BTreeMap<SkipReason, u64>);

impl SkipCounts {
    /// Counts one more request skipped for `reason`.
    pub fn add(&mut self, reason: SkipReason, count: u64) {
        if count > 0 {
            *self.0.entry(reason).or_default() += count;
        }
    }

    /// The count for `reason`.
    pub fn get(&self, reason: SkipReason) -> u64 {
        self.0.get(&reason).copied().unwrap_or(0)
    }

    /// Non-zero counts, by reason.
    pub fn iter(&self) -> impl Iterator<Item = (SkipReason, u64)> + '_ {
        self.0.iter().map(|(r, c)| (*r, *c))
    }

    /// Returns true if and only if nothing was skipped.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks whether `worker` may serve `request`; the first failing rule is the reason.
///
/// ```
/// use horde_core::{matching, RequestId, RequestSpec, SkipReason, Timestamp, UserId, Worker, WorkerId};
/// let mut worker = Worker::new(WorkerId(uuid::Uuid::nil()), UserId(1), "w", Timestamp(0));
/// worker.models = vec!["koboldcpp/x-7B".into()];
/// let mut request = RequestSpec::new(RequestId(uuid::Uuid::nil()), UserId(0), "Hi", Timestamp(0));
/// assert_eq!(matching::check(&worker, &request), Ok(()));
/// request.params.max_length = 1024;
/// assert_eq!(matching::check(&worker, &request), Err(SkipReason::MaxLength));
/// ```
///
/// Both model lists are sorted (the horde sorts them as requests and workers arrive), so the
/// model rule costs O(r log w) for r requested and w served models.
pub fn check(worker: &Worker, request: &RequestSpec) -> Result<(), SkipReason> {
    if !request.models.is_empty() && !shares_a_name(&request.models, &worker.models) {
        return Err(SkipReason::Models);
    }
    if request.params.max_length > worker.max_length {
        return Err(SkipReason::MaxLength);
    }
    if request.params.max_context_length > worker.max_context_length {
        return Err(SkipReason::MaxContextLength);
    }
    if !request.workers.is_empty()
        && request.workers.contains(&worker.id) == request.worker_blacklist
    {
        return Err(SkipReason::WorkerId);
    }
    if request.trusted_workers && !worker.trusted {
        return Err(SkipReason::Untrusted);
    }
    if request.nsfw && !worker.nsfw {
        return Err(SkipReason::Nsfw);
    }
    if (!request.slow_workers && worker.tokens_per_second() < crate::SLOW_WORKER_TOKENS_PER_SEC)
        || (worker.extra_slow && !request.extra_slow_workers)
    {
        return Err(SkipReason::Performance);
    }
    if request.validated_backends && !worker.validated {
        return Err(SkipReason::BridgeVersion);
    }
    Ok(())
}

/// Returns true if and only if `request`'s prompt holds a word of `worker`'s blacklist
/// (lowercased on both sides). Costs the prompt's length: a pop runs it only on requests that
/// pass [`check`], within a budget (`Horde::pop`).
pub fn blacklisted(worker: &Worker, request: &RequestSpec) -> bool {
    if worker.blacklist.is_empty() {
        return false;
    }
    let prompt = request.prompt.to_lowercase();
    worker
        .blacklist
        .iter()
        .any(|word| prompt.contains(word.as_str()))
}

/// Returns true if and only if the sorted lists `a` and `b` have a name in common.
fn shares_a_name(a: &[std::sync::Arc<str>], b: &[std::sync::Arc<str>]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.iter().any(|name| long.binary_search(name).is_ok())
}

/// The model `worker` serves `request` with: the first of the worker's models (in sorted
/// order) the request accepts.
pub fn chosen_model<'w>(
    worker: &'w Worker,
    request: &RequestSpec,
) -> Option<&'w std::sync::Arc<str>> {
    worker
        .models
        .iter()
        .find(|w| request.models.is_empty() || request.models.binary_search(w).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RequestId, Timestamp, UserId, WorkerId};

    #[test]
    fn skip_counts_keep_only_what_was_skipped() {
        let mut counts = SkipCounts::default();
        counts.add(SkipReason::Nsfw, 0);
        assert!(counts.is_empty());
        assert_eq!(counts.get(SkipReason::Nsfw), 0);
        counts.add(SkipReason::Models, 2);
        counts.add(SkipReason::Models, 3);
        assert!(!counts.is_empty());
        assert_eq!(counts.get(SkipReason::Models), 5);
        assert_eq!(counts.iter().collect::<Vec<_>>(), [(SkipReason::Models, 5)]);
    }

    #[test]
    fn a_request_at_the_workers_limits_is_served() {
        let mut worker = Worker::new(WorkerId(uuid::Uuid::nil()), UserId(1), "w", Timestamp(0));
        worker.max_length = 512;
        worker.max_context_length = 4096;
        let mut request =
            RequestSpec::new(RequestId(uuid::Uuid::nil()), UserId(2), "Hi", Timestamp(0));
        request.params.max_length = 512;
        request.params.max_context_length = 4096;
        assert_eq!(check(&worker, &request), Ok(()));
        request.params.max_context_length = 4097;
        assert_eq!(check(&worker, &request), Err(SkipReason::MaxContextLength));
    }

    #[test]
    fn a_blacklisted_word_anywhere_in_the_prompt_skips_the_request() {
        let mut worker = Worker::new(WorkerId(uuid::Uuid::nil()), UserId(1), "w", Timestamp(0));
        let request = RequestSpec::new(
            RequestId(uuid::Uuid::nil()),
            UserId(2),
            "Tell me about DRAGONS.",
            Timestamp(0),
        );
        assert!(!blacklisted(&worker, &request));
        worker.blacklist = vec!["knights".into(), "dragon".into()];
        assert!(blacklisted(&worker, &request));
        worker.blacklist = vec!["knights".into()];
        assert!(!blacklisted(&worker, &request));
    }
}
