//! Input limits: how large a request or a worker's report may be, so that every command does
//! bounded work under the server's lock (and a restart replays bounded work too).
//!
//! The defaults follow AI Horde where it states a limit (model names of at most 255 characters,
//! at most 5 workers named by a request, a `bridge_agent` of at most 1000 characters, worker
//! names of at most 100); the others are set far above what real clients send.

use serde::{Deserialize, Serialize};

/// Size limits of requests and workers. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most models a request may accept, and a worker may serve. Default 200.
    pub max_models: usize,
    /// Longest model name, in characters. Default 255 (AI Horde's).
    pub max_model_name_chars: usize,
    /// Longest prompt, in characters. Default 400 000 (over 100 000 tokens; the request body
    /// limit of the server is 1 MiB).
    pub max_prompt_chars: usize,
    /// Most workers a request may name in `workers`. Default 5 (AI Horde's).
    pub max_request_workers: usize,
    /// Most users a worker may name in `priority_usernames`. Default 20: a pop searches each
    /// priority user's requests in each of the worker's model lanes, so this bounds that part
    /// of a pop to (1 + 20) × 201 lane lookups.
    pub max_priority_users: usize,
    /// Longest worker name, in characters. Default 100 (AI Horde's).
    pub max_worker_name_chars: usize,
    /// Longest `bridge_agent`, in characters. Default 1000 (AI Horde's).
    pub max_bridge_agent_chars: usize,
    /// Most words in a worker's `blacklist`. Default 100: each is looked for in each prompt
    /// the worker's pop considers.
    pub max_blacklist_words: usize,
    /// Longest word of a `blacklist`, in characters. Default 100.
    pub max_blacklist_word_chars: usize,
    /// Most due items (deadlines, expiries, removals) one `tick` handles; the rest wait for
    /// the next call. Default 128.
    pub max_tick_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_models: 200,
            max_model_name_chars: 255,
            max_prompt_chars: 400_000,
            max_request_workers: 5,
            max_priority_users: 20,
            max_worker_name_chars: 100,
            max_bridge_agent_chars: 1000,
            max_blacklist_words: 100,
            max_blacklist_word_chars: 100,
            max_tick_batch: 128,
        }
    }
}

/// Rules that keep kudos from being farmed. `Default` gives the documented defaults; the
/// reasons are in docs/economy.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Integrity {
    /// Workers an untrusted owner may have. Default 3.
    pub max_workers_untrusted: usize,
    /// Workers a trusted owner may have. Default 20.
    pub max_workers_trusted: usize,
    /// Uptime is awarded only to a worker that submitted a paid generation within this many
    /// seconds. Default 3600.
    pub uptime_proof_window_secs: u64,
    /// For the queue's order, a balance below this counts as this, so that ageing brings every
    /// request to the front within `-priority_floor / ageing_per_sec` seconds of newer
    /// zero-balance ones. Default −300 kudos.
    pub priority_floor: crate::Kudos,
    /// The fastest plausible generation, in tokens per second, by model size: the first entry
    /// whose `up_to_b` covers the model applies (the last one beyond it). A faster generation
    /// is not paid and raises the worker's suspicion. Empty: no check. Default: up to 3B 500
    /// tokens/s, 8B 300, 14B 200, 35B 120, 75B 80, larger 50 — well above what a single
    /// stream reaches on current hardware, so an honest worker is never caught.
    pub speed_limits: Vec<SpeedLimit>,
    /// Suspicious generations after which a worker is put into maintenance and its owner
    /// flagged for review. Default 3.
    pub suspicion_threshold: u32,
    /// The queue is congested when its waiting tokens would take the online workers more than
    /// this many minutes (at the assumed speed per thread); then large requests need their
    /// cost upfront. 0 turns the rule off. Default 10.
    pub upfront_queue_minutes: u64,
    /// Requests of at most this many tokens in all (`max_length × n`) never need kudos
    /// upfront. Default 512.
    pub upfront_exempt_tokens: u32,
    /// A generation for a request made from where its worker checks in from moves no kudos,
    /// as the owner's own requests do. Default off: families and test set-ups share an
    /// address.
    pub self_dealing_check: bool,
    /// An untrusted owner's generation rewards are paid half now and half into escrow, and
    /// their uptime wholly into escrow, released once they are trusted. Default on.
    pub escrow_untrusted: bool,
    /// Escrowed kudos after which an untrusted user becomes trusted automatically (with an old
    /// enough account, no flag and no suspected worker). Default 1,000.
    pub trust_after_escrow: crate::Kudos,
    /// Days an account must exist before it is trusted automatically. Default 7.
    pub trust_after_days: u64,
    /// Jobs a worker of an untrusted owner holds at once, whatever `threads` it declares: a
    /// pop answers no job beyond it. Default 2.
    pub max_threads_untrusted: u32,
    /// The same for a trusted owner's worker. Default 16.
    pub max_threads_trusted: u32,
    /// A trusted owner's worker may generate this many times its model's speed limit in all
    /// (a batching server runs several jobs at nearly the speed of one). Default 4.
    pub trusted_speed_factor: f64,
    /// Faulted and timed-out jobs (less one per paid generation) that raise a worker's
    /// suspicion by one, as a too-fast generation does. 0 turns the rule off. Default 5.
    pub faults_per_suspicion: u32,
    /// A generation of at least 64 characters whose characters carry fewer bits of entropy
    /// than this (one character repeated has 0; English prose about 4) is degenerate: it is
    /// delivered but pays nothing and proves no work. 0 turns the rule off. Default 2.
    pub min_text_entropy_bits: f64,
    /// Anonymous generations (waiting plus processing) that requests from one address may
    /// have open at once, so that one address cannot take the whole anonymous pool. 0 turns
    /// the rule off. Default 10.
    pub anonymous_per_address: u32,
    /// For the queue's order, a positive balance `b` counts as `c·b / (b + c)` for this
    /// ceiling `c`: richer still comes first, but no balance counts for more than `c`, so a
    /// newcomer waits at most `(c − priority_floor) / ageing_per_sec` behind anyone who came
    /// later. Default 300 kudos (with the floor, ten minutes).
    pub priority_ceiling: crate::Kudos,
    /// A user's k-th waiting request queues as if it came `k ×` this many seconds later:
    /// holding many requests cannot put a user's whole backlog ahead of a newcomer. Default 20
    /// (about one generation).
    pub queue_spacing_secs: u64,
}

