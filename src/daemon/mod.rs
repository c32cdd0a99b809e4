//! `newswatch run`: the daemon (SPEC §2, §3, §8–§11).
//!
//! [`run`] wires the pieces together: the rule set behind an `ArcSwap`
//! (`rules`), the Kafka pipeline, the HTTP endpoints (`http`), the metrics,
//! hot reload (files, SIGHUP, HTTP) and the optional Alertmanager output
//! (`alertmanager`). It returns when the `shutdown` token is cancelled and
//! everything in flight has been drained (or `kafka.shutdown_timeout` ran
//! out), so tests can run the daemon in-process and stop it.
//!
//! Two stages share one producer (SPEC §6, §9: stateful rules decided
//! exactly, at any number of instances):
//!
//! * Stage one, `pipeline`: the input consumer's loop, a struct with one
//!   method per event it waits on, and the shutdown's drain and final
//!   commit. It publishes the alerts of stateless rules and a match record
//!   per match of a stateful rule (`<group_id>-matches`, partitioned by
//!   rule and group).
//! * Stage two, `owner`: a consumer group of its own over the match
//!   records; the owner of a partition restores its state from the
//!   changelog partition of the same number (`changelog`), decides in
//!   partition order and writes the state changes back.
//! * `topics`: the internal topics, checked by metadata and created only
//!   when missing.
//! * `kafka`: client properties and librdkafka's callbacks.
//! * `matching`: the matcher threads (decode, match, records in rule order).
//! * `records`: the records published (alert, dead letter, match record,
//!   state change), built by pure functions.
//! * `publish`: enqueueing and acknowledgement, with retries.
//! * `offsets`: which offset may be stored (pure).
//!
//! Shared by all: `backoff` (the one retry policy type) and `ratelimit`
//! (the one rate-limited logger). Every wait also waits on shutdown.

