//! Phase 5: the tables. Each measurement's table is printed when it is
//! done and again in the summary at the end, so that a long run's numbers
//! stand together.

use std::collections::HashMap;
use std::fmt::Write as _;

use newswatch_testkit::metrics;

use crate::daemon::{PROCESSED, PUBLISHED};
use crate::latency::Measured;
use crate::produce::Backlog;
use crate::setup::{Session, BROAD_RULE};
use crate::throughput::{Consumed, Processed};
use crate::BroadMode;

/// The value at quantile `p` of sorted values (NaN when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One row of the latency table: samples, p50, p99, p99.9, max (ms).
fn lat_row(name: &str, mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "  {:<34} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1}\n",
        name,
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        percentile(&v, 0.999),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

/// One row of the throughput table.
fn thr_row(s: &mut String, name: &str, wall: f64, rate: f64, steady: Option<f64>) {
    let steady = steady.map_or("-".to_owned(), |r| format!("{r:.0}"));
    let _ = writeln!(s, "  {name:<34} {wall:>10.2} {rate:>12.0} {steady:>14}");
}

fn met(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

/// The throughput table: produce, raw consumer, newswatch, the ratio
/// against the 80% target, and CPU per phase.
pub fn throughput(s: &Session<'_>, p: &Backlog, raw: &Consumed, nw: &Processed) -> String {
    let n = p.n as f64;
    let (raw_rate, nw_rate) = (n / raw.total_s, n / nw.run.total_s);
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(
        o,
        "\nTHROUGHPUT ({} events pre-produced, avg {:.1} KB)",
        p.n,
        p.bytes as f64 / n / 1e3
    );
    let _ = writeln!(
        o,
        "  {:<34} {:>10} {:>12} {:>14}",
        "", "wall s", "events/s", "steady ev/s"
    );
    thr_row(o, "produce (loadgen, linger 5ms)", p.secs, n / p.secs, None);
    thr_row(
        o,
        "raw rdkafka consumer",
        raw.total_s,
        raw_rate,
        Some(n / raw.steady_s),
    );
    let nw_steady = Some(n / nw.run.steady_s);
    thr_row(
        o,
        "newswatch (all alerts acked)",
        nw.run.total_s,
        nw_rate,
        nw_steady,
    );
    match nw.committed_s {
        Some(c) => {
            let name = format!(
                "newswatch (offsets committed, {}ms)",
                s.args.commit_interval_ms
            );
            thr_row(o, &name, c, n / c, None);
        }
        None => {
            let _ = writeln!(
                o,
                "  newswatch: committed offsets did not reach the end within 30 s"
            );
        }
    }
    let ratio = nw_rate / raw_rate;
    let _ = writeln!(
        o,
        "  ratio newswatch/raw: {:.0}% (steady {:.0}%)  target >= 80%: {}",
        ratio * 100.0,
        (raw.steady_s / nw.run.steady_s) * 100.0,
        met(ratio >= 0.8)
    );
    let _ = writeln!(
        o,
        "  alerts published: {:.0} ({:.2}/event), invalid events: {:.0}",
        nw.alerts,
        nw.alerts / n,
        nw.invalid
    );
    let _ = writeln!(o, "  CPU produce:   {}", p.cpu);
    let _ = writeln!(o, "  CPU raw:       {}", raw.cpu);
    let _ = writeln!(o, "  CPU newswatch: {}", nw.run.cpu);
    out
}

/// The latency table: produce -> alert (every alert, the broad rule's,
/// and the first per event), produce -> consumable, the daemon's own
/// timings, the 50 ms target, CPU, and a one-line result for the broad
/// rule.
pub fn latency(s: &Session<'_>, m: &Measured) -> String {
    let (n, a) = (m.n, s.args);
    let mut first_alert: HashMap<usize, f64> = HashMap::new();
    for x in &m.alerts {
        let e = first_alert.entry(x.seq).or_insert(x.ms);
        *e = e.min(x.ms);
    }
    let all: Vec<f64> = m.alerts.iter().map(|x| x.ms).collect();
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    let p99 = percentile(&sorted, 0.99);
    let delta = |name: &str| metrics::sum(&m.after, name) - metrics::sum(&m.load.before, name);
    let proc_n = delta(PROCESSED);
    let proc_sum = delta("newswatch_event_processing_seconds_sum");
    let match_sum = delta("newswatch_match_seconds_sum");

    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(
        o,
        "\nLATENCY ({} events/s for {} s = {n} events; sent in {:.2}s, producer at most {:.1} ms behind schedule; load producer linger.ms={}, probes fetch.wait.max.ms={}; {} instance(s))",
        a.rate, a.seconds, m.load.steady.send_s, m.load.steady.behind_max.as_secs_f64() * 1e3, a.linger_ms, a.probe_fetch_wait_ms, a.instances
    );
    let _ = writeln!(
        o,
        "  {:<34} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "ms", "samples", "p50", "p99", "p99.9", "max"
    );
    o.push_str(&lat_row("produce -> alert received", all));
    let broad = Broad::of(m);
    if !a.no_broad {
        let name = format!("produce -> {BROAD_RULE} ({})", a.broad_mode.as_str());
        o.push_str(&lat_row(&name, broad.ms.clone()));
    }
    o.push_str(&lat_row(
        "produce -> first alert/event",
        first_alert.values().copied().collect(),
    ));
    o.push_str(&lat_row(
        "produce -> input consumable",
        m.inputs.iter().map(|x| x.ms).collect(),
    ));
    let _ = writeln!(
        o,
        "  daemon stage one: consume -> records acked mean {:.1} ms, match mean {:.3} ms ({proc_n:.0} events)",
        proc_sum / proc_n.max(1.0) * 1e3,
        match_sum / proc_n.max(1.0) * 1e3
    );
    let _ = writeln!(
        o,
        "  alerts received: {} ({:.2}/event), events with an alert: {} of {n}; published (all instances): {:.0}",
        m.alerts.len(),
        m.alerts.len() as f64 / n as f64,
        first_alert.len(),
        delta(PUBLISHED)
    );
    if !a.no_broad {
        o.push_str(&broad.lines(s, m));
    }
    let _ = writeln!(
        o,
        "  p99 produce->alert {p99:.1} ms, target <= 50 ms: {}",
        met(p99 <= 50.0)
    );
    let _ = writeln!(o, "  CPU: {}", m.load.cpu);
    out
}

/// The broad rule's alerts: the latency of each, and the events they are for.
struct Broad {
    ms: Vec<f64>,
    events: usize,
}

impl Broad {
    fn of(m: &Measured) -> Broad {
        let ms: Vec<f64> = m.alerts.iter().filter(|x| x.broad).map(|x| x.ms).collect();
        let mut seqs: Vec<usize> = m.alerts.iter().filter(|x| x.broad).map(|x| x.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        Broad {
            ms,
            events: seqs.len(),
        }
    }

    /// How many events the broad rule alerted for, and the result line:
    /// storage, instances, mode, p50, p99, events, alerts.
    fn lines(&self, s: &Session<'_>, m: &Measured) -> String {
        let a = s.args;
        let n = m.n;
        let mut sorted = self.ms.clone();
        sorted.sort_by(f64::total_cmp);
        let published = |text: &str| sum_labelled(text, PUBLISHED, "rule", BROAD_RULE);
        let published = published(&m.after) - published(&m.load.before);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "  {BROAD_RULE} ({}): {} alerts received for {} of {n} events ({:.1}%; {}), {published:.0} published",
            a.broad_mode.as_str(),
            self.ms.len(),
            self.events,
            self.events as f64 / n.max(1) as f64 * 100.0,
            match a.broad_mode {
                BroadMode::Each => "every event alerts",
                BroadMode::FirstSeen => "only a story's first event alerts",
            },
        );
        let storage = if a.brokers.is_some() {
            "external broker"
        } else {
            a.storage.as_str()
        };
        let _ = writeln!(
            out,
            "  result: storage={storage} instances={} mode={} p50={:.1}ms p99={:.1}ms events={n} alerts={}",
            a.instances,
            a.broad_mode.as_str(),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            self.ms.len()
        );
        out
    }
}

/// The sum of the samples of metric `name` that carry `label="value"`
/// (any other labels; every instance's exposition when concatenated).
fn sum_labelled(text: &str, name: &str, label: &str, value: &str) -> f64 {
    let want = format!("{label}=\"{value}\"");
    text.lines()
        .filter_map(|l| {
            let labels = l.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, v) = labels.split_once("} ")?;
            labels
                .split(',')
                .any(|kv| kv == want)
                .then(|| v.trim().parse::<f64>().ok())?
        })
        .fold(0.0, |a, b| a + b)
}

/// The closing summary: the set-up, then every measurement's table again.
pub fn summary(s: &Session<'_>, tables: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "==================== newswatch loadgen summary ===================="
    );
    let _ = writeln!(
        out,
        "broker {} ({}), {} input partitions, {} rules{}, {} instance(s), {} CPUs",
        s.brokers,
        if s.broker.is_some() {
            s.args.storage.as_str()
        } else {
            "external"
        },
        s.args.partitions,
        s.n_rules,
        if s.args.no_broad {
            String::new()
        } else {
            format!(
                " + 1 broad (matches every event, mode {})",
                s.args.broad_mode.as_str()
            )
        },
        s.args.instances,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for t in tables {
        out.push_str(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let check = |p: f64, expected: f64| {
            assert_eq!(percentile(&v, p), expected, "p = {p}");
        };
        check(0.0, 1.0);
        check(0.5, 6.0);
        check(0.99, 10.0);
        check(1.0, 10.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn labelled_sums() {
        // Two instances' expositions, one after the other.
        let text = "\
# TYPE newswatch_alerts_published_total counter
newswatch_alerts_published_total{rule=\"lg-broad\",severity=\"info\"} 3
newswatch_alerts_published_total{rule=\"lg-000001\",severity=\"high\"} 4
newswatch_alerts_published_total_other{rule=\"lg-broad\"} 100
newswatch_alerts_published_total{rule=\"lg-broad\",severity=\"info\"} 5
newswatch_alerts_published_total{rule=\"lg-broadside\",severity=\"info\"} 7
";
        let check = |name: &str, label: &str, value: &str, expected: f64| {
            assert_eq!(
                sum_labelled(text, name, label, value),
                expected,
                "{name} {label}={value}"
            );
        };
        check(PUBLISHED, "rule", "lg-broad", 8.0);
        check(PUBLISHED, "rule", "lg-000001", 4.0);
        check(PUBLISHED, "severity", "info", 15.0);
        check(PUBLISHED, "rule", "missing", 0.0);
        check("newswatch_other", "rule", "lg-broad", 0.0);
    }
}
