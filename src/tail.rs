//! `newswatch tail` (SPEC §1): follow the alert topics as a subscriber
//! would, and print each alert or digest as one readable line (or, with
//! `--json`, its payload).
//!
//! The topics are the config's `kafka.alert_topic` plus every enabled rule's
//! own `topic:`, or exactly the `--topic`s given. Invariants:
//!
//! - Tail is a consumer of its own: a fresh group each run (a random
//!   `group.id`, no `group.instance.id`), `enable.auto.commit=false`, and it
//!   never commits, so it never moves the offsets of anyone's group and
//!   leaves nothing behind but an empty group the broker expires.
//! - Duplicates are dropped by `alert_id` / `digest_id` (redelivered copies
//!   after a crash, instances of one group racing), remembering the last
//!   [`SEEN_IDS`] ids, so its memory is bounded however long it runs.
//! - A broker outage is never fatal: the start-up metadata check and the
//!   consumer retry with backoff until the broker answers or a signal comes.
//!   Only what retrying cannot fix (a bad config, rules that do not load, a
//!   topic that does not exist) ends it early, with exit code 2.
//! - SIGINT, SIGTERM or a closed stdout (`tail | head`) end it with exit 0.
//!
//! Printed text is the payload's own strings with control characters
//! replaced, so a hostile headline cannot drive the terminal.

use std::collections::{HashSet, VecDeque};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::ClientContext;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::daemon::backoff::Backoff;
use crate::daemon::ratelimit::LogLimiter;

/// How many ids tail remembers to drop duplicates (about 10 MB).
pub const SEEN_IDS: usize = 100_000;

/// Retrying an unreachable broker, at start-up and while consuming.
const RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));

/// How long one metadata request may take before it is retried.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Consumer properties tail sets itself: a fresh group that commits nothing.
const OWN_PROPERTIES: [&str; 5] = [
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
];

/// What `newswatch tail` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--topic`s: when non-empty, exactly these topics.
    pub topics: Vec<String>,
    /// Read from each partition's beginning instead of only what comes next.
    pub from_beginning: bool,
    /// Print the payloads instead of readable lines.
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("the rules do not load ({0} errors; run `newswatch check`), so their topics are unknown: name the topics with --topic")]
    Rules(usize),
    #[error("cannot create the Kafka consumer: {0}")]
    Client(KafkaError),
    #[error("cannot subscribe to {topics}: {source}")]
    Subscribe { topics: String, source: KafkaError },
    #[error("topic {topic} does not exist on {brokers} (named by {by})")]
    MissingTopic {
        topic: String,
        brokers: String,
        by: String,
    },
    #[error("cannot write to stdout: {0}")]
    Output(io::Error),
}

/// A topic to follow and what named it (for the error when it is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: String,
    pub named_by: String,
}

/// The topics to follow: the `--topic`s, else the config's alert topic and
/// the enabled rules' own topics, each once, in that order.
pub fn topics(cfg: &Config, opts: &Options) -> Result<Vec<Topic>, TailError> {
    let mut out: Vec<Topic> = Vec::new();
    let mut add = |name: &str, by: String| {
        if !out.iter().any(|t| t.name == name) {
            out.push(Topic {
                name: name.to_owned(),
                named_by: by,
            });
        }
    };
    if !opts.topics.is_empty() {
        for t in &opts.topics {
            add(t, "--topic".to_owned());
        }
        return Ok(out);
    }
    add(&cfg.kafka.alert_topic, "kafka.alert_topic".to_owned());
    let rules = newswatch_core::rules::load_paths(&cfg.rules.paths)
        .map_err(|e| TailError::Rules(e.0.len()))?;
    for r in &rules.rules {
        if let Some(t) = &r.topic {
            add(t, format!("rule {}", r.id));
        }
    }
    Ok(out)
}

