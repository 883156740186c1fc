//! Reward rules: what a generation and an hour online are worth.
//!
//! The formulas and AI Horde's constants are in [`EconomyConfig`]; `docs/economy.md` gives the
//! reasoning. Everything computes in `f64` and rounds once to a hundredth of a kudos, so the
//! same inputs always give the same [`Kudos`].

use serde::{Deserialize, Serialize};

use crate::reference::ModelReference;
use crate::Kudos;

/// Where a model's size comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSizePolicy {
    /// The horde's model reference; a model not in it counts as `unknown_model_size_b`. A
    /// worker's own name for its model never raises its pay. The default.
    Reference,
    /// The size stated in the name (`13B`, `8x7B`), capped at the largest model of the
    /// reference: for private hordes whose workers are trusted.
    Name,
}

/// Which token count stands for the context in the context multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextBasis {
    /// AI Horde's rule: the prompt's estimated tokens, capped at the request's `max_length`.
    /// It under-rewards long prompts, but it is what existing hordes pay. The default.
    PromptCappedAtMaxLength,
    /// The prompt's estimated tokens, capped at the request's `max_context_length`: rewards the
    /// work of reading long prompts.
    Prompt,
}

/// The economy's constants. `Default` gives AI Horde's current values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EconomyConfig {
    /// Where model sizes come from. Default [`ModelSizePolicy::Reference`].
    pub model_size: ModelSizePolicy,
    /// Size (billions of parameters) of a model the reference does not know (or, under the
    /// `name` policy, whose name states none). Default `1`: a name unknown to the horde pays
    /// like the smallest models.
    pub unknown_model_size_b: f64,
    /// Characters per token in the token estimate. Default `4`.
    pub chars_per_token: u32,
    /// Fewest tokens a generation is counted as. Default `20`.
    pub min_tokens: u32,
    /// Sizes at or below this get no size bonus in `(max(P, base)/base)^exp`. Default `13`.
    pub size_bonus_base_b: f64,
    /// Exponent of the size bonus. Default `0.2`.
    pub size_bonus_exponent: f64,
    /// Divisor of the size term `P / divisor`. Default `125`.
    pub size_divisor: f64,
    /// Which tokens count as context. Default [`ContextBasis::PromptCappedAtMaxLength`].
    pub context_basis: ContextBasis,
    /// Seconds online per uptime award. Default `600`.
    pub uptime_interval_secs: u64,
    /// A worker counts as online if it checked in within this many seconds. Default `300`.
    pub online_timeout_secs: u64,
    /// Base of the uptime award. Default `25`.
    pub uptime_base: f64,
    /// Uptime award per 1024 tokens of the worker's `max_context_length`. Default `15`.
    pub uptime_per_1k_context: f64,
    /// Size reference of the uptime multiplier `max(P / ref, floor)`. Default `7`.
    pub uptime_size_ref_b: f64,
    /// Floor of the uptime size multiplier. Default `0.25`.
    pub uptime_size_floor: f64,
}

impl Default for EconomyConfig {
    fn default() -> Self {
        EconomyConfig {
            model_size: ModelSizePolicy::Reference,
            unknown_model_size_b: 1.0,
            chars_per_token: 4,
            min_tokens: 20,
            size_bonus_base_b: 13.0,
            size_bonus_exponent: 0.2,
            size_divisor: 125.0,
            context_basis: ContextBasis::PromptCappedAtMaxLength,
            uptime_interval_secs: 600,
            online_timeout_secs: 300,
            uptime_base: 25.0,
            uptime_per_1k_context: 15.0,
            uptime_size_ref_b: 7.0,
            uptime_size_floor: 0.25,
        }
    }
}

