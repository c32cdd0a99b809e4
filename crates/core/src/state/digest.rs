//! Digests (SPEC §6): a rule with `digest: {every, max_items, grace}`
//! publishes one `newswatch.digest.v1` record per group and period instead
//! of single alerts.
//!
//! Part of the pure [`super::Store`], so a digest is decided by the owner of
//! its (rule, group) like any other state, and survives restarts, crashes
//! and moves through the changelog:
//!
//! * **Periods** are aligned to UTC by event time (`every` divides a day).
//!   An alert that would be published (after the mode and `throttle`)
//!   joins the open digest of its rule, group and period.
//! * **Close by event time.** A period closes when the store's clock (the
//!   median of recent event times of its state partition) passes its end.
//!   **Close on the wall clock** ([`super::Store::close_idle`], `run` only):
//!   when the wall clock has passed its end plus `grace` and the partition
//!   has decided nothing for `grace`. `replay` and `test` close every
//!   period at the end of their input ([`super::Store::close_all`]).
//! * **Late.** A match whose period has closed (by either clock) goes into
//!   the group's next open period, the one holding the clock, and is
//!   counted there in `late`.
//! * **Ids.** `digest_id` hashes rule id, group and period start only, so
//!   every instance, restart and redelivery gives the same id; a digest's
//!   members are remembered by `alert_id`, so a redelivered match is not
//!   counted twice. An empty period has no digest and publishes nothing.
//! * **Changelog.** An open digest is a header record
//!   (`2␟d␟<rule>␟<group>␟<start>`), written once when it opens, and one
//!   member record per alert (`2␟m␟…␟<start>␟<alert_id>`), written once,
//!   holding the item for the first `max_items`; closing tombstones them
//!   all. `2␟l␟<rule>␟<group>` remembers a group's latest close for a day
//!   of event time: its end (periods before it are closed, also when the
//!   wall clock closed them ahead of the event clock) and the alert ids it
//!   counted (so a match delivered again after its period closed counts
//!   nothing); and
//!   `2␟k␟clock` the store's clock samples with every digest change, so
//!   that a restored store closes periods at the same events as the one
//!   before it (exactly when each decision of the partition touched a
//!   digest; else perhaps a few events later, never twice). Header and
//!   member records are never rewritten, so the compacted log restores in
//!   any order it keeps.
//!
//! Size: an item is cut to [`MAX_ITEM_BYTES`] and a digest lists at most
//! [`crate::rules::MAX_DIGEST_ITEMS`], so with the rule and group (at most
//! an alert's 64 KiB) a digest record stays under 1 MiB.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::records::{parse, KEY_VERSION};
use super::{Change, StateError, GRACE_MS, SEP};
use crate::alert::{cut, Alert, AlertEvent, AlertRule, Story};
use crate::event::format_time;
use crate::rules::DigestSpec;

pub const SCHEMA: &str = "newswatch.digest.v1";
/// An item is cut to at most this many bytes serialized.
pub const MAX_ITEM_BYTES: usize = 8 * 1024;
/// Open digests a store holds at most; past it the one that ends first is
/// closed early (only outliers dated far ahead can pile up this many).
pub const MAX_OPEN: usize = 10_000;
/// Each string of an item over [`MAX_ITEM_BYTES`] is cut to these lengths
/// in turn (characters).
const ITEM_CAPS: [usize; 2] = [1_000, 100];

/// `period` of a digest: RFC 3339, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: String,
    pub end: String,
}

/// One alert of a digest, trimmed: the event and why it matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestItem {
    pub alert_id: String,
    pub event: AlertEvent,
    pub snippet: String,
    pub story: Option<Story>,
}

/// A digest record (SPEC §6), field order as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub schema: String,
    pub digest_id: String,
    pub rule: AlertRule,
    pub group: BTreeMap<String, Value>,
    pub period: Period,
    pub count: u64,
    pub omitted: u64,
    /// Alerts of periods already closed when they came, counted here.
    pub late: u64,
    pub items: Vec<DigestItem>,
    /// The rule's own topic when it has one (not published).
    #[serde(skip)]
    pub topic: Option<String>,
}

