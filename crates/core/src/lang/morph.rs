//! Morphological analyzers for `~word` (SPEC §5): every inflected form of a
//! word reduced to one stem, per language.
//!
//! * Snowball stemmers (`rust-stemmers`) for English, Russian, German,
//!   French, Spanish, and every other language the crate has: Arabic,
//!   Danish, Dutch, Finnish, Greek, Hungarian, Italian, Norwegian,
//!   Portuguese, Romanian, Swedish, Tamil, Turkish.
//! * Korean: no dictionary analyzer can be had with its dictionary from
//!   crates.io, so [`korean_stems`] removes particles and common endings
//!   from the end of a Hangul word (list [`KO_ENDINGS`], longest first).
//!   A text word has several readings (`국가` is the noun 국가, or 국 with
//!   the particle 가): every one that leaves at least one syllable is a
//!   candidate stem. A query word is cut only by its longest ending and
//!   only when two syllables remain, because the analyst writes the bare
//!   noun: `~국가` stays 국가 (and matches 국가는, 국가의), `~라브로프는` is
//!   라브로프. A one-syllable query word also matches the two-syllable
//!   words whose second syllable reads as a particle (`~국` matches 국가).
//! * Japanese (and every language not listed): no analyzer. The Japanese
//!   dictionary analyzers on crates.io download their dictionaries at build
//!   time, which cannot be done here, so `~word` is `word` for Japanese and
//!   keeps its character-phrase matching.
//!
//! Words are analyzed in their [`morph_form`], on both sides: the form
//! [`crate::lang::text`] gives them (case folded, marks removed), except
//! that Cyrillic й keeps its breve. Russian endings differ by it (-ой,
//! -ий), and the Snowball stemmer needs it: Захаровой and Захарова share
//! a stem only with it. French and German stems are those of the
//! unaccented words, consistently for text and query.
//!
//! Invariant: every function here is pure and total: any string gives
//! stems (the word itself when nothing applies) and never panics.

use rust_stemmers::{Algorithm, Stemmer};

use crate::lang::text;

/// Stands in for й while [`text::normalize_word`] runs: a private-use
/// character, which normalization keeps as it is.
const KEEP_SHORT_I: char = '\u{E000}';

/// The form a word segment is analyzed in: [`text::normalize_word`], with
/// й and Й kept as й. Empty when the segment has no letter or digit.
pub fn morph_form(seg: &str) -> String {
    if seg.is_ascii() || !seg.contains(['й', 'Й']) {
        return text::normalize_word(seg);
    }
    let marked: String = seg
        .chars()
        .map(|c| {
            if matches!(c, 'й' | 'Й') {
                KEEP_SHORT_I
            } else {
                c
            }
        })
        .collect();
    text::normalize_word(&marked).replace(KEEP_SHORT_I, "й")
}

/// A language that has an analyzer: an index into [`LANGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lang(u8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Analyzer {
    Snowball(Algorithm),
    Korean,
}

/// Every language with an analyzer, by ISO 639-1 code.
const LANGS: &[(&str, Analyzer)] = &[
    ("en", Analyzer::Snowball(Algorithm::English)),
    ("ru", Analyzer::Snowball(Algorithm::Russian)),
    ("de", Analyzer::Snowball(Algorithm::German)),
    ("fr", Analyzer::Snowball(Algorithm::French)),
    ("es", Analyzer::Snowball(Algorithm::Spanish)),
    ("ko", Analyzer::Korean),
    ("ar", Analyzer::Snowball(Algorithm::Arabic)),
    ("da", Analyzer::Snowball(Algorithm::Danish)),
    ("nl", Analyzer::Snowball(Algorithm::Dutch)),
    ("fi", Analyzer::Snowball(Algorithm::Finnish)),
    ("el", Analyzer::Snowball(Algorithm::Greek)),
    ("hu", Analyzer::Snowball(Algorithm::Hungarian)),
    ("it", Analyzer::Snowball(Algorithm::Italian)),
    ("no", Analyzer::Snowball(Algorithm::Norwegian)),
    ("pt", Analyzer::Snowball(Algorithm::Portuguese)),
    ("ro", Analyzer::Snowball(Algorithm::Romanian)),
    ("sv", Analyzer::Snowball(Algorithm::Swedish)),
    ("ta", Analyzer::Snowball(Algorithm::Tamil)),
    ("tr", Analyzer::Snowball(Algorithm::Turkish)),
];

/// Words longer than this (in bytes) are their own stem: no inflection
/// is that long, and it bounds the work per word.
const MAX_WORD: usize = 96;

impl Lang {
    /// Every language with an analyzer.
    pub fn all() -> impl Iterator<Item = Lang> {
        (0..LANGS.len() as u8).map(Lang)
    }

