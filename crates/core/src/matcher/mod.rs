//! The compiled matcher: every rule, tested against one event at a time.
//!
//! Two phases, as in Lucene's Monitor:
//!
//! 1. **Candidate selection.** Every rule gets an *anchor set*: patterns of
//!    which at least one must occur in the event for the rule to possibly
//!    match (for `a AND b` the cheaper side's, for `a OR b` the union, a
//!    phrase's rarest-looking word). The event's words are looked up once in
//!    the rule set's shared dictionary (one hash probe per word, plus a walk
//!    down a trie of the prefixes, plus one pass of an automaton over the
//!    wildcard patterns' literal pieces when there are any: `wild`); the hits
//!    are the event's *occurrence index*,
//!    and the rules anchored on the patterns present are the candidates.
//!    Rules whose queries have no anchor (keyword-only ones) are always
//!    candidates.
//! 2. **Verification.** Each candidate's expression is evaluated against the
//!    occurrence index (binary searches, no rescanning of text). Only for the
//!    rules that match is it evaluated again to collect spans.
//!
//! Per-event cost is therefore the tokenization of the event plus work
//! proportional to the candidates, not to the number of rules.
//!
//! The matcher does no IO and holds no mutable state: callers pass a
//! [`Scratch`] (one per thread) whose buffers are reused between events.
//!
//! Code map: `index` builds the anchor index once per rule set and selects
//! an event's candidates; `occurrences` tokenizes an event into its
//! occurrence index; `verify` evaluates a candidate's expression and
//! collects its spans (NEAR/s over the sentences of
//! [`crate::lang::sentence`], computed only when such a rule is verified);
//! `wild` finds wildcard patterns; `explain` evaluates every clause for
//! `newswatch explain`.

pub mod cost;
mod explain;
mod index;
mod morph;
mod occurrences;
mod verify;
mod wild;

pub use explain::{Explained, MorphNote};
pub use morph::StemCache;

use rustc_hash::FxHashMap;

use crate::event::Event;
use crate::lang::compile::{Dict, Expr, Pat, PatId};
use crate::lang::sentence::Sentence;
use crate::lang::text::Tokens;
use index::{PrefixTrie, WordEntry, REQUIRED};
use occurrences::Hit;
use wild::WildIndex;

/// Field numbers used in occurrences and spans.
pub const TITLE: u8 = 0;
pub const BODY: u8 = 1;

pub fn field_name(f: u8) -> &'static str {
    if f == TITLE {
        "title"
    } else {
        "body"
    }
}

/// A rule's executable parts.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub query: Expr,
    pub filter: Option<Expr>,
}

/// A byte range in the original text of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TextSpan {
    pub field: u8,
    pub start: u32,
    pub end: u32,
}

/// One rule that matched an event, with the spans that made it true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub rule: u32,
    pub spans: Vec<TextSpan>,
}

/// Per-thread reusable buffers.
#[derive(Debug, Default)]
pub struct Scratch {
    fields: [Tokens; 2],
    occ: Vec<u64>,
    stamp: Vec<u32>,
    epoch: u32,
    cands: Vec<u32>,
    /// Per pattern: `pat_epoch[p] == epoch` when `p` occurs in the current
    /// event, and then `pat_range[p]` is its slice of `occ`.
    pat_epoch: Vec<u32>,
    pat_range: Vec<(u32, u32)>,
    /// Reusable hit buffers for NEAR evaluation.
    pool: Vec<Vec<Hit>>,
    /// Reusable buffer for case-sensitive word forms.
    exact_buf: String,
    /// Reusable buffer of [`WildIndex::for_each`].
    wild_seen: Vec<usize>,
    /// Reusable sentence buffers of the title and body (for NEAR/s).
    sentences: [Vec<Sentence>; 2],
    /// Position comparisons NEAR and ONEAR made for the last event.
    near_comparisons: u64,
    /// Per-rule cost accounting, off unless the caller turns it on.
    pub cost: cost::CostLog,
    /// Stems of `~` words per (language, word); kept across events and
    /// rule sets.
    stems: StemCache,
    /// The current event's language for `~` (when the rules have `~`).
    lang: morph::EventLang,
}

impl Scratch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The position comparisons NEAR and ONEAR made while matching the
    /// last event with this scratch: the work tests assert on (it grows
    /// linearly with the event, see `verify`), never the time.
    pub fn near_comparisons(&self) -> u64 {
        self.near_comparisons
    }
}

pub struct Matcher {
    dict: Dict,
    /// Normalized word -> word pattern / case-sensitive marker (replaces
    /// `dict.words`, which is moved in here).
    words: FxHashMap<Box<str>, WordEntry>,
    prefixes: PrefixTrie,
    wilds: WildIndex,
    rules: Vec<CompiledRule>,
    /// CSR: rules anchored on pattern p are `anchor_rules[anchor_offsets[p]..anchor_offsets[p+1]]`.
    anchor_offsets: Vec<u32>,
    anchor_rules: Vec<u32>,
    /// Rules with no anchor: verified against every event.
    always: Vec<u32>,
    /// Per rule, up to [`REQUIRED`] patterns that must all occur for it to
    /// match (`NO_PAT` pads). Checked against the per-event pattern stamps
    /// before the rule's expression tree is touched: with many rules,
    /// verification is dominated by cache misses on those trees, and most
    /// candidates fail on a missing second term.
    required: Vec<[PatId; REQUIRED]>,
    /// The stems of every `~` word per language.
    morph: morph::MorphIndex,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("rules", &self.rules.len())
            .field("patterns", &self.dict.pats.len())
            .field("always", &self.always.len())
            .finish()
    }
}

impl Matcher {
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of rules that are verified against every event.
    pub fn unanchored(&self) -> usize {
        self.always.len()
    }

    pub fn rule(&self, i: usize) -> &CompiledRule {
        &self.rules[i]
    }

    /// Match one event against every rule. Matches come in rule order.
    pub fn match_event(&self, ev: &Event, s: &mut Scratch, out: &mut Vec<Match>) {
        self.prepare(ev, s);
        self.select_candidates(s);
        let cands = std::mem::take(&mut s.cands);
        let mut cost = std::mem::take(&mut s.cost);
        let mut clock = cost.start(self.rules.len());
        let doc = self.doc(ev, s);
        for &rule in &cands {
            let spans = self.verify(rule, &doc);
            cost.record(&mut clock, rule, spans.is_some());
            if let Some(spans) = spans {
                out.push(Match { rule, spans });
            }
        }
        let comparisons = doc.comparisons.get();
        let (pool, sentences) = (doc.pool.into_inner(), doc.sentences.into_inner());
        s.pool = pool;
        s.sentences = sentences;
        s.near_comparisons = comparisons;
        s.cands = cands;
        s.cost = cost;
    }

    /// Approximate heap bytes held by the compiled rules (for benchmarks).
    pub fn heap_size_hint(&self) -> usize {
        let dict_strings: usize = self
            .dict
            .pats
            .iter()
            .map(|p| match p {
                Pat::Word(w) | Pat::Prefix(w) | Pat::Exact(w) | Pat::Morph(w) | Pat::Wild(w) => {
                    2 * w.len()
                }
            })
            .sum();
        dict_strings
            + self.wilds.heap_size_hint()
            + self.dict.pats.len() * (std::mem::size_of::<Pat>() + 3 * 24)
            + self.anchor_rules.len() * 4
            + self.anchor_offsets.len() * 4
    }
}
