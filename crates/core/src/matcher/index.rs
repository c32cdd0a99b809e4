//! Phase 1, candidate selection: the anchor index, built once per rule set
//! (dictionary lookups, the prefix trie, each rule's anchors and required
//! patterns), and the candidates of one event looked up in it.

use rustc_hash::FxHashMap;

use super::wild::WildIndex;
use super::{CompiledRule, Matcher, Scratch};
use crate::lang::compile::{Dict, Expr, ExprKind, Pat, PatId};
use crate::lang::text;

/// What a normalized text word can be: a word pattern, and/or the
/// normalized form of some case-sensitive pattern.
#[derive(Debug, Clone, Copy)]
pub(super) struct WordEntry {
    /// The word pattern, or `NO_PAT`.
    pub(super) pat: PatId,
    /// Some `{…}` pattern normalizes to this word.
    pub(super) exact: bool,
}

pub(super) const NO_PAT: PatId = PatId::MAX;

/// A byte trie of the prefix patterns: walking a word down it finds every
/// prefix pattern the word starts with, in one probe per byte walked.
#[derive(Debug, Default)]
pub(super) struct PrefixTrie {
    /// Child of the root for each first byte (0 = none).
    root: Vec<u32>,
    /// (node << 8 | byte) -> child, below the first level.
    edges: FxHashMap<u64, u32>,
    /// Per node (index 0 is the root): the prefix pattern ending here, or `NO_PAT`.
    pat: Vec<PatId>,
}

impl PrefixTrie {
    fn new<'a>(prefixes: impl Iterator<Item = (&'a str, PatId)>) -> Self {
        Self::of_bytes(prefixes.map(|(p, id)| (p.as_bytes().to_vec(), id)))
    }

    /// A trie of byte strings (the wildcard index files reversed suffixes
    /// in one), each with its number.
    pub(super) fn of_bytes(prefixes: impl Iterator<Item = (Vec<u8>, PatId)>) -> Self {
        let mut t = PrefixTrie {
            root: vec![0; 256],
            edges: FxHashMap::default(),
            pat: vec![NO_PAT],
        };
        for (p, id) in prefixes {
            let mut node = 0u32;
            for &b in &p {
                let next = t.pat.len() as u32;
                let slot = if node == 0 {
                    &mut t.root[b as usize]
                } else {
                    t.edges.entry((node as u64) << 8 | b as u64).or_insert(0)
                };
                if *slot == 0 {
                    *slot = next;
                    t.pat.push(NO_PAT);
                }
                node = *slot;
            }
            t.pat[node as usize] = id;
        }
        t.edges.shrink_to_fit();
        t
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pat.len() <= 1
    }

    /// Every prefix pattern `w` starts with.
    #[inline]
    pub(super) fn for_each(&self, w: &str, f: impl FnMut(PatId)) {
        self.for_each_of(w.bytes(), f)
    }

    /// Every string of the trie that `bytes` start with.
    #[inline]
    pub(super) fn for_each_of(&self, bytes: impl Iterator<Item = u8>, mut f: impl FnMut(PatId)) {
        let mut node = 0u32;
        for b in bytes {
            node = if node == 0 {
                self.root[b as usize]
            } else {
                match self.edges.get(&((node as u64) << 8 | b as u64)) {
                    Some(&n) => n,
                    None => 0,
                }
            };
            if node == 0 {
                return;
            }
            // A pattern is valid UTF-8, so where it ends in `w` is a char
            // boundary of `w`.
            let p = self.pat[node as usize];
            if p != NO_PAT {
                f(p);
            }
        }
    }
}

const STOPWORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "for", "by", "with", "from", "is",
    "was", "be", "it", "its", "as", "that", "this", "said", "says", "he", "she", "they", "we",
    "has", "have", "had", "will", "would", "not", "but", "are", "were", "mln", "pct", "year", "и",
    "в", "на", "с", "по", "не", "что", "о", "к", "из", "за", "от", "для", "это", "как",
];

/// A rough cost of anchoring on a pattern: how often it will fire.
/// Short words and stop words are common; prefixes fire for many words.
fn pat_cost(p: &Pat) -> f64 {
    let (w, factor) = match p {
        Pat::Word(w) | Pat::Exact(w) => (w, 1.0),
        Pat::Prefix(w) => (w, 3.0),
        // A stem stands for a few forms of one word.
        Pat::Morph(w) => (w, 1.5),
        Pat::Wild(w) => (w, 4.0),
    };
    let len = w.chars().filter(|&c| c != '*' && c != '?').count().max(1) as f64;
    let stop = if STOPWORDS.contains(&w.as_ref()) {
        20.0
    } else {
        1.0
    };
    factor * stop * (1.0 + 6.0 / len)
}

/// The anchor set of an expression, with its cost; `None` when the
/// expression can be true without any text pattern occurring.
fn anchors(e: &Expr, dict: &Dict) -> Option<(f64, Vec<PatId>)> {
    match &e.kind {
        ExprKind::Text { pats, .. } => pats
            .iter()
            .map(|&p| (pat_cost(&dict.pats[p as usize]), p))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(c, p)| (c, vec![p])),
        ExprKind::Keyword { .. }
        | ExprKind::Compare { .. }
        | ExprKind::Exists(_)
        | ExprKind::Not(_) => None,
        ExprKind::Group(x) => anchors(x, dict),
        ExprKind::Or(items) => {
            let mut cost = 0.0;
            let mut all = Vec::new();
            for it in items {
                let (c, v) = anchors(it, dict)?;
                cost += c;
                all.extend(v);
            }
            all.sort_unstable();
            all.dedup();
            Some((cost, all))
        }
        ExprKind::And(items) => items
            .iter()
            .filter_map(|x| anchors(x, dict))
            .min_by(|a, b| a.0.total_cmp(&b.0)),
        ExprKind::Near { left, right, .. } => [anchors(left, dict), anchors(right, dict)]
            .into_iter()
            .flatten()
            .min_by(|a, b| a.0.total_cmp(&b.0)),
    }
}