impl EconomyConfig {
    /// The size in billions of parameters that `model` is paid as, under the policy.
    ///
    /// ```
    /// use horde_core::reference::{ModelReference, ReferenceEntry};
    /// use horde_core::{EconomyConfig, ModelSizePolicy};
    /// let reference = ModelReference::new(vec![ReferenceEntry {
    ///     name: "OPT-13B-Erebus".into(), params_b: 13.0, context: None, aliases: vec![],
    ///     ..ReferenceEntry::default()
    /// }])?;
    /// let mut economy = EconomyConfig::default();
    /// assert_eq!(economy.size_of(&reference, "KoboldAI/OPT-13B-Erebus"), 13.0);
    /// assert_eq!(economy.size_of(&reference, "evil/Totally-Real-99999B"), 1.0);
    /// economy.model_size = ModelSizePolicy::Name;
    /// assert_eq!(economy.size_of(&reference, "evil/Totally-Real-99999B"), 13.0);
    /// # Ok::<(), horde_core::reference::ReferenceError>(())
    /// ```
    pub fn size_of(&self, reference: &ModelReference, model: &str) -> f64 {
        self.size_under(self.model_size, reference, model)
    }

    /// The size `model` is paid as under `policy` (whatever [`EconomyConfig::model_size`]
    /// says): for a user whose custom models the operator trusts by name.
    pub fn size_under(
        &self,
        policy: ModelSizePolicy,
        reference: &ModelReference,
        model: &str,
    ) -> f64 {
        match policy {
            ModelSizePolicy::Reference => reference
                .lookup(model)
                .map_or(self.unknown_model_size_b, |entry| entry.params_b),
            ModelSizePolicy::Name => {
                let cap = match reference.largest_b() {
                    largest if largest > 0.0 => largest,
                    _ => f64::INFINITY,
                };
                parse_model_size_b(model).map_or(self.unknown_model_size_b, |p| p.min(cap))
            }
        }
    }

    /// Estimated tokens of `text`: `ceil(chars / chars_per_token)`, at least `min_tokens`, at
    /// most `max_length` (a worker cannot be paid for more than was asked).
    pub fn generation_tokens(&self, text: &str, max_length: u32) -> u32 {
        self.estimate_tokens(text)
            .max(self.min_tokens)
            .min(max_length)
    }

    /// `ceil(chars / chars_per_token)` of `text`: how the horde counts a text's tokens.
    ///
    /// ```
    /// use horde_core::EconomyConfig;
    /// let economy = EconomyConfig::default();
    /// assert_eq!(economy.estimate_tokens(""), 0);
    /// assert_eq!(economy.estimate_tokens("abcde"), 2);
    /// ```
    pub fn estimate_tokens(&self, text: &str) -> u32 {
        let chars = text.chars().count() as u64;
        let per = u64::from(self.chars_per_token.max(1));
        u32::try_from(chars.div_ceil(per)).unwrap_or(u32::MAX)
    }

    /// The context tokens of a prompt that the context multiplier sees.
    pub fn context_tokens(&self, prompt: &str, max_length: u32, max_context_length: u32) -> u32 {
        let prompt_tokens = self.estimate_tokens(prompt).max(self.min_tokens);
        match self.context_basis {
            ContextBasis::PromptCappedAtMaxLength => prompt_tokens.min(max_length),
            ContextBasis::Prompt => prompt_tokens.min(max_context_length),
        }
    }

    /// The kudos a generation of `tokens` tokens by a `model_size_b` model earns, with
    /// `context_tokens` of context:
    /// `tokens × (max(P, 13)/13)^0.2 × P/125 × clamp(1.2 + 2.2^log2(ctx/1024), 0.1, 30)`,
    /// rounded to a hundredth.
    ///
    /// ```
    /// use horde_core::{EconomyConfig, Kudos};
    /// let economy = EconomyConfig::default();
    /// assert_eq!(economy.generation_reward(13.0, 80, 80), "10.44".parse::<Kudos>()?);
    /// # Ok::<(), horde_core::ParseKudosError>(())
    /// ```
    pub fn generation_reward(&self, model_size_b: f64, tokens: u32, context_tokens: u32) -> Kudos {
        let p = model_size_b.max(0.0);
        let base = self.size_bonus_base_b;
        let size_bonus = (p.max(base) / base).powf(self.size_bonus_exponent);
        let ctx = f64::from(context_tokens.max(1));
        let ctx_mult = (1.2 + 2.2_f64.powf((ctx / 1024.0).log2())).clamp(0.1, 30.0);
        round_to_hundredth(f64::from(tokens) * size_bonus * p / self.size_divisor * ctx_mult)
    }

