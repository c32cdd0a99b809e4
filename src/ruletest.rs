//! `newswatch test`: rule unit tests (SPEC §7).
//!
//! A test file names rule files (relative to itself, globs allowed) and a
//! list of tests; each test feeds events in order and expects exactly a set
//! of `(rule, event)` alerts and `(rule, period start, count)` digests
//! (every period still open is closed at the end of the events, as in
//! `replay`). Events go through the same decoder and engine as `replay` and
//! `run`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use newswatch_core::event::EventFields;
use newswatch_core::matcher::Scratch;
use newswatch_core::rules::yaml::{self, Kind, Node};
use newswatch_core::rules::{self, Diagnostic};
use newswatch_core::Engine;

/// The outcome of running test files.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    /// Human-readable lines: one per test, plus details for failures.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Expected {
    Alert {
        rule: String,
        event: String,
    },
    /// A digest: its period start (RFC 3339, as published) and count.
    Digest {
        rule: String,
        start: String,
        count: u64,
    },
}

impl Expected {
    /// `missing alert:    r on event e`, the texts lined up.
    fn line(&self, what: &str) -> String {
        let (kind, body) = match self {
            Expected::Alert { rule, event } => ("alert", format!("{rule} on event {event}")),
            Expected::Digest { rule, start, count } => (
                "digest",
                format!("{rule} for the period from {start}, count {count}"),
            ),
        };
        format!("{:<17} {body}", format!("{what} {kind}:"))
    }
}

struct TestCase {
    name: String,
    rules: Option<Vec<String>>,
    events: Vec<(usize, serde_json::Value)>,
    expect: Vec<Expected>,
}

fn diag(file: &Path, n: &Node, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line: n.pos.line.max(1),
        col: n.pos.col.max(1),
        message: message.into(),
    }
}

/// Expand test file arguments: files as given, directories recursively.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    rules::expand_paths(paths)
}

/// Run every test of every file.
pub fn run_files(files: &[PathBuf], fields: &EventFields) -> Report {
    let mut report = Report::default();
    for f in files {
        run_file(f, fields, &mut report);
    }
    report
}

fn run_file(path: &Path, fields: &EventFields, report: &mut Report) {
    let fail_file = |report: &mut Report, lines: Vec<String>| {
        report.failed += 1;
        report.lines.push(format!("FAIL {}", path.display()));
        report
            .lines
            .extend(lines.into_iter().map(|l| format!("    {l}")));
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return fail_file(
                report,
                vec![format!("{}: cannot read: {e}", path.display())],
            )
        }
    };
    let (rule_files, cases) = match parse_file(path, &text) {
        Ok(x) => x,
        Err(diags) => return fail_file(report, diags.iter().map(ToString::to_string).collect()),
    };
    let ruleset = match rules::load_paths(&rule_files) {
        Ok(r) => r,
        Err(e) => {
            let mut lines = vec!["the rule files do not load:".to_owned()];
            lines.extend(e.0.iter().map(ToString::to_string));
            return fail_file(report, lines);
        }
    };
    let engine = Engine::new(ruleset, fields.clone());
    for case in cases {
        let mut problems = Vec::new();
        if let Some(ids) = &case.rules {
            for id in ids {
                if engine.rules.rule_index(id).is_none() {
                    problems.push(format!("unknown rule `{id}` in `rules`"));
                }
            }
        }
        let mut got = Vec::new();
        let mut scratch = Scratch::new();
        let mut latest: Option<DateTime<Utc>> = None;
        // Each test starts from empty state.
        let mut store = newswatch_core::state::Store::default();
        for (line, ev) in &case.events {
            let bytes = ev.to_string();
            match engine.decode(bytes.as_bytes()) {
                Err(e) => problems.push(format!(
                    "event at line {line} is invalid ({}): {}",
                    e.reason, e.detail
                )),
                Ok(ev) => {
                    if let Some(t) = ev.published_at {
                        latest = Some(latest.map_or(t, |l| l.max(t)));
                    }
                    for a in engine.alerts_with(&ev, &mut scratch, latest, &mut store) {
                        got.push(Expected::Alert {
                            rule: a.rule.id,
                            event: ev.id_text(),
                        });
                    }
                    got.extend(digests(&mut store));
                }
            }
        }
        store.close_all(&mut Vec::new());
        got.extend(digests(&mut store));
        got.retain(|e| {
            let (Expected::Alert { rule, .. } | Expected::Digest { rule, .. }) = e;
            case.rules.as_ref().is_none_or(|ids| ids.contains(rule))
        });
        let (missing, unexpected) = diff(&case.expect, &got);
        for m in &missing {
            problems.push(m.line("missing"));
        }
        for u in &unexpected {
            problems.push(u.line("unexpected"));
        }
        let label = format!("{}: {}", path.display(), case.name);
        if problems.is_empty() {
            report.passed += 1;
            report.lines.push(format!("PASS {label}"));
        } else {
            report.failed += 1;
            report.lines.push(format!("FAIL {label}"));
            report
                .lines
                .extend(problems.into_iter().map(|p| format!("    {p}")));
        }
    }
}