pub(super) const REQUIRED: usize = 3;

/// Patterns that occur in every event the expression matches (the words of
/// a phrase, every AND branch, both sides of a NEAR; nothing under OR/NOT).
fn required(e: &Expr, out: &mut Vec<PatId>) {
    match &e.kind {
        ExprKind::Text { pats, .. } => out.extend_from_slice(pats),
        ExprKind::And(items) => items.iter().for_each(|x| required(x, out)),
        ExprKind::Near { left, right, .. } => {
            required(left, out);
            required(right, out);
        }
        ExprKind::Group(x) => required(x, out),
        ExprKind::Or(items) if items.len() == 1 => required(&items[0], out),
        ExprKind::Or(_)
        | ExprKind::Not(_)
        | ExprKind::Keyword { .. }
        | ExprKind::Compare { .. }
        | ExprKind::Exists(_) => {}
    }
}

impl Matcher {
    /// Index `rules` (in matcher order) over their shared pattern dictionary.
    pub fn new(mut dict: Dict, rules: Vec<CompiledRule>) -> Self {
        let prefixes = PrefixTrie::new(dict.prefixes.iter().map(|(p, &id)| (p.as_ref(), id)));
        let morph = super::morph::MorphIndex::new(&dict);
        let wilds = WildIndex::new(dict.wilds.iter().map(|(p, &id)| (p.as_ref(), id)));
        let words = word_entries(&mut dict);
        let mut per_pat: Vec<Vec<u32>> = vec![Vec::new(); dict.pats.len()];
        let mut always = Vec::new();
        let mut required = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            required.push(required_slot(r, &dict));
            match rule_anchors(r, &dict) {
                Some(pats) => {
                    for p in pats {
                        per_pat[p as usize].push(i as u32);
                    }
                }
                None => always.push(i as u32),
            }
        }
        let mut anchor_offsets = Vec::with_capacity(per_pat.len() + 1);
        let mut anchor_rules = Vec::new();
        anchor_offsets.push(0);
        for v in per_pat {
            anchor_rules.extend(v);
            anchor_offsets.push(anchor_rules.len() as u32);
        }
        anchor_rules.shrink_to_fit();
        Matcher {
            dict,
            words,
            prefixes,
            wilds,
            rules,
            anchor_offsets,
            anchor_rules,
            always,
            required,
            morph,
        }
    }

    /// The rules anchored on a pattern present in the prepared event, plus
    /// those always verified, into `s.cands` in rule order.
    pub(super) fn select_candidates(&self, s: &mut Scratch) {
        s.cands.clear();
        let mut i = 0;
        while i < s.occ.len() {
            let pat = s.occ[i] >> 32;
            i = s.pat_range[pat as usize].1 as usize;
            let (a, b) = (
                self.anchor_offsets[pat as usize] as usize,
                self.anchor_offsets[pat as usize + 1] as usize,
            );
            for &r in &self.anchor_rules[a..b] {
                if s.stamp[r as usize] != s.epoch {
                    s.stamp[r as usize] = s.epoch;
                    s.cands.push(r);
                }
            }
        }
        s.cands.extend_from_slice(&self.always);
        s.cands.sort_unstable();
    }
}

/// Every normalized word an event word is looked up as: the word patterns
/// (moved out of `dict.words`), marked where some case-sensitive pattern
/// normalizes to the same word.
fn word_entries(dict: &mut Dict) -> FxHashMap<Box<str>, WordEntry> {
    let mut words: FxHashMap<Box<str>, WordEntry> = std::mem::take(&mut dict.words)
        .into_iter()
        .map(|(w, pat)| (w, WordEntry { pat, exact: false }))
        .collect();
    for e in dict.exacts.keys() {
        let n = text::normalize_word(e);
        words
            .entry(n.into())
            .or_insert(WordEntry {
                pat: NO_PAT,
                exact: false,
            })
            .exact = true;
    }
    words.shrink_to_fit();
    words
}

/// Up to [`REQUIRED`] patterns a rule's query and filter both need, the
/// rarest-looking first (they reject the most candidates); `NO_PAT` pads.
fn required_slot(r: &CompiledRule, dict: &Dict) -> [PatId; REQUIRED] {
    let mut req = Vec::new();
    required(&r.query, &mut req);
    if let Some(f) = &r.filter {
        required(f, &mut req);
    }
    req.sort_unstable();
    req.dedup();
    req.sort_by(|&a, &b| {
        pat_cost(&dict.pats[a as usize]).total_cmp(&pat_cost(&dict.pats[b as usize]))
    });
    let mut slot = [NO_PAT; REQUIRED];
    for (s, p) in slot.iter_mut().zip(req) {
        *s = p;
    }
    slot
}

/// The cheaper anchor set of a rule's query and filter (either must hold);
/// `None` when neither has one, and the rule is verified for every event.
fn rule_anchors(r: &CompiledRule, dict: &Dict) -> Option<Vec<PatId>> {
    let q = anchors(&r.query, dict);
    let f = r.filter.as_ref().and_then(|f| anchors(f, dict));
    [q, f]
        .into_iter()
        .flatten()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, pats)| pats)
}
