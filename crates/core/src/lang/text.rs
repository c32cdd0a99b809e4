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
//! Segmentation has three paths that give the same words: ASCII text
//! through a byte scanner, text in the common scripts through [`fast`]
//! (classes by range), and everything else through unicode-segmentation.
//! Normalization likewise has a per-character table for the common scripts
//! and the general path for the rest. [`reference`] is the general path
//! alone, the reference the differential tests hold the others to.
//!
//! This module does no IO and never panics on any input.

mod fast;

use std::sync::OnceLock;

use unicode_normalization::char::{canonical_combining_class, is_combining_mark};
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
        self.push_with(text, true);
    }

    fn push_with(&mut self, text: &str, fast: bool) {
        let text = truncate_to_u32(text);
        chunked_words(
            text,
            &mut |start, seg| {
                let norm_start = self.buf.len();
                normalize_word_into(seg, &mut self.buf);
                if self.buf.len() == norm_start {
                    return;
                }
                self.toks.push(Tok {
                    start: start as u32,
                    end: (start + seg.len()) as u32,
                    norm_start: norm_start as u32,
                    norm_end: self.buf.len() as u32,
                });
            },
            fast,
        );
    }
}

/// Call `f(start, segment)` for every UAX #29 word segment of `text` that
/// holds a letter or digit, exactly as `text.unicode_word_indices()` would.
///
/// Most news text is ASCII, and a general UAX #29 segmenter spends most of
/// its time on character-class lookups that ASCII does not need. So the text
/// is cut into chunks at points where UAX #29 always breaks and that no rule
/// looks across: the start of an ASCII non-space character that follows
/// ASCII whitespace. (Breaks before and after whitespace are unconditional
/// there; the rules with context, WB6/7/11/12/15/16, only look at adjacent
/// non-ignorable characters, and whitespace stops them just as the start or
/// end of text does; WB4 would attach a following Extend or Format character
/// to the space, which is why the character after the cut must be ASCII.)
/// ASCII chunks go through [`ascii_words`], the others through
/// [`fast::words`], which hands what it does not know to
/// unicode-segmentation. The differential property tests (here and in
/// `crates/core/tests/engine/text_fast.rs`) hold the paths to the reference.
pub fn for_each_word(text: &str, mut f: impl FnMut(usize, &str)) {
    chunked_words(text, &mut f, true);
}

/// [`for_each_word`]; `fast` false sends non-ASCII chunks straight to
/// unicode-segmentation (the path before [`fast`], kept for the bench).
fn chunked_words(text: &str, f: &mut dyn FnMut(usize, &str), fast: bool) {
    let b = text.as_bytes();
    if text.is_ascii() {
        ascii_words(b, 0, f, text);
        return;
    }
    let mut chunk = 0;
    let mut ascii = true;
    let emit = |from: usize, to: usize, ascii: bool, f: &mut dyn FnMut(usize, &str)| {
        // Cut points are ASCII bytes, hence char boundaries.
        if ascii {
            ascii_words(&b[from..to], from, f, &text[from..to]);
        } else if fast {
            fast::words(&text[from..to], from, f);
        } else {
            for (start, seg) in text[from..to].unicode_word_indices() {
                f(from + start, seg);
            }
        }
    };
    for i in 0..b.len() {
        let c = b[i];
        if i > chunk && c.is_ascii() && !c.is_ascii_whitespace() && b[i - 1].is_ascii_whitespace() {
            emit(chunk, i, ascii, f);
            chunk = i;
            ascii = true;
        }
        if !c.is_ascii() {
            ascii = false;
        }
    }
    if chunk < b.len() {
        emit(chunk, b.len(), ascii, f);
    }
}

