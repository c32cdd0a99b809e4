//! Test harness: a real Kafka-compatible broker (Tansu) per test, and
//! helpers to produce, consume and run the daemon.
//!
//! Each `Broker` runs `tansu broker` from its own temporary directory (Tansu
//! reads `.env` from its working directory), on a free port, with SQLite
//! storage, so it can be stopped and restarted on the same data. Tests use
//! their own topics and consumer groups. No mock stands in for Kafka.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::util::Timeout;

/// Where the `tansu` binary is: `$TANSU`, else `~/.cargo/bin/tansu`, else PATH.
pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = Path::new(&home).join(".cargo/bin/tansu");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("tansu")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Broker {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Broker {
    /// Start a broker on a free port with SQLite storage in a temp directory.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Broker {
            port: free_port(),
            dir,
            child: None,
        };
        b.restart();
        b
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// (Re)start on the same port and SQLite file.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let log = std::fs::File::create(self.dir.path().join("tansu.log")).unwrap();
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &self.url(),
                "--advertised-listener-url",
                &self.url(),
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); scripts/test installs it: cargo install tansu@0.6.0 --locked --features libsql,dynostore",
                    tansu_bin().display()
                )
            });
        self.child = Some(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "tansu did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the broker (SIGKILL: an outage, not a clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freeze the broker (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaw a broker frozen by `pause` (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        send_signal(self.child.as_ref().expect("broker not running").id(), sig);
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu_bin())
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
                "--broker",
                &self.url(),
            ])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A unique suffix for topic and group names.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Producer {
    inner: ThreadedProducer<DefaultProducerContext>,
}

impl Producer {
    pub fn new(brokers: &str) -> Producer {
        let inner = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "1")
            .set("message.max.bytes", "10000000")
            .create()
            .unwrap();
        Producer { inner }
    }

    pub fn send(&self, topic: &str, partition: Option<i32>, key: Option<&[u8]>, payload: &[u8]) {
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(payload);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(p) = partition {
            rec = rec.partition(p);
        }
        let mut rec = rec;
        loop {
            match self.inner.send(rec) {
                Ok(()) => return,
                Err((e, r)) => {
                    assert!(format!("{e}").contains("Queue full"), "produce failed: {e}");
                    rec = r;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    pub fn flush(&self) {
        self.inner
            .flush(Timeout::After(Duration::from_secs(30)))
            .unwrap();
    }
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl Record {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

/// Read every record of `topic` (from the beginning, all partitions) until
/// `until` says enough or `timeout` passes.
pub fn consume_until(
    brokers: &str,
    topic: &str,
    timeout: Duration,
    until: impl Fn(&[Record]) -> bool,
) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let t = Instant::now();
    while t.elapsed() < timeout && !until(&out) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push(to_record(&m));
        }
    }
    out
}

fn to_record(m: &impl Message) -> Record {
    let mut headers = HashMap::new();
    if let Some(h) = m.headers() {
        for x in h.iter() {
            headers.insert(
                x.key.to_owned(),
                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
            );
        }
    }
    Record {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
    }
}

/// A reader that stays subscribed to a topic (from the beginning) and
/// accumulates its records across calls, so a test can wait repeatedly
/// without re-reading the topic each time.
pub struct Tail {
    consumer: BaseConsumer,
    pub records: Vec<Record>,
}

impl Tail {
    pub fn new(brokers: &str, topic: &str) -> Tail {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("tail"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        Tail {
            consumer,
            records: Vec::new(),
        }
    }

    /// Take what is available now (waiting at most `max_wait` for the first).
    pub fn poll(&mut self, max_wait: Duration) {
        let mut wait = max_wait;
        while let Some(m) = self.consumer.poll(wait) {
            if let Ok(m) = m {
                self.records.push(to_record(&m));
            }
            wait = Duration::ZERO;
        }
    }

    /// Poll until `until` holds for the records so far or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration, mut until: impl FnMut(&[Record]) -> bool) -> bool {
        let t = Instant::now();
        loop {
            if until(&self.records) {
                return true;
            }
            if t.elapsed() >= timeout {
                return false;
            }
            self.poll(Duration::from_millis(200));
        }
    }

    /// How often each `newswatch-alert-id` header value was seen.
    pub fn alert_counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for r in &self.records {
            if let Some(id) = r.headers.get("newswatch-alert-id") {
                *m.entry(id.clone()).or_insert(0) += 1;
            }
        }
        m
    }
}

/// GET or POST a path on the daemon's HTTP listener; (status, body).
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// What a daemon under test is pointed at.
pub struct Setup<'a> {
    pub brokers: &'a str,
    pub input: &'a str,
    pub alerts: &'a str,
    pub dlq: &'a str,
    pub group: &'a str,
    pub http: &'a str,
    pub rules: &'a Path,
}