    /// Number of languages with an analyzer (for per-language tables).
    pub const COUNT: usize = LANGS.len();

    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The ISO 639-1 code.
    pub fn code(self) -> &'static str {
        LANGS[self.index()].0
    }

    /// The language of a `lang` value: its primary subtag (`en` of
    /// `en-US`, `pt_BR` too), case ignored; `nb` and `nn` are Norwegian.
    /// `None` when it names no language with an analyzer.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        if primary.len() > 3 {
            return None;
        }
        let primary = primary.to_ascii_lowercase();
        let code = match primary.as_str() {
            "nb" | "nn" | "nor" => "no",
            "eng" => "en",
            "rus" => "ru",
            "kor" => "ko",
            other => other,
        };
        LANGS
            .iter()
            .position(|(c, _)| *c == code)
            .map(|i| Lang(i as u8))
    }

    fn analyzer(self) -> Analyzer {
        LANGS[self.index()].1
    }

    /// The stems of a query word (normalized by [`crate::lang::text`]),
    /// precomputed when rules compile. For Snowball languages: the word
    /// itself, its stem, and the stem of that stem. Snowball cuts a
    /// Russian surname's nominative to its root (лавров → лавр) but its
    /// other cases to the nominative (лаврова, лавровым → лавров), and
    /// some cases a letter further than others (кореи → кор, корея →
    /// коре), so all three must be found.
    pub fn query_stems(self, word: &str, out: &mut Vec<String>) {
        if word.len() > MAX_WORD {
            out.push(word.to_owned());
            return;
        }
        match self.analyzer() {
            Analyzer::Snowball(a) => {
                out.push(word.to_owned());
                let mut s = snowball(a, word);
                // At most two rounds: the second is where Snowball's
                // Russian cuts one case a letter further than another
                // (Кореи → кор, Корея → коре → кор).
                for _ in 0..2 {
                    if out.contains(&s) {
                        break;
                    }
                    let next = snowball(a, &s);
                    out.push(s);
                    s = next;
                }
            }
            Analyzer::Korean => out.push(korean_query_stem(word).to_owned()),
        }
    }

    /// Every stem a text word (normalized) may have: one for Snowball
    /// languages, the readings of [`korean_stems`] for Korean. `~q` matches
    /// the word when one of them is one of `q`'s [`Self::query_stems`].
    pub fn text_stems(self, word: &str, out: &mut Vec<String>) {
        if word.len() > MAX_WORD {
            out.push(word.to_owned());
            return;
        }
        match self.analyzer() {
            Analyzer::Snowball(a) => out.push(snowball(a, word)),
            Analyzer::Korean => korean_stems(word, out),
        }
    }
}

fn snowball(a: Algorithm, word: &str) -> String {
    // A stemmer is a function pointer: creating one costs nothing.
    Stemmer::create(a).stem(word).into_owned()
}

/// Korean particles (josa), their common combinations, plural 들 with
/// particles, and the common endings of 하다/되다 verbs formed from nouns
/// (훈련했다, 발표한). Longest first (a test holds it to that), so that
/// the longest ending is found first.
pub const KO_ENDINGS: &[&str] = &[
    // five syllables
    "하겠다고",
    // four syllables
    "에서부터",
    "으로부터",
    "이라면서",
    "이라고는",
    "했다면서",
    "한다면서",
    "하기로는",
    "하겠다는",
    "했다는데",
    // three syllables
    "에게서는",
    "에서는",
    "에서도",
    "에서의",
    "에서만",
    "에게서",
    "한테서",
    "에게는",
    "에게도",
    "으로는",
    "으로도",
    "으로서",
    "으로써",
    "으로의",
    "으로만",
    "이라고",
    "이라는",
    "이라며",
    "이었다",
    "입니다",
    "께서는",
    "께서도",
    "까지는",
    "까지도",
    "까지의",
    "부터는",
    "부터의",
    "로부터",
    "이라도",
    "이든지",
    "했다고",
    "한다고",
    "했으며",
    "하겠다",
    "하면서",
    "하기로",
    "하였다",
    "되었다",
    "됐으며",
    "들에게",
    "들에서",
    "들로서",
    "처럼은",
    "보다는",
    // two syllables
    "에서",
    "에게",
    "한테",
    "께서",
    "으로",
    "까지",
    "부터",
    "보다",
    "처럼",
    "같이",
    "마다",
    "조차",
    "밖에",
    "마저",
    "이나",
    "이랑",
    "이며",
    "이고",
    "이다",
    "이라",
    "이란",
    "이든",
    "라고",
    "라는",
    "라며",
    "였다",
    "에는",
    "에도",
    "에의",
    "에만",
    "로는",
    "로도",
    "로서",
    "로써",
    "로의",
    "로만",
    "와의",
    "과의",
    "와는",
    "과는",
    "와도",
    "과도",
    "만은",
    "만이",
    "만을",
    "만의",
    "도록",
    "하고",
    "하며",
    "하여",
    "해서",
    "했다",
    "했고",
    "했던",
    "한다",
    "하는",
    "하기",
    "하다",
    "된다",
    "되는",
    "되고",
    "되며",
    "됐다",
    "들은",
    "들이",
    "들을",
    "들의",
    "들도",
    "들과",
    "들에",
    "들로",
    "들만",
    // one syllable
    "은",
    "는",
    "이",
    "가",
    "을",
    "를",
    "의",
    "에",
    "도",
    "와",
    "과",
    "로",
    "만",
    "께",
    "나",
    "랑",
    "며",
    "란",
    "한",
    "할",
    "함",
    "된",
    "들",
];

