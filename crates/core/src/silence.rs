//! Silences (SPEC §10): an operator's "hold back these alerts until then".
//!
//! A [`Silence`] names a rule, by id or by glob over rule ids (`ru-*`),
//! and optionally labels and group values; an alert is silenced while
//! `starts_at <= now < ends_at` when its rule id matches, every label of
//! the silence equals the rule's label of that name, and every group value
//! of the silence equals the alert's group value of that name.
//!
//! This module is pure: [`validate`] turns a `POST /silences` body into a
//! [`Request`] (listing every error, not only the first), and a
//! [`SilenceSet`] holds the silences of a daemon and answers
//! [`SilenceSet::silenced`]. The daemon stores silences in Kafka and keeps
//! the set current (`src/daemon/silences.rs`); "now" is always the
//! caller's wall clock, passed in: silences are operator actions in real
//! time, unlike the event time every other decision follows.
//!
//! Invariants:
//! * a silence only ever ends earlier: of two versions of one id, the set
//!   keeps the one that ends first ([`SilenceSet::upsert`]), so an expiry
//!   read back late never revives the silence;
//! * rule globs use the `glob` crate's syntax (`*`, `?`, `[abc]`, `[!abc]`);
//!   a rule string without `*`, `?` or `[` is an exact rule id.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::format_time;

/// A POST body larger than this is refused (one silence is a few hundred
/// bytes; a Kafka record must fit the broker's limits).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Who created a silence when the request does not say.
pub const UNKNOWN_CREATOR: &str = "unknown";

/// One silence, as stored (the value of its record on the silences topic)
/// and as listed by `GET /silences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    /// A rule id, or a glob over rule ids.
    pub rule: String,
    /// Must equal the rule's labels of these names.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Must equal the alert's group values of these names.
    #[serde(default)]
    pub group: BTreeMap<String, Value>,
    #[serde(with = "rfc3339")]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    pub created_by: String,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::event::format_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// A silence's rule: an exact id or a glob.
#[derive(Debug, Clone)]
pub enum RulePattern {
    Exact(String),
    Glob(glob::Pattern),
}

impl RulePattern {
    /// `*`, `?` or `[` make a glob; anything else is an exact rule id.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.contains(['*', '?', '[']) {
            glob::Pattern::new(s)
                .map(RulePattern::Glob)
                .map_err(|e| format!("rule: {s:?} is not a valid glob: {}", e.msg))
        } else {
            Ok(RulePattern::Exact(s.to_owned()))
        }
    }

    pub fn matches(&self, rule: &str) -> bool {
        match self {
            RulePattern::Exact(id) => id == rule,
            RulePattern::Glob(p) => p.matches(rule),
        }
    }
}

/// A group value as text: a string as it is, anything else as its JSON,
/// so `--group year=2026` matches the number 2026.
fn value_text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

impl Silence {
    /// In force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether this silence holds back an alert of `rule` (its id and
    /// labels) for `group` at `now`. (Compiles the rule pattern; a
    /// [`SilenceSet`] keeps it compiled.)
    pub fn matches(
        &self,
        rule: &str,
        labels: &BTreeMap<String, String>,
        group: &BTreeMap<String, Value>,
        now: DateTime<Utc>,
    ) -> bool {
        RulePattern::parse(&self.rule)
            .is_ok_and(|p| self.matches_with(&p, rule, labels, group, now))
    }

    fn matches_with(
        &self,
        pattern: &RulePattern,
        rule: &str,
        labels: &BTreeMap<String, String>,
        group: &BTreeMap<String, Value>,
        now: DateTime<Utc>,
    ) -> bool {
        self.is_active(now)
            && pattern.matches(rule)
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self
                .group
                .iter()
                .all(|(k, v)| group.get(k).is_some_and(|g| value_text(g) == value_text(v)))
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Strings, maps and times always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// How a silence ends: at a time, or after a duration from its creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    At(DateTime<Utc>),
    For(Duration),
}

/// A valid `POST /silences` body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub rule: String,
    pub labels: BTreeMap<String, String>,
    pub group: BTreeMap<String, Value>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    pub created_by: String,
}

