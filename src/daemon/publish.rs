//! Publishing an event's records: retried until the broker acknowledges
//! them (a broker outage must lose nothing; the event's offset simply does
//! not move meanwhile), unless the broker refuses one for good (SPEC §9).
//!
//! Two steps, so that records of one partition reach the producer in
//! consumption order while their acknowledgements are awaited side by side:
//! [`Publisher::enqueue_all`] runs inside the loop (it waits only while
//! librdkafka's queue is full or the producer refuses a record
//! transiently), and [`Publisher::acknowledge`] runs as a future of its
//! own, re-sending what failed transiently. Every wait also watches
//! `abort`, cancelled when the shutdown's drain time is up by a task of its
//! own ([`abort_after_drain`]), never by the loop, which a wait in
//! `enqueue_all` may hold; an aborted event is never finished, so it is
//! redelivered.
//!
//! Refusals for good ([`classify`]): the producer has no delivery timeout,
//! so librdkafka retries transient failures itself, in order, and a
//! permanent error means the same record will never be accepted.
//! * An alert then goes to the dead-letter topic as `undeliverable`
//!   (`Record::undeliverable`), or, with that off, is counted
//!   (`newswatch_publish_errors_total{kind="undeliverable"}`) and logged
//!   (rate-limited); either way its event moves on. A poison alert never
//!   stalls its partition.
//! * A record that must be delivered (that dead letter, a dead letter of
//!   an invalid event, a match record, a state change: stateful rules are
//!   exact only if none is skipped) is re-sent with backoff while
//!   `/readyz` names its topic; its partition waits and resumes by itself
//!   once the broker accepts.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, Producer as _};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::kafka::{self, Producer};
use super::ratelimit::LogLimiter;
use super::records::{undeliverable_cut, Kind, Origin, Record};
use super::Shared;
use crate::metrics::{Label, PublishError};

/// Retry delays when the broker did not acknowledge a record.
const ACK_RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// Retry delays when the producer refuses a record (other than a full
/// queue). Starts a step later than [`ACK_RETRY`], as it always did.
const ENQUEUE_RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
/// Retry delays for a record refused for good that must still be
/// delivered (a dead letter, an internal topic's record): the operator has
/// to act, so no hurry, but resume soon after.
const PAUSED_RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
/// Undeliverable alerts dropped with the dead-letter topic off are logged
/// at most this often (every one is counted).
const DROPPED_LOG_EVERY: Duration = Duration::from_secs(10);
/// While librdkafka's queue is full, try again this often.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// Whether a delivery error can pass by itself. The producer has no
/// delivery timeout, so librdkafka retries transient failures itself, in
/// order; an error that reaches us is final for that attempt, and a
/// permanent one will be refused again however often it is re-sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The broker will refuse this record every time: too large, topic
    /// missing or invalid, not authorised.
    Permanent,
    /// The idempotent producer is in a fatal state and accepts nothing
    /// more: the daemon stops with an error, so that it restarts with a
    /// new producer and the unacknowledged events come again.
    Fatal,
    /// Anything else: worth re-sending with backoff.
    Transient,
}

/// Classify a librdkafka error code (`None`: an error without one, e.g. a
/// cancelled delivery future, which re-sending may cure).
pub fn classify(code: Option<RDKafkaErrorCode>) -> Refusal {
    use RDKafkaErrorCode as C;
    match code {
        Some(
            // Too large for the producer's message.max.bytes or the topic's
            // max.message.bytes, or a batch over the segment size.
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::InvalidRecord
            | C::InvalidMessage
            | C::BadMessage
            // The topic does not exist (the broker's answer, or the
            // producer's once metadata says so) or cannot.
            | C::UnknownTopicOrPartition
            | C::UnknownTopic
            | C::UnknownPartition
            | C::UnknownTopicId
            | C::InvalidTopic
            | C::PolicyViolation
            // Not authorised.
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed,
        ) => Refusal::Permanent,
        Some(
            // The idempotent producer's fatal errors (librdkafka reports
            // `_FATAL`, or the cause): it accepts nothing more until it is
            // created anew.
            C::Fatal
            | C::OutOfOrderSequenceNumber
            | C::InvalidProducerEpoch
            | C::InvalidProducerIdMapping
            | C::ProducerFenced
            | C::UnknownProducerId,
        ) => Refusal::Fatal,
        _ => Refusal::Transient,
    }
}

