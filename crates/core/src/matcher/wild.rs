//! Wildcard patterns (`*stan`, `kim*un`, `wom?n`) found in an event's words
//! without trying every pattern on every word.
//!
//! As in Lucene Monitor's presearcher and Hyperscan's literal factoring,
//! each pattern is filed under one literal piece it must contain (its
//! longest: the rarest-looking). One Aho-Corasick automaton over the
//! distinct pieces runs over each event word, in time linear in the word
//! whatever the number of patterns, and only the patterns filed under a
//! piece found in the word are then checked in full ([`glob_match`]).
//!
//! Invariant: [`WildIndex::for_each`] reports exactly the patterns that
//! [`glob_match`] accepts for the word, each once (the property test below
//! holds it to trying every pattern).

use aho_corasick::AhoCorasick;

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

/// The longest literal piece of a pattern.
fn key_piece(p: &str) -> &str {
    p.split(['*', '?']).max_by_key(|x| x.len()).unwrap_or("")
}

/// One pattern filed under a piece.
#[derive(Debug)]
struct Filed {
    pat: PatId,
    glob: Box<[u8]>,
    /// No shorter word can match: literal bytes plus one per `?`.
    min_len: usize,
}

/// The wildcard patterns of a rule set, filed under their literal pieces.
#[derive(Debug, Default)]
pub(super) struct WildIndex {
    /// Over the distinct pieces; `None` without patterns.
    ac: Option<AhoCorasick>,
    /// Per piece (the automaton's pattern number), its patterns.
    filed: Vec<Vec<Filed>>,
}

impl WildIndex {
    pub(super) fn new<'a>(patterns: impl Iterator<Item = (&'a str, PatId)>) -> Self {
        let mut pieces: Vec<&str> = Vec::new();
        let mut filed: Vec<Vec<Filed>> = Vec::new();
        let mut by_piece = rustc_hash::FxHashMap::default();
        for (p, pat) in patterns {
            let piece = key_piece(p);
            let k = *by_piece.entry(piece).or_insert_with(|| {
                pieces.push(piece);
                filed.push(Vec::new());
                pieces.len() - 1
            });
            filed[k].push(Filed {
                pat,
                glob: p.as_bytes().into(),
                min_len: p.bytes().filter(|&b| b != b'*').count(),
            });
        }
        // Every pattern has a non-empty piece (the compiler requires
        // literal characters), so the automaton never matches empty.
        let ac = if pieces.is_empty() {
            None
        } else {
            AhoCorasick::new(&pieces).ok()
        };
        WildIndex { ac, filed }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ac.is_none()
    }

    /// Every pattern the normalized word `w` matches, once each; `seen` is
    /// a reusable buffer (pieces already looked at in this word).
    #[inline]
    pub(super) fn for_each(&self, w: &str, seen: &mut Vec<usize>, mut f: impl FnMut(PatId)) {
        let Some(ac) = &self.ac else {
            return;
        };
        seen.clear();
        for m in ac.find_overlapping_iter(w) {
            let k = m.pattern().as_usize();
            // A piece that occurs twice in the word files the same patterns.
            if seen.contains(&k) {
                continue;
            }
            seen.push(k);
            for x in &self.filed[k] {
                if w.len() >= x.min_len && glob_match(&x.glob, w.as_bytes()) {
                    f(x.pat);
                }
            }
        }
    }

    /// Heap bytes, roughly (for benchmarks).
    pub(super) fn heap_size_hint(&self) -> usize {
        let ac = self.ac.as_ref().map_or(0, |a| a.memory_usage());
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
