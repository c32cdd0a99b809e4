//! Stage two: each state partition's owner decides its stateful rules.
//!
//! Stage one (the input consumer, `pipeline.rs`) turns every match of a
//! stateful rule into a match record on `<group_id>-matches`, in the
//! partition its (rule, group) key hashes to. This loop consumes that topic
//! as a consumer group of its own, `<group_id>-state`, so every partition,
//! and with it every (rule, group), has exactly one owner at a time, as in
//! Kafka Streams after a repartition:
//!
//! * **Assign.** Before any record of a newly assigned partition is decided,
//!   the changelog partition of the same number is read into a fresh
//!   [`Store`] (restore). `/readyz` answers 503 with the progress until the
//!   first assignment is restored; the heartbeat keeps beating meanwhile.
//! * **Decide.** Records are decided in partition order; the alerts and the
//!   state changes of one record are produced together (changes to the
//!   changelog partition of the same number), and the record's offset is
//!   stored only when all of them are acknowledged.
//! * **Digests** (SPEC §6). A period closed by event time is closed by the
//!   decision of a match record; on the wall clock, a tick every
//!   [`DIGEST_TICK`] asks each owned store for periods past their end plus
//!   `grace` while the partition has decided nothing for that long. Either
//!   way the digest records are produced and acknowledged first, then the
//!   state changes that close them, both before anything later is enqueued:
//!   a crash in between publishes the digest again under the same
//!   `digest_id`, never loses it.
//! * **Revoke.** The producer is flushed inside the revoke callback, so the
//!   changelog holds every change made here before the partition's next
//!   owner restores it; then the partition's store is dropped and its
//!   in-flight records are forgotten (their offsets are never stored: the
//!   next owner decides them again, idempotently, under the same ids).
//!
//! Architecture invariant: a rebalance is applied before any message polled
//! after it is tracked (`take_rebalances` runs right after every poll), so
//! an offset is never stored past a record that was not acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::Producer as _;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::changelog;
use super::kafka::{self, client_error, log_with, Producer};
use super::offsets::{OffsetTracker, Ticket};
use super::publish::{self, Publisher};
use super::ratelimit::LogLimiter;
use super::records::{self, Record};
use super::topics::InternalTopics;
use super::{DaemonError, Shared, HEARTBEAT_EVERY};
use crate::config::KafkaConfig;
use crate::metrics::{KafkaClient, Metrics, PublishError, RecordKind, StateKind, Suppression};
use newswatch_core::state::{Change, MatchRecord};

/// Match records between the consumer and their acknowledgement, at most.
const MAX_IN_FLIGHT: usize = 1000;
/// How long a revocation waits for this owner's records to be acknowledged.
const REVOKE_FLUSH: Duration = Duration::from_secs(10);
/// Retry delays while a fence record is not acknowledged.
const FENCE_RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// How often open digests are checked against the wall clock.
const DIGEST_TICK: Duration = Duration::from_secs(1);
/// Consumer errors and the state cap are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

enum RebalanceEvent {
    Revoked(Vec<i32>),
    Assigned(Vec<i32>),
}

/// librdkafka callbacks of the stage-two consumer. They run inside
/// `recv()`, so they only record (and flush on revoke); the loop acts.
pub struct OwnerCtx {
    shared: Arc<Shared>,
    producer: Producer,
    rebalances: Mutex<Vec<RebalanceEvent>>,
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

impl ClientContext for OwnerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_with(level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&self.shared, KafkaClient::State, error, reason);
    }

    fn stats(&self, s: Statistics) {
        super::kafka::report_lag(&self.shared, &s);
    }
}

impl ConsumerContext for OwnerCtx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            let parts = partitions(tpl);
            tracing::info!(partitions = ?parts, "state partitions revoked");
            // The next owner restores from the changelog: everything this
            // owner wrote must be there first.
            if let Err(e) = self.producer.flush(REVOKE_FLUSH) {
                tracing::warn!(error = %e, "records not all acknowledged before the revocation; the next owner may decide some matches again");
            }
            // Not ready until assigned and restored again (after a session
            // timeout, a broker outage, the consumer rejoins its group).
            self.shared
                .health
                .set_state_progress(Some("state consumer rejoining its group".into()));
            self.push(RebalanceEvent::Revoked(parts));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        match r {
            Rebalance::Assign(tpl) => {
                let parts = partitions(tpl);
                tracing::info!(partitions = ?parts, "state partitions assigned");
                self.push(RebalanceEvent::Assigned(parts));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                self.shared.metrics.kafka_client_error(KafkaClient::State);
                tracing::warn!(error = %e, "state consumer rebalance error");
            }
        }
    }
}

