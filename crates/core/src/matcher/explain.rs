//! `newswatch explain`: every clause of one rule evaluated against one
//! event, with whether it matched and where (and, for NEAR/s and ONEAR/s,
//! in which sentences), and for a `~` term the language, stems and forms it
//! matched ([`MorphNote`]).

use super::occurrences::{Doc, Hit};
use super::verify::merge_spans;
use super::{Matcher, Scratch, TextSpan, TITLE};
use crate::event::Event;
use crate::lang::compile::{Expr, ExprKind, Pat, SrcId};
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
    /// For a `~` term or phrase: how it was looked up.
    pub morph: Option<MorphNote>,
}

/// How a `~` term was matched in one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MorphNote {
    /// The language whose analyzer was used (the event's `lang` or the
    /// detected one); `None` when there is none and `~word` is `word`.
    pub lang: Option<&'static str>,
    /// Per word of the term: the stems it is looked up by.
    pub stems: Vec<Vec<String>>,
    /// The distinct forms of the text it matched, as written.
    pub forms: Vec<String>,
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
        let morph = self.morph_note(e, d, &hits);
        let kind = if morph.is_some() {
            if kind == "phrase" {
                "~phrase"
            } else {
                "~term"
            }
        } else {
            kind
        };
        Explained {
            kind,
            src: e.src,
            span: e.span,
            matched,
            spans: merge_spans(hits.into_iter().map(|h| d.to_text_span(h)).collect()),
            sentences,
            children,
            morph,
        }
    }

    /// The note of a `~` term: its stems in the event's language and the
    /// forms its hits cover.
    fn morph_note(&self, e: &Expr, d: &Doc<'_>, hits: &[Hit]) -> Option<MorphNote> {
        let ExprKind::Text { pats, .. } = &e.kind else {
            return None;
        };
        let lang = d.lang.analyzer;
        let mut stems = Vec::with_capacity(pats.len());
        for &p in pats.iter() {
            let Pat::Morph(w) = &self.dict.pats[p as usize] else {
                return None;
            };
            stems.push(self.morph.stems_of(lang, w));
        }
        let mut forms: Vec<String> = Vec::new();
        for &h in hits {
            let span = d.to_text_span(h);
            let text = if span.field == TITLE {
                d.ev.title.as_deref()
            } else {
                d.ev.body.as_deref()
            };
            let form = text
                .and_then(|t| t.get(span.start as usize..span.end as usize))
                .unwrap_or("");
            if !forms.iter().any(|f| f == form) {
                forms.push(form.to_owned());
            }
        }
        Some(MorphNote {
            lang: lang.map(|l| l.code()),
            stems,
            forms,
        })
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