impl Request {
    /// The silence this request creates at `now` under `id`.
    pub fn into_silence(self, id: String, now: DateTime<Utc>) -> Silence {
        Silence {
            id,
            rule: self.rule,
            labels: self.labels,
            group: self.group,
            starts_at: now,
            ends_at: self.ends_at,
            comment: self.comment,
            created_by: self.created_by,
            created_at: now,
        }
    }
}

const KEYS: [&str; 7] = [
    "rule",
    "labels",
    "group",
    "ends_at",
    "duration",
    "comment",
    "created_by",
];

/// Validate a `POST /silences` body at `now`: the request, or every error
/// found (one sentence each).
pub fn validate(body: &[u8], now: DateTime<Utc>) -> Result<Request, Vec<String>> {
    if body.len() > MAX_BODY_BYTES {
        return Err(vec![format!(
            "the body is {} bytes; a silence takes at most {MAX_BODY_BYTES}",
            body.len()
        )]);
    }
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(vec!["the body must be a JSON object".into()]),
        Err(e) => return Err(vec![format!("the body is not JSON: {e}")]),
    };
    let mut errs = Vec::new();
    for k in obj.keys().filter(|k| !KEYS.contains(&k.as_str())) {
        errs.push(format!("unknown key {k:?} (known: {})", KEYS.join(", ")));
    }
    let text = |key: &str, errs: &mut Vec<String>| match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(_) => {
            errs.push(format!("{key}: must be a string"));
            None
        }
    };
    let rule = text("rule", &mut errs).filter(|s| !s.is_empty());
    match &rule {
        None if !errs.iter().any(|e| e.starts_with("rule:")) => {
            errs.push("rule: required (a rule id or a glob such as \"ru-*\")".into())
        }
        Some(r) => {
            if let Err(e) = RulePattern::parse(r) {
                errs.push(e);
            }
        }
        None => {}
    }
    let labels = string_map(obj.get("labels"), &mut errs);
    let group = group_map(obj.get("group"), &mut errs);
    let ends_at = end_of(
        text("ends_at", &mut errs),
        text("duration", &mut errs),
        now,
        &mut errs,
    );
    let comment = text("comment", &mut errs).filter(|s| !s.is_empty());
    if comment.is_none() && !errs.iter().any(|e| e.starts_with("comment:")) {
        errs.push("comment: required (why the alerts are held back)".into());
    }
    let created_by = text("created_by", &mut errs)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| UNKNOWN_CREATOR.to_owned());
    match (rule, ends_at, comment) {
        (Some(rule), Some(ends_at), Some(comment)) if errs.is_empty() => Ok(Request {
            rule,
            labels,
            group,
            ends_at,
            comment,
            created_by,
        }),
        _ => Err(errs),
    }
}

fn string_map(v: Option<&Value>, errs: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    _ => errs.push(format!("labels.{k}: must be a string")),
                }
            }
        }
        Some(_) => errs.push("labels: must be an object of strings".into()),
    }
    out
}

fn group_map(v: Option<&Value>, errs: &mut Vec<String>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                match v {
                    Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                        out.insert(k.clone(), v.clone());
                    }
                    _ => errs.push(format!("group.{k}: must be a string, number or boolean")),
                }
            }
        }
        Some(_) => errs.push("group: must be an object".into()),
    }
    out
}

