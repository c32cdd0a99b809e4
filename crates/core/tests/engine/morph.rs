//! `~word` and `~"phrase"` (SPEC §5) and language detection (SPEC §3),
//! through the public pipeline: one table of query / text / matches? rows
//! per language, then the language's source (the event's `lang`, its
//! primary subtag, detection), `check` errors, `explain`, and property
//! tests that `~` never panics on text of any script.

use std::path::PathBuf;

use newswatch_core::event::{Event, EventFields};
use newswatch_core::matcher::Scratch;
use newswatch_core::{rules, Engine};
use proptest::prelude::*;
use serde_json::{json, Value};

fn engine(query: &str, filter: Option<&str>) -> Engine {
    let mut y = format!(
        "lists:\n  mfa: [~Лавров, ~Захарова, ~\"министерство иностранных дел\"]\n\
         rules:\n  - id: r\n    title: t\n    query: {}\n",
        serde_json::to_string(query).unwrap()
    );
    if let Some(f) = filter {
        y.push_str(&format!(
            "    filter: {}\n",
            serde_json::to_string(f).unwrap()
        ));
    }
    match rules::load_strs(vec![(PathBuf::from("t.yaml"), y)]) {
        Ok(rs) => Engine::new(rs, EventFields::default()),
        Err(e) => panic!("query {query:?} does not load:\n{e}"),
    }
}

fn decode(eng: &Engine, ev: &Value) -> Event {
    eng.decode(&serde_json::to_vec(ev).unwrap())
        .unwrap_or_else(|e| panic!("{ev} does not decode: {e}"))
}

fn matches(eng: &Engine, ev: &Value) -> bool {
    let decoded = decode(eng, ev);
    !eng.alerts(&decoded, &mut Scratch::new(), None).is_empty()
}

/// Rows of (query, body, matches?) for events whose `lang` is `lang`.
fn run(lang: &str, table: &[(&str, &str, bool)]) {
    for (q, body, want) in table {
        let eng = engine(q, None);
        let ev = json!({"id": "e", "body": body, "lang": lang});
        assert_eq!(
            matches(&eng, &ev),
            *want,
            "lang {lang}: query {q:?} on {body:?}: expected {}",
            if *want { "a match" } else { "no match" }
        );
    }
}

#[test]
fn russian() {
    run(
        "ru",
        &[
            ("~Лавров", "Заявление Лаврова", true),
            ("~Лавров", "встреча с Лавровым", true),
            ("~Лавров", "Сергей Лавров заявил", true),
            ("~Лавров", "письмо Лаврову", true),
            ("~Лавров", "Лавренко заявил", false),
            ("~Захарова", "по словам Захаровой", true),
            ("~заявить", "Лавров заявил", true),
            ("~заявил", "Лавров заявил", true),
            ("~учения", "в ходе учений", true),
            ("~учения", "об учениях", true),
            ("~учения", "учитель", false),
            (
                "~\"министерство иностранных дел\"",
                "министерством иностранных дел России",
                true,
            ),
            (
                "~\"министерство иностранных дел\"",
                "министерство обороны",
                false,
            ),
            ("~дипведомство", "в дипведомстве заявили", true),
            (
                "@mfa NEAR/5 ~заявил",
                "по словам Захаровой, она заявила",
                true,
            ),
            (
                "@mfa NEAR/5 ~заявил",
                "Захарова ранее в интервью газете и на брифинге не заявила",
                false,
            ),
            ("@mfa NEAR/5 ~заявление", "в заявлении Захаровой", true),
            // a plain word stays exact
            ("Лавров", "Заявление Лаврова", false),
            ("~Лавров", "ЛАВРОВА", true),
            ("~\"Южная Корея\"", "сил Южной Кореи", true),
            ("~Корея", "Кореи", true),
            ("~Южная", "Южной", true),
        ],
    );
}

#[test]
fn english() {
    run(
        "en",
        &[
            ("~exercise", "joint exercises", true),
            ("~exercise", "the navy exercised", true),
            ("~exercise", "exercising", true),
            ("~exercise", "exertion", false),
            ("~drill", "drills off Jeju", true),
            ("~\"joint drill\"", "the joint drills began", true),
            ("~\"joint drill\"", "joint naval drills", false),
            ("~ministry", "the ministries", true),
            ("exercise", "joint exercises", false),
            ("~state", "a statement", false),
        ],
    );
}