/// Deterministic digest id: 128 bits of SHA-256 over rule id, group and
/// period start (milliseconds since the epoch).
pub fn digest_id(rule_id: &str, group: &BTreeMap<String, Value>, start: i64) -> String {
    let mut h = Sha256::new();
    h.update(SCHEMA.as_bytes());
    h.update([0]);
    h.update(rule_id.as_bytes());
    h.update([0]);
    h.update(serde_json::to_string(group).unwrap_or_default().as_bytes());
    h.update([0]);
    h.update(start.to_string().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The start of the period of `every` milliseconds that holds `t`.
pub fn period_start(t: i64, every: i64) -> i64 {
    t.div_euclid(every.max(1)).saturating_mul(every.max(1))
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn time(t: i64) -> String {
    DateTime::from_timestamp_millis(t)
        .map(|t| format_time(&t))
        .unwrap_or_default()
}

impl DigestItem {
    /// The item of an alert, cut to [`MAX_ITEM_BYTES`].
    pub fn of(a: &Alert) -> Self {
        let mut item = DigestItem {
            alert_id: a.alert_id.clone(),
            event: a.event.clone(),
            snippet: a.snippet.clone(),
            story: a.story.clone(),
        };
        for cap in ITEM_CAPS {
            let len = serde_json::to_vec(&item).map_or(0, |v| v.len());
            if len <= MAX_ITEM_BYTES {
                break;
            }
            let e = &mut item.event;
            if let Value::String(s) = &mut e.id {
                cut(s, cap);
            }
            for s in [&mut e.title, &mut e.source, &mut e.url, &mut e.lang]
                .into_iter()
                .flatten()
            {
                cut(s, cap);
            }
            cut(&mut item.snippet, cap);
            if let Some(s) = &mut item.story {
                cut(&mut s.id, cap);
            }
        }
        item
    }
}

/// What is written once when a digest opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Head {
    rule: AlertRule,
    group: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    start: i64,
    end: i64,
    grace: i64,
    max_items: usize,
}

/// One alert of an open digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Member {
    /// Arrival number: items are listed in arrival order.
    n: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    late: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    item: Option<DigestItem>,
}

struct Open {
    head: Head,
    members: HashMap<String, Member>,
}

/// The open digests of one store.
pub(super) struct Digests {
    /// By `dk␟start`, where `dk` is `rule␟group-json`.
    open: HashMap<String, Open>,
    by_end: BTreeSet<(i64, String)>,
    by_due: BTreeSet<(i64, String)>,
    /// Per `dk`: the latest close, kept for a day of event time past its
    /// end (see [`Closed`]), indexed by that end.
    last_closed: HashMap<String, Closed>,
    closed_by_end: BTreeSet<(i64, String)>,
    /// Digests closed and not taken yet.
    closed: Vec<Digest>,
    /// The highest store clock seen: the median can step back a little
    /// (an older event arrives), a closed period must stay closed.
    high: i64,
}

/// What a group remembers of its latest closed period (`2␟l␟<dk>`):
/// * `end`: periods starting before it are closed, also when the wall
///   clock closed them while the event clock is behind;
/// * `ids`: the alert ids it counted (the latest [`MAX_REMEMBERED`]), so a
///   match delivered again after a crash, once its period has closed, is
///   not counted a second time as late.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Closed {
    end: i64,
    ids: Vec<String>,
    #[serde(skip)]
    set: std::collections::HashSet<String>,
}

/// Alert ids a closed period remembers, at most (the latest).
const MAX_REMEMBERED: usize = 10_000;

/// The clock record's value: the store's samples and [`Digests`]' high mark.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ClockRecord {
    pub(super) recent: std::collections::VecDeque<i64>,
    pub(super) high: i64,
}

impl Default for Digests {
    fn default() -> Self {
        Digests {
            open: HashMap::new(),
            by_end: BTreeSet::new(),
            by_due: BTreeSet::new(),
            last_closed: HashMap::new(),
            closed_by_end: BTreeSet::new(),
            closed: Vec::new(),
            high: i64::MIN,
        }
    }
}

fn open_key(dk: &str, start: i64) -> String {
    format!("{dk}{SEP}{start}")
}

fn head_change_key(ok: &str) -> String {
    format!("{KEY_VERSION}{SEP}d{SEP}{ok}")
}

fn member_change_key(ok: &str, alert_id: &str) -> String {
    format!("{KEY_VERSION}{SEP}m{SEP}{ok}{SEP}{alert_id}")
}

fn closed_change_key(dk: &str) -> String {
    format!("{KEY_VERSION}{SEP}l{SEP}{dk}")
}

/// The clock samples' key.
pub(super) const CLOCK_KEY: &str = "2\u{1f}k\u{1f}clock";

impl Digests {
    pub(super) fn len(&self) -> usize {
        self.open.len()
    }

