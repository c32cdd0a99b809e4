//! From syntax trees to executable expressions.
//!
//! Resolves field scopes, `@lists` and `$macros`, normalizes text terms
//! through [`crate::lang::text`] into pattern ids of a shared [`Dict`], and runs the
//! semantic checks of SPEC §4: undefined references, macro cycles,
//! AND/NOT/keyword fields inside NEAR, NEARs that can never match, and
//! queries that would match every event. Every error carries a
//! [`CompileErrorKind`], so callers never classify errors by their wording.
//!
//! Pure: no IO.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;

use crate::lang::query::{Ast, Cmp, Span, MAX_DEPTH, MIN_WILD_LITERALS};
use crate::lang::{morph, pattern, text};

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
    /// Every inflected form of a word (`~word`), in its
    /// [`morph::morph_form`]: the matcher finds it by the stems of the
    /// event's language ([`crate::lang::morph`]), or as the normalized
    /// word itself without one.
    Morph(Box<str>),
    /// A wildcard pattern (`*stan`, `kim*un`, `wom?n`): normalized literal
    /// pieces joined by `*` and `?`, which normalized words never contain.
    Wild(Box<str>),
}

pub type PatId = u32;

/// Every distinct pattern of a rule set, numbered.
#[derive(Debug, Default)]
pub struct Dict {
    pub pats: Vec<Pat>,
    pub words: FxHashMap<Box<str>, PatId>,
    pub prefixes: FxHashMap<Box<str>, PatId>,
    pub exacts: FxHashMap<Box<str>, PatId>,
    pub morphs: FxHashMap<Box<str>, PatId>,
    pub wilds: FxHashMap<Box<str>, PatId>,
}

impl Dict {
    fn intern(&mut self, p: Pat) -> PatId {
        let (map, key) = match &p {
            Pat::Word(w) => (&mut self.words, w.clone()),
            Pat::Prefix(w) => (&mut self.prefixes, w.clone()),
            Pat::Exact(w) => (&mut self.exacts, w.clone()),
            Pat::Morph(w) => (&mut self.morphs, w.clone()),
            Pat::Wild(w) => (&mut self.wilds, w.clone()),
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
        /// Words allowed between the operands; 0 with `sentence`.
        dist: u32,
        ordered: bool,
        /// Within one sentence instead of `dist` words.
        sentence: bool,
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
        /// `value` is a wildcard pattern (`*`, `?`) over the whole value.
        wild: bool,
    },
    /// `field:>0.5`, `field:[A TO B]`: numbers or timestamps compared.
    Compare {
        field: KeywordField,
        cmp: Cmp,
    },
    /// `_exists_:field`: present and not null.
    Exists(KeywordField),
    /// A `$macro` or `@list` reference, kept for `explain`.
    Group(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub src: SrcId,
    pub span: Span,
}

/// What kind of problem a [`CompileError`] is. The rule loader acts on it:
/// an unused macro reports only [`Undefined`](Self::Undefined) and
/// [`MacroCycle`](Self::MacroCycle), since whether the rest are errors
/// depends on where the macro is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileErrorKind {
    /// A `@list` or `$macro` that is not defined.
    Undefined,
    /// A macro that uses itself, directly or through others.
    MacroCycle,
    /// Nesting deeper than the limit once macros are expanded.
    TooDeep,
    /// AND, NOT or a keyword field inside a NEAR operand, or a NEAR in a
    /// keyword field: NEAR needs word positions.
    NearOperand,
    /// A field where a keyword field expects its value (`url:https://x`).
    FieldInKeyword,
    /// A term its field cannot take: `{…}` in a keyword field, a prefix
    /// shorter than two characters, a wildcard pattern with too few
    /// characters or over several words, a comparison on a text field.
    BadTerm,
    /// Something that can never match: a NEAR across title and body, an
    /// empty list, a term without letters or digits.
    NeverMatches,
    /// A query that would match almost every event (nothing outside NOT).
    MatchesEverything,
    /// More than [`MAX_EXPANDED_NODES`] nodes once macros and lists are
    /// expanded (doubling macros: `b: $a $a`, `c: $b $b`, …).
    TooLarge,
}

/// The most nodes one query or macro may expand to, macros and lists
/// expanded (a list entry counts as one node). Expansion stops when it is
/// reached, so a file of doubling macros (2^30 nodes from 0.5 KB) costs
/// at most this many nodes per query: about 10 MB and tens of milliseconds.
pub const MAX_EXPANDED_NODES: usize = 100_000;

/// The most nodes all the queries one [`Compiler`] compiles may expand to
/// together, so that many rules using one large macro cannot add up to
/// gigabytes either: a million nodes hold about 85 MB. The matcher
/// bench's 100,000 generated rules (98 MB compiled) load within it.
pub const MAX_TOTAL_EXPANDED_NODES: usize = 1_000_000;

/// One problem in a query, at a span of one source string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    pub kind: CompileErrorKind,
    pub src: SrcId,
    pub span: Span,
    pub message: String,
}

