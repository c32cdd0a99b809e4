//! Phase 2: events onto the input topic. Event `seq` is article
//! `seq % len` of the corpus with the id `lg-<run>-<seq>` and its produce
//! time in `sent_at_us`; keys are `k<seq>`, so the partitioner spreads
//! them. Also `--produce FILE`: a file's lines, as they are.

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use newswatch_testkit_kafka::Producer;

use crate::cpu::CpuMark;
use crate::setup::{Doc, Session};

/// Microseconds since the epoch (wall clock).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Event number `seq` as JSON: article `seq % len` with a unique id (the
/// article's own id kept as `orig_id`) and the produce time.
fn event_json(docs: &[Doc], run: &str, seq: usize, sent_at_us: u64) -> Vec<u8> {
    let d = &docs[seq % docs.len()];
    let mut m = d.json.clone();
    if let Some(orig) = m.insert("id".into(), format!("lg-{run}-{seq}").into()) {
        m.insert("orig_id".into(), orig);
    }
    m.insert("sent_at_us".into(), sent_at_us.into());
    serde_json::to_vec(&m).unwrap_or_default()
}

/// The load producer: a deep queue, so that producing never waits on it.
fn load_producer(brokers: &str, linger_ms: u64) -> Result<Producer> {
    let linger = linger_ms.to_string();
    Ok(Producer::with(
        brokers,
        &[
            ("linger.ms", linger.as_str()),
            ("queue.buffering.max.messages", "1000000"),
        ],
    )?)
}

/// Queue one event; a failure other than a full queue is reported and the
/// event skipped (the counts at the end show it).
fn send(p: &Producer, topic: &str, seq: usize, payload: &[u8]) {
    if let Err(e) = p.try_send(topic, None, Some(format!("k{seq}").as_bytes()), payload) {
        eprintln!("produce failed: {e}");
    }
}

/// What [`backlog`] did.
pub struct Backlog {
    pub n: usize,
    pub bytes: usize,
    pub secs: f64,
    pub cpu: String,
}

/// Produce events `0..n` as fast as the producer takes them (linger 5 ms),
/// and wait until all are out.
pub fn backlog(s: &Session<'_>, topic: &str, n: usize) -> Result<Backlog> {
    let cpu = CpuMark::new(s.tansu_pid());
    let p = load_producer(&s.brokers, 5)?;
    let mut bytes = 0usize;
    for seq in 0..n {
        let payload = event_json(&s.docs, &s.run, seq, now_us());
        bytes += payload.len();
        send(&p, topic, seq, &payload);
    }
    p.try_flush(Duration::from_secs(300))?;
    Ok(Backlog {
        n,
        bytes,
        secs: cpu.at.elapsed().as_secs_f64(),
        cpu: cpu.report(s.tansu_pid(), s.args.threads),
    })
}

/// What [`steady`] did.
pub struct Steady {
    /// Seconds from the first send to the last.
    pub send_s: f64,
    /// How far the sends fell behind their schedule at worst.
    pub behind_max: Duration,
}

/// Produce events `0..sent.len()` at `--rate` per second, recording each
/// one's send time (ns since `base`) in `sent` for the latency probes.
pub fn steady(s: &Session<'_>, topic: &str, sent: &[AtomicU64], base: Instant) -> Result<Steady> {
    let p = load_producer(&s.brokers, s.args.linger_ms)?;
    let interval = Duration::from_secs_f64(1.0 / s.args.rate as f64);
    let start = Instant::now();
    let mut behind_max = Duration::ZERO;
    for (seq, slot) in sent.iter().enumerate() {
        let due = start + interval * seq as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else {
            behind_max = behind_max.max(now - due);
        }
        let payload = event_json(&s.docs, &s.run, seq, now_us());
        slot.store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        send(&p, topic, seq, &payload);
    }
    let send_s = start.elapsed().as_secs_f64();
    if let Err(e) = p.try_flush(Duration::from_secs(60)) {
        eprintln!("latency: load producer flush: {e}");
    }
    Ok(Steady { send_s, behind_max })
}

/// `--produce FILE --topic T --brokers ADDR`: every non-empty line of FILE
/// ("-": stdin) as one record, no key.
pub fn file(file: &Path, topic: &str, brokers: &str) -> Result<()> {
    let reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| file.display().to_string())?,
        ))
    };
    let p = load_producer(brokers, 5)?;
    let t = Instant::now();
    let mut n = 0usize;
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        p.try_send(topic, None, None, line.as_bytes())
            .with_context(|| format!("produce to {topic}"))?;
        n += 1;
    }
    p.try_flush(Duration::from_secs(60))?;
    eprintln!(
        "produced {n} messages to {topic} on {brokers} in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
