//! The subscriber guide's Python example (`examples/subscriber.py`, with
//! confluent-kafka) against a real broker: it handles two alerts and a
//! digest once each, drops a redelivered copy by `alert_id`, and commits
//! only what it handled.
//!
//! It needs a Python with confluent-kafka: `$NEWSWATCH_TEST_PYTHON`, which
//! `scripts/test` always sets (it builds the virtual environment), so CI
//! never skips this test; a developer's plain `cargo test` without it skips
//! with a message.

use std::process::Command;
use std::time::Duration;

use newswatch_testkit::schemas::{validate_digest, Kind};
use newswatch_testkit::*;
use newswatch_testkit_kafka::*;
use serde_json::json;

use crate::util::{payloads, BIN};

const ENV: &str = "NEWSWATCH_TEST_PYTHON";

const RULES: &str = r#"
rules:
  - id: ru-mfa-statement
    title: Statement from the Russian foreign ministry
    severity: high
    query: 'lavrov NEAR/5 (said OR warned)'
    labels: {desk: asia}
"#;

const EVENTS: &str = r#"{"id": "a1", "title": "Lavrov warned Seoul", "body": "Sergey Lavrov warned Seoul.", "source": "tass.ru", "url": "https://tass.ru/a1", "lang": "en", "published_at": "2026-07-12T09:00:00Z"}
{"id": "a2", "title": "Lavrov said no", "body": "Lavrov said no to talks.", "source": "reuters.com", "url": "https://reuters.com/a2", "lang": "en", "published_at": "2026-07-12T09:05:00Z"}
"#;

/// Real alerts: what `replay` gives for [`EVENTS`] (the payloads `run`
/// would publish).
fn alerts(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::write(dir.join("rules.yaml"), RULES).unwrap();
    std::fs::write(dir.join("events.jsonl"), EVENTS).unwrap();
    let out = Command::new(BIN)
        .args(["replay", "-r", "rules.yaml", "events.jsonl"])
        .current_dir(dir)
        .env_remove("NEWSWATCH_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success());
    payloads(&String::from_utf8(out.stdout).unwrap())
}

/// A digest of the alerts, as a rule with `digest:` would publish it.
fn digest(alerts: &[serde_json::Value]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| json!({"alert_id": a["alert_id"], "event": a["event"], "snippet": a["snippet"], "story": null}))
        .collect();
    let d = json!({
        "schema": Kind::Digest.name(),
        "digest_id": "5d1a9e0c7b3f4a2e8c6d0b1a2f3e4d5c",
        "rule": alerts[0]["rule"],
        "group": {},
        "period": {"start": "2026-07-12T09:00:00Z", "end": "2026-07-12T10:00:00Z"},
        "count": items.len(),
        "omitted": 0,
        "late": 0,
        "items": items,
    });
    validate_digest(&d).unwrap();
    d
}

#[test]
fn python_example_consumes_once_each_and_commits_what_it_handled() {
    let Ok(python) = std::env::var(ENV) else {
        eprintln!(
            "SKIPPED: ${ENV} is not set (a Python with confluent-kafka; scripts/test sets it)"
        );
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let alerts = alerts(d.path());
    assert_eq!(alerts.len(), 2);
    let digest = digest(&alerts);

    let broker = Broker::start();
    let topic = unique("alerts");
    broker.create_topic(&topic, 1);
    let p = Producer::new(&broker.addr());
    let publish = |a: &serde_json::Value| {
        let bytes = serde_json::to_vec(a).unwrap();
        let rule = a["rule"]["id"].as_str().unwrap();
        if a["schema"] == Kind::Alert.name() {
            let headers = [
                ("newswatch-rule", rule),
                (
                    "newswatch-severity",
                    a["rule"]["severity"].as_str().unwrap(),
                ),
                ("newswatch-alert-id", a["alert_id"].as_str().unwrap()),
            ];
            p.send_with_headers(&topic, rule.as_bytes(), &bytes, &headers);
        } else {
            let headers = [("newswatch-digest-id", a["digest_id"].as_str().unwrap())];
            p.send_with_headers(&topic, rule.as_bytes(), &bytes, &headers);
        }
    };
    // The first alert twice: a copy redelivered after a crash.
    for a in [&alerts[0], &alerts[1], &alerts[0], &digest] {
        publish(a);
    }
    p.flush();

    let group = unique("desk");
    let example = repo_root().join("examples/subscriber.py");
    let out = Command::new(&python)
        .arg(&example)
        .args([
            "--brokers",
            &broker.addr(),
            "--topic",
            &topic,
            "--group",
            &group,
        ])
        .args(["--from-beginning", "--max", "3", "--idle-exit", "60"])
        .output()
        .unwrap_or_else(|e| panic!("{python} {}: {e}", example.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let count = |prefix: String| stdout.lines().filter(|l| l.starts_with(&prefix)).count();
    for a in &alerts {
        let id = a["alert_id"].as_str().unwrap();
        assert_eq!(
            count(format!("alert {id} high ru-mfa-statement desk=asia")),
            1,
            "{stdout}"
        );
        let url = a["event"]["url"].as_str().unwrap();
        assert!(stdout.contains(url), "{url} in {stdout}");
    }
    assert_eq!(
        count(format!(
            "digest {} ru-mfa-statement 2026-07-12T09:00:00Z..",
            digest["digest_id"].as_str().unwrap()
        )),
        1,
        "{stdout}"
    );
    // Everything it handled (and the copy it dropped) is committed: a
    // restart of the subscriber goes on after the digest.
    let committed = wait_for(Duration::from_secs(10), || {
        committed_offsets(&broker.addr(), &group, &topic, 1) == Some(vec![4])
    });
    assert!(
        committed,
        "committed: {:?}",
        committed_offsets(&broker.addr(), &group, &topic, 1)
    );
}

/// The guide's fenced blocks of one language, in order.
fn guide_blocks(lang: &str) -> Vec<String> {
    let md = std::fs::read_to_string(repo_root().join("docs/subscriber-guide.md")).unwrap();
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for l in md.lines() {
        match &mut cur {
            None if l.trim_start() == format!("```{lang}") => cur = Some(String::new()),
            Some(b) if l.trim_start() == "```" => {
                out.push(std::mem::take(b));
                cur = None;
            }
            Some(b) => {
                b.push_str(l);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

/// The guide quotes the example verbatim, and its Alertmanager
/// configuration is one Alertmanager accepts.
#[test]
fn guide_quotes_the_example_and_its_alertmanager_config_is_valid() {
    let example = std::fs::read_to_string(repo_root().join("examples/subscriber.py")).unwrap();
    let quoted = guide_blocks("python");
    assert!(quoted.len() >= 2, "{quoted:?}");
    for q in &quoted {
        assert!(
            example.contains(q.as_str()),
            "not in examples/subscriber.py:\n{q}"
        );
    }
    let yaml = guide_blocks("yaml");
    assert_eq!(yaml.len(), 1, "one Alertmanager configuration");
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("alertmanager.yml");
    std::fs::write(&f, &yaml[0]).unwrap();
    let out = Command::new("amtool")
        .arg("check-config")
        .arg(&f)
        .output()
        .expect("amtool (Debian package prometheus-alertmanager; scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("SUCCESS"), "{text}");
}
