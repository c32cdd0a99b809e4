//! The optional Alertmanager output (SPEC §2 `[alertmanager]`).
//!
//! When `alertmanager.url` is set, every alert that Kafka has acknowledged is
//! also POSTed to Alertmanager's `/api/v2/alerts`, so its routing, grouping,
//! silences and receivers (Slack, mail, pagers) apply to news alerts.
//!
//! Kafka stays the system of record: **Alertmanager never holds back Kafka
//! alerts or offsets.** The pipeline hands each acknowledged alert to
//! [`Output::push`], which only appends to a bounded in-memory queue (full:
//! the oldest alert is dropped and counted) and wakes the sender task. The
//! sender takes up to [`MAX_BATCH`] alerts at a time, maps them
//! ([`to_postable`]) and POSTs them as one array. A failed POST is retried
//! with exponential backoff ([`RETRY`]) while its alerts are younger
//! than [`MAX_AGE`]; a 4xx answer is not retried (the same request would be
//! refused again). Every failure is counted
//! (`newswatch_publish_errors_total{kind="alertmanager_…"}`), every alert
//! ends up either sent or dropped with a reason, and error logs are
//! rate-limited. At shutdown the sender gets what is left of
//! `kafka.shutdown_timeout`, at most [`FLUSH_MAX`], to flush its queue.
//!
//! Mapping (see [`to_postable`]): labels `alertname` (rule id), `severity`,
//! the rule's labels (names made valid) and `alert_id`, which keeps two
//! news events of one rule from collapsing into one Alertmanager alert
//! (Alertmanager identifies alerts by their label set). News alerts are
//! events, not ongoing conditions, so each gets a finite `endsAt`
//! ([`ALERT_TTL`] after it is sent) and resolves by itself.
//!
//! A digest (SPEC §6) is sent as **one** Alertmanager alert
//! ([`digest_to_postable`]): the same labels with `digest_id` in place of
//! `alert_id`, a `summary` with its count and period, and the titles of its
//! first items; its items stay on Kafka.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::ratelimit::LogLimiter;
use crate::config::{AlertmanagerConfig, AlertmanagerEndpoint};
use crate::metrics::{AlertmanagerFailure, DropReason, Metrics, PublishError};
use newswatch_core::alert::{Alert, AlertRule};
use newswatch_core::state::digest::{self, Digest};

mod digests;
pub use digests::digest_to_postable;

/// Alerts waiting for Alertmanager, at most (about 1–2 KB each).
pub const QUEUE_CAP: usize = 10_000;
/// Bytes of alert payloads waiting for Alertmanager, at most: an alert may
/// be up to 64 KiB (SPEC §8), so the count alone would allow 640 MB.
pub const QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// Alerts per POST, at most. No linger: whatever queued up while the
/// previous POST was in flight goes in the next one.
pub const MAX_BATCH: usize = 100;
/// An alert not delivered this long after Kafka acknowledged it is dropped:
/// after a long outage, stale news should not page anyone, and Kafka has it.
pub const MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// `endsAt` is this long after the POST. Longer than Alertmanager's default
/// `group_wait` + `group_interval` (30 s + 5 m), so a notification always
/// goes out while the alert fires; short enough that later notifications of
/// the same group do not list stale news for long.
pub const ALERT_TTL: Duration = Duration::from_secs(15 * 60);
/// Retry delays of a failed POST: 250 ms doubling up to 10 s.
pub const RETRY: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
/// At shutdown, the flush gets at most this long (and never more than is
/// left of `kafka.shutdown_timeout`).
pub const FLUSH_MAX: Duration = Duration::from_secs(2);
/// Repeated error lines are logged at most this often (all are counted).
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Bytes of an error answer's body kept for the log line.
const BODY_IN_LOG: usize = 300;

// ------------------------------------------------------------------ errors

/// Why a POST to Alertmanager failed. The details are strings: the cause
/// chain rendered once, without the URL (which may carry credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertmanagerError {
    /// The HTTP client could not be built (TLS set-up); fatal at start-up.
    #[error("alertmanager: cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0:?} (alertmanager.timeout)")]
    Timeout(Duration),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("request failed: {0}")]
    Request(String),
}

impl AlertmanagerError {
    /// What it is counted as in `newswatch_publish_errors_total`.
    pub fn kind(&self) -> AlertmanagerFailure {
        match self {
            Self::Client(_) => AlertmanagerFailure::Client,
            Self::Connect(_) => AlertmanagerFailure::Connect,
            Self::Timeout(_) => AlertmanagerFailure::Timeout,
            Self::Status { .. } if self.retryable() => AlertmanagerFailure::ServerError,
            Self::Status { .. } => AlertmanagerFailure::Rejected,
            Self::Request(_) => AlertmanagerFailure::Request,
        }
    }