/// Cancel `abort` once `drain` has passed since `shutdown` was cancelled,
/// from a task of its own. The loop that awaits [`Publisher::enqueue_all`]
/// cannot cancel it while that wait holds the loop (a full producer queue
/// behind a stuck record, a paused partition), so the drain's deadline must
/// not depend on the loop turning: this is what makes every wait in
/// publishing end within `kafka.shutdown_timeout`. Returns when the signal
/// came, set at once (a held loop learns of it late, and must count the
/// rest of its shutdown budget from it).
pub fn abort_after_drain(
    shutdown: CancellationToken,
    abort: CancellationToken,
    drain: Duration,
) -> Arc<OnceLock<Instant>> {
    let signalled = Arc::new(OnceLock::new());
    let at = signalled.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = abort.cancelled() => return,
            _ = shutdown.cancelled() => {}
        }
        let _ = at.set(Instant::now());
        tokio::select! {
            _ = abort.cancelled() => {}
            _ = tokio::time::sleep(drain) => {
                tracing::warn!("shutdown: drain time is up, abandoning unacknowledged records (their events will be redelivered)");
                abort.cancel();
            }
        }
    });
    signalled
}

/// Records handed to the producer, each with its acknowledgement to come
/// (or the producer's refusal for good).
pub struct Enqueued {
    pending: Vec<(Record, Pending)>,
    /// False when aborted before every record was enqueued: the event must
    /// never count as finished.
    complete: bool,
    /// Where the event came from, for an undeliverable alert's dead letter.
    source: Option<Origin>,
}

/// A record as the producer took it.
enum Pending {
    /// Enqueued: its acknowledgement to come.
    Sent(DeliveryFuture),
    /// Refused for good before it was enqueued (too large for the
    /// producer, a topic known not to exist).
    Refused(KafkaError),
}

/// How one attempt to deliver a record ended.
enum Delivery {
    Acknowledged,
    /// Refused for good: re-sending the same record cannot help.
    Refused(KafkaError),
    /// The drain's time is up.
    Aborted,
}

/// The producer, with what publishing reports to. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    producer: Producer,
    shared: Arc<Shared>,
    /// Cancelled when the drain's time is up: stop retrying.
    abort: CancellationToken,
    /// Undeliverable alerts dropped (dead-letter topic off): every one is
    /// counted, the log is rate-limited.
    dropped_log: Arc<Mutex<LogLimiter>>,
    /// How many of an undeliverable alert's bytes its dead letter keeps.
    cut: usize,
}

/// Marks a topic as refusing records in the readiness while it lives.
struct Paused<'a> {
    shared: &'a Shared,
    topic: &'a str,
}

impl<'a> Paused<'a> {
    fn new(shared: &'a Shared, topic: &'a str) -> Self {
        shared.health.refused(topic);
        Paused { shared, topic }
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.shared.health.accepted(self.topic);
    }
}

impl Publisher {
    pub fn new(producer: Producer, shared: Arc<Shared>, abort: CancellationToken) -> Self {
        let cut = undeliverable_cut(kafka::producer_max_message_bytes(&shared));
        Publisher {
            producer,
            shared,
            abort,
            dropped_log: Arc::new(Mutex::new(LogLimiter::new(DROPPED_LOG_EVERY))),
            cut,
        }
    }

    /// Hand an event's records to the producer, in order. `source` is where
    /// the event was consumed, if it was (for a dead letter's headers).
    pub async fn enqueue_all(&self, records: Vec<Record>, source: Option<Origin>) -> Enqueued {
        let mut pending = Vec::with_capacity(records.len());
        for rec in records {
            match self.enqueue(&rec).await {
                Some(Ok(f)) => pending.push((rec, Pending::Sent(f))),
                Some(Err(e)) => pending.push((rec, Pending::Refused(e))),
                None => {
                    return Enqueued {
                        pending,
                        complete: false,
                        source,
                    }
                }
            }
        }
        Enqueued {
            pending,
            complete: true,
            source,
        }
    }

