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
            let mut headers = HashMap::new();
            if let Some(h) = m.headers() {
                for x in h.iter() {
                    headers.insert(
                        x.key.to_owned(),
                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            out.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                headers,
            });
        }
    }
    out
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
        let p = dir.join("newswatch.toml");
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

[rules]
paths = ["{rules}"]
watch = true

[http]
listen = "{http}"
"#,
                brokers = self.brokers,
                group = self.group,
                input = self.input,
                alerts = self.alerts,
                dlq = self.dlq,
                http = self.http,
                rules = self.rules.display()
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
