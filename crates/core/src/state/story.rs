//! "Same story" detection for `first_seen` rules (SPEC §6): MinHash
//! signatures of word shingles, and an LSH banding index to find earlier
//! stories that may be the same one.
//!
//! # The question
//!
//! A `first_seen` rule fires once per story. When an event matches, the rule
//! engine must decide whether it is a near-duplicate of a story it already
//! alerted on within the window: the same report syndicated, lightly edited,
//! corrected, updated, or given a new headline by another outlet. Such
//! versions share long runs of identical wording; distinct stories on the
//! same topic share vocabulary and boilerplate, but rarely long runs.
//!
//! # The method
//!
//! 1. **Words.** Title and body are split and normalized with the matcher's
//!    own [`crate::lang::text`] functions, so case, accents, punctuation, `U.S.` vs
//!    `US` make no difference, in every script the tokenizer handles (a
//!    Japanese kanji or hiragana is a word of its own, so Japanese shingles
//!    are mostly character n-grams).
//! 2. **Shingles.** Every run of [`SHINGLE_WORDS`] consecutive words of a
//!    field is one shingle; a text is the *set* of its shingles. Shingles do
//!    not cross from the title into the body, so a new headline changes only
//!    the title's few shingles. Five words is long enough that two different
//!    earnings or dividend notices built from the same template share few
//!    shingles (every changed figure breaks five of them), and short enough
//!    that a light edit leaves most shingles intact (the evaluation in
//!    `examples/story_eval.rs` compared 3 to 6 words).
//! 3. **Similarity** is the Jaccard index of the two shingle sets,
//!    `|A ∩ B| / |A ∪ B|`, estimated by MinHash: each of [`NUM_HASHES`] hash
//!    functions keeps the minimum hash over the set, and the fraction of equal
//!    minima is an unbiased estimate of the Jaccard index (standard error
//!    `sqrt(J(1-J)/128)`, at most 0.044). A signature has a fixed size (512
//!    bytes) whatever the text's length, and comparing two costs 128 integer
//!    comparisons.
//! 4. **Candidates.** Comparing a new event with every story held would cost
//!    time proportional to the number of stories. [`LshIndex`] cuts each
//!    signature into [`BANDS`] bands of [`ROWS`] minima and files the story
//!    under each band's hash. Two texts of similarity `s` share at least one
//!    band with probability `1 - (1 - s^3)^42`: 0.94 at 0.4, 0.996 at 0.5,
//!    but only 0.29 at 0.2 and 0.04 at 0.1. A lookup costs 42 hash probes
//!    plus the few stories found, whatever the number of stories indexed;
//!    the caller confirms each candidate with [`similarity`].
//!
//! # Why not something else
//!
//! * Exact hashing of the normalized text finds only exact repeats: one
//!   changed word or a new dateline defeats it.
//! * Comparing with every story held is exact but its cost grows with the
//!   stories held; the index makes it constant.
//! * SimHash (one 64-bit fingerprint, Hamming distance) is far more compact
//!   and good at near-exact copies a few bits apart, but it estimates a
//!   weighted cosine with no simple error bound, and finding every
//!   fingerprint within a looser radius (an edited, re-headlined copy) needs
//!   many permuted tables. MinHash estimates Jaccard with a known error and
//!   the banding can be tuned to the threshold wanted.
//!
//! # Short texts
//!
//! A text with fewer than [`MIN_WORDS`] words in title and body together has
//! no signature ([`signature`] returns `None`): two words say nothing about
//! whether two events are one story, and the caller then treats the event as
//! a new story (it fires). A field with at least one word but fewer than
//! [`SHINGLE_WORDS`] words becomes a single shingle made of all its words,
//! so title-only events do not collapse into one signature: two short texts
//! are similar only if their words are identical (similarity 1.0), and
//! otherwise near 0.
//!
//! # Determinism
//!
//! Signatures are written to the state changelog and compared across
//! processes, restarts and machines, so every hash here is a fixed function
//! of the normalized bytes: no random seeds, no `RandomState`, no
//! platform-dependent word size. The hash functions are the SplitMix64
//! finalizer (Steele, Lea, Flood, 2014) for mixing, and per-permutation
//! multiply-add-shift `(a·x + b) >> 32` with 128 fixed odd multipliers. A
//! unit test pins a signature value so that any change is noticed. The
//! words are those of [`crate::lang::text`]: a change to its normalization changes
//! the signatures of stored stories too (the state changelog then needs a
//! migration).
//!
//! This module does no IO and never panics on any input.