fn is_hangul_syllable(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// The Hangul syllables of `word` before `ending`, when it ends so.
fn strip<'a>(word: &'a str, ending: &str) -> Option<(&'a str, usize)> {
    let rest = word.strip_suffix(ending)?;
    let n = rest.chars().count();
    Some((rest, n))
}

/// Every reading of a Korean text word: the word itself, and the word
/// without each ending of [`KO_ENDINGS`] it has, where at least one
/// syllable remains. Words not ending in a Hangul syllable are their own
/// only stem.
pub fn korean_stems(word: &str, out: &mut Vec<String>) {
    out.push(word.to_owned());
    if !word.chars().last().is_some_and(is_hangul_syllable) {
        return;
    }
    for e in KO_ENDINGS {
        if let Some((rest, n)) = strip(word, e) {
            if n >= 1 && rest.chars().last().is_some_and(is_hangul_syllable) {
                out.push(rest.to_owned());
            }
        }
    }
}

/// A Korean query word without its longest ending, when two syllables
/// remain; else the word as written.
pub fn korean_query_stem(word: &str) -> &str {
    if !word.chars().last().is_some_and(is_hangul_syllable) {
        return word;
    }
    for e in KO_ENDINGS {
        if let Some((rest, n)) = strip(word, e) {
            if n >= 2 && rest.chars().last().is_some_and(is_hangul_syllable) {
                return rest;
            }
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(code: &str) -> Lang {
        Lang::from_tag(code).expect("supported")
    }

    fn same_stem(code: &str, query: &str, text: &str) -> bool {
        let l = lang(code);
        let mut q = Vec::new();
        l.query_stems(query, &mut q);
        let mut t = Vec::new();
        l.text_stems(text, &mut t);
        t.iter().any(|s| q.contains(s))
    }

    #[test]
    fn morph_forms() {
        let table = [
            ("Захаровой", "захаровой"),
            ("ЗАХАРОВОЙ", "захаровой"),
            ("Лавров", "лавров"),
            ("Ёлка", "елка"),
            ("Übung", "ubung"),
            ("Russia's", "russia"),
            ("라브로프는", "라브로프는"),
            ("\u{E000}", "\u{E000}"),
        ];
        for (seg, expected) in table {
            assert_eq!(morph_form(seg), expected, "{seg:?}");
        }
        assert_eq!(text::normalize_word("Захаровой"), "захаровои");
    }

    #[test]
    fn tags() {
        let table = [
            ("en", Some("en")),
            ("en-US", Some("en")),
            ("EN_gb", Some("en")),
            ("ru", Some("ru")),
            ("ko-KR", Some("ko")),
            ("nb", Some("no")),
            ("nn-NO", Some("no")),
            ("pt-BR", Some("pt")),
            ("ja", None),
            ("uk", None),
            ("", None),
            ("english", None),
            ("zh-Hant", None),
        ];
        for (tag, expected) in table {
            assert_eq!(Lang::from_tag(tag).map(Lang::code), expected, "{tag:?}");
        }
        assert!(Lang::all().count() >= 6);
        assert_eq!(Lang::all().count(), Lang::COUNT);
    }

    /// (language, query word, text word, same stem?). Words are given
    /// normalized, as `text` hands them over.
    #[test]
    fn snowball_table() {
        let table = [
            ("en", "exercise", "exercises", true),
            ("en", "exercise", "exercised", true),
            ("en", "exercise", "exercising", true),
            ("en", "drill", "drills", true),
            ("en", "ministry", "ministries", true),
            ("en", "exercise", "exert", false),
            ("en", "state", "statement", false),
            ("ru", "лавров", "лаврова", true),
            ("ru", "лавров", "лавровым", true),
            ("ru", "лавров", "лаврову", true),
            ("ru", "захарова", "захаровой", true),
            ("ru", "захарова", "захаровои", false),
            ("ru", "корея", "кореи", true),
            ("ru", "корея", "корее", true),
            ("ru", "южная", "южной", true),
            ("ru", "дипведомство", "дипведомстве", true),
            ("ru", "министерство", "министерства", true),
            ("ru", "министерство", "министерством", true),
            ("ru", "учения", "учениях", true),
            ("ru", "учения", "учений", true),
            ("ru", "заявление", "заявлением", true),
            // a caveat: the nominative's root is a stem of other words
            ("ru", "лавров", "лавры", true),
            ("ru", "лавров", "лавровый", true),
            ("ru", "лавров", "лаванда", false),
            // abbreviations are stemmed too: write them exact
            ("ru", "мид", "мидии", true),
            ("de", "ubung", "ubungen", true),
            ("de", "ministerium", "ministeriums", true),
            ("de", "manover", "manovern", true),
            ("fr", "exercice", "exercices", true),
            ("fr", "ministere", "ministeres", true),
            ("es", "ejercicio", "ejercicios", true),
            ("es", "ministerio", "ministerios", true),
            ("it", "esercitazione", "esercitazioni", true),
            ("pt", "exercicio", "exercicios", true),
        ];
        for (code, q, t, expected) in table {
            assert_eq!(same_stem(code, q, t), expected, "{code}: ~{q} vs {t}");
        }
    }

    #[test]
    fn korean_table() {
        let table = [
            ("라브로프", "라브로프", true),
            ("라브로프", "라브로프는", true),
            ("라브로프", "라브로프가", true),
            ("라브로프", "라브로프도", true),
            ("라브로프", "라브로프에게", true),
            ("라브로프", "라브로프와", true),
            ("라브로프", "라브로프의", true),
            ("라브로프는", "라브로프도", true),
            ("외무장관", "외무장관은", true),
            ("훈련", "훈련을", true),
            ("훈련", "훈련에서", true),
            ("훈련", "훈련에서는", true),
            ("훈련", "훈련했다", true),
            ("훈련", "훈련했다고", true),
            ("미국", "미국과", true),
            ("미국", "미국으로부터", true),
            ("일본", "일본까지", true),
            ("러시아", "러시아는", true),
            ("러시아", "러시아도", true),
            ("러시아", "러시아로", true),
            ("러시아", "러시아로부터", true),
            ("군인", "군인들은", true),
            // the noun as written stays itself: 국가 is not 국 + 가
            ("국가", "국가는", true),
            ("국가", "국", false),
            ("회의", "회의에서", true),
            ("회의", "회", false),
            // different nouns stay different
            ("미국", "중국", false),
            ("라브로프", "라브", false),
            ("훈련", "훈", false),
        ];
        for (q, t, expected) in table {
            assert_eq!(same_stem("ko", q, t), expected, "ko: ~{q} vs {t}");
        }
    }

    #[test]
    fn korean_never_strips_a_whole_word() {
        for e in KO_ENDINGS {
            let mut out = Vec::new();
            korean_stems(e, &mut out);
            assert!(out.iter().all(|s| !s.is_empty()), "{e}: {out:?}");
            assert!(!korean_query_stem(e).is_empty(), "{e}");
        }
        // one syllable before a particle: a text reading, never a query stem
        let mut out = Vec::new();
        korean_stems("군이", &mut out);
        assert_eq!(out, ["군이", "군"]);
        assert_eq!(korean_query_stem("군이"), "군이");
    }

    #[test]
    fn korean_endings_are_longest_first_and_unique() {
        let lens: Vec<usize> = KO_ENDINGS.iter().map(|e| e.chars().count()).collect();
        assert!(lens.windows(2).all(|w| w[0] >= w[1]), "{lens:?}");
        let mut seen = std::collections::HashSet::new();
        for e in KO_ENDINGS {
            assert!(seen.insert(*e), "duplicate {e}");
            assert!(e.chars().all(is_hangul_syllable), "{e}");
        }
    }

    #[test]
    fn non_hangul_and_long_words_are_their_own_stem() {
        let ko = lang("ko");
        for w in ["lavrov", "2026", "北朝鮮", "x이"] {
            let mut out = Vec::new();
            ko.query_stems(w, &mut out);
            assert_eq!(out, [w]);
        }
        let long = "a".repeat(MAX_WORD + 1);
        for l in Lang::all() {
            let mut out = Vec::new();
            l.query_stems(&long, &mut out);
            assert_eq!(out, std::slice::from_ref(&long));
            let mut out = Vec::new();
            l.text_stems(&long, &mut out);
            assert_eq!(out, std::slice::from_ref(&long));
        }
    }
}
