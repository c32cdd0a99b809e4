//! The Alertmanager output against a real Alertmanager (Debian package
//! `prometheus-alertmanager`) and a real broker (Tansu), with the daemon as
//! a child process: what arrives in Alertmanager (labels, annotations,
//! times), that an Alertmanager that is down or hangs holds back neither
//! Kafka alerts nor offsets, is retried, and does not delay exit, that a
//! refusal is counted and not retried, and HTTPS with basic auth.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use newswatch_testkit::*;
use newswatch_testkit_kafka::*;
use serde_json::Value;

use crate::util::BIN;

/// Where Alertmanager is: `$ALERTMANAGER`, else `prometheus-alertmanager`
/// (Debian's name) on PATH.
fn alertmanager_bin() -> PathBuf {
    std::env::var_os("ALERTMANAGER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("prometheus-alertmanager"))
}

/// A real Alertmanager: one route to a receiver that notifies nobody,
/// storage in a temp dir, clustering off, on a given port; plain HTTP, or
/// HTTPS with basic auth ([`Tls`]).
struct Alertmanager {
    port: u16,
    dir: tempfile::TempDir,
    proc: Proc,
    tls: Option<Tls>,
}

const AM_CONFIG: &str = r#"
route:
  receiver: "null"
  group_by: [alertname]
receivers:
  - name: "null"
"#;

/// HTTPS for Alertmanager: a test CA and a server certificate for
/// 127.0.0.1 (made with the openssl command), and one basic-auth user.
struct Tls {
    ca: PathBuf,
    user: &'static str,
    password: &'static str,
}

/// bcrypt (cost 4, to keep the test fast) of "s3cret".
const PASSWORD_HASH: &str = "$2b$04$8W8vbqjr79CdfqLrCDzVF.r0bxPqbocK2fbyp57/a8rElhHMFew3e";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl not found: scripts/test installs it (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Write a CA, and a server key and certificate for 127.0.0.1 signed by
/// it, into `dir`; return the web config for Alertmanager.
fn make_tls(dir: &Path) -> (Tls, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=newswatch test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  newswatch: \"{PASSWORD_HASH}\"\n",
            dir.join("server.crt").display(),
            dir.join("server.key").display()
        ),
    )
    .unwrap();
    let tls = Tls {
        ca: dir.join("ca.pem"),
        user: "newswatch",
        password: "s3cret",
    };
    (tls, web)
}

impl Alertmanager {
    fn start_on(port: u16) -> Alertmanager {
        Self::start(port, false)
    }

    fn start(port: u16, https: bool) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, AM_CONFIG).unwrap();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let mut cmd = Command::new(alertmanager_bin());
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log);
        let tls = https.then(|| {
            let (tls, web) = make_tls(dir.path());
            cmd.arg(format!("--web.config.file={}", web.display()));
            tls
        });
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); scripts/test installs it: apt-get install prometheus-alertmanager",
                alertmanager_bin().display()
            )
        });
        let mut am = Alertmanager {
            port,
            dir,
            proc: Proc::new(child),
            tls,
        };
        let ready = wait_for(Duration::from_secs(30), || {
            am.get("/-/ready").is_some_and(|(code, _)| code == 200)
        });
        if !ready {
            am.stop();
            panic!("alertmanager not ready:\n{}", am.log());
        }
        am
    }

    /// The URL newswatch is given (with the credentials, for HTTPS).
    fn url(&self) -> String {
        match &self.tls {
            None => format!("http://127.0.0.1:{}", self.port),
            Some(t) => format!("https://{}:{}@127.0.0.1:{}", t.user, t.password, self.port),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// GET a path: (status, body), `None` when there is no answer.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{}{path}", self.port);
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(5));
        if let Some(t) = &self.tls {
            let ca = reqwest::Certificate::from_pem(&std::fs::read(&t.ca).unwrap()).unwrap();
            b = b.add_root_certificate(ca);
        }
        let client = b.build().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut req = client.get(&url);
            if let Some(t) = &self.tls {
                req = req.basic_auth(t.user, Some(t.password));
            }
            let resp = req.send().await.ok()?;
            let code = resp.status().as_u16();
            Some((code, resp.text().await.ok()?))
        })
    }

    /// `GET /api/v2/alerts`: every alert Alertmanager holds.
    fn alerts(&self) -> Vec<Value> {
        self.get("/api/v2/alerts")
            .and_then(|(_, body)| serde_json::from_str(&body).ok())
            .unwrap_or_default()
    }

    /// Poll until Alertmanager holds at least `n` alerts.
    fn wait_alerts(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let mut got = Vec::new();
        wait_for(timeout, || {
            got = self.alerts();
            got.len() >= n
        });
        got
    }

    fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }

    fn stop(&mut self) {
        self.proc.kill();
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        if self.proc.is_running() {
            // A frozen process still dies of SIGKILL; thaw it anyway.
            self.signal("CONT");
        }
        self.stop();
        if std::thread::panicking() {
            eprintln!("----- alertmanager log -----\n{}", self.log());
        }
    }
}

