//! Query language 2 (SPEC §5), table by table: wildcard patterns, NEAR/s
//! and ONEAR/s, keyword comparisons and `_exists_`, and the errors `check`
//! reports for them at their column. Rows go through the same public
//! pipeline as [`crate::query_semantics`] (its helpers and prelude).

use std::path::PathBuf;

use newswatch_core::rules;
use serde_json::{json, Value};

use crate::query_semantics::{b, check_rule, run, sp, spans, t, tb, SpanRow};

// ---------------------------------------------------------------------------
// Wildcards: `*` any run of characters, `?` exactly one, within one word.

#[test]
fn wildcard_patterns() {
    run(&[
        ("*stan", b("talks in Kazakhstan"), true),
        ("*stan", b("Stan said"), true),
        ("*stan", b("Stanford said"), false),
        ("*stan", b("the Kazakh stand"), false),
        ("kim*un", b("#KimJongUn trends"), true),
        ("kim*un", b("Kimun"), true),
        ("kim*un", b("Kim Jong Un"), false),
        ("wom?n", b("women protest"), true),
        ("wom?n", b("a woman"), true),
        ("wom?n", b("womn"), false),
        ("wom?n", b("wombmen"), false),
        ("*stan*", b("Pakistani troops"), true),
        ("?ran", b("Iran and Oman"), true),
        ("?ran", b("Tehran"), false),
        // whole words only: a pattern never reaches across words
        ("pak*ops", b("Pakistani troops"), false),
    ]);
}

#[test]
fn wildcard_patterns_are_normalized_like_words() {
    run(&[
        ("CAF?", b("Café Pushkin"), true),
        ("*ÉRIE", b("la boulangerie"), true),
        ("*erie", b("la BOULANGERIE"), true),
        ("мин?ст*", b("Министерство иностранных дел"), true),
        ("мин?ст*", b("Минск"), false),
        ("*ёжик", b("Ежик в тумане"), true),
        ("*훈련을", b("연합훈련을 실시했다"), true),
        ("*훈련을", b("훈련 실시"), false),
        ("U.S?A", b("USSA"), true),
        // `?` is one character, after normalization: ß folds to ss
        ("stra?e", b("Straße"), false),
        ("stra??e", b("Straße"), true),
    ]);
}

#[test]
fn wildcard_patterns_in_scopes_near_lists_and_keyword_fields() {
    let src = |s: &str| json!({"id": "e1", "title": "x", "source": s});
    run(&[
        ("title:*stan", tb("Kazakhstan votes", "x"), true),
        ("title:*stan", tb("x", "Kazakhstan votes"), false),
        ("*stan NEAR/2 border", b("the Afghanistan border"), true),
        (
            "*stan NEAR/2 border",
            b("the Afghanistan and the long border"),
            false,
        ),
        ("@stans", b("the women spoke"), true),
        ("@stans", b("공중훈련을 마쳤다"), true),
        ("@stans", b("nothing here"), false),
        ("x source:*.co.kr", src("yonhap.co.kr"), true),
        ("x source:*.co.kr", src("yonhap.co.kr.example.com"), false),
        ("x source:yon?ap*", src("YONHAP.co.kr"), true),
    ]);
}

#[test]
fn wildcard_spans() {
    let table: &[SpanRow] = &[
        (
            "*stan",
            b("Kazakhstan and Uzbekistan"),
            &[("body", "Kazakhstan"), ("body", "Uzbekistan")],
        ),
        (
            "wom?n NEAR/1 march*",
            b("Women marched."),
            &[("body", "Women"), ("body", "marched")],
        ),
    ];
    for (q, ev, want) in table {
        assert_eq!(spans(q, ev), sp(want), "{q} on {ev}");
    }
}

// ---------------------------------------------------------------------------
// NEAR/s and ONEAR/s: within one sentence (UAX #29), never title to body.

