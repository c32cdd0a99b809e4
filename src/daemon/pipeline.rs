//! Kafka in, alerts out, at-least-once.
//!
//! One async loop owns the consumer. For each message it records the offset
//! as in flight, and hands the bytes to a small pool of matcher threads (the
//! matcher is CPU work and never runs on the async reactor). Results come
//! back through a `FuturesOrdered`, i.e. in consumption order, so alerts of
//! one partition are enqueued to the producer in order. Each event's alerts
//! (or its dead letter) are awaited together; only when the broker has
//! acknowledged all of them is the event finished, and only when every
//! earlier event of its partition is finished too is the offset stored for
//! librdkafka's next auto-commit (`enable.auto.offset.store=false`).
//!
//! Memory is bounded: at most `MAX_IN_FLIGHT` events are between consumer
//! and acknowledgement. At the bound the loop stops taking messages from
//! the consumer; librdkafka's own fetch queue is bounded by its settings.
//!
//! A publish that fails is retried with backoff for as long as it takes (a
//! broker outage must lose nothing); the offset simply does not move.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::StreamExt;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::changelog;
use super::offsets::{OffsetTracker, Ticket};
use super::ratelimit::LogLimiter;
use super::{DaemonError, Shared, HEARTBEAT_EVERY};
use crate::config::KafkaConfig;
use crate::metrics::{KafkaClient, Label, PublishError, RecordKind, StateKind, Suppression};
use newswatch_core::alert;
use newswatch_core::engine::Slot;
use newswatch_core::event::Event;
use newswatch_core::matcher::{Match, Scratch};
use newswatch_core::state::story::Signature;
use newswatch_core::state::{Change, Store};
use newswatch_core::Engine;

/// Events between the consumer and their acknowledgement, at most.
const MAX_IN_FLIGHT: usize = 1000;
/// Retry delays when the broker did not acknowledge a record.
const ACK_RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// Retry delays when the producer refuses a record (other than a full
/// queue). Starts a step later than [`ACK_RETRY`], as it always did.
const ENQUEUE_RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
/// While librdkafka's queue is full, try again this often.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);
/// Consumer errors are logged at most this often (all are counted).
const RECV_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// The state cap is logged at most this often (all evictions are counted).
const STATE_CAP_LOG_EVERY: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ contexts

enum RebalanceEvent {
    Revoked(Vec<(String, i32)>),
}

/// librdkafka callbacks: logs, statistics (lag, broker state), errors,
/// rebalances. They run on librdkafka's threads or inside `recv()`, so they
/// only record; the loop acts.
struct Ctx {
    shared: Arc<Shared>,
    rebalances: Mutex<Vec<RebalanceEvent>>,
}

fn tpl_list(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_with(level, fac, msg);
    }

    fn stats(&self, s: Statistics) {
        if s.brokers.values().any(|b| b.state == "UP") {
            self.shared.health.set_broker_down(false);
        }
        for (topic, t) in &s.topics {
            for (&p, part) in &t.partitions {
                // -1 is librdkafka's "internal UA" partition; lag -1 is unknown.
                if p >= 0 && part.consumer_lag >= 0 {
                    self.shared
                        .metrics
                        .consumer_lag(topic, p, part.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&self.shared, KafkaClient::Consumer, error, reason);
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            let parts = tpl_list(tpl);
            tracing::info!(partitions = ?parts, "partitions revoked");
            // Not ready until assigned again: after a session timeout (a
            // broker outage) the consumer has left its group and rejoins.
            self.shared.health.set_joined(false);
            self.shared.metrics.clear_consumer_lag();
            if let Ok(mut v) = self.rebalances.lock() {
                v.push(RebalanceEvent::Revoked(parts));
            }
        }
    }

    fn post_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, r: &Rebalance<'_>) {
        match r {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = ?tpl_list(tpl), "partitions assigned");
                self.shared.health.set_joined(true);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                self.shared
                    .metrics
                    .kafka_client_error(KafkaClient::Consumer);
                tracing::warn!(error = %e, "rebalance error")
            }
        }
    }
}

struct ProducerCtx {
    shared: Arc<Shared>,
}

impl ClientContext for ProducerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_with(level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&self.shared, KafkaClient::Producer, error, reason);
    }
}

