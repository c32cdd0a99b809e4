//! `newswatch explain`: show why one rule did or did not match one event.
//!
//! Every clause of the query (and of the filter) is printed as a tree with
//! `[x]` when it is true and `[ ]` when not, followed by the spans it found.
//! Long lists print only their matching entries, so the output stays
//! readable for lists of hundreds of names.

use std::fmt::Write as _;

use newswatch_core::event::Event;
use newswatch_core::matcher::{field_name, Explained, MorphNote, TextSpan, TITLE};
use newswatch_core::Engine;

/// Lists longer than this show only their matching entries.
const LIST_SHOW_ALL: usize = 12;

/// Render the explanation; returns (text, matched).
pub fn explain(engine: &Engine, rule: usize, ev: &Event) -> (String, bool) {
    let rs = &engine.rules;
    let r = &rs.rules[rule];
    let (q, f) = rs.matcher.explain(rule, ev);
    let matched = q.matched && f.as_ref().is_none_or(|f| f.matched);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rule {} ({}:{}): {}",
        r.id,
        r.file.display(),
        r.line,
        if matched { "MATCHED" } else { "NOT MATCHED" }
    );
    let _ = writeln!(out, "event {}", ev.id_text());
    let _ = writeln!(out, "query: {}", r.query);
    node(engine, ev, &q, 1, &mut out);
    if let (Some(f), Some(text)) = (&f, &r.filter) {
        let _ = writeln!(out, "filter: {text}");
        node(engine, ev, f, 1, &mut out);
    }
    (out, matched)
}

fn node(engine: &Engine, ev: &Event, e: &Explained, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let mark = if e.matched { "[x]" } else { "[ ]" };
    let label = engine.rules.source_text(e.src, e.span);
    let _ = write!(out, "{indent}{mark} {:<7} {label}", e.kind);
    if !e.spans.is_empty() && e.kind != "NOT" {
        let shown: Vec<String> = e.spans.iter().take(8).map(|s| span_text(ev, s)).collect();
        let _ = write!(out, "  => {}", shown.join(", "));
        if e.spans.len() > 8 {
            let _ = write!(out, ", … ({} spans)", e.spans.len());
        }
    }
    out.push('\n');
    if let Some(m) = &e.morph {
        morph_line(m, &indent, out);
    }
    if !e.sentences.is_empty() {
        let shown: Vec<String> = e
            .sentences
            .iter()
            .take(4)
            .map(|s| span_text(ev, s))
            .collect();
        let _ = writeln!(out, "{indent}        in sentences: {}", shown.join(", "));
    }
    // A list reference holds one OR of its entries: show the entries directly.
    let children: &[Explained] = match (e.kind, e.children.as_slice()) {
        ("ref", [only])
            if only.kind == "OR" && engine.rules.source_text(only.src, only.span) == label =>
        {
            &only.children
        }
        _ => &e.children,
    };
    if children.len() > LIST_SHOW_ALL {
        let hidden = children.iter().filter(|c| !c.matched).count();
        for c in children.iter().filter(|c| c.matched) {
            node(engine, ev, c, depth + 1, out);
        }
        if hidden > 0 {
            let _ = writeln!(out, "{indent}  ({hidden} other entries did not match)");
        }
    } else {
        for c in children {
            node(engine, ev, c, depth + 1, out);
        }
    }
}

/// Under a `~` term: the language, each word's stems, the forms matched.
fn morph_line(m: &MorphNote, indent: &str, out: &mut String) {
    let stems: Vec<String> = m.stems.iter().map(|s| s.join("|")).collect();
    let lang = match m.lang {
        Some(l) => format!("{l} stems"),
        None => "no language, so the words themselves:".to_owned(),
    };
    let _ = write!(out, "{indent}      ~ {lang} {}", stems.join(" "));
    if !m.forms.is_empty() {
        let forms: Vec<String> = m.forms.iter().take(8).map(|f| format!("{f:?}")).collect();
        let _ = write!(out, "; forms matched: {}", forms.join(", "));
    }
    out.push('\n');
}

fn span_text(ev: &Event, s: &TextSpan) -> String {
    let text = if s.field == TITLE {
        ev.title.as_deref()
    } else {
        ev.body.as_deref()
    }
    .unwrap_or("");
    let t = text.get(s.start as usize..s.end as usize).unwrap_or("");
    format!("{}[{}..{}] {:?}", field_name(s.field), s.start, s.end, t)
}