    /// The award for one uptime interval of a worker serving a `model_size_b` model with
    /// `max_context_length`: `(25 + 15 × ctx/1024) × max(P/7, 0.25)`, rounded to a hundredth.
    pub fn uptime_reward(&self, model_size_b: f64, max_context_length: u32) -> Kudos {
        let base =
            self.uptime_base + self.uptime_per_1k_context * f64::from(max_context_length) / 1024.0;
        let mult = (model_size_b / self.uptime_size_ref_b).max(self.uptime_size_floor);
        round_to_hundredth(base * mult)
    }
}

fn round_to_hundredth(value: f64) -> Kudos {
    // 1e-9 absorbs binary noise such as 10.444999999 for an exact 10.445.
    let hundredths = (value * 100.0 + 1e-9).round();
    Kudos::from_f64(hundredths / 100.0).unwrap_or(Kudos::ZERO)
}

/// The parameter count in billions stated in a model name, if any.
///
/// Looks for a number followed by `b`/`B` (billions) or `m`/`M` (millions) that stands as its
/// own token — preceded by the start or a non-alphanumeric character and followed by the end or
/// a non-alphanumeric character — and for mixture-of-experts sizes `8x7B` (= 56). Quantisation
/// suffixes such as `Q4_K_M` never match. The first match wins.
///
/// ```
/// use horde_core::reward::parse_model_size_b;
/// assert_eq!(parse_model_size_b("koboldcpp/Llama-3-8B-Instruct.Q4_K_M"), Some(8.0));
/// assert_eq!(parse_model_size_b("Mixtral-8x7B"), Some(56.0));
/// assert_eq!(parse_model_size_b("gpt2"), None);
/// ```
pub fn parse_model_size_b(model: &str) -> Option<f64> {
    let bytes = model.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let token_start = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        if token_start && bytes[start].is_ascii_digit() {
            if let Some(size) = size_at(&bytes[start..]) {
                return Some(size);
            }
        }
        start += 1;
    }
    None
}

/// Parses `N[xM](b|m)` at the start of `s`, ending at a token boundary.
fn size_at(s: &[u8]) -> Option<f64> {
    let (first, rest) = number_at(s)?;
    let (experts, size, rest) = match rest.split_first() {
        Some((b'x' | b'X', after)) => {
            let (size, rest) = number_at(after)?;
            (first, size, rest)
        }
        _ => (1.0, first, rest),
    };
    let (unit, rest) = rest.split_first()?;
    let divisor = match unit {
        b'b' | b'B' => 1.0,
        b'm' | b'M' => 1000.0,
        _ => return None,
    };
    if rest.first().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let billions = experts * size / divisor;
    // Absurd sizes (a thousand-digit number, 10^5 B and more) are treated as unstated.
    (billions.is_finite() && billions < 100_000.0).then_some(billions)
}