/// UAX #29 word segments holding a letter or digit, for ASCII text `b`
/// (`text` is the same bytes as a str); offsets are shifted by `base`.
///
/// For ASCII the word-break classes reduce to: letters (ALetter), digits
/// (Numeric), `_` (ExtendNumLet), `:` (MidLetter), `,` `;` (MidNum), `.`
/// (MidNumLet) and `'` (Single_Quote); everything else breaks. Letters,
/// digits and `_` join (WB5, WB8–10, WB13a/b); a single `:` `.` `'` joins two
/// letters (WB6/7), a single `,` `;` `.` `'` joins two digits (WB11/12).
fn ascii_words(b: &[u8], base: usize, f: &mut dyn FnMut(usize, &str), text: &str) {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let n = b.len();
    let mut i = 0;
    while i < n {
        if !word(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut alnum = b[i] != b'_';
        i += 1;
        while i < n {
            let c = b[i];
            if word(c) {
                alnum |= c != b'_';
                i += 1;
                continue;
            }
            if i + 1 < n {
                let (p, q) = (b[i - 1], b[i + 1]);
                let letters = matches!(c, b':' | b'.' | b'\'')
                    && p.is_ascii_alphabetic()
                    && q.is_ascii_alphabetic();
                let digits = matches!(c, b',' | b';' | b'.' | b'\'')
                    && p.is_ascii_digit()
                    && q.is_ascii_digit();
                if letters || digits {
                    i += 2;
                    continue;
                }
            }
            break;
        }
        if alnum {
            f(base + start, &text[start..i]);
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
    let mut out = Vec::new();
    for_each_word(text, |start, seg| {
        let w = exact_form(seg);
        if !w.is_empty() {
            out.push((start, start + seg.len(), w));
        }
    });
    out
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

/// First code point of the per-character table.
const TABLE_LO: u32 = 0x80;
/// One past the last code point of the per-character table.
const TABLE_HI: u32 = 0x800;

/// Scripts whose letters normalize to themselves (checked exhaustively in
/// the tests): Hangul syllables, CJK unified ideographs, hiragana, katakana.
fn is_identity_char(c: char) -> bool {
    matches!(
        c,
        '\u{AC00}'..='\u{D7A3}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{3041}'..='\u{3096}'
            | '\u{30A1}'..='\u{30FA}'
            | '\u{30FC}'
            | '\u{3005}'..='\u{3007}'
    )
}

/// The normalized form of each of U+0080..U+07FF taken alone when it is a
/// single character that can be computed one character at a time, else '\0'
/// (Latin-1, Latin Extended, Greek, Cyrillic, …). Built once with the
/// general path, so it agrees with it by construction.
fn char_table() -> &'static [char] {
    static TABLE: OnceLock<Vec<char>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (TABLE_LO..TABLE_HI)
            .map(|u| {
                let Some(c) = char::from_u32(u) else {
                    return '\0';
                };
                let mut buf = [0u8; 4];
                let s: &str = c.encode_utf8(&mut buf);
                let stable = s.nfkc().eq(std::iter::once(c));
                if !stable || canonical_combining_class(c) != 0 || is_removable_mark(c) {
                    return '\0';
                }
                let mut out = String::new();
                normalize_general(s, &mut out);
                let mut it = out.chars();
                match (it.next(), it.next()) {
                    (Some(m), None) if canonical_combining_class(m) == 0 => m,
                    _ => '\0',
                }
            })
            .collect()
    })
}

/// The normalized form of `c` when the word it is in can be normalized one
/// character at a time (see [`normalize_simple`]); `None` otherwise.
#[inline]
fn simple_char(c: char) -> Option<char> {
    if c.is_ascii() {
        return Some(c.to_ascii_lowercase());
    }
    let u = c as u32;
    if u < TABLE_HI {
        let m = char_table()[(u - TABLE_LO) as usize];
        return (m != '\0').then_some(m);
    }
    is_identity_char(c).then_some(c)
}

/// Fast path for words made only of characters with a [`simple_char`]
/// (and apostrophes): such a word is its own NFKC, no two of its characters
/// (or of their normalized forms) compose with each other, and case folding,
/// decomposition and mark removal act on each character alone, so the word
/// normalizes character by character. Returns false, leaving `out` as it
/// was, when the word needs the general path.
fn normalize_simple(seg: &str, out: &mut String) -> bool {
    let start = out.len();
    for c in strip_possessive(seg).chars() {
        if c == '.' || is_apostrophe(c) {
            continue;
        }
        match simple_char(c) {
            Some(m) => out.push(m),
            None => {
                out.truncate(start);
                return false;
            }
        }
    }
    true
}

/// The general path: every step of the module docs, in order.
fn normalize_general(seg: &str, out: &mut String) {
    let nfkc: String = seg.nfkc().collect();
    let w = strip_possessive(&nfkc);
    let stripped = w.chars().filter(|&c| c != '.' && !is_apostrophe(c));
    let folded: String = caseless::Caseless::default_case_fold(stripped).collect();
    out.extend(folded.nfd().filter(|&c| !is_removable_mark(c)).nfc());
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
    if !normalize_simple(seg, out) {
        normalize_general(seg, out);
    }
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
    let mut s = String::new();
    exact_form_into(seg, &mut s);
    s
}

/// Whether `seg` is made only of characters that normalize one at a time
/// (see `normalize_simple`). For such a word `w`, `normalize_word(w)` equals
/// `normalize_word(exact_form(w))`: both are the per-character map of the
/// same characters.
pub fn is_simple_word(seg: &str) -> bool {
    seg.is_ascii()
        || seg
            .chars()
            .all(|c| is_apostrophe(c) || simple_char(c).is_some())
}

/// [`exact_form`], appended to `out`.
pub fn exact_form_into(seg: &str, out: &mut String) {
    // A word of simple characters is its own NFKC (see `normalize_simple`).
    if is_simple_word(seg) {
        out.extend(
            strip_possessive(seg)
                .chars()
                .filter(|&c| c != '.' && !is_apostrophe(c)),
        );
        return;
    }
    let nfkc: String = seg.nfkc().collect();
    out.extend(
        strip_possessive(&nfkc)
            .chars()
            .filter(|&c| c != '.' && !is_apostrophe(c)),
    );
}

/// Lower-case comparison key for keyword field values ("equal ignoring case").
pub fn keyword_key(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let nfkc: String = s.nfkc().collect();
    caseless::default_case_fold_str(&nfkc)
}

/// The characters [`fast`] classifies itself (all others go to
/// unicode-segmentation), for the exhaustive test of its tables.
#[doc(hidden)]
pub fn fast_chars() -> impl Iterator<Item = char> {
    (0..=0x10FFFFu32)
        .filter_map(char::from_u32)
        .filter(|&c| fast::class(c) != fast::Class::Unknown)
}

/// The general path alone (SPEC §5 step by step: unicode-segmentation,
/// NFKC, case folding, decomposition, mark removal), for the differential
/// tests and benches. Slow; not for the hot path.
#[doc(hidden)]
pub mod reference {
    use super::*;

    /// Every UAX #29 word segment that holds a letter or digit.
    pub fn for_each_word(text: &str, mut f: impl FnMut(usize, &str)) {
        for (start, seg) in text.unicode_word_indices() {
            f(start, seg);
        }
    }

    /// (start, end, normalized form) of every word, as [`Tokens`] has them.
    pub fn tokens(text: &str) -> Vec<(u32, u32, String)> {
        let text = truncate_to_u32(text);
        let mut out = Vec::new();
        for_each_word(text, |start, seg| {
            let mut w = String::new();
            normalize_general(seg, &mut w);
            if !w.is_empty() {
                out.push((start as u32, (start + seg.len()) as u32, w));
            }
        });
        out
    }

    /// [`super::exact_words`] by the general path.
    pub fn exact_words(text: &str) -> Vec<(usize, usize, String)> {
        let mut out = Vec::new();
        for_each_word(text, |start, seg| {
            let nfkc: String = seg.nfkc().collect();
            let w: String = strip_possessive(&nfkc)
                .chars()
                .filter(|&c| c != '.' && !is_apostrophe(c))
                .collect();
            if !w.is_empty() {
                out.push((start, start + seg.len(), w));
            }
        });
        out
    }

    /// [`Tokens::push_text`] as it segmented before [`fast`]: non-ASCII
    /// chunks through unicode-segmentation (the bench's baseline).
    pub fn push_text_unicode(t: &mut Tokens, text: &str) {
        t.push_with(text, false);
    }
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

    /// The general (slow) forms, as the module computed them before the
    /// fast paths: the reference for the differential tests.
    fn reference_norm(seg: &str) -> String {
        let mut s = String::new();
        if seg.is_ascii() {
            normalize_word_into(seg, &mut s);
        } else {
            normalize_general(seg, &mut s);
        }
        s
    }

    fn reference_exact(seg: &str) -> String {
        let nfkc: String = seg.nfkc().collect();
        strip_possessive(&nfkc)
            .chars()
            .filter(|&c| c != '.' && !is_apostrophe(c))
            .collect()
    }

    fn all_chars() -> impl Iterator<Item = char> {
        (0..=0x10FFFFu32).filter_map(char::from_u32)
    }

    /// Characters that compose with a preceding starter although they are
    /// starters themselves (Hangul V/T jamo, some Indic vowel signs, …).
    fn starter_seconds() -> std::collections::HashSet<char> {
        let mut set = std::collections::HashSet::new();
        for x in all_chars() {
            let mut d = Vec::new();
            unicode_normalization::char::decompose_canonical(x, |c| d.push(c));
            if d.len() >= 2 {
                for &c in &d[1..] {
                    if canonical_combining_class(c) == 0 {
                        set.insert(c);
                    }
                }
            }
        }
        set
    }

    #[test]
    fn simple_chars_normalize_alone_and_never_compose() {
        let seconds = starter_seconds();
        assert!(seconds.contains(&'\u{1161}'), "Hangul V jamo expected");
        let mut n = 0;
        for c in all_chars() {
            let Some(m) = simple_char(c) else { continue };
            if c.is_ascii() && !c.is_ascii_alphanumeric() {
                continue;
            }
            n += 1;
            let s = c.to_string();
            // Its own NFKC, a starter, normalizes alone to `m`.
            assert_eq!(s.nfkc().collect::<String>(), s, "{c:?} NFKC");
            assert_eq!(canonical_combining_class(c), 0, "{c:?} ccc");
            assert_eq!(reference_norm(&s), m.to_string(), "{c:?} normalized");
            assert_eq!(canonical_combining_class(m), 0, "{m:?} ccc");
            // Neither it nor its form can compose with what precedes it.
            let first = |t: String| t.chars().next().unwrap();
            for (what, f) in [
                ("NFKD(c)", first(s.nfkd().collect())),
                ("NFD(m)", first(m.to_string().nfd().collect())),
            ] {
                assert_eq!(
                    canonical_combining_class(f),
                    0,
                    "{c:?}: {what} starts with a mark"
                );
                assert!(
                    !seconds.contains(&f),
                    "{c:?}: {what} starts with {f:?}, which composes"
                );
            }
        }
        assert!(n > 30_000, "{n}");
        for a in ['\'', '\u{2019}', '\u{2018}', '\u{02BC}'] {
            let s = a.to_string();
            assert_eq!(s.nfkc().collect::<String>(), s);
            assert!(!seconds.contains(&a));
        }
    }

    #[test]
    fn chunked_segmentation_examples() {
        for text in [
            "a \u{0301}b “quoted” x",
            "Lavrov’s  visit\t\n\r\nto the U.S. 1,000 3.5%",
            " \u{093E}abc  def",
            "🇺🇸🇷🇺 abc 🇺🇸 \u{200D}x",
        ] {
            let mut got = Vec::new();
            for_each_word(text, |s, w| got.push((s, w.to_string())));
            let want: Vec<_> = text
                .unicode_word_indices()
                .map(|(s, w)| (s, w.to_string()))
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    mod differential {
        use super::*;
        use proptest::prelude::*;

        /// Characters that exercise every branch: ASCII word/mid/space
        /// classes, apostrophes, Latin with marks, combining marks, Cyrillic,
        /// Greek, Hangul, kana with voicing marks, ideographs, full-width and
        /// compatibility forms, ZWJ, regional indicators, Devanagari.
        const MIXED: &[char] = &[
            'a',
            'Z',
            's',
            'S',
            '0',
            '7',
            '.',
            ',',
            ':',
            ';',
            '\'',
            '_',
            '-',
            ' ',
            ' ',
            '\t',
            '\n',
            '\r',
            '"',
            '(',
            '%',
            '\u{2019}',
            '\u{2018}',
            '\u{02BC}',
            'é',
            'É',
            'ß',
            'ı',
            'İ',
            '\u{0301}',
            '\u{0308}',
            '\u{0306}',
            'Ё',
            'ё',
            'й',
            'Й',
            'Я',
            'д',
            'Σ',
            'ς',
            'ά',
            '가',
            '각',
            '\u{1100}',
            '\u{1161}',
            '\u{11A8}',
            'か',
            'が',
            '\u{3099}',
            'カ',
            'ｶ',
            'ー',
            '防',
            '衛',
            '\u{F900}',
            'Ａ',
            '１',
            'ﬁ',
            '\u{200D}',
            '\u{200B}',
            '\u{1F1FA}',
            '\u{1F1F8}',
            '\u{093E}',
            'क',
            '\u{00A0}',
            '\u{3000}',
            '。',
        ];

        fn mixed(max: usize) -> impl Strategy<Value = String> {
            prop::collection::vec(prop::sample::select(MIXED), 0..max)
                .prop_map(|v| v.into_iter().collect())
        }

        /// Mostly ASCII text with the odd non-ASCII character, so that both
        /// ASCII and non-ASCII chunks appear.
        fn mostly_ascii(max: usize) -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    8 => "[a-zA-Z0-9 .,:;'_\\-\t\n\r\"]",
                    1 => prop::sample::select(MIXED).prop_map(String::from),
                ],
                0..max,
            )
            .prop_map(|v| v.concat())
        }

        fn segs(text: &str) -> Vec<(usize, String)> {
            let mut got = Vec::new();
            for_each_word(text, |s, w| got.push((s, w.to_string())));
            got
        }

        fn reference_segs(text: &str) -> Vec<(usize, String)> {
            text.unicode_word_indices()
                .map(|(s, w)| (s, w.to_string()))
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn ascii_segmentation_matches_uax29(text in "[a-zA-Z0-9 .,:;'_\\-\t\n\r\"!?()]{0,300}") {
                prop_assert_eq!(segs(&text), reference_segs(&text));
            }

            #[test]
            fn chunked_segmentation_matches_uax29(text in mostly_ascii(400)) {
                prop_assert_eq!(segs(&text), reference_segs(&text));
            }

            #[test]
            fn mixed_segmentation_matches_uax29(text in mixed(200)) {
                prop_assert_eq!(segs(&text), reference_segs(&text));
            }

            #[test]
            fn fast_normalization_matches_general(word in mixed(12)) {
                prop_assert_eq!(normalize_word(&word), reference_norm(&word));
                prop_assert_eq!(exact_form(&word), reference_exact(&word));
            }

            #[test]
            fn simple_words_normalize_like_their_exact_form(word in mixed(12)) {
                if is_simple_word(&word) {
                    prop_assert_eq!(normalize_word(&word), normalize_word(&exact_form(&word)));
                }
            }

            #[test]
            fn fast_normalization_of_real_segments(text in mixed(80)) {
                for (_, seg) in text.unicode_word_indices() {
                    prop_assert_eq!(normalize_word(seg), reference_norm(seg));
                    prop_assert_eq!(exact_form(seg), reference_exact(seg));
                }
            }
        }
    }
}
