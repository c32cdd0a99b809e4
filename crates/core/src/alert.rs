//! The alert payload (SPEC §8): schema `newswatch.alert.v1`.
//!
//! `alert_id` is a hash of the rule id, the group and the triggering event's
//! id, nothing else, so `run` after a restart and `replay` give the same id
//! and subscribers can drop duplicates by it.
//!
//! An alert is at most [`MAX_ALERT_BYTES`] serialized (SPEC §8), whatever
//! the event: [`Alert::fit`] keeps at most [`MAX_MATCHES`] matches (counting
//! the rest in `matches_omitted`), cuts the event title and the snippet, and
//! then, only while the alert is still too large, cuts every other string
//! and finally drops entries. A 975 KB event naming Lavrov 75,000 times
//! gave a 4.2 MB alert that the producer refused forever; it now gives
//! 27 KB (with a 10 KB source and url, which fit and so stay whole). Cutting never touches `alert_id`, which is computed first.
//!
//! Building is on the hot path: with many rules most articles yield dozens
//! of alerts. So what an event's alerts share is computed once per event
//! ([`EventParts`]: id text, times, the `event` object, snippets), and
//! [`Alert::fit`] proves the size with a bound from string lengths
//! ([`Alert::size_bound`]) before it serializes anything. Neither changes a
//! byte of the payload (`benches/alerts.rs` checks against building each
//! alert on its own).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::event::{format_time, Event};
use crate::matcher::{field_name, Match, TextSpan, TITLE};
use crate::rules::Rule;

pub const SCHEMA: &str = "newswatch.alert.v1";

/// The most bytes a serialized alert may take (SPEC §8).
pub const MAX_ALERT_BYTES: usize = 64 * 1024;
/// The most `matches` an alert lists; the rest are counted in `matches_omitted`.
pub const MAX_MATCHES: usize = 100;
/// The event title is cut at this many characters (`…` included).
pub const MAX_TITLE_CHARS: usize = 1_000;
/// The snippet is cut at this many characters (`…` included).
pub const MAX_SNIPPET_CHARS: usize = 300;
/// While an alert is still over [`MAX_ALERT_BYTES`], every other string
/// (rule title and label values, event id, source, url, lang, group values,
/// match texts, sources, and title and snippet again) is cut to each of
/// these lengths in turn. With every string at 100 characters only the
/// number of entries can still be too large; those are dropped last.
const FIELD_CAPS: [usize; 2] = [1_000, 100];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub id: Value,
    pub title: Option<String>,
    pub source: Option<String>,
    pub url: Option<String>,
    pub lang: Option<String>,
    pub published_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertMatch {
    pub field: String,
    pub start: u32,
    pub end: u32,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Story {
    pub id: String,
    pub events: u64,
}

/// One alert, serialized with the field order of SPEC §8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub schema: String,
    pub alert_id: String,
    pub rule: AlertRule,
    pub mode: String,
    pub group: BTreeMap<String, Value>,
    pub event_time: Option<String>,
    pub event: AlertEvent,
    pub matches: Vec<AlertMatch>,
    /// Matches left out of `matches` to bound the alert's size. Records
    /// written before it existed read as 0.
    #[serde(default)]
    pub matches_omitted: u64,
    pub snippet: String,
    pub story: Option<Story>,
    pub count: Option<u64>,
    pub sources: Option<Vec<String>>,
    /// `spike`: the average matches per window over the baseline period.
    /// Match records written before it existed read as null.
    #[serde(default)]
    pub baseline: Option<f64>,
    pub suppressed: u64,
}

/// Cut `s` to at most `max` characters, the last of them `…`, on a char
/// boundary. Returns whether it was cut.
pub fn cut(s: &mut String, max: usize) -> bool {
    // A string of at most `max` bytes has at most `max` characters.
    if s.len() <= max || s.chars().count() <= max {
        return false;
    }
    let keep = max.saturating_sub(1);
    let at = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    s.truncate(at);
    if max > 0 {
        s.push('…');
    }
    true
}