#[test]
fn german_french_spanish() {
    run(
        "de",
        &[
            ("~Übung", "gemeinsame Übungen", true),
            ("~Manöver", "bei den Manövern", true),
            ("~Ministerium", "des Ministeriums", true),
            ("~Übung", "Überlegung", false),
        ],
    );
    run(
        "fr",
        &[
            ("~exercice", "des exercices conjoints", true),
            ("~ministère", "les ministères", true),
            ("~exercice", "exécution", false),
        ],
    );
    run(
        "es",
        &[
            ("~ejercicio", "los ejercicios conjuntos", true),
            ("~ministerio", "ministerios", true),
            ("~ejercicio", "ejército", false),
        ],
    );
}

#[test]
fn korean() {
    run(
        "ko",
        &[
            ("~라브로프", "라브로프는 말했다", true),
            ("~라브로프", "라브로프도 참석했다", true),
            ("~라브로프", "라브로프에게 전달했다", true),
            ("~라브로프", "라브로프와 회담", true),
            ("~라브로프", "라브로", false),
            ("~훈련", "연합 훈련을 실시했다", true),
            ("~훈련", "훈련에서는", true),
            ("~훈련", "훈련했다고", true),
            ("~훈련", "훈장", false),
            ("~\"연합 훈련\"", "한미일 연합 훈련이 시작됐다", true),
            ("~외무장관", "러시아 외무장관은", true),
            ("~국가", "국가는", true),
            ("~국가", "국", false),
            // a plain word stays exact
            ("라브로프", "라브로프도", false),
        ],
    );
}

#[test]
fn japanese_keeps_character_phrases() {
    // No Japanese analyzer: `~word` is `word`, matched as today.
    run(
        "ja",
        &[
            ("~演習", "日米韓の共同演習", true),
            ("~ラブロフ", "ラブロフ外相", true),
            ("~演習", "演説", false),
        ],
    );
}

#[test]
fn without_a_language_a_tilde_word_is_the_word() {
    run(
        "xx",
        &[
            ("~exercise", "exercise", true),
            ("~exercise", "exercises", false),
        ],
    );
    // too little text to detect anything
    let eng = engine("~exercise", None);
    assert!(matches(&eng, &json!({"id": "e", "title": "exercise"})));
    assert!(!matches(
        &eng,
        &json!({"id": "e", "title": "exercises 2026"})
    ));
}

#[test]
fn the_primary_subtag_names_the_language() {
    run("en-GB", &[("~exercise", "exercises", true)]);
    run("ru-RU", &[("~Лавров", "Лаврова", true)]);
    run("ko_KR", &[("~훈련", "훈련을", true)]);
}

const RU_BODY: &str = "Министр иностранных дел России Сергей Лавров заявил во вторник, что \
                       совместные учения будут иметь последствия для безопасности региона. \
                       По словам Лаврова, Москва внимательно следит за ситуацией.";

#[test]
fn detection_stands_in_for_a_missing_lang() {
    let ev = json!({"id": "e", "body": RU_BODY});
    assert!(matches(&engine("~учение", None), &ev));
    assert!(matches(&engine("~Лавров", Some("lang:ru")), &ev));
    assert!(!matches(&engine("~Лавров", Some("lang:en")), &ev));
    assert!(matches(&engine("Лавров", Some("lang:ru")), &ev));
    assert!(matches(&engine("Лавров", Some("NOT lang:en")), &ev));
    // the event's own lang wins, even when the text says otherwise
    let labelled = json!({"id": "e", "body": RU_BODY, "lang": "en"});
    assert!(!matches(&engine("Лавров", Some("lang:ru")), &labelled));
    assert!(!matches(&engine("~учение", None), &labelled));
}

#[test]
fn alerts_show_the_events_own_lang_never_the_detected_one() {
    let eng = engine("~Лавров", Some("lang:ru*"));
    for (ev, want) in [
        (json!({"id": "e", "body": RU_BODY}), Value::Null),
        (
            json!({"id": "e", "body": RU_BODY, "lang": "ru-RU"}),
            json!("ru-RU"),
        ),
    ] {
        let decoded = decode(&eng, &ev);
        let alerts = eng.alerts(&decoded, &mut Scratch::new(), None);
        assert_eq!(alerts.len(), 1, "{ev}");
        let payload: Value = serde_json::to_value(&alerts[0]).unwrap();
        assert_eq!(payload["event"]["lang"], want, "{payload}");
    }
}

