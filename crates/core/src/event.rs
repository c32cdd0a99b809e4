//! Decoding input events (SPEC §3).
//!
//! A message's bytes become an [`Event`] through the `[event]` JSON
//! pointers, or a [`DecodeError`] carrying one of the seven reason codes that
//! the dead-letter topic, the metrics and `replay`'s summary use. Decoding is
//! pure and total: any byte string gives one or the other, never a panic.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Why a message could not be used. The string forms are part of the
/// contract (dead-letter header `newswatch-error`, metric label `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    NotUtf8,
    NotJson,
    NotObject,
    MissingId,
    NoText,
    BadField,
    TooLarge,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::NotUtf8,
        Reason::NotJson,
        Reason::NotObject,
        Reason::MissingId,
        Reason::NoText,
        Reason::BadField,
        Reason::TooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotUtf8 => "not_utf8",
            Reason::NotJson => "not_json",
            Reason::NotObject => "not_object",
            Reason::MissingId => "missing_id",
            Reason::NoText => "no_text",
            Reason::BadField => "bad_field",
            Reason::TooLarge => "too_large",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct DecodeError {
    pub reason: Reason,
    /// A human sentence (dead-letter header `newswatch-error-detail`).
    pub detail: String,
}

fn fail<T>(reason: Reason, detail: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError {
        reason,
        detail: detail.into(),
    })
}

/// Where the fields are in the input JSON (`[event]` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventFields {
    pub id: String,
    pub title: String,
    pub body: String,
    pub source: String,
    pub lang: String,
    pub url: String,
    pub published_at: String,
    pub story_id: String,
    pub max_bytes: usize,
    /// How far past its Kafka timestamp an event's `published_at` may be
    /// (a duration like `1h`); later ones are replaced by the timestamp.
    pub max_future: String,
}

impl Default for EventFields {
    fn default() -> Self {
        EventFields {
            id: "/id".into(),
            title: "/title".into(),
            body: "/body".into(),
            source: "/source".into(),
            lang: "/lang".into(),
            url: "/url".into(),
            published_at: "/published_at".into(),
            story_id: String::new(),
            max_bytes: 1_048_576,
            max_future: "1h".into(),
        }
    }
}

impl EventFields {
    /// Check the pointers are RFC 6901 pointers (or empty, for optional ones).
    pub fn validate(&self) -> Result<(), String> {
        let required = [("id", &self.id)];
        let optional = [
            ("title", &self.title),
            ("body", &self.body),
            ("source", &self.source),
            ("lang", &self.lang),
            ("url", &self.url),
            ("published_at", &self.published_at),
            ("story_id", &self.story_id),
        ];
        for (k, p) in required {
            if !p.starts_with('/') {
                return Err(format!(
                    "event.{k} must be a JSON pointer starting with '/', got {p:?}"
                ));
            }
        }
        for (k, p) in optional {
            if !p.is_empty() && !p.starts_with('/') {
                return Err(format!(
                    "event.{k} must be a JSON pointer starting with '/' or \"\", got {p:?}"
                ));
            }
        }
        if self.title.is_empty() && self.body.is_empty() {
            return Err("event.title and event.body cannot both be \"\"".into());
        }
        if self.max_bytes == 0 {
            return Err("event.max_bytes must be at least 1".into());
        }
        humantime::parse_duration(&self.max_future).map_err(|e| {
            format!(
                "event.max_future: {:?} is not a duration like 1h or 30m: {e}",
                self.max_future
            )
        })?;
        Ok(())
    }

    /// `max_future` as a duration (validated by [`EventFields::validate`];
    /// an invalid value counts as one hour).
    pub fn max_future(&self) -> std::time::Duration {
        humantime::parse_duration(&self.max_future).unwrap_or(std::time::Duration::from_secs(3600))
    }
}

/// Replace a `published_at` that lies more than `max_future` past the
/// message's Kafka timestamp by that timestamp (SPEC §3): a typo for 2999
/// then decides with the time the event really arrived. `true` when it did.
pub fn clamp_future(
    ev: &mut Event,
    kafka_time: Option<DateTime<Utc>>,
    max_future: std::time::Duration,
) -> bool {
    let (Some(p), Some(k)) = (ev.published_at, kafka_time) else {
        return false;
    };
    let limit = chrono::TimeDelta::from_std(max_future)
        .ok()
        .and_then(|d| k.checked_add_signed(d));
    if limit.is_some_and(|l| p > l) {
        ev.published_at = Some(k);
        return true;
    }
    false
}

