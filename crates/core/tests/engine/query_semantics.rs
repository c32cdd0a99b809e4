//! Query semantics, table by table, one table per statement of SPEC §5.
//!
//! Every row goes through the public pipeline: a rule file is loaded with
//! `rules::load_strs`, an event is decoded by the engine, and the alerts say
//! whether the rule matched. Every alert's `matches` are checked to be byte
//! ranges into the original field text.

use std::path::PathBuf;

use newswatch_core::alert::Alert;
use newswatch_core::event::EventFields;
use newswatch_core::matcher::Scratch;
use newswatch_core::{rules, Engine};
use serde_json::{json, Value};

/// Lists and macros shared by every row.
const PRELUDE: &str = r#"
lists:
  ru_mfa:
    - Lavrov
    - Zakharova
    - "Russian foreign ministry"
    - "Russia's foreign ministry"
    - Лавров
    - "МИД России"
  allies: [미국, 한국, 일본, "South Korea"]
  jp_mod: [防衛省, 自衛隊, "防衛大臣"]
  wires: [reuters.com, "ap.org", yonhap*]
  usa: ["{US}", "{U.S.}"]
  pre: [sanction*, санкци*]
  stans: ["*stan", "wom?n", "*훈련*을"]
macros:
  says: 'said OR says OR warned OR warns OR stated'
  ru_says: 'заявил OR заявила OR предупредил'
  ko_says: '밝혔다 OR 말했다'
  ja_says: '述べた OR 発表'
  mfa_says: '@ru_mfa NEAR/12 ($says OR $ru_says)'
  drills: 'exercise* OR drill* OR 훈련* OR 演習'
  either: 'alpha OR beta'
"#;

/// A rule file with one rule `r` holding `query` (and `filter`). JSON string
/// syntax is valid YAML double-quoted syntax, which keeps escaping simple.
fn rule_file(query: &str, filter: Option<&str>) -> String {
    let mut y = format!(
        "{PRELUDE}rules:\n  - id: r\n    title: test rule\n    query: {}\n",
        serde_json::to_string(query).unwrap()
    );
    if let Some(f) = filter {
        y.push_str(&format!(
            "    filter: {}\n",
            serde_json::to_string(f).unwrap()
        ));
    }
    y
}

fn engine(query: &str, filter: Option<&str>) -> Engine {
    let yaml = rule_file(query, filter);
    match rules::load_strs(vec![(PathBuf::from("t.yaml"), yaml)]) {
        Ok(rs) => Engine::new(rs, EventFields::default()),
        Err(e) => panic!("query {query:?} (filter {filter:?}) does not load:\n{e}"),
    }
}

/// The alerts of `ev`; every span is checked against the original text.
pub(crate) fn alerts(query: &str, filter: Option<&str>, ev: &Value) -> Vec<Alert> {
    let eng = engine(query, filter);
    let bytes = serde_json::to_vec(ev).unwrap();
    let decoded = eng
        .decode(&bytes)
        .unwrap_or_else(|e| panic!("event {ev} does not decode: {e}"));
    let out = eng.alerts(&decoded, &mut Scratch::new(), None);
    for a in &out {
        for m in &a.matches {
            let text = ev[m.field.as_str()]
                .as_str()
                .unwrap_or_else(|| panic!("span in missing field {:?}", m.field));
            let (s, e) = (m.start as usize, m.end as usize);
            assert!(s < e, "query {query:?}: empty span {m:?}");
            assert_eq!(
                text.get(s..e),
                Some(m.text.as_str()),
                "query {query:?}: span {m:?} is not a char-boundary range of {text:?}"
            );
        }
    }
    out
}

/// The one helper every table goes through.
pub(crate) fn check(query: &str, ev: &Value, expected: bool) {
    check_rule(query, None, ev, expected)
}

pub(crate) fn check_rule(query: &str, filter: Option<&str>, ev: &Value, expected: bool) {
    let got = !alerts(query, filter, ev).is_empty();
    assert_eq!(
        got,
        expected,
        "query {query:?} filter {filter:?} on event {ev}: expected {}",
        if expected { "a match" } else { "no match" }
    );
}

pub(crate) fn run(table: &[(&str, Value, bool)]) {
    for (q, ev, want) in table {
        check(q, ev, *want);
    }
}

/// An event with only a body.
pub(crate) fn b(body: &str) -> Value {
    json!({"id": "e1", "body": body})
}

/// An event with only a title.
pub(crate) fn t(title: &str) -> Value {
    json!({"id": "e1", "title": title})
}

/// An event with a title and a body.
pub(crate) fn tb(title: &str, body: &str) -> Value {
    json!({"id": "e1", "title": title, "body": body})
}

/// The matched spans as (field, text).
pub(crate) fn spans(query: &str, ev: &Value) -> Vec<(String, String)> {
    let a = alerts(query, None, ev);
    assert_eq!(a.len(), 1, "query {query:?} on {ev}: expected one alert");
    a[0].matches
        .iter()
        .map(|m| (m.field.clone(), m.text.clone()))
        .collect()
}

/// (query, event, expected spans as (field, text)).
pub(crate) type SpanRow<'a> = (&'a str, Value, &'a [(&'a str, &'a str)]);

