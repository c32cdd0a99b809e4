//! Kafka in, alerts out, at-least-once: the loop.
//!
//! One async loop owns the consumer. For each message it records the offset
//! as in flight, and hands the bytes to the matcher threads (`matching.rs`:
//! the matcher is CPU work and never runs on the async reactor). Results
//! come back through a `FuturesOrdered`, i.e. in consumption order, so the
//! records of one partition (alerts, and match records for the owners of
//! stateful rules' state, `owner.rs`) are enqueued to the producer
//! (`publish.rs`) in order. Each event's
//! records are awaited together; only when the broker has acknowledged all
//! of them is the event finished, and only when every earlier event of its
//! partition is finished too is the offset stored for librdkafka's next
//! auto-commit (`offsets.rs`, `enable.auto.offset.store=false`).
//!
//! Memory is bounded: at most [`MAX_IN_FLIGHT`] events are between consumer
//! and acknowledgement. At the bound the loop stops taking messages from
//! the consumer; librdkafka's own fetch queue is bounded by its settings.
//!
//! Shutdown: on the signal the loop stops consuming and drains what is in
//! flight for at most 80% of `kafka.shutdown_timeout`, then abandons the
//! rest (redelivered later). That deadline is also kept by a task of its
//! own (`publish::abort_after_drain`), so a turn held by a publish that
//! cannot finish (a full producer queue) ends at it too. The final commit and leaving the group get
//! what is left of 95% of it; the rest is for the process to exit.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaResult;
use tokio::sync::oneshot;
use tokio::time::{Interval, Sleep};
use tokio_util::sync::CancellationToken;

use super::kafka::{self, Consumer};
use super::matching::{Done, MatchPool, Received, Work};
use super::offsets::{OffsetTracker, Ticket};
use super::publish::{self, Publisher};
use super::ratelimit::LogLimiter;
use super::records::Origin;
use super::{DaemonError, Shared, HEARTBEAT_EVERY};
use crate::metrics::KafkaClient;

/// Events between the consumer and their acknowledgement, at most.
const MAX_IN_FLIGHT: usize = 1000;
/// Consumer errors are logged at most this often (all are counted).
const RECV_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// After a consumer error, wait this long before the next `recv()`.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// The drain's share of `kafka.shutdown_timeout`.
const DRAIN_SHARE: f64 = 0.8;
/// The share of `kafka.shutdown_timeout` by which the final commit must be
/// over (a little is left for the exit itself).
const STOP_SHARE: f64 = 0.95;
/// The producer's final flush waits at most this long.
const FLUSH_MAX: Duration = Duration::from_secs(2);

/// Run stage one until `shutdown` is cancelled and the drain is over.
pub async fn run(
    shared: Arc<Shared>,
    consumer: Consumer,
    producer: kafka::Producer,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let cfg = &shared.config.kafka;
    let topics: Vec<&str> = cfg.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(brokers = %cfg.brokers, group = %cfg.group_id, topics = ?topics, "consuming");

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = MatchPool::new(threads, shared.clone());
    let abort = CancellationToken::new();
    // The drain's deadline reaches every wait in publishing, even one that
    // holds this loop inside a turn.
    let signalled = publish::abort_after_drain(
        shutdown.clone(),
        abort.clone(),
        cfg.shutdown_timeout.mul_f64(DRAIN_SHARE),
    );
    let publisher = Publisher::new(producer, shared.clone(), abort.clone());
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let event_loop = EventLoop {
        shared,
        consumer,
        publisher,
        pool,
        tracker: OffsetTracker::new(),
        matching: FuturesOrdered::new(),
        acks: FuturesUnordered::new(),
        tick,
        shutdown,
        signalled,
        abort,
        draining: false,
        stop_by: None,
        drain_deadline: Box::pin(tokio::time::sleep(Duration::from_secs(365 * 24 * 3600))),
        recv_error_log: LogLimiter::new(RECV_ERROR_LOG_EVERY),
    };
    event_loop.run().await
}

