//! Delivery guarantees of `newswatch run` against a real broker (Tansu), with
//! the binary as a child process: at-least-once across SIGKILL, a broker
//! outage (readiness, no loss), graceful shutdown (exit 0, offsets committed,
//! a second signal exits at once), hot reload (file watch, SIGHUP), and
//! bounded memory under a backlog (SPEC §9–§11).
//!
//! Every input event matches exactly one rule, so the expected `alert_id`s
//! are known in advance (`alert::alert_id`); the tests read them back from
//! the alert topic's `newswatch-alert-id` header.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use newswatch_testkit::*;
use newswatch_testkit_kafka::*;

use crate::util::BIN;

const WORDS: [&str; 3] = ["zebra", "walrus", "pelican"];
const PARTITIONS: i32 = 3;

const RULES3: &str = r#"
rules:
  - id: zebra
    title: Zebra sighted
    query: zebra
  - id: walrus
    title: Walrus sighted
    severity: high
    query: walrus
  - id: pelican
    title: Pelican sighted
    severity: low
    query: pelican
"#;

/// The rule event `i` matches (exactly one).
fn rule_of(i: usize) -> &'static str {
    WORDS[(i / PARTITIONS as usize) % WORDS.len()]
}

fn event(i: usize, padding: usize) -> Vec<u8> {
    serde_json::json!({
        "id": format!("ev-{i}"),
        "title": format!("Report {i}"),
        "body": format!("Observers saw a {} near checkpoint {i}. {}", rule_of(i), "x".repeat(padding)),
        "source": "test",
        "lang": "en",
        "published_at": "2026-07-12T09:00:00Z",
    })
    .to_string()
    .into_bytes()
}

fn expected_id(i: usize) -> String {
    newswatch_core::alert::alert_id(rule_of(i), &BTreeMap::new(), &format!("ev-{i}"))
}

fn fixture(rules: &str, consumer_properties: &[(&str, &str)], extra: &str) -> Fixture {
    Fixture::new(rules, PARTITIONS as u32, consumer_properties, extra)
}

trait Produce {
    fn produce(&self, range: std::ops::Range<usize>, padding: usize);
}

impl Produce for Fixture {
    fn produce(&self, range: std::ops::Range<usize>, padding: usize) {
        let p = Producer::new(&self.broker.addr());
        for i in range {
            let key = format!("k{i}");
            p.send(
                &self.input,
                Some((i % PARTITIONS as usize) as i32),
                Some(key.as_bytes()),
                &event(i, padding),
            );
        }
        p.flush();
    }
}

/// Missing expected ids, and the number of extra copies (duplicates).
fn tally(tail: &Tail, expected: &HashSet<String>) -> (usize, usize) {
    let counts = tail.alert_counts();
    let missing = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .count();
    let unexpected: Vec<_> = counts.keys().filter(|k| !expected.contains(*k)).collect();
    assert!(
        unexpected.is_empty(),
        "unexpected alert ids: {unexpected:?}"
    );
    let dups = counts.values().map(|&n| n - 1).sum();
    (missing, dups)
}

fn distinct_seen(tail: &Tail) -> usize {
    tail.alert_counts().len()
}

fn expected_set(range: std::ops::Range<usize>) -> HashSet<String> {
    range.map(expected_id).collect()
}

/// Alerts the daemon has seen acknowledged, over all rules (its metrics).
fn published(d: &DaemonProc) -> f64 {
    metrics::sum(&d.get("/metrics").1, "newswatch_alerts_published_total")
}

// ------------------------------------------------------------------ 1