#[test]
fn check_refuses_tilde_with_wildcards_and_braces() {
    for (q, col) in [
        ("~лавр*", 1),
        ("a ~wom?n", 3),
        ("~{US}", 1),
        ("title:~{US}", 7),
        ("source:~tass", 8),
        ("~@mfa", 1),
    ] {
        let y = format!("lists:\n  mfa: [x]\nrules:\n  - id: r\n    title: t\n    query: '{q}'\n");
        let err = match rules::load_strs(vec![(PathBuf::from("t.yaml"), y)]) {
            Ok(_) => panic!("{q:?} loaded"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains('~'), "{q:?}: {err}");
        assert!(err.contains(&format!(":6:{}", 12 + col)), "{q:?}: {err}");
    }
    for entry in ["~лавр*", "~{US}", "~\"a b*\""] {
        let y = format!(
            "lists:\n  mfa: ['{entry}']\nrules:\n  - id: r\n    title: t\n    query: '@mfa'\n"
        );
        assert!(
            rules::load_strs(vec![(PathBuf::from("t.yaml"), y)]).is_err(),
            "{entry:?}"
        );
    }
}

#[test]
fn explain_shows_stems_and_forms() {
    let eng = engine("~Лавров NEAR/5 ~заявил", None);
    let ev = decode(
        &eng,
        &json!({"id": "e", "body": "Лавровым заявлено, Лаврова не было", "lang": "ru"}),
    );
    let (q, _) = eng.rules.matcher.explain(0, &ev);
    let near = &q;
    let lav = near.children[0].morph.as_ref().expect("a ~ note");
    assert_eq!(lav.lang, Some("ru"));
    assert_eq!(lav.stems, [vec!["лавров".to_owned(), "лавр".to_owned()]]);
    assert_eq!(lav.forms, ["Лавровым", "Лаврова"]);
    assert_eq!(near.children[0].kind, "~term");
}

fn any_script_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,80}",
        prop::collection::vec(
            prop::sample::select(
                &[
                    "Лаврова",
                    "라브로프도",
                    "훈련했다고",
                    "은",
                    "이",
                    "ラブロフ",
                    "演習",
                    "exercises",
                    "Übungen",
                    "ministères",
                    "ejército",
                    "ﬃ",
                    "İ",
                    "ß",
                    "Σ",
                    "\u{301}",
                    "\u{0}",
                    "🙂",
                    "مناورات",
                    "ασκήσεις",
                    "பயிற்சி",
                    "tatbikatları",
                    "x이",
                    "가",
                ][..]
            ),
            0..30
        )
        .prop_map(|v| v.join(" ")),
    ]
}

fn tilde_engine() -> Engine {
    let y = "rules:\n  - id: r\n    title: t\n    query: '~Лавров OR ~라브로프 OR ~exercise OR \
             ~\"joint drill\" OR ~演習 OR ~가 OR ~은이 OR ~x OR ~مناورة OR ~άσκηση'\n";
    let rs = rules::load_strs(vec![(PathBuf::from("t.yaml"), y.to_owned())]).expect("loads");
    Engine::new(rs, EventFields::default())
}

const LANGS: &[&str] = &[
    "", "en", "ru", "de", "fr", "es", "ko", "ja", "ar", "el", "ta", "tr", "fi", "hu", "xx", "ko-",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn tilde_never_panics_on_any_script(
        title in any_script_text(),
        body in any_script_text(),
        lang in prop::sample::select(LANGS),
    ) {
        let eng = tilde_engine();
        let mut ev = json!({"id": "e", "title": title, "body": body});
        if !lang.is_empty() {
            ev["lang"] = json!(lang);
        }
        if let Ok(decoded) = eng.decode(&serde_json::to_vec(&ev).unwrap()) {
            let alerts = eng.alerts(&decoded, &mut Scratch::new(), None);
            for a in &alerts {
                for m in &a.matches {
                    let text = ev[m.field.as_str()].as_str().unwrap_or("");
                    prop_assert_eq!(text.get(m.start as usize..m.end as usize), Some(m.text.as_str()));
                }
            }
            let _ = eng.rules.matcher.explain(0, &decoded);
        }
    }

    #[test]
    fn tilde_queries_never_panic(word in "\\PC{1,12}", lang in prop::sample::select(LANGS)) {
        // any word after `~`: it loads, or is refused with an error
        let q = format!("~{}", word.replace(['\'', '\n'], ""));
        let y = format!("rules:\n  - id: r\n    title: t\n    query: {}\n", serde_json::to_string(&q).unwrap());
        if let Ok(rs) = rules::load_strs(vec![(PathBuf::from("t.yaml"), y)]) {
            let eng = Engine::new(rs, EventFields::default());
            let ev = json!({"id": "e", "body": word, "lang": lang});
            if let Ok(decoded) = eng.decode(&serde_json::to_vec(&ev).unwrap()) {
                let _ = eng.alerts(&decoded, &mut Scratch::new(), None);
            }
        }
    }
}