const RULES: &str = r#"
rules:
  - id: lavrov
    title: Lavrov says something
    severity: high
    query: 'lavrov NEAR/5 (said OR warned)'
    labels: {desk: russia, team-name: europe, severity: ignored}
  - id: drills
    title: Military drills
    severity: low
    query: 'drills'
"#;

/// A broker, topics, a rule file and a config with `[alertmanager] url`.
fn fixture(am_url: &str, am_timeout: &str) -> AmFixture {
    AmFixture(Fixture::new(
        RULES,
        1,
        &[],
        &format!("\n[alertmanager]\nurl = \"{am_url}\"\ntimeout = \"{am_timeout}\"\n"),
    ))
}

/// The shared fixture, with the steps these tests take on it.
struct AmFixture(Fixture);

impl std::ops::Deref for AmFixture {
    type Target = Fixture;

    fn deref(&self) -> &Fixture {
        &self.0
    }
}

impl AmFixture {
    /// The daemon, ready.
    fn start(&self) -> DaemonProc {
        let mut d = DaemonProc::spawn(BIN, &self.config, self.dir.path(), &self.http);
        d.wait_ready(Duration::from_secs(60));
        d
    }

    /// The daemon trusting `ca` (rustls reads `SSL_CERT_FILE`), started
    /// through a wrapper script since `DaemonProc` passes its own
    /// environment on.
    fn spawn_trusting(&self, ca: &Path) -> DaemonProc {
        use std::os::unix::fs::PermissionsExt;
        let wrapper = self.dir.path().join("newswatch-with-ca");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nSSL_CERT_FILE='{}' exec '{BIN}' \"$@\"\n",
                ca.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut d = DaemonProc::spawn(
            wrapper.to_str().unwrap(),
            &self.config,
            self.dir.path(),
            &self.http,
        );
        d.wait_ready(Duration::from_secs(60));
        d
    }

    fn produce(&self, events: &[Value]) {
        let p = Producer::new(&self.broker.addr());
        for e in events {
            p.send(&self.input, Some(0), None, e.to_string().as_bytes());
        }
        p.flush();
    }

    /// The group's committed offset of input partition 0 (-1: none).
    fn committed(&self) -> i64 {
        committed_offsets(&self.broker.addr(), &self.group, &self.input, 1).map_or(-1, |o| o[0])
    }
}

fn lavrov(id: &str, title: Option<&str>, url: Option<&str>) -> Value {
    let mut e = serde_json::json!({
        "id": id,
        "body": format!("Sergey Lavrov warned about {id} on Monday."),
        "source": "tass.ru",
        "lang": "en",
        "published_at": "2026-07-12T09:00:00Z",
    });
    if let Some(t) = title {
        e["title"] = t.into();
    }
    if let Some(u) = url {
        e["url"] = u.into();
    }
    e
}

fn labels(a: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(a["labels"].clone()).unwrap()
}