/// An `io::Write` that only counts, to measure an alert without building it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Alert {
    /// The length of the alert's JSON serialization in bytes.
    pub fn serialized_len(&self) -> usize {
        let mut c = Counter(0);
        // Serializing these types cannot fail (string keys, no maps of
        // non-string keys); a failure would be counted as empty.
        let _ = serde_json::to_writer(&mut c, self);
        c.0
    }

    /// Bound the alert to [`MAX_ALERT_BYTES`] (see the module docs). Call it
    /// again after filling in fields that can grow (`sources`).
    pub fn fit(&mut self) {
        if self.matches.len() > MAX_MATCHES {
            self.matches_omitted += (self.matches.len() - MAX_MATCHES) as u64;
            self.matches.truncate(MAX_MATCHES);
        }
        if let Some(t) = &mut self.event.title {
            cut(t, MAX_TITLE_CHARS);
        }
        cut(&mut self.snippet, MAX_SNIPPET_CHARS);
        // Nearly every alert is far below the limit: a bound computed from
        // string lengths proves it without serializing the alert.
        if self.size_bound() <= MAX_ALERT_BYTES {
            return;
        }
        for cap in FIELD_CAPS {
            if self.serialized_len() <= MAX_ALERT_BYTES {
                return;
            }
            self.each_string(|s| {
                cut(s, cap);
            });
        }
        // Only many entries are left: drop half of the longest list at a
        // time, matches first (they are counted), then sources, labels and
        // group values.
        while self.serialized_len() > MAX_ALERT_BYTES {
            if !self.matches.is_empty() {
                let drop = self.matches.len().div_ceil(2);
                self.matches.truncate(self.matches.len() - drop);
                self.matches_omitted += drop as u64;
            } else if let Some(s) = self.sources.as_mut().filter(|s| !s.is_empty()) {
                s.truncate(s.len() / 2);
            } else if !self.rule.labels.is_empty() {
                self.rule.labels.pop_last();
            } else if !self.group.is_empty() {
                self.group.pop_last();
            } else {
                return;
            }
        }
    }

    /// An upper bound of [`Alert::serialized_len`], from string lengths
    /// alone: JSON escapes a byte into at most 6 (`\u00XX`), and every key,
    /// quote, separator and number is counted at its longest. Pinned to
    /// the exact length by a property test (`size_bound_is_a_bound`).
    pub fn size_bound(&self) -> usize {
        fn s(x: &str) -> usize {
            2 + 6 * x.len()
        }
        fn o(x: &Option<String>) -> usize {
            x.as_deref().map_or(4, s)
        }
        fn v(x: &Value) -> usize {
            match x {
                Value::String(t) => s(t),
                Value::Null | Value::Bool(_) => 5,
                // At most 20 digits and a sign, or a float's shortest form.
                Value::Number(_) => 24,
                other => {
                    let mut c = Counter(0);
                    let _ = serde_json::to_writer(&mut c, other);
                    c.0
                }
            }
        }
        // Keys, braces, commas, `schema`, `mode`, the counts and the
        // option markers: 400 bytes is over twice what they take.
        let mut n = 400 + s(&self.alert_id) + s(&self.rule.id) + s(&self.rule.title);
        n += s(&self.rule.severity) + s(&self.mode) + o(&self.event_time);
        n += self
            .rule
            .labels
            .iter()
            .map(|(k, x)| s(k) + s(x) + 2)
            .sum::<usize>();
        n += self
            .group
            .iter()
            .map(|(k, x)| s(k) + v(x) + 2)
            .sum::<usize>();
        let e = &self.event;
        n += v(&e.id) + o(&e.title) + o(&e.source) + o(&e.url) + o(&e.lang) + o(&e.published_at);
        // A match: 40 bytes of keys and punctuation, two u32 of 10 digits.
        n += self
            .matches
            .iter()
            .map(|m| 60 + s(&m.field) + s(&m.text))
            .sum::<usize>();
        n += s(&self.snippet);
        if let Some(st) = &self.story {
            n += 60 + s(&st.id);
        }
        if let Some(src) = &self.sources {
            n += src.iter().map(|x| s(x) + 1).sum::<usize>();
        }
        // `baseline`: a float's shortest form.
        n + 24
    }

    /// Every free-text string of the alert except `schema`, `alert_id`,
    /// `mode`, the rule id and the times, which are short by construction.
    fn each_string(&mut self, mut f: impl FnMut(&mut String)) {
        f(&mut self.rule.title);
        self.rule.labels.values_mut().for_each(&mut f);
        for v in self.group.values_mut() {
            if let Value::String(s) = v {
                f(s);
            }
        }
        if let Value::String(s) = &mut self.event.id {
            f(s);
        }
        let e = &mut self.event;
        for s in [&mut e.title, &mut e.source, &mut e.url, &mut e.lang]
            .into_iter()
            .flatten()
        {
            f(s);
        }
        self.matches.iter_mut().for_each(|m| f(&mut m.text));
        f(&mut self.snippet);
        if let Some(s) = &mut self.sources {
            s.iter_mut().for_each(&mut f);
        }
    }
}

