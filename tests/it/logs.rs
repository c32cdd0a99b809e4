//! No secret ever reaches the logs (docs/operator-guide.md, "Security").
//!
//! The built `newswatch` binary runs with a canary SASL password in every
//! place a secret can be configured — the config file's
//! `kafka.consumer_properties` / `kafka.producer_properties` and the
//! `NEWSWATCH__KAFKA__…_PROPERTIES__…` environment variables — with
//! everything logged (`RUST_LOG=trace`, librdkafka `debug = "all"`), in
//! both log formats, against a real Tansu broker (which fails the SASL
//! handshake: fine) and against a port nobody listens on; and through the
//! error paths that could echo a value: a rejected value of another
//! property, a misspelt password property, a password line the TOML parser
//! rejects, a table given as a string, a NUL byte, and `check -c`. The
//! canary must never appear on stdout or stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use newswatch_testkit::{free_port, Broker, Proc};

use crate::util::BIN;

const CANARY: &str = "canary-Sup3rS3cret";

/// Environment variables a case sets.
type Env<'a> = &'a [(&'a str, &'a str)];

/// SASL properties for one client, with the canary password, everything
/// debug-logged, and `extra` lines appended.
fn props(mechanism: &str, extra: &str) -> String {
    format!(
        "\"security.protocol\" = \"SASL_PLAINTEXT\"\n\
         \"sasl.mechanism\" = \"{mechanism}\"\n\
         \"sasl.username\" = \"u\"\n\
         \"sasl.password\" = \"{CANARY}\"\n\
         \"debug\" = \"all\"\n{extra}"
    )
}

/// A daemon config: consumer with SASL PLAIN, producer with SCRAM (so both
/// mechanisms' code paths log), `consumer_extra` appended to the consumer.
fn config(brokers: &str, consumer_extra: &str) -> String {
    format!(
        "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"logs-test\"\nshutdown_timeout = \"3s\"\n\
         [kafka.consumer_properties]\n{}\n\
         [kafka.producer_properties]\n{}\n\
         [rules]\npaths = [\"rules.yaml\"]\nwatch = false\n\
         [http]\nlisten = \"127.0.0.1:0\"\n",
        props("PLAIN", consumer_extra),
        props("SCRAM-SHA-512", ""),
    )
}

const RULES: &str = "rules:\n  - id: r\n    title: t\n    query: lavrov\n";

/// One run of the binary; stdout and stderr go to files (librdkafka's
/// debug output would fill a pipe nobody reads). A run still going when the
/// test fails is killed, not left behind.
struct Run {
    name: String,
    proc: Proc,
    dir: PathBuf,
}

fn spawn(dir: &Path, name: &str, args: &[&str], config_text: Option<&str>, env: Env) -> Run {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.yaml"), RULES).unwrap();
    if let Some(text) = config_text {
        std::fs::write(dir.join("newswatch.toml"), text).unwrap();
    }
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(&dir)
        .env_remove("NEWSWATCH_CONFIG")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    // Only what the case sets: no NEWSWATCH__ variable from the caller.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("NEWSWATCH__")
        {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run {
        name: name.to_owned(),
        proc: Proc::new(cmd.spawn().expect("spawn newswatch")),
        dir,
    }
}

struct Finished {
    name: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn wait(mut self, timeout: Duration) -> Finished {
        let Some(status) = self.proc.wait_exit(timeout) else {
            panic!("{}: still running after {timeout:?}", self.name);
        };
        let read = |f: &str| {
            String::from_utf8_lossy(&std::fs::read(self.dir.join(f)).unwrap_or_default())
                .into_owned()
        };
        Finished {
            code: status.code(),
            stdout: read("stdout"),
            stderr: read("stderr"),
            name: self.name.clone(),
        }
    }

    fn terminate(&self) {
        self.proc.signal("TERM");
    }
}

impl Finished {
    #[track_caller]
    fn assert_no_canary(&self) {
        for (stream, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if let Some(at) = text.find(CANARY) {
                let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
                panic!(
                    "{}: the canary password is on {stream}:\n{}",
                    self.name,
                    &text[from..to]
                );
            }
        }
    }

    #[track_caller]
    fn assert_mentions(&self, needle: &str) {
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "{}: expected {needle:?} in the output (did the case run?)\nstdout:\n{}\nstderr (end):\n{}",
            self.name,
            self.stdout,
            tail(&self.stderr)
        );
    }
}

