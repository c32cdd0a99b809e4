//! Phase 4b: latency. Events at a steady `--rate` for `--seconds`; a probe
//! consumer on the alert topic measures produce -> alert received, and one
//! on the input topic produce -> consumable (the broker's share). The
//! target: p99 produce -> alert at 50 ms or better.
//!
//! Alerts are told apart by rule: the broad rule's (`lg-broad`) are the
//! measurement of its mode, one per event with `each` (stage one), one per
//! story with `first_seen` (stage one, the match topic, stage two). Only
//! alerts that arrive are timed; events that do not alert (a story seen
//! before) are counted, not timed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use newswatch_testkit::metrics;

use crate::daemon::{Daemon, PROCESSED};
use crate::produce::{self, Steady};
use crate::report;
use crate::setup::{Session, Topics, BROAD_RULE};

/// What both probes share with the producer.
#[derive(Clone)]
struct Clock {
    /// Event ids are `lg-<run>-<seq>`.
    run: String,
    /// Send time of event `seq`, ns since `base` (0: not sent yet).
    sent: Arc<Vec<AtomicU64>>,
    base: Instant,
    /// Set when the measurement is over.
    stop: Arc<AtomicBool>,
}

/// One record a probe timed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The event's sequence number.
    pub seq: usize,
    /// From its send to the record's receipt.
    pub ms: f64,
    /// An alert of the broad rule.
    pub broad: bool,
}

/// A consumer thread timing the events (or their alerts) it reads.
struct Probe {
    /// Set once the consumer has partitions assigned.
    ready: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Sample>>,
}

impl Probe {
    /// Read `topic` from its start; for every record whose JSON carries an
    /// id `lg-<run>-<seq>` (at `/event/id` for alerts, `/id` for events),
    /// record the time since `sent[seq]` and whether it is a broad alert.
    fn start(s: &Session<'_>, topic: &str, alerts: bool, clock: Clock) -> Result<Probe> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &s.brokers)
            .set("group.id", format!("lg-probe-{topic}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", s.args.probe_fetch_wait_ms.to_string())
            .create()?;
        c.subscribe(&[topic])?;
        let ready = Arc::new(AtomicBool::new(false));
        let pointer = if alerts { "/event/id" } else { "/id" };
        let topic = topic.to_owned();
        let flag = ready.clone();
        let handle = std::thread::spawn(move || {
            let prefix = format!("lg-{}-", clock.run);
            let mut out = Vec::new();
            while !clock.stop.load(Ordering::Relaxed) {
                match c.poll(Duration::from_millis(50)) {
                    Some(Ok(m)) => {
                        let now = clock.base.elapsed().as_nanos() as u64;
                        let id = m.payload().and_then(|p| id_of(p, pointer, &prefix));
                        let sent = id
                            .and_then(|(q, _)| clock.sent.get(q))
                            .map(|a| a.load(Ordering::Relaxed));
                        if let (Some((seq, broad)), Some(t)) = (id, sent.filter(|&t| t > 0)) {
                            let ms = now.saturating_sub(t) as f64 / 1e6;
                            out.push(Sample { seq, ms, broad });
                        }
                    }
                    Some(Err(e)) => eprintln!("probe {topic}: {e}"),
                    None => {}
                }
                if !flag.load(Ordering::Relaxed)
                    && !c.assignment().map(|a| a.count() == 0).unwrap_or(true)
                {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            out
        });
        Ok(Probe { ready, handle })
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn join(self) -> Result<Vec<Sample>> {
        self.handle.join().map_err(|_| anyhow!("probe panicked"))
    }
}

/// The sequence number in the id at `pointer` of a JSON payload, and
/// whether the payload is an alert of the broad rule.
fn id_of(payload: &[u8], pointer: &str, prefix: &str) -> Option<(usize, bool)> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let seq = v
        .pointer(pointer)?
        .as_str()?
        .strip_prefix(prefix)?
        .parse()
        .ok()?;
    let broad = v.pointer("/rule/id").and_then(|r| r.as_str()) == Some(BROAD_RULE);
    Some((seq, broad))
}

/// What the latency measurement collected.
pub struct Measured {
    /// Events produced.
    pub n: usize,
    pub load: Load,
    /// One per alert received, and per input record consumable.
    pub alerts: Vec<Sample>,
    pub inputs: Vec<Sample>,
    /// `/metrics` after the load.
    pub after: String,
}

/// How long the daemons (every instance joined, its first state
/// partitions restored) and the probes may take to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Daemon and probes up, the steady load, the report.
pub fn run(s: &Session<'_>) -> Result<String> {
    let topics = Topics::create(s, "lat")?;
    let n = (s.args.rate * s.args.seconds) as usize;
    let d = Daemon::start(s, &topics, &format!("lg-nw-lat-{}", s.run))?;
    let clock = Clock {
        run: s.run.clone(),
        sent: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
        base: Instant::now(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let on_alerts = Probe::start(s, &topics.alerts, true, clock.clone())?;
    let on_input = Probe::start(s, &topics.input, false, clock.clone())?;
    let t = Instant::now();
    while !(d.ready() && on_alerts.ready() && on_input.ready()) {
        if t.elapsed() > READY_TIMEOUT {
            clock.stop.store(true, Ordering::Relaxed);
            eprintln!(
                "latency: {} of {} instances ready",
                d.ready_count(),
                s.args.instances
            );
            let _ = d.stop(s);
            bail!("daemons or probes not ready after {READY_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "latency: {} instance(s) ready after {:.1}s; producing {} events/s for {} s ...",
        s.args.instances,
        t.elapsed().as_secs_f64(),
        s.args.rate,
        s.args.seconds
    );
    // A moment for the fetchers to settle on their positions.
    std::thread::sleep(Duration::from_millis(500));
    let load = load(s, &d, &topics, &clock, n)?;
    clock.stop.store(true, Ordering::Relaxed);
    let m = Measured {
        n,
        alerts: on_alerts.join()?,
        inputs: on_input.join()?,
        after: d.scrape().unwrap_or_default(),
        load,
    };
    d.stop(s)?;
    Ok(report::latency(s, &m))
}

/// The steady load and what surrounds it.
pub struct Load {
    pub steady: Steady,
    /// `/metrics` before the load.
    pub before: String,
    pub cpu: String,
}

/// The steady load, then until stage one has processed all of it (30 s at
/// most), until stage two's alerts have settled (no new one for a second,
/// 30 s at most) and a second for the probes' last fetches.
fn load(s: &Session<'_>, d: &Daemon, topics: &Topics, clock: &Clock, n: usize) -> Result<Load> {
    let before = d.scrape().unwrap_or_default();
    let cpu = crate::cpu::CpuMark::new(s.tansu_pid());
    let steady = produce::steady(s, &topics.input, &clock.sent, clock.base)?;
    let target = metrics::sum(&before, PROCESSED) + n as f64;
    d.wait_processed(target, Duration::from_secs(30), None);
    d.wait_published_settled(Duration::from_secs(1), Duration::from_secs(30));
    let cpu = cpu.report(s.tansu_pid(), s.args.threads);
    std::thread::sleep(Duration::from_millis(1000));
    Ok(Load {
        steady,
        before,
        cpu,
    })
}
