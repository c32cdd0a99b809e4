//! The tokenizer's fast paths against the general path (SPEC §5):
//! unicode-segmentation for words, then NFKC, case folding, decomposition
//! and mark removal for every word (`text::reference`). Same words, same
//! byte offsets, same normalized and case-sensitive forms:
//!
//! * property tests over random text in Cyrillic, Hangul, kana, kanji and
//!   Latin with diacritics, alone and mixed, with punctuation, digits,
//!   apostrophes, dots, hyphens and the characters that must take the
//!   general path (combining marks, full-width and half-width forms,
//!   compatibility ideographs, ZWJ, emoji, other scripts);
//! * every article of `examples/news.jsonl`, and of every corpus file in
//!   the directory `NEWSWATCH_CORPUS` names, when it is set.

use newswatch_core::lang::text::{self, reference, Tokens};
use proptest::prelude::*;

/// (start, end, normalized) of every token, by the fast path.
fn fast(text: &str) -> Vec<(u32, u32, String)> {
    let mut t = Tokens::new();
    t.push_text(text);
    t.toks()
        .iter()
        .enumerate()
        .map(|(i, k)| (k.start, k.end, t.norm(i).to_owned()))
        .collect()
}

#[track_caller]
fn check(text: &str) {
    assert_eq!(fast(text), reference::tokens(text), "text: {text:?}");
    assert_eq!(
        text::exact_words(text),
        reference::exact_words(text),
        "exact words of {text:?}"
    );
}

#[test]
fn examples() {
    let table = [
        "Министр иностранных дел России Сергей Лавров заявил, что «США» — и т.д.",
        "Ёлка, ёж: ЁЖ; 1,5 млн. руб.",
        "北朝鮮が日本海に向けて弾道ミサイルを発射した。防衛省によると、",
        "カ\u{3099}ス ガス ｶﾞｽ ＡＢＣ１２３ 々 人々 〆切",
        "미국과 일본은 3국 훈련을 실시했다. “한미일” 합동",
        "Café résumé naïve Ångström façade Œuvre ĳ ŉ",
        "don't O'Neill Russia’s U.S. 3.5% e-mail a_b カタ_カナ",
        "a\u{0301}b x\u{200D}y 🇺🇸🇷🇺 क\u{093E} \u{F900}\u{FA10} ｱｲｳ",
        "Tokyo東京Seoul서울Москва",
        "word:word 1;2 ２：３ Ｑ’ｓ",
        // Found by the property tests: a vowel sign after two spaces joins
        // them (WB3d, WB4); fractions and superscripts are numbers.
        "  \u{093E}",
        "¼А a² ¼\u{3000}",
    ];
    for text in table {
        check(text);
    }
}

/// Every classified character in every context the fast path's rules look
/// at, against unicode-segmentation: the tables of `text::fast` are right
/// character by character. In the blocks of ideographs and Hangul
/// syllables (one class each in unicode-segmentation's table, and 38,000
/// characters) every 97th character and both ends are checked.
#[test]
fn every_fast_char_in_every_context() {
    let sampled = |c: &char| {
        let u = *c as u32;
        let big = (0x3400..=0x9FFF).contains(&u) || (0xAC00..=0xD7A3).contains(&u);
        !big || u % 97 == 0 || [0x3400, 0x4DBF, 0x4E00, 0x9FFF, 0xAC00, 0xD7A3].contains(&u)
    };
    let reps = [
        "a", "1", "カ", "中", "か", " ", ":", ".", ",", "'", "_", "’", "\u{0301}", "-", "й", "가",
    ];
    for c in text::fast_chars().filter(sampled) {
        let c = c.to_string();
        let mut texts = Vec::with_capacity(3 * reps.len() + 16);
        for r in reps {
            texts.push(format!("{r}{c}"));
            texts.push(format!("{c}{r}"));
            texts.push(format!("{c}{r}{c}"));
        }
        for (a, b) in [
            ("a", "a"),
            ("1", "1"),
            ("й", "й"),
            ("가", "가"),
            ("カ", "カ"),
        ] {
            texts.push(format!("{a}{c}{b}"));
            for m in [":", ".", ",", "'", "’", ";"] {
                texts.push(format!("{c}{m}{b}"));
                texts.push(format!("{a}{m}{c}"));
            }
        }
        for t in &texts {
            let mut got = Vec::new();
            text::for_each_word(t, |s, w| got.push((s, w.to_owned())));
            let mut want = Vec::new();
            reference::for_each_word(t, |s, w| want.push((s, w.to_owned())));
            assert_eq!(got, want, "{t:?}");
        }
    }
}

#[test]
fn bundled_examples() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/news.jsonl");
    let n = check_file(std::path::Path::new(path));
    assert!(n > 50, "{n} articles");
}

