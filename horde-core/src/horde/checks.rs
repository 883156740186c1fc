//! Spot checks: the horde verifies work instead of believing the worker.
//!
//! Now and then (a draw the caller makes per pop, against [`SpotChecks::rate_untrusted`] or
//! [`SpotChecks::rate_trusted`]) a worker with a free thread is handed a *check job* instead
//! of a request from the queue: a prompt from the operator's canary list with greedy sampling,
//! asked for by the horde itself ([`UserId::HORDE`]) and paid from the horde's account like
//! any generation. The same prompt goes to a trusted worker of another owner serving the same
//! model (the *reference*), unless its answer is known already. When both answers are in, they
//! are compared with [`text::similarity`]; an answer less alike than
//! [`SpotChecks::min_similarity`] raises the worker's suspicion, is not paid after all (what
//! was paid for it goes back to the horde), and forfeits its owner's escrow to the horde. With no trusted peer of a model online and no known answer, nothing is
//! checked: the untrusted caps (threads, escrow, workers) bound what a liar earns.
//!
//! Pending checks and known answers live in memory only: a restart forgets them (the jobs
//! themselves are ordinary requests, persisted and paid as such).

use super::submit::Suspect;
use super::*;

/// Rules of spot checks. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpotChecks {
    /// Share of an untrusted owner's worker's pops answered with a check job (when one is
    /// possible). Default 0.1.
    pub rate_untrusted: f64,
    /// The same for a trusted owner's worker (checked against another trusted owner's).
    /// Default 0.01.
    pub rate_trusted: f64,
    /// Tokens a check job asks for (at most what the worker generates). Default 80, AI
    /// Horde's default request.
    pub max_length: u32,
    /// Two answers less alike than this ([`text::similarity`], 0–1) disagree. Default 0.15:
    /// fluent text unrelated to the prompt scores 0–0.05, an answer that follows the same
    /// words for its first tenth and then goes its own way about 0.17 (docs/economy.md).
    pub min_similarity: f64,
    /// The sampler fields of a check job, a JSON object: greedy (top-k 1), so that the same
    /// model answers the same way on any honest backend.
    pub samplers: String,
}

impl Default for SpotChecks {
    fn default() -> Self {
        SpotChecks {
            rate_untrusted: 0.1,
            rate_trusted: 0.01,
            max_length: 80,
            min_similarity: 0.15,
            samplers: r#"{"temperature":0.1,"top_k":1,"top_p":1.0,"rep_pen":1.0}"#.into(),
        }
    }
}

/// A check under way: a worker's answer to a canary, and the trusted answer to compare it
/// with.
#[derive(Debug, Clone)]
pub(super) struct PendingCheck {
    /// The worker checked.
    worker: WorkerId,
    /// What the answers are known by: model, canary, tokens.
    key: AnswerKey,
    /// The worker's answer, once in.
    answer: Option<String>,
    /// The request asking a trusted worker for the reference, if one was needed.
    reference: Option<RequestId>,
    /// What the worker's owner was paid to their balance for its answer (taken back if the
    /// answer disagrees; the escrowed part goes with the escrow).
    paid_now: Kudos,
}

/// Model, canary index and `max_length` of a check: answers to the same key are comparable.
pub(super) type AnswerKey = (Arc<str>, usize, u32);

/// Most of a worker's models one check looks for a trusted peer of.
const MODELS_TRIED: usize = 8;

