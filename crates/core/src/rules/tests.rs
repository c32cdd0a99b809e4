//! Loader tests: each case is rule files in, the exact `FILE:LINE:COL:
//! message` lines of `newswatch check` out (or none for a valid set).

use std::path::PathBuf;
use std::time::Duration;

use super::*;

/// Load `files` and compare every diagnostic, in order, with `want`.
fn check_files(files: &[(&str, &str)], want: &[&str]) {
    let inputs = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect();
    let got: Vec<String> = match load_strs(inputs) {
        Ok(_) => Vec::new(),
        Err(LoadErrors(d)) => d.iter().map(ToString::to_string).collect(),
    };
    let files_text: Vec<String> = files.iter().map(|(p, t)| format!("--- {p}\n{t}")).collect();
    assert_eq!(got, want, "for\n{}", files_text.join(""));
}

/// One file, `a.yaml`.
fn check(yaml: &str, want: &[&str]) {
    check_files(&[("a.yaml", yaml)], want);
}

/// A valid one-rule file with `extra` lines appended to the rule.
fn rule_with(extra: &str) -> String {
    format!("rules:\n  - id: r\n    title: t\n    query: a\n{extra}")
}

/// The one rule of a file that loads.
fn load_one(yaml: &str) -> Rule {
    let rs = load_strs(vec![(PathBuf::from("a.yaml"), yaml.to_owned())])
        .unwrap_or_else(|e| panic!("{yaml}\n{e}"));
    assert_eq!(rs.rules.len(), 1);
    rs.rules[0].clone()
}

const RULE_KEYS: &str =
    "id, title, description, severity, query, filter, labels, topic, enabled, group_by, throttle, alert, digest";

#[test]
fn valid_files_load() {
    let table = [
        "",
        "# only a comment\n",
        "rules:\n",
        "lists:\nmacros:\nrules:\n",
        "rules:\n  - id: r\n    title: t\n    query: a\n",
        "lists:\n  l: [a, \"b c\", xy*, \"{US}\"]\nmacros:\n  m: '@l OR z'\nrules:\n  - id: r\n    title: t\n    query: $m\n    filter: NOT y\n",
        // A purely negative filter is fine: it only narrows the query.
        "rules:\n  - id: r\n    title: t\n    query: a\n    filter: NOT b\n",
        // An unused macro that is fine on its own.
        "macros:\n  m: a OR b\nrules:\n  - id: r\n    title: t\n    query: c\n",
    ];
    for yaml in table {
        check(yaml, &[]);
    }
}

#[test]
fn file_structure() {
    let table: &[(&str, &[&str])] = &[
        (
            "- a\n",
            &["a.yaml:1:1: a rule file must be a mapping, got a list"],
        ),
        (
            "rule:\n  - id: r\n",
            &["a.yaml:1:1: unknown key `rule` in a rule file (expected one of: lists, macros, rules)"],
        ),
        (
            "rules:\nrules:\n",
            &["a.yaml:2:1: duplicate key `rules` in a rule file"],
        ),
        (
            "rules: x\n",
            &["a.yaml:1:8: `rules` must be a list of rules, got a scalar"],
        ),
        (
            "rules:\n  - x\n",
            &["a.yaml:2:5: a rule must be a mapping, got a scalar"],
        ),
        (
            "lists: [a]\n",
            &["a.yaml:1:8: `lists` must be a mapping of list names to lists of terms"],
        ),
        (
            "macros: [a]\n",
            &["a.yaml:1:9: `macros` must be a mapping of macro names to query fragments"],
        ),
        (
            "rules: [\n",
            &["a.yaml:2:1: YAML syntax error: while parsing a node, did not find expected node content"],
        ),
    ];
    for (yaml, want) in table {
        check(yaml, want);
    }
}

