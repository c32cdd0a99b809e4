//! Matching off the async reactor: a pool of matcher threads, one per core.
//!
//! The loop hands each consumed message over as [`Work`] with the rule set
//! in force at that moment, and gets a receiver for its [`Done`]. A thread
//! decodes the event, matches it, and turns the outcome into records in
//! rule order: alerts of stateless rules, match records of stateful rules
//! (decided by the owner of their state, `owner.rs`), or the dead letter.
//! The threads touch nothing but metrics (per-rule verification costs
//! included, reported by `rulecost`).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use crossbeam_channel::RecvTimeoutError;
use rdkafka::message::{BorrowedMessage, Message};
use tokio::sync::oneshot;

use super::offsets::Ticket;
use super::records::{Record, Source};
use super::rulecost::{Reporter, DRAIN_EVERY};
use super::Shared;
use newswatch_core::engine::{Slot, Staged};
use newswatch_core::event::{DecodeError, Event, Reason};
use newswatch_core::matcher::Scratch;
use newswatch_core::Engine;

/// A consumed message, copied out of librdkafka's buffer so the consumer
/// is free for the next one.
pub struct Received {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// The message's Kafka timestamp: the event time of last resort.
    pub kafka_time: Option<DateTime<Utc>>,
}

impl Received {
    pub fn copy(m: &BorrowedMessage<'_>) -> Self {
        Received {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            kafka_time: m
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis),
        }
    }
}

/// A message to match.
pub struct Work {
    /// Its place among the offsets in flight.
    pub ticket: Ticket,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub kafka_time: Option<DateTime<Utc>>,
    /// When it was consumed (for `newswatch_event_processing_seconds`).
    pub received: Instant,
}

/// A matched message: its records in rule order (alerts of stateless
/// rules, match records of stateful ones for stage two), or its dead letter.
pub struct Done {
    pub ticket: Ticket,
    pub received: Instant,
    pub records: Vec<Record>,
}

type Job = (Work, Arc<Engine>, oneshot::Sender<Done>);

/// Matcher threads: CPU work off the async reactor, one thread per core.
/// Dropping the pool lets the threads finish their current job and joins them.
pub struct MatchPool {
    tx: Option<crossbeam_channel::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl MatchPool {
    pub fn new(n: usize, shared: Arc<Shared>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..n.max(1))
            .map(|i| {
                let rx = rx.clone();
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("newswatch-match-{i}"))
                    .spawn(move || {
                        let mut scratch = Scratch::new();
                        let metrics = &shared.metrics;
                        let mut costs = Reporter::new(&mut scratch);
                        loop {
                            // Waits at most DRAIN_EVERY, so an idle thread
                            // reports too.
                            match rx.recv_timeout(DRAIN_EVERY) {
                                Ok((work, engine, reply)) => {
                                    costs.before(&engine, &mut scratch, metrics);
                                    let done = process(&shared, &engine, &mut scratch, work);
                                    let _ = reply.send(done);
                                }
                                Err(RecvTimeoutError::Timeout) => {}
                                Err(RecvTimeoutError::Disconnected) => break,
                            }
                            costs.tick(&mut scratch, metrics);
                        }
                        costs.report(&mut scratch, metrics);
                    })
                    .expect("spawn matcher thread")
            })
            .collect();
        MatchPool {
            tx: Some(tx),
            threads,
        }
    }

    /// Match `work` against `engine`; the answer comes on the receiver (an
    /// error only if a matcher thread died).
    pub fn submit(&self, work: Work, engine: Arc<Engine>) -> oneshot::Receiver<Done> {
        let (reply, rx) = oneshot::channel();
        if let Some(tx) = &self.tx {
            let _ = tx.send((work, engine, reply));
        }
        rx
    }
}

impl Drop for MatchPool {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Decode and stage an event, its time clamped to `event.max_future` past
/// the Kafka timestamp (`true` when it was). A panic in the engine (a bug)
/// makes the event a dead letter instead of taking the thread down.
fn decode_and_stage(
    engine: &Engine,
    scratch: &mut Scratch,
    payload: &[u8],
    kafka_time: Option<DateTime<Utc>>,
) -> Result<(Staged, Event, bool), DecodeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.decode(payload).map(|mut ev| {
            let max_future = engine.fields.max_future();
            let adjusted = newswatch_core::event::clamp_future(&mut ev, kafka_time, max_future);
            (engine.stage(&ev, scratch, kafka_time), ev, adjusted)
        })
    }))
    .unwrap_or_else(|_| {
        Err(DecodeError {
            reason: Reason::BadField,
            detail: "internal error while matching this event (a bug: please report it)".into(),
        })
    })
}

/// Decode and match one message; build its alert, match or dead-letter
/// records.
fn process(shared: &Shared, engine: &Arc<Engine>, scratch: &mut Scratch, work: Work) -> Done {
    let metrics = &shared.metrics;
    let start = Instant::now();
    let mut records = Vec::new();
    match decode_and_stage(engine, scratch, &work.payload, work.kafka_time) {
        Ok((staged, ev, adjusted)) => {
            metrics.matched_in(start.elapsed());
            if adjusted {
                metrics.event_time_adjusted();
            }
            if let Some(p) = ev.published_at {
                metrics.event_delay((Utc::now() - p).num_milliseconds() as f64 / 1000.0);
            }
            let alert_topic = &shared.config.kafka.alert_topic;
            let topics = &shared.topics;
            for slot in staged.slots {
                match slot {
                    Slot::Ready(rule, mut alert) => {
                        metrics.rule_matched(&alert.rule.id);
                        let rule = &engine.rules.rules[rule];
                        // Silences after mode (no throttle: stateless).
                        if !shared.silences.pass_stateless(rule, &mut alert) {
                            continue;
                        }
                        let topic = rule.topic.as_ref();
                        records.push(Record::alert(&alert, topic, alert_topic));
                    }
                    Slot::Stateful(rec) => {
                        metrics.rule_matched(&rec.rule);
                        records.push(Record::match_record(
                            &topics.matches,
                            topics.partitions,
                            &rec,
                        ));
                    }
                }
            }
        }
        Err(e) => {
            metrics.event_invalid(e.reason);
            records.extend(dead_letter(
                shared,
                &work.ticket,
                work.key,
                work.payload,
                &e,
            ));
        }
    }
    Done {
        ticket: work.ticket,
        received: work.received,
        records,
    }
}

/// The dead letter of an invalid message, if dead letters are on; logged
/// either way.
fn dead_letter(
    shared: &Shared,
    ticket: &Ticket,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    e: &DecodeError,
) -> Option<Record> {
    let (topic, partition) = &ticket.tp;
    let offset = ticket.offset;
    let Some(dlq) = &shared.config.kafka.dlq_topic else {
        tracing::warn!(
            topic = %topic, partition, offset, reason = e.reason.as_str(),
            detail = %e.detail, "invalid event skipped (dead-letter topic off)"
        );
        return None;
    };
    tracing::warn!(
        topic = %topic, partition, offset, reason = e.reason.as_str(),
        detail = %e.detail, "invalid event sent to the dead-letter topic"
    );
    let source = Source {
        topic,
        partition: *partition,
        offset,
    };
    Some(Record::dead_letter(dlq, source, key, payload, e))
}