pub mod alertmanager;
pub(crate) mod backoff;
pub mod changelog;
mod http;
mod kafka;
mod matching;
pub mod offsets;
mod owner;
mod pipeline;
mod publish;
pub(crate) mod ratelimit;
mod records;
mod rulecost;
pub mod rules;
mod silences;
pub mod topics;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use rules::RulesHandle;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The rule files do not load; the daemon does not start without rules.
    #[error("the rules do not load:\n{0}")]
    Rules(#[from] newswatch_core::rules::LoadErrors),
    /// A Kafka client could not be created (bad property, for instance).
    /// Rendered without configured values: rdkafka's own text would quote
    /// the value of a rejected (say, misspelt `sasl.pasword`) property.
    #[error("kafka: {}", crate::redact::kafka_error(.0))]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The HTTP listener could not be bound.
    #[error("http.listen {addr}: {source}")]
    Http {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The state changelog topic cannot be created or read.
    #[error(transparent)]
    Changelog(#[from] changelog::ChangelogError),
    /// An internal topic is missing and cannot be created, or does not fit;
    /// or a topic the config or rules name is missing or loops back.
    #[error(transparent)]
    Topics(#[from] topics::TopicsError),
    /// The state restore's thread died: the daemon stops (non-zero exit)
    /// rather than decide stateful rules on missing state.
    #[error("state restore failed: {0}")]
    Restore(String),
    /// The idempotent producer failed fatally: the daemon stops (non-zero
    /// exit) so that a restart creates a new one.
    #[error("the Kafka producer failed fatally: {0}")]
    ProducerFatal(String),
    /// The rule file watcher could not start.
    #[error("watching the rule files: {0}")]
    Watch(#[from] notify::Error),
    /// The Alertmanager output could not start (its HTTP client).
    #[error("{0}")]
    Alertmanager(#[from] alertmanager::AlertmanagerError),
    /// The silences' Kafka clients could not start.
    #[error("{0}")]
    Silences(#[from] silences::SilenceError),
}

/// Liveness and readiness, set by the loops and read by `/healthz`, `/readyz`.
#[derive(Debug)]
pub struct Health {
    /// Unix milliseconds of the pipeline loop's last turn.
    heartbeat: AtomicU64,
    joined: AtomicBool,
    broker_down: AtomicBool,
    stopping: AtomicBool,
    /// Why stateful rules cannot be decided yet (the first restore), if so.
    state: Mutex<Option<String>>,
    /// Topics refusing records for good that must still be delivered (the
    /// dead-letter topic, internal topics), each with how many records
    /// wait on it: their partitions are paused, so not ready (SPEC §9).
    refused: Mutex<BTreeMap<String, usize>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            heartbeat: AtomicU64::new(0),
            joined: AtomicBool::new(false),
            broker_down: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            state: Mutex::new(Some("state partitions not assigned yet".into())),
            refused: Mutex::new(BTreeMap::new()),
        }
    }
}

/// The pipeline loop turns at least this often while alive.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);
/// `/healthz` fails when the loop has not turned for this long.
const HEARTBEAT_STALE: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Health {
    pub fn beat(&self) {
        self.heartbeat.store(now_ms(), Ordering::Relaxed);
    }

    pub fn check(&self) -> Result<(), String> {
        let last = self.heartbeat.load(Ordering::Relaxed);
        let age = now_ms().saturating_sub(last);
        if last == 0 || age > HEARTBEAT_STALE.as_millis() as u64 {
            return Err(format!("pipeline loop has not run for {age} ms"));
        }
        Ok(())
    }

    pub fn ready(&self) -> Result<(), String> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err("shutting down".into());
        }
        if self.broker_down.load(Ordering::Relaxed) {
            return Err("Kafka brokers unreachable".into());
        }
        if !self.joined.load(Ordering::Relaxed) {
            return Err("consumer has not joined its group yet".into());
        }
        if let Some(why) = self.state.lock().ok().and_then(|s| s.clone()) {
            return Err(why);
        }
        if let Some(topics) = self.refused_topics() {
            return Err(format!(
                "the broker refuses records for topic {topics}: publishing paused, retrying"
            ));
        }
        self.check()
    }

    /// Stateful rules' readiness: `Some(progress)` until the first
    /// assignment of state partitions is restored, then `None`.
    pub fn set_state_progress(&self, progress: Option<String>) {
        if let Ok(mut s) = self.state.lock() {
            *s = progress;
        }
    }

    pub fn set_joined(&self, v: bool) {
        self.joined.store(v, Ordering::Relaxed);
    }

    pub fn set_broker_down(&self, v: bool) {
        self.broker_down.store(v, Ordering::Relaxed);
    }

    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// A record for `topic` is refused for good and retried: not ready
    /// until [`Health::accepted`] for it.
    pub fn refused(&self, topic: &str) {
        if let Ok(mut r) = self.refused.lock() {
            *r.entry(topic.to_owned()).or_default() += 1;
        }
    }

    /// A record [`Health::refused`] for `topic` was accepted or given up.
    pub fn accepted(&self, topic: &str) {
        if let Ok(mut r) = self.refused.lock() {
            if let Some(n) = r.get_mut(topic) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    r.remove(topic);
                }
            }
        }
    }

    /// The topics refusing records, comma-separated, if any.
    fn refused_topics(&self) -> Option<String> {
        let r = self.refused.lock().ok()?;
        (!r.is_empty()).then(|| r.keys().cloned().collect::<Vec<_>>().join(", "))
    }
}

/// What the pipeline, the HTTP handlers and the reloaders share.
pub struct Shared {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub rules: Arc<RulesHandle>,
    pub health: Health,
    /// Where acknowledged alerts go next (a no-op while the output is off).
    pub alertmanager: alertmanager::Output,
    /// The internal topics that join the two stages.
    pub topics: topics::InternalTopics,
    /// The silences in force, their writer and follower (`silences.rs`).
    pub silences: Arc<silences::Silences>,
    /// Limits librdkafka's repeated global errors to a line per client a while.
    pub kafka_error_log: kafka::ErrorLog,
    /// Raised when the producer is in a fatal state: the daemon stops.
    pub fatal: Fatal,
}

/// A fatal producer error: the idempotent producer accepts nothing more,
/// so the daemon stops both stages and exits non-zero; a supervisor
/// restarts it with a new producer, and what was not acknowledged comes
/// again (nothing is committed past it).
#[derive(Debug, Default)]
pub struct Fatal {
    token: CancellationToken,
    reason: std::sync::OnceLock<String>,
}

