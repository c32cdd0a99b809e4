//! The alert payload (SPEC §8): schema `newswatch.alert.v1`.
//!
//! `alert_id` is a hash of the rule id, the group and the triggering event's
//! id, nothing else, so `run` after a restart and `replay` give the same id
//! and subscribers can drop duplicates by it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::event::{format_time, Event};
use crate::matcher::{field_name, Match, TextSpan, TITLE};
use crate::rules::Rule;

pub const SCHEMA: &str = "newswatch.alert.v1";

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
    pub snippet: String,
    pub story: Option<Story>,
    pub count: Option<u64>,
    pub sources: Option<Vec<String>>,
    pub suppressed: u64,
}

/// Deterministic alert id: 128 bits of SHA-256 over rule, group and event id.
pub fn alert_id(rule_id: &str, group: &BTreeMap<String, Value>, event_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(SCHEMA.as_bytes());
    h.update([0]);
    h.update(rule_id.as_bytes());
    h.update([0]);
    // BTreeMap serializes with sorted keys: a canonical form.
    h.update(serde_json::to_string(group).unwrap_or_default().as_bytes());
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

/// Build the alert for a match, for the event's `group` (the rule's
/// `group_by` values, empty without). Stateful modes fill in `story`,
/// `count`, `sources` and `suppressed` after (see [`crate::state`]).
pub fn build(
    rule: &Rule,
    ev: &Event,
    m: &Match,
    event_time: Option<DateTime<Utc>>,
    group: BTreeMap<String, Value>,
) -> Alert {
    let matches = m
        .spans
        .iter()
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
    Alert {
        schema: SCHEMA.to_owned(),
        alert_id: alert_id(&rule.id, &group, &ev.id_text()),
        rule: AlertRule {
            id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity.as_str().to_owned(),
            labels: rule.labels.clone(),
        },
        mode: rule.mode.name().to_owned(),
        group,
        event_time: ev.published_at.or(event_time).map(|t| format_time(&t)),
        event: AlertEvent {
            id: ev.id.clone(),
            title: ev.title.clone(),
            source: ev.source.clone(),
            url: ev.url.clone(),
            lang: ev.lang.clone(),
            published_at: ev.published_at.map(|t| format_time(&t)),
        },
        matches,
        snippet: snippet(ev, m.spans.first()),
        story: None,
        count: None,
        sources: None,
        suppressed: 0,
    }
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