use std::hash::Hash;

use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use crate::lang::text;

/// Number of MinHash functions in a [`Signature`].
pub const NUM_HASHES: usize = 128;

/// Words per shingle.
pub const SHINGLE_WORDS: usize = 5;

/// Fewer words than this (title and body together) and [`signature`]
/// returns `None`.
pub const MIN_WORDS: usize = 3;

/// Words read per field. Beyond this the cost of a signature would grow
/// with the text for no gain: a story's identity is settled long before.
pub const MAX_WORDS: usize = 10_000;

/// The default `similarity` of `first_seen` rules: estimated Jaccard index of
/// the shingle sets at or above which two events are the same story.
///
/// Chosen on 265 pairs of Reuters-21578 articles judged by hand
/// (`tests/data/story_pairs.tsv`, `examples/story_eval.rs`). Among the 171
/// pairs published within 24 hours of each other (what a 24h window sees),
/// at 0.4: 93% of the pairs called "same" are one story (precision) and 72%
/// of the same-story pairs are caught (recall); 0.3 catches 75% at 89%
/// precision, 0.5 only 57% at 98%. Lower thresholds catch more shortened or
/// rewritten versions but start merging template reports (grain quotes,
/// fund dividends) that are different news; higher ones let more repeats
/// alert twice. A missed duplicate costs the analyst one extra alert; a
/// false "same" hides a new story, so the threshold leans to precision.
pub const DEFAULT_SIMILARITY: f64 = 0.4;

/// LSH bands.
pub const BANDS: usize = 42;

/// Minima per LSH band. `BANDS * ROWS` (126) of the 128 minima are banded;
/// all 128 count in [`similarity`].
pub const ROWS: usize = 3;

/// At most this many stories are taken from one bucket per lookup, newest
/// first. A bucket only grows large when many stories held share a band, that
/// is when the stream repeats one template all day; the cap keeps the cost of
/// a lookup bounded even then (at most `BANDS * MAX_BUCKET_SCAN` candidates),
/// and the newest stories are the likeliest duplicates.
pub const MAX_BUCKET_SCAN: usize = 64;

const _: () = assert!(BANDS * ROWS <= NUM_HASHES);

/// MinHash signature of a text: for each of the [`NUM_HASHES`] hash
/// functions, the minimum hash over the text's shingles.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature([u32; NUM_HASHES]);

impl Signature {
    /// The minima, in hash-function order.
    pub fn mins(&self) -> &[u32; NUM_HASHES] {
        &self.0
    }

    /// Lower-case hex, 8 digits per minimum, most significant first: 1024
    /// characters. Plain ASCII, so it goes into JSON without escaping.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(NUM_HASHES * 8);
        for &m in &self.0 {
            for shift in (0..8).rev() {
                s.push(DIGITS[((m >> (shift * 4)) & 0xf) as usize] as char);
            }
        }
        s
    }

    /// Parse [`Signature::to_hex`]'s output (either case). `None` for any
    /// other length or a non-hex character.
    pub fn from_hex(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != NUM_HASHES * 8 {
            return None;
        }
        let mut mins = [0u32; NUM_HASHES];
        for (m, chunk) in mins.iter_mut().zip(b.chunks_exact(8)) {
            for &c in chunk {
                let d = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    b'A'..=b'F' => c - b'A' + 10,
                    _ => return None,
                };
                *m = (*m << 4) | u32::from(d);
            }
        }
        Some(Signature(mins))
    }
}

/// Signature of an event's text (title + body); `None` when the text has
/// fewer than [`MIN_WORDS`] words.
pub fn signature(title: Option<&str>, body: Option<&str>) -> Option<Signature> {
    let mut words = Vec::new();
    let mut mins = [u32::MAX; NUM_HASHES];
    let mut total = 0;
    for field in [title, body].into_iter().flatten() {
        word_hashes(field, &mut words);
        total += words.len();
        for_each_shingle(&words, SHINGLE_WORDS, |h| minhash_into(&mut mins, h));
    }
    (total >= MIN_WORDS).then_some(Signature(mins))
}

