//! The pipeline's side of stateful rules: the state store, the changelog
//! it is restored from and kept in, and settling matches against it.
//!
//! Only the loop touches the store, one event at a time, in consumption
//! order: that order is what makes `first_seen`, `threshold` and throttles
//! decide as `replay` does. Each decision's state changes become changelog
//! records, published with the event's alerts (an offset moves only when
//! all are acknowledged, so the changelog is never behind the input).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::changelog;
use super::matching::{Done, Out};
use super::offsets::Ticket;
use super::ratelimit::LogLimiter;
use super::records::Record;
use super::{DaemonError, Shared};
use crate::metrics::{StateKind, Suppression};
use newswatch_core::state::{Change, Store};

/// The state cap is logged at most this often (all evictions are counted).
const STATE_CAP_LOG_EVERY: Duration = Duration::from_secs(60);

/// The loop's stateful-rule state and its changelog.
pub struct StateSide {
    store: Store,
    /// The changelog topic.
    topic: String,
    /// Records of the changelog as they arrive (this instance's own, and
    /// other instances').
    pub tail: mpsc::Receiver<changelog::TailRecord>,
    /// Scratch for one decision's changes.
    changes: Vec<Change>,
    cap_log: LogLimiter,
}

/// Create the changelog topic if needed and restore the state from it.
/// `None` when shut down meanwhile.
pub async fn restore(
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

impl StateSide {
    /// Settle the stateful matches of an event, in consumption order, into
    /// publishable records: its alerts and the state changes to persist.
    pub fn settle(&mut self, shared: &Shared, done: Done) -> (Ticket, Instant, Vec<Record>) {
        let alert_topic = &shared.config.kafka.alert_topic;
        let engine = &done.engine;
        let mut records = Vec::with_capacity(done.outs.len());
        let mut decided = false;
        for out in done.outs {
            let (rule, matched) = match out {
                Out::Record(r) => {
                    records.push(r);
                    continue;
                }
                Out::Stateful { rule, matched } => (rule, matched),
            };
            let Some(ev) = &done.event else { continue };
            decided = true;
            self.changes.clear();
            let (decision, alert) = engine.settle_one(
                ev,
                rule,
                &matched,
                done.signature.as_deref(),
                done.kafka_time,
                &mut self.store,
                &mut self.changes,
            );
            let r = &engine.rules.rules[rule];
            if decision.throttled {
                shared
                    .metrics
                    .alert_suppressed_by(&r.id, Suppression::Throttle);
            }
            if let Some(a) = alert {
                records.push(Record::alert(&a, r.topic.as_ref(), alert_topic));
            }
            for c in self.changes.drain(..) {
                records.push(Record::state_change(&self.topic, c));
            }
        }
        // Only a decision changes the state (most events match no stateful
        // rule: no gauge updates for them).
        if decided {
            self.account(shared);
        }
        (done.ticket, done.received, records)
    }

    /// Apply a record of the changelog's tail.
    pub fn apply_tailed(&mut self, shared: &Shared, rec: changelog::TailRecord) {
        changelog::apply_tailed(&mut self.store, &shared.metrics, rec);
        self.account(shared);
    }

    /// Update the state gauges; count and log evictions by the cap.
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