/// A global error from either Kafka client: readiness, counter, log line.
fn client_error(shared: &Shared, client: KafkaClient, error: KafkaError, reason: &str) {
    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
        shared.health.set_broker_down(true);
    }
    shared.metrics.kafka_client_error(client);
    tracing::warn!(target: "librdkafka", client = client.as_str(), error = %error, reason, "kafka client error");
}

/// librdkafka's log lines, into tracing at the matching level.
fn log_with(level: RDKafkaLogLevel, fac: &str, msg: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility = fac, "{msg}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility = fac, "{msg}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility = fac, "{msg}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility = fac, "{msg}"),
    }
}

impl Ctx {
    fn take_rebalances(&self) -> Vec<RebalanceEvent> {
        self.rebalances
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

// ------------------------------------------------------------------ clients

/// Properties newswatch sets for correctness; `kafka.*_properties` may add
/// or tune anything else (config validation refuses these keys).
fn consumer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group_id)
        .set("auto.offset.reset", "earliest")
        // Lag and broker state come from statistics.
        .set("statistics.interval.ms", "1000")
        // librdkafka's prefetch queue is the other buffer between broker and
        // us (64 MB by default); keep it modest so memory stays bounded.
        .set("queued.max.messages.kbytes", "16384");
    for (key, v) in &k.consumer_properties {
        c.set(key, v);
    }
    // At-least-once: librdkafka commits in the background, but only offsets
    // we stored, and we store an offset only after its alerts are acked.
    c.set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false");
    c
}

fn producer_config(k: &KafkaConfig, max_bytes: usize) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        // Alerts are few and latency matters more than batch size: at 1,000
        // events/s with 4 alerts each, 1 ms still batches a handful.
        .set("linger.ms", "1")
        // A dead letter carries the original message, which may be as large
        // as event.max_bytes allows and more (too_large).
        .set(
            "message.max.bytes",
            (max_bytes.max(1_000_000) * 2 + 65_536)
                .min(1_000_000_000)
                .to_string(),
        )
        .set("statistics.interval.ms", "0");
    for (key, v) in &k.producer_properties {
        c.set(key, v);
    }
    c.set("enable.idempotence", "true").set("acks", "all");
    c
}

// ------------------------------------------------------------------ matching pool

/// One record to publish: an alert or a dead letter.
struct OutRecord {
    topic: String,
    key: Option<Vec<u8>>,
    /// `None` only for a state tombstone.
    payload: Option<Vec<u8>>,
    headers: Vec<(&'static str, Vec<u8>)>,
    /// For metrics: ("alert", rule, severity), ("dlq", "", "") or ("state", "", "").
    kind: RecordKind,
    rule: String,
    severity: String,
}

impl OutRecord {
    fn future_record(&self) -> FutureRecord<'_, [u8], [u8]> {
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
        r
    }
}

struct Work {
    ticket: Ticket,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    kafka_time: Option<DateTime<Utc>>,
    received: Instant,
}

/// One output of an event, in rule order: a record to publish now, or a
/// match of a stateful rule, settled by the loop in consumption order.
enum Out {
    Record(OutRecord),
    Stateful { rule: usize, m: Match },
}

struct Done {
    ticket: Ticket,
    received: Instant,
    outs: Vec<Out>,
    /// Kept only when a stateful rule matched.
    event: Option<Box<Event>>,
    signature: Option<Box<Signature>>,
    kafka_time: Option<DateTime<Utc>>,
    /// The rules the event was matched with (rule indexes refer to it).
    engine: Arc<Engine>,
}

type Job = (Work, Arc<Engine>, tokio::sync::oneshot::Sender<Done>);