/// Estimated Jaccard similarity in [0, 1]: the fraction of equal minima.
pub fn similarity(a: &Signature, b: &Signature) -> f64 {
    let equal = a.0.iter().zip(&b.0).filter(|(x, y)| x == y).count();
    equal as f64 / NUM_HASHES as f64
}

/// The shingle hashes of a text with `k` words per shingle (clamped to
/// 1..=16), sorted and deduplicated: the exact set the signature samples.
/// For evaluation and tests (exact Jaccard, other shingle lengths); the
/// rule engine needs only [`signature`].
pub fn shingles(title: Option<&str>, body: Option<&str>, k: usize, out: &mut Vec<u64>) {
    out.clear();
    let k = k.clamp(1, 16);
    let mut words = Vec::new();
    for field in [title, body].into_iter().flatten() {
        word_hashes(field, &mut words);
        for_each_shingle(&words, k, |h| out.push(h));
    }
    out.sort_unstable();
    out.dedup();
}

/// The normalized words of `text` (at most [`MAX_WORDS`]), hashed.
fn word_hashes(text: &str, out: &mut Vec<u64>) {
    out.clear();
    let mut buf = String::new();
    text::for_each_word(text, |_, seg| {
        if out.len() >= MAX_WORDS {
            return;
        }
        buf.clear();
        text::normalize_word_into(seg, &mut buf);
        if !buf.is_empty() {
            out.push(hash_bytes(buf.as_bytes()));
        }
    });
}

/// Call `f` with the hash of every `k`-word shingle of one field; a field
/// with 1..k words is one shingle of all its words (see "Short texts").
fn for_each_shingle(words: &[u64], k: usize, mut f: impl FnMut(u64)) {
    if words.is_empty() {
        return;
    }
    if words.len() < k {
        f(shingle_hash(words));
        return;
    }
    for w in words.windows(k) {
        f(shingle_hash(w));
    }
}

/// Seeds of the different hash uses, so a word hash is never mistaken for a
/// shingle or band hash. Arbitrary fixed constants (digits of pi).
const WORD_SEED: u64 = 0x243f_6a88_85a3_08d3;
const SHINGLE_SEED: u64 = 0x1319_8a2e_0370_7344;
const BAND_SEED: u64 = 0xa409_3822_299f_31d0;
const PERM_SEED: u64 = 0x082e_fa98_ec4e_6c89;

/// The SplitMix64 finalizer: a bijection on u64 with full avalanche.
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of a byte string: 8-byte little-endian chunks (assembled byte by
/// byte, so the result does not depend on the machine's endianness) each
/// mixed into the state; the length is mixed in first so that zero padding
/// of the last chunk cannot make two strings equal.
fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = mix64(WORD_SEED ^ b.len() as u64);
    for chunk in b.chunks(8) {
        let w = chunk
            .iter()
            .enumerate()
            .fold(0u64, |w, (i, &c)| w | (u64::from(c) << (8 * i)));
        h = mix64(h ^ w);
    }
    h
}

/// Order-sensitive hash of a sequence of word hashes.
fn shingle_hash(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(mix64(SHINGLE_SEED ^ words.len() as u64), |h, &w| {
            mix64(h ^ w)
        })
}

/// The MinHash functions `h_i(x) = (a_i·x + b_i) mod 2^64 >> 32`, with odd
/// `a_i` and any `b_i` drawn from a SplitMix64 sequence at compile time.
/// `x` is already a well-mixed 64-bit shingle hash, so a multiply-add-shift
/// family is enough to make the 128 minima behave as independent samples.
const PERMS: ([u64; NUM_HASHES], [u64; NUM_HASHES]) = {
    let mut a = [0u64; NUM_HASHES];
    let mut b = [0u64; NUM_HASHES];
    let mut state = PERM_SEED;
    let mut i = 0;
    while i < NUM_HASHES {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        a[i] = mix64(state) | 1;
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        b[i] = mix64(state);
        i += 1;
    }
    (a, b)
};

