//! The guides in `docs/` are checked against the code, so they cannot drift.
//!
//! Operator guide: the configuration reference tables (header
//! `| key | type | default | environment variable | meaning |`) list exactly
//! the keys the config loader accepts (`config::known_keys()`, derived from
//! the loader's own structs), each documented default is the built-in one
//! (a config holding only that key, or only that environment variable, loads
//! to the same `Config` as no config at all), each type agrees with its
//! default, a misspelt key is refused; the managed-properties table
//! (`| property | why |`) is `config::MANAGED_PROPERTIES`, each refused; and
//! every ```toml block loads.
//!
//! Analyst guide: every ```yaml block loads as a rule file (or is a rule
//! test file); every row of a `| query | matches | does not match |` table
//! holds against the engine; and the walkthrough runs: from a scratch copy of
//! `config/` and `examples/`, in document order, ```yaml blocks whose first
//! line is `# file: PATH` are saved to PATH and every ```sh line is run with
//! the built binary on `PATH`, expecting the exit code its comment states as
//! `(exit N)`, else 0.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use newswatch::config::{self, Config};
use newswatch_core::event::EventFields;
use newswatch_core::matcher::Scratch;
use newswatch_core::{rules, Engine};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ------------------------------------------------------------------ markdown

/// A fenced code block: its info string, text, and the line it starts on.
struct Block {
    info: String,
    text: String,
    line: usize,
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, l) in md.lines().enumerate() {
        match (&mut open, l.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_owned(),
                    text: String::new(),
                    line: i + 1,
                })
            }
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some(b), None) => {
                b.text.push_str(l);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "unclosed code block");
    out
}

/// The rows (as cells) of every table whose header row is `header`, with
/// the line number of each row.
pub(crate) fn table_rows(md: &str, header: &str) -> Vec<(usize, Vec<String>)> {
    let lines: Vec<&str> = md.lines().collect();
    let mut rows = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == header {
            i += 2; // the header and the |---| line
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                let cells = lines[i]
                    .trim()
                    .trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_owned())
                    .collect();
                rows.push((i + 1, cells));
                i += 1;
            }
        }
        i += 1;
    }
    rows
}

/// The contents of the `code spans` in a table cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .collect()
}

#[track_caller]
pub(crate) fn one_code_span(cell: &str, line: usize) -> String {
    let spans = code_spans(cell);
    assert_eq!(
        spans.len(),
        1,
        "line {line}: one `code` value expected in {cell:?}"
    );
    spans[0].clone()
}

// ------------------------------------------------------------------ operator guide

const OPERATOR_GUIDE: &str = "docs/operator-guide.md";
const ANALYST_GUIDE: &str = "docs/analyst-guide.md";
const CONFIG_HEADER: &str = "| key | type | default | environment variable | meaning |";
const MANAGED_HEADER: &str = "| property | why |";

/// One row of the configuration reference.
struct KeyDoc {
    line: usize,
    key: String,
    ty: String,
    default: serde_json::Value,
    default_toml: String,
    env: String,
}

fn config_reference() -> Vec<KeyDoc> {
    let rows = table_rows(&read(OPERATOR_GUIDE), CONFIG_HEADER);
    assert!(rows.len() > 10, "no configuration reference found");
    rows.into_iter()
        .map(|(line, cells)| {
            assert_eq!(cells.len(), 5, "line {line}: {cells:?}");
            let default_toml = one_code_span(&cells[2], line);
            // Defaults are written as TOML values that are also JSON
            // (strings, lists, numbers, booleans, `{}`), so they can be
            // read here without a TOML parser.
            let default = serde_json::from_str(&default_toml).unwrap_or_else(|e| {
                panic!("line {line}: default {default_toml} is not a simple TOML value: {e}")
            });
            KeyDoc {
                line,
                key: one_code_span(&cells[0], line),
                ty: cells[1].clone(),
                default,
                default_toml,
                env: one_code_span(&cells[3], line),
            }
        })
        .collect()
}

/// Load `toml` (and `env`) as a config file; `file` cleared for comparison.
fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
    crate::util::load_config_text(toml, env).map(|mut c| {
        c.file = None;
        c
    })
}

fn builtin() -> Config {
    Config::load_with_env(None, Some(HashMap::new())).expect("built-in defaults load")
}

#[test]
fn config_reference_lists_exactly_the_accepted_keys() {
    let documented: Vec<String> = config_reference().into_iter().map(|k| k.key).collect();
    let unique: BTreeSet<&String> = documented.iter().collect();
    assert_eq!(unique.len(), documented.len(), "a key is documented twice");
    let accepted: BTreeSet<String> = config::known_keys().into_iter().collect();
    assert!(accepted.len() > 10, "known_keys() is empty");
    let documented: BTreeSet<String> = documented.into_iter().collect();
    let undocumented: Vec<&String> = accepted.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&accepted).collect();
    assert!(
        undocumented.is_empty(),
        "{OPERATOR_GUIDE}: keys the loader accepts but the reference does not list: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "{OPERATOR_GUIDE}: documented keys the loader does not accept: {unknown:?}"
    );
}

