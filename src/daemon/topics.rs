//! The daemon's internal topics: created when missing, checked when present;
//! and the topics the config and the rules name: checked to exist
//! ([`TopicCheck`], SPEC §9).
//!
//! Stateful rules run in two stages (see `owner.rs`), joined by two internal
//! topics per consumer group, both with `kafka.state_partitions` partitions:
//!
//! * `<group_id>-matches`: match records of stateful rules, keyed by rule
//!   and group and partitioned by [`newswatch_core::state::partition_of`].
//!   It is created with a retention of [`MATCHES_RETENTION`]: a record is
//!   decided within seconds, so the retention only bounds the topic's size.
//!   (Kafka Streams purges its repartition topics with DeleteRecords
//!   instead; Tansu 0.6's SQLite engine does not implement DeleteRecords
//!   and its broker crashes on one, so newswatch never sends it.)
//! * `<group_id>-state-changelog`: the state of each matches partition, in
//!   the changelog partition of the same number, compacted.
//! * `<group_id>-silences`: the silences (`silences.rs`), compacted, one
//!   partition when created (a present one is used with any count: every
//!   instance reads all of its partitions).
//!
//! Architecture invariant: CreateTopics is only sent for a topic that
//! metadata says is missing. A locked-down cluster refuses CreateTopics
//! before it looks at existence, so an operator who created the topics
//! needs no create permission.
//!
//! A present topic with another partition count, or a changelog that is
//! not compacted, is refused with an error naming the topic: the partition
//! count fixes which partition owns a key, and a changelog that is not
//! compacted loses state to retention.
//!
//! Every other topic (input, alert, dead-letter, each rule's `topic:`) must
//! exist before the daemon starts and before a reload is swapped in: a
//! missing one would only show later, as alerts the broker refuses. The
//! check reads the cluster's topic list (a metadata request for all topics,
//! which never auto-creates one, unlike a request naming the topic) and
//! reports every missing topic in one error. A rule `topic:` that is an
//! input or internal topic is refused as well: the daemon would read back
//! its own alerts, or corrupt its stages.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use newswatch_core::rules::{Diagnostic, LoadErrors, RuleSet};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio_util::sync::CancellationToken;

use crate::config::KafkaConfig;

/// Retention of the match records: a week, far longer than any owner
/// takes to decide them (a stopped group resumes within it).
pub const MATCHES_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long one metadata or admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// A client could not be created (a bad property).
    #[error("internal topics client: {0}")]
    Client(#[from] KafkaError),
    /// The topic is missing and cannot be created (e.g. no ACL).
    #[error("internal topic {topic} is missing and cannot be created: {error}")]
    Create { topic: String, error: String },
    /// The topic exists with another partition count.
    #[error(
        "internal topic {topic} has {found} partitions but kafka.state_partitions is {expected}; \
         set kafka.state_partitions = {found}, or delete the topic to start its state fresh \
         (see the operator guide, \"Internal topics\")"
    )]
    Partitions {
        topic: String,
        found: usize,
        expected: u32,
    },
    /// The changelog exists without compaction.
    #[error(
        "internal topic {topic} has cleanup.policy={found:?}; a state changelog must be compacted \
         (cleanup.policy=compact)"
    )]
    Policy { topic: String, found: String },
    /// Topics the config or the rules name that do not exist, or rule
    /// topics that would feed the daemon back: every one, one per line.
    #[error("topics named by the config or the rules cannot be used:\n{0}")]
    Named(LoadErrors),
}

/// The internal topics of one consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopics {
    pub matches: String,
    pub changelog: String,
    pub partitions: u32,
    pub silences: String,
}

impl InternalTopics {
    pub fn of(k: &KafkaConfig) -> Self {
        InternalTopics {
            matches: matches_topic(&k.group_id),
            changelog: changelog_topic(&k.group_id),
            partitions: k.state_partitions,
            silences: super::silences::topic(&k.group_id),
        }
    }
}

pub fn matches_topic(group_id: &str) -> String {
    format!("{group_id}-matches")
}

pub fn changelog_topic(group_id: &str) -> String {
    format!("{group_id}-state-changelog")
}

/// What metadata says of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Missing,
    Present { partitions: usize },
}

/// What to do about one internal topic (pure, so it is unit-tested).
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    Create,
    Use,
}

