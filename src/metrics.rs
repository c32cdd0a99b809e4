//! Prometheus metrics (SPEC §11), in one typed struct that owns its own
//! `Registry` (never the global one, so tests can run daemons side by side).
//!
//! Every event the daemon counts has exactly one method here, and every
//! label with a closed set of values is an enum of this module
//! ([`KafkaClient`], [`PublishError`], [`StateKind`], [`Suppression`],
//! [`DropReason`], and the core's [`Reason`]): call sites pass values, never
//! label strings, so a label value cannot be misspelled elsewhere. The open
//! labels (topic, partition, rule, severity, rule-set version) are data.
//!
//! Per-rule series (the `rule` label) grow with the rule count; with
//! `[metrics] per_rule = false` every rule is counted under `rule=""`
//! instead ([`Metrics::with_per_rule`]), while `GET /rules` keeps the
//! per-rule numbers ([`RuleStats`], fed by the same calls).
//!
//! This module depends on nothing of the daemon's: the daemon reports to it.

use std::borrow::Cow;
use std::time::Duration;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use rdkafka::error::RDKafkaErrorCode;

use newswatch_core::event::Reason;

use crate::rulestats::RuleStats;

// ------------------------------------------------------------------ label values

/// A label whose values are a closed set: an enum.
pub trait Label: Copy + Sized + 'static {
    /// Every value, for series created at zero and for parsing.
    const ALL: &'static [Self];
    /// The exported label value.
    fn as_str(self) -> &'static str;
    /// The value exported as `text`, if any.
    fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|l| l.as_str() == text)
    }
}

/// Declares a label enum: its variants with their exported values.
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl Label for $name {
            const ALL: &'static [Self] = &[$(Self::$variant,)+];
            fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }
    };
}

label_enum! {
    /// The `client` of `newswatch_kafka_errors_total`.
    KafkaClient {
        Consumer => "consumer",
        Producer => "producer",
        /// The state changelog's reader.
        Changelog => "changelog",
        /// Stage two's consumer of the match records.
        State => "state",
        /// The silences' writer and follower.
        Silences => "silences",
    }
}

label_enum! {
    /// The kind of a record published to Kafka.
    RecordKind {
        Alert => "alert",
        DeadLetter => "dlq",
        /// A state changelog record.
        State => "state",
        /// A match record on its way to the owner of its state.
        Match => "match",
    }
}

label_enum! {
    /// How a POST to Alertmanager failed.
    AlertmanagerFailure {
        /// The HTTP client could not be built.
        Client => "alertmanager_client",
        Connect => "alertmanager_connect",
        Timeout => "alertmanager_timeout",
        /// A 5xx, 408 or 429: retried.
        ServerError => "alertmanager_server_error",
        /// Any other answer but success: not retried.
        Rejected => "alertmanager_rejected",
        Request => "alertmanager_request",
    }
}

label_enum! {
    /// The `kind` of `newswatch_state_entries` and `newswatch_state_evictions_total`.
    StateKind {
        /// A story of a `first_seen` rule.
        Story => "story",
        /// A group of a `threshold` rule or a throttle.
        Group => "group",
    }
}

label_enum! {
    /// The `reason` of `newswatch_alerts_suppressed_total`.
    Suppression {
        /// Held back by the rule's throttle.
        Throttle => "throttle",
        /// Held back by a silence (SPEC §10).
        Silenced => "silenced",
    }
}

label_enum! {
    /// Why alerts were given up on the way to Alertmanager, the `reason` of
    /// `newswatch_alertmanager_alerts_dropped_total`.
    DropReason {
        /// The queue was full; the oldest alert made room.
        QueueFull => "queue_full",
        /// Not delivered within the output's maximum age.
        Expired => "expired",
        /// Alertmanager refused the POST (4xx): retrying would not help.
        Rejected => "rejected",
        /// Still queued when the shutdown's flush time ran out.
        Shutdown => "shutdown",
        /// The payload did not parse as an alert (a bug).
        Invalid => "invalid",
    }
}

