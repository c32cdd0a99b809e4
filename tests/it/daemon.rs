//! The daemon against a real broker (Tansu), in-process: alerts with keys
//! and headers, all seven dead-letter reasons, HTTP endpoints, metrics
//! (through promtool), hot reload, clean shutdown.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use newswatch_testkit::*;
use newswatch_testkit_kafka::*;
use tokio_util::sync::CancellationToken;

/// `drills` publishes to its own topic (`TOPIC_DRILLS`, replaced per test).
const RULES: &str = r#"
rules:
  - id: lavrov
    title: Lavrov says something
    severity: high
    query: 'lavrov NEAR/5 (said OR warned)'
    labels: {desk: russia}
  - id: drills
    title: Drills
    query: 'drills'
    topic: TOPIC_DRILLS
"#;

struct Daemon {
    token: CancellationToken,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Daemon {
    fn start(config: &std::path::Path) -> Daemon {
        let cfg = newswatch::Config::load(Some(config)).unwrap();
        let token = CancellationToken::new();
        let t = token.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(newswatch::run(cfg, t))
                .map_err(|e| e.to_string())
        });
        Daemon {
            token,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) -> (Result<(), String>, Duration) {
        let t = Instant::now();
        self.token.cancel();
        let r = self.thread.take().unwrap().join().unwrap();
        (r, t.elapsed())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

fn event(id: &str, title: &str, body: &str) -> Vec<u8> {
    serde_json::json!({"id": id, "title": title, "body": body, "source": "test", "lang": "en",
                       "published_at": "2026-07-12T09:00:00Z"})
    .to_string()
    .into_bytes()
}

/// One message per dead-letter reason.
fn bad_inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("not_utf8", b"\xff\xfe{}".to_vec()),
        ("not_json", b"{nope".to_vec()),
        ("not_object", b"[1,2,3]".to_vec()),
        ("missing_id", br#"{"title":"x"}"#.to_vec()),
        ("no_text", br#"{"id":"x1"}"#.to_vec()),
        ("bad_field", br#"{"id":"x2","title":5}"#.to_vec()),
        (
            "too_large",
            format!(r#"{{"id":"x3","body":"{}"}}"#, "a".repeat(5000)).into_bytes(),
        ),
    ]
}

#[test]
fn end_to_end_alerts_dead_letters_http_and_reload() {
    let drills = unique("drills");
    // Small max_bytes so `too_large` is cheap to provoke.
    let fx = Fixture::new(
        &RULES.replace("TOPIC_DRILLS", &drills),
        3,
        &[],
        "\n[event]\nmax_bytes = 4000\n",
    );
    fx.broker.create_topic(&drills, 1);

    let mut daemon = Daemon::start(&fx.config);
    assert!(
        wait_for(Duration::from_secs(30), || http(&fx.http, "GET", "/readyz")
            .0
            == 200),
        "never ready: {:?}",
        http(&fx.http, "GET", "/readyz")
    );
    assert_eq!(http(&fx.http, "GET", "/healthz").0, 200);

    let p = Producer::new(&fx.broker.addr());
    let n = 30;
    let bad = bad_inputs();
    produce_all(&fx, &p, n, &bad);
    alerts_keyed_with_headers_in_order(&fx, n);
    drills_and_dead_letters(&fx, &drills, &bad);
    metrics_and_rules(&fx, n, bad.len());
    reload_keeps_or_swaps_rules(&fx, &p);
    let (result, took) = daemon.stop();
    result.unwrap();
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
}

/// `n` events for `lavrov` over three partitions, one for `drills`, and
/// `bad`'s dead letters on partition 1.
fn produce_all(fx: &Fixture, p: &Producer, n: i32, bad: &[(&str, Vec<u8>)]) {
    for i in 0..n {
        let body = format!("Sergey Lavrov warned on day {i}.");
        p.send(
            &fx.input,
            Some(i % 3),
            Some(format!("k{i}").as_bytes()),
            &event(&format!("e{i}"), "News", &body),
        );
    }
    p.send(
        &fx.input,
        Some(0),
        Some(b"d1"),
        &event("d1", "Joint drills", "Navies held drills."),
    );
    for (reason, bytes) in bad {
        p.send(
            &fx.input,
            Some(1),
            Some(format!("bad-{reason}").as_bytes()),
            bytes,
        );
    }
    p.flush();
}

/// Every `lavrov` alert, keyed by rule, with its headers; alerts of one
/// input partition in input order.
fn alerts_keyed_with_headers_in_order(fx: &Fixture, n: i32) {
    let got = consume_until(
        &fx.broker.addr(),
        &fx.alerts,
        Duration::from_secs(60),
        |r| r.len() >= n as usize,
    );
    assert_eq!(got.len(), n as usize, "alerts on {}", fx.alerts);
    let ids: HashSet<String> = got
        .iter()
        .map(|r| r.json()["event"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), n as usize);
    for r in &got {
        assert_eq!(r.key.as_deref(), Some(&b"lavrov"[..]));
        let j = r.json();
        assert_eq!(j["schema"], "newswatch.alert.v1");
        assert_eq!(r.headers["newswatch-rule"], "lavrov");
        assert_eq!(r.headers["newswatch-severity"], "high");
        assert_eq!(
            r.headers["newswatch-alert-id"],
            j["alert_id"].as_str().unwrap()
        );
        assert_eq!(j["rule"]["labels"]["desk"], "russia");
    }
    // Alerts of one input partition keep their order: e0, e3, e6… come in order.
    let order: Vec<u32> = got
        .iter()
        .map(|r| {
            r.json()["event"]["id"].as_str().unwrap()[1..]
                .parse()
                .unwrap()
        })
        .filter(|i: &u32| i % 3 == 0)
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

/// The rule with its own topic publishes there; every bad input is a dead
/// letter with its bytes, key and source.
fn drills_and_dead_letters(fx: &Fixture, drills: &str, bad: &[(&str, Vec<u8>)]) {
    let drill = consume_until(&fx.broker.addr(), drills, Duration::from_secs(30), |r| {
        !r.is_empty()
    });
    assert_eq!(drill.len(), 1, "the rule's own topic");
    assert_eq!(drill[0].key.as_deref(), Some(&b"drills"[..]));

    let dead = consume_until(&fx.broker.addr(), &fx.dlq, Duration::from_secs(30), |r| {
        r.len() >= bad.len()
    });
    assert_eq!(dead.len(), bad.len());
    for (reason, bytes) in bad {
        let r = dead
            .iter()
            .find(|r| r.headers.get("newswatch-error").map(String::as_str) == Some(*reason))
            .unwrap_or_else(|| panic!("no dead letter for {reason}"));
        assert_eq!(&r.payload, bytes, "{reason}: bytes unchanged");
        assert_eq!(
            r.key.as_deref(),
            Some(format!("bad-{reason}").as_bytes()),
            "{reason}: key unchanged"
        );
        assert!(!r.headers["newswatch-error-detail"].is_empty());
        assert_eq!(r.headers["newswatch-source-topic"], fx.input);
        assert_eq!(r.headers["newswatch-source-partition"], "1");
        assert!(r.headers["newswatch-source-offset"].parse::<i64>().is_ok());
    }
}

/// The metrics (through promtool) and `/rules`.
fn metrics_and_rules(fx: &Fixture, n: i32, bad: usize) {
    let (code, metrics) = http(&fx.http, "GET", "/metrics");
    assert_eq!(code, 200);
    for line in [
        format!(
            "newswatch_events_consumed_total{{topic=\"{}\"}} {}",
            fx.input,
            n + 1 + bad as i32
        ),
        "newswatch_dlq_records_total 7".to_owned(),
        "newswatch_alerts_published_total{rule=\"lavrov\",severity=\"high\"} 30".to_owned(),
        "newswatch_rule_matches_total{rule=\"lavrov\"} 30".to_owned(),
        "newswatch_events_invalid_total{reason=\"too_large\"} 1".to_owned(),
        "newswatch_rules_loaded 2".to_owned(),
    ] {
        assert!(metrics.contains(&line), "missing {line:?} in\n{metrics}");
    }
    for name in [
        "newswatch_event_processing_seconds_bucket",
        "newswatch_match_seconds_bucket",
        "newswatch_event_delay_seconds_bucket",
        "newswatch_ruleset_info",
        "newswatch_build_info",
        "process_cpu_seconds_total",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }
    assert!(
        wait_for(Duration::from_secs(10), || http(
            &fx.http, "GET", "/metrics"
        )
        .1
        .contains("newswatch_consumer_lag_messages{")),
        "no consumer lag from librdkafka statistics"
    );
    promtool_check(&http(&fx.http, "GET", "/metrics").1);

    // /rules
    let (code, body) = http(&fx.http, "GET", "/rules");
    assert_eq!(code, 200);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["rules"].as_array().unwrap().len(), 2);
    assert_eq!(j["rules"][0]["id"], "lavrov");
    assert_eq!(j["rules"][0]["mode"], "each");
    // Per-rule numbers since start; the matcher threads report their
    // verification costs every half second.
    let lavrov = || {
        let j: serde_json::Value =
            serde_json::from_str(&http(&fx.http, "GET", "/rules").1).unwrap();
        j["rules"][0].clone()
    };
    assert!(
        wait_for(Duration::from_secs(10), || lavrov()["candidates"]
            .as_u64()
            .is_some_and(|c| c >= 30)),
        "no verification costs in /rules: {}",
        lavrov()
    );
    let r = lavrov();
    assert_eq!(
        (r["matches"].as_u64(), r["alerts"].as_u64()),
        (Some(30), Some(30)),
        "{r}"
    );
    assert!(
        r["last_match_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{r}"
    );
    assert!(r["eval_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{r}");
    assert!(http(&fx.http, "GET", "/metrics")
        .1
        .contains("newswatch_rule_eval_seconds_total{rule=\"lavrov\"}"));
}

/// `POST /-/reload`: a bad change keeps the old rules and says why, a good
/// one is swapped in and fires.
fn reload_keeps_or_swaps_rules(fx: &Fixture, p: &Producer) {
    // Reload: a bad change keeps the old rules and says why.
    std::fs::write(
        &fx.rules,
        "rules:\n  - id: broken\n    title: x\n    query: 'a NEAR/0 b'\n",
    )
    .unwrap();
    let (code, body) = http(&fx.http, "POST", "/-/reload");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("NEAR distance"), "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&http(&fx.http, "GET", "/rules").1).unwrap()
            ["rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(http(&fx.http, "GET", "/metrics")
        .1
        .contains("newswatch_rules_reloads_total{result=\"failure\"}"));
    // A good change is swapped in.
    std::fs::write(
        &fx.rules,
        "rules:\n  - id: sanctions\n    title: Sanctions\n    query: sanctions\n",
    )
    .unwrap();
    let (code, body) = http(&fx.http, "POST", "/-/reload");
    assert_eq!(code, 200, "{body}");
    p.send(
        &fx.input,
        Some(2),
        None,
        &event("s1", "New sanctions", "More sanctions."),
    );
    p.flush();
    let got = consume_until(
        &fx.broker.addr(),
        &fx.alerts,
        Duration::from_secs(30),
        |r| {
            r.iter()
                .any(|x| x.key.as_deref() == Some(&b"sanctions"[..]))
        },
    );
    assert!(
        got.iter()
            .any(|x| x.key.as_deref() == Some(&b"sanctions"[..])),
        "reloaded rule fired"
    );
}

/// `promtool check metrics` on the exposition (Debian package `prometheus`).
fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool not found: scripts/test installs it (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let msg =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{msg}"
    );
}

#[test]
fn dead_letters_off_counts_logs_and_goes_on() {
    let fx = Fixture::new(RULES, 1, &[], "");
    std::fs::write(&fx.rules, RULES.replace("TOPIC_DRILLS", &fx.alerts)).unwrap();
    // No dead-letter topic.
    let text = std::fs::read_to_string(&fx.config).unwrap();
    let dlq_key = format!("dlq_topic = \"{}\"", fx.dlq);
    assert!(text.contains(&dlq_key));
    std::fs::write(&fx.config, text.replace(&dlq_key, "dlq_topic = \"\"")).unwrap();
    let mut daemon = Daemon::start(&fx.config);
    let p = Producer::new(&fx.broker.addr());
    p.send(&fx.input, None, None, b"{not json");
    p.send(&fx.input, None, None, br#"{"id":"no-text"}"#);
    p.send(
        &fx.input,
        None,
        None,
        &event("ok1", "News", "Lavrov said it again."),
    );
    p.flush();
    // The bad messages neither stop nor block the partition.
    let got = consume_until(
        &fx.broker.addr(),
        &fx.alerts,
        Duration::from_secs(60),
        |r| !r.is_empty(),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["event"]["id"], "ok1");
    let metrics = http(&fx.http, "GET", "/metrics").1;
    for line in [
        "newswatch_events_invalid_total{reason=\"not_json\"} 1",
        "newswatch_events_invalid_total{reason=\"no_text\"} 1",
        "newswatch_dlq_records_total 0",
    ] {
        assert!(metrics.contains(line), "missing {line:?}");
    }
    daemon.stop().0.unwrap();
}