/// Decide from metadata (and, for the changelog, its `cleanup.policy` when
/// the broker tells it).
pub fn plan(
    topic: &str,
    presence: Presence,
    expected: u32,
    policy: Option<&str>,
    must_compact: bool,
) -> Result<Plan, TopicsError> {
    match presence {
        Presence::Missing => Ok(Plan::Create),
        Presence::Present { partitions } if partitions != expected as usize => {
            Err(TopicsError::Partitions {
                topic: topic.to_owned(),
                found: partitions,
                expected,
            })
        }
        Presence::Present { .. } => match policy {
            Some(p) if must_compact && !p.split(',').any(|x| x.trim() == "compact") => {
                Err(TopicsError::Policy {
                    topic: topic.to_owned(),
                    found: p.to_owned(),
                })
            }
            _ => Ok(Plan::Use),
        },
    }
}

/// The admin client's properties: the producer's (security), and never
/// auto-creation: librdkafka lets a producer-type client's metadata request
/// for a missing topic create it with the broker's defaults (not compacted)
/// where the broker allows auto-creation, which is exactly what the checks
/// here must not do.
fn admin_config(k: &KafkaConfig) -> rdkafka::config::ClientConfig {
    let mut c = super::changelog::base_config(k, &k.producer_properties);
    c.set("allow.auto.create.topics", "false");
    // The producer's properties carry its security settings, and also its
    // `linger.ms`. librdkafka refuses a topic handle whose `linger.ms` is not
    // below `message.timeout.ms` (default 300 s), and rdkafka then panics in
    // `fetch_metadata`; the producer itself has no delivery timeout (0), so
    // neither has this client.
    c.set("message.timeout.ms", "0");
    c
}

/// Make sure both internal topics exist and fit. Retries while the broker
/// is unreachable; `Ok(false)` when shut down meanwhile.
pub async fn ensure(
    k: &KafkaConfig,
    topics: &InternalTopics,
    shutdown: &CancellationToken,
) -> Result<bool, TopicsError> {
    let admin: AdminClient<DefaultClientContext> = admin_config(k).create()?;
    let internal = [
        (&topics.matches, Some(topics.partitions), false),
        (&topics.changelog, Some(topics.partitions), true),
        (&topics.silences, None, true),
    ];
    for (topic, partitions, compact) in internal {
        let mut backoff = BACKOFF_MIN;
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Ok(false),
                r = ensure_one(&admin, topic, partitions, compact) => r,
            };
            match attempt {
                Ok(()) => break,
                Err(Again) => {
                    // Another instance starting at the same moment created
                    // it: nothing is wrong, look again (metadata may lag).
                    tracing::info!(topic = %topic, "internal topic created by another instance meanwhile; checking it");
                }
                Err(Transient(e)) => {
                    tracing::warn!(topic = %topic, error = %e, retry_in = ?backoff, "cannot check the internal topic yet");
                }
                Err(Fatal(e)) => return Err(e),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(false),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
    Ok(true)
}

enum Attempt {
    /// Created by someone else meanwhile: check it again.
    Again,
    Transient(String),
    Fatal(TopicsError),
}
use Attempt::{Again, Fatal, Transient};

/// `partitions`: the count required, or `None` for any (created with one).
async fn ensure_one(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: Option<u32>,
    compact: bool,
) -> Result<(), Attempt> {
    let presence = presence(admin, topic)
        .await
        .map_err(|e| Transient(e.to_string()))?;
    let partitions = match (partitions, presence) {
        (Some(n), _) => n,
        (None, Presence::Present { partitions }) => u32::try_from(partitions).unwrap_or(1),
        (None, Presence::Missing) => 1,
    };
    let policy = match (presence, compact) {
        (Presence::Present { .. }, true) => cleanup_policy(admin, topic).await,
        _ => None,
    };
    match plan(topic, presence, partitions, policy.as_deref(), compact).map_err(Fatal)? {
        Plan::Use => Ok(()),
        Plan::Create => create(admin, topic, partitions, compact).await,
    }
}

/// Whether the topic exists, and its partition count, from metadata.
pub async fn presence(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<Presence, KafkaError> {
    let md = admin.inner().fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Presence::Missing);
    };
    match t.error() {
        None => Ok(Presence::Present {
            partitions: t.partitions().len(),
        }),
        Some(e) => match RDKafkaErrorCode::from(e) {
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
                Ok(Presence::Missing)
            }
            code => Err(KafkaError::MetadataFetch(code)),
        },
    }
}

