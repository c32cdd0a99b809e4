//! Phase 2, verification: a candidate's query and filter evaluated against
//! the occurrence index, and for a match the spans that made it true.
//!
//! NEAR and ONEAR join two lists of hits sorted by (field, start) in one
//! pass ([`near_join`]): a hit of the right side is compared only with the
//! left hits whose window it can fall into, so the work grows with the
//! event's size times the window (distance and hit lengths), never with the
//! product of the two sides' counts (issue 11: a 1 MB event took 1.3 s).
//! Nested NEARs join lists of hits that are deduplicated by position,
//! their leaf parts merged, which gives the same spans as every pair would.
//! The comparisons are counted in [`Doc::comparisons`] so tests can assert
//! on the work done.
//!
//! NEAR/s and ONEAR/s ([`sentence_join`]) group both sides' hits by
//! sentence, in one pass over the two sorted lists: in a sentence, every
//! hit that has a partner there takes part, and the sentence gives one hit
//! covering them (which an enclosing NEAR sees as one occurrence). A hit
//! that crosses a sentence boundary (a phrase over a full stop) is in no
//! sentence.

use std::cell::Cell;

use serde_json::Value;

use super::index::NO_PAT;
use super::occurrences::{Doc, Hit};
use super::wild::glob_match;
use super::{Matcher, TextSpan};
use crate::event::Event;
use crate::lang::compile::{Expr, ExprKind, KeywordField, PatId};
use crate::lang::query::{Cmp, CmpValue};
use crate::lang::sentence::sentence_of;
use crate::lang::text;

/// A hit with the leaf hits it was made of (for NEAR spans).
#[derive(Debug, Clone)]
struct NearHit {
    hit: Hit,
    parts: Vec<Hit>,
}