fn tail(s: &str) -> &str {
    let mut i = s.len().saturating_sub(3000);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// The daemon connects (or tries to), logs everything librdkafka says for a
/// few seconds, and drains on SIGTERM; the canary never shows.
#[test]
fn running_daemon_never_logs_the_password() {
    let broker = Broker::start();
    // The topics of the default config: the daemon checks they exist.
    for t in ["news.events", "news.alerts", "news.events.dlq"] {
        broker.create_topic(t, 1);
    }
    let nobody = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let env_secret = [
        (
            "NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SECURITY__PROTOCOL",
            "SASL_PLAINTEXT",
        ),
        (
            "NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SASL__MECHANISM",
            "SCRAM-SHA-256",
        ),
        ("NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SASL__USERNAME", "u"),
        (
            "NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SASL__PASSWORD",
            CANARY,
        ),
        ("NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__DEBUG", "all"),
    ];
    let env_config = format!(
        "[kafka]\nbrokers = \"{}\"\nshutdown_timeout = \"3s\"\n[rules]\npaths = [\"rules.yaml\"]\nwatch = false\n[http]\nlisten = \"127.0.0.1:0\"\n",
        broker.addr()
    );
    // (name, config, log format, env)
    let mut cases: Vec<(String, String, &str, Env)> = Vec::new();
    for fmt in ["text", "json"] {
        cases.push((format!("tansu-{fmt}"), config(&broker.addr(), ""), fmt, &[]));
        cases.push((format!("unreachable-{fmt}"), config(&nobody, ""), fmt, &[]));
    }
    cases.push(("env-json".into(), env_config, "json", &env_secret));
    let runs: Vec<Run> = cases
        .iter()
        .map(|(name, text, fmt, env)| {
            spawn(
                dir.path(),
                name,
                &["--log-format", fmt, "run", "-c", "newswatch.toml"],
                Some(text),
                env,
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    for r in &runs {
        r.terminate();
    }
    for r in runs {
        let f = r.wait(Duration::from_secs(30));
        f.assert_no_canary();
        // The cases did what they are for: the SASL client configured
        // (librdkafka dumps its configuration, password redacted), the
        // broker tried, a clean drain.
        f.assert_mentions("sasl.password = [redacted]");
        f.assert_mentions("Connect");
        f.assert_mentions("stopped");
        assert_eq!(f.code, Some(0), "{}: {}", f.name, tail(&f.stderr));
    }
}

/// Error paths that quote configured values: the daemon refuses to start
/// (or `check` reports), and the canary is not in what they print.
#[test]
fn config_errors_never_print_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = format!("127.0.0.1:{}", free_port());
    let bad_value_elsewhere = config(&nobody, "\"fetch.wait.max.ms\" = \"soon\"\n");
    let misspelt = config(&nobody, &format!("\"sasl.pasword\" = \"{CANARY}\"\n"));
    let bad_escape = config(&nobody, "").replace(
        &format!("\"sasl.password\" = \"{CANARY}\""),
        &format!("\"sasl.password\" = \"{CANARY}\\q\""),
    );
    let unquoted = config(&nobody, "").replace(
        &format!("\"sasl.password\" = \"{CANARY}\""),
        &format!("\"sasl.password\" = {CANARY}"),
    );
    let twice = config(&nobody, &format!("\"sasl.password\" = \"{CANARY}\"\n"));
    let nul = config(&nobody, "").replace(
        &format!("\"sasl.password\" = \"{CANARY}\""),
        &format!("\"sasl.password\" = \"{CANARY}\\u0000\""),
    );
    let as_string = format!(
        "[kafka]\nbrokers = \"{nobody}\"\nconsumer_properties = \"{CANARY}\"\n[rules]\npaths = [\"rules.yaml\"]\n[http]\nlisten = \"127.0.0.1:0\"\n"
    );
    let plain = format!(
        "[kafka]\nbrokers = \"{nobody}\"\n[rules]\npaths = [\"rules.yaml\"]\n[http]\nlisten = \"127.0.0.1:0\"\n"
    );
    let env_misspelt = [
        (
            "NEWSWATCH__KAFKA__PRODUCER_PROPERTIES__SASL__PASWORD",
            CANARY,
        ),
        ("NEWSWATCH__KAFKA__PRODUCER_PROPERTIES__DEBUG", "all"),
    ];
    let env_bad_other = [
        (
            "NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SASL__PASSWORD",
            CANARY,
        ),
        (
            "NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__FETCH__WAIT__MAX__MS",
            "soon",
        ),
    ];
    // (name, config, env, the daemon's output mentions, check's exit code)
    let cases: [(&str, &str, Env, &str, i32); 9] = [
        (
            "bad-value-elsewhere",
            &bad_value_elsewhere,
            &[],
            "fetch.wait.max.ms",
            0,
        ),
        (
            "misspelt-password-property",
            &misspelt,
            &[],
            "sasl.pasword",
            0,
        ),
        (
            "password-bad-escape",
            &bad_escape,
            &[],
            "TOML parse error",
            1,
        ),
        ("password-unquoted", &unquoted, &[], "TOML parse error", 1),
        ("password-twice", &twice, &[], "TOML parse error", 1),
        ("password-nul-byte", &nul, &[], "nul", 0),
        (
            "properties-as-string",
            &as_string,
            &[],
            "kafka.consumer_properties",
            1,
        ),
        ("env-misspelt", &plain, &env_misspelt, "sasl.pasword", 0),
        (
            "env-bad-value-elsewhere",
            &plain,
            &env_bad_other,
            "fetch.wait.max.ms",
            0,
        ),
    ];
    let mut runs = Vec::new();
    for (name, text, env, _, _) in &cases {
        for fmt in ["text", "json"] {
            runs.push(spawn(
                dir.path(),
                &format!("{name}-run-{fmt}"),
                &["--log-format", fmt, "run", "-c", "newswatch.toml"],
                Some(text),
                env,
            ));
        }
        runs.push(spawn(
            dir.path(),
            &format!("{name}-check"),
            &["check", "-c", "newswatch.toml"],
            Some(text),
            env,
        ));
    }
    let mut results = runs.into_iter().map(|r| r.wait(Duration::from_secs(30)));
    for (name, _, _, mention, check_code) in cases {
        for _ in ["text", "json"] {
            let f = results.next().unwrap();
            f.assert_no_canary();
            f.assert_mentions(mention);
            assert_ne!(f.code, Some(0), "{}: the daemon started", f.name);
        }
        let f = results.next().unwrap();
        f.assert_no_canary();
        assert_eq!(f.code, Some(check_code), "{name}: check\n{}", f.stdout);
        if check_code != 0 {
            f.assert_mentions(mention);
        }
    }
}