#[test]
fn rule_keys() {
    let unknown =
        format!("a.yaml:5:5: unknown key `colour` in rule (expected one of: {RULE_KEYS})");
    let table: &[(&str, &[&str])] = &[
        (&rule_with("    colour: red\n"), &[&unknown]),
        (
            &rule_with("    title: again\n"),
            &["a.yaml:5:5: duplicate key `title` in rule"],
        ),
        (
            "rules:\n  - title: t\n    query: a\n",
            &["a.yaml:2:5: rule is missing required key `id`"],
        ),
        (
            "rules:\n  - id: r\n    query: a\n",
            &["a.yaml:2:5: rule `r` is missing required key `title`"],
        ),
        (
            "rules:\n  - id: r\n    title: t\n",
            &["a.yaml:2:5: rule `r` is missing required key `query`"],
        ),
        (
            "rules:\n  - description: d\n",
            &[
                "a.yaml:2:5: rule is missing required key `id`",
                "a.yaml:2:5: rule is missing required key `query`",
                "a.yaml:2:5: rule is missing required key `title`",
            ],
        ),
        (
            "rules:\n  - id: Bad Id\n    title: t\n    query: a\n",
            &["a.yaml:2:9: bad rule id \"Bad Id\": it must match [a-z0-9][a-z0-9._-]*"],
        ),
        (
            "rules:\n  - id: [r]\n    title: t\n    query: a\n",
            &["a.yaml:2:9: `id` must be a string, got a list"],
        ),
        (
            "rules:\n  - id: r\n    title: ' '\n    query: a\n",
            &["a.yaml:3:12: `title` must not be empty"],
        ),
        (
            "rules:\n  - id: r\n    title: t\n    query:\n",
            &["a.yaml:5:1: `query` must be a string, got null"],
        ),
        (
            &rule_with("    description: [d]\n"),
            &["a.yaml:5:18: `description` must be a string, got a list"],
        ),
        (
            &rule_with("    severity: urgent\n"),
            &["a.yaml:5:15: bad severity \"urgent\": expected one of info, low, medium, high, critical"],
        ),
        (
            &rule_with("    severity: [high]\n"),
            &["a.yaml:5:15: bad severity a list: expected one of info, low, medium, high, critical"],
        ),
        (
            &rule_with("    labels: [a]\n"),
            &["a.yaml:5:13: `labels` must be a mapping, got a list"],
        ),
        (
            &rule_with("    labels:\n      team: x\n      team: y\n"),
            &["a.yaml:7:7: duplicate label `team`"],
        ),
        (
            &rule_with("    labels:\n      '': x\n"),
            &["a.yaml:6:7: label names must not be empty"],
        ),
        (
            &rule_with("    labels:\n      team: [x]\n"),
            &["a.yaml:6:13: label `team` must be a string, got a list"],
        ),
        (
            &rule_with("    topic: 'a b'\n"),
            &["a.yaml:5:12: bad topic name \"a b\": Kafka topics use letters, digits, '.', '_' and '-' (at most 249)"],
        ),
        (
            &rule_with("    enabled: 'false'\n"),
            &["a.yaml:5:14: `enabled` must be true or false"],
        ),
        (
            &rule_with("    enabled: no\n"),
            &["a.yaml:5:14: `enabled` must be true or false"],
        ),
    ];
    for (yaml, want) in table {
        check(yaml, want);
    }
}