label_enum! {
    /// The `result` of `newswatch_rules_reloads_total`.
    ReloadResult {
        Success => "success",
        Failure => "failure",
    }
}

impl Label for Reason {
    const ALL: &'static [Self] = &Reason::ALL;
    fn as_str(self) -> &'static str {
        Reason::as_str(self)
    }
}

/// The `kind` of `newswatch_publish_errors_total`: a failed attempt to
/// publish (every one is retried or accounted for elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The producer refused to take the record (`alert`, `dlq`, `state`).
    Enqueue(RecordKind),
    /// The broker did not acknowledge the record: `<kind>_<error code>`,
    /// e.g. `alert_msgtimedout`, or `<kind>_other` without a code.
    Unacknowledged(RecordKind, Option<RDKafkaErrorCode>),
    /// A POST to Alertmanager failed (`alertmanager_…`).
    Alertmanager(AlertmanagerFailure),
    /// An alert the broker refused for good (`undeliverable`): not retried;
    /// it went to the dead-letter topic, or, with that off, only here and
    /// to the log.
    Undeliverable,
}

impl PublishError {
    /// The exported label value.
    pub fn label(self) -> Cow<'static, str> {
        match self {
            Self::Enqueue(kind) => kind.as_str().into(),
            Self::Unacknowledged(kind, code) => {
                let code =
                    code.map_or_else(|| "other".to_owned(), |c| format!("{c:?}").to_lowercase());
                format!("{}_{code}", kind.as_str()).into()
            }
            Self::Alertmanager(f) => f.as_str().into(),
            Self::Undeliverable => "undeliverable".into(),
        }
    }

    /// The value whose label is `text`, for the closed part of the set
    /// (not the broker's error codes).
    fn parse(text: &str) -> Option<Self> {
        if text == "undeliverable" {
            return Some(Self::Undeliverable);
        }
        RecordKind::parse(text)
            .map(Self::Enqueue)
            .or_else(|| AlertmanagerFailure::parse(text).map(Self::Alertmanager))
    }
}

// ------------------------------------------------------------------ registration

/// Creates metrics and registers them: the one place that talks to the
/// registry. Definitions are static, so an invalid or duplicate one is a
/// bug caught by the first test that builds [`Metrics`].
struct Registrar(Registry);

impl Registrar {
    /// A registry with what every newswatch exports besides its own
    /// counters: the build and, on Linux, the process metrics.
    fn new() -> Self {
        let r = Registrar(Registry::new());
        r.gauge_vec(
            "newswatch_build_info",
            "The newswatch build (value 1).",
            &["version"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = r.0.register(Box::new(pc));
        }
        r
    }

    fn add<M: Collector + Clone + 'static>(&self, m: prometheus::Result<M>) -> M {
        let m = m.expect("valid metric");
        self.0.register(Box::new(m.clone())).expect("unique metric");
        m
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help))
    }

    fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }

    fn float_counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> CounterVec {
        self.add(CounterVec::new(Opts::new(name, help), labels))
    }

    fn gauge(&self, name: &str, help: &str) -> Gauge {
        self.add(Gauge::new(name, help))
    }

    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.add(GaugeVec::new(Opts::new(name, help), labels))
    }

    fn int_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels))
    }

    fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        self.add(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        ))
    }
}

/// Create the series of every value of `L` (at zero), so dashboards see
/// them before the first occurrence.
fn every_series<L: Label, T: MetricVecBuilder>(vec: &MetricVec<T>) {
    for l in L::ALL {
        vec.with_label_values(&[l.as_str()]);
    }
}

/// Matcher time per event: 10 µs to 100 ms.
const FAST: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1,
];
/// Consume to acknowledgement: 1 ms to 30 s.
const SLOW: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Publication to consumption: 1 s to a day.
const DELAY: &[f64] = &[
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    6.0 * 3600.0,
    24.0 * 3600.0,
];

