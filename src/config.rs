//! Configuration (SPEC §2): built-in defaults < TOML file < `NEWSWATCH__…`
//! environment variables, layered with the `config` crate, then validated
//! once into a typed [`Config`]. Nothing later re-reads or re-checks a raw
//! value, so no config value can fail at run time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::redact;
use newswatch_core::event::EventFields;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not a `#[source]`: the message is already in the text, and `{:#}`
    // would print it twice. Rendered without the TOML parser's snippet of
    // the offending line, which may hold a secret.
    #[error("{path}: {}", redact::config_error(cause))]
    Load {
        path: String,
        cause: config::ConfigError,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Partitions of the internal topics when `kafka.state_partitions` is not set.
pub const DEFAULT_STATE_PARTITIONS: u32 = 6;
/// More would only cost restore work and memory per partition.
pub const MAX_STATE_PARTITIONS: u32 = 1024;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    kafka: RawKafka,
    rules: RawRules,
    event: EventFields,
    http: RawHttp,
    alertmanager: RawAlertmanager,
    metrics: RawMetrics,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawKafka {
    brokers: String,
    group_id: String,
    input_topics: Vec<String>,
    alert_topic: String,
    dlq_topic: String,
    shutdown_timeout: String,
    state_partitions: u32,
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
            state_partitions: DEFAULT_STATE_PARTITIONS,
            consumer_properties: BTreeMap::new(),
            producer_properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    listen: String,
    auth_token_file: PathBuf,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: "127.0.0.1:9464".into(),
            auth_token_file: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// `[metrics]`: not in SPEC §2; bounds the per-rule series (operator guide).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawMetrics {
    per_rule: bool,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics { per_rule: true }
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
        // The `config` crate keeps a quoted key ("sasl.password", as files
        // write it) apart from the same name as a path (sasl -> password,
        // as the environment sets it). Paths go last so that they win: the
        // environment is layered above the file.
        let (paths, plain): (Vec<_>, Vec<_>) =
            m.into_iter().partition(|(_, v)| matches!(v, V::M(_)));
        for (k, v) in plain.into_iter().chain(paths) {
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
    // Anything but a table is refused without quoting it: serde's own
    // "invalid type" message would print the value, which may be a secret.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Table {
        Map(BTreeMap<String, V>),
        Other(serde::de::IgnoredAny),
    }
    let Table::Map(m) = Table::deserialize(d)? else {
        return Err(serde::de::Error::custom(
            "must be a table of librdkafka properties, like [kafka.consumer_properties]",
        ));
    };
    let mut out = BTreeMap::new();
    flatten("", m, &mut out);
    Ok(out)
}

/// librdkafka properties newswatch sets itself and refuses in
/// `kafka.consumer_properties` / `kafka.producer_properties`: brokers and
/// group come from `kafka.brokers` / `kafka.group_id`, and at-least-once
/// needs manual offset storing and an idempotent producer with acks=all.
pub const MANAGED_PROPERTIES: [&str; 8] = [
    "group.id",
    "bootstrap.servers",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "transactional.id",
    "enable.idempotence",
    "acks",
    "message.timeout.ms",
];

/// Every key the config accepts, as `section.key` (sorted), derived from
/// the field names of the structs the loader deserializes into, so the
/// operator guide's reference can be checked against the code
/// (`tests/docs.rs`). `kafka.consumer_properties` and
/// `kafka.producer_properties` are tables of free-form librdkafka names.
pub fn known_keys() -> Vec<String> {
    let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(RawConfig::default()) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = sections
        .iter()
        .flat_map(|(section, fields)| {
            fields
                .as_object()
                .into_iter()
                .flat_map(move |m| m.keys().map(move |k| format!("{section}.{k}")))
        })
        .collect();
    keys.sort();
    keys
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
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// A series per rule in the per-rule metrics, or every rule under
    /// `rule=""` (their number grows with the rule count).
    pub per_rule: bool,
}

#[derive(Clone, PartialEq)]
pub struct KafkaConfig {
    pub brokers: String,
    pub group_id: String,
    pub input_topics: Vec<String>,
    pub alert_topic: String,
    /// `None` when `dlq_topic = ""` (dead letters off).
    pub dlq_topic: Option<String>,
    pub shutdown_timeout: Duration,
    /// Partitions of the internal topics (`<group_id>-matches` and
    /// `<group_id>-state-changelog`): how many instances can share the
    /// stateful rules' work.
    pub state_partitions: u32,
    pub consumer_properties: BTreeMap<String, String>,
    pub producer_properties: BTreeMap<String, String>,
}

// Property values may be secrets (`sasl.password`): a `{:?}` of the config,
// in a log line or a failed assertion, shows them as [redacted].
impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn shown(props: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
            props
                .iter()
                .map(|(k, v)| {
                    let v = if redact::is_sensitive_property(k) {
                        redact::REDACTED
                    } else {
                        v.as_str()
                    };
                    (k.as_str(), v)
                })
                .collect()
        }
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("input_topics", &self.input_topics)
            .field("alert_topic", &self.alert_topic)
            .field("dlq_topic", &self.dlq_topic)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("state_partitions", &self.state_partitions)
            .field("consumer_properties", &shown(&self.consumer_properties))
            .field("producer_properties", &shown(&self.producer_properties))
            .finish()
    }
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
    /// From `http.auth_token_file`: what POST and DELETE requests must
    /// present as `Authorization: Bearer …`; `None`: no authentication.
    pub auth_token: Option<AuthToken>,
}

