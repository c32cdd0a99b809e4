//! From syntax trees to executable expressions.
//!
//! Resolves field scopes, `@lists` and `$macros`, normalizes text terms
//! through [`crate::lang::text`] into pattern ids of a shared [`Dict`], and runs the
//! semantic checks of SPEC §4: undefined references, macro cycles,
//! AND/NOT/keyword fields inside NEAR, NEARs that can never match, and
//! queries that would match every event.
//!
//! Pure: no IO.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use crate::lang::query::{Ast, Span, MAX_DEPTH};
use crate::lang::text;

/// Identifies the string a span points into (a rule's query, a macro, a list
/// entry); the rule loader maps it back to a file position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SrcId(pub u32);

/// A pattern for one word position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pat {
    /// A whole normalized word.
    Word(Box<str>),
    /// A normalized prefix (`word*`).
    Prefix(Box<str>),
    /// A case-sensitive word (`{Word}`).
    Exact(Box<str>),
}

pub type PatId = u32;

/// Every distinct pattern of a rule set, numbered.
#[derive(Debug, Default)]
pub struct Dict {
    pub pats: Vec<Pat>,
    pub words: FxHashMap<Box<str>, PatId>,
    pub prefixes: FxHashMap<Box<str>, PatId>,
    pub exacts: FxHashMap<Box<str>, PatId>,
}

impl Dict {
    fn intern(&mut self, p: Pat) -> PatId {
        let (map, key) = match &p {
            Pat::Word(w) => (&mut self.words, w.clone()),
            Pat::Prefix(w) => (&mut self.prefixes, w.clone()),
            Pat::Exact(w) => (&mut self.exacts, w.clone()),
        };
        if let Some(&id) = map.get(&key) {
            return id;
        }
        let id = self.pats.len() as PatId;
        map.insert(key, id);
        self.pats.push(p);
        id
    }
}

/// Which text fields a text pattern may match in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextScope {
    Any,
    Title,
    Body,
}

impl TextScope {
    pub fn fields(self) -> &'static [u8] {
        match self {
            TextScope::Any => &[0, 1],
            TextScope::Title => &[0],
            TextScope::Body => &[1],
        }
    }
}

/// A keyword field: one of the event's decoded fields, or a dotted path
/// into the raw JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeywordField {
    Id,
    Source,
    Lang,
    Url,
    Path(Box<[Box<str>]>),
}