/// The end time from exactly one of `ends_at` and `duration`.
fn end_of(
    ends_at: Option<String>,
    duration: Option<String>,
    now: DateTime<Utc>,
    errs: &mut Vec<String>,
) -> Option<DateTime<Utc>> {
    match (ends_at, duration) {
        (Some(_), Some(_)) => {
            errs.push("give ends_at or duration, not both".into());
            None
        }
        (None, None) => {
            if !errs
                .iter()
                .any(|e| e.starts_with("ends_at:") || e.starts_with("duration:"))
            {
                errs.push("ends_at (RFC 3339) or duration (like \"6h\"): one is required".into());
            }
            None
        }
        (Some(t), None) => match DateTime::parse_from_rfc3339(&t) {
            Ok(t) if t.with_timezone(&Utc) > now => Some(t.with_timezone(&Utc)),
            Ok(_) => {
                errs.push(format!(
                    "ends_at: {t} is not in the future (now is {})",
                    format_time(&now)
                ));
                None
            }
            Err(e) => {
                errs.push(format!(
                    "ends_at: {t:?} is not an RFC 3339 time ({e}); e.g. 2026-07-12T18:00:00Z"
                ));
                None
            }
        },
        (None, Some(d)) => match humantime::parse_duration(&d) {
            Ok(d) if d.is_zero() => {
                errs.push("duration: must be longer than 0".into());
                None
            }
            Ok(d) => {
                let end = chrono::Duration::from_std(d)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d));
                if end.is_none() {
                    errs.push(format!("duration: {d:?} is too long"));
                }
                end
            }
            Err(e) => {
                errs.push(format!(
                    "duration: {d:?} is not a duration ({e}); e.g. 30m, 6h, 2d"
                ));
                None
            }
        },
    }
}

/// A silence with its rule pattern compiled.
#[derive(Debug, Clone)]
struct Entry {
    silence: Silence,
    pattern: RulePattern,
}

/// The silences a daemon knows, by id: active ones, future ones (none yet:
/// every silence starts at its creation), and recently ended ones, kept so
/// that a late copy of an earlier version cannot revive them.
#[derive(Debug, Clone, Default)]
pub struct SilenceSet {
    by_id: BTreeMap<String, Entry>,
}