/// The digests that closed, as expectations.
fn digests(store: &mut newswatch_core::state::Store) -> Vec<Expected> {
    store
        .take_digests()
        .into_iter()
        .map(|d| Expected::Digest {
            rule: d.rule.id,
            start: d.period.start,
            count: d.count,
        })
        .collect()
}

/// `digest: "2026-07-12T09:00:00Z"` as digests write it (any RFC 3339
/// spelling of the instant is accepted).
fn period_start(s: &str) -> Option<String> {
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    Some(newswatch_core::event::format_time(&t.with_timezone(&Utc)))
}

/// An entry of `expect`: `{rule, event}` or `{rule, digest, count}`.
fn expected(j: &serde_json::Value) -> Option<Expected> {
    let o = j.as_object()?;
    let rule = o.get("rule")?.as_str()?.to_owned();
    let text = |x: &serde_json::Value| match x {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match (o.get("event"), o.get("digest"), o.get("count"), o.len()) {
        (Some(e), None, None, 2) => Some(Expected::Alert {
            rule,
            event: text(e),
        }),
        (None, Some(d), Some(c), 3) => Some(Expected::Digest {
            rule,
            start: period_start(&text(d))?,
            count: text(c).parse().ok()?,
        }),
        _ => None,
    }
}

/// Multiset difference: (expected but not got, got but not expected).
fn diff(expect: &[Expected], got: &[Expected]) -> (Vec<Expected>, Vec<Expected>) {
    let mut counts: BTreeMap<&Expected, i64> = BTreeMap::new();
    for e in expect {
        *counts.entry(e).or_default() += 1;
    }
    for g in got {
        *counts.entry(g).or_default() -= 1;
    }
    let mut missing = Vec::new();
    let mut unexpected = Vec::new();
    for (k, n) in counts {
        for _ in 0..n.max(0) {
            missing.push(k.clone());
        }
        for _ in 0..(-n).max(0) {
            unexpected.push(k.clone());
        }
    }
    (missing, unexpected)
}

type Parsed = (Vec<PathBuf>, Vec<TestCase>);

fn parse_file(path: &Path, text: &str) -> Result<Parsed, Vec<Diagnostic>> {
    let root = match yaml::parse(text) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(vec![Diagnostic {
                file: path.to_path_buf(),
                line: 1,
                col: 1,
                message: "empty test file".into(),
            }])
        }
        Err(e) => {
            return Err(vec![Diagnostic {
                file: path.to_path_buf(),
                line: e.pos.line.max(1),
                col: e.pos.col.max(1),
                message: e.message,
            }])
        }
    };
    let mut errs = Vec::new();
    let mut rule_files = Vec::new();
    let mut cases = Vec::new();
    let Kind::Map(pairs) = &root.kind else {
        return Err(vec![diag(
            path,
            &root,
            "a test file must be a mapping with `rule_files` and `tests`",
        )]);
    };
    let mut have_rule_files = false;
    let mut have_tests = false;
    for (k, v) in pairs {
        match k.as_scalar().unwrap_or("") {
            "rule_files" => {
                have_rule_files = true;
                rule_files.extend(rule_file_paths(path, v, &mut errs));
            }
            "tests" => {
                have_tests = true;
                let Kind::Seq(items) = &v.kind else {
                    errs.push(diag(path, v, "`tests` must be a list"));
                    continue;
                };
                for t in items {
                    match parse_case(path, t) {
                        Ok(c) => cases.push(c),
                        Err(mut e) => errs.append(&mut e),
                    }
                }
            }
            other => errs.push(diag(
                path,
                k,
                format!("unknown key `{other}` in a test file (expected rule_files, tests)"),
            )),
        }
    }
    if !have_rule_files {
        errs.push(diag(path, &root, "test file is missing `rule_files`"));
    }
    if !have_tests {
        errs.push(diag(path, &root, "test file is missing `tests`"));
    }
    if errs.is_empty() {
        Ok((rule_files, cases))
    } else {
        Err(errs)
    }
}