#[test]
fn config_reference_defaults_types_and_env_vars_are_right() {
    let builtin = builtin();
    for k in config_reference() {
        let (section, name) = k
            .key
            .split_once('.')
            .unwrap_or_else(|| panic!("line {}: {} is not section.key", k.line, k.key));
        // The type column agrees with the default's shape.
        let kind = match &k.default {
            serde_json::Value::String(_) => "scalar",
            serde_json::Value::Array(_) => "list",
            serde_json::Value::Object(_) => "table",
            serde_json::Value::Bool(_) => "bool",
            serde_json::Value::Number(_) => "integer",
            serde_json::Value::Null => "null",
        };
        let ty_kind = if k.ty.starts_with("list") {
            "list"
        } else if ["table", "bool", "integer"].contains(&k.ty.as_str()) {
            k.ty.as_str()
        } else {
            "scalar"
        };
        assert_eq!(
            kind, ty_kind,
            "line {}: type {} vs default {}",
            k.line, k.ty, k.default_toml
        );

        // A file holding only this key at its documented default loads to
        // the built-in configuration.
        let toml = format!("[{section}]\n{name} = {}\n", k.default_toml);
        let got = load(&toml, &[]).unwrap_or_else(|e| panic!("line {}: {toml:?}: {e}", k.line));
        assert_eq!(
            got, builtin,
            "line {}: {} = {} is not the default",
            k.line, k.key, k.default_toml
        );

        // A misspelt key is refused, by name.
        let typo = format!("[{section}]\n{name}x = {}\n", k.default_toml);
        let e = load(&typo, &[]).expect_err(&typo);
        assert!(e.contains(&format!("{name}x")), "line {}: {e}", k.line);

        // The environment variable is named after the key, and setting it
        // to the default changes nothing.
        let var = format!("NEWSWATCH__{}", k.key.to_uppercase().replace('.', "__"));
        if kind == "table" {
            assert_eq!(k.env, format!("{var}__<NAME>"), "line {}", k.line);
            let var = k.env.replace("<NAME>", "CLIENT__ID");
            let got = load("", &[(&var, "docs-test")]).unwrap();
            let props = match name {
                "consumer_properties" => &got.kafka.consumer_properties,
                "producer_properties" => &got.kafka.producer_properties,
                other => panic!("line {}: no property table {other}", k.line),
            };
            assert_eq!(
                props.get("client.id").map(String::as_str),
                Some("docs-test"),
                "line {}: {var}",
                k.line
            );
            continue;
        }
        assert_eq!(k.env, var, "line {}", k.line);
        let value = match &k.default {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        let got =
            load("", &[(&var, &value)]).unwrap_or_else(|e| panic!("line {}: {var}: {e}", k.line));
        assert_eq!(
            got, builtin,
            "line {}: {var}={value:?} is not the default",
            k.line
        );
    }
}

#[test]
fn managed_properties_are_documented_and_refused() {
    let rows = table_rows(&read(OPERATOR_GUIDE), MANAGED_HEADER);
    let documented: BTreeSet<String> = rows
        .iter()
        .map(|(line, cells)| one_code_span(&cells[0], *line))
        .collect();
    let managed: BTreeSet<String> = config::MANAGED_PROPERTIES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        documented, managed,
        "{OPERATOR_GUIDE}: the managed-properties table"
    );
    for p in &managed {
        for table in ["consumer_properties", "producer_properties"] {
            let toml = format!("[kafka.{table}]\n\"{p}\" = \"x\"\n");
            let e = load(&toml, &[]).expect_err(&toml);
            assert!(e.contains(p.as_str()), "{toml}: {e}");
        }
    }
}

#[test]
fn operator_guide_toml_blocks_load() {
    let md = read(OPERATOR_GUIDE);
    let toml: Vec<Block> = blocks(&md)
        .into_iter()
        .filter(|b| b.info == "toml")
        .collect();
    assert!(!toml.is_empty());
    for b in toml {
        load(&b.text, &[]).unwrap_or_else(|e| panic!("{OPERATOR_GUIDE}:{}: {e}", b.line));
    }
}

// ------------------------------------------------------------------ analyst guide

const QUERY_HEADER: &str = "| query | matches | does not match |";

fn is_test_file(yaml: &str) -> bool {
    yaml.lines().any(|l| l.starts_with("tests:"))
}

#[test]
fn analyst_guide_rule_examples_load() {
    let md = read(ANALYST_GUIDE);
    let mut n = 0;
    for b in blocks(&md).into_iter().filter(|b| b.info == "yaml") {
        if is_test_file(&b.text) {
            // Run by the walkthrough (`newswatch test`).
            continue;
        }
        let name = PathBuf::from(format!("{ANALYST_GUIDE}:{}", b.line));
        if let Err(errs) = rules::load_strs(vec![(name, b.text.clone())]) {
            panic!(
                "{ANALYST_GUIDE}:{}: the rule example does not load:\n{errs}",
                b.line
            );
        }
        n += 1;
    }
    assert!(n >= 3, "rule examples not found");
}