    /// Whether Alertmanager refused what was sent (400, 422, …) rather than
    /// who sent it or where (401, 403, 404, 405, 413 is size: also content):
    /// then a smaller batch may pass.
    pub fn content_refused(&self) -> bool {
        matches!(self, Self::Status { status, .. }
            if (400..=499).contains(status) && !matches!(status, 401 | 403 | 404 | 405 | 408 | 429))
    }

    /// Whether the same POST may succeed later. A 4xx (bad request, wrong
    /// path, auth) and a redirect (not followed: a POST would turn into a
    /// GET) will not, except 408 and 429, which ask to come back.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                !matches!(status, 300..=499) || matches!(status, 408 | 429)
            }
            Self::Client(_) => false,
            _ => true,
        }
    }
}

// ------------------------------------------------------------------ mapping (pure)

/// One element of the array Alertmanager's `POST /api/v2/alerts` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

/// Labels newswatch sets itself; a rule label of the same name is ignored,
/// since grouping (`alertname`) and identity (`alert_id`) depend on them.
const OWN_LABELS: [&str; 4] = ["alertname", "severity", "alert_id", "digest_id"];

/// A valid Prometheus/Alertmanager label name (`[a-zA-Z_][a-zA-Z0-9_]*`):
/// other characters become `_`, a leading digit gets a `_` before it.
/// `None` for an empty name.
pub fn label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

fn is_label_name(key: &str) -> bool {
    label_name(key).as_deref() == Some(key)
}

