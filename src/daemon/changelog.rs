//! The state changelog: where stateful rules keep their state in Kafka.
//!
//! This is the Kafka Streams state-store design, on the state of
//! [`newswatch_core::state::Store`]: every change is a record in a compacted
//! topic, `<group_id>-state-changelog`, keyed by rule and group (and story),
//! in the partition of the same number as the match records it came from
//! (`owner.rs` is the only writer of a partition while it owns it).
//!
//! **Restore.** When stage two is assigned a partition, that changelog
//! partition is read from its low watermark to its end into a fresh store,
//! before any match record of the partition is decided. The end is the
//! partition's end-of-file event (`enable.partition.eof`), not "the offset
//! before the high watermark": that offset may no longer exist (compaction,
//! DeleteRecords), and a partition whose low and high watermarks are equal
//! holds nothing to read at all.
//!
//! Records of the format before partitioned state (keys without a version)
//! are skipped and counted, with one log line: that state starts fresh
//! (the operator guide's upgrade procedure says so).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::ratelimit::LogLimiter;
use crate::config::KafkaConfig;
use crate::metrics::{KafkaClient, Metrics};
use newswatch_core::state::{StateError, Store};

/// How long one metadata or watermark request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays while the changelog's watermarks cannot be read.
const READ_RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    /// A client could not be created (a bad property).
    #[error("state changelog client: {0}")]
    Client(#[from] KafkaError),
}

/// Client properties shared by every client: the brokers, then the user's
/// properties (security settings live there).
pub fn base_config(k: &KafkaConfig, props: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    for (key, v) in props {
        c.set(key, v);
    }
    c
}

/// Where one partition's restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing to read: the partition is empty (low watermark = high).
    Empty,
    /// Reading; done at the partition's end.
    Reading,
}

/// What to do with a partition given its watermarks (pure; unit-tested).
pub fn start(low: i64, high: i64) -> Progress {
    if high <= low {
        Progress::Empty
    } else {
        Progress::Reading
    }
}

/// The header that carries the writing owner's epoch on every changelog
/// record (a tombstone has no value to carry it in).
pub const EPOCH_HEADER: &str = "newswatch-epoch";
/// The key of the fence record an owner writes when it takes a partition.
pub const FENCE_KEY: &str = "2\u{1f}fence";

/// Whether a record of `epoch` is applied, given the highest epoch seen so
/// far in its partition (pure; unit-tested). An owner whose session
/// expired may still write for a moment after the next owner fenced the
/// partition; those writes carry an older epoch and are skipped, so every
/// restore sees exactly the state the current owner decided on.
pub fn admit(epoch: u64, highest: &mut u64) -> bool {
    if epoch < *highest {
        return false;
    }
    *highest = epoch;
    true
}

/// One partition's restored state.
pub struct Partition {
    pub store: Store,
    /// The highest owner epoch seen (0 for a partition never owned).
    pub epoch: u64,
    /// The offset after the last record read.
    pub next: i64,
}

