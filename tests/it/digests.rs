//! Digests (SPEC §6): `replay` gives the same digests every run, and the
//! daemon, against a real broker (Tansu), closes a period by event time
//! and, when the partition is idle, on the wall clock; across a SIGKILL a
//! period is published under one `digest_id`.
//!
//! The events are dated in the past with `every: 5m`, and the wall-clock
//! close uses a `grace` of seconds, so no test waits for a period to pass.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use newswatch_testkit::*;
use newswatch_testkit_kafka::*;

use crate::util::BIN;

/// An event `id` with `title`, `minutes` after 10:00 on a past day.
fn event(id: &str, title: &str, minutes: i64) -> Vec<u8> {
    let t = chrono::DateTime::parse_from_rfc3339("2026-07-12T10:00:00Z").unwrap()
        + chrono::Duration::minutes(minutes);
    serde_json::json!({"id": id, "title": title, "source": "wire", "lang": "en",
        "published_at": t.to_rfc3339()})
    .to_string()
    .into_bytes()
}

fn produce(fx: &Fixture, events: &[Vec<u8>]) {
    let p = Producer::new(&fx.broker.addr());
    for e in events {
        p.send(&fx.input, Some(0), None, e);
    }
    p.flush();
}

/// The digest records of `rule` seen so far.
fn digests(tail: &Tail, rule: &str) -> Vec<serde_json::Value> {
    tail.records
        .iter()
        .filter(|r| r.headers.get("newswatch-rule").map(String::as_str) == Some(rule))
        .map(|r| {
            let d = r.json();
            assert_eq!(d["schema"], "newswatch.digest.v1", "{d}");
            assert_eq!(
                r.headers.get("newswatch-digest-id").map(String::as_str),
                d["digest_id"].as_str(),
                "header and payload agree"
            );
            assert_eq!(r.key.as_deref(), Some(rule.as_bytes()));
            d
        })
        .collect()
}