#[test]
fn near_within_a_sentence() {
    let long = (0..150)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    run(&[
        (
            "Japan NEAR/s drill",
            b("Japan protested the drill. The navy left."),
            true,
        ),
        ("Japan NEAR/s drill", b("The drill angered Japan."), true),
        (
            "Japan NEAR/s drill",
            b("Seoul and Japan protested. The navy held a drill."),
            false,
        ),
        (
            "Japan NEAR/s drill",
            b("Japan protested! A drill followed"),
            false,
        ),
        (
            "Japan NEAR/s drill",
            b("Did Japan protest? A drill followed"),
            false,
        ),
        (
            "Japan NEAR/s drill",
            tb("Japan protested", "the drill"),
            false,
        ),
        (
            "Japan NEAR/s drill",
            tb("Japan protested", "Japan held a drill."),
            true,
        ),
        // the sentence, not the word count, is the limit
        ("alpha NEAR/s beta", b(&format!("alpha {long} beta.")), true),
        (
            "alpha NEAR/100 beta",
            b(&format!("alpha {long} beta.")),
            false,
        ),
        (
            "Lavrov ONEAR/s warned",
            b("Lavrov on Saturday warned Washington."),
            true,
        ),
        (
            "Lavrov ONEAR/s warned",
            b("Analysts warned that Lavrov would go."),
            false,
        ),
        (
            "Lavrov ONEAR/s warned",
            b("Lavrov left. Zakharova warned."),
            false,
        ),
        // one occurrence is not its own partner
        (
            "lavrov NEAR/s lavrov",
            b("Lavrov spoke. Lavrov left."),
            false,
        ),
        ("lavrov NEAR/s lavrov", b("Lavrov met Lavrov's aide."), true),
        // a phrase over a full stop is in no sentence
        (
            "\"Seoul Japan\" NEAR/s protested",
            b("They met in Seoul. Japan protested."),
            false,
        ),
        (
            "@ru_mfa NEAR/s $says",
            b("In Moscow, Zakharova said nothing new."),
            true,
        ),
        (
            "(Lavrov NEAR/2 said) NEAR/s Japan",
            b("Lavrov said it. Then Japan"),
            false,
        ),
        (
            "(Lavrov NEAR/2 said) NEAR/s Japan",
            b("Lavrov said Japan erred."),
            true,
        ),
        (
            "北朝鮮 NEAR/s 発射",
            b("北朝鮮は反発した。日本は発射を確認した。"),
            false,
        ),
        (
            "北朝鮮 NEAR/s 発射",
            b("北朝鮮がミサイルを発射した。"),
            true,
        ),
        (
            "Лавров NEAR/s заявил",
            b("Лавров прибыл. Захарова заявила."),
            false,
        ),
        (
            "Лавров NEAR/s заявил",
            b("Как заявил Лавров, визит состоится."),
            true,
        ),
        (
            "미국* NEAR/s 훈련*",
            b("미국은 항의했다. 한국은 훈련을 했다."),
            false,
        ),
        ("미국* NEAR/s 훈련*", b("미국은 훈련을 했다."), true),
    ]);
}

#[test]
fn near_within_a_sentence_spans() {
    let table: &[SpanRow] = &[
        // only the sentence where both occur gives spans
        (
            "Japan NEAR/s drill",
            b("Japan protested. Japan held a drill."),
            &[("body", "Japan"), ("body", "drill")],
        ),
        (
            "Lavrov ONEAR/s warned",
            b("Lavrov warned that Lavrov warned."),
            &[
                ("body", "Lavrov"),
                ("body", "warned"),
                ("body", "Lavrov"),
                ("body", "warned"),
            ],
        ),
    ];
    for (q, ev, want) in table {
        assert_eq!(spans(q, ev), sp(want), "{q} on {ev}");
    }
}

// ---------------------------------------------------------------------------
// Keyword comparisons and _exists_.

fn enriched() -> Value {
    json!({
        "id": "e1", "title": "x", "source": "wire",
        "published_at": "2026-07-12T09:00:00Z",
        "meta": {
            "sentiment": 0.7, "reach": 12000, "neg": -0.3, "label": "0.9",
            "updated": "2026-07-02T10:00:00+02:00", "none": null,
            "scores": [0.1, 0.95], "empty": [],
            "entities": [{"name": "Lavrov"}, {"kind": "org"}]
        }
    })
}

#[test]
fn keyword_comparisons_on_numbers() {
    let ev = enriched;
    run(&[
        ("x meta.sentiment:>0.5", ev(), true),
        ("x meta.sentiment:>0.7", ev(), false),
        ("x meta.sentiment:>=0.7", ev(), true),
        ("x meta.sentiment:<0.7", ev(), false),
        ("x meta.sentiment:<=0.7", ev(), true),
        ("x meta.neg:<=-0.3", ev(), true),
        ("x meta.neg:<-0.3", ev(), false),
        ("x meta.reach:[10000 TO 20000]", ev(), true),
        ("x meta.reach:[12000 TO 12000]", ev(), true),
        ("x meta.reach:[1 TO 11999]", ev(), false),
        ("x meta.reach:>1.2e4", ev(), false),
        // arrays match when any element does
        ("x meta.scores:>0.9", ev(), true),
        ("x meta.scores:>0.99", ev(), false),
        ("x meta.scores:[0.2 TO 0.9]", ev(), false),
        // missing, null and non-comparable values never match
        ("x meta.missing:>0", ev(), false),
        ("x meta.none:<1", ev(), false),
        ("x meta.label:>0.5", ev(), false),
        ("x meta.updated:>5", ev(), false),
        ("x meta.entities:>0", ev(), false),
        ("x NOT meta.missing:>0", ev(), true),
        ("x NOT meta.sentiment:<0.5", ev(), true),
        ("meta.sentiment:>0.5", ev(), true),
        ("x meta.sentiment:>0.5 OR meta.reach:<10", ev(), true),
    ]);
    check_rule("x", Some("meta.sentiment:>0.9"), &ev(), false);
    check_rule("x", Some("meta.sentiment:[0.5 TO 1]"), &ev(), true);
}

