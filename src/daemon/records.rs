//! The records the pipeline publishes (SPEC §8, §9), built by pure
//! functions: an alert, a dead letter, a state change. Topic, key, headers
//! and payload are decided here and nowhere else; publishing
//! (`publish.rs`) only sends what it is given.
//!
//! * An alert goes to its rule's topic (or `kafka.alert_topic`), keyed by
//!   rule id, with its JSON (SPEC §8) as payload.
//! * A digest (SPEC §6) goes to its rule's topic (or `kafka.alert_topic`),
//!   keyed by rule id, with `newswatch-digest-id` beside the rule and
//!   severity headers, and its JSON as payload.
//! * A dead letter goes to `kafka.dlq_topic` with the original key and
//!   bytes untouched, and the error and the source position as headers.
//! * A match record (a stateful rule's match, SPEC §6) goes to the
//!   internal `<group_id>-matches` topic, in the partition of its (rule,
//!   group) key, for the owner of that state to decide.
//! * An alert the broker refuses for good (SPEC §9) goes to
//!   `kafka.dlq_topic` as an `undeliverable` dead letter: the alert's bytes
//!   cut to fit ([`undeliverable_cut`]), the refusal, the alert's topic and
//!   headers, and the source position where known.
//! * A state change goes to the changelog partition of the same number as
//!   the match records it came from, keyed by the state's key; no value is
//!   a tombstone (the state was deleted).

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use super::changelog::{EPOCH_HEADER, FENCE_KEY};
use crate::metrics::RecordKind;
use newswatch_core::alert::Alert;
use newswatch_core::event::DecodeError;
use newswatch_core::state::digest::Digest;
use newswatch_core::state::{partition_of, Change, MatchRecord};

/// What a record is, with what its acknowledgement is counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `newswatch_alerts_published_total{rule, severity}` once acknowledged.
    Alert { rule: String, severity: String },
    /// `newswatch_digests_published_total{rule}` once acknowledged.
    Digest { rule: String },
    /// `newswatch_dlq_records_total` once acknowledged.
    DeadLetter,
    /// A state changelog record.
    State,
    /// A match record for stage two.
    Match,
}

impl Kind {
    /// Its `kind` label in `newswatch_publish_errors_total`.
    pub fn metric(&self) -> RecordKind {
        match self {
            // A digest is a rule's output like an alert: its publish
            // errors count under `alert`.
            Kind::Alert { .. } | Kind::Digest { .. } => RecordKind::Alert,
            Kind::DeadLetter => RecordKind::DeadLetter,
            Kind::State => RecordKind::State,
            Kind::Match => RecordKind::Match,
        }
    }
}

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    /// A partition chosen here (internal topics), else the producer's
    /// partitioner (by key).
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    /// `None` only for a state tombstone.
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    pub kind: Kind,
}

/// Where a message was consumed: the dead letter's source headers.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// An undeliverable alert's bytes are cut to this many in its dead letter:
/// far below any topic's or producer's message limit (the producer's
/// `message.max.bytes` is at least about 2 MB, Kafka's default topic limit
/// 1 MB), so the dead letter is not refused for its size too.
pub const UNDELIVERABLE_MAX_BYTES: usize = 512 * 1024;

/// How many of an undeliverable alert's bytes its dead letter keeps, given
/// the producer's `message.max.bytes`: at most [`UNDELIVERABLE_MAX_BYTES`],
/// and at most half the producer's limit, leaving the other half to the
/// headers and the batch's framing.
pub fn undeliverable_cut(producer_max: Option<usize>) -> usize {
    producer_max.map_or(UNDELIVERABLE_MAX_BYTES, |m| {
        (m / 2).min(UNDELIVERABLE_MAX_BYTES)
    })
}

/// The `newswatch-error` of an alert refused for good.
pub const UNDELIVERABLE: &str = "undeliverable";

/// An owned [`Source`]: where the event of a batch of records was consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Origin {
    pub fn source(&self) -> Source<'_> {
        Source {
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
        }
    }
}

impl Record {
    /// An alert, on its rule's `topic`, else on `default_topic`.
    pub fn alert(a: &Alert, topic: Option<&String>, default_topic: &str) -> Record {
        Record {
            topic: topic.map_or_else(|| default_topic.to_owned(), Clone::clone),
            partition: None,
            key: Some(a.rule.id.clone().into_bytes()),
            payload: Some(serde_json::to_vec(a).unwrap_or_default()),
            headers: vec![
                ("newswatch-rule", a.rule.id.clone().into_bytes()),
                ("newswatch-severity", a.rule.severity.clone().into_bytes()),
                ("newswatch-alert-id", a.alert_id.clone().into_bytes()),
            ],
            kind: Kind::Alert {
                rule: a.rule.id.clone(),
                severity: a.rule.severity.clone(),
            },
        }
    }

