//! UAX #29 word segmentation without a general segmenter, for the scripts
//! news is written in: Latin (with diacritics), Greek, Cyrillic, Hangul,
//! kana and CJK ideographs, with their common punctuation.
//!
//! The ASCII scanner's approach (see `super::ascii_words`), widened: every
//! character is classified by range into one of a few word-break classes
//! ([`Class`]), and words are runs of characters that join by the pairwise
//! rules WB5–WB13b, plus the one-character look-ahead of WB6/7 (letters
//! around `:` `.` `'` `’` …) and WB11/12 (digits around `,` `.` `;` …).
//!
//! A character the tables do not know ([`Class::Unknown`]: combining marks
//! and other Extend/Format/ZWJ characters, regional indicators, emoji,
//! Hebrew, Indic and other scripts, rarely used punctuation) sends its
//! *piece* of text to unicode-segmentation. Pieces are cut where UAX #29
//! always breaks and no rule looks across: before a known character that
//! follows an [`Class::Other`], [`Class::Space`] or [`Class::Ideo`]
//! character (none joins anything, none is a context of
//! WB6/7/11/12/7b/7c/15/16, and a known character is never
//! Extend/Format/ZWJ, which WB4 would attach backwards), but not between
//! two spaces (WB3d joins them, and an Extend after them joins the run).
//! So a piece's words are the same whether it is segmented alone or as part
//! of the whole text.
//!
//! Invariant: `words` gives exactly what `unicode_word_indices` gives.
//! Held by the exhaustive class test in `super::tests` (every classified
//! character in every context of every class, against unicode-segmentation)
//! and the differential property tests in `crates/core/tests/engine/text_fast.rs`.

use unicode_segmentation::UnicodeSegmentation;

/// Word-break classes of UAX #29, as far as the fast path needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// ALetter: Latin, Greek, Cyrillic, Hangul syllables, full-width Latin, 々.
    Letter,
    /// Numeric.
    Digit,
    /// Katakana (joins only katakana and `_`).
    Kata,
    /// WB class Other but a letter or digit, one word each: hiragana,
    /// ideographs, superscript digits and vulgar fractions.
    Ideo,
    /// Breaks on both sides and holds no letter or digit: line breaks,
    /// punctuation that is none of the classes below.
    Other,
    /// WSegSpace: like [`Class::Other`], except that UAX #29 keeps a run of
    /// them together (WB3d), and an Extend character after the run joins
    /// it (WB4): no cut between two of them.
    Space,
    /// MidLetter (`:` `·` `‧` `：`).
    MidLetter,
    /// MidNumLet (`.` `‘` `’` `․` `．` `＇`).
    MidNumLet,
    /// MidNum (`,` `;` `⁄` `，` `；`).
    MidNum,
    /// Single_Quote (`'`).
    Quote,
    /// ExtendNumLet (`_` `‿` `⁀` `⁔` `＿`, narrow no-break space).
    Under,
    /// Anything else: the piece goes to unicode-segmentation.
    Unknown,
}

use Class::*;

const fn ascii_class(b: u8) -> Class {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Letter,
        b'0'..=b'9' => Digit,
        b'_' => Under,
        b':' => MidLetter,
        b'.' => MidNumLet,
        b',' | b';' => MidNum,
        b'\'' => Quote,
        b' ' => Space,
        // Controls, spaces, line breaks and all other punctuation (`"` is
        // Double_Quote, which only Hebrew letters look at).
        _ => Other,
    }
}

static ASCII: [Class; 128] = {
    let mut t = [Other; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = ascii_class(i as u8);
        i += 1;
    }
    t
};