impl SilenceSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or update a silence. Of two versions of one id the one that
    /// ends first wins (an expiry only moves the end earlier). A silence
    /// whose rule does not parse (written by hand) is ignored: `false`.
    pub fn upsert(&mut self, silence: Silence) -> bool {
        let Ok(pattern) = RulePattern::parse(&silence.rule) else {
            return false;
        };
        if let Some(old) = self.by_id.get(&silence.id) {
            if old.silence.ends_at <= silence.ends_at {
                return true;
            }
        }
        self.by_id
            .insert(silence.id.clone(), Entry { silence, pattern });
        true
    }

    /// Forget silences that ended before `before`.
    pub fn prune(&mut self, before: DateTime<Utc>) {
        self.by_id.retain(|_, e| e.silence.ends_at >= before);
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id).map(|e| &e.silence)
    }

    /// The silences in force at `now`, oldest first.
    pub fn active(&self, now: DateTime<Utc>) -> Vec<&Silence> {
        let mut v: Vec<&Silence> = self
            .by_id
            .values()
            .map(|e| &e.silence)
            .filter(|s| s.is_active(now))
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }

    /// Whether any silence holds back an alert of `rule` (id and labels)
    /// for `group` at `now`.
    pub fn silenced(
        &self,
        rule: &str,
        labels: &BTreeMap<String, String>,
        group: &BTreeMap<String, Value>,
        now: DateTime<Utc>,
    ) -> bool {
        self.by_id
            .values()
            .any(|e| e.silence.matches_with(&e.pattern, rule, labels, group, now))
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a test time")
            .with_timezone(&Utc)
    }

    const NOW: &str = "2026-07-12T09:00:00Z";

    /// A body and the errors expected (empty: valid).
    fn check(body: &str, expected: &[&str]) {
        let got = match validate(body.as_bytes(), t(NOW)) {
            Ok(_) => Vec::new(),
            Err(e) => e,
        };
        assert_eq!(got.len(), expected.len(), "{body}: {got:?}");
        for (g, e) in got.iter().zip(expected) {
            assert!(g.contains(e), "{body}: {g:?} lacks {e:?}");
        }
    }

    #[test]
    fn body_validation_table() {
        check(r#"{"rule":"r","duration":"6h","comment":"c"}"#, &[]);
        check(
            r#"{"rule":"ru-*","labels":{"desk":"asia"},"group":{"source":"tass.ru","n":3},
               "ends_at":"2026-07-12T12:00:00+02:00","comment":"c","created_by":"ann"}"#,
            &[],
        );
        check(
            r#"{"rule":"r[ab]","ends_at":"2026-07-13T00:00:00Z","comment":"c"}"#,
            &[],
        );
        check(
            "{}",
            &[
                "rule: required",
                "ends_at (RFC 3339) or duration",
                "comment: required",
            ],
        );
        check("[]", &["must be a JSON object"]);
        check("{", &["not JSON"]);
        check(
            r#"{"rule":"r[","duration":"6h","comment":"c"}"#,
            &["rule: \"r[\" is not a valid glob"],
        );
        check(
            r#"{"rule":"r","duration":"6h","ends_at":"2026-07-13T00:00:00Z","comment":"c"}"#,
            &["not both"],
        );
        check(
            r#"{"rule":"r","ends_at":"2026-07-12T08:00:00Z","comment":"c"}"#,
            &["ends_at: 2026-07-12T08:00:00Z is not in the future"],
        );
        check(
            r#"{"rule":"r","ends_at":"tomorrow","comment":"c"}"#,
            &["ends_at: \"tomorrow\" is not an RFC 3339 time"],
        );
        check(
            r#"{"rule":"r","duration":"six hours","comment":"c"}"#,
            &["duration: \"six hours\" is not a duration"],
        );
        check(
            r#"{"rule":"r","duration":"0s","comment":"c"}"#,
            &["duration: must be longer than 0"],
        );
        check(
            r#"{"rule":"r","duration":"100000000000y","comment":"c"}"#,
            &["duration:"],
        );
        check(
            r#"{"rule":" ","duration":"6h","comment":" ","extra":1}"#,
            &[
                "unknown key \"extra\"",
                "rule: required",
                "comment: required",
            ],
        );
        check(
            r#"{"rule":5,"duration":6,"comment":"c","labels":{"a":1},"group":{"g":[1]}}"#,
            &[
                "rule: must be a string",
                "labels.a: must be a string",
                "group.g: must be a string, number or boolean",
                "duration: must be a string",
            ],
        );
        check(
            r#"{"rule":"r","duration":"1h","comment":"c","labels":[],"group":"x"}"#,
            &["labels: must be an object", "group: must be an object"],
        );
        let big = format!(
            r#"{{"rule":"r","duration":"1h","comment":"{}"}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        check(&big, &["a silence takes at most"]);
    }

    #[test]
    fn a_valid_body_becomes_a_silence() {
        let r = validate(
            br#"{"rule":"r","duration":"90m","comment":" night shift ","created_by":"ann"}"#,
            t(NOW),
        )
        .expect("valid");
        let s = r.into_silence("id1".into(), t(NOW));
        assert_eq!(s.ends_at, t("2026-07-12T10:30:00Z"));
        assert_eq!(
            (s.comment.as_str(), s.created_by.as_str()),
            ("night shift", "ann")
        );
        assert_eq!(s.starts_at, t(NOW));
        let anon =
            validate(br#"{"rule":"r","duration":"1h","comment":"c"}"#, t(NOW)).expect("valid");
        assert_eq!(anon.created_by, UNKNOWN_CREATOR);
        // Stored and read back unchanged.
        let back: Silence = serde_json::from_slice(&s.to_json()).expect("parses");
        assert_eq!(back, s);
    }

    fn silence(rule: &str, labels: Value, group: Value) -> Silence {
        Silence {
            id: "s".into(),
            rule: rule.into(),
            labels: serde_json::from_value(labels).expect("labels"),
            group: serde_json::from_value(group).expect("group"),
            starts_at: t("2026-07-12T08:00:00Z"),
            ends_at: t("2026-07-12T10:00:00Z"),
            comment: "c".into(),
            created_by: "ann".into(),
            created_at: t("2026-07-12T08:00:00Z"),
        }
    }

    /// (silence rule, labels, group), (alert rule, group, time) → silenced?
    #[allow(clippy::type_complexity)]
    #[test]
    fn matches_table() {
        let rule_labels: BTreeMap<String, String> = [
            ("desk".to_owned(), "asia".to_owned()),
            ("tier".to_owned(), "1".to_owned()),
        ]
        .into_iter()
        .collect();
        let cases: &[((&str, Value, Value), (&str, Value, &str), bool)] = &[
            (("r", json!({}), json!({})), ("r", json!({}), NOW), true),
            (("r", json!({}), json!({})), ("r2", json!({}), NOW), false),
            (
                ("ru-*", json!({}), json!({})),
                ("ru-mfa", json!({}), NOW),
                true,
            ),
            (
                ("ru-*", json!({}), json!({})),
                ("kr-mfa", json!({}), NOW),
                false,
            ),
            (("r?", json!({}), json!({})), ("r1", json!({}), NOW), true),
            (
                ("r[!1]", json!({}), json!({})),
                ("r1", json!({}), NOW),
                false,
            ),
            // Labels: each must equal the rule's.
            (
                ("*", json!({"desk":"asia"}), json!({})),
                ("r", json!({}), NOW),
                true,
            ),
            (
                ("*", json!({"desk":"europe"}), json!({})),
                ("r", json!({}), NOW),
                false,
            ),
            (
                ("*", json!({"team":"x"}), json!({})),
                ("r", json!({}), NOW),
                false,
            ),
            // Group: each must equal the alert's (as text).
            (
                ("r", json!({}), json!({"source":"tass.ru"})),
                ("r", json!({"source":"tass.ru","lang":"ru"}), NOW),
                true,
            ),
            (
                ("r", json!({}), json!({"source":"tass.ru"})),
                ("r", json!({"source":"ria.ru"}), NOW),
                false,
            ),
            (
                ("r", json!({}), json!({"source":"tass.ru"})),
                ("r", json!({}), NOW),
                false,
            ),
            (
                ("r", json!({}), json!({"year":"2026"})),
                ("r", json!({"year":2026}), NOW),
                true,
            ),
            (
                ("r", json!({}), json!({"year":2026})),
                ("r", json!({"year":"2026"}), NOW),
                true,
            ),
            // Time: [starts_at, ends_at).
            (
                ("r", json!({}), json!({})),
                ("r", json!({}), "2026-07-12T07:59:59Z"),
                false,
            ),
            (
                ("r", json!({}), json!({})),
                ("r", json!({}), "2026-07-12T08:00:00Z"),
                true,
            ),
            (
                ("r", json!({}), json!({})),
                ("r", json!({}), "2026-07-12T10:00:00Z"),
                false,
            ),
        ];
        for ((srule, labels, sgroup), (arule, agroup, now), want) in cases {
            let s = silence(srule, labels.clone(), sgroup.clone());
            let group: BTreeMap<String, Value> =
                serde_json::from_value(agroup.clone()).expect("group");
            assert_eq!(
                s.matches(arule, &rule_labels, &group, t(now)),
                *want,
                "{srule} {labels} {sgroup} vs {arule} {agroup} at {now}"
            );
            let mut set = SilenceSet::new();
            set.upsert(s);
            assert_eq!(set.silenced(arule, &rule_labels, &group, t(now)), *want);
        }
    }

    #[test]
    fn an_expiry_is_never_undone_by_an_earlier_version() {
        let s = silence("r", json!({}), json!({}));
        let mut expired = s.clone();
        expired.ends_at = t("2026-07-12T08:30:00Z");
        let (none, no_group) = (BTreeMap::new(), BTreeMap::new());
        let mut set = SilenceSet::new();
        set.upsert(s.clone());
        assert!(set.silenced("r", &none, &no_group, t(NOW)));
        assert_eq!(set.active(t(NOW)).len(), 1);
        set.upsert(expired.clone());
        assert!(!set.silenced("r", &none, &no_group, t(NOW)));
        // The creation read back after the expiry changes nothing.
        set.upsert(s);
        assert!(!set.silenced("r", &none, &no_group, t(NOW)));
        assert!(set.active(t(NOW)).is_empty());
        assert_eq!(set.get("s"), Some(&expired));
        set.prune(t("2026-07-12T08:29:00Z"));
        assert!(set.get("s").is_some());
        set.prune(t("2026-07-12T08:31:00Z"));
        assert!(set.is_empty());
        // A rule that is no glob is ignored.
        let mut bad = silence("r[", json!({}), json!({}));
        bad.id = "b".into();
        assert!(!set.upsert(bad));
        assert!(set.is_empty());
    }
}