impl Setup<'_> {
    /// Write the daemon's config file into `dir`.
    pub fn write_config(&self, dir: &Path) -> PathBuf {
        self.write_config_with(dir, &[], "")
    }

    /// Like `write_config`, with extra `kafka.consumer_properties` and
    /// `extra` TOML appended at the end (new sections only).
    pub fn write_config_with(
        &self,
        dir: &Path,
        consumer_properties: &[(&str, &str)],
        extra: &str,
    ) -> PathBuf {
        let p = dir.join("newswatch.toml");
        let props: String = consumer_properties
            .iter()
            .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
            .collect();
        std::fs::write(
            &p,
            format!(
                r#"[kafka]
brokers = "{brokers}"
group_id = "{group}"
input_topics = ["{input}"]
alert_topic = "{alerts}"
dlq_topic = "{dlq}"
shutdown_timeout = "10s"

[kafka.consumer_properties]
"auto.commit.interval.ms" = "200"
{props}
[rules]
paths = ["{rules}"]
watch = true

[http]
listen = "{http}"
{extra}
"#,
                brokers = self.brokers,
                group = self.group,
                input = self.input,
                alerts = self.alerts,
                dlq = self.dlq,
                http = self.http,
                rules = self.rules.display(),
            ),
        )
        .unwrap();
        p
    }
}

pub const RULES: &str = r#"
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

/// The `newswatch` binary as a child process (`run -c CONFIG`, cwd `dir`),
/// stderr appended to `dir/daemon.log`. Killed when dropped; when dropped
/// during a panic (or with `NEWSWATCH_TEST_LOG` set), the tail of the log
/// is printed.
pub struct DaemonProc {
    child: Option<Child>,
    pub http: String,
    log: PathBuf,
}

impl DaemonProc {
    pub fn spawn(bin: &str, config: &Path, dir: &Path, http: &str) -> DaemonProc {
        use std::io::Write;
        let log = dir.join("daemon.log");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        writeln!(f, "===== newswatch run (spawned) =====").unwrap();
        let child = Command::new(bin)
            .arg("run")
            .arg("-c")
            .arg(config)
            .current_dir(dir)
            .env(
                "RUST_LOG",
                std::env::var("NEWSWATCH_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap();
        DaemonProc {
            child: Some(child),
            http: http.to_owned(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon not running").id()
    }

    /// Send a signal by name (`TERM`, `HUP`, `KILL`, …).
    pub fn signal(&self, sig: &str) {
        send_signal(self.pid(), sig);
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The exit status, once the process has exited within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut()?.try_wait().unwrap() {
                self.child = None;
                return Some(st);
            }
            if t.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(&self.http, "GET", path)
    }

    pub fn wait_ready(&mut self, timeout: Duration) {
        let ok = wait_for(timeout, || self.get("/readyz").0 == 200);
        assert!(
            ok,
            "daemon never ready: {:?} (alive: {})",
            self.get("/readyz"),
            self.alive()
        );
    }

    /// The value of one metric sample (the full name with labels, as it
    /// appears in the exposition), if present.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let (code, text) = self.get("/metrics");
        if code != 200 {
            return None;
        }
        text.lines().find_map(|l| {
            l.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// VmRSS of the process, in bytes (Linux).
    pub fn rss_bytes(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let kb: u64 = s
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() || std::env::var_os("NEWSWATCH_TEST_LOG").is_some() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(300);
            eprintln!(
                "----- {} (last {} lines) -----\n{}",
                self.log.display(),
                lines.len() - from,
                lines[from..].join("\n")
            );
        }
    }
}

/// A broker, topics, a rule file and a config, all for one test.
pub struct Fixture {
    pub broker: Broker,
    pub input: String,
    pub alerts: String,
    pub group: String,
    pub http: String,
    pub rules: PathBuf,
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Faster fail-over after a SIGKILL: the dead member leaves the group when
/// its session expires.
pub const FAST_SESSION: &[(&str, &str)] = &[
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "500"),
];

impl Fixture {
    /// A fresh broker with input (`partitions`), alert and DLQ topics, the
    /// rules in a file, and a config for a new group.
    pub fn new(
        rules: &str,
        partitions: u32,
        consumer_properties: &[(&str, &str)],
        extra: &str,
    ) -> Fixture {
        let broker = Broker::start();
        let input = unique("in");
        let alerts = unique("alerts");
        let dlq = unique("dlq");
        broker.create_topic(&input, partitions);
        broker.create_topic(&alerts, 1);
        broker.create_topic(&dlq, 1);
        let dir = tempfile::tempdir().unwrap();
        let rules_path = dir.path().join("rules.yaml");
        std::fs::write(&rules_path, rules).unwrap();
        let http = format!("127.0.0.1:{}", free_port());
        let group = unique("g");
        let config = Setup {
            brokers: &broker.addr(),
            input: &input,
            alerts: &alerts,
            dlq: &dlq,
            group: &group,
            http: &http,
            rules: &rules_path,
        }
        .write_config_with(dir.path(), consumer_properties, extra);
        Fixture {
            broker,
            input,
            alerts,
            group,
            http,
            rules: rules_path,
            config,
            dir,
        }
    }

    /// The daemon binary on this fixture's config.
    pub fn spawn(&self, bin: &str) -> DaemonProc {
        DaemonProc::spawn(bin, &self.config, self.dir.path(), &self.http)
    }
}

/// Send signal `sig` (e.g. `TERM`, `STOP`) to process `pid`.
pub fn send_signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

/// Load a config file's text through the daemon's own loader, with an
/// explicit environment (so the test's own environment cannot leak in).
/// The error is the loader's message.
pub fn load_config_text(toml: &str, env: &[(&str, &str)]) -> Result<newswatch::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("newswatch.toml");
    std::fs::write(&p, toml).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    newswatch::Config::load_with_env(Some(&p), Some(env)).map_err(|e| e.to_string())
}