    pub(super) fn take(&mut self) -> Vec<Digest> {
        std::mem::take(&mut self.closed)
    }

    pub(super) fn high(&self) -> i64 {
        self.high
    }

    pub(super) fn set_high(&mut self, high: i64) {
        self.high = high;
    }

    /// Add a published alert of a digest rule at event time `t` (after
    /// [`Digests::close_by_clock`] saw this event's clock). True when
    /// state changed.
    pub(super) fn add(
        &mut self,
        spec: &DigestSpec,
        topic: Option<&str>,
        a: &Alert,
        t: i64,
        changes: &mut Vec<Change>,
    ) -> bool {
        let clock = self.high;
        let every = ms(spec.every);
        let dk = format!(
            "{}{SEP}{}",
            a.rule.id,
            serde_json::to_string(&a.group).unwrap_or_default()
        );
        let (until, counted) = self
            .last_closed
            .get(&dk)
            .map_or((i64::MIN, false), |c| (c.end, c.set.contains(&a.alert_id)));
        if counted {
            // Delivered again (after a crash) once its period had closed.
            return false;
        }
        let mut start = period_start(t, every);
        let late = start.saturating_add(every) <= clock || start < until;
        if late {
            start = period_start(clock, every).max(period_start(until, every));
        }
        let ok = open_key(&dk, start);
        if let Some(o) = self.open.get(&ok) {
            if o.members.contains_key(&a.alert_id) {
                // Delivered again (after a crash): counted already.
                return false;
            }
        } else {
            let head = Head {
                rule: a.rule.clone(),
                group: a.group.clone(),
                topic: topic.map(str::to_owned),
                start,
                end: start.saturating_add(every),
                grace: ms(spec.grace),
                max_items: spec.max_items,
            };
            changes.push(Change {
                key: head_change_key(&ok),
                value: serde_json::to_string(&head).ok(),
            });
            self.insert(ok.clone(), head);
            self.enforce_cap(changes);
        }
        let Some(o) = self.open.get_mut(&ok) else {
            return true;
        };
        let n = o.members.len() as u64;
        let member = Member {
            n,
            late,
            item: (o.members.len() < o.head.max_items).then(|| DigestItem::of(a)),
        };
        changes.push(Change {
            key: member_change_key(&ok, &a.alert_id),
            value: serde_json::to_string(&member).ok(),
        });
        o.members.insert(a.alert_id.clone(), member);
        true
    }

    fn insert(&mut self, ok: String, head: Head) {
        self.by_end.insert((head.end, ok.clone()));
        self.by_due
            .insert((head.end.saturating_add(head.grace), ok.clone()));
        self.open.insert(
            ok,
            Open {
                head,
                members: HashMap::new(),
            },
        );
    }

    fn enforce_cap(&mut self, changes: &mut Vec<Change>) {
        while self.open.len() > MAX_OPEN {
            let Some((_, ok)) = self.by_end.first().cloned() else {
                break;
            };
            self.close(&ok, changes);
        }
    }

    /// Close every period that ends at or before `clock` (event time).
    /// True when something closed.
    pub(super) fn close_by_clock(&mut self, clock: i64, changes: &mut Vec<Change>) -> bool {
        // A move of the high mark alone is not persisted (that would be a
        // clock record per decision): a restore may close a period a few
        // events later, never twice, since every close persists it.
        let mut any = false;
        self.high = self.high.max(clock);
        let clock = self.high;
        while let Some((end, ok)) = self.by_end.first().cloned() {
            if end > clock {
                break;
            }
            self.close(&ok, changes);
            any = true;
        }
        // A close a day of event time ago: nothing is delivered again
        // that late, and the event clock decides what is late.
        while let Some((end, dk)) = self.closed_by_end.first().cloned() {
            if end.saturating_add(GRACE_MS) >= clock {
                break;
            }
            self.closed_by_end.remove(&(end, dk.clone()));
            self.last_closed.remove(&dk);
            changes.push(Change {
                key: closed_change_key(&dk),
                value: None,
            });
            any = true;
        }
        any
    }

    /// Close the periods whose end plus grace is at or before `wall`, when
    /// the partition has been idle (decided nothing) for at least their
    /// grace. Remembers the close, so later matches of them are late.
    pub(super) fn close_idle(&mut self, wall: i64, idle: i64, changes: &mut Vec<Change>) -> bool {
        let due: Vec<String> = self
            .by_due
            .iter()
            .take_while(|(d, _)| *d <= wall)
            .filter(|(_, ok)| self.open.get(ok).is_some_and(|o| o.head.grace <= idle))
            .map(|(_, ok)| ok.clone())
            .collect();
        for ok in &due {
            self.close(ok, changes);
        }
        !due.is_empty()
    }

