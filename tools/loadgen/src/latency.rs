//! Phase 4b: latency. Events at a steady `--rate` for `--seconds`; a probe
//! consumer on the alert topic measures produce -> alert received, and one
//! on the input topic produce -> consumable (the broker's share). The
//! target: p99 produce -> alert at 50 ms or better.

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
use crate::setup::{Session, Topics};

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

/// A consumer thread timing the events (or their alerts) it reads.
struct Probe {
    /// Set once the consumer has partitions assigned.
    ready: Arc<AtomicBool>,
    /// (seq, ms from send to receipt), per record read.
    handle: JoinHandle<Vec<(usize, f64)>>,
}

impl Probe {
    /// Read `topic` from its start; for every record whose JSON carries an
    /// id `lg-<run>-<seq>` (at `/event/id` for alerts, `/id` for events),
    /// record the time since `sent[seq]`.
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
                        let seq = m.payload().and_then(|p| seq_of(p, pointer, &prefix));
                        let sent = seq
                            .and_then(|q| clock.sent.get(q))
                            .map(|a| a.load(Ordering::Relaxed));
                        if let (Some(seq), Some(t)) = (seq, sent.filter(|&t| t > 0)) {
                            out.push((seq, now.saturating_sub(t) as f64 / 1e6));
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

    fn join(self) -> Result<Vec<(usize, f64)>> {
        self.handle.join().map_err(|_| anyhow!("probe panicked"))
    }
}

/// The sequence number in the id at `pointer` of a JSON payload.
fn seq_of(payload: &[u8], pointer: &str, prefix: &str) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.pointer(pointer)?
        .as_str()?
        .strip_prefix(prefix)?
        .parse()
        .ok()
}

/// What the latency measurement collected.
pub struct Measured {
    /// Events produced.
    pub n: usize,
    pub load: Load,
    /// (seq, ms) per alert received, and per input record consumable.
    pub alerts: Vec<(usize, f64)>,
    pub inputs: Vec<(usize, f64)>,
    /// `/metrics` after the load.
    pub after: String,
}

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
        if t.elapsed() > Duration::from_secs(60) {
            clock.stop.store(true, Ordering::Relaxed);
            let _ = d.stop(s);
            bail!("daemon or probes not ready after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "latency: ready after {:.1}s; producing {} events/s for {} s ...",
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

/// The steady load, then until the daemon has processed all of it (30 s at
/// most) and a second for the probes' last fetches.
fn load(s: &Session<'_>, d: &Daemon, topics: &Topics, clock: &Clock, n: usize) -> Result<Load> {
    let before = d.scrape().unwrap_or_default();
    let cpu = crate::cpu::CpuMark::new(s.tansu_pid());
    let steady = produce::steady(s, &topics.input, &clock.sent, clock.base)?;
    let target = metrics::sum(&before, PROCESSED) + n as f64;
    d.wait_processed(target, Duration::from_secs(30), None);
    let cpu = cpu.report(s.tansu_pid(), s.args.threads);
    std::thread::sleep(Duration::from_millis(1000));
    Ok(Load {
        steady,
        before,
        cpu,
    })
}