#[test]
fn stateful_keys() {
    let table: &[(&str, &[&str])] = &[
        (&rule_with("    throttle: soon\n"), &[
            "a.yaml:5:15: bad duration \"soon\" for `throttle` (expected number at 0); write e.g. 30s, 15m, 24h",
        ]),
        (&rule_with("    throttle: 0s\n"), &["a.yaml:5:15: `throttle` must be longer than zero"]),
        (&rule_with("    throttle: [1m]\n"), &["a.yaml:5:15: `throttle` must be a string, got a list"]),
        (&rule_with("    group_by: [source, source]\n"), &["a.yaml:5:24: `group_by` lists \"source\" twice"]),
        (&rule_with("    group_by: ['a..b']\n"), &[
            "a.yaml:5:16: bad `group_by` field \"a..b\": expected a field name such as source, lang or a.b",
        ]),
        (&rule_with("    group_by: {a: b}\n"), &["a.yaml:5:15: `group_by` must be a list of field names"]),
        (&rule_with("    group_by: [[a]]\n"), &["a.yaml:5:16: a `group_by` field must be a string, got a list"]),
        (&rule_with("    alert: each\n"), &["a.yaml:5:12: `alert` must be a mapping, got a scalar"]),
        (&rule_with("    alert: {mode: sometimes}\n"), &[
            "a.yaml:5:19: bad alert mode \"sometimes\": expected each, first_seen, threshold or spike",
        ]),
        (&rule_with("    alert: {mode: each, window: 1h}\n"), &["a.yaml:5:33: `window` does not apply to alert mode `each`"]),
        (&rule_with("    alert: {mode: first_seen, count: 2}\n"), &[
            "a.yaml:5:38: `count` does not apply to alert mode `first_seen`",
        ]),
        (&rule_with("    alert: {mode: threshold, similarity: 0.5, count: 2, window: 1h}\n"), &[
            "a.yaml:5:42: `similarity` does not apply to alert mode `threshold`",
        ]),
        (&rule_with("    alert: {mode: first_seen, similarity: 2}\n"), &["a.yaml:5:43: `similarity` must be a number from 0 to 1"]),
        (&rule_with("    alert: {mode: first_seen, similarity: high}\n"), &["a.yaml:5:43: `similarity` must be a number from 0 to 1"]),
        (&rule_with("    alert: {mode: first_seen, window: 0s}\n"), &["a.yaml:5:39: `window` must be longer than zero"]),
        (&rule_with("    alert: {mode: threshold, window: 1h}\n"), &["a.yaml:5:12: alert mode `threshold` needs `count`"]),
        (&rule_with("    alert: {mode: threshold, count: 3}\n"), &["a.yaml:5:12: alert mode `threshold` needs `window`"]),
        (&rule_with("    alert: {mode: threshold, count: 0, window: 1h}\n"), &[
            "a.yaml:5:37: `count` must be a whole number from 1 to 500",
        ]),
        (&rule_with("    alert: {mode: threshold, count: 501, window: 1h}\n"), &[
            "a.yaml:5:37: `count` must be a whole number from 1 to 500",
        ]),
        (&rule_with("    alert: {mode: threshold, count: 2.5, window: 1h}\n"), &[
            "a.yaml:5:37: `count` must be a whole number from 1 to 500",
        ]),
        (&rule_with("    alert: {mode: threshold, count: 2, window: 1h, distinct: 'a b'}\n"), &[
            "a.yaml:5:62: bad `distinct` field \"a b\": expected a field name such as source",
        ]),
        // spike: 1h / 7d / 3 / 5 by default; each key checked at its position
        (&rule_with("    alert: {mode: spike, baseline: 90m}\n"), &[
            "a.yaml:5:36: `baseline` (1h 30m) must be a whole multiple of `window`, longer than it (1h)",
        ]),
        (&rule_with("    alert: {mode: spike, window: 2h, baseline: 2h}\n"), &[
            "a.yaml:5:48: `baseline` (2h) must be a whole multiple of `window`, longer than it (2h)",
        ]),
        (&rule_with("    alert: {mode: spike, window: 5d}\n"), &[
            "a.yaml:5:34: `baseline` (7days) must be a whole multiple of `window`, longer than it (5days)",
        ]),
        (&rule_with("    alert: {mode: spike, window: 1m, baseline: 7d}\n"), &[
            "a.yaml:5:48: `baseline` (7days) must be at most 2047 windows (1m)",
        ]),
        (&rule_with("    alert: {mode: spike, ratio: 0}\n"), &["a.yaml:5:33: `ratio` must be a number greater than 0"]),
        (&rule_with("    alert: {mode: spike, ratio: lots}\n"), &["a.yaml:5:33: `ratio` must be a number greater than 0"]),
        (&rule_with("    alert: {mode: spike, ratio: .inf}\n"), &["a.yaml:5:33: `ratio` must be a number greater than 0"]),
        (&rule_with("    alert: {mode: spike, min_count: 0}\n"), &[
            "a.yaml:5:37: `min_count` must be a whole number of at least 1",
        ]),
        (&rule_with("    alert: {mode: spike, count: 3, similarity: 0.5}\n"), &[
            "a.yaml:5:33: `count` does not apply to alert mode `spike`",
            "a.yaml:5:48: `similarity` does not apply to alert mode `spike`",
        ]),
        (&rule_with("    alert: {mode: threshold, count: 2, window: 1h, ratio: 2}\n"), &[
            "a.yaml:5:59: `ratio` does not apply to alert mode `threshold`",
        ]),
        (&rule_with("    alert: {mode: threshold, count: 2, window: 1h, colour: red}\n"), &[
            "a.yaml:5:52: unknown key `colour` in `alert` (expected one of: mode, window, similarity, count, distinct, baseline, ratio, min_count)",
        ]),
    ];
    for (yaml, want) in table {
        check(yaml, want);
    }
}

