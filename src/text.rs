//! Text normalization and word segmentation (SPEC §5).
//!
//! Event text and query words go through exactly the same steps, so that a
//! query word matches a text word when both normalize to the same string:
//!
//! 1. split into Unicode word segments (UAX #29) that hold a letter or digit;
//! 2. NFKC;
//! 3. drop an English possessive `'s`/`’s` at the end of the word;
//! 4. delete dots and apostrophes inside the word (`U.S.` = `US`);
//! 5. full Unicode case folding;
//! 6. canonical decomposition, removal of combining marks, recomposition.
//!
//! Hyphens split words because UAX #29 already breaks at them.
//!
//! One deliberate exception to step 6: the kana voicing marks U+3099/U+309A
//! are kept. They are combining marks, but removing them would merge が with
//! か (different syllables, not "diacritics" in the sense an analyst means),
//! and Japanese queries would match unrelated words.
//!
//! The case-sensitive form used by `{…}` keeps case and marks: NFKC plus
//! steps 3 and 4 only.
//!
//! Every token remembers its byte span in the original text, so matches can
//! be reported as offsets into the field the analyst sees.
//!
//! This module does no IO and never panics on any input.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// One word of a field: where it is in the original text and where its
/// normalized form is in [`Tokens::buf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tok {
    /// Byte offset of the word in the original text.
    pub start: u32,
    /// Byte offset one past the end of the word in the original text.
    pub end: u32,
    norm_start: u32,
    norm_end: u32,
}

/// The words of one text, normalized. Reusable: [`Tokens::clear`] keeps the
/// allocations, which matters on the per-event hot path.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    buf: String,
    toks: Vec<Tok>,
}

impl Tokens {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.toks.clear();
    }

    pub fn len(&self) -> usize {
        self.toks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.toks.is_empty()
    }

    pub fn toks(&self) -> &[Tok] {
        &self.toks
    }

    /// The normalized form of token `i`.
    pub fn norm(&self, i: usize) -> &str {
        let t = &self.toks[i];
        &self.buf[t.norm_start as usize..t.norm_end as usize]
    }

    /// Iterate over the normalized words.
    pub fn words(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.toks.len()).map(move |i| self.norm(i))
    }

    /// Segment `text` and append its words. Offsets are relative to `text`;
    /// texts longer than 4 GiB are truncated (events are capped far below).
    pub fn push_text(&mut self, text: &str) {
        let text = truncate_to_u32(text);
        for (start, seg) in text.unicode_word_indices() {
            let norm_start = self.buf.len();
            normalize_word_into(seg, &mut self.buf);
            if self.buf.len() == norm_start {
                continue;
            }
            self.toks.push(Tok {
                start: start as u32,
                end: (start + seg.len()) as u32,
                norm_start: norm_start as u32,
                norm_end: self.buf.len() as u32,
            });
        }
    }
}

fn truncate_to_u32(text: &str) -> &str {
    if text.len() <= u32::MAX as usize {
        return text;
    }
    let mut end = u32::MAX as usize;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Normalize `text` into its list of words (convenience for queries, tests).
pub fn words(text: &str) -> Vec<String> {
    let mut t = Tokens::new();
    t.push_text(text);
    t.words().map(str::to_owned).collect()
}

/// The case-sensitive forms of the words of `text` (for `{…}`), with spans.
pub fn exact_words(text: &str) -> Vec<(usize, usize, String)> {
    text.unicode_word_indices()
        .filter_map(|(start, seg)| {
            let w = exact_form(seg);
            (!w.is_empty()).then(|| (start, start + seg.len(), w))
        })
        .collect()
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}')
}

/// Strip a trailing English possessive (`'s`, `’s`, any case), but only when
/// something remains before it.
fn strip_possessive(w: &str) -> &str {
    let mut it = w.char_indices().rev();
    if let (Some((_, s)), Some((i, a))) = (it.next(), it.next()) {
        if (s == 's' || s == 'S') && is_apostrophe(a) && i > 0 {
            return &w[..i];
        }
    }
    w
}

/// Kana voicing marks are kept (see the module docs).
fn is_removable_mark(c: char) -> bool {
    is_combining_mark(c) && !matches!(c, '\u{3099}' | '\u{309A}')
}