/// SIGKILL mid-stream, three times, while events keep arriving; the second
/// and third kills hit the daemon while it catches up on the backlog that
/// built up while it was down (many events in flight). After each restart
/// nothing is lost. Duplicates are allowed (at-least-once) and printed.
#[test]
fn at_least_once_across_sigkill() {
    let fx = fixture(RULES3, FAST_SESSION, "");
    let n = 3000;
    let expected = expected_set(0..n);
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));

    // The stream: 30 events at a time, in the background. The last `held_back`
    // events wait for the last kill, so that every kill is mid-stream.
    let kills = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held_back = 500;
    let producing = {
        let (brokers, input) = (fx.broker.addr(), fx.input.clone());
        let kills = kills.clone();
        std::thread::spawn(move || {
            let p = Producer::new(&brokers);
            for chunk in (0..n).collect::<Vec<_>>().chunks(30) {
                if chunk[0] >= n - held_back {
                    while kills.load(std::sync::atomic::Ordering::SeqCst) < 3 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                for &i in chunk {
                    let key = format!("k{i}");
                    p.send(
                        &input,
                        Some((i % PARTITIONS as usize) as i32),
                        Some(key.as_bytes()),
                        &event(i, 0),
                    );
                }
                p.flush();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let mut report = Vec::new();
    let mut threshold = n / 10;
    for k in 0..3 {
        assert!(
            tail.wait(Duration::from_secs(90), |r| {
                r.iter()
                    .filter_map(|x| x.headers.get("newswatch-alert-id"))
                    .collect::<HashSet<_>>()
                    .len()
                    >= threshold
            }),
            "kill {k}: fewer than {threshold} alerts (saw {})",
            distinct_seen(&tail)
        );
        daemon.kill();
        kills.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let t = Instant::now();
        let at_kill = distinct_seen(&tail);
        assert!(at_kill < n, "the stream was over before kill {k}");
        let (_, dups_before) = tally(&tail, &expected);
        daemon = fx.spawn(BIN);
        daemon.wait_ready(Duration::from_secs(60));
        report.push((k, at_kill, dups_before, t.elapsed()));
        // The next kill: a little into the backlog of the downtime.
        threshold = (at_kill + 100).min(n - held_back);
    }
    producing.join().unwrap();
    let t = Instant::now();
    let complete = tail.wait_alert_ids(&expected, Duration::from_secs(120));
    // Let stragglers (re-sent duplicates) arrive before counting them.
    tail.poll(Duration::from_secs(1));
    let (missing, dups) = tally(&tail, &expected);
    // Duplicates seen between kill k and kill k+1 were caused by kill k.
    let mut after: Vec<usize> = report.iter().skip(1).map(|r| r.2).collect();
    after.push(dups);
    for ((k, at_kill, dups_before, ready), next) in report.iter().zip(&after) {
        eprintln!(
            "SIGKILL #{}: {at_kill}/{n} distinct alerts out at the kill; it caused {} duplicates; \
             ready again after {ready:?}",
            k + 1,
            next - dups_before,
        );
    }
    eprintln!(
        "at-least-once: {n} events, {} alert records, {missing} missing, {dups} duplicates in total; \
         complete {:?} after the stream ended",
        tail.records.len(),
        t.elapsed()
    );
    assert!(complete && missing == 0, "{missing} of {n} alerts missing");
    daemon.terminate(Duration::from_secs(30));
}

// ------------------------------------------------------------------ 2

/// Static membership (`group.instance.id`): an instance killed with
/// SIGKILL and started again with the same id takes its partitions back at
/// once, in both stages, instead of waiting for the dead member's session
/// to expire. The session here is 4 minutes and the deadline 2: without
/// static membership the restarted instance waits out the session and the
/// test fails.
#[test]
fn static_member_rejoins_after_sigkill_without_waiting_for_its_session() {
    let session = [
        ("group.instance.id", "nw-static-1"),
        ("session.timeout.ms", "240000"),
    ];
    let fx = fixture(RULES3, &session, "");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(120));
    fx.produce(0..6, 0);
    assert!(
        tail.wait_alert_ids(&expected_set(0..6), Duration::from_secs(120)),
        "first run: {:?}\n{}",
        tally(&tail, &expected_set(0..6)),
        daemon.log()
    );
    daemon.kill();
    let mut daemon = fx.spawn(BIN);
    fx.produce(6..12, 0);
    let deadline = Duration::from_secs(120);
    let all = expected_set(0..12);
    assert!(
        tail.wait_alert_ids(&all, deadline),
        "after the restart, within {deadline:?} (the session is 240 s): missing {:?}\n{}",
        tally(&tail, &all),
        daemon.log()
    );
    daemon.wait_ready(Duration::from_secs(30));
    daemon.terminate(Duration::from_secs(30));
}

/// The broker dies mid-stream (5 s): `/readyz` turns 503 with a reason,
/// `/healthz` stays 200, the process keeps running; after the broker
/// restarts (same storage) every alert arrives. librdkafka's default session
/// timeout (45 s) outlasts the outage: the consumer keeps its partitions.
#[test]
fn broker_outage_loses_nothing() {
    outage("short outage", &[], Duration::from_secs(5));
}

/// The same with an outage (10 s) longer than the session timeout (6 s):
/// the consumer loses its partitions and rejoins after the restart; events
/// in flight are redelivered (duplicates, no loss), and `/readyz` is 200
/// only once the partitions are assigned again.
#[test]
fn broker_outage_longer_than_session_timeout_loses_nothing() {
    outage(
        "outage > session timeout",
        FAST_SESSION,
        Duration::from_secs(10),
    );
}

fn outage(label: &str, consumer_properties: &[(&str, &str)], down_for: Duration) {
    let mut fx = fixture(RULES3, consumer_properties, "");
    let n = 2000;
    let expected = expected_set(0..n);
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));
    // Stop the broker as soon as the daemon has started on the first half:
    // events are in flight (consumed, alerts not all acknowledged).
    fx.produce(0..n / 2, 0);
    let t = Instant::now();
    let consumed = format!("newswatch_events_consumed_total{{topic=\"{}\"}}", fx.input);
    while daemon.metric(&consumed).unwrap_or(0.0) < 1.0 {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "nothing consumed before the outage"
        );
    }
    fx.broker.stop();
    let at_stop = published(&daemon) + 0.0;
    let t = Instant::now();
    let mut last = (0, String::new());
    let down = wait_for(Duration::from_secs(60), || {
        last = daemon.get("/readyz");
        last.0 == 503
    });
    let to_503 = t.elapsed();
    assert!(
        down,
        "readyz still {last:?} {to_503:?} after the broker stopped"
    );
    assert!(last.1.contains("unreachable"), "readyz reason: {last:?}");
    // Stay down a while: the daemon keeps running and stays healthy.
    let until = Instant::now() + down_for;
    while Instant::now() < until {
        assert!(daemon.alive(), "daemon exited during the outage");
        assert_eq!(daemon.get("/healthz").0, 200, "healthz during the outage");
        assert_eq!(daemon.get("/readyz").0, 503, "readyz during the outage");
        std::thread::sleep(Duration::from_millis(250));
    }

    fx.broker.restart();
    let t = Instant::now();
    daemon.wait_ready(Duration::from_secs(90));
    let to_ready = t.elapsed();
    // Ready means assigned: not while the partitions are revoked.
    let log = daemon.log();
    // (Stage one's lines; stage two logs "state partitions …".)
    let revoked = log.rfind("daemon::kafka: partitions revoked");
    if let Some(r) = revoked {
        assert!(
            log.rfind("daemon::kafka: partitions assigned")
                .is_some_and(|a| a > r),
            "/readyz 200 while the partitions are revoked"
        );
    }
    fx.produce(n / 2..n, 0);
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let complete = tail.wait_alert_ids(&expected, Duration::from_secs(120));
    let all_in = t.elapsed();
    tail.poll(Duration::from_secs(1));
    let (missing, dups) = tally(&tail, &expected);
    eprintln!(
        "broker outage ({label}): stopped with {at_stop}/{} alerts acknowledged; readyz 503 after {to_503:?}; \
         partitions revoked: {}; ready again {to_ready:?} after the broker restart; \
         all {n} alerts {all_in:?} after it; {missing} missing, {dups} duplicates",
        n / 2,
        revoked.is_some()
    );
    assert!(complete && missing == 0, "{missing} of {n} alerts missing");
    assert!(daemon.alive());
    daemon.terminate(Duration::from_secs(30));
}

