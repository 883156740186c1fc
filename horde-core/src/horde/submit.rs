//! Finishing work: submit, job aborts, closing and cancelling requests.

use super::*;

/// How a worker reports a job's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitState {
    /// A generation.
    Ok,
    /// A censored generation (paid like `Ok`).
    Censored,
    /// The worker failed: no reward; the generation goes back to the queue.
    Faulted,
}

/// A worker's result for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Ok, censored or faulted.
    pub state: SubmitState,
    /// The text.
    pub text: String,
    /// The seed, if the backend reports one.
    pub seed: Option<String>,
    /// Backend metadata, JSON text.
    pub metadata: Option<Arc<str>>,
}

/// Why a generation submitted as done earned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpaid {
    /// It arrived faster than its model can generate (the speed rule): the job was taken
    /// back and the worker suspected.
    TooFast,
    /// The text is degenerate (one character repeated, …): delivered, but it moves nothing.
    Degenerate,
    /// The request came from the worker's own address (self-dealing moves nothing).
    SelfDealing,
}

impl Unpaid {
    /// Its name on the wire: `TooFast`, `Degenerate`, `SelfDealing`.
    pub fn code(self) -> &'static str {
        match self {
            Unpaid::TooFast => "TooFast",
            Unpaid::Degenerate => "Degenerate",
            Unpaid::SelfDealing => "SelfDealing",
        }
    }
}

impl std::fmt::Display for Unpaid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unpaid::TooFast => {
                "it arrived faster than its model can generate: the job was given back and the \
                 worker is suspected"
            }
            Unpaid::Degenerate => "its text is degenerate (one character repeated)",
            Unpaid::SelfDealing => "the request came from the worker's own address",
        })
    }
}

/// What a submission earned: the reward, and why it is nothing when a rule made it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment {
    /// Kudos paid to the worker's owner (half of it into escrow for an untrusted owner).
    pub reward: Kudos,
    /// The rule that made an `Ok` or `Censored` submission earn nothing.
    pub unpaid: Option<Unpaid>,
}

/// Why a submission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// No such job (or its request is gone).
    #[error("no such job")]
    UnknownJob,
    /// The job belongs to another user's worker.
    #[error("this job belongs to another worker")]
    WrongCredentials,
    /// The job was already submitted.
    #[error("this generation was already submitted")]
    Duplicate,
    /// The job timed out, failed or was cancelled.
    #[error("this generation was aborted")]
    Aborted,
    /// Settling would overflow a balance.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Why a worker's suspicion rose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Suspect {
    /// A generation arrived faster than its model can generate.
    TooFast {
        /// The model's size.
        size_b: f64,
    },
    /// It failed this many more jobs than it finished.
    Faults {
        /// How many.
        count: u32,
    },
    /// Its answer to a spot check disagreed with a trusted worker's.
    Disagreed {
        /// How alike the answers were (0–1).
        similarity: f64,
    },
}

impl std::fmt::Display for Suspect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Suspect::TooFast { size_b } => write!(
                f,
                "generations arrived faster than a {size_b}B model can generate them"
            ),
            Suspect::Faults { count } => {
                write!(
                    f,
                    "{count} more jobs failed or timed out than were finished"
                )
            }
            Suspect::Disagreed { similarity } => write!(
                f,
                "its answer to a check prompt was {:.0}% like a trusted worker's",
                similarity * 100.0
            ),
        }
    }
}

impl Horde {
    /// A worker's owner submits a job's result. Ok and censored generations are paid: the
    /// requester pays the worker's owner the reward, returned. Faulted ones earn nothing and
    /// go back to the queue (the request faults after too many restarts).
    pub fn submit(
        &mut self,
        now: Timestamp,
        caller: UserId,
        job_id: JobId,
        submission: Submission,
    ) -> Result<Applied<Kudos>, SubmitError> {
        let applied = self.submit_paid(now, caller, job_id, submission)?;
        Ok(Applied {
            value: applied.value.reward,
            events: applied.events,
        })
    }

