//! Records the broker refuses for good never stall the daemon (SPEC §9),
//! against a real broker (Tansu):
//!
//! * a poison alert (larger than the producer's `message.max.bytes`, set
//!   small here, as Tansu enforces no topic size limit) goes to the
//!   dead-letter topic as `undeliverable`, and every later event of its
//!   partition still alerts, its offset committed past it;
//! * the same with the dead-letter topic off: counted, later events alert;
//! * when the dead-letter topic refuses too (missing: Tansu refuses
//!   producing to it), the partition pauses and `/readyz` names the topic,
//!   and it resumes by itself once the topic is created;
//! * SIGTERM while a record that must be delivered is refused (a dead
//!   letter too large for the producer), and SIGTERM while enqueueing waits
//!   on a full producer queue inside a turn of the loop, exit 0 within
//!   `shutdown_timeout`.
//!
//! Measured on the code before these checks: the poison alert was retried
//! forever, 24 of the 49 other events (those behind it) never alerted, and
//! SIGTERM did not end the process within 30 s, nor with a full queue.
//!
//! All events go to one partition, so a stall would hold every later one.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use newswatch_testkit::*;
use newswatch_testkit_kafka::*;

use crate::util::BIN;

const RULES: &str = r#"
rules:
  - id: zebra
    title: Zebra sighted
    query: zebra
"#;

/// Events per test; the poison one is in the middle.
const N: usize = 50;
const POISON: usize = 25;
/// The producer's `message.max.bytes` in these tests: an ordinary alert
/// (under 1 KB) fits, the poison one (hundreds of matches, a long title)
/// does not, and its dead letter is cut to half of it.
const PRODUCER_MAX: usize = 4000;

/// Producer properties: the small limit, and a missing topic known as such
/// after 1 s and seen again 1 s after it is created (librdkafka: 30 s and
/// 5 min).
fn extra() -> String {
    format!(
        "[kafka.producer_properties]\n\"message.max.bytes\" = \"{PRODUCER_MAX}\"\n\
         \"topic.metadata.propagation.max.ms\" = \"1000\"\n\
         \"topic.metadata.refresh.interval.ms\" = \"1000\"\n"
    )
}

fn event(i: usize) -> Vec<u8> {
    let (title, body) = if i == POISON {
        (
            format!("Zebra {}", "stripes ".repeat(110)),
            "A zebra, and another zebra. ".repeat(300),
        )
    } else {
        (
            format!("Report {i}"),
            format!("Observers saw a zebra near checkpoint {i}."),
        )
    };
    serde_json::json!({
        "id": format!("ev-{i}"),
        "title": title,
        "body": body,
        "source": "test",
        "lang": "en",
        "published_at": "2026-07-12T09:00:00Z",
    })
    .to_string()
    .into_bytes()
}

fn alert_id(i: usize) -> String {
    newswatch_core::alert::alert_id("zebra", &BTreeMap::new(), &format!("ev-{i}"))
}

fn produce(fx: &Fixture, range: std::ops::Range<usize>) {
    let p = Producer::new(&fx.broker.addr());
    for i in range {
        p.send(
            &fx.input,
            Some(0),
            Some(format!("k{i}").as_bytes()),
            &event(i),
        );
    }
    p.flush();
}

/// The alert ids of every event but the poison one.
fn later_ids() -> HashSet<String> {
    (0..N).filter(|&i| i != POISON).map(alert_id).collect()
}

/// How many of `ids` the alert topic holds.
fn seen(tail: &Tail, ids: &HashSet<String>) -> usize {
    let got: HashSet<&String> = tail
        .records
        .iter()
        .filter_map(|r| r.headers.get("newswatch-alert-id"))
        .collect();
    ids.iter().filter(|id| got.contains(id)).count()
}

fn undeliverable(d: &DaemonProc) -> f64 {
    d.metric("newswatch_publish_errors_total{kind=\"undeliverable\"}")
        .unwrap_or(0.0)
}

/// The input partition's committed offset reaches `n` (moved past every
/// event, the poison one included).
fn committed_reaches(fx: &Fixture, n: i64) -> bool {
    wait_for(Duration::from_secs(30), || {
        committed_offsets(&fx.broker.addr(), &fx.group, &fx.input, 1)
            .is_some_and(|o| o.first() == Some(&n))
    })
}

