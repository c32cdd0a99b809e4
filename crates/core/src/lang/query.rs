//! The query language's syntax (SPEC §5): lexer, parser and syntax tree.
//!
//! ```text
//! query   := or
//! or      := and ("OR" and)*
//! and     := unary (["AND"] unary)*            juxtaposition means AND
//! unary   := "NOT" unary | near
//! near    := primary (("NEAR/" N | "ONEAR/" N | "NEAR/s" | "ONEAR/s") primary)*
//! primary := "(" query ")" | FIELD ":" primary | FIELD ":" compare | "_exists_:" FIELD
//!          | term | phrase | "@" LIST | "$" MACRO
//! term    := WORD | PATTERN | "{" WORD "}" | "~" WORD   PATTERN: a word with * or ? in it
//! compare := (">" | ">=" | "<" | "<=") VALUE | "[" VALUE " TO " VALUE "]"
//! phrase  := '"' WORD+ '"' | "{" '"' WORD+ '"' "}" | "~" '"' WORD+ '"'
//! ```
//!
//! A pattern other than a trailing `word*` (a leading or inner `*`, or any
//! `?`) needs at least [`MIN_WILD_LITERALS`] other characters, a trailing
//! `word*` at least 2: shorter ones would match a large share of all words.
//! A comparison VALUE is a number or an RFC 3339 timestamp, checked here so
//! that a bad one is reported at its column.
//!
//! `~` (every inflected form, SPEC §5) is refused at its position when
//! combined with `*`, `?` or `{}`, and must stand right before its word or
//! phrase.
//!
//! The tree keeps words raw (as written). Whether a word is text (to be
//! normalized and segmented) or a keyword value (compared as written) is only
//! known once field scopes, lists and macros are resolved, which
//! [`crate::lang::compile`] does. Every node carries the byte span of its source
//! text so errors can point at the bad token.
//!
//! Pure: no IO, and no input makes it panic (see the property tests).

use std::fmt;

use crate::lang::compare;
pub use crate::lang::compare::{Cmp, CmpValue};

/// Byte range inside one query source string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for SyntaxError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ast {
    Or(Vec<Ast>, Span),
    And(Vec<Ast>, Span),
    Not(Box<Ast>, Span),
    Near {
        left: Box<Ast>,
        right: Box<Ast>,
        /// Words allowed between the operands; 0 with `sentence`.
        dist: u32,
        ordered: bool,
        /// `NEAR/s`, `ONEAR/s`: within one sentence instead of `dist` words.
        sentence: bool,
        span: Span,
    },
    Field {
        name: String,
        inner: Box<Ast>,
        span: Span,
    },
    /// A bare word, possibly with a trailing `*` (prefix), a wildcard
    /// pattern (`wild`: `raw` keeps its `*` and `?`), or in `{}` (exact).
    Word {
        raw: String,
        prefix: bool,
        wild: bool,
        exact: bool,
        span: Span,
    },
    /// `>0.5`, `[A TO B]`: the value of a `FIELD:` scope compared.
    Compare(Cmp, Span),
    /// `_exists_:path`.
    Exists(String, Span),
    /// A quoted phrase, possibly in `{}` (exact).
    Phrase {
        raw: String,
        exact: bool,
        span: Span,
    },
    List(String, Span),
    Macro(String, Span),
    /// `~word` or `~"phrase"`: every inflected form of its words.
    Morph {
        raw: String,
        phrase: bool,
        span: Span,
    },
}

impl Ast {
    fn with_span(mut self, new: Span) -> Ast {
        match &mut self {
            Ast::Or(_, s)
            | Ast::And(_, s)
            | Ast::Not(_, s)
            | Ast::List(_, s)
            | Ast::Macro(_, s)
            | Ast::Compare(_, s)
            | Ast::Exists(_, s) => *s = new,
            Ast::Near { span, .. }
            | Ast::Field { span, .. }
            | Ast::Word { span, .. }
            | Ast::Phrase { span, .. }
            | Ast::Morph { span, .. } => *span = new,
        }
        self
    }

