//! Looking at generated text: how much it says (entropy, for degenerate output) and how alike
//! two generations are (for spot checks). Pure functions over `&str`, linear in its length.

use std::collections::HashMap;

/// Texts shorter than this many characters are never judged degenerate: a short answer may
/// well be "Yes." or "!!!".
pub const DEGENERATE_MIN_CHARS: usize = 64;

/// The Shannon entropy of `text`'s characters, in bits per character (0 for an empty text).
///
/// ```
/// use horde_core::text::entropy_bits;
/// assert_eq!(entropy_bits("aaaaaaaa"), 0.0);
/// assert!((entropy_bits("abababab") - 1.0).abs() < 1e-9);
/// assert!(entropy_bits("The quick brown fox jumps over the lazy dog.") > 4.0);
/// ```
pub fn entropy_bits(text: &str) -> f64 {
    let mut counts: HashMap<char, u32> = HashMap::new();
    let mut total = 0u32;
    for c in text.chars() {
        *counts.entry(c).or_default() += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let total = f64::from(total);
    counts
        .values()
        .map(|&n| {
            let p = f64::from(n) / total;
            -p * p.log2()
        })
        .sum()
}

/// Returns true if and only if `text` is degenerate: at least [`DEGENERATE_MIN_CHARS`] long
/// and carrying fewer than `min_bits` bits per character (one character repeated, or two or
/// three in turn). `min_bits` of 0 never judges anything degenerate.
///
/// ```
/// use horde_core::text::is_degenerate;
/// assert!(is_degenerate(&"g".repeat(2048), 2.0));
/// assert!(is_degenerate(&"ab".repeat(100), 2.0));
/// assert!(!is_degenerate("aaaa", 2.0), "too short to judge");
/// let prose = "It was a bright cold day in April, and the clocks were striking thirteen.";
/// assert!(!is_degenerate(prose, 2.0));
/// ```
pub fn is_degenerate(text: &str, min_bits: f64) -> bool {
    min_bits > 0.0
        && text.len() >= DEGENERATE_MIN_CHARS
        && text.chars().count() >= DEGENERATE_MIN_CHARS
        && entropy_bits(text) < min_bits
}

/// The first `chars` characters of `text` (all of it when shorter), without copying.
///
/// ```
/// use horde_core::text::prefix;
/// assert_eq!(prefix("héllo", 2), "hé");
/// assert_eq!(prefix("hi", 10), "hi");
/// ```
pub fn prefix(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Words compared by [`similarity`]: the first this many of each text.
pub const SIMILARITY_WORDS: usize = 64;

/// How alike two generations are, from 0 (nothing in common) to 1 (the same words in the same
/// order): the Dice coefficient of the two texts' multisets of adjacent word pairs, over their
/// first [`SIMILARITY_WORDS`] words, ignoring case and punctuation.
///
/// Two backends running the same model greedily agree word for word until a rounding
/// difference picks another token; after that they still share most word pairs of the topic.
/// An unrelated text shares only the commonest pairs. A text of fewer than two words is
/// compared word for word.
///
/// ```
/// use horde_core::text::similarity;
/// let a = "The cat sat on the mat and looked at the door.";
/// assert_eq!(similarity(a, a), 1.0);
/// assert_eq!(similarity(a, "the CAT sat, on the mat and looked at the door"), 1.0);
/// let diverged = "The cat sat on the mat and fell asleep in the sun.";
/// assert!(similarity(a, diverged) > 0.4);
/// assert!(similarity(a, "Stock prices fell sharply on Monday morning.") < 0.1);
/// assert_eq!(similarity("", ""), 1.0);
/// ```
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.len() < 2 || b.len() < 2 {
        return f64::from(u8::from(a == b));
    }
    let (pa, pb) = (pairs(&a), pairs(&b));
    let shared: u32 = pa
        .iter()
        .map(|(pair, &n)| n.min(pb.get(pair).copied().unwrap_or(0)))
        .sum();
    let total = (a.len() - 1 + b.len() - 1) as f64;
    2.0 * f64::from(shared) / total
}

/// How often each pair of adjacent words occurs in `words`.
fn pairs(words: &[String]) -> HashMap<(&str, &str), u32> {
    let mut counts = HashMap::new();
    for pair in words.windows(2) {
        *counts
            .entry((pair[0].as_str(), pair[1].as_str()))
            .or_default() += 1;
    }
    counts
}

/// The first [`SIMILARITY_WORDS`] words of `text`, lowercased, split at anything that is not
/// a letter or a digit.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(SIMILARITY_WORDS)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn similarity_is_symmetric_and_bounded(a in ".{0,300}", b in ".{0,300}") {
            let s = similarity(&a, &b);
            prop_assert!((0.0..=1.0).contains(&s));
            prop_assert!((s - similarity(&b, &a)).abs() < 1e-12);
            prop_assert_eq!(similarity(&a, &a), 1.0);
        }

        #[test]
        fn entropy_is_bounded_by_the_alphabet(text in ".{1,300}") {
            let distinct = text.chars().collect::<std::collections::HashSet<_>>().len();
            let h = entropy_bits(&text);
            prop_assert!(h >= 0.0);
            prop_assert!(h <= (distinct as f64).log2() + 1e-9);
        }
    }

    #[test]
    fn prose_in_other_scripts_is_not_degenerate() {
        for text in [
            "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。",
            "Мой дядя самых честных правил, когда не в шутку занемог, он уважать себя заставил и лучше выдумать не мог.",
            "fn main() { let x = vec![1, 2, 3]; println!(\"{:?}\", x.iter().sum::<i32>()); }",
        ] {
            assert!(!is_degenerate(text, 2.0), "{text}");
        }
    }
}
