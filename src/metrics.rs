//! Prometheus metrics (SPEC §11), in one typed struct that owns its own
//! `Registry` (never the global one, so tests can run daemons side by side).
//!
//! Every event the daemon counts has exactly one method here; call sites
//! never touch label strings, so a metric cannot be misspelled elsewhere.

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::daemon::alertmanager::DropReason;
use newswatch_core::event::Reason;

pub struct Metrics {
    registry: Registry,
    events_consumed: IntCounterVec,
    events_invalid: IntCounterVec,
    dlq_records: IntCounter,
    rule_matches: IntCounterVec,
    alerts_published: IntCounterVec,
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
    alertmanager_sent: IntCounter,
    alertmanager_dropped: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let fast = vec![
            0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
            0.025, 0.05, 0.1,
        ];
        let slow = vec![
            0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let delay = vec![
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
        let events_consumed = counter_vec(
            &r,
            "newswatch_events_consumed_total",
            "Events consumed from the input topics.",
            &["topic"],
        );
        let events_invalid = counter_vec(
            &r,
            "newswatch_events_invalid_total",
            "Events that could not be used, by reason.",
            &["reason"],
        );
        let dlq_records = IntCounter::new(
            "newswatch_dlq_records_total",
            "Records written to the dead-letter topic.",
        )
        .expect("valid metric");
        r.register(Box::new(dlq_records.clone()))
            .expect("unique metric");
        let rule_matches = counter_vec(
            &r,
            "newswatch_rule_matches_total",
            "Events that matched a rule.",
            &["rule"],
        );
        let alerts_published = counter_vec(
            &r,
            "newswatch_alerts_published_total",
            "Alerts acknowledged by the broker.",
            &["rule", "severity"],
        );
        let alerts_suppressed = counter_vec(
            &r,
            "newswatch_alerts_suppressed_total",
            "Alerts suppressed by a rule's mode or throttle.",
            &["rule", "reason"],
        );
        let publish_errors = counter_vec(
            &r,
            "newswatch_publish_errors_total",
            "Failed attempts to publish an alert or dead letter (retried).",
            &["kind"],
        );
        // Not in SPEC §11's table: every Kafka client error that is logged is
        // also counted here, so dashboards see what the logs say.
        let kafka_errors = counter_vec(
            &r,
            "newswatch_kafka_errors_total",
            "Errors reported by the Kafka clients (logged too).",
            &["client"],
        );
        let event_processing = histogram(
            &r,
            "newswatch_event_processing_seconds",
            "From consuming an event to its alerts being acknowledged.",
            slow,
        );
        let match_seconds = histogram(
            &r,
            "newswatch_match_seconds",
            "Matcher time per event.",
            fast,
        );
        let event_delay = histogram(
            &r,
            "newswatch_event_delay_seconds",
            "Consume time minus the event's published_at.",
            delay,
        );
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "newswatch_consumer_lag_messages",
                "Consumer lag, from librdkafka statistics.",
            ),
            &["topic", "partition"],
        )
        .expect("valid metric");
        r.register(Box::new(consumer_lag.clone()))
            .expect("unique metric");
        let rules_loaded =
            Gauge::new("newswatch_rules_loaded", "Rules in force.").expect("valid metric");
        r.register(Box::new(rules_loaded.clone()))
            .expect("unique metric");
        let rules_reloads = counter_vec(
            &r,
            "newswatch_rules_reloads_total",
            "Rule reloads, by result.",
            &["result"],
        );
        for result in ["success", "failure"] {
            rules_reloads.with_label_values(&[result]);
        }
        let ruleset_info = GaugeVec::new(
            Opts::new("newswatch_ruleset_info", "The rule set in force (value 1)."),
            &["version"],
        )
        .expect("valid metric");
        r.register(Box::new(ruleset_info.clone()))
            .expect("unique metric");
        let build_info = GaugeVec::new(
            Opts::new("newswatch_build_info", "The newswatch build (value 1)."),
            &["version"],
        )
        .expect("valid metric");
        r.register(Box::new(build_info.clone()))
            .expect("unique metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        // Not in SPEC §11's table: the size of stateful rules' state and the
        // cap that bounds it (issue: memory is bounded, and when the cap
        // bites it shows here and in the log).
        let state_entries = IntGaugeVec::new(
            Opts::new(
                "newswatch_state_entries",
                "Live state of stateful rules: stories (first_seen) and groups (threshold, throttle).",
            ),
            &["kind"],
        )
        .expect("valid metric");
        r.register(Box::new(state_entries.clone()))
            .expect("unique metric");
        let state_evictions = counter_vec(
            &r,
            "newswatch_state_evictions_total",
            "State evicted before its window ended because the cap was reached.",
            &["kind"],
        );
        for kind in ["story", "group"] {
            state_entries.with_label_values(&[kind]);
            state_evictions.with_label_values(&[kind]);
        }
        let state_records_invalid = IntCounter::new(
            "newswatch_state_records_invalid_total",
            "State changelog records that could not be read (skipped, logged).",
        )
        .expect("valid metric");
        r.register(Box::new(state_records_invalid.clone()))
            .expect("unique metric");
        for reason in Reason::ALL {
            events_invalid.with_label_values(&[reason.as_str()]);
        }
        // The optional Alertmanager output (not in SPEC §11's table): every
        // alert handed to it ends up sent or dropped, with a reason.
        let alertmanager_sent = IntCounter::new(
            "newswatch_alertmanager_alerts_sent_total",
            "Alerts accepted by Alertmanager.",
        )
        .expect("valid metric");
        r.register(Box::new(alertmanager_sent.clone()))
            .expect("unique metric");
        let alertmanager_dropped = counter_vec(
            &r,
            "newswatch_alertmanager_alerts_dropped_total",
            "Alerts given up on the way to Alertmanager (they are on Kafka), by reason.",
            &["reason"],
        );
        for reason in DropReason::ALL {
            alertmanager_dropped.with_label_values(&[reason.as_str()]);
        }
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = r.register(Box::new(pc));
        }
        Metrics {
            registry: r,
            events_consumed,
            events_invalid,
            dlq_records,
            rule_matches,
            alerts_published,
            alerts_suppressed,
            publish_errors,
            kafka_errors,
            event_processing,
            match_seconds,
            event_delay,
            consumer_lag,
            rules_loaded,
            rules_reloads,
            ruleset_info,
            state_entries,
            state_evictions,
            state_records_invalid,
            alertmanager_sent,
            alertmanager_dropped,
        }
    }

    /// Live stories and groups of stateful rules.
    pub fn state_sizes(&self, stories: usize, groups: usize) {
        self.state_entries
            .with_label_values(&["story"])
            .set(stories as i64);
        self.state_entries
            .with_label_values(&["group"])
            .set(groups as i64);
    }

    /// State evicted by the cap: `kind` is `story` or `group`.
    pub fn state_evicted(&self, kind: &str, n: u64) {
        self.state_evictions.with_label_values(&[kind]).inc_by(n);
    }

    pub fn state_record_invalid(&self) {
        self.state_records_invalid.inc();
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

    pub fn rule_matched(&self, rule: &str) {
        self.rule_matches.with_label_values(&[rule]).inc();
    }

    pub fn alert_published(&self, rule: &str, severity: &str) {
        self.alerts_published
            .with_label_values(&[rule, severity])
            .inc();
    }

    pub fn alert_suppressed(&self, rule: &str, reason: &str) {
        self.alerts_suppressed
            .with_label_values(&[rule, reason])
            .inc();
    }

    /// `kind`: `alert` or `dlq`, plus the error class (see the pipeline),
    /// or `alertmanager_…` (see `AlertmanagerError::kind`).
    pub fn publish_error(&self, kind: &str) {
        self.publish_errors.with_label_values(&[kind]).inc();
    }

    /// `client`: `consumer` or `producer`.
    pub fn kafka_error(&self, client: &str) {
        self.kafka_errors.with_label_values(&[client]).inc();
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

    /// `n` alerts accepted by Alertmanager.
    pub fn alertmanager_sent(&self, n: usize) {
        self.alertmanager_sent.inc_by(n as u64);
    }

    /// `n` alerts given up on the way to Alertmanager.
    pub fn alertmanager_dropped(&self, reason: DropReason, n: usize) {
        if n > 0 {
            self.alertmanager_dropped
                .with_label_values(&[reason.as_str()])
                .inc_by(n as u64);
        }
    }

    pub fn rules_reload(&self, success: bool) {
        self.rules_reloads
            .with_label_values(&[if success { "success" } else { "failure" }])
            .inc();
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
        m.alert_suppressed("r", "throttle");
        m.publish_error("alert");
        m.consumer_lag("news.events", 0, 3);
        m.rules_in_force(2, "abc");
        m.event_processed(Duration::from_millis(2));
        m.matched_in(Duration::from_micros(20));
        m.event_delay(1.0);
        m.dlq_record();
        m.alertmanager_sent(2);
        m.alertmanager_dropped(DropReason::QueueFull, 1);
        let text = m.render();
        for name in [
            "newswatch_events_consumed_total",
            "newswatch_events_invalid_total",
            "newswatch_dlq_records_total",
            "newswatch_rule_matches_total",
            "newswatch_alerts_published_total",
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
            "newswatch_alertmanager_alerts_sent_total 2",
            "newswatch_alertmanager_alerts_dropped_total{reason=\"queue_full\"} 1",
            "newswatch_alertmanager_alerts_dropped_total{reason=\"expired\"} 0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