/// An event whose records were all acknowledged (`ok`), or abandoned.
struct Acked {
    ticket: Ticket,
    /// When it was consumed.
    received: Instant,
    ok: bool,
}

/// The loop's state. Everything here is owned by the one task that runs
/// the loop; the matcher threads and librdkafka's callbacks only send to it.
struct EventLoop {
    /// Config, metrics, health, rules and the Alertmanager output.
    shared: Arc<Shared>,
    /// The input consumer; its callbacks record revoked partitions.
    consumer: Consumer,
    /// Enqueues records and awaits their acknowledgement.
    publisher: Publisher,
    /// The matcher threads.
    pool: MatchPool,
    /// Offsets in flight per partition: which may be stored.
    tracker: OffsetTracker,
    /// Events being matched, answered in consumption order.
    matching: FuturesOrdered<oneshot::Receiver<Done>>,
    /// Events whose records are being acknowledged, finishing in any order
    /// (the tracker keeps stored offsets in order).
    acks: FuturesUnordered<BoxFuture<'static, Acked>>,
    /// The heartbeat `/healthz` checks.
    tick: Interval,
    /// Cancelled by the caller: stop consuming, drain, return.
    shutdown: CancellationToken,
    /// When `shutdown` was cancelled: the shutdown's budget counts from
    /// there, even when a held turn let the loop see it late.
    signalled: Arc<OnceLock<Instant>>,
    /// Cancelled when the drain's time is up: publishing stops retrying.
    abort: CancellationToken,
    /// Set on the shutdown signal: no more messages are taken.
    draining: bool,
    /// When the whole shutdown (drain, final commit, leaving the group)
    /// must be over; set on the signal.
    stop_by: Option<Instant>,
    /// When the drain must be over; far away until the signal.
    drain_deadline: Pin<Box<Sleep>>,
    /// For consumer errors.
    recv_error_log: LogLimiter,
}

