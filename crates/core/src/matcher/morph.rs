//! `~word` in the matcher: the stems of every `~` word per language,
//! indexed once per rule set, and each event's words looked up by their
//! stems in the event's language.
//!
//! A `~word` is one pattern ([`crate::lang::compile::Pat::Morph`]) whatever the language. Its
//! stems in a language with an analyzer are computed once per rule set
//! ([`crate::lang::morph::Lang::query_stems`]), when the first event in
//! that language arrives, and each stem points at the pattern: so a `~`
//! term is an index anchor in every language, like a plain word. For an event, the language is its `lang`
//! when that names a language with an analyzer, else the detected one
//! ([`crate::lang::detect`]); each text word's stems in that language
//! are looked up, and an occurrence of the pattern is recorded where one
//! points at it. Without a language the pattern occurs where the word
//! itself does (`~word` is `word`).
//!
//! Stems are computed only for events of a rule set that has `~` terms,
//! and are cached per thread per (language, word) in [`StemCache`], which
//! does not depend on the rule set (it survives reloads) and is bounded.
//!
//! Invariant: the index is immutable after construction; the cache is
//! the caller's (in its `Scratch`), so the matcher holds no mutable state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use crate::event::Event;
use crate::lang::compile::{Dict, PatId};
use crate::lang::detect;
use crate::lang::morph::{morph_form, Lang};
use crate::lang::text;

/// The stems of every `~` word, per language.
#[derive(Debug, Default)]
pub(super) struct MorphIndex {
    /// Normalized word -> its patterns, for events without an analyzer
    /// (`~мой` and `~мои` are both `мои` there).
    plain: FxHashMap<Box<str>, Vec<PatId>>,
    /// The heads of the `plain` words, which a text word must start with
    /// before it is looked up there.
    plain_heads: Heads,
    /// Every `~` word (its morph form) and its pattern.
    words: Vec<(Box<str>, PatId)>,
    /// Per [`Lang`]: the stems of every `~` word in it, built on the first
    /// event in that language. Compiling rules does not wait for stems of
    /// languages no event uses (19 analyzers: that would triple compile
    /// time); once built, an index never changes.
    langs: Vec<OnceLock<LangIndex>>,
}

/// Numbers every [`LangIndex`] ever built, so a [`StemCache`] knows
/// whether the patterns it cached for a word are this index's.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The `~` words of a rule set in one language.
#[derive(Debug, Default)]
struct LangIndex {
    /// From [`GENERATION`]: unique to this index.
    gen: u64,
    /// Stem -> the patterns of the `~` words with that stem.
    stems: FxHashMap<Box<str>, Vec<PatId>>,
    /// The heads of the stems, which a text word must start with before it
    /// is stemmed at all.
    heads: Heads,
}

impl LangIndex {
    fn build(lang: Lang, words: &[(Box<str>, PatId)]) -> Self {
        let mut ix = LangIndex {
            gen: GENERATION.fetch_add(1, Ordering::Relaxed),
            ..LangIndex::default()
        };
        let mut buf = Vec::new();
        for (w, pat) in words {
            buf.clear();
            lang.query_stems(w, &mut buf);
            for s in buf.drain(..) {
                ix.heads.add(&s, drops_last_letter(lang));
                let pats = ix.stems.entry(s.into()).or_default();
                if !pats.contains(pat) {
                    pats.push(*pat);
                }
            }
        }
        ix
    }
}

/// Whether a stem's last letter may differ from the word's in `lang`:
/// English (happy → happi), Turkish (kitabı → kitap), Hungarian, Finnish
/// and Dutch (consonant and vowel changes at the end). Elsewhere a stem is
/// a prefix of its words and its head is its whole start, which rejects
/// more words.
fn drops_last_letter(lang: Lang) -> bool {
    matches!(lang.code(), "en" | "tr" | "hu" | "fi" | "nl")
}

/// How many leading bytes of a stem make its head.
const HEAD: usize = 8;

/// The first (up to [`HEAD`]) bytes of every stem of one language, in the
/// normalized spelling of text words (й as и), without the stem's last
/// letter where [`drops_last_letter`]. A stem is a prefix of the words it
/// stems from (the analyzers cut endings), so a text word
/// that starts with no head has none of the stems and is never stemmed:
/// most words of an event are rejected by a few integer probes. (English
/// Snowball's irregular dying → die is the one kind of form it misses.)
///
/// The heads of one length are bits of a Bloom filter (one hash, 2^16
/// bits): a probe is a multiplication and a bit test, and a word whose
/// head collides with a real one is only stemmed for nothing.
#[derive(Debug, Default)]
struct Heads {
    /// Per head length (index `len - 1`): the filter's words, empty when
    /// no head has that length.
    bits: Vec<Vec<u64>>,
    /// The distinct head lengths, ascending.
    lens: Vec<u8>,
}

/// Bits per head length (8 KiB: the eight filters stay in a core's L2).
const HEAD_BITS: u32 = 16;