    pub fn span(&self) -> Span {
        match self {
            Ast::Or(_, s)
            | Ast::And(_, s)
            | Ast::Not(_, s)
            | Ast::List(_, s)
            | Ast::Macro(_, s)
            | Ast::Compare(_, s)
            | Ast::Exists(_, s) => *s,
            Ast::Near { span, .. }
            | Ast::Field { span, .. }
            | Ast::Word { span, .. }
            | Ast::Phrase { span, .. }
            | Ast::Morph { span, .. } => *span,
        }
    }
}

pub const MAX_NEAR: u32 = 100;
/// The fewest characters other than `*` and `?` a wildcard pattern (a
/// leading or inner `*`, or any `?`) may have.
pub const MIN_WILD_LITERALS: usize = 3;
/// The field name of `_exists_:path`.
pub const EXISTS: &str = "_exists_";
/// Deeper nesting than this is refused, so a hostile query cannot overflow
/// the stack of the parser or of the matcher.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Near {
        dist: u32,
        ordered: bool,
        sentence: bool,
    },
    Field(String),
    Word {
        raw: String,
        prefix: bool,
        wild: bool,
    },
    Compare(Cmp),
    Exists(String),
    Phrase(String),
    Exact {
        raw: String,
        phrase: bool,
    },
    List(String),
    Macro(String),
    Morph {
        raw: String,
        phrase: bool,
    },
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '"' | '{' | '}')
}

/// A list, macro or field-path name.
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'))
        })
}

pub(crate) fn err<T>(
    start: usize,
    end: usize,
    message: impl Into<String>,
) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        span: Span::new(start, end),
        message: message.into(),
    })
}

fn lex(src: &str) -> Result<Vec<(Tok, Span)>, SyntaxError> {
    let mut out = Vec::new();
    let mut it = src.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' => {
                it.next();
                out.push((Tok::LParen, Span::new(i, i + 1)));
            }
            ')' => {
                it.next();
                out.push((Tok::RParen, Span::new(i, i + 1)));
            }
            '}' => return err(i, i + 1, "unexpected '}'"),
            '"' => {
                it.next();
                let (raw, end) = read_quoted(src, i, &mut it)?;
                out.push((Tok::Phrase(raw), Span::new(i, end)));
            }
            '{' => {
                it.next();
                let (tok, end) = read_exact(src, i, &mut it)?;
                out.push((tok, Span::new(i, end)));
            }
            _ => {
                let start = i;
                let mut end = i;
                while let Some(&(j, c)) = it.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    end = j + c.len_utf8();
                    it.next();
                }
                let end = range_end(src, start, end, &mut it)?;
                let w = &src[start..end];
                match (w.strip_suffix('~'), it.peek()) {
                    (Some(before), Some(&(q, '"' | '{')))
                        if before.is_empty() || before.ends_with(':') =>
                    {
                        if !before.is_empty() {
                            lex_word(before, start, &mut out)?;
                        }
                        let tilde = end - 1;
                        let (tok, end) = lex_morph_phrase(src, tilde, q, &mut it)?;
                        out.push((tok, Span::new(tilde, end)));
                    }
                    _ => lex_word(w, start, &mut out)?,
                }
            }
        }
    }
    Ok(out)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// A range `FIELD:[A TO B]` holds spaces: when the word read so far opens
/// one without closing it, read on to the `]`. Returns the word's end.
fn range_end(
    src: &str,
    start: usize,
    end: usize,
    it: &mut Chars<'_>,
) -> Result<usize, SyntaxError> {
    let w = &src[start..end];
    let Some(open) = w.find(":[") else {
        return Ok(end);
    };
    if !is_field_name(&w[..open]) || w[open..].contains(']') {
        return Ok(end);
    }
    for (j, c) in it.by_ref() {
        if c == ']' {
            return Ok(j + 1);
        }
    }
    let at = start + open + 1;
    err(at, src.len(), "unterminated range: missing ']'")
}

/// Read a `"…"` phrase whose opening quote at `open` was consumed.
fn read_quoted(src: &str, open: usize, it: &mut Chars<'_>) -> Result<(String, usize), SyntaxError> {
    for (j, c) in it.by_ref() {
        if c == '"' {
            let raw = &src[open + 1..j];
            if raw.trim().is_empty() {
                return err(open, j + 1, "empty phrase");
            }
            if let Some(star) = raw.find('*') {
                let at = open + 1 + star;
                return err(
                    at,
                    at + 1,
                    "'*' is not allowed inside a phrase: phrases match exact words",
                );
            }
            return Ok((raw.to_owned(), j + 1));
        }
    }
    err(open, src.len(), "unterminated phrase: missing closing '\"'")
}