/// The ids seen lately: a set with first-in, first-out eviction at a cap.
pub struct Seen {
    cap: usize,
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    pub fn new(cap: usize) -> Seen {
        Seen {
            cap: cap.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// True the first time `id` is seen (within the last `cap` ids).
    pub fn first(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() == self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

/// A payload as tail sees it: its dedup key and its readable line, or why
/// it is not a newswatch payload.
pub fn describe(payload: &[u8]) -> Result<(String, String), String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON ({e})"))?;
    let s = |p: &str| clean(v.pointer(p).and_then(Value::as_str).unwrap_or("-"));
    match v.get("schema").and_then(Value::as_str) {
        Some("newswatch.alert.v1") => {
            let id = v["alert_id"].as_str().ok_or("an alert without alert_id")?;
            let mut line = format!(
                "{}  {:<8}  {}  {}  {}  {}",
                s("/event_time"),
                s("/rule/severity"),
                s("/rule/id"),
                s("/event/title"),
                s("/event/source"),
                s("/event/url"),
            );
            match v["mode"].as_str() {
                Some("threshold") => line += &format!("  [count {}]", v["count"]),
                Some("spike") => {
                    line += &format!("  [spike: {} vs {} per window]", v["count"], v["baseline"])
                }
                _ => {}
            }
            if let Some(n) = v["suppressed"].as_u64().filter(|&n| n > 0) {
                line += &format!("  (+{n} held back)");
            }
            Ok((format!("alert {id}"), line))
        }
        Some("newswatch.digest.v1") => {
            let id = v["digest_id"]
                .as_str()
                .ok_or("a digest without digest_id")?;
            let line = format!(
                "{}  {:<8}  {}  digest {} to {}: {} alerts  {}",
                s("/period/start"),
                s("/rule/severity"),
                s("/rule/id"),
                s("/period/start"),
                s("/period/end"),
                v["count"],
                s("/rule/title"),
            );
            Ok((format!("digest {id}"), line))
        }
        Some(other) => Err(format!("schema {other:?} is not one tail knows")),
        None => Err("no schema field".to_owned()),
    }
}

/// `s` with every control character (newlines, escapes) as a space.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A random consumer group of tail's own (std's per-process random hash
/// keys, the process id and the clock).
fn group_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    format!("newswatch-tail-{:016x}", h.finish())
}

/// The consumer's properties: the user's (security, tuning) first, then
/// tail's own group, which commits nothing.
fn client_config(cfg: &Config, opts: &Options, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.kafka.brokers);
    for (k, v) in &cfg.kafka.consumer_properties {
        if !OWN_PROPERTIES.contains(&k.as_str()) {
            c.set(k, v);
        }
    }
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            if opts.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        );
    c
}

/// librdkafka's callbacks: log lines, rate-limited global errors, and the
/// assignment (a test and a person both want to know when tail is live).
struct TailCtx {
    errors: std::sync::Mutex<LogLimiter>,
}

impl ClientContext for TailCtx {
    // Failures reach `error` too (rate-limited there); the log lines are
    // for debugging only (RUST_LOG=librdkafka=debug).
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        tracing::debug!(target: "librdkafka", ?level, facility = fac, "{msg}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let allow = self.errors.lock().map(|mut l| l.allow()).unwrap_or(None);
        if let Some(held) = allow {
            tracing::warn!(error = %error, reason, held_back = held, "Kafka unreachable or failing; retrying");
        }
    }
}

impl ConsumerContext for TailCtx {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            tracing::info!(partitions = tpl.count(), "following: partitions assigned");
        }
    }
}

/// Run `newswatch tail` until `shutdown` (the signals) or a closed stdout.
pub async fn run(cfg: Config, opts: Options, shutdown: CancellationToken) -> Result<(), TailError> {
    let topics = topics(&cfg, &opts)?;
    let ctx = TailCtx {
        errors: std::sync::Mutex::new(LogLimiter::new(Duration::from_secs(10))),
    };
    let group = group_id();
    let consumer: Arc<StreamConsumer<TailCtx>> = Arc::new(
        client_config(&cfg, &opts, &group)
            .create_with_context(ctx)
            .map_err(TailError::Client)?,
    );
    if !await_metadata(&consumer, &topics, &cfg.kafka.brokers, &shutdown).await? {
        return Ok(());
    }
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    consumer
        .subscribe(&names)
        .map_err(|source| TailError::Subscribe {
            topics: names.join(", "),
            source,
        })?;
    tracing::info!(topics = ?names, group, from_beginning = opts.from_beginning, "subscribed");
    follow(&consumer, &opts, &shutdown).await
}

