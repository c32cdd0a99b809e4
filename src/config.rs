//! Configuration (SPEC §2): built-in defaults < TOML file < `NEWSWATCH__…`
//! environment variables, layered with the `config` crate, then validated
//! once into a typed [`Config`]. Nothing later re-reads or re-checks a raw
//! value, so no config value can fail at run time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::event::EventFields;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not a `#[source]`: the message is already in the text, and `{:#}`
    // would print it twice.
    #[error("{path}: {cause}")]
    Load {
        path: String,
        cause: config::ConfigError,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    kafka: RawKafka,
    rules: RawRules,
    event: EventFields,
    http: RawHttp,
    alertmanager: RawAlertmanager,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawKafka {
    brokers: String,
    group_id: String,
    input_topics: Vec<String>,
    alert_topic: String,
    dlq_topic: String,
    shutdown_timeout: String,
    #[serde(deserialize_with = "flat_properties")]
    consumer_properties: BTreeMap<String, String>,
    #[serde(deserialize_with = "flat_properties")]
    producer_properties: BTreeMap<String, String>,
}

impl Default for RawKafka {
    fn default() -> Self {
        RawKafka {
            brokers: "127.0.0.1:9092".into(),
            group_id: "newswatch".into(),
            input_topics: vec!["news.events".into()],
            alert_topic: "news.alerts".into(),
            dlq_topic: "news.events.dlq".into(),
            shutdown_timeout: "30s".into(),
            consumer_properties: BTreeMap::new(),
            producer_properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRules {
    paths: Vec<PathBuf>,
    watch: bool,
}

impl Default for RawRules {
    fn default() -> Self {
        RawRules {
            paths: vec![PathBuf::from("config/rules")],
            watch: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    listen: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAlertmanager {
    url: String,
    timeout: String,
}

impl Default for RawAlertmanager {
    fn default() -> Self {
        RawAlertmanager {
            url: String::new(),
            timeout: "5s".into(),
        }
    }
}

/// librdkafka property names contain dots (`security.protocol`), which the
/// `config` crate may turn into nested tables; flatten them back.
fn flat_properties<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        S(String),
        B(bool),
        I(i64),
        F(f64),
        M(BTreeMap<String, V>),
    }
    fn flatten(prefix: &str, m: BTreeMap<String, V>, out: &mut BTreeMap<String, String>) {
        for (k, v) in m {
            let key = if prefix.is_empty() {
                k
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                V::S(s) => {
                    out.insert(key, s);
                }
                V::B(b) => {
                    out.insert(key, b.to_string());
                }
                V::I(i) => {
                    out.insert(key, i.to_string());
                }
                V::F(f) => {
                    out.insert(key, f.to_string());
                }
                V::M(m) => flatten(&key, m, out),
            }
        }
    }
    let m = BTreeMap::<String, V>::deserialize(d)?;
    let mut out = BTreeMap::new();
    flatten("", m, &mut out);
    Ok(out)
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from, if any.
    pub file: Option<PathBuf>,
    pub kafka: KafkaConfig,
    pub rules: RulesConfig,
    pub event: EventFields,
    pub http: HttpConfig,
    pub alertmanager: AlertmanagerConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConfig {
    pub brokers: String,
    pub group_id: String,
    pub input_topics: Vec<String>,
    pub alert_topic: String,
    /// `None` when `dlq_topic = ""` (dead letters off).
    pub dlq_topic: Option<String>,
    pub shutdown_timeout: Duration,
    pub consumer_properties: BTreeMap<String, String>,
    pub producer_properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RulesConfig {
    /// Relative paths are relative to the working directory.
    pub paths: Vec<PathBuf>,
    pub watch: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    /// `None` when `url = ""` (output off).
    pub url: Option<String>,
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        validate(RawConfig::default(), None).expect("built-in defaults are valid")
    }
}

/// Which config file the CLI uses: `-c`, else `$NEWSWATCH_CONFIG`, else
/// `config/newswatch.toml` when present, else none (built-in defaults).
pub fn resolve_path(cli: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = cli {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("NEWSWATCH_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let default = PathBuf::from("config/newswatch.toml");
    default.is_file().then_some(default)
}

impl Config {
    /// Load defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, None)
    }

    /// As [`Config::load`], with the environment given explicitly (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Config, ConfigError> {
        let path_name =
            file.map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
        let mut b = config::Config::builder();
        if let Some(p) = file {
            if !p.is_file() {
                return Err(ConfigError::Invalid {
                    path: path_name,
                    message: "config file not found".into(),
                });
            }
            b = b.add_source(
                config::File::from(p)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let mut envsrc = config::Environment::with_prefix("NEWSWATCH")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("kafka.input_topics")
            .with_list_parse_key("rules.paths")
            .try_parsing(true);
        if let Some(vars) = env {
            envsrc = envsrc.source(Some(vars.into_iter().collect()));
        }
        b = b.add_source(envsrc);
        let raw: RawConfig = b
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|cause| ConfigError::Load {
                path: path_name.clone(),
                cause,
            })?;
        validate(raw, file).map_err(|message| ConfigError::Invalid {
            path: path_name,
            message,
        })
    }
}

fn duration(key: &str, s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{key}: bad duration {s:?} ({e}); write e.g. 30s, 15m, 24h"))
}

fn validate(raw: RawConfig, file: Option<&Path>) -> Result<Config, String> {
    let k = raw.kafka;
    if k.brokers.trim().is_empty() {
        return Err("kafka.brokers must not be empty".into());
    }
    if k.group_id.trim().is_empty() {
        return Err("kafka.group_id must not be empty".into());
    }
    if k.input_topics.is_empty() || k.input_topics.iter().any(|t| t.trim().is_empty()) {
        return Err("kafka.input_topics must list at least one topic, none empty".into());
    }
    for t in k.input_topics.iter().chain([&k.alert_topic]) {
        if !crate::rules::is_valid_topic(t) {
            return Err(format!("bad Kafka topic name {t:?}"));
        }
    }
    if !k.dlq_topic.is_empty() && !crate::rules::is_valid_topic(&k.dlq_topic) {
        return Err(format!(
            "kafka.dlq_topic: bad Kafka topic name {:?}",
            k.dlq_topic
        ));
    }
    if k.input_topics.contains(&k.alert_topic) || k.input_topics.contains(&k.dlq_topic) {
        return Err(
            "kafka.alert_topic and kafka.dlq_topic must differ from the input topics (a loop)"
                .into(),
        );
    }
    let shutdown_timeout = duration("kafka.shutdown_timeout", &k.shutdown_timeout)?;
    for (key, props) in [
        ("consumer", &k.consumer_properties),
        ("producer", &k.producer_properties),
    ] {
        for managed in [
            "group.id",
            "bootstrap.servers",
            "enable.auto.commit",
            "enable.auto.offset.store",
            "transactional.id",
            // at-least-once needs an idempotent producer with acks=all
            "enable.idempotence",
            "acks",
        ] {
            if props.contains_key(managed) {
                return Err(format!(
                    "kafka.{key}_properties.{managed:?} is managed by newswatch (brokers and group come from kafka.brokers / kafka.group_id; delivery guarantees are fixed); leave it out"
                ));
            }
        }
    }
    if raw.rules.paths.is_empty() {
        return Err("rules.paths must list at least one file or directory".into());
    }
    raw.event.validate()?;
    let listen: SocketAddr = raw.http.listen.parse().map_err(|_| {
        format!(
            "http.listen: {:?} is not an address like 127.0.0.1:9464",
            raw.http.listen
        )
    })?;
    let am_url = raw.alertmanager.url.trim().to_owned();
    if !am_url.is_empty() {
        // The value is not echoed: it may carry a password (user:pass@host).
        crate::daemon::alertmanager::endpoint(&am_url).map_err(|_| {
            "alertmanager.url must be an http:// or https:// URL with a host, like http://127.0.0.1:9093".to_owned()
        })?;
    }
    let am_timeout = duration("alertmanager.timeout", &raw.alertmanager.timeout)?;
    if am_timeout.is_zero() {
        return Err("alertmanager.timeout must be more than 0s".into());
    }
    Ok(Config {
        file: file.map(Path::to_path_buf),
        kafka: KafkaConfig {
            brokers: k.brokers,
            group_id: k.group_id,
            input_topics: k.input_topics,
            alert_topic: k.alert_topic,
            dlq_topic: (!k.dlq_topic.is_empty()).then_some(k.dlq_topic),
            shutdown_timeout,
            consumer_properties: k.consumer_properties,
            producer_properties: k.producer_properties,
        },
        rules: RulesConfig {
            paths: raw.rules.paths,
            watch: raw.rules.watch,
        },
        event: raw.event,
        http: HttpConfig { listen },
        alertmanager: AlertmanagerConfig {
            url: (!am_url.is_empty()).then_some(am_url),
            timeout: am_timeout,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, toml).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_with_env(Some(&p), Some(env)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = Config::default();
        assert_eq!(c.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(c.kafka.input_topics, ["news.events"]);
        assert_eq!(c.kafka.dlq_topic.as_deref(), Some("news.events.dlq"));
        assert_eq!(c.kafka.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(c.rules.paths, [PathBuf::from("config/rules")]);
        assert_eq!(c.event.max_bytes, 1_048_576);
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.alertmanager.url, None);
    }

    #[test]
    fn file_then_env() {
        let c = load(
            "[kafka]\nbrokers = \"a:1\"\ndlq_topic = \"\"\n[kafka.consumer_properties]\n\"security.protocol\" = \"SASL_SSL\"\n",
            &[("NEWSWATCH__KAFKA__BROKERS", "10.0.0.5:9092"), ("NEWSWATCH__KAFKA__INPUT_TOPICS", "a,b")],
        )
        .unwrap();
        assert_eq!(c.kafka.brokers, "10.0.0.5:9092");
        assert_eq!(c.kafka.input_topics, ["a", "b"]);
        assert_eq!(c.kafka.dlq_topic, None);
        assert_eq!(
            c.kafka
                .consumer_properties
                .get("security.protocol")
                .map(String::as_str),
            Some("SASL_SSL")
        );
    }

    #[test]
    fn errors_name_the_key() {
        let table = [
            ("[kafka]\nbrokerz = \"x\"\n", "brokerz"),
            ("[nope]\n", "nope"),
            (
                "[kafka]\nshutdown_timeout = \"soon\"\n",
                "kafka.shutdown_timeout",
            ),
            ("[http]\nlisten = \"everywhere\"\n", "http.listen"),
            ("[event]\nid = \"id\"\n", "event.id"),
            (
                "[kafka.consumer_properties]\n\"group.id\" = \"x\"\n",
                "group.id",
            ),
            ("[kafka]\nalert_topic = \"news.events\"\n", "loop"),
            ("[alertmanager]\nurl = \"ftp://x\"\n", "alertmanager.url"),
            ("[alertmanager]\nurl = \"http://\"\n", "alertmanager.url"),
            (
                "[alertmanager]\nurl = \"127.0.0.1:9093\"\n",
                "alertmanager.url",
            ),
            ("[alertmanager]\ntimeout = \"0s\"\n", "alertmanager.timeout"),
        ];
        for (toml, needle) in table {
            let e = load(toml, &[]).unwrap_err();
            assert!(e.contains(needle), "{toml:?}: {e}");
        }
    }
}