/// The HTTP bearer token. Its `Debug` hides it, and it is compared in
/// constant time, so neither logs nor timing give it away.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    /// Read `path`: the token is the file's content, trimmed; an unreadable
    /// file or an empty token is an error naming the key and the path (never
    /// the content).
    fn read(path: &Path) -> Result<AuthToken, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("http.auth_token_file: cannot read {}: {e}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!(
                "http.auth_token_file: {} holds no token (empty after trimming)",
                path.display()
            ));
        }
        Ok(AuthToken(token.to_owned()))
    }

    /// Whether `presented` is the token, in time independent of where they
    /// differ (the length alone can leak).
    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    /// Where `alertmanager.url` says to POST; `None` when `url = ""`
    /// (output off).
    pub endpoint: Option<AlertmanagerEndpoint>,
    pub timeout: Duration,
}

/// Alertmanager's `POST /api/v2/alerts` endpoint, validated from
/// `alertmanager.url`: an http(s) URL with a host. `/api/v2/alerts` is
/// appended to its path (Alertmanager may run under a
/// `--web.route-prefix`) unless the URL already ends with it; query and
/// fragment are dropped.
///
/// The URL may carry credentials (`user:pass@host`): `Debug` and
/// [`AlertmanagerEndpoint::redacted`] leave them out, for log lines.
#[derive(Clone, PartialEq, Eq)]
pub struct AlertmanagerEndpoint(url::Url);

impl AlertmanagerEndpoint {
    /// The endpoint for `base`; `None` when it is no http(s) URL with a host.
    pub fn parse(base: &str) -> Option<Self> {
        let mut u = url::Url::parse(base.trim()).ok()?;
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            return None;
        }
        let path = u.path().trim_end_matches('/').to_owned();
        if path.ends_with("/api/v2/alerts") {
            u.set_path(&path);
        } else {
            u.set_path(&format!("{path}/api/v2/alerts"));
        }
        u.set_query(None);
        u.set_fragment(None);
        Some(AlertmanagerEndpoint(u))
    }

    /// The URL to POST to, credentials included.
    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The URL without credentials.
    pub fn redacted(&self) -> String {
        let mut u = self.0.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.to_string()
    }
}

