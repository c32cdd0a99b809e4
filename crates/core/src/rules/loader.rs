//! Reading rule files into a [`RuleSet`], in phases: read and hash the
//! files, parse their YAML, split them into sections, collect lists, macros
//! and rules into one namespace, check macros on their own, compile every
//! rule's query and filter, assemble.
//!
//! Every phase runs even after errors, so that `check` reports all of them
//! in one go; the rule set is only assembled when there are none. The
//! per-key validation of a rule is in [`super::rule`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::diag::{Diagnostic, LoadErrors};
use super::ruleset::{LoadedFile, RuleSet, Source};
use super::yaml::{self, Kind, Node, Pos};
use super::Rule;
use crate::lang::compile::{CompileErrorKind, Compiler, Expr, ListEntry, MacroDef, SrcId};
use crate::lang::query::{self, Ast, Span};
use crate::matcher::{CompiledRule, Matcher};

/// Expand files and directories (recursively, `*.yaml`/`*.yml`, sorted).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            if let Err(e) = walk_dir(p, &mut found) {
                errs.push(Diagnostic::file(p, format!("cannot read directory: {e}")));
            }
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            errs.push(Diagnostic::file(p, "no such file or directory".into()));
        }
    }
    if errs.is_empty() {
        out.dedup();
        Ok(out)
    } else {
        Err(errs)
    }
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        // Hidden entries are skipped: editors' swap files, and Kubernetes
        // ConfigMap volumes, which hold `..data/` and `..<timestamp>/`
        // copies of every file next to the visible symlinks (every rule
        // would be loaded twice and refused as a duplicate).
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            walk_dir(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Load rule files and directories.
pub fn load_paths(paths: &[PathBuf]) -> Result<RuleSet, LoadErrors> {
    let files = expand_paths(paths).map_err(LoadErrors)?;
    let mut inputs = Vec::new();
    let mut errs = Vec::new();
    for f in files {
        match std::fs::read(&f) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => inputs.push((f, text)),
                Err(_) => errs.push(Diagnostic::file(&f, "file is not valid UTF-8".into())),
            },
            Err(e) => errs.push(Diagnostic::file(&f, format!("cannot read: {e}"))),
        }
    }
    // Files that could be read are still checked, so that every error is
    // reported in one go.
    match load_strs(inputs) {
        Ok(rs) if errs.is_empty() => Ok(rs),
        Ok(_) => Err(LoadErrors(errs)),
        Err(LoadErrors(more)) => {
            errs.extend(more);
            errs.sort();
            Err(LoadErrors(errs))
        }
    }
}

/// Load rules from in-memory files (`(path, text)`), e.g. for tests.
pub fn load_strs(inputs: Vec<(PathBuf, String)>) -> Result<RuleSet, LoadErrors> {
    Loader::default().load(inputs)
}

/// One load in progress: the files, the query sources found so far, and
/// every problem found so far.
#[derive(Default)]
pub(super) struct Loader {
    files: Vec<LoadedFile>,
    /// Every query string (queries, filters, macros, list entries); a
    /// [`SrcId`] indexes it.
    sources: Vec<Source>,
    diags: Vec<Diagnostic>,
}

/// The top-level sections of every file, in file order.
#[derive(Default)]
struct Sections<'n> {
    lists: Vec<(usize, &'n Node)>,
    macros: Vec<(usize, &'n Node)>,
    rules: Vec<(usize, &'n Node)>,
}

/// A rule whose keys were checked, before its query is compiled.
pub(super) struct RawRule<'n> {
    pub(super) file: usize,
    pub(super) node: &'n Node,
    /// Empty when missing or invalid (then not checked for duplicates).
    pub(super) id: String,
    /// `query` and `filter` when they are strings.
    pub(super) query: Option<&'n Node>,
    pub(super) filter: Option<&'n Node>,
    /// The rule, when every key was valid.
    pub(super) rule: Option<Rule>,
}

/// The rules that compiled, in file order.
#[derive(Default)]
struct Compiled {
    rules: Vec<Rule>,
    exprs: Vec<CompiledRule>,
    disabled: usize,
}

/// One mapping's keys, after unknown and duplicate ones were reported.
pub(super) struct Keys<'n> {
    pub(super) file: usize,
    pub(super) node: &'n Node,
    pub(super) fields: Vec<(&'n str, &'n Node)>,
}

