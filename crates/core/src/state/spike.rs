//! The `spike` alert mode (SPEC §6): fire when a rule (and group) suddenly
//! matches far more often than it used to.
//!
//! An event at time `t` fires when the matches in the window ending at it
//! are at least `ratio` times the average per window over the `baseline`
//! before that window, and at least `min_count`; never before the group has
//! seen `baseline` of event time since its first match (the warm-up); and
//! not again until `window` has passed since it last fired (re-arm).
//!
//! **Buckets.** Matches are counted per time bucket, not kept one by one,
//! so the state of a group is bounded whatever the rate. A bucket is
//! `window / k` long, aligned to the Unix epoch, where `k`, the buckets per
//! window, is the largest of 12, 6, 4, 3, 2, 1 that divides the window (in
//! milliseconds) and keeps `k × (baseline/window + 1)` at most
//! [`MAX_SPAN_BUCKETS`] (window 1h, baseline 7d: 5-minute buckets). The
//! windows of an event are whole buckets, counted back from the event's
//! own bucket:
//! * the window: the `k` buckets ending with the event's bucket, that is
//!   the `window` before the event rounded out to bucket boundaries (it
//!   starts at the beginning of the oldest bucket and ends at the end of the
//!   event's, up to one bucket more than `window`);
//! * the baseline: the `k × baseline/window` buckets before those; `baseline`
//!   in the alert is their sum divided by `baseline/window`.
//!
//! So the decision is a function of the multiset of counted event times,
//! whatever their order, and `replay` is deterministic.
//!
//! **Order and outliers.** Events out of order count in their own bucket.
//! Buckets are kept from one window plus `baseline` plus one more window
//! behind the group's *anchor*, the latest event time seen but never more
//! than a window past the store's clock (the median of recent event times),
//! so an event dated 2999 moves nothing. An event whose bucket is older
//! than that counts nothing; one whose baseline reaches before it (more
//! than about a window behind the anchor) counts but does not fire.
//!
//! **Redelivery.** The state remembers (as short hashes) the last
//! [`MAX_SEEN`] events it counted and the last [`MAX_FIRED`] that fired,
//! while their buckets are kept: a redelivered counted event counts
//! nothing again, a redelivered firing event fires again with the same
//! `count` and `baseline` (same `alert_id`).
//!
//! **Idle groups.** A group is kept [`IDLE_BASELINES`] baselines (plus two
//! windows and the store's grace) after its latest match, its buckets and
//! hashes dropped as they age: a topic that comes back after weeks of
//! silence is compared with a baseline of zero and fires, instead of
//! warming up again.
//!
//! **Size.** At most [`MAX_STORED`] buckets (the oldest go first), written
//! as a flat array of index deltas and counts, plus the remembered hashes:
//! a group's changelog record stays well under 64 KiB.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ms, Change, Decision, Store};

/// Buckets held for the window and the baseline together, at most.
pub const MAX_SPAN_BUCKETS: u64 = 2_048;
/// Bucket counts kept per group, at most (the span, one window of slack
/// for late events, and a few dated ahead of the clock).
pub const MAX_STORED: usize = 2_560;
/// Counted events remembered per group, so a redelivered one counts nothing.
pub const MAX_SEEN: usize = 512;
/// Firings remembered per group, so a redelivered firing event fires again.
pub const MAX_FIRED: usize = 16;
/// A group without a match for this many baselines (plus two windows and
/// the store's day of grace) is forgotten, and warms up again.
pub const IDLE_BASELINES: i64 = 4;
/// Candidates for the buckets per window, finest first (divisors of 12).
const PER_WINDOW: [i64; 6] = [12, 6, 4, 3, 2, 1];

/// A spike rule's parameters, in milliseconds and buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub window: i64,
    /// `baseline / window` (validated: 2 to 2047).
    pub windows: i64,
    /// Buckets per window.
    pub k: i64,
    /// Bucket length.
    pub bucket: i64,
    pub ratio: f64,
    pub min_count: u64,
}

impl Params {
    pub fn new(
        window: std::time::Duration,
        baseline: std::time::Duration,
        ratio: f64,
        min_count: u64,
    ) -> Params {
        let w = ms(window).max(1);
        let windows = (ms(baseline) / w).max(1);
        let k = PER_WINDOW
            .into_iter()
            .find(|k| w % k == 0 && k * (windows + 1) <= MAX_SPAN_BUCKETS as i64)
            .unwrap_or(1);
        Params {
            window: w,
            windows,
            k,
            bucket: w / k,
            ratio,
            min_count,
        }
    }