/// `replay` of the same input twice gives the same lines, digests
/// included (written as they close, the rest at the end of the input).
#[test]
fn replay_gives_the_same_digests_every_run() {
    let root = repo_root();
    let run = || {
        let out = Command::new(BIN)
            .current_dir(root)
            .args([
                "replay",
                "-r",
                "config/rules/geopolitics.yaml",
                "-r",
                "config/examples/digest-rules.yaml",
                "examples/news.jsonl",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert_eq!(first, run(), "two replays differ");
    let digests: Vec<serde_json::Value> = first
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|j| j["schema"] == "newswatch.digest.v1")
        .collect();
    assert!(!digests.is_empty(), "no digest in:\n{first}");
    for d in &digests {
        let listed = d["items"].as_array().unwrap().len() as u64;
        assert_eq!(
            d["count"].as_u64(),
            Some(listed + d["omitted"].as_u64().unwrap()),
            "{d}"
        );
        assert!(listed <= 20);
    }
    // One digest per period, periods in order of their start.
    let starts: Vec<&str> = digests
        .iter()
        .map(|d| d["period"]["start"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = starts.iter().copied().collect();
    assert_eq!(unique.len(), starts.len(), "{starts:?}");
}

const RULES: &str = r#"
rules:
  - id: by-event
    title: Alpha news, every 5 minutes
    query: alpha
    digest: {every: 5m, max_items: 2, grace: 1h}
  - id: by-wall
    title: Beta news, every 5 minutes
    query: beta
    labels: {desk: test}
    digest: {every: 5m, grace: 1s}
"#;

/// `by-event`: three matches in 10:00–10:05, then later ones move the
/// store's clock (a median) past 10:05: that period closes by event time,
/// the next stays open (its grace is an hour). `by-wall`: two matches,
/// then nothing: closed on the wall clock once the partition has been
/// quiet for its one-second grace. No single alerts of either rule.
#[test]
fn digests_close_by_event_time_and_on_the_wall_clock() {
    // Whether the two rules share a state partition (one store, one
    // clock) or not, the clock of by-event's passes 10:05 and not 10:10.
    let fx = Fixture::new(RULES, 1, &[], "");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut d = fx.spawn(BIN);
    d.wait_ready(Duration::from_secs(60));
    let mut evs = vec![
        event("a1", "alpha one", 1),
        event("b1", "beta one", 1),
        event("a2", "alpha two", 2),
        event("b2", "beta two", 2),
        event("a3", "alpha three", 3),
    ];
    for i in 4..11 {
        evs.push(event(&format!("a{i}"), "alpha later", 2 + i));
    }
    produce(&fx, &evs);
    let ok = tail.wait(Duration::from_secs(60), |r| r.len() >= 2);
    tail.poll(Duration::from_secs(3));
    assert!(ok, "{} records", tail.records.len());
    let by_event = digests(&tail, "by-event");
    assert_eq!(by_event.len(), 1, "{by_event:?}");
    let e = &by_event[0];
    assert_eq!(e["period"]["start"], "2026-07-12T10:00:00Z");
    assert_eq!(e["period"]["end"], "2026-07-12T10:05:00Z");
    assert_eq!(
        (e["count"].as_u64(), e["omitted"].as_u64()),
        (Some(3), Some(1))
    );
    let ids: Vec<&str> = e["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a1", "a2"]);
    let by_wall = digests(&tail, "by-wall");
    assert_eq!(by_wall.len(), 1, "{by_wall:?}");
    let w = &by_wall[0];
    assert_eq!(w["period"]["start"], "2026-07-12T10:00:00Z");
    assert_eq!(
        (w["count"].as_u64(), w["late"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(w["rule"]["labels"]["desk"], "test");
    assert_eq!(tail.records.len(), 2, "no single alerts of digest rules");
    assert_eq!(
        d.metric(r#"newswatch_digests_published_total{rule="by-wall"}"#),
        Some(1.0)
    );
}

/// SIGKILL after the matches are decided (their members are in the
/// changelog), before the period closes: the restarted daemon restores the
/// open digest and publishes it, all five matches counted once, under one
/// `digest_id` however often it is delivered.
#[test]
fn one_digest_id_per_period_across_sigkill() {
    let rules = "rules:\n  - {id: daily, title: Gamma news, query: gamma, digest: {every: 5m, grace: 5s}}\n";
    let fx = Fixture::new(rules, 1, FAST_SESSION, "");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut d = fx.spawn(BIN);
    d.wait_ready(Duration::from_secs(60));
    let evs: Vec<Vec<u8>> = (0..5)
        .map(|i| event(&format!("g{i}"), "gamma news", i))
        .collect();
    produce(&fx, &evs);
    let changelog = newswatch::daemon::topics::changelog_topic(&fx.group);
    let members = |r: &[Record]| {
        r.iter()
            .filter(|r| {
                r.key
                    .as_deref()
                    .is_some_and(|k| k.starts_with(b"2\x1fm\x1f"))
            })
            .count()
    };
    let state = consume_until(
        &fx.broker.addr(),
        &changelog,
        Duration::from_secs(60),
        |r| members(r) >= 5,
    );
    assert_eq!(members(&state), 5);
    // Still open (its grace is 5 s of quiet): the restore must carry it.
    tail.poll(Duration::from_millis(200));
    let open_at_kill = tail.records.is_empty();
    d.kill();
    let mut d = fx.spawn(BIN);
    d.wait_ready(Duration::from_secs(60));
    let ok = tail.wait(Duration::from_secs(60), |r| !r.is_empty());
    // Copies published before the kill, or redelivered, show up meanwhile.
    tail.poll(Duration::from_secs(4));
    assert!(ok, "no digest after the restart");
    let all = digests(&tail, "daily");
    let ids: BTreeSet<&str> = all
        .iter()
        .map(|x| x["digest_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{all:?}");
    for x in &all {
        assert_eq!(x["count"], 5, "{x}");
        assert_eq!(x["period"]["start"], "2026-07-12T10:00:00Z");
    }
    eprintln!(
        "digest records for one period across a SIGKILL: {} (none seen before the kill: {open_at_kill})",
        all.len()
    );
    assert!(d.alive());
}