#[test]
fn stateful_keys_take_effect() {
    let hour = Duration::from_secs(3600);
    let table: &[(&str, AlertMode)] = &[
        ("", AlertMode::Each),
        ("    alert: {mode: each}\n", AlertMode::Each),
        ("    alert: {}\n", AlertMode::Each),
        (
            "    alert: {mode: first_seen}\n",
            AlertMode::FirstSeen {
                window: 24 * hour,
                similarity: None,
            },
        ),
        (
            "    alert: {mode: first_seen, window: 2h, similarity: 0.8}\n",
            AlertMode::FirstSeen {
                window: 2 * hour,
                similarity: Some(0.8),
            },
        ),
        (
            "    alert: {mode: threshold, count: 3, window: 1h}\n",
            AlertMode::Threshold {
                count: 3,
                window: hour,
                distinct: None,
            },
        ),
        (
            "    alert: {mode: threshold, count: 3, window: 10m, distinct: meta.desk}\n",
            AlertMode::Threshold {
                count: 3,
                window: hour / 6,
                distinct: Some("meta.desk".into()),
            },
        ),
        (
            "    alert: {mode: spike}\n",
            AlertMode::Spike {
                window: hour,
                baseline: 7 * 24 * hour,
                ratio: 3.0,
                min_count: 5,
            },
        ),
        (
            "    alert: {mode: spike, window: 1d, baseline: 14d, ratio: 2.5, min_count: 20}\n",
            AlertMode::Spike {
                window: 24 * hour,
                baseline: 14 * 24 * hour,
                ratio: 2.5,
                min_count: 20,
            },
        ),
    ];
    for (extra, want) in table {
        assert_eq!(&load_one(&rule_with(extra)).mode, want, "{extra}");
    }
    let r = load_one(&rule_with(
        "    throttle: 15m\n    group_by: [source, meta.desk]\n    severity: high\n    labels: {team: x}\n    topic: alerts.x\n",
    ));
    assert_eq!(r.throttle, Some(hour / 4));
    assert_eq!(r.group_by, ["source", "meta.desk"]);
    assert_eq!(r.severity, Severity::High);
    assert_eq!(r.labels.get("team").map(String::as_str), Some("x"));
    assert_eq!(r.topic.as_deref(), Some("alerts.x"));
    // A scalar `group_by` is one field.
    assert_eq!(
        load_one(&rule_with("    group_by: source\n")).group_by,
        ["source"]
    );
}

#[test]
fn duplicates_name_the_first_definition() {
    let a =
        "lists:\n  l1: [a]\nmacros:\n  m1: a\nrules:\n  - id: dup\n    title: t\n    query: a\n";
    let b = "lists:\n  l1: [b]\nmacros:\n  m1: b\nrules:\n  - id: dup\n    title: t\n    query: b\n  - id: dup\n    title: t\n    query: c\n";
    check_files(
        &[("a.yaml", a), ("b.yaml", b)],
        &[
            "b.yaml:2:3: duplicate list name `l1` (first defined at a.yaml:2:3)",
            "b.yaml:4:7: duplicate macro name `m1` (first defined at a.yaml:4:7)",
            "b.yaml:6:5: duplicate rule id `dup` (first defined at a.yaml:6:5)",
            "b.yaml:9:5: duplicate rule id `dup` (first defined at a.yaml:6:5)",
        ],
    );
    // Within one file, and a disabled rule still takes its id.
    check(
        "rules:\n  - id: r\n    title: t\n    query: a\n    enabled: false\n  - id: r\n    title: t\n    query: b\n",
        &["a.yaml:6:5: duplicate rule id `r` (first defined at a.yaml:2:5)"],
    );
}

#[test]
fn lists_and_macros() {
    let table: &[(&str, &[&str])] = &[
        (
            "lists:\n  'a b': [x]\n",
            &["a.yaml:2:3: bad list name \"a b\": use letters, digits, '_' and '-'"],
        ),
        (
            "lists:\n  l: x\n",
            &["a.yaml:2:6: list `l` must be a list of terms, got a scalar"],
        ),
        (
            "lists:\n  l: [a, '']\n",
            &["a.yaml:2:10: entries of list `l` must be non-empty terms or phrases"],
        ),
        (
            "lists:\n  l:\n    - {US}\n",
            &["a.yaml:3:7: an entry of list `l` is a YAML mapping: quote case-sensitive entries, e.g. \"{US}\""],
        ),
        (
            "macros:\n  'a b': x\n",
            &["a.yaml:2:3: bad macro name \"a b\": use letters, digits, '_' and '-'"],
        ),
        (
            "macros:\n  m: [x]\n",
            &["a.yaml:2:6: macro `m` must be a string, got a list"],
        ),
        (
            "macros:\n  m: a AND (b\n",
            &["a.yaml:2:12: in macro `m`: unclosed '(': missing ')'"],
        ),
    ];
    for (yaml, want) in table {
        check(yaml, want);
    }
}