    fn baseline_ms(&self) -> i64 {
        self.window.saturating_mul(self.windows)
    }
}

/// One firing, remembered for redelivery and re-arming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpikeFired {
    pub(crate) t: i64,
    /// [`short_hash`] of the event id.
    pub(crate) e: u64,
    pub(crate) count: u64,
    /// Matches in the baseline (the alert's `baseline` times the windows).
    pub(crate) sum: u64,
}

/// The spike state of one rule and group, part of its group record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpikeRecord {
    /// The earliest event time counted (the warm-up starts there).
    pub(crate) first: i64,
    /// Buckets older than one window plus baseline plus one window behind
    /// this are dropped (see the module docs).
    pub(crate) anchor: i64,
    /// Bucket index (time / bucket length) to count.
    #[serde(with = "buckets_wire")]
    pub(crate) buckets: BTreeMap<i64, u64>,
    /// The bucket and [`short_hash`] of the last events counted, oldest
    /// first; dropped with their bucket (such an event, delivered again,
    /// is too old to count anyway).
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub(crate) seen: VecDeque<(i64, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) fired: Vec<SpikeFired>,
}

/// What one match did to the spike state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Counted already, or too old to count: nothing changed.
    Unchanged,
    /// Counted; no alert.
    Counted,
    /// Fires with the window's count and the baseline's matches.
    Fire { count: u64, sum: u64, new: bool },
}