/// Wait until the brokers answer a metadata request, retrying with
/// backoff; then every topic must exist. False when a signal came first.
async fn await_metadata(
    consumer: &Arc<StreamConsumer<TailCtx>>,
    topics: &[Topic],
    brokers: &str,
    shutdown: &CancellationToken,
) -> Result<bool, TailError> {
    let mut backoff = RETRY;
    loop {
        let c = consumer.clone();
        let md = tokio::task::spawn_blocking(move || {
            c.fetch_metadata(None, METADATA_TIMEOUT)
                .map(|m| {
                    m.topics()
                        .iter()
                        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                        .map(|t| t.name().to_owned())
                        .collect::<HashSet<String>>()
                })
                .map_err(|e| e.to_string())
        });
        let got = tokio::select! {
            _ = shutdown.cancelled() => return Ok(false),
            r = md => r.unwrap_or_else(|e| Err(e.to_string())),
        };
        match got {
            Ok(existing) => {
                if let Some(t) = topics.iter().find(|t| !existing.contains(&t.name)) {
                    return Err(TailError::MissingTopic {
                        topic: t.name.clone(),
                        brokers: brokers.to_owned(),
                        by: t.named_by.clone(),
                    });
                }
                return Ok(true);
            }
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(brokers, error = %e, retry_in = ?wait, "cannot reach the Kafka brokers; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(false),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Print each new alert or digest until a signal or a closed stdout.
async fn follow(
    consumer: &StreamConsumer<TailCtx>,
    opts: &Options,
    shutdown: &CancellationToken,
) -> Result<(), TailError> {
    let mut seen = Seen::new(SEEN_IDS);
    let mut backoff = RETRY;
    let mut skipped = LogLimiter::new(Duration::from_secs(10));
    let mut out = io::stdout().lock();
    loop {
        let m = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = consumer.recv() => m,
        };
        let m = match m {
            Ok(m) => {
                backoff = RETRY;
                m
            }
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(error = %e, retry_in = ?wait, "consumer error; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        let payload = m.payload().unwrap_or_default();
        let (id, line) = match describe(payload) {
            Ok(x) => x,
            Err(why) => {
                if let Some(held) = skipped.allow() {
                    tracing::warn!(
                        topic = m.topic(),
                        partition = m.partition(),
                        offset = m.offset(),
                        held_back = held,
                        "skipped a record: {why}"
                    );
                }
                continue;
            }
        };
        if !seen.first(&id) {
            continue;
        }
        let written = if opts.json {
            out.write_all(payload).and_then(|()| out.write_all(b"\n"))
        } else {
            writeln!(out, "{line}")
        };
        match written.and_then(|()| out.flush()) {
            Ok(()) => {}
            // `tail | head`: the reader is gone; that is not a failure.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(TailError::Output(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_table() {
        #[track_caller]
        fn check(cap: usize, ids: &[&str], expected: &[bool]) {
            let mut s = Seen::new(cap);
            let got: Vec<bool> = ids.iter().map(|i| s.first(i)).collect();
            assert_eq!(got, expected, "cap {cap}, {ids:?}");
        }
        check(
            3,
            &["a", "b", "a", "c", "b"],
            &[true, true, false, true, false],
        );
        // "a" was evicted by "d" (the 4th id with cap 3): seen again as new.
        check(
            3,
            &["a", "b", "c", "d", "a", "d"],
            &[true, true, true, true, true, false],
        );
        check(1, &["a", "a", "b", "a"], &[true, false, true, true]);
        check(0, &["a", "a"], &[true, false]);
    }

    #[test]
    fn describe_table() {
        #[track_caller]
        fn check(payload: &str, expected: Result<(&str, &str), &str>) {
            let got = describe(payload.as_bytes());
            match (got, expected) {
                (Ok((id, line)), Ok((want_id, want_line))) => {
                    assert_eq!((id.as_str(), line.as_str()), (want_id, want_line));
                }
                (Err(e), Err(want)) => assert!(e.contains(want), "{e}"),
                (got, want) => panic!("{payload}: got {got:?}, expected {want:?}"),
            }
        }
        let alert = r#"{"schema":"newswatch.alert.v1","alert_id":"3f1c","mode":"each",
            "rule":{"id":"ru-mfa","title":"Russian MFA","severity":"high","labels":{}},
            "event_time":"2026-07-12T09:00:00Z","suppressed":0,
            "event":{"id":"a1","title":"Lavrov\nwarns\u001b[2J","source":"tass.ru","url":null}}"#;
        check(
            alert,
            Ok((
                "alert 3f1c",
                "2026-07-12T09:00:00Z  high      ru-mfa  Lavrov warns [2J  tass.ru  -",
            )),
        );
        let spike = alert
            .replace(
                r#""mode":"each""#,
                r#""mode":"spike","count":12,"baseline":1.5"#,
            )
            .replace(r#""suppressed":0"#, r#""suppressed":2"#);
        check(
            &spike,
            Ok((
                "alert 3f1c",
                "2026-07-12T09:00:00Z  high      ru-mfa  Lavrov warns [2J  tass.ru  -  [spike: 12 vs 1.5 per window]  (+2 held back)",
            )),
        );
        let digest = r#"{"schema":"newswatch.digest.v1","digest_id":"9b2e",
            "rule":{"id":"ru-mfa","title":"Russian MFA","severity":"high","labels":{}},
            "period":{"start":"2026-07-12T09:00:00Z","end":"2026-07-12T10:00:00Z"},"count":7}"#;
        check(
            digest,
            Ok((
                "digest 9b2e",
                "2026-07-12T09:00:00Z  high      ru-mfa  digest 2026-07-12T09:00:00Z to 2026-07-12T10:00:00Z: 7 alerts  Russian MFA",
            )),
        );
        check("not json", Err("not JSON"));
        check(r#"{"id": 1}"#, Err("no schema field"));
        check(r#"{"schema": "x"}"#, Err("not one tail knows"));
        check(
            r#"{"schema": "newswatch.alert.v1"}"#,
            Err("without alert_id"),
        );
    }
}
