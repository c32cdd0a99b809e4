//! Rule files (SPEC §4): loading, validation, compilation into a [`RuleSet`].
//!
//! All files share one namespace of rule ids, list names and macro names.
//! Loading never stops at the first problem: every error is collected as a
//! [`Diagnostic`] with `FILE:LINE:COL`, and for a query error the position of
//! the bad token inside the file. Either every file is valid and a complete
//! rule set comes out, or nothing does; a caller that holds an older rule set
//! keeps it (hot reload relies on this).

pub mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::lang::compile::{CompileErrorKind, Compiler, ListEntry, MacroDef, SrcId};
use crate::lang::query::{self, Span};
use crate::matcher::{CompiledRule, Matcher};
use yaml::{Kind, Node, Pos};

/// One problem in a rule file, printed as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// The errors of a failed load, sorted by file and position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<Diagnostic>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// How a rule turns matches into alerts (SPEC §6).
#[derive(Debug, Clone, PartialEq)]
pub enum AlertMode {
    Each,
    FirstSeen {
        window: Duration,
        similarity: Option<f64>,
    },
    Threshold {
        count: u64,
        window: Duration,
        distinct: Option<String>,
    },
}

impl AlertMode {
    pub fn name(&self) -> &'static str {
        match self {
            AlertMode::Each => "each",
            AlertMode::FirstSeen { .. } => "first_seen",
            AlertMode::Threshold { .. } => "threshold",
        }
    }
}

/// A validated rule. Its index in [`RuleSet::rules`] is its index in the matcher.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
    pub topic: Option<String>,
    pub group_by: Vec<String>,
    pub throttle: Option<Duration>,
    pub mode: AlertMode,
    pub query: String,
    pub filter: Option<String>,
    pub query_src: SrcId,
    pub filter_src: Option<SrcId>,
    pub file: PathBuf,
    pub line: usize,
}

/// Where a query source string came from.
#[derive(Debug, Clone)]
struct Source {
    file: usize,
    node: Node,
}

struct LoadedFile {
    path: PathBuf,
    text: String,
}

/// Every enabled rule, compiled, plus what is needed to explain it.
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub matcher: Matcher,
    /// Rules present but `enabled: false`.
    pub disabled: usize,
    /// Short content hash of the loaded files: the `ruleset_info` version.
    pub version: String,
    pub loaded_at: DateTime<Utc>,
    pub files: Vec<PathBuf>,
    files_text: Vec<LoadedFile>,
    sources: Vec<Source>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("version", &self.version)
            .finish()
    }
}

impl RuleSet {
    pub fn rule_index(&self, id: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }

    /// The source text a span points into.
    pub fn source_text(&self, src: SrcId, span: Span) -> &str {
        match self
            .sources
            .get(src.0 as usize)
            .and_then(|s| s.node.as_scalar())
        {
            Some(text) => text
                .get(span.start as usize..span.end as usize)
                .unwrap_or(text),
            None => "",
        }
    }

    /// `FILE:LINE:COL` of a span.
    pub fn locate(&self, src: SrcId, span: Span) -> String {
        match self.sources.get(src.0 as usize) {
            Some(s) => {
                let f = &self.files_text[s.file];
                let p = yaml::value_offset_to_pos(&f.text, &s.node, span.start as usize);
                format!("{}:{}:{}", f.path.display(), p.line, p.col)
            }
            None => "?".into(),
        }
    }
}

/// Expand files and directories (recursively, `*.yaml`/`*.yml`, sorted).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            if let Err(e) = walk_dir(p, &mut found) {
                errs.push(file_diag(p, format!("cannot read directory: {e}")));
            }
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            errs.push(file_diag(p, "no such file or directory".into()));
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

fn file_diag(p: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: p.to_path_buf(),
        line: 1,
        col: 1,
        message,
    }
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
                Err(_) => errs.push(file_diag(&f, "file is not valid UTF-8".into())),
            },
            Err(e) => errs.push(file_diag(&f, format!("cannot read: {e}"))),
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

#[derive(Default)]
struct Loader {
    files: Vec<LoadedFile>,
    sources: Vec<Source>,
    diags: Vec<Diagnostic>,
}