/// Read `{word}` or `{"phrase"}` whose `{` at `open` was consumed.
fn read_exact(src: &str, open: usize, it: &mut Chars<'_>) -> Result<(Tok, usize), SyntaxError> {
    let (raw, phrase) = if matches!(it.peek(), Some(&(_, '"'))) {
        let (q, _) = it.next().expect("peeked");
        let (raw, _) = read_quoted(src, q, it)?;
        (raw, true)
    } else {
        let start = it.peek().map_or(src.len(), |&(j, _)| j);
        let mut end = start;
        while let Some(&(j, c)) = it.peek() {
            if !is_word_char(c) {
                break;
            }
            end = j + c.len_utf8();
            it.next();
        }
        if end == start {
            return err(
                open,
                end.max(open + 1),
                "'{' must be followed by a word or a \"phrase\"",
            );
        }
        let raw = &src[start..end];
        if raw.contains(['*', '?']) {
            return err(
                start,
                end,
                "a wildcard cannot be case-sensitive: remove '*' or the braces",
            );
        }
        (raw.to_owned(), false)
    };
    match it.next() {
        Some((j, '}')) => Ok((Tok::Exact { raw, phrase }, j + 1)),
        Some((j, c)) => err(
            j,
            j + c.len_utf8(),
            "expected '}' after a case-sensitive term",
        ),
        None => err(open, src.len(), "unterminated '{': missing '}'"),
    }
}

/// `~"phrase"` whose `~` is at `tilde` and whose `"` (or a refused `{`)
/// at `open` is next.
fn lex_morph_phrase(
    src: &str,
    tilde: usize,
    open: usize,
    it: &mut Chars<'_>,
) -> Result<(Tok, usize), SyntaxError> {
    if src[open..].starts_with('{') {
        return err(
            tilde,
            open + 1,
            "'~' does not combine with {…}: a case-sensitive term has one form; \
             remove '~' or the braces",
        );
    }
    it.next();
    let (raw, end) = read_quoted(src, open, it)?;
    if let Some(i) = raw.find('?') {
        let at = open + 1 + i;
        return err(at, at + 1, "'~' does not combine with '?'");
    }
    Ok((Tok::Morph { raw, phrase: true }, end))
}

/// `~word`: every inflected form of one word; no wildcard, list, macro
/// or field may follow the `~`.
fn lex_morph_word(w: &str, start: usize) -> Result<Tok, SyntaxError> {
    let end = start + w.len();
    let word = &w[1..];
    if word.is_empty() {
        return err(
            start,
            end,
            "'~' must be followed by a word or a \"phrase\", without a space",
        );
    }
    if let Some(i) = word.find(['*', '?']) {
        let at = start + 1 + i;
        return err(
            start,
            at + 1,
            "'~' does not combine with '*' or '?': a wildcard already matches many forms; \
             remove one of them",
        );
    }
    if word.starts_with(['@', '$', '~']) || word.contains(':') {
        return err(
            start,
            end,
            "'~' applies to a word or a \"phrase\" only, not to lists, macros or fields",
        );
    }
    Ok(Tok::Morph {
        raw: word.to_owned(),
        phrase: false,
    })
}

