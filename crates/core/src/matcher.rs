//! The compiled matcher: every rule, tested against one event at a time.
//!
//! Two phases, as in Lucene's Monitor:
//!
//! 1. **Candidate selection.** Every rule gets an *anchor set*: patterns of
//!    which at least one must occur in the event for the rule to possibly
//!    match (for `a AND b` the cheaper side's, for `a OR b` the union, a
//!    phrase's rarest-looking word). The event's words are looked up once in
//!    the rule set's shared dictionary (one hash probe per word, plus one per
//!    distinct prefix length); the hits are the event's *occurrence index*,
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

use std::cell::RefCell;

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::event::Event;
use crate::lang::compile::{Dict, Expr, ExprKind, KeywordField, Pat, PatId, SrcId, TextScope};
use crate::lang::query::Span;
use crate::lang::text::{self, Tokens};

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
}

impl Scratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// A word-position range inside one field (token indices, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hit {
    field: u8,
    start: u32,
    end: u32,
}

/// A hit with the leaf hits it was made of (for NEAR spans).
#[derive(Debug, Clone)]
struct NearHit {
    hit: Hit,
    parts: Vec<Hit>,
}

/// What a normalized text word can be: a word pattern, and/or the
/// normalized form of some case-sensitive pattern.
#[derive(Debug, Clone, Copy)]
struct WordEntry {
    /// The word pattern, or `NO_PAT`.
    pat: PatId,
    /// Some `{…}` pattern normalizes to this word.
    exact: bool,
}

const NO_PAT: PatId = PatId::MAX;

/// A byte trie of the prefix patterns: walking a word down it finds every
/// prefix pattern the word starts with, in one probe per byte walked.
#[derive(Debug, Default)]
struct PrefixTrie {
    /// Child of the root for each first byte (0 = none).
    root: Vec<u32>,
    /// (node << 8 | byte) -> child, below the first level.
    edges: FxHashMap<u64, u32>,
    /// Per node (index 0 is the root): the prefix pattern ending here, or `NO_PAT`.
    pat: Vec<PatId>,
}