impl KeywordField {
    fn from_name(name: &str) -> Self {
        match name {
            "id" => KeywordField::Id,
            "source" => KeywordField::Source,
            "lang" => KeywordField::Lang,
            "url" => KeywordField::Url,
            _ => KeywordField::Path(name.split('.').map(Into::into).collect()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Near {
        left: Box<Expr>,
        right: Box<Expr>,
        dist: u32,
        ordered: bool,
    },
    /// A word (one pattern) or a phrase (consecutive patterns).
    Text {
        scope: TextScope,
        pats: Box<[PatId]>,
    },
    Keyword {
        field: KeywordField,
        /// Compared via [`text::keyword_key`].
        value: Box<str>,
        prefix: bool,
    },
    /// A `$macro` or `@list` reference, kept for `explain`.
    Group(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub src: SrcId,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub src: SrcId,
    pub span: Span,
    pub message: String,
}

/// A list entry: its text and where it was written.
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub raw: String,
    pub src: SrcId,
}

/// A macro: its parsed query (or `None` when it failed to parse, already
/// reported) and where it was written.
#[derive(Debug, Clone)]
pub struct MacroDef {
    pub ast: Option<Ast>,
    pub src: SrcId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope<'a> {
    Text(TextScope),
    Keyword(&'a str),
}

/// Compiles queries of one rule set against shared lists, macros and dict.
pub struct Compiler<'d> {
    pub dict: Dict,
    lists: &'d HashMap<String, Vec<ListEntry>>,
    macros: &'d HashMap<String, MacroDef>,
}

impl<'d> Compiler<'d> {
    pub fn new(
        lists: &'d HashMap<String, Vec<ListEntry>>,
        macros: &'d HashMap<String, MacroDef>,
    ) -> Self {
        Compiler {
            dict: Dict::default(),
            lists,
            macros,
        }
    }

    /// Compile a rule's `query`: also checks it cannot match every event.
    pub fn query(&mut self, ast: &Ast, src: SrcId) -> Result<Expr, Vec<CompileError>> {
        let e = self.filter(ast, src)?;
        if !positive(&e) {
            return Err(vec![CompileError {
                src,
                span: ast.span(),
                message: "query would match almost every event: it needs a term outside NOT \
                          (put exclusions in `filter` or write `x AND NOT y`)"
                    .into(),
            }]);
        }
        Ok(e)
    }

    /// Compile a rule's `filter` (may be purely negative).
    pub fn filter(&mut self, ast: &Ast, src: SrcId) -> Result<Expr, Vec<CompileError>> {
        let mut errs = Vec::new();
        let mut stack = Vec::new();
        let e = self.expand(
            ast,
            src,
            Scope::Text(TextScope::Any),
            false,
            0,
            &mut stack,
            &mut errs,
        );
        match e {
            Some(e) if errs.is_empty() => Ok(e),
            _ => Err(errs),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn expand(
        &mut self,
        ast: &Ast,
        src: SrcId,
        scope: Scope<'_>,
        in_near: bool,
        depth: usize,
        macro_stack: &mut Vec<String>,
        errs: &mut Vec<CompileError>,
    ) -> Option<Expr> {
        let span = ast.span();
        macro_rules! error {
            ($m:expr) => {{
                errs.push(CompileError {
                    src,
                    span,
                    message: $m,
                });
                return None;
            }};
        }
        if depth > MAX_DEPTH * 4 {
            error!(format!(
                "query nests deeper than {} levels once macros are expanded",
                MAX_DEPTH * 4
            ));
        }
        let mk = |kind| Some(Expr { kind, src, span });
        match ast {
            Ast::Or(items, _) => {
                let v: Vec<_> = items
                    .iter()
                    .map(|a| self.expand(a, src, scope, in_near, depth + 1, macro_stack, errs))
                    .collect();
                let v: Option<Vec<_>> = v.into_iter().collect();
                mk(ExprKind::Or(v?))
            }
            Ast::And(items, _) => {
                if in_near {
                    error!("AND is not allowed inside a NEAR operand: NEAR takes terms, phrases, lists, and ORs or NEARs of those".into());
                }
                let v: Vec<_> = items
                    .iter()
                    .map(|a| self.expand(a, src, scope, false, depth + 1, macro_stack, errs))
                    .collect();
                let v: Option<Vec<_>> = v.into_iter().collect();
                mk(ExprKind::And(v?))
            }
            Ast::Not(inner, _) => {
                if in_near {
                    error!("NOT is not allowed inside a NEAR operand".into());
                }
                let e = self.expand(inner, src, scope, false, depth + 1, macro_stack, errs)?;
                mk(ExprKind::Not(Box::new(e)))
            }
            Ast::Near {
                left,
                right,
                dist,
                ordered,
                ..
            } => {
                if let Scope::Keyword(f) = scope {
                    error!(format!(
                        "NEAR needs text, but keyword field `{f}` has no word positions"
                    ));
                }
                let l = self.expand(left, src, scope, true, depth + 1, macro_stack, errs);
                let r = self.expand(right, src, scope, true, depth + 1, macro_stack, errs);
                let (l, r) = (l?, r?);
                if text_fields(&l) & text_fields(&r) == 0 {
                    error!("this NEAR can never match: its operands are in different fields (title vs body)".into());
                }
                mk(ExprKind::Near {
                    left: Box::new(l),
                    right: Box::new(r),
                    dist: *dist,
                    ordered: *ordered,
                })
            }
            Ast::Field { name, inner, .. } => {
                // `url:https://x` would otherwise silently become the field
                // `https` (never matching), and `source:title:x` a title term.
                if let Scope::Keyword(outer) = scope {
                    error!(format!(
                        "keyword field `{outer}` takes a value, not the field `{name}:`; \
                         quote a value that holds ':' ({outer}:\"…\")"
                    ));
                }
                let new_scope = match name.as_str() {
                    "text" => Scope::Text(TextScope::Any),
                    "title" => Scope::Text(TextScope::Title),
                    "body" => Scope::Text(TextScope::Body),
                    other => {
                        if in_near {
                            error!(format!("keyword field `{other}` cannot be a NEAR operand: it has no word positions"));
                        }
                        Scope::Keyword(other)
                    }
                };
                self.expand(inner, src, new_scope, in_near, depth + 1, macro_stack, errs)
            }
            Ast::Word {
                raw, prefix, exact, ..
            } => match self.term(raw, *prefix, *exact, false, scope) {
                Ok(kind) => mk(kind),
                Err(m) => error!(m),
            },
            Ast::Phrase { raw, exact, .. } => match self.term(raw, false, *exact, true, scope) {
                Ok(kind) => mk(kind),
                Err(m) => error!(m),
            },
            Ast::List(name, _) => {
                let Some(entries) = self.lists.get(name) else {
                    error!(format!("undefined list @{name}"));
                };
                let mut items = Vec::with_capacity(entries.len());
                for entry in entries {
                    match self.list_entry(&entry.raw, scope) {
                        Ok(kind) => items.push(Expr {
                            kind,
                            src: entry.src,
                            span: Span {
                                start: 0,
                                end: entry.raw.len() as u32,
                            },
                        }),
                        Err(m) => errs.push(CompileError {
                            src: entry.src,
                            span: Span {
                                start: 0,
                                end: entry.raw.len() as u32,
                            },
                            message: format!("in list @{name}: {m}"),
                        }),
                    }
                }
                if items.len() != entries.len() {
                    return None;
                }
                if items.is_empty() {
                    error!(format!("list @{name} is empty, so this can never match"));
                }
                let or = Expr {
                    kind: ExprKind::Or(items),
                    src,
                    span,
                };
                mk(ExprKind::Group(Box::new(or)))
            }
            Ast::Macro(name, _) => {
                let Some(def) = self.macros.get(name) else {
                    error!(format!("undefined macro ${name}"));
                };
                if let Some(i) = macro_stack.iter().position(|m| m == name) {
                    let mut cycle: Vec<String> =
                        macro_stack[i..].iter().map(|m| format!("${m}")).collect();
                    cycle.push(format!("${name}"));
                    error!(format!("macro cycle: {}", cycle.join(" -> ")));
                }
                // A macro that failed to parse was reported where it is defined.
                let ast = def.ast.as_ref()?;
                macro_stack.push(name.clone());
                let inner = self.expand(ast, def.src, scope, in_near, depth + 1, macro_stack, errs);
                macro_stack.pop();
                mk(ExprKind::Group(Box::new(inner?)))
            }
        }
    }

    fn term(
        &mut self,
        raw: &str,
        prefix: bool,
        exact: bool,
        phrase: bool,
        scope: Scope<'_>,
    ) -> Result<ExprKind, String> {
        match scope {
            Scope::Keyword(field) => {
                if exact {
                    return Err(format!(
                        "case-sensitive {{…}} applies to text fields; keyword field `{field}` already compares values ignoring case only"
                    ));
                }
                Ok(ExprKind::Keyword {
                    field: KeywordField::from_name(field),
                    value: text::keyword_key(raw).into(),
                    prefix,
                })
            }
            Scope::Text(scope) => {
                let pats: Vec<Pat> = if exact {
                    text::exact_words(raw)
                        .into_iter()
                        .map(|(_, _, w)| Pat::Exact(w.into()))
                        .collect()
                } else {
                    let words = text::words(raw);
                    let n = words.len();
                    words
                        .into_iter()
                        .enumerate()
                        .map(|(i, w)| {
                            if prefix && i + 1 == n {
                                Pat::Prefix(w.into())
                            } else {
                                Pat::Word(w.into())
                            }
                        })
                        .collect()
                };
                if pats.is_empty() {
                    let what = if phrase { "phrase" } else { "term" };
                    return Err(format!(
                        "{what} {raw:?} has no letters or digits, so it can never match"
                    ));
                }
                if let Some(Pat::Prefix(p)) = pats.last() {
                    if p.chars().count() < 2 {
                        return Err(format!(
                            "prefix {raw:?}* normalizes to {p:?}: a prefix needs at least 2 characters"
                        ));
                    }
                }
                let pats = pats.into_iter().map(|p| self.dict.intern(p)).collect();
                Ok(ExprKind::Text { scope, pats })
            }
        }
    }

    /// A list entry: a word or phrase, `word*` for a prefix, `{…}` for a
    /// case-sensitive word or phrase.
    fn list_entry(&mut self, raw: &str, scope: Scope<'_>) -> Result<ExprKind, String> {
        let t = raw.trim();
        if let Some(inner) = t.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            let inner = inner.trim_matches('"');
            return self.term(inner, false, true, true, scope);
        }
        match t.strip_suffix('*') {
            Some(stem) if !stem.contains(char::is_whitespace) => {
                if stem.chars().count() < 2 {
                    return Err(format!(
                        "{t:?}: a prefix needs at least 2 characters before '*'"
                    ));
                }
                self.term(stem, true, false, false, scope)
            }
            _ => self.term(t.trim_matches('"'), false, false, true, scope),
        }
    }
}

/// Bit 0: may match in the title; bit 1: in the body.
fn text_fields(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Text { scope, .. } => match scope {
            TextScope::Any => 3,
            TextScope::Title => 1,
            TextScope::Body => 2,
        },
        ExprKind::Or(v) => v.iter().fold(0, |acc, x| acc | text_fields(x)),
        ExprKind::Near { left, right, .. } => text_fields(left) & text_fields(right),
        ExprKind::Group(x) => text_fields(x),
        ExprKind::And(_) | ExprKind::Not(_) | ExprKind::Keyword { .. } => 0,
    }
}

/// Whether the expression needs some positive evidence to be true (false
/// for `NOT x`, `a OR NOT b`, which match nearly every event).
pub fn positive(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Text { .. } | ExprKind::Keyword { .. } | ExprKind::Near { .. } => true,
        ExprKind::Not(_) => false,
        ExprKind::And(v) => v.iter().any(positive),
        ExprKind::Or(v) => v.iter().all(positive),
        ExprKind::Group(x) => positive(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::query::parse;

    fn compile(
        q: &str,
        lists: &[(&str, &[&str])],
        macros: &[(&str, &str)],
    ) -> Result<Expr, Vec<CompileError>> {
        let lists: HashMap<String, Vec<ListEntry>> = lists
            .iter()
            .map(|(n, es)| {
                (
                    n.to_string(),
                    es.iter()
                        .map(|e| ListEntry {
                            raw: e.to_string(),
                            src: SrcId(1),
                        })
                        .collect(),
                )
            })
            .collect();
        let macros: HashMap<String, MacroDef> = macros
            .iter()
            .map(|(n, q)| {
                (
                    n.to_string(),
                    MacroDef {
                        ast: parse(q).ok(),
                        src: SrcId(2),
                    },
                )
            })
            .collect();
        let mut c = Compiler::new(&lists, &macros);
        c.query(&parse(q).unwrap(), SrcId(0))
    }

    fn check_err(q: &str, msg: &str) {
        match compile(
            q,
            &[("l", &["a", "b c"])],
            &[
                ("m", "x OR y"),
                ("c1", "$c2"),
                ("c2", "$c1"),
                ("and", "a AND b"),
            ],
        ) {
            Ok(e) => panic!("{q:?} compiled: {e:?}"),
            Err(errs) => assert!(
                errs.iter().any(|e| e.message.contains(msg)),
                "{q:?}: {errs:?} lacks {msg:?}"
            ),
        }
    }

    #[test]
    fn semantic_errors() {
        let table = [
            ("NOT a", "match almost every event"),
            ("a OR NOT b", "match almost every event"),
            ("@nope", "undefined list @nope"),
            ("$nope", "undefined macro $nope"),
            ("$c1", "macro cycle: $c1 -> $c2 -> $c1"),
            ("(a AND b) NEAR/3 c", "AND is not allowed inside a NEAR"),
            ("$and NEAR/3 c", "AND is not allowed inside a NEAR"),
            ("source:x NEAR/3 c", "no word positions"),
            ("title:a NEAR/3 body:b", "can never match"),
            ("\"—\"", "no letters or digits"),
            ("{lavrov} source:{x}", "case-sensitive"),
        ];
        for (q, msg) in table {
            check_err(q, msg);
        }
    }

    #[test]
    fn compiles_good_queries() {
        for q in [
            "a NOT b",
            "@l NEAR/5 $m",
            "(a OR b NEAR/2 c) ONEAR/4 d",
            "title:a NEAR/3 b",
            "lang:(en OR ru) a",
            "three-way",
        ] {
            compile(q, &[("l", &["a", "b c"])], &[("m", "x OR y")])
                .unwrap_or_else(|e| panic!("{q:?}: {e:?}"));
        }
    }

    #[test]
    fn hyphenated_word_becomes_phrase() {
        let e = compile("three-way", &[], &[]).unwrap();
        let ExprKind::Text { pats, .. } = &e.kind else {
            panic!()
        };
        assert_eq!(pats.len(), 2);
    }
}
