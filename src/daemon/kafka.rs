//! The pipeline's Kafka clients: their properties and librdkafka's callbacks.
//!
//! The callbacks (log lines, statistics, global errors, rebalances) run on
//! librdkafka's threads or inside `recv()`, so they only record: health
//! flags, metrics, log lines, and the partitions revoked, which the loop
//! takes with [`ConsumerCtx::take_revoked`] before its next turn. They
//! never block and never touch the loop's state.
//!
//! Properties newswatch sets for correctness are set after the user's
//! `kafka.*_properties` (config validation refuses those keys anyway), so
//! at-least-once delivery cannot be configured away.

use std::sync::{Arc, Mutex};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use super::ratelimit::LogLimiter;
use super::Shared;
use crate::config::KafkaConfig;
use crate::metrics::{KafkaClient, Label};

/// The input consumer, with its callbacks.
pub type Consumer = StreamConsumer<ConsumerCtx>;
/// The producer of alerts, dead letters and state changes.
pub type Producer = FutureProducer<ProducerCtx>;

/// The input consumer. Nothing connects yet: it joins its group when it
/// subscribes.
pub fn consumer(shared: &Arc<Shared>) -> Result<Consumer, KafkaError> {
    consumer_config(&shared.config.kafka).create_with_context(ConsumerCtx {
        shared: shared.clone(),
        revoked: Mutex::new(Vec::new()),
    })
}

/// The one producer both stages share.
pub fn producer(shared: &Arc<Shared>) -> Result<Producer, KafkaError> {
    producer_config(&shared.config.kafka, shared.config.event.max_bytes).create_with_context(
        ProducerCtx {
            shared: shared.clone(),
        },
    )
}

/// The producer's `message.max.bytes` as configured (ours or the user's),
/// if it is a number: an undeliverable alert's dead letter is cut to fit.
pub fn producer_max_message_bytes(shared: &Shared) -> Option<usize> {
    producer_config(&shared.config.kafka, shared.config.event.max_bytes)
        .get("message.max.bytes")?
        .parse()
        .ok()
}

/// Properties newswatch sets for correctness; `kafka.consumer_properties`
/// may add or tune anything else.
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

/// Properties newswatch sets for correctness; `kafka.producer_properties`
/// may add or tune anything else.
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
    // Retries never reorder the records of one key: librdkafka retries in
    // order (idempotence) for as long as it takes (no delivery timeout), so
    // a delivery error is a refusal for good (too large, unknown topic, not
    // authorised), never a timeout after which a re-send would overtake
    // the records behind it and compaction would keep a stale state.
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "0");
    c
}

/// Stage two's consumer: its own group (`<group_id>-state`) over the
/// match records, committing like the input consumer.
pub fn state_consumer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = consumer_config(k);
    c.set("group.id", state_group_id(&k.group_id))
        // A restore holds the loop away from polling; a large changelog
        // partition may take minutes on a broker that does not compact.
        .set("max.poll.interval.ms", "1800000");
    // Static membership (`group.instance.id`) carries over, with an id of
    // its own: a restarted instance takes both its input and its state
    // partitions back without waiting for a rebalance.
    if let Some(id) = k.consumer_properties.get("group.instance.id") {
        c.set("group.instance.id", format!("{id}-state"));
    }
    c
}

/// The consumer group of stage two.
pub fn state_group_id(input_group: &str) -> String {
    format!("{input_group}-state")
}

/// Store `pos` as the next offset to commit for `(topic, partition)`.
pub fn store_offset(consumer: &Consumer, (topic, partition): &(String, i32), pos: i64) {
    let mut tpl = TopicPartitionList::new();
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

/// Commit what was stored, synchronously, then leave the group (by
/// dropping the consumer), on a thread of its own waited for at most
/// `left`. The commit and leaving wait on the broker without a timeout of
/// their own: an unresponsive broker would hold the exit forever, so the
/// thread is abandoned at the deadline (what was not committed is
/// redelivered). `what` names the consumer in the log lines.
pub async fn commit_and_leave<C: ConsumerContext + 'static>(
    consumer: StreamConsumer<C>,
    left: std::time::Duration,
    what: &'static str,
) {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let closing = std::thread::Builder::new()
        .name(format!("newswatch-close-{what}"))
        .spawn(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!(consumer = what, "offsets committed"),
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => tracing::warn!(
                    consumer = what,
                    error = %e,
                    "final commit failed; uncommitted records will be redelivered"
                ),
            }
            drop(consumer);
            let _ = done_tx.send(());
        });
    if closing.is_ok() && tokio::time::timeout(left, done_rx).await.is_err() {
        tracing::warn!(
            consumer = what,
            "shutdown timeout: the final commit did not complete (the broker does not answer); \
             uncommitted records will be redelivered"
        );
    }
}

// ------------------------------------------------------------------ callbacks

