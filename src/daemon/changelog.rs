//! The state changelog: where stateful rules keep their state in Kafka.
//!
//! This is the Kafka Streams state-store design, on the state of
//! [`newswatch_core::state::Store`]: every change is a record in a compacted topic,
//! `<group_id>-state-changelog`, keyed by rule and group (and story). The
//! pipeline writes a change with the alerts of the event that caused it, and
//! an input offset is stored only after all of them are acknowledged, so the
//! changelog is never behind the committed input.
//!
//! * **Restore.** Before the consumer joins its group, the topic is read from
//!   the beginning to its end (the high watermark at start), into a fresh
//!   store. Then the consumer subscribes. So after a restart or `kill -9`
//!   no story alerts twice and no threshold loses its count.
//! * **Tail.** The reader then keeps following the topic for as long as the
//!   daemon runs, and hands every record to the pipeline loop. State is
//!   not split by input partition (a story's copies arrive on any
//!   partition), so each instance of a group holds all of it: records
//!   written by the others are applied as they arrive, and an instance that
//!   takes over partitions already has their state. Its own records come
//!   back too; the store skips them by writer id.
//! * The topic is created when missing (compacted, one partition; Tansu and
//!   brokers without auto-creation need this). Keys are stable across
//!   processes, so compaction keeps one record per live story and group,
//!   and evicted state is deleted with tombstones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::ratelimit::LogLimiter;
use crate::config::KafkaConfig;
use crate::metrics::{KafkaClient, Metrics};
use newswatch_core::state::Store;

/// How long one metadata or watermark request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays while the broker cannot create or describe the topic.
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
/// Read errors of the tail are logged at most this often (all are counted).
const TAIL_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// Records buffered between the tail reader and the pipeline loop.
const TAIL_BUFFER: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    /// A client could not be created (a bad property).
    #[error("state changelog client: {0}")]
    Client(#[from] KafkaError),
    /// The topic cannot be created and does not exist (e.g. no ACL).
    #[error("state changelog topic {topic}: cannot create it: {error}")]
    Create { topic: String, error: String },
}

/// The changelog topic of a consumer group.
pub fn topic_name(group_id: &str) -> String {
    format!("{group_id}-state-changelog")
}

/// A record from the changelog: key, value (`None` is a tombstone).
pub type TailRecord = (String, Option<String>);

/// A restored store and the reader that keeps following the topic.
pub struct Restored {
    pub store: Store,
    pub records: u64,
    pub tail: mpsc::Receiver<TailRecord>,
}

fn base_config(
    k: &KafkaConfig,
    props: &std::collections::BTreeMap<String, String>,
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    // Security settings (SASL, SSL) live in the user's properties.
    for (key, v) in props {
        c.set(key, v);
    }
    c
}

/// Create the topic unless it exists. Retries while the broker is
/// unreachable; `Ok(false)` when shut down meanwhile.
pub async fn ensure_topic(
    k: &KafkaConfig,
    topic: &str,
    shutdown: &CancellationToken,
) -> Result<bool, ChangelogError> {
    let admin: AdminClient<DefaultClientContext> =
        base_config(k, &k.producer_properties).create()?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
    let opts = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    let mut backoff = RETRY;
    loop {
        let res = tokio::select! {
            _ = shutdown.cancelled() => return Ok(false),
            r = admin.create_topics([&new], &opts) => r,
        };
        let err = match res {
            Ok(results) => match results.into_iter().next() {
                Some(Ok(_)) => {
                    tracing::info!(topic, "state changelog topic created");
                    return Ok(true);
                }
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => return Ok(true),
                // Replication factor -1 ("the broker's default") needs
                // KIP-464; older brokers refuse it. Ask for 1 then, loudly.
                Some(Err((_, RDKafkaErrorCode::InvalidReplicationFactor))) => {
                    tracing::warn!(topic, "broker refuses its default replication factor; creating the state changelog with replication factor 1 (create it yourself for more)");
                    let one = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
                        .set("cleanup.policy", "compact");
                    match admin.create_topics([&one], &opts).await {
                        Ok(r) => match r.into_iter().next() {
                            Some(Ok(_))
                            | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists)))
                            | None => return Ok(true),
                            Some(Err((_, code))) => code.to_string(),
                        },
                        Err(e) => e.to_string(),
                    }
                }
                Some(Err((_, code))) if is_transient(code) => code.to_string(),
                Some(Err((_, code))) => {
                    return Err(ChangelogError::Create {
                        topic: topic.to_owned(),
                        error: code.to_string(),
                    })
                }
            },
            Err(e) => e.to_string(),
        };
        let delay = backoff.next();
        tracing::warn!(
            topic,
            "cannot create the state changelog topic yet, retrying in {delay:?}: {err}"
        );
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(false),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn is_transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::NotController
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NetworkException
    )
}

