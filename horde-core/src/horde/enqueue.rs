//! Enqueue: a client's request joins the queue.

use super::*;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// The prompt is empty.
    #[error("the prompt must not be empty")]
    EmptyPrompt,
    /// A parameter is outside its range.
    #[error("{field} must be between {min} and {max}")]
    OutOfRange {
        /// The parameter's API name.
        field: &'static str,
        /// Lowest allowed.
        min: u32,
        /// Highest allowed.
        max: u32,
    },
    /// `max_context_length` is below `max_length`.
    #[error("max_context_length must not be below max_length")]
    TokenOverflow,
    /// A model name is blank or holds hidden characters.
    #[error("a model name {reason}")]
    InvalidModelName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The user has too many generations open.
    #[error("too many open generations: at most {limit} at once")]
    TooManyPrompts {
        /// The user's concurrency.
        limit: u32,
    },
    /// Anonymous requests from this address have their share of the anonymous pool open.
    #[error(
        "anonymous requests from your address have {limit} generations open, their share of \
         the anonymous pool; wait for them to finish, or register for an API key"
    )]
    AddressShare {
        /// Generations one address may have open anonymously.
        limit: u32,
    },
    /// The owner is not a known user.
    #[error("unknown user")]
    UnknownUser,
    /// A request with this id exists.
    #[error("a request with this id exists")]
    DuplicateId,
    /// A list or text is over its limit.
    #[error(transparent)]
    OverLimit(#[from] OverLimit),
    /// The queue is congested and the request costs more than its owner holds.
    #[error(
        "the horde is busy: a request this large needs its estimated cost ({needed} kudos) \
         upfront, and you hold {balance}; ask for fewer tokens or generations, or earn kudos"
    )]
    KudosUpfront {
        /// The estimated cost.
        needed: Kudos,
        /// The owner's balance.
        balance: Kudos,
    },
}

impl Horde {
    /// Checks what [`Horde::enqueue`] checks of `spec` alone, without the horde's state: a
    /// prompt, the [`Limits`], the parameter ranges, and context at least `max_length`. A dry
    /// run answers with these errors too.
    ///
    /// ```
    /// use horde_core::{EnqueueError, Horde, HordeConfig, RequestId, RequestSpec, Timestamp, UserId};
    /// let horde = Horde::new(HordeConfig::default());
    /// let mut spec = RequestSpec::new(RequestId(uuid::Uuid::nil()), UserId(1), "Hi", Timestamp(0));
    /// assert_eq!(horde.check_request(&spec), Ok(()));
    /// spec.params.max_context_length = 80;
    /// spec.params.max_length = 100;
    /// assert_eq!(horde.check_request(&spec), Err(EnqueueError::TokenOverflow));
    /// ```
    pub fn check_request(&self, spec: &RequestSpec) -> Result<(), EnqueueError> {
        let GenParams {
            n,
            max_length,
            max_context_length,
        } = spec.params;
        if spec.prompt.is_empty() {
            return Err(EnqueueError::EmptyPrompt);
        }
        let limits = &self.config.limits;
        OverLimit::chars("prompt", &spec.prompt, limits.max_prompt_chars)?;
        OverLimit::entries("models", &spec.models, limits.max_models)?;
        for model in &spec.models {
            OverLimit::chars("models", model, limits.max_model_name_chars)?;
            if let Some(reason) = name_problem(model) {
                return Err(EnqueueError::InvalidModelName { reason });
            }
        }
        OverLimit::entries("workers", &spec.workers, limits.max_request_workers)?;
        let out_of_range = |field| move |min, max| EnqueueError::OutOfRange { field, min, max };
        in_range(n, N_RANGE, out_of_range("n"))?;
        in_range(max_length, MAX_LENGTH_RANGE, out_of_range("max_length"))?;
        in_range(
            max_context_length,
            MAX_CONTEXT_RANGE,
            out_of_range("max_context_length"),
        )?;
        if max_context_length < max_length {
            return Err(EnqueueError::TokenOverflow);
        }
        Ok(())
    }

    /// Queues a text-generation request. `spec.created_at` is set to `now`; its model list is
    /// sorted and de-duplicated. Inputs over the [`Limits`] are refused, so the work done here
    /// (and on every later pop that looks at the request) is bounded.
    pub fn enqueue(
        &mut self,
        now: Timestamp,
        mut spec: RequestSpec,
    ) -> Result<Applied<RequestId>, EnqueueError> {
        self.check_request(&spec)?;
        normalize_names(&mut spec.models);
        spec.workers.sort_unstable();
        spec.workers.dedup();
        let n = spec.params.n;
        let policy = self
            .users
            .get(&spec.owner)
            .ok_or(EnqueueError::UnknownUser)?;
        if self.requests.contains_key(&spec.id) {
            return Err(EnqueueError::DuplicateId);
        }
        let open = self.open_generations(spec.owner);
        if open + n > policy.concurrency {
            return Err(EnqueueError::TooManyPrompts {
                limit: policy.concurrency,
            });
        }
        self.check_address_share(&spec)?;
        if let Err(refused) = self.check_upfront(&spec, now) {
            // allow_downgrade: as long as the request is exempt from the rule when shortened
            // to the exempt size, it is shortened rather than refused.
            let fits = self.config.integrity.upfront_exempt_tokens / n.max(1);
            if !spec.allow_downgrade || fits < MAX_LENGTH_RANGE.0 {
                return Err(refused);
            }
            spec.params.max_length = spec.params.max_length.min(fits);
            self.check_upfront(&spec, now)?;
        }
        spec.created_at = now;
        spec.queue_at = None;
        let id = spec.id;
        Ok(Applied {
            value: id,
            events: self.admit(spec, now).to_vec(),
        })
    }