impl Fatal {
    /// Record the first fatal error and stop the stages.
    pub fn raise(&self, reason: &str) {
        if self.reason.set(reason.to_owned()).is_ok() {
            tracing::error!(reason, "the producer failed fatally: stopping");
        }
        self.token.cancel();
    }

    /// The first fatal error, if one was raised.
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }
}

/// Run the daemon until `shutdown` is cancelled. Returns after a clean
/// drain: in-flight events finished, alerts flushed, offsets committed.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let metrics = Arc::new(Metrics::with_per_rule(config.metrics.per_rule));
    let rules = Arc::new(RulesHandle::load(
        config.rules.paths.clone(),
        config.event.clone(),
    )?);
    {
        let engine = rules.current();
        metrics.rules_in_force(engine.rules.rules.len(), &engine.rules.version);
        tracing::info!(rules = engine.rules.rules.len(), version = %engine.rules.version, "rules loaded");
    }
    // Background tasks stop on `stop`, which is cancelled after the pipeline
    // has drained (the HTTP server keeps answering during the drain, and the
    // Alertmanager output flushes what the drain acknowledged).
    let stop = CancellationToken::new();
    // Also on an early error return below, so no background task outlives `run`.
    let _stop_on_return = stop.clone().drop_guard();
    let (am_output, am_task) = alertmanager::start(
        &config.alertmanager,
        config.kafka.shutdown_timeout,
        metrics.clone(),
        shutdown.clone(),
        stop.clone(),
    )?;
    let shared = Arc::new(Shared {
        config: config.clone(),
        metrics: metrics.clone(),
        rules: rules.clone(),
        health: Health::default(),
        alertmanager: am_output,
        topics: topics::InternalTopics::of(&config.kafka),
        kafka_error_log: kafka::ErrorLog::default(),
        fatal: Fatal::default(),
        silences: Arc::new(silences::Silences::new(
            &config.kafka,
            metrics.clone(),
            shutdown.clone(),
        )?),
    });
    shared.health.beat();

    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| DaemonError::Http {
            addr: config.http.listen,
            source,
        })?;
    tracing::info!(listen = %config.http.listen, "http listening");
    // The HTTP server drops its connections at the latest when
    // `kafka.shutdown_timeout` has passed since the shutdown began, so no
    // client holds the exit back (SPEC §9, §10).
    let hard = CancellationToken::new();
    let deadline = tokio::spawn({
        let (shutdown, hard) = (shutdown.clone(), hard.clone());
        let bound = config.kafka.shutdown_timeout;
        async move {
            shutdown.cancelled().await;
            tokio::time::sleep(bound).await;
            hard.cancel();
        }
    });
    let server = tokio::spawn(http::serve(
        listener,
        http::router(shared.clone()),
        stop.clone(),
        hard,
    ));
    if config.rules.watch {
        rules.watch(metrics.clone(), stop.clone())?;
    }
    // Always handled: SIGHUP's default action would end the daemon without
    // a drain (`systemctl reload` sends it).
    spawn_sighup(
        rules.clone(),
        metrics.clone(),
        stop.clone(),
        config.rules.watch,
    );

    let result = run_stages(shared.clone(), shutdown).await;
    stop.cancel();
    // The output bounds its own flush (FLUSH_MAX); the timeout is a backstop.
    let am_done = async {
        if let Some(t) = am_task {
            let _ = tokio::time::timeout(alertmanager::FLUSH_MAX * 2, t).await;
        }
    };
    let _ = tokio::join!(server, am_done);
    deadline.abort();
    result
}