/// 64 bits of SHA-256 of an event id: bounded, whatever the id.
fn short_hash(eid: &str) -> u64 {
    let d = Sha256::digest(eid.as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

impl SpikeRecord {
    fn new(t: i64, anchor: i64) -> Self {
        SpikeRecord {
            first: t,
            anchor,
            buckets: BTreeMap::new(),
            seen: VecDeque::new(),
            fired: Vec::new(),
        }
    }

    /// The sum of the buckets `from..=to`.
    fn sum(&self, from: i64, to: i64) -> u64 {
        self.buckets.range(from..=to).map(|(_, c)| *c).sum()
    }

    /// Count the match of event `eid` at `t` and decide; `clock` is the
    /// store's clock.
    pub(crate) fn apply(&mut self, p: &Params, eid: &str, t: i64, clock: i64) -> Verdict {
        let h = short_hash(eid);
        if let Some(f) = self.fired.iter().find(|f| f.e == h) {
            return Verdict::Fire {
                count: f.count,
                sum: f.sum,
                new: false,
            };
        }
        if self.seen.iter().any(|(_, x)| *x == h) {
            return Verdict::Unchanged;
        }
        // The anchor follows the event, but never past a window ahead of
        // the clock: an event dated far ahead blinds nobody.
        let anchor = self.anchor.max(t.min(clock.saturating_add(p.window)));
        let floor = anchor.div_euclid(p.bucket) - p.k * (p.windows + 2) + 1;
        let b = t.div_euclid(p.bucket);
        if b < floor {
            // Too old to count (such an event never moves the anchor).
            return Verdict::Unchanged;
        }
        self.anchor = anchor;
        // What fell behind the buckets kept goes, so an idle group's
        // record shrinks to a few numbers.
        while self
            .buckets
            .first_key_value()
            .is_some_and(|(i, _)| *i < floor)
        {
            self.buckets.pop_first();
        }
        self.seen.retain(|(i, _)| *i >= floor);
        self.fired.retain(|f| f.t.div_euclid(p.bucket) >= floor);
        *self.buckets.entry(b).or_insert(0) += 1;
        while self.buckets.len() > MAX_STORED {
            self.buckets.pop_first();
        }
        self.first = self.first.min(t);
        self.seen.push_back((b, h));
        if self.seen.len() > MAX_SEEN {
            self.seen.pop_front();
        }
        let count = self.sum(b - p.k + 1, b);
        let base_from = b - p.k * (p.windows + 1) + 1;
        let sum = self.sum(base_from, b - p.k);
        let warm = t.saturating_sub(self.first) >= p.baseline_ms();
        let armed = self.fired.iter().all(|f| (t - f.t).abs() >= p.window);
        // Equivalent to count >= ratio × sum / windows, without dividing.
        let high = count as f64 * p.windows as f64 >= p.ratio * sum as f64;
        if !(warm && armed && base_from >= floor && count >= p.min_count && high) {
            return Verdict::Counted;
        }
        self.fired.push(SpikeFired {
            t,
            e: h,
            count,
            sum,
        });
        if self.fired.len() > MAX_FIRED {
            self.fired.remove(0);
        }
        Verdict::Fire {
            count,
            sum,
            new: true,
        }
    }
}

impl Store {
    /// `spike` for the group `gk`: count the match, decide, and write the
    /// group when it changed.
    pub(super) fn spike(
        &mut self,
        gk: &str,
        eid: &str,
        t: i64,
        p: &Params,
        changes: &mut Vec<Change>,
    ) -> Decision {
        let clock = self.clock;
        let g = self.group_entry(gk, t);
        // Kept well past its last bucket, so that a topic back after a
        // silence finds its warm-up done (an idle record is a few numbers).
        let keep = p.baseline_ms().saturating_mul(IDLE_BASELINES);
        g.ttl = g.ttl.max(keep.saturating_add(p.window.saturating_mul(2)));
        let s = g
            .spike
            .get_or_insert_with(|| SpikeRecord::new(t, t.min(clock.saturating_add(p.window))));
        let verdict = s.apply(p, eid, t, clock);
        let changed = matches!(verdict, Verdict::Counted | Verdict::Fire { new: true, .. });
        if changed {
            // Kept from its latest match, as the docs say (the anchor, which
            // lags with the clock of a sparse store, would expire it early).
            g.last = g.last.max(t);
        }
        let d = match verdict {
            Verdict::Unchanged | Verdict::Counted => Decision::default(),
            Verdict::Fire { count, sum, .. } => Decision {
                fire: true,
                count: Some(count),
                baseline: Some(sum as f64 / p.windows as f64),
                ..Decision::default()
            },
        };
        if changed {
            self.group_changed(gk, changes);
        }
        d
    }
}

/// Buckets on the wire: one flat array, the first bucket's index and
/// count, then for each next bucket the difference of its index to the
/// previous one and its count (`[4200, 3, 1, 2, 7, 1]` is buckets 4200,
/// 4201 and 4208). Small numbers: a full span takes a few KiB.
mod buckets_wire {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &BTreeMap<i64, u64>, s: S) -> Result<S::Ok, S::Error> {
        let mut flat = Vec::with_capacity(b.len() * 2);
        let mut prev = None;
        for (i, c) in b {
            flat.push(prev.map_or(*i, |p: i64| i - p));
            flat.push(i64::try_from(*c).unwrap_or(i64::MAX));
            prev = Some(*i);
        }
        s.collect_seq(flat)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, u64>, D::Error> {
        let flat = Vec::<i64>::deserialize(d)?;
        if flat.len() % 2 != 0 {
            return Err(serde::de::Error::custom("buckets: odd length"));
        }
        let mut out = BTreeMap::new();
        let mut prev: Option<i64> = None;
        for pair in flat.chunks_exact(2) {
            let i = match prev {
                None => pair[0],
                Some(p) if pair[0] > 0 => p.saturating_add(pair[0]),
                Some(_) => return Err(serde::de::Error::custom("buckets: not increasing")),
            };
            let c = u64::try_from(pair[1])
                .map_err(|_| serde::de::Error::custom("buckets: negative count"))?;
            out.insert(i, c);
            prev = Some(i);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde_json::Value;

    use super::*;
    use crate::rules::Rule;
    use crate::state::Input;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    /// 2026-07-01T00:00:00Z.
    const T0: i64 = 1_782_864_000_000;

    fn rule(alert: &str) -> Rule {
        rule_with(alert, "")
    }

    /// The rule with more keys (`group_by`, `throttle`), written `k: v, `.
    fn rule_with(alert: &str, more: &str) -> Rule {
        let yaml = format!("rules:\n- {{id: sp, title: t, query: x, {more}alert: {alert}}}\n");
        crate::rules::load_strs(vec![(PathBuf::from("r.yaml"), yaml)])
            .unwrap_or_else(|e| panic!("{e:?}"))
            .rules
            .remove(0)
    }

    /// One match per event (id, ms after T0); one line per alert. With
    /// `group_by`, the group is the id's first letter (`b` of `bb4`).
    fn run(
        store: &mut Store,
        rule: &Rule,
        evs: &[(String, i64)],
        log: &mut Vec<Change>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (id, t) in evs {
            let input = Input {
                event: id.clone(),
                time: Some(T0 + t),
                story_id: None,
                signature: None,
                text_key: None,
                value: None,
                no_distinct: false,
            };
            let mut group = BTreeMap::<String, Value>::new();
            if !rule.group_by.is_empty() {
                group.insert("source".into(), Value::from(&id[..1]));
            }
            let d = store.apply(rule, &input, &group, log);
            if d.fire {
                let mut line = format!(
                    "{id} count={} baseline={}",
                    d.count.unwrap_or(0),
                    d.baseline.unwrap_or(-1.0)
                );
                if d.suppressed > 0 {
                    line += &format!(" suppressed={}", d.suppressed);
                }
                out.push(line);
            }
        }
        out
    }

    /// `n` events named `{p}{i}`, `every` ms apart from `start`.
    fn series(p: &str, start: i64, n: i64, every: i64) -> Vec<(String, i64)> {
        (0..n)
            .map(|i| (format!("{p}{i}"), start + i * every))
            .collect()
    }

    /// Eight days of one match every 6 hours, then a burst of `burst`
    /// matches one minute apart.
    fn steady_then_burst(burst: i64) -> Vec<(String, i64)> {
        let mut v = series("s", 0, 8 * 4, 6 * HOUR);
        v.extend(series("b", 8 * DAY, burst, MIN));
        v
    }

    #[track_caller]
    fn check(alert: &str, evs: &[(String, i64)], expected: &[&str]) {
        let r = rule(alert);
        let got = run(&mut Store::new(), &r, evs, &mut Vec::new());
        assert_eq!(got, expected, "{alert}");
    }

    const DEFAULT: &str = "{mode: spike}";

    #[test]
    fn spike_table() {
        // A burst after an established baseline fires once, on its fifth
        // match (min_count); the baseline is 4 a day over 7 days = 1/6 an hour.
        check(
            DEFAULT,
            &steady_then_burst(12),
            &["b4 count=5 baseline=0.16666666666666666"],
        );
        // A steady rate never fires, however long.
        check(DEFAULT, &series("s", 0, 20 * 24, HOUR), &[]);
        check(DEFAULT, &series("s", 0, 20 * 24 * 12, 5 * MIN), &[]);
        // min_count: below it nothing fires, whatever the ratio.
        check(DEFAULT, &steady_then_burst(4), &[]);
        check(
            "{mode: spike, min_count: 2}",
            &steady_then_burst(3),
            &["b1 count=2 baseline=0.16666666666666666"],
        );
        // ratio: a rate that is 6 times the baseline but not 10 times.
        let mut six = series("s", 0, 8 * 24, HOUR);
        six.extend(series("b", 8 * DAY, 6, 10 * MIN));
        check("{mode: spike, ratio: 10}", &six, &[]);
        check(
            "{mode: spike, ratio: 4.5}",
            &six,
            &["b4 count=5 baseline=1"],
        );
        // The warm-up: a burst less than 7 days after the first match does
        // not fire; the same burst after 7 days does.
        let mut early = series("s", 0, 6 * 4, 6 * HOUR);
        early.extend(series("b", 6 * DAY + HOUR, 12, MIN));
        check(DEFAULT, &early, &[]);
        // Without any earlier match there is no warm-up to complete.
        check(DEFAULT, &series("b", 0, 30, MIN), &[]);
    }

    #[test]
    fn re_arms_after_a_window() {
        // Window 1h: a burst of 3 hours fires once per hour of it (its own
        // earlier hours join the baseline as they pass out of the window).
        let mut v = series("s", 0, 8 * 4, 6 * HOUR);
        v.extend(series("b", 8 * DAY, 180, MIN));
        check(
            DEFAULT,
            &v,
            &[
                "b4 count=5 baseline=0.16666666666666666",
                "b64 count=60 baseline=0.19047619047619047",
                "b124 count=60 baseline=0.5476190476190477",
            ],
        );
        // Two bursts a day apart fire once each.
        let mut two = steady_then_burst(10);
        two.extend(series("c", 9 * DAY, 10, MIN));
        check(
            DEFAULT,
            &two,
            &[
                "b4 count=5 baseline=0.16666666666666666",
                "c4 count=5 baseline=0.20238095238095238",
            ],
        );
    }

    #[test]
    fn group_by_and_throttle_apply_as_in_other_modes() {
        // Each source (the id's first letter) has its own baseline and
        // warm-up: a burst from `b` fires for `b`; `c` bursts as `b` does
        // but its first match was only a day before; `s` stays steady.
        let grouped = rule_with(DEFAULT, "group_by: [source], ");
        let mut v = series("s", 0, 8 * 4, 6 * HOUR);
        v.extend(series("b", HOUR, 8 * 4, 6 * HOUR));
        v.extend(series("c", 7 * DAY, 4, 6 * HOUR));
        v.extend(series("bb", 8 * DAY, 12, MIN));
        v.extend(series("cc", 8 * DAY + 2 * HOUR, 12, MIN));
        v.extend(series("ss", 9 * DAY, 3, MIN));
        let got = run(&mut Store::new(), &grouped, &v, &mut Vec::new());
        assert_eq!(got, ["bb4 count=5 baseline=0.16666666666666666"]);
        // A throttle of 2 days holds back the second burst's alert and the
        // next alert that passes carries it.
        let throttled = rule_with(DEFAULT, "throttle: 2d, ");
        let mut v = steady_then_burst(10);
        v.extend(series("c", 9 * DAY, 10, MIN));
        v.extend(series("d", 11 * DAY, 30, MIN));
        let got = run(&mut Store::new(), &throttled, &v, &mut Vec::new());
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("b4 "), "{got:?}");
        assert!(
            got[1].starts_with("d") && got[1].ends_with(" suppressed=1"),
            "{got:?}"
        );
    }

    #[test]
    fn a_topic_back_after_weeks_of_silence_fires_but_after_months_warms_up_again() {
        // `s` reports every 3 hours throughout (it moves the clock); `b`
        // for 8 days, then nothing until a burst `silence` days later.
        let grouped = rule_with(DEFAULT, "group_by: [source], ");
        #[track_caller]
        fn check(grouped: &Rule, silence: i64, expected: &[&str], seen: usize) {
            let mut v = series("s", 0, (silence + 12) * 8, 3 * HOUR);
            v.extend(series("b", 30 * MIN, 8 * 4, 6 * HOUR));
            v.extend(series("bb", (8 + silence) * DAY + 10 * MIN, 6, MIN));
            v.sort_by_key(|(_, t)| *t);
            let mut store = Store::new();
            let got = run(&mut store, grouped, &v, &mut Vec::new());
            assert_eq!(got, expected, "silence of {silence} days");
            // b's record kept only what is recent.
            let b = store
                .groups
                .iter()
                .find(|(k, _)| k.ends_with(r#"{"source":"b"}"#))
                .and_then(|(_, g)| g.spike.as_ref())
                .unwrap();
            assert_eq!((b.seen.len(), b.buckets.values().sum::<u64>()), (seen, 6));
        }
        check(&grouped, 21, &["bb4 count=5 baseline=0"], 6);
        // Past four baselines the group is forgotten: a new warm-up.
        check(&grouped, 40, &[], 6);
    }

    /// A burst after four weeks without a match (a sparse store: its clock
    /// lags, then jumps over the gap) fires against a baseline of zero,
    /// and is in the baseline of the next burst.
    #[test]
    fn a_burst_after_a_gap_fires_and_joins_the_next_baseline() {
        let mut v = series("s", 0, 8 * 4, 6 * HOUR);
        v.extend(series("a", 35 * DAY, 40, MIN));
        v.extend(series("c", 36 * DAY + 12 * HOUR, 10, MIN));
        // The first burst is in the second one's baseline: 40 in 168 hours.
        check(
            DEFAULT,
            &v,
            &[
                "a4 count=5 baseline=0",
                "c4 count=5 baseline=0.23809523809523808",
            ],
        );
    }

    #[test]
    fn out_of_order_events_count_in_their_bucket() {
        // The burst arrives shuffled: the same spike (its fifth match fires).
        let mut v = steady_then_burst(0);
        for i in [3, 0, 4, 1, 2, 5] {
            v.push((format!("b{i}"), 8 * DAY + i * MIN));
        }
        check(DEFAULT, &v, &["b2 count=5 baseline=0.16666666666666666"]);
        // A baseline delivered late (after the burst's first events) still
        // counts in its buckets.
        let mut late = series("b", 8 * DAY, 3, MIN);
        late.extend(series("s", 0, 8 * 4, 6 * HOUR));
        late.extend(series("c", 8 * DAY + 3 * MIN, 3, MIN));
        check(DEFAULT, &late, &["c1 count=5 baseline=0.16666666666666666"]);
    }

    #[test]
    fn outliers_and_stale_events_blind_nothing() {
        let base = steady_then_burst(12);
        for odd in [1_000 * 365 * DAY, -56 * 365 * DAY] {
            let mut v = base.clone();
            v.insert(20, ("odd".to_owned(), odd));
            check(DEFAULT, &v, &["b4 count=5 baseline=0.16666666666666666"]);
        }
        // A burst of events dated 9 days before the stream's time counts
        // nowhere and fires nothing.
        let mut v = steady_then_burst(0);
        v.extend(series("late", -2 * DAY, 12, MIN));
        check(DEFAULT, &v, &[]);
    }

    #[test]
    fn restore_and_redelivery_continue_identically() {
        let r = rule(DEFAULT);
        let mut all = steady_then_burst(80);
        all.extend(series("c", 10 * DAY, 30, MIN));
        let whole = run(&mut Store::new(), &r, &all, &mut Vec::new());
        assert_eq!(whole.len(), 3, "{whole:?}");
        for cut in [1, 20, 33, 36, 37, 60, 120] {
            let mut log = Vec::new();
            let mut got = run(&mut Store::new(), &r, &all[..cut], &mut log);
            let mut restored = Store::new();
            for c in &log {
                restored.load(&c.key, c.value.as_deref()).unwrap();
            }
            // Restored state equals the state the log was written from.
            let mut again = Store::new();
            run(&mut again, &r, &all[..cut], &mut Vec::new());
            assert_eq!(restored.groups, again.groups, "cut at {cut}");
            got.extend(run(&mut restored, &r, &all[cut..], &mut Vec::new()));
            assert_eq!(got, whole, "cut at {cut}");
            // Redelivery: the last 10 events before the cut come again and
            // decide as the first time, counting nothing twice.
            let from = cut.saturating_sub(10);
            let mut redelivered = Store::new();
            for c in &log {
                redelivered.load(&c.key, c.value.as_deref()).unwrap();
            }
            let mut got = run(&mut Store::new(), &r, &all[..from], &mut Vec::new());
            got.extend(run(&mut redelivered, &r, &all[from..], &mut Vec::new()));
            assert_eq!(got, whole, "redelivered from {from}, crashed at {cut}");
        }
    }

    #[test]
    fn buckets_follow_window_and_baseline() {
        #[track_caller]
        fn check(window: u64, baseline: u64, k: i64, bucket: i64) {
            let s = std::time::Duration::from_secs;
            let p = Params::new(s(window), s(baseline), 3.0, 5);
            assert_eq!((p.k, p.bucket), (k, bucket), "{window}s / {baseline}s");
            assert!(p.k * (p.windows + 1) <= MAX_SPAN_BUCKETS as i64);
        }
        let (h, d) = (3600, 86_400);
        check(h, 7 * d, 12, 5 * MIN);
        check(d, 7 * d, 12, 2 * HOUR);
        check(d, 30 * d, 12, 2 * HOUR);
        check(h, 30 * d, 2, 30 * MIN);
        check(5 * 60, 7 * d, 1, 5 * MIN);
        check(1, 2, 4, 250);
    }

    #[test]
    fn the_record_stays_small() {
        // A busy group: a match every minute for 8 days, all buckets full.
        let r = rule(DEFAULT);
        let mut store = Store::new();
        let mut log = Vec::new();
        run(&mut store, &r, &series("e", 0, 8 * 24 * 60, MIN), &mut log);
        let biggest = log
            .iter()
            .filter_map(|c| c.value.as_ref().map(String::len))
            .max()
            .unwrap_or(0);
        assert!(biggest < 64 * 1024, "{biggest} bytes");
        let g = store.groups.values().next().unwrap();
        let s = g.spike.as_ref().unwrap();
        assert!(s.buckets.len() <= 12 * 170, "{}", s.buckets.len());
        assert_eq!(s.seen.len(), MAX_SEEN);
    }

    #[test]
    fn bucket_wire_format_round_trips_and_refuses_garbage() {
        let rec = SpikeRecord {
            first: 1,
            anchor: 2,
            buckets: [(4200, 3), (4201, 2), (4208, 1)].into_iter().collect(),
            seen: VecDeque::new(),
            fired: Vec::new(),
        };
        let json = serde_json::to_string(&rec).unwrap();
        assert_eq!(json, r#"{"first":1,"anchor":2,"buckets":[4200,3,1,2,7,1]}"#);
        assert_eq!(serde_json::from_str::<SpikeRecord>(&json).unwrap(), rec);
        for bad in ["[1,2,3]", "[1,2,0,1]", "[1,-2]"] {
            let j = format!(r#"{{"first":1,"anchor":2,"buckets":{bad}}}"#);
            assert!(serde_json::from_str::<SpikeRecord>(&j).is_err(), "{bad}");
        }
    }
}