impl EventLoop {
    async fn run(mut self) -> Result<(), DaemonError> {
        loop {
            self.apply_revocations();
            let room = self.in_flight() < MAX_IN_FLIGHT;
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled(), if !self.draining => self.start_drain(),
                _ = &mut self.drain_deadline, if self.draining => {
                    self.abandon();
                    break;
                }
                Some(acked) = self.acks.next() => self.on_acknowledged(acked),
                Some(done) = self.matching.next() => self.on_matched(done).await,
                msg = self.consumer.recv(), if !self.draining && room => {
                    let msg = msg.map(|m| Received::copy(&m));
                    self.on_message(msg).await;
                }
                _ = self.tick.tick() => self.shared.health.beat(),
            }
            if self.draining && self.in_flight() == 0 {
                tracing::info!("drained");
                break;
            }
        }
        self.close().await;
        Ok(())
    }

    /// Events consumed and not yet acknowledged.
    fn in_flight(&self) -> usize {
        self.matching.len() + self.acks.len()
    }

    /// The shutdown signal: stop consuming, start the drain's clock.
    fn start_drain(&mut self) {
        let timeout = self.shared.config.kafka.shutdown_timeout;
        let at = self.signalled.get().copied().unwrap_or_else(Instant::now);
        self.draining = true;
        self.stop_by = Some(at + timeout.mul_f64(STOP_SHARE));
        self.shared.health.set_stopping();
        // Keep a little of the budget for the final commit and flush.
        let budget = timeout.mul_f64(DRAIN_SHARE);
        self.drain_deadline
            .as_mut()
            .reset(tokio::time::Instant::from_std(at + budget));
        tracing::info!(
            in_flight = self.in_flight(),
            "shutting down: draining in-flight events"
        );
    }

    /// The drain's time is up: stop retrying; unfinished events will be
    /// redelivered (their offsets were not stored). (The task of
    /// `publish::abort_after_drain` cancels `abort` at the same time, also
    /// when a wait in `on_matched` holds this loop.)
    fn abandon(&mut self) {
        tracing::warn!(
            in_flight = self.in_flight(),
            "shutdown timeout: abandoning unfinished events (they will be redelivered)"
        );
        self.abort.cancel();
    }

    /// An event's records are acknowledged: finish it, and store the
    /// offset if every earlier event of its partition is finished too.
    fn on_acknowledged(&mut self, acked: Acked) {
        if !acked.ok {
            return;
        }
        self.shared
            .metrics
            .event_processed(acked.received.elapsed());
        if let Some(pos) = self.tracker.finish(&acked.ticket) {
            kafka::store_offset(&self.consumer, &acked.ticket.tp, pos);
        }
    }

    /// Partitions revoked since the last turn: their events in flight are
    /// forgotten (their offsets are never stored; the next owner re-reads).
    fn apply_revocations(&mut self) {
        for (topic, partition) in self.consumer.context().take_revoked() {
            self.tracker.revoke(&topic, partition);
        }
    }

    /// An event is matched (in consumption order): enqueue its records,
    /// and await their acknowledgement.
    async fn on_matched(&mut self, done: Result<Done, oneshot::error::RecvError>) {
        let Ok(done) = done else {
            tracing::error!("a matcher thread died; the event will be redelivered after restart");
            return;
        };
        let Done {
            ticket,
            received,
            records,
        } = done;
        let source = Origin {
            topic: ticket.tp.0.clone(),
            partition: ticket.tp.1,
            offset: ticket.offset,
        };
        let enqueued = self.publisher.enqueue_all(records, Some(source)).await;
        let publisher = self.publisher.clone();
        self.acks.push(
            async move {
                // An event whose records were not all enqueued is never
                // finished: its offset must not move.
                let ok = publisher.acknowledge(enqueued).await;
                Acked {
                    ticket,
                    received,
                    ok,
                }
            }
            .boxed(),
        );
    }

    /// A message (or an error) from the consumer.
    async fn on_message(&mut self, msg: KafkaResult<Received>) {
        let m = match msg {
            Ok(m) => m,
            Err(e) => {
                // Errors here are transient (broker down, rebalance);
                // librdkafka retries by itself. Don't spin on them.
                // Every one is counted; the log is rate-limited.
                self.shared
                    .metrics
                    .kafka_client_error(KafkaClient::Consumer);
                if let Some(held_back) = self.recv_error_log.allow() {
                    tracing::warn!(error = %e, held_back, "consumer error");
                }
                tokio::select! {
                    _ = self.shutdown.cancelled() => {}
                    _ = tokio::time::sleep(RECV_ERROR_PAUSE) => {}
                }
                return;
            }
        };
        self.shared.health.set_broker_down(false);
        self.shared.metrics.event_consumed(&m.topic);
        // A revocation polled together with this message comes first
        // (`OffsetTracker::admit`).
        let revoked = self.consumer.context().take_revoked();
        let work = Work {
            ticket: self.tracker.admit(revoked, &m.topic, m.partition, m.offset),
            key: m.key,
            payload: m.payload,
            kafka_time: m.kafka_time,
            received: Instant::now(),
        };
        let engine = self.shared.rules.current();
        self.matching.push_back(self.pool.submit(work, engine));
    }

    /// After the loop: commit what was stored, leave the group, flush.
    async fn close(self) {
        let EventLoop {
            shared,
            consumer,
            publisher,
            pool,
            matching,
            acks,
            stop_by,
            ..
        } = self;
        drop(acks);
        drop(matching);
        drop(pool);
        let timeout = shared.config.kafka.shutdown_timeout;
        let left = || stop_by.map_or(timeout, |t| t.saturating_duration_since(Instant::now()));
        kafka::commit_and_leave(consumer, left(), "input").await;
        publisher.flush(left().min(FLUSH_MAX));
        tracing::info!("stopped");
    }
}