    /// A digest, on its rule's topic (kept in the digest, so that a rule
    /// removed meanwhile still publishes its last digests), else on
    /// `default_topic`.
    pub fn digest(d: &Digest, default_topic: &str) -> Record {
        Record {
            topic: d.topic.clone().unwrap_or_else(|| default_topic.to_owned()),
            partition: None,
            key: Some(d.rule.id.clone().into_bytes()),
            payload: Some(serde_json::to_vec(d).unwrap_or_default()),
            headers: vec![
                ("newswatch-rule", d.rule.id.clone().into_bytes()),
                ("newswatch-severity", d.rule.severity.clone().into_bytes()),
                ("newswatch-digest-id", d.digest_id.clone().into_bytes()),
            ],
            kind: Kind::Digest {
                rule: d.rule.id.clone(),
            },
        }
    }

    /// A message that is no usable event, as it came (`key`, `payload`),
    /// with why and where from.
    pub fn dead_letter(
        topic: &str,
        source: Source<'_>,
        key: Option<Vec<u8>>,
        payload: Vec<u8>,
        error: &DecodeError,
    ) -> Record {
        Record {
            topic: topic.to_owned(),
            partition: None,
            key,
            payload: Some(payload),
            headers: vec![
                ("newswatch-error", error.reason.as_str().as_bytes().to_vec()),
                ("newswatch-error-detail", error.detail.clone().into_bytes()),
                ("newswatch-source-topic", source.topic.as_bytes().to_vec()),
                (
                    "newswatch-source-partition",
                    source.partition.to_string().into_bytes(),
                ),
                (
                    "newswatch-source-offset",
                    source.offset.to_string().into_bytes(),
                ),
            ],
            kind: Kind::DeadLetter,
        }
    }

    /// The dead letter of `alert`, a record the broker refused for good
    /// with `detail`: on the dead-letter `topic`, with the alert's key, its
    /// first `cut` bytes ([`undeliverable_cut`]), the topic it was meant
    /// for, its own headers, and where its event came from if `source` is
    /// known (stage two's alerts come from match records, not events).
    pub fn undeliverable(
        topic: &str,
        alert: &Record,
        detail: &str,
        source: Option<Source<'_>>,
        cut: usize,
    ) -> Record {
        let payload = alert.payload.as_deref().unwrap_or_default();
        let cut = &payload[..payload.len().min(cut)];
        let mut headers = vec![
            ("newswatch-error", UNDELIVERABLE.as_bytes().to_vec()),
            ("newswatch-error-detail", detail.as_bytes().to_vec()),
            ("newswatch-alert-topic", alert.topic.as_bytes().to_vec()),
            (
                "newswatch-alert-bytes",
                payload.len().to_string().into_bytes(),
            ),
        ];
        headers.extend(alert.headers.iter().cloned());
        if let Some(s) = source {
            headers.extend([
                ("newswatch-source-topic", s.topic.as_bytes().to_vec()),
                (
                    "newswatch-source-partition",
                    s.partition.to_string().into_bytes(),
                ),
                ("newswatch-source-offset", s.offset.to_string().into_bytes()),
            ]);
        }
        Record {
            topic: topic.to_owned(),
            partition: None,
            key: alert.key.clone(),
            payload: Some(cut.to_vec()),
            headers,
            kind: Kind::DeadLetter,
        }
    }

    /// A match record, on the `topic` partition (of `partitions`) that
    /// owns its rule and group.
    pub fn match_record(topic: &str, partitions: u32, rec: &MatchRecord) -> Record {
        Record {
            topic: topic.to_owned(),
            partition: Some(partition_of(&rec.rule, &rec.group, partitions)),
            key: Some(rec.key().into_bytes()),
            payload: Some(rec.to_json()),
            headers: Vec::new(),
            kind: Kind::Match,
        }
    }

    /// A change of stateful rules' state, on the changelog `topic`, in
    /// the `partition` whose match records caused it, by the owner of
    /// `epoch` (a header: tombstones have no value to carry it).
    pub fn state_change(topic: &str, partition: i32, epoch: u64, change: Change) -> Record {
        Record {
            topic: topic.to_owned(),
            partition: Some(partition),
            key: Some(change.key.into_bytes()),
            payload: change.value.map(String::into_bytes),
            headers: vec![(EPOCH_HEADER, epoch.to_string().into_bytes())],
            kind: Kind::State,
        }
    }