#[test]
fn query_errors_point_into_the_file() {
    let q = |query: &str| format!("rules:\n  - id: r\n    title: t\n    query: {query}\n");
    let table: &[(String, &[&str])] = &[
        (
            q("a AND (b"),
            &["a.yaml:4:18: unclosed '(': missing ')'"],
        ),
        (
            q("'x OR OR y'"),
            &["a.yaml:4:18: OR needs a term before it"],
        ),
        (
            // A block scalar: the column is on the query's own line.
            q(">\n      a OR\n      b ) c"),
            &["a.yaml:6:9: unmatched ')'"],
        ),
        (
            q("NOT a"),
            &["a.yaml:4:12: query would match almost every event: it needs a term outside NOT (put exclusions in `filter` or write `x AND NOT y`)"],
        ),
        (
            q("a OR NOT b"),
            &["a.yaml:4:12: query would match almost every event: it needs a term outside NOT (put exclusions in `filter` or write `x AND NOT y`)"],
        ),
        (q("x @nope"), &["a.yaml:4:14: undefined list @nope"]),
        (q("x $nope"), &["a.yaml:4:14: undefined macro $nope"]),
        (
            q("(a AND b) NEAR/3 c"),
            &["a.yaml:4:12: AND is not allowed inside a NEAR operand: NEAR takes terms, phrases, lists, and ORs or NEARs of those"],
        ),
        (
            q("title:a NEAR/3 body:b"),
            &["a.yaml:4:12: this NEAR can never match: its operands are in different fields (title vs body)"],
        ),
        (
            format!("{}    filter: y @nope\n", q("a")),
            &["a.yaml:5:15: in filter: undefined list @nope"],
        ),
        (
            // Queries are checked even when other keys of the rule are bad.
            "rules:\n  - id: r\n    severity: urgent\n    query: x $m\n".into(),
            &[
                "a.yaml:2:5: rule `r` is missing required key `title`",
                "a.yaml:3:15: bad severity \"urgent\": expected one of info, low, medium, high, critical",
                "a.yaml:4:14: undefined macro $m",
            ],
        ),
        (
            format!("{}    filter: y (\n", q("a")),
            &["a.yaml:5:16: in filter: query ends where a term was expected"],
        ),
    ];
    for (yaml, want) in table {
        check(yaml, want);
    }
}

#[test]
fn macro_errors_are_reported_where_the_macro_is() {
    // Cycles and undefined references are errors even in unused macros;
    // each is reported once although a rule also reaches it.
    let yaml = "macros:\n  m1: a OR $m2\n  m2: $m1\n  u: b @nowhere\nrules:\n  - id: r\n    title: t\n    query: $m1\n";
    check(
        yaml,
        &[
            "a.yaml:2:12: macro cycle: $m2 -> $m1 -> $m2",
            "a.yaml:3:7: macro cycle: $m1 -> $m2 -> $m1",
            "a.yaml:4:8: undefined list @nowhere",
        ],
    );
    // Other errors depend on where a macro is used, so an unused one is
    // not checked for them.
    check("macros:\n  k: x NEAR/2 (a AND b)\n", &[]);
    check(
        "macros:\n  k: x NEAR/2 (a AND b)\nrules:\n  - id: r\n    title: t\n    query: $k\n",
        &["a.yaml:2:15: AND is not allowed inside a NEAR operand: NEAR takes terms, phrases, lists, and ORs or NEARs of those"],
    );
    check(
        "lists:\n  l: [a, 'xy*']\nrules:\n  - id: r\n    title: t\n    query: '@l NEAR/2 (b AND c)'\n",
        &["a.yaml:6:23: AND is not allowed inside a NEAR operand: NEAR takes terms, phrases, lists, and ORs or NEARs of those"],
    );
    check(
        "lists:\n  l: ['-']\nrules:\n  - id: r\n    title: t\n    query: '@l'\n",
        &["a.yaml:2:8: in list @l: phrase \"-\" has no letters or digits, so it can never match"],
    );
}