/// Matcher threads: CPU work off the async reactor, one thread per core.
struct MatchPool {
    tx: Option<crossbeam_channel::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl MatchPool {
    fn new(n: usize, shared: Arc<Shared>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..n.max(1))
            .map(|i| {
                let rx = rx.clone();
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("newswatch-match-{i}"))
                    .spawn(move || {
                        let mut scratch = Scratch::new();
                        for (work, engine, reply) in rx {
                            let done = process(&shared, &engine, &mut scratch, work);
                            let _ = reply.send(done);
                        }
                    })
                    .expect("spawn matcher thread")
            })
            .collect();
        MatchPool {
            tx: Some(tx),
            threads,
        }
    }

    fn submit(&self, work: Work, engine: Arc<Engine>) -> tokio::sync::oneshot::Receiver<Done> {
        let (reply, rx) = tokio::sync::oneshot::channel();
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

/// The record of an alert on the rule's topic (or the default one).
fn alert_record(a: &alert::Alert, topic: Option<&String>, default_topic: &str) -> OutRecord {
    OutRecord {
        topic: topic.map_or_else(|| default_topic.to_owned(), Clone::clone),
        key: Some(a.rule.id.clone().into_bytes()),
        payload: Some(serde_json::to_vec(a).unwrap_or_default()),
        headers: vec![
            ("newswatch-rule", a.rule.id.clone().into_bytes()),
            ("newswatch-severity", a.rule.severity.clone().into_bytes()),
            ("newswatch-alert-id", a.alert_id.clone().into_bytes()),
        ],
        kind: RecordKind::Alert,
        rule: a.rule.id.clone(),
        severity: a.rule.severity.clone(),
    }
}

/// Decode and match one message; build its alert or dead-letter records.
fn process(shared: &Shared, engine: &Arc<Engine>, scratch: &mut Scratch, work: Work) -> Done {
    let cfg = &shared.config.kafka;
    let m = &shared.metrics;
    let start = Instant::now();
    let mut outs = Vec::new();
    let mut event = None;
    let mut signature = None;
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine
            .decode(&work.payload)
            .map(|ev| (engine.stage(&ev, scratch, work.kafka_time), ev))
    }));
    let decoded = decoded.unwrap_or_else(|_| {
        Err(newswatch_core::event::DecodeError {
            reason: newswatch_core::event::Reason::BadField,
            detail: "internal error while matching this event (a bug: please report it)".into(),
        })
    });
    match decoded {
        Ok((staged, ev)) => {
            m.matched_in(start.elapsed());
            if let Some(p) = ev.published_at {
                m.event_delay((Utc::now() - p).num_milliseconds() as f64 / 1000.0);
            }
            let mut stateful = false;
            for slot in staged.slots {
                match slot {
                    Slot::Ready(rule, a) => {
                        m.rule_matched(&a.rule.id);
                        let topic = engine.rules.rules[rule].topic.as_ref();
                        outs.push(Out::Record(alert_record(&a, topic, &cfg.alert_topic)));
                    }
                    Slot::Stateful { rule, m: mt } => {
                        m.rule_matched(&engine.rules.rules[rule].id);
                        stateful = true;
                        outs.push(Out::Stateful { rule, m: mt });
                    }
                }
            }
            if stateful {
                signature = staged.signature;
                event = Some(Box::new(ev));
            }
        }
        Err(e) => {
            m.event_invalid(e.reason);
            let (topic, partition) = &work.ticket.tp;
            match &cfg.dlq_topic {
                Some(dlq) => {
                    tracing::warn!(
                        topic = %topic, partition, offset = work.ticket.offset, reason = e.reason.as_str(),
                        detail = %e.detail, "invalid event sent to the dead-letter topic"
                    );
                    outs.push(Out::Record(OutRecord {
                        topic: dlq.clone(),
                        key: work.key.clone(),
                        payload: Some(work.payload.clone()),
                        headers: vec![
                            ("newswatch-error", e.reason.as_str().as_bytes().to_vec()),
                            ("newswatch-error-detail", e.detail.clone().into_bytes()),
                            ("newswatch-source-topic", topic.clone().into_bytes()),
                            (
                                "newswatch-source-partition",
                                partition.to_string().into_bytes(),
                            ),
                            (
                                "newswatch-source-offset",
                                work.ticket.offset.to_string().into_bytes(),
                            ),
                        ],
                        kind: RecordKind::DeadLetter,
                        rule: String::new(),
                        severity: String::new(),
                    }));
                }
                None => tracing::warn!(
                    topic = %topic, partition, offset = work.ticket.offset, reason = e.reason.as_str(),
                    detail = %e.detail, "invalid event skipped (dead-letter topic off)"
                ),
            }
        }
    }
    Done {
        ticket: work.ticket,
        received: work.received,
        outs,
        event,
        signature,
        kafka_time: work.kafka_time,
        engine: engine.clone(),
    }
}

/// The loop's stateful-rule state and its changelog.
struct StateSide {
    store: Store,
    topic: String,
    tail: tokio::sync::mpsc::Receiver<changelog::TailRecord>,
    changes: Vec<Change>,
    cap_log: LogLimiter,
}