#[test]
fn poison_alert_goes_to_the_dlq_and_later_events_alert() {
    let fx = Fixture::new(RULES, 1, &[], &extra());
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut dlq = Tail::new(&fx.broker.addr(), &fx.dlq);
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));
    produce(&fx, 0..N);
    let ids = later_ids();
    let complete = tail.wait_alert_ids(&ids, Duration::from_secs(60));
    let got = dlq.wait(Duration::from_secs(30), |r| !r.is_empty());
    eprintln!(
        "poison alert, DLQ on: {}/{} later alerts, {} dead letters",
        seen(&tail, &ids),
        ids.len(),
        dlq.records.len()
    );
    assert!(
        complete,
        "alerts missing: {}/{}",
        seen(&tail, &ids),
        ids.len()
    );
    assert!(got, "no undeliverable dead letter");
    let d = &dlq.records[0];
    let h = |k: &str| d.headers.get(k).map(String::as_str);
    assert_eq!(h("newswatch-error"), Some("undeliverable"));
    assert_eq!(h("newswatch-alert-id"), Some(alert_id(POISON).as_str()));
    assert_eq!(h("newswatch-alert-topic"), Some(fx.alerts.as_str()));
    assert_eq!(h("newswatch-source-topic"), Some(fx.input.as_str()));
    assert_eq!(
        h("newswatch-source-offset"),
        Some(POISON.to_string().as_str())
    );
    let detail = h("newswatch-error-detail").unwrap_or_default();
    assert!(detail.to_lowercase().contains("size"), "detail: {detail}");
    let full: usize = h("newswatch-alert-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(full > PRODUCER_MAX, "the poison alert had {full} bytes");
    assert_eq!(d.payload.len(), PRODUCER_MAX / 2, "cut to half the limit");
    assert_eq!(undeliverable(&daemon), 1.0);
    assert!(committed_reaches(&fx, N as i64), "offset did not move on");
    daemon.terminate(Duration::from_secs(30));
}

#[test]
fn poison_alert_with_dlq_off_is_counted_and_later_events_alert() {
    let fx = Fixture::new(RULES, 1, &[], &extra());
    set_dlq(&fx, "");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));
    produce(&fx, 0..N);
    let ids = later_ids();
    let complete = tail.wait_alert_ids(&ids, Duration::from_secs(60));
    eprintln!(
        "poison alert, DLQ off: {}/{} later alerts, undeliverable counted {}",
        seen(&tail, &ids),
        ids.len(),
        undeliverable(&daemon)
    );
    assert!(
        complete,
        "alerts missing: {}/{}",
        seen(&tail, &ids),
        ids.len()
    );
    assert!(wait_for(Duration::from_secs(10), || undeliverable(&daemon) == 1.0));
    assert!(committed_reaches(&fx, N as i64), "offset did not move on");
    assert!(daemon
        .log()
        .contains("dropped (the dead-letter topic is off)"));
    daemon.terminate(Duration::from_secs(30));
}

/// The dead-letter topic refuses a record that must not be skipped (the
/// dead letter of an invalid event larger than the producer accepts): the
/// partition's offset holds, `/readyz` answers 503 naming the topic, and
/// the events behind it are still matched and alerted meanwhile (up to
/// 1,000 in flight). (Resuming once the broker accepts again is not tested
/// here: every topic the config names must exist at start-up, and Tansu 0.6
/// can neither delete one topic nor make an existing one refuse and then
/// accept.)
#[test]
fn refusing_dlq_holds_the_partition() {
    let fx = Fixture::new(RULES, 1, &[], &extra());
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut daemon = refused_dead_letter_first(&fx);
    let mut last = (0, String::new());
    let paused = wait_for(Duration::from_secs(60), || {
        last = daemon.get("/readyz");
        last.0 == 503 && last.1.contains(&fx.dlq)
    });
    assert!(paused, "/readyz while the DLQ refuses: {last:?}");
    let ids = later_ids();
    let alerted = tail.wait_alert_ids(&ids, Duration::from_secs(60));
    assert!(
        alerted,
        "{} of {} later alerts",
        seen(&tail, &ids),
        ids.len()
    );
    let committed = committed_offsets(&fx.broker.addr(), &fx.group, &fx.input, 1);
    let first = committed.as_ref().and_then(|o| o.first().copied());
    assert!(
        first.is_none_or(|o| o <= 0),
        "the offset moved past the event whose dead letter is refused: {committed:?}"
    );
    daemon.terminate(Duration::from_secs(30));
}

