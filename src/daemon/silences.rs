//! Silences in the daemon (SPEC §6, §10): stored in Kafka, shared by every
//! instance of the group, applied to every alert before it is published.
//!
//! **Storage.** `<group_id>-silences` is an internal topic (compacted, one
//! partition, created by `topics.rs` like the others), keyed by silence id,
//! its value the silence's JSON ([`newswatch_core::silence::Silence`]).
//! Expiring a silence writes it again with `ends_at` = now; nothing is ever
//! deleted, so compaction keeps one record per silence ever created.
//!
//! **Sharing.** Every instance reads the whole topic with a plain assigned
//! consumer (no group, nothing committed) on a thread of its own
//! ([`start_follower`]): first to its end, before stage one starts (so
//! before readiness, and before the first event is matched), then on,
//! so a silence made at one instance is applied by all within about a
//! second. `POST /silences` answers 201 only once the broker acknowledged
//! the record (acks=all), and applies it locally at once.
//!
//! **Applying.** After mode and throttle, to every alert before it is
//! published (the Alertmanager output only sees what Kafka acknowledged,
//! so a silenced alert reaches neither):
//! * stateful rules in stage two, through the core's `Store::silence`,
//!   which keeps the held-back count in the changelog (it survives
//!   restarts and moves);
//! * stateless rules in stage one ([`Silences::pass_stateless`]), with an
//!   in-memory count per (rule, group): it is per instance and lost on a
//!   restart, and two matcher threads may pass an alert and hold one back
//!   in either order.
//!
//! Every wait selects on shutdown: the POST's acknowledgement, the
//! follower's start (the restore) and its polls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use chrono::{DateTime, Utc};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::changelog::base_config;
use super::Shared;
use crate::config::KafkaConfig;
use crate::metrics::{KafkaClient, Metrics, Suppression};
use newswatch_core::alert::Alert;
use newswatch_core::rules::Rule;
use newswatch_core::silence::{self, Silence, SilenceSet};

/// How long a POST or DELETE waits for the broker's acknowledgement.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Ended silences are remembered this long, so that a copy of an earlier
/// version read late cannot revive them.
const KEEP_ENDED: chrono::Duration = chrono::Duration::minutes(10);
/// The follower's poll; also how often the gauge follows expiries.
const POLL: Duration = Duration::from_millis(200);
const GAUGE_EVERY: Duration = Duration::from_secs(1);
/// (rule, group) keys with a stateless held-back count, at most.
const MAX_STATELESS_KEYS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// A client could not be created (a bad property). Rendered without
    /// configured values, as `DaemonError::Kafka` is.
    #[error("silences client: {}", crate::redact::kafka_error(.0))]
    Client(#[from] KafkaError),
    /// The POST body is not a valid silence: every error.
    #[error("invalid silence")]
    Invalid(Vec<String>),
    /// No active silence has this id.
    #[error("no active silence {0}")]
    NotFound(String),
    /// The silences are not restored yet, the broker did not acknowledge,
    /// or the daemon is shutting down: try again.
    #[error("{0}")]
    Unavailable(String),
}

/// The silences topic of a consumer group.
pub fn topic(group_id: &str) -> String {
    format!("{group_id}-silences")
}

/// The daemon's silences: the set in force, the writer, the counts of
/// stateless rules.
pub struct Silences {
    set: ArcSwap<SilenceSet>,
    /// Serializes updates of `set` (readers never wait).
    update: Mutex<()>,
    producer: FutureProducer<Quiet>,
    topic: String,
    metrics: Arc<Metrics>,
    /// Restored to the topic's end once: the API answers from then on.
    restored: AtomicBool,
    /// Held back per (rule, group) of stateless rules, since the last
    /// alert that passed; `stateless_keys` mirrors its size for a lock-free
    /// "nothing held" check.
    stateless: Mutex<HashMap<String, u64>>,
    stateless_keys: AtomicU64,
    shutdown: CancellationToken,
    ids: AtomicU64,
}