    /// Close everything (the end of `replay`'s or `test`'s input), in
    /// order of period end.
    pub(super) fn close_all(&mut self, changes: &mut Vec<Change>) {
        while let Some((_, ok)) = self.by_end.first().cloned() {
            self.close(&ok, changes);
        }
    }

    /// Close one open digest: publish it, tombstone its records, remember
    /// the close for its group.
    fn close(&mut self, ok: &str, changes: &mut Vec<Change>) -> Option<()> {
        let o = self.open.remove(ok)?;
        let h = o.head;
        self.by_end.remove(&(h.end, ok.to_owned()));
        self.by_due
            .remove(&(h.end.saturating_add(h.grace), ok.to_owned()));
        let mut members: Vec<(String, Member)> = o.members.into_iter().collect();
        members.sort_by_key(|(_, m)| m.n);
        changes.push(Change {
            key: head_change_key(ok),
            value: None,
        });
        let count = members.len() as u64;
        let late = members.iter().filter(|(_, m)| m.late).count() as u64;
        let skip = members.len().saturating_sub(MAX_REMEMBERED);
        let ids: Vec<String> = members
            .iter()
            .skip(skip)
            .map(|(id, _)| id.clone())
            .collect();
        let mut items = Vec::new();
        for (id, m) in members {
            changes.push(Change {
                key: member_change_key(ok, &id),
                value: None,
            });
            if let Some(item) = m.item {
                items.push(item);
            }
        }
        let dk = ok.rsplit_once(SEP).map(|(dk, _)| dk.to_owned())?;
        let end = self
            .last_closed
            .get(&dk)
            .map_or(h.end, |c| c.end.max(h.end));
        let closed = Closed {
            end,
            ids,
            set: Default::default(),
        };
        changes.push(Change {
            key: closed_change_key(&dk),
            value: serde_json::to_string(&closed).ok(),
        });
        self.remember(dk, closed);
        if count > 0 {
            self.closed.push(Digest {
                schema: SCHEMA.to_owned(),
                digest_id: digest_id(&h.rule.id, &h.group, h.start),
                rule: h.rule,
                group: h.group,
                period: Period {
                    start: time(h.start),
                    end: time(h.end),
                },
                count,
                omitted: count - items.len() as u64,
                late,
                items,
                topic: h.topic,
            });
        }
        Some(())
    }

    fn remember(&mut self, dk: String, mut closed: Closed) {
        closed.set = closed.ids.iter().cloned().collect();
        if let Some(old) = self.last_closed.get(&dk) {
            self.closed_by_end.remove(&(old.end, dk.clone()));
        }
        self.closed_by_end.insert((closed.end, dk.clone()));
        self.last_closed.insert(dk, closed);
    }

    /// Apply a changelog record of kind `d`, `m` or `l` back (restore).
    pub(super) fn load(
        &mut self,
        key: &str,
        kind: &str,
        rest: &str,
        value: Option<&str>,
    ) -> Result<(), StateError> {
        let bad = || StateError::BadKey(key.to_owned());
        match kind {
            "d" => {
                let (dk, start) = rest.rsplit_once(SEP).ok_or_else(bad)?;
                start.parse::<i64>().map_err(|_| bad())?;
                if dk.split(SEP).count() != 2 {
                    return Err(bad());
                }
                match value {
                    None => {
                        if let Some(o) = self.open.remove(rest) {
                            let h = o.head;
                            self.by_end.remove(&(h.end, rest.to_owned()));
                            self.by_due
                                .remove(&(h.end.saturating_add(h.grace), rest.to_owned()));
                        }
                    }
                    Some(v) => {
                        let head: Head = parse(key, v)?;
                        if !self.open.contains_key(rest) {
                            self.insert(rest.to_owned(), head);
                        }
                    }
                }
            }
            "m" => {
                let (ok, id) = rest.rsplit_once(SEP).ok_or_else(bad)?;
                match value {
                    None => {
                        if let Some(o) = self.open.get_mut(ok) {
                            o.members.remove(id);
                        }
                    }
                    Some(v) => {
                        let m: Member = parse(key, v)?;
                        // A member of a digest closed meanwhile: nothing
                        // to restore.
                        if let Some(o) = self.open.get_mut(ok) {
                            o.members.insert(id.to_owned(), m);
                        }
                    }
                }
            }
            "l" => match value {
                None => {
                    if let Some(old) = self.last_closed.remove(rest) {
                        self.closed_by_end.remove(&(old.end, rest.to_owned()));
                    }
                }
                Some(v) => {
                    let closed: Closed = parse(key, v)?;
                    self.remember(rest.to_owned(), closed);
                }
            },
            _ => return Err(bad()),
        }
        Ok(())
    }
}