pub(crate) fn sp(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Operators are upper case; lower-case and/or/not/near are ordinary words.

#[test]
fn operators_are_upper_case_only() {
    run(&[
        ("war AND peace", b("war and peace"), true),
        ("war AND peace", b("peace, then war"), true),
        ("war OR peace", b("only peace"), true),
        ("war NOT peace", b("war and peace"), false),
        // lower case: ordinary words that must occur
        ("war and peace", b("war and peace"), true),
        ("war and peace", b("war, peace"), false),
        ("war or peace", b("only peace"), false),
        ("war or peace", b("war or peace"), true),
        ("war not peace", b("war not peace"), true),
        ("war not peace", b("war peace"), false),
        ("war near peace", b("war near peace"), true),
        ("war near peace", b("war peace"), false),
        // mixed case is a word too
        ("war Or peace", b("only peace"), false),
        // Russian
        ("Лавров OR Захарова", b("Захарова заявила"), true),
        ("Лавров or Захарова", b("Захарова заявила"), false),
        ("Лавров NOT Захарова", b("Лавров и Захарова"), false),
        ("Лавров not Захарова", b("Лавров not Захарова"), true),
        // Korean
        ("미국 OR 일본", b("일본 정부"), true),
        ("미국 or 일본", b("일본 정부"), false),
        ("미국 AND 일본", b("미국 일본"), true),
        // Japanese
        ("ロシア OR 中国", b("中国の外交"), true),
        ("ロシア or 中国", b("中国の外交"), false),
        ("ロシア NOT 中国", b("ロシアと中国"), false),
    ]);
}

// ---------------------------------------------------------------------------
// Precedence: field scope > NEAR/ONEAR > NOT > AND > OR; juxtaposition = AND.

#[test]
fn precedence_and_binds_tighter_than_or() {
    run(&[
        // a OR b c == a OR (b AND c)
        ("alpha OR beta gamma", b("alpha"), true),
        ("alpha OR beta gamma", b("beta"), false),
        ("alpha OR beta gamma", b("beta gamma"), true),
        ("alpha OR beta AND gamma", b("beta"), false),
        ("alpha OR beta AND gamma", b("gamma alpha"), true),
        // a b OR c == (a AND b) OR c
        ("alpha beta OR gamma", b("alpha"), false),
        ("alpha beta OR gamma", b("gamma"), true),
        ("alpha beta OR gamma", b("beta alpha"), true),
        // juxtaposition is AND
        ("alpha beta", b("alpha"), false),
        ("alpha beta", b("beta ... alpha"), true),
        // parentheses override
        ("(alpha OR beta) gamma", b("beta"), false),
        ("(alpha OR beta) gamma", b("beta gamma"), true),
        // Russian
        ("Лавров OR Захарова заявила", b("Захарова"), false),
        ("Лавров OR Захарова заявила", b("Лавров"), true),
        // Korean
        ("북한 OR 미국 일본", b("미국"), false),
        ("북한 OR 미국 일본", b("일본 미국"), true),
        // Japanese
        ("北朝鮮 OR 米国 日本", b("米国"), false),
        ("北朝鮮 OR 米国 日本", b("北朝鮮"), true),
    ]);
}

#[test]
fn precedence_not_binds_tighter_than_and() {
    run(&[
        // NOT a b == (NOT a) AND b
        ("NOT alpha beta", b("beta"), true),
        ("NOT alpha beta", b("alpha beta"), false),
        // a NOT b OR c == (a AND NOT b) OR c
        ("alpha NOT beta OR gamma", b("alpha beta"), false),
        ("alpha NOT beta OR gamma", b("alpha beta gamma"), true),
        ("alpha NOT beta OR gamma", b("alpha"), true),
        // NOT applies to one operand only
        ("alpha NOT beta gamma", b("alpha gamma"), true),
        ("alpha NOT beta gamma", b("alpha beta gamma"), false),
        ("alpha NOT (beta gamma)", b("alpha beta"), true),
        ("alpha NOT (beta gamma)", b("alpha beta gamma"), false),
        // double negation
        ("alpha NOT NOT beta", b("alpha beta"), true),
        ("alpha NOT NOT beta", b("alpha"), false),
        // Russian / Korean / Japanese
        ("NOT спорт Лавров", b("Лавров о спорт"), false),
        ("NOT 스포츠 미국", b("미국 경제"), true),
        ("NOT 野球 米国", b("米国 野球"), false),
    ]);
}

#[test]
fn precedence_near_binds_tighter_than_not_and_and() {
    run(&[
        // x NOT a NEAR/2 b == x AND NOT (a NEAR/2 b)
        ("xx NOT alpha NEAR/2 beta", b("xx alpha beta"), false),
        // alpha and beta both occur, but 3 words apart: the NEAR is false, so NOT holds
        ("xx NOT alpha NEAR/2 beta", b("xx alpha w w w beta"), true),
        // a b NEAR/1 c == a AND (b NEAR/1 c)
        ("alpha beta NEAR/1 gamma", b("beta gamma"), false),
        ("alpha beta NEAR/1 gamma", b("alpha w w w beta gamma"), true),
        ("alpha beta NEAR/1 gamma", b("beta alpha w w gamma"), false),
        // a OR b NEAR/1 c == a OR (b NEAR/1 c)
        ("alpha OR beta NEAR/1 gamma", b("alpha"), true),
        ("alpha OR beta NEAR/1 gamma", b("gamma w w w beta"), false),
        // NEAR chains to the left: (a NEAR/1 b) NEAR/1 c
        (
            "alpha NEAR/1 beta NEAR/1 gamma",
            b("alpha beta w gamma"),
            true,
        ),
        (
            "alpha NEAR/1 beta NEAR/1 gamma",
            b("alpha beta w w gamma"),
            false,
        ),
        // Russian
        ("Лавров NEAR/2 заявил", b("Лавров в среду заявил"), true),
        (
            "мид NOT Лавров NEAR/1 заявил",
            b("мид Лавров заявил"),
            false,
        ),
        (
            "мид NOT Лавров NEAR/1 заявил",
            b("мид Лавров в среду заявил"),
            true,
        ),
        // Korean
        ("한국 NEAR/1 훈련", b("한국 합동 훈련"), true),
        ("한국 NEAR/1 훈련", b("한국 미국 합동 훈련"), false),
        // Japanese: ideographs are one word each, so 防衛省 is a 3-word phrase
        ("ロシア NEAR/1 防衛省", b("ロシアの防衛省"), true),
        ("ロシア NEAR/1 防衛省", b("ロシアは日本の防衛省"), false),
    ]);
}

#[test]
fn precedence_field_scope_binds_tightest() {
    run(&[
        // title:a b == (title:a) AND b — b may be anywhere
        ("title:alpha beta", tb("alpha", "beta"), true),
        ("title:alpha beta", tb("beta", "alpha"), false),
        // title:a NEAR/2 b == (title:a) NEAR/2 b: both in the title
        ("title:alpha NEAR/2 beta", tb("alpha w beta", ""), true),
        ("title:alpha NEAR/2 beta", tb("alpha", "alpha beta"), false),
        // title:(a OR b) scopes the whole group
        ("title:(alpha OR beta) gamma", tb("beta", "gamma"), true),
        ("title:(alpha OR beta) gamma", tb("gamma", "beta"), false),
        // a keyword scope takes only its primary
        (
            "lang:en alpha",
            json!({"id": 1, "lang": "en", "body": "alpha"}),
            true,
        ),
        (
            "lang:en alpha",
            json!({"id": 1, "lang": "ru", "body": "alpha"}),
            false,
        ),
        // Russian / Korean / Japanese
        ("title:Лавров заявил", tb("Лавров", "заявил"), true),
        ("title:Лавров заявил", tb("заявил", "Лавров"), false),
        ("title:미국 훈련", tb("미국", "훈련"), true),
        ("title:미국 훈련", tb("훈련", "미국"), false),
        ("title:米国 演習", tb("米国", "演習"), true),
        ("title:米国 演習", tb("演習", "米国"), false),
    ]);
}

// ---------------------------------------------------------------------------
// Whole words only.

#[test]
fn whole_words_only() {
    run(&[
        ("US", b("the bus is late"), false),
        ("US", b("use it"), false),
        ("US", b("USA and Canada"), false),
        ("US", b("thus"), false),
        ("US", b("US forces"), true),
        ("US", b("forces of the US."), true),
        ("US", b("(US)"), true),
        ("drill", b("drills"), false),
        ("drills", b("drill"), false),
        // Russian: no stemming, no substrings
        ("мир", b("мировой рынок"), false),
        ("мир", b("мир и война"), true),
        ("Лавров", b("Лаврова"), false),
        // Korean: a Hangul run is one word, particles included
        ("미국", b("미국과 일본"), false),
        ("미국", b("미국 정부는"), true),
        // Japanese: a katakana run is one word; kanji are single words
        ("ロシ", b("ロシア"), false),
        ("ロシア", b("ロシア軍"), true),
        ("軍", b("ロシア軍"), true),
    ]);
}

// ---------------------------------------------------------------------------
// Case and diacritics are ignored.

#[test]
fn case_and_diacritics_are_ignored() {
    run(&[
        ("lavrov", b("LAVROV"), true),
        ("LAVROV", b("lavrov"), true),
        ("LaVrOv", b("Lavrov"), true),
        ("cafe", b("Café"), true),
        ("café", b("CAFE"), true),
        // decomposed é in the text
        ("cafe", b("Cafe\u{301} society"), true),
        ("résumé", b("RESUME"), true),
        ("Zürich", b("zurich"), true),
        ("strasse", b("Straße"), true),
        ("Αθήνα", b("ΑΘΗΝΑ"), true),
        // NFKC: full-width letters, ligatures
        ("USA", b("ＵＳＡ"), true),
        ("ＵＳＡ", b("usa"), true),
        ("office", b("oﬃce"), true),
        // Russian: ё = е, case
        ("елка", b("Ёлка"), true),
        ("ёлка", b("ЕЛКА"), true),
        ("ЛАВРОВ", b("лавров"), true),
        ("ещё", b("еще"), true),
        // й is not a diacritic variant the text may lose... but SPEC says
        // remove combining marks, so й (и + breve) = и.
        ("Андрей", b("андреи"), true),
        // Korean: Hangul syllables decompose to jamo and recompose; no case
        ("미국", b("미국"), true),
        // Japanese: half-width katakana is NFKC'd to full-width
        ("カタカナ", b("ｶﾀｶﾅ"), true),
        ("ＮＨＫ", b("nhk"), true),
        // Kana voicing marks are kept on purpose (text.rs docs): ガ ≠ カ.
        // SPEC: "removal of combining marks" — read as diacritics, not kana.
        ("ガス", b("カス"), false),
        ("ガス", b("ガス"), true),
    ]);
}

// ---------------------------------------------------------------------------
// {…} is case-sensitive (after NFKC).

#[test]
fn braces_are_case_sensitive() {
    run(&[
        ("{US}", b("US troops"), true),
        ("{US}", b("us troops"), false),
        ("{US}", b("Us troops"), false),
        ("{US}", b("the U.S. troops"), true),
        ("{US}", b("bus"), false),
        ("{\"White House\"}", b("the White House said"), true),
        ("{\"White House\"}", b("the white house said"), false),
        ("{\"White House\"}", b("the WHITE HOUSE said"), false),
        ("{\"White House\"}", b("White, House"), true),
        ("{\"White House\"}", b("White big House"), false),
        // marks are kept: case-sensitive means the original letters
        ("{Café}", b("Café"), true),
        ("{Café}", b("Cafe"), false),
        // after NFKC
        ("{US}", b("ＵＳ"), true),
        // Russian
        ("{МИД}", b("МИД России"), true),
        ("{МИД}", b("мид России"), false),
        ("{\"МИД России\"}", b("МИД России"), true),
        ("{\"МИД России\"}", b("МИД РОССИИ"), false),
        // Korean / Japanese have no case: exact = the same word
        ("{미국}", b("미국 정부"), true),
        ("{ロシア}", b("ロシア軍"), true),
        // exact and normal terms combine
        ("{US} NEAR/2 troops", b("US troops"), true),
        ("{US} NEAR/2 troops", b("us troops"), false),
    ]);
}

// ---------------------------------------------------------------------------
// Dots inside a word vanish; apostrophes vanish; possessive 's dropped.

#[test]
fn dots_inside_words_vanish() {
    run(&[
        ("U.S.", b("US forces"), true),
        ("US", b("U.S. forces"), true),
        ("U.S.", b("u.s. forces"), true),
        ("US", b("the forces of the U.S."), true),
        ("U.S.", b("USA"), false),
        ("\"U.S. forces\"", b("US forces"), true),
        ("U.K.", b("the UK"), true),
        ("yonhap.co.kr", b("see yonhap.co.kr today"), true),
        // Russian abbreviations
        ("С.Ш.А.", b("США"), true),
        ("США", b("С.Ш.А."), true),
    ]);
}

#[test]
fn apostrophes_vanish_and_possessive_is_dropped() {
    run(&[
        ("Russia's", b("Russia warned"), true),
        ("russia", b("Russia's foreign ministry"), true),
        ("russia", b("Russia’s foreign ministry"), true),
        ("russia", b("RUSSIA'S foreign ministry"), true),
        ("Russia’s", b("russia"), true),
        (
            "\"Russia's foreign ministry\"",
            b("Russia foreign ministry"),
            true,
        ),
        (
            "\"Russian foreign ministry\"",
            b("Russia's foreign ministry"),
            false,
        ),
        ("dont", b("don't"), true),
        ("don't", b("dont"), true),
        ("O'Neill", b("ONeill"), true),
        ("oneill", b("O’Neill said"), true),
        // 's is dropped only at the end
        ("russias", b("Russia's"), false),
        // Korean / Japanese: no apostrophes in the script; the list entry
        // "Russia's foreign ministry" matches through @ru_mfa
        ("@ru_mfa", b("Russia’s Foreign Ministry"), true),
    ]);
}

// ---------------------------------------------------------------------------
// Hyphens split words: `three-way` is the phrase "three way".

#[test]
fn hyphens_split_words() {
    run(&[
        ("three-way", b("a three-way drill"), true),
        ("three-way", b("a three way drill"), true),
        ("three-way", b("a three—way drill"), true),
        ("three-way", b("a way three drill"), false),
        ("three-way", b("three of them, one way"), false),
        ("\"three way\"", b("three-way"), true),
        ("three", b("three-way"), true),
        ("way", b("three-way"), true),
        ("U.S.-Japan", b("US Japan"), true),
        ("trilateral", b("tri-lateral"), false),
        // Russian
        ("северо-запад", b("на северо-западе"), false),
        ("северо-запад", b("северо запад"), true),
        ("северо-западе", b("на северо-западе"), true),
        // Korean
        ("한-미", b("한 미 동맹"), true),
        // Japanese
        ("日-米", b("日米"), true),
    ]);
}

// ---------------------------------------------------------------------------
// word* prefixes.

#[test]
fn prefixes() {
    run(&[
        ("lavr*", b("Lavrov"), true),
        ("LAVR*", b("lavrov"), true),
        ("lavr*", b("avrov"), false),
        ("lavr*", b("Slavrov"), false),
        ("sanction*", b("sanction"), true),
        ("sanction*", b("sanctions"), true),
        ("sanction*", b("sanctio"), false),
        ("cafe*", b("Cafés"), true),
        ("us*", b("the U.S. said"), true),
        // a wildcard inside a phrase is a check error (query.rs error_table)
        ("foreign minist*", b("foreign minister"), true),
        ("three-wa*", b("three-way"), true),
        ("three-wa*", b("way three"), false),
        // Russian
        ("Лавр*", b("Лаврова"), true),
        ("санкци*", b("САНКЦИЯМИ"), true),
        ("санкци*", b("санкц"), false),
        // Korean: particles attached, so prefixes are the natural query
        ("미국*", b("미국과 일본"), true),
        ("미국*", b("대미국"), false),
        // Japanese
        ("ロシ*", b("ロシア"), true),
        ("ミサ*", b("北朝鮮のミサイル"), true),
        // prefixes inside NEAR and lists
        ("lavr* NEAR/2 warn*", b("Lavrov strongly warned"), true),
        ("@pre", b("new sanctions"), true),
        ("@pre", b("новые санкции"), true),
    ]);
}

// ---------------------------------------------------------------------------
// NEAR/n and ONEAR/n: at most n words between, either order (ONEAR: A first).

fn words(n: usize) -> String {
    (0..n)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn near_distance_boundaries() {
    for n in [1usize, 2, 3, 5, 12, 99, 100] {
        let q = format!("alpha NEAR/{n} beta");
        let oq = format!("alpha ONEAR/{n} beta");
        let within = words(n);
        let beyond = words(n + 1);
        // exactly n words between: matches, both orders
        check(&q, &b(&format!("alpha {within} beta")), true);
        check(&q, &b(&format!("beta {within} alpha")), true);
        check(&oq, &b(&format!("alpha {within} beta")), true);
        check(&oq, &b(&format!("beta {within} alpha")), false);
        // n+1 words between: no match
        check(&q, &b(&format!("alpha {beyond} beta")), false);
        check(&q, &b(&format!("beta {beyond} alpha")), false);
        check(&oq, &b(&format!("alpha {beyond} beta")), false);
    }
}

#[test]
fn near_semantics() {
    run(&[
        // adjacent
        ("alpha NEAR/1 beta", b("alpha beta"), true),
        ("alpha NEAR/1 beta", b("beta alpha"), true),
        ("alpha ONEAR/1 beta", b("beta alpha"), false),
        ("alpha ONEAR/1 beta", b("alpha beta"), true),
        // punctuation is not a word
        ("alpha NEAR/1 beta", b("alpha, — “x” — beta"), true),
        ("alpha NEAR/1 beta", b("alpha, — x — y — beta"), false),
        // any occurrence pair counts
        ("alpha NEAR/1 beta", b("alpha w w w beta w alpha"), true),
        ("alpha ONEAR/1 beta", b("beta w w alpha w beta"), true),
        // one occurrence cannot be both operands
        ("alpha NEAR/3 alpha", b("alpha"), false),
        ("alpha NEAR/3 alpha", b("alpha w alpha"), true),
        // phrases: distance counts from the phrase's edges
        (
            "\"foreign ministry\" NEAR/1 Lavrov",
            b("foreign ministry spokesman Lavrov"),
            true,
        ),
        (
            "\"foreign ministry\" NEAR/1 Lavrov",
            b("Lavrov of the foreign ministry"),
            false,
        ),
        (
            "\"foreign ministry\" NEAR/2 Lavrov",
            b("Lavrov of the foreign ministry"),
            true,
        ),
        // OR operands and nested NEARs
        (
            "(Lavrov OR Zakharova) NEAR/2 warned",
            b("Zakharova has warned"),
            true,
        ),
        (
            "(alpha NEAR/1 beta) ONEAR/1 gamma",
            b("beta alpha gamma"),
            true,
        ),
        (
            "(alpha NEAR/1 beta) ONEAR/1 gamma",
            b("gamma beta alpha"),
            false,
        ),
        // lists and macros as operands
        (
            "@ru_mfa NEAR/12 $says",
            b("Sergey Lavrov on Saturday warned Washington"),
            true,
        ),
        ("$mfa_says", b("МИД России в среду заявил"), true),
        ("$mfa_says", b("Lavrov alone"), false),
        // Russian
        ("Лавров ONEAR/3 заявил", b("Лавров в среду заявил"), true),
        ("Лавров ONEAR/3 заявил", b("заявил в среду Лавров"), false),
        ("Лавров NEAR/1 заявил", b("Лавров в среду заявил"), false),
        // Korean
        ("한국 NEAR/2 훈련*", b("한국 미국 일본 훈련을"), true),
        ("한국 NEAR/2 훈련*", b("한국 미국 일본 합동 훈련을"), false),
        ("북한 ONEAR/2 미사일", b("미사일 발사 북한"), false),
        // Japanese
        ("北朝鮮 NEAR/1 ミサイル", b("北朝鮮のミサイル発射"), true),
        ("北朝鮮 ONEAR/1 ミサイル", b("ミサイル発射と北朝鮮"), false),
        // 発 射 と are three words
        ("北朝鮮 NEAR/3 ミサイル", b("ミサイル発射と北朝鮮"), true),
        ("北朝鮮 NEAR/2 ミサイル", b("ミサイル発射と北朝鮮"), false),
    ]);
}

#[test]
fn phrases_and_near_never_span_title_to_body() {
    run(&[
        (
            "\"foreign ministry\"",
            tb("Russia's foreign", "ministry said"),
            false,
        ),
        ("\"foreign ministry\"", tb("x", "foreign ministry"), true),
        ("Lavrov NEAR/5 warned", tb("Lavrov", "warned"), false),
        ("Lavrov NEAR/5 warned", tb("Lavrov", "Lavrov warned"), true),
        ("Lavrov ONEAR/5 warned", tb("x Lavrov", "warned y"), false),
        ("$mfa_says", tb("Lavrov", "warned"), false),
        ("\"МИД России\"", tb("МИД", "России"), false),
        ("\"미국 정부\"", tb("미국", "정부"), false),
        ("防衛省", tb("防衛", "省"), false),
        ("防衛省", tb("防衛省", ""), true),
    ]);
}

// ---------------------------------------------------------------------------
// Text fields: title, body, text (either, the default).

#[test]
fn text_fields() {
    run(&[
        ("title:Lavrov", tb("Lavrov warns", "nothing"), true),
        ("title:Lavrov", tb("nothing", "Lavrov warns"), false),
        ("body:Lavrov", tb("Lavrov warns", "nothing"), false),
        ("body:Lavrov", tb("nothing", "Lavrov warns"), true),
        ("text:Lavrov", tb("Lavrov", "x"), true),
        ("text:Lavrov", tb("x", "Lavrov"), true),
        ("Lavrov", tb("x", "Lavrov"), true),
        (
            "title:\"foreign ministry\"",
            tb("the foreign ministry", ""),
            true,
        ),
        (
            "title:\"foreign ministry\"",
            tb("x", "the foreign ministry"),
            false,
        ),
        ("title:@ru_mfa", tb("x", "Lavrov"), false),
        ("title:@ru_mfa", tb("Zakharova", "x"), true),
        ("body:$says", tb("said", "x"), false),
        ("body:$says", tb("x", "said"), true),
        ("title:lavr*", tb("Lavrov", "x"), true),
        ("title:{US}", tb("US", "x"), true),
        ("title:{US}", tb("x", "US"), false),
        // events with only one of the fields
        ("title:Lavrov", b("Lavrov"), false),
        ("body:Lavrov", t("Lavrov"), false),
        // Russian / Korean / Japanese
        ("title:Лавров", tb("Лавров", "x"), true),
        ("body:Лавров", tb("Лавров", "x"), false),
        ("body:훈련*", tb("x", "합동 훈련을"), true),
        ("title:防衛省", tb("x", "防衛省"), false),
        ("body:防衛省", tb("x", "防衛省"), true),
    ]);
}

// ---------------------------------------------------------------------------
// Keyword fields.

#[test]
fn keyword_fields_by_name() {
    let ev = json!({
        "id": "a17", "title": "x", "source": "Yonhap.co.kr", "lang": "ko",
        "url": "https://en.yna.co.kr/view/AEN2026", "author": "Kim Tong-hyung",
    });
    run(&[
        ("x source:yonhap.co.kr", ev.clone(), true),
        ("x source:YONHAP.CO.KR", ev.clone(), true),
        ("x source:yonhap.co", ev.clone(), false),
        ("x source:co.kr", ev.clone(), false),
        ("x source:yonhap*", ev.clone(), true),
        ("x source:yonhap.co.*", ev.clone(), true),
        ("x source:yna*", ev.clone(), false),
        ("x lang:ko", ev.clone(), true),
        ("x lang:(en OR ko)", ev.clone(), true),
        ("x lang:(en OR ru)", ev.clone(), false),
        ("x NOT lang:ko", ev.clone(), false),
        ("x id:a17", ev.clone(), true),
        ("x id:A17", ev.clone(), true),
        ("x id:a1", ev.clone(), false),
        ("x url:https*", ev.clone(), true),
        (
            "x url:\"https://en.yna.co.kr/view/AEN2026\"",
            ev.clone(),
            true,
        ),
        // hyphens and spaces in values
        ("x author:\"kim tong-hyung\"", ev.clone(), true),
        ("x author:kim", ev.clone(), false),
        ("x author:kim*", ev.clone(), true),
        // a missing field never matches
        ("x region:asia", ev.clone(), false),
        ("x NOT region:asia", ev.clone(), true),
        // keyword-only queries
        ("source:yonhap.co.kr", ev.clone(), true),
        ("source:yonhap.co.kr OR lang:ru", ev.clone(), true),
        // a list under a keyword scope: its entries are values
        ("x source:@wires", ev.clone(), true),
        (
            "x source:@wires",
            json!({"id": 1, "title": "x", "source": "AP.org"}),
            true,
        ),
        (
            "x source:@wires",
            json!({"id": 1, "title": "x", "source": "ap.org.uk"}),
            false,
        ),
        // Russian / Korean / Japanese values compare ignoring case
        (
            "x source:ТАСС",
            json!({"id": 1, "title": "x", "source": "тасс"}),
            true,
        ),
        (
            "x source:тасс*",
            json!({"id": 1, "title": "x", "source": "ТАСС.ру"}),
            true,
        ),
        (
            "x source:연합뉴스",
            json!({"id": 1, "title": "x", "source": "연합뉴스"}),
            true,
        ),
        (
            "x source:연합",
            json!({"id": 1, "title": "x", "source": "연합뉴스"}),
            false,
        ),
        (
            "x source:共同通信",
            json!({"id": 1, "title": "x", "source": "共同通信"}),
            true,
        ),
        (
            "x source:\"NHK ワールド\"",
            json!({"id": 1, "title": "x", "source": "nhk ワールド"}),
            true,
        ),
        // only case is ignored for keyword values, not diacritics
        // (SPEC: "equal to it ignoring case")
        (
            "x source:cafe.fr",
            json!({"id": 1, "title": "x", "source": "café.fr"}),
            false,
        ),
    ]);
}

#[test]
fn keyword_fields_by_path_arrays_numbers_booleans() {
    let ev = json!({
        "id": 17, "title": "x",
        "tags": ["Politics", "military"],
        "meta": {"region": "Asia", "desk": {"name": "Seoul"}, "x-feed": "wire-1"},
        "entities": [{"kind": "person", "name": "Lavrov"}, {"kind": "org", "name": "MFA"}],
        "priority": 1, "score": 2.5, "breaking": true, "draft": false, "note": null,
        "nested": [[{"k": "deep"}]],
    });
    run(&[
        ("x tags:military", ev.clone(), true),
        ("x tags:politics", ev.clone(), true),
        ("x tags:sports", ev.clone(), false),
        ("x tags:mil*", ev.clone(), true),
        ("x meta.region:asia", ev.clone(), true),
        ("x meta.region:europe", ev.clone(), false),
        ("x meta.desk.name:seoul", ev.clone(), true),
        ("x meta.desk:seoul", ev.clone(), false),
        ("x meta.x-feed:wire-1", ev.clone(), true),
        ("x meta.missing.path:a", ev.clone(), false),
        ("x entities.name:lavrov", ev.clone(), true),
        ("x entities.kind:org", ev.clone(), true),
        ("x entities.kind:place", ev.clone(), false),
        ("x nested.k:deep", ev.clone(), true),
        // numbers and booleans compare by their JSON text
        ("x id:17", ev.clone(), true),
        ("x priority:1", ev.clone(), true),
        ("x priority:2", ev.clone(), false),
        ("x score:2.5", ev.clone(), true),
        ("x breaking:true", ev.clone(), true),
        ("x breaking:TRUE", ev.clone(), true),
        ("x breaking:false", ev.clone(), false),
        ("x draft:false", ev.clone(), true),
        // null is not the text "null"
        ("x note:null", ev.clone(), false),
        // an object is not a value
        ("x meta:asia", ev.clone(), false),
    ]);
}

// ---------------------------------------------------------------------------
// @lists and $macros.

#[test]
fn lists_are_ors_of_terms_and_phrases() {
    run(&[
        ("@ru_mfa", b("Zakharova said"), true),
        ("@ru_mfa", b("LAVROV"), true),
        ("@ru_mfa", b("the Russian Foreign Ministry said"), true),
        ("@ru_mfa", b("Russian ministry of foreign affairs"), false),
        ("@ru_mfa", b("Russia's foreign ministry"), true),
        ("@ru_mfa", b("foreign ministry"), false),
        ("@ru_mfa", b("Сергей Лавров"), true),
        ("@ru_mfa", b("в МИД России"), true),
        ("@ru_mfa", b("МИД"), false),
        ("@allies", b("미국 정부"), true),
        ("@allies", b("South Korea"), true),
        ("@allies", b("south"), false),
        ("@jp_mod", b("防衛省は"), true),
        ("@jp_mod", b("防衛大臣"), true),
        ("@jp_mod", b("防衛"), false),
        // case-sensitive entries
        ("@usa", b("US troops"), true),
        ("@usa", b("U.S. troops"), true),
        ("@usa", b("us troops"), false),
        // a list in an AND / NOT
        ("@ru_mfa NOT Zakharova", b("Lavrov and Zakharova"), false),
        ("@ru_mfa NOT Zakharova", b("Lavrov alone"), true),
    ]);
}

#[test]
fn macros_behave_as_if_parenthesised() {
    run(&[
        // Lavrov $says == Lavrov AND (said OR ...), not (Lavrov AND said) OR ...
        ("Lavrov $says", b("warned"), false),
        ("Lavrov $says", b("Lavrov warned"), true),
        ("$either gamma", b("alpha"), false),
        ("$either gamma", b("alpha gamma"), true),
        // NOT $m negates the whole macro
        ("xx NOT $either", b("xx beta"), false),
        ("xx NOT $either", b("xx"), true),
        // macros in NEAR, in field scopes, nested in macros
        ("Lavrov NEAR/2 $says", b("Lavrov has warned"), true),
        ("title:$either", tb("x", "alpha"), false),
        ("title:$either", tb("alpha", "x"), true),
        ("$mfa_says", b("Zakharova said"), true),
        ("$mfa_says", b("Лавров заявил"), true),
        ("$mfa_says", b("Захарова заявила"), false), // only Latin Zakharova is listed
        ("$drills", b("joint exercises"), true),
        ("$drills", b("합동 훈련을"), true),
        ("$drills", b("日米共同演習"), true),
        ("$drills", b("exercise"), true),
        ("미국 $ko_says", b("미국 정부가 밝혔다"), true),
        ("미국 $ko_says", b("밝혔다"), false),
        ("防衛省 $ja_says", b("防衛省が述べた"), true),
        ("防衛省 $ja_says", b("防衛省が述べ"), false),
    ]);
}

// ---------------------------------------------------------------------------
// `filter` must also hold.

#[test]
fn filter_must_also_hold() {
    let table: &[(&str, &str, Value, bool)] = &[
        (
            "Lavrov",
            "lang:en",
            json!({"id": 1, "body": "Lavrov", "lang": "en"}),
            true,
        ),
        (
            "Lavrov",
            "lang:en",
            json!({"id": 1, "body": "Lavrov", "lang": "ru"}),
            false,
        ),
        (
            "Lavrov",
            "lang:en",
            json!({"id": 1, "body": "Lavrov"}),
            false,
        ),
        (
            "Lavrov",
            "NOT source:example.com",
            json!({"id": 1, "body": "Lavrov", "source": "example.com"}),
            false,
        ),
        (
            "Lavrov",
            "NOT source:example.com",
            json!({"id": 1, "body": "Lavrov", "source": "tass.ru"}),
            true,
        ),
        (
            "Lavrov",
            "lang:(en OR ru) NOT source:example.com",
            json!({"id": 1, "body": "Lavrov", "lang": "ru", "source": "tass.ru"}),
            true,
        ),
        // text in the filter
        (
            "Lavrov",
            "NOT sport*",
            b("Lavrov at the sports forum"),
            false,
        ),
        ("Lavrov", "title:Lavrov", tb("x", "Lavrov"), false),
        ("Lavrov", "title:Lavrov", tb("Lavrov", "x"), true),
        (
            "Лавров",
            "lang:ru",
            json!({"id": 1, "body": "Лавров", "lang": "RU"}),
            true,
        ),
        (
            "미국*",
            "source:연합뉴스",
            json!({"id": 1, "body": "미국과", "source": "연합뉴스"}),
            true,
        ),
        (
            "防衛省",
            "NOT source:共同通信",
            json!({"id": 1, "body": "防衛省", "source": "共同通信"}),
            false,
        ),
    ];
    for (q, f, ev, want) in table {
        check_rule(q, Some(f), ev, *want);
    }
}

// ---------------------------------------------------------------------------
// `matches`: byte offsets into the original text; never from a NOT branch.

#[test]
fn spans_are_offsets_into_the_original_text() {
    let table: &[SpanRow] = &[
        (
            "Lavrov",
            b("Sergey Lavrov on Saturday"),
            &[("body", "Lavrov")],
        ),
        // the whole original word, possessive included
        (
            "Lavrov",
            b("Sergey Lavrov’s warning"),
            &[("body", "Lavrov’s")],
        ),
        ("US", b("the U.S. said"), &[("body", "U.S")]),
        ("USA", b("ＵＳＡ"), &[("body", "ＵＳＡ")]),
        ("cafe", b("Cafe\u{301}!"), &[("body", "Cafe\u{301}")]),
        (
            "\"foreign ministry\"",
            tb("The Foreign  Ministry", "x"),
            &[("title", "Foreign  Ministry")],
        ),
        (
            "three-way",
            b("a three-way drill"),
            &[("body", "three-way")],
        ),
        ("lavr*", b("Лавров and Lavrova"), &[("body", "Lavrova")]),
        // NEAR reports both operands, not the words between them
        (
            "Lavrov NEAR/5 warned",
            b("Lavrov on Saturday warned"),
            &[("body", "Lavrov"), ("body", "warned")],
        ),
        // OR reports every true branch, in text order
        (
            "warned OR Lavrov",
            b("Lavrov warned"),
            &[("body", "Lavrov"), ("body", "warned")],
        ),
        // title and body
        (
            "Lavrov",
            tb("Lavrov", "Lavrov"),
            &[("title", "Lavrov"), ("body", "Lavrov")],
        ),
        // Russian, Korean, Japanese: multi-byte offsets
        ("Лавров", b("Сергей Лавров заявил"), &[("body", "Лавров")]),
        (
            "\"МИД России\"",
            b("В МИД России"),
            &[("body", "МИД России")],
        ),
        ("미국*", b("한국과 미국과 일본"), &[("body", "미국과")]),
        ("防衛省", b("日本の防衛省は"), &[("body", "防衛省")]),
        (
            "ミサイル NEAR/1 北朝鮮",
            b("北朝鮮のミサイル"),
            &[("body", "北朝鮮"), ("body", "ミサイル")],
        ),
    ];
    for (q, ev, want) in table {
        assert_eq!(spans(q, ev), sp(want), "query {q:?} on {ev}");
    }
}

#[test]
fn spans_never_come_from_a_not_branch_or_a_false_branch() {
    let table: &[SpanRow] = &[
        // the double negation is true, but it is still a NOT branch
        (
            "Lavrov NOT NOT Blinken",
            b("Lavrov met Blinken"),
            &[("body", "Lavrov")],
        ),
        // a false AND inside a true OR leaves nothing behind
        (
            "Lavrov OR (Putin NOT Blinken)",
            b("Lavrov Putin Blinken"),
            &[("body", "Lavrov")],
        ),
        (
            "Lavrov OR (Putin Xi)",
            b("Lavrov Putin"),
            &[("body", "Lavrov")],
        ),
        (
            "Lavrov OR (Putin NEAR/1 Xi)",
            b("Lavrov Putin w w Xi"),
            &[("body", "Lavrov")],
        ),
        (
            "Лавров NOT NOT Захарова",
            b("Лавров Захарова"),
            &[("body", "Лавров")],
        ),
        ("미국 NOT NOT 일본", b("미국 일본"), &[("body", "미국")]),
        (
            "防衛省 NOT NOT 米国",
            b("米国防衛省"),
            &[("body", "防衛省")],
        ),
        // keyword clauses have no text span
        (
            "Lavrov lang:en",
            json!({"id": 1, "body": "Lavrov", "lang": "en"}),
            &[("body", "Lavrov")],
        ),
    ];
    for (q, ev, want) in table {
        assert_eq!(spans(q, ev), sp(want), "query {q:?} on {ev}");
    }
    // The filter's spans are not the query's.
    let a = alerts("Lavrov", Some("title:Putin"), &tb("Putin", "Lavrov"));
    assert_eq!(a.len(), 1);
    let got: Vec<_> = a[0].matches.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(got, ["Lavrov"]);
}

#[test]
fn keyword_only_match_has_no_spans_but_a_snippet() {
    let a = alerts(
        "source:tass.ru",
        None,
        &json!({"id": 1, "title": "Title here", "body": "b", "source": "tass.ru"}),
    );
    assert_eq!(a.len(), 1);
    assert!(a[0].matches.is_empty());
    assert_eq!(a[0].snippet, "Title here");
}

#[test]
fn keyword_values_with_colons_are_quoted() {
    let ev = json!({"id": 1, "title": "x", "url": "https://tass.ru/a?b=1", "time": "10:30"});
    run(&[
        ("x url:\"https://tass.ru/a?b=1\"", ev.clone(), true),
        ("x url:\"HTTPS://TASS.RU/A?B=1\"", ev.clone(), true),
        ("x url:\"https://tass.ru/\"", ev.clone(), false),
        ("x url:https*", ev.clone(), true),
        ("x time:\"10:30\"", ev.clone(), true),
    ]);
    // Unquoted, `url:https://…` is refused by check (see tests/it/cli.rs).
    let yaml = rule_file("x url:https://tass.ru/a", None);
    assert!(rules::load_strs(vec![(PathBuf::from("t.yaml"), yaml)]).is_err());
}