    /// The fence a new owner of `partition` writes to the changelog: from
    /// here on, records of older epochs are a previous owner's late writes.
    pub fn fence(topic: &str, partition: i32, epoch: u64) -> Record {
        Record {
            topic: topic.to_owned(),
            partition: Some(partition),
            key: Some(FENCE_KEY.as_bytes().to_vec()),
            payload: Some(format!("{{\"epoch\":{epoch}}}").into_bytes()),
            headers: vec![(EPOCH_HEADER, epoch.to_string().into_bytes())],
            kind: Kind::State,
        }
    }

    /// The record as the producer takes it (borrowing this one).
    pub fn future_record(&self) -> FutureRecord<'_, [u8], [u8]> {
        let mut headers = OwnedHeaders::new_with_capacity(self.headers.len());
        for (k, v) in &self.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_slice()),
            });
        }
        let mut r = FutureRecord::to(&self.topic).headers(headers);
        if let Some(p) = &self.payload {
            r = r.payload(p.as_slice());
        }
        if let Some(k) = &self.key {
            r = r.key(k.as_slice());
        }
        if let Some(p) = self.partition {
            r = r.partition(p);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use newswatch_core::alert::{AlertEvent, AlertRule, SCHEMA};
    use newswatch_core::event::Reason;
    use std::collections::BTreeMap;

    fn alert() -> Alert {
        Alert {
            schema: SCHEMA.into(),
            alert_id: "3f1c0000000000000000000000000001".into(),
            rule: AlertRule {
                id: "ru-mfa-statement".into(),
                title: "Statement from the Russian foreign ministry".into(),
                severity: "high".into(),
                labels: BTreeMap::new(),
            },
            mode: "each".into(),
            group: BTreeMap::new(),
            event_time: Some("2026-07-12T09:00:00Z".into()),
            event: AlertEvent {
                id: serde_json::json!("a17"),
                title: Some("Lavrov warns".into()),
                source: None,
                url: None,
                lang: None,
                published_at: None,
            },
            matches: vec![],
            matches_omitted: 0,
            snippet: String::new(),
            story: None,
            count: None,
            sources: None,
            baseline: None,
            suppressed: 0,
        }
    }

    fn bytes(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    /// A record against what it must be: topic, key, headers, payload, kind.
    fn check(
        got: Record,
        topic: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        payload: Option<&[u8]>,
        kind: Kind,
    ) {
        assert_eq!(got.topic, topic);
        assert_eq!(got.key, key.map(bytes), "key of {topic}");
        let got_headers: Vec<(&str, String)> = got
            .headers
            .iter()
            .map(|(k, v)| (*k, String::from_utf8_lossy(v).into_owned()))
            .collect();
        let want_headers: Vec<(&str, String)> =
            headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        assert_eq!(got_headers, want_headers, "headers of {topic}");
        assert_eq!(got.payload.as_deref(), payload, "payload of {topic}");
        assert_eq!(got.kind, kind);
    }

    #[test]
    fn records_table() {
        let a = alert();
        let alert_json = serde_json::to_vec(&a).unwrap();
        let alert_headers = [
            ("newswatch-rule", "ru-mfa-statement"),
            ("newswatch-severity", "high"),
            ("newswatch-alert-id", "3f1c0000000000000000000000000001"),
        ];
        let alert_kind = Kind::Alert {
            rule: "ru-mfa-statement".into(),
            severity: "high".into(),
        };
        let bad = DecodeError {
            reason: Reason::NotJson,
            detail: "expected value at line 1 column 1".into(),
        };
        let source = Source {
            topic: "news.events",
            partition: 3,
            offset: 1234,
        };
        let rule_topic = "alerts.geo".to_owned();
        // (record, topic, key, headers, payload, kind)
        type Row<'a> = (
            Record,
            &'a str,
            Option<&'a str>,
            &'a [(&'a str, &'a str)],
            Option<&'a [u8]>,
            Kind,
        );
        let table: Vec<Row> = vec![
            (
                Record::alert(&a, None, "news.alerts"),
                "news.alerts",
                Some("ru-mfa-statement"),
                &alert_headers,
                Some(&alert_json),
                alert_kind.clone(),
            ),
            (
                Record::alert(&a, Some(&rule_topic), "news.alerts"),
                "alerts.geo",
                Some("ru-mfa-statement"),
                &alert_headers,
                Some(&alert_json),
                alert_kind,
            ),
            (
                Record::dead_letter("news.dlq", source, Some(bytes("k1")), bytes("{oops"), &bad),
                "news.dlq",
                Some("k1"),
                &[
                    ("newswatch-error", "not_json"),
                    (
                        "newswatch-error-detail",
                        "expected value at line 1 column 1",
                    ),
                    ("newswatch-source-topic", "news.events"),
                    ("newswatch-source-partition", "3"),
                    ("newswatch-source-offset", "1234"),
                ],
                Some(b"{oops"),
                Kind::DeadLetter,
            ),
            // A message without a key keeps having none.
            (
                Record::dead_letter("news.dlq", source, None, Vec::new(), &bad),
                "news.dlq",
                None,
                &[
                    ("newswatch-error", "not_json"),
                    (
                        "newswatch-error-detail",
                        "expected value at line 1 column 1",
                    ),
                    ("newswatch-source-topic", "news.events"),
                    ("newswatch-source-partition", "3"),
                    ("newswatch-source-offset", "1234"),
                ],
                Some(b""),
                Kind::DeadLetter,
            ),
            (
                Record::state_change(
                    "newswatch-state-changelog",
                    2,
                    7,
                    Change {
                        key: "t|r|g".into(),
                        value: Some("{\"n\":2}".into()),
                    },
                ),
                "newswatch-state-changelog",
                Some("t|r|g"),
                &[("newswatch-epoch", "7")],
                Some(b"{\"n\":2}"),
                Kind::State,
            ),
            // A deletion is a tombstone: a key and no value.
            (
                Record::state_change(
                    "newswatch-state-changelog",
                    2,
                    7,
                    Change {
                        key: "t|r|g".into(),
                        value: None,
                    },
                ),
                "newswatch-state-changelog",
                Some("t|r|g"),
                &[("newswatch-epoch", "7")],
                None,
                Kind::State,
            ),
        ];
        for (record, topic, key, headers, payload, kind) in table {
            check(record, topic, key, headers, payload, kind);
        }
    }

    /// An undeliverable alert: its headers, then the source's where known;
    /// its bytes cut to the limit, never more.
    #[test]
    fn undeliverable_table() {
        let a = Record::alert(&alert(), None, "news.alerts");
        let n = a.payload.as_ref().map_or(0, Vec::len).to_string();
        let mut big = a.clone();
        big.payload = Some(vec![b'x'; UNDELIVERABLE_MAX_BYTES + 10]);
        let big_n = (UNDELIVERABLE_MAX_BYTES + 10).to_string();
        let cut = vec![b'x'; UNDELIVERABLE_MAX_BYTES];
        let origin = Origin {
            topic: "news.events".into(),
            partition: 3,
            offset: 1234,
        };
        let detail = "Broker: Unknown topic or partition";
        let base = |len: &str| -> Vec<(&'static str, String)> {
            vec![
                ("newswatch-error", "undeliverable".into()),
                ("newswatch-error-detail", detail.into()),
                ("newswatch-alert-topic", "news.alerts".into()),
                ("newswatch-alert-bytes", len.into()),
                ("newswatch-rule", "ru-mfa-statement".into()),
                ("newswatch-severity", "high".into()),
                (
                    "newswatch-alert-id",
                    "3f1c0000000000000000000000000001".into(),
                ),
            ]
        };
        let with_source = |mut h: Vec<(&'static str, String)>| {
            h.push(("newswatch-source-topic", "news.events".into()));
            h.push(("newswatch-source-partition", "3".into()));
            h.push(("newswatch-source-offset", "1234".into()));
            h
        };
        // (alert, source, headers, payload)
        type Row<'a> = (
            &'a Record,
            Option<Source<'a>>,
            Vec<(&'a str, String)>,
            &'a [u8],
        );
        let table: Vec<Row> = vec![
            (
                &a,
                Some(origin.source()),
                with_source(base(&n)),
                a.payload.as_deref().unwrap(),
            ),
            (&a, None, base(&n), a.payload.as_deref().unwrap()),
            (&big, None, base(&big_n), &cut),
        ];
        for (alert, source, headers, payload) in table {
            let got =
                Record::undeliverable("news.dlq", alert, detail, source, UNDELIVERABLE_MAX_BYTES);
            let want: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            check(
                got,
                "news.dlq",
                Some("ru-mfa-statement"),
                &want,
                Some(payload),
                Kind::DeadLetter,
            );
        }
    }

    #[test]
    fn digest_records_table() {
        let a = alert();
        let mut d = Digest {
            schema: newswatch_core::state::digest::SCHEMA.into(),
            digest_id: "d1ge5700000000000000000000000001".into(),
            rule: a.rule.clone(),
            group: BTreeMap::new(),
            period: newswatch_core::state::digest::Period {
                start: "2026-07-12T00:00:00Z".into(),
                end: "2026-07-13T00:00:00Z".into(),
            },
            count: 1,
            omitted: 0,
            late: 0,
            items: vec![newswatch_core::state::digest::DigestItem::of(&a)],
            topic: None,
        };
        let headers = [
            ("newswatch-rule", "ru-mfa-statement"),
            ("newswatch-severity", "high"),
            ("newswatch-digest-id", "d1ge5700000000000000000000000001"),
        ];
        let kind = Kind::Digest {
            rule: "ru-mfa-statement".into(),
        };
        let json = serde_json::to_vec(&d).unwrap();
        let text = String::from_utf8_lossy(&json).into_owned();
        assert!(
            text.starts_with(r#"{"schema":"newswatch.digest.v1","digest_id":"#),
            "{text}"
        );
        assert!(!text.contains("topic"), "{text}");
        for (topic, want) in [(None, "news.alerts"), (Some("alerts.geo"), "alerts.geo")] {
            d.topic = topic.map(str::to_owned);
            let got = Record::digest(&d, "news.alerts");
            let key = Some("ru-mfa-statement");
            check(got, want, key, &headers, Some(&json), kind.clone());
        }
        assert_eq!(kind.metric(), RecordKind::Alert);
    }

    #[test]
    fn undeliverable_cut_table() {
        let check =
            |max: Option<usize>, want: usize| assert_eq!(undeliverable_cut(max), want, "{max:?}");
        check(None, UNDELIVERABLE_MAX_BYTES);
        check(Some(2_065_536), UNDELIVERABLE_MAX_BYTES);
        check(Some(1_000_000), 500_000);
        check(Some(4_000), 2_000);
        check(Some(0), 0);
    }

    #[test]
    fn kinds_are_counted_under_their_labels() {
        use crate::metrics::Label;
        let alert = Kind::Alert {
            rule: "r".into(),
            severity: "low".into(),
        };
        for (kind, label) in [
            (alert, "alert"),
            (Kind::DeadLetter, "dlq"),
            (Kind::State, "state"),
            (Kind::Match, "match"),
        ] {
            assert_eq!(kind.metric().as_str(), label);
        }
    }

    #[test]
    fn future_record_carries_everything() {
        use rdkafka::message::Headers;
        let r = Record::alert(&alert(), None, "news.alerts");
        let f = r.future_record();
        assert_eq!(f.topic, "news.alerts");
        assert_eq!(f.key, Some(&b"ru-mfa-statement"[..]));
        assert_eq!(f.payload, r.payload.as_deref());
        let h = f.headers.as_ref().unwrap();
        assert_eq!(h.count(), 3);
        assert_eq!(h.get(1).key, "newswatch-severity");
        assert_eq!(h.get(1).value, Some(&b"high"[..]));
        let tombstone = Record::state_change(
            "c",
            4,
            1,
            Change {
                key: "k".into(),
                value: None,
            },
        );
        assert_eq!(tombstone.future_record().payload, None);
        assert_eq!(tombstone.future_record().partition, Some(4));
        assert_eq!(r.future_record().partition, None);
    }

    /// A match record goes to the partition that owns its rule and group,
    /// keyed by both, and its changes to the changelog partition of the
    /// same number.
    #[test]
    fn match_records_are_partitioned_by_rule_and_group() {
        let mut group = BTreeMap::new();
        group.insert("source".to_owned(), serde_json::json!("tass.ru"));
        let rec = MatchRecord {
            v: newswatch_core::state::MATCH_RECORD_VERSION,
            rule: "r".into(),
            fp: "00".into(),
            group: group.clone(),
            input: newswatch_core::state::Input {
                event: "e1".into(),
                time: Some(0),
                story_id: None,
                signature: None,
                text_key: None,
                value: None,
                no_distinct: false,
            },
            alert: alert(),
        };
        for n in [1, 3, 6] {
            let r = Record::match_record("g-matches", n, &rec);
            assert_eq!(r.topic, "g-matches");
            assert_eq!(r.partition, Some(partition_of("r", &group, n)));
            assert_eq!(r.key.as_deref(), Some(rec.key().as_bytes()));
            assert_eq!(r.kind, Kind::Match);
            let back = MatchRecord::from_json(r.payload.as_deref().unwrap()).unwrap();
            assert_eq!(back, rec);
        }
    }
}