/// A problem found in a term before its span is known.
type Problem = (CompileErrorKind, String);

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

/// Where one step of [`Compiler::expand`] is in the tree: what changes from
/// a node to its children.
#[derive(Debug, Clone, Copy)]
struct At<'a> {
    /// The string the node's span points into (a rule's query, a macro).
    src: SrcId,
    /// The field the node's terms are matched in.
    scope: Scope<'a>,
    /// Inside a NEAR operand, which takes only terms with word positions.
    in_near: bool,
    /// Nesting so far, expanded macros included.
    depth: usize,
}

impl<'a> At<'a> {
    /// One level down, still inside (or outside) NEAR.
    fn child(self) -> Self {
        At {
            depth: self.depth + 1,
            ..self
        }
    }

    /// One level down, as an operand of NEAR (`true`) or of AND/NOT (`false`).
    fn operand(self, in_near: bool) -> Self {
        At {
            in_near,
            ..self.child()
        }
    }
}

/// What one expansion shares across its whole tree.
#[derive(Debug, Default)]
struct Expansion {
    /// The macros being expanded, outermost first, to find cycles.
    macro_stack: Vec<String>,
    /// Every error so far: expansion goes on after one so that all of a
    /// query's errors are reported together.
    errs: Vec<CompileError>,
    /// Nodes expanded so far, against [`MAX_EXPANDED_NODES`].
    nodes: usize,
    /// The budget ran out: nothing more is expanded, and the error is
    /// reported once, at the outermost macro reference (or the query).
    too_large: bool,
    too_large_reported: bool,
}

impl Expansion {
    /// Count `n` more nodes; false once the budget is spent.
    fn spend(&mut self, n: usize) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_EXPANDED_NODES {
            self.too_large = true;
        }
        !self.too_large
    }

    /// Report the spent budget at `span`, once.
    fn report_too_large(&mut self, src: SrcId, span: Span, what: &str) {
        if self.too_large && !self.too_large_reported {
            self.too_large_reported = true;
            let m = format!(
                "{what} expands to more than {MAX_EXPANDED_NODES} nodes once macros and lists are expanded"
            );
            self.fail(src, span, CompileErrorKind::TooLarge, m);
        }
    }

    /// Record an error; `None` for the node that has it.
    fn fail(
        &mut self,
        src: SrcId,
        span: Span,
        kind: CompileErrorKind,
        message: String,
    ) -> Option<Expr> {
        self.errs.push(CompileError {
            kind,
            src,
            span,
            message,
        });
        None
    }
}

/// Compiles queries of one rule set against shared lists, macros and dict.
pub struct Compiler<'d> {
    pub dict: Dict,
    lists: &'d HashMap<String, Vec<ListEntry>>,
    macros: &'d HashMap<String, MacroDef>,
    /// Macros that alone expand past [`MAX_EXPANDED_NODES`]: a use of one
    /// fails at once instead of expanding it again.
    oversized: HashSet<String>,
    /// Nodes expanded by every query so far, against
    /// [`MAX_TOTAL_EXPANDED_NODES`].
    total: usize,
}

impl<'d> Compiler<'d> {
    /// The macros found to be too large so far (see [`Self::assume_oversized`]).
    pub fn oversized(&self) -> &HashSet<String> {
        &self.oversized
    }