// ------------------------------------------------------------------ 3

/// SIGTERM mid-stream: exit 0 within `shutdown_timeout` (10s in the test
/// config), offsets committed, so a restart re-publishes nothing. A second
/// SIGTERM during a (stuck) drain exits at once, non-zero.
#[test]
fn graceful_shutdown_commits_and_second_signal_exits_at_once() {
    let fx = fixture(RULES3, FAST_SESSION, "");
    let n = 2000;
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));
    fx.produce(0..n, 0);
    assert!(
        tail.wait(Duration::from_secs(90), |r| r.len() >= n / 4),
        "too few alerts before SIGTERM"
    );
    let t = Instant::now();
    daemon.signal("TERM");
    let st = daemon.wait_exit(Duration::from_secs(30));
    let took = t.elapsed();
    tail.poll(Duration::from_millis(500));
    let at_term = distinct_seen(&tail);
    assert!(
        st.is_some_and(|s| s.code() == Some(0)),
        "exit status after SIGTERM: {st:?}"
    );
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");

    // Restart with the same group; one marker per partition. Alerts of a
    // partition are published in order, so once every marker's alert is
    // out, any re-published old event would be out too.
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));
    fx.produce(n..n + PARTITIONS as usize, 0);
    let expected = expected_set(0..n + PARTITIONS as usize);
    let complete = tail.wait_alert_ids(&expected, Duration::from_secs(120));
    tail.poll(Duration::from_secs(1));
    let (missing, dups) = tally(&tail, &expected);
    eprintln!(
        "graceful shutdown: SIGTERM with {at_term}/{n} alerts out, exit 0 after {took:?}; \
         after the restart {missing} missing, {dups} duplicates"
    );
    assert!(complete && missing == 0, "{missing} alerts missing");
    assert_eq!(dups, 0, "a clean shutdown committed its offsets");

    // Second signal: freeze the broker so the drain cannot finish (alerts
    // in flight are never acknowledged, the final commit never answered).
    fx.produce(n + PARTITIONS as usize..2 * n, 0);
    assert!(
        tail.wait(Duration::from_secs(90), |r| r.len() >= n + 100),
        "no alerts of the second batch"
    );
    fx.broker.pause();
    daemon.signal("TERM");
    let mut last = (0, String::new());
    let draining = wait_for(Duration::from_secs(10), || {
        last = daemon.get("/readyz");
        last.1.contains("shutting down")
    });
    let still_alive = daemon.alive();
    let t = Instant::now();
    daemon.signal("TERM");
    let st = daemon.wait_exit(Duration::from_secs(5));
    let took2 = t.elapsed();
    fx.broker.resume();
    eprintln!("second SIGTERM: draining={draining} ({last:?}), exit {st:?} after {took2:?}");
    assert!(
        draining && still_alive,
        "not draining after the first SIGTERM: {last:?}"
    );
    let st = st.expect("no exit within 5s of the second SIGTERM");
    assert!(!st.success(), "second signal exit status {st:?}");
    assert!(
        took2 < Duration::from_secs(2),
        "second signal took {took2:?}"
    );
}