/// The event for a table text: a JSON object as written, else a title.
fn table_event(text: &str) -> Vec<u8> {
    if text.starts_with('{') {
        text.as_bytes().to_vec()
    } else {
        serde_json::json!({"id": "t", "title": text})
            .to_string()
            .into_bytes()
    }
}

#[test]
fn analyst_guide_query_tables_hold() {
    let md = read(ANALYST_GUIDE);
    let rows = table_rows(&md, QUERY_HEADER);
    assert!(rows.len() > 20, "query tables not found");
    let mut scratch = Scratch::new();
    for (line, cells) in rows {
        assert_eq!(cells.len(), 3, "line {line}: {cells:?}");
        let query = one_code_span(&cells[0], line);
        let yaml = format!(
            "rules:\n  - id: q\n    title: t\n    query: '{}'\n",
            query.replace('\'', "''")
        );
        let rs = rules::load_strs(vec![(PathBuf::from(format!("line {line}")), yaml)])
            .unwrap_or_else(|e| panic!("{ANALYST_GUIDE}:{line}: `{query}` does not load:\n{e}"));
        let engine = Engine::new(rs, EventFields::default());
        for (column, want) in [(1, true), (2, false)] {
            let texts = code_spans(&cells[column]);
            assert!(
                !texts.is_empty(),
                "line {line}: no examples in column {column}"
            );
            for text in texts {
                let ev = engine
                    .decode(&table_event(&text))
                    .unwrap_or_else(|e| panic!("line {line}: {text}: {e}"));
                let got = !engine.matches(&ev, &mut scratch).is_empty();
                assert_eq!(
                    got,
                    want,
                    "{ANALYST_GUIDE}:{line}: `{query}` {} `{text}`",
                    if want { "does not match" } else { "matches" }
                );
            }
        }
    }
}

/// Copy a directory tree (files and directories only).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The exit code a walkthrough line expects: `(exit N)` in its comment.
fn expected_exit(cmd: &str) -> i32 {
    let comment = cmd.rfind(" # ").map_or("", |i| &cmd[i..]);
    comment
        .split("(exit ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .map_or(0, |n| n.trim().parse().expect("(exit N) with a number"))
}

/// The commands of a ```sh block: comment-only and blank lines dropped,
/// backslash continuations joined.
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in block.lines() {
        if let Some(head) = l.strip_suffix('\\') {
            cur.push_str(head);
            continue;
        }
        cur.push_str(l);
        let cmd = std::mem::take(&mut cur);
        if !cmd.trim().is_empty() && !cmd.trim_start().starts_with('#') {
            out.push(cmd);
        }
    }
    out
}

#[test]
fn analyst_guide_walkthrough_runs() {
    let md = read(ANALYST_GUIDE);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_tree(&repo().join("config"), &root.join("config"));
    copy_tree(&repo().join("examples"), &root.join("examples"));
    let bin_dir = Path::new(crate::util::BIN)
        .parent()
        .expect("binary directory");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let have_jq = Command::new("jq").arg("--version").output().is_ok();
    let mut ran = 0;
    for b in blocks(&md) {
        match b.info.as_str() {
            "yaml" => {
                let Some(file) = b
                    .text
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# file: "))
                else {
                    continue;
                };
                let p = root.join(file.trim());
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, &b.text).unwrap();
            }
            "sh" => {
                for cmd in commands(&b.text) {
                    if !have_jq && cmd.contains("jq ") {
                        eprintln!("skipped (no jq): {cmd}");
                        continue;
                    }
                    let out = Command::new("bash")
                        .args(["-o", "pipefail", "-c", &cmd])
                        .current_dir(root)
                        .env("PATH", &path)
                        .env_remove("NEWSWATCH_CONFIG")
                        .env("RUST_LOG", "warn")
                        .output()
                        .expect("run bash");
                    let want = expected_exit(&cmd);
                    assert_eq!(
                        out.status.code(),
                        Some(want),
                        "{ANALYST_GUIDE}:{}: `{cmd}`\nstdout:\n{}\nstderr:\n{}",
                        b.line,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    ran += 1;
                }
            }
            _ => {}
        }
    }
    assert!(ran >= 10, "only {ran} walkthrough commands found");
}

#[test]
fn helpers_parse_what_the_guides_write() {
    let table = [
        ("newswatch check   # ok", 0),
        ("echo x | newswatch explain -    # NOT MATCHED (exit 1)", 1),
        ("diff a b      # lines only in b (exit 1)", 1),
        ("grep -c x f   # 0: gone (exit 1)", 1),
    ];
    for (cmd, want) in table {
        assert_eq!(expected_exit(cmd), want, "{cmd}");
    }
    assert_eq!(commands("# c\n\na \\\n  b\nc # x\n"), ["a   b", "c # x"]);
    assert_eq!(code_spans("`a`, `b c` and `d`"), ["a", "b c", "d"]);
}