/// Read the whole topic into a new store (this instance is `writer`), then
/// keep following it on a thread of its own until `stop`. Blocks; run it
/// with `spawn_blocking`. `None` when stopped before the restore finished.
pub fn restore(
    k: &KafkaConfig,
    topic: &str,
    writer: &str,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> Result<Option<Restored>, ChangelogError> {
    let consumer: BaseConsumer = {
        let mut c = base_config(k, &k.consumer_properties);
        // A plain reader: partitions are assigned by hand and nothing is
        // committed, so it never joins a group. librdkafka still wants a
        // group.id for `assign` ("Unknown group" otherwise); it must not be
        // the input group's.
        c.set("group.id", format!("{}.state-reader", k.group_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        c.create()?
    };
    let started = Instant::now();
    let mut backoff = RETRY;
    // The partitions and where they end now.
    let ends: Vec<(i32, i64)> = loop {
        if stop.is_cancelled() {
            return Ok(None);
        }
        match partitions_and_ends(&consumer, topic) {
            Ok(v) => break v,
            Err(e) => {
                let delay = backoff.next();
                tracing::warn!(
                    topic,
                    "cannot read the state changelog yet, retrying in {delay:?}: {e}"
                );
                sleep_unless_stopped(delay, &stop);
            }
        }
    };
    let mut tpl = TopicPartitionList::new();
    for (p, _) in &ends {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut store = Store::new(writer);
    let mut records = 0u64;
    let mut pending: Vec<(i32, i64)> = ends.into_iter().filter(|(_, end)| *end > 0).collect();
    while !pending.is_empty() {
        if stop.is_cancelled() {
            return Ok(None);
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => {
                metrics.kafka_client_error(KafkaClient::Changelog);
                tracing::warn!(topic, "state changelog read error (retrying): {e}");
            }
            Some(Ok(m)) => {
                records += 1;
                match decode(&m) {
                    Ok(rec) => apply_tailed(&mut store, &metrics, rec),
                    Err(e) => skipped(&metrics, e),
                }
                let (p, off) = (m.partition(), m.offset());
                pending.retain(|(q, end)| !(*q == p && off + 1 >= *end));
            }
        }
    }
    let (stories, groups) = store.sizes();
    tracing::info!(
        topic,
        records,
        stories,
        groups,
        took_ms = started.elapsed().as_millis() as u64,
        "state restored"
    );
    metrics.state_sizes(stories, groups);

    let (tx, rx) = mpsc::channel(TAIL_BUFFER);
    let topic_owned = topic.to_owned();
    std::thread::Builder::new()
        .name("newswatch-changelog".into())
        .spawn(move || tail(consumer, &topic_owned, tx, &metrics, stop))
        .map_err(|e| ChangelogError::Create {
            topic: topic.to_owned(),
            error: format!("cannot start the changelog reader: {e}"),
        })?;
    Ok(Some(Restored {
        store,
        records,
        tail: rx,
    }))
}

/// Sleep `d` on this (blocking) thread, waking early when `stop` is
/// cancelled: a restore waiting for the broker must not hold up shutdown.
fn sleep_unless_stopped(d: Duration, stop: &CancellationToken) {
    const SLICE: Duration = Duration::from_millis(50);
    let until = Instant::now() + d;
    while !stop.is_cancelled() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(SLICE));
    }
}

/// The topic's partitions, each with its high watermark.
fn partitions_and_ends(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<Vec<(i32, i64)>, KafkaError> {
    let md = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if parts.is_empty() {
        return Err(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ));
    }
    parts
        .into_iter()
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
                .map(|(_, high)| (p, high))
        })
        .collect()
}

/// A changelog message as a record: a UTF-8 key, and a UTF-8 value or none
/// (a tombstone). Anything else is not a record newswatch wrote.
fn decode(m: &BorrowedMessage<'_>) -> Result<TailRecord, &'static str> {
    let key = m
        .key()
        .and_then(|k| std::str::from_utf8(k).ok())
        .ok_or("record without a UTF-8 key")?;
    let value = match m.payload().map(std::str::from_utf8) {
        None => None,
        Some(Ok(v)) => Some(v.to_owned()),
        Some(Err(_)) => return Err("record value is not UTF-8"),
    };
    Ok((key.to_owned(), value))
}

/// Follow the topic until `stop`, handing records to the pipeline loop.
fn tail(
    consumer: BaseConsumer,
    topic: &str,
    tx: mpsc::Sender<TailRecord>,
    metrics: &Metrics,
    stop: CancellationToken,
) {
    let mut error_log = LogLimiter::new(TAIL_ERROR_LOG_EVERY);
    while !stop.is_cancelled() {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => {
                metrics.kafka_client_error(KafkaClient::Changelog);
                if let Some(held_back) = error_log.allow() {
                    tracing::warn!(
                        topic,
                        held_back,
                        "state changelog read error (retrying): {e}"
                    );
                }
            }
            Some(Ok(m)) => {
                let rec = match decode(&m) {
                    Ok(rec) => rec,
                    Err(e) => {
                        skipped(metrics, e);
                        continue;
                    }
                };
                if tx.blocking_send(rec).is_err() {
                    return; // the pipeline is gone
                }
            }
        }
    }
}

/// Apply a changelog record: restored, written by another instance, or
/// this one's own echo.
pub fn apply_tailed(store: &mut Store, metrics: &Metrics, rec: TailRecord) {
    if let Err(e) = store.load(&rec.0, rec.1.as_deref()) {
        skipped(metrics, e);
    }
}

/// A record that cannot be applied: counted and logged, never fatal.
fn skipped(metrics: &Metrics, error: impl std::fmt::Display) {
    metrics.state_record_invalid();
    tracing::warn!(error = %error, "state changelog record skipped");
}