fn time(a: &Value, key: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(a[key].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn metric(d: &DaemonProc, sample: &str) -> f64 {
    d.metric(sample).unwrap_or(0.0)
}

const SENT: &str = "newswatch_alertmanager_alerts_sent_total";

/// The labels, annotations and times of the four alerts of
/// `alerts_reach_alertmanager_with_labels_and_annotations`, as Alertmanager
/// holds them.
fn check_alert_fields(got: &[Value]) {
    let by_event = |id: &str| {
        got.iter()
            .find(|a| a["annotations"]["event_id"] == id)
            .unwrap_or_else(|| panic!("no alert for event {id}: {got:#?}"))
    };
    let now = Utc::now();
    for a in got {
        let l = labels(a);
        let keys: Vec<&str> = l.keys().map(String::as_str).collect();
        assert!(
            a["status"]["state"] == "active",
            "firing, not resolved: {a:#}"
        );
        assert!(a["annotations"]["source"].is_string(), "{a:#}");
        let ends = time(a, "endsAt");
        assert!(
            ends > now + chrono::Duration::minutes(14)
                && ends < now + chrono::Duration::minutes(16),
            "endsAt 15 minutes after sending: {ends} (now {now})"
        );
        if l["alertname"] == "lavrov" {
            assert_eq!(
                keys,
                ["alert_id", "alertname", "desk", "severity", "team_name"]
            );
            assert_eq!(l["severity"], "high", "the rule's severity, not its label");
            assert_eq!(l["desk"], "russia");
            assert_eq!(l["team_name"], "europe", "label name made valid");
            assert_eq!(
                time(a, "startsAt").to_rfc3339(),
                "2026-07-12T09:00:00+00:00"
            );
            assert!(a["annotations"]["snippet"]
                .as_str()
                .unwrap()
                .contains("Lavrov warned"));
            assert_eq!(a["annotations"]["rule_title"], "Lavrov says something");
        } else {
            assert_eq!(keys, ["alert_id", "alertname", "severity"]);
            assert_eq!(l["alertname"], "drills");
            assert_eq!(l["severity"], "low");
        }
    }
    let e1 = by_event("e1");
    assert_eq!(e1["annotations"]["title"], "Lavrov warns Seoul");
    assert_eq!(e1["annotations"]["url"], "https://example.com/news/1");
    assert_eq!(e1["generatorURL"], "https://example.com/news/1");
    let e2 = by_event("e2");
    assert_eq!(e2["annotations"]["url"], "http://example.com/news two");
    assert_eq!(e2["generatorURL"], "http://example.com/news%20two");
    let e3 = by_event("e3");
    assert_eq!(e3["annotations"]["title"], "Lavrov says something");
    assert!(e3["annotations"].get("url").is_none(), "{e3:#}");
    let d = by_event("4");
    assert_eq!(d["annotations"]["title"], "Joint drills");
    assert_eq!(d["annotations"]["url"], "ftp://example.com/drills");
    assert!(d["generatorURL"].as_str().unwrap_or("").is_empty(), "{d:#}");
}

#[test]
fn alerts_reach_alertmanager_with_labels_and_annotations() {
    let t0 = Instant::now();
    let am = Alertmanager::start_on(free_port());
    let fx = fixture(&am.url(), "5s");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut daemon = fx.start();
    let events = [
        lavrov(
            "e1",
            Some("Lavrov warns Seoul"),
            Some("https://example.com/news/1"),
        ),
        // A URL Alertmanager's API would refuse as generatorURL (space):
        // it must not cost the batch.
        lavrov(
            "e2",
            Some("Lavrov again"),
            Some("http://example.com/news two"),
        ),
        // No title: the rule's title stands in; no URL.
        lavrov("e3", None, None),
        serde_json::json!({"id": 4, "title": "Joint drills", "body": "Navies held drills.",
                           "url": "ftp://example.com/drills", "source": "yonhap.co.kr"}),
    ];
    fx.produce(&events);
    assert!(
        tail.wait(Duration::from_secs(60), |r| r.len() >= 4),
        "Kafka alerts: {}",
        tail.records.len()
    );
    let kafka_ids: HashSet<String> = tail
        .records
        .iter()
        .map(|r| r.headers["newswatch-alert-id"].clone())
        .collect();
    let got = am.wait_alerts(4, Duration::from_secs(30));
    let took = t0.elapsed();
    assert_eq!(got.len(), 4, "alerts in Alertmanager: {got:#?}");
    let am_ids: HashSet<String> = got.iter().map(|a| labels(a)["alert_id"].clone()).collect();
    assert_eq!(am_ids, kafka_ids, "one Alertmanager alert per Kafka alert");

    check_alert_fields(&got);
    assert!(
        wait_for(Duration::from_secs(5), || metric(&daemon, SENT) == 4.0),
        "{SENT}: {:?}",
        daemon.metric(SENT)
    );
    let m = daemon.get("/metrics").1;
    assert!(
        !m.contains("kind=\"alertmanager_"),
        "no errors expected:\n{m}"
    );

    // The same events again (a new consumer group re-reads the topic, as
    // after a crash): the same alert_ids, so Alertmanager merges them into
    // the alerts it has; a new event still adds one.
    daemon.kill();
    let text = std::fs::read_to_string(&fx.config).unwrap();
    std::fs::write(&fx.config, text.replace(&fx.group, &unique("g2"))).unwrap();
    let mut daemon = fx.start();
    fx.produce(&[lavrov("e5", Some("Lavrov once more"), None)]);
    assert!(
        tail.wait(Duration::from_secs(60), |r| r.len() >= 9),
        "Kafka alerts after the re-read: {}",
        tail.records.len()
    );
    assert!(
        wait_for(Duration::from_secs(10), || metric(&daemon, SENT) == 5.0),
        "{SENT} after the re-read: {:?}",
        daemon.metric(SENT)
    );
    let got = am.alerts();
    assert_eq!(got.len(), 5, "{got:#?}");
    daemon.terminate(Duration::from_secs(15));
    eprintln!(
        "alertmanager: 4 alerts in Alertmanager {took:?} after the start (whole test {:?})",
        t0.elapsed()
    );
}

#[test]
fn alertmanager_down_holds_back_nothing_and_is_retried() {
    let t0 = Instant::now();
    // Nothing listens on this port yet.
    let port = free_port();
    let fx = fixture(&format!("http://127.0.0.1:{port}"), "1s");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let mut daemon = fx.start();
    let n = 5;
    let events: Vec<Value> = (0..n)
        .map(|i| lavrov(&format!("d{i}"), Some("Lavrov"), None))
        .collect();
    fx.produce(&events);

    // Kafka alerts and offsets go on as if Alertmanager did not exist.
    assert!(
        tail.wait(Duration::from_secs(60), |r| r.len() >= n),
        "Kafka alerts while Alertmanager is down: {}",
        tail.records.len()
    );
    assert!(
        wait_for(Duration::from_secs(20), || fx.committed() == n as i64),
        "offsets committed while Alertmanager is down: {}",
        fx.committed()
    );
    let connect = "newswatch_publish_errors_total{kind=\"alertmanager_connect\"}";
    assert!(
        wait_for(Duration::from_secs(10), || metric(&daemon, connect) >= 1.0),
        "{connect}: {:?}",
        daemon.metric(connect)
    );
    assert_eq!(metric(&daemon, SENT), 0.0);
    let down_for = t0.elapsed();
    // Retried with backoff, not in a tight loop; the log is rate-limited.
    let attempts = metric(&daemon, connect);
    assert!(attempts < 20.0, "{attempts} attempts in {down_for:?}");
    let lines = daemon.log().matches("POST failed").count();
    assert!(lines <= 2, "{lines} error lines in {down_for:?}");

    // Alertmanager comes up: the retries deliver what was queued.
    let am = Alertmanager::start_on(port);
    let up = Instant::now();
    let got = am.wait_alerts(n, Duration::from_secs(30));
    let retried_after = up.elapsed();
    assert_eq!(got.len(), n, "retried alerts in Alertmanager: {got:#?}");
    let kafka_ids: HashSet<String> = tail
        .records
        .iter()
        .map(|r| r.headers["newswatch-alert-id"].clone())
        .collect();
    let am_ids: HashSet<String> = got.iter().map(|a| labels(a)["alert_id"].clone()).collect();
    assert_eq!(am_ids, kafka_ids);
    assert!(wait_for(Duration::from_secs(5), || metric(&daemon, SENT) == n as f64));
    let dropped = "newswatch_alertmanager_alerts_dropped_total";
    assert!(
        !daemon
            .get("/metrics")
            .1
            .lines()
            .any(|l| l.starts_with(dropped) && !l.ends_with(" 0")),
        "nothing dropped"
    );

    // Alertmanager hangs (SIGSTOP: connections open, no answer): the
    // per-request timeout fires, Kafka goes on, and SIGTERM still exits
    // promptly (the flush gets at most 2 s of shutdown_timeout = 10 s).
    am.signal("STOP");
    fx.produce(&[lavrov("h1", Some("Lavrov"), None)]);
    assert!(
        tail.wait(Duration::from_secs(30), |r| r.len() > n),
        "Kafka alert while Alertmanager hangs"
    );
    assert!(
        wait_for(Duration::from_secs(20), || fx.committed() == n as i64 + 1),
        "offset committed while Alertmanager hangs: {}",
        fx.committed()
    );
    let timeout = "newswatch_publish_errors_total{kind=\"alertmanager_timeout\"}";
    assert!(
        wait_for(Duration::from_secs(10), || metric(&daemon, timeout) >= 1.0),
        "{timeout}: {:?}",
        daemon.metric(timeout)
    );
    let t = Instant::now();
    daemon.signal("TERM");
    let st = daemon.wait_exit(Duration::from_secs(15));
    let exit_took = t.elapsed();
    am.signal("CONT");
    assert!(st.is_some_and(|s| s.success()), "exit: {st:?}");
    assert!(
        exit_took < Duration::from_secs(5),
        "exit with a hanging Alertmanager took {exit_took:?}"
    );
    assert!(
        daemon.log().contains("undelivered alerts dropped"),
        "the alert given up at shutdown is logged"
    );
    eprintln!(
        "alertmanager down: Kafka alerts and offsets done, errors counted after {down_for:?}; \
         {attempts} attempts; retried alerts arrived {retried_after:?} after Alertmanager came up; \
         exit with a hanging Alertmanager took {exit_took:?} (whole test {:?})",
        t0.elapsed()
    );
}

/// A URL Alertmanager answers with a 4xx (here a wrong path prefix): not
/// retried (it would be refused again), counted as rejected and dropped,
/// logged; Kafka alerts unaffected.
#[test]
fn refused_posts_are_counted_not_retried() {
    let am = Alertmanager::start_on(free_port());
    let fx = fixture(&format!("{}/no-such-prefix", am.url()), "5s");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let daemon = fx.start();
    fx.produce(&[lavrov("r1", Some("Lavrov"), None)]);
    assert!(tail.wait(Duration::from_secs(60), |r| !r.is_empty()));
    let rejected = "newswatch_alertmanager_alerts_dropped_total{reason=\"rejected\"}";
    assert!(
        wait_for(Duration::from_secs(10), || metric(&daemon, rejected) == 1.0),
        "{rejected}: {:?}",
        daemon.metric(rejected)
    );
    // One attempt only: a refusal is not retried.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        metric(
            &daemon,
            "newswatch_publish_errors_total{kind=\"alertmanager_rejected\"}"
        ),
        1.0
    );
    assert!(daemon.log().contains("alertmanager refused alerts"));
    assert!(am.alerts().is_empty());
}