/// Append the normalized form of one word segment to `out`.
pub fn normalize_word_into(seg: &str, out: &mut String) {
    if seg.is_ascii() {
        // Fast path, the bulk of English text: NFKC, case folding and mark
        // removal are all identity or ASCII lowercasing here.
        let w = strip_possessive(seg);
        out.extend(
            w.bytes()
                .filter(|&b| b != b'.' && b != b'\'')
                .map(|b| b.to_ascii_lowercase() as char),
        );
        return;
    }
    let nfkc: String = seg.nfkc().collect();
    let w = strip_possessive(&nfkc);
    let stripped = w.chars().filter(|&c| c != '.' && !is_apostrophe(c));
    let folded: String = caseless::Caseless::default_case_fold(stripped).collect();
    out.extend(folded.nfd().filter(|&c| !is_removable_mark(c)).nfc());
}

/// The normalized form of one word segment.
pub fn normalize_word(seg: &str) -> String {
    let mut s = String::new();
    normalize_word_into(seg, &mut s);
    s
}

/// The case-sensitive form of one word segment: NFKC, possessive dropped,
/// dots and apostrophes deleted; case and marks kept.
pub fn exact_form(seg: &str) -> String {
    if seg.is_ascii() {
        return strip_possessive(seg)
            .chars()
            .filter(|&c| c != '.' && c != '\'')
            .collect();
    }
    let nfkc: String = seg.nfkc().collect();
    strip_possessive(&nfkc)
        .chars()
        .filter(|&c| c != '.' && !is_apostrophe(c))
        .collect()
}

/// Lower-case comparison key for keyword field values ("equal ignoring case").
pub fn keyword_key(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let nfkc: String = s.nfkc().collect();
    caseless::default_case_fold_str(&nfkc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[&str]) {
        assert_eq!(words(input), expected, "input: {input:?}");
    }

    #[test]
    fn normalization_table() {
        // (input, expected words): one row per statement of SPEC §5.
        let table: &[(&str, &[&str])] = &[
            // case folding
            ("LAVROV Lavrov lavrov", &["lavrov", "lavrov", "lavrov"]),
            // diacritics: é = e, ё = е
            ("Café résumé", &["cafe", "resume"]),
            ("Ёлка ещё", &["елка", "еще"]),
            // dots inside a word vanish
            ("U.S. forces", &["us", "forces"]),
            ("the U.S.", &["the", "us"]),
            // apostrophes vanish, possessive 's dropped
            ("Russia's ministry", &["russia", "ministry"]),
            ("Russia’s ministry", &["russia", "ministry"]),
            ("RUSSIA'S", &["russia"]),
            ("don't", &["dont"]),
            ("O'Neill", &["oneill"]),
            // hyphens split words
            ("three-way drills", &["three", "way", "drills"]),
            ("nuclear-capable", &["nuclear", "capable"]),
            // punctuation-only segments are not words
            ("— “quoted” —", &["quoted"]),
            // NFKC: full-width letters and digits
            ("ＵＳＡ １２３", &["usa", "123"]),
            // Unicode case folding beyond lowercase
            ("STRASSE straße", &["strasse", "strasse"]),
            // Russian
            ("МИД России заявил", &["мид", "россии", "заявил"]),
            // Korean: Hangul words stay whole, particles attached
            ("미국과 일본은", &["미국과", "일본은"]),
            // Japanese: ideographs are single-character segments (UAX #29)
            ("防衛省", &["防", "衛", "省"]),
            // kana voicing marks are kept: ガ stays distinct from カ
            ("ガス", &["ガス"]),
            // numbers stay whole
            ("1,000 troops 3.5%", &["1,000", "troops", "35"]),
        ];
        for (input, expected) in table {
            check(input, expected);
        }
    }

    #[test]
    fn spans_point_into_original_text() {
        let text = "Sergey Lavrov’s “warning” to the U.S.";
        let mut t = Tokens::new();
        t.push_text(text);
        let spans: Vec<&str> = t
            .toks()
            .iter()
            .map(|k| &text[k.start as usize..k.end as usize])
            .collect();
        assert_eq!(spans, ["Sergey", "Lavrov’s", "warning", "to", "the", "U.S"]);
        assert_eq!(t.norm(1), "lavrov");
    }

    #[test]
    fn exact_forms_keep_case() {
        let got: Vec<String> = exact_words("U.S. us Café")
            .into_iter()
            .map(|(_, _, w)| w)
            .collect();
        assert_eq!(got, ["US", "us", "Café"]);
    }

    #[test]
    fn keyword_key_ignores_case() {
        assert_eq!(keyword_key("Yonhap.co.KR"), "yonhap.co.kr");
        assert_eq!(keyword_key("ТАСС"), "тасс");
    }
}
