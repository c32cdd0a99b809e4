//! Publishing an event's records, retried until the broker acknowledges
//! them (a broker outage must lose nothing; the event's offset simply does
//! not move meanwhile).
//!
//! Two steps, so that records of one partition reach the producer in
//! consumption order while their acknowledgements are awaited side by side:
//! [`Publisher::enqueue_all`] runs inside the loop (it waits only while
//! librdkafka's queue is full or the producer refuses a record), and
//! [`Publisher::acknowledge`] runs as a future of its own, re-sending what
//! failed. Every wait also watches `abort`, cancelled when the shutdown's
//! drain time is up; an aborted event is never finished, so it is
//! redelivered.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, Producer as _};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::kafka::Producer;
use super::records::{Kind, Record};
use super::Shared;
use crate::metrics::{Label, PublishError};

/// Retry delays when the broker did not acknowledge a record.
const ACK_RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// Retry delays when the producer refuses a record (other than a full
/// queue). Starts a step later than [`ACK_RETRY`], as it always did.
const ENQUEUE_RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
/// While librdkafka's queue is full, try again this often.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// Whether a delivery error can pass by itself. The producer has no
/// delivery timeout, so librdkafka retries transient failures itself, in
/// order; an error that reaches us is final for that attempt, and a
/// permanent one will be refused again however often it is re-sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))] // used from the next commit on
pub enum Refusal {
    /// The broker (or the producer) will refuse this record every time:
    /// too large, topic missing or invalid, not authorised, or the
    /// idempotent producer in a fatal state.
    Permanent,
    /// Anything else: worth re-sending with backoff.
    Transient,
}

/// Classify a librdkafka error code (`None`: an error without one, e.g. a
/// cancelled delivery future, which re-sending may cure).
#[cfg_attr(not(test), allow(dead_code))] // used from the next commit on
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
            | C::TransactionalIdAuthorizationFailed
            // The idempotent producer's fatal errors: it accepts nothing
            // more until restarted.
            | C::Fatal
            | C::OutOfOrderSequenceNumber
            | C::InvalidProducerEpoch
            | C::InvalidProducerIdMapping
            | C::ProducerFenced
            | C::UnknownProducerId,
        ) => Refusal::Permanent,
        _ => Refusal::Transient,
    }
}

/// Records handed to the producer, each with its acknowledgement to come.
pub struct Enqueued {
    pending: Vec<(Record, DeliveryFuture)>,
    /// False when aborted before every record was enqueued: the event must
    /// never count as finished.
    complete: bool,
}

/// The producer, with what publishing reports to. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    producer: Producer,
    shared: Arc<Shared>,
    /// Cancelled when the drain's time is up: stop retrying.
    abort: CancellationToken,
}

impl Publisher {
    pub fn new(producer: Producer, shared: Arc<Shared>, abort: CancellationToken) -> Self {
        Publisher {
            producer,
            shared,
            abort,
        }
    }

    /// Hand an event's records to the producer, in order.
    pub async fn enqueue_all(&self, records: Vec<Record>) -> Enqueued {
        let mut pending = Vec::with_capacity(records.len());
        for rec in records {
            match self.enqueue(&rec).await {
                Some(f) => pending.push((rec, f)),
                None => {
                    return Enqueued {
                        pending,
                        complete: false,
                    }
                }
            }
        }
        Enqueued {
            pending,
            complete: true,
        }
    }

    /// Enqueue a record, waiting while librdkafka's queue is full. `None`
    /// when aborted.
    async fn enqueue(&self, rec: &Record) -> Option<DeliveryFuture> {
        let mut backoff = ENQUEUE_RETRY;
        loop {
            let e = match self.producer.send_result(rec.future_record()) {
                Ok(f) => return Some(f),
                Err((e, _)) => e,
            };
            let wait = if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) {
                QUEUE_FULL_WAIT
            } else {
                let kind = rec.kind.metric();
                self.shared
                    .metrics
                    .publish_failed(PublishError::Enqueue(kind));
                tracing::warn!(topic = %rec.topic, kind = kind.as_str(), error = %e, "cannot enqueue record, retrying");
                backoff.next()
            };
            tokio::select! {
                _ = self.abort.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Await every record's acknowledgement, re-sending failures. True when
    /// all were enqueued and acknowledged, false when aborted.
    pub async fn acknowledge(self, enqueued: Enqueued) -> bool {
        for (rec, fut) in enqueued.pending {
            if !self.acknowledge_one(&rec, fut).await {
                return false;
            }
            self.acknowledged(rec);
        }
        enqueued.complete
    }

    /// Await one record's acknowledgement, re-sending it until it comes.
    /// False when aborted.
    async fn acknowledge_one(&self, rec: &Record, mut fut: DeliveryFuture) -> bool {
        let mut backoff = ACK_RETRY;
        loop {
            let res = tokio::select! {
                r = &mut fut => r,
                _ = self.abort.cancelled() => return false,
            };
            let err = match res {
                Ok(Ok(_)) => return true,
                Ok(Err((e, _))) => e,
                Err(_) => KafkaError::Canceled,
            };
            let kind = rec.kind.metric();
            self.shared
                .metrics
                .publish_failed(PublishError::Unacknowledged(kind, err.rdkafka_error_code()));
            let delay = backoff.next();
            tracing::warn!(topic = %rec.topic, kind = kind.as_str(), retry_in = ?delay, error = %err, "record not acknowledged, retrying");
            tokio::select! {
                _ = self.abort.cancelled() => return false,
                _ = tokio::time::sleep(delay) => {}
            }
            match self.enqueue(rec).await {
                Some(f) => fut = f,
                None => return false,
            }
        }
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
        use Refusal::{Permanent as P, Transient as T};
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
        check(Some(C::Fatal), P);
        check(Some(C::OutOfOrderSequenceNumber), P);
        check(Some(C::ProducerFenced), P);
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
