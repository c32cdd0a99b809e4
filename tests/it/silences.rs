//! Silences against a real broker (Tansu), SPEC §1, §6, §10: the API needs
//! the bearer token for POST and DELETE; `newswatch silence add|list|expire`
//! round trip; a silenced rule against its unsilenced twin (same query),
//! stateless and stateful; after the expiry the next alert carries the
//! number held back in `suppressed`; silences survive a restart and are
//! shared by a second instance of the group. One broker and one daemon
//! (restarted once) for all of it: each start costs seconds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

use newswatch_testkit::*;
use newswatch_testkit_kafka::*;
use serde_json::Value;

use crate::util::BIN;

const TOKEN: &str = "s1lence-t0ken";
const WAIT: Duration = Duration::from_secs(60);

/// Two pairs of twins: the same query, one of each pair silenced by a glob.
/// `*-st` are stateful (a throttle, through stage two).
const RULES: &str = r#"
rules:
  - id: twin
    title: Lavrov, never silenced
    query: lavrov
  - id: muted
    title: Lavrov, silenced
    query: lavrov
    labels: {desk: asia}
  - id: twin-st
    title: Lavrov, stateful, never silenced
    query: lavrov
    throttle: 1m
  - id: muted-st
    title: Lavrov, stateful, silenced
    query: lavrov
    throttle: 1m
    labels: {desk: asia}
"#;

/// `METHOD path` with a JSON body and maybe the bearer token: (status, body).
fn request(addr: &str, method: &str, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map_or("", |x| x.1).to_owned();
    (status, body)
}

/// The ids `GET /silences` lists.
fn listed(addr: &str) -> Vec<String> {
    let (code, body) = http(addr, "GET", "/silences");
    if code != 200 {
        return Vec::new();
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}

/// `newswatch silence ARGS --url http://addr`, with the token in the
/// environment when given.
fn cli(addr: &str, args: &[&str], token: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("silence")
        .args(args)
        .arg("--url")
        .arg(format!("http://{addr}"))
        .env_remove("NEWSWATCH_TOKEN");
    if let Some(t) = token {
        c.env("NEWSWATCH_TOKEN", t);
    }
    c.output().expect("run newswatch silence")
}

fn event(id: &str, hour: u32) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","title":"Lavrov speaks, {id}","body":"Sergey Lavrov said something about {id}.","source":"tass.ru","published_at":"2026-07-12T{hour:02}:00:00Z"}}"#
    )
    .into_bytes()
}