impl OwnerCtx {
    fn push(&self, ev: RebalanceEvent) {
        if let Ok(mut v) = self.rebalances.lock() {
            v.push(ev);
        }
    }

    fn take_rebalances(&self) -> Vec<RebalanceEvent> {
        self.rebalances
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// The stage-two loop's state.
struct Owner {
    shared: Arc<Shared>,
    topics: InternalTopics,
    /// One store per owned partition, restored from its changelog
    /// partition, with the epoch this owner writes under.
    stores: HashMap<i32, changelog::Partition>,
    /// The shared producer, for the fence record of a new partition.
    producer: Producer,
    /// Offsets of match records in flight, per partition generation.
    tracker: OffsetTracker,
    /// Scratch for one decision's changes.
    changes: Vec<Change>,
    /// The first assignment has been restored (readiness).
    restored_once: bool,
    /// When each owned partition last decided a record (or was restored):
    /// a period closes on the wall clock only after `grace` of quiet.
    active: HashMap<i32, Instant>,
    cap_log: LogLimiter,
}

/// Stage two's consumer (not subscribed yet). `producer` is flushed when
/// partitions are revoked.
pub fn consumer(shared: &Arc<Shared>, producer: Producer) -> Result<StateConsumer, KafkaError> {
    let ctx = OwnerCtx {
        shared: shared.clone(),
        producer,
        rebalances: Mutex::new(Vec::new()),
    };
    kafka::state_consumer_config(&shared.config.kafka).create_with_context(ctx)
}

/// Stage two's consumer, with its callbacks.
pub type StateConsumer = StreamConsumer<OwnerCtx>;

/// Run stage two until `shutdown`; returns after its drain and commit.
pub async fn run(
    shared: Arc<Shared>,
    consumer: StateConsumer,
    producer: Producer,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let k = &shared.config.kafka;
    let topics = shared.topics.clone();
    consumer.subscribe(&[topics.matches.as_str()])?;
    tracing::info!(topic = %topics.matches, group = %kafka::state_group_id(&k.group_id), "deciding stateful rules");
    let abort = CancellationToken::new();
    // As in stage one: the drain's deadline reaches a publish that holds
    // this loop inside a turn.
    let signalled = publish::abort_after_drain(
        shutdown.clone(),
        abort.clone(),
        k.shutdown_timeout.mul_f64(0.8),
    );
    let publisher = Publisher::new(producer.clone(), shared.clone(), abort.clone());
    let mut owner = Owner {
        shared: shared.clone(),
        topics,
        stores: HashMap::new(),
        producer: producer.clone(),
        tracker: OffsetTracker::new(),
        changes: Vec::new(),
        restored_once: false,
        active: HashMap::new(),
        cap_log: LogLimiter::new(LOG_EVERY),
    };
    let timeout = k.shutdown_timeout;
    let mut acks: FuturesUnordered<BoxFuture<'static, (Ticket, bool)>> = FuturesUnordered::new();
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut digest_tick = tokio::time::interval(DIGEST_TICK);
    digest_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut draining = false;
    let mut stop_by: Option<Instant> = None;
    let deadline = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(deadline);
    let mut recv_log = LogLimiter::new(Duration::from_secs(10));

    loop {
        if !draining && !owner.apply_rebalances(&consumer, &shutdown).await? {
            break;
        }
        let room = acks.len() < MAX_IN_FLIGHT;
        tokio::select! {
            biased;
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                // Counted from the signal, which a held turn may see late.
                let at = signalled.get().copied().unwrap_or_else(Instant::now);
                stop_by = Some(at + timeout.mul_f64(0.95));
                deadline.as_mut().reset(tokio::time::Instant::from_std(at + timeout.mul_f64(0.8)));
                tracing::info!(in_flight = acks.len(), "state owner: draining");
            }
            _ = &mut deadline, if draining => {
                tracing::warn!(in_flight = acks.len(), "shutdown timeout: abandoning undecided match records (they will be redelivered)");
                abort.cancel();
                break;
            }
            Some((ticket, ok)) = acks.next() => {
                if ok {
                    owner.finished(&consumer, &ticket);
                }
            }
            msg = consumer.recv(), if !draining && room => match msg {
                Ok(m) => {
                    let (p, offset) = (m.partition(), m.offset());
                    let payload = m.payload().map(<[u8]>::to_vec).unwrap_or_default();
                    drop(m);
                    // Rebalances polled together with this message come first.
                    if !owner.apply_rebalances(&consumer, &shutdown).await? {
                        break;
                    }
                    let Some((ticket, mut records)) = owner.decide(p, offset, &payload) else {
                        continue;
                    };
                    if !digests_first(&publisher, &mut records).await {
                        continue;
                    }
                    // Stage two's alerts come from match records: the
                    // input event's position is not known here.
                    let enqueued = publisher.enqueue_all(records, None).await;
                    let publisher = publisher.clone();
                    acks.push(
                        async move { (ticket, publisher.acknowledge(enqueued).await) }.boxed(),
                    );
                }
                Err(e) => {
                    shared.metrics.kafka_client_error(KafkaClient::State);
                    if let Some(held_back) = recv_log.allow() {
                        tracing::warn!(error = %e, held_back, "state consumer error");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            },
            _ = tick.tick() => shared.health.beat(),
            _ = digest_tick.tick(), if !draining => owner.close_idle(&publisher).await,
        }
        if draining && acks.is_empty() {
            break;
        }
    }
    drop(acks);
    // Shut down during a restore, the loop never set `stop_by`: the budget
    // still counts from the signal.
    let stop_by = stop_by.or_else(|| signalled.get().map(|at| *at + timeout.mul_f64(0.95)));
    let left = stop_by.map_or(timeout, |t| t.saturating_duration_since(Instant::now()));
    kafka::commit_and_leave(consumer, left, "state").await;
    Ok(())
}

/// Publish the digests at the head of `records` (a decision puts them
/// first) and await their acknowledgement, so that the state changes that
/// close them are written only after them. False when aborted.
async fn digests_first(publisher: &Publisher, records: &mut Vec<Record>) -> bool {
    let n = records
        .iter()
        .take_while(|r| matches!(r.kind, records::Kind::Digest { .. }))
        .count();
    if n == 0 {
        return true;
    }
    let digests: Vec<Record> = records.drain(..n).collect();
    let enqueued = publisher.enqueue_all(digests, None).await;
    publisher.clone().acknowledge(enqueued).await
}

impl Owner {
    /// Close the periods of owned partitions that are due on the wall
    /// clock (see the module docs): digests, then the state changes, each
    /// acknowledged before the loop goes on.
    async fn close_idle(&mut self, publisher: &Publisher) {
        let now = Instant::now();
        let wall = chrono::Utc::now();
        for (p, part) in &mut self.stores {
            if part.store.open_digests() == 0 {
                continue;
            }
            let idle = self.active.get(p).map_or(Duration::ZERO, |t| now - *t);
            self.changes.clear();
            part.store.close_idle(wall, idle, &mut self.changes);
            let digests = part.store.take_digests();
            if self.changes.is_empty() && digests.is_empty() {
                continue;
            }
            let mut records: Vec<Record> = digests
                .iter()
                .map(|d| Record::digest(d, &self.shared.config.kafka.alert_topic))
                .collect();
            for c in self.changes.drain(..) {
                records.push(Record::state_change(
                    &self.topics.changelog,
                    *p,
                    part.epoch,
                    c,
                ));
            }
            tracing::debug!(
                partition = p,
                digests = digests.len(),
                "digests closed on the wall clock"
            );
            if !digests_first(publisher, &mut records).await {
                return;
            }
            let enqueued = publisher.enqueue_all(records, None).await;
            if !publisher.clone().acknowledge(enqueued).await {
                return;
            }
        }
    }

    /// Apply the rebalances polled so far: revocations drop state and
    /// in-flight records, assignments restore. `Ok(false)` when shut down
    /// during a restore.
    async fn apply_rebalances(
        &mut self,
        consumer: &StreamConsumer<OwnerCtx>,
        shutdown: &CancellationToken,
    ) -> Result<bool, DaemonError> {
        for ev in consumer.context().take_rebalances() {
            match ev {
                RebalanceEvent::Revoked(parts) => {
                    for p in parts {
                        self.tracker.revoke(&self.topics.matches, p);
                        self.stores.remove(&p);
                        self.active.remove(&p);
                    }
                    self.account();
                }
                RebalanceEvent::Assigned(parts) => {
                    let new: Vec<i32> = parts
                        .into_iter()
                        .filter(|p| !self.stores.contains_key(p))
                        .collect();
                    if !self.restore(new, shutdown).await? {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Restore these partitions' stores from the changelog (off the reactor,
    /// the heartbeat beating meanwhile).
    async fn restore(
        &mut self,
        parts: Vec<i32>,
        shutdown: &CancellationToken,
    ) -> Result<bool, DaemonError> {
        let health_progress =
            |done: usize, total: usize| format!("restoring state: {done} of {total} partitions");
        self.shared
            .health
            .set_state_progress(Some(health_progress(0, parts.len())));
        let restored = self
            .changelog_job(shutdown, move |k, topic, metrics, stop| {
                changelog::restore(k, topic, &parts, metrics, stop)
            })
            .await;
        let parts = match restored {
            Ok(Ok(Some(parts))) => parts,
            Ok(Ok(None)) => return Ok(false),
            // The client could not be created: a config error.
            Ok(Err(e)) => return Err(e.into()),
            // A panic in the restore thread: stop (non-zero exit) rather
            // than decide on missing state.
            Err(e) => return Err(DaemonError::Restore(e.to_string())),
        };
        for (p, part) in parts {
            let Some(part) = self.fence(p, part, shutdown).await? else {
                return Ok(false);
            };
            self.stores.insert(p, part);
            self.active.insert(p, Instant::now());
        }
        self.restored_once = true;
        self.shared.health.set_state_progress(None);
        self.account();
        Ok(true)
    }

    /// Take partition `p` over: write a fence record with the next epoch,
    /// then read what a previous owner wrote between the restore and the
    /// fence. From the fence on, a previous owner's late writes (its
    /// session expired but it had not noticed yet) are skipped by every
    /// restore, so the changelog holds exactly what this owner decides on.
    async fn fence(
        &mut self,
        p: i32,
        mut part: changelog::Partition,
        shutdown: &CancellationToken,
    ) -> Result<Option<changelog::Partition>, DaemonError> {
        let epoch = part.epoch + 1;
        let fence = Record::fence(&self.topics.changelog, p, epoch);
        let mut backoff = FENCE_RETRY;
        let offset = loop {
            let sent = tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                r = self.producer.send(fence.future_record(), Timeout::Never) => r,
            };
            match sent {
                Ok(delivery) => break delivery.offset,
                Err((e, _)) => {
                    self.shared
                        .metrics
                        .publish_failed(PublishError::Unacknowledged(
                            RecordKind::State,
                            e.rdkafka_error_code(),
                        ));
                    let delay = backoff.next();
                    tracing::warn!(partition = p, error = %e, retry_in = ?delay, "cannot write the state partition's fence record, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        let caught_up = self
            .changelog_job(shutdown, move |k, topic, metrics, stop| {
                changelog::catch_up(k, topic, p, offset, &mut part, metrics, stop)
                    .map(|done| done.then_some(part))
            })
            .await;
        match caught_up {
            Ok(Ok(Some(mut part))) => {
                part.epoch = epoch;
                Ok(Some(part))
            }
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(DaemonError::Restore(e.to_string())),
        }
    }

    /// Run a changelog read off the reactor, the heartbeat beating
    /// meanwhile (a restore can take minutes); it stops with `shutdown`.
    async fn changelog_job<T: Send + 'static>(
        &self,
        shutdown: &CancellationToken,
        job: impl FnOnce(&KafkaConfig, &str, &Metrics, &CancellationToken) -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let (k, topic, metrics) = (
            self.shared.config.kafka.clone(),
            self.topics.changelog.clone(),
            self.shared.metrics.clone(),
        );
        let stop = shutdown.child_token();
        let handle = tokio::task::spawn_blocking(move || job(&k, &topic, &metrics, &stop));
        tokio::pin!(handle);
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                r = &mut handle => return r,
                _ = tick.tick() => self.shared.health.beat(),
            }
        }
    }

    /// Decide one match record: its ticket and the records to publish, or
    /// `None` when the record is not tracked (a partition not owned).
    fn decide(&mut self, p: i32, offset: i64, payload: &[u8]) -> Option<(Ticket, Vec<Record>)> {
        let part = self.stores.get_mut(&p)?;
        let (store, epoch) = (&mut part.store, part.epoch);
        let ticket = self.tracker.start(&self.topics.matches, p, offset);
        let rec = match MatchRecord::from_json(payload) {
            Ok(r) => r,
            Err(e) => {
                // Not a record this version wrote: skipped, never fatal.
                self.shared.metrics.state_record_invalid();
                tracing::warn!(partition = p, offset, error = %e, "match record skipped");
                return Some((ticket, Vec::new()));
            }
        };
        let engine = self.shared.rules.current();
        let rule_id = rec.rule.clone();
        self.changes.clear();
        let silences = self.shared.silences.current();
        let (d, alert) = engine.decide_with(
            rec,
            store,
            &mut self.changes,
            Some((&silences, chrono::Utc::now())),
        );
        self.active.insert(p, Instant::now());
        if d.throttled {
            self.shared
                .metrics
                .alert_suppressed_by(&rule_id, Suppression::Throttle);
        }
        if d.silenced {
            self.shared
                .metrics
                .alert_suppressed_by(&rule_id, Suppression::Silenced);
        }
        let mut out = Vec::with_capacity(self.changes.len() + 1);
        // Digests closed by this record's event time go first: see
        // `digests_first`.
        for dg in store.take_digests() {
            out.push(Record::digest(&dg, &self.shared.config.kafka.alert_topic));
        }
        if let Some(a) = alert {
            let topic = engine
                .rules
                .rules
                .iter()
                .find(|r| r.id == rule_id)
                .and_then(|r| r.topic.as_ref());
            out.push(Record::alert(
                &a,
                topic,
                &self.shared.config.kafka.alert_topic,
            ));
        }
        for c in self.changes.drain(..) {
            out.push(Record::state_change(&self.topics.changelog, p, epoch, c));
        }
        self.account();
        Some((ticket, out))
    }

    fn finished(&mut self, consumer: &StreamConsumer<OwnerCtx>, ticket: &Ticket) {
        let Some(pos) = self.tracker.finish(ticket) else {
            return;
        };
        let (topic, partition) = &ticket.tp;
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(topic, *partition, Offset::Offset(pos))
            .is_ok()
        {
            if let Err(e) = consumer.store_offsets(&tpl) {
                // Revoked meanwhile: the next owner decides it again.
                tracing::debug!(partition, error = %e, "offset not stored");
            }
        }
    }

    /// State gauges, and the cap warning (rate-limited).
    fn account(&mut self) {
        let (mut stories, mut groups) = (0, 0);
        let (mut ev_stories, mut ev_groups) = (0, 0);
        for s in self.stores.values_mut().map(|part| &mut part.store) {
            let (a, b) = s.sizes();
            stories += a;
            groups += b;
            let ev = s.take_cap_evictions();
            ev_stories += ev.stories;
            ev_groups += ev.groups;
        }
        let m = &self.shared.metrics;
        m.state_sizes(stories, groups);
        if ev_stories + ev_groups > 0 {
            m.state_evicted(StateKind::Story, ev_stories);
            m.state_evicted(StateKind::Group, ev_groups);
            if let Some(held_back) = self.cap_log.allow() {
                tracing::warn!(
                    stories,
                    groups,
                    evicted_stories = ev_stories,
                    evicted_groups = ev_groups,
                    held_back,
                    "state cap reached: the oldest stories/groups are evicted before their window ends"
                );
            }
        }
    }
}