/// Deterministic alert id: 128 bits of SHA-256 over rule, group and event id.
pub fn alert_id(rule_id: &str, group: &BTreeMap<String, Value>, event_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(SCHEMA.as_bytes());
    h.update([0]);
    h.update(rule_id.as_bytes());
    h.update([0]);
    // BTreeMap serializes with sorted keys: a canonical form. Most rules
    // have no group_by: its form `{}` needs no serializer.
    if group.is_empty() {
        h.update(b"{}");
    } else {
        h.update(serde_json::to_string(group).unwrap_or_default().as_bytes());
    }
    h.update([0]);
    h.update(event_id.as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn field_text(ev: &Event, field: u8) -> &str {
    if field == TITLE {
        ev.title.as_deref().unwrap_or("")
    } else {
        ev.body.as_deref().unwrap_or("")
    }
}

/// Bytes of context before and after the first match in a snippet.
const SNIPPET_BEFORE: usize = 80;
const SNIPPET_AFTER: usize = 160;

/// A short excerpt around the first span, cut at word boundaries, white
/// space collapsed, with `…` where the text was cut.
pub fn snippet(ev: &Event, first: Option<&TextSpan>) -> String {
    let (text, start, end) = match first {
        Some(s) => (field_text(ev, s.field), s.start as usize, s.end as usize),
        None => {
            let t = ev
                .title
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .or(ev.body.as_deref())
                .unwrap_or("");
            (t, 0, 0)
        }
    };
    let floor = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (start, end) = (floor(start), floor(end.max(start)));
    let mut a = start.saturating_sub(SNIPPET_BEFORE);
    while !text.is_char_boundary(a) {
        a += 1;
    }
    if a > 0 {
        // Start at the next word.
        if let Some(i) = text[a..start.max(a)].find(char::is_whitespace) {
            a += i;
        }
    }
    let mut b = (end + SNIPPET_AFTER).min(text.len());
    while !text.is_char_boundary(b) {
        b -= 1;
    }
    if b < text.len() {
        if let Some(i) = text[end.min(b)..b].rfind(char::is_whitespace) {
            b = end.min(b) + i;
        }
    }
    let body: Vec<&str> = text[a..b].split_whitespace().collect();
    let mut out = String::new();
    if a > 0 {
        out.push('…');
    }
    out.push_str(&body.join(" "));
    if b < text.len() {
        out.push('…');
    }
    out
}

/// What every alert of one event shares, computed once per event: its id
/// as text, the `event` object, the event time, and the snippets built so
/// far (rules that match the same first word share one). An event with 39
/// alerts used to format its times, copy its id and build its snippet 39
/// times.
#[derive(Debug)]
pub struct EventParts<'a> {
    ev: &'a Event,
    id_text: String,
    event: AlertEvent,
    event_time: Option<String>,
    /// Snippets by first span (`None`: no span); a short list, since an
    /// event's matches start at few distinct places.
    snippets: Vec<(Option<TextSpan>, String)>,
}

/// Snippets remembered per event; further ones are built each time.
const SNIPPET_CACHE: usize = 16;

impl<'a> EventParts<'a> {
    /// `event_time` stands in for a missing `published_at`.
    pub fn new(ev: &'a Event, event_time: Option<DateTime<Utc>>) -> Self {
        let published_at = ev.published_at.map(|t| format_time(&t));
        let event_time = match ev.published_at {
            Some(_) => published_at.clone(),
            None => event_time.map(|t| format_time(&t)),
        };
        EventParts {
            ev,
            id_text: ev.id_text(),
            event: AlertEvent {
                id: ev.id.clone(),
                title: ev.title.clone(),
                source: ev.source.clone(),
                url: ev.url.clone(),
                lang: ev.lang.clone(),
                published_at,
            },
            event_time,
            snippets: Vec::new(),
        }
    }

    fn snippet(&mut self, first: Option<&TextSpan>) -> String {
        let key = first.copied();
        if let Some((_, s)) = self.snippets.iter().find(|(k, _)| *k == key) {
            return s.clone();
        }
        let s = snippet(self.ev, first);
        if self.snippets.len() < SNIPPET_CACHE {
            self.snippets.push((key, s.clone()));
        }
        s
    }

    /// Build the alert for a match, for the event's `group` (the rule's
    /// `group_by` values, empty without). Stateful modes fill in `story`,
    /// `count`, `sources`, `baseline` and `suppressed` after (see [`crate::state`]).
    pub fn build(&mut self, rule: &Rule, m: &Match, group: BTreeMap<String, Value>) -> Alert {
        let ev = self.ev;
        // Only the matches an alert can carry are built; `fit` counts no more.
        let matches = m
            .spans
            .iter()
            .take(MAX_MATCHES)
            .map(|s| AlertMatch {
                field: field_name(s.field).to_owned(),
                start: s.start,
                end: s.end,
                text: field_text(ev, s.field)
                    .get(s.start as usize..s.end as usize)
                    .unwrap_or("")
                    .to_owned(),
            })
            .collect();
        let mut alert = Alert {
            schema: SCHEMA.to_owned(),
            alert_id: alert_id(&rule.id, &group, &self.id_text),
            rule: AlertRule {
                id: rule.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity.as_str().to_owned(),
                labels: rule.labels.clone(),
            },
            mode: rule.mode.name().to_owned(),
            group,
            event_time: self.event_time.clone(),
            event: self.event.clone(),
            matches,
            matches_omitted: m.spans.len().saturating_sub(MAX_MATCHES) as u64,
            snippet: self.snippet(m.spans.first()),
            story: None,
            count: None,
            sources: None,
            baseline: None,
            suppressed: 0,
        };
        alert.fit();
        alert
    }
}

/// Build the alert for one match on its own (see [`EventParts::build`];
/// for several matches of one event, build through one [`EventParts`]).
pub fn build(
    rule: &Rule,
    ev: &Event,
    m: &Match,
    event_time: Option<DateTime<Utc>>,
    group: BTreeMap<String, Value>,
) -> Alert {
    EventParts::new(ev, event_time).build(rule, m, group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{decode, EventFields};

    fn ev(body: &str) -> Event {
        let j = serde_json::json!({"id": "e1", "body": body});
        decode(j.to_string().as_bytes(), &EventFields::default()).unwrap()
    }

    #[test]
    fn cut_table() {
        #[track_caller]
        fn check(input: &str, max: usize, expected: &str) {
            let mut s = input.to_owned();
            assert_eq!(cut(&mut s, max), input != expected, "{input:?} /{max}");
            assert_eq!(s, expected, "{input:?} /{max}");
        }
        check("Lavrov", 6, "Lavrov");
        check("Lavrov", 10, "Lavrov");
        check("Lavrov", 5, "Lavr…");
        check("Лавров", 6, "Лавров");
        check("Лавров", 3, "Ла…");
        check("防衛省防衛省", 2, "防…");
        check("ab", 1, "…");
        check("ab", 0, "");
        check("", 0, "");
    }

    fn alert() -> Alert {
        let ev = ev("Lavrov");
        let m = Match {
            rule: 0,
            spans: vec![],
        };
        let rule = crate::rules::load_strs(vec![(
            std::path::PathBuf::from("t.yaml"),
            "rules:\n  - id: r\n    title: t\n    query: lavrov\n".to_owned(),
        )])
        .unwrap()
        .rules
        .remove(0);
        build(&rule, &ev, &m, None, BTreeMap::new())
    }

    #[test]
    fn fit_table() {
        // Every case must end at most 64 KiB with the same alert_id.
        type Edit = fn(&mut Alert);
        // (case, edit, expected matches, expected omitted, title chars, snippet chars)
        let table: [(&str, Edit, usize, u64, usize, usize); 7] = [
            ("small alert untouched", |_| {}, 0, 0, 0, 6),
            (
                "101 matches",
                |a| {
                    a.matches = vec![
                        AlertMatch {
                            field: "body".into(),
                            start: 0,
                            end: 6,
                            text: "Lavrov".into()
                        };
                        101
                    ]
                },
                100,
                1,
                0,
                6,
            ),
            (
                "long title and snippet",
                |a| {
                    a.event.title = Some("Лавров ".repeat(1000));
                    a.snippet = "é".repeat(1000);
                },
                0,
                0,
                1000,
                300,
            ),
            (
                "huge url and source",
                |a| {
                    a.event.url = Some("u".repeat(200_000));
                    a.event.source = Some("s".repeat(200_000));
                },
                0,
                0,
                0,
                6,
            ),
            (
                "many labels with long values",
                |a| {
                    for i in 0..2_000 {
                        a.rule.labels.insert(format!("l{i}"), "v".repeat(500));
                    }
                },
                0,
                0,
                0,
                6,
            ),
            // cut to 100 characters of 6 escaped bytes each: 60 KB, fits
            (
                "100 long match texts",
                |a| {
                    a.matches = vec![
                        AlertMatch {
                            field: "body".into(),
                            start: 0,
                            end: 5000,
                            text: "\u{1}".repeat(5000)
                        };
                        100
                    ]
                },
                100,
                0,
                0,
                6,
            ),
            (
                "sources filled in after build",
                |a| a.sources = Some(vec!["s".repeat(5_000); 100]),
                0,
                0,
                0,
                6,
            ),
        ];
        for (case, edit, matches, omitted, title, snippet) in table {
            let mut a = alert();
            let id = a.alert_id.clone();
            edit(&mut a);
            a.fit();
            let bytes = serde_json::to_vec(&a).unwrap();
            assert!(bytes.len() <= MAX_ALERT_BYTES, "{case}: {}", bytes.len());
            assert_eq!(a.serialized_len(), bytes.len(), "{case}");
            assert_eq!(a.matches.len(), matches, "{case}");
            assert_eq!(a.matches_omitted, omitted, "{case}");
            let chars = a.event.title.as_deref().map_or(0, |t| t.chars().count());
            assert_eq!(chars, title, "{case}");
            assert_eq!(a.snippet.chars().count(), snippet, "{case}");
            assert_eq!(a.alert_id, id, "{case}");
        }
    }

    mod bound {
        use super::*;
        use proptest::prelude::*;

        /// Strings with control characters, quotes, backslashes and
        /// multi-byte characters: the ones JSON escapes or that are long.
        fn text() -> impl Strategy<Value = String> {
            "[\\x00-\\x1f\"\\\\a-zé防😀]{0,40}"
        }

        proptest! {
            #[test]
            fn size_bound_is_a_bound(
                title in text(),
                snippet in text(),
                labels in prop::collection::btree_map(text(), text(), 0..4),
                group in prop::collection::btree_map(text(), prop_oneof![
                    text().prop_map(Value::from),
                    any::<i64>().prop_map(Value::from),
                    any::<f64>().prop_map(Value::from),
                    Just(Value::Null),
                    Just(serde_json::json!(["a", {"b": 1}])),
                ], 0..4),
                matches in prop::collection::vec((text(), any::<u32>(), any::<u32>()), 0..5),
                sources in prop::option::of(prop::collection::vec(text(), 0..4)),
                id in prop_oneof![text().prop_map(Value::from), any::<u64>().prop_map(Value::from)],
                story in prop::option::of((text(), any::<u64>())),
                count in prop::option::of(any::<u64>()),
                baseline in prop::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
                suppressed in any::<u64>(),
            ) {
                let mut a = alert();
                a.event.title = Some(title.clone());
                a.event.source = Some(title);
                a.event.id = id;
                a.snippet = snippet;
                a.rule.labels = labels;
                a.group = group;
                a.matches = matches
                    .into_iter()
                    .map(|(text, start, end)| AlertMatch { field: "title".into(), start, end, text })
                    .collect();
                a.sources = sources;
                a.story = story.map(|(id, events)| Story { id, events });
                a.count = count;
                a.baseline = baseline;
                a.suppressed = suppressed;
                a.matches_omitted = u64::MAX;
                prop_assert!(a.size_bound() >= a.serialized_len());
            }
        }
    }

    #[test]
    fn alert_id_is_deterministic_and_distinct() {
        let g = BTreeMap::new();
        let a = alert_id("r", &g, "e1");
        assert_eq!(a, alert_id("r", &g, "e1"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, alert_id("r", &g, "e2"));
        assert_ne!(a, alert_id("r2", &g, "e1"));
        let mut g2 = BTreeMap::new();
        g2.insert("source".to_owned(), Value::from("tass.ru"));
        assert_ne!(a, alert_id("r", &g2, "e1"));
    }

    #[test]
    fn snippet_table() {
        let long = format!(
            "{} Sergey Lavrov on Saturday warned {}",
            "word ".repeat(40),
            "tail ".repeat(60)
        );
        let e = ev(&long);
        let start = long.find("Lavrov").unwrap() as u32;
        let s = snippet(
            &e,
            Some(&TextSpan {
                field: 1,
                start,
                end: start + 6,
            }),
        );
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("Sergey Lavrov on Saturday warned"), "{s}");
        assert!(s.len() < 300, "{}", s.len());
        // short text: no ellipses, white space collapsed
        let e = ev("Lavrov\n\nwarned");
        assert_eq!(
            snippet(
                &e,
                Some(&TextSpan {
                    field: 1,
                    start: 0,
                    end: 6
                })
            ),
            "Lavrov warned"
        );
        // multibyte text never splits a character
        let ru = "Министр иностранных дел России Сергей Лавров заявил ".repeat(10);
        let e = ev(&ru);
        let start = ru.find("Лавров").unwrap() as u32 + 200;
        let s = snippet(
            &e,
            Some(&TextSpan {
                field: 1,
                start: start.min(ru.len() as u32 - 12),
                end: start.min(ru.len() as u32 - 12),
            }),
        );
        assert!(!s.is_empty());
    }
}
