//! The state's records: what is kept per group (threshold hits, firings,
//! throttle passes, spike buckets) and per story, as held in memory and written to the
//! changelog (JSON values), and the changelog's keys.
//!
//! Keys are `2␟g␟<group key>` for a group and `2␟s␟<group key>␟<story>` for
//! a story, where the group key is `rule␟fingerprint␟group-json` (see
//! [`super::state_fingerprint`]); the leading `2` is the format version
//! (records of the format before partitioned state had none).

use std::collections::BTreeMap;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

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

/// The most bytes of a changelog value: a record never grows past what
/// any broker accepts, and restoring never holds a giant value.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Ids and distinct values longer than this are stored as a hash.
pub(super) const MAX_STORED_ID: usize = 64;

/// A reported distinct value (`sources`) is cut to this many characters.
pub(super) const MAX_STORED_VALUE: usize = 100;

/// An event id, story id or distinct key as stored in a record: as given
/// when short, else `#` and 32 hex digits of its SHA-256, so that one
/// record holds many of them whatever producers put in ids.
pub(super) fn bounded_id(id: &str) -> Cow<'_, str> {
    bounded_to(id, MAX_STORED_ID)
}

/// A producer's story id, shown in alerts: kept whole up to this many
/// bytes (URLs fit), hashed beyond.
pub(super) const MAX_STORY_ID: usize = 1024;

/// [`bounded_id`] with another limit.
pub(super) fn bounded_to(id: &str, max: usize) -> Cow<'_, str> {
    if id.len() <= max {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(format!(
            "#{}",
            hex::encode(&Sha256::digest(id.as_bytes())[..16])
        ))
    }
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
    /// Held back by silences since the last alert that passed them
    /// (`silenced.rs`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(super) silenced: u64,
    /// Event ids held back by silences, oldest first (for idempotence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) muted: Vec<String>,
    /// The last alert that carried the silenced count on, and that count,
    /// so that a redelivered copy carries it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) released: Option<(String, u64)>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl GroupRecord {
    /// Drop the least useful entries until the record's JSON fits in
    /// `max` bytes: held and muted ids first (they only stop a redelivered copy from
    /// counting twice), then the oldest throttle passes and firings, then
    /// the oldest hits, and last the reported sources of the newest firing.
    /// Returns the entries dropped and the serialized record.
    pub(super) fn trim_to(&mut self, max: usize) -> (u64, Option<String>) {
        let mut dropped = 0u64;
        loop {
            let value = serde_json::to_string(&*self).ok();
            let size = value.as_ref().map_or(0, String::len);
            if size <= max {
                return (dropped, value);
            }
            // Remove about a quarter of the excess at once: few passes even
            // for a record far over, never more than needed by much.
            let n = |len: usize| (len / 4).max(1).min(len);
            if !self.held.is_empty() {
                let k = n(self.held.len());
                self.held.drain(..k);
                dropped += k as u64;
            } else if !self.muted.is_empty() {
                let k = n(self.muted.len());
                self.muted.drain(..k);
                dropped += k as u64;
            } else if self.passed.len() > 1 {
                let k = n(self.passed.len() - 1);
                self.passed.drain(..k);
                dropped += k as u64;
            } else if self.fired.len() > 1 {
                let k = n(self.fired.len() - 1);
                self.fired.drain(..k);
                dropped += k as u64;
            } else if !self.hits.is_empty() {
                let k = n(self.hits.len());
                self.hits.drain(..k);
                dropped += k as u64;
            } else if let Some(f) = self.fired.last_mut().filter(|f| !f.sources.is_empty()) {
                let k = n(f.sources.len());
                f.sources.truncate(f.sources.len() - k);
                dropped += k as u64;
            } else {
                // Nothing left to drop: every remaining field is bounded.
                return (dropped, value);
            }
        }
    }

    pub(super) fn new(t: i64) -> Self {
        GroupRecord {
            last: t,
            ttl: 0,
            hits: Vec::new(),
            fired: Vec::new(),
            passed: Vec::new(),
            suppressed: 0,
            held: Vec::new(),
            silenced: 0,
            muted: Vec::new(),
            released: None,
            spike: None,
        }
    }

    pub(super) fn expiry(&self) -> i64 {
        if self.suppressed > 0 || self.silenced > 0 {
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
