//! A YAML tree that remembers where every node is in its file.
//!
//! `newswatch check` must report `FILE:LINE:COL` for unknown keys, bad
//! values and even for a bad token inside a query string. serde-based YAML
//! loaders throw positions away, so rule and test files are read through
//! yaml-rust2's event parser into this small tree instead.
//!
//! Positions are 1-based lines and columns counted in characters, the way
//! editors show them.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    /// Index of the node's first character in the file, counted in chars.
    pub index: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        Pos {
            line: m.line(),
            // yaml-rust2 columns are 0-based.
            col: m.col() + 1,
            index: m.index(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Scalar(String, Style),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// A plain scalar that YAML's core schema reads as null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s, Style::Plain) if matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of node this is, for error messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(..) if self.is_null() => "null",
            Kind::Scalar(..) => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// Convert to JSON using YAML 1.2 core-schema typing for plain scalars.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Scalar(s, Style::Plain) => {
                if self.is_null() {
                    Value::Null
                } else if matches!(s.as_str(), "true" | "True" | "TRUE") {
                    Value::Bool(true)
                } else if matches!(s.as_str(), "false" | "False" | "FALSE") {
                    Value::Bool(false)
                } else if let Ok(i) = s.parse::<i64>() {
                    Value::from(i)
                } else if let Some(n) = s
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && s.chars().any(|c| c.is_ascii_digit()))
                    .and_then(serde_json::Number::from_f64)
                {
                    Value::Number(n)
                } else {
                    Value::String(s.clone())
                }
            }
            Kind::Scalar(s, _) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.as_scalar().unwrap_or("").to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parse one YAML document. An empty file gives `Ok(None)`.
pub fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder::default();
    let mut docs = 0;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| YamlError {
            pos: (*e.marker()).into(),
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        match ev {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                docs += 1;
                if docs > 1 {
                    return Err(YamlError {
                        pos: mark.into(),
                        message: "only one YAML document per file is allowed".into(),
                    });
                }
            }
            other => b.event(other, mark)?,
        }
    }
    Ok(b.root)
}

/// Nesting deeper than this is refused: the tree is dropped and walked
/// recursively, so depth must be bounded.
const MAX_DEPTH: usize = 128;
/// Aliases may not add more than this many bytes to the document (a
/// "billion laughs" file would otherwise exhaust memory): every alias costs
/// the [`expanded_bytes`] of the node it copies. 16 MiB of copies take
/// about that much memory and a few milliseconds, and leave room for files
/// that share blocks of labels or filters through anchors.
pub const MAX_ALIAS_BYTES: usize = 16 << 20;
/// What one node costs besides its text: about its size in memory.
const NODE_BYTES: usize = 64;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    /// Anchored nodes with their [`expanded_bytes`].
    anchors: HashMap<usize, (Node, usize)>,
    /// Bytes added by aliases so far, against [`MAX_ALIAS_BYTES`].
    alias_bytes: usize,
}

/// A node's size for [`MAX_ALIAS_BYTES`]: [`NODE_BYTES`] per node plus the
/// bytes of every scalar in it.
fn expanded_bytes(n: &Node) -> usize {
    NODE_BYTES
        + match &n.kind {
            Kind::Scalar(s, _) => s.len(),
            Kind::Seq(items) => items.iter().map(expanded_bytes).sum(),
            Kind::Map(pairs) => pairs
                .iter()
                .map(|(k, v)| expanded_bytes(k) + expanded_bytes(v))
                .sum(),
        }
}

/// An open collection; a mapping also holds the key waiting for its value.
struct Frame {
    node: Node,
    anchor: usize,
    pending_key: Option<Node>,
}

