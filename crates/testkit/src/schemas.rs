//! The published payloads held to their JSON Schemas (`schemas/` at the
//! repository's root, JSON Schema 2020-12): `newswatch.alert.v1` (SPEC §8)
//! and `newswatch.digest.v1` (SPEC §6).
//!
//! Every alert and digest the tests see goes through [`validate_payload`]:
//! the Kafka readers of `newswatch-testkit-kafka` check each record they
//! receive ([`check_record`]), the integration tests check `replay`'s
//! output, and the engine's tests check the alerts they build. So a field
//! that changes name, type or nullability fails the tests that produce it,
//! and the schemas, which subscribers validate against, cannot drift from
//! what the daemon publishes.
//!
//! The schemas are compiled into this crate (`include_str!`), with format
//! validation on (`date-time` is checked, not only annotated), and built
//! once per process.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

/// The alert schema's text, as subscribers get it.
pub const ALERT_SCHEMA: &str = include_str!("../../../schemas/newswatch.alert.v1.json");
/// The digest schema's text.
pub const DIGEST_SCHEMA: &str = include_str!("../../../schemas/newswatch.digest.v1.json");

/// The most bytes a serialized alert may take (SPEC §8).
pub const MAX_ALERT_BYTES: usize = 64 * 1024;

/// Which payload a value is, by its `schema` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Alert,
    Digest,
}

impl Kind {
    /// The `schema` field's value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Alert => "newswatch.alert.v1",
            Kind::Digest => "newswatch.digest.v1",
        }
    }

    /// The kind a `schema` field names, if any.
    pub fn of(schema: &str) -> Option<Kind> {
        [Kind::Alert, Kind::Digest]
            .into_iter()
            .find(|k| k.name() == schema)
    }
}

/// Why a payload is not a valid alert or digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The payload has no `schema` string naming one of the two schemas.
    #[error("not a newswatch payload: `schema` is {0}")]
    UnknownSchema(String),
    /// The payload breaks its schema: one line per violation, each with the
    /// JSON Pointer of the offending value.
    #[error("invalid {schema}:\n{}", Violations(.errors))]
    Invalid {
        schema: &'static str,
        errors: Vec<String>,
    },
}

struct Violations<'a>(&'a [String]);

impl fmt::Display for Violations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {e}")?;
        }
        Ok(())
    }
}

fn validator(kind: Kind) -> &'static jsonschema::Validator {
    static ALERT: OnceLock<jsonschema::Validator> = OnceLock::new();
    static DIGEST: OnceLock<jsonschema::Validator> = OnceLock::new();
    let (cell, text) = match kind {
        Kind::Alert => (&ALERT, ALERT_SCHEMA),
        Kind::Digest => (&DIGEST, DIGEST_SCHEMA),
    };
    cell.get_or_init(|| {
        // The schemas are part of the repository: one that does not compile
        // is a bug in this commit, not a test input.
        let schema: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("schemas/{}.json is not JSON: {e}", kind.name()));
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("schemas/{}.json does not compile: {e}", kind.name()))
    })
}

fn validate(kind: Kind, v: &Value) -> Result<(), SchemaError> {
    let errors: Vec<String> = validator(kind)
        .iter_errors(v)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_owned() } else { at };
            format!("at {at}: {e}")
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Invalid {
            schema: kind.name(),
            errors,
        })
    }
}

/// Validate an alert against `schemas/newswatch.alert.v1.json`.
pub fn validate_alert(v: &Value) -> Result<(), SchemaError> {
    validate(Kind::Alert, v)
}

/// Validate a digest against `schemas/newswatch.digest.v1.json`.
pub fn validate_digest(v: &Value) -> Result<(), SchemaError> {
    validate(Kind::Digest, v)
}

/// Validate a payload against the schema its `schema` field names.
pub fn validate_payload(v: &Value) -> Result<Kind, SchemaError> {
    let kind = match v.get("schema") {
        Some(Value::String(s)) => {
            Kind::of(s).ok_or_else(|| SchemaError::UnknownSchema(v["schema"].to_string()))
        }
        Some(other) => Err(SchemaError::UnknownSchema(other.to_string())),
        None => Err(SchemaError::UnknownSchema("missing".to_owned())),
    }?;
    validate(kind, v).map(|()| kind)
}