/// The topic's `cleanup.policy`, when the broker answers DescribeConfigs.
async fn cleanup_policy(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Option<String> {
    let opts = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let res = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
        .await;
    match res {
        Ok(v) => v
            .into_iter()
            .flatten()
            .flat_map(|r| r.entries)
            .find(|e| e.name == "cleanup.policy")
            .and_then(|e| e.value),
        Err(e) => {
            tracing::warn!(topic, error = %e, "cannot read the topic's cleanup.policy; not checked");
            None
        }
    }
}

async fn create(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: u32,
    compact: bool,
) -> Result<(), Attempt> {
    let opts = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    let policy = if compact { "compact" } else { "delete" };
    // The partition count was validated to fit an i32.
    let n = partitions as i32;
    // Replication factor -1 ("the broker's default") needs KIP-464; older
    // brokers refuse it. Ask for 1 then, loudly.
    for replication in [-1, 1] {
        let mut new = NewTopic::new(topic, n, TopicReplication::Fixed(replication))
            .set("cleanup.policy", policy);
        let retention = MATCHES_RETENTION.as_millis().to_string();
        if !compact {
            new = new.set("retention.ms", &retention);
        }
        let res = admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| Transient(e.to_string()))?;
        match res.into_iter().next() {
            Some(Ok(_)) => {
                tracing::info!(
                    topic,
                    partitions,
                    cleanup_policy = policy,
                    "internal topic created"
                );
                return Ok(());
            }
            // Created by another instance meanwhile: check it again.
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => return Err(Again),
            Some(Err((_, RDKafkaErrorCode::InvalidReplicationFactor))) if replication == -1 => {
                tracing::warn!(topic, "broker refuses its default replication factor; creating with replication factor 1 (create the topic yourself for more)");
            }
            Some(Err((_, code))) if is_transient(code) => return Err(Transient(code.to_string())),
            Some(Err((_, code))) => {
                return Err(Fatal(TopicsError::Create {
                    topic: topic.to_owned(),
                    error: code.to_string(),
                }))
            }
            None => return Err(Transient("no answer to CreateTopics".into())),
        }
    }
    Err(Transient("replication factor refused".into()))
}

fn is_transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::NotController
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NetworkException
    )
}

/// Checks the topics the config and the rules name (SPEC §9): pure rules
/// first ([`rule_topic_loops`]), then the cluster's topic list.
pub struct TopicCheck {
    kafka: KafkaConfig,
    /// The config file, where a config key's diagnostic points.
    config_file: PathBuf,
    admin: Arc<AdminClient<DefaultClientContext>>,
}

impl TopicCheck {
    pub fn new(k: &KafkaConfig, config_file: Option<&Path>) -> Result<Self, TopicsError> {
        let admin = admin_config(k).create()?;
        Ok(TopicCheck {
            kafka: k.clone(),
            config_file: config_file.map_or_else(|| PathBuf::from("-"), Path::to_path_buf),
            admin: Arc::new(admin),
        })
    }