    /// Puts an accepted request (its checks passed, `created_at` set) in line and in the
    /// books; returns its two events.
    pub(super) fn admit(&mut self, mut spec: RequestSpec, now: Timestamp) -> [Event; 2] {
        let n = spec.params.n;
        let ticket = self.enqueue_item(&spec);
        spec.queue_at = ticket.map(|t| t.at());
        let spec = Arc::new(spec);
        let state = RequestState {
            waiting: n,
            processing: 0,
            finished: 0,
            restarts: 0,
            kudos: Kudos::ZERO,
            last_progress: now,
            closed: None,
        };
        self.take_slots(&spec, n);
        self.backlog.waiting(&spec, i64::from(n));
        self.expiries.insert((self.expiry_of(&state), spec.id));
        self.requests.insert(
            spec.id,
            RequestEntry {
                spec: spec.clone(),
                state,
                jobs: Vec::new(),
                ticket,
            },
        );
        [
            Event::RequestQueued(spec.clone()),
            Event::RequestChanged { id: spec.id, state },
        ]
    }

    /// An anonymous request may not take its address over its share of the anonymous pool.
    fn check_address_share(&self, spec: &RequestSpec) -> Result<(), EnqueueError> {
        let share = self.config.integrity.anonymous_per_address;
        let (true, Some(origin), true) = (spec.owner.is_anonymous(), spec.origin, share > 0) else {
            return Ok(());
        };
        let open = self.anonymous_slots.get(&origin).copied().unwrap_or(0);
        if open.saturating_add(spec.params.n) > share {
            return Err(EnqueueError::AddressShare { limit: share });
        }
        Ok(())
    }

    /// Under congestion, a large request needs its owner to hold its estimated cost — unless
    /// the owner runs a worker, or is a priority user of one, that did paid work for others
    /// within the proof window (they are served first on it anyway). Balances may still go
    /// negative: the cost is not taken upfront, only required.
    fn check_upfront(&self, spec: &RequestSpec, now: Timestamp) -> Result<(), EnqueueError> {
        let integrity = &self.config.integrity;
        let tokens = spec.params.max_length.saturating_mul(spec.params.n);
        if integrity.upfront_queue_minutes == 0
            || tokens <= integrity.upfront_exempt_tokens
            || !self.congested()
        {
            return Ok(());
        }
        let owner = spec.owner;
        let window_ms = integrity.uptime_proof_window_secs.saturating_mul(1000);
        let favoured = self.workers.values().any(|w| {
            (w.owner == owner || w.priority_users.contains(&owner))
                && w.last_good_at
                    .is_some_and(|at| now.millis_since(at) <= window_ms)
        });
        if favoured {
            return Ok(());
        }
        let needed = self.estimate(spec, now);
        let balance = self.ledger.balance(owner);
        if balance < needed {
            return Err(EnqueueError::KudosUpfront { needed, balance });
        }
        Ok(())
    }

    /// Returns true if and only if the waiting tokens would take the online workers longer
    /// than `upfront_queue_minutes` at their *measured* speed (a worker not yet measured
    /// counts as one thread at [`TOKENS_PER_SEC_PER_THREAD`]; declared threads count for
    /// nothing).
    pub fn congested(&self) -> bool {
        let minutes = self.config.integrity.upfront_queue_minutes;
        let per_minute = self.online.measured_tokens_per_sec().saturating_mul(60);
        let (_, queued_tokens) = self.backlog.total;
        queued_tokens > per_minute.saturating_mul(minutes)
    }

    /// Puts a new request in line. A user's k-th waiting request queues as if it came
    /// `k × queue_spacing_secs` later, so that one user's many requests cannot fill the line
    /// ahead of everyone else, however rich.
    pub(super) fn enqueue_item(&mut self, spec: &RequestSpec) -> Option<Ticket> {
        let priority = self.queue_priority(spec.owner);
        let waiting = if spec.owner == UserId::HORDE {
            0
        } else {
            self.queue.key_len(&spec.owner) as u64
        };
        let spacing = self.config.integrity.queue_spacing_secs;
        let at = spec
            .queue_at
            .unwrap_or_else(|| spec.created_at.plus_secs(waiting.saturating_mul(spacing)));
        self.queue
            .push(spec.id, spec.owner, priority, lanes_of(spec), at)
    }

    /// Puts a request whose generation went back to waiting back in line.
    pub(super) fn requeue(&mut self, id: RequestId) {
        let Some(entry) = self.requests.get(&id) else {
            return;
        };
        if let Some(ticket) = entry.ticket {
            let priority = self.queue_priority(entry.spec.owner);
            self.queue.reinsert(
                id,
                entry.spec.owner,
                priority,
                lanes_of(&entry.spec),
                ticket,
            );
        }
    }

    pub(super) fn expiry_of(&self, state: &RequestState) -> Timestamp {
        state
            .last_progress
            .plus_secs(self.config.request_timeout_secs)
    }
}