// ------------------------------------------------------------------ the metrics

pub struct Metrics {
    registry: Registry,
    events_consumed: IntCounterVec,
    events_invalid: IntCounterVec,
    dlq_records: IntCounter,
    rule_matches: IntCounterVec,
    alerts_published: IntCounterVec,
    digests_published: IntCounterVec,
    alerts_suppressed: IntCounterVec,
    publish_errors: IntCounterVec,
    kafka_errors: IntCounterVec,
    event_processing: Histogram,
    match_seconds: Histogram,
    event_delay: Histogram,
    consumer_lag: IntGaugeVec,
    rules_loaded: Gauge,
    rules_reloads: IntCounterVec,
    ruleset_info: GaugeVec,
    state_entries: IntGaugeVec,
    state_evictions: IntCounterVec,
    state_records_invalid: IntCounter,
    event_time_adjusted: IntCounter,
    alertmanager_sent: IntCounter,
    alertmanager_dropped: IntCounterVec,
    rule_eval: CounterVec,
    /// `[metrics] per_rule`: a series per rule, or all under `rule=""`.
    per_rule: bool,
    rule_stats: RuleStats,
    silences_active: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_per_rule(true)
    }

    /// With `per_rule` false, every rule is counted under `rule=""` in the
    /// per-rule metrics (`[metrics] per_rule`).
    pub fn with_per_rule(per_rule: bool) -> Self {
        let r = Registrar::new();
        let m = Metrics {
            events_consumed: r.counter_vec(
                "newswatch_events_consumed_total",
                "Events consumed from the input topics.",
                &["topic"],
            ),
            events_invalid: r.counter_vec(
                "newswatch_events_invalid_total",
                "Events that could not be used, by reason.",
                &["reason"],
            ),
            dlq_records: r.counter(
                "newswatch_dlq_records_total",
                "Records written to the dead-letter topic.",
            ),
            rule_matches: r.counter_vec(
                "newswatch_rule_matches_total",
                "Events that matched a rule.",
                &["rule"],
            ),
            alerts_published: r.counter_vec(
                "newswatch_alerts_published_total",
                "Alerts acknowledged by the broker.",
                &["rule", "severity"],
            ),
            digests_published: r.counter_vec(
                "newswatch_digests_published_total",
                "Digests acknowledged by the broker.",
                &["rule"],
            ),
            alerts_suppressed: r.counter_vec(
                "newswatch_alerts_suppressed_total",
                "Alerts suppressed by a rule's mode or throttle.",
                &["rule", "reason"],
            ),
            publish_errors: r.counter_vec(
                "newswatch_publish_errors_total",
                "Failed attempts to publish an alert or dead letter (retried).",
                &["kind"],
            ),
            // Not in SPEC §11's table: every Kafka client error that is
            // logged is also counted here, so dashboards see what the logs say.
            kafka_errors: r.counter_vec(
                "newswatch_kafka_errors_total",
                "Errors reported by the Kafka clients (logged too).",
                &["client"],
            ),
            event_processing: r.histogram(
                "newswatch_event_processing_seconds",
                "From consuming an event to its alerts being acknowledged.",
                SLOW,
            ),
            match_seconds: r.histogram(
                "newswatch_match_seconds",
                "Matcher time per event.",
                FAST,
            ),
            event_delay: r.histogram(
                "newswatch_event_delay_seconds",
                "Consume time minus the event's published_at.",
                DELAY,
            ),
            consumer_lag: r.int_gauge_vec(
                "newswatch_consumer_lag_messages",
                "Consumer lag, from librdkafka statistics.",
                &["topic", "partition"],
            ),
            rules_loaded: r.gauge("newswatch_rules_loaded", "Rules in force."),
            rules_reloads: r.counter_vec(
                "newswatch_rules_reloads_total",
                "Rule reloads, by result.",
                &["result"],
            ),
            ruleset_info: r.gauge_vec(
                "newswatch_ruleset_info",
                "The rule set in force (value 1).",
                &["version"],
            ),
            // Not in SPEC §11's table: the size of stateful rules' state and
            // the cap that bounds it (memory is bounded, and when the cap
            // bites it shows here and in the log).
            state_entries: r.int_gauge_vec(
                "newswatch_state_entries",
                "Live state of stateful rules: stories (first_seen) and groups (threshold, throttle).",
                &["kind"],
            ),
            state_evictions: r.counter_vec(
                "newswatch_state_evictions_total",
                "State evicted before its window ended because the cap was reached.",
                &["kind"],
            ),
            state_records_invalid: r.counter(
                "newswatch_state_records_invalid_total",
                "State changelog records that could not be read (skipped, logged).",
            ),
            event_time_adjusted: r.counter(
                "newswatch_event_time_adjusted_total",
                "Events whose published_at lay more than event.max_future past their Kafka timestamp (the timestamp was used).",
            ),
            // The optional Alertmanager output (not in SPEC §11's table):
            // every alert handed to it ends up sent or dropped, with a reason.
            alertmanager_sent: r.counter(
                "newswatch_alertmanager_alerts_sent_total",
                "Alerts accepted by Alertmanager.",
            ),
            alertmanager_dropped: r.counter_vec(
                "newswatch_alertmanager_alerts_dropped_total",
                "Alerts given up on the way to Alertmanager (they are on Kafka), by reason.",
                &["reason"],
            ),
            rule_eval: r.float_counter_vec(
                "newswatch_rule_eval_seconds_total",
                "Time the matcher spent verifying a rule (estimated from sampled events).",
                &["rule"],
            ),
            per_rule,
            rule_stats: RuleStats::default(),
            silences_active: r.gauge(
                "newswatch_silences_active",
                "Silences in force (shared by every instance of the group).",
            ),
            registry: r.0,
        };
        every_series::<Reason, _>(&m.events_invalid);
        every_series::<ReloadResult, _>(&m.rules_reloads);
        every_series::<StateKind, _>(&m.state_entries);
        every_series::<StateKind, _>(&m.state_evictions);
        every_series::<DropReason, _>(&m.alertmanager_dropped);
        m
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn event_consumed(&self, topic: &str) {
        self.events_consumed.with_label_values(&[topic]).inc();
    }

    pub fn event_invalid(&self, reason: Reason) {
        self.events_invalid
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    pub fn dlq_record(&self) {
        self.dlq_records.inc();
    }

    /// The `rule` label's value: the rule, or `""` with per-rule series off.
    fn rule_label<'a>(&self, rule: &'a str) -> &'a str {
        if self.per_rule {
            rule
        } else {
            ""
        }
    }

    /// The per-rule numbers since start, for `GET /rules`.
    pub fn rule_stats(&self) -> &RuleStats {
        &self.rule_stats
    }

    pub fn rule_matched(&self, rule: &str) {
        self.rule_matches
            .with_label_values(&[self.rule_label(rule)])
            .inc();
        self.rule_stats.matched(rule, chrono::Utc::now());
    }

    /// The matcher verified `rule` `candidates` times, in `nanos`.
    pub fn rule_evaluated(&self, rule: &str, candidates: u64, nanos: u64) {
        self.rule_eval
            .with_label_values(&[self.rule_label(rule)])
            .inc_by(nanos as f64 / 1e9);
        self.rule_stats.evaluated(rule, candidates, nanos);
    }

    pub fn alert_published(&self, rule: &str, severity: &str) {
        self.alerts_published
            .with_label_values(&[self.rule_label(rule), severity])
            .inc();
        self.rule_stats.alerted(rule);
    }

    /// A digest of `rule` acknowledged.
    pub fn digest_published(&self, rule: &str) {
        self.digests_published
            .with_label_values(&[self.rule_label(rule)])
            .inc();
    }

    /// An alert of `rule` held back.
    pub fn alert_suppressed_by(&self, rule: &str, reason: Suppression) {
        self.alerts_suppressed
            .with_label_values(&[self.rule_label(rule), reason.as_str()])
            .inc();
    }

    /// A failed attempt to publish.
    pub fn publish_failed(&self, kind: PublishError) {
        self.publish_errors
            .with_label_values(&[&kind.label()])
            .inc();
    }

    /// A Kafka client reported an error.
    pub fn kafka_client_error(&self, client: KafkaClient) {
        self.kafka_errors
            .with_label_values(&[client.as_str()])
            .inc();
    }

    pub fn event_processed(&self, took: Duration) {
        self.event_processing.observe(took.as_secs_f64());
    }

    pub fn matched_in(&self, took: Duration) {
        self.match_seconds.observe(took.as_secs_f64());
    }

    pub fn event_delay(&self, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.event_delay.observe(seconds);
        }
    }

    pub fn consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// Forget lag series of partitions no longer assigned.
    pub fn clear_consumer_lag(&self) {
        self.consumer_lag.reset();
    }

    pub fn rules_in_force(&self, count: usize, version: &str) {
        self.rules_loaded.set(count as f64);
        self.ruleset_info.reset();
        self.ruleset_info.with_label_values(&[version]).set(1.0);
    }

    pub fn rules_reload(&self, success: bool) {
        let result = if success {
            ReloadResult::Success
        } else {
            ReloadResult::Failure
        };
        self.rules_reloads
            .with_label_values(&[result.as_str()])
            .inc();
    }

    /// Live stories and groups of stateful rules.
    pub fn state_sizes(&self, stories: usize, groups: usize) {
        for (kind, n) in [(StateKind::Story, stories), (StateKind::Group, groups)] {
            self.state_entries
                .with_label_values(&[kind.as_str()])
                .set(n as i64);
        }
    }

    /// `n` stories or groups evicted by the cap.
    pub fn state_evicted(&self, kind: StateKind, n: u64) {
        self.state_evictions
            .with_label_values(&[kind.as_str()])
            .inc_by(n);
    }

    /// An event dated too far in the future was given its Kafka timestamp.
    pub fn event_time_adjusted(&self) {
        self.event_time_adjusted.inc();
    }

    pub fn state_record_invalid(&self) {
        self.state_records_invalid.inc();
    }

    /// `n` alerts accepted by Alertmanager.
    pub fn alertmanager_sent(&self, n: usize) {
        self.alertmanager_sent.inc_by(n as u64);
    }

    /// Silences in force now.
    pub fn silences_active(&self, n: usize) {
        self.silences_active.set(n as f64);
    }

    /// `n` alerts given up on the way to Alertmanager.
    pub fn alertmanager_dropped(&self, reason: DropReason, n: usize) {
        if n > 0 {
            self.alertmanager_dropped
                .with_label_values(&[reason.as_str()])
                .inc_by(n as u64);
        }
    }
}