impl Builder {
    fn event(&mut self, ev: Event, mark: Marker) -> Result<(), YamlError> {
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let style = match style {
                    TScalarStyle::Plain => Style::Plain,
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    TScalarStyle::Literal => Style::Literal,
                    TScalarStyle::Folded => Style::Folded,
                };
                let node = Node {
                    kind: Kind::Scalar(value, style),
                    pos: mark.into(),
                };
                if anchor > 0 {
                    let size = expanded_bytes(&node);
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.push(node)
            }
            Event::SequenceStart(anchor, _) => self.open(Kind::Seq(Vec::new()), anchor, mark),
            Event::MappingStart(anchor, _) => self.open(Kind::Map(Vec::new()), anchor, mark),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(frame) => {
                    if frame.anchor > 0 {
                        let size = expanded_bytes(&frame.node);
                        self.anchors
                            .insert(frame.anchor, (frame.node.clone(), size));
                    }
                    self.push(frame.node)
                }
                None => Err(YamlError {
                    pos: mark.into(),
                    message: "unbalanced YAML collection".into(),
                }),
            },
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((n, size)) => {
                    // Counted before the copy is made, so a bomb is refused
                    // before it costs anything.
                    self.alias_bytes = self.alias_bytes.saturating_add(*size);
                    if self.alias_bytes > MAX_ALIAS_BYTES {
                        return Err(YamlError {
                            pos: mark.into(),
                            message: format!(
                                "YAML aliases expand to more than {} MiB",
                                MAX_ALIAS_BYTES >> 20
                            ),
                        });
                    }
                    let mut n = n.clone();
                    n.pos = mark.into();
                    self.push(n)
                }
                None => Err(YamlError {
                    pos: mark.into(),
                    message: "alias refers to an unknown anchor".into(),
                }),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => Ok(()),
        }
    }

    fn open(&mut self, kind: Kind, anchor: usize, mark: Marker) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                pos: mark.into(),
                message: format!("YAML nests deeper than {MAX_DEPTH} levels"),
            });
        }
        self.stack.push(Frame {
            node: Node {
                kind,
                pos: mark.into(),
            },
            anchor,
            pending_key: None,
        });
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut frame.node.kind {
            Kind::Seq(items) => items.push(node),
            Kind::Map(pairs) => match frame.pending_key.take() {
                Some(key) => pairs.push((key, node)),
                None if matches!(node.kind, Kind::Scalar(..)) => {
                    // yaml-rust2 marks a block mapping at its first `:`; the
                    // mapping starts at its first key.
                    if pairs.is_empty() && node.pos.index < frame.node.pos.index {
                        frame.node.pos = node.pos;
                    }
                    frame.pending_key = Some(node)
                }
                None => {
                    return Err(YamlError {
                        pos: node.pos,
                        message: "mapping keys must be scalars".into(),
                    })
                }
            },
            Kind::Scalar(..) => unreachable!("scalars are never open frames"),
        }
        Ok(())
    }
}