/// `generatorURL` must be a URI Alertmanager's API accepts, or it refuses the
/// whole POST: only http(s) URLs, re-serialized by the `url` crate (which
/// percent-encodes what needs it).
pub fn generator_url(event_url: Option<&str>) -> Option<String> {
    let u = url::Url::parse(event_url?.trim()).ok()?;
    (matches!(u.scheme(), "http" | "https") && u.host().is_some()).then(|| u.to_string())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

/// Map an alert (SPEC §8) to Alertmanager's form. `raised`: when Kafka
/// acknowledged it; `now`: when it is sent.
///
/// * `startsAt`: the event time (when the news was published), unless that
///   is missing or later than `raised` (a clock in the future), then `raised`.
///   A redelivered alert thus gets the same `startsAt`.
/// * `endsAt`: `now` + [`ALERT_TTL`] (an event resolves by itself).
/// * `generatorURL`: the event's URL when it is an http(s) URL.
pub fn to_postable(a: &Alert, raised: DateTime<Utc>, now: DateTime<Utc>) -> PostableAlert {
    let labels = labels_of(&a.rule, ("alert_id", &a.alert_id));

    let mut annotations = BTreeMap::new();
    let title = non_empty(a.event.title.as_deref()).unwrap_or(&a.rule.title);
    annotations.insert("title".to_owned(), title.to_owned());
    annotations.insert("rule_title".to_owned(), a.rule.title.clone());
    if let Some(s) = non_empty(Some(&a.snippet)) {
        annotations.insert("snippet".to_owned(), s.to_owned());
    }
    if let Some(u) = non_empty(a.event.url.as_deref()) {
        annotations.insert("url".to_owned(), u.to_owned());
    }
    if let Some(s) = non_empty(a.event.source.as_deref()) {
        annotations.insert("source".to_owned(), s.to_owned());
    }
    let event_id = match &a.event.id {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    annotations.insert("event_id".to_owned(), event_id);

    let mut p = postable(labels, annotations, a.event_time.as_deref(), raised, now);
    p.generator_url = generator_url(a.event.url.as_deref());
    p
}

/// An Alertmanager alert that started at `at` (RFC 3339; `raised` when
/// missing, unreadable or later) and ends [`ALERT_TTL`] after `now`.
fn postable(
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    at: Option<&str>,
    raised: DateTime<Utc>,
    now: DateTime<Utc>,
) -> PostableAlert {
    let at = at
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let starts = at.filter(|t| *t <= raised).unwrap_or(raised);
    let ends = now + chrono::Duration::from_std(ALERT_TTL).unwrap_or(chrono::Duration::zero());
    PostableAlert {
        labels,
        annotations,
        starts_at: rfc3339(starts),
        ends_at: rfc3339(ends.max(starts)),
        generator_url: None,
    }
}

/// The rule's labels (names made valid), `alertname`, `severity` and the
/// identity label `id` (an alert's or a digest's id).
fn labels_of(rule: &AlertRule, id: (&str, &str)) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    // Names that are already valid first, so that `team-a` (made `team_a`)
    // never replaces a rule's own `team_a`.
    for exact in [true, false] {
        for (k, v) in &rule.labels {
            if is_label_name(k) != exact {
                continue;
            }
            let Some(name) = label_name(k) else { continue };
            if !OWN_LABELS.contains(&name.as_str()) {
                labels.entry(name).or_insert_with(|| v.clone());
            }
        }
    }
    labels.insert("alertname".to_owned(), rule.id.clone());
    labels.insert("severity".to_owned(), rule.severity.clone());
    labels.insert(id.0.to_owned(), id.1.to_owned());
    labels
}

/// What the queue holds, parsed: an alert, or a digest (its payload starts
/// with the digest schema, the first field serialized).
enum Item {
    Alert(Box<Alert>),
    Digest(Box<Digest>),
}

impl Item {
    fn parse(payload: &[u8]) -> Result<Item, serde_json::Error> {
        let prefix = format!("{{\"schema\":\"{}\"", digest::SCHEMA);
        if payload.starts_with(prefix.as_bytes()) {
            serde_json::from_slice(payload).map(|d| Item::Digest(Box::new(d)))
        } else {
            serde_json::from_slice(payload).map(|a| Item::Alert(Box::new(a)))
        }
    }

    fn postable(&self, raised: DateTime<Utc>, now: DateTime<Utc>) -> PostableAlert {
        match self {
            Item::Alert(a) => to_postable(a, raised, now),
            Item::Digest(d) => digest_to_postable(d, raised, now),
        }
    }
}

// ------------------------------------------------------------------ the queue

/// What an item of a [`DropOldest`] weighs, in bytes.
trait Weighed {
    fn weight(&self) -> usize;
}

impl Weighed for usize {
    fn weight(&self) -> usize {
        *self
    }
}

/// A FIFO of at most `cap` items and `max_bytes` bytes that drops the
/// oldest to make room (one item heavier than `max_bytes` is still kept,
/// alone).
#[derive(Debug)]
struct DropOldest<T> {
    items: VecDeque<T>,
    cap: usize,
    max_bytes: usize,
    bytes: usize,
}

impl<T: Weighed> DropOldest<T> {
    fn new(cap: usize, max_bytes: usize) -> Self {
        DropOldest {
            items: VecDeque::new(),
            cap: cap.max(1),
            max_bytes,
            bytes: 0,
        }
    }

    /// Append; the number of oldest items dropped to make room.
    fn push(&mut self, item: T) -> usize {
        let w = item.weight();
        let mut dropped = 0;
        while !self.items.is_empty()
            && (self.items.len() >= self.cap || self.bytes + w > self.max_bytes)
        {
            if let Some(old) = self.items.pop_front() {
                self.bytes -= old.weight();
                dropped += 1;
            }
        }
        self.bytes += w;
        self.items.push_back(item);
        dropped
    }

    /// Remove and return up to `n` of the oldest items.
    fn take(&mut self, n: usize) -> Vec<T> {
        let n = n.min(self.items.len());
        let out: Vec<T> = self.items.drain(..n).collect();
        self.bytes -= out.iter().map(Weighed::weight).sum::<usize>();
        out
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

/// One alert handed over by the pipeline.
struct Queued {
    payload: Vec<u8>,
    raised: Instant,
    raised_at: DateTime<Utc>,
}

impl Weighed for Queued {
    fn weight(&self) -> usize {
        self.payload.len()
    }
}

/// One alert (or digest) parsed, on its way.
struct Pending {
    alert: Item,
    raised: Instant,
    raised_at: DateTime<Utc>,
}

struct QueueState {
    queue: DropOldest<Queued>,
    full_log: LogLimiter,
}

struct Inner {
    state: Mutex<QueueState>,
    wake: Notify,
    metrics: Arc<Metrics>,
}

impl Inner {
    /// The queue's state. A panic elsewhere while holding the lock cannot
    /// leave the queue inconsistent (each operation is one VecDeque call),
    /// so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pipeline's handle on the output; a no-op while the output is off.
#[derive(Clone, Default)]
pub struct Output {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.inner.is_some() {
            "alertmanager::Output(on)"
        } else {
            "alertmanager::Output(off)"
        })
    }
}

impl Output {
    /// Hand over an alert's payload (SPEC §8 JSON) that Kafka acknowledged.
    /// Never blocks and never fails: when the queue is full the oldest
    /// alert is dropped and counted.
    pub fn push(&self, payload: Vec<u8>) {
        let Some(inner) = &self.inner else { return };
        let (dropped, log) = {
            let mut st = inner.lock();
            let dropped = st.queue.push(Queued {
                payload,
                raised: Instant::now(),
                raised_at: Utc::now(),
            });
            (dropped, dropped > 0 && st.full_log.allow().is_some())
        };
        inner.wake.notify_one();
        if dropped > 0 {
            // Every drop is counted; the log line is rate-limited.
            inner
                .metrics
                .alertmanager_dropped(DropReason::QueueFull, dropped);
        }
        if log {
            tracing::warn!(
                capacity = QUEUE_CAP,
                capacity_bytes = QUEUE_BYTES,
                "alertmanager: queue full (Alertmanager too slow or down); dropping the oldest alerts"
            );
        }
    }
}

// ------------------------------------------------------------------ the sender

/// Start the output: `Output::default()` (off) when `alertmanager.url` is
/// empty, else the handle and the sender task. The task ends after `drained`
/// is cancelled (the pipeline has finished) and the queue is flushed, or the
/// flush time is up: [`FLUSH_MAX`], and never past `kafka.shutdown_timeout`
/// counted from the cancellation of `shutdown`.
pub fn start(
    cfg: &AlertmanagerConfig,
    shutdown_timeout: Duration,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    drained: CancellationToken,
) -> Result<(Output, Option<JoinHandle<()>>), AlertmanagerError> {
    let Some(endpoint) = cfg.endpoint.clone() else {
        return Ok((Output::default(), None));
    };
    let client = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout)
        // A redirected POST becomes a GET, which Alertmanager answers with
        // 200 and its alert list: it would look delivered. Refuse instead.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("newswatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AlertmanagerError::Client(chain(&e)))?;
    let inner = Arc::new(Inner {
        state: Mutex::new(QueueState {
            queue: DropOldest::new(QUEUE_CAP, QUEUE_BYTES),
            full_log: LogLimiter::new(LOG_EVERY),
        }),
        wake: Notify::new(),
        metrics: metrics.clone(),
    });
    tracing::info!(endpoint = %endpoint.redacted(), timeout = ?cfg.timeout, "alertmanager output on");
    let sender = Sender {
        inner: inner.clone(),
        client,
        endpoint,
        timeout: cfg.timeout,
        life: Lifecycle {
            shutdown,
            drained,
            shutdown_timeout,
            signalled_at: None,
            flush_by: None,
        },
        log: LogLimiter::new(LOG_EVERY),
        drop_log: LogLimiter::new(LOG_EVERY),
        failures_in_a_row: None,
    };
    let task = tokio::spawn(sender.run());
    Ok((Output { inner: Some(inner) }, Some(task)))
}

/// The shutdown signal and the end of the pipeline, as the sender sees them.
struct Lifecycle {
    shutdown: CancellationToken,
    drained: CancellationToken,
    shutdown_timeout: Duration,
    signalled_at: Option<Instant>,
    flush_by: Option<Instant>,
}

impl Lifecycle {
    /// Wait for the next change: the signal, the pipeline's end (which
    /// starts the flush), or the end of the flush time.
    async fn next(&mut self) {
        let flush_by = self.flush_by;
        tokio::select! {
            _ = self.shutdown.cancelled(), if self.signalled_at.is_none() => {
                self.signalled_at = Some(Instant::now());
            }
            _ = self.drained.cancelled(), if flush_by.is_none() => {
                let now = Instant::now();
                // What is left of kafka.shutdown_timeout since the signal
                // (a little kept for the exit itself), at most FLUSH_MAX.
                let left = self.signalled_at.map_or(FLUSH_MAX, |t| {
                    (t + self.shutdown_timeout.mul_f64(0.98)).saturating_duration_since(now)
                });
                self.flush_by = Some(now + left.min(FLUSH_MAX));
            }
            _ = tokio::time::sleep_until(flush_by.unwrap_or_else(Instant::now)), if flush_by.is_some() => {}
        }
    }

    fn flushing(&self) -> bool {
        self.flush_by.is_some()
    }

    fn out_of_time(&self) -> bool {
        self.flush_by.is_some_and(|t| Instant::now() >= t)
    }
}

/// An error and its causes, one line (reqwest's own message is generic;
/// the cause says "connection refused").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

enum Flow {
    Continue,
    /// Out of flush time; these alerts were not delivered.
    Stopped(usize),
}

/// How one batch went.
enum Delivery {
    /// Sent, or given up on (counted).
    Done,
    /// Refused for its content: try each half on its own.
    Split(Vec<Pending>),
    /// Out of flush time; these alerts were not delivered.
    Stopped(usize),
}

struct Sender {
    inner: Arc<Inner>,
    client: reqwest::Client,
    endpoint: AlertmanagerEndpoint,
    timeout: Duration,
    life: Lifecycle,
    /// For failed POSTs.
    log: LogLimiter,
    /// For alerts dropped as expired or unparsable.
    drop_log: LogLimiter,
    /// Failed attempts in a row, for the recovery log line.
    failures_in_a_row: Option<u64>,
}

impl Sender {
    async fn run(mut self) {
        loop {
            let batch = self.take();
            if batch.is_empty() {
                if self.life.flushing() {
                    break;
                }
                tokio::select! {
                    _ = self.life.next() => {}
                    _ = self.inner.wake.notified() => {}
                }
                continue;
            }
            if let Flow::Stopped(n) = self.deliver(batch).await {
                let left = n + self.inner.lock().queue.len();
                self.inner
                    .metrics
                    .alertmanager_dropped(DropReason::Shutdown, left);
                tracing::warn!(
                    alerts = left,
                    "alertmanager: shutdown flush time is up; undelivered alerts dropped (they are on Kafka)"
                );
                return;
            }
        }
        tracing::debug!("alertmanager output stopped");
    }

    /// Up to MAX_BATCH queued alerts, parsed; expired or unparsable ones
    /// are counted and left out.
    fn take(&mut self) -> Vec<Pending> {
        let raw = self.inner.lock().queue.take(MAX_BATCH);
        let mut out = Vec::with_capacity(raw.len());
        let mut invalid = 0;
        for q in raw {
            match Item::parse(&q.payload) {
                Ok(alert) => out.push(Pending {
                    alert,
                    raised: q.raised,
                    raised_at: q.raised_at,
                }),
                Err(e) => {
                    invalid += 1;
                    if self.drop_log.allow().is_some() {
                        tracing::error!("alertmanager: an alert payload does not parse (a bug: please report it): {e}");
                    }
                }
            }
        }
        self.inner
            .metrics
            .alertmanager_dropped(DropReason::Invalid, invalid);
        self.expire(&mut out);
        out
    }

    fn expire(&mut self, batch: &mut Vec<Pending>) {
        let before = batch.len();
        batch.retain(|p| p.raised.elapsed() < MAX_AGE);
        let expired = before - batch.len();
        if expired > 0 {
            self.inner
                .metrics
                .alertmanager_dropped(DropReason::Expired, expired);
            if let Some(held) = self.drop_log.allow() {
                tracing::warn!(
                    alerts = expired, held_back = held,
                    "alertmanager: alerts not delivered within {MAX_AGE:?} dropped (they are on Kafka)"
                );
            }
        }
    }

    /// POST the batch until it is delivered, refused, expired, or the
    /// flush time is up. A batch that Alertmanager refuses for its content
    /// (a 4xx other than auth, a missing endpoint or throttling) is split in
    /// halves until the alerts it refuses are found: one bad alert costs
    /// only itself, not the up to [`BATCH`] around it.
    async fn deliver(&mut self, batch: Vec<Pending>) -> Flow {
        let mut todo = vec![batch];
        while let Some(batch) = todo.pop() {
            match self.deliver_one(batch).await {
                Delivery::Done => {}
                Delivery::Stopped(n) => {
                    let rest: usize = todo.iter().map(Vec::len).sum();
                    return Flow::Stopped(n + rest);
                }
                Delivery::Split(mut batch) => {
                    let second = batch.split_off(batch.len() / 2);
                    // The first half is tried first: order is kept.
                    todo.push(second);
                    todo.push(batch);
                }
            }
        }
        Flow::Continue
    }

    /// One batch: retried while the failure may pass.
    async fn deliver_one(&mut self, mut batch: Vec<Pending>) -> Delivery {
        let mut backoff = RETRY;
        loop {
            self.expire(&mut batch);
            if batch.is_empty() {
                return Delivery::Done;
            }
            let now = Utc::now();
            let body: Vec<PostableAlert> = batch
                .iter()
                .map(|p| p.alert.postable(p.raised_at, now))
                .collect();
            let Some(result) = self.post(&body).await else {
                return Delivery::Stopped(batch.len());
            };
            let m = &self.inner.metrics;
            let e = match result {
                Ok(()) => {
                    m.alertmanager_sent(batch.len());
                    if let Some(n) = self.failures_in_a_row.take() {
                        tracing::info!("alertmanager: delivering again after {n} failed attempts");
                    }
                    return Delivery::Done;
                }
                Err(e) => e,
            };
            m.publish_failed(PublishError::Alertmanager(e.kind()));
            *self.failures_in_a_row.get_or_insert(0) += 1;
            if !e.retryable() {
                if batch.len() > 1 && e.content_refused() {
                    return Delivery::Split(batch);
                }
                m.alertmanager_dropped(DropReason::Rejected, batch.len());
                if let Some(held) = self.log.allow() {
                    tracing::error!(
                        endpoint = %self.endpoint.redacted(), alerts = batch.len(), held_back = held,
                        "alertmanager refused alerts, not retried (check alertmanager.url and the labels): {e}"
                    );
                }
                return Delivery::Done;
            }
            let delay = backoff.next();
            if let Some(held) = self.log.allow() {
                tracing::warn!(
                    endpoint = %self.endpoint.redacted(), alerts = batch.len(), held_back = held,
                    "alertmanager: POST failed, retrying in {delay:?}: {e}"
                );
            }
            if !self.sleep(delay).await {
                return Delivery::Stopped(batch.len());
            }
        }
    }

    /// One POST; `None` when the flush time ran out first.
    async fn post(&mut self, body: &[PostableAlert]) -> Option<Result<(), AlertmanagerError>> {
        let timeout = self.timeout;
        let req = self
            .client
            .post(self.endpoint.url().clone())
            .json(body)
            .send();
        let fut = async move {
            let resp = req.await.map_err(|e| classify(e, timeout))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let body = if status.is_redirection() {
                "a redirect, not followed: check alertmanager.url".to_owned()
            } else {
                let text = resp.text().await.unwrap_or_default();
                text.trim().chars().take(BODY_IN_LOG).collect()
            };
            Err(AlertmanagerError::Status {
                status: status.as_u16(),
                body,
            })
        };
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return Some(r),
                _ = self.life.next() => if self.life.out_of_time() { return None },
            }
        }
    }

    /// Sleep; false when the flush time ran out first.
    async fn sleep(&mut self, d: Duration) -> bool {
        let t = tokio::time::sleep(d);
        tokio::pin!(t);
        loop {
            tokio::select! {
                _ = &mut t => return true,
                _ = self.life.next() => if self.life.out_of_time() { return false },
            }
        }
    }
}