fn lex_word(w: &str, start: usize, out: &mut Vec<(Tok, Span)>) -> Result<(), SyntaxError> {
    let end = start + w.len();
    let span = Span::new(start, end);
    if w.starts_with('~') {
        return push(out, lex_morph_word(w, start)?, span);
    }
    match w {
        "AND" => return push(out, Tok::And, span),
        "OR" => return push(out, Tok::Or, span),
        "NOT" => return push(out, Tok::Not, span),
        "NEAR" | "ONEAR" => {
            return err(
                start,
                end,
                format!("{w} needs a distance, for example {w}/5"),
            );
        }
        _ => {}
    }
    for (op, ordered) in [("NEAR/", false), ("ONEAR/", true)] {
        if let Some(n) = w.strip_prefix(op) {
            if n == "s" {
                let near = Tok::Near {
                    dist: 0,
                    ordered,
                    sentence: true,
                };
                return push(out, near, span);
            }
            let dist: u32 = match n.parse() {
                Ok(d) => d,
                Err(_) => {
                    return err(
                        start,
                        end,
                        format!(
                            "{op}N needs a whole number N from 1 to {MAX_NEAR}, \
                             or {op}s for within one sentence"
                        ),
                    )
                }
            };
            if !(1..=MAX_NEAR).contains(&dist) {
                return err(
                    start,
                    end,
                    format!("NEAR distance must be from 1 to {MAX_NEAR}, got {dist}"),
                );
            }
            let near = Tok::Near {
                dist,
                ordered,
                sentence: false,
            };
            return push(out, near, span);
        }
    }
    if let Some(name) = w.strip_prefix('@') {
        if !is_valid_name(name) {
            return err(start, end, format!("bad list name {w:?}"));
        }
        return push(out, Tok::List(name.to_owned()), span);
    }
    if let Some(name) = w.strip_prefix('$') {
        if !is_valid_name(name) {
            return err(start, end, format!("bad macro name {w:?}"));
        }
        return push(out, Tok::Macro(name.to_owned()), span);
    }
    if let Some(colon) = w.find(':') {
        let name = &w[..colon];
        if is_field_name(name) {
            let rest = &w[colon + 1..];
            let rest_at = start + colon + 1;
            if name == EXISTS {
                if !is_field_name(rest) {
                    return err(
                        start,
                        end,
                        "_exists_: needs a field name or dotted path, as in _exists_:meta.sentiment",
                    );
                }
                return push(out, Tok::Exists(rest.to_owned()), span);
            }
            push(out, Tok::Field(name.to_owned()), Span::new(start, rest_at))?;
            if rest.starts_with(['>', '<', '[']) {
                let cmp = compare::parse(rest, rest_at)?;
                return push(out, Tok::Compare(cmp), Span::new(rest_at, end));
            }
            if !rest.is_empty() {
                lex_word(rest, rest_at, out)?;
            }
            return Ok(());
        }
    }
    let word = lex_term(w, start)?;
    push(out, word, span)
}

/// A word or pattern: `word`, `word*` (a prefix), or a wildcard pattern.
fn lex_term(w: &str, start: usize) -> Result<Tok, SyntaxError> {
    let end = start + w.len();
    let (stem, trailing) = match w.strip_suffix('*') {
        Some(stem) => (stem, true),
        None => (w, false),
    };
    if !stem.contains(['*', '?']) {
        if trailing && stem.chars().count() < 2 {
            return err(
                start,
                end,
                "a prefix needs at least 2 characters before '*'",
            );
        }
        return Ok(Tok::Word {
            raw: stem.to_owned(),
            prefix: trailing,
            wild: false,
        });
    }
    if crate::lang::pattern::literals(w) < MIN_WILD_LITERALS {
        return err(
            start,
            end,
            format!(
                "a wildcard pattern with a leading or inner '*' or a '?' needs at least \
                 {MIN_WILD_LITERALS} characters besides '*' and '?'"
            ),
        );
    }
    Ok(Tok::Word {
        raw: w.to_owned(),
        prefix: false,
        wild: true,
    })
}

fn push(out: &mut Vec<(Tok, Span)>, t: Tok, s: Span) -> Result<(), SyntaxError> {
    out.push((t, s));
    Ok(())
}

