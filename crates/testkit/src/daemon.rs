//! The daemon under test: its config file ([`Setup`]), the `newswatch`
//! binary as a child process ([`DaemonProc`]), and a whole per-test world
//! of broker, topics, rules and config ([`Fixture`]).
//!
//! Every fixture has its own broker, topic names, consumer group and HTTP
//! port, so tests run in parallel without seeing each other.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::process::Proc;
use crate::tansu::Broker;
use crate::{free_port, http, metrics, unique, wait_for};

/// What a daemon is pointed at: the broker, its topics and group, its HTTP
/// listener and its rules (a file or a directory).
pub struct Setup<'a> {
    pub brokers: &'a str,
    pub input: &'a str,
    pub alerts: &'a str,
    pub dlq: &'a str,
    pub group: &'a str,
    pub http: &'a str,
    pub rules: &'a Path,
}

/// The rest of a config: client properties, rule watching, extra sections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning<'a> {
    pub consumer_properties: &'a [(&'a str, &'a str)],
    /// No `[kafka.producer_properties]` section when empty.
    pub producer_properties: &'a [(&'a str, &'a str)],
    /// `rules.watch`.
    pub watch: bool,
    /// TOML appended at the end (new sections only).
    pub extra: &'a str,
}

/// Offsets committed every 200 ms (librdkafka: 5 s), so that tests of
/// restarts and redelivery do not wait for a commit.
const TEST_COMMIT_INTERVAL: (&str, &str) = ("auto.commit.interval.ms", "200");

/// TOML lines `"key" = "value"`.
fn properties(props: &[(&str, &str)]) -> String {
    props
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
        .collect()
}

impl Setup<'_> {
    /// The config file's text.
    pub fn toml(&self, t: &Tuning<'_>) -> String {
        let producer = if t.producer_properties.is_empty() {
            String::new()
        } else {
            format!(
                "[kafka.producer_properties]\n{}",
                properties(t.producer_properties)
            )
        };
        format!(
            r#"[kafka]
brokers = "{brokers}"
group_id = "{group}"
input_topics = ["{input}"]
alert_topic = "{alerts}"
dlq_topic = "{dlq}"
shutdown_timeout = "10s"

[kafka.consumer_properties]
{consumer}{producer}
[rules]
paths = ["{rules}"]
watch = {watch}

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
            consumer = properties(t.consumer_properties),
            watch = t.watch,
            extra = t.extra,
        )
    }

    /// Write the tests' config (rules watched, offsets committed every
    /// 200 ms) to `dir/newswatch.toml`.
    pub fn write_config(&self, dir: &Path) -> PathBuf {
        self.write_config_with(dir, &[], "")
    }

    /// Like [`Setup::write_config`], with more `kafka.consumer_properties`
    /// and `extra` TOML appended at the end (new sections only).
    pub fn write_config_with(
        &self,
        dir: &Path,
        consumer_properties: &[(&str, &str)],
        extra: &str,
    ) -> PathBuf {
        let consumer = [&[TEST_COMMIT_INTERVAL][..], consumer_properties].concat();
        let text = self.toml(&Tuning {
            consumer_properties: &consumer,
            producer_properties: &[],
            watch: true,
            extra,
        });
        let p = dir.join("newswatch.toml");
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        p
    }
}

/// Faster fail-over after a SIGKILL: the dead member leaves the group when
/// its session expires.
pub const FAST_SESSION: &[(&str, &str)] = &[
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "500"),
];

/// The `newswatch` binary as a child process (`run -c CONFIG`, cwd `dir`),
/// stderr appended to `dir/daemon.log`. Killed when dropped; when dropped
/// during a panic (or with `NEWSWATCH_TEST_LOG` set), the tail of the log
/// is printed.
pub struct DaemonProc {
    proc: Proc,
    pub http: String,
    log: PathBuf,
}

impl DaemonProc {
    /// `RUST_LOG` is `$NEWSWATCH_TEST_RUST_LOG`, else `info`.
    pub fn spawn(bin: &str, config: &Path, dir: &Path, http: &str) -> DaemonProc {
        use std::io::Write;
        let log = dir.join("daemon.log");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let _ = writeln!(f, "===== newswatch run (spawned) =====");
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
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        DaemonProc {
            proc: Proc::new(child),
            http: http.to_owned(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Send a signal by name (`TERM`, `HUP`, `KILL`, …).
    pub fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// The exit status, once the process has exited within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.proc.wait_exit(timeout)
    }

    pub fn alive(&mut self) -> bool {
        self.proc.alive()
    }

    /// SIGTERM, and assert a clean exit (status 0) within `timeout`.
    #[track_caller]
    pub fn terminate(&mut self, timeout: Duration) {
        self.signal("TERM");
        let st = self.wait_exit(timeout);
        assert!(
            st.is_some_and(|s| s.success()),
            "exit after SIGTERM: {st:?}"
        );
    }

    /// GET a path on the daemon's HTTP listener: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http(&self.http, "GET", path)
    }

    /// Wait for `/readyz` to answer 200; panics after `timeout`.
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
        metrics::sample(&text, sample)
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
    pub dlq: String,
    pub group: String,
    pub http: String,
    pub rules: PathBuf,
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
}

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
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let rules_path = dir.path().join("rules.yaml");
        std::fs::write(&rules_path, rules).unwrap_or_else(|e| panic!("rules file: {e}"));
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
            dlq,
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