fn classify(e: reqwest::Error, timeout: Duration) -> AlertmanagerError {
    let e = e.without_url();
    if e.is_timeout() {
        AlertmanagerError::Timeout(timeout)
    } else if e.is_connect() {
        AlertmanagerError::Connect(chain(&e))
    } else {
        AlertmanagerError::Request(chain(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Label;
    use newswatch_core::alert::{AlertEvent, AlertRule};
    use serde_json::json;

    pub(super) fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    pub(super) fn alert(labels: &[(&str, &str)], title: Option<&str>, url: Option<&str>) -> Alert {
        Alert {
            schema: newswatch_core::alert::SCHEMA.into(),
            alert_id: "3f1c0000000000000000000000000001".into(),
            rule: AlertRule {
                id: "ru-mfa-statement".into(),
                title: "Statement from the Russian foreign ministry".into(),
                severity: "high".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            mode: "each".into(),
            group: BTreeMap::new(),
            event_time: Some("2026-07-12T09:00:00Z".into()),
            event: AlertEvent {
                id: json!("a17"),
                title: title.map(str::to_owned),
                source: Some("reuters.com".into()),
                url: url.map(str::to_owned),
                lang: Some("en".into()),
                published_at: Some("2026-07-12T09:00:00Z".into()),
            },
            matches: vec![],
            matches_omitted: 0,
            snippet: "…Sergey Lavrov on Saturday warned…".into(),
            story: None,
            count: None,
            sources: None,
            baseline: None,
            suppressed: 0,
        }
    }

    fn map(a: &Alert) -> PostableAlert {
        to_postable(a, t("2026-07-12T09:00:05Z"), t("2026-07-12T09:00:06.5Z"))
    }

    fn labels(p: &PostableAlert) -> Vec<(&str, &str)> {
        p.labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn labels_table() {
        let own = [
            ("alert_id", "3f1c0000000000000000000000000001"),
            ("alertname", "ru-mfa-statement"),
            ("severity", "high"),
        ];
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        // (rule labels, labels expected besides newswatch's own)
        let table: &[(Pairs, Pairs)] = &[
            (&[], &[]),
            (&[("desk", "asia")], &[("desk", "asia")]),
            // invalid names are made valid
            (&[("team-name", "x")], &[("team_name", "x")]),
            (&[("9lives", "x")], &[("_9lives", "x")]),
            (&[("région", "x")], &[("r_gion", "x")]),
            (&[("a.b", "x")], &[("a_b", "x")]),
            // an empty name is left out
            (&[("", "x")], &[]),
            // a valid name wins over one that becomes the same
            (
                &[("team-a", "made"), ("team_a", "own")],
                &[("team_a", "own")],
            ),
            // newswatch's own labels cannot be overridden
            (
                &[("severity", "low"), ("alertname", "x"), ("alert-id", "y")],
                &[],
            ),
        ];
        for (rule_labels, want) in table {
            let p = map(&alert(rule_labels, Some("T"), None));
            let mut want: Vec<(&str, &str)> = want.iter().chain(own.iter()).copied().collect();
            want.sort();
            assert_eq!(labels(&p), want, "rule labels {rule_labels:?}");
            for k in p.labels.keys() {
                assert!(is_label_name(k), "{k}");
            }
        }
    }

    #[test]
    fn annotations_table() {
        // (event title, event url) -> (title annotation, url annotation, generatorURL)
        type Row<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
        );
        let table: &[Row] = &[
            (
                Some("Lavrov warns"),
                Some("https://example.com/a?b=1"),
                "Lavrov warns",
                Some("https://example.com/a?b=1"),
                Some("https://example.com/a?b=1"),
            ),
            // no title: the rule's title
            (
                None,
                None,
                "Statement from the Russian foreign ministry",
                None,
                None,
            ),
            (
                Some("  "),
                Some(""),
                "Statement from the Russian foreign ministry",
                None,
                None,
            ),
            // not http(s): an annotation, but no generatorURL
            (
                Some("T"),
                Some("ftp://example.com/x"),
                "T",
                Some("ftp://example.com/x"),
                None,
            ),
            (Some("T"), Some("not a url"), "T", Some("not a url"), None),
            // made a valid URI: spaces and non-ASCII percent-encoded, IDN host punycoded
            (
                Some("T"),
                Some("http://пример.рф/новости дня?q=a b"),
                "T",
                Some("http://пример.рф/новости дня?q=a b"),
                Some("http://xn--e1afmkfd.xn--p1ai/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8%20%D0%B4%D0%BD%D1%8F?q=a%20b"),
            ),
        ];
        for (title, url, want_title, want_url, want_gen) in table {
            let p = map(&alert(&[], *title, *url));
            assert_eq!(p.annotations["title"], *want_title, "{title:?}");
            assert_eq!(p.annotations.get("url").map(String::as_str), *want_url);
            assert_eq!(p.generator_url.as_deref(), *want_gen, "{url:?}");
            assert_eq!(
                p.annotations["rule_title"],
                "Statement from the Russian foreign ministry"
            );
            assert_eq!(
                p.annotations["snippet"],
                "…Sergey Lavrov on Saturday warned…"
            );
            assert_eq!(p.annotations["source"], "reuters.com");
            assert_eq!(p.annotations["event_id"], "a17");
            for k in p.annotations.keys() {
                assert!(is_label_name(k), "{k}");
            }
        }
        let mut a = alert(&[], None, None);
        a.event.id = json!(42);
        a.snippet = String::new();
        a.event.source = None;
        let p = map(&a);
        assert_eq!(p.annotations["event_id"], "42");
        assert!(!p.annotations.contains_key("snippet"));
        assert!(!p.annotations.contains_key("source"));
    }

    #[test]
    fn times_table() {
        let raised = "2026-07-12T09:00:05Z";
        let now = "2026-07-12T09:00:06.5Z";
        // (event_time) -> startsAt; endsAt is always now + 15m
        let table: &[(Option<&str>, &str)] = &[
            (Some("2026-07-12T09:00:00Z"), "2026-07-12T09:00:00.000Z"),
            (
                Some("2026-07-10T09:00:00+03:00"),
                "2026-07-10T06:00:00.000Z",
            ),
            // in the future (a wrong clock): when it was raised
            (Some("2026-07-12T10:00:00Z"), "2026-07-12T09:00:05.000Z"),
            (None, "2026-07-12T09:00:05.000Z"),
            (Some("garbage"), "2026-07-12T09:00:05.000Z"),
        ];
        for (event_time, want) in table {
            let mut a = alert(&[], None, None);
            a.event_time = event_time.map(str::to_owned);
            let p = to_postable(&a, t(raised), t(now));
            assert_eq!(p.starts_at, *want, "{event_time:?}");
            assert_eq!(p.ends_at, "2026-07-12T09:15:06.500Z");
        }
    }

    #[test]
    fn json_shape() {
        let p = map(&alert(&[("desk", "asia")], Some("T"), None));
        let j = serde_json::to_value([&p]).unwrap();
        let o = j[0].as_object().unwrap();
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["annotations", "endsAt", "labels", "startsAt"]);
        let p = map(&alert(&[], Some("T"), Some("http://e.com/x")));
        assert_eq!(
            serde_json::to_value(&p).unwrap()["generatorURL"],
            "http://e.com/x"
        );
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let want = [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000];
        for (attempt, ms) in want.iter().enumerate() {
            assert_eq!(RETRY.delay(attempt as u32), Duration::from_millis(*ms));
        }
        // Give-up is by age: at least a dozen attempts before MAX_AGE.
        let total: Duration = (0..12).map(|n| RETRY.delay(n)).sum();
        assert!(total < MAX_AGE, "{total:?}");
    }

    #[test]
    fn errors_table() {
        use AlertmanagerError as E;
        let status = |s: u16| E::Status {
            status: s,
            body: String::new(),
        };
        let table = [
            (E::Connect("refused".into()), "alertmanager_connect", true),
            (
                E::Timeout(Duration::from_secs(5)),
                "alertmanager_timeout",
                true,
            ),
            (E::Request("reset".into()), "alertmanager_request", true),
            (status(500), "alertmanager_server_error", true),
            (status(503), "alertmanager_server_error", true),
            (status(429), "alertmanager_server_error", true),
            (status(408), "alertmanager_server_error", true),
            (status(400), "alertmanager_rejected", false),
            (status(422), "alertmanager_rejected", false),
            (status(404), "alertmanager_rejected", false),
            (status(401), "alertmanager_rejected", false),
            (status(301), "alertmanager_rejected", false),
            (E::Client("tls".into()), "alertmanager_client", false),
        ];
        for (e, kind, retry) in table {
            assert_eq!(e.kind().as_str(), kind, "{e}");
            assert_eq!(e.retryable(), retry, "{e}");
        }
        // Refusals of the content split a batch; of the sender or the
        // endpoint they do not (no half would pass either).
        for (s, split) in [
            (400, true),
            (413, true),
            (422, true),
            (401, false),
            (403, false),
            (404, false),
            (405, false),
            (429, false),
            (500, false),
            (301, false),
        ] {
            assert_eq!(status(s).content_refused(), split, "{s}");
        }
        assert!(!E::Connect("refused".into()).content_refused());
    }

    #[test]
    fn queue_drops_the_oldest() {
        let mut q = DropOldest::new(3, 1_000);
        let dropped: Vec<usize> = (0..5).map(|i| q.push(i)).collect();
        assert_eq!(dropped, [0, 0, 0, 1, 1]);
        assert_eq!(q.len(), 3);
        assert_eq!(q.take(2), [2, 3]);
        assert_eq!(q.take(10), [4]);
        assert!(q.take(10).is_empty());
        // By bytes (an item weighs its value here): 400 + 500 fit in 1,000;
        // 300 more drops the 400; 2,000 alone drops everything but stays.
        let mut q = DropOldest::new(100, 1_000);
        let dropped: Vec<usize> = [400, 500, 300, 2_000, 10]
            .into_iter()
            .map(|w| q.push(w))
            .collect();
        assert_eq!(dropped, [0, 0, 1, 2, 1]);
        assert_eq!(q.take(10), [10]);
        assert_eq!(q.bytes, 0);
    }

    #[test]
    fn output_off_is_a_no_op_and_on_counts_drops() {
        Output::default().push(b"{}".to_vec());
        let metrics = Arc::new(Metrics::new());
        let inner = Arc::new(Inner {
            state: Mutex::new(QueueState {
                queue: DropOldest::new(2, QUEUE_BYTES),
                full_log: LogLimiter::new(LOG_EVERY),
            }),
            wake: Notify::new(),
            metrics: metrics.clone(),
        });
        let out = Output {
            inner: Some(inner.clone()),
        };
        for _ in 0..5 {
            out.push(b"{}".to_vec());
        }
        assert_eq!(inner.lock().queue.len(), 2);
        assert!(metrics
            .render()
            .contains("newswatch_alertmanager_alerts_dropped_total{reason=\"queue_full\"} 3"));
    }
}