/// The daemon on `fx`, then an invalid event whose dead letter is larger
/// than the producer accepts (so the dead-letter topic refuses a record
/// that must not be skipped), then the `N` events.
fn refused_dead_letter_first(fx: &Fixture) -> DaemonProc {
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));
    let p = Producer::new(&fx.broker.addr());
    p.send(
        &fx.input,
        Some(0),
        None,
        "not json ".repeat(1000).as_bytes(),
    );
    p.flush();
    produce(fx, 0..N);
    daemon
}

/// The fixture's config with `dlq_topic` set to `to`.
fn set_dlq(fx: &Fixture, to: &str) {
    let text = std::fs::read_to_string(&fx.config).unwrap();
    let text = text.replace(
        &format!("dlq_topic = \"{}\"", fx.dlq),
        &format!("dlq_topic = \"{to}\""),
    );
    std::fs::write(&fx.config, text).unwrap();
}

/// SIGTERM while the partition is paused on a refused record (the dead
/// letter of an invalid event larger than the producer accepts, which
/// must not be skipped): exit 0 within `shutdown_timeout` (10 s in the
/// test config).
#[test]
fn sigterm_while_refused_exits_within_shutdown_timeout() {
    let fx = Fixture::new(RULES, 1, &[], &extra());
    let mut daemon = refused_dead_letter_first(&fx);
    let paused = wait_for(Duration::from_secs(60), || {
        daemon.get("/readyz").1.contains(&fx.dlq)
    });
    assert!(paused, "never paused: {:?}", daemon.get("/readyz"));
    let t = Instant::now();
    daemon.signal("TERM");
    let st = daemon.wait_exit(Duration::from_secs(30));
    let took = t.elapsed();
    eprintln!("SIGTERM while refused: exit {st:?} after {took:?}");
    assert!(
        st.is_some_and(|s| s.code() == Some(0)),
        "exit status {st:?} after {took:?}"
    );
    // 10 s, plus scheduling slack on a busy machine.
    assert!(took < Duration::from_secs(11), "shutdown took {took:?}");
}

/// SIGTERM while a publish holds stage one's loop inside a turn: the
/// producer's queue (5 records here) is full of records that linger
/// (250 s; librdkafka refuses a linger.ms over the admin client's
/// message.timeout.ms, 300 s), and the broker is frozen (SIGSTOP) so that
/// no flush can empty it; enqueueing the next alert waits. The drain's
/// deadline still reaches that wait: exit 0 within `shutdown_timeout`
/// (10 s).
#[test]
fn sigterm_with_a_full_producer_queue_exits_within_shutdown_timeout() {
    let extra = "[kafka.producer_properties]\n\"queue.buffering.max.messages\" = \"5\"\n\
                 \"linger.ms\" = \"250000\"\n";
    let fx = Fixture::new(RULES, 1, &[], extra);
    let mut daemon = fx.spawn(BIN);
    // Never ready: stage two's fence records linger too. Stage one
    // consumes meanwhile (a new group reads from the beginning).
    produce(&fx, 0..N);
    let consumed = format!("newswatch_events_consumed_total{{topic=\"{}\"}}", fx.input);
    let full = wait_for(Duration::from_secs(60), || {
        daemon.metric(&consumed).unwrap_or(0.0) >= 6.0
    });
    assert!(full, "events not consumed");
    fx.broker.pause();
    let t = Instant::now();
    daemon.signal("TERM");
    let st = daemon.wait_exit(Duration::from_secs(30));
    let took = t.elapsed();
    fx.broker.resume();
    eprintln!("SIGTERM with a full producer queue: exit {st:?} after {took:?}");
    assert!(
        st.is_some_and(|s| s.code() == Some(0)),
        "exit status {st:?} after {took:?}"
    );
    // 10 s, plus scheduling slack on a busy machine.
    assert!(took < Duration::from_secs(11), "shutdown took {took:?}");
}
