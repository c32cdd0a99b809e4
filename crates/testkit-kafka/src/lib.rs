//! Test support for newswatch that links librdkafka (`publish = false`):
//! a producer that waits out a full queue, readers that collect a topic's
//! records, and a group's committed offsets and a topic's end offsets.
//!
//! Kept apart from `newswatch-testkit` so that what needs no Kafka client
//! (the engine's benches) builds without librdkafka.
//!
//! Every record a reader receives passes `schemas::check_record`: an alert
//! or digest that breaks its JSON Schema, or whose key and headers disagree
//! with it, fails the test that reads it, whichever topic it was read from.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use newswatch_testkit::{schemas, unique};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

/// A producer for test input (`linger.ms` 1 unless told otherwise).
pub struct Producer {
    inner: ThreadedProducer<DefaultProducerContext>,
}

impl Producer {
    /// Panics when the client cannot be created.
    pub fn new(brokers: &str) -> Producer {
        Self::with(brokers, &[]).unwrap_or_else(|e| panic!("producer for {brokers}: {e}"))
    }

    /// A producer with extra client properties (they override the defaults).
    pub fn with(brokers: &str, props: &[(&str, &str)]) -> Result<Producer, KafkaError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", brokers)
            .set("linger.ms", "1")
            .set("message.max.bytes", "10000000");
        for (k, v) in props {
            c.set(*k, *v);
        }
        Ok(Producer { inner: c.create()? })
    }

    /// Queue one record, waiting while librdkafka's queue is full; panics on
    /// any other error.
    pub fn send(&self, topic: &str, partition: Option<i32>, key: Option<&[u8]>, payload: &[u8]) {
        self.try_send(topic, partition, key, payload)
            .unwrap_or_else(|e| panic!("produce to {topic} failed: {e}"));
    }

    /// Queue one record with headers (as a publisher of alerts would);
    /// panics on any error but a full queue, which it waits out.
    pub fn send_with_headers(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: &[(&str, &str)],
    ) {
        let mut h = OwnedHeaders::new();
        for (k, v) in headers {
            h = h.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).payload(payload).key(key).headers(h);
        loop {
            match self.inner.send(rec) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("produce to {topic} failed: {e}"),
            }
        }
    }

    /// Queue one record, waiting while librdkafka's queue is full.
    pub fn try_send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), KafkaError> {
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(payload);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(p) = partition {
            rec = rec.partition(p);
        }
        loop {
            match self.inner.send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Wait up to 30 s for every queued record; panics when they are not out.
    pub fn flush(&self) {
        self.try_flush(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("flush: {e}"));
    }

    pub fn try_flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.flush(Timeout::After(timeout))
    }
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl Record {
    /// The payload as JSON; panics when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("record at offset {} is not JSON: {e}", self.offset))
    }

    /// The record as read; panics when it is an alert or digest that
    /// breaks its schema (see the crate docs).
    fn from_message(m: &impl Message) -> Record {
        let mut headers = HashMap::new();
        if let Some(h) = m.headers() {
            for x in h.iter() {
                headers.insert(
                    x.key.to_owned(),
                    String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                );
            }
        }
        let r = Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
        };
        if let Err(e) = schemas::check_record(r.key.as_deref(), &r.payload, &r.headers) {
            panic!(
                "record {}/{}@{}: {e}\npayload: {}",
                m.topic(),
                r.partition,
                r.offset,
                String::from_utf8_lossy(&r.payload)
            );
        }
        r
    }
}

/// A consumer of `topic` from its beginning, in a fresh group
/// (`group_prefix-…`), committing nothing.
fn reader(brokers: &str, topic: &str, group_prefix: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique(group_prefix))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap_or_else(|e| panic!("consumer for {brokers}: {e}"));
    c.subscribe(&[topic])
        .unwrap_or_else(|e| panic!("subscribe to {topic}: {e}"));
    c
}

/// Read every record of `topic` (from the beginning, all partitions) until
/// `until` says enough or `timeout` passes.
pub fn consume_until(
    brokers: &str,
    topic: &str,
    timeout: Duration,
    until: impl Fn(&[Record]) -> bool,
) -> Vec<Record> {
    let mut tail = Tail {
        consumer: reader(brokers, topic, "reader"),
        records: Vec::new(),
    };
    tail.wait(timeout, until);
    tail.records
}

/// A reader that stays subscribed to a topic (from the beginning) and
/// accumulates its records across calls, so a test can wait repeatedly
/// without re-reading the topic each time.
pub struct Tail {
    consumer: BaseConsumer,
    pub records: Vec<Record>,
}

impl Tail {
    pub fn new(brokers: &str, topic: &str) -> Tail {
        Tail {
            consumer: reader(brokers, topic, "tail"),
            records: Vec::new(),
        }
    }

    /// Take what is available now (waiting at most `max_wait` for the first).
    pub fn poll(&mut self, max_wait: Duration) {
        let mut wait = max_wait;
        while let Some(m) = self.consumer.poll(wait) {
            if let Ok(m) = m {
                self.records.push(Record::from_message(&m));
            }
            wait = Duration::ZERO;
        }
    }

    /// Poll until `until` holds for the records so far or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration, mut until: impl FnMut(&[Record]) -> bool) -> bool {
        let t = Instant::now();
        loop {
            if until(&self.records) {
                return true;
            }
            if t.elapsed() >= timeout {
                return false;
            }
            self.poll(Duration::from_millis(200));
        }
    }

    /// Poll until every id of `ids` has been seen as a
    /// `newswatch-alert-id` header, or `timeout` passes (false).
    pub fn wait_alert_ids(&mut self, ids: &HashSet<String>, timeout: Duration) -> bool {
        self.wait(timeout, |r| {
            let seen: HashSet<&String> = r
                .iter()
                .filter_map(|x| x.headers.get("newswatch-alert-id"))
                .collect();
            ids.iter().all(|id| seen.contains(id))
        })
    }

    /// How often each `newswatch-alert-id` header value was seen.
    pub fn alert_counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for r in &self.records {
            if let Some(id) = r.headers.get("newswatch-alert-id") {
                *m.entry(id.clone()).or_insert(0) += 1;
            }
        }
        m
    }
}

/// A consumer group's committed offsets, read without joining the group.
pub struct Committed {
    consumer: BaseConsumer,
}

impl Committed {
    pub fn new(brokers: &str, group: &str) -> Result<Committed, KafkaError> {
        let consumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Committed { consumer })
    }

    /// The offsets on partitions `0..partitions` of `topic` (-1: none), or
    /// `None` when the broker does not answer.
    pub fn offsets(&self, topic: &str, partitions: u32) -> Option<Vec<i64>> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            tpl.add_partition(topic, p);
        }
        let got = self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(5))
            .ok()?;
        Some(
            (0..partitions as i32)
                .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => -1,
                })
                .collect(),
        )
    }
}

/// [`Committed::offsets`] with a client of its own.
pub fn committed_offsets(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: u32,
) -> Option<Vec<i64>> {
    Committed::new(brokers, group)
        .ok()?
        .offsets(topic, partitions)
}

/// The end offsets (high watermarks) of partitions `0..partitions` of
/// `topic`.
pub fn end_offsets(brokers: &str, topic: &str, partitions: u32) -> Result<Vec<i64>, KafkaError> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("watermarks"))
        .create()?;
    (0..partitions as i32)
        .map(|p| Ok(c.fetch_watermarks(topic, p, Duration::from_secs(10))?.1))
        .collect()
}