/// The fastest plausible generation for models up to a size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedLimit {
    /// Models of at most this many billions of parameters…
    pub up_to_b: f64,
    /// …generate at most this many tokens per second.
    pub tokens_per_sec: f64,
}

impl Default for Integrity {
    fn default() -> Self {
        Integrity {
            max_workers_untrusted: 3,
            max_workers_trusted: 20,
            uptime_proof_window_secs: 3600,
            priority_floor: crate::Kudos::from_milli(-300_000),
            speed_limits: [
                (3.0, 500.0),
                (8.0, 300.0),
                (14.0, 200.0),
                (35.0, 120.0),
                (75.0, 80.0),
                (10_000.0, 50.0),
            ]
            .into_iter()
            .map(|(up_to_b, tokens_per_sec)| SpeedLimit {
                up_to_b,
                tokens_per_sec,
            })
            .collect(),
            suspicion_threshold: 3,
            upfront_queue_minutes: 10,
            upfront_exempt_tokens: 512,
            self_dealing_check: false,
            escrow_untrusted: true,
            trust_after_escrow: crate::Kudos::from_milli(1_000_000),
            trust_after_days: 7,
            max_threads_untrusted: 2,
            max_threads_trusted: 16,
            trusted_speed_factor: 4.0,
            faults_per_suspicion: 5,
            min_text_entropy_bits: 2.0,
            anonymous_per_address: 10,
            priority_ceiling: crate::Kudos::from_milli(300_000),
            queue_spacing_secs: 20,
        }
    }
}

impl Integrity {
    /// The fastest plausible generation of a `size_b` model, in tokens per second, for a
    /// worker of a trusted or untrusted owner; `None` when there is no limit.
    ///
    /// ```
    /// use horde_core::Integrity;
    /// let rules = Integrity::default();
    /// assert_eq!(rules.speed_limit(8.0, false), Some(300.0));
    /// assert_eq!(rules.speed_limit(8.0, true), Some(1200.0));
    /// assert_eq!(rules.speed_limit(405.0, false), Some(50.0));
    /// ```
    pub fn speed_limit(&self, size_b: f64, trusted: bool) -> Option<f64> {
        let limit = self
            .speed_limits
            .iter()
            .find(|l| size_b <= l.up_to_b)
            .or(self.speed_limits.last())?;
        let factor = if trusted {
            self.trusted_speed_factor.max(1.0)
        } else {
            1.0
        };
        Some(limit.tokens_per_sec * factor)
    }

