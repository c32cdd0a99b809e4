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

use serde_json::Value;

use crate::compile::{Dict, Expr, ExprKind, KeywordField, Pat, PatId, SrcId, TextScope};
use crate::event::Event;
use crate::query::Span;
use crate::text::{self, Tokens};

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

pub struct Matcher {
    dict: Dict,
    /// Distinct byte lengths of the prefixes, ascending.
    prefix_lens: Vec<usize>,
    rules: Vec<CompiledRule>,
    /// CSR: rules anchored on pattern p are `anchor_rules[anchor_offsets[p]..anchor_offsets[p+1]]`.
    anchor_offsets: Vec<u32>,
    anchor_rules: Vec<u32>,
    /// Rules with no anchor: verified against every event.
    always: Vec<u32>,
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

fn occ_key(pat: PatId, field: u8, pos: u32) -> u64 {
    ((pat as u64) << 32) | ((field as u64) << 31) | (pos as u64 & 0x7fff_ffff)
}

/// A prepared event: its tokens and the occurrence index.
struct Doc<'a> {
    ev: &'a Event,
    fields: &'a [Tokens; 2],
    occ: &'a [u64],
}

impl Doc<'_> {
    /// Positions of `pat` in `field`, ascending.
    fn positions(&self, pat: PatId, field: u8) -> impl Iterator<Item = u32> + '_ {
        let lo = occ_key(pat, field, 0);
        let hi = occ_key(pat, field, 0x7fff_ffff);
        let a = self.occ.partition_point(|&k| k < lo);
        let b = self.occ.partition_point(|&k| k <= hi);
        self.occ[a..b].iter().map(|&k| (k & 0x7fff_ffff) as u32)
    }

    fn has(&self, pat: PatId, field: u8, pos: u32) -> bool {
        self.occ.binary_search(&occ_key(pat, field, pos)).is_ok()
    }

    fn text_hits(&self, scope: TextScope, pats: &[PatId], out: &mut Vec<Hit>) {
        let Some((&first, rest)) = pats.split_first() else {
            return;
        };
        for &f in scope.fields() {
            for p in self.positions(first, f) {
                if rest
                    .iter()
                    .enumerate()
                    .all(|(i, &q)| self.has(q, f, p + 1 + i as u32))
                {
                    out.push(Hit {
                        field: f,
                        start: p,
                        end: p + rest.len() as u32,
                    });
                }
            }
        }
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
    pub fn new(dict: Dict, rules: Vec<CompiledRule>) -> Self {
        let mut prefix_lens: Vec<usize> = dict.prefixes.keys().map(|p| p.len()).collect();
        prefix_lens.sort_unstable();
        prefix_lens.dedup();
        let mut per_pat: Vec<Vec<u32>> = vec![Vec::new(); dict.pats.len()];
        let mut always = Vec::new();
        for (i, r) in rules.iter().enumerate() {
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
            prefix_lens,
            rules,
            anchor_offsets,
            anchor_rules,
            always,
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

    /// Tokenize the event and build its occurrence index in `s`.
    fn prepare(&self, ev: &Event, s: &mut Scratch) {
        s.occ.clear();
        let texts = [
            ev.title.as_deref().unwrap_or(""),
            ev.body.as_deref().unwrap_or(""),
        ];
        let has_prefixes = !self.prefix_lens.is_empty();
        let has_exacts = !self.dict.exacts.is_empty();
        for (f, text) in texts.iter().enumerate() {
            let toks = &mut s.fields[f];
            toks.clear();
            toks.push_text(text);
            for (i, tok) in toks.toks().iter().enumerate() {
                let w = toks.norm(i);
                let pos = i as u32;
                if let Some(&p) = self.dict.words.get(w) {
                    s.occ.push(occ_key(p, f as u8, pos));
                }
                if has_prefixes {
                    for &l in &self.prefix_lens {
                        if l > w.len() {
                            break;
                        }
                        if w.is_char_boundary(l) {
                            if let Some(&p) = self.dict.prefixes.get(&w[..l]) {
                                s.occ.push(occ_key(p, f as u8, pos));
                            }
                        }
                    }
                }
                if has_exacts {
                    let orig = &text[tok.start as usize..tok.end as usize];
                    if let Some(&p) = self.dict.exacts.get(text::exact_form(orig).as_str()) {
                        s.occ.push(occ_key(p, f as u8, pos));
                    }
                }
            }
        }
        s.occ.sort_unstable();
    }

    /// Match one event against every rule. Matches come in rule order.
    pub fn match_event(&self, ev: &Event, s: &mut Scratch, out: &mut Vec<Match>) {
        self.prepare(ev, s);
        if s.stamp.len() != self.rules.len() {
            s.stamp = vec![0; self.rules.len()];
            s.epoch = 0;
        }
        s.epoch = s.epoch.wrapping_add(1);
        if s.epoch == 0 {
            s.stamp.iter_mut().for_each(|x| *x = 0);
            s.epoch = 1;
        }
        s.cands.clear();
        let mut last = u64::MAX;
        for &k in &s.occ {
            let pat = k >> 32;
            if pat == last {
                continue;
            }
            last = pat;
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
        let doc = Doc {
            ev,
            fields: &s.fields,
            occ: &s.occ,
        };
        for &r in &s.cands {
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
            ExprKind::Text { .. } | ExprKind::Near { .. } => {
                let hits = self.hits(e, d, spans.is_some());
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

    /// Positional hits of a NEAR operand (terms, phrases, lists, ORs, NEARs).
    fn hits(&self, e: &Expr, d: &Doc<'_>, with_parts: bool) -> Vec<NearHit> {
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
            ExprKind::Group(x) => self.hits(x, d, with_parts),
            ExprKind::Or(items) => items
                .iter()
                .flat_map(|x| self.hits(x, d, with_parts))
                .collect(),
            ExprKind::Near {
                left,
                right,
                dist,
                ordered,
            } => {
                let ls = self.hits(left, d, with_parts);
                if ls.is_empty() {
                    return Vec::new();
                }
                let rs = self.hits(right, d, with_parts);
                let mut out = Vec::new();
                for a in &ls {
                    for b in &rs {
                        if a.hit.field != b.hit.field {
                            continue;
                        }
                        let ok = if a.hit.end < b.hit.start {
                            b.hit.start - a.hit.end - 1 <= *dist
                        } else if !*ordered && b.hit.end < a.hit.start {
                            a.hit.start - b.hit.end - 1 <= *dist
                        } else {
                            false
                        };
                        if !ok {
                            continue;
                        }
                        let hit = Hit {
                            field: a.hit.field,
                            start: a.hit.start.min(b.hit.start),
                            end: a.hit.end.max(b.hit.end),
                        };
                        let parts = if with_parts {
                            let mut p = Vec::new();
                            for x in [a, b] {
                                if x.parts.is_empty() {
                                    p.push(x.hit);
                                } else {
                                    p.extend_from_slice(&x.parts);
                                }
                            }
                            p
                        } else {
                            Vec::new()
                        };
                        out.push(NearHit { hit, parts });
                        if !with_parts {
                            // One witness is enough for a yes/no answer.
                            return out;
                        }
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
        let doc = Doc {
            ev,
            fields: &s.fields,
            occ: &s.occ,
        };
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
