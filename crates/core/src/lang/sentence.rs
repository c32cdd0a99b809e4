//! Sentences of a field, for `NEAR/s` and `ONEAR/s` (SPEC §5): the UAX #29
//! sentence boundaries of the text, mapped onto the word positions that
//! [`crate::lang::text`] found in it.
//!
//! Computed on demand, per event and per field, only when a rule with a
//! `/s` operator is verified: sentence segmentation costs about as much as
//! word segmentation, and most events never need it.
//!
//! Invariants: the sentences are in text order and each holds at least one
//! word; a word belongs to the sentence its first byte is in. The title and
//! the body are segmented separately, so no sentence spans both. UAX #29
//! knows no abbreviations: "the U.S. Navy" ends a sentence after "U.S.".
//!
//! Pure: no IO, and no input makes it panic.

use unicode_segmentation::UnicodeSegmentation;

use crate::lang::text::Tok;

/// One sentence: its first word's position and its bytes in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sentence {
    /// Index (into the field's words) of its first word.
    pub first_word: u32,
    /// Byte range of the sentence in the original text.
    pub start: u32,
    pub end: u32,
}

/// The sentences of `text` that hold a word of `toks` (the words of that
/// text, in order), into `out` (cleared first).
pub fn sentences(text: &str, toks: &[Tok], out: &mut Vec<Sentence>) {
    out.clear();
    let mut next = 0usize;
    for (start, s) in text.split_sentence_bound_indices() {
        let end = start + s.len();
        let first = next;
        while next < toks.len() && (toks[next].start as usize) < end {
            next += 1;
        }
        if next > first {
            out.push(Sentence {
                first_word: first as u32,
                start: start as u32,
                end: end as u32,
            });
        }
    }
}

/// The number of the sentence that holds word `pos` (an index into `sents`).
pub fn sentence_of(sents: &[Sentence], pos: u32) -> usize {
    sents
        .partition_point(|s| s.first_word <= pos)
        .saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::text::Tokens;

    /// The words of `text`, grouped by sentence.
    fn check(text: &str, expected: &[&[&str]]) {
        let mut t = Tokens::new();
        t.push_text(text);
        let mut sents = Vec::new();
        sentences(text, t.toks(), &mut sents);
        let mut got: Vec<Vec<String>> = vec![Vec::new(); sents.len()];
        for i in 0..t.len() {
            got[sentence_of(&sents, i as u32)].push(t.norm(i).to_owned());
        }
        assert_eq!(got, expected, "{text:?}");
        for s in &sents {
            assert!(
                text.is_char_boundary(s.start as usize) && text.is_char_boundary(s.end as usize)
            );
        }
    }

    #[test]
    fn sentence_table() {
        check("", &[]);
        check("   ", &[]);
        check("Lavrov spoke.", &[&["lavrov", "spoke"]]);
        check(
            "Seoul protested. Japan held a drill!  Why? Nobody knows",
            &[
                &["seoul", "protested"],
                &["japan", "held", "a", "drill"],
                &["why"],
                &["nobody", "knows"],
            ],
        );
        // a lower-case word after a full stop does not start a sentence
        check(
            "It rose 3.5 pct. in may.",
            &[&["it", "rose", "35", "pct", "in", "may"]],
        );
        // UAX #29 has no abbreviations
        check(
            "The U.S. Navy sailed.",
            &[&["the", "us"], &["navy", "sailed"]],
        );
        // no words between boundaries: no sentence
        check("A. ... B.", &[&["a"], &["b"]]);
        check(
            "Лавров заявил. Захарова добавила.",
            &[&["лавров", "заявил"], &["захарова", "добавила"]],
        );
        check(
            "日米韓が訓練した。北朝鮮は反発した。",
            &[
                &["日", "米", "韓", "が", "訓", "練", "し", "た"],
                &["北", "朝", "鮮", "は", "反", "発", "し", "た"],
            ],
        );
        check(
            "미국이 말했다. 한국은 침묵했다.",
            &[&["미국이", "말했다"], &["한국은", "침묵했다"]],
        );
    }
}