/// Both stages, sharing one producer. Either one failing stops both.
async fn run_stages(shared: Arc<Shared>, shutdown: CancellationToken) -> Result<(), DaemonError> {
    // Every client first: a bad property fails here, before any network.
    let producer = kafka::producer(&shared)?;
    let consumer = kafka::consumer(&shared)?;
    let state_consumer = owner::consumer(&shared, producer.clone())?;
    // Every topic the config and rules name exists (SPEC §9). Reloads are
    // checked from before the start-up check, so none slips in unchecked.
    let check = Arc::new(topics::TopicCheck::new(
        &shared.config.kafka,
        shared.config.file.as_deref(),
    )?);
    shared.rules.set_topic_check(check.clone());
    if !check
        .at_start(&shared.rules.current().rules, &shutdown)
        .await?
    {
        tracing::info!("stopped");
        return Ok(());
    }
    if !topics::ensure(&shared.config.kafka, &shared.topics, &shutdown).await? {
        tracing::info!("stopped");
        return Ok(());
    }
    // Silences are read to the topic's end before the first event is
    // matched (and so before readiness), and followed until both stages end.
    let follow = CancellationToken::new();
    let _stop_following = follow.clone().drop_guard();
    let restored = silences::start_follower(&shared.config.kafka, shared.silences.clone(), follow)?;
    tokio::select! {
        _ = shutdown.cancelled() => {
            tracing::info!("stopped");
            return Ok(());
        }
        r = restored => if r.is_err() {
            return Err(silences::SilenceError::Unavailable(
                "the silences thread stopped before the restore".into(),
            )
            .into());
        }
    }
    let both = shutdown.child_token();
    let stage_one = {
        let (shared, producer, both) = (shared.clone(), producer.clone(), both.clone());
        async move {
            let r = pipeline::run(shared, consumer, producer, both.clone()).await;
            both.cancel();
            r
        }
    };
    let stage_two = {
        let (shared, both) = (shared.clone(), both.clone());
        async move {
            let r = owner::run(shared, state_consumer, producer, both.clone()).await;
            both.cancel();
            r
        }
    };
    // A fatal producer error stops both stages, which drain what they can.
    let on_fatal = tokio::spawn({
        let (fatal, both) = (shared.fatal.token.clone(), both.clone());
        async move {
            tokio::select! {
                _ = fatal.cancelled() => both.cancel(),
                _ = both.cancelled() => {}
            }
        }
    });
    let (one, two) = tokio::join!(stage_one, stage_two);
    on_fatal.abort();
    if let Some(reason) = shared.fatal.reason() {
        return Err(DaemonError::ProducerFatal(reason.to_owned()));
    }
    one.and(two)
}

#[cfg(unix)]
fn spawn_sighup(
    rules: Arc<RulesHandle>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    reload: bool,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload through POST /-/reload");
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                got = hup.recv() => if got.is_none() { return },
            }
            if reload {
                let _ = rules.reload(&metrics, "SIGHUP").await;
            } else {
                tracing::info!("SIGHUP ignored: rules.watch = false; reload with POST /-/reload");
            }
        }
    });
}

#[cfg(not(unix))]
fn spawn_sighup(_: Arc<RulesHandle>, _: Arc<Metrics>, _: CancellationToken, _: bool) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first fatal error is the one reported, and it stops the stages.
    #[test]
    fn fatal_keeps_the_first_reason() {
        let f = Fatal::default();
        assert_eq!(f.reason(), None);
        f.raise("Local: Fatal error: OutOfOrderSequenceNumber");
        f.raise("later");
        assert!(f.token.is_cancelled());
        assert_eq!(
            f.reason(),
            Some("Local: Fatal error: OutOfOrderSequenceNumber")
        );
    }

    /// Readiness while topics refuse records: each named until every record
    /// waiting on it was accepted.
    #[test]
    fn refused_topics_make_unready_until_accepted() {
        let h = Health::default();
        h.beat();
        h.set_joined(true);
        h.set_state_progress(None);
        assert_eq!(h.ready(), Ok(()));
        h.refused("news.dlq");
        h.refused("news.dlq");
        h.refused("g-matches");
        let why = h.ready().unwrap_err();
        assert!(why.contains("g-matches, news.dlq"), "{why}");
        h.accepted("news.dlq");
        h.accepted("g-matches");
        let why = h.ready().unwrap_err();
        assert!(
            why.contains("news.dlq") && !why.contains("g-matches"),
            "{why}"
        );
        h.accepted("news.dlq");
        assert_eq!(h.ready(), Ok(()));
        // An accepted topic never seen refused changes nothing.
        h.accepted("other");
        assert_eq!(h.ready(), Ok(()));
    }
}