/// SIGTERM while the broker is frozen (connections open, nothing answers)
/// with events in flight: their alerts are never acknowledged and the final
/// commit never answered, yet the daemon exits 0 within `shutdown_timeout`
/// (10 s). After the broker thaws, a restart delivers every alert.
#[test]
fn shutdown_with_unresponsive_broker_exits_within_timeout() {
    let mut fx = fixture(RULES3, FAST_SESSION, "");
    let n = 2000;
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));
    fx.produce(0..n, 0);
    let consumed = format!("newswatch_events_consumed_total{{topic=\"{}\"}}", fx.input);
    let t = Instant::now();
    while daemon.metric(&consumed).unwrap_or(0.0) < 1.0 {
        assert!(t.elapsed() < Duration::from_secs(90), "nothing consumed");
    }
    fx.broker.pause();
    let at_pause = published(&daemon);
    let t = Instant::now();
    daemon.signal("TERM");
    let st = daemon.wait_exit(Duration::from_secs(60));
    let took = t.elapsed();
    eprintln!(
        "frozen broker: SIGTERM with {at_pause}/{n} alerts acknowledged; exit {st:?} after {took:?}"
    );
    assert!(
        st.is_some_and(|s| s.code() == Some(0)),
        "exit status {st:?} after {took:?}"
    );
    // 10 s, plus scheduling slack on a busy machine.
    assert!(took < Duration::from_secs(11), "shutdown took {took:?}");

    // Tansu keeps the dead instance in the group when it comes back from
    // SIGSTOP (its JoinGroup, queued while frozen, is served after the
    // process died, and the member never expires): a new instance of the
    // group then never gets partitions. A broker restart clears that.
    fx.broker.stop();
    fx.broker.restart();
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));
    let expected = expected_set(0..n);
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let complete = tail.wait_alert_ids(&expected, Duration::from_secs(120));
    tail.poll(Duration::from_secs(1));
    let (missing, dups) = tally(&tail, &expected);
    eprintln!("frozen broker: after the restart {missing} missing, {dups} duplicates");
    assert!(complete && missing == 0, "{missing} of {n} alerts missing");
    daemon.terminate(Duration::from_secs(30));
}

