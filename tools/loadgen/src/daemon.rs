//! Phase 3: newswatch itself, `--instances` daemons of one consumer group
//! in this process (`newswatch::run` on the session's runtime, each with
//! its own config file, HTTP port and metrics registry), so that their CPU
//! shows in this process's clocks. They are watched through their HTTP
//! listeners, as an operator would: a [`Daemon`] is the whole group, ready
//! when every instance is, and its `/metrics` is the instances'
//! expositions one after another, so that `metrics::sum` sums over them.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use newswatch_testkit::{free_port, http, metrics, Setup, Tuning};
use tokio_util::sync::CancellationToken;

use crate::setup::{Session, Topics};

/// The counter that reaches N once stage one has processed N events and
/// their records are acknowledged: the alerts of stateless rules and the
/// match records of stateful ones (whose alerts stage two publishes later).
pub const PROCESSED: &str = "newswatch_event_processing_seconds_count";

/// Alerts acknowledged, by either stage.
pub const PUBLISHED: &str = "newswatch_alerts_published_total";

/// One running `newswatch::run`.
struct Instance {
    /// Its HTTP listener, `127.0.0.1:PORT`.
    http: String,
    token: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), newswatch::DaemonError>>,
}

/// The running daemons of one group.
pub struct Daemon {
    instances: Vec<Instance>,
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

impl Instance {
    /// Write a config for these topics and `group` (rules not watched) to
    /// `newswatch-{group}-{i}.toml` and start a daemon on it.
    fn start(s: &Session<'_>, topics: &Topics, group: &str, i: u32) -> Result<Instance> {
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
        let path = s.base.join(format!("newswatch-{group}-{i}.toml"));
        std::fs::write(&path, text).with_context(|| path.display().to_string())?;
        let config = newswatch::Config::load(Some(&path)).map_err(|e| anyhow!("{e}"))?;
        let token = CancellationToken::new();
        let handle = s.rt.spawn(newswatch::run(config, token.clone()));
        Ok(Instance {
            http,
            token,
            handle,
        })
    }
}

impl Daemon {
    /// Start `--instances` daemons of consumer group `group` on these topics.
    pub fn start(s: &Session<'_>, topics: &Topics, group: &str) -> Result<Daemon> {
        let mut d = Daemon {
            instances: Vec::new(),
        };
        for i in 0..s.args.instances {
            match Instance::start(s, topics, group, i) {
                Ok(inst) => d.instances.push(inst),
                Err(e) => {
                    let _ = d.stop(s);
                    return Err(e);
                }
            }
        }
        Ok(d)
    }

    /// Every instance's `/metrics`, one after another, or `None` when one
    /// does not answer 200.
    pub fn scrape(&self) -> Option<String> {
        let mut all = String::new();
        for inst in &self.instances {
            let (status, body) = http(&inst.http, "GET", "/metrics");
            if status != 200 {
                return None;
            }
            all.push_str(&body);
        }
        Some(all)
    }

    /// Every instance's `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        self.instances
            .iter()
            .all(|inst| http(&inst.http, "GET", "/readyz").0 == 200)
    }

    /// Instances whose `/readyz` answers 200, for progress lines.
    pub fn ready_count(&self) -> usize {
        self.instances
            .iter()
            .filter(|inst| http(&inst.http, "GET", "/readyz").0 == 200)
            .count()
    }

    /// An instance has returned (an error, or a stop).
    pub fn is_finished(&self) -> bool {
        self.instances.iter().any(|inst| inst.handle.is_finished())
    }

    /// Cancel all at once (stopping them one by one would rebalance the
    /// rest each time), then wait for every clean exit.
    pub fn stop(self, s: &Session<'_>) -> Result<()> {
        for inst in &self.instances {
            inst.token.cancel();
        }
        let mut first_err = None;
        for (i, inst) in self.instances.into_iter().enumerate() {
            let r =
                s.rt.block_on(inst.handle)
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r.map_err(|e| anyhow!("daemon {i}: {e}")));
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Poll `/metrics` until [`PROCESSED`] (summed over the instances)
    /// reaches `target` or `timeout` passes; with `progress`, a line a
    /// second. Returns when the first event was consumed, when the target
    /// was reached (none: not in time), and the last exposition read.
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

    /// Stage two has no "processed" counter of its own: wait until the
    /// alerts published (summed over instances) have not changed for
    /// `quiet`, or `timeout` passes. Returns the last count.
    pub fn wait_published_settled(&self, quiet: Duration, timeout: Duration) -> f64 {
        let deadline = Instant::now() + timeout;
        let (mut last, mut since) = (f64::NAN, Instant::now());
        while Instant::now() < deadline && !self.is_finished() {
            if let Some(body) = self.scrape() {
                let now = metrics::sum(&body, PUBLISHED);
                if now != last {
                    (last, since) = (now, Instant::now());
                } else if since.elapsed() >= quiet {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        last
    }
}

/// "  12.0s consumed 1234 processed 1200 alerts 5400".
fn progress_line(start: Instant, body: &str, consumed: f64, processed: f64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "  {:5.1}s consumed {consumed:.0} processed {processed:.0} alerts {:.0}",
        start.elapsed().as_secs_f64(),
        metrics::sum(body, PUBLISHED)
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