/// A decoded news event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The id as it appeared: a JSON string or number.
    pub id: Value,
    pub title: Option<String>,
    pub body: Option<String>,
    pub source: Option<String>,
    pub lang: Option<String>,
    pub url: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub story_id: Option<String>,
    /// The whole object, for keyword filters on any field.
    pub raw: Value,
}

impl Event {
    /// The id as text: a string as is, a number as its JSON text.
    pub fn id_text(&self) -> String {
        match &self.id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// RFC 3339 in UTC with a `Z`, seconds precision unless sub-seconds are set.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn pointer<'a>(obj: &'a Value, ptr: &str) -> Option<&'a Value> {
    if ptr.is_empty() {
        return None;
    }
    obj.pointer(ptr).filter(|v| !v.is_null())
}

fn string_field(obj: &Value, ptr: &str, name: &str) -> Result<Option<String>, DecodeError> {
    match pointer(obj, ptr) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => fail(
            Reason::BadField,
            format!(
                "field {name} ({ptr}) must be a string, got {}",
                json_type(other)
            ),
        ),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decode one message.
pub fn decode(bytes: &[u8], fields: &EventFields) -> Result<Event, DecodeError> {
    if bytes.len() > fields.max_bytes {
        return fail(
            Reason::TooLarge,
            format!(
                "message is {} bytes, more than event.max_bytes = {}",
                bytes.len(),
                fields.max_bytes
            ),
        );
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                Reason::NotUtf8,
                format!("message is not valid UTF-8 (at byte {})", e.valid_up_to()),
            )
        }
    };
    let raw: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return fail(Reason::NotJson, format!("message is not JSON: {e}")),
    };
    if !raw.is_object() {
        return fail(
            Reason::NotObject,
            format!("message is {}, not a JSON object", json_type(&raw)),
        );
    }
    let id = match pointer(&raw, &fields.id) {
        None => return fail(Reason::MissingId, format!("no id at {}", fields.id)),
        Some(Value::String(s)) if s.is_empty() => {
            return fail(
                Reason::MissingId,
                format!("id at {} is an empty string", fields.id),
            )
        }
        Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
        Some(other) => {
            return fail(
                Reason::BadField,
                format!(
                    "id at {} must be a string or a number, got {}",
                    fields.id,
                    json_type(other)
                ),
            )
        }
    };
    let title = string_field(&raw, &fields.title, "title")?;
    let body = string_field(&raw, &fields.body, "body")?;
    let has_text = |s: &Option<String>| s.as_deref().is_some_and(|t| !t.trim().is_empty());
    if !has_text(&title) && !has_text(&body) {
        return fail(
            Reason::NoText,
            "neither title nor body is a non-empty string",
        );
    }
    let source = string_field(&raw, &fields.source, "source")?;
    let lang = string_field(&raw, &fields.lang, "lang")?;
    let url = string_field(&raw, &fields.url, "url")?;
    // An unparsable time is not an error: the caller falls back (SPEC §3).
    let published_at = pointer(&raw, &fields.published_at)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let story_id = match pointer(&raw, &fields.story_id) {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v @ Value::Number(_)) => Some(v.to_string()),
        Some(other) => {
            return fail(
                Reason::BadField,
                format!(
                    "story_id at {} must be a string or a number, got {}",
                    fields.story_id,
                    json_type(other)
                ),
            )
        }
    };
    Ok(Event {
        id,
        title,
        body,
        source,
        lang,
        url,
        published_at,
        story_id,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_dates_are_clamped_to_the_kafka_timestamp() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let kafka = t("2026-07-12T09:00:00Z");
        let hour = std::time::Duration::from_secs(3600);
        // (published_at, kafka timestamp, expected published_at, clamped)
        for (published, k, expected, clamped) in [
            (
                Some("2999-01-01T00:00:00Z"),
                Some(kafka),
                Some("2026-07-12T09:00:00Z"),
                true,
            ),
            (
                Some("2026-07-12T10:00:01Z"),
                Some(kafka),
                Some("2026-07-12T09:00:00Z"),
                true,
            ),
            // Within the bound, and any past date, stay.
            (
                Some("2026-07-12T10:00:00Z"),
                Some(kafka),
                Some("2026-07-12T10:00:00Z"),
                false,
            ),
            (
                Some("1970-01-01T00:00:00Z"),
                Some(kafka),
                Some("1970-01-01T00:00:00Z"),
                false,
            ),
            // replay has no Kafka timestamp: nothing to compare with.
            (
                Some("2999-01-01T00:00:00Z"),
                None,
                Some("2999-01-01T00:00:00Z"),
                false,
            ),
            (None, Some(kafka), None, false),
        ] {
            let j = serde_json::json!({"id": "e", "body": "b", "published_at": published});
            let mut ev = decode(j.to_string().as_bytes(), &EventFields::default()).unwrap();
            assert_eq!(clamp_future(&mut ev, k, hour), clamped, "{published:?}");
            assert_eq!(ev.published_at, expected.map(t), "{published:?}");
        }
    }

    fn check(input: &[u8], expected: Result<&str, Reason>) {
        let got = decode(input, &EventFields::default());
        match (got, expected) {
            (Ok(ev), Ok(id)) => assert_eq!(
                ev.id_text(),
                id,
                "input {:?}",
                String::from_utf8_lossy(input)
            ),
            (Err(e), Err(r)) => assert_eq!(
                e.reason,
                r,
                "input {:?}: {}",
                String::from_utf8_lossy(input),
                e.detail
            ),
            (got, want) => panic!(
                "input {:?}: got {got:?}, want {want:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    #[test]
    fn decode_table() {
        let table: &[(&[u8], Result<&str, Reason>)] = &[
            (br#"{"id":"a1","title":"Lavrov warns"}"#, Ok("a1")),
            (br#"{"id":17,"body":"text"}"#, Ok("17")),
            (b"\xff\xfe{}", Err(Reason::NotUtf8)),
            (b"{not json", Err(Reason::NotJson)),
            (b"{\"id\":1,\"title\":\"x\"} trailing", Err(Reason::NotJson)),
            (b"[1,2]", Err(Reason::NotObject)),
            (b"\"str\"", Err(Reason::NotObject)),
            (br#"{"title":"x"}"#, Err(Reason::MissingId)),
            (br#"{"id":null,"title":"x"}"#, Err(Reason::MissingId)),
            (br#"{"id":"","title":"x"}"#, Err(Reason::MissingId)),
            (br#"{"id":"a"}"#, Err(Reason::NoText)),
            (br#"{"id":"a","title":"  ","body":""}"#, Err(Reason::NoText)),
            (br#"{"id":{"x":1},"title":"x"}"#, Err(Reason::BadField)),
            (br#"{"id":"a","title":5}"#, Err(Reason::BadField)),
            (
                br#"{"id":"a","title":"t","source":["x"]}"#,
                Err(Reason::BadField),
            ),
            // an unparsable time is not an error
            (
                br#"{"id":"a","title":"t","published_at":"yesterday"}"#,
                Ok("a"),
            ),
        ];
        for (input, expected) in table {
            check(input, *expected);
        }
    }

    #[test]
    fn too_large() {
        let fields = EventFields {
            max_bytes: 10,
            ..EventFields::default()
        };
        let e = decode(br#"{"id":"a","title":"long enough"}"#, &fields).unwrap_err();
        assert_eq!(e.reason, Reason::TooLarge);
    }

    #[test]
    fn custom_pointers_and_time() {
        let fields = EventFields {
            id: "/meta/guid".into(),
            title: "/headline".into(),
            published_at: "/meta/ts".into(),
            ..EventFields::default()
        };
        let ev = decode(
            br#"{"meta":{"guid":"g","ts":"2026-07-12T18:00:00+09:00"},"headline":"h"}"#,
            &fields,
        )
        .unwrap();
        assert_eq!(ev.id_text(), "g");
        assert_eq!(
            format_time(&ev.published_at.unwrap()),
            "2026-07-12T09:00:00Z"
        );
    }
}
