//! The daemon's internal topics: created when missing, checked when present.
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

use std::time::Duration;

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
}

/// The internal topics of one consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopics {
    pub matches: String,
    pub changelog: String,
    pub partitions: u32,
}

impl InternalTopics {
    pub fn of(k: &KafkaConfig) -> Self {
        InternalTopics {
            matches: matches_topic(&k.group_id),
            changelog: changelog_topic(&k.group_id),
            partitions: k.state_partitions,
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

/// Make sure both internal topics exist and fit. Retries while the broker
/// is unreachable; `Ok(false)` when shut down meanwhile.
pub async fn ensure(
    k: &KafkaConfig,
    topics: &InternalTopics,
    shutdown: &CancellationToken,
) -> Result<bool, TopicsError> {
    let admin: AdminClient<DefaultClientContext> =
        super::changelog::base_config(k, &k.producer_properties).create()?;
    for (topic, compact) in [(&topics.matches, false), (&topics.changelog, true)] {
        let mut backoff = BACKOFF_MIN;
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Ok(false),
                r = ensure_one(&admin, topic, topics.partitions, compact) => r,
            };
            match attempt {
                Ok(()) => break,
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
    Transient(String),
    Fatal(TopicsError),
}
use Attempt::{Fatal, Transient};

async fn ensure_one(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: u32,
    compact: bool,
) -> Result<(), Attempt> {
    let presence = presence(admin, topic)
        .await
        .map_err(|e| Transient(e.to_string()))?;
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
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                return Err(Transient("created concurrently; checking again".into()))
            }
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

pub fn is_transient(code: RDKafkaErrorCode) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
