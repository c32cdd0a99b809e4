//! Wildcard patterns (`*stan`, `kim*un`, `wom?n`) found in an event's words
//! without trying every pattern on every word.
//!
//! As in Lucene Monitor's presearcher and Hyperscan's literal factoring,
//! each pattern is filed under one literal piece it must contain, and only
//! the patterns filed under a piece found in the word are checked in full
//! ([`glob_match`]). The piece is the most selective one: the literal start
//! of a pattern that does not begin with a wildcard (`kim` of `kim*un`) or
//! the literal end of one that does not end with one (`stan` of `*stan`),
//! found by walking the word's first or last bytes down a trie, a step or
//! two for most words; only for a pattern open at both ends (`*stan*`), or
//! whose anchored pieces are too short, the longest piece anywhere, found
//! by one Aho-Corasick automaton over those pieces, in time linear in the
//! word whatever the number of patterns.
//!
//! Most words hold no piece at all, and even a trie walk or a short
//! automaton search costs tens of nanoseconds per word, a large share of
//! an event's matching at 10k rules. So gates come first: bitmaps of the
//! first two bytes of the starts and the last two of the ends, and of the
//! first three bytes of the other pieces (hashed; two- and one-byte pieces
//! in bitmaps of their own) probed with each three-byte window of the
//! word, as in an n-gram presearcher. Only a word a gate admits is looked
//! up behind it.
//!
//! Invariant: [`WildIndex::for_each`] reports exactly the patterns that
//! [`glob_match`] accepts for the word, each once (the property test below
//! holds it to trying every pattern).

use aho_corasick::AhoCorasick;

use super::index::PrefixTrie;
use crate::lang::compile::PatId;