impl std::fmt::Debug for AlertmanagerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlertmanagerEndpoint({})", self.redacted())
    }
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
        let vars: Vec<(String, String)> = match env {
            Some(vars) => vars.into_iter().collect(),
            // (`env::vars` would panic on a variable that is not UTF-8.)
            None => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        };
        // librdkafka property values are set as written: `try_parsing`
        // (which the list keys need) would turn a password "0123" into the
        // number 123.
        let (props, vars): (Vec<_>, Vec<_>) = vars
            .into_iter()
            .partition(|(k, _)| env_property(k).is_some());
        let envsrc = config::Environment::with_prefix("NEWSWATCH")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("kafka.input_topics")
            .with_list_parse_key("rules.paths")
            .try_parsing(true)
            .source(Some(vars.into_iter().collect()));
        b = b.add_source(envsrc);
        let load_error = |cause| ConfigError::Load {
            path: path_name.clone(),
            cause,
        };
        for (k, v) in props {
            if let Some(key) = env_property(&k) {
                b = b.set_override(key, v).map_err(load_error)?;
            }
        }
        let raw: RawConfig = b
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(load_error)?;
        validate(raw, file).map_err(|message| ConfigError::Invalid {
            path: path_name,
            message,
        })
    }
}

/// The config key of a librdkafka property set through the environment:
/// `NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SASL__PASSWORD` (or
/// `…__SASL.PASSWORD`) is `kafka.consumer_properties.sasl.password`.
fn env_property(var: &str) -> Option<String> {
    let upper = var.to_ascii_uppercase();
    let rest = upper.strip_prefix("NEWSWATCH__KAFKA__")?;
    let (table, name) = rest
        .strip_prefix("CONSUMER_PROPERTIES__")
        .map(|n| ("consumer_properties", n))
        .or_else(|| {
            rest.strip_prefix("PRODUCER_PROPERTIES__")
                .map(|n| ("producer_properties", n))
        })?;
    (!name.is_empty()).then(|| format!("kafka.{table}.{}", name.to_lowercase().replace("__", ".")))
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
        if !newswatch_core::rules::is_valid_topic(t) {
            return Err(format!("bad Kafka topic name {t:?}"));
        }
    }
    if !k.dlq_topic.is_empty() && !newswatch_core::rules::is_valid_topic(&k.dlq_topic) {
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
    if !(1..=MAX_STATE_PARTITIONS).contains(&k.state_partitions) {
        return Err(format!(
            "kafka.state_partitions must be between 1 and {MAX_STATE_PARTITIONS}, not {}",
            k.state_partitions
        ));
    }
    let internal = [
        format!("{}-matches", k.group_id),
        format!("{}-state-changelog", k.group_id),
        format!("{}-silences", k.group_id),
    ];
    for t in k.input_topics.iter().chain([&k.alert_topic, &k.dlq_topic]) {
        if internal.contains(t) {
            return Err(format!(
                "topic {t:?} is one of newswatch's internal topics for group {:?}; choose another name",
                k.group_id
            ));
        }
    }
    for (key, props) in [
        ("consumer", &k.consumer_properties),
        ("producer", &k.producer_properties),
    ] {
        for managed in MANAGED_PROPERTIES {
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
    let auth_token = if raw.http.auth_token_file.as_os_str().is_empty() {
        None
    } else {
        Some(AuthToken::read(&raw.http.auth_token_file)?)
    };
    let am_url = raw.alertmanager.url.trim();
    let am_endpoint = if am_url.is_empty() {
        None
    } else {
        // The value is not echoed: it may carry a password (user:pass@host).
        Some(AlertmanagerEndpoint::parse(am_url).ok_or(
            "alertmanager.url must be an http:// or https:// URL with a host, like http://127.0.0.1:9093",
        )?)
    };
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
            state_partitions: k.state_partitions,
            consumer_properties: k.consumer_properties,
            producer_properties: k.producer_properties,
        },
        rules: RulesConfig {
            paths: raw.rules.paths,
            watch: raw.rules.watch,
        },
        event: raw.event,
        http: HttpConfig { listen, auth_token },
        alertmanager: AlertmanagerConfig {
            endpoint: am_endpoint,
            timeout: am_timeout,
        },
        metrics: MetricsConfig {
            per_rule: raw.metrics.per_rule,
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
        assert_eq!(c.alertmanager.endpoint, None);
        assert!(c.metrics.per_rule);
    }

    /// A configured topic never names an internal one (a feedback loop).
    #[test]
    fn configured_topics_are_not_internal() {
        for (toml, topic) in [
            (
                "[kafka]\ngroup_id = \"g\"\nalert_topic = \"g-matches\"\n",
                "g-matches",
            ),
            (
                "[kafka]\ngroup_id = \"g\"\ndlq_topic = \"g-state-changelog\"\n",
                "g-state-changelog",
            ),
            (
                "[kafka]\ngroup_id = \"g\"\ninput_topics = [\"g-silences\"]\n",
                "g-silences",
            ),
        ] {
            let e = load(toml, &[]).unwrap_err();
            assert!(e.contains(topic) && e.contains("internal"), "{e}");
        }
    }

    #[test]
    fn metrics_per_rule_is_a_bool() {
        let off = load("[metrics]\nper_rule = false\n", &[]).unwrap();
        assert!(!off.metrics.per_rule);
        let env = load("", &[("NEWSWATCH__METRICS__PER_RULE", "false")]).unwrap();
        assert!(!env.metrics.per_rule);
        let bad = load("[metrics]\nper_rule = \"some\"\n", &[]).unwrap_err();
        assert!(bad.contains("per_rule"), "{bad}");
        let unknown = load("[metrics]\nper_rules = true\n", &[]).unwrap_err();
        assert!(unknown.contains("per_rules"), "{unknown}");
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
    fn properties_from_the_environment_stay_strings() {
        // A password of digits must reach librdkafka as written, not as
        // the number it looks like ("0123" -> 123).
        let table = [
            (
                "NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SASL__PASSWORD",
                "consumer",
                "sasl.password",
                "0123",
            ),
            (
                "NEWSWATCH__KAFKA__PRODUCER_PROPERTIES__SASL__PASSWORD",
                "producer",
                "sasl.password",
                "1e3",
            ),
            (
                "NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SASL.USERNAME",
                "consumer",
                "sasl.username",
                "TRUE",
            ),
            (
                "newswatch__kafka__producer_properties__linger__ms",
                "producer",
                "linger.ms",
                "5",
            ),
            (
                "NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SASL__PASSWORD",
                "consumer",
                "sasl.password",
                "a,b",
            ),
        ];
        for (var, which, key, value) in table {
            let c = load(
                "[kafka.consumer_properties]\n\"fetch.wait.max.ms\" = \"10\"\n",
                &[(var, value)],
            )
            .unwrap();
            let props = match which {
                "consumer" => &c.kafka.consumer_properties,
                _ => &c.kafka.producer_properties,
            };
            assert_eq!(props.get(key).map(String::as_str), Some(value), "{var}");
            // the file's properties stay too
            assert_eq!(
                c.kafka
                    .consumer_properties
                    .get("fetch.wait.max.ms")
                    .map(String::as_str),
                Some("10")
            );
        }
    }

    #[test]
    fn environment_beats_the_file_for_properties() {
        let c = load(
            "[kafka.consumer_properties]\n\"sasl.password\" = \"from-file\"\n\"sasl.username\" = \"u\"\n",
            &[("NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__SASL__PASSWORD", "from-env")],
        )
        .unwrap();
        let props = &c.kafka.consumer_properties;
        assert_eq!(
            props.get("sasl.password").map(String::as_str),
            Some("from-env")
        );
        assert_eq!(props.get("sasl.username").map(String::as_str), Some("u"));
    }

    #[test]
    fn known_keys_are_the_raw_fields() {
        let keys = known_keys();
        for k in [
            "kafka.brokers",
            "kafka.consumer_properties",
            "event.max_bytes",
            "alertmanager.timeout",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
        }
        assert_eq!(keys.len(), 26, "{keys:?}");
    }

    /// The token file's content → the token it gives, or a part of the error.
    fn check_token(content: Option<&str>, expected: Result<&str, &str>) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        if let Some(c) = content {
            std::fs::write(&f, c).unwrap();
        }
        let toml = format!("[http]\nauth_token_file = {:?}\n", f.display().to_string());
        match (load(&toml, &[]), expected) {
            (Ok(c), Ok(token)) => {
                let t = c.http.auth_token.as_ref().expect("a token");
                assert!(t.matches(token.as_bytes()), "{content:?}");
                assert!(!t.matches(b"wrong"), "{content:?}");
                assert!(!format!("{c:?}").contains(token), "Debug shows the token");
            }
            (Err(e), Err(part)) => {
                assert!(
                    e.contains("http.auth_token_file") && e.contains(part),
                    "{e}"
                );
                if let Some(c) = content.filter(|c| !c.trim().is_empty()) {
                    assert!(!e.contains(c.trim()), "{e}");
                }
            }
            (got, want) => panic!("{content:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn auth_token_file() {
        check_token(Some("s3cret"), Ok("s3cret"));
        check_token(Some("  s3cret\n"), Ok("s3cret"));
        check_token(Some(""), Err("holds no token"));
        check_token(Some(" \n\t\n"), Err("holds no token"));
        check_token(None, Err("cannot read"));
        assert_eq!(load("", &[]).unwrap().http.auth_token, None);
        assert_eq!(
            load("[http]\nauth_token_file = \"\"\n", &[])
                .unwrap()
                .http
                .auth_token,
            None
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = load(
            "[kafka.producer_properties]\n\"sasl.password\" = \"canary-Sup3rS3cret\"\n\"linger.ms\" = \"5\"\n",
            &[],
        )
        .unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("canary"), "{text}");
        assert!(text.contains("linger.ms"), "{text}");
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
            (
                "[kafka]\nconsumer_properties = \"canary-Sup3rS3cret\"\n",
                "kafka.consumer_properties",
            ),
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
            assert!(!e.contains("canary"), "{toml:?}: {e}");
        }
    }

    #[test]
    fn alertmanager_endpoint_table() {
        let table = [
            (
                "http://127.0.0.1:9093",
                Some("http://127.0.0.1:9093/api/v2/alerts"),
            ),
            (
                "http://127.0.0.1:9093/",
                Some("http://127.0.0.1:9093/api/v2/alerts"),
            ),
            (
                "https://am.example/prefix/",
                Some("https://am.example/prefix/api/v2/alerts"),
            ),
            (
                "http://am:9093/api/v2/alerts",
                Some("http://am:9093/api/v2/alerts"),
            ),
            (
                "http://am:9093/api/v2/alerts/",
                Some("http://am:9093/api/v2/alerts"),
            ),
            (
                "http://u:p@am:9093?x=1#f",
                Some("http://u:p@am:9093/api/v2/alerts"),
            ),
            ("ftp://am", None),
            ("http://", None),
            ("am:9093", None),
            ("127.0.0.1:9093", None),
            ("", None),
        ];
        for (base, want) in table {
            let got = AlertmanagerEndpoint::parse(base).map(|u| u.url().to_string());
            assert_eq!(got.as_deref(), want, "{base}");
        }
        let u = AlertmanagerEndpoint::parse("http://user:secret@am:9093").unwrap();
        assert_eq!(u.redacted(), "http://am:9093/api/v2/alerts");
        assert!(!format!("{u:?}").contains("secret"));
    }
}