/// Parse a query. Returns the first syntax error, with its span.
pub fn parse(src: &str) -> Result<Ast, SyntaxError> {
    let toks = lex(src)?;
    if toks.is_empty() {
        return err(0, src.len(), "empty query");
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        src_len: src.len(),
    };
    let ast = p.or()?;
    if let Some((t, s)) = p.toks.get(p.pos) {
        let what = if *t == Tok::RParen {
            "unmatched ')'".to_owned()
        } else {
            format!("unexpected {}", describe(t))
        };
        return err(s.start as usize, s.end as usize, what);
    }
    Ok(ast)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::And => "AND".into(),
        Tok::Or => "OR".into(),
        Tok::Not => "NOT".into(),
        Tok::Near {
            dist,
            ordered,
            sentence,
        } => {
            let o = if *ordered { "O" } else { "" };
            if *sentence {
                format!("{o}NEAR/s")
            } else {
                format!("{o}NEAR/{dist}")
            }
        }
        Tok::Field(f) => format!("field '{f}:'"),
        Tok::Compare(_) => "a comparison".into(),
        Tok::Exists(f) => format!("{EXISTS}:{f}"),
        Tok::Word { raw, .. } => format!("word {raw:?}"),
        Tok::Phrase(p) => format!("phrase {p:?}"),
        Tok::Exact { raw, .. } => format!("{{{raw}}}"),
        Tok::List(n) => format!("@{n}"),
        Tok::Macro(n) => format!("${n}"),
        Tok::Morph { raw, phrase: false } => format!("~{raw}"),
        Tok::Morph { raw, phrase: true } => format!("~{raw:?}"),
    }
}

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    depth: usize,
    src_len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn span_here(&self) -> Span {
        self.toks
            .get(self.pos)
            .map(|(_, s)| *s)
            .unwrap_or(Span::new(self.src_len, self.src_len))
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let s = self.span_here();
            return err(
                s.start as usize,
                s.end as usize,
                format!("query nests deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Ast, SyntaxError> {
        self.enter()?;
        let first = self.and()?;
        let mut items = vec![first];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            items.push(self.and()?);
        }
        self.depth -= 1;
        Ok(fold(items, Ast::Or))
    }

    fn and(&mut self) -> Result<Ast, SyntaxError> {
        let mut items = vec![self.unary()?];
        loop {
            match self.peek() {
                None | Some(Tok::Or) | Some(Tok::RParen) => break,
                Some(Tok::And) => {
                    self.pos += 1;
                    items.push(self.unary()?);
                }
                Some(_) => items.push(self.unary()?),
            }
        }
        Ok(fold(items, Ast::And))
    }

    fn unary(&mut self) -> Result<Ast, SyntaxError> {
        if self.peek() == Some(&Tok::Not) {
            let start = self.span_here().start;
            self.pos += 1;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            let span = Span {
                start,
                end: inner.span().end,
            };
            return Ok(Ast::Not(Box::new(inner), span));
        }
        self.near()
    }

    fn near(&mut self) -> Result<Ast, SyntaxError> {
        let mut left = self.primary()?;
        let mut chain = 0;
        while let Some(&Tok::Near {
            dist,
            ordered,
            sentence,
        }) = self.peek()
        {
            chain += 1;
            if chain > MAX_DEPTH {
                let s = self.span_here();
                return err(
                    s.start as usize,
                    s.end as usize,
                    format!("more than {MAX_DEPTH} NEARs in a row"),
                );
            }
            self.pos += 1;
            let right = self.primary()?;
            let span = Span {
                start: left.span().start,
                end: right.span().end,
            };
            left = Ast::Near {
                left: Box::new(left),
                right: Box::new(right),
                dist,
                ordered,
                sentence,
                span,
            };
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Ast, SyntaxError> {
        let here = self.span_here();
        let Some((tok, span)) = self.toks.get(self.pos).cloned() else {
            return err(
                self.src_len,
                self.src_len,
                "query ends where a term was expected",
            );
        };
        self.pos += 1;
        match tok {
            Tok::LParen => {
                let inner = self.or()?;
                match self.toks.get(self.pos) {
                    Some((Tok::RParen, close)) => {
                        let close = *close;
                        self.pos += 1;
                        // The group's span includes its parentheses, so
                        // `explain` prints balanced clause text.
                        Ok(inner.with_span(Span {
                            start: span.start,
                            end: close.end,
                        }))
                    }
                    _ => err(
                        span.start as usize,
                        span.end as usize,
                        "unclosed '(': missing ')'",
                    ),
                }
            }
            Tok::Field(name) => {
                self.enter()?;
                let inner = self.primary()?;
                self.depth -= 1;
                let span = Span {
                    start: span.start,
                    end: inner.span().end,
                };
                Ok(Ast::Field {
                    name,
                    inner: Box::new(inner),
                    span,
                })
            }
            Tok::Word { raw, prefix, wild } => Ok(Ast::Word {
                raw,
                prefix,
                wild,
                exact: false,
                span,
            }),
            Tok::Compare(cmp) => Ok(Ast::Compare(cmp, span)),
            Tok::Exists(path) => Ok(Ast::Exists(path, span)),
            Tok::Phrase(raw) => Ok(Ast::Phrase {
                raw,
                exact: false,
                span,
            }),
            Tok::Exact { raw, phrase: false } => Ok(Ast::Word {
                raw,
                prefix: false,
                wild: false,
                exact: true,
                span,
            }),
            Tok::Exact { raw, phrase: true } => Ok(Ast::Phrase {
                raw,
                exact: true,
                span,
            }),
            Tok::List(n) => Ok(Ast::List(n, span)),
            Tok::Macro(n) => Ok(Ast::Macro(n, span)),
            Tok::Morph { raw, phrase } => Ok(Ast::Morph { raw, phrase, span }),
            Tok::RParen => err(
                here.start as usize,
                here.end as usize,
                "unexpected ')': a term was expected",
            ),
            t @ (Tok::And | Tok::Or | Tok::Near { .. }) => err(
                here.start as usize,
                here.end as usize,
                format!("{} needs a term before it", describe(&t)),
            ),
            Tok::Not => err(
                here.start as usize,
                here.end as usize,
                "NOT cannot be an operand of NEAR or a field scope here; use parentheses",
            ),
        }
    }
}

fn fold(mut items: Vec<Ast>, make: fn(Vec<Ast>, Span) -> Ast) -> Ast {
    if items.len() == 1 {
        return items.pop().expect("one item");
    }
    let span = Span {
        start: items.first().map_or(0, |a| a.span().start),
        end: items.last().map_or(0, |a| a.span().end),
    };
    make(items, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Render a tree compactly so expectations read like the grammar.
    fn show(a: &Ast) -> String {
        match a {
            Ast::Or(v, _) => format!("(OR {})", v.iter().map(show).collect::<Vec<_>>().join(" ")),
            Ast::And(v, _) => format!("(AND {})", v.iter().map(show).collect::<Vec<_>>().join(" ")),
            Ast::Not(x, _) => format!("(NOT {})", show(x)),
            Ast::Near {
                left,
                right,
                dist,
                ordered,
                sentence,
                ..
            } => format!(
                "({}NEAR/{} {} {})",
                if *ordered { "O" } else { "" },
                if *sentence {
                    "s".to_owned()
                } else {
                    dist.to_string()
                },
                show(left),
                show(right)
            ),
            Ast::Compare(c, _) => format!("{c:?}"),
            Ast::Exists(f, _) => format!("_exists_:{f}"),
            Ast::Field { name, inner, .. } => format!("{name}:{}", show(inner)),
            Ast::Word {
                raw,
                prefix,
                wild,
                exact,
                ..
            } => match (exact, prefix, wild) {
                (true, _, _) => format!("{{{raw}}}"),
                (_, true, _) => format!("{raw}*"),
                (_, _, true) => format!("pattern {raw}"),
                _ => raw.clone(),
            },
            Ast::Phrase { raw, exact, .. } => {
                if *exact {
                    format!("{{\"{raw}\"}}")
                } else {
                    format!("\"{raw}\"")
                }
            }
            Ast::List(n, _) => format!("@{n}"),
            Ast::Macro(n, _) => format!("${n}"),
            Ast::Morph { raw, phrase, .. } => {
                if *phrase {
                    format!("~\"{raw}\"")
                } else {
                    format!("~{raw}")
                }
            }
        }
    }

    fn check(input: &str, expected: &str) {
        match parse(input) {
            Ok(a) => assert_eq!(show(&a), expected, "query: {input:?}"),
            Err(e) => panic!("query {input:?} failed: {e:?}"),
        }
    }

    fn check_err(input: &str, expected_msg: &str, at: (u32, u32)) {
        match parse(input) {
            Ok(a) => panic!("query {input:?} parsed as {}", show(&a)),
            Err(e) => {
                assert!(
                    e.message.contains(expected_msg),
                    "query {input:?}: message {:?} lacks {expected_msg:?}",
                    e.message
                );
                assert_eq!(
                    (e.span.start, e.span.end),
                    at,
                    "query {input:?}: span of {:?}",
                    e.message
                );
            }
        }
    }

    #[test]
    fn precedence_table() {
        let table = [
            // juxtaposition means AND; AND binds tighter than OR
            ("a b", "(AND a b)"),
            ("a AND b OR c", "(OR (AND a b) c)"),
            ("a OR b c", "(OR a (AND b c))"),
            // NOT binds tighter than AND
            ("NOT a b", "(AND (NOT a) b)"),
            ("a NOT b", "(AND a (NOT b))"),
            ("NOT NOT a", "(NOT (NOT a))"),
            // NEAR binds tighter than NOT
            ("NOT a NEAR/3 b", "(NOT (NEAR/3 a b))"),
            ("a NEAR/3 b ONEAR/2 c", "(ONEAR/2 (NEAR/3 a b) c)"),
            ("a OR b NEAR/5 c", "(OR a (NEAR/5 b c))"),
            // field scope binds tightest
            ("title:a NEAR/2 b", "(NEAR/2 title:a b)"),
            ("title:(a OR b) c", "(AND title:(OR a b) c)"),
            ("lang:(en OR ru)", "lang:(OR en ru)"),
            ("source:yonhap.co.kr", "source:yonhap.co.kr"),
            ("meta.region:asia", "meta.region:asia"),
            ("source:\"Korea Herald\"", "source:\"Korea Herald\""),
            // lower-case operators are ordinary words
            ("war and peace", "(AND war and peace)"),
            ("near or not", "(AND near or not)"),
            // terms
            ("lavr*", "lavr*"),
            ("{US}", "{US}"),
            ("{\"White House\"}", "{\"White House\"}"),
            ("\"foreign ministry\"", "\"foreign ministry\""),
            ("@ru_mfa NEAR/12 $says", "(NEAR/12 @ru_mfa $says)"),
            ("U.S. three-way", "(AND U.S. three-way)"),
            ("Лавров OR МИД", "(OR Лавров МИД)"),
            ("미국* 훈련", "(AND 미국* 훈련)"),
            ("(((a)))", "a"),
            ("10:30", "10:30"),
            // every inflected form
            ("~Лавров", "~Лавров"),
            ("~\"foreign ministry\"", "~\"foreign ministry\""),
            ("title:~drill", "title:~drill"),
            ("title:~\"joint drill\"", "title:~\"joint drill\""),
            ("~라브로프 NEAR/5 ~경고", "(NEAR/5 ~라브로프 ~경고)"),
            ("NOT ~a b", "(AND (NOT ~a) b)"),
            ("a~b", "a~b"),
            // wildcard patterns (SPEC §5)
            ("*stan", "pattern *stan"),
            ("kim*un", "pattern kim*un"),
            ("wom?n", "pattern wom?n"),
            ("*stan*", "pattern *stan*"),
            ("ab*", "ab*"),
            ("a?c?e", "pattern a?c?e"),
            ("title:*stan", "title:pattern *stan"),
            // proximity within a sentence
            ("a NEAR/s b", "(NEAR/s a b)"),
            ("a ONEAR/s b NEAR/2 c", "(NEAR/2 (ONEAR/s a b) c)"),
            ("NOT a NEAR/s b", "(NOT (NEAR/s a b))"),
            // comparisons and _exists_
            ("meta.x:>0.5", "meta.x:Gt(Num(0.5))"),
            ("meta.x:>=-1", "meta.x:Ge(Num(-1.0))"),
            ("x:<3 y", "(AND x:Lt(Num(3.0)) y)"),
            ("x:<=1e3", "x:Le(Num(1000.0))"),
            ("x:[10 TO 20]", "x:Range(Num(10.0), Num(20.0))"),
            ("x:[10 TO 20] OR a", "(OR x:Range(Num(10.0), Num(20.0)) a)"),
            ("(x:[1 TO 1])", "x:Range(Num(1.0), Num(1.0))"),
            ("t:>=2026-07-01T00:00:00Z", "t:Ge(Time(1782864000, 0))"),
            (
                "t:[2026-07-01T00:00:00+02:00 TO 2026-07-01T00:00:00.5Z]",
                "t:Range(Time(1782856800, 0), Time(1782864000, 500000000))",
            ),
            (
                "_exists_:meta.sentiment a",
                "(AND _exists_:meta.sentiment a)",
            ),
            ("NOT _exists_:x", "(NOT _exists_:x)"),
        ];
        for (input, expected) in table {
            check(input, expected);
        }
    }

    #[test]
    fn error_table() {
        check_err("", "empty query", (0, 0));
        check_err("a NEAR/0 b", "from 1 to 100", (2, 8));
        check_err("a NEAR/101 b", "from 1 to 100", (2, 10));
        check_err("a NEAR/x b", "whole number", (2, 8));
        check_err("a NEAR b", "needs a distance", (2, 6));
        check_err("(a OR b", "unclosed '('", (0, 1));
        check_err("a OR b)", "unmatched ')'", (6, 7));
        check_err("a OR", "ends where a term", (4, 4));
        check_err("OR a", "needs a term before", (0, 2));
        check_err("\"abc", "unterminated phrase", (0, 4));
        check_err("\"  \"", "empty phrase", (0, 4));
        check_err(
            "\"foreign minist*\"",
            "not allowed inside a phrase",
            (15, 16),
        );
        check_err("a*b", "at least 3 characters besides", (0, 3));
        check_err("x *an", "at least 3 characters besides", (2, 5));
        check_err("x ab?", "at least 3 characters besides", (2, 5));
        check_err("x a?*b", "at least 3 characters besides", (2, 6));
        check_err("title:??ab", "at least 3 characters besides", (6, 10));
        check_err("l*", "at least 2 characters", (0, 2));
        check_err("{US", "missing '}'", (0, 3));
        check_err("{lav*}", "cannot be case-sensitive", (1, 5));
        check_err("{wom?n}", "cannot be case-sensitive", (1, 6));
        check_err("a NEAR/S b", "or NEAR/s for within one sentence", (2, 8));
        check_err("a ONEAR/ b", "or ONEAR/s", (2, 8));
        check_err("x:>", "bad comparison value \"\"", (3, 3));
        check_err("a x:>=abc", "bad comparison value \"abc\"", (6, 9));
        check_err("x:<2026-13-01T00:00:00Z", "RFC 3339", (3, 23));
        check_err("x:>inf", "bad comparison value", (3, 6));
        check_err("x:[1 TO 2", "unterminated range", (2, 9));
        check_err("x:[1 to 2]", "with TO in upper case", (5, 10));
        check_err("x:[1 TO]", "a range is written", (5, 8));
        check_err("x:[1 TO b]", "bad comparison value \"b\"", (8, 9));
        check_err("x:[5 TO 1]", "empty range: 5 is greater than 1", (2, 10));
        check_err("x:[1 TO 2026-07-01T00:00:00Z]", "not one of each", (2, 29));
        check_err("a _exists_:", "_exists_: needs a field name", (2, 11));
        check_err("_exists_:(a)", "_exists_: needs a field name", (0, 9));
        check_err("a }", "unexpected '}'", (2, 3));
        check_err("@", "bad list name", (0, 1));
        check_err("a NEAR/3 NOT b", "NOT cannot be an operand", (9, 12));
        check_err("title:", "ends where a term", (6, 6));
        check_err("~lavr*", "does not combine with '*'", (0, 6));
        check_err("a ~la*v", "does not combine with '*'", (2, 6));
        check_err("~wom?n", "does not combine with '*' or '?'", (0, 5));
        check_err("x ~{US}", "does not combine with {", (2, 4));
        check_err("title:~{US}", "does not combine with {", (6, 8));
        check_err(
            "~\"foreign minist*\"",
            "not allowed inside a phrase",
            (16, 17),
        );
        check_err("~\"wom?n rights\"", "does not combine with '?'", (5, 6));
        check_err("~ lavrov", "must be followed by a word", (0, 1));
        check_err("~@ru_mfa", "not to lists", (0, 8));
        check_err("~title:x", "not to lists", (0, 8));
    }

    #[test]
    fn depth_is_limited() {
        let deep = "(".repeat(200) + "a" + &")".repeat(200);
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
        let nots = "NOT ".repeat(200) + "a";
        assert!(parse(&nots).is_err());
    }
}