impl StateSide {
    /// Settle the stateful matches of an event, in consumption order, into
    /// publishable records: its alerts and the state changes to persist.
    fn settle(&mut self, shared: &Shared, done: Done) -> (Ticket, Instant, Vec<OutRecord>) {
        let cfg = &shared.config.kafka;
        let engine = &done.engine;

        let mut records = Vec::with_capacity(done.outs.len());
        let mut decided = false;
        for out in done.outs {
            match out {
                Out::Record(r) => records.push(r),
                Out::Stateful { rule, m } => {
                    let Some(ev) = &done.event else { continue };
                    decided = true;
                    self.changes.clear();
                    let (d, alert) = engine.settle_one(
                        ev,
                        rule,
                        &m,
                        done.signature.as_deref(),
                        done.kafka_time,
                        &mut self.store,
                        &mut self.changes,
                    );
                    let r = &engine.rules.rules[rule];
                    if d.throttled {
                        shared
                            .metrics
                            .alert_suppressed_by(&r.id, Suppression::Throttle);
                    }
                    if let Some(a) = alert {
                        records.push(alert_record(&a, r.topic.as_ref(), &cfg.alert_topic));
                    }
                    for c in self.changes.drain(..) {
                        records.push(OutRecord {
                            topic: self.topic.clone(),
                            key: Some(c.key.into_bytes()),
                            payload: c.value.map(String::into_bytes),
                            headers: Vec::new(),
                            kind: RecordKind::State,
                            rule: String::new(),
                            severity: String::new(),
                        });
                    }
                }
            }
        }
        // Only a decision changes the state (most events match no stateful
        // rule: no gauge updates for them).
        if decided {
            self.account(shared);
        }
        (done.ticket, done.received, records)
    }

    fn account(&mut self, shared: &Shared) {
        let ev = self.store.take_cap_evictions();
        let (stories, groups) = self.store.sizes();
        shared.metrics.state_sizes(stories, groups);
        if ev.stories + ev.groups > 0 {
            shared.metrics.state_evicted(StateKind::Story, ev.stories);
            shared.metrics.state_evicted(StateKind::Group, ev.groups);
            if let Some(held_back) = self.cap_log.allow() {
                tracing::warn!(
                    stories,
                    groups,
                    evicted_stories = ev.stories,
                    evicted_groups = ev.groups,
                    held_back,
                    "state cap reached: the oldest stories/groups are evicted before their window ends"
                );
            }
        }
    }
}

// ------------------------------------------------------------------ publishing