/// Map a byte offset inside a scalar's value to its position in the file.
///
/// The scalar's value differs from its source text by quotes, escapes,
/// folding and indentation. We walk the source from the scalar's start and
/// align it with the value character by character; whitespace in the value
/// aligns with any run of whitespace in the source. For plain and quoted
/// one-line scalars (the usual way to write a query) this is exact.
pub fn value_offset_to_pos(file_text: &str, node: &Node, value_byte_offset: usize) -> Pos {
    let Kind::Scalar(value, style) = &node.kind else {
        return node.pos;
    };
    // Skip to the scalar's first char; Marker indices count chars.
    let mut src = file_text.chars().skip(node.pos.index).peekable();
    let mut line = node.pos.line;
    let mut col = node.pos.col;
    let dq = *style == Style::DoubleQuoted;
    // Skip an opening quote.
    match style {
        Style::SingleQuoted | Style::DoubleQuoted => {
            if let Some(c) = src.next() {
                advance(c, &mut line, &mut col);
            }
        }
        // Block scalars are marked at their first content character.
        Style::Literal | Style::Folded | Style::Plain => {}
    }
    let target = value_byte_offset.min(value.len());
    for (i, vc) in value.char_indices() {
        if i >= target {
            break;
        }
        if dq {
            // Escapes (`\xNN`, `\u…`, `\n`, …) stand for one value char;
            // an escaped line break stands for none.
            skip_escaped_breaks(&mut src, &mut line, &mut col);
            if let Some(n) = dq_escape_len(&src) {
                for c in src.by_ref().take(n) {
                    advance(c, &mut line, &mut col);
                }
                continue;
            }
        }
        // Skip source chars until one aligns with `vc` (bounded, so a
        // translated escape cannot run away with the position).
        let mut skipped = 0;
        while let Some(&sc) = src.peek() {
            let aligns = sc == vc || (vc.is_whitespace() && sc.is_whitespace());
            if aligns || skipped >= 8 {
                break;
            }
            if sc.is_whitespace() || sc == '\\' || sc == '\'' || sc == '"' {
                advance(sc, &mut line, &mut col);
                src.next();
                skipped += 1;
            } else {
                break;
            }
        }
        if let Some(sc) = src.next() {
            advance(sc, &mut line, &mut col);
            if vc.is_whitespace() {
                // Consume the rest of a whitespace run (folded lines, indentation).
                while let Some(&n) = src.peek() {
                    if n.is_whitespace()
                        && value[i + vc.len_utf8()..]
                            .chars()
                            .next()
                            .is_some_and(|x| !x.is_whitespace())
                    {
                        advance(n, &mut line, &mut col);
                        src.next();
                    } else {
                        break;
                    }
                }
            }
        }
    }
    // Skip whitespace and line breaks before the target char itself (but
    // not past the end of the value: an error there points just after it).
    if target == value.len() {
        return Pos {
            line,
            col,
            index: 0,
        };
    }
    if dq {
        skip_escaped_breaks(&mut src, &mut line, &mut col);
    }
    while let Some(&sc) = src.peek() {
        if sc == '\n'
            || (sc.is_whitespace()
                && value[target..]
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_whitespace()))
        {
            advance(sc, &mut line, &mut col);
            src.next();
        } else {
            break;
        }
    }
    Pos {
        line,
        col,
        index: 0,
    }
}

fn advance(c: char, line: &mut usize, col: &mut usize) {
    if c == '\n' {
        *line += 1;
        *col = 1;
    } else {
        *col += 1;
    }
}

/// At a `\` in a double-quoted scalar: the number of source chars of the
/// escape, which stands for one value char. `None` when not at an escape or
/// at an escaped line break.
fn dq_escape_len<I: Iterator<Item = char> + Clone>(src: &std::iter::Peekable<I>) -> Option<usize> {
    let mut it = src.clone();
    if it.next()? != '\\' {
        return None;
    }
    Some(match it.next()? {
        '\n' | '\r' => return None,
        'x' => 4,
        'u' => 6,
        'U' => 10,
        _ => 2,
    })
}