impl PrefixTrie {
    fn new<'a>(prefixes: impl Iterator<Item = (&'a str, PatId)>) -> Self {
        let mut t = PrefixTrie {
            root: vec![0; 256],
            edges: FxHashMap::default(),
            pat: vec![NO_PAT],
        };
        for (p, id) in prefixes {
            let mut node = 0u32;
            for &b in p.as_bytes() {
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

    fn is_empty(&self) -> bool {
        self.pat.len() <= 1
    }

    /// Every prefix pattern `w` starts with.
    #[inline]
    fn for_each(&self, w: &str, mut f: impl FnMut(PatId)) {
        let mut node = 0u32;
        for &b in w.as_bytes() {
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

pub struct Matcher {
    dict: Dict,
    /// Normalized word -> word pattern / case-sensitive marker (replaces
    /// `dict.words`, which is moved in here).
    words: FxHashMap<Box<str>, WordEntry>,
    prefixes: PrefixTrie,
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
    };
    let len = w.chars().count().max(1) as f64;
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
        ExprKind::Keyword { .. } | ExprKind::Not(_) => None,
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

const REQUIRED: usize = 3;

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
        ExprKind::Or(_) | ExprKind::Not(_) | ExprKind::Keyword { .. } => {}
    }
}

fn occ_key(pat: PatId, field: u8, pos: u32) -> u64 {
    ((pat as u64) << 32) | ((field as u64) << 31) | (pos as u64 & 0x7fff_ffff)
}

/// A prepared event: its tokens and the occurrence index.
struct Doc<'a> {
    ev: &'a Event,
    fields: &'a [Tokens; 2],
    occ: &'a [u64],
    pat_epoch: &'a [u32],
    pat_range: &'a [(u32, u32)],
    epoch: u32,
    pool: RefCell<Vec<Vec<Hit>>>,
}

const FIELD_BIT: u64 = 1 << 31;

impl Doc<'_> {
    /// The occurrence keys of `pat` (title ones first, then body), ascending.
    fn occ_of(&self, pat: PatId) -> &[u64] {
        match self.pat_epoch.get(pat as usize) {
            Some(&e) if e == self.epoch => {
                let (a, b) = self.pat_range[pat as usize];
                &self.occ[a as usize..b as usize]
            }
            _ => &[],
        }
    }

    /// The occurrence keys of `pat` in `field`; positions ascending.
    fn occ_in(&self, pat: PatId, field: u8) -> &[u64] {
        let s = self.occ_of(pat);
        if s.is_empty() {
            return s;
        }
        let mid = s.partition_point(|&k| k & FIELD_BIT == 0);
        if field == TITLE {
            &s[..mid]
        } else {
            &s[mid..]
        }
    }

    fn has(&self, pat: PatId, field: u8, pos: u32) -> bool {
        self.occ_of(pat)
            .binary_search(&occ_key(pat, field, pos))
            .is_ok()
    }

    fn phrase_at(&self, rest: &[PatId], field: u8, p: u32) -> bool {
        rest.iter()
            .enumerate()
            .all(|(i, &q)| self.has(q, field, p + 1 + i as u32))
    }

    /// Whether the word or phrase occurs at all (no allocation).
    fn text_any(&self, scope: TextScope, pats: &[PatId]) -> bool {
        let Some((&first, rest)) = pats.split_first() else {
            return false;
        };
        if rest.is_empty() {
            return match scope {
                TextScope::Any => !self.occ_of(first).is_empty(),
                TextScope::Title | TextScope::Body => scope
                    .fields()
                    .iter()
                    .any(|&f| !self.occ_in(first, f).is_empty()),
            };
        }
        scope.fields().iter().any(|&f| {
            self.occ_in(first, f)
                .iter()
                .any(|&k| self.phrase_at(rest, f, (k & 0x7fff_ffff) as u32))
        })
    }

    fn text_hits(&self, scope: TextScope, pats: &[PatId], out: &mut Vec<Hit>) {
        let Some((&first, rest)) = pats.split_first() else {
            return;
        };
        for &f in scope.fields() {
            for &k in self.occ_in(first, f) {
                let p = (k & 0x7fff_ffff) as u32;
                if self.phrase_at(rest, f, p) {
                    out.push(Hit {
                        field: f,
                        start: p,
                        end: p + rest.len() as u32,
                    });
                }
            }
        }
    }

    fn take_buf(&self) -> Vec<Hit> {
        self.pool.borrow_mut().pop().unwrap_or_default()
    }

    fn give_buf(&self, mut v: Vec<Hit>) {
        v.clear();
        self.pool.borrow_mut().push(v);
    }

    fn to_text_span(&self, h: Hit) -> TextSpan {
        let toks = self.fields[h.field as usize].toks();
        TextSpan {
            field: h.field,
            start: toks[h.start as usize].start,
            end: toks[h.end as usize].end,
        }
    }
}

fn keyword_match(ev: &Event, field: &KeywordField, value: &str, prefix: bool) -> bool {
    let test = |s: &str| -> bool {
        if s.is_ascii() && value.is_ascii() {
            if prefix {
                s.len() >= value.len()
                    && s.as_bytes()[..value.len()].eq_ignore_ascii_case(value.as_bytes())
            } else {
                s.eq_ignore_ascii_case(value)
            }
        } else {
            let k = text::keyword_key(s);
            if prefix {
                k.starts_with(value)
            } else {
                k == value
            }
        }
    };
    match field {
        KeywordField::Id => test(&ev.id_text()),
        KeywordField::Source => ev.source.as_deref().is_some_and(test),
        KeywordField::Lang => ev.lang.as_deref().is_some_and(test),
        KeywordField::Url => ev.url.as_deref().is_some_and(test),
        KeywordField::Path(path) => walk(&ev.raw, path, &test),
    }
}

/// Any value at `path` (arrays at any level match when an element does).
fn walk(v: &Value, path: &[Box<str>], test: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|x| walk(x, path, test)),
        _ => match path.split_first() {
            Some((k, rest)) => v.get(k.as_ref()).is_some_and(|c| walk(c, rest, test)),
            None => match v {
                Value::String(s) => test(s),
                Value::Number(n) => test(&n.to_string()),
                Value::Bool(b) => test(if *b { "true" } else { "false" }),
                _ => false,
            },
        },
    }
}