/// A plain reader of the changelog: partitions are assigned by hand and
/// nothing is committed, so it never joins a group. librdkafka still wants
/// a group.id for `assign` ("Unknown group" otherwise); it must not be one
/// of the daemon's groups.
fn reader(k: &KafkaConfig) -> Result<BaseConsumer<QuietEof>, KafkaError> {
    let mut c = base_config(k, &k.consumer_properties);
    c.set("group.id", format!("{}.state-reader", k.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .remove("group.instance.id");
    c.create_with_context(QuietEof)
}

/// The reader's callbacks: librdkafka's log into tracing; the end of a
/// partition, which the reader waits for, is not an error worth a line.
pub struct QuietEof;

impl ClientContext for QuietEof {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        super::kafka::log_with(level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_)) {
            tracing::warn!(target: "librdkafka", client = "changelog", error = %error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for QuietEof {}

/// Read changelog partitions `parts` into one new store each, from their
/// low watermarks to their ends. Blocks; run it with `spawn_blocking`.
/// `None` when stopped before it finished.
pub fn restore(
    k: &KafkaConfig,
    topic: &str,
    parts: &[i32],
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Result<Option<HashMap<i32, Partition>>, ChangelogError> {
    let mut out: HashMap<i32, Partition> = parts
        .iter()
        .map(|&p| {
            let part = Partition {
                store: Store::new(),
                epoch: 0,
                next: 0,
            };
            (p, part)
        })
        .collect();
    if parts.is_empty() {
        return Ok(Some(out));
    }
    let consumer = reader(k)?;
    let started = Instant::now();
    let Some(watermarks) = watermarks(&consumer, topic, parts, metrics, stop) else {
        return Ok(None);
    };
    let mut plan = Vec::new();
    for &(p, low, high) in &watermarks {
        if let Some(part) = out.get_mut(&p) {
            part.next = low;
        }
        if start(low, high) == Progress::Reading {
            plan.push((p, low, high));
        }
    }
    let Some(records) = read(&consumer, topic, &plan, &mut out, metrics, stop)? else {
        return Ok(None);
    };
    let (stories, groups) = out.values().fold((0, 0), |(a, b), part| {
        let (x, y) = part.store.sizes();
        (a + x, b + y)
    });
    tracing::info!(
        topic,
        partitions = ?parts,
        records,
        stories,
        groups,
        took_ms = started.elapsed().as_millis() as u64,
        "state restored"
    );
    Ok(Some(out))
}

/// Read on from where `part` stopped up to and including offset `last` of
/// partition `p` (the new owner's fence record): what a previous owner
/// wrote between the restore and the fence. Blocks. `false` when stopped.
pub fn catch_up(
    k: &KafkaConfig,
    topic: &str,
    p: i32,
    last: i64,
    part: &mut Partition,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Result<bool, ChangelogError> {
    if part.next > last {
        return Ok(true);
    }
    let consumer = reader(k)?;
    let mut one = HashMap::new();
    let taken = std::mem::replace(
        part,
        Partition {
            store: Store::new(),
            epoch: 0,
            next: 0,
        },
    );
    let from = taken.next;
    one.insert(p, taken);
    let done = read(
        &consumer,
        topic,
        &[(p, from, last + 1)],
        &mut one,
        metrics,
        stop,
    )?;
    if let Some(back) = one.remove(&p) {
        *part = back;
    }
    Ok(done.is_some())
}

/// Read each `(partition, from, high)` until the partition's end (or
/// `high`), applying records to its store. The number of records read, or
/// `None` when stopped.
fn read(
    consumer: &BaseConsumer<QuietEof>,
    topic: &str,
    plan: &[(i32, i64, i64)],
    parts: &mut HashMap<i32, Partition>,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Result<Option<u64>, ChangelogError> {
    let mut tpl = TopicPartitionList::new();
    let mut reading: HashMap<i32, i64> = HashMap::new();
    for &(p, from, high) in plan {
        tpl.add_partition_offset(topic, p, Offset::Offset(from))?;
        reading.insert(p, high);
    }
    if reading.is_empty() {
        return Ok(Some(0));
    }
    consumer.assign(&tpl)?;
    let (mut records, mut old_format, mut fenced) = (0u64, 0u64, 0u64);
    let mut error_log = LogLimiter::new(Duration::from_secs(10));
    while !reading.is_empty() {
        if stop.is_cancelled() {
            return Ok(None);
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                reading.remove(&p);
            }
            Some(Err(e)) => {
                metrics.kafka_client_error(KafkaClient::Changelog);
                if let Some(held_back) = error_log.allow() {
                    tracing::warn!(topic, error = %e, held_back, "state changelog read error (retrying)");
                }
            }
            Some(Ok(m)) => {
                records += 1;
                let (p, off) = (m.partition(), m.offset());
                if let Some(part) = parts.get_mut(&p) {
                    part.next = part.next.max(off + 1);
                    match load(part, &m) {
                        Ok(()) => {}
                        Err(Skip::Fenced) => fenced += 1,
                        Err(Skip::OldFormat) => old_format += 1,
                        Err(Skip::Bad(e)) => skipped(metrics, e),
                    }
                }
                if reading.get(&p).is_some_and(|&high| off + 1 >= high) {
                    reading.remove(&p);
                }
            }
        }
    }
    if old_format > 0 {
        tracing::warn!(
            topic,
            records = old_format,
            "the state changelog holds records of the format before partitioned state; \
             they are skipped and that state starts fresh (see the operator guide, \"Upgrading\")"
        );
    }
    if fenced > 0 {
        tracing::info!(
            topic,
            records = fenced,
            "skipped changelog records a previous owner wrote after it was fenced off"
        );
    }
    Ok(Some(records))
}

/// `(partition, low, high)` for each partition, retried while the broker
/// does not answer. `None` when stopped meanwhile.
fn watermarks(
    consumer: &BaseConsumer<QuietEof>,
    topic: &str,
    parts: &[i32],
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Option<Vec<(i32, i64, i64)>> {
    let mut backoff = READ_RETRY;
    loop {
        let got: Result<Vec<_>, KafkaError> = parts
            .iter()
            .map(|&p| {
                consumer
                    .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
                    .map(|(low, high)| (p, low, high))
            })
            .collect();
        match got {
            Ok(v) => return Some(v),
            Err(e) => {
                metrics.kafka_client_error(KafkaClient::Changelog);
                tracing::warn!(topic, error = %e, retry_in = ?backoff.peek(), "cannot read the state changelog yet");
            }
        }
        let until = Instant::now() + backoff.next();
        while Instant::now() < until {
            if stop.is_cancelled() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

enum Skip {
    /// Written by an owner after a later one fenced the partition.
    Fenced,
    OldFormat,
    Bad(String),
}

/// Apply a changelog message to its partition's store: a UTF-8 key, and a
/// UTF-8 value or none (a tombstone), from a current owner. Anything else
/// is not a record newswatch wrote.
fn load(part: &mut Partition, m: &BorrowedMessage<'_>) -> Result<(), Skip> {
    let key = m
        .key()
        .and_then(|k| std::str::from_utf8(k).ok())
        .ok_or_else(|| Skip::Bad("record without a UTF-8 key".into()))?;
    let epoch = m
        .headers()
        .and_then(|h| {
            h.iter()
                .find(|h| h.key == EPOCH_HEADER)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    if !admit(epoch, &mut part.epoch) {
        return Err(Skip::Fenced);
    }
    if key == FENCE_KEY {
        return Ok(());
    }
    let value = match m.payload().map(std::str::from_utf8) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return Err(Skip::Bad("record value is not UTF-8".into())),
    };
    match part.store.load(key, value) {
        Ok(()) => Ok(()),
        Err(StateError::OldFormat) => Err(Skip::OldFormat),
        Err(e) => Err(Skip::Bad(e.to_string())),
    }
}

/// A record that cannot be applied: counted and logged, never fatal.
fn skipped(metrics: &Metrics, error: impl std::fmt::Display) {
    metrics.state_record_invalid();
    tracing::warn!(error = %error, "state changelog record skipped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_a_restore_starts() {
        for (low, high, expected) in [
            (0, 0, Progress::Empty),
            // Retention or DeleteRecords moved the low watermark to the end:
            // nothing to wait for (this used to wait for high - 1 forever).
            (57, 57, Progress::Empty),
            (0, 1, Progress::Reading),
            (10, 57, Progress::Reading),
        ] {
            assert_eq!(start(low, high), expected, "{low}..{high}");
        }
    }

    /// Epochs in offset order: a record older than the newest owner seen is
    /// a fenced-off owner's late write, skipped.
    #[test]
    fn fenced_writes_are_skipped() {
        for (epochs, expected) in [
            (&[0, 0, 1, 1][..], &[true, true, true, true][..]),
            (&[1, 2, 1, 2, 3], &[true, true, false, true, true]),
            // Records of the format before epochs (no header: 0) before any fence.
            (&[0, 1, 0], &[true, true, false]),
        ] {
            let mut highest = 0;
            let got: Vec<bool> = epochs.iter().map(|&e| admit(e, &mut highest)).collect();
            assert_eq!(got, expected, "{epochs:?}");
        }
    }
}