/// The rule files a `rule_files` value names: paths relative to the test
/// file, or globs (their matches sorted). An entry that names no file is
/// an error.
fn rule_file_paths(path: &Path, v: &Node, errs: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let base = path.parent().unwrap_or(Path::new("."));
    let items: Vec<&Node> = match &v.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Scalar(..) => vec![v],
        Kind::Map(_) => {
            errs.push(diag(path, v, "`rule_files` must be a list of paths"));
            return Vec::new();
        }
    };
    let mut rule_files = Vec::new();
    for it in items {
        let Some(pat) = it.as_scalar() else {
            errs.push(diag(path, it, "`rule_files` entries must be paths"));
            continue;
        };
        let full = base.join(pat);
        let full_s = full.to_string_lossy().into_owned();
        if pat.contains(['*', '?', '[']) {
            match glob::glob(&full_s) {
                Ok(paths) => {
                    let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                    if found.is_empty() {
                        errs.push(diag(path, it, format!("`{pat}` matches no file")));
                    }
                    found.sort();
                    rule_files.extend(found);
                }
                Err(e) => errs.push(diag(path, it, format!("bad glob `{pat}`: {e}"))),
            }
        } else if full.exists() {
            rule_files.push(full);
        } else {
            errs.push(diag(
                path,
                it,
                format!("rule file `{pat}` not found (relative to this file)"),
            ));
        }
    }
    rule_files
}

fn parse_case(path: &Path, t: &Node) -> Result<TestCase, Vec<Diagnostic>> {
    let mut errs = Vec::new();
    let Kind::Map(pairs) = &t.kind else {
        return Err(vec![diag(path, t, "a test must be a mapping")]);
    };
    let mut name = None;
    let mut rules = None;
    let mut events = Vec::new();
    let mut expect = None;
    for (k, v) in pairs {
        match k.as_scalar().unwrap_or("") {
            "name" => name = v.as_scalar().map(str::to_owned),
            "rules" => match &v.kind {
                Kind::Seq(items) => {
                    rules = Some(
                        items
                            .iter()
                            .filter_map(|i| i.as_scalar().map(str::to_owned))
                            .collect(),
                    )
                }
                _ => errs.push(diag(path, v, "`rules` must be a list of rule ids")),
            },
            "events" => match &v.kind {
                Kind::Seq(items) => {
                    events = items.iter().map(|i| (i.pos.line, i.to_json())).collect()
                }
                _ => errs.push(diag(path, v, "`events` must be a list of events")),
            },
            "expect" => match &v.kind {
                Kind::Seq(items) => {
                    let mut out = Vec::new();
                    for it in items {
                        match expected(&it.to_json()) {
                            Some(e) => out.push(e),
                            None => errs.push(diag(
                                path,
                                it,
                                "an expected alert is `{rule: ID, event: EVENT_ID}`, an expected digest `{rule: ID, digest: PERIOD_START, count: N}`",
                            )),
                        }
                    }
                    expect = Some(out);
                }
                _ if v.is_null() => expect = Some(Vec::new()),
                _ => errs.push(diag(path, v, "`expect` must be a list of {rule, event}")),
            },
            other => errs.push(diag(
                path,
                k,
                format!("unknown key `{other}` in a test (expected name, rules, events, expect)"),
            )),
        }
    }
    let Some(name) = name else {
        errs.push(diag(path, t, "a test needs a `name`"));
        return Err(errs);
    };
    let Some(expect) = expect else {
        errs.push(diag(
            path,
            t,
            format!("test {name:?} needs `expect` (use `expect: []` for no alerts)"),
        ));
        return Err(errs);
    };
    if errs.is_empty() {
        Ok(TestCase {
            name,
            rules,
            events,
            expect,
        })
    } else {
        Err(errs)
    }
}

impl Report {
    /// The closing line: `N passed, N failed`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "{} passed, {} failed", self.passed, self.failed);
        s
    }
}
