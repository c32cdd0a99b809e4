//! Phase 4a: throughput. The events are produced first; then a plain
//! rdkafka consumer reads them (the ceiling), then newswatch processes them
//! (each in a fresh group, from the first offset). The target: newswatch at
//! 80% of the plain consumer or better.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use newswatch_testkit::metrics;
use newswatch_testkit_kafka::{end_offsets, Committed};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use crate::cpu::CpuMark;
use crate::daemon::{Daemon, PROCESSED};
use crate::produce;
use crate::report;
use crate::setup::{Session, Topics};

/// One consumer's run over the backlog.
pub struct Consumed {
    /// From client creation to the last event.
    pub total_s: f64,
    /// From the first event to the last.
    pub steady_s: f64,
    pub cpu: String,
}

/// newswatch's run over the backlog, and what it published.
pub struct Processed {
    pub run: Consumed,
    /// From client creation until the committed offsets reached the end
    /// (none: not within 30 s).
    pub committed_s: Option<f64>,
    pub alerts: f64,
    pub invalid: f64,
}

/// Produce, consume raw, process with newswatch; the report.
pub fn run(s: &Session<'_>) -> Result<String> {
    let topics = Topics::create(s, "thr")?;
    let n = s.args.events;
    eprintln!("throughput: producing {n} events to {} ...", topics.input);
    let produced = produce::backlog(s, &topics.input, n)?;
    let ends = end_offsets(&s.brokers, &topics.input, s.args.partitions)?;
    let total: i64 = ends.iter().sum();
    if total != n as i64 {
        eprintln!("note: the input topic holds {total} records, expected {n}");
    }
    eprintln!(
        "throughput: produced {n} events ({:.1} MB) in {:.2}s",
        produced.bytes as f64 / 1e6,
        produced.secs
    );
    eprintln!("throughput: raw rdkafka consumer ...");
    let raw = consume_raw(s, &topics.input, n)?;
    eprintln!("throughput: newswatch ...");
    let nw = process(s, &topics, n, &ends)?;
    Ok(report::throughput(s, &produced, &raw, &nw))
}

/// A plain consumer (fresh group, no commits) reads all `n` events,
/// touching each payload so that nothing is optimised away.
fn consume_raw(s: &Session<'_>, input: &str, n: usize) -> Result<Consumed> {
    let cpu = CpuMark::new(s.tansu_pid());
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &s.brokers)
        .set("group.id", format!("lg-raw-{}", s.run))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    c.subscribe(&[input])?;
    let mut got = 0usize;
    let mut touched = 0u64;
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while got < n && Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                let pl = m.payload().unwrap_or_default();
                touched = touched
                    .wrapping_add(pl.len() as u64)
                    .wrapping_add(pl.first().copied().unwrap_or(0) as u64);
                got += 1;
            }
            Some(Err(e)) => eprintln!("raw consumer: {e}"),
            None => {}
        }
    }
    let total_s = cpu.at.elapsed().as_secs_f64();
    let steady_s = first.map_or(total_s, |f| f.elapsed().as_secs_f64());
    let cpu = cpu.report(s.tansu_pid(), s.args.threads);
    drop(c);
    if got < n {
        bail!("raw consumer got only {got} of {n} events");
    }
    std::hint::black_box(touched);
    Ok(Consumed {
        total_s,
        steady_s,
        cpu,
    })
}

/// newswatch (fresh group, `--instances` daemons) processes the `n`
/// events; then its committed offsets must reach `ends`.
fn process(s: &Session<'_>, topics: &Topics, n: usize, ends: &[i64]) -> Result<Processed> {
    let group = format!("lg-nw-{}", s.run);
    let cpu = CpuMark::new(s.tansu_pid());
    let d = Daemon::start(s, topics, &group)?;
    let p = d.wait_processed(n as f64, Duration::from_secs(900), Some(cpu.at));
    let Some(done_at) = p.done else {
        let _ = d.stop(s);
        bail!(
            "newswatch did not finish: processed {} of {n}",
            metrics::sum(&p.last, PROCESSED)
        );
    };
    let total_s = done_at.duration_since(cpu.at).as_secs_f64();
    let steady_s = p
        .first
        .map_or(total_s, |f| done_at.duration_since(f).as_secs_f64());
    let cpu_report = cpu.report(s.tansu_pid(), s.args.threads);
    let committed_at = wait_committed(s, &group, &topics.input, ends);
    // Stage two's alerts (stateful rules) follow stage one's acknowledgements.
    d.wait_published_settled(Duration::from_secs(1), Duration::from_secs(30));
    let body = d.scrape().unwrap_or_default();
    d.stop(s)?;
    Ok(Processed {
        run: Consumed {
            total_s,
            steady_s,
            cpu: cpu_report,
        },
        committed_s: committed_at.map(|c| c.duration_since(cpu.at).as_secs_f64()),
        alerts: metrics::sum(&body, "newswatch_alerts_published_total"),
        invalid: metrics::sum(&body, "newswatch_events_invalid_total"),
    })
}

/// When `group`'s committed offsets reached `ends` (after the next
/// auto-commit), within 30 s.
fn wait_committed(s: &Session<'_>, group: &str, input: &str, ends: &[i64]) -> Option<Instant> {
    let reader = Committed::new(&s.brokers, group).ok()?;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if reader
            .offsets(input, s.args.partitions)
            .is_some_and(|c| c.iter().zip(ends).all(|(c, e)| c >= e))
        {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
