//! What a stateful decision needs from a match, detached from the event.
//!
//! Stateful rules are decided in two stages (the Kafka Streams shape of a
//! repartition): stage one matches an event anywhere and turns each match of
//! a stateful rule into a [`MatchRecord`]; stage two decides it, in order,
//! at the one owner of its `(rule, group)` key. Between the two the record
//! travels through the internal `<group_id>-matches` topic, in the partition
//! [`partition_of`] gives, so everything one decision needs is in it:
//! the [`Input`] facts (event id and time, story id or text signature,
//! distinct value) and the [`Alert`] that fires if the decision says so.
//!
//! `replay` and `test` build the same records and decide them at once, so
//! every command decides through the same code.
//!
//! Architecture invariant: [`partition_of`] depends only on the rule id and
//! the group values, through a hash that never changes between releases, so
//! a key's match records and its changelog records always meet in the
//! partition of the same number.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::story::Signature;
use crate::alert::Alert;
use crate::event::Event;
use crate::rules::{AlertMode, Rule, RuleSet};

/// The version written into every match record; a reader refuses others.
pub const MATCH_RECORD_VERSION: u8 = 1;

/// The facts of one match that a decision reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// The event's id as text.
    pub event: String,
    /// Event time, milliseconds since the epoch; `None` until known (an
    /// event without `published_at` in `replay` takes the latest time seen).
    pub time: Option<i64>,
    /// The producer's story id, when the `story_id` pointer is set and present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story_id: Option<String>,
    /// The text signature (`first_seen` only, hex on the wire).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "signature_hex"
    )]
    pub signature: Option<Signature>,
    /// A hash of the normalized words, for texts too short to sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_key: Option<String>,
    /// `threshold`: the value counted (the `distinct` field, else the source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `threshold` with `distinct`: the event has no such value (it does not count).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_distinct: bool,
}

/// One match of a stateful rule on its way to the key's owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRecord {
    pub v: u8,
    pub rule: String,
    /// [`state_fingerprint`] of the rule when it matched; a decision made
    /// under another definition of the rule starts from fresh state.
    pub fp: String,
    pub group: BTreeMap<String, Value>,
    pub input: Input,
    /// The alert to publish if the decision fires (stage two fills in
    /// `story`, `count`, `sources`, `baseline` and `suppressed`).
    pub alert: Alert,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("match record does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("match record version {0} is not supported (this build reads {MATCH_RECORD_VERSION})")]
    Version(u8),
}

impl MatchRecord {
    pub fn to_json(&self) -> Vec<u8> {
        // A record of plain strings, numbers and maps always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        let r: MatchRecord = serde_json::from_slice(bytes)?;
        if r.v != MATCH_RECORD_VERSION {
            return Err(RecordError::Version(r.v));
        }
        Ok(r)
    }

    /// The record key: rule id and group, as in changelog keys.
    pub fn key(&self) -> String {
        key_of(&self.rule, &self.group)
    }
}

/// `rule␟group-json`: the key of match records and the partitioning key.
pub fn key_of(rule: &str, group: &BTreeMap<String, Value>) -> String {
    // BTreeMap serializes with sorted keys: a canonical form.
    format!(
        "{rule}{}{}",
        super::SEP,
        serde_json::to_string(group).unwrap_or_default()
    )
}

/// The partition (of `partitions`) that owns a rule and group: the first
/// four bytes of SHA-256 over the key, modulo the partition count.
pub fn partition_of(rule: &str, group: &BTreeMap<String, Value>, partitions: u32) -> i32 {
    let d = Sha256::digest(key_of(rule, group).as_bytes());
    let h = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    // `partitions` is validated to be at least 1 and fits in i32.
    (h % partitions.max(1)) as i32
}