/// Fold one shingle hash into the running minima. Written as a plain loop
/// over fixed-size arrays so the compiler vectorizes it.
#[inline]
fn minhash_into(mins: &mut [u32; NUM_HASHES], x: u64) {
    let (a, b) = &PERMS;
    for ((m, &ai), &bi) in mins.iter_mut().zip(a).zip(b) {
        let v = (ai.wrapping_mul(x).wrapping_add(bi) >> 32) as u32;
        *m = (*m).min(v);
    }
}

/// Hash of band `band` of `sig`: the key of its LSH bucket.
fn band_key(band: usize, sig: &Signature) -> u64 {
    let rows = &sig.0[band * ROWS..(band + 1) * ROWS];
    rows.iter().fold(mix64(BAND_SEED ^ band as u64), |h, &m| {
        mix64(h ^ u64::from(m))
    })
}

/// One LSH bucket. Nearly every bucket holds a single story, so that case
/// is stored inline; the vector keeps insertion order (oldest first).
///
/// The vector is boxed so that a bucket is 16 bytes instead of 24 for
/// `u64` keys: the table holds 42 buckets per story, and its size is most
/// of the index's memory (about 2 KB per story).
#[derive(Debug, Clone)]
#[allow(clippy::box_collection)]
enum Bucket<K> {
    One(K),
    Many(Box<Vec<K>>),
}

/// LSH banding index over signatures: [`LshIndex::candidates`] returns the
/// stories that share at least one band with a signature, at a cost that
/// does not grow with the number of stories indexed.
///
/// Each story is stored once per band (42 bucket entries). `remove` is the
/// exact inverse of `insert`: buckets are deleted when they empty, so an
/// index whose stories have all been removed holds nothing.
#[derive(Debug, Clone)]
pub struct LshIndex<K> {
    buckets: FxHashMap<u64, Bucket<K>>,
    len: usize,
}

impl<K: Copy + Eq + Hash> Default for LshIndex<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq + Hash> LshIndex<K> {
    pub fn new() -> Self {
        LshIndex {
            buckets: FxHashMap::default(),
            len: 0,
        }
    }

    /// File `key` under every band of `sig`. Inserting the same key twice
    /// stores it twice (and it then takes two removes).
    pub fn insert(&mut self, key: K, sig: &Signature) {
        for band in 0..BANDS {
            match self.buckets.entry(band_key(band, sig)) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Bucket::One(key));
                }
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let b = e.get_mut();
                    match b {
                        Bucket::One(k0) => *b = Bucket::Many(Box::new(vec![*k0, key])),
                        Bucket::Many(v) => v.push(key),
                    }
                }
            }
        }
        self.len += 1;
    }

    /// Undo one `insert(key, sig)`; `sig` must be the signature the key was
    /// inserted with (the caller keeps it with the story). Removing a key
    /// that is not there does nothing; given another signature, only the
    /// buckets the two signatures share are touched.
    pub fn remove(&mut self, key: K, sig: &Signature) {
        let mut found = false;
        for band in 0..BANDS {
            let bk = band_key(band, sig);
            let Some(b) = self.buckets.get_mut(&bk) else {
                continue;
            };
            match b {
                Bucket::One(k0) => {
                    if *k0 == key {
                        self.buckets.remove(&bk);
                        found = true;
                    }
                }
                Bucket::Many(v) => {
                    // Stories leave the window oldest first, so the key is
                    // usually at the front.
                    if let Some(pos) = v.iter().position(|k| *k == key) {
                        v.remove(pos);
                        found = true;
                        if v.len() == 1 {
                            *b = Bucket::One(v[0]);
                        }
                    }
                }
            }
        }
        if found {
            // Saturating: a remove with a wrong signature must not panic.
            self.len = self.len.saturating_sub(1);
        }
    }

    /// Clear `out`, then fill it with the keys that share at least one band
    /// with `sig`, each once, in band order (at most [`MAX_BUCKET_SCAN`] per
    /// bucket, newest first). The caller confirms each with [`similarity`].
    pub fn candidates(&self, sig: &Signature, out: &mut Vec<K>) {
        out.clear();
        for band in 0..BANDS {
            match self.buckets.get(&band_key(band, sig)) {
                None => {}
                Some(Bucket::One(k)) => out.push(*k),
                Some(Bucket::Many(v)) => out.extend(v.iter().rev().take(MAX_BUCKET_SCAN)),
            }
        }
        dedup_keep_first(out);
    }

    /// Number of stories indexed (inserts minus effective removes).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of non-empty buckets (for tests and memory estimates).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

