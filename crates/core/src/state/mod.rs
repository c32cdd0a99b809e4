//! Stateful alert modes (SPEC §6): `first_seen`, `threshold`, `spike`
//! (in `spike.rs`), `group_by` and `throttle`.
//!
//! Pure and synchronous: [`Store::apply`] takes one match (the [`Input`]
//! of a [`MatchRecord`], in the order of its state partition) and decides
//! whether it fires; every state change it makes is returned as a
//! [`Change`], a key and a JSON value (or a tombstone), which the daemon
//! writes to the changelog partition of the same number before it commits
//! the match record's offset (Kafka Streams' state-store design).
//! [`Store::load`] applies such a record back when a partition is restored.
//! A store holds the state of the keys of its partitions only: the daemon
//! keeps one per owned partition; `replay` and `test` one for everything.
//!
//! * Time is event time only. The store's *clock* is the median of the
//!   last [`CLOCK_SAMPLES`] event times it saw (decided or restored), so one
//!   event dated 2999 or 1970 moves it nowhere: an outlier affects only its
//!   own decision, never evicts or blinds another story or group, at once
//!   or after a restore, and archives with gaps of days still move it on.
//!   State older than its window behind the clock is evicted, so memory
//!   is bounded by the windows, and by [`MAX_STORIES`] / [`MAX_GROUPS`]
//!   when the windows hold more (the oldest is evicted and counted).
//! * Every record is bounded in bytes: at most [`MAX_RECORD_BYTES`] (64 KiB)
//!   of JSON. Ids and distinct values longer than 64 bytes are stored as a
//!   hash, reported values are cut to 100 characters, and a group record
//!   over the bound drops its oldest held ids, history and hits first
//!   (counted as group evictions); hence the largest threshold `count`.
//! * Redelivery is idempotent. After a crash the events after the last
//!   committed offset come again, and their state changes may already be in
//!   the changelog. So state remembers which event fired (a story's first
//!   event, a threshold's firing event, a throttle's passing event) and which
//!   events it has counted or held back: a redelivered firing event fires
//!   again with the same payload (same `alert_id`, dropped by subscribers),
//!   a redelivered counted event counts nothing.
//! * Silences (`silenced.rs`, [`Store::silence`]) come after mode and
//!   throttle; their held-back count is kept in the group's record.
//! * Keys: a *group key* is the rule id, the [`state_fingerprint`] of its
//!   definition and the JSON of its `group_by` values (`records.rs` has the
//!   changelog key format).

pub mod digest;
mod input;
mod records;
mod silenced;
pub mod spike;
pub mod story;

pub use input::{
    field_value, group_of, key_of, partition_of, redefined, state_fingerprint, Input, MatchRecord,
    RecordError, MATCH_RECORD_VERSION,
};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::alert::Story as AlertStory;
use crate::rules::{AlertMode, Rule};
pub use records::MAX_RECORD_BYTES;
use records::{
    bounded_id, bounded_to, group_change_key, group_key, is_group_key, parse, story_change_key,
    Fired, GroupRecord, Hit, LiveStory, Passed, StoryRecord, KEY_VERSION, MAX_STORED_VALUE,
    MAX_STORY_ID,
};
use story::{LshIndex, Signature};

/// Event times the clock is the median of: an outlier needs half of them
/// to move it.
pub const CLOCK_SAMPLES: usize = 63;
/// Live stories held at most, over all rules and groups.
pub const MAX_STORIES: usize = 200_000;
/// Live groups (threshold and throttle state) held at most.
pub const MAX_GROUPS: usize = 200_000;
/// Signatures kept per story: its first event and a few edited versions, so
/// a story that drifts through rewrites is still recognized.
const MAX_STORY_SIGNATURES: usize = 4;
/// A version this close to one already held adds nothing to the index.
const SAME_VERSION: f64 = 0.9;
/// Matching events counted per threshold window, at most (the oldest go).
const MAX_HITS: usize = 10_000;
/// Held-back event ids remembered per throttled group (for idempotence).
const MAX_HELD: usize = 1_000;
/// Firings and passes remembered per group, so that any of them delivered
/// again after a crash fires again the same way.
const MAX_HISTORY: usize = 64;
/// State is kept this long past its window, behind the latest event time
/// seen. Decisions only look at the window, so the grace changes no
/// decision for events in order; it is there for events that are not:
/// * input partitions interleave, and after a backlog one partition may be
///   hours ahead of another (the late one still needs its state);
/// * events redelivered after a crash must find the decisions they made the
///   first time, so that they fire the same way and count nothing twice.
pub(crate) const GRACE_MS: i64 = 24 * 3_600_000;
/// Unit separator between the parts of a key.
pub(crate) const SEP: char = '\u{1f}';

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A record of the changelog format before partitioned state (keys
    /// `g␟…`/`s␟…`): skipped, that state starts fresh.
    #[error("changelog record of the previous format")]
    OldFormat,
    #[error("changelog key {0:?} is not a newswatch state key")]
    BadKey(String),
    #[error("changelog record {key:?} does not parse: {error}")]
    BadValue {
        key: String,
        error: serde_json::Error,
    },
}

/// What the state decided for one match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub fire: bool,
    pub story: Option<AlertStory>,
    pub count: Option<u64>,
    pub sources: Option<Vec<String>>,
    /// `spike`: the average matches per window over the baseline.
    pub baseline: Option<f64>,
    /// Alerts held back by `throttle` since the last one that passed.
    pub suppressed: u64,
    /// This alert was held back by `throttle`.
    pub throttled: bool,
    /// This alert was held back by a silence ([`Store::silence`]).
    pub silenced: bool,
}

/// One changelog write; `value: None` deletes the key (a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub value: Option<String>,
}

/// Evictions because a cap was reached (not because a window passed).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapEvictions {
    pub stories: u64,
    pub groups: u64,
}