    /// Treat these macros as too large without expanding them (what a
    /// compiler that checked every macro found).
    pub fn assume_oversized(&mut self, names: HashSet<String>) {
        self.oversized.extend(names);
    }

    pub fn new(
        lists: &'d HashMap<String, Vec<ListEntry>>,
        macros: &'d HashMap<String, MacroDef>,
    ) -> Self {
        Compiler {
            dict: Dict::default(),
            lists,
            macros,
            oversized: HashSet::new(),
            total: 0,
        }
    }

    /// Compile a rule's `query`: also checks it cannot match every event.
    pub fn query(&mut self, ast: &Ast, src: SrcId) -> Result<Expr, Vec<CompileError>> {
        let e = self.filter(ast, src)?;
        if !positive(&e) {
            return Err(vec![CompileError {
                kind: CompileErrorKind::MatchesEverything,
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
        if self.total > MAX_TOTAL_EXPANDED_NODES {
            return Err(vec![CompileError {
                kind: CompileErrorKind::TooLarge,
                src,
                span: ast.span(),
                message: format!(
                    "not compiled: the rules already expand to more than \
                     {MAX_TOTAL_EXPANDED_NODES} nodes in total"
                ),
            }]);
        }
        let mut cx = Expansion::default();
        let at = At {
            src,
            scope: Scope::Text(TextScope::Any),
            in_near: false,
            depth: 0,
        };
        let e = self.expand(ast, at, &mut cx);
        cx.report_too_large(src, ast.span(), "the query");
        self.total = self.total.saturating_add(cx.nodes);
        match e {
            Some(e) if cx.errs.is_empty() => Ok(e),
            _ => Err(cx.errs),
        }
    }

    /// Resolve one node and its children into an expression, checking it
    /// where it stands; `None` when it has an error (recorded in `cx`).
    fn expand(&mut self, ast: &Ast, at: At<'_>, cx: &mut Expansion) -> Option<Expr> {
        let span = ast.span();
        let fail = |cx: &mut Expansion, kind, message| cx.fail(at.src, span, kind, message);
        if !cx.spend(1) {
            return None;
        }
        if at.depth > MAX_DEPTH * 4 {
            let m = format!(
                "query nests deeper than {} levels once macros are expanded",
                MAX_DEPTH * 4
            );
            return fail(cx, CompileErrorKind::TooDeep, m);
        }
        let kind = match ast {
            Ast::Or(items, _) => ExprKind::Or(self.expand_all(items, at.child(), cx)?),
            Ast::And(items, _) => {
                if at.in_near {
                    let m = "AND is not allowed inside a NEAR operand: NEAR takes terms, \
                             phrases, lists, and ORs or NEARs of those";
                    return fail(cx, CompileErrorKind::NearOperand, m.into());
                }
                ExprKind::And(self.expand_all(items, at.operand(false), cx)?)
            }
            Ast::Not(inner, _) => {
                if at.in_near {
                    let m = "NOT is not allowed inside a NEAR operand".into();
                    return fail(cx, CompileErrorKind::NearOperand, m);
                }
                ExprKind::Not(Box::new(self.expand(inner, at.operand(false), cx)?))
            }
            Ast::Near {
                left,
                right,
                dist,
                ordered,
                sentence,
                ..
            } => {
                let (l, r) = self.near_operands(left, right, span, at, cx)?;
                ExprKind::Near {
                    left: Box::new(l),
                    right: Box::new(r),
                    dist: *dist,
                    ordered: *ordered,
                    sentence: *sentence,
                }
            }
            Ast::Field { name, inner, .. } => return self.expand_field(name, inner, span, at, cx),
            Ast::Word {
                raw,
                prefix,
                wild,
                exact,
                ..
            } => {
                let form = match (*exact, *prefix, *wild) {
                    (true, _, _) => Form::Exact,
                    (_, true, _) => Form::Prefix,
                    (_, _, true) => Form::Wild,
                    _ => Form::Plain,
                };
                match self.term(raw, form, false, at.scope) {
                    Ok(kind) => kind,
                    Err((kind, m)) => return fail(cx, kind, m),
                }
            }
            Ast::Phrase { raw, exact, .. } => {
                let form = if *exact { Form::Exact } else { Form::Plain };
                match self.term(raw, form, true, at.scope) {
                    Ok(kind) => kind,
                    Err((kind, m)) => return fail(cx, kind, m),
                }
            }
            Ast::Compare(..) | Ast::Exists(..) if at.in_near => {
                let m =
                    "a comparison or _exists_ cannot be a NEAR operand: it has no word positions";
                return fail(cx, CompileErrorKind::NearOperand, m.into());
            }
            Ast::Compare(cmp, _) => match at.scope {
                Scope::Keyword(field) => ExprKind::Compare {
                    field: KeywordField::from_name(field),
                    cmp: *cmp,
                },
                Scope::Text(_) => {
                    let m = "a comparison needs a keyword field (`meta.score:>0.5`); \
                             title, body and text hold words, not values";
                    return fail(cx, CompileErrorKind::BadTerm, m.into());
                }
            },
            Ast::Exists(path, _) => match at.scope {
                Scope::Keyword(outer) => {
                    let m = format!("keyword field `{outer}` takes a value, not `_exists_:`");
                    return fail(cx, CompileErrorKind::FieldInKeyword, m);
                }
                Scope::Text(_) => ExprKind::Exists(KeywordField::from_name(path)),
            },
            Ast::Morph { raw, phrase, .. } => match self.morph_term(raw, *phrase, at.scope) {
                Ok(kind) => kind,
                Err((kind, m)) => return fail(cx, kind, m),
            },
            Ast::List(name, _) => self.expand_list(name, span, at, cx)?,
            Ast::Macro(name, _) => self.expand_macro(name, span, at, cx)?,
        };
        Some(Expr {
            kind,
            src: at.src,
            span,
        })
    }

    /// Every item, each expanded even after one fails (to report them all).
    fn expand_all(&mut self, items: &[Ast], at: At<'_>, cx: &mut Expansion) -> Option<Vec<Expr>> {
        let v: Vec<Option<Expr>> = items.iter().map(|a| self.expand(a, at, cx)).collect();
        v.into_iter().collect()
    }

    /// Both operands of a NEAR, which must have word positions in a
    /// common field.
    fn near_operands(
        &mut self,
        left: &Ast,
        right: &Ast,
        span: Span,
        at: At<'_>,
        cx: &mut Expansion,
    ) -> Option<(Expr, Expr)> {
        if let Scope::Keyword(f) = at.scope {
            let m = format!("NEAR needs text, but keyword field `{f}` has no word positions");
            cx.fail(at.src, span, CompileErrorKind::NearOperand, m);
            return None;
        }
        let l = self.expand(left, at.operand(true), cx);
        let r = self.expand(right, at.operand(true), cx);
        let (l, r) = (l?, r?);
        if text_fields(&l) & text_fields(&r) == 0 {
            let m =
                "this NEAR can never match: its operands are in different fields (title vs body)";
            cx.fail(at.src, span, CompileErrorKind::NeverMatches, m.into());
            return None;
        }
        Some((l, r))
    }

    /// `name:inner`: a text field narrows where words match, a keyword
    /// field turns the terms below into values.
    fn expand_field(
        &mut self,
        name: &str,
        inner: &Ast,
        span: Span,
        at: At<'_>,
        cx: &mut Expansion,
    ) -> Option<Expr> {
        // `url:https://x` would otherwise silently become the field
        // `https` (never matching), and `source:title:x` a title term.
        if let Scope::Keyword(outer) = at.scope {
            let m = format!(
                "keyword field `{outer}` takes a value, not the field `{name}:`; \
                 quote a value that holds ':' ({outer}:\"…\")"
            );
            return cx.fail(at.src, span, CompileErrorKind::FieldInKeyword, m);
        }
        let scope = match name {
            "text" => Scope::Text(TextScope::Any),
            "title" => Scope::Text(TextScope::Title),
            "body" => Scope::Text(TextScope::Body),
            other => {
                if at.in_near {
                    let m = format!("keyword field `{other}` cannot be a NEAR operand: it has no word positions");
                    return cx.fail(at.src, span, CompileErrorKind::NearOperand, m);
                }
                Scope::Keyword(other)
            }
        };
        self.expand(
            inner,
            At {
                scope,
                ..at.child()
            },
            cx,
        )
    }

    /// `@name`: an OR of its entries, each pointing at where it is written.
    fn expand_list(
        &mut self,
        name: &str,
        span: Span,
        at: At<'_>,
        cx: &mut Expansion,
    ) -> Option<ExprKind> {
        let lists = self.lists;
        let Some(entries) = lists.get(name) else {
            let m = format!("undefined list @{name}");
            cx.fail(at.src, span, CompileErrorKind::Undefined, m);
            return None;
        };
        if !cx.spend(entries.len()) {
            return None;
        }
        let mut items = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry_span = Span {
                start: 0,
                end: entry.raw.len() as u32,
            };
            match self.list_entry(&entry.raw, at.scope) {
                Ok(kind) => items.push(Expr {
                    kind,
                    src: entry.src,
                    span: entry_span,
                }),
                Err((kind, m)) => {
                    cx.fail(entry.src, entry_span, kind, format!("in list @{name}: {m}"));
                }
            }
        }
        if items.len() != entries.len() {
            return None;
        }
        if items.is_empty() {
            let m = format!("list @{name} is empty, so this can never match");
            cx.fail(at.src, span, CompileErrorKind::NeverMatches, m);
            return None;
        }
        let or = Expr {
            kind: ExprKind::Or(items),
            src: at.src,
            span,
        };
        Some(ExprKind::Group(Box::new(or)))
    }

    /// `$name`: the macro's query, expanded where it is written.
    fn expand_macro(
        &mut self,
        name: &str,
        span: Span,
        at: At<'_>,
        cx: &mut Expansion,
    ) -> Option<ExprKind> {
        let macros = self.macros;
        let Some(def) = macros.get(name) else {
            let m = format!("undefined macro ${name}");
            cx.fail(at.src, span, CompileErrorKind::Undefined, m);
            return None;
        };
        if let Some(i) = cx.macro_stack.iter().position(|m| m == name) {
            let mut cycle: Vec<String> = cx.macro_stack[i..]
                .iter()
                .map(|m| format!("${m}"))
                .collect();
            cycle.push(format!("${name}"));
            let m = format!("macro cycle: {}", cycle.join(" -> "));
            cx.fail(at.src, span, CompileErrorKind::MacroCycle, m);
            return None;
        }
        // A macro that failed to parse was reported where it is defined.
        let ast = def.ast.as_ref()?;
        if self.oversized.contains(name) {
            // Not counted in the total: nothing was expanded.
            cx.too_large = true;
            if cx.macro_stack.is_empty() {
                cx.report_too_large(at.src, span, &format!("${name}"));
            }
            return None;
        }
        let before = cx.nodes;
        cx.macro_stack.push(name.to_owned());
        let inner = self.expand(
            ast,
            At {
                src: def.src,
                ..at.child()
            },
            cx,
        );
        cx.macro_stack.pop();
        if cx.macro_stack.is_empty() {
            // Only the reference itself was counted before: the macro
            // alone is too large, wherever it is used.
            if cx.too_large && before <= 1 {
                self.oversized.insert(name.to_owned());
            }
            cx.report_too_large(at.src, span, &format!("${name}"));
        }
        Some(ExprKind::Group(Box::new(inner?)))
    }

    fn term(
        &mut self,
        raw: &str,
        form: Form,
        phrase: bool,
        scope: Scope<'_>,
    ) -> Result<ExprKind, Problem> {
        match scope {
            Scope::Keyword(field) => {
                if form == Form::Exact {
                    return Err((CompileErrorKind::BadTerm, format!(
                        "case-sensitive {{…}} applies to text fields; keyword field `{field}` already compares values ignoring case only"
                    )));
                }
                Ok(ExprKind::Keyword {
                    field: KeywordField::from_name(field),
                    value: text::keyword_key(raw).into(),
                    prefix: form == Form::Prefix,
                    wild: form == Form::Wild,
                })
            }
            Scope::Text(scope) => {
                let pats: Vec<Pat> = match form {
                    Form::Exact => text::exact_words(raw)
                        .into_iter()
                        .map(|(_, _, w)| Pat::Exact(w.into()))
                        .collect(),
                    Form::Wild => {
                        let p =
                            pattern::normalize(raw).map_err(|m| (CompileErrorKind::BadTerm, m))?;
                        vec![Pat::Wild(p.into())]
                    }
                    Form::Plain | Form::Prefix => {
                        let words = text::words(raw);
                        let n = words.len();
                        words
                            .into_iter()
                            .enumerate()
                            .map(|(i, w)| {
                                if form == Form::Prefix && i + 1 == n {
                                    Pat::Prefix(w.into())
                                } else {
                                    Pat::Word(w.into())
                                }
                            })
                            .collect()
                    }
                };
                if pats.is_empty() {
                    let what = if phrase { "phrase" } else { "term" };
                    return Err((
                        CompileErrorKind::NeverMatches,
                        format!("{what} {raw:?} has no letters or digits, so it can never match"),
                    ));
                }
                if let Some(Pat::Prefix(p)) = pats.last() {
                    if p.chars().count() < 2 {
                        return Err((CompileErrorKind::BadTerm, format!(
                            "prefix {raw:?}* normalizes to {p:?}: a prefix needs at least 2 characters"
                        )));
                    }
                }
                let pats = pats.into_iter().map(|p| self.dict.intern(p)).collect();
                Ok(ExprKind::Text { scope, pats })
            }
        }
    }

    /// `~word` or `~"phrase"`: a text term of [`Pat::Morph`] patterns.
    fn morph_term(
        &mut self,
        raw: &str,
        phrase: bool,
        scope: Scope<'_>,
    ) -> Result<ExprKind, Problem> {
        let scope = match scope {
            Scope::Text(scope) => scope,
            Scope::Keyword(field) => {
                return Err((
                    CompileErrorKind::BadTerm,
                    format!(
                        "'~' (every inflected form) applies to text fields; keyword field \
                         `{field}` compares whole values"
                    ),
                ))
            }
        };
        let mut forms = Vec::new();
        text::for_each_word(raw, |_, seg| {
            let form = morph::morph_form(seg);
            if !form.is_empty() {
                forms.push(form);
            }
        });
        let pats: Vec<PatId> = forms
            .into_iter()
            .map(|w| self.dict.intern(Pat::Morph(w.into())))
            .collect();
        if pats.is_empty() {
            let what = if phrase { "phrase" } else { "term" };
            return Err((
                CompileErrorKind::NeverMatches,
                format!("{what} ~{raw:?} has no letters or digits, so it can never match"),
            ));
        }
        Ok(ExprKind::Text {
            scope,
            pats: pats.into(),
        })
    }

    /// A list entry: a word or phrase, `word*` for a prefix, `{…}` for a
    /// case-sensitive word or phrase, `~word` or `~"phrase"` for every
    /// inflected form.
    /// A list entry: a word or phrase, `word*` for a prefix, a wildcard
    /// pattern, `{…}` for a case-sensitive word or phrase.
    fn list_entry(&mut self, raw: &str, scope: Scope<'_>) -> Result<ExprKind, Problem> {
        let t = raw.trim();
        if let Some(rest) = t.strip_prefix('~') {
            if rest.starts_with('{') || rest.contains(['*', '?']) {
                return Err((
                    CompileErrorKind::BadTerm,
                    format!("{t:?}: '~' does not combine with '*', '?' or {{…}}"),
                ));
            }
            let phrase = rest.starts_with('"');
            return self.morph_term(rest.trim_matches('"'), phrase, scope);
        }
        if let Some(inner) = t.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            let inner = inner.trim_matches('"');
            return self.term(inner, Form::Exact, true, scope);
        }
        let one_word = !t.contains(char::is_whitespace) && !t.starts_with('"');
        let stem = t.strip_suffix('*').unwrap_or(t);
        if one_word && stem.contains(['*', '?']) {
            if pattern::literals(t) < MIN_WILD_LITERALS {
                return Err((
                    CompileErrorKind::BadTerm,
                    format!(
                        "{t:?}: a wildcard pattern with a leading or inner '*' or a '?' needs \
                         at least {MIN_WILD_LITERALS} characters besides '*' and '?'"
                    ),
                ));
            }
            return self.term(t, Form::Wild, false, scope);
        }
        match t.strip_suffix('*') {
            Some(stem) if !stem.contains(char::is_whitespace) => {
                if stem.chars().count() < 2 {
                    return Err((
                        CompileErrorKind::BadTerm,
                        format!("{t:?}: a prefix needs at least 2 characters before '*'"),
                    ));
                }
                self.term(stem, Form::Prefix, false, scope)
            }
            _ => self.term(t.trim_matches('"'), Form::Plain, true, scope),
        }
    }
}

/// How a term's text is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    /// `word*`
    Prefix,
    /// A pattern with a leading or inner `*`, or a `?`.
    Wild,
    /// `{…}`
    Exact,
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
        ExprKind::And(_)
        | ExprKind::Not(_)
        | ExprKind::Keyword { .. }
        | ExprKind::Compare { .. }
        | ExprKind::Exists(_) => 0,
    }
}