/// HTTPS with credentials in the URL: the server certificate is checked
/// against the system trust store (here a test CA through SSL_CERT_FILE),
/// the credentials become basic auth, and they never appear in the log.
#[test]
fn https_with_basic_auth_from_the_url() {
    let am = Alertmanager::start(free_port(), true);
    let tls = am.tls.as_ref().unwrap();
    // Without the credentials Alertmanager refuses (the auth is real).
    assert_eq!(
        http(&format!("127.0.0.1:{}", am.port), "GET", "/-/ready").0,
        400,
        "plain HTTP to an HTTPS port"
    );
    let fx = fixture(&am.url(), "5s");
    let mut tail = Tail::new(&fx.broker.addr(), &fx.alerts);
    let daemon = fx.spawn_trusting(&tls.ca);
    fx.produce(&[lavrov("s1", Some("Lavrov over TLS"), None)]);
    assert!(tail.wait(Duration::from_secs(60), |r| !r.is_empty()));
    let got = am.wait_alerts(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1, "{got:#?}\n{}", daemon.log());
    assert_eq!(got[0]["annotations"]["title"], "Lavrov over TLS");
    assert_eq!(metric(&daemon, SENT), 1.0);
    let log = daemon.log();
    assert!(log.contains("alertmanager output on"), "{log}");
    assert!(
        !log.contains(tls.password),
        "the password is logged:\n{log}"
    );
}