/// Whether a rule needs the state store: any mode but `each`, a
/// throttle, or a digest (its open digests are state).
pub fn is_stateful(rule: &Rule) -> bool {
    !matches!(rule.mode, AlertMode::Each) || rule.throttle.is_some() || rule.digest.is_some()
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// A stable 64-bit story key: the same in `run`, after a restart and in
/// `replay`, so changelog keys and decisions never depend on process state.
fn story_key(gk: &str, event_id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(gk.as_bytes());
    h.update([0]);
    h.update(event_id.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

// ------------------------------------------------------------------ store

/// All state of all stateful rules.
pub struct Store {
    groups: HashMap<String, GroupRecord>,
    group_expiry: BTreeSet<(i64, String)>,
    group_index: HashMap<String, i64>,
    stories: HashMap<u64, LiveStory>,
    story_expiry: BTreeSet<(i64, u64)>,
    lsh: HashMap<String, LshIndex<u64>>,
    exact: HashMap<(String, String), u64>,
    /// The last event times seen, for the clock (a ring).
    recent: std::collections::VecDeque<i64>,
    /// The median of `recent` (`i64::MIN` before any event).
    clock: i64,
    cap_evictions: CapEvictions,
    scratch: Vec<u64>,
    digests: digest::Digests,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Store {
            groups: HashMap::new(),
            group_expiry: BTreeSet::new(),
            group_index: HashMap::new(),
            stories: HashMap::new(),
            story_expiry: BTreeSet::new(),
            lsh: HashMap::new(),
            exact: HashMap::new(),
            recent: std::collections::VecDeque::with_capacity(CLOCK_SAMPLES),
            clock: i64::MIN,
            cap_evictions: CapEvictions::default(),
            scratch: Vec::new(),
            digests: digest::Digests::default(),
        }
    }

    /// Live stories and groups.
    pub fn sizes(&self) -> (usize, usize) {
        (self.stories.len(), self.groups.len())
    }

    /// Cap evictions since the last call.
    pub fn take_cap_evictions(&mut self) -> CapEvictions {
        std::mem::take(&mut self.cap_evictions)
    }

    /// The latest event time seen (or restored).
    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        (self.clock > i64::MIN)
            .then(|| DateTime::from_timestamp_millis(self.clock))
            .flatten()
    }

    /// Decide one match of `rule` for the group `group`, from the facts in
    /// `input` (see [`Input::of`]). State changes are appended to `changes`.
    pub fn apply(
        &mut self,
        rule: &Rule,
        input: &Input,
        group: &BTreeMap<String, Value>,
        changes: &mut Vec<Change>,
    ) -> Decision {
        // Without an event time (replay of an undated first event) the
        // latest time seen stands in.
        let t = input.time.unwrap_or(self.clock.max(0));
        self.tick(t);
        self.evict_expired(changes);
        self.close_digests_by_clock(changes);
        let gk = group_key(&rule.id, &state_fingerprint(rule), group);
        // Event ids as records store them (`records::bounded_id`): once
        // here, for every mode and the throttle.
        let eid = bounded_id(&input.event);
        let eid = eid.as_ref();
        let mut d = match &rule.mode {
            AlertMode::Each => Decision {
                fire: true,
                ..Decision::default()
            },
            AlertMode::FirstSeen { window, similarity } => self.first_seen(
                &gk,
                input,
                eid,
                t,
                ms(*window),
                similarity.unwrap_or(story::DEFAULT_SIMILARITY),
                changes,
            ),
            AlertMode::Threshold {
                count,
                window,
                distinct,
            } => self.threshold(
                &gk,
                input,
                eid,
                t,
                *count,
                ms(*window),
                distinct.is_some(),
                changes,
            ),
            AlertMode::Spike {
                window,
                baseline,
                ratio,
                min_count,
            } => {
                let p = spike::Params::new(*window, *baseline, *ratio, *min_count);
                self.spike(&gk, eid, t, &p, changes)
            }
        };
        if d.fire {
            if let Some(th) = rule.throttle {
                self.throttle(&gk, eid, t, ms(th), &mut d, changes);
            }
        }
        d
    }

    #[allow(clippy::too_many_arguments)]
    fn first_seen(
        &mut self,
        gk: &str,
        input: &Input,
        eid: &str,
        t: i64,
        window: i64,
        threshold: f64,
        changes: &mut Vec<Change>,
    ) -> Decision {
        let sig = input.signature.as_ref();
        // Same story: the producer's story id when present, else similar
        // text; a text too short to sign must be identical.
        let exact = match (&input.story_id, &input.text_key) {
            (Some(s), _) => Some(format!("id:{}", bounded_to(s, MAX_STORY_ID))),
            (None, Some(k)) => Some(k.clone()),
            (None, None) => None,
        };
        let live = |s: &StoryRecord| (t - s.last).abs() <= window || s.alerted == eid;
        let found = match (&exact, sig) {
            (Some(k), _) => self.exact.get(&(gk.to_owned(), k.clone())).copied(),
            (None, Some(sig)) => self.most_similar(gk, sig, threshold, live),
            (None, None) => None,
        };
        let found = found.filter(|k| self.stories.get(k).is_some_and(|s| live(&s.rec)));
        if let Some(key) = found {
            let Some(s) = self.stories.get_mut(&key) else {
                return Decision::default();
            };
            if s.rec.alerted == eid {
                // The event that opened the story, delivered again.
                return Decision {
                    fire: true,
                    story: Some(AlertStory {
                        id: s.rec.id.clone(),
                        events: 1,
                    }),
                    ..Decision::default()
                };
            }
            let old_expiry = s.expiry();
            s.rec.events += 1;
            s.rec.last = s.rec.last.max(t);
            s.rec.window = window;
            let mut new_sig = None;
            if let Some(sig) = sig {
                if s.sigs.len() < MAX_STORY_SIGNATURES
                    && s.sigs
                        .iter()
                        .all(|x| story::similarity(x, sig) < SAME_VERSION)
                {
                    s.sigs.push(sig.clone());
                    new_sig = Some(sig.clone());
                }
            }
            let new_expiry = s.expiry();
            let value = self.story_value(key);
            if let Some(sig) = new_sig {
                self.lsh.entry(gk.to_owned()).or_default().insert(key, &sig);
            }
            self.story_expiry.remove(&(old_expiry, key));
            self.story_expiry.insert((new_expiry, key));
            changes.push(Change {
                key: story_change_key(gk, key),
                value,
            });
            return Decision::default();
        }
        let key = story_key(gk, eid);
        if self.stories.contains_key(&key) {
            // The same event id again under another story (a producer bug):
            // drop the old one rather than corrupt the indexes.
            self.remove_story(key, changes);
        }
        // Shown in alerts: kept whole unless absurdly long.
        let id = bounded_to(
            input.story_id.as_deref().unwrap_or(&input.event),
            MAX_STORY_ID,
        )
        .into_owned();
        let rec = StoryRecord {
            id: id.clone(),
            alerted: eid.to_owned(),
            first: t,
            last: t,
            window,
            events: 1,
            exact,
            sigs: Vec::new(),
        };
        self.insert_story(gk.to_owned(), key, rec, sig.cloned().into_iter().collect());
        changes.push(Change {
            key: story_change_key(gk, key),
            value: self.story_value(key),
        });
        self.enforce_story_cap(changes);
        Decision {
            fire: true,
            story: Some(AlertStory { id, events: 1 }),
            ..Decision::default()
        }
    }

    /// The most similar live story at or above `threshold`; ties go to the
    /// oldest story, then the lowest key, so the choice is deterministic.
    /// Only stories that `live` accepts (within the window of the event)
    /// compete: an older version of the story that fell out of the window
    /// but is not evicted yet must not hide the current one.
    fn most_similar(
        &mut self,
        gk: &str,
        sig: &Signature,
        threshold: f64,
        live: impl Fn(&StoryRecord) -> bool,
    ) -> Option<u64> {
        let idx = self.lsh.get(gk)?;
        // `candidates` clears the buffer first.
        idx.candidates(sig, &mut self.scratch);
        let mut best: Option<(f64, i64, u64)> = None;
        for &k in &self.scratch {
            let Some(s) = self.stories.get(&k).filter(|s| live(&s.rec)) else {
                continue;
            };
            let sim = s
                .sigs
                .iter()
                .map(|x| story::similarity(x, sig))
                .fold(0.0, f64::max);
            if sim < threshold {
                continue;
            }
            let better = match best {
                None => true,
                Some((bs, bf, bk)) => sim > bs || (sim == bs && (s.rec.first, k) < (bf, bk)),
            };
            if better {
                best = Some((sim, s.rec.first, k));
            }
        }
        best.map(|b| b.2)
    }

    #[allow(clippy::too_many_arguments)]
    fn threshold(
        &mut self,
        gk: &str,
        input: &Input,
        eid: &str,
        t: i64,
        count: u64,
        window: i64,
        distinct: bool,
        changes: &mut Vec<Change>,
    ) -> Decision {
        if input.no_distinct {
            // Without the field an event proves nothing about
            // independence: it does not count.
            return Decision::default();
        }
        let v = input.value.clone().map(|mut v| {
            crate::alert::cut(&mut v, MAX_STORED_VALUE);
            v
        });
        let k = if distinct {
            input
                .value
                .as_deref()
                .map(|v| bounded_id(&crate::lang::text::keyword_key(v)).into_owned())
        } else {
            None
        };
        let clock = self.clock;
        let g = self.group_entry(gk, t);
        g.ttl = g.ttl.max(window);
        if let Some(f) = g.fired.iter().find(|f| f.e == eid) {
            return Decision {
                fire: true,
                count: Some(f.count),
                sources: Some(f.sources.clone()),
                ..Decision::default()
            };
        }
        // Kafka partitions interleave: an event may be older than ones
        // already seen. Hits are kept for two windows behind the group's
        // latest event, and windows are evaluated around each event's own
        // time, so disorder within a window changes nothing. (Not the whole
        // 24h grace: every hit kept is rewritten to the changelog with each
        // change of the group.)
        // The group's latest time, but an outlier dated far past the clock
        // does not make every later hit "too late" (it blinds nothing).
        let latest = g.last.min(t.max(clock));
        let horizon = latest.saturating_sub(window.saturating_mul(2));
        if g.hits.iter().any(|h| h.e == eid) || t <= horizon {
            // Counted already, or too late to count.
            return Decision::default();
        }
        g.hits.retain(|h| h.t > horizon);
        let hit = Hit {
            t,
            e: eid.to_owned(),
            k: k.clone(),
            v,
        };
        if let Some(key) = &k {
            // Distinct values: one hit per value, the latest.
            if let Some(i) = g.hits.iter().position(|h| h.k.as_ref() == Some(key)) {
                if g.hits[i].t >= t {
                    return Decision::default();
                }
                g.hits.remove(i);
            }
        }
        // Sorted by time, then event id: the order is the same however the
        // events arrived.
        let at = g.hits.partition_point(|h| (h.t, &h.e) < (t, &hit.e));
        g.hits.insert(at, hit);
        if g.hits.len() > MAX_HITS {
            g.hits.remove(0);
        }
        g.last = g.last.max(t);
        // The fullest window [s, s + window) that contains this event.
        let (mut best, mut range) = (0usize, 0..0);
        let mut j = 0;
        for i in 0..g.hits.len() {
            let s = g.hits[i].t;
            if s > t {
                break;
            }
            j = j.max(i);
            while j < g.hits.len() && g.hits[j].t < s.saturating_add(window) {
                j += 1;
            }
            if s > t - window && j - i > best {
                best = j - i;
                range = i..j;
            }
        }
        let n = best as u64;
        let armed = g.fired.iter().all(|f| (t - f.t).abs() >= window);
        let mut d = Decision::default();
        if armed && n >= count {
            let mut sources: Vec<String> = Vec::new();
            for h in &g.hits[range] {
                if let Some(v) = &h.v {
                    if !sources.contains(v) {
                        sources.push(v.clone());
                    }
                }
            }
            g.fired.push(Fired {
                t,
                e: eid.to_owned(),
                count: n,
                sources: sources.clone(),
            });
            if g.fired.len() > MAX_HISTORY {
                g.fired.remove(0);
            }
            d = Decision {
                fire: true,
                count: Some(n),
                sources: Some(sources),
                ..Decision::default()
            };
        }
        self.group_changed(gk, changes);
        d
    }

    fn throttle(
        &mut self,
        gk: &str,
        eid: &str,
        t: i64,
        throttle: i64,
        d: &mut Decision,
        changes: &mut Vec<Change>,
    ) {
        let g = self.group_entry(gk, t);
        g.ttl = g.ttl.max(throttle);
        if let Some(p) = g.passed.iter().find(|p| p.e == eid) {
            d.suppressed = p.carried;
            return;
        }
        if g.held.iter().any(|h| h == eid) {
            d.fire = false;
            return;
        }
        g.last = g.last.max(t);
        if g.passed.last().is_some_and(|p| (t - p.t).abs() < throttle) {
            g.suppressed += 1;
            g.held.push(eid.to_owned());
            if g.held.len() > MAX_HELD {
                g.held.remove(0);
            }
            d.fire = false;
            d.throttled = true;
        } else {
            let carried = std::mem::take(&mut g.suppressed);
            g.passed.push(Passed {
                t,
                e: eid.to_owned(),
                carried,
            });
            if g.passed.len() > MAX_HISTORY {
                g.passed.remove(0);
            }
            d.suppressed = carried;
        }
        self.group_changed(gk, changes);
    }

    // -------------------------------------------------------------- bookkeeping

    /// The group's record, created if new. Its expiry is indexed by
    /// [`Store::group_changed`], which every path that creates one calls.
    fn group_entry(&mut self, gk: &str, t: i64) -> &mut GroupRecord {
        self.groups
            .entry(gk.to_owned())
            .or_insert_with(|| GroupRecord::new(t))
    }

    fn group_changed(&mut self, gk: &str, changes: &mut Vec<Change>) {
        let Some(g) = self.groups.get_mut(gk) else {
            return;
        };
        let (trimmed, value) = g.trim_to(MAX_RECORD_BYTES);
        self.cap_evictions.groups += trimmed;
        let expiry = g.expiry();
        self.reindex_group(gk, expiry);
        changes.push(Change {
            key: group_change_key(gk),
            value,
        });
        self.enforce_group_cap(changes);
    }

    fn reindex_group(&mut self, gk: &str, expiry: i64) {
        if let Some(old) = self.group_index.insert(gk.to_owned(), expiry) {
            self.group_expiry.remove(&(old, gk.to_owned()));
        }
        self.group_expiry.insert((expiry, gk.to_owned()));
    }

    fn remove_group(&mut self, gk: &str, changes: &mut Vec<Change>) {
        self.groups.remove(gk);
        if let Some(old) = self.group_index.remove(gk) {
            self.group_expiry.remove(&(old, gk.to_owned()));
        }
        changes.push(Change {
            key: group_change_key(gk),
            value: None,
        });
    }

    fn story_value(&mut self, key: u64) -> Option<String> {
        let s = self.stories.get_mut(&key)?;
        s.rec.sigs = s.sigs.iter().map(Signature::to_hex).collect();
        let value = serde_json::to_string(&s.rec).ok();
        s.rec.sigs = Vec::new();
        value
    }

    fn insert_story(&mut self, gk: String, key: u64, rec: StoryRecord, sigs: Vec<Signature>) {
        if !sigs.is_empty() {
            let idx = self.lsh.entry(gk.clone()).or_default();
            for s in &sigs {
                idx.insert(key, s);
            }
        }
        if let Some(x) = &rec.exact {
            self.exact.insert((gk.clone(), x.clone()), key);
        }
        let live = LiveStory { gk, rec, sigs };
        self.story_expiry.insert((live.expiry(), key));
        self.stories.insert(key, live);
    }

    fn remove_story(&mut self, key: u64, changes: &mut Vec<Change>) {
        let Some(s) = self.stories.remove(&key) else {
            return;
        };
        self.story_expiry.remove(&(s.expiry(), key));
        if let Some(idx) = self.lsh.get_mut(&s.gk) {
            for sig in &s.sigs {
                idx.remove(key, sig);
            }
            if idx.is_empty() {
                self.lsh.remove(&s.gk);
            }
        }
        if let Some(x) = &s.rec.exact {
            let k = (s.gk.clone(), x.clone());
            if self.exact.get(&k) == Some(&key) {
                self.exact.remove(&k);
            }
        }
        changes.push(Change {
            key: story_change_key(&s.gk, key),
            value: None,
        });
    }

    fn enforce_story_cap(&mut self, changes: &mut Vec<Change>) {
        while self.stories.len() > MAX_STORIES {
            let Some(&(_, key)) = self.story_expiry.first() else {
                break;
            };
            self.remove_story(key, changes);
            self.cap_evictions.stories += 1;
        }
    }

    fn enforce_group_cap(&mut self, changes: &mut Vec<Change>) {
        while self.groups.len() > MAX_GROUPS {
            let Some((_, gk)) = self.group_expiry.first().cloned() else {
                break;
            };
            self.remove_group(&gk, changes);
            self.cap_evictions.groups += 1;
        }
    }

    /// An event time seen: the clock becomes the median of the recent ones.
    fn tick(&mut self, t: i64) {
        if self.recent.len() == CLOCK_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(t);
        self.median();
    }

    fn median(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let mut v: Vec<i64> = self.recent.iter().copied().collect();
        // The lower median: with two samples, one of them an outlier, the
        // clock stays with the earlier.
        let mid = (v.len() - 1) / 2;
        let (_, m, _) = v.select_nth_unstable(mid);
        self.clock = *m;
    }

    /// Drop what fell out of its window behind the clock.
    fn evict_expired(&mut self, changes: &mut Vec<Change>) {
        let now = self.clock;
        while let Some(&(exp, key)) = self.story_expiry.first() {
            if exp >= now {
                break;
            }
            self.remove_story(key, changes);
        }
        while let Some((exp, gk)) = self.group_expiry.first().cloned() {
            if exp >= now {
                break;
            }
            self.remove_group(&gk, changes);
        }
    }

    /// Apply a changelog record back (restore). The owner of a partition
    /// is its only writer, so the last record of a key is its state.
    pub fn load(&mut self, key: &str, value: Option<&str>) -> Result<(), StateError> {
        let bad = || StateError::BadKey(key.to_owned());
        let mut parts = key.splitn(3, SEP);
        let (version, kind, rest) = match (parts.next(), parts.next(), parts.next()) {
            (Some(v), Some(k), Some(r)) => (v, k, r),
            _ => return Err(bad()),
        };
        if version != KEY_VERSION {
            return Err(if matches!(version, "g" | "s") {
                StateError::OldFormat
            } else {
                bad()
            });
        }
        let mut discard = Vec::new();
        match (kind, value) {
            ("g", _) if !is_group_key(rest) => return Err(bad()),
            ("g", None) => self.remove_group(rest, &mut discard),
            ("g", Some(v)) => {
                let g: GroupRecord = parse(key, v)?;
                self.tick(g.last);
                let expiry = g.expiry();
                self.groups.insert(rest.to_owned(), g);
                self.reindex_group(rest, expiry);
            }
            ("s", _) => {
                let (gk, hexkey) = rest.rsplit_once(SEP).ok_or_else(bad)?;
                if !is_group_key(gk) {
                    return Err(bad());
                }
                let skey = u64::from_str_radix(hexkey, 16).map_err(|_| bad())?;
                self.remove_story(skey, &mut discard);
                if let Some(v) = value {
                    let mut rec: StoryRecord = parse(key, v)?;
                    self.tick(rec.last);
                    let sigs = std::mem::take(&mut rec.sigs)
                        .iter()
                        .filter_map(|h| Signature::from_hex(h))
                        .collect();
                    self.insert_story(gk.to_owned(), skey, rec, sigs);
                }
            }
            ("d" | "m" | "l", _) => self.digests.load(key, kind, rest, value)?,
            ("k", Some(v)) => {
                let mut rec: digest::ClockRecord = parse(key, v)?;
                while rec.recent.len() > CLOCK_SAMPLES {
                    rec.recent.pop_front();
                }
                self.recent = rec.recent;
                self.median();
                self.digests.set_high(rec.high);
            }
            ("k", None) => {}
            _ => return Err(bad()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::event::{decode, Event, EventFields};
    use crate::matcher::Scratch;
    use std::path::PathBuf;

    const BODY_A: &str = "The United States, South Korea and Japan began a three-day trilateral naval exercise \
        in international waters south of Jeju island on Monday, involving an aircraft carrier, destroyers \
        and maritime patrol aircraft, the defence ministry in Seoul said in a statement.";
    const BODY_B: &str =
        "Russian Foreign Minister Sergei Lavrov warned on Friday that a planned missile \
        deployment in Europe would force Moscow to respond, telling reporters in Moscow that the \
        talks on strategic stability had reached a dead end after months of silence.";

    fn engine(rules: &str) -> Engine {
        let fields = EventFields {
            story_id: "/story".into(),
            ..EventFields::default()
        };
        let rs = crate::rules::load_strs(vec![(PathBuf::from("r.yaml"), rules.to_owned())])
            .unwrap_or_else(|e| panic!("{e:?}"));
        Engine::new(rs, fields)
    }

    /// (id, minutes after T0, source, body)
    type Ev<'a> = (&'a str, i64, &'a str, &'a str);

    fn event(e: &Ev<'_>) -> Event {
        let t = DateTime::parse_from_rfc3339("2026-07-01T00:00:00Z").unwrap()
            + chrono::Duration::minutes(e.1);
        let j = serde_json::json!({"id": e.0, "title": "", "body": e.3, "source": e.2,
            "published_at": t.to_rfc3339()});
        decode(j.to_string().as_bytes(), &EventFields::default()).unwrap()
    }

    /// Run events through a store; one line per alert: `event rule extra`.
    fn run_on(
        eng: &Engine,
        store: &mut Store,
        evs: &[Ev<'_>],
        changes: &mut Vec<Change>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let mut scratch = Scratch::new();
        for e in evs {
            let ev = event(e);
            let staged = eng.stage(&ev, &mut scratch, None);
            for a in eng.settle(staged, None, store, changes) {
                let mut line = format!("{} {}", e.0, a.rule.id);
                if let Some(s) = &a.story {
                    line += &format!(" story={}", s.id);
                }
                if let Some(c) = a.count {
                    line += &format!(
                        " count={c} sources={}",
                        a.sources.unwrap_or_default().join(",")
                    );
                }
                if a.suppressed > 0 {
                    line += &format!(" suppressed={}", a.suppressed);
                }
                if !a.group.is_empty() {
                    line += &format!(" group={}", serde_json::to_string(&a.group).unwrap());
                }
                out.push(line);
            }
        }
        out
    }

    fn check(rules: &str, evs: &[Ev<'_>], expected: &[&str]) {
        let eng = engine(rules);
        let got = run_on(&eng, &mut Store::default(), evs, &mut Vec::new());
        assert_eq!(got, expected, "rules: {rules}");
    }

    const FIRST_SEEN: &str = "rules:\n- {id: fs, title: t, query: 'exercise OR Lavrov', alert: {mode: first_seen, window: 24h}}\n";

    #[test]
    fn first_seen_table() {
        let edited = BODY_A
            .replace("on Monday", "on Monday morning")
            .replace("said in a statement", "said");
        // Syndicated copies (one lightly edited) alert once; another story alerts.
        check(
            FIRST_SEEN,
            &[
                ("a1", 0, "reuters", BODY_A),
                ("a2", 10, "yonhap", BODY_A),
                ("a3", 30, "kyodo", &edited),
                ("b1", 40, "tass", BODY_B),
            ],
            &["a1 fs story=a1", "b1 fs story=b1"],
        );
        // The same text after the window is a new story; within the window
        // of its last copy it is not (the story grows).
        check(
            FIRST_SEEN,
            &[
                ("a1", 0, "reuters", BODY_A),
                ("a2", 20 * 60, "yonhap", BODY_A),
                ("a3", 43 * 60, "kyodo", BODY_A),
                ("a4", 68 * 60, "kyodo", BODY_A),
            ],
            &["a1 fs story=a1", "a4 fs story=a4"],
        );
        // Texts too short to sign: only identical text is the same story.
        check(
            FIRST_SEEN,
            &[
                ("s1", 0, "x", "Lavrov speaks"),
                ("s2", 1, "y", "Lavrov speaks"),
                ("s3", 2, "y", "Lavrov silent"),
            ],
            &["s1 fs story=s1", "s3 fs story=s3"],
        );
        // group_by: the same story in two groups alerts in each.
        check(
            "rules:\n- {id: fs, title: t, query: exercise, group_by: [source], alert: {mode: first_seen}}\n",
            &[
                ("a1", 0, "reuters", BODY_A),
                ("a2", 1, "yonhap", BODY_A),
                ("a3", 2, "reuters", BODY_A),
            ],
            &[
                r#"a1 fs story=a1 group={"source":"reuters"}"#,
                r#"a2 fs story=a2 group={"source":"yonhap"}"#,
            ],
        );
    }

    #[test]
    fn story_id_decides_when_present() {
        let eng = engine(FIRST_SEEN);
        let mut store = Store::default();
        let mut scratch = Scratch::new();
        let mut fired = Vec::new();
        for (id, story, body) in [
            ("e1", "S1", BODY_A),
            ("e2", "S1", BODY_B),
            ("e3", "S2", BODY_A),
        ] {
            let j = serde_json::json!({"id": id, "body": body, "story": story,
                "published_at": "2026-07-01T00:00:00Z"});
            let ev = decode(j.to_string().as_bytes(), &eng.fields).unwrap();
            let staged = eng.stage(&ev, &mut scratch, None);
            for a in eng.settle(staged, None, &mut store, &mut Vec::new()) {
                fired.push(format!("{} {}", id, a.story.unwrap().id));
            }
        }
        assert_eq!(fired, ["e1 S1", "e3 S2"]);
    }

    #[test]
    fn threshold_table() {
        let count3 = "rules:\n- {id: th, title: t, query: exercise, alert: {mode: threshold, count: 3, window: 2h}}\n";
        check(
            count3,
            &[
                ("e1", 0, "a", BODY_A),
                ("e2", 30, "b", BODY_A),
                ("e3", 60, "a", BODY_A),
                ("e4", 70, "c", BODY_A),
                // re-armed 2h after firing; e4..e6 are within 2h of e7
                ("e5", 150, "c", BODY_A),
                ("e6", 170, "c", BODY_A),
                ("e7", 181, "d", BODY_A),
            ],
            &["e3 th count=3 sources=a,b", "e7 th count=4 sources=c,d"],
        );
        // Arrival order does not matter (partitions interleave).
        check(
            count3,
            &[
                ("e3", 60, "c", BODY_A),
                ("e1", 0, "a", BODY_A),
                ("e2", 30, "b", BODY_A),
                ("e0", 10, "d", BODY_A),
            ],
            &["e2 th count=3 sources=a,b,c"],
        );
        // Too spread out: never 3 within 2h.
        check(
            count3,
            &[
                ("e1", 0, "a", BODY_A),
                ("e2", 100, "b", BODY_A),
                ("e3", 230, "c", BODY_A),
            ],
            &[],
        );
        let distinct = "rules:\n- {id: th, title: t, query: exercise, alert: {mode: threshold, count: 3, window: 2h, distinct: source}}\n";
        check(
            distinct,
            &[
                ("e1", 0, "Reuters", BODY_A),
                ("e2", 10, "reuters", BODY_A),
                ("e3", 20, "Yonhap", BODY_A),
                ("e4", 30, "yonhap", BODY_A),
                ("e5", 40, "Kyodo", BODY_A),
            ],
            &["e5 th count=3 sources=reuters,yonhap,Kyodo"],
        );
    }

    #[test]
    fn throttle_carries_the_suppressed_count() {
        let rules = "rules:\n- {id: r, title: t, query: exercise, throttle: 30m}\n";
        check(
            rules,
            &[
                ("e1", 0, "a", BODY_A),
                ("e2", 10, "a", BODY_A),
                ("e3", 20, "a", BODY_A),
                ("e4", 31, "a", BODY_A),
                ("e5", 100, "a", BODY_A),
            ],
            &["e1 r", "e4 r suppressed=2", "e5 r"],
        );
        let grouped =
            "rules:\n- {id: r, title: t, query: exercise, throttle: 30m, group_by: [source]}\n";
        check(
            grouped,
            &[
                ("e1", 0, "a", BODY_A),
                ("e2", 1, "b", BODY_A),
                ("e3", 2, "a", BODY_A),
                ("e4", 40, "a", BODY_A),
            ],
            &[
                r#"e1 r group={"source":"a"}"#,
                r#"e2 r group={"source":"b"}"#,
                r#"e4 r suppressed=1 group={"source":"a"}"#,
            ],
        );
    }

    const ALL: &str = "rules:\n\
- {id: fs, title: t, query: 'exercise OR Lavrov', throttle: 1h, alert: {mode: first_seen, window: 6h}}\n\
- {id: th, title: t, query: 'exercise OR Lavrov', group_by: [source], alert: {mode: threshold, count: 2, window: 1h}}\n\
- {id: tt, title: t, query: 'exercise OR Lavrov', throttle: 20m}\n";

    fn stream() -> Vec<(String, i64, String, String)> {
        let mut v = Vec::new();
        for i in 0..60i64 {
            let body = match i % 5 {
                0 => BODY_A.to_owned(),
                1 => BODY_B.to_owned(),
                2 => format!("{BODY_A} Update {i}."),
                3 => format!("Lavrov number {i} spoke about things {}", i * 7),
                _ => format!("An exercise number {i} of kind {} happened", i % 3),
            };
            v.push((format!("e{i}"), i * 17, format!("src{}", i % 3), body));
        }
        v
    }

    fn evs(s: &[(String, i64, String, String)]) -> Vec<Ev<'_>> {
        s.iter()
            .map(|(a, b, c, d)| (a.as_str(), *b, c.as_str(), d.as_str()))
            .collect()
    }

    /// Restoring from the changelog at any point gives the same alerts as
    /// never stopping.
    #[test]
    fn restore_from_changes_continues_identically() {
        let eng = engine(ALL);
        let s = stream();
        let all = evs(&s);
        let baseline = run_on(&eng, &mut Store::new(), &all, &mut Vec::new());
        assert!(baseline.len() > 10, "{baseline:?}");
        for cut in [1, 7, 23, 40, 59] {
            let mut a = Store::new();
            let mut log = Vec::new();
            let mut got = run_on(&eng, &mut a, &all[..cut], &mut log);
            let mut b = Store::new();
            for c in &log {
                b.load(&c.key, c.value.as_deref()).unwrap();
            }
            got.extend(run_on(&eng, &mut b, &all[cut..], &mut Vec::new()));
            assert_eq!(got, baseline, "cut at {cut}");
        }
    }

    /// A crash redelivers events whose state is already persisted: they
    /// fire exactly as the first time (same alerts), and count nothing twice.
    #[test]
    fn redelivery_is_idempotent() {
        let eng = engine(ALL);
        let s = stream();
        let all = evs(&s);
        let baseline = run_on(&eng, &mut Store::new(), &all, &mut Vec::new());
        for (crash, committed) in [(30, 20), (45, 44), (10, 0)] {
            let mut log = Vec::new();
            let mut got = run_on(&eng, &mut Store::new(), &all[..crash], &mut log);
            let mut restored = Store::new();
            for c in &log {
                restored.load(&c.key, c.value.as_deref()).unwrap();
            }
            // Events after the committed offset come again.
            let again = run_on(&eng, &mut restored, &all[committed..], &mut Vec::new());
            let first_time: Vec<String> = baseline
                .iter()
                .filter(|l| {
                    let id: usize = l.split(' ').next().unwrap()[1..].parse().unwrap();
                    id >= committed
                })
                .cloned()
                .collect();
            assert_eq!(again, first_time, "crash at {crash}, committed {committed}");
            got.truncate(0);
        }
    }

    #[test]
    fn state_is_evicted_after_its_window() {
        let eng = engine(ALL);
        let mut store = Store::default();
        let s = stream();
        run_on(&eng, &mut store, &evs(&s), &mut Vec::new());
        let (stories, groups) = store.sizes();
        assert!(stories > 0 && groups > 0);
        // Far later: everything but throttled groups with held-back alerts
        // goes, once the clock (a median) has moved there.
        let mut changes = Vec::new();
        let ids: Vec<String> = (0..CLOCK_SAMPLES).map(|i| format!("far{i}")).collect();
        let far: Vec<Ev<'_>> = ids
            .iter()
            .map(|id| (id.as_str(), 200 * 24 * 60, "src0", BODY_B))
            .collect();
        run_on(&eng, &mut store, &far, &mut changes);
        let (stories, groups) = store.sizes();
        assert!(stories <= 1, "{stories}");
        assert!(groups <= 4, "{groups}");
        assert!(
            changes.iter().any(|c| c.value.is_none()),
            "tombstones written"
        );
    }

    /// The daemon's two stages: match records routed by [`partition_of`]
    /// to one store per partition, each decided in its own order, give the
    /// alerts one store gives, whatever the partition count, and each
    /// partition's changelog restores its store.
    #[test]
    fn partitioned_stores_decide_as_one() {
        let eng = engine(ALL);
        let s = stream();
        let all = evs(&s);
        let baseline = run_on(&eng, &mut Store::new(), &all, &mut Vec::new());
        for n in [1u32, 2, 3, 6] {
            let mut stores: Vec<Store> = (0..n).map(|_| Store::new()).collect();
            let mut logs: Vec<Vec<Change>> = (0..n).map(|_| Vec::new()).collect();
            let mut scratch = Scratch::new();
            let mut got = Vec::new();
            let mut restored_got = Vec::new();
            for (i, e) in all.iter().enumerate() {
                let ev = event(e);
                for slot in eng.stage(&ev, &mut scratch, None).slots {
                    let crate::engine::Slot::Stateful(rec) = slot else {
                        continue;
                    };
                    let p = partition_of(&rec.rule, &rec.group, n) as usize;
                    if i == 30 {
                        // Halfway, every partition moves: restored from its log.
                        let mut fresh = Store::new();
                        for c in &logs[p] {
                            fresh.load(&c.key, c.value.as_deref()).unwrap();
                        }
                        stores[p] = fresh;
                    }
                    let (_, a) = eng.decide(*rec, &mut stores[p], &mut logs[p]);
                    if let Some(a) = a {
                        if i >= 30 {
                            restored_got.push(a.alert_id.clone());
                        }
                        got.push(a.alert_id);
                    }
                }
            }
            let mut single = Vec::new();
            let mut one = Store::new();
            for e in &all {
                let ev = event(e);
                for slot in eng.stage(&ev, &mut Scratch::new(), None).slots {
                    if let crate::engine::Slot::Stateful(rec) = slot {
                        if let (_, Some(a)) = eng.decide(*rec, &mut one, &mut Vec::new()) {
                            single.push(a.alert_id);
                        }
                    }
                }
            }
            got.sort();
            single.sort();
            assert_eq!(got, single, "{n} partitions");
            assert!(!restored_got.is_empty());
        }
        assert!(baseline.len() > 10);
    }

    /// One event can evict a group (its window passed) and create it again;
    /// the changelog then holds the tombstone before the new record, so a
    /// restore keeps the new state.
    #[test]
    fn a_group_evicted_and_recreated_by_one_event_keeps_its_new_state() {
        let eng = engine("rules:\n- {id: th, title: t, query: Lavrov, group_by: [source], alert: {mode: threshold, count: 2, window: 1h}}\n");
        let day = 24 * 60;
        let evs: Vec<Ev<'_>> = vec![
            ("a1", 0, "s1", BODY_B),
            // Another group ten days later: the clock (the lower median of
            // two times) does not move yet...
            ("b1", 10 * day, "s2", BODY_B),
            // ...with this third time it does: the group of a1 is evicted,
            // and this event creates it anew.
            ("a2", 10 * day, "s1", BODY_B),
        ];
        let mut store = Store::new();
        let mut log = Vec::new();
        run_on(&eng, &mut store, &evs, &mut log);
        let gkey = log.last().map(|c| c.key.clone()).unwrap();
        let deleted_then_written: Vec<bool> = log
            .iter()
            .filter(|c| c.key == gkey)
            .map(|c| c.value.is_some())
            .collect();
        assert_eq!(deleted_then_written, [true, false, true], "{log:?}");
        let mut restored = Store::new();
        for c in &log {
            restored.load(&c.key, c.value.as_deref()).unwrap();
        }
        // The next copy within the hour completes the threshold in both.
        let next = [("a3", 10 * day + 5, "s1", BODY_B)];
        let a = run_on(&eng, &mut store, &next, &mut Vec::new());
        let b = run_on(&eng, &mut restored, &next, &mut Vec::new());
        assert_eq!(a, ["a3 th count=2 sources=s1 group={\"source\":\"s1\"}"]);
        assert_eq!(a, b);
    }

    /// A story that fell out of its window but is not evicted yet (the
    /// grace) must not hide the newer story of the same text.
    #[test]
    fn an_old_version_of_a_story_hides_nothing() {
        let day = 24 * 60;
        check(
            FIRST_SEEN,
            &[
                ("a", 0, "s", BODY_A),
                // Two days later: out of the 24h window, a new story.
                ("b", 2 * day, "s", BODY_A),
                // An hour after that: the new story, no alert.
                ("c", 2 * day + 60, "s", BODY_A),
            ],
            &["a fs story=a", "b fs story=b"],
        );
    }

    /// An event dated 2999 (or 1970) decides only for itself: the same
    /// alerts as without it, in the stream and after a restore.
    #[test]
    fn an_outlier_date_evicts_and_blinds_nothing() {
        let eng = engine(ALL);
        let s = stream();
        let all = evs(&s);
        let without = run_on(&eng, &mut Store::new(), &all, &mut Vec::new());
        for outlier in [1_000 * 365 * 24 * 60i64, -56 * 365 * 24 * 60] {
            let mut with = all.clone();
            with.insert(30, ("odd", outlier, "src1", BODY_A));
            let mut log = Vec::new();
            // Alerts by event and rule. (The outlier's own alert passes a
            // throttle and carries the count held back before it, as any
            // passing alert would: only `suppressed` numbers move.)
            let who = |v: &[String]| -> Vec<String> {
                v.iter()
                    .filter(|l| !l.starts_with("odd "))
                    .map(|l| l.split(" suppressed=").next().unwrap_or(l).to_owned())
                    .collect()
            };
            let got = run_on(&eng, &mut Store::new(), &with, &mut log);
            assert_eq!(who(&got), who(&without), "outlier at {outlier} min");
            // After a restore from everything up to and including it.
            let cut = 31;
            let mut log = Vec::new();
            run_on(&eng, &mut Store::new(), &with[..cut], &mut log);
            let mut restored = Store::new();
            for c in &log {
                restored.load(&c.key, c.value.as_deref()).unwrap();
            }
            let rest = run_on(&eng, &mut restored, &with[cut..], &mut Vec::new());
            let expected: Vec<String> = without
                .iter()
                .filter(|l| {
                    let id: usize = l.split(' ').next().unwrap()[1..].parse().unwrap();
                    id >= 30
                })
                .cloned()
                .collect();
            assert_eq!(
                who(&rest),
                who(&expected),
                "restored after an outlier at {outlier} min"
            );
        }
    }

    #[test]
    fn bad_changelog_records_are_errors_not_panics() {
        let mut s = Store::new();
        for (k, v) in [
            ("nonsense", Some("{}")),
            ("2\u{1f}g\u{1f}r", Some("{}")),
            ("2\u{1f}g\u{1f}r\u{1f}fp\u{1f}{}", Some("not json")),
            ("2\u{1f}s\u{1f}r\u{1f}fp\u{1f}{}\u{1f}zz", Some("{}")),
            ("2\u{1f}x\u{1f}r\u{1f}fp\u{1f}{}", None),
            ("3\u{1f}g\u{1f}r\u{1f}fp\u{1f}{}", None),
        ] {
            assert!(
                matches!(
                    s.load(k, v),
                    Err(StateError::BadKey(_) | StateError::BadValue { .. })
                ),
                "{k}"
            );
        }
        // The format before partitioned state is recognised, to be skipped.
        for k in ["g\u{1f}r\u{1f}{}", "s\u{1f}r\u{1f}{}\u{1f}00000000000000ff"] {
            assert!(
                matches!(s.load(k, Some("{}")), Err(StateError::OldFormat)),
                "{k}"
            );
        }
        // A tombstone for something unknown is fine.
        s.load(
            "2\u{1f}s\u{1f}r\u{1f}fp\u{1f}{}\u{1f}00000000000000ff",
            None,
        )
        .unwrap();
    }

    /// Every changelog value stays within [`MAX_RECORD_BYTES`], whatever
    /// the ids, distinct values and volume; the newest hits survive, so a
    /// threshold of the largest `count` still fires.
    #[test]
    fn records_stay_within_their_byte_bound() {
        let long = "x".repeat(5_000);
        let src = "y".repeat(5_000);
        for (rules, n, id_len) in [
            // 2,000 distinct sources with 5 KB ids and values.
            ("rules:\n- {id: th, title: t, query: exercise, alert: {mode: threshold, count: 500, window: 48h, distinct: source}}\n", 2_000, 5_000),
            // The largest count with 40-byte ids: all hits fit, and it fires.
            ("rules:\n- {id: th, title: t, query: exercise, alert: {mode: threshold, count: 500, window: 48h}}\n", 500, 40),
            // a throttle holding back 3,000 long ids.
            ("rules:\n- {id: th, title: t, query: exercise, throttle: 48h}\n", 3_000, 5_000),
        ] {
            let eng = engine(rules);
            let mut store = Store::new();
            let mut changes = Vec::new();
            let mut fired = 0;
            for i in 0..n {
                let id = format!("{i:08}{}", &long[..id_len - 8]);
                // Long sources only where ids are long too.
                let source = if id_len > 40 { format!("{i}{src}") } else { format!("s{}", i % 50) };
                let e: Ev<'_> = (&id, i as i64 / 100, &source, BODY_A);
                fired += run_on(&eng, &mut store, &[e], &mut changes).len();
            }
            let biggest = changes.iter().filter_map(|c| c.value.as_ref()).map(String::len).max();
            assert!(biggest.unwrap() <= MAX_RECORD_BYTES, "{rules}: {biggest:?}");
            if id_len == 40 {
                assert_eq!(fired, 1, "{rules}");
            }
        }
    }

    #[test]
    fn bounded_ids() {
        assert_eq!(bounded_id("a17"), "a17");
        let long = "a".repeat(65);
        let h = bounded_id(&long);
        assert_eq!((h.len(), &h[..1]), (33, "#"));
        assert_eq!(h, bounded_id(&long), "stable");
        assert_ne!(h, bounded_id(&"a".repeat(66)));
    }
}
