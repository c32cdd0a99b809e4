//! Phase 3: newswatch itself, in this process (`newswatch::run` on the
//! session's runtime), so that its CPU shows in this process's clocks; it
//! is watched through its own HTTP listener, as an operator would.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use newswatch_testkit::{free_port, http, metrics, Setup, Tuning};
use tokio_util::sync::CancellationToken;

use crate::setup::{Session, Topics};

/// The counter that reaches N once N events are processed and their alerts
/// acknowledged.
pub const PROCESSED: &str = "newswatch_event_processing_seconds_count";

/// A running daemon.
pub struct Daemon {
    /// Its HTTP listener, `127.0.0.1:PORT`.
    pub http: String,
    token: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), newswatch::DaemonError>>,
}

/// `key=value` of `--consumer-prop` / `--producer-prop`.
fn split_prop<'p>(p: &'p str, flag: &str) -> Result<(&'p str, &'p str)> {
    p.split_once('=')
        .with_context(|| format!("{flag} key=value, not {p:?}"))
}

/// The daemon's consumer properties: the commit interval, a short fetch
/// wait against our own Tansu (as config/newswatch.toml does: Tansu holds
/// every fetch for the full `fetch.wait.max.ms`, 500 ms by default, even
/// when data is there) unless given, then `--consumer-prop`s.
fn consumer_properties(s: &Session<'_>) -> Result<Vec<(String, String)>> {
    let a = s.args;
    let mut props = vec![(
        "auto.commit.interval.ms".to_owned(),
        a.commit_interval_ms.to_string(),
    )];
    let own_fetch_wait = a
        .consumer_props
        .iter()
        .any(|p| p.starts_with("fetch.wait.max.ms="));
    if a.brokers.is_none() && !own_fetch_wait {
        props.push(("fetch.wait.max.ms".to_owned(), "10".to_owned()));
    }
    for p in &a.consumer_props {
        let (k, v) = split_prop(p, "--consumer-prop")?;
        props.push((k.to_owned(), v.to_owned()));
    }
    Ok(props)
}

impl Daemon {
    /// Write a config for these topics and `group` (rules not watched) and
    /// start the daemon on it.
    pub fn start(s: &Session<'_>, topics: &Topics, group: &str) -> Result<Daemon> {
        let http = format!("127.0.0.1:{}", free_port());
        let consumer = consumer_properties(s)?;
        let producer = s
            .args
            .producer_props
            .iter()
            .map(|p| split_prop(p, "--producer-prop"))
            .collect::<Result<Vec<_>>>()?;
        let consumer: Vec<(&str, &str)> = consumer
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let text = Setup {
            brokers: &s.brokers,
            input: &topics.input,
            alerts: &topics.alerts,
            dlq: &topics.dlq,
            group,
            http: &http,
            rules: &s.rules_dir,
        }
        .toml(&Tuning {
            consumer_properties: &consumer,
            producer_properties: &producer,
            watch: false,
            extra: "",
        });
        let path = s.base.join(format!("newswatch-{group}.toml"));
        std::fs::write(&path, text).with_context(|| path.display().to_string())?;
        let config = newswatch::Config::load(Some(&path)).map_err(|e| anyhow!("{e}"))?;
        let token = CancellationToken::new();
        let handle = s.rt.spawn(newswatch::run(config, token.clone()));
        Ok(Daemon {
            http,
            token,
            handle,
        })
    }

    /// `/metrics`, or `None` when the listener does not answer 200.
    pub fn scrape(&self) -> Option<String> {
        let (status, body) = http(&self.http, "GET", "/metrics");
        (status == 200).then_some(body)
    }

    /// `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        http(&self.http, "GET", "/readyz").0 == 200
    }

    /// The daemon has returned (an error, or a stop).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Cancel and wait for a clean exit.
    pub fn stop(self, s: &Session<'_>) -> Result<()> {
        self.token.cancel();
        s.rt.block_on(self.handle)?
            .map_err(|e| anyhow!("daemon: {e}"))?;
        Ok(())
    }

    /// Poll `/metrics` until [`PROCESSED`] reaches `target` or `timeout`
    /// passes; with `progress`, a line a second. Returns when the first
    /// event was consumed, when the target was reached (none: not in
    /// time), and the last exposition read.
    pub fn wait_processed(
        &self,
        target: f64,
        timeout: Duration,
        progress: Option<Instant>,
    ) -> Progress {
        let mut p = Progress::default();
        let deadline = Instant::now() + timeout;
        let mut last_line = Instant::now();
        while Instant::now() < deadline && !self.is_finished() {
            if let Some(body) = self.scrape() {
                let consumed = metrics::sum(&body, "newswatch_events_consumed_total");
                if p.first.is_none() && consumed > 0.0 {
                    p.first = Some(Instant::now());
                }
                let processed = metrics::sum(&body, PROCESSED);
                if let Some(start) = progress.filter(|_| last_line.elapsed().as_secs() >= 1) {
                    last_line = Instant::now();
                    eprintln!("{}", progress_line(start, &body, consumed, processed));
                }
                p.last = body;
                if processed >= target {
                    p.done = Some(Instant::now());
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        p
    }
}

/// "  12.0s consumed 1234 processed 1200 alerts 5400".
fn progress_line(start: Instant, body: &str, consumed: f64, processed: f64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "  {:5.1}s consumed {consumed:.0} processed {processed:.0} alerts {:.0}",
        start.elapsed().as_secs_f64(),
        metrics::sum(body, "newswatch_alerts_published_total")
    );
    s
}

/// What [`Daemon::wait_processed`] saw.
#[derive(Default)]
pub struct Progress {
    pub first: Option<Instant>,
    pub done: Option<Instant>,
    pub last: String,
}