/// The label values as text, for callers outside the daemon that name them
/// so (the deployment tests). Text that is no value of the label is not
/// counted, so no series can appear that the typed methods would not make.
impl Metrics {
    #[doc(hidden)]
    pub fn alert_suppressed(&self, rule: &str, reason: &str) {
        if let Some(reason) = Suppression::parse(reason) {
            self.alert_suppressed_by(rule, reason);
        }
    }

    #[doc(hidden)]
    pub fn publish_error(&self, kind: &str) {
        if let Some(kind) = PublishError::parse(kind) {
            self.publish_failed(kind);
        }
    }

    #[doc(hidden)]
    pub fn kafka_error(&self, client: &str) {
        if let Some(client) = KafkaClient::parse(client) {
            self.kafka_client_error(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_metric_is_exported() {
        let m = Metrics::new();
        m.event_consumed("news.events");
        m.rule_matched("r");
        m.alert_published("r", "high");
        m.digest_published("r");
        m.alert_suppressed_by("r", Suppression::Throttle);
        m.publish_failed(PublishError::Enqueue(RecordKind::Alert));
        m.consumer_lag("news.events", 0, 3);
        m.rules_in_force(2, "abc");
        m.event_processed(Duration::from_millis(2));
        m.matched_in(Duration::from_micros(20));
        m.event_delay(1.0);
        m.dlq_record();
        m.alertmanager_sent(2);
        m.alertmanager_dropped(DropReason::QueueFull, 1);
        m.rule_evaluated("r", 2, 1_500_000_000);
        let text = m.render();
        for name in [
            "newswatch_events_consumed_total",
            "newswatch_events_invalid_total",
            "newswatch_dlq_records_total",
            "newswatch_rule_matches_total",
            "newswatch_alerts_published_total",
            "newswatch_digests_published_total{rule=\"r\"} 1",
            "newswatch_alerts_suppressed_total",
            "newswatch_publish_errors_total",
            "newswatch_event_processing_seconds_bucket",
            "newswatch_match_seconds_bucket",
            "newswatch_event_delay_seconds_bucket",
            "newswatch_consumer_lag_messages",
            "newswatch_rules_loaded",
            "newswatch_rules_reloads_total",
            "newswatch_ruleset_info",
            "newswatch_build_info",
            "newswatch_silences_active",
            "newswatch_alertmanager_alerts_sent_total 2",
            "newswatch_alertmanager_alerts_dropped_total{reason=\"queue_full\"} 1",
            "newswatch_alertmanager_alerts_dropped_total{reason=\"expired\"} 0",
            "newswatch_rule_eval_seconds_total{rule=\"r\"} 1.5",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }

    /// Each call, and the one series it must leave at 1.
    #[test]
    fn label_values_table() {
        type Call = fn(&Metrics);
        let table: &[(Call, &str)] = &[
            (
                |m| m.kafka_client_error(KafkaClient::Consumer),
                "newswatch_kafka_errors_total{client=\"consumer\"} 1",
            ),
            (
                |m| m.kafka_client_error(KafkaClient::Producer),
                "newswatch_kafka_errors_total{client=\"producer\"} 1",
            ),
            (
                |m| m.kafka_client_error(KafkaClient::Changelog),
                "newswatch_kafka_errors_total{client=\"changelog\"} 1",
            ),
            (
                |m| m.publish_failed(PublishError::Enqueue(RecordKind::DeadLetter)),
                "newswatch_publish_errors_total{kind=\"dlq\"} 1",
            ),
            (
                |m| m.publish_failed(PublishError::Enqueue(RecordKind::State)),
                "newswatch_publish_errors_total{kind=\"state\"} 1",
            ),
            (
                |m| {
                    m.publish_failed(PublishError::Unacknowledged(
                        RecordKind::Alert,
                        Some(RDKafkaErrorCode::MessageTimedOut),
                    ))
                },
                "newswatch_publish_errors_total{kind=\"alert_messagetimedout\"} 1",
            ),
            (
                |m| m.publish_failed(PublishError::Unacknowledged(RecordKind::State, None)),
                "newswatch_publish_errors_total{kind=\"state_other\"} 1",
            ),
            (
                |m| m.publish_failed(PublishError::Alertmanager(AlertmanagerFailure::ServerError)),
                "newswatch_publish_errors_total{kind=\"alertmanager_server_error\"} 1",
            ),
            (
                |m| m.publish_failed(PublishError::Undeliverable),
                "newswatch_publish_errors_total{kind=\"undeliverable\"} 1",
            ),
            (
                |m| m.publish_error("undeliverable"),
                "newswatch_publish_errors_total{kind=\"undeliverable\"} 1",
            ),
            (
                |m| m.alert_suppressed_by("r", Suppression::Throttle),
                "newswatch_alerts_suppressed_total{reason=\"throttle\",rule=\"r\"} 1",
            ),
            (
                |m| m.alert_suppressed_by("r", Suppression::Silenced),
                "newswatch_alerts_suppressed_total{reason=\"silenced\",rule=\"r\"} 1",
            ),
            (|m| m.silences_active(1), "newswatch_silences_active 1"),
            (
                |m| m.state_evicted(StateKind::Story, 1),
                "newswatch_state_evictions_total{kind=\"story\"} 1",
            ),
            (
                |m| m.state_sizes(0, 1),
                "newswatch_state_entries{kind=\"group\"} 1",
            ),
            (
                |m| m.rules_reload(false),
                "newswatch_rules_reloads_total{result=\"failure\"} 1",
            ),
            // The text forms count what they name, and only that.
            (
                |m| m.publish_error("alert"),
                "newswatch_publish_errors_total{kind=\"alert\"} 1",
            ),
            (
                |m| m.kafka_error("consumer"),
                "newswatch_kafka_errors_total{client=\"consumer\"} 1",
            ),
            (
                |m| m.alert_suppressed("r", "throttle"),
                "newswatch_alerts_suppressed_total{reason=\"throttle\",rule=\"r\"} 1",
            ),
        ];
        for (call, want) in table {
            let m = Metrics::new();
            call(&m);
            let text = m.render();
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
        let m = Metrics::new();
        m.publish_error("nonsense");
        m.kafka_error("nonsense");
        m.alert_suppressed("r", "nonsense");
        assert!(!m.render().contains("nonsense"));
    }

    #[test]
    fn per_rule_off_counts_every_rule_under_one_series() {
        for per_rule in [true, false] {
            let m = Metrics::with_per_rule(per_rule);
            for rule in ["a", "b"] {
                m.rule_matched(rule);
                m.rule_evaluated(rule, 1, 500_000_000);
                m.alert_published(rule, "high");
                m.alert_suppressed_by(rule, Suppression::Throttle);
            }
            let text = m.render();
            let want: &[&str] = if per_rule {
                &[
                    "newswatch_rule_matches_total{rule=\"a\"} 1",
                    "newswatch_rule_eval_seconds_total{rule=\"b\"} 0.5",
                    "newswatch_alerts_published_total{rule=\"a\",severity=\"high\"} 1",
                    "newswatch_alerts_suppressed_total{reason=\"throttle\",rule=\"b\"} 1",
                ]
            } else {
                &[
                    "newswatch_rule_matches_total{rule=\"\"} 2",
                    "newswatch_rule_eval_seconds_total{rule=\"\"} 1",
                    "newswatch_alerts_published_total{rule=\"\",severity=\"high\"} 2",
                    "newswatch_alerts_suppressed_total{reason=\"throttle\",rule=\"\"} 2",
                ]
            };
            for w in want {
                assert!(
                    text.contains(w),
                    "per_rule {per_rule}: {w} missing from:\n{text}"
                );
            }
            assert_eq!(text.contains("rule=\"a\""), per_rule, "{text}");
            // GET /rules keeps the per-rule numbers either way.
            let stats = m.rule_stats().of(["a"]);
            assert_eq!(
                (stats[0].matches, stats[0].alerts, stats[0].candidates),
                (1, 1, 1)
            );
        }
    }

    fn distinct<L: Label + std::fmt::Debug>() {
        for (i, a) in L::ALL.iter().enumerate() {
            assert_eq!(L::parse(a.as_str()).map(|l| l.as_str()), Some(a.as_str()));
            for b in &L::ALL[i + 1..] {
                assert_ne!(a.as_str(), b.as_str(), "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn label_values_are_distinct_and_parse_back() {
        distinct::<KafkaClient>();
        distinct::<RecordKind>();
        distinct::<AlertmanagerFailure>();
        distinct::<StateKind>();
        distinct::<Suppression>();
        distinct::<DropReason>();
        distinct::<ReloadResult>();
        distinct::<Reason>();
    }
}