/// The spot checks' memory.
#[derive(Debug, Default)]
pub(super) struct Checks {
    /// The operator's canary prompts.
    pub(super) canaries: Vec<Arc<str>>,
    /// Checks under way, by the checked worker's request.
    pending: HashMap<RequestId, PendingCheck>,
    /// Reference requests → the check they serve.
    references: HashMap<RequestId, RequestId>,
    /// Trusted workers' answers, by key.
    answers: HashMap<AnswerKey, String>,
    /// The check under way of each worker: one at a time, so that a worker answering fast
    /// cannot collect many checks' pay before the first verdict.
    by_worker: HashMap<WorkerId, RequestId>,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CheckVerdict {
    /// The answers agreed (similarity given).
    Agreed(f64),
    /// The answers disagreed (similarity given): the worker is suspected.
    Disagreed(f64),
}

impl Horde {
    /// Replaces the canary prompts spot checks draw from (at start, or when the operator
    /// reloads them). Empty turns spot checks off. Pending checks stay; known answers are
    /// forgotten (a canary's index may now name another prompt).
    pub fn set_canaries(&mut self, canaries: Vec<Arc<str>>) {
        self.checks.canaries = canaries;
        self.checks.answers.clear();
    }

    /// The canary prompts in use.
    pub fn canaries(&self) -> &[Arc<str>] {
        &self.checks.canaries
    }

    /// Checks under way.
    pub fn pending_checks(&self) -> usize {
        self.checks.pending.len()
    }

    /// Returns true if and only if a spot check of `worker` is under way.
    pub(super) fn is_checking(&self, worker: WorkerId) -> bool {
        self.checks.by_worker.contains_key(&worker)
    }

    /// Returns true if and only if request `id` is one of the horde's spot checks.
    pub fn is_check(&self, id: RequestId) -> bool {
        self.checks.pending.contains_key(&id) || self.checks.references.contains_key(&id)
    }

    /// Answers `worker`'s pop with a check job if `draw` (uniform over `u64`) falls within
    /// its rate and a check is possible for one of its models. Returns the check's request,
    /// queued and restricted to `worker`, for the caller to assign.
    pub(super) fn plan_check(
        &mut self,
        worker: WorkerId,
        draw: u64,
        now: Timestamp,
        new_id: &mut impl FnMut() -> Uuid,
        events: &mut Vec<Event>,
    ) -> Option<RequestId> {
        let rules = &self.config.spot_checks;
        let worker = self.workers.get(&worker)?;
        let rate = if worker.trusted {
            rules.rate_trusted
        } else {
            rules.rate_untrusted
        };
        let canaries = self.checks.canaries.len();
        if canaries == 0
            || worker.models.is_empty()
            || (draw as f64) >= rate * u64::MAX as f64
            || self.checks.by_worker.contains_key(&worker.id)
        {
            return None;
        }
        let worker = worker.clone();
        // The rest of the draw picks the canary and where to start among the models.
        let mixed = draw.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15;
        let canary = (mixed % canaries as u64) as usize;
        let max_length = rules
            .max_length
            .min(worker.max_length)
            .max(MAX_LENGTH_RANGE.0);
        let context = worker
            .max_context_length
            .clamp(max_length, 2048.max(max_length));
        let start = ((mixed >> 32) % worker.models.len() as u64) as usize;
        let mut probe = RequestSpec::new(
            RequestId(Uuid::nil()),
            UserId::HORDE,
            self.checks.canaries[canary].clone(),
            now,
        );
        probe.params = GenParams {
            n: 1,
            max_length,
            max_context_length: context,
        };
        probe.passthrough = Arc::from(rules.samplers.as_str());
        probe.trusted_workers = true;
        // At most MODELS_TRIED of its models are tried, so that a worker serving hundreds
        // does not make its pop look at every peer of each.
        let tried = worker.models.len().min(MODELS_TRIED);
        let (model, reference_workers) = (0..tried).find_map(|i| {
            let model = worker.models[(start + i) % worker.models.len()].clone();
            let key = (model.clone(), canary, max_length);
            if self.checks.answers.contains_key(&key) {
                return Some((model, Vec::new()));
            }
            probe.models = vec![model.clone()];
            let peers = self.reference_workers(&worker, &probe);
            (!peers.is_empty()).then_some((model, peers))
        })?;
        probe.models = vec![model.clone()];
        let key = (model, canary, max_length);
        let id = RequestId(new_id());
        let reference = if reference_workers.is_empty() {
            None
        } else {
            let mut spec = probe.clone();
            spec.id = RequestId(new_id());
            spec.workers = reference_workers;
            let reference = spec.id;
            self.queue_check(spec, now, events);
            self.checks.references.insert(reference, id);
            Some(reference)
        };
        let mut spec = probe;
        spec.id = id;
        spec.workers = vec![worker.id];
        spec.trusted_workers = false;
        self.queue_check(spec, now, events);
        self.checks.by_worker.insert(worker.id, id);
        self.checks.pending.insert(
            id,
            PendingCheck {
                worker: worker.id,
                key,
                answer: None,
                reference,
                paid_now: Kudos::ZERO,
            },
        );
        Some(id)
    }