    /// Enqueue a record, waiting while librdkafka's queue is full and
    /// retrying transient refusals. `Some(Err)` when the producer refuses
    /// it for good, `None` when aborted.
    async fn enqueue(&self, rec: &Record) -> Option<Result<DeliveryFuture, KafkaError>> {
        let mut backoff = ENQUEUE_RETRY;
        loop {
            let e = match self.producer.send_result(rec.future_record()) {
                Ok(f) => return Some(Ok(f)),
                Err((e, _)) => e,
            };
            let wait = if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) {
                QUEUE_FULL_WAIT
            } else {
                let kind = rec.kind.metric();
                self.shared
                    .metrics
                    .publish_failed(PublishError::Enqueue(kind));
                match classify(e.rdkafka_error_code()) {
                    Refusal::Permanent => return Some(Err(e)),
                    Refusal::Fatal => {
                        self.shared.fatal.raise(&e.to_string());
                        return None;
                    }
                    Refusal::Transient => {}
                }
                tracing::warn!(topic = %rec.topic, kind = kind.as_str(), error = %e, "cannot enqueue record, retrying");
                backoff.next()
            };
            tokio::select! {
                _ = self.abort.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Await every record's acknowledgement, re-sending transient failures
    /// and handling refusals for good (SPEC §9). True when all were
    /// enqueued and dealt with, false when aborted.
    pub async fn acknowledge(self, enqueued: Enqueued) -> bool {
        let source = enqueued.source;
        for (rec, pending) in enqueued.pending {
            let delivery = match pending {
                Pending::Sent(fut) => self.await_ack(&rec, fut).await,
                Pending::Refused(e) => Delivery::Refused(e),
            };
            match delivery {
                Delivery::Acknowledged => self.acknowledged(rec),
                Delivery::Aborted => return false,
                Delivery::Refused(e) => {
                    if !self.refused(rec, &e, source.as_ref()).await {
                        return false;
                    }
                }
            }
        }
        enqueued.complete
    }

    /// Await one record's acknowledgement, re-sending it while it fails
    /// transiently.
    async fn await_ack(&self, rec: &Record, mut fut: DeliveryFuture) -> Delivery {
        let mut backoff = ACK_RETRY;
        loop {
            let res = tokio::select! {
                r = &mut fut => r,
                _ = self.abort.cancelled() => return Delivery::Aborted,
            };
            let err = match res {
                Ok(Ok(_)) => return Delivery::Acknowledged,
                Ok(Err((e, _))) => e,
                Err(_) => KafkaError::Canceled,
            };
            let kind = rec.kind.metric();
            self.shared
                .metrics
                .publish_failed(PublishError::Unacknowledged(kind, err.rdkafka_error_code()));
            match classify(err.rdkafka_error_code()) {
                Refusal::Permanent => return Delivery::Refused(err),
                Refusal::Fatal => {
                    self.shared.fatal.raise(&err.to_string());
                    return Delivery::Aborted;
                }
                Refusal::Transient => {}
            }
            let delay = backoff.next();
            tracing::warn!(topic = %rec.topic, kind = kind.as_str(), retry_in = ?delay, error = %err, "record not acknowledged, retrying");
            tokio::select! {
                _ = self.abort.cancelled() => return Delivery::Aborted,
                _ = tokio::time::sleep(delay) => {}
            }
            match self.enqueue(rec).await {
                Some(Ok(f)) => fut = f,
                Some(Err(e)) => return Delivery::Refused(e),
                None => return Delivery::Aborted,
            }
        }
    }

    /// A record refused for good. An alert goes to the dead-letter topic as
    /// `undeliverable` (or, with that off, is counted and logged), so that
    /// its event moves on; anything else (a dead letter, an internal
    /// topic's record) must be delivered: retried while the partition is
    /// paused. False when aborted.
    async fn refused(&self, rec: Record, err: &KafkaError, source: Option<&Origin>) -> bool {
        if !matches!(rec.kind, Kind::Alert { .. } | Kind::Digest { .. }) {
            return self.deliver_paused(rec, Some(err)).await;
        }
        self.shared
            .metrics
            .publish_failed(PublishError::Undeliverable);
        let detail = err.to_string();
        let Some(dlq) = &self.shared.config.kafka.dlq_topic else {
            let held_back = self.dropped_log.lock().ok().and_then(|mut l| l.allow());
            if let Some(held_back) = held_back {
                tracing::error!(topic = %rec.topic, error = %detail, held_back, "alert refused for good and dropped (the dead-letter topic is off)");
            }
            return true;
        };
        tracing::warn!(topic = %rec.topic, dlq = %dlq, error = %detail, "alert refused for good: sent to the dead-letter topic as undeliverable");
        let source = source.map(Origin::source);
        let dead = Record::undeliverable(dlq, &rec, &detail, source, self.cut);
        self.deliver_paused(dead, None).await
    }

    /// Deliver a record that must not be skipped, however long it takes:
    /// while the broker refuses it for good (`first` is the refusal already
    /// seen, if any), its topic is named in `/readyz` and it is re-sent
    /// with backoff, so the partition resumes once the broker accepts.
    /// False when aborted.
    async fn deliver_paused(&self, rec: Record, first: Option<&KafkaError>) -> bool {
        let mut backoff = PAUSED_RETRY;
        let mut paused: Option<Paused<'_>> = None;
        let mut refusal = first.map(ToString::to_string);
        loop {
            if let Some(err) = refusal.take() {
                let delay = backoff.next();
                if paused.is_none() {
                    tracing::error!(topic = %rec.topic, kind = rec.kind.metric().as_str(), error = %err, retry_in = ?delay, "record refused for good: partition paused, retrying until the broker accepts it");
                    paused = Some(Paused::new(&self.shared, &rec.topic));
                }
                tokio::select! {
                    _ = self.abort.cancelled() => return false,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            let delivery = match self.enqueue(&rec).await {
                Some(Ok(fut)) => self.await_ack(&rec, fut).await,
                Some(Err(e)) => Delivery::Refused(e),
                None => Delivery::Aborted,
            };
            match delivery {
                Delivery::Acknowledged => break,
                Delivery::Aborted => return false,
                Delivery::Refused(e) => refusal = Some(e.to_string()),
            }
        }
        if paused.is_some() {
            tracing::info!(topic = %rec.topic, "record accepted: partition resumed");
        }
        drop(paused);
        self.acknowledged(rec);
        true
    }

    /// Count an acknowledged record; an alert goes on to Alertmanager.
    fn acknowledged(&self, rec: Record) {
        match rec.kind {
            Kind::Alert { rule, severity } => {
                self.shared.metrics.alert_published(&rule, &severity);
                // Only acknowledged alerts go on to Alertmanager; never blocks.
                if let Some(p) = rec.payload {
                    self.shared.alertmanager.push(p);
                }
            }
            Kind::Digest { rule } => {
                self.shared.metrics.digest_published(&rule);
                if let Some(p) = rec.payload {
                    self.shared.alertmanager.push(p);
                }
            }
            Kind::DeadLetter => self.shared.metrics.dlq_record(),
            Kind::State | Kind::Match => {}
        }
    }

    /// Wait up to `timeout` for what is still queued in the producer.
    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode as C;

    fn check(code: Option<RDKafkaErrorCode>, want: Refusal) {
        assert_eq!(classify(code), want, "{code:?}");
    }

    #[test]
    fn classify_table() {
        use Refusal::{Fatal as F, Permanent as P, Transient as T};
        check(Some(C::MessageSizeTooLarge), P);
        check(Some(C::InvalidMessageSize), P);
        check(Some(C::MessageBatchTooLarge), P);
        check(Some(C::InvalidRecord), P);
        check(Some(C::UnknownTopicOrPartition), P);
        check(Some(C::UnknownTopic), P);
        check(Some(C::UnknownPartition), P);
        check(Some(C::InvalidTopic), P);
        check(Some(C::TopicAuthorizationFailed), P);
        check(Some(C::ClusterAuthorizationFailed), P);
        check(Some(C::Fatal), F);
        check(Some(C::OutOfOrderSequenceNumber), F);
        check(Some(C::ProducerFenced), F);
        check(Some(C::InvalidProducerEpoch), F);
        check(Some(C::MessageTimedOut), T);
        check(Some(C::QueueFull), T);
        check(Some(C::NotEnoughReplicas), T);
        check(Some(C::NotLeaderForPartition), T);
        check(Some(C::RequestTimedOut), T);
        check(Some(C::BrokerTransportFailure), T);
        check(Some(C::AllBrokersDown), T);
        check(Some(C::GroupAuthorizationFailed), T);
        check(None, T);
    }
}