fn keyword_match(d: &Doc<'_>, field: &KeywordField, value: &str, prefix: bool, wild: bool) -> bool {
    let ev = d.ev;
    let test = |s: &str| -> bool {
        if wild {
            glob_match(value.as_bytes(), text::keyword_key(s).as_bytes())
        } else if s.is_ascii() && value.is_ascii() {
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
        // A detected language stands in for a missing `lang` (SPEC §3).
        KeywordField::Lang => ev
            .lang
            .as_deref()
            .or_else(|| d.detected_lang())
            .is_some_and(test),
        KeywordField::Url => ev.url.as_deref().is_some_and(test),
        KeywordField::Path(path) => walk(&ev.raw, path, &test),
    }
}

/// Whether some value of `field` satisfies `cmp`: a JSON number against a
/// number, a string holding an RFC 3339 timestamp against a timestamp.
fn compare_match(ev: &Event, field: &KeywordField, cmp: &Cmp) -> bool {
    let of_str = |s: &str| cmp.on_time() && CmpValue::parse_time(s).is_some_and(|x| cmp.holds(x));
    let of_value = |v: &Value| match v {
        Value::Number(n) if !cmp.on_time() => {
            n.as_f64().is_some_and(|x| cmp.holds(CmpValue::Num(x)))
        }
        Value::String(s) => of_str(s),
        _ => false,
    };
    match field {
        KeywordField::Id => of_value(&ev.id),
        KeywordField::Source => ev.source.as_deref().is_some_and(of_str),
        KeywordField::Lang => ev.lang.as_deref().is_some_and(of_str),
        KeywordField::Url => ev.url.as_deref().is_some_and(of_str),
        KeywordField::Path(path) => any_leaf(&ev.raw, path, &of_value),
    }
}

/// `_exists_:field`: present and not null (an empty array is present).
fn exists(ev: &Event, field: &KeywordField) -> bool {
    fn at(v: &Value, path: &[Box<str>]) -> bool {
        match (path.split_first(), v) {
            (None, v) => !v.is_null(),
            (Some(_), Value::Array(items)) => items.iter().any(|x| at(x, path)),
            (Some((k, rest)), v) => v.get(k.as_ref()).is_some_and(|c| at(c, rest)),
        }
    }
    match field {
        KeywordField::Id => !ev.id.is_null(),
        KeywordField::Source => ev.source.is_some(),
        KeywordField::Lang => ev.lang.is_some(),
        KeywordField::Url => ev.url.is_some(),
        KeywordField::Path(path) => at(&ev.raw, path),
    }
}

/// Any non-array value at `path` (arrays at any level, the last included,
/// match when an element does).
fn any_leaf(v: &Value, path: &[Box<str>], test: &dyn Fn(&Value) -> bool) -> bool {
    match (v, path.split_first()) {
        (Value::Array(items), _) => items.iter().any(|x| any_leaf(x, path, test)),
        (_, Some((k, rest))) => v.get(k.as_ref()).is_some_and(|c| any_leaf(c, rest, test)),
        (_, None) => test(v),
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
    /// The spans of rule `r` when it matches the event, cheapest checks
    /// first: its required patterns, its query, its filter.
    pub(super) fn verify(&self, r: u32, doc: &Doc<'_>) -> Option<Vec<TextSpan>> {
        let present = |p: PatId| p == NO_PAT || doc.pat_epoch[p as usize] == doc.epoch;
        if !self.required[r as usize].iter().all(|&p| present(p)) {
            return None;
        }
        let rule = &self.rules[r as usize];
        if !self.eval(&rule.query, doc, None) {
            return None;
        }
        if let Some(f) = &rule.filter {
            if !self.eval(f, doc, None) {
                return None;
            }
        }
        let mut hits = Vec::new();
        self.eval(&rule.query, doc, Some(&mut hits));
        Some(merge_spans(
            hits.into_iter().map(|h| doc.to_text_span(h)).collect(),
        ))
    }

    /// Evaluate; when `spans` is given, push the leaf hits that made it true.
    pub(super) fn eval(&self, e: &Expr, d: &Doc<'_>, spans: Option<&mut Vec<Hit>>) -> bool {
        match &e.kind {
            ExprKind::Group(x) => self.eval(x, d, spans),
            ExprKind::Not(x) => !self.eval(x, d, None),
            ExprKind::Keyword {
                field,
                value,
                prefix,
                wild,
            } => keyword_match(d, field, value, *prefix, *wild),
            ExprKind::Compare { field, cmp } => compare_match(d.ev, field, cmp),
            ExprKind::Exists(field) => exists(d.ev, field),
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
                sentence,
            } if spans.is_none() => {
                let mut ls = d.take_buf();
                self.operand(left, d, &mut ls);
                let mut found = false;
                if !ls.is_empty() {
                    let mut rs = d.take_buf();
                    self.operand(right, d, &mut rs);
                    sort_hits(&mut ls);
                    sort_hits(&mut rs);
                    if *sentence {
                        sentence_join(&ls, &rs, *ordered, d, |_, _, _| {
                            found = true;
                            false
                        });
                    } else {
                        near_join(&ls, &rs, *dist, *ordered, &d.comparisons, |_, _, _| {
                            found = true;
                            false
                        });
                    }
                    d.give_buf(rs);
                }
                d.give_buf(ls);
                found
            }
            ExprKind::Near { .. } => {
                let mut hits: Vec<NearHit> = Vec::new();
                self.operand(e, d, &mut hits);
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

    /// Every positional hit of a NEAR operand (terms, phrases, lists, ORs,
    /// NEARs), appended to `out`: bare hits to decide, or hits with their
    /// leaf parts for spans ([`Positioned`]).
    fn operand<T: Positioned>(&self, e: &Expr, d: &Doc<'_>, out: &mut Vec<T>) {
        match &e.kind {
            ExprKind::Text { scope, pats } => {
                let mut v = d.take_buf();
                d.text_hits(*scope, pats, &mut v);
                out.extend(v.drain(..).map(T::leaf));
                d.give_buf(v);
            }
            ExprKind::Group(x) => self.operand(x, d, out),
            ExprKind::Or(items) => items.iter().for_each(|x| self.operand(x, d, out)),
            ExprKind::Near {
                left,
                right,
                dist,
                ordered,
                sentence,
            } => {
                let mut ls = T::take(d);
                self.operand(left, d, &mut ls);
                if !ls.is_empty() {
                    let mut rs = T::take(d);
                    self.operand(right, d, &mut rs);
                    T::normalize(&mut ls);
                    T::normalize(&mut rs);
                    if *sentence {
                        sentence_join(&ls, &rs, *ordered, d, |li, ri, h| {
                            let parts =
                                li.iter().map(|&i| &ls[i]).chain(ri.iter().map(|&j| &rs[j]));
                            out.push(T::group(parts, h));
                            true
                        });
                    } else {
                        near_join(&ls, &rs, *dist, *ordered, &d.comparisons, |i, j, h| {
                            out.push(T::pair(&ls[i], &rs[j], h));
                            true
                        });
                    }
                    T::give(d, rs);
                }
                T::give(d, ls);
            }
            // Rejected by the compiler inside NEAR; harmless elsewhere.
            ExprKind::And(_)
            | ExprKind::Not(_)
            | ExprKind::Keyword { .. }
            | ExprKind::Compare { .. }
            | ExprKind::Exists(_) => {}
        }
    }
}

/// What a NEAR operand evaluates to: [`Hit`]s to decide whether it holds,
/// [`NearHit`]s (with the leaf hits they are made of) for spans.
trait Positioned: Sized {
    fn hit(&self) -> Hit;
    /// An occurrence of a term or phrase.
    fn leaf(h: Hit) -> Self;
    /// The hit covering a pair `near` accepted.
    fn pair(a: &Self, b: &Self, hit: Hit) -> Self;
    /// The hit covering the hits of a sentence that NEAR/s accepted.
    fn group<'a>(parts: impl Iterator<Item = &'a Self>, hit: Hit) -> Self
    where
        Self: 'a;
    /// Sort by (field, start, end), one entry per position.
    fn normalize(v: &mut Vec<Self>);
    /// A buffer to collect into, and its return.
    fn take(d: &Doc<'_>) -> Vec<Self>;
    fn give(d: &Doc<'_>, v: Vec<Self>);
}

impl Positioned for Hit {
    fn hit(&self) -> Hit {
        *self
    }
    fn leaf(h: Hit) -> Self {
        h
    }
    fn pair(_: &Self, _: &Self, hit: Hit) -> Self {
        hit
    }
    fn group<'a>(_: impl Iterator<Item = &'a Self>, hit: Hit) -> Self {
        hit
    }
    fn normalize(v: &mut Vec<Self>) {
        sort_hits(v);
    }
    // Deciding is the hot path: its buffers are reused across events.
    fn take(d: &Doc<'_>) -> Vec<Self> {
        d.take_buf()
    }
    fn give(d: &Doc<'_>, v: Vec<Self>) {
        d.give_buf(v);
    }
}

impl Positioned for NearHit {
    fn hit(&self) -> Hit {
        self.hit
    }
    fn leaf(hit: Hit) -> Self {
        NearHit {
            hit,
            parts: Vec::new(),
        }
    }
    fn pair(a: &Self, b: &Self, hit: Hit) -> Self {
        let mut parts = Vec::new();
        for x in [a, b] {
            if x.parts.is_empty() {
                parts.push(x.hit);
            } else {
                parts.extend_from_slice(&x.parts);
            }
        }
        NearHit { hit, parts }
    }
    fn group<'a>(of: impl Iterator<Item = &'a Self>, hit: Hit) -> Self {
        let mut parts = Vec::new();
        for x in of {
            if x.parts.is_empty() {
                parts.push(x.hit);
            } else {
                parts.extend_from_slice(&x.parts);
            }
        }
        NearHit { hit, parts }
    }
    fn normalize(v: &mut Vec<Self>) {
        *v = group_hits(std::mem::take(v));
    }
    fn take(_: &Doc<'_>) -> Vec<Self> {
        Vec::new()
    }
    fn give(_: &Doc<'_>, _: Vec<Self>) {}
}

fn hit_key(h: &Hit) -> (u8, u32, u32) {
    (h.field, h.start, h.end)
}

/// Sort hits by (field, start, end) and drop repeats: a hit that occurs
/// twice (an OR of overlapping lists) pairs with the same partners.
/// The lists are concatenations of sorted runs, which a stable sort merges
/// in linear time.
fn sort_hits(v: &mut Vec<Hit>) {
    v.sort_by_key(hit_key);
    v.dedup();
}

/// [`sort_hits`] for hits with parts: one entry per position, its parts
/// the union of those of every entry at that position. Since [`near`]
/// looks only at positions, the pairs of the grouped lists give the same
/// union of parts as the pairs of the original ones.
fn group_hits(mut v: Vec<NearHit>) -> Vec<NearHit> {
    v.sort_by_key(|x| hit_key(&x.hit));
    let mut out: Vec<NearHit> = Vec::with_capacity(v.len());
    for x in v {
        match out.last_mut() {
            Some(last) if last.hit == x.hit => {
                if last.parts.is_empty() != x.parts.is_empty() {
                    // A leaf stands for itself: keep it among the parts.
                    let leaf = last.hit;
                    last.parts.push(leaf);
                }
                last.parts.extend(x.parts);
            }
            _ => out.push(x),
        }
    }
    for x in &mut out {
        if x.parts.len() > 1 {
            x.parts.sort_by_key(hit_key);
            x.parts.dedup();
        }
    }
    out
}

/// Every pair `(i, j)` with `near(ls[i], rs[j])`, both lists sorted by
/// [`hit_key`], passed to `emit` with the covering hit until it returns
/// false.
///
/// A right hit can be near `a` only if it starts at most `dist + 1` after
/// `a` ends and ends at most `dist + 1` before `a` starts, so it starts no
/// earlier than `a.start - dist - 1 - longest` (`longest` the longest right
/// hit). That lower bound only grows as `a` moves on, so one pointer `lo`
/// walks `rs` once; from it the scan stops at the first hit starting past
/// `a.end + dist + 1`. Each comparison is counted in `comparisons`.
fn near_join<T: Positioned>(
    ls: &[T],
    rs: &[T],
    dist: u32,
    ordered: bool,
    comparisons: &Cell<u64>,
    mut emit: impl FnMut(usize, usize, Hit) -> bool,
) {
    let longest = rs
        .iter()
        .map(|b| b.hit().end - b.hit().start)
        .max()
        .unwrap_or(0);
    let mut lo = 0;
    let mut n = 0u64;
    for (i, a) in ls.iter().enumerate() {
        let a = a.hit();
        let min_start = if ordered {
            a.start.saturating_add(1)
        } else {
            a.start
                .saturating_sub(dist.saturating_add(1).saturating_add(longest))
        };
        while lo < rs.len() && (rs[lo].hit().field, rs[lo].hit().start) < (a.field, min_start) {
            lo += 1;
        }
        let max_start = a.end.saturating_add(dist).saturating_add(1);
        for (j, b) in rs.iter().enumerate().skip(lo) {
            let b = b.hit();
            if b.field != a.field || b.start > max_start {
                break;
            }
            n += 1;
            if let Some(h) = near(a, b, dist, ordered) {
                if !emit(i, j, h) {
                    comparisons.set(comparisons.get() + n);
                    return;
                }
            }
        }
    }
    comparisons.set(comparisons.get() + n);
}

/// Every sentence in which a hit of `ls` and one of `rs` are partners
/// (different occurrences; for ONEAR, the left one ending before the right
/// one starts), passed to `emit` with the indices of the hits that have a
/// partner there and the hit covering them, until `emit` returns false.
///
/// Both lists are sorted by [`hit_key`], so their sentence numbers
/// ascend: one merge-like pass over the sentences present in both, each
/// hit looked at a constant number of times (its sentence found by binary
/// search). Counted in [`Doc::comparisons`] like NEAR's.
fn sentence_join<T: Positioned>(
    ls: &[T],
    rs: &[T],
    ordered: bool,
    d: &Doc<'_>,
    mut emit: impl FnMut(&[usize], &[usize], Hit) -> bool,
) {
    let (mut i, mut j) = (0, 0);
    // The hits of the current sentence that lie inside it, then those
    // with a partner.
    let (mut l, mut r) = (Vec::new(), Vec::new());
    let (mut li, mut ri) = (Vec::new(), Vec::new());
    let mut n = 0u64;
    while i < ls.len() && j < rs.len() {
        let (a, b) = (sentence_at(ls[i].hit(), d), sentence_at(rs[j].hit(), d));
        let key = a.min(b);
        l.clear();
        r.clear();
        while i < ls.len() && sentence_at(ls[i].hit(), d) == key {
            if inside(ls[i].hit(), key.1, d) {
                l.push(i);
            }
            i += 1;
        }
        while j < rs.len() && sentence_at(rs[j].hit(), d) == key {
            if inside(rs[j].hit(), key.1, d) {
                r.push(j);
            }
            j += 1;
        }
        n += (l.len() + r.len()) as u64;
        if l.is_empty() || r.is_empty() {
            continue;
        }
        li.clear();
        ri.clear();
        if ordered {
            let last_start = r.iter().map(|&k| rs[k].hit().start).max().unwrap_or(0);
            let first_end = l.iter().map(|&k| ls[k].hit().end).min().unwrap_or(u32::MAX);
            li.extend(l.iter().copied().filter(|&k| ls[k].hit().end < last_start));
            ri.extend(r.iter().copied().filter(|&k| rs[k].hit().start > first_end));
        } else {
            // Partners unless the only candidate is the hit itself.
            let only = |side: &[usize], of: &[T]| (side.len() == 1).then(|| of[side[0]].hit());
            let (l_only, r_only) = (only(&l, ls), only(&r, rs));
            li.extend(l.iter().copied().filter(|&k| r_only != Some(ls[k].hit())));
            ri.extend(r.iter().copied().filter(|&k| l_only != Some(rs[k].hit())));
        }
        if li.is_empty() || ri.is_empty() {
            continue;
        }
        let all = li
            .iter()
            .map(|&k| ls[k].hit())
            .chain(ri.iter().map(|&k| rs[k].hit()));
        let (start, end) = all.fold((u32::MAX, 0), |(s, e), h| (s.min(h.start), e.max(h.end)));
        if !emit(
            &li,
            &ri,
            Hit {
                field: key.0,
                start,
                end,
            },
        ) {
            break;
        }
    }
    d.comparisons.set(d.comparisons.get() + n);
}

/// (field, the sentence its first word is in): ascends with [`hit_key`].
fn sentence_at(h: Hit, d: &Doc<'_>) -> (u8, usize) {
    (h.field, sentence_of(&d.sentences(h.field), h.start))
}

/// Whether the hit ends in the sentence it starts in.
fn inside(h: Hit, sentence: usize, d: &Doc<'_>) -> bool {
    h.start == h.end || sentence_of(&d.sentences(h.field), h.end) == sentence
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
pub(super) fn merge_spans(mut v: Vec<TextSpan>) -> Vec<TextSpan> {
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
    use crate::lang::compile::Expr;
    use crate::matcher::Scratch;

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

    #[test]
    fn near_table() {
        let h = |field, start, end| Hit { field, start, end };
        let table = [
            // (a, b, dist, ordered, expected)
            (h(0, 0, 0), h(0, 2, 2), 1, false, Some(h(0, 0, 2))),
            (h(0, 0, 0), h(0, 3, 3), 1, false, None),
            (h(0, 3, 3), h(0, 1, 1), 1, false, Some(h(0, 1, 3))),
            (h(0, 3, 3), h(0, 1, 1), 1, true, None),
            (h(0, 0, 0), h(1, 1, 1), 5, false, None),
            // Overlapping: near, but not ordered, and not with itself.
            (h(0, 0, 3), h(0, 2, 2), 0, false, Some(h(0, 0, 3))),
            (h(0, 0, 3), h(0, 2, 2), 0, true, None),
            (h(0, 2, 2), h(0, 2, 2), 5, false, None),
        ];
        for (a, b, dist, ordered, want) in table {
            assert_eq!(
                near(a, b, dist, ordered),
                want,
                "{a:?} {b:?} /{dist} {ordered}"
            );
        }
    }

    /// The pairs `near_join` emits are exactly the pairs `near` accepts
    /// (the old all-pairs loop), on random sorted lists.
    #[test]
    fn near_join_agrees_with_all_pairs() {
        let mut x: u64 = 7;
        let mut rnd = |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        for _ in 0..3_000 {
            let mut side = |len: u64| {
                let mut v: Vec<Hit> = (0..rnd(len))
                    .map(|_| {
                        let start = rnd(30) as u32;
                        Hit {
                            field: rnd(2) as u8,
                            start,
                            end: start + rnd(4) as u32,
                        }
                    })
                    .collect();
                sort_hits(&mut v);
                v
            };
            let (ls, rs) = (side(12), side(12));
            let dist = rnd(6) as u32;
            let ordered = rnd(2) == 1;
            let mut want = Vec::new();
            for (i, &a) in ls.iter().enumerate() {
                for (j, &b) in rs.iter().enumerate() {
                    if let Some(h) = near(a, b, dist, ordered) {
                        want.push((i, j, h));
                    }
                }
            }
            let mut got = Vec::new();
            near_join(&ls, &rs, dist, ordered, &Cell::new(0), |i, j, h| {
                got.push((i, j, h));
                true
            });
            got.sort_by_key(|&(i, j, _)| (i, j));
            assert_eq!(got, want, "{ls:?} {rs:?} /{dist} {ordered}");
        }
    }

    /// The old quadratic evaluation of a NEAR operand, kept to check the
    /// new one against: every pair, parts concatenated, nothing grouped.
    fn brute_hits(e: &Expr, d: &Doc<'_>) -> Vec<NearHit> {
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
            ExprKind::Group(x) => brute_hits(x, d),
            ExprKind::Or(items) => items.iter().flat_map(|x| brute_hits(x, d)).collect(),
            ExprKind::Near {
                left,
                right,
                dist,
                ordered,
                sentence,
            } => {
                let (ls, rs) = (brute_hits(left, d), brute_hits(right, d));
                let mut out = Vec::new();
                for a in &ls {
                    for b in &rs {
                        let pair = if *sentence {
                            same_sentence(a.hit, b.hit, *ordered, d)
                        } else {
                            near(a.hit, b.hit, *dist, *ordered)
                        };
                        if let Some(hit) = pair {
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
                }
                out
            }
            _ => Vec::new(),
        }
    }

    /// NEAR/s by its definition: both hits inside one sentence, different
    /// occurrences, the left one first for ONEAR/s.
    fn same_sentence(a: Hit, b: Hit, ordered: bool, d: &Doc<'_>) -> Option<Hit> {
        let sents = d.sentences(a.field);
        let s = |p| sentence_of(&sents, p);
        let ok = a.field == b.field
            && s(a.start) == s(a.end)
            && s(b.start) == s(b.end)
            && s(a.start) == s(b.start)
            && if ordered { a.end < b.start } else { a != b };
        ok.then(|| Hit {
            field: a.field,
            start: a.start.min(b.start),
            end: a.end.max(b.end),
        })
    }

    /// Whether a NEAR query matches and its spans are the same as with the
    /// old all-pairs evaluation, on random texts over a small vocabulary
    /// (with sentence ends: `x!`). NEAR/s is checked where it is outermost,
    /// since a sentence's hits count as one occurrence in an enclosing NEAR.
    #[test]
    fn near_agrees_with_the_all_pairs_evaluation() {
        let queries = [
            "a NEAR/1 b",
            "a ONEAR/2 b",
            "a NEAR/1 a",
            "(a NEAR/1 b) NEAR/2 c",
            "(a ONEAR/1 b) ONEAR/1 c",
            "(a OR b) ONEAR/2 (c OR a)",
            "(a NEAR/2 b) NEAR/1 (b NEAR/1 c)",
            "\"a b\" NEAR/1 (c OR \"b c\")",
            "((a NEAR/1 b) OR c) NEAR/3 (a NEAR/2 c)",
            "a NEAR/s b",
            "a ONEAR/s b",
            "a NEAR/s a",
            "(a NEAR/1 b) NEAR/s c",
            "(a OR \"b c\") ONEAR/s (c OR \"a b\")",
            "(a ONEAR/2 b) ONEAR/s (b NEAR/1 c)",
        ];
        let mut x: u64 = 11;
        let mut rnd = |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        let words = ["a", "b", "c", "x", "x!"];
        let mut checked = 0;
        for q in queries {
            let yaml = format!("rules:\n  - id: r\n    title: t\n    query: '{q}'\n");
            let rs = crate::rules::load_strs(vec![(PathBuf::from("t.yaml"), yaml)]).unwrap();
            let m = &rs.matcher;
            for _ in 0..300 {
                let mut field = |len: u64| -> String {
                    (0..len)
                        .map(|_| words[rnd(5) as usize])
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let (title, body) = (field(6), field(20));
                let json = serde_json::json!({"id": "1", "title": title, "body": body});
                let ev = decode(json.to_string().as_bytes(), &EventFields::default()).unwrap();
                let mut s = Scratch::new();
                m.prepare(&ev, &mut s);
                let d = m.doc(&ev, &mut s);
                let query = &m.rules[0].query;
                let want_hits = brute_hits(query, &d);
                let matched = m.eval(query, &d, None);
                assert_eq!(matched, !want_hits.is_empty(), "{q} on {title:?} {body:?}");
                let mut got = Vec::new();
                assert_eq!(m.eval(query, &d, Some(&mut got)), matched);
                let spans =
                    |v: Vec<Hit>| merge_spans(v.into_iter().map(|h| d.to_text_span(h)).collect());
                let want: Vec<Hit> = want_hits
                    .into_iter()
                    .flat_map(|h| {
                        if h.parts.is_empty() {
                            vec![h.hit]
                        } else {
                            h.parts
                        }
                    })
                    .collect();
                assert_eq!(spans(got), spans(want), "{q} on {title:?} {body:?}");
                checked += usize::from(matched);
            }
        }
        assert!(checked > 300, "too few matching cases: {checked}");
    }

    #[test]
    fn spans_are_sorted_and_merged() {
        let t = |field, start, end| TextSpan { field, start, end };
        let got = merge_spans(vec![
            t(1, 0, 4),
            t(0, 5, 9),
            t(0, 0, 6),
            t(0, 9, 12),
            t(1, 2, 3),
        ]);
        assert_eq!(got, [t(0, 0, 9), t(0, 9, 12), t(1, 0, 4)]);
    }
}