    /// Online trusted workers of other owners that may serve `probe` (at most 5).
    fn reference_workers(&self, worker: &Worker, probe: &RequestSpec) -> Vec<WorkerId> {
        let Some(presence) = probe.models.first().and_then(|m| self.online.of_model(m)) else {
            return Vec::new();
        };
        let mut peers: Vec<WorkerId> = presence
            .workers
            .iter()
            .filter(|id| **id != worker.id)
            .filter_map(|id| self.workers.get(id))
            .filter(|peer| {
                peer.trusted
                    && peer.owner != worker.owner
                    && !peer.maintenance
                    && matching::check(peer, probe).is_ok()
            })
            .map(|peer| peer.id)
            .take(64)
            .collect();
        peers.sort_unstable();
        peers.truncate(5);
        peers
    }

    /// Queues a check's request (the horde's own, first in line).
    fn queue_check(&mut self, spec: RequestSpec, now: Timestamp, events: &mut Vec<Event>) {
        events.extend(self.admit(spec, now));
    }

    /// A check's request `id` received `text`, for which the worker's owner was paid
    /// `paid_now` to their balance: records it, and judges the check when both answers are
    /// in. Returns the verdict, if there is one now.
    pub(super) fn check_answered(
        &mut self,
        id: RequestId,
        text: &str,
        paid_now: Kudos,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) -> Option<CheckVerdict> {
        let subject = match self.checks.references.remove(&id) {
            Some(subject) => {
                let key = self.checks.pending.get(&subject)?.key.clone();
                self.checks.answers.insert(key, text.to_owned());
                subject
            }
            None => {
                let check = self.checks.pending.get_mut(&id)?;
                check.answer = Some(text.to_owned());
                check.paid_now = paid_now;
                id
            }
        };
        let check = self.checks.pending.get(&subject)?;
        let answer = check.answer.as_deref()?;
        let reference = self.checks.answers.get(&check.key)?;
        let similarity = text::similarity(answer, reference);
        let (worker, paid_now) = (check.worker, check.paid_now);
        self.checks.pending.remove(&subject);
        self.checks.by_worker.remove(&worker);
        if similarity >= self.config.spot_checks.min_similarity {
            return Some(CheckVerdict::Agreed(similarity));
        }
        self.suspect(worker, Suspect::Disagreed { similarity }, events);
        // The escrow of the disputed time goes back to the horde (a posting: nothing is lost
        // from the sum of all accounts).
        if let Some(owner) = self.workers.get(&worker).map(|w| w.owner) {
            if let Ok(Some(posting)) = self.ledger.forfeit_escrow(owner, now) {
                self.record_posting(posting, events);
            }
            // Nor is the failed answer paid.
            if paid_now.is_positive() {
                if let Ok(posting) = self.ledger.forfeit_paid(owner, paid_now, now) {
                    self.record_posting(posting, events);
                }
            }
        }
        Some(CheckVerdict::Disagreed(similarity))
    }

    /// A check's request `id` closed without an answer: the check is void.
    pub(super) fn check_closed(&mut self, id: RequestId) {
        let subject = self.checks.references.remove(&id).unwrap_or(id);
        if let Some(check) = self.checks.pending.remove(&subject) {
            self.checks.by_worker.remove(&check.worker);
            if let Some(reference) = check.reference {
                self.checks.references.remove(&reference);
            }
        }
    }
}
