//! Phase 2, verification: a candidate's query and filter evaluated against
//! the occurrence index, and for a match the spans that made it true.

use serde_json::Value;

use super::index::NO_PAT;
use super::occurrences::{Doc, Hit};
use super::{Matcher, TextSpan};
use crate::event::Event;
use crate::lang::compile::{Expr, ExprKind, KeywordField, PatId};
use crate::lang::text;

/// A hit with the leaf hits it was made of (for NEAR spans).
#[derive(Debug, Clone)]
struct NearHit {
    hit: Hit,
    parts: Vec<Hit>,
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