impl Silences {
    /// The writer and an empty set; nothing connects yet.
    pub fn new(
        k: &KafkaConfig,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<Self, SilenceError> {
        let mut c = base_config(k, &k.producer_properties);
        // A silence is acknowledged by every in-sync replica before the
        // API says it exists; the wait is bounded, so a POST to an
        // instance cut off from the broker fails instead of hanging.
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", WRITE_TIMEOUT.as_millis().to_string());
        Ok(Silences {
            set: ArcSwap::from_pointee(SilenceSet::new()),
            update: Mutex::new(()),
            producer: c.create_with_context(Quiet("silences"))?,
            topic: topic(&k.group_id),
            metrics,
            restored: AtomicBool::new(false),
            stateless: Mutex::new(HashMap::new()),
            stateless_keys: AtomicU64::new(0),
            shutdown,
            ids: AtomicU64::new(0),
        })
    }

    /// The set in force (cheap; never waits).
    pub fn current(&self) -> Arc<SilenceSet> {
        self.set.load_full()
    }

    /// Add or update one silence (read from the topic, or just written).
    fn apply(&self, s: Silence) {
        let _one_at_a_time = self.update.lock();
        let mut next = SilenceSet::clone(&self.set.load());
        if !next.upsert(s) {
            tracing::warn!("a silence whose rule is no valid glob was ignored");
        }
        self.refresh_with(next);
    }

    /// Forget long-ended silences and set the gauge.
    fn refresh(&self) {
        let _one_at_a_time = self.update.lock();
        let next = SilenceSet::clone(&self.set.load());
        self.refresh_with(next);
    }

    fn refresh_with(&self, mut next: SilenceSet) {
        let now = Utc::now();
        next.prune(now - KEEP_ENDED);
        self.metrics.silences_active(next.active(now).len());
        self.set.store(Arc::new(next));
    }

    /// A new id: unique enough (time, process, counter, body), not secret.
    fn new_id(&self, body: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(
            Utc::now()
                .timestamp_nanos_opt()
                .unwrap_or_default()
                .to_be_bytes(),
        );
        h.update(std::process::id().to_be_bytes());
        h.update(self.ids.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        h.update(body);
        hex::encode(&h.finalize()[..10])
    }

    fn check_restored(&self) -> Result<(), SilenceError> {
        if self.restored.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(SilenceError::Unavailable(
                "the silences are not restored yet (the daemon is starting); try again".into(),
            ))
        }
    }

    /// `POST /silences`: validate, store (acknowledged), apply. The id.
    pub async fn create(&self, body: &[u8]) -> Result<String, SilenceError> {
        let now = Utc::now();
        let req = silence::validate(body, now).map_err(SilenceError::Invalid)?;
        self.check_restored()?;
        let s = req.into_silence(self.new_id(body), now);
        self.write(&s).await?;
        tracing::info!(id = %s.id, rule = %s.rule, ends_at = %s.ends_at, created_by = %s.created_by, "silence created");
        let id = s.id.clone();
        self.apply(s);
        Ok(id)
    }

    /// `DELETE /silences/{id}`: end an active silence now.
    pub async fn expire(&self, id: &str) -> Result<Silence, SilenceError> {
        self.check_restored()?;
        let now = Utc::now();
        let Some(mut s) = self.current().get(id).filter(|s| s.is_active(now)).cloned() else {
            return Err(SilenceError::NotFound(id.to_owned()));
        };
        s.ends_at = now;
        self.write(&s).await?;
        tracing::info!(id = %s.id, rule = %s.rule, "silence expired");
        self.apply(s.clone());
        Ok(s)
    }

    /// Write a silence and wait for the broker's acknowledgement.
    async fn write(&self, s: &Silence) -> Result<(), SilenceError> {
        let payload = s.to_json();
        let record = FutureRecord::to(&self.topic).key(&s.id).payload(&payload);
        let sent = tokio::select! {
            _ = self.shutdown.cancelled() => {
                return Err(SilenceError::Unavailable("the daemon is shutting down".into()))
            }
            r = self.producer.send(record, Timeout::After(WRITE_TIMEOUT)) => r,
        };
        sent.map(|_| ()).map_err(|(e, _)| {
            self.metrics.kafka_client_error(KafkaClient::Silences);
            tracing::warn!(topic = %self.topic, error = %e, "a silence was not acknowledged");
            SilenceError::Unavailable(format!(
                "the broker did not acknowledge the silence ({e}); try again"
            ))
        })
    }

    /// Stage one, for an alert of a stateless rule: `false` when a silence
    /// holds it back (counted); otherwise it carries what was held back
    /// for its rule and group since the last one that passed.
    pub fn pass_stateless(&self, rule: &Rule, alert: &mut Alert) -> bool {
        let set = self.set.load();
        let nothing_held = self.stateless_keys.load(Ordering::Relaxed) == 0;
        if set.is_empty() && nothing_held {
            return true;
        }
        let silenced = set.silenced(&rule.id, &rule.labels, &alert.group, Utc::now());
        if !silenced && nothing_held {
            return true;
        }
        let key = newswatch_core::state::key_of(&rule.id, &alert.group);
        let Ok(mut held) = self.stateless.lock() else {
            return !silenced;
        };
        if silenced {
            self.metrics
                .alert_suppressed_by(&rule.id, Suppression::Silenced);
            if held.len() < MAX_STATELESS_KEYS || held.contains_key(&key) {
                *held.entry(key).or_default() += 1;
            }
        } else if let Some(n) = held.remove(&key) {
            alert.suppressed += n;
            alert.fit();
        }
        self.stateless_keys
            .store(held.len() as u64, Ordering::Relaxed);
        !silenced
    }
}

/// The silence clients' callbacks: librdkafka's log into tracing; the end
/// of the partition, which the follower waits for, is no error.
pub struct Quiet(&'static str);

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        super::kafka::log_with(level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_)) {
            tracing::warn!(target: "librdkafka", client = self.0, error = %error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for Quiet {}

/// The follower's consumer: partitions assigned by hand, nothing committed
/// (librdkafka still wants a group.id for `assign`; it must not be one of
/// the daemon's groups).
fn reader(k: &KafkaConfig) -> Result<BaseConsumer<Quiet>, KafkaError> {
    let mut c: ClientConfig = base_config(k, &k.consumer_properties);
    c.set("group.id", format!("{}.silences-reader", k.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .remove("group.instance.id");
    c.create_with_context(Quiet("silences-reader"))
}

/// Start following the silences topic on a thread of its own, until `stop`.
/// The receiver gets `()` once the topic was read to its end (the restore).
pub fn start_follower(
    k: &KafkaConfig,
    silences: Arc<Silences>,
    stop: CancellationToken,
) -> Result<tokio::sync::oneshot::Receiver<()>, SilenceError> {
    let consumer = reader(k)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("newswatch-silences".into())
        .spawn(move || follow(&consumer, &silences, &stop, tx));
    if let Err(e) = spawned {
        return Err(SilenceError::Unavailable(format!(
            "cannot start the silences thread: {e}"
        )));
    }
    Ok(rx)
}

/// The follower's loop: assign every partition from the beginning, apply
/// each record, report the first end of every partition.
fn follow(
    consumer: &BaseConsumer<Quiet>,
    silences: &Silences,
    stop: &CancellationToken,
    restored: tokio::sync::oneshot::Sender<()>,
) {
    let topic = silences.topic.clone();
    let Some(parts) = partitions(consumer, &topic, silences, stop) else {
        return;
    };
    let mut tpl = TopicPartitionList::new();
    for &p in &parts {
        if let Err(e) = tpl.add_partition_offset(&topic, p, Offset::Beginning) {
            tracing::error!(topic, error = %e, "cannot follow the silences topic");
            return;
        }
    }
    if let Err(e) = consumer.assign(&tpl) {
        tracing::error!(topic, error = %e, "cannot follow the silences topic");
        return;
    }
    let started = Instant::now();
    // Restored at each partition's end: its end-of-file event, or its last
    // offset before the high watermark read now; an empty one is done.
    let Some(mut pending) = ends(consumer, &topic, &parts, silences, stop) else {
        return;
    };
    let mut restored = Some(restored);
    let (mut records, mut last_refresh) = (0u64, Instant::now());
    let mut errors = super::ratelimit::LogLimiter::new(Duration::from_secs(60));
    while !stop.is_cancelled() {
        match consumer.poll(POLL) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => pending.retain(|&(x, _)| x != p),
            Some(Err(e)) => {
                silences.metrics.kafka_client_error(KafkaClient::Silences);
                if let Some(held_back) = errors.allow() {
                    tracing::warn!(topic, error = %e, held_back, "silences topic read error (retrying)");
                }
            }
            Some(Ok(m)) => {
                records += 1;
                let (p, off) = (m.partition(), m.offset());
                pending.retain(|&(x, high)| x != p || off + 1 < high);
                match m.payload().map(serde_json::from_slice::<Silence>) {
                    Some(Ok(s)) => silences.apply(s),
                    // A tombstone (an operator's cleanup): nothing to apply.
                    None => {}
                    Some(Err(e)) => {
                        tracing::warn!(topic, offset = m.offset(), error = %e, "silence record skipped: not a silence")
                    }
                }
            }
        }
        if pending.is_empty() {
            if let Some(tx) = restored.take() {
                silences.restored.store(true, Ordering::Release);
                silences.refresh();
                tracing::info!(
                    topic,
                    records,
                    took_ms = started.elapsed().as_millis() as u64,
                    active = silences.current().active(Utc::now()).len(),
                    "silences restored"
                );
                let _ = tx.send(());
            }
        }
        if last_refresh.elapsed() >= GAUGE_EVERY {
            silences.refresh();
            last_refresh = Instant::now();
        }
    }
}

/// Each partition that holds records, with its high watermark; retried
/// until `stop`.
fn ends(
    consumer: &BaseConsumer<Quiet>,
    topic: &str,
    parts: &[i32],
    silences: &Silences,
    stop: &CancellationToken,
) -> Option<Vec<(i32, i64)>> {
    let mut out = Vec::new();
    for &p in parts {
        let mut backoff = Duration::from_millis(200);
        loop {
            if stop.is_cancelled() {
                return None;
            }
            match consumer.fetch_watermarks(topic, p, Duration::from_secs(10)) {
                Ok((low, high)) => {
                    if high > low {
                        out.push((p, high));
                    }
                    break;
                }
                Err(e) => {
                    silences.metrics.kafka_client_error(KafkaClient::Silences);
                    tracing::warn!(topic, partition = p, error = %e, retry_in = ?backoff, "cannot read the silences topic's end yet");
                }
            }
            pause(backoff, stop);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
    Some(out)
}

/// Sleep on a blocking thread in short steps, so `stop` is seen soon.
fn pause(d: Duration, stop: &CancellationToken) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.is_cancelled() {
        std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
    }
}

/// The topic's partitions, from metadata; retried until `stop`.
fn partitions(
    consumer: &BaseConsumer<Quiet>,
    topic: &str,
    silences: &Silences,
    stop: &CancellationToken,
) -> Option<Vec<i32>> {
    let mut backoff = Duration::from_millis(200);
    while !stop.is_cancelled() {
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) {
            Ok(md) => {
                let parts: Vec<i32> = md
                    .topics()
                    .iter()
                    .filter(|t| t.name() == topic && t.error().is_none())
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect();
                if !parts.is_empty() {
                    return Some(parts);
                }
            }
            Err(e) => {
                silences.metrics.kafka_client_error(KafkaClient::Silences);
                tracing::warn!(topic, error = %e, retry_in = ?backoff, "cannot read the silences topic's metadata yet");
            }
        }
        pause(backoff, stop);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    None
}

// ------------------------------------------------------------------ HTTP

/// `GET`, `POST /silences` and `DELETE /silences/{id}` (SPEC §10); the
/// bearer token on POST and DELETE is the router's layer (`http.rs`).
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/silences", get(list).post(create))
        .route("/silences/{id}", delete(expire))
}

fn errors(status: StatusCode, errs: Vec<String>) -> Response {
    (status, axum::Json(json!({ "errors": errs }))).into_response()
}

fn refused(e: SilenceError) -> Response {
    match e {
        SilenceError::Invalid(errs) => errors(StatusCode::BAD_REQUEST, errs),
        SilenceError::NotFound(id) => errors(
            StatusCode::NOT_FOUND,
            vec![format!("no active silence with id {id:?}")],
        ),
        e => errors(StatusCode::SERVICE_UNAVAILABLE, vec![e.to_string()]),
    }
}

async fn list(State(s): State<Arc<Shared>>) -> Response {
    let set = s.silences.current();
    if let Err(e) = s.silences.check_restored() {
        return refused(e);
    }
    let now: DateTime<Utc> = Utc::now();
    axum::Json(set.active(now)).into_response()
}

async fn create(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    match s.silences.create(&body).await {
        Ok(id) => (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response(),
        Err(e) => refused(e),
    }
}

async fn expire(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match s.silences.expire(&id).await {
        Ok(silence) => axum::Json(silence).into_response(),
        Err(e) => refused(e),
    }
}