impl<'n> Keys<'n> {
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// Names of one kind (rule ids, list names, macro names), shared by all
/// files, with where each was first defined.
struct Defined {
    /// What a name is, for the message: "rule id".
    what: &'static str,
    first: HashMap<String, String>,
}

impl Defined {
    fn new(what: &'static str) -> Self {
        Defined {
            what,
            first: HashMap::new(),
        }
    }
}

/// What a query string is in its rule: the two differ in their checks and
/// in how their errors are introduced.
#[derive(Debug, Clone, Copy)]
enum Part {
    Query,
    Filter,
}

impl Loader {
    pub(super) fn diag(&mut self, file: usize, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.files[file].path.clone(),
            line: pos.line.max(1),
            col: pos.col.max(1),
            message: message.into(),
        });
    }

    /// Errors so far; a phase compares it to tell whether it found any.
    pub(super) fn error_count(&self) -> usize {
        self.diags.len()
    }

    pub(super) fn path(&self, file: usize) -> &Path {
        &self.files[file].path
    }

    fn add_source(&mut self, file: usize, node: &Node) -> SrcId {
        self.sources.push(Source {
            file,
            node: node.clone(),
        });
        SrcId(self.sources.len() as u32 - 1)
    }

    fn diag_at_span(&mut self, src: SrcId, span: Span, message: impl Into<String>) {
        let s = &self.sources[src.0 as usize];
        let pos = yaml::value_offset_to_pos(&self.files[s.file].text, &s.node, span.start as usize);
        let file = s.file;
        self.diag(file, pos, message);
    }

    /// Define `name` at `pos`: `false`, with an error naming the first
    /// definition, when it is already defined.
    fn define(&mut self, defined: &mut Defined, name: &str, file: usize, pos: Pos) -> bool {
        if let Some(first) = defined.first.get(name) {
            let message = format!(
                "duplicate {} `{name}` (first defined at {first})",
                defined.what
            );
            self.diag(file, pos, message);
            return false;
        }
        let here = format!("{}:{}:{}", self.path(file).display(), pos.line, pos.col);
        defined.first.insert(name.to_owned(), here);
        true
    }

    /// The pairs of a mapping; reports unknown and duplicate keys.
    pub(super) fn keys<'n>(
        &mut self,
        file: usize,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Keys<'n> {
        let mut keys = Keys {
            file,
            node,
            fields: Vec::new(),
        };
        let Kind::Map(pairs) = &node.kind else {
            self.diag(
                file,
                node.pos,
                format!("{what} must be a mapping, got {}", node.describe()),
            );
            return keys;
        };
        for (k, v) in pairs {
            let key = k.as_scalar().unwrap_or("");
            if !allowed.contains(&key) {
                self.diag(
                    file,
                    k.pos,
                    format!(
                        "unknown key `{key}` in {what} (expected one of: {})",
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            if keys.get(key).is_some() {
                self.diag(file, k.pos, format!("duplicate key `{key}` in {what}"));
                continue;
            }
            keys.fields.push((key, v));
        }
        keys
    }

    pub(super) fn string(&mut self, file: usize, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Scalar(s, _) if !node.is_null() => Some(s.clone()),
            _ => {
                self.diag(
                    file,
                    node.pos,
                    format!("{what} must be a string, got {}", node.describe()),
                );
                None
            }
        }
    }

    pub(super) fn duration(&mut self, file: usize, node: &Node, what: &str) -> Option<Duration> {
        let s = self.string(file, node, what)?;
        match humantime::parse_duration(&s) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.diag(file, node.pos, format!("{what} must be longer than zero"));
                None
            }
            Err(e) => {
                self.diag(
                    file,
                    node.pos,
                    format!("bad duration {s:?} for {what} ({e}); write e.g. 30s, 15m, 24h"),
                );
                None
            }
        }
    }

    fn load(mut self, inputs: Vec<(PathBuf, String)>) -> Result<RuleSet, LoadErrors> {
        let version = self.read(inputs);
        let roots = self.parse();
        let sections = self.sections(&roots);
        // The order of the phases fixes the numbering of sources and
        // patterns: list entries, macros, then each rule's query and filter.
        let lists = self.lists(&sections.lists);
        let macros = self.macros(&sections.macros);
        let raw_rules = self.rules(&sections.rules);
        let oversized = self.check_macros(&lists, &macros);
        let mut compiler = Compiler::new(&lists, &macros);
        compiler.assume_oversized(oversized);
        let compiled = self.compile(&mut compiler, raw_rules);
        let dict = compiler.dict;
        if !self.diags.is_empty() {
            let mut d = self.diags;
            d.sort();
            d.dedup();
            return Err(LoadErrors(d));
        }
        Ok(RuleSet {
            files: self.files.iter().map(|f| f.path.clone()).collect(),
            rules: compiled.rules,
            matcher: Matcher::new(dict, compiled.exprs),
            disabled: compiled.disabled,
            version,
            loaded_at: Utc::now(),
            files_text: self.files,
            sources: self.sources,
        })
    }

    /// Keep the files; their version is a hash of names and texts.
    fn read(&mut self, inputs: Vec<(PathBuf, String)>) -> String {
        let mut hasher = Sha256::new();
        for (path, text) in inputs {
            hasher.update(path.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
            self.files.push(LoadedFile { path, text });
        }
        hex::encode(&hasher.finalize()[..6])
    }

    /// The YAML tree of every file that has one (empty files have none).
    fn parse(&mut self) -> Vec<(usize, Node)> {
        let mut roots = Vec::new();
        for i in 0..self.files.len() {
            match yaml::parse(&self.files[i].text) {
                Ok(Some(root)) => roots.push((i, root)),
                Ok(None) => {}
                Err(e) => self.diag(i, e.pos, e.message),
            }
        }
        roots
    }

    fn sections<'n>(&mut self, roots: &'n [(usize, Node)]) -> Sections<'n> {
        let mut sections = Sections::default();
        for (file, root) in roots {
            let file = *file;
            let keys = self.keys(file, root, "a rule file", &["lists", "macros", "rules"]);
            for (key, value) in keys.fields {
                match key {
                    "lists" => sections.lists.push((file, value)),
                    "macros" => sections.macros.push((file, value)),
                    _ => sections.rules.push((file, value)),
                }
            }
        }
        sections
    }

    /// Every `lists:` section, in one namespace.
    fn lists(&mut self, sections: &[(usize, &Node)]) -> HashMap<String, Vec<ListEntry>> {
        self.definitions(sections, &LISTS, |this, file, name, node| {
            this.list(file, name, node)
        })
    }

    /// Every section of one kind of named definitions (`lists:`,
    /// `macros:`), in one namespace: each section a mapping, each name
    /// valid and defined once; `value` turns a definition into what is
    /// kept (`None` when it reported an error).
    fn definitions<T>(
        &mut self,
        sections: &[(usize, &Node)],
        kind: &Definitions,
        mut value: impl FnMut(&mut Self, usize, &str, &Node) -> Option<T>,
    ) -> HashMap<String, T> {
        let mut out = HashMap::new();
        let mut defined = Defined::new(kind.name);
        for &(file, section) in sections {
            let Kind::Map(pairs) = &section.kind else {
                if !section.is_null() {
                    self.diag(file, section.pos, kind.not_a_mapping);
                }
                continue;
            };
            for (k, v) in pairs {
                let name = k.as_scalar().unwrap_or("").to_owned();
                if !query::is_valid_name(&name) {
                    let m = format!(
                        "bad {} {name:?}: use letters, digits, '_' and '-'",
                        kind.name
                    );
                    self.diag(file, k.pos, m);
                    continue;
                }
                let at = if kind.at_value { v.pos } else { k.pos };
                if !self.define(&mut defined, &name, file, at) {
                    continue;
                }
                if let Some(x) = value(self, file, &name, v) {
                    out.insert(name, x);
                }
            }
        }
        out
    }

    /// One list's entries, each its own source (for spans in `explain`).
    fn list(&mut self, file: usize, name: &str, node: &Node) -> Option<Vec<ListEntry>> {
        let Kind::Seq(items) = &node.kind else {
            self.diag(
                file,
                node.pos,
                format!(
                    "list `{name}` must be a list of terms, got {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut entries = Vec::new();
        for item in items {
            match item.as_scalar() {
                Some(s) if !s.trim().is_empty() && !item.is_null() => {
                    let src = self.add_source(file, item);
                    entries.push(ListEntry {
                        raw: s.to_owned(),
                        src,
                    });
                }
                _ if matches!(item.kind, Kind::Map(_)) => self.diag(
                    file,
                    item.pos,
                    format!("an entry of list `{name}` is a YAML mapping: quote case-sensitive entries, e.g. \"{{US}}\""),
                ),
                _ => self.diag(
                    file,
                    item.pos,
                    format!("entries of list `{name}` must be non-empty terms or phrases"),
                ),
            }
        }
        Some(entries)
    }

    /// Every `macros:` section, in one namespace, each macro parsed.
    fn macros(&mut self, sections: &[(usize, &Node)]) -> HashMap<String, MacroDef> {
        self.definitions(sections, &MACROS, |this, file, name, node| {
            let text = this.string(file, node, &format!("macro `{name}`"))?;
            let src = this.add_source(file, node);
            let ast = match query::parse(&text) {
                Ok(a) => Some(a),
                Err(e) => {
                    let message = format!("in macro `{name}`: {}", e.message);
                    this.diag_at_span(src, e.span, message);
                    None
                }
            };
            Some(MacroDef { ast, src })
        })
    }

    /// Every `rules:` section: each rule's keys checked, ids unique.
    fn rules<'n>(&mut self, sections: &[(usize, &'n Node)]) -> Vec<RawRule<'n>> {
        let mut raw = Vec::new();
        for &(file, section) in sections {
            match &section.kind {
                Kind::Seq(items) => raw.extend(items.iter().filter_map(|n| self.rule(file, n))),
                _ if section.is_null() => {}
                _ => self.diag(
                    file,
                    section.pos,
                    format!(
                        "`rules` must be a list of rules, got {}",
                        section.describe()
                    ),
                ),
            }
        }
        let mut defined = Defined::new("rule id");
        for r in &raw {
            if !r.id.is_empty() {
                self.define(&mut defined, &r.id, r.file, r.node.pos);
            }
        }
        raw
    }

    /// Check every macro on its own, so that undefined references, macro
    /// cycles and expansions over
    /// [`MAX_EXPANDED_NODES`](crate::lang::compile::MAX_EXPANDED_NODES)
    /// nodes are reported even
    /// when no rule uses it (SPEC §4).
    ///
    /// Only those errors: whether a term is valid can depend on the field
    /// scope a macro is used in (`source:$wires`), so the rest is checked
    /// where it is used. A throwaway compiler keeps the patterns out of the
    /// matcher's dictionary; errors also found through a rule are
    /// deduplicated at the end. Returns the macros found too large, so
    /// that the rules' compiler refuses their uses without expanding them.
    fn check_macros(
        &mut self,
        lists: &HashMap<String, Vec<ListEntry>>,
        macros: &HashMap<String, MacroDef>,
    ) -> HashSet<String> {
        let mut checker = Compiler::new(lists, macros);
        let mut names: Vec<(&String, SrcId)> = macros.iter().map(|(n, d)| (n, d.src)).collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, src) in names {
            let ast = Ast::Macro(name.clone(), Span::default());
            let Err(errs) = checker.filter(&ast, src) else {
                continue;
            };
            for e in errs {
                if matches!(
                    e.kind,
                    CompileErrorKind::Undefined
                        | CompileErrorKind::MacroCycle
                        | CompileErrorKind::TooLarge
                ) {
                    self.diag_at_span(e.src, e.span, e.message);
                }
            }
        }
        checker.oversized().clone()
    }

    /// Compile every rule's query and filter; the rules that are valid
    /// and enabled come out, in file order.
    fn compile(&mut self, compiler: &mut Compiler<'_>, raw_rules: Vec<RawRule<'_>>) -> Compiled {
        let mut out = Compiled::default();
        for r in raw_rules {
            // Queries are checked even when other keys of the rule are bad,
            // so that `check` reports every error in one go.
            let Some(query_node) = r.query else { continue };
            let (query_src, query) = self.compile_part(compiler, Part::Query, r.file, query_node);
            let filter = r
                .filter
                .map(|n| self.compile_part(compiler, Part::Filter, r.file, n));
            let filter_ok = filter.as_ref().is_none_or(|(_, f)| f.is_some());
            let (Some(query), true, Some(mut rule)) = (query, filter_ok, r.rule) else {
                continue;
            };
            rule.query_src = query_src;
            rule.filter_src = filter.as_ref().map(|(src, _)| *src);
            if !enabled(r.node) {
                out.disabled += 1;
                continue;
            }
            out.exprs.push(CompiledRule {
                query,
                filter: filter.and_then(|(_, f)| f),
            });
            out.rules.push(rule);
        }
        out
    }

    /// Parse and compile a rule's query or filter; errors are reported
    /// where they are in the file.
    fn compile_part(
        &mut self,
        compiler: &mut Compiler<'_>,
        part: Part,
        file: usize,
        node: &Node,
    ) -> (SrcId, Option<Expr>) {
        let src = self.add_source(file, node);
        let text = node.as_scalar().unwrap_or("");
        let prefix = match part {
            Part::Query => "",
            Part::Filter => "in filter: ",
        };
        let compiled = match query::parse(text) {
            Ok(ast) => match part {
                Part::Query => compiler.query(&ast, src),
                Part::Filter => compiler.filter(&ast, src),
            },
            Err(e) => {
                self.diag_at_span(src, e.span, format!("{prefix}{}", e.message));
                return (src, None);
            }
        };
        match compiled {
            Ok(e) => (src, Some(e)),
            Err(errs) => {
                for e in errs {
                    self.diag_at_span(e.src, e.span, format!("{prefix}{}", e.message));
                }
                (src, None)
            }
        }
    }
}

/// One kind of named definitions, for [`Loader::definitions`].
struct Definitions {
    /// "list name", "macro name": in messages and for duplicates.
    name: &'static str,
    not_a_mapping: &'static str,
    /// Whether a definition is located by its value (macros) or its name.
    at_value: bool,
}

const LISTS: Definitions = Definitions {
    name: "list name",
    not_a_mapping: "`lists` must be a mapping of list names to lists of terms",
    at_value: false,
};

const MACROS: Definitions = Definitions {
    name: "macro name",
    not_a_mapping: "`macros` must be a mapping of macro names to query fragments",
    // A macro is located by its value, not its name.
    at_value: true,
};

/// `enabled: false` (validated with the rule's other keys) turns a rule off.
fn enabled(node: &Node) -> bool {
    let Kind::Map(pairs) = &node.kind else {
        return true;
    };
    !pairs
        .iter()
        .any(|(k, v)| k.as_scalar() == Some("enabled") && v.as_scalar() == Some("false"))
}