    /// [`Horde::submit`], with why a generation earned nothing when a rule made it so.
    pub fn submit_paid(
        &mut self,
        now: Timestamp,
        caller: UserId,
        job_id: JobId,
        submission: Submission,
    ) -> Result<Applied<Payment>, SubmitError> {
        let job = self.jobs.get(&job_id).ok_or(SubmitError::UnknownJob)?;
        let Some(worker) = self.workers.get(&job.worker) else {
            // Its worker was deleted: the job was done before, or aborted then.
            return Err(match job.status {
                JobStatus::Done(_) => SubmitError::Duplicate,
                JobStatus::Aborted(_) => SubmitError::Aborted,
                JobStatus::Processing => SubmitError::UnknownJob,
            });
        };
        if worker.owner != caller {
            return Err(SubmitError::WrongCredentials);
        }
        match job.status {
            JobStatus::Processing => {}
            JobStatus::Done(_) => return Err(SubmitError::Duplicate),
            JobStatus::Aborted(_) => return Err(SubmitError::Aborted),
        }
        let entry = self
            .requests
            .get(&job.request)
            .ok_or(SubmitError::UnknownJob)?;
        let (request_id, worker_id, earner, deadline, started_at) = (
            job.request,
            job.worker,
            worker.owner,
            job.deadline,
            job.started_at,
        );
        let job_model = job.model.clone();
        let mut events = Vec::new();
        let generation_state = match submission.state {
            SubmitState::Faulted => {
                self.check_in(worker_id, now, &mut events);
                self.abort_job(job_id, AbortReason::Faulted, now, &mut events);
                self.count_fault(worker_id, &mut events);
                self.push_worker_checked_in(worker_id, &mut events);
                return Ok(Applied {
                    value: Payment {
                        reward: Kudos::ZERO,
                        unpaid: None,
                    },
                    events,
                });
            }
            SubmitState::Ok => GenerationState::Ok,
            SubmitState::Censored => GenerationState::Censored,
        };
        let economy = &self.config.economy;
        let integrity = &self.config.integrity;
        let params = entry.spec.params;
        let tokens = economy.generation_tokens(&submission.text, params.max_length);
        let context = economy.context_tokens(
            &entry.spec.prompt,
            params.max_length,
            params.max_context_length,
        );
        let size = self.model_size_for(earner, &job.model);
        let requester = entry.spec.owner;
        let self_dealing = integrity.self_dealing_check
            && entry.spec.origin.is_some()
            && entry.spec.origin == worker.last_origin
            && requester != earner;
        // A degenerate text (one character repeated, …) is delivered but moves nothing: junk
        // earns nothing, and a requester who asked for it loses nothing.
        // Only the part that can be paid is judged (at most `max_length` tokens' characters),
        // so that a huge submission costs no more to look at than a paid one.
        let paid_chars = economy.chars_per_token.max(1) as usize * params.max_length as usize;
        let degenerate = text::is_degenerate(
            text::prefix(&submission.text, paid_chars),
            integrity.min_text_entropy_bits,
        );
        // Self-dealing moves nothing (an owner's own requests net to zero anyway).
        let reward = if self_dealing || degenerate {
            Kudos::ZERO
        } else {
            economy.generation_reward(size, tokens, context)
        };
        // The speed rule holds for the worker's total rate: its paid generations, one after
        // another at the speed limit, must have had time to finish by now.
        let trusted = self.users.get(&earner).is_some_and(|p| p.trusted);
        let mut speed_clock = worker.speed_clock;
        if let Some(limit) = integrity.speed_limit(size, trusted) {
            let start = speed_clock.max(started_at);
            let needed_ms = f64::from(tokens) * 1000.0 / limit;
            if (now.millis_since(start) as f64) < needed_ms {
                self.check_in(worker_id, now, &mut events);
                self.suspect(worker_id, Suspect::TooFast { size_b: size }, &mut events);
                self.abort_job(job_id, AbortReason::Faulted, now, &mut events);
                return Ok(Applied {
                    value: Payment {
                        reward: Kudos::ZERO,
                        unpaid: Some(Unpaid::TooFast),
                    },
                    events,
                });
            }
            speed_clock = start.plus_millis(needed_ms as u64);
        }
        // Work for someone else, paid: what uptime is earned by and paid for. The horde's own
        // spot checks are not demand: they prove nothing (a worker could answer them well
        // and claim a large model for its uptime).
        let proof = reward.is_positive() && requester != earner && requester != UserId::HORDE;
        let context_used = economy
            .estimate_tokens(&entry.spec.prompt)
            .min(params.max_context_length)
            .min(worker.max_context_length);
        let elapsed_ms = now.millis_since(started_at).max(1);
        let at_once = u64::from(self.backlog.in_flight(worker_id).max(1));
        let speed_milli = u64::from(tokens) * 1_000_000 / elapsed_ms * at_once;
        let escrowed = integrity.escrow_untrusted && requester != earner && !trusted;
        if requester == UserId::HORDE {
            // A spot check: the horde pays, half into escrow for an untrusted owner.
            let half = if escrowed { reward.milli() / 2 } else { 0 };
            let postings = self.ledger.settle_check(
                earner,
                Kudos::from_milli(reward.milli() - half),
                Kudos::from_milli(half),
                now,
            )?;
            for posting in postings {
                self.record_posting(posting, &mut events);
            }
            if escrowed {
                self.trust_if_earned(earner, now, &mut events);
            } else {
                self.release_if_trusted(earner, now, &mut events);
            }
        } else if escrowed {
            // Half now, half into escrow until the owner is trusted.
            let half = Kudos::from_milli(reward.milli() / 2);
            let now_part = Kudos::from_milli(reward.milli() - half.milli());
            let postings = self
                .ledger
                .settle_generation_escrowed(requester, earner, now_part, half, now)?;
            for posting in postings {
                self.record_posting(posting, &mut events);
            }
            self.trust_if_earned(earner, now, &mut events);
        } else {
            let posting = self
                .ledger
                .settle_generation(requester, earner, reward, now)?;
            self.record_posting(posting, &mut events);
            self.release_if_trusted(earner, now, &mut events);
        }
        let window_ms = self
            .config
            .integrity
            .uptime_proof_window_secs
            .saturating_mul(1000);
        let mut record_changed = false;
        if let Some(worker) = self.workers.get_mut(&worker_id) {
            worker.speed_clock = speed_clock;
            if proof {
                let recent = worker
                    .last_good_at
                    .is_some_and(|at| now.millis_since(at) <= window_ms);
                worker.shown_context = if recent {
                    worker.shown_context.max(context_used)
                } else {
                    context_used
                };
                if worker.shown_model.as_ref() != Some(&job_model) {
                    worker.shown_model = Some(job_model.clone());
                    record_changed = true;
                }
                worker.last_good_at = Some(now);
                worker.fault_score = worker.fault_score.saturating_sub(1);
                worker.measured_tps_milli = match worker.measured_tps_milli {
                    0 => speed_milli,
                    old => (old * 7 + speed_milli) / 8,
                };
            }
        }
        self.check_in(worker_id, now, &mut events);
        self.deadlines.remove(&(deadline, job_id));
        if requester == UserId::HORDE {
            let half = if escrowed { reward.milli() / 2 } else { 0 };
            let paid_now = Kudos::from_milli(reward.milli() - half);
            self.check_answered(request_id, &submission.text, paid_now, now, &mut events);
        }
        let generation = Generation {
            text: submission.text,
            seed: submission.seed,
            state: generation_state,
            metadata: submission.metadata,
            tokens,
            reward,
            finished_at: now,
        };
        if let Some(job) = self.jobs.get_mut(&job_id) {
            self.backlog.processing(job, -1);
            job.status = JobStatus::Done(generation);
            events.push(Event::JobChanged(job.clone()));
        }
        if let Some(worker) = self.workers.get_mut(&worker_id) {
            worker.requests_fulfilled += 1;
            worker.tokens_generated += u64::from(tokens);
            worker.kudos_generated = worker
                .kudos_generated
                .checked_add(reward)
                .unwrap_or(worker.kudos_generated);
        }
        self.credit_team(worker_id, reward, 1, 0, &mut events);
        if let Some(spec) = self.requests.get(&request_id).map(|e| e.spec.clone()) {
            self.release_slots(&spec, 1);
        }
        if let Some(entry) = self.requests.get_mut(&request_id) {
            entry.state.processing -= 1;
            entry.state.finished += 1;
            entry.state.kudos = entry
                .state
                .kudos
                .checked_add(reward)
                .unwrap_or(entry.state.kudos);
            let (old, all_done) = (
                entry.state.last_progress,
                entry.state.finished >= entry.spec.params.n,
            );
            self.touch(request_id, old, now);
            if all_done {
                self.close(request_id, Outcome::Done, now, &mut events);
            } else {
                self.push_request_changed(request_id, &mut events);
            }
        }
        if record_changed {
            self.push_worker_changed(worker_id, &mut events);
        } else {
            self.push_worker_checked_in(worker_id, &mut events);
        }
        let unpaid = if self_dealing {
            Some(Unpaid::SelfDealing)
        } else if degenerate {
            Some(Unpaid::Degenerate)
        } else {
            None
        };
        Ok(Applied {
            value: Payment { reward, unpaid },
            events,
        })
    }

