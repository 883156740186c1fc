//! Stop sequences, ended as KoboldCpp ends them: the text stops right after the first stop
//! sequence and keeps it. OpenAI-compatible servers drop the sequence they stopped at (and do
//! not say which), so the worker does not send them `stop`: it watches the text itself and
//! ends the stream there, and a horde's requester gets the same ending from either backend.

/// The end (in bytes) of the first stop sequence in `text` that ends after byte `new_from`
/// (the text before it was checked already).
pub(super) fn first_stop(text: &str, new_from: usize, stops: &[String]) -> Option<usize> {
    let longest = stops.iter().map(String::len).max()?;
    let mut start = new_from
        .saturating_sub(longest.saturating_sub(1))
        .min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    stops
        .iter()
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| Some(start + text[start..].find(stop.as_str())? + stop.len()))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_text_ends_after_the_first_stop_sequence() {
        let list = stops(&["\n###", "END"]);
        assert_eq!(first_stop("a b\n### c END", 0, &list), Some(7));
        assert_eq!(first_stop("no stop here", 0, &list), None);
        assert_eq!(first_stop("anything", 0, &[]), None);
        assert_eq!(first_stop("anything", 0, &stops(&[""])), None);
    }

    #[test]
    fn a_stop_split_across_pieces_is_found() {
        let list = stops(&["\n###"]);
        // "\n#" arrived before; "##" is the new piece.
        assert_eq!(first_stop("story\n###", 7, &list), Some(9));
        // Multi-byte text before the new piece.
        assert_eq!(first_stop("é\n###", 4, &list), Some(6));
    }
}