// ------------------------------------------------------------------ 4

fn reloads(d: &DaemonProc, result: &str) -> f64 {
    d.metric(&format!(
        "newswatch_rules_reloads_total{{result=\"{result}\"}}"
    ))
    .unwrap_or(-1.0)
}

fn rules_json(d: &DaemonProc) -> serde_json::Value {
    serde_json::from_str(&d.get("/rules").1).unwrap()
}

fn rule_ids(d: &DaemonProc) -> Vec<String> {
    rules_json(d)["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `rules.watch = true`: SIGHUP reloads; editing the rule file swaps the
/// rules (a new rule fires); an invalid edit keeps the old rules in force
/// and counts a failure.
#[test]
fn hot_reload_by_file_watch_and_sighup() {
    let one = "rules:\n  - id: zebra\n    title: Zebra\n    query: zebra\n";
    let fx = fixture(one, &[], "");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));
    assert_eq!(rule_ids(&daemon), ["zebra"]);
    let loaded_at = rules_json(&daemon)["loaded_at"].clone();

    // SIGHUP, before any file is touched: the only possible reload source.
    assert_eq!(reloads(&daemon, "success"), 0.0);
    daemon.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(30), || reloads(&daemon, "success")
            >= 1.0),
        "SIGHUP did not reload"
    );
    assert!(daemon.alive());
    assert_ne!(rules_json(&daemon)["loaded_at"], loaded_at);

    // Event 3 matches walrus (not yet a rule), then event 0 zebra, both on
    // partition 0: once zebra's alert is out, event 3 has been matched.
    fx.produce(3..4, 0);
    fx.produce(0..1, 0);
    assert!(tail.wait_alert_ids(&HashSet::from([expected_id(0)]), Duration::from_secs(60)));

    // A valid edit adds walrus.
    std::fs::write(&fx.rules, RULES3).unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || rule_ids(&daemon).len() == 3),
        "file change not picked up: {:?}",
        rule_ids(&daemon)
    );
    let version = rules_json(&daemon)["version"].clone();
    // Events 3..6 match walrus.
    fx.produce(4..5, 0);
    assert!(
        tail.wait_alert_ids(&HashSet::from([expected_id(4)]), Duration::from_secs(60)),
        "the new rule did not fire"
    );

    // An invalid edit: the old rules stay, a failure is counted.
    let failures = reloads(&daemon, "failure");
    std::fs::write(
        &fx.rules,
        "rules:\n  - id: broken\n    title: x\n    query: 'a NEAR/0 b'\n",
    )
    .unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || reloads(&daemon, "failure")
            > failures),
        "invalid edit not counted as a failed reload"
    );
    assert_eq!(rules_json(&daemon)["version"], version);
    assert_eq!(rule_ids(&daemon).len(), 3);
    fx.produce(5..6, 0);
    assert!(
        tail.wait_alert_ids(&HashSet::from([expected_id(5)]), Duration::from_secs(60)),
        "the old rules are no longer in force"
    );
    // The walrus event produced before the edit did not alert.
    let counts = tail.alert_counts();
    assert!(!counts.contains_key(&expected_id(3)));
    assert!(counts.contains_key(&expected_id(0)));
    // The daemon's log file sits next to the rule file, in the watched
    // directory: its writes must not set off reloads (a reload logs a line,
    // which would set off the next one).
    let ok = reloads(&daemon, "success");
    let failed = reloads(&daemon, "failure");
    assert!(
        ok <= 3.0 && failed <= 2.0,
        "reloads without a rule change: {ok} succeeded, {failed} failed"
    );
    assert!(daemon.alive());
    assert_eq!(daemon.get("/readyz").0, 200);
}