/// The filter bit of the first `len` bytes of `b`.
#[inline]
fn head_bit(b: &[u8], len: usize) -> usize {
    let mut k = [0u8; HEAD];
    k[..len].copy_from_slice(&b[..len]);
    let x = u64::from_le_bytes(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> (64 - HEAD_BITS)) as usize
}

impl Heads {
    fn add(&mut self, stem: &str, drop_last: bool) {
        let norm = stem.replace('й', "и");
        let last = if drop_last {
            norm.chars().last().map_or(0, char::len_utf8)
        } else {
            0
        };
        let len = match norm.len() - last {
            0 => norm.len(),
            n => n,
        }
        .min(HEAD);
        if len == 0 {
            return;
        }
        if self.bits.len() < HEAD {
            self.bits.resize(HEAD, Vec::new());
        }
        let words = &mut self.bits[len - 1];
        if words.is_empty() {
            *words = vec![0; 1 << (HEAD_BITS - 6)];
        }
        let bit = head_bit(norm.as_bytes(), len);
        words[bit >> 6] |= 1 << (bit & 63);
        if let Err(i) = self.lens.binary_search(&(len as u8)) {
            self.lens.insert(i, len as u8);
        }
    }

    /// Whether the normalized word `w` starts with some head.
    #[inline]
    fn admits(&self, w: &str) -> bool {
        let b = w.as_bytes();
        self.lens
            .iter()
            .take_while(|&&l| l as usize <= b.len())
            .any(|&l| {
                let bit = head_bit(b, l as usize);
                self.bits[l as usize - 1][bit >> 6] & (1 << (bit & 63)) != 0
            })
    }
}

impl MorphIndex {
    pub(super) fn new(dict: &Dict) -> Self {
        let mut plain: FxHashMap<Box<str>, Vec<PatId>> = FxHashMap::default();
        let mut words = Vec::with_capacity(dict.morphs.len());
        for (w, &pat) in &dict.morphs {
            plain
                .entry(text::normalize_word(w).into())
                .or_default()
                .push(pat);
            words.push((w.clone(), pat));
        }
        words.sort_unstable();
        let mut plain_heads = Heads::default();
        for w in plain.keys() {
            plain_heads.add(w, false);
        }
        MorphIndex {
            plain,
            plain_heads,
            words,
            langs: (0..Lang::COUNT).map(|_| OnceLock::new()).collect(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.plain.is_empty()
    }

    /// Every `~` pattern the text word `seg` (normalized: `w`) is a form of.
    #[inline]
    pub(super) fn for_each(
        &self,
        lang: Option<Lang>,
        seg: &str,
        w: &str,
        cache: &mut StemCache,
        mut f: impl FnMut(PatId),
    ) {
        match lang {
            None => {
                if !self.plain_heads.admits(w) {
                    return;
                }
                if let Some(pats) = self.plain.get(w) {
                    pats.iter().for_each(|&p| f(p));
                }
            }
            Some(lang) => {
                let ix =
                    self.langs[lang.index()].get_or_init(|| LangIndex::build(lang, &self.words));
                if !ix.heads.admits(w) {
                    return;
                }
                cache.pats(lang, ix, seg).iter().for_each(|&p| f(p));
            }
        }
    }

    /// The stems `~word` is looked up by in `lang` (for `explain`).
    pub(super) fn stems_of(&self, lang: Option<Lang>, word: &str) -> Vec<String> {
        let mut out = Vec::new();
        match lang {
            Some(l) => l.query_stems(word, &mut out),
            None => out.push(word.to_owned()),
        }
        out
    }
}

/// An event's language as `~` and `lang:` see it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct EventLang {
    /// The analyzer `~` uses, if any.
    pub(super) analyzer: Option<Lang>,
    /// The detected language, when the event has no `lang` and it was
    /// detected (it stands in for `lang:` filters).
    pub(super) detected: Option<&'static str>,
}

/// The language of an event for `~`: its `lang` when that names a
/// language with an analyzer, else the detected one (detection runs then
/// only).
pub(super) fn event_lang(ev: &Event) -> EventLang {
    if let Some(l) = ev.lang.as_deref().and_then(Lang::from_tag) {
        return EventLang {
            analyzer: Some(l),
            detected: None,
        };
    }
    let d = detect_event(ev);
    EventLang {
        analyzer: d.and_then(Lang::from_tag),
        detected: if ev.lang.is_none() { d } else { None },
    }
}

/// The detected language of an event's text.
pub(super) fn detect_event(ev: &Event) -> Option<&'static str> {
    detect::detect(
        ev.title.as_deref().unwrap_or(""),
        ev.body.as_deref().unwrap_or(""),
    )
}

/// Cached entries above which a [`StemCache`] starts afresh (each entry
/// is a word and its stems: some 100 bytes).
const MAX_CACHED: usize = 100_000;

