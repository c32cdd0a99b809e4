//! The `spike` alert mode (SPEC §6, §8): `replay` is deterministic, and
//! the daemon, against a real broker (Tansu), fires exactly one spike
//! alert per burst, carrying `count` and `baseline`, with the payloads
//! `replay` gives for the same events.
//!
//! The stream: eight days of one report every six hours (the baseline,
//! dated in the past), then a burst of ten reports a minute apart, and a
//! second burst a day later.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use newswatch_testkit::*;
use newswatch_testkit_kafka::*;
use serde_json::Value;

use crate::util::BIN;

const RULES: &str = r#"
rules:
  - id: lavrov-spike
    title: Surge of Lavrov reports
    query: Lavrov
    alert: {mode: spike, window: 1h, baseline: 7d, ratio: 3, min_count: 5}
"#;

/// (id, minutes after 2026-07-01T00:00Z)
fn stream() -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = (0..32).map(|i| (format!("s{i}"), i * 6 * 60)).collect();
    let day = 24 * 60;
    v.extend((0..10).map(|i| (format!("b{i}"), 8 * day + i)));
    v.extend((0..10).map(|i| (format!("c{i}"), 9 * day + i)));
    v
}

fn event(id: &str, minutes: i64) -> Vec<u8> {
    let t = chrono::DateTime::parse_from_rfc3339("2026-07-01T00:00:00Z").unwrap()
        + chrono::Duration::minutes(minutes);
    serde_json::json!({
        "id": id,
        "title": format!("Lavrov comments on the talks ({id})"),
        "body": "Russian Foreign Minister Sergei Lavrov said on Friday the talks would go on.",
        "source": "example-wire",
        "published_at": t.to_rfc3339(),
    })
    .to_string()
    .into_bytes()
}

/// The stream as a JSON-lines file in `dir`.
fn write_events(dir: &std::path::Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for (id, m) in stream() {
        lines.extend(event(&id, m));
        lines.push(b'\n');
    }
    let path = dir.join("events.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

fn replay(rules: &std::path::Path, events: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .args(["replay", "-r"])
        .arg(rules)
        .arg(events)
        .env_remove("NEWSWATCH_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The expected spike alerts: one per burst, on its fifth report, with the
/// matches in the window and the average per hour of the week before.
fn check_alerts(alerts: &[Value]) {
    let got: Vec<(String, u64, f64)> = alerts
        .iter()
        .map(|a| {
            assert_eq!(a["mode"], "spike", "{a}");
            (
                a["event"]["id"].as_str().unwrap_or("").to_owned(),
                a["count"].as_u64().unwrap_or(0),
                a["baseline"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    // The first week: 28 reports in 168 hours; a day later the first
    // burst is in the baseline and the oldest day of reports is not.
    let want = [
        ("b4".to_owned(), 5, 28.0 / 168.0),
        ("c4".to_owned(), 5, 34.0 / 168.0),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(&want) {
        // serde_json reads floats to within an ulp or so.
        assert!(
            g.0 == w.0 && g.1 == w.1 && (g.2 - w.2).abs() < 1e-12,
            "{got:?} != {want:?}"
        );
    }
}

#[test]
fn replay_of_spike_rules_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let events = write_events(dir.path());
    let a = replay(&rules, &events);
    let b = replay(&rules, &events);
    assert!(a == b, "two replays differ:\n{a}\n---\n{b}");
    let alerts: Vec<Value> = a
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    check_alerts(&alerts);
}

/// The daemon fires one spike alert per burst (one `alert_id` each), with
/// the payloads `replay` gives.
#[test]
fn a_spike_fires_once_per_burst() {
    // One input partition: `run` then decides in the file's order, as
    // `replay` does.
    let fx = Fixture::new(RULES, 1, &[], "");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut d = fx.spawn(BIN);
    d.wait_ready(Duration::from_secs(60));
    let p = Producer::new(&fx.broker.addr());
    for (id, m) in stream() {
        p.send(&fx.input, Some(0), Some(id.as_bytes()), &event(&id, m));
    }
    p.flush();
    let ok = tail.wait(Duration::from_secs(120), |r| r.len() >= 2);
    // A window in which no third alert may come (the second burst's last
    // events are decided right after its alert).
    tail.poll(Duration::from_secs(2));
    assert!(ok, "{} alerts", tail.records.len());
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for r in &tail.records {
        assert_eq!(
            r.headers.get("newswatch-rule").map(String::as_str),
            Some("lavrov-spike")
        );
        let a = r.json();
        by_id.insert(a["alert_id"].as_str().unwrap_or("").to_owned(), a);
    }
    let mut alerts: Vec<Value> = by_id.into_values().collect();
    alerts.sort_by_key(|a| a["event_time"].as_str().unwrap_or("").to_owned());
    check_alerts(&alerts);
    // The same payloads as replay, byte for byte.
    let events = write_events(fx.dir.path());
    let replayed: Vec<String> = replay(&fx.rules, &events)
        .lines()
        .map(str::to_owned)
        .collect();
    let mut published: Vec<String> = tail
        .records
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    published.dedup();
    assert_eq!(published, replayed);
}
