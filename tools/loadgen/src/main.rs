//! Load generator for `newswatch run`, against a real Kafka-compatible broker.
//!
//! ```sh
//! # throughput and latency, with its own Tansu broker (~/.cargo/bin/tansu or $TANSU):
//! cargo run --release -p newswatch-loadgen -- --events 20000 --rules 1000 --rate 1000 --seconds 20
//! cargo run --release -p newswatch-loadgen -- --mode throughput --events 50000
//! cargo run --release -p newswatch-loadgen -- --mode latency --rate 1000 --seconds 20
//! # the second stage's cost: a first_seen broad rule against an each one, 3 instances:
//! cargo run --release -p newswatch-loadgen -- --mode latency --rate 200 --seconds 20 \
//!     --partitions 6 --instances 3 --broad-mode first_seen --corpus /path/to/corpora
//! # against an existing broker (topics must exist or be auto-created):
//! cargo run --release -p newswatch-loadgen -- --brokers 127.0.0.1:9092
//! # just feed JSON lines from a file to a topic:
//! cargo run --release -p newswatch-loadgen -- --produce examples/news.jsonl --topic news.events --brokers 127.0.0.1:9092
//! ```
//!
//! A run goes through its phases in order, one module each:
//!
//! 1. [`setup`]: the broker (its own Tansu unless `--brokers`), topics, the
//!    corpus and the generated rules;
//! 2. [`produce`]: events, pre-produced (throughput) or at a steady rate
//!    (latency);
//! 3. [`daemon`]: newswatch itself, in this process (`newswatch::run`) on a
//!    config file written to the run's directory;
//! 4. [`throughput`] and [`latency`]: the measurements;
//! 5. [`report`]: the tables, printed after each measurement and again in
//!    a summary.
//!
//! * Events are real articles from the corpus directory (`--corpus`, else
//!   `NEWSWATCH_CORPUS`, else the repository's `examples/news.jsonl`),
//!   cycled as needed; every event gets a unique id `lg-<run>-<seq>` and a
//!   `sent_at_us` field (wall clock at produce time).
//! * Rules (`--rules N`) are generated from the corpus vocabulary by
//!   `newswatch_testkit::rulegen` in the shapes the matcher bench uses, plus,
//!   unless `--no-broad`, one broad rule `lg-broad` (`source:Reuters OR
//!   source:Wikinews OR source:seed`) that matches every event, so latency
//!   is measured on every event. With `--broad-mode first_seen` it is a
//!   stateful rule (`alert: {mode: first_seen, window: 24h}`): its matches
//!   go through the daemon's second stage (match record, owner, decision)
//!   and only the first event of each story alerts, so only those are
//!   timed; comparing it with `--broad-mode each` gives that hop's cost.
//! * `--instances N` runs N daemons of one consumer group in this process
//!   (each `newswatch::run` has its own metrics registry and HTTP port);
//!   the measurements start once every one answers `/readyz` 200, and
//!   counters are summed over them.
//! * Throughput: all events are produced first; then a plain rdkafka
//!   consumer (fresh group) reads them, then newswatch (fresh group)
//!   processes them; the time is from client creation to the last event
//!   received (raw) or acknowledged (newswatch:
//!   `newswatch_event_processing_seconds_count` on `/metrics` reaches N; the
//!   committed offsets are checked too).
//! * Latency: events at a steady `--rate` for `--seconds`; a probe consumer
//!   reads the alert topic and measures produce -> alert received. A second
//!   probe reads the input topic (produce -> consumable), to tell the
//!   broker's share from the daemon's.
//! * CPU ([`cpu`]): user+system seconds of this process (daemon + load
//!   clients) and of the Tansu process, per phase; `--threads` lists them
//!   per thread.

mod cpu;
mod daemon;
mod latency;
mod produce;
mod report;
mod setup;
mod throughput;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Throughput,
    Latency,
    Both,
}

/// The broad rule's `alert` mode.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum BroadMode {
    Each,
    #[value(name = "first_seen", alias = "first-seen")]
    FirstSeen,
}

impl BroadMode {
    fn as_str(self) -> &'static str {
        match self {
            BroadMode::Each => "each",
            BroadMode::FirstSeen => "first_seen",
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "Load generator for newswatch (throughput and produce->alert latency)")]
struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value = "both")]
    mode: Mode,
    /// Use this broker instead of starting a Tansu broker.
    #[arg(long)]
    brokers: Option<String>,
    /// Directory of news corpora (*.jsonl); default: $NEWSWATCH_CORPUS,
    /// else the repository's examples/news.jsonl.
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Throughput mode: events to pre-produce and process.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Generated rules (plus the broad rule).
    #[arg(long, default_value_t = 1_000)]
    rules: usize,
    /// Don't add the broad rule that matches every event.
    #[arg(long)]
    no_broad: bool,
    /// The broad rule's mode: `each` (an alert per event, stage one) or
    /// `first_seen` (an alert per story, decided by stage two).
    #[arg(long, value_enum, default_value = "each")]
    broad_mode: BroadMode,
    /// Daemons of the same consumer group, run side by side in this process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    instances: u32,
    /// Latency mode: events per second.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Latency mode: seconds of steady load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    /// `auto.commit.interval.ms` of the daemon's consumer.
    #[arg(long, default_value_t = 200)]
    commit_interval_ms: u64,
    /// Partitions of the alert topic.
    #[arg(long, default_value_t = 3)]
    alert_partitions: u32,
    /// Tansu storage engine (when loadgen starts the broker). The tests use
    /// `sqlite://tansu.db`; under load its writes take 100 ms and stall for
    /// seconds, which then dominates every number, hence memory by default.
    #[arg(long, default_value = "memory://tansu/")]
    storage: String,
    /// Extra daemon consumer property, `key=value` (repeatable).
    #[arg(long = "consumer-prop")]
    consumer_props: Vec<String>,
    /// Extra daemon producer property, `key=value` (repeatable).
    #[arg(long = "producer-prop")]
    producer_props: Vec<String>,
    /// `linger.ms` of the load producer in latency mode.
    #[arg(long, default_value_t = 0)]
    linger_ms: u64,
    /// `fetch.wait.max.ms` of the latency probes (they should not add latency).
    #[arg(long, default_value_t = 10)]
    probe_fetch_wait_ms: u64,
    /// Print CPU seconds per thread after each phase.
    #[arg(long)]
    threads: bool,
    /// Keep the temp dir (broker data, rules, config) and print its path.
    #[arg(long)]
    keep: bool,
    /// Produce the JSON lines of FILE ("-" = stdin) to `--topic` and exit.
    #[arg(long, value_name = "FILE", requires = "topic")]
    produce: Option<PathBuf>,
    /// Topic for `--produce`.
    #[arg(long)]
    topic: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    if let Some(file) = &args.produce {
        let brokers = args
            .brokers
            .clone()
            .context("--produce needs --brokers ADDR")?;
        return produce::file(file, args.topic.as_deref().unwrap_or_default(), &brokers);
    }

    let session = setup::Session::start(&args)?;
    let mut summary = Vec::new();
    if matches!(args.mode, Mode::Throughput | Mode::Both) {
        let s = throughput::run(&session)?;
        print!("{s}");
        summary.push(s);
    }
    if matches!(args.mode, Mode::Latency | Mode::Both) {
        let s = latency::run(&session)?;
        print!("{s}");
        summary.push(s);
    }
    print!("{}", report::summary(&session, &summary));
    Ok(())
}