/// Skip escaped line breaks (`\` at the end of a line, plus the next line's
/// indentation) in a double-quoted scalar: they stand for no value char.
fn skip_escaped_breaks<I: Iterator<Item = char> + Clone>(
    src: &mut std::iter::Peekable<I>,
    line: &mut usize,
    col: &mut usize,
) {
    loop {
        let mut it = src.clone();
        if it.next() != Some('\\') || !matches!(it.next(), Some('\n' | '\r')) {
            return;
        }
        // The backslash, the line break, then indentation.
        for c in src.by_ref() {
            advance(c, line, col);
            if c == '\n' {
                break;
            }
        }
        while let Some(&c) = src.peek() {
            if c != ' ' && c != '\t' {
                break;
            }
            advance(c, line, col);
            src.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_get<'a>(n: &'a Node, key: &str) -> &'a Node {
        let Kind::Map(pairs) = &n.kind else {
            panic!("not a map")
        };
        &pairs
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .unwrap()
            .1
    }

    #[test]
    fn positions_of_scalars() {
        let text = "a: 1\nquery: 'foo NEAR/0 bar'\nplain: foo bar\ndq: \"x y\"\n";
        let root = parse(text).unwrap().unwrap();
        let q = map_get(&root, "query");
        assert_eq!((q.pos.line, q.pos.col), (2, 8));
        // "NEAR/0" is at byte 4 of the value; in the file it is line 2, col 13.
        let p = value_offset_to_pos(text, q, 4);
        assert_eq!((p.line, p.col), (2, 13));
        let plain = map_get(&root, "plain");
        let p = value_offset_to_pos(text, plain, 4);
        assert_eq!((p.line, p.col), (3, 12));
        let dq = map_get(&root, "dq");
        let p = value_offset_to_pos(text, dq, 2);
        assert_eq!((p.line, p.col), (4, 8));
    }

    #[test]
    fn positions_with_non_ascii_before() {
        let text = "x: Лавров\nq: 'ab cd'\n";
        let root = parse(text).unwrap().unwrap();
        let q = map_get(&root, "q");
        let p = value_offset_to_pos(text, q, 3);
        assert_eq!((p.line, p.col), (2, 8));
    }

    #[test]
    fn folded_block_positions() {
        let text = "q: >\n  foo OR\n  bar NEAR/0 baz\n";
        let root = parse(text).unwrap().unwrap();
        let q = map_get(&root, "q");
        let v = q.as_scalar().unwrap();
        let off = v.find("NEAR").unwrap();
        let p = value_offset_to_pos(text, q, off);
        assert_eq!((p.line, p.col), (3, 7));
    }

    #[test]
    fn escapes_and_ends_of_values() {
        let text =
            "q: \"caf\\u00e9 \\x41 NEAR/0\"\nr: \"a\\\n  \\ NEAR/0 b\"\np: foo\n  OR\nz: 1\n";
        let root = parse(text).unwrap().unwrap();
        let q = map_get(&root, "q");
        let v = q.as_scalar().unwrap();
        let p = value_offset_to_pos(text, q, v.find("NEAR").unwrap());
        assert_eq!((p.line, p.col), (1, 20));
        let r = map_get(&root, "r");
        let v = r.as_scalar().unwrap();
        assert_eq!(v, "a NEAR/0 b");
        let p = value_offset_to_pos(text, r, 2);
        assert_eq!((p.line, p.col), (3, 5));
        // the end of a value is just after its last char, not on the next line
        let pl = map_get(&root, "p");
        let p = value_offset_to_pos(text, pl, pl.as_scalar().unwrap().len());
        assert_eq!((p.line, p.col), (5, 5));
    }

    #[test]
    fn block_mappings_start_at_their_first_key() {
        let root = parse("rules:\n  - id: a\n    title: b\n").unwrap().unwrap();
        assert_eq!((root.pos.line, root.pos.col), (1, 1));
        let Kind::Seq(items) = &map_get(&root, "rules").kind else {
            panic!("not a list")
        };
        assert_eq!((items[0].pos.line, items[0].pos.col), (2, 5));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
    }

    #[test]
    fn hostile_documents_are_refused() {
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert!(parse(&deep).is_err());
        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        assert!(parse(&laughs)
            .unwrap_err()
            .message
            .contains("aliases expand"));
        // Few nodes but long text: 111,111 nodes of 1 KB each (111 MB).
        let mut long = format!("a0: &a0 '{}'\n", "x".repeat(1_000));
        for i in 1..6 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            long.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = parse(&long).unwrap_err();
        assert_eq!(e.message, "YAML aliases expand to more than 16 MiB");
        assert_eq!(e.pos.line, 6, "{e:?}");
        // Sharing a block of labels through an anchor stays allowed.
        let mut shared = String::from("base: &l {desk: asia, topic: diplomacy}\nrules:\n");
        for i in 0..10_000 {
            shared.push_str(&format!("  - {{id: r{i}, labels: *l}}\n"));
        }
        assert!(parse(&shared).is_ok());
    }

    #[test]
    fn aliases_and_json() {
        let root = parse("a: &x {k: [1, true, ~, 'q', 2.5]}\nb: *x\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            root.to_json(),
            serde_json::json!({"a": {"k": [1, true, null, "q", 2.5]}, "b": {"k": [1, true, null, "q", 2.5]}})
        );
    }
}