    /// Worker `id` failed or timed out on a job: its fault score rises, and every
    /// `faults_per_suspicion` of it (net of paid generations) raise its suspicion.
    pub(super) fn count_fault(&mut self, id: WorkerId, events: &mut Vec<Event>) {
        let per = self.config.integrity.faults_per_suspicion;
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        worker.fault_score = worker.fault_score.saturating_add(1);
        if per > 0 && worker.fault_score >= per {
            worker.fault_score = 0;
            self.suspect(id, Suspect::Faults { count: per }, events);
        }
    }

    /// Worker `id` did something an honest worker does not: its suspicion rises, and past the
    /// threshold it is put into maintenance and its owner flagged.
    pub(super) fn suspect(&mut self, id: WorkerId, why: Suspect, events: &mut Vec<Event>) {
        let threshold = self.config.integrity.suspicion_threshold;
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        worker.suspicion += 1;
        let owner = worker.owner;
        let caught = worker.suspicion >= threshold;
        if caught {
            worker.maintenance = true;
            worker.maintenance_msg = format!(
                "paused after {} suspicious results (the last: {why}); an administrator will \
                 review it",
                worker.suspicion
            );
        }
        self.refresh_online(id);
        self.push_worker_changed(id, events);
        if caught {
            if let Some(mut policy) = self.users.get(&owner).copied() {
                if !policy.flagged {
                    policy.flagged = true;
                    let applied = self.set_user(owner, policy);
                    events.extend(applied.events);
                }
            }
        }
    }