/// The byte length of the UTF-8 character whose first byte is `b`.
fn char_len(b: u8) -> usize {
    match b {
        0..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Whether `s` matches the pattern `p`: `*` any run of characters
/// (possibly none), `?` exactly one character, every other byte itself.
///
/// The classic greedy matcher that backtracks only to the last `*`: each
/// `*` may absorb one more character of `s` on a mismatch, so the work is
/// at most `|p| × |s|` (words are short). Bytes are compared directly:
/// both are UTF-8 and restarts are at character boundaries, so a literal
/// character only ever matches a whole character.
pub(crate) fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    // (pattern index after the last `*`, where in `s` it resumes)
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if let Some(&c) = p.get(pi) {
            if c == b'*' {
                pi += 1;
                star = Some((pi, si));
                continue;
            }
            if c == b'?' {
                pi += 1;
                si += char_len(s[si]);
                continue;
            }
            if c == s[si] {
                pi += 1;
                si += 1;
                continue;
            }
        }
        match star {
            Some((after, from)) => {
                let next = from + char_len(s[from]);
                star = Some((after, next));
                pi = after;
                si = next;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Where a pattern is filed: under its literal start, its literal end,
/// or a piece anywhere in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key<'a> {
    Start(&'a str),
    End(&'a str),
    Inside(&'a str),
}

/// The most selective piece of a pattern: an anchored piece of 2 bytes or
/// more (a word starts or ends with it far more rarely than it contains
/// it), the longer of the two; else the longest piece, if of 3 bytes;
/// else any anchored piece; else the longest piece.
fn key_piece(p: &str) -> Key<'_> {
    let pieces: Vec<&str> = p.split(['*', '?']).collect();
    let start = pieces.first().copied().filter(|x| !x.is_empty());
    let end = pieces
        .last()
        .copied()
        .filter(|x| !x.is_empty() && pieces.len() > 1);
    let longest = pieces.iter().copied().max_by_key(|x| x.len()).unwrap_or("");
    let anchored = match (start, end) {
        (Some(s), Some(e)) if e.len() > s.len() => Some(Key::End(e)),
        (Some(s), _) => Some(Key::Start(s)),
        (None, Some(e)) => Some(Key::End(e)),
        (None, None) => None,
    };
    let len = |k: Key<'_>| match k {
        Key::Start(x) | Key::End(x) | Key::Inside(x) => x.len(),
    };
    match anchored {
        Some(k) if len(k) >= 2 => k,
        _ if longest.len() >= 3 => Key::Inside(longest),
        Some(k) => k,
        None => Key::Inside(longest),
    }
}

/// One pattern filed under a piece.
#[derive(Debug)]
struct Filed {
    pat: PatId,
    glob: Box<[u8]>,
    /// No shorter word can match: literal bytes plus one per `?`.
    min_len: usize,
}

/// Bits of the gate's bitmaps: 2^16, 8 KiB each.
const GATE_BITS: usize = 1 << 16;

/// Which words may contain a piece: a word that has none of the bits set
/// contains no piece (no false negatives; false positives only cost a
/// search).
#[derive(Debug)]
struct Gate {
    /// Hashed first three bytes of the pieces of three bytes or more.
    tri: Box<[u64]>,
    /// The two-byte pieces (exact).
    bi: Option<Box<[u64]>>,
    /// The one-byte pieces.
    one: Option<[u64; 4]>,
}

fn tri_hash(g: &[u8]) -> usize {
    let x = u32::from(g[0]) | u32::from(g[1]) << 8 | u32::from(g[2]) << 16;
    (x.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

fn bi_index(g: &[u8]) -> usize {
    usize::from(g[0]) << 8 | usize::from(g[1])
}

fn set(bits: &mut [u64], i: usize) {
    bits[i >> 6] |= 1 << (i & 63);
}

fn get(bits: &[u64], i: usize) -> bool {
    bits[i >> 6] & (1 << (i & 63)) != 0
}

impl Gate {
    fn new(pieces: &[&str]) -> Self {
        let mut g = Gate {
            tri: vec![0; GATE_BITS / 64].into(),
            bi: None,
            one: None,
        };
        for p in pieces.iter().map(|p| p.as_bytes()) {
            match p.len() {
                0 => {}
                1 => set(g.one.get_or_insert([0; 4]), usize::from(p[0])),
                2 => set(
                    g.bi.get_or_insert_with(|| vec![0; GATE_BITS / 64].into()),
                    bi_index(p),
                ),
                _ => set(&mut g.tri, tri_hash(p)),
            }
        }
        g
    }

    /// Whether `w` may contain a piece.
    #[inline]
    fn admits(&self, w: &[u8]) -> bool {
        if let Some(one) = &self.one {
            if w.iter().any(|&b| get(one, usize::from(b))) {
                return true;
            }
        }
        if let Some(bi) = &self.bi {
            if w.windows(2).any(|g| get(bi, bi_index(g))) {
                return true;
            }
        }
        w.windows(3).any(|g| get(&self.tri, tri_hash(g)))
    }
}

/// Which two leading bytes (of a word, or of a reversed word) may begin a
/// key: exact, in a bitmap of 2^16 bits; a one-byte key admits every word.
#[derive(Debug, Default)]
struct TwoBytes {
    bits: Option<Box<[u64]>>,
    all: bool,
}

impl TwoBytes {
    fn new<'a>(keys: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut t = TwoBytes::default();
        for k in keys {
            match k {
                [] => {}
                [_] => t.all = true,
                [a, b, ..] => set(
                    t.bits.get_or_insert_with(|| vec![0; GATE_BITS / 64].into()),
                    bi_index(&[*a, *b]),
                ),
            }
        }
        t
    }

    #[inline]
    fn admits(&self, mut bytes: impl Iterator<Item = u8>) -> bool {
        if self.all {
            return true;
        }
        let Some(bits) = &self.bits else {
            return false;
        };
        match (bytes.next(), bytes.next()) {
            (Some(a), Some(b)) => get(bits, bi_index(&[a, b])),
            _ => false,
        }
    }
}

/// The wildcard patterns of a rule set, filed under their literal pieces.
#[derive(Debug, Default)]
pub(super) struct WildIndex {
    /// Literal starts -> their group in `filed`.
    starts: PrefixTrie,
    /// Literal ends, reversed -> their group in `filed`.
    ends: PrefixTrie,
    /// The first two bytes of the starts, the last two of the ends (in
    /// reverse), so that most words skip the trie walks.
    start_gate: TwoBytes,
    end_gate: TwoBytes,
    /// Over the pieces filed by [`Key::Inside`], with the gate before it;
    /// `None` without such patterns.
    ac: Option<(Gate, AhoCorasick)>,
    /// The automaton's pattern number -> its group in `filed`.
    inside: Vec<u32>,
    /// Per group (one key), its patterns.
    filed: Vec<Vec<Filed>>,
    /// Whether there are any patterns.
    any: bool,
}

impl WildIndex {
    pub(super) fn new<'a>(patterns: impl Iterator<Item = (&'a str, PatId)>) -> Self {
        let mut filed: Vec<Vec<Filed>> = Vec::new();
        let mut groups: rustc_hash::FxHashMap<Key<'a>, usize> = Default::default();
        for (p, pat) in patterns {
            let key = key_piece(p);
            let g = *groups.entry(key).or_insert_with(|| {
                filed.push(Vec::new());
                filed.len() - 1
            });
            filed[g].push(Filed {
                pat,
                glob: p.as_bytes().into(),
                min_len: p.bytes().filter(|&b| b != b'*').count(),
            });
        }
        let (mut starts, mut ends, mut inside) = (Vec::new(), Vec::new(), Vec::new());
        for (&k, &g) in &groups {
            match k {
                Key::Start(x) => starts.push((x.as_bytes().to_vec(), g as PatId)),
                Key::End(x) => ends.push((x.bytes().rev().collect::<Vec<u8>>(), g as PatId)),
                Key::Inside(x) => inside.push((x, g as u32)),
            }
        }
        // In a fixed order, so the automaton's numbering does not depend
        // on the hash map's.
        inside.sort_unstable();
        let pieces: Vec<&str> = inside.iter().map(|&(x, _)| x).collect();
        // Pieces are non-empty (the compiler requires literal
        // characters), so the automaton never matches empty.
        let ac = if pieces.is_empty() {
            None
        } else {
            AhoCorasick::new(&pieces)
                .ok()
                .map(|ac| (Gate::new(&pieces), ac))
        };
        WildIndex {
            start_gate: TwoBytes::new(starts.iter().map(|(k, _)| k.as_slice())),
            end_gate: TwoBytes::new(ends.iter().map(|(k, _)| k.as_slice())),
            starts: PrefixTrie::of_bytes(starts.into_iter()),
            ends: PrefixTrie::of_bytes(ends.into_iter()),
            ac,
            inside: inside.into_iter().map(|(_, g)| g).collect(),
            any: !filed.is_empty(),
            filed,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        !self.any
    }

    /// Every pattern the normalized word `w` matches, once each (each is
    /// in one group, each group found once); `seen` is a reusable buffer.
    #[inline]
    pub(super) fn for_each(&self, w: &str, seen: &mut Vec<usize>, mut f: impl FnMut(PatId)) {
        let mut check = |g: usize| {
            for x in &self.filed[g] {
                if w.len() >= x.min_len && glob_match(&x.glob, w.as_bytes()) {
                    f(x.pat);
                }
            }
        };
        if self.start_gate.admits(w.bytes()) {
            self.starts.for_each_of(w.bytes(), |g| check(g as usize));
        }
        if self.end_gate.admits(w.bytes().rev()) {
            self.ends
                .for_each_of(w.bytes().rev(), |g| check(g as usize));
        }
        let Some((gate, ac)) = &self.ac else {
            return;
        };
        if !gate.admits(w.as_bytes()) {
            return;
        }
        seen.clear();
        for m in ac.find_overlapping_iter(w) {
            let k = m.pattern().as_usize();
            // A piece that occurs twice in the word files the same patterns.
            if seen.contains(&k) {
                continue;
            }
            seen.push(k);
            check(self.inside[k] as usize);
        }
    }

    /// Heap bytes, roughly (for benchmarks).
    pub(super) fn heap_size_hint(&self) -> usize {
        let ac = self
            .ac
            .as_ref()
            .map_or(0, |(_, a)| a.memory_usage() + 2 * GATE_BITS / 8);
        ac + self
            .filed
            .iter()
            .flatten()
            .map(|x| x.glob.len() + std::mem::size_of::<Filed>())
            .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn key_table() {
        use Key::*;
        let table = [
            ("*stan", End("stan")),
            ("kim*un", Start("kim")),
            ("sa*ons", End("ons")),
            ("wom?n", Start("wom")),
            ("?ran", End("ran")),
            ("*stan*", Inside("stan")),
            ("a?b?c", Start("a")),
            ("*ab*cde?", Inside("cde")),
            ("*ab*c?", Inside("ab")),
        ];
        for (p, want) in table {
            assert_eq!(key_piece(p), want, "{p}");
        }
    }

    #[test]
    fn glob_table() {
        let table = [
            ("*stan", "kazakhstan", true),
            ("*stan", "stan", true),
            ("*stan", "stand", false),
            ("kim*un", "kimjongun", true),
            ("kim*un", "kimun", true),
            ("kim*un", "kimunx", false),
            ("wom?n", "woman", true),
            ("wom?n", "women", true),
            ("wom?n", "womn", false),
            ("wom?n", "wommen", false),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b*", "xxbxxaxx", false),
            ("a?c", "aéc", true),
            ("a?c", "aééc", false),
            ("?é?", "aéb", true),
            ("ми?ист*", "министерство", true),
            ("*ист", "министерство", false),
            ("日*韓", "日米韓", true),
            ("*", "", true),
            ("a*", "", false),
        ];
        for (p, s, want) in table {
            assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), want, "{p} on {s}");
        }
    }

    /// A reference matcher: recursion over characters, exponential but plain.
    fn naive(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| naive(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && naive(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && naive(rest, &s[1..]),
        }
    }

    fn word() -> impl Strategy<Value = String> {
        // A small alphabet with multi-byte letters, so pieces collide often.
        proptest::collection::vec(
            prop::sample::select(vec!['a', 'b', 'n', 'é', 'ы', '韓']),
            0..10,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn pattern() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec!['a', 'b', 'n', 'é', 'ы', '韓', '*', '?']),
            1..7,
        )
        .prop_map(|v| v.into_iter().collect::<String>())
        // The compiler's patterns: some literal character, no `**`.
        .prop_filter("a literal", |p: &String| {
            p.chars().any(|c| c != '*' && c != '?') && !p.contains("**")
        })
    }

    proptest! {
        /// The indexed lookup reports exactly the patterns that a check of
        /// every pattern on the word accepts, and the byte matcher agrees
        /// with the reference on each.
        #[test]
        fn index_equals_checking_every_pattern(
            pats in proptest::collection::vec(pattern(), 1..40),
            words in proptest::collection::vec(word(), 1..30),
        ) {
            let mut uniq = pats.clone();
            uniq.sort();
            uniq.dedup();
            let idx = WildIndex::new(uniq.iter().enumerate().map(|(i, p)| (p.as_str(), i as PatId)));
            let mut seen = Vec::new();
            for w in &words {
                let wc: Vec<char> = w.chars().collect();
                let want: Vec<PatId> = uniq
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| naive(&p.chars().collect::<Vec<_>>(), &wc))
                    .map(|(i, _)| i as PatId)
                    .collect();
                for (i, p) in uniq.iter().enumerate() {
                    prop_assert_eq!(
                        glob_match(p.as_bytes(), w.as_bytes()),
                        want.contains(&(i as PatId)),
                        "{} on {}", p, w
                    );
                }
                let mut got = Vec::new();
                idx.for_each(w, &mut seen, |p| got.push(p));
                got.sort_unstable();
                prop_assert_eq!(got, want, "word {}", w);
            }
        }
    }
}