/// What of a rule's definition its state depends on: the mode and its
/// parameters, the throttle and the grouping. A reload that changes any of
/// these gives the rule fresh state (its old keys expire unused).
pub fn state_fingerprint(rule: &Rule) -> String {
    let mode = match &rule.mode {
        AlertMode::Each => "each".to_owned(),
        AlertMode::FirstSeen { window, similarity } => {
            format!("first_seen/{}/{:?}", window.as_millis(), similarity)
        }
        AlertMode::Threshold {
            count,
            window,
            distinct,
        } => format!("threshold/{count}/{}/{distinct:?}", window.as_millis()),
        AlertMode::Spike {
            window,
            baseline,
            ratio,
            min_count,
        } => format!(
            "spike/{}/{}/{ratio:?}/{min_count}",
            window.as_millis(),
            baseline.as_millis()
        ),
    };
    let throttle = rule.throttle.map(|t| t.as_millis());
    let s = format!("{mode}|{throttle:?}|{:?}", rule.group_by);
    hex::encode(&Sha256::digest(s.as_bytes())[..4])
}

/// Rules in both sets whose state-relevant definition differs: a reload
/// from `old` to `new` starts their state fresh (its keys carry the
/// fingerprint), so the daemon says so.
pub fn redefined<'a>(old: &RuleSet, new: &'a RuleSet) -> Vec<&'a str> {
    new.rules
        .iter()
        .filter(|r| {
            old.rules
                .iter()
                .find(|o| o.id == r.id)
                .is_some_and(|o| state_fingerprint(o) != state_fingerprint(r))
        })
        .map(|r| r.id.as_str())
        .collect()
}

/// The value of a field of the event, by name: `id`, `title`, `source`,
/// `lang`, `url`, `published_at`, `story_id`, or a dotted path into the
/// JSON object (as in keyword filters). Missing is `null`.
pub fn field_value(ev: &Event, name: &str) -> Value {
    let s = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    match name {
        "id" => ev.id.clone(),
        "title" => s(&ev.title),
        "source" => s(&ev.source),
        "lang" => s(&ev.lang),
        "url" => s(&ev.url),
        "story_id" => s(&ev.story_id),
        "published_at" => ev.published_at.map_or(Value::Null, |t| {
            Value::String(crate::event::format_time(&t))
        }),
        path => {
            let mut v = &ev.raw;
            for k in path.split('.') {
                match v.get(k) {
                    Some(c) => v = c,
                    None => return Value::Null,
                }
            }
            v.clone()
        }
    }
}

/// The rule's `group_by` values for this event.
pub fn group_of(rule: &Rule, ev: &Event) -> BTreeMap<String, Value> {
    rule.group_by
        .iter()
        .map(|f| (f.clone(), field_value(ev, f)))
        .collect()
}

pub(super) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Exact-text key for texts too short to have a signature.
fn text_key(ev: &Event) -> String {
    let mut h = Sha256::new();
    for t in [ev.title.as_deref(), ev.body.as_deref()]
        .into_iter()
        .flatten()
    {
        crate::lang::text::for_each_word(t, |_, w| {
            h.update(w.as_bytes());
            h.update([0]);
        });
        h.update([1]);
    }
    format!("text:{}", hex::encode(&h.finalize()[..12]))
}

impl Input {
    /// The facts `rule` needs from `ev`, matched at event time `time`.
    /// `sig` is the event's text signature (computed by the caller once per
    /// event, and only when a `first_seen` rule matched).
    pub fn of(rule: &Rule, ev: &Event, time: DateTime<Utc>, sig: Option<&Signature>) -> Input {
        let story_id = ev.story_id.clone().filter(|s| !s.is_empty());
        let mut input = Input {
            event: ev.id_text(),
            time: Some(time.timestamp_millis()),
            story_id: None,
            signature: None,
            text_key: None,
            value: None,
            no_distinct: false,
        };
        match &rule.mode {
            // A spike needs only the event id and time.
            AlertMode::Each | AlertMode::Spike { .. } => {}
            AlertMode::FirstSeen { .. } => {
                input.signature = sig.filter(|_| story_id.is_none()).cloned();
                if story_id.is_none() && sig.is_none() {
                    input.text_key = Some(text_key(ev));
                }
                input.story_id = story_id;
            }
            AlertMode::Threshold { distinct, .. } => match distinct {
                Some(field) => match value_text(&field_value(ev, field)) {
                    Some(v) => input.value = Some(v),
                    None => input.no_distinct = true,
                },
                None => input.value = ev.source.clone().filter(|s| !s.trim().is_empty()),
            },
        }
        input
    }
}