    /// Ends a processing job without a generation. Faults and time-outs count as restarts
    /// and put the generation back to waiting; past `max_restarts` the request faults.
    pub(super) fn abort_job(
        &mut self,
        job_id: JobId,
        reason: AbortReason,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) {
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return;
        };
        if job.status != JobStatus::Processing {
            return;
        }
        job.status = JobStatus::Aborted(reason);
        self.backlog.processing(job, -1);
        self.deadlines.remove(&(job.deadline, job_id));
        events.push(Event::JobChanged(job.clone()));
        let request_id = job.request;
        let Some(entry) = self.requests.get_mut(&request_id) else {
            return;
        };
        entry.state.processing -= 1;
        if reason == AbortReason::Cancelled {
            return;
        }
        entry.state.restarts += 1;
        entry.state.waiting += 1;
        self.backlog.waiting(&entry.spec, 1);
        if entry.state.restarts > self.config.max_restarts {
            self.close(request_id, Outcome::Faulted, now, events);
        } else {
            self.requeue(request_id);
            self.push_request_changed(request_id, events);
        }
    }

    /// Ends an open request: aborts its processing jobs, drops its waiting generations, and
    /// schedules its removal after the retention time.
    pub(super) fn close(
        &mut self,
        id: RequestId,
        outcome: Outcome,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) {
        let Some(entry) = self.requests.get(&id) else {
            return;
        };
        if !entry.state.is_open() {
            return;
        }
        let processing: Vec<JobId> = entry
            .jobs
            .iter()
            .copied()
            .filter(|j| {
                self.jobs
                    .get(j)
                    .is_some_and(|j| j.status == JobStatus::Processing)
            })
            .collect();
        let aborted = processing.len() as u32;
        for job in processing {
            self.abort_job(job, AbortReason::Cancelled, now, events);
        }
        let Some(entry) = self.requests.get_mut(&id) else {
            return;
        };
        let (spec, waiting, last) = (
            entry.spec.clone(),
            entry.state.waiting,
            entry.state.last_progress,
        );
        self.backlog.waiting(&entry.spec, -i64::from(waiting));
        entry.state.waiting = 0;
        entry.state.closed = Some((outcome, now));
        if outcome != Outcome::Done && spec.owner == UserId::HORDE {
            self.check_closed(id);
        }
        self.release_slots(&spec, waiting + aborted);
        self.queue.remove(&id);
        self.expiries
            .remove(&(last.plus_secs(self.config.request_timeout_secs), id));
        self.removals
            .insert((now.plus_secs(self.config.retention_secs), id));
        self.push_request_changed(id, events);
    }

    /// The client cancels a request: generations already finished stay (and stay paid);
    /// jobs in progress are aborted and will not be paid. Cancelling a closed request changes
    /// nothing. Returns `None` for an unknown request.
    pub fn cancel(&mut self, now: Timestamp, id: RequestId) -> Option<Applied<()>> {
        self.requests.get(&id)?;
        let mut events = Vec::new();
        self.close(id, Outcome::Cancelled, now, &mut events);
        Some(Applied { value: (), events })
    }
}