struct RawRule<'a> {
    file: usize,
    node: &'a Node,
    id: String,
    query: Option<&'a Node>,
    filter: Option<&'a Node>,
    rule: Option<Rule>,
}

impl Loader {
    fn diag(&mut self, file: usize, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.files[file].path.clone(),
            line: pos.line.max(1),
            col: pos.col.max(1),
            message: message.into(),
        });
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

    /// The pairs of a mapping; reports unknown and duplicate keys.
    fn fields<'n>(
        &mut self,
        file: usize,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Vec<(&'n str, &'n Node)> {
        let Kind::Map(pairs) = &node.kind else {
            self.diag(
                file,
                node.pos,
                format!("{what} must be a mapping, got {}", node.describe()),
            );
            return Vec::new();
        };
        let mut out: Vec<(&str, &Node)> = Vec::new();
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
            if out.iter().any(|(o, _)| *o == key) {
                self.diag(file, k.pos, format!("duplicate key `{key}` in {what}"));
                continue;
            }
            out.push((key, v));
        }
        out
    }

    fn string(&mut self, file: usize, node: &Node, what: &str) -> Option<String> {
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

    fn duration(&mut self, file: usize, node: &Node, what: &str) -> Option<Duration> {
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
        let mut hasher = Sha256::new();
        for (path, text) in inputs {
            hasher.update(path.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
            self.files.push(LoadedFile { path, text });
        }
        let version = hex::encode(&hasher.finalize()[..6]);

        // Parse every file.
        let mut roots = Vec::new();
        for i in 0..self.files.len() {
            match yaml::parse(&self.files[i].text) {
                Ok(Some(root)) => roots.push((i, root)),
                Ok(None) => {}
                Err(e) => self.diag(i, e.pos, e.message),
            }
        }

        // Lists, macros and rules of every file, in one namespace.
        let mut lists: HashMap<String, Vec<ListEntry>> = HashMap::new();
        let mut list_pos: HashMap<String, String> = HashMap::new();
        let mut macro_nodes: Vec<(usize, String, &Node)> = Vec::new();
        let mut rule_nodes: Vec<(usize, &Node)> = Vec::new();
        for (file, root) in &roots {
            let file = *file;
            for (key, value) in
                self.fields(file, root, "a rule file", &["lists", "macros", "rules"])
            {
                match key {
                    "lists" => {
                        let Kind::Map(pairs) = &value.kind else {
                            if !value.is_null() {
                                self.diag(
                                    file,
                                    value.pos,
                                    "`lists` must be a mapping of list names to lists of terms",
                                );
                            }
                            continue;
                        };
                        for (k, v) in pairs {
                            let name = k.as_scalar().unwrap_or("").to_owned();
                            if !query::is_valid_name(&name) {
                                self.diag(
                                    file,
                                    k.pos,
                                    format!(
                                        "bad list name {name:?}: use letters, digits, '_' and '-'"
                                    ),
                                );
                                continue;
                            }
                            let here = format!(
                                "{}:{}:{}",
                                self.files[file].path.display(),
                                k.pos.line,
                                k.pos.col
                            );
                            if let Some(first) = list_pos.get(&name) {
                                self.diag(
                                    file,
                                    k.pos,
                                    format!(
                                        "duplicate list name `{name}` (first defined at {first})"
                                    ),
                                );
                                continue;
                            }
                            list_pos.insert(name.clone(), here);
                            let Kind::Seq(items) = &v.kind else {
                                self.diag(
                                    file,
                                    v.pos,
                                    format!(
                                        "list `{name}` must be a list of terms, got {}",
                                        v.describe()
                                    ),
                                );
                                continue;
                            };
                            let mut entries = Vec::new();
                            for item in items {
                                match item.as_scalar() {
                                    Some(s) if !s.trim().is_empty() && !item.is_null() => {
                                        let src = self.add_source(file, item);
                                        entries.push(ListEntry { raw: s.to_owned(), src });
                                    }
                                    _ if matches!(item.kind, Kind::Map(_)) => self.diag(
                                        file,
                                        item.pos,
                                        format!("an entry of list `{name}` is a YAML mapping: quote case-sensitive entries, e.g. \"{{US}}\""),
                                    ),
                                    _ => self.diag(file, item.pos, format!("entries of list `{name}` must be non-empty terms or phrases")),
                                }
                            }
                            lists.insert(name, entries);
                        }
                    }
                    "macros" => {
                        let Kind::Map(pairs) = &value.kind else {
                            if !value.is_null() {
                                self.diag(
                                    file,
                                    value.pos,
                                    "`macros` must be a mapping of macro names to query fragments",
                                );
                            }
                            continue;
                        };
                        for (k, v) in pairs {
                            let name = k.as_scalar().unwrap_or("").to_owned();
                            if !query::is_valid_name(&name) {
                                self.diag(
                                    file,
                                    k.pos,
                                    format!(
                                        "bad macro name {name:?}: use letters, digits, '_' and '-'"
                                    ),
                                );
                                continue;
                            }
                            macro_nodes.push((file, name, v));
                        }
                    }
                    "rules" => match &value.kind {
                        Kind::Seq(items) => rule_nodes.extend(items.iter().map(|n| (file, n))),
                        _ if value.is_null() => {}
                        _ => self.diag(
                            file,
                            value.pos,
                            format!("`rules` must be a list of rules, got {}", value.describe()),
                        ),
                    },
                    _ => unreachable!("fields() filters keys"),
                }
            }
        }

        let mut macros: HashMap<String, MacroDef> = HashMap::new();
        let mut macro_pos: HashMap<String, String> = HashMap::new();
        for (file, name, node) in macro_nodes {
            let here = format!(
                "{}:{}:{}",
                self.files[file].path.display(),
                node.pos.line,
                node.pos.col
            );
            if let Some(first) = macro_pos.get(&name) {
                self.diag(
                    file,
                    node.pos,
                    format!("duplicate macro name `{name}` (first defined at {first})"),
                );
                continue;
            }
            macro_pos.insert(name.clone(), here);
            let Some(text) = self.string(file, node, &format!("macro `{name}`")) else {
                continue;
            };
            let src = self.add_source(file, node);
            let ast = match query::parse(&text) {
                Ok(a) => Some(a),
                Err(e) => {
                    self.diag_at_span(src, e.span, format!("in macro `{name}`: {}", e.message));
                    None
                }
            };
            macros.insert(name, MacroDef { ast, src });
        }

        // Rules.
        let mut raw_rules = Vec::new();
        for (file, node) in rule_nodes {
            if let Some(r) = self.rule(file, node) {
                raw_rules.push(r);
            }
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        for r in &raw_rules {
            if r.id.is_empty() {
                continue;
            }
            let here = format!(
                "{}:{}:{}",
                self.files[r.file].path.display(),
                r.node.pos.line,
                r.node.pos.col
            );
            if let Some(first) = seen.get(&r.id) {
                let msg = format!("duplicate rule id `{}` (first defined at {first})", r.id);
                self.diag(r.file, r.node.pos, msg);
            } else {
                seen.insert(r.id.clone(), here);
            }
        }

        // Every macro is also checked on its own, so that undefined
        // references and macro cycles are reported even when no rule uses it
        // (SPEC §4). Only those errors: whether a term is valid can depend on
        // the field scope a macro is used in (`source:$wires`), so the rest
        // is checked where it is used. A throwaway compiler keeps the
        // patterns out of the matcher's dictionary; errors also found
        // through a rule are deduplicated below.
        {
            let mut checker = Compiler::new(&lists, &macros);
            let mut names: Vec<(&String, SrcId)> = macros.iter().map(|(n, d)| (n, d.src)).collect();
            names.sort_by(|a, b| a.0.cmp(b.0));
            for (name, src) in names {
                let ast = query::Ast::Macro(name.clone(), Span::default());
                if let Err(errs) = checker.filter(&ast, src) {
                    for e in errs {
                        if matches!(
                            e.kind,
                            CompileErrorKind::Undefined | CompileErrorKind::MacroCycle
                        ) {
                            self.diag_at_span(e.src, e.span, e.message);
                        }
                    }
                }
            }
        }

        // Compile queries and filters.
        let mut compiler = Compiler::new(&lists, &macros);
        let mut compiled = Vec::new();
        let mut rules = Vec::new();
        let mut disabled = 0;
        for r in raw_rules {
            // Queries are checked even when other keys of the rule are bad,
            // so that `check` reports every error in one go.
            let Some(qnode) = r.query else { continue };
            let query_text = qnode.as_scalar().unwrap_or("").to_owned();
            let filter_text = r.filter.and_then(|n| n.as_scalar()).map(str::to_owned);
            let enabled = Self::enabled(r.node);
            let query_src = self.add_source(r.file, qnode);
            let q = match query::parse(&query_text) {
                Ok(ast) => match compiler.query(&ast, query_src) {
                    Ok(e) => Some(e),
                    Err(errs) => {
                        for e in errs {
                            self.diag_at_span(e.src, e.span, e.message);
                        }
                        None
                    }
                },
                Err(e) => {
                    self.diag_at_span(query_src, e.span, e.message);
                    None
                }
            };
            let mut f = None;
            let mut filter_ok = true;
            let mut filter_src = None;
            if let (Some(fnode), Some(ftext)) = (r.filter, filter_text) {
                let fsrc = self.add_source(r.file, fnode);
                filter_src = Some(fsrc);
                match query::parse(&ftext) {
                    Ok(ast) => match compiler.filter(&ast, fsrc) {
                        Ok(e) => f = Some(e),
                        Err(errs) => {
                            filter_ok = false;
                            for e in errs {
                                self.diag_at_span(
                                    e.src,
                                    e.span,
                                    format!("in filter: {}", e.message),
                                );
                            }
                        }
                    },
                    Err(e) => {
                        filter_ok = false;
                        self.diag_at_span(fsrc, e.span, format!("in filter: {}", e.message));
                    }
                }
            }
            let (Some(q), true, Some(mut rule)) = (q, filter_ok, r.rule) else {
                continue;
            };
            rule.query_src = query_src;
            rule.filter_src = filter_src;
            if !enabled {
                disabled += 1;
                continue;
            }
            compiled.push(CompiledRule {
                query: q,
                filter: f,
            });
            rules.push(rule);
        }
        let dict = compiler.dict;

        if !self.diags.is_empty() {
            let mut d = self.diags;
            d.sort();
            d.dedup();
            return Err(LoadErrors(d));
        }
        let matcher = Matcher::new(dict, compiled);
        Ok(RuleSet {
            files: self.files.iter().map(|f| f.path.clone()).collect(),
            rules,
            matcher,
            disabled,
            version,
            loaded_at: Utc::now(),
            files_text: self.files,
            sources: self.sources,
        })
    }

    /// `enabled: false` (validated in [`Loader::rule`]) turns a rule off.
    fn enabled(node: &Node) -> bool {
        let Kind::Map(pairs) = &node.kind else {
            return true;
        };
        !pairs
            .iter()
            .any(|(k, v)| k.as_scalar() == Some("enabled") && v.as_scalar() == Some("false"))
    }

    /// Validate one rule's keys and values (queries are compiled later).
    fn rule<'n>(&mut self, file: usize, node: &'n Node) -> Option<RawRule<'n>> {
        const KEYS: &[&str] = &[
            "id",
            "title",
            "description",
            "severity",
            "query",
            "filter",
            "labels",
            "topic",
            "enabled",
            "group_by",
            "throttle",
            "alert",
        ];
        if !matches!(node.kind, Kind::Map(_)) {
            self.diag(
                file,
                node.pos,
                format!("a rule must be a mapping, got {}", node.describe()),
            );
            return None;
        }
        let fields = self.fields(file, node, "rule", KEYS);
        let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let errors_before = self.diags.len();

        let mut id = String::new();
        match get("id") {
            None => self.diag(file, node.pos, "rule is missing required key `id`"),
            Some(n) => {
                if let Some(s) = self.string(file, n, "`id`") {
                    if is_valid_rule_id(&s) {
                        id = s;
                    } else {
                        self.diag(
                            file,
                            n.pos,
                            format!("bad rule id {s:?}: it must match [a-z0-9][a-z0-9._-]*"),
                        );
                    }
                }
            }
        }
        let name = if id.is_empty() {
            "rule".to_owned()
        } else {
            format!("rule `{id}`")
        };
        let title = match get("title") {
            None => {
                self.diag(
                    file,
                    node.pos,
                    format!("{name} is missing required key `title`"),
                );
                None
            }
            Some(n) => self.string(file, n, "`title`").filter(|t| {
                let ok = !t.trim().is_empty();
                if !ok {
                    self.diag(file, n.pos, "`title` must not be empty");
                }
                ok
            }),
        };
        let description = get("description").and_then(|n| self.string(file, n, "`description`"));
        let severity = match get("severity") {
            None => Severity::Medium,
            Some(n) => match n.as_scalar().and_then(Severity::parse) {
                Some(s) => s,
                None => {
                    self.diag(
                        file,
                        n.pos,
                        format!(
                            "bad severity {}: expected one of info, low, medium, high, critical",
                            match n.as_scalar() {
                                Some(s) => format!("{s:?}"),
                                None => n.describe().to_owned(),
                            }
                        ),
                    );
                    Severity::Medium
                }
            },
        };
        let query_node = match get("query") {
            None => {
                self.diag(
                    file,
                    node.pos,
                    format!("{name} is missing required key `query`"),
                );
                None
            }
            Some(n) => self.string(file, n, "`query`").map(|_| n),
        };
        let filter_node = get("filter").and_then(|n| self.string(file, n, "`filter`").map(|_| n));
        let mut labels = BTreeMap::new();
        if let Some(n) = get("labels") {
            match &n.kind {
                Kind::Map(pairs) => {
                    for (k, v) in pairs {
                        let key = k.as_scalar().unwrap_or("").to_owned();
                        if key.is_empty() {
                            self.diag(file, k.pos, "label names must not be empty");
                        } else if let std::collections::btree_map::Entry::Vacant(slot) =
                            labels.entry(key.clone())
                        {
                            if let Some(val) = self.string(file, v, &format!("label `{key}`")) {
                                slot.insert(val);
                            }
                        } else {
                            self.diag(file, k.pos, format!("duplicate label `{key}`"));
                        }
                    }
                }
                _ if n.is_null() => {}
                _ => self.diag(
                    file,
                    n.pos,
                    format!("`labels` must be a mapping, got {}", n.describe()),
                ),
            }
        }
        let topic = get("topic").and_then(|n| {
            let t = self.string(file, n, "`topic`")?;
            if !is_valid_topic(&t) {
                self.diag(file, n.pos, format!("bad topic name {t:?}: Kafka topics use letters, digits, '.', '_' and '-' (at most 249)"));
                return None;
            }
            Some(t)
        });
        if let Some(n) = get("enabled") {
            if !matches!(n.as_scalar(), Some("true" | "false"))
                || !matches!(n.kind, Kind::Scalar(_, yaml::Style::Plain))
            {
                self.diag(file, n.pos, "`enabled` must be true or false");
            }
        }
        let mut group_by = Vec::new();
        if let Some(n) = get("group_by") {
            match &n.kind {
                Kind::Seq(items) => {
                    for it in items {
                        if let Some(s) = self.string(file, it, "a `group_by` field") {
                            if !is_field_name(&s) {
                                self.diag(file, it.pos, format!("bad `group_by` field {s:?}: expected a field name such as source, lang or a.b"));
                            } else if group_by.contains(&s) {
                                self.diag(file, it.pos, format!("`group_by` lists {s:?} twice"));
                            } else {
                                group_by.push(s);
                            }
                        }
                    }
                }
                Kind::Scalar(..) if !n.is_null() => {
                    group_by.push(n.as_scalar().unwrap_or("").to_owned())
                }
                _ => self.diag(file, n.pos, "`group_by` must be a list of field names"),
            }
        }
        let throttle = get("throttle").and_then(|n| self.duration(file, n, "`throttle`"));
        let mode = match get("alert") {
            None => AlertMode::Each,
            Some(n) => self.alert(file, n),
        };
        if self.diags.len() > errors_before {
            return Some(RawRule {
                file,
                node,
                id,
                query: query_node,
                filter: filter_node,
                rule: None,
            });
        }
        let line = node.pos.line;
        Some(RawRule {
            file,
            node,
            id: id.clone(),
            query: query_node,
            filter: filter_node,
            rule: Some(Rule {
                id,
                title: title.unwrap_or_default(),
                description,
                severity,
                labels,
                topic,
                group_by,
                throttle,
                mode,
                query: query_node
                    .and_then(|n| n.as_scalar())
                    .unwrap_or("")
                    .to_owned(),
                filter: filter_node.and_then(|n| n.as_scalar()).map(str::to_owned),
                query_src: SrcId::default(),
                filter_src: None,
                file: self.files[file].path.clone(),
                line,
            }),
        })
    }

    fn alert(&mut self, file: usize, node: &Node) -> AlertMode {
        let fields = self.fields(
            file,
            node,
            "`alert`",
            &["mode", "window", "similarity", "count", "distinct"],
        );
        let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let mode_node = get("mode");
        let mode = mode_node.and_then(|n| n.as_scalar()).unwrap_or("each");
        let allowed: &[&str] = match mode {
            "each" => &["mode"],
            "first_seen" => &["mode", "window", "similarity"],
            "threshold" => &["mode", "window", "count", "distinct"],
            other => {
                let pos = mode_node.map_or(node.pos, |n| n.pos);
                self.diag(
                    file,
                    pos,
                    format!("bad alert mode {other:?}: expected each, first_seen or threshold"),
                );
                return AlertMode::Each;
            }
        };
        for (k, v) in &fields {
            if !allowed.contains(k) {
                self.diag(
                    file,
                    v.pos,
                    format!("`{k}` does not apply to alert mode `{mode}`"),
                );
            }
        }
        let window = get("window").and_then(|n| self.duration(file, n, "`window`"));
        let result = match mode {
            "first_seen" => {
                let similarity = get("similarity").and_then(|n| {
                    match n.as_scalar().and_then(|s| s.parse::<f64>().ok()) {
                        Some(x) if (0.0..=1.0).contains(&x) => Some(x),
                        _ => {
                            self.diag(file, n.pos, "`similarity` must be a number from 0 to 1");
                            None
                        }
                    }
                });
                AlertMode::FirstSeen {
                    window: window.unwrap_or(Duration::from_secs(24 * 3600)),
                    similarity,
                }
            }
            "threshold" => {
                let count = match get("count") {
                    None => {
                        self.diag(file, node.pos, "alert mode `threshold` needs `count`");
                        1
                    }
                    Some(n) => match n.as_scalar().and_then(|s| s.parse::<u64>().ok()) {
                        Some(c) if c >= 1 => c,
                        _ => {
                            self.diag(file, n.pos, "`count` must be a whole number of at least 1");
                            1
                        }
                    },
                };
                if get("window").is_none() {
                    self.diag(file, node.pos, "alert mode `threshold` needs `window`");
                }
                let distinct = get("distinct").and_then(|n| {
                    let s = self.string(file, n, "`distinct`")?;
                    if is_field_name(&s) {
                        Some(s)
                    } else {
                        self.diag(
                            file,
                            n.pos,
                            format!(
                                "bad `distinct` field {s:?}: expected a field name such as source"
                            ),
                        );
                        None
                    }
                });
                AlertMode::Threshold {
                    count,
                    window: window.unwrap_or(Duration::from_secs(3600)),
                    distinct,
                }
            }
            _ => AlertMode::Each,
        };
        result
    }
}

/// A field name for `group_by` and `distinct`: a decoded field (`source`)
/// or a dotted path into the event JSON (`meta.desk`).
pub fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

pub fn is_valid_rule_id(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_lowercase() || x.is_ascii_digit())
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, '.' | '_' | '-'))
}

pub fn is_valid_topic(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 249
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests;
