//! The state's records: what is kept per group (threshold hits, firings,
//! throttle passes, spike buckets) and per story, as held in memory and written to the
//! changelog (JSON values), and the changelog's keys.
//!
//! Keys are `2␟g␟<group key>` for a group and `2␟s␟<group key>␟<story>` for
//! a story, where the group key is `rule␟fingerprint␟group-json` (see
//! [`super::state_fingerprint`]); the leading `2` is the format version
//! (records of the format before partitioned state had none).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::story::Signature;
use super::{StateError, GRACE_MS, SEP};

/// `rule␟fingerprint␟group-json`: state of one rule definition and group.
pub(super) fn group_key(rule: &str, fp: &str, group: &BTreeMap<String, Value>) -> String {
    // BTreeMap serializes with sorted keys: a canonical form; JSON escapes
    // control characters, so the separator never occurs inside it.
    format!(
        "{rule}{SEP}{fp}{SEP}{}",
        serde_json::to_string(group).unwrap_or_default()
    )
}

/// The changelog format version, the first part of every key.
pub(super) const KEY_VERSION: &str = "2";

pub(super) fn group_change_key(gk: &str) -> String {
    format!("{KEY_VERSION}{SEP}g{SEP}{gk}")
}

pub(super) fn story_change_key(gk: &str, key: u64) -> String {
    format!("{KEY_VERSION}{SEP}s{SEP}{gk}{SEP}{key:016x}")
}

pub(super) fn is_group_key(gk: &str) -> bool {
    gk.split(SEP).count() == 3
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Hit {
    pub(super) t: i64,
    pub(super) e: String,
    /// Normalized distinct value (threshold with `distinct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) k: Option<String>,
    /// The value to report in `sources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) v: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Fired {
    pub(super) t: i64,
    pub(super) e: String,
    pub(super) count: u64,
    pub(super) sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Passed {
    pub(super) t: i64,
    pub(super) e: String,
    pub(super) carried: u64,
}

/// Threshold and throttle state of one rule and group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct GroupRecord {
    /// Latest event time that touched this group, and how long it is kept after.
    pub(super) last: i64,
    pub(super) ttl: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) hits: Vec<Hit>,
    /// The latest threshold firings, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) fired: Vec<Fired>,
    /// The latest alerts that passed the throttle, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) passed: Vec<Passed>,
    /// Held back since the last pass.
    #[serde(default)]
    pub(super) suppressed: u64,
    /// Event ids held back (also before the last pass), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) held: Vec<String>,
    /// `spike` counts and firings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) spike: Option<super::spike::SpikeRecord>,
}

impl GroupRecord {
    pub(super) fn new(t: i64) -> Self {
        GroupRecord {
            last: t,
            ttl: 0,
            hits: Vec::new(),
            fired: Vec::new(),
            passed: Vec::new(),
            suppressed: 0,
            held: Vec::new(),
            spike: None,
        }
    }

    pub(super) fn expiry(&self) -> i64 {
        if self.suppressed > 0 {
            // Held-back alerts must reach the next alert, however late.
            // Only the cap evicts these.
            i64::MAX
        } else {
            self.last.saturating_add(self.ttl).saturating_add(GRACE_MS)
        }
    }
}

/// One story of a `first_seen` rule and group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StoryRecord {
    /// The story id in alerts: the producer's story id, or the first event's id.
    pub(super) id: String,
    /// The event that alerted.
    pub(super) alerted: String,
    pub(super) first: i64,
    pub(super) last: i64,
    pub(super) window: i64,
    pub(super) events: u64,
    /// Exact key (`id:<story_id>` or `text:<hash>`) when not found by similarity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) exact: Option<String>,
    /// Hex signatures: filled only while the record is written or read;
    /// in memory the parsed [`LiveStory::sigs`] are the one copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) sigs: Vec<String>,
}

pub(super) struct LiveStory {
    pub(super) gk: String,
    pub(super) rec: StoryRecord,
    pub(super) sigs: Vec<Signature>,
}

impl LiveStory {
    pub(super) fn expiry(&self) -> i64 {
        self.rec
            .last
            .saturating_add(self.rec.window)
            .saturating_add(GRACE_MS)
    }
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    key: &str,
    value: &str,
) -> Result<T, StateError> {
    serde_json::from_str(value).map_err(|error| StateError::BadValue {
        key: key.to_owned(),
        error,
    })
}