/// Stems per (language, word as written), one cache per thread: keyed by
/// the text's own segment, a hit costs no normalization. Each entry also
/// keeps the `~` patterns its stems name in the last index it was looked
/// up in, so a word costs one probe while the rule set stays the same;
/// the stems themselves survive reloads.
#[derive(Debug, Default)]
pub struct StemCache {
    /// Per [`Lang`]: word -> index into `entries`.
    index: Vec<FxHashMap<Box<str>, u32>>,
    entries: Vec<Entry>,
    buf: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    stems: Box<[Box<str>]>,
    /// The [`LangIndex::gen`] that `pats` were found in (0: none).
    gen: u64,
    pats: Box<[PatId]>,
}

impl StemCache {
    /// The index of the entry of segment `w` in `lang`, stemmed on first use.
    fn entry(&mut self, lang: Lang, w: &str) -> usize {
        if self.index.len() != Lang::COUNT {
            self.index = (0..Lang::COUNT).map(|_| FxHashMap::default()).collect();
        }
        if let Some(&i) = self.index[lang.index()].get(w) {
            return i as usize;
        }
        if self.entries.len() >= MAX_CACHED {
            self.index.iter_mut().for_each(FxHashMap::clear);
            self.entries.clear();
        }
        self.buf.clear();
        lang.text_stems(&morph_form(w), &mut self.buf);
        let i = self.entries.len();
        self.entries.push(Entry {
            stems: self.buf.drain(..).map(String::into_boxed_str).collect(),
            gen: 0,
            pats: Box::new([]),
        });
        self.index[lang.index()].insert(w.into(), i as u32);
        i
    }

    /// The text stems of the segment `w` in `lang`.
    #[cfg(test)]
    fn stems(&mut self, lang: Lang, w: &str) -> &[Box<str>] {
        let i = self.entry(lang, w);
        &self.entries[i].stems
    }

    /// The `~` patterns of `ix` that the segment `w` is a form of.
    fn pats(&mut self, lang: Lang, ix: &LangIndex, w: &str) -> &[PatId] {
        let i = self.entry(lang, w);
        let e = &mut self.entries[i];
        if e.gen != ix.gen {
            let mut pats: Vec<PatId> = Vec::new();
            for s in e.stems.iter() {
                if let Some(p) = ix.stems.get(s.as_ref()) {
                    pats.extend(p);
                }
            }
            pats.sort_unstable();
            pats.dedup();
            e.pats = pats.into();
            e.gen = ix.gen;
        }
        &e.pats
    }

    /// Number of cached words (for tests).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_computes_once_and_stays_bounded() {
        let ru = Lang::from_tag("ru").expect("ru");
        let mut c = StemCache::default();
        assert_eq!(&*c.stems(ru, "Лаврова")[0], "лавров");
        assert_eq!(&*c.stems(ru, "Лаврова")[0], "лавров");
        assert_eq!(c.len(), 1);
        assert_eq!(&*c.stems(ru, "Захаровой")[0], "захаров");
        for i in 0..MAX_CACHED + 5 {
            c.stems(ru, &format!("w{i}"));
        }
        assert!(c.len() <= MAX_CACHED);
    }

    #[test]
    fn heads_admit_the_words_of_their_stems_only() {
        let mut h = Heads::default();
        for s in [
            "лавров",
            "лавр",
            "захаровой",
            "exercis",
            "us",
            "훈련",
            "happi",
        ] {
            h.add(s, true);
        }
        let mut full = Heads::default();
        full.add("лавр", false);
        assert!(full.admits("лаврова") && !full.admits("лава"));
        for (w, want) in [
            ("лаврова", true),
            ("лавр", true),
            ("захаровои", true),
            ("exercises", true),
            ("exercis", true),
            ("use", true),
            ("u", true),
            ("happy", true),
            ("x", false),
            ("훈련에서", true),
            ("훈장", true),
            ("군대", false),
            ("лава", true),
            ("лес", false),
            ("exert", false),
            ("", false),
        ] {
            assert_eq!(h.admits(w), want, "{w:?}");
        }
    }

    #[test]
    fn event_language() {
        let ev = |lang: Option<&str>, body: &str| Event {
            id: serde_json::json!(1),
            title: None,
            body: Some(body.to_owned()),
            source: None,
            lang: lang.map(Into::into),
            url: None,
            published_at: None,
            story_id: None,
            raw: serde_json::json!({}),
        };
        let ru_text = "Министр иностранных дел России Сергей Лавров заявил, что учения \
                       будут иметь последствия для безопасности региона.";
        let table = [
            (Some("en-US"), ru_text, Some("en"), None),
            (None, ru_text, Some("ru"), Some("ru")),
            // a lang without an analyzer: the detected one stands in for
            // `~`, but `lang:` compares the event's own
            (Some("uk"), ru_text, Some("ru"), None),
            (None, "12345", None, None),
        ];
        for (lang, body, analyzer, detected) in table {
            let l = event_lang(&ev(lang, body));
            assert_eq!(l.analyzer.map(Lang::code), analyzer, "{lang:?}");
            assert_eq!(l.detected, detected, "{lang:?}");
        }
    }
}