// ------------------------------------------------------------ the store's part

/// The store's digest methods (the store's fields are its module's, which
/// this one is part of).
impl super::Store {
    /// Put a published alert of a digest rule into its open digest (see
    /// [`digest`]); `t` is its event time, already seen by [`Store::apply`].
    pub fn add_to_digest(
        &mut self,
        spec: &DigestSpec,
        topic: Option<&str>,
        alert: &Alert,
        t: i64,
        changes: &mut Vec<Change>,
    ) {
        if self.digests.add(spec, topic, alert, t, changes) {
            self.clock_changed(changes);
        }
    }

    /// The digests closed since the last call, in the order they closed.
    pub fn take_digests(&mut self) -> Vec<Digest> {
        self.digests.take()
    }

    /// Open digests.
    pub fn open_digests(&self) -> usize {
        self.digests.len()
    }

    /// `run`'s wall-clock close: periods whose end plus grace is at or
    /// before `wall`, when this partition has decided nothing for `idle`
    /// (at least their grace). Pure: the caller reads the clocks.
    pub fn close_idle(
        &mut self,
        wall: DateTime<chrono::Utc>,
        idle: std::time::Duration,
        changes: &mut Vec<Change>,
    ) {
        if self
            .digests
            .close_idle(wall.timestamp_millis(), ms(idle), changes)
        {
            self.clock_changed(changes);
        }
    }

    /// Close every open digest (the end of `replay`'s or `test`'s input).
    pub fn close_all(&mut self, changes: &mut Vec<Change>) {
        self.digests.close_all(changes);
    }

    /// Close the periods the clock has passed (each decision, first).
    pub(super) fn close_digests_by_clock(&mut self, changes: &mut Vec<Change>) {
        if self.digests.close_by_clock(self.clock, changes) {
            self.clock_changed(changes);
        }
    }