#[test]
fn keyword_comparisons_on_timestamps() {
    let ev = enriched;
    run(&[
        // 10:00+02:00 is 08:00Z: compared as instants
        ("x meta.updated:>=2026-07-02T08:00:00Z", ev(), true),
        ("x meta.updated:>2026-07-02T08:00:00Z", ev(), false),
        ("x meta.updated:<2026-07-02T08:00:00.001Z", ev(), true),
        (
            "x meta.updated:[2026-07-01T00:00:00Z TO 2026-07-03T00:00:00Z]",
            ev(),
            true,
        ),
        (
            "x meta.updated:[2026-07-02T10:00:00Z TO 2026-07-03T00:00:00Z]",
            ev(),
            false,
        ),
        ("x published_at:<2026-08-01T00:00:00Z", ev(), true),
        ("x published_at:>=2026-07-12T09:00:00+00:00", ev(), true),
        ("x published_at:>2026-07-12T11:00:00+02:00", ev(), false),
        // a number is not a timestamp, nor a timestamp a number
        ("x meta.sentiment:>2026-01-01T00:00:00Z", ev(), false),
        ("x source:>2026-01-01T00:00:00Z", ev(), false),
    ]);
}

#[test]
fn exists() {
    let ev = enriched;
    run(&[
        ("x _exists_:meta.sentiment", ev(), true),
        ("x _exists_:meta", ev(), true),
        ("x _exists_:meta.empty", ev(), true),
        ("x _exists_:meta.none", ev(), false),
        ("x _exists_:meta.missing", ev(), false),
        ("x _exists_:meta.sentiment.deeper", ev(), false),
        ("x _exists_:meta.entities.name", ev(), true),
        ("x _exists_:meta.entities.role", ev(), false),
        ("x _exists_:source", ev(), true),
        ("x _exists_:url", ev(), false),
        ("x NOT _exists_:meta.none", ev(), true),
        ("_exists_:meta.reach", ev(), true),
        ("x _exists_:lang", t("x"), false),
    ]);
}

// ---------------------------------------------------------------------------
// Errors, at their line and column (the query is on line 4 from column 13).

#[test]
fn errors_point_into_the_query() {
    let table = [
        ("a *an", 15, "at least 3 characters besides '*' and '?'"),
        ("w?m", 13, "at least 3 characters besides"),
        ("a ?*", 15, "at least 3 characters besides"),
        ("l*", 13, "at least 2 characters before '*'"),
        ("*a-b*", 13, "\"a-b\" is not one word"),
        ("U.S?", 13, "normalizes to \"us?\""),
        ("{wom?n}", 14, "cannot be case-sensitive"),
        ("a NEAR/S b", 15, "or NEAR/s for within one sentence"),
        ("x:>abc", 16, "bad comparison value \"abc\""),
        ("a x:<2026-02-30T00:00:00Z", 18, "RFC 3339"),
        ("x:[1 TO 2", 15, "unterminated range"),
        ("x:[3 TO 1]", 15, "empty range: 3 is greater than 1"),
        ("x:[1 TO 2026-07-01T00:00:00Z]", 15, "not one of each"),
        ("title:>3", 19, "needs a keyword field"),
        ("_exists_:", 13, "_exists_: needs a field name"),
        ("a NEAR/s _exists_:x", 22, "cannot be a NEAR operand"),
        ("source:(_exists_:x)", 20, "takes a value, not `_exists_:`"),
    ];
    for (q, col, msg) in table {
        let yaml = format!("rules:\n  - id: r\n    title: t\n    query: '{q}'\n");
        let errs = match rules::load_strs(vec![(PathBuf::from("t.yaml"), yaml)]) {
            Ok(_) => panic!("{q:?} loaded"),
            Err(e) => e.0,
        };
        assert!(
            errs.iter()
                .any(|d| d.line == 4 && d.col == col && d.message.contains(msg)),
            "{q:?}: expected 4:{col} {msg:?}, got {:?}",
            errs.iter()
                .map(|d| format!("{}:{} {}", d.line, d.col, d.message))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn list_entries_follow_the_same_minimum() {
    let yaml = "lists:\n  l: [ok, \"*an\"]\nrules:\n  - id: r\n    title: t\n    query: '@l'\n";
    let errs = match rules::load_strs(vec![(PathBuf::from("t.yaml"), yaml.into())]) {
        Ok(_) => panic!("a list entry `*an` loaded"),
        Err(e) => e.0,
    };
    assert!(
        errs.iter()
            .any(|d| d.line == 2 && d.message.contains("at least 3 characters besides")),
        "{errs:?}"
    );
}