#[test]
fn enabled_false_counts_as_disabled() {
    let yaml = "rules:\n  - id: a\n    title: t\n    query: a\n  - id: b\n    title: t\n    query: b\n    enabled: false\n";
    let rs =
        load_strs(vec![(PathBuf::from("a.yaml"), yaml.into())]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.disabled, 1);
    assert_eq!(rs.rules.len(), 1);
    assert_eq!(rs.rules[0].id, "a");
    assert_eq!(rs.matcher.len(), 1);
    // A disabled rule's query is still checked.
    check(
        "rules:\n  - id: a\n    title: t\n    query: a (\n    enabled: false\n",
        &["a.yaml:4:15: query ends where a term was expected"],
    );
}

#[test]
fn query_positions_map_back_to_the_file() {
    let yaml = "lists:\n  l: [alpha, \"beta gamma\"]\nrules:\n  - id: r\n    title: t\n    query: 'x OR @l'\n";
    let rs =
        load_strs(vec![(PathBuf::from("a.yaml"), yaml.into())]).unwrap_or_else(|e| panic!("{e}"));
    let q = &rs.matcher.rule(0).query;
    assert_eq!(rs.locate(q.src, q.span), "a.yaml:6:13");
    assert_eq!(rs.source_text(q.src, q.span), "x OR @l");
}

#[test]
fn version_is_a_hash_of_names_and_texts() {
    let v = |files: Vec<(&str, &str)>| {
        let inputs = files
            .into_iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_owned()))
            .collect();
        load_strs(inputs).map(|rs| rs.version).unwrap_or_default()
    };
    let one = v(vec![("a.yaml", "rules:\n")]);
    assert_eq!(one.len(), 12);
    assert_eq!(one, v(vec![("a.yaml", "rules:\n")]));
    assert_ne!(one, v(vec![("b.yaml", "rules:\n")]));
    assert_ne!(one, v(vec![("a.yaml", "rules: []\n")]));
}

#[test]
fn names() {
    for (s, rule_id, field, topic) in [
        ("a", true, true, true),
        ("a.b_c-1", true, true, true),
        ("0x", true, true, true),
        ("A", false, true, true),
        ("-a", false, true, true),
        ("a..b", true, false, true),
        ("a b", false, false, false),
        ("", false, false, false),
        ("..", false, false, false),
    ] {
        assert_eq!(is_valid_rule_id(s), rule_id, "rule id {s:?}");
        assert_eq!(is_field_name(s), field, "field {s:?}");
        assert_eq!(is_valid_topic(s), topic, "topic {s:?}");
    }
}

#[test]
fn digest_keys() {
    let table: &[(&str, &[&str])] = &[
        ("    digest: {every: 1h, max_items: 50, grace: 1s}\n", &[]),
        ("    digest: {every: 1d}\n", &[]),
        ("    digest: {every: 5m}\n", &[]),
        (
            "    digest: {every: 7m}\n",
            &["a.yaml:5:21: `every` must divide a day into whole periods of at least a minute (e.g. 5m, 15m, 1h, 6h, 1d)"],
        ),
        (
            "    digest: {every: 30s}\n",
            &["a.yaml:5:21: `every` must divide a day into whole periods of at least a minute (e.g. 5m, 15m, 1h, 6h, 1d)"],
        ),
        (
            "    digest: {every: 2d}\n",
            &["a.yaml:5:21: `every` must divide a day into whole periods of at least a minute (e.g. 5m, 15m, 1h, 6h, 1d)"],
        ),
        (
            "    digest: {max_items: 5}\n",
            &["a.yaml:5:13: `digest` needs `every` (e.g. 1h)"],
        ),
        (
            "    digest: {every: 1h, max_items: 0}\n",
            &["a.yaml:5:36: `max_items` must be a whole number from 1 to 100"],
        ),
        (
            "    digest: {every: 1h, max_items: 101}\n",
            &["a.yaml:5:36: `max_items` must be a whole number from 1 to 100"],
        ),
        (
            "    digest: {every: 1h, size: 3}\n",
            &["a.yaml:5:25: unknown key `size` in `digest` (expected one of: every, max_items, grace)"],
        ),
        (
            "    digest: 1h\n",
            &["a.yaml:5:13: `digest` must be a mapping, got a scalar"],
        ),
    ];
    for (extra, want) in table {
        check(&rule_with(extra), want);
    }
    let r = load_one(&rule_with("    digest: {every: 1h}\n"));
    assert_eq!(
        r.digest,
        Some(crate::rules::DigestSpec {
            every: std::time::Duration::from_secs(3600),
            max_items: 20,
            grace: std::time::Duration::from_secs(300),
        })
    );
}