    /// One check of `rs` (a reload): every problem as a diagnostic. A
    /// broker that does not answer is a problem too: a reload that cannot
    /// be checked is not swapped in.
    pub async fn check(&self, rs: &RuleSet) -> Result<(), LoadErrors> {
        let mut errs = rule_topic_loops(&self.kafka, rs);
        if errs.is_empty() {
            match self.existing().await {
                Ok(existing) => {
                    errs = missing(&named(&self.kafka, rs), &existing, &self.config_file)
                }
                Err(e) => errs.push(Diagnostic {
                    file: self.config_file.clone(),
                    line: 1,
                    col: 1,
                    message: format!(
                        "cannot check that the topics exist (kafka.brokers: {e}); try again"
                    ),
                }),
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(LoadErrors(errs))
        }
    }

    /// The start-up check: like [`TopicCheck::check`], but retried while
    /// the broker does not answer. `Ok(false)` when shut down meanwhile.
    pub async fn at_start(
        &self,
        rs: &RuleSet,
        shutdown: &CancellationToken,
    ) -> Result<bool, TopicsError> {
        let loops = rule_topic_loops(&self.kafka, rs);
        if !loops.is_empty() {
            return Err(TopicsError::Named(LoadErrors(loops)));
        }
        let mut backoff = BACKOFF_MIN;
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Ok(false),
                r = self.existing() => r,
            };
            match attempt {
                Ok(existing) => {
                    let errs = missing(&named(&self.kafka, rs), &existing, &self.config_file);
                    return if errs.is_empty() {
                        Ok(true)
                    } else {
                        Err(TopicsError::Named(LoadErrors(errs)))
                    };
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot check that the topics exist yet")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(false),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// The names of the cluster's topics, from one metadata request for
    /// all of them (on a blocking thread: librdkafka's call blocks).
    async fn existing(&self) -> Result<HashSet<String>, KafkaError> {
        let admin = self.admin.clone();
        tokio::task::spawn_blocking(move || {
            let md = admin.inner().fetch_metadata(None, REQUEST_TIMEOUT)?;
            Ok(md
                .topics()
                .iter()
                .filter(|t| {
                    !t.error().is_some_and(|e| {
                        matches!(
                            RDKafkaErrorCode::from(e),
                            RDKafkaErrorCode::UnknownTopicOrPartition
                                | RDKafkaErrorCode::UnknownTopic
                        )
                    })
                })
                .map(|t| t.name().to_owned())
                .collect())
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the topic check's thread failed");
            Err(KafkaError::MetadataFetch(RDKafkaErrorCode::Fail))
        })
    }
}

/// Who names a topic: a config key, or a rule (id, file, line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedBy {
    Config(&'static str),
    Rule {
        id: String,
        file: PathBuf,
        line: usize,
    },
}

/// Every topic the config and the enabled rules publish to or read from,
/// each once (first naming wins), in config-then-rule order.
pub fn named(k: &KafkaConfig, rs: &RuleSet) -> Vec<(String, NamedBy)> {
    let config = k
        .input_topics
        .iter()
        .map(|t| (t.clone(), NamedBy::Config("kafka.input_topics")))
        .chain([(k.alert_topic.clone(), NamedBy::Config("kafka.alert_topic"))])
        .chain(
            k.dlq_topic
                .iter()
                .map(|t| (t.clone(), NamedBy::Config("kafka.dlq_topic"))),
        );
    let rules = rs.rules.iter().filter_map(|r| {
        let t = r.topic.clone()?;
        Some((
            t,
            NamedBy::Rule {
                id: r.id.clone(),
                file: r.file.clone(),
                line: r.line,
            },
        ))
    });
    let mut seen = HashSet::new();
    config
        .chain(rules)
        .filter(|(t, _)| seen.insert(t.clone()))
        .collect()
}

/// One diagnostic per named topic not in `existing` (pure).
pub fn missing(
    named: &[(String, NamedBy)],
    existing: &HashSet<String>,
    config_file: &Path,
) -> Vec<Diagnostic> {
    named
        .iter()
        .filter(|(t, _)| !existing.contains(t))
        .map(|(t, by)| match by {
            NamedBy::Config(key) => Diagnostic {
                file: config_file.to_path_buf(),
                line: 1,
                col: 1,
                message: format!("{key}: topic {t:?} does not exist; create it (newswatch creates only its internal topics)"),
            },
            NamedBy::Rule { id, file, line } => Diagnostic {
                file: file.clone(),
                line: *line,
                col: 1,
                message: format!("rule {id}: topic {t:?} does not exist; create it, or fix the rule's topic:"),
            },
        })
        .collect()
}

/// Rules whose `topic:` is an input topic (the daemon would match its own
/// alerts, a loop) or an internal one (its stages would read alerts as
/// their records); pure.
pub fn rule_topic_loops(k: &KafkaConfig, rs: &RuleSet) -> Vec<Diagnostic> {
    let internal = InternalTopics::of(k);
    rs.rules
        .iter()
        .filter_map(|r| {
            let t = r.topic.as_deref()?;
            let why = if k.input_topics.iter().any(|i| i == t) {
                "is an input topic (kafka.input_topics): its alerts would be matched again, a loop"
            } else if t == internal.matches || t == internal.changelog || t == internal.silences {
                "is one of newswatch's internal topics"
            } else {
                return None;
            };
            Some(Diagnostic {
                file: r.file.clone(),
                line: r.line,
                col: 1,
                message: format!("rule {}: topic {t:?} {why}; choose another topic", r.id),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A producer `linger.ms` above librdkafka's default message timeout
    /// once made `fetch_metadata` panic (a refused topic handle). Asking
    /// for metadata needs no broker to reach that point: with none it
    /// fails with a timeout instead.
    #[test]
    fn a_long_linger_never_panics_the_metadata_client() {
        let mut k = crate::config::Config::default().kafka;
        k.brokers = "127.0.0.1:1".into();
        k.producer_properties
            .insert("linger.ms".into(), "400000".into());
        let admin: AdminClient<DefaultClientContext> = admin_config(&k).create().unwrap();
        let got = admin
            .inner()
            .fetch_metadata(Some("t"), std::time::Duration::from_millis(10));
        assert!(got.is_err());
    }

    #[test]
    fn plan_table() {
        let present = |n| Presence::Present { partitions: n };
        let check = |presence, policy: Option<&str>, compact, expected: &str| {
            let got = match plan("t", presence, 6, policy, compact) {
                Ok(Plan::Create) => "create".to_owned(),
                Ok(Plan::Use) => "use".to_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                got.starts_with(expected),
                "{presence:?} {policy:?} {compact}: {got}"
            );
        };
        check(Presence::Missing, None, true, "create");
        check(Presence::Missing, None, false, "create");
        check(present(6), None, false, "use");
        check(present(6), Some("compact"), true, "use");
        check(present(6), Some("compact,delete"), true, "use");
        // The broker did not tell: nothing to refuse on.
        check(present(6), None, true, "use");
        check(
            present(6),
            Some("delete"),
            true,
            "internal topic t has cleanup.policy=\"delete\"",
        );
        check(present(6), Some("delete"), false, "use");
        check(
            present(1),
            Some("compact"),
            true,
            "internal topic t has 1 partitions but kafka.state_partitions is 6",
        );
    }

    fn kafka() -> KafkaConfig {
        let mut k = crate::config::Config::default().kafka;
        k.group_id = "g".into();
        k.input_topics = vec!["in".into()];
        k.alert_topic = "alerts".into();
        k.dlq_topic = Some("dlq".into());
        k
    }

    fn rules(topics: &[&str]) -> RuleSet {
        let yaml: String = topics
            .iter()
            .enumerate()
            .map(|(i, t)| format!("  - id: r{i}\n    title: r\n    query: x\n    topic: {t}\n"))
            .collect();
        let yaml = format!("rules:\n  - id: plain\n    title: p\n    query: y\n{yaml}");
        match newswatch_core::rules::load_strs(vec![(PathBuf::from("rules.yaml"), yaml)]) {
            Ok(rs) => rs,
            Err(e) => panic!("{e}"),
        }
    }

    /// Missing topics for `rule_topics` on a cluster holding `existing`:
    /// the messages' first words (key or rule and topic).
    fn check_missing(rule_topics: &[&str], existing: &[&str], expected: &[&str]) {
        let existing = existing.iter().map(|t| t.to_string()).collect();
        let got: Vec<String> = missing(
            &named(&kafka(), &rules(rule_topics)),
            &existing,
            Path::new("c.toml"),
        )
        .iter()
        .map(|d| {
            let m = &d.message;
            m[..m.find(" does not exist").unwrap_or(m.len())].to_owned()
        })
        .collect();
        assert_eq!(got, expected, "{rule_topics:?} on {existing:?}");
    }

    #[test]
    fn missing_table() {
        let all = ["in", "alerts", "dlq", "t1", "t2"];
        check_missing(&[], &all, &[]);
        check_missing(&["t1", "t2", "t1"], &all, &[]);
        check_missing(&["t1", "t3"], &all, &["rule r1: topic \"t3\""]);
        check_missing(
            &["t3", "t3", "t4"],
            &["in", "dlq"],
            &[
                "kafka.alert_topic: topic \"alerts\"",
                "rule r0: topic \"t3\"",
                "rule r2: topic \"t4\"",
            ],
        );
        // A rule naming the alert topic is the config's problem, said once.
        check_missing(
            &["alerts"],
            &["in", "dlq"],
            &["kafka.alert_topic: topic \"alerts\""],
        );
    }

    fn check_loops(rule_topics: &[&str], expected: &[&str]) {
        let got: Vec<String> = rule_topic_loops(&kafka(), &rules(rule_topics))
            .into_iter()
            .map(|d| format!("{}:{}", d.line, d.message))
            .collect();
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (g, e) in got.iter().zip(expected) {
            assert!(g.contains(e), "{g} lacks {e}");
        }
    }

    #[test]
    fn rule_topic_loops_table() {
        check_loops(&["t1", "alerts", "dlq"], &[]);
        check_loops(&["in"], &["rule r0: topic \"in\" is an input topic"]);
        check_loops(
            &["g-matches"],
            &["rule r0: topic \"g-matches\" is one of newswatch's internal topics"],
        );
        check_loops(
            &["ok", "g-state-changelog", "in"],
            &[
                "rule r1: topic \"g-state-changelog\"",
                "rule r2: topic \"in\"",
            ],
        );
    }
}