    /// The clock's samples decide when periods close: persisted with every
    /// digest change, so a restored store closes them at the same events.
    fn clock_changed(&mut self, changes: &mut Vec<Change>) {
        let rec = ClockRecord {
            recent: self.recent.clone(),
            high: self.digests.high(),
        };
        changes.push(Change {
            key: CLOCK_KEY.to_owned(),
            value: serde_json::to_string(&rec).ok(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;
    use crate::engine::Engine;
    use crate::event::{decode, EventFields};
    use crate::matcher::Scratch;
    use std::path::PathBuf;

    const T0: &str = "2026-07-12T00:00:00Z";

    fn engine(rules: &str) -> Engine {
        let rs = crate::rules::load_strs(vec![(PathBuf::from("r.yaml"), rules.to_owned())])
            .unwrap_or_else(|e| panic!("{e:?}"));
        Engine::new(rs, EventFields::default())
    }

    /// (event id, minutes after T0, source)
    type Ev<'a> = (&'a str, i64, &'a str);

    fn line(d: &Digest) -> String {
        let ids: Vec<String> = d
            .items
            .iter()
            .map(|i| i.event.id.as_str().unwrap_or("").to_owned())
            .collect();
        let mut s = format!(
            "{} {} count={} omitted={} late={} [{}]",
            d.rule.id,
            &d.period.start[11..16],
            d.count,
            d.omitted,
            d.late,
            ids.join(",")
        );
        if !d.group.is_empty() {
            s += &format!(" {}", serde_json::to_string(&d.group).unwrap());
        }
        s
    }

    /// Feed events through one store; one line per digest (as it closed)
    /// or alert, then everything closed at the end of input (`end`).
    fn run_on(
        eng: &Engine,
        store: &mut Store,
        evs: &[Ev<'_>],
        log: &mut Vec<Change>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let mut scratch = Scratch::new();
        let t0 = DateTime::parse_from_rfc3339(T0).unwrap();
        for (id, min, src) in evs {
            let t = t0 + chrono::Duration::minutes(*min);
            let j = serde_json::json!({"id": id, "title": "Lavrov speaks", "source": src,
                "published_at": t.to_rfc3339()});
            let ev = decode(j.to_string().as_bytes(), &EventFields::default()).unwrap();
            let staged = eng.stage(&ev, &mut scratch, None);
            let alerts = eng.settle(staged, None, store, log);
            out.extend(store.take_digests().iter().map(line));
            out.extend(alerts.iter().map(|a| format!("alert {} {}", a.rule.id, id)));
        }
        out
    }

    fn run(eng: &Engine, evs: &[Ev<'_>]) -> Vec<String> {
        let mut store = Store::new();
        let mut log = Vec::new();
        let mut out = run_on(eng, &mut store, evs, &mut log);
        store.close_all(&mut log);
        out.push("end".into());
        out.extend(store.take_digests().iter().map(line));
        out
    }

    fn check(rules: &str, evs: &[Ev<'_>], expected: &[&str]) {
        assert_eq!(run(&engine(rules), evs), expected, "rules: {rules}");
    }

    const HOURLY: &str =
        "rules:\n- {id: d, title: t, query: Lavrov, digest: {every: 1h, max_items: 2}}\n";

    #[test]
    fn period_start_table() {
        let h = 3_600_000;
        for (t, every, want) in [
            (0, h, 0),
            (h - 1, h, 0),
            (h, h, h),
            (5 * h + 7, h, 5 * h),
            (-1, h, -h),
            (25 * h, 24 * h, 24 * h),
            (7 * 60_000, 5 * 60_000, 5 * 60_000),
        ] {
            assert_eq!(period_start(t, every), want, "{t} {every}");
        }
    }

    #[test]
    fn digests_table() {
        // One period, more matches than max_items: the first two listed.
        check(
            HOURLY,
            &[("a", 0, "s"), ("b", 10, "s"), ("c", 59, "s")],
            &["end", "d 00:00 count=3 omitted=1 late=0 [a,b]"],
        );
        // Periods are aligned to UTC, not to the first event; an empty
        // period (03:00) publishes nothing. The clock (the lower median of
        // 00:50, 01:10, 02:10) passes 01:00 with c: 00:00 closes then.
        check(
            HOURLY,
            &[
                ("a", 50, "s"),
                ("b", 70, "s"),
                ("c", 130, "s"),
                ("d", 250, "s"),
            ],
            &[
                "d 00:00 count=1 omitted=0 late=0 [a]",
                "end",
                "d 01:00 count=1 omitted=0 late=0 [b]",
                "d 02:00 count=1 omitted=0 late=0 [c]",
                "d 04:00 count=1 omitted=0 late=0 [d]",
            ],
        );
        // The clock (a median) passes 01:00 with the third event: 00:00
        // closes then. The late copy of 00:30 goes into 01:00, as late;
        // the clock stepping back (a median) does not reopen 00:00.
        check(
            HOURLY,
            &[
                ("a", 0, "s"),
                ("b", 70, "s"),
                ("c", 71, "s"),
                ("d", 30, "s"),
            ],
            &[
                "d 00:00 count=1 omitted=0 late=0 [a]",
                "end",
                "d 01:00 count=3 omitted=1 late=1 [b,c]",
            ],
        );
        // group_by: one digest per group and period.
        check(
            "rules:\n- {id: d, title: t, query: Lavrov, group_by: [source], digest: {every: 1h}}\n",
            &[("a", 0, "x"), ("b", 1, "y"), ("c", 2, "x")],
            &[
                "end",
                r#"d 00:00 count=2 omitted=0 late=0 [a,c] {"source":"x"}"#,
                r#"d 00:00 count=1 omitted=0 late=0 [b] {"source":"y"}"#,
            ],
        );
        // The mode decides which matches are alerts, throttle applies,
        // then the digest: threshold 2 fires at b and again at e (re-armed).
        check(
            "rules:\n- {id: d, title: t, query: Lavrov, digest: {every: 1d}, alert: {mode: threshold, count: 2, window: 1h}}\n",
            &[("a", 0, "s"), ("b", 1, "s"), ("c", 2, "s"), ("d", 70, "s"), ("e", 71, "s")],
            &["end", "d 00:00 count=2 omitted=0 late=0 [b,e]"],
        );
        check(
            "rules:\n- {id: d, title: t, query: Lavrov, throttle: 30m, digest: {every: 1d}}\n",
            &[("a", 0, "s"), ("b", 1, "s"), ("c", 40, "s")],
            &["end", "d 00:00 count=2 omitted=0 late=0 [a,c]"],
        );
        // No digest rule: alerts as before; other rules are untouched.
        check(
            "rules:\n- {id: d, title: t, query: Lavrov, digest: {every: 1h}}\n- {id: e, title: t, query: Lavrov}\n",
            &[("a", 0, "s")],
            &["alert e a", "end", "d 00:00 count=1 omitted=0 late=0 [a]"],
        );
        // A redelivered event (same id) counts once, also when its period
        // closed in between (it is not late: it was counted).
        check(
            HOURLY,
            &[("a", 0, "s"), ("a", 0, "s"), ("b", 1, "s")],
            &["end", "d 00:00 count=2 omitted=0 late=0 [a,b]"],
        );
        check(
            HOURLY,
            &[("a", 0, "s"), ("b", 70, "s"), ("c", 71, "s"), ("a", 0, "s")],
            &[
                "d 00:00 count=1 omitted=0 late=0 [a]",
                "end",
                "d 01:00 count=2 omitted=0 late=0 [b,c]",
            ],
        );
    }

    #[test]
    fn wall_clock_close_needs_idle_and_grace() {
        let eng =
            engine("rules:\n- {id: d, title: t, query: Lavrov, digest: {every: 5m, grace: 1m}}\n");
        let mut store = Store::new();
        let mut log = Vec::new();
        run_on(&eng, &mut store, &[("a", 0, "s"), ("b", 1, "s")], &mut log);
        let at = |min: i64| {
            DateTime::parse_from_rfc3339(T0).unwrap().to_utc() + chrono::Duration::minutes(min)
        };
        let idle = std::time::Duration::from_secs;
        // Before end + grace, or not idle for the grace: nothing.
        for (wall, idle_s) in [(5, 3600), (6, 59), (5, 0)] {
            store.close_idle(at(wall), idle(idle_s), &mut log);
            assert!(store.take_digests().is_empty(), "{wall} {idle_s}");
        }
        store.close_idle(at(6), idle(60), &mut log);
        let got: Vec<String> = store.take_digests().iter().map(line).collect();
        assert_eq!(got, ["d 00:00 count=2 omitted=0 late=0 [a,b]"]);
        // A match of the closed period afterwards is late, in the next one.
        let more = run_on(&eng, &mut store, &[("c", 2, "s")], &mut log);
        assert!(more.is_empty());
        store.close_all(&mut log);
        let got: Vec<String> = store.take_digests().iter().map(line).collect();
        assert_eq!(got, ["d 00:05 count=1 omitted=0 late=1 [c]"]);
    }

    /// A group's memory of its latest close goes a day of event time after
    /// the period's end (a tombstone), and nothing else stays behind.
    #[test]
    fn closed_periods_are_forgotten_after_a_day() {
        let eng = engine(HOURLY);
        let mut store = Store::new();
        let mut log = Vec::new();
        let ids: Vec<String> = (0..40).map(|i| format!("later{i}")).collect();
        let mut evs: Vec<Ev<'_>> = vec![("a", 0, "s")];
        evs.extend(ids.iter().map(|id| (id.as_str(), 3 * 24 * 60, "s")));
        let out = run_on(&eng, &mut store, &evs, &mut log);
        assert_eq!(out, ["d 00:00 count=1 omitted=0 late=0 [a]"]);
        let x = |c: &&Change| c.key.starts_with("2\u{1f}l\u{1f}");
        let written: Vec<bool> = log.iter().filter(x).map(|c| c.value.is_some()).collect();
        assert_eq!(written, [true, false], "{log:?}");
        store.close_all(&mut log);
        assert_eq!(store.take_digests().len(), 1);
        assert_eq!(store.open_digests(), 0);
    }

    #[test]
    fn ids_depend_on_rule_group_and_period_only() {
        let g = |s: &str| -> BTreeMap<String, Value> { serde_json::from_str(s).unwrap() };
        let a = digest_id("r", &g("{}"), 0);
        assert_eq!(a, digest_id("r", &g("{}"), 0));
        assert_eq!(a.len(), 32);
        for other in [
            digest_id("q", &g("{}"), 0),
            digest_id("r", &g(r#"{"source":"x"}"#), 0),
            digest_id("r", &g("{}"), 3_600_000),
        ] {
            assert_ne!(a, other);
        }
        // The same events twice give the same digests, ids included.
        let eng = engine(HOURLY);
        let evs = stream();
        let ids = |_: ()| -> Vec<String> {
            let mut store = Store::new();
            let mut log = Vec::new();
            run_on(&eng, &mut store, &evs, &mut log);
            store.close_all(&mut log);
            store
                .take_digests()
                .into_iter()
                .map(|d| d.digest_id)
                .collect()
        };
        assert_eq!(ids(()), ids(()));
    }

    fn stream() -> Vec<Ev<'static>> {
        const IDS: [&str; 40] = [
            "e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10", "e11", "e12", "e13",
            "e14", "e15", "e16", "e17", "e18", "e19", "e20", "e21", "e22", "e23", "e24", "e25",
            "e26", "e27", "e28", "e29", "e30", "e31", "e32", "e33", "e34", "e35", "e36", "e37",
            "e38", "e39",
        ];
        // Mostly in order, with a few stragglers an hour late.
        (0..40)
            .map(|i| {
                let min = if i % 7 == 6 {
                    i as i64 * 9 - 70
                } else {
                    i as i64 * 9
                };
                (IDS[i], min, if i % 2 == 0 { "x" } else { "y" })
            })
            .collect()
    }

    /// Restoring from the changelog at any point continues exactly: the
    /// same digests (and ids, counts, late) as never stopping.
    #[test]
    fn restore_from_changes_continues_identically() {
        let eng = engine(
            "rules:\n- {id: d, title: t, query: Lavrov, group_by: [source], digest: {every: 1h, max_items: 3}}\n",
        );
        let all = stream();
        let baseline = run(&eng, &all);
        assert!(
            baseline.iter().any(|l| l.contains("late=1")),
            "{baseline:?}"
        );
        assert!(
            baseline.iter().position(|l| l == "end") > Some(2),
            "{baseline:?}"
        );
        for cut in [1, 5, 13, 20, 33, 39] {
            let mut a = Store::new();
            let mut log = Vec::new();
            let mut got = run_on(&eng, &mut a, &all[..cut], &mut log);
            let mut b = Store::new();
            for c in &log {
                b.load(&c.key, c.value.as_deref()).unwrap();
            }
            let mut log = Vec::new();
            got.extend(run_on(&eng, &mut b, &all[cut..], &mut log));
            b.close_all(&mut log);
            got.push("end".into());
            got.extend(b.take_digests().iter().map(line));
            assert_eq!(got, baseline, "cut at {cut}");
        }
    }

    #[test]
    fn records_stay_within_their_bounds() {
        let long = "x".repeat(200_000);
        // From JSON, so that fields added to alerts later need no change here.
        let a: Alert = serde_json::from_value(serde_json::json!({
            "schema": crate::alert::SCHEMA, "alert_id": "0".repeat(32),
            "rule": {"id": "r", "title": "t", "severity": "high", "labels": {}},
            "mode": "each", "group": {}, "event_time": null,
            "event": {"id": long, "title": long, "source": long, "url": long,
                      "lang": long, "published_at": null},
            "matches": [], "matches_omitted": 0, "snippet": long,
            "story": {"id": long, "events": 1},
            "count": null, "sources": null, "suppressed": 0,
        }))
        .unwrap();
        let item = DigestItem::of(&a);
        assert!(serde_json::to_vec(&item).unwrap().len() <= MAX_ITEM_BYTES);
        assert_eq!(item.alert_id, a.alert_id);
        // A full digest of such items, with an alert's worth of rule and
        // group, stays under 1 MiB.
        let items = crate::rules::MAX_DIGEST_ITEMS * MAX_ITEM_BYTES;
        assert!(items + crate::alert::MAX_ALERT_BYTES + 1_024 < 1 << 20);
    }

    #[test]
    fn bad_digest_records_are_errors() {
        let mut s = Store::new();
        for (k, v) in [
            ("2\u{1f}d\u{1f}r", Some("{}")),
            ("2\u{1f}d\u{1f}r\u{1f}{}\u{1f}x", Some("{}")),
            ("2\u{1f}d\u{1f}r\u{1f}{}\u{1f}0", Some("nope")),
            ("2\u{1f}l\u{1f}r\u{1f}{}", Some("nope")),
            ("2\u{1f}c\u{1f}r\u{1f}{}", Some("{}")),
            ("2\u{1f}k\u{1f}clock", Some("[1,2]")),
        ] {
            assert!(s.load(k, v).is_err(), "{k}");
        }
        // A member of a digest not open (closed meanwhile) is skipped.
        s.load("2\u{1f}m\u{1f}r\u{1f}{}\u{1f}0\u{1f}ab", Some(r#"{"n":0}"#))
            .unwrap();
        assert_eq!(s.open_digests(), 0);
    }
}