/// Remove repeated keys from `v`, keeping the first occurrence, in place.
/// A story found through several bands is usually found through a handful,
/// so short lists are deduplicated by scanning; long ones through a set.
fn dedup_keep_first<K: Copy + Eq + Hash>(v: &mut Vec<K>) {
    if v.len() <= 64 {
        let mut w = 0;
        for r in 0..v.len() {
            let k = v[r];
            if !v[..w].contains(&k) {
                v[w] = k;
                w += 1;
            }
        }
        v.truncate(w);
    } else {
        let mut seen = FxHashSet::with_capacity_and_hasher(v.len(), FxBuildHasher);
        v.retain(|k| seen.insert(*k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(title: &str, body: &str) -> Signature {
        match signature(Some(title), Some(body)) {
            Some(s) => s,
            None => panic!("no signature for {title:?} / {body:?}"),
        }
    }

    const WIRE: &str = "TOKYO, March 29 - Japan is seeking to prevent its computer chips \
        dispute with the U.S. from erupting into a full-scale trade war, government officials \
        said. \"We hope that the dispute on this specific issue won't have an adverse effect on \
        our overall relationship,\" a Foreign Ministry official said. Tokyo has been told that \
        Washington will impose tariffs of up to 300 mln dlrs on Japanese electronic goods on \
        April 17 in retaliation for what it sees as Japan's failure to honour a 1986 pact on \
        semiconductor trade. The ministry of international trade and industry said it would \
        send a team of officials to Washington for emergency talks next week.";

    /// Same report, new headline, dateline moved a day, one word changed,
    /// the way a syndicated copy arrives from another desk.
    const SYNDICATED: &str = "TOKYO, March 30 - Japan is seeking to prevent its computer \
        chips dispute with the U.S. from erupting into a full-scale trade war, government \
        officials said. \"We hope that the dispute on this specific issue won't have an adverse \
        effect on our overall relationship,\" a Foreign Ministry official said. Tokyo has been \
        told that Washington will impose tariffs of up to 300 mln dlrs on Japanese electronic \
        goods on April 17 in retaliation for what it sees as Japan's failure to honour a 1986 \
        agreement on semiconductor trade. The ministry of international trade and industry said \
        it would send a team of officials to Washington for emergency talks next week.";

    const OTHER: &str = "HOUSTON, April 9 - Utilization of offshore mobile rigs in the \
        European and Mediterranean area continued to show strong gains last week, increasing \
        nearly two percentage points to 46.1 pct, Offshore Data Services said. The total number \
        of working rigs in the region was 71, an increase of three during the week.";

    fn check(a: (&str, &str), b: (&str, &str), expected: std::ops::RangeInclusive<f64>) {
        let s = similarity(&sig(a.0, a.1), &sig(b.0, b.1));
        assert!(
            expected.contains(&s),
            "similarity {s:.3} not in {expected:?}\n a: {a:?}\n b: {b:?}"
        );
    }

    #[test]
    fn similarity_table() {
        let d = DEFAULT_SIMILARITY;
        let title = "TOKYO BIDS TO STOP CHIP ROW TURNING INTO TRADE WAR";
        check((title, WIRE), (title, WIRE), 1.0..=1.0);
        // Case, accents and punctuation do not matter.
        check(
            (
                "Café prices rise",
                "São Paulo coffee prices rose 5 pct in early trade.",
            ),
            (
                "CAFE PRICES RISE",
                "SAO PAULO -- coffee prices rose 5 pct, in early trade!",
            ),
            1.0..=1.0,
        );
        // Syndicated copy: other headline, other dateline, one word edited.
        check(
            (title, WIRE),
            ("JAPAN TRIES TO HEAD OFF TRADE WAR OVER CHIPS", SYNDICATED),
            d..=1.0,
        );
        // A shortened version: the first half of the story.
        let half = &WIRE[..WIRE.len() / 2];
        check((title, WIRE), (title, half), 0.3..=0.8);
        // Unrelated.
        check(
            (title, WIRE),
            ("EUROPEAN RIG COUNT CLIMBS", OTHER),
            0.0..=0.05,
        );
        // Russian: same report re-headlined, one word changed.
        check(
            (
                "МИД России осудил учения",
                "Министерство иностранных дел России заявило в четверг, что совместные \
                 учения США, Южной Кореи и Японии угрожают безопасности в регионе, и \
                 призвало стороны вернуться к переговорам.",
            ),
            (
                "Москва критикует трёхсторонние учения",
                "Министерство иностранных дел России заявило в четверг, что совместные \
                 учения США, Южной Кореи и Японии угрожают стабильности в регионе, и \
                 призвало стороны вернуться к переговорам.",
            ),
            d..=1.0,
        );
        // Korean: syndicated with a new headline.
        check(
            (
                "북한, 동해상으로 탄도미사일 발사",
                "합동참모본부는 북한이 오늘 오전 동해상으로 단거리 탄도미사일 두 발을 \
                 발사했다고 밝혔다. 군은 추가 발사에 대비해 감시와 경계를 강화하고 있다.",
            ),
            (
                "합참 \"北, 단거리 탄도미사일 2발 발사\"",
                "합동참모본부는 북한이 오늘 오전 동해상으로 단거리 탄도미사일 두 발을 \
                 발사했다고 밝혔다. 군은 추가 발사에 대비해 감시와 경계를 강화하고 있다.",
            ),
            d..=1.0,
        );
        // Japanese: every kanji is a word, so shingles are character runs.
        check(
            (
                "北朝鮮がミサイル発射",
                "防衛省によると、北朝鮮は本日午前、日本海に向けて弾道ミサイル二発を発射した。\
                 政府は情報収集と警戒監視に全力を挙げている。",
            ),
            (
                "北朝鮮、弾道ミサイル二発を発射",
                "防衛省によると、北朝鮮は本日午前、日本海に向けて弾道ミサイル二発を発射した。\
                 政府は情報の収集と警戒監視に全力を挙げている。",
            ),
            d..=1.0,
        );
        // Japanese, unrelated.
        check(
            (
                "北朝鮮がミサイル発射",
                "防衛省によると、北朝鮮は本日午前、日本海に向けて弾道ミサイル二発を発射した。",
            ),
            (
                "大阪で新しい鉄道が開通",
                "大阪市内と空港を結ぶ新しい鉄道路線が全線開通し、多くの利用客でにぎわった。",
            ),
            0.0..=0.05,
        );
    }

    #[test]
    fn short_texts() {
        // Too few words: no signature.
        assert_eq!(signature(None, None), None);
        assert_eq!(signature(Some(""), Some("  -- ")), None);
        assert_eq!(signature(Some("Oil"), None), None);
        assert_eq!(signature(Some("Oil"), Some("up")), None);
        // Title-only events are one shingle each: equal only when the words
        // are, and far apart otherwise (not one shared "empty" signature).
        let a = signature(Some("Oil prices rise"), None);
        let b = signature(Some("oil PRICES rise!"), None);
        let c = signature(Some("Oil prices fall"), None);
        let d = signature(Some("Gold prices rise"), None);
        let (Some(a), Some(b), Some(c), Some(d)) = (a, b, c, d) else {
            panic!("three-word titles must have signatures");
        };
        assert_eq!(similarity(&a, &b), 1.0);
        assert!(similarity(&a, &c) < 0.05, "{}", similarity(&a, &c));
        assert!(similarity(&a, &d) < 0.05, "{}", similarity(&a, &d));
        assert!(similarity(&c, &d) < 0.05, "{}", similarity(&c, &d));
    }

    #[test]
    fn hex_round_trip() {
        let s = sig("TITLE OF A STORY", WIRE);
        let h = s.to_hex();
        assert_eq!(h.len(), NUM_HASHES * 8);
        assert!(h
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(Signature::from_hex(&h), Some(s.clone()));
        assert_eq!(Signature::from_hex(&h.to_uppercase()), Some(s));
        for bad in [
            String::new(),
            h[1..].to_string(),
            format!("{h}0"),
            format!("+{}", &h[1..]),
            format!("g{}", &h[1..]),
            format!("é{}", &h[2..]),
        ] {
            assert_eq!(Signature::from_hex(&bad), None, "{bad:?}");
        }
    }

    /// The exact value of a signature is part of the state format: a change
    /// of tokenization or hashing would make stored stories unrecognizable
    /// after an upgrade. If this test fails on purpose, the changelog needs
    /// a migration (or a new state version).
    #[test]
    fn signature_is_pinned() {
        let s = sig("Fed adds reserves", "The Federal Reserve entered the U.S. Government securities market to arrange 1.5 billion dlrs of customer repurchase agreements, a Fed spokesman said.");
        assert_eq!(s.to_hex(), PINNED);
        assert_eq!(
            hash_bytes(b"reuters"),
            PINNED_WORD,
            "{:#x}",
            hash_bytes(b"reuters")
        );
    }

    const PINNED: &str = concat!(
        "01815ad709fc29471024cc351326b84b1a361b02020923a71df4849524f7e283",
        "01083f8606305135036c5bed09daed7f2da1c31b073f6b490cb904e502f7321d",
        "0a122a6d10578d280327e32f015fe0e406ab87a31c4d85600810b9dc00848515",
        "047b53d22588d491110dfcb81068fda217b28c6210769b990e95a50d118a02e4",
        "0ebd77d40489ddbb040043e10c98c8bd11c1f1ff090aaafb0884bfbd23058b49",
        "009d01f600bc02f103610e092af249240d519b120508699402acc13b0617a9b2",
        "0626ae731072e8510e80c1b0090ae08c04a5644907528fc400d3beb20a434b59",
        "062244d1002411e8006909de100c613f1217f9cd08c1b695138b4207108e4018",
        "1111ea7a0a4fe9c304d7cbdb036122c6003fd8f3242a678b06cc4704066b5fab",
        "0b6c57c20d2bfb6005ffc94b0379ffd909e93163007bea270c02c93003ac1268",
        "0fa2d1cc06cbc23d1b8bee6008d2dfee0b4b94bc0741faca0e985db205df2680",
        "039f35df115ab0cf14194e1e00d51c39047ce91409f621ae0c3fd4491bc71dab",
        "02b9d2d0027a983512af7e3304344870050a53b400b9608539e1a18b3be183c1",
        "01ed13b30f615b9f247ecdbe0c60bc2401cf097002522b1006433f1c181c4932",
        "138268150845bb1d008bef1a007d1a4717d543040965221f02081c70002ff4ff",
        "0c9689c300a0f5810ad4c87c04a39e29157450733892ebe10dea8e2503fb93be",
    );
    const PINNED_WORD: u64 = 0xa30f_6e08_fc7e_3935;

    #[test]
    fn determinism_across_calls() {
        let a = sig("T", WIRE);
        let b = sig("T", WIRE);
        assert_eq!(a, b);
        let mut s1 = Vec::new();
        let mut s2 = Vec::new();
        shingles(Some("T"), Some(WIRE), SHINGLE_WORDS, &mut s1);
        shingles(Some("T"), Some(WIRE), SHINGLE_WORDS, &mut s2);
        assert_eq!(s1, s2);
    }

    #[test]
    fn estimate_tracks_exact_jaccard() {
        let texts = [WIRE, SYNDICATED, &WIRE[..WIRE.len() / 2], OTHER];
        let mut a = Vec::new();
        let mut b = Vec::new();
        for x in texts {
            for y in texts {
                shingles(None, Some(x), SHINGLE_WORDS, &mut a);
                shingles(None, Some(y), SHINGLE_WORDS, &mut b);
                let inter = a.iter().filter(|h| b.binary_search(h).is_ok()).count();
                let exact = inter as f64 / (a.len() + b.len() - inter) as f64;
                let est = similarity(&sig("", x), &sig("", y));
                // Four standard errors at the worst case J = 0.5.
                assert!((est - exact).abs() < 0.18, "est {est} exact {exact}");
            }
        }
    }

    #[test]
    fn index_insert_remove() {
        let s1 = sig("A", WIRE);
        let s2 = sig("B", SYNDICATED);
        let s3 = sig("C", OTHER);
        let mut idx = LshIndex::new();
        assert!(idx.is_empty());
        idx.insert(1u64, &s1);
        idx.insert(2, &s2);
        idx.insert(3, &s3);
        idx.insert(4, &s1); // an exact repeat shares every bucket
        assert_eq!(idx.len(), 4);
        let mut out = Vec::new();
        idx.candidates(&s1, &mut out);
        assert!(
            out.contains(&1) && out.contains(&2) && out.contains(&4),
            "{out:?}"
        );
        assert!(!out.contains(&3), "{out:?}");
        let mut dedup = out.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), out.len(), "duplicates in {out:?}");
        // Removing a key under the wrong signature, or twice, changes nothing.
        idx.remove(3, &s1);
        assert_eq!(idx.len(), 4);
        idx.remove(1, &s1);
        idx.remove(1, &s1);
        assert_eq!(idx.len(), 3);
        idx.candidates(&s1, &mut out);
        assert!(!out.contains(&1) && out.contains(&4), "{out:?}");
        idx.remove(4, &s1);
        idx.remove(2, &s2);
        idx.remove(3, &s3);
        assert!(idx.is_empty());
        assert_eq!(idx.bucket_count(), 0, "buckets leaked");
        idx.candidates(&s1, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn index_remove_with_wrong_signature() {
        // A signature that shares only band 0 with `s`: misuse, but it must
        // neither panic nor leave the index inconsistent after the right
        // remove.
        let s = sig("A", WIRE);
        let mut mins = *s.mins();
        for m in &mut mins[ROWS..] {
            *m ^= 1;
        }
        let Some(t) = Signature::from_hex(&Signature(mins).to_hex()) else {
            panic!("round trip");
        };
        let mut idx = LshIndex::new();
        idx.insert(9u64, &s);
        idx.remove(9, &t);
        idx.remove(9, &s);
        idx.remove(9, &s);
        assert!(idx.is_empty());
        assert_eq!(idx.bucket_count(), 0);
    }

    #[test]
    fn index_many_keys_one_bucket() {
        // Many copies of one story: every bucket is shared; lookups are
        // capped and deduplicated; removal in any order empties the index.
        let s = sig("A", WIRE);
        let mut idx = LshIndex::new();
        for k in 0..500u32 {
            idx.insert(k, &s);
        }
        let mut out = Vec::new();
        idx.candidates(&s, &mut out);
        assert_eq!(out.len(), MAX_BUCKET_SCAN);
        assert_eq!(out[0], 499, "newest first");
        for k in (0..500u32).rev().step_by(2).chain((0..500u32).step_by(2)) {
            idx.remove(k, &s);
        }
        assert!(idx.is_empty());
        assert_eq!(idx.bucket_count(), 0);
    }

    #[test]
    fn dedup_long_lists() {
        let mut v: Vec<u32> = (0..200).map(|i| i % 70).collect();
        dedup_keep_first(&mut v);
        assert_eq!(v, (0..70).collect::<Vec<_>>());
        let mut v = vec![3u32, 1, 3, 2, 1];
        dedup_keep_first(&mut v);
        assert_eq!(v, vec![3, 1, 2]);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            /// Any text: no panic; a signature equals itself, survives the
            /// hex round trip, and its similarity with anything is in [0, 1].
            #[test]
            fn any_text(t in "\\PC{0,40}", b in "\\PC{0,300}", o in "\\PC{0,300}") {
                let x = signature(Some(&t), Some(&b));
                let y = signature(None, Some(&o));
                if let Some(x) = &x {
                    prop_assert_eq!(similarity(x, x), 1.0);
                    prop_assert_eq!(Signature::from_hex(&x.to_hex()), Some(x.clone()));
                    if let Some(y) = &y {
                        let s = similarity(x, y);
                        prop_assert!((0.0..=1.0).contains(&s));
                        prop_assert_eq!(s, similarity(y, x));
                    }
                }
            }

            #[test]
            fn any_hex(h in "[0-9a-fA-F+ g]{0,1030}") {
                if let Some(s) = Signature::from_hex(&h) {
                    prop_assert_eq!(s.to_hex(), h.to_ascii_lowercase());
                }
            }
        }
    }

    #[test]
    fn band_probability_at_default() {
        // The banding finds pairs at the default similarity with high
        // probability (the caller then verifies with `similarity`).
        let p = 1.0 - (1.0 - DEFAULT_SIMILARITY.powi(ROWS as i32)).powi(BANDS as i32);
        assert!(p > 0.93, "{p}");
    }
}