/// Runs over the real corpora when `NEWSWATCH_CORPUS` names them.
#[test]
fn corpus_when_set() {
    let Some(dir) = std::env::var_os("NEWSWATCH_CORPUS") else {
        eprintln!("NEWSWATCH_CORPUS not set: corpus check skipped");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("NEWSWATCH_CORPUS is a directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.jsonl in {dir:?}");
    for f in files {
        let n = check_file(&f);
        eprintln!("{}: {n} articles equal", f.display());
    }
}

/// Checks title and body of every article of a JSON-lines file; returns
/// the number of articles.
fn check_file(path: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(path).expect("corpus file");
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        for k in ["title", "body"] {
            if let Some(t) = v.get(k).and_then(|t| t.as_str()) {
                check(t);
            }
        }
        n += 1;
    }
    n
}

// ---------------------------------------------------------------- properties

fn range(lo: u32, hi: u32) -> impl Strategy<Value = char> {
    (lo..=hi).prop_map(|u| char::from_u32(u).unwrap_or(' '))
}

/// Punctuation, digits and separators that sit between and inside words.
const PUNCT: &[char] = &[
    ' ', ' ', ' ', '\n', '\t', '.', ',', ':', ';', '\'', '’', '‘', 'ʼ', '-', '‐', '–', '—', '_',
    '"', '«', '»', '“', '”', '(', ')', '!', '?', '%', '/', '0', '1', '5', '9', '、', '。', '「',
    '」', '（', '）', '：', '・', 'ー', '\u{00A0}', '\u{3000}', '·', '…', '‿', '\u{202F}', '＿',
];

/// Characters the fast path must hand to the general path.
const HARD: &[char] = &[
    '\u{0301}',
    '\u{0308}',
    '\u{0306}',
    '\u{3099}',
    '\u{309A}',
    'ｶ',
    'ﾞ',
    'Ａ',
    '１',
    '\u{F900}',
    '\u{FA10}',
    'ﬁ',
    '\u{200D}',
    '\u{200B}',
    '\u{00AD}',
    '\u{1F1FA}',
    '\u{1F1F8}',
    '😀',
    '\u{FE0F}',
    '\u{093E}',
    'क',
    'א',
    '"',
    '\u{1100}',
    '\u{1161}',
    '㈜',
    '㎞',
    'Ⅸ',
    '\u{E0100}',
    'ǅ',
    'ß',
    'İ',
    'ς',
    'ΐ',
    '\u{0483}',
    '゠',
    '˂',
    '¸',
];

fn script_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => range(0x410, 0x44F),           // Russian letters
        1 => range(0x400, 0x52F),           // all Cyrillic
        1 => prop::sample::select(&['Ё', 'ё', 'Й', 'й'][..]),
        3 => range(0xAC00, 0xD7A3),         // Hangul syllables
        2 => range(0x3041, 0x309F),         // hiragana
        2 => range(0x30A0, 0x30FF),         // katakana
        3 => range(0x4E00, 0x9FFF),         // kanji
        1 => range(0x3400, 0x4DBF),
        3 => range(0xC0, 0x24F),            // Latin with diacritics
        1 => range(0x1E00, 0x1EFF),
        1 => range(0x370, 0x3FF),           // Greek
        3 => "[a-zA-Z]".prop_map(|s| s.chars().next().unwrap_or('a')),
        4 => prop::sample::select(PUNCT),
        1 => prop::sample::select(HARD),
        1 => range(0x2000, 0x206F),         // general punctuation
        1 => range(0x3000, 0x303F),         // CJK punctuation
        1 => range(0xFF00, 0xFFEF),         // full-width and half-width
        1 => range(0x80, 0x2FF),
    ]
}

/// Text in one script (words of 1-8 characters from one range, separated
/// by punctuation), or mixed.
fn words_of(ch: BoxedStrategy<char>) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::collection::vec(ch, 1..8),
            prop::collection::vec(prop::sample::select(PUNCT), 0..3),
        ),
        0..20,
    )
    .prop_map(|v| {
        v.into_iter()
            .flat_map(|(w, p)| w.into_iter().chain(p))
            .collect()
    })
}

fn one_script() -> impl Strategy<Value = String> {
    prop_oneof![
        words_of(range(0x410, 0x44F).boxed()),
        words_of(range(0xAC00, 0xD7A3).boxed()),
        words_of(range(0x3041, 0x30FF).boxed()),
        words_of(range(0x4E00, 0x9FFF).boxed()),
        words_of(range(0xC0, 0x17F).boxed()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn mixed_text_equals_general_path(chars in prop::collection::vec(script_char(), 0..120)) {
        let text: String = chars.into_iter().collect();
        prop_assert_eq!(fast(&text), reference::tokens(&text), "text: {:?}", text);
        prop_assert_eq!(text::exact_words(&text), reference::exact_words(&text));
    }

    #[test]
    fn one_script_text_equals_general_path(text in one_script()) {
        prop_assert_eq!(fast(&text), reference::tokens(&text), "text: {:?}", text);
        prop_assert_eq!(text::exact_words(&text), reference::exact_words(&text));
    }

    #[test]
    fn words_with_hard_chars_equal_general_path(
        text in words_of(prop_oneof![4 => script_char(), 1 => prop::sample::select(HARD)].boxed())
    ) {
        prop_assert_eq!(fast(&text), reference::tokens(&text), "text: {:?}", text);
        prop_assert_eq!(text::exact_words(&text), reference::exact_words(&text));
    }
}
