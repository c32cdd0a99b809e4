//! `newswatch tail` against a real broker (SPEC §1): it follows the config's
//! alert topic and a rule's own topic while a daemon publishes, drops a
//! redelivered copy by `alert_id`, prints payloads with `--json` (from the
//! beginning), exits 0 on SIGINT, and commits nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use newswatch_testkit::*;
use newswatch_testkit_kafka::*;

use crate::util::{payloads, BIN};

const RULES: &str = r#"
rules:
  - id: lavrov
    title: Lavrov says something
    severity: high
    query: 'lavrov NEAR/5 (said OR warned)'
  - id: drills
    title: Drills
    query: 'drills'
    topic: TOPIC_DRILLS
"#;

/// `newswatch tail ARGS…` as a child process, stdout and stderr in files.
pub struct TailProc {
    pub proc: Proc,
    out: PathBuf,
    err: PathBuf,
}

impl TailProc {
    pub fn spawn(dir: &Path, name: &str, args: &[&str]) -> TailProc {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let file = |p: &Path| std::fs::File::create(p).unwrap();
        let child = Command::new(BIN)
            .arg("tail")
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file(&out))
            .stderr(file(&err))
            .spawn()
            .unwrap();
        TailProc {
            proc: Proc::new(child),
            out,
            err,
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Complete lines so far.
    pub fn lines(&self) -> Vec<String> {
        let s = self.stdout();
        let complete = s.rfind('\n').map_or("", |i| &s[..i]);
        complete.lines().map(str::to_owned).collect()
    }

    /// Wait until it has joined its group and been assigned partitions.
    pub fn wait_assigned(&mut self) {
        let ok = wait_for(Duration::from_secs(30), || {
            self.stderr().contains("partitions assigned")
        });
        assert!(ok, "tail never assigned:\n{}", self.stderr());
    }

    #[track_caller]
    pub fn wait_lines(&self, n: usize) -> Vec<String> {
        let ok = wait_for(Duration::from_secs(30), || self.lines().len() >= n);
        assert!(
            ok,
            "tail printed {} lines, expected {n}:\n{}\nstderr:\n{}",
            self.lines().len(),
            self.stdout(),
            self.stderr()
        );
        self.lines()
    }

    /// SIGINT; it must exit 0 promptly.
    pub fn interrupt(&mut self) {
        self.proc.signal("INT");
        let st = self.proc.wait_exit(Duration::from_secs(20));
        assert!(
            st.is_some_and(|s| s.success()),
            "tail after SIGINT: {st:?}\n{}",
            self.stderr()
        );
    }

    /// The consumer group it logged.
    pub fn group(&self) -> String {
        let err = self.stderr();
        let at = err
            .find("newswatch-tail-")
            .unwrap_or_else(|| panic!("no group in:\n{err}"));
        err[at..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .next()
            .unwrap()
            .to_owned()
    }
}

fn event(id: &str, body: &str) -> Vec<u8> {
    serde_json::json!({"id": id, "title": body, "body": body, "source": "tass.ru",
                       "url": format!("https://tass.ru/{id}"), "lang": "en",
                       "published_at": "2026-07-12T09:00:00Z"})
    .to_string()
    .into_bytes()
}

#[test]
fn tail_follows_dedups_prints_json_and_commits_nothing() {
    let drills = unique("drills");
    let fx = Fixture::new(&RULES.replace("TOPIC_DRILLS", &drills), 1, &[], "");
    fx.broker.create_topic(&drills, 1);
    let brokers = fx.broker.addr();
    let mut daemon = fx.spawn(BIN);
    let config = fx.config.to_str().unwrap();
    let mut live = TailProc::spawn(fx.dir.path(), "live", &["-c", config]);
    daemon.wait_ready(Duration::from_secs(60));
    live.wait_assigned();

    let p = Producer::new(&brokers);
    p.send(&fx.input, None, None, &event("e1", "Lavrov warned Seoul."));
    p.send(&fx.input, None, None, &event("e2", "Navies held drills."));
    p.flush();
    let lines = live.wait_lines(2);
    for (rule, severity, id) in [("lavrov", "high", "e1"), ("drills", "medium", "e2")] {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("  {rule}  ")))
            .unwrap_or_else(|| panic!("no {rule} line in {lines:?}"));
        for part in [
            "2026-07-12T09:00:00Z",
            severity,
            "tass.ru",
            &format!("https://tass.ru/{id}"),
        ] {
            assert!(line.contains(part), "{part:?} missing in {line:?}");
        }
    }

    // A redelivered copy (same payload, same alert_id) is dropped: the
    // next alert behind it on the same partition is printed, the copy not.
    let first = consume_until(&brokers, &fx.alerts, Duration::from_secs(30), |r| {
        !r.is_empty()
    });
    let copy = &first[0];
    let headers: Vec<(&str, &str)> = copy
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    p.send_with_headers(&fx.alerts, b"lavrov", &copy.payload, &headers);
    p.flush();
    p.send(&fx.input, None, None, &event("e3", "Lavrov said no."));
    p.flush();
    let lines = live.wait_lines(3);
    assert!(lines[2].contains("https://tass.ru/e3"), "{lines:?}");

    // --json --from-beginning: every payload once, valid against its schema.
    let mut json = TailProc::spawn(
        fx.dir.path(),
        "json",
        &["-c", config, "--json", "--from-beginning"],
    );
    let got = payloads(&json.wait_lines(3).join("\n"));
    let ids: HashSet<&str> = got
        .iter()
        .map(|v| v["alert_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{got:?}");
    let events: HashSet<&str> = got
        .iter()
        .map(|v| v["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(events, HashSet::from(["e1", "e2", "e3"]));

    live.interrupt();
    json.interrupt();
    // Still three lines each: the copy was never printed, late or not.
    assert_eq!(live.lines().len(), 3, "{}", live.stdout());
    assert_eq!(json.lines().len(), 3, "{}", json.stdout());
    for t in [&live, &json] {
        let group = t.group();
        for topic in [&fx.alerts, &drills] {
            assert_eq!(
                committed_offsets(&brokers, &group, topic, 1),
                Some(vec![-1]),
                "group {group} committed on {topic}"
            );
        }
    }
    daemon.terminate(Duration::from_secs(30));

    // A topic the broker does not have: named, with what named it, exit 2.
    let out = Command::new(BIN)
        .args(["tail", "-c", config, "--topic", "no-such-alerts"])
        .current_dir(fx.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("topic no-such-alerts does not exist") && err.contains("--topic"),
        "{err}"
    );
}

#[test]
fn tail_refuses_a_bad_config() {
    let d = tempfile::tempdir().unwrap();
    // A bad config: the loader's message, exit 2, nothing on stdout.
    std::fs::write(d.path().join("bad.toml"), "[kafka]\nbrokerz = \"x\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["tail", "-c", "bad.toml"])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("brokerz"));
}

/// No broker at all: tail says so, keeps retrying, and still exits 0 on
/// SIGINT.
#[test]
fn tail_retries_an_unreachable_broker_and_exits_on_sigint() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        d.path().join("nw.toml"),
        format!("[kafka]\nbrokers = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let mut t = TailProc::spawn(
        d.path(),
        "down",
        &["-c", "nw.toml", "--topic", "news.alerts"],
    );
    let retrying = wait_for(Duration::from_secs(30), || {
        let e = t.stderr();
        e.contains("cannot reach the Kafka brokers") || e.contains("retrying")
    });
    assert!(retrying, "{}", t.stderr());
    assert!(t.proc.alive(), "tail gave up:\n{}", t.stderr());
    t.interrupt();
    assert!(t.stdout().is_empty());
}
