//! `newswatch explain`: every clause of one rule evaluated against one
//! event, with whether it matched and where (and, for NEAR/s and ONEAR/s,
//! in which sentences).

use super::occurrences::{Doc, Hit};
use super::verify::merge_spans;
use super::{Matcher, Scratch, TextSpan};
use crate::event::Event;
use crate::lang::compile::{Expr, ExprKind, SrcId};
use crate::lang::query::Span;

/// The result of `explain` for one clause.
#[derive(Debug, Clone)]
pub struct Explained {
    pub kind: &'static str,
    pub src: SrcId,
    pub span: Span,
    pub matched: bool,
    pub spans: Vec<TextSpan>,
    /// NEAR/s and ONEAR/s: the sentences (byte ranges) its spans are in.
    pub sentences: Vec<TextSpan>,
    pub children: Vec<Explained>,
}

impl Matcher {
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
            ExprKind::Text { .. }
            | ExprKind::Keyword { .. }
            | ExprKind::Compare { .. }
            | ExprKind::Exists(_) => Vec::new(),
        };
        let sentences = match &e.kind {
            ExprKind::Near { sentence: true, .. } => sentence_spans(&hits, d),
            _ => Vec::new(),
        };
        let kind = match &e.kind {
            ExprKind::Or(_) => "OR",
            ExprKind::And(_) => "AND",
            ExprKind::Not(_) => "NOT",
            ExprKind::Near {
                ordered: true,
                sentence: true,
                ..
            } => "ONEAR/s",
            ExprKind::Near { sentence: true, .. } => "NEAR/s",
            ExprKind::Near { ordered: true, .. } => "ONEAR",
            ExprKind::Near { .. } => "NEAR",
            ExprKind::Text { pats, .. } if pats.len() > 1 => "phrase",
            ExprKind::Text { .. } => "term",
            ExprKind::Keyword { .. } => "keyword",
            ExprKind::Compare { .. } => "compare",
            ExprKind::Exists(_) => "exists",
            ExprKind::Group(_) => "ref",
        };
        Explained {
            kind,
            src: e.src,
            span: e.span,
            matched,
            spans: merge_spans(hits.into_iter().map(|h| d.to_text_span(h)).collect()),
            sentences,
            children,
        }
    }
}

/// The sentences the hits start in, as byte ranges, in text order, once each.
fn sentence_spans(hits: &[Hit], d: &Doc<'_>) -> Vec<TextSpan> {
    let mut v: Vec<TextSpan> = hits
        .iter()
        .filter_map(|h| {
            let sents = d.sentences(h.field);
            let s = sents.get(crate::lang::sentence::sentence_of(&sents, h.start))?;
            Some(TextSpan {
                field: h.field,
                start: s.start,
                end: s.end,
            })
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}