/// Enqueue a record, waiting while librdkafka's queue is full. `None` when
/// aborted.
async fn enqueue(
    producer: &FutureProducer<ProducerCtx>,
    rec: &OutRecord,
    shared: &Shared,
    abort: &CancellationToken,
) -> Option<DeliveryFuture> {
    let mut backoff = ENQUEUE_RETRY;
    loop {
        match producer.send_result(rec.future_record()) {
            Ok(f) => return Some(f),
            Err((e, _)) => {
                let wait = if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) {
                    QUEUE_FULL_WAIT
                } else {
                    shared
                        .metrics
                        .publish_failed(PublishError::Enqueue(rec.kind));
                    tracing::warn!(topic = %rec.topic, kind = rec.kind.as_str(), error = %e, "cannot enqueue record, retrying");
                    backoff.next()
                };
                tokio::select! {
                    _ = abort.cancelled() => return None,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Await every record's acknowledgement, re-sending failures. True when
/// all were acknowledged, false when aborted.
async fn acknowledge(
    producer: FutureProducer<ProducerCtx>,
    shared: Arc<Shared>,
    pending: Vec<(OutRecord, DeliveryFuture)>,
    abort: CancellationToken,
) -> bool {
    for (rec, mut fut) in pending {
        let mut backoff = ACK_RETRY;
        loop {
            let res = tokio::select! {
                r = &mut fut => r,
                _ = abort.cancelled() => return false,
            };
            let err = match res {
                Ok(Ok(_)) => break,
                Ok(Err((e, _))) => e,
                Err(_) => KafkaError::Canceled,
            };
            shared.metrics.publish_failed(PublishError::Unacknowledged(
                rec.kind,
                err.rdkafka_error_code(),
            ));
            let delay = backoff.next();
            tracing::warn!(topic = %rec.topic, kind = rec.kind.as_str(), retry_in = ?delay, error = %err, "record not acknowledged, retrying");
            tokio::select! {
                _ = abort.cancelled() => return false,
                _ = tokio::time::sleep(delay) => {}
            }
            match enqueue(&producer, &rec, &shared, &abort).await {
                Some(f) => fut = f,
                None => return false,
            }
        }
        match rec.kind {
            RecordKind::Alert => {
                shared.metrics.alert_published(&rec.rule, &rec.severity);
                // Only acknowledged alerts go on to Alertmanager; never blocks.
                if let Some(p) = rec.payload {
                    shared.alertmanager.push(p);
                }
            }
            RecordKind::DeadLetter => shared.metrics.dlq_record(),
            RecordKind::State => {}
        }
    }
    true
}

// ------------------------------------------------------------------ the loop

pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let cfg = shared.config.kafka.clone();
    let ctx = Ctx {
        shared: shared.clone(),
        rebalances: Mutex::new(Vec::new()),
    };
    let consumer: StreamConsumer<Ctx> = consumer_config(&cfg).create_with_context(ctx)?;
    let producer: FutureProducer<ProducerCtx> =
        producer_config(&cfg, shared.config.event.max_bytes).create_with_context(ProducerCtx {
            shared: shared.clone(),
        })?;
    // State first: the consumer joins its group only once the stateful
    // rules' state is back, so nothing is decided on missing state.
    let Some(mut state) = restore_state(&shared, &shutdown).await? else {
        tracing::info!("stopped before the state was restored");
        return Ok(());
    };
    let topics: Vec<&str> = cfg.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(brokers = %cfg.brokers, group = %cfg.group_id, topics = ?topics, "consuming");

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = MatchPool::new(threads, shared.clone());
    let abort = CancellationToken::new();
    let mut tracker = OffsetTracker::new();
    let mut matching = FuturesOrdered::new();
    let mut acks = FuturesUnordered::new();
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut draining = false;
    // When the whole shutdown (drain, final commit, leaving the group) must be over.
    let mut stop_by: Option<Instant> = None;
    let deadline = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(deadline);
    let mut recv_error_log = LogLimiter::new(RECV_ERROR_LOG_EVERY);

    loop {
        for ev in consumer.context().take_rebalances() {
            let RebalanceEvent::Revoked(parts) = ev;
            for (t, p) in parts {
                tracker.revoke(&t, p);
            }
        }
        let room = matching.len() + acks.len() < MAX_IN_FLIGHT;
        tokio::select! {
            biased;
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                // (A little is left for the exit itself.)
                stop_by = Some(Instant::now() + cfg.shutdown_timeout.mul_f64(0.95));
                shared.health.set_stopping();
                // Keep a little of the budget for the final commit and flush.
                let budget = cfg.shutdown_timeout.mul_f64(0.8);
                deadline.as_mut().reset(tokio::time::Instant::now() + budget);
                tracing::info!(in_flight = matching.len() + acks.len(), "shutting down: draining in-flight events");
            }
            _ = &mut deadline, if draining => {
                tracing::warn!(in_flight = matching.len() + acks.len(), "shutdown timeout: abandoning unfinished events (they will be redelivered)");
                abort.cancel();
                break;
            }
            Some((ticket, received, ok)) = acks.next() => {
                let (ticket, received, ok): (Ticket, Instant, bool) = (ticket, received, ok);
                if ok {
                    shared.metrics.event_processed(received.elapsed());
                    if let Some(pos) = tracker.finish(&ticket) {
                        store_offset(&consumer, &ticket, pos);
                    }
                }
            }
            Some(rec) = state.tail.recv() => {
                changelog::apply_tailed(&mut state.store, &shared.metrics, rec);
                state.account(&shared);
            }
            Some(done) = matching.next() => {
                let done: Result<Done, _> = done;
                let Ok(done) = done else {
                    tracing::error!("a matcher thread died; the event will be redelivered after restart");
                    continue;
                };
                let (ticket, received, records) = state.settle(&shared, done);
                let mut pending = Vec::with_capacity(records.len());
                let mut all_enqueued = true;
                for rec in records {
                    match enqueue(&producer, &rec, &shared, &abort).await {
                        Some(f) => pending.push((rec, f)),
                        None => {
                            all_enqueued = false;
                            break;
                        }
                    }
                }
                let (producer, shared, abort) = (producer.clone(), shared.clone(), abort.clone());
                acks.push(async move {
                    // An event whose records were not all enqueued is never
                    // finished: its offset must not move.
                    let ok = acknowledge(producer, shared, pending, abort).await && all_enqueued;
                    (ticket, received, ok)
                });
            }
            msg = consumer.recv(), if !draining && room => match msg {
                Ok(m) => {
                    shared.health.set_broker_down(false);
                    shared.metrics.event_consumed(m.topic());
                    let ticket = tracker.start(m.topic(), m.partition(), m.offset());
                    let kafka_time = m.timestamp().to_millis().and_then(DateTime::from_timestamp_millis);
                    let work = Work {
                        ticket,
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        kafka_time,
                        received: Instant::now(),
                    };
                    drop(m);
                    matching.push_back(pool.submit(work, shared.rules.current()));
                }
                Err(e) => {
                    // Errors here are transient (broker down, rebalance);
                    // librdkafka retries by itself. Don't spin on them.
                    // Every one is counted; the log is rate-limited.
                    shared.metrics.kafka_client_error(KafkaClient::Consumer);
                    if let Some(held_back) = recv_error_log.allow() {
                        tracing::warn!(error = %e, held_back, "consumer error");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = tick.tick() => shared.health.beat(),
        }
        if draining && matching.is_empty() && acks.is_empty() {
            tracing::info!("drained");
            break;
        }
    }
    drop(acks);
    drop(matching);
    drop(pool);
    // Commit what was stored, synchronously, then leave the group. Both
    // wait on the broker, without a timeout of their own: an unresponsive
    // broker would hold the exit forever. So they run on a thread of their
    // own, waited for until `shutdown_timeout` is up, and abandoned after
    // (what was not committed is redelivered).
    let left = |stop_by: Option<Instant>| {
        stop_by.map_or(cfg.shutdown_timeout, |t| {
            t.saturating_duration_since(Instant::now())
        })
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let closing = std::thread::Builder::new()
        .name("newswatch-close".into())
        .spawn(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!("offsets committed"),
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    "final commit failed; uncommitted events will be redelivered"
                ),
            }
            drop(consumer);
            let _ = done_tx.send(());
        });
    if closing.is_ok() && tokio::time::timeout(left(stop_by), done_rx).await.is_err() {
        tracing::warn!(
            "shutdown timeout: the final commit did not complete (the broker does not answer); \
             uncommitted events will be redelivered"
        );
    }
    let _ = producer.flush(left(stop_by).min(Duration::from_secs(2)));
    tracing::info!("stopped");
    Ok(())
}

fn store_offset(consumer: &StreamConsumer<Ctx>, ticket: &Ticket, pos: i64) {
    let mut tpl = TopicPartitionList::new();
    let (topic, partition) = &ticket.tp;
    if tpl
        .add_partition_offset(topic, *partition, Offset::Offset(pos))
        .is_ok()
    {
        if let Err(e) = consumer.store_offsets(&tpl) {
            // The partition was revoked meanwhile: its new owner re-reads.
            tracing::debug!(topic = %topic, partition, error = %e, "offset not stored");
        }
    }
}

/// Create the changelog topic if needed and restore the state from it.
/// `None` when shut down meanwhile.
async fn restore_state(
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
) -> Result<Option<StateSide>, DaemonError> {
    let cfg = &shared.config.kafka;
    let topic = changelog::topic_name(&cfg.group_id);
    if !changelog::ensure_topic(cfg, &topic, shutdown).await? {
        return Ok(None);
    }
    // The writer id lets this process skip its own records on the tail.
    let writer = format!(
        "{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let restored = {
        let (cfg, topic, metrics) = (cfg.clone(), topic.clone(), shared.metrics.clone());
        // The reader stops with the daemon, not with the drain: the loop
        // applies tailed records until it exits.
        let stop = shutdown.child_token();
        let handle = tokio::task::spawn_blocking(move || {
            changelog::restore(&cfg, &topic, &writer, metrics, stop)
        });
        match handle.await {
            Ok(r) => r?,
            Err(_) => return Ok(None),
        }
    };
    Ok(restored.map(|r| StateSide {
        store: r.store,
        topic,
        tail: r.tail,
        changes: Vec::new(),
        cap_log: LogLimiter::new(STATE_CAP_LOG_EVERY),
    }))
}