/// The class of `c` (see the module docs; ranges from the Unicode 16 word
/// break property as unicode-segmentation has it).
#[inline]
pub(super) fn class(c: char) -> Class {
    let u = c as u32;
    if u < 0x80 {
        return ASCII[u as usize];
    }
    match u {
        // Latin-1: letters, and the signs and punctuation between them.
        // 02C2..02C5 and 02D2..02D7 are ALetter but no letters: unknown.
        0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x2C1 | 0x2C6..=0x2D1 => Letter,
        0xAA | 0xB5 | 0xBA => Letter,
        0xB7 => MidLetter,
        0xA0..=0xA9 | 0xAB | 0xAC | 0xAE..=0xB1 | 0xB4 | 0xB6 | 0xBB | 0xBF | 0xD7 | 0xF7 => Other,
        // Superscript digits and fractions: WB Other, but numbers.
        0xB2 | 0xB3 | 0xB9 | 0xBC..=0xBE => Ideo,
        // Greek and Cyrillic letters (0x483..0x489 are combining marks).
        0x386 | 0x388..=0x38A | 0x38C | 0x38E..=0x3A1 | 0x3A3..=0x3F5 | 0x3F7..=0x481 => Letter,
        0x48A..=0x52F => Letter,
        0x387 => MidLetter,
        0x37E => MidNum,
        // Latin Extended Additional and Greek Extended's first block.
        0x1E00..=0x1EFF => Letter,
        // General punctuation. 0x200C..0x200F and 0x202A..0x202E are
        // Extend/ZWJ/Format, hence unknown.
        0x2000..=0x2006 | 0x2008..=0x200A | 0x205F | 0x3000 => Space,
        0x2007 | 0x200B | 0x2010..=0x2017 | 0x201A..=0x2023 | 0x2025 | 0x2026 => Other,
        0x2028..=0x2029 | 0x2030..=0x203E | 0x2041..=0x2043 | 0x2045..=0x2053 => Other,
        0x2055..=0x205E => Other,
        0x2018 | 0x2019 | 0x2024 => MidNumLet,
        0x2027 => MidLetter,
        0x2044 => MidNum,
        0x202F | 0x203F | 0x2040 | 0x2054 => Under,
        // CJK symbols and punctuation: spaces, 、。 and brackets.
        0x3001..=0x3004 | 0x3008..=0x3011 | 0x3014..=0x301F => Other,
        0x3005 => Letter,
        0x3006 | 0x3007 => Ideo,
        // Hiragana (3099/309A are Extend), katakana (30FB ・ is Other).
        0x3041..=0x3096 | 0x309D..=0x309F => Ideo,
        // 30A0 is Katakana but no letter: unknown.
        0x30A1..=0x30FA | 0x30FC..=0x30FF => Kata,
        0x30FB => Other,
        // CJK unified ideographs and extension A.
        0x3400..=0x4DBF | 0x4E00..=0x9FFF => Ideo,
        0xAC00..=0xD7A3 => Letter,
        // Full-width forms (normalization takes them to ASCII, but
        // segmentation sees them as they are).
        0xFF10..=0xFF19 => Digit,
        0xFF21..=0xFF3A | 0xFF41..=0xFF5A => Letter,
        0xFF07 | 0xFF0E => MidNumLet,
        0xFF1A => MidLetter,
        0xFF0C | 0xFF1B => MidNum,
        0xFF3F => Under,
        0xFF01..=0xFF06 | 0xFF08..=0xFF0B | 0xFF0D | 0xFF0F | 0xFF1C..=0xFF20 => Other,
        0xFF3B..=0xFF3E | 0xFF40 | 0xFF5B..=0xFF5E => Other,
        _ => Unknown,
    }
}

/// Whether UAX #29 never breaks between a character of class `a` and one
/// of class `b` (WB5, WB8–10, WB13, WB13a/b).
#[inline]
fn joins(a: Class, b: Class) -> bool {
    let word = |k| matches!(k, Letter | Digit | Under);
    let kana = |k| matches!(k, Kata | Under);
    (word(a) && word(b)) || (kana(a) && kana(b))
}

#[inline]
fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..).and_then(|t| t.chars().next())
}

/// Call `f(base + start, word)` for the UAX #29 word segments of `text`
/// that hold a letter or digit, exactly as `text.unicode_word_indices()`
/// would (see the module docs).
pub(super) fn words(text: &str, base: usize, f: &mut dyn FnMut(usize, &str)) {
    let mut piece = 0;
    let mut known = true;
    let mut cut_after = false;
    let mut prev = Unknown;
    for (i, c) in text.char_indices() {
        let k = class(c);
        if cut_after && k != Unknown && !(k == Space && prev == Space) && i > piece {
            piece_words(&text[piece..i], base + piece, known, f);
            piece = i;
            known = true;
        }
        known &= k != Unknown;
        cut_after = matches!(k, Other | Space | Ideo);
        prev = k;
    }
    if piece < text.len() {
        piece_words(&text[piece..], base + piece, known, f);
    }
}

fn piece_words(piece: &str, base: usize, known: bool, f: &mut dyn FnMut(usize, &str)) {
    if known {
        known_words(piece, base, f);
    } else {
        for (start, seg) in piece.unicode_word_indices() {
            f(base + start, seg);
        }
    }
}

/// The words of a piece whose characters are all known: runs of joining
/// characters, with the WB6/7 and WB11/12 look-ahead.
fn known_words(s: &str, base: usize, f: &mut dyn FnMut(usize, &str)) {
    let n = s.len();
    let mut i = 0;
    while let Some(c) = char_at(s, i) {
        let k = class(c);
        let start = i;
        i += c.len_utf8();
        match k {
            Ideo => {
                f(base + start, &s[start..i]);
                continue;
            }
            Letter | Digit | Kata | Under => {}
            _ => continue,
        }
        let mut alnum = k != Under;
        let mut prev = k;
        while let Some(c) = char_at(s, i) {
            let k = class(c);
            if joins(prev, k) {
                alnum |= k != Under;
                prev = k;
                i += c.len_utf8();
                continue;
            }
            let j = i + c.len_utf8();
            let next = if j < n { char_at(s, j) } else { None };
            if let Some(d) = next {
                let q = class(d);
                let letters =
                    prev == Letter && q == Letter && matches!(k, MidLetter | MidNumLet | Quote);
                let digits = prev == Digit && q == Digit && matches!(k, MidNum | MidNumLet | Quote);
                if letters || digits {
                    prev = q;
                    i = j + d.len_utf8();
                    continue;
                }
            }
            break;
        }
        if alnum {
            f(base + start, &s[start..i]);
        }
    }
}
