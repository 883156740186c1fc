//! Text the simulated agents write: prompts, what a model answers (the same for the same model
//! and prompt, as greedy sampling on any honest backend), unrelated fluent text, canaries.

use std::hash::{DefaultHasher, Hash, Hasher};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The spot checks' prompts of the simulation.
pub(crate) const CANARIES: [&str; 8] = [
    "The lighthouse keeper had not spoken to anyone in three weeks when",
    "Write a short description of how bread rises.",
    "The three most important things to check before a long ride are",
    "Question: Why do leaves change colour in autumn?\nAnswer:",
    "Once upon a time, in a village at the edge of a salt marsh,",
    "The detective looked at the muddy boots by the door and said,",
    "Explain in plain words what a database index is.",
    "Captain's log, day forty. The wind has turned against us again.",
];

const WORDS: [&str; 64] = [
    "the", "river", "old", "light", "house", "stone", "quiet", "morning", "walked", "across",
    "field", "under", "bright", "sky", "where", "children", "played", "near", "garden", "wall",
    "and", "a", "small", "dog", "barked", "at", "passing", "cart", "while", "baker", "opened",
    "his", "shop", "smell", "of", "warm", "bread", "filled", "street", "people", "stopped", "to",
    "talk", "about", "weather", "harvest", "news", "from", "city", "letters", "arrived", "late",
    "every", "week", "clock", "tower", "struck", "noon", "bells", "rang", "over", "hills", "sea",
    "wind",
];

/// `words` words of text on `topic`.
pub(crate) fn prompt(topic: u32, words: u32) -> String {
    prose(u64::from(topic), words as usize * 5)
}

/// What `model` answers to `prompt` in `tokens` tokens (4 characters each): the same for the
/// same model and prompt.
pub(crate) fn answer(model: &str, prompt: &str, tokens: u32) -> String {
    let mut hasher = DefaultHasher::new();
    model.hash(&mut hasher);
    prompt.hash(&mut hasher);
    prose(hasher.finish(), tokens as usize * 4)
}

/// Fluent text of `tokens` tokens about nothing the prompt asked.
pub(crate) fn unrelated(seed: u64, tokens: u32) -> String {
    prose(seed ^ 0x5EED_5EED, tokens as usize * 4)
}

fn prose(seed: u64, chars: usize) -> String {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut text = String::with_capacity(chars + 16);
    while text.len() < chars {
        text.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
        text.push(' ');
    }
    text.truncate(chars);
    text
}