impl Matcher {
    pub fn new(mut dict: Dict, rules: Vec<CompiledRule>) -> Self {
        let prefixes = PrefixTrie::new(dict.prefixes.iter().map(|(p, &id)| (p.as_ref(), id)));
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
        let mut per_pat: Vec<Vec<u32>> = vec![Vec::new(); dict.pats.len()];
        let mut always = Vec::new();
        let mut required_pats = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let mut req = Vec::new();
            required(&r.query, &mut req);
            if let Some(f) = &r.filter {
                required(f, &mut req);
            }
            req.sort_unstable();
            req.dedup();
            // The rarest-looking ones reject the most candidates.
            req.sort_by(|&a, &b| {
                pat_cost(&dict.pats[a as usize]).total_cmp(&pat_cost(&dict.pats[b as usize]))
            });
            let mut slot = [NO_PAT; REQUIRED];
            for (s, p) in slot.iter_mut().zip(req) {
                *s = p;
            }
            required_pats.push(slot);
            let q = anchors(&r.query, &dict);
            let f = r.filter.as_ref().and_then(|f| anchors(f, &dict));
            let best = [q, f]
                .into_iter()
                .flatten()
                .min_by(|a, b| a.0.total_cmp(&b.0));
            match best {
                Some((_, pats)) => {
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
            rules,
            anchor_offsets,
            anchor_rules,
            always,
            required: required_pats,
        }
    }

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

    /// Tokenize the event and build its occurrence index in `s`; starts a
    /// new epoch for the per-rule and per-pattern stamps.
    fn prepare(&self, ev: &Event, s: &mut Scratch) {
        if s.stamp.len() != self.rules.len() || s.pat_epoch.len() != self.dict.pats.len() {
            s.stamp = vec![0; self.rules.len()];
            s.pat_epoch = vec![0; self.dict.pats.len()];
            s.pat_range = vec![(0, 0); self.dict.pats.len()];
            s.epoch = 0;
        }
        s.epoch = s.epoch.wrapping_add(1);
        if s.epoch == 0 {
            s.stamp.iter_mut().for_each(|x| *x = 0);
            s.pat_epoch.iter_mut().for_each(|x| *x = 0);
            s.epoch = 1;
        }
        s.occ.clear();
        let texts = [
            ev.title.as_deref().unwrap_or(""),
            ev.body.as_deref().unwrap_or(""),
        ];
        let has_prefixes = !self.prefixes.is_empty();
        let has_exacts = !self.dict.exacts.is_empty();
        for (f, text) in texts.iter().enumerate() {
            let toks = &mut s.fields[f];
            toks.clear();
            toks.push_text(text);
            for (i, tok) in toks.toks().iter().enumerate() {
                let w = toks.norm(i);
                let pos = i as u32;
                let entry = self.words.get(w);
                if let Some(&WordEntry { pat, .. }) = entry {
                    if pat != NO_PAT {
                        s.occ.push(occ_key(pat, f as u8, pos));
                    }
                }
                if has_prefixes {
                    let occ = &mut s.occ;
                    self.prefixes
                        .for_each(w, |p| occ.push(occ_key(p, f as u8, pos)));
                }
                if has_exacts {
                    let orig = &text[tok.start as usize..tok.end as usize];
                    // A simple word can only have the case-sensitive form of
                    // a pattern when its normalized form is that pattern's.
                    if !entry.is_some_and(|e| e.exact) && text::is_simple_word(orig) {
                        continue;
                    }
                    s.exact_buf.clear();
                    text::exact_form_into(orig, &mut s.exact_buf);
                    if let Some(&p) = self.dict.exacts.get(s.exact_buf.as_str()) {
                        s.occ.push(occ_key(p, f as u8, pos));
                    }
                }
            }
        }
        s.occ.sort_unstable();
        // The slice of `occ` of each pattern present.
        let mut i = 0;
        while i < s.occ.len() {
            let pat = (s.occ[i] >> 32) as usize;
            let mut j = i + 1;
            while j < s.occ.len() && (s.occ[j] >> 32) as usize == pat {
                j += 1;
            }
            s.pat_epoch[pat] = s.epoch;
            s.pat_range[pat] = (i as u32, j as u32);
            i = j;
        }
    }

    fn doc<'a>(&self, ev: &'a Event, s: &'a mut Scratch) -> Doc<'a> {
        Doc {
            ev,
            fields: &s.fields,
            occ: &s.occ,
            pat_epoch: &s.pat_epoch,
            pat_range: &s.pat_range,
            epoch: s.epoch,
            pool: RefCell::new(std::mem::take(&mut s.pool)),
        }
    }

    /// Match one event against every rule. Matches come in rule order.
    pub fn match_event(&self, ev: &Event, s: &mut Scratch, out: &mut Vec<Match>) {
        self.prepare(ev, s);
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
        let cands = std::mem::take(&mut s.cands);
        let doc = self.doc(ev, s);
        for &r in &cands {
            let present = |p: PatId| p == NO_PAT || doc.pat_epoch[p as usize] == doc.epoch;
            if !self.required[r as usize].iter().all(|&p| present(p)) {
                continue;
            }
            let rule = &self.rules[r as usize];
            if !self.eval(&rule.query, &doc, None) {
                continue;
            }
            if let Some(f) = &rule.filter {
                if !self.eval(f, &doc, None) {
                    continue;
                }
            }
            let mut hits = Vec::new();
            self.eval(&rule.query, &doc, Some(&mut hits));
            out.push(Match {
                rule: r,
                spans: merge_spans(hits.into_iter().map(|h| doc.to_text_span(h)).collect()),
            });
        }
        let pool = doc.pool.into_inner();
        s.pool = pool;
        s.cands = cands;
    }

    /// Evaluate; when `spans` is given, push the leaf hits that made it true.
    fn eval(&self, e: &Expr, d: &Doc<'_>, spans: Option<&mut Vec<Hit>>) -> bool {
        match &e.kind {
            ExprKind::Group(x) => self.eval(x, d, spans),
            ExprKind::Not(x) => !self.eval(x, d, None),
            ExprKind::Keyword {
                field,
                value,
                prefix,
            } => keyword_match(d.ev, field, value, *prefix),
            ExprKind::Or(items) => match spans {
                None => items.iter().any(|x| self.eval(x, d, None)),
                Some(sp) => {
                    let mut any = false;
                    for x in items {
                        any |= self.eval(x, d, Some(sp));
                    }
                    any
                }
            },
            ExprKind::And(items) => match spans {
                None => items.iter().all(|x| self.eval(x, d, None)),
                Some(sp) => {
                    let before = sp.len();
                    for x in items {
                        if !self.eval(x, d, Some(sp)) {
                            sp.truncate(before);
                            return false;
                        }
                    }
                    true
                }
            },
            ExprKind::Text { scope, pats } => match spans {
                None => d.text_any(*scope, pats),
                Some(sp) => {
                    let before = sp.len();
                    d.text_hits(*scope, pats, sp);
                    sp.len() > before
                }
            },
            ExprKind::Near {
                left,
                right,
                dist,
                ordered,
            } if spans.is_none() => {
                let mut ls = d.take_buf();
                self.positional(left, d, &mut ls);
                let mut found = false;
                if !ls.is_empty() {
                    let mut rs = d.take_buf();
                    self.positional(right, d, &mut rs);
                    found = ls
                        .iter()
                        .any(|&a| rs.iter().any(|&b| near(a, b, *dist, *ordered).is_some()));
                    d.give_buf(rs);
                }
                d.give_buf(ls);
                found
            }
            ExprKind::Near { .. } => {
                let hits = self.hits(e, d);
                let found = !hits.is_empty();
                if let Some(sp) = spans {
                    for h in hits {
                        if h.parts.is_empty() {
                            sp.push(h.hit);
                        } else {
                            sp.extend(h.parts);
                        }
                    }
                }
                found
            }
        }
    }

    /// Every positional hit of a NEAR operand (no leaf parts), appended to `out`.
    fn positional(&self, e: &Expr, d: &Doc<'_>, out: &mut Vec<Hit>) {
        match &e.kind {
            ExprKind::Text { scope, pats } => d.text_hits(*scope, pats, out),
            ExprKind::Group(x) => self.positional(x, d, out),
            ExprKind::Or(items) => items.iter().for_each(|x| self.positional(x, d, out)),
            ExprKind::Near {
                left,
                right,
                dist,
                ordered,
            } => {
                let mut ls = d.take_buf();
                self.positional(left, d, &mut ls);
                if !ls.is_empty() {
                    let mut rs = d.take_buf();
                    self.positional(right, d, &mut rs);
                    for &a in &ls {
                        for &b in &rs {
                            if let Some(h) = near(a, b, *dist, *ordered) {
                                out.push(h);
                            }
                        }
                    }
                    d.give_buf(rs);
                }
                d.give_buf(ls);
            }
            // Rejected by the compiler inside NEAR; harmless elsewhere.
            ExprKind::And(_) | ExprKind::Not(_) | ExprKind::Keyword { .. } => {}
        }
    }

    /// Positional hits of a NEAR operand (terms, phrases, lists, ORs, NEARs).
    fn hits(&self, e: &Expr, d: &Doc<'_>) -> Vec<NearHit> {
        match &e.kind {
            ExprKind::Text { scope, pats } => {
                let mut v = Vec::new();
                d.text_hits(*scope, pats, &mut v);
                v.into_iter()
                    .map(|hit| NearHit {
                        hit,
                        parts: Vec::new(),
                    })
                    .collect()
            }
            ExprKind::Group(x) => self.hits(x, d),
            ExprKind::Or(items) => items.iter().flat_map(|x| self.hits(x, d)).collect(),
            ExprKind::Near {
                left,
                right,
                dist,
                ordered,
            } => {
                let ls = self.hits(left, d);
                if ls.is_empty() {
                    return Vec::new();
                }
                let rs = self.hits(right, d);
                let mut out = Vec::new();
                for a in &ls {
                    for b in &rs {
                        let Some(hit) = near(a.hit, b.hit, *dist, *ordered) else {
                            continue;
                        };
                        let mut parts = Vec::new();
                        for x in [a, b] {
                            if x.parts.is_empty() {
                                parts.push(x.hit);
                            } else {
                                parts.extend_from_slice(&x.parts);
                            }
                        }
                        out.push(NearHit { hit, parts });
                    }
                }
                out
            }
            // Rejected by the compiler inside NEAR; harmless elsewhere.
            ExprKind::And(_) | ExprKind::Not(_) | ExprKind::Keyword { .. } => Vec::new(),
        }
    }

    /// Evaluate every clause of one rule against an event, for `explain`.
    pub fn explain(&self, rule: usize, ev: &Event) -> (Explained, Option<Explained>) {
        let mut s = Scratch::new();
        self.prepare(ev, &mut s);
        let doc = self.doc(ev, &mut s);
        let r = &self.rules[rule];
        let q = self.explain_node(&r.query, &doc);
        let f = r.filter.as_ref().map(|f| self.explain_node(f, &doc));
        (q, f)
    }

    fn explain_node(&self, e: &Expr, d: &Doc<'_>) -> Explained {
        let mut hits = Vec::new();
        let matched = self.eval(e, d, Some(&mut hits));
        let children = match &e.kind {
            ExprKind::Or(v) | ExprKind::And(v) => {
                v.iter().map(|x| self.explain_node(x, d)).collect()
            }
            ExprKind::Not(x) | ExprKind::Group(x) => vec![self.explain_node(x, d)],
            ExprKind::Near { left, right, .. } => {
                vec![self.explain_node(left, d), self.explain_node(right, d)]
            }
            ExprKind::Text { .. } | ExprKind::Keyword { .. } => Vec::new(),
        };
        let kind = match &e.kind {
            ExprKind::Or(_) => "OR",
            ExprKind::And(_) => "AND",
            ExprKind::Not(_) => "NOT",
            ExprKind::Near { ordered: true, .. } => "ONEAR",
            ExprKind::Near { .. } => "NEAR",
            ExprKind::Text { pats, .. } if pats.len() > 1 => "phrase",
            ExprKind::Text { .. } => "term",
            ExprKind::Keyword { .. } => "keyword",
            ExprKind::Group(_) => "ref",
        };
        Explained {
            kind,
            src: e.src,
            span: e.span,
            matched,
            spans: merge_spans(hits.into_iter().map(|h| d.to_text_span(h)).collect()),
            children,
        }
    }

    /// Approximate heap bytes held by the compiled rules (for benchmarks).
    pub fn heap_size_hint(&self) -> usize {
        let dict_strings: usize = self
            .dict
            .pats
            .iter()
            .map(|p| match p {
                Pat::Word(w) | Pat::Prefix(w) | Pat::Exact(w) => 2 * w.len(),
            })
            .sum();
        dict_strings
            + self.dict.pats.len() * (std::mem::size_of::<Pat>() + 3 * 24)
            + self.anchor_rules.len() * 4
            + self.anchor_offsets.len() * 4
    }
}

/// The result of `explain` for one clause.
#[derive(Debug, Clone)]
pub struct Explained {
    pub kind: &'static str,
    pub src: SrcId,
    pub span: Span,
    pub matched: bool,
    pub spans: Vec<TextSpan>,
    pub children: Vec<Explained>,
}

/// The span covering `a` and `b` when they are close enough: same field,
/// at most `dist` words between them, `a` first when `ordered`.
///
/// Overlapping hits have no words between them: for NEAR they are close
/// (`(north korea NEAR/12 missiles) NEAR/3 fired` matches "North Korea fired
/// two missiles", where "fired" lies inside the inner hit), as long as they
/// are not one and the same occurrence. ONEAR needs `a` to end before `b`
/// starts, since "before" means nothing for overlapping hits.
fn near(a: Hit, b: Hit, dist: u32, ordered: bool) -> Option<Hit> {
    if a.field != b.field {
        return None;
    }
    let ok = if a.end < b.start {
        b.start - a.end - 1 <= dist
    } else if ordered {
        false
    } else if b.end < a.start {
        a.start - b.end - 1 <= dist
    } else {
        a != b
    };
    ok.then(|| Hit {
        field: a.field,
        start: a.start.min(b.start),
        end: a.end.max(b.end),
    })
}

/// Sort spans and merge overlapping ones, so a highlight is never reported twice.
fn merge_spans(mut v: Vec<TextSpan>) -> Vec<TextSpan> {
    v.sort_unstable();
    let mut out: Vec<TextSpan> = Vec::with_capacity(v.len());
    for s in v {
        match out.last_mut() {
            Some(l) if l.field == s.field && s.start < l.end => l.end = l.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::event::{decode, EventFields};

    fn matches(query: &str, body: &str) -> bool {
        let yaml = format!("rules:\n  - id: r\n    title: t\n    query: '{query}'\n");
        let rs = crate::rules::load_strs(vec![(PathBuf::from("t.yaml"), yaml)]).unwrap();
        let json = serde_json::json!({"id": "1", "body": body}).to_string();
        let ev = decode(json.as_bytes(), &EventFields::default()).unwrap();
        let mut out = Vec::new();
        rs.matcher.match_event(&ev, &mut Scratch::new(), &mut out);
        !out.is_empty()
    }

    #[test]
    fn nested_near_considers_every_inner_occurrence() {
        // The first `a b` is far from `c`, the second is next to it.
        assert!(matches("(a NEAR/1 b) NEAR/1 c", "a b x x x x a b c"));
        assert!(!matches("(a NEAR/1 b) NEAR/1 c", "a b x x x x c"));
        assert!(matches("(a ONEAR/1 b) ONEAR/1 c", "a b x x x a x b c"));
    }

    #[test]
    fn overlapping_hits_are_near_but_not_ordered() {
        let table = [
            // "fired" lies inside the inner NEAR's hit: no words between.
            (
                "(\"north korea\" NEAR/12 missiles) NEAR/3 fired",
                "North Korea fired two missiles",
                true,
            ),
            ("lavrov NEAR/5 \"sergey lavrov\"", "Sergey Lavrov", true),
            // one occurrence is not near itself
            ("lavrov NEAR/5 lavrov", "Lavrov spoke", false),
            ("lavrov NEAR/5 lavrov", "Lavrov and Lavrov", true),
            // ONEAR: overlapping hits are not "before"
            (
                "(\"north korea\" NEAR/12 missiles) ONEAR/3 fired",
                "North Korea fired two missiles",
                false,
            ),
        ];
        for (q, body, want) in table {
            assert_eq!(matches(q, body), want, "{q} on {body:?}");
        }
    }
}