/// (rule, event id, suppressed) of every alert so far.
fn alerts_of(records: &[Record]) -> Vec<(String, String, u64)> {
    records
        .iter()
        .map(|r| {
            let a = r.json();
            (
                a["rule"]["id"].as_str().unwrap_or_default().to_owned(),
                a["event"]["id"].as_str().unwrap_or_default().to_owned(),
                a["suppressed"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn has(tail_alerts: &[(String, String, u64)], rule: &str, event: &str) -> bool {
    tail_alerts.iter().any(|(r, e, _)| r == rule && e == event)
}

#[test]
fn silences_hold_back_alerts_until_they_end_and_are_shared_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let fx = Fixture::new(
        RULES,
        1,
        &[],
        &format!("auth_token_file = {:?}\n", token_file.display().to_string()),
    );
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(WAIT);
    let http_addr = fx.http.clone();

    // POST and DELETE need the token; GET stays open.
    let body = r#"{"rule":"muted*","labels":{"desk":"asia"},"duration":"1h","comment":"test"}"#;
    assert_eq!(request(&http_addr, "POST", "/silences", body, None).0, 401);
    assert_eq!(
        request(&http_addr, "DELETE", "/silences/x", "", None).0,
        401
    );
    let (code, answer) = request(&http_addr, "POST", "/silences", "{}", Some(TOKEN));
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer.contains("rule: required") && answer.contains("comment: required"),
        "{answer}"
    );
    let out = cli(
        &http_addr,
        &["add", "--rule", "muted*", "--for", "1h", "--comment", "c"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );

    // The CLI round trip: add prints the id, list shows it.
    let out = cli(
        &http_addr,
        &[
            "add",
            "--rule",
            "muted*",
            "--label",
            "desk=asia",
            "--for",
            "1h",
            "--comment",
            "quiet desk",
        ],
        Some(TOKEN),
    );
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!id.is_empty());
    let out = cli(&http_addr, &["list"], None);
    assert!(out.status.success(), "{out:?}");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains(&id) && list.contains("quiet desk"), "{list}");
    assert_eq!(listed(&http_addr), vec![id.clone()]);
    assert_eq!(daemon.metric("newswatch_silences_active"), Some(1.0));

    // Three events: the twins alert, the silenced rules hold back.
    let producer = Producer::new(&fx.broker.addr());
    for (i, e) in ["e1", "e2", "e3"].iter().enumerate() {
        producer.send(&fx.input, None, None, &event(e, 9 + i as u32));
    }
    producer.flush();
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let silenced = |d: &DaemonProc, rule: &str| {
        d.metric(&format!(
            r#"newswatch_alerts_suppressed_total{{reason="silenced",rule="{rule}"}}"#
        ))
    };
    assert!(
        wait_for(WAIT, || silenced(&daemon, "muted") == Some(3.0)
            && silenced(&daemon, "muted-st") == Some(3.0)),
        "silenced counts: {:?} {:?}",
        silenced(&daemon, "muted"),
        silenced(&daemon, "muted-st")
    );
    assert!(tail.wait(WAIT, |r| {
        let a = alerts_of(r);
        ["e1", "e2", "e3"]
            .iter()
            .all(|e| has(&a, "twin", e) && has(&a, "twin-st", e))
    }));
    let seen = alerts_of(&tail.records);
    assert!(
        !seen.iter().any(|(r, _, _)| r.starts_with("muted")),
        "silenced rules alerted: {seen:?}"
    );

    // Expired through the CLI: the next alert carries the three held back.
    let out = cli(&http_addr, &["expire", &id], Some(TOKEN));
    assert!(out.status.success(), "{out:?}");
    assert!(listed(&http_addr).is_empty());
    let out = cli(&http_addr, &["expire", &id], Some(TOKEN));
    assert_eq!(out.status.code(), Some(1), "expired twice: {out:?}");
    assert_eq!(daemon.metric("newswatch_silences_active"), Some(0.0));
    producer.send(&fx.input, None, None, &event("e4", 12));
    producer.flush();
    let rules = [("muted", 3), ("muted-st", 3), ("twin", 0), ("twin-st", 0)];
    assert!(tail.wait(WAIT, |r| {
        let a = alerts_of(r);
        rules.iter().all(|(rule, _)| has(&a, rule, "e4"))
    }));
    let seen = alerts_of(&tail.records);
    for (rule, want) in rules {
        let got = seen
            .iter()
            .find(|(r, e, _)| r == rule && e == "e4")
            .map(|x| x.2);
        assert_eq!(got, Some(want), "{rule}: e4's suppressed");
    }
    assert!(
        !seen
            .iter()
            .any(|(r, e, _)| r.starts_with("muted") && e != "e4"),
        "silenced rules alerted: {seen:?}"
    );

    // Durable: a silence made before a restart is in force after it, and
    // listed as soon as the daemon is ready.
    let body = r#"{"rule":"twin","duration":"2h","comment":"kept","created_by":"ann"}"#;
    let (code, answer) = request(&http_addr, "POST", "/silences", body, Some(TOKEN));
    assert_eq!(code, 201, "{answer}");
    let kept: Value = serde_json::from_str(&answer).unwrap();
    let kept = kept["id"].as_str().unwrap().to_owned();
    daemon.terminate(Duration::from_secs(15));
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(WAIT);
    assert_eq!(listed(&http_addr), vec![kept.clone()]);

    // Shared: a second instance of the group applies what the first holds,
    // and the first follows what the second writes.
    let http2 = format!("127.0.0.1:{}", free_port());
    let dir2 = tempfile::tempdir().unwrap();
    let config2 = Setup {
        brokers: &fx.broker.addr(),
        input: &fx.input,
        alerts: &fx.alerts,
        dlq: &fx.dlq,
        group: &fx.group,
        http: &http2,
        rules: &fx.rules,
    }
    .write_config(dir2.path());
    let mut second = DaemonProc::spawn(BIN, &config2, dir2.path(), &http2);
    second.wait_ready(WAIT);
    assert_eq!(listed(&http2), vec![kept.clone()]);
    let body = r#"{"rule":"twin-st","duration":"1h","comment":"from the second"}"#;
    let (code, answer) = request(&http2, "POST", "/silences", body, None);
    assert_eq!(code, 201, "{answer}");
    assert!(
        wait_for(Duration::from_secs(10), || listed(&http_addr).len() == 2),
        "the first instance does not follow: {:?}",
        listed(&http_addr)
    );
    second.terminate(Duration::from_secs(15));
    daemon.terminate(Duration::from_secs(15));
}