/// The consumer's callbacks: logs, statistics (lag, broker state), errors,
/// rebalances.
pub struct ConsumerCtx {
    shared: Arc<Shared>,
    /// Partitions revoked since the loop last looked.
    revoked: Mutex<Vec<(String, i32)>>,
}

impl ConsumerCtx {
    /// The partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<(String, i32)> {
        self.revoked
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

fn tpl_list(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_with(level, fac, msg);
    }

    fn stats(&self, s: Statistics) {
        if s.brokers.values().any(|b| b.state == "UP") {
            self.shared.health.set_broker_down(false);
        }
        report_lag(&self.shared, &s);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&self.shared, KafkaClient::Consumer, error, reason);
    }
}

/// Consumer lag per partition, from librdkafka's statistics: the input
/// topics' (stage one) and the match records' (stage two, how far the
/// stateful decisions trail).
pub(super) fn report_lag(shared: &Shared, s: &Statistics) {
    for (topic, t) in &s.topics {
        for (&p, part) in &t.partitions {
            // -1 is librdkafka's "internal UA" partition; lag -1 is unknown.
            if p >= 0 && part.consumer_lag >= 0 {
                shared.metrics.consumer_lag(topic, p, part.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            let parts = tpl_list(tpl);
            tracing::info!(partitions = ?parts, "partitions revoked");
            // Not ready until assigned again: after a session timeout (a
            // broker outage) the consumer has left its group and rejoins.
            self.shared.health.set_joined(false);
            self.shared.metrics.clear_consumer_lag();
            if let Ok(mut v) = self.revoked.lock() {
                v.extend(parts);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
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

/// The producer's callbacks: logs and errors.
pub struct ProducerCtx {
    shared: Arc<Shared>,
}

impl ClientContext for ProducerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_with(level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka raises the idempotent producer's fatal state here
        // first, before any delivery report says so.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.shared.fatal.raise(reason);
        }
        client_error(&self.shared, KafkaClient::Producer, error, reason);
    }
}

/// A global error from either client: readiness, counter, log line.
pub(super) fn client_error(shared: &Shared, client: KafkaClient, error: KafkaError, reason: &str) {
    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
        shared.health.set_broker_down(true);
    }
    shared.metrics.kafka_client_error(client);
    // librdkafka repeats a global error (all brokers down) for every
    // broker thread and every retry: count each, log a line a while.
    if let Some(held_back) = shared.kafka_error_log.allow(client) {
        tracing::warn!(target: "librdkafka", client = client.as_str(), error = %error, reason, held_back, "kafka client error");
    }
}

/// One [`LogLimiter`] per Kafka client, for [`client_error`].
#[derive(Debug, Default)]
pub struct ErrorLog(Mutex<std::collections::HashMap<&'static str, LogLimiter>>);

/// At most one global-error line per client this often.
const CLIENT_ERROR_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl ErrorLog {
    /// As [`LogLimiter::allow`], for `client`'s line.
    fn allow(&self, client: KafkaClient) -> Option<u64> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(client.as_str())
            .or_insert_with(|| LogLimiter::new(CLIENT_ERROR_LOG_EVERY))
            .allow()
    }
}

/// librdkafka's log lines, into tracing at the matching level.
pub(super) fn log_with(level: RDKafkaLogLevel, fac: &str, msg: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn kafka(consumer: &[(&str, &str)], producer: &[(&str, &str)]) -> KafkaConfig {
        let props = |p: &[(&str, &str)]| -> BTreeMap<String, String> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut k = crate::config::Config::default().kafka;
        k.consumer_properties = props(consumer);
        k.producer_properties = props(producer);
        k
    }

    /// The user tunes what they like; what at-least-once needs stays.
    #[test]
    fn properties_table() {
        let k = kafka(
            &[
                ("enable.auto.offset.store", "true"),
                ("statistics.interval.ms", "5000"),
            ],
            &[("acks", "1"), ("linger.ms", "20")],
        );
        let c = consumer_config(&k);
        let p = producer_config(&k, 2_000_000);
        // (client config, key, expected value)
        let table = [
            (&c, "bootstrap.servers", "127.0.0.1:9092"),
            (&c, "group.id", "newswatch"),
            (&c, "enable.auto.offset.store", "false"),
            (&c, "enable.auto.commit", "true"),
            (&c, "statistics.interval.ms", "5000"),
            (&p, "acks", "all"),
            (&p, "enable.idempotence", "true"),
            (&p, "linger.ms", "20"),
            (&p, "message.max.bytes", "4065536"),
        ];
        for (config, key, want) in table {
            assert_eq!(config.get(key), Some(want), "{key}");
        }
        let small = producer_config(&kafka(&[], &[]), 10);
        assert_eq!(small.get("message.max.bytes"), Some("2065536"));
    }
}