    /// Returns true if and only if `tokens` in `elapsed_ms` is faster than a `size_b` model
    /// of an untrusted owner can plausibly generate.
    pub fn implausibly_fast(&self, size_b: f64, tokens: u32, elapsed_ms: u64) -> bool {
        // tokens / seconds > limit, without dividing by zero.
        self.speed_limit(size_b, false)
            .is_some_and(|limit| f64::from(tokens) * 1000.0 > limit * elapsed_ms as f64)
    }

    /// Jobs a worker holds at once: what it declares, at most what its owner's trust allows.
    pub fn threads(&self, declared: u32, trusted: bool) -> u32 {
        let cap = if trusted {
            self.max_threads_trusted
        } else {
            self.max_threads_untrusted
        };
        declared.min(cap.max(1))
    }

    /// Workers an owner of this trust may have.
    pub fn max_workers(&self, trusted: bool) -> usize {
        if trusted {
            self.max_workers_trusted
        } else {
            self.max_workers_untrusted
        }
    }
}

/// An input over one of the [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field} is over its limit of {max} {unit}")]
pub struct OverLimit {
    /// The field's API name.
    pub field: &'static str,
    /// The limit.
    pub max: usize,
    /// What is counted: `"entries"` or `"characters"`.
    pub unit: &'static str,
}

impl OverLimit {
    /// Checks that `list` has at most `max` entries.
    pub(crate) fn entries<T>(field: &'static str, list: &[T], max: usize) -> Result<(), OverLimit> {
        if list.len() > max {
            return Err(OverLimit {
                field,
                max,
                unit: "entries",
            });
        }
        Ok(())
    }

    /// Checks that `text` has at most `max` characters, without counting them when its byte
    /// length already fits (a character is at least one byte).
    pub(crate) fn chars(field: &'static str, text: &str, max: usize) -> Result<(), OverLimit> {
        if text.len() > max && text.chars().count() > max {
            return Err(OverLimit {
                field,
                max,
                unit: "characters",
            });
        }
        Ok(())
    }
}

/// The characters a name may not hold, as inclusive ranges: those that hide or disguise text
/// when shown — control characters (Unicode's `Cc`), the Arabic letter mark, the Mongolian vowel
/// separator, zero-width characters and marks, bidirectional embeddings, overrides and isolates,
/// word joiners and invisible operators, the byte-order mark. The OpenAPI description states the
/// same set as a pattern built from this table.
pub const HIDDEN_CHARACTERS: [(char, char); 9] = [
    ('\u{0000}', '\u{001F}'),
    ('\u{007F}', '\u{009F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{2069}'),
    ('\u{FEFF}', '\u{FEFF}'),
];

/// Why a name (a worker's or a user's) is refused, if it is: blank, or holding one of the
/// [`HIDDEN_CHARACTERS`], which would let one name pass for another.
///
/// ```
/// use horde_core::name_problem;
/// assert_eq!(name_problem("my-worker"), None);
/// assert!(name_problem("   ").is_some());
/// assert!(name_problem("evil\u{202E}rekrow").is_some());
/// assert!(name_problem("a\u{200B}b").is_some());
/// ```
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        return Some("must not be blank");
    }
    let hidden = |c: char| {
        HIDDEN_CHARACTERS
            .iter()
            .any(|&(low, high)| (low..=high).contains(&c))
    };
    if name.chars().any(hidden) {
        return Some("must not contain control, bidirectional-override or zero-width characters");
    }
    None
}

/// Sorts and de-duplicates names in O(n log n), so that lookups can binary-search them.
pub(crate) fn normalize_names(names: &mut Vec<std::sync::Arc<str>>) {
    names.sort_unstable();
    names.dedup();
}

#[cfg(test)]
mod hidden_tests {
    use super::*;

    #[test]
    fn the_table_holds_every_control_character() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            if c.is_control() {
                assert!(name_problem(&format!("a{c}b")).is_some(), "{:?}", c);
            }
        }
        assert_eq!(
            name_problem("a\u{00A0}b"),
            None,
            "a no-break space is visible"
        );
    }
}