// ------------------------------------------------------------------ 5

/// A backlog of 20,000 events (about 4 KB each, 80 MB in all) waiting
/// before the daemon starts: its resident set stays bounded while it works
/// through it (every input offset committed, which happens only after the
/// event's alerts are acknowledged).
#[test]
fn bounded_memory_under_backlog() {
    let fx = fixture(RULES3, &[], "");
    let n = 20_000;
    let t = Instant::now();
    fx.produce(0..n, 4000);
    let produced = t.elapsed();
    let end: i64 = end_offsets(&fx.broker.addr(), &fx.input, PARTITIONS as u32)
        .unwrap_or_else(|e| panic!("end offsets: {e}"))
        .iter()
        .sum();
    assert_eq!(end, n as i64);
    let committed = || {
        committed_offsets(&fx.broker.addr(), &fx.group, &fx.input, PARTITIONS as u32)
            .map_or(0, |o| o.iter().map(|&x| x.max(0)).sum::<i64>())
    };
    let daemon = fx.spawn(BIN);
    let t = Instant::now();
    let mut max_rss = 0u64;
    let mut samples = 0;
    let mut done = 0;
    // Deadlines, not a speed target: the backlog must keep moving (a new
    // commit within every STALL) and be done within MAX. On a busy 2-core
    // machine (CI, a CPU hog per core, other builds) it has taken from
    // 150 s to over 480 s, with the broker so slow that the group's session
    // timed out (redelivered events then publish duplicates, which
    // at-least-once allows). The loop ends as soon as all is committed.
    const STALL: Duration = Duration::from_secs(120);
    const MAX: Duration = Duration::from_secs(1500);
    let mut moved = Instant::now();
    let mut polled = Instant::now();
    while t.elapsed() < MAX && moved.elapsed() < STALL {
        if let Some(rss) = daemon.rss_bytes() {
            max_rss = max_rss.max(rss);
            samples += 1;
        }
        if polled.elapsed() >= Duration::from_secs(1) {
            polled = Instant::now();
            let now = committed();
            if now > done {
                done = now;
                moved = Instant::now();
            }
            if done >= end {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = t.elapsed();
    let alerts = published(&daemon);
    eprintln!(
        "backlog: {n} events produced in {produced:?}; daemon committed {done} offsets and \
         published {alerts} alerts in {took:?}; max RSS {:.1} MB over {samples} samples",
        max_rss as f64 / 1e6
    );
    assert_eq!(
        done, end,
        "not all events committed: stalled for {STALL:?}, or over {MAX:?}"
    );
    assert!(alerts >= n as f64, "{alerts} alerts for {n} events");
    assert!(max_rss > 0, "no RSS sample");
    assert!(
        max_rss < 200_000_000,
        "RSS reached {:.1} MB",
        max_rss as f64 / 1e6
    );
}