/// Whether the expression needs some positive evidence to be true (false
/// for `NOT x`, `a OR NOT b`, which match nearly every event).
pub fn positive(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Text { .. }
        | ExprKind::Keyword { .. }
        | ExprKind::Near { .. }
        | ExprKind::Compare { .. }
        | ExprKind::Exists(_) => true,
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

    fn check_err(q: &str, kind: CompileErrorKind, msg: &str) {
        match compile(
            q,
            &[("l", &["a", "b c"]), ("short", &["x*"]), ("empty", &[])],
            &[
                ("m", "x OR y"),
                ("c1", "$c2"),
                ("c2", "$c1"),
                ("and", "a AND b"),
            ],
        ) {
            Ok(e) => panic!("{q:?} compiled: {e:?}"),
            Err(errs) => assert!(
                errs.iter()
                    .any(|e| e.kind == kind && e.message.contains(msg)),
                "{q:?}: {errs:?} lacks {kind:?} {msg:?}"
            ),
        }
    }

    #[test]
    fn semantic_errors() {
        use CompileErrorKind::*;
        let table = [
            ("NOT a", MatchesEverything, "match almost every event"),
            ("a OR NOT b", MatchesEverything, "match almost every event"),
            ("@nope", Undefined, "undefined list @nope"),
            ("$nope", Undefined, "undefined macro $nope"),
            ("$c1", MacroCycle, "macro cycle: $c1 -> $c2 -> $c1"),
            (
                "(a AND b) NEAR/3 c",
                NearOperand,
                "AND is not allowed inside a NEAR",
            ),
            (
                "$and NEAR/3 c",
                NearOperand,
                "AND is not allowed inside a NEAR",
            ),
            (
                "(NOT a) NEAR/3 c",
                NearOperand,
                "NOT is not allowed inside a NEAR",
            ),
            ("source:x NEAR/3 c", NearOperand, "no word positions"),
            ("source:(x NEAR/3 c)", NearOperand, "NEAR needs text"),
            ("title:a NEAR/3 body:b", NeverMatches, "can never match"),
            ("\"—\"", NeverMatches, "no letters or digits"),
            ("@empty", NeverMatches, "list @empty is empty"),
            ("{lavrov} source:{x}", BadTerm, "case-sensitive"),
            (
                "@short",
                BadTerm,
                "in list @short: \"x*\": a prefix needs at least 2",
            ),
            (
                "url:https:x",
                FieldInKeyword,
                "takes a value, not the field",
            ),
            ("*a-b*", BadTerm, "is not one word"),
            ("U.S?", BadTerm, "normalizes to \"us?\""),
            ("title:>3", BadTerm, "needs a keyword field"),
            ("a NEAR/s x:>3", NearOperand, "cannot be a NEAR operand"),
            (
                "a NEAR/s _exists_:x",
                NearOperand,
                "cannot be a NEAR operand",
            ),
            ("source:(_exists_:x)", FieldInKeyword, "not `_exists_:`"),
            ("title:a NEAR/s body:b", NeverMatches, "can never match"),
        ];
        for (q, kind, msg) in table {
            check_err(q, kind, msg);
        }
    }

    #[test]
    fn deep_macro_nesting_is_refused() {
        // Each macro nests a little; together they pass the limit only
        // once expanded.
        let n = MAX_DEPTH * 4 + 2;
        let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let bodies: Vec<String> = (0..n)
            .map(|i| match names.get(i + 1) {
                Some(next) => format!("a OR ${next}"),
                None => "a".to_owned(),
            })
            .collect();
        let macros: Vec<(&str, &str)> = names
            .iter()
            .zip(&bodies)
            .map(|(n, b)| (n.as_str(), b.as_str()))
            .collect();
        let errs = compile("$m0", &[], &macros).unwrap_err();
        assert!(
            errs.iter().all(|e| e.kind == CompileErrorKind::TooDeep),
            "{errs:?}"
        );
    }

    #[test]
    fn expansion_size_is_bounded() {
        // (query, macros, list length, expected error span in the query)
        #[track_caller]
        fn check(q: &str, macros: &[(&str, &str)], list: usize, expected: Option<(u32, u32)>) {
            let entries: Vec<String> = (0..list).map(|i| format!("w{i}")).collect();
            let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
            match (compile(q, &[("l", &entries)], macros), expected) {
                (Ok(_), None) => {}
                (Err(errs), Some((start, end))) => {
                    assert_eq!(errs.len(), 1, "{q}: {errs:?}");
                    let e = &errs[0];
                    assert_eq!(e.kind, CompileErrorKind::TooLarge, "{q}: {e:?}");
                    assert_eq!((e.src, e.span), (SrcId(0), Span { start, end }), "{q}");
                }
                (got, want) => panic!("{q}: got {got:?}, expected an error at {want:?}"),
            }
        }
        // 30 doubling macros: 2^30 words, refused at the reference
        let names: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
        let bodies: Vec<String> = (0..30)
            .map(|i| match i {
                0 => "x x".to_owned(),
                _ => format!("${} ${}", names[i - 1], names[i - 1]),
            })
            .collect();
        let doubling: Vec<(&str, &str)> = names
            .iter()
            .zip(&bodies)
            .map(|(n, b)| (n.as_str(), b.as_str()))
            .collect();
        check("$m29", &doubling, 1, Some((0, 4)));
        check("a OR $m29", &doubling, 1, Some((5, 9)));
        // 2^14 words: well inside
        check("$m13", &doubling, 1, None);
        check("$m13 AND $m13", &doubling, 1, None);
        // a list counts its entries
        check("@l", &doubling, MAX_EXPANDED_NODES - 10, None);
        check("@l OR @l", &doubling, MAX_EXPANDED_NODES - 10, Some((0, 8)));
    }

    #[test]
    fn total_expansion_is_bounded() {
        // Each `@l` is 50,001 nodes: within one query's limit, but 20 of
        // them pass the total and the 21st is refused without expanding.
        let entries: Vec<ListEntry> = (0..50_000)
            .map(|i| ListEntry {
                raw: format!("w{i}"),
                src: SrcId(1),
            })
            .collect();
        let lists = HashMap::from([("l".to_owned(), entries)]);
        let macros = HashMap::new();
        let mut c = Compiler::new(&lists, &macros);
        let ast = parse("@l").unwrap();
        let mut ok = 0;
        let err = loop {
            match c.query(&ast, SrcId(0)) {
                Ok(_) => ok += 1,
                Err(errs) => break errs,
            }
            assert!(ok <= 100, "no limit");
        };
        assert_eq!(ok, MAX_TOTAL_EXPANDED_NODES / 50_001 + 1);
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].kind, CompileErrorKind::TooLarge);
        assert!(err[0].message.contains("in total"), "{err:?}");
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
            "*stan wom?n",
            "a NEAR/s b ONEAR/s c",
            "meta.x:[1 TO 2] _exists_:meta.y",
            "meta.x:>1",
            "source:*.co.kr",
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