mod signature_hex {
    use super::Signature;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &Option<Signature>, s: S) -> Result<S::Ok, S::Error> {
        match sig {
            Some(sig) => s.serialize_some(&sig.to_hex()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Signature>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(h) => Signature::from_hex(&h)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("bad signature")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect()
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        // Pinned values: changing the hash would strand every key's state
        // in the wrong changelog partition after an upgrade.
        let check = |rule: &str, g: &[(&str, &str)], n: u32, expected: i32| {
            assert_eq!(
                partition_of(rule, &group(g), n),
                expected,
                "{rule} {g:?} {n}"
            );
        };
        check("a", &[], 1, 0);
        for n in [1, 2, 3, 6, 12, 100] {
            for r in ["a", "b", "ru-mfa-statement"] {
                let p = partition_of(r, &group(&[("source", "x")]), n);
                assert!((0..n as i32).contains(&p));
            }
        }
        let p6 = partition_of("ru-mfa-statement", &BTreeMap::new(), 6);
        assert_eq!(p6, partition_of("ru-mfa-statement", &BTreeMap::new(), 6));
        assert_eq!(
            key_of("r", &group(&[("b", "1"), ("a", "2")])),
            "r\u{1f}{\"a\":\"2\",\"b\":\"1\"}"
        );
    }

    #[test]
    fn a_changed_mode_window_throttle_or_grouping_redefines_a_rule() {
        let load = |rules: &str| {
            crate::rules::load_strs(vec![(std::path::PathBuf::from("r.yaml"), rules.to_owned())])
                .unwrap_or_else(|e| panic!("{e:?}"))
        };
        let base = "rules:\n- {id: a, title: t, query: x, alert: {mode: first_seen, window: 24h}}\n- {id: b, title: t, query: y, throttle: 1h}\n";
        let old = load(base);
        for (new, expected) in [
            (base.to_owned(), vec![]),
            (base.replace("query: x", "query: z"), vec![]),
            (base.replace("window: 24h", "window: 12h"), vec!["a"]),
            (
                base.replace(
                    "first_seen, window: 24h",
                    "threshold, count: 2, window: 24h",
                ),
                vec!["a"],
            ),
            (base.replace("throttle: 1h", "throttle: 2h"), vec!["b"]),
            (
                base.replace("throttle: 1h", "throttle: 1h, group_by: [source]"),
                vec!["b"],
            ),
        ] {
            assert_eq!(redefined(&old, &load(&new)), expected, "{new}");
        }
    }

    #[test]
    fn records_round_trip_and_refuse_other_versions() {
        let text = r#"{"v":1,"rule":"r","fp":"00","group":{},"input":{"event":"e1","time":5},
            "alert":{"schema":"newswatch.alert.v1","alert_id":"x","rule":{"id":"r","title":"t","severity":"low","labels":{}},
            "mode":"threshold","group":{},"event_time":null,"event":{"id":"e1","title":null,"source":null,"url":null,"lang":null,"published_at":null},
            "matches":[],"snippet":"","story":null,"count":null,"sources":null,"suppressed":0}}"#;
        let r = MatchRecord::from_json(text.as_bytes()).unwrap();
        assert_eq!(r.input.event, "e1");
        assert_eq!(MatchRecord::from_json(&r.to_json()).unwrap(), r);
        let v2 = text.replacen("\"v\":1", "\"v\":2", 1);
        assert!(matches!(
            MatchRecord::from_json(v2.as_bytes()),
            Err(RecordError::Version(2))
        ));
        assert!(matches!(
            MatchRecord::from_json(b"{"),
            Err(RecordError::Parse(_))
        ));
    }
}