/// A decimal number (`13`, `6.7`) at the start of `s`, and what follows it.
fn number_at(s: &[u8]) -> Option<(f64, &[u8])> {
    let int_len = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 {
        return None;
    }
    let mut len = int_len;
    if s.get(len) == Some(&b'.') {
        let frac = s[len + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if frac > 0 {
            len += 1 + frac;
        }
    }
    let text = std::str::from_utf8(&s[..len]).ok()?;
    Some((text.parse().ok()?, &s[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_from_100000b_up_are_unstated() {
        assert_eq!(parse_model_size_b("Big-99999B"), Some(99_999.0));
        assert_eq!(parse_model_size_b("Huge-100000B"), None);
        // A point without digits after it ends the number: "13." is not "13".
        assert_eq!(parse_model_size_b("Odd-13.B"), None);
        assert_eq!(parse_model_size_b("Ok-13.5B"), Some(13.5));
    }

    #[test]
    fn hundredths_round_half_up_despite_binary_noise() {
        // 1.005 is 100.49999999999999 hundredths in binary: still rounds up.
        assert_eq!(round_to_hundredth(1.005), Kudos::from_milli(1_010));
        assert_eq!(round_to_hundredth(10.445), Kudos::from_milli(10_450));
        assert_eq!(round_to_hundredth(10.444), Kudos::from_milli(10_440));
        assert_eq!(round_to_hundredth(f64::NAN), Kudos::ZERO);
    }

    fn k(s: &str) -> Kudos {
        s.parse().unwrap()
    }

    #[test]
    fn model_sizes_from_names() {
        let huge = format!("x-{}B", "9".repeat(400));
        let cases = [
            ("KoboldAI/OPT-13B-Erebus", Some(13.0)),
            ("koboldcpp/Llama-3-8B-Instruct.Q4_K_M", Some(8.0)),
            ("Mixtral-8x7B", Some(56.0)),
            ("mistralai/Mixtral-8x22B-v0.1", Some(176.0)),
            ("KoboldAI/fairseq-dense-6.7B", Some(6.7)),
            // Two decimals: never misread as the digits after the point.
            ("org/model-6.75B", Some(6.75)),
            ("org/model-0.35b-chat", Some(0.35)),
            ("EleutherAI/gpt-neo-2.7b", Some(2.7)),
            ("aphrodite/meta-llama/Llama-3.1-70b-instruct", Some(70.0)),
            ("facebook/opt-350m", Some(0.35)),
            ("Qwen2.5-72B-Instruct", Some(72.0)),
            ("gpt2", None),
            ("Q4_K_M", None),
            ("model-13", None),
            ("bloom-1b7", None),
            ("x-999999999B", None),
            (huge.as_str(), None),
            ("", None),
        ];
        for (name, expected) in cases {
            assert_eq!(parse_model_size_b(name), expected, "{name}");
        }
        let economy = EconomyConfig {
            model_size: ModelSizePolicy::Name,
            ..EconomyConfig::default()
        };
        assert_eq!(economy.size_of(&ModelReference::default(), "gpt2"), 1.0);
        assert_eq!(economy.size_of(&ModelReference::default(), "x-70B"), 70.0);
    }

    /// AI Horde's worked examples: a prompt longer than the output, so the context counted is
    /// the output's `max_length`.
    #[test]
    fn worked_examples() {
        let e = EconomyConfig::default();
        let cases = [
            (13.0, 80, "10.44"),
            (13.0, 512, "88.1"),
            (7.0, 80, "5.62"),
            (7.0, 512, "47.44"),
            (70.0, 80, "78.73"),
            (70.0, 512, "664.31"),
        ];
        let long_prompt = "x".repeat(40_000);
        for (size, tokens, expected) in cases {
            let ctx = e.context_tokens(&long_prompt, tokens, 8192);
            assert_eq!(ctx, tokens);
            let text = "y".repeat(tokens as usize * 4);
            let counted = e.generation_tokens(&text, tokens);
            assert_eq!(
                e.generation_reward(size, counted, ctx),
                k(expected),
                "{size}B {tokens}"
            );
        }
    }

    #[test]
    fn token_estimate_bounds() {
        let e = EconomyConfig::default();
        assert_eq!(e.generation_tokens("", 80), 20);
        assert_eq!(e.generation_tokens("abcde", 80), 20);
        assert_eq!(e.generation_tokens(&"a".repeat(401), 512), 101);
        assert_eq!(e.generation_tokens(&"a".repeat(10_000), 80), 80);
        assert_eq!(e.generation_tokens("", 16), 16);
        // Characters, not bytes.
        assert_eq!(e.generation_tokens(&"é".repeat(400), 512), 100);
    }

    #[test]
    fn uncapped_context_pays_for_long_prompts() {
        let e = EconomyConfig {
            context_basis: ContextBasis::Prompt,
            ..EconomyConfig::default()
        };
        let prompt = "x".repeat(4096 * 4);
        assert_eq!(e.context_tokens(&prompt, 80, 8192), 4096);
        assert_eq!(e.context_tokens(&prompt, 80, 2048), 2048);
        let capped = EconomyConfig::default().generation_reward(13.0, 80, 80);
        assert!(e.generation_reward(13.0, 80, 4096) > capped);
    }

    #[test]
    fn uptime_award() {
        let e = EconomyConfig::default();
        // (25 + 15 × 2) × 13/7 = 102.142…
        assert_eq!(e.uptime_reward(13.0, 2048), k("102.14"));
        // Tiny models get the floor multiplier: 55 × 0.25.
        assert_eq!(e.uptime_reward(0.35, 2048), k("13.75"));
        assert_eq!(e.uptime_reward(7.0, 1024), k("40"));
    }
}