/// Parse one published payload and validate it; panics with the payload and
/// every violation when it is not a valid alert or digest.
#[track_caller]
pub fn assert_payload(bytes: &[u8]) -> (Kind, Value) {
    let v: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "payload is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    });
    match validate_payload(&v) {
        Ok(k) => (k, v),
        Err(e) => panic!("{e}\npayload: {}", String::from_utf8_lossy(bytes)),
    }
}

/// Check a record read from any topic: an alert or digest (a record with a
/// `newswatch-alert-id` or `newswatch-digest-id` header, or whose payload is
/// a JSON object naming one of the schemas) must be valid, at most 64 KiB
/// when an alert, keyed by its rule id, with headers that agree with the
/// payload (SPEC §6, §8). Dead letters (a `newswatch-error` header, whose
/// payload may be an alert cut to size) and every other record pass
/// unchecked. Returns the kind of a checked record.
pub fn check_record(
    key: Option<&[u8]>,
    payload: &[u8],
    headers: &HashMap<String, String>,
) -> Result<Option<Kind>, String> {
    let get = |name: &str| headers.get(name).map(String::as_str);
    if get("newswatch-error").is_some() {
        return Ok(None);
    }
    let alert_id = get("newswatch-alert-id");
    let digest_id = get("newswatch-digest-id");
    let v: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(_) if alert_id.is_none() && digest_id.is_none() => return Ok(None),
        Err(e) => return Err(format!("an alert or digest record is not JSON: {e}")),
    };
    let names_schema = v
        .get("schema")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("newswatch.alert") || s.starts_with("newswatch.digest"));
    if alert_id.is_none() && digest_id.is_none() && !names_schema {
        return Ok(None);
    }
    let kind = validate_payload(&v).map_err(|e| e.to_string())?;
    let rule = v["rule"]["id"].as_str().unwrap_or_default();
    let mut wrong = Vec::new();
    if key != Some(rule.as_bytes()) {
        wrong.push(format!(
            "record key {:?}, rule id {rule:?}",
            key.map(String::from_utf8_lossy)
        ));
    }
    let mut header = |name: &str, want: &str| match get(name) {
        Some(h) if h == want => {}
        got => wrong.push(format!("header {name} is {got:?}, payload says {want:?}")),
    };
    match kind {
        Kind::Alert => {
            header(
                "newswatch-alert-id",
                v["alert_id"].as_str().unwrap_or_default(),
            );
            header("newswatch-rule", rule);
            header(
                "newswatch-severity",
                v["rule"]["severity"].as_str().unwrap_or_default(),
            );
            if payload.len() > MAX_ALERT_BYTES {
                wrong.push(format!(
                    "{} bytes, more than {MAX_ALERT_BYTES}",
                    payload.len()
                ));
            }
        }
        Kind::Digest => {
            header(
                "newswatch-digest-id",
                v["digest_id"].as_str().unwrap_or_default(),
            );
        }
    }
    if wrong.is_empty() {
        Ok(Some(kind))
    } else {
        Err(format!("{}: {}", kind.name(), wrong.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A valid alert of `mode` (the mode's own fields filled in).
    fn alert(mode: &str) -> Value {
        let mut a = json!({
            "schema": "newswatch.alert.v1",
            "alert_id": "3f1c0000000000000000000000000001",
            "rule": {"id": "ru-mfa-statement", "title": "Statement from the Russian foreign ministry",
                     "severity": "high", "labels": {"desk": "asia"}},
            "mode": mode,
            "group": {},
            "event_time": "2026-07-12T09:00:00Z",
            "event": {"id": "a17", "title": "Lavrov warns", "source": "reuters.com", "url": null,
                      "lang": "en", "published_at": "2026-07-12T09:00:00Z"},
            "matches": [{"field": "body", "start": 27, "end": 33, "text": "Lavrov"}],
            "matches_omitted": 0,
            "snippet": "…Russian Foreign Minister Sergey Lavrov on Saturday warned…",
            "story": null,
            "count": null,
            "sources": null,
            "baseline": null,
            "suppressed": 0
        });
        match mode {
            "first_seen" => a["story"] = json!({"id": "a17", "events": 1}),
            "threshold" => {
                a["count"] = json!(3);
                a["sources"] = json!(["a", "b"]);
            }
            "spike" => {
                a["count"] = json!(12);
                a["baseline"] = json!(1.5);
            }
            _ => {}
        }
        a
    }

    fn digest() -> Value {
        let a = alert("each");
        json!({
            "schema": "newswatch.digest.v1",
            "digest_id": "9b2e00000000000000000000000000aa",
            "rule": a["rule"],
            "group": {"source": "tass.ru"},
            "period": {"start": "2026-07-12T09:00:00Z", "end": "2026-07-12T10:00:00Z"},
            "count": 7,
            "omitted": 6,
            "late": 0,
            "items": [{"alert_id": a["alert_id"], "event": a["event"], "snippet": "…", "story": null}]
        })
    }

    /// Apply `edit` at JSON Pointer `at` (`None` removes the field) and
    /// check the outcome: `Ok(())` valid, `Err(text)` invalid with an error
    /// line that contains `text`.
    #[track_caller]
    fn check(mut v: Value, at: &str, edit: Option<Value>, expected: Result<(), &str>) {
        let (parent, field) = at.rsplit_once('/').unwrap();
        let obj = v.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        match edit {
            Some(x) => obj.insert(field.to_owned(), x),
            None => obj.remove(field),
        };
        match (validate_payload(&v), expected) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{at}: {e}"),
            (got, want) => panic!("{at}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn valid_payloads_of_every_shape() {
        for mode in ["each", "first_seen", "threshold", "spike"] {
            assert_eq!(validate_alert(&alert(mode)), Ok(()), "{mode}");
        }
        assert_eq!(validate_digest(&digest()), Ok(()));
        assert_eq!(validate_payload(&digest()), Ok(Kind::Digest));
    }

    #[test]
    fn alert_table() {
        let a = || alert("each");
        check(a(), "/event/id", Some(json!(17)), Ok(()));
        check(a(), "/event_time", Some(Value::Null), Ok(()));
        check(a(), "/group/source", Some(json!(["a", 1, null])), Ok(()));
        check(a(), "/matches", Some(json!([])), Ok(()));
        check(
            a(),
            "/alert_id",
            None,
            Err("at /: \"alert_id\" is a required property"),
        );
        check(
            a(),
            "/matches_omitted",
            None,
            Err("\"matches_omitted\" is a required property"),
        );
        check(
            a(),
            "/baseline",
            None,
            Err("\"baseline\" is a required property"),
        );
        check(a(), "/suppressed", Some(json!("0")), Err("at /suppressed"));
        check(a(), "/suppressed", Some(json!(-1)), Err("at /suppressed"));
        check(a(), "/count", Some(json!(3)), Err("at /count"));
        check(a(), "/extra", Some(json!(1)), Err("Additional properties"));
        check(
            a(),
            "/schema",
            Some(json!("newswatch.alert.v2")),
            Err("`schema` is \"newswatch.alert.v2\""),
        );
        check(a(), "/schema", None, Err("`schema` is missing"));
        check(
            a(),
            "/rule/severity",
            Some(json!("urgent")),
            Err("at /rule/severity"),
        );
        check(
            a(),
            "/rule/labels/desk",
            Some(json!(1)),
            Err("at /rule/labels/desk"),
        );
        check(a(), "/rule/id", Some(json!("Bad Id")), Err("at /rule/id"));
        check(
            a(),
            "/event/url",
            None,
            Err("\"url\" is a required property"),
        );
        check(a(), "/event/extra", Some(json!(1)), Err("at /event"));
        check(
            a(),
            "/event/published_at",
            Some(json!("yesterday")),
            Err("at /event/published_at"),
        );
        check(
            a(),
            "/event_time",
            Some(json!("2026-07-12T09:00:00+02:00")),
            Err("at /event_time"),
        );
        check(
            a(),
            "/alert_id",
            Some(json!("not hex")),
            Err("at /alert_id"),
        );
        check(
            a(),
            "/matches/0/field",
            Some(json!("source")),
            Err("at /matches/0/field"),
        );
        check(
            a(),
            "/snippet",
            Some(json!("x".repeat(301))),
            Err("at /snippet"),
        );
        check(a(), "/mode", Some(json!("sometimes")), Err("at /mode"));
        check(
            alert("first_seen"),
            "/story",
            Some(Value::Null),
            Err("at /story"),
        );
        check(
            alert("threshold"),
            "/count",
            Some(Value::Null),
            Err("at /count"),
        );
        check(
            alert("spike"),
            "/baseline",
            Some(Value::Null),
            Err("at /baseline"),
        );
        check(
            alert("spike"),
            "/baseline",
            Some(json!("1.5")),
            Err("at /baseline"),
        );
    }

    #[test]
    fn digest_table() {
        check(digest(), "/late", Some(json!(2)), Ok(()));
        check(
            digest(),
            "/late",
            None,
            Err("\"late\" is a required property"),
        );
        check(digest(), "/omitted", Some(json!(1.5)), Err("at /omitted"));
        check(digest(), "/count", Some(json!(0)), Err("at /count"));
        check(
            digest(),
            "/period/end",
            Some(json!("soon")),
            Err("at /period/end"),
        );
        check(digest(), "/items", Some(json!({})), Err("at /items"));
        check(
            digest(),
            "/items/0/snippet",
            None,
            Err("\"snippet\" is a required property"),
        );
        check(
            digest(),
            "/items/0/mode",
            Some(json!("each")),
            Err("at /items/0"),
        );
        check(
            digest(),
            "/mode",
            Some(json!("each")),
            Err("Additional properties"),
        );
    }

    #[test]
    fn records_agree_with_their_headers() {
        let bytes = serde_json::to_vec(&alert("each")).unwrap();
        let h = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let good = h(&[
            ("newswatch-rule", "ru-mfa-statement"),
            ("newswatch-severity", "high"),
            ("newswatch-alert-id", "3f1c0000000000000000000000000001"),
        ]);
        let key = Some(&b"ru-mfa-statement"[..]);
        assert_eq!(check_record(key, &bytes, &good), Ok(Some(Kind::Alert)));
        let e = check_record(Some(b"other"), &bytes, &good).unwrap_err();
        assert!(e.contains("record key"), "{e}");
        let mut bad = good.clone();
        bad.insert("newswatch-severity".into(), "low".into());
        let e = check_record(key, &bytes, &bad).unwrap_err();
        assert!(e.contains("newswatch-severity"), "{e}");
        // A dead letter and an input event pass unchecked; a record that
        // says it is an alert must be one.
        let dlq = h(&[("newswatch-error", "undeliverable")]);
        assert_eq!(
            check_record(None, b"{\"schema\":\"newswatch.al", &dlq),
            Ok(None)
        );
        assert_eq!(
            check_record(None, br#"{"id":1}"#, &HashMap::new()),
            Ok(None)
        );
        assert!(check_record(key, b"oops", &good).is_err());
        let mut missing = alert("each");
        missing.as_object_mut().unwrap().remove("snippet");
        let bytes = serde_json::to_vec(&missing).unwrap();
        let e = check_record(key, &bytes, &HashMap::new()).unwrap_err();
        assert!(e.contains("\"snippet\" is a required property"), "{e}");
    }

    /// Both schemas compile as 2020-12, and the definitions the digest
    /// shares with the alert ("as in alerts") are the same.
    #[test]
    fn digest_shares_the_alert_definitions() {
        let a: Value = serde_json::from_str(ALERT_SCHEMA).unwrap();
        let d: Value = serde_json::from_str(DIGEST_SCHEMA).unwrap();
        for s in [&a, &d] {
            assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        }
        for def in ["uint", "time", "rule", "group", "event", "story"] {
            assert_eq!(a["$defs"][def], d["$defs"][def], "$defs/{def}");
        }
        assert_eq!(
            a["properties"]["snippet"],
            json!({"description": "A short excerpt around the first match.", "type": "string", "maxLength": 300})
        );
    }
}
