//! Per-rule cost accounting: how often each rule was verified (it was a
//! candidate), how often it matched, and the time its verification took.
//!
//! Lucene Monitor's slow-query log answers "which query costs"; this is
//! newswatch's. A [`CostLog`] lives in each thread's `Scratch`, so counting
//! needs no lock and no atomic: the matcher adds to it around each
//! candidate's verification, and the caller drains it now and then
//! ([`CostLog::drain`]) into whatever it reports (the `replay --profile`
//! table, the daemon's `GET /rules` and metrics).
//!
//! Invariants:
//!
//! * Off by default ([`CostLog::set_timing`] turns it on): an untouched log
//!   costs one predictable branch per event.
//! * Indices are the matcher's rule numbers, so a log belongs to one
//!   matcher: drain it before the same scratch matches with another one (a
//!   reload), or the counts land on the wrong rules.
//! * Time is read once per candidate, not twice: each candidate is charged
//!   the time since the previous clock read (the first one since the start
//!   of the verification loop), which includes the loop's own few
//!   instructions. With [`CostLog::set_timing`]`(n)` only one event in `n`
//!   is timed, and its times count `n` times (an estimate; candidates and
//!   matches are counted on every event).
//! * A drain visits only the rules touched since the last one, so its cost
//!   follows the candidates, not the rule count.

use std::time::Instant;

/// What one rule cost, summed over the events since the last drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleCost {
    /// Times the rule was verified (it was a candidate).
    pub candidates: u64,
    /// Times it matched (query and filter held).
    pub matches: u64,
    /// Nanoseconds spent verifying it (estimated when sampled).
    pub nanos: u64,
}

impl RuleCost {
    /// Add `other` to `self`.
    pub fn add(&mut self, other: &RuleCost) {
        self.candidates += other.candidates;
        self.matches += other.matches;
        self.nanos += other.nanos;
    }
}

/// Per-thread accumulator of [`RuleCost`]s, indexed by rule number.
#[derive(Debug, Default)]
pub struct CostLog {
    /// Time one event in `every`; 0 is off.
    every: u32,
    /// Events until the next timed one.
    countdown: u32,
    costs: Vec<RuleCost>,
    /// Rules whose entry is not zero, each once.
    touched: Vec<u32>,
}

/// The clock of one event's verification loop: the last reading, when this
/// event is timed, and the weight of its times.
#[derive(Debug)]
pub struct Clock {
    last: Option<Instant>,
    weight: u64,
}

impl CostLog {
    /// Account every `every`-th event's verification time (1: every event;
    /// 0: turn accounting off). Candidates and matches are counted on every
    /// event while on.
    pub fn set_timing(&mut self, every: u32) {
        self.every = every;
        self.countdown = 0;
    }

    /// Whether accounting is on.
    pub fn is_on(&self) -> bool {
        self.every > 0
    }

    /// Called before an event's verification loop over a matcher of
    /// `rules` rules.
    #[inline]
    pub(super) fn start(&mut self, rules: usize) -> Clock {
        if self.every == 0 {
            return Clock {
                last: None,
                weight: 0,
            };
        }
        if self.costs.len() < rules {
            self.costs.resize(rules, RuleCost::default());
        }
        let timed = self.countdown == 0;
        self.countdown = if timed {
            self.every - 1
        } else {
            self.countdown - 1
        };
        Clock {
            last: timed.then(Instant::now),
            weight: u64::from(self.every),
        }
    }

    /// Called after candidate `rule` was verified.
    #[inline]
    pub(super) fn record(&mut self, clock: &mut Clock, rule: u32, matched: bool) {
        if self.every == 0 {
            return;
        }
        let Some(c) = self.costs.get_mut(rule as usize) else {
            return;
        };
        if c.candidates == 0 {
            self.touched.push(rule);
        }
        c.candidates += 1;
        c.matches += u64::from(matched);
        if let Some(last) = clock.last {
            let now = Instant::now();
            let nanos = u64::try_from((now - last).as_nanos()).unwrap_or(u64::MAX);
            c.nanos = c.nanos.saturating_add(nanos.saturating_mul(clock.weight));
            clock.last = Some(now);
        }
    }

    /// Hand every rule's cost since the last drain to `f` (rules in the
    /// order they were first touched) and reset them.
    pub fn drain(&mut self, mut f: impl FnMut(u32, RuleCost)) {
        for rule in self.touched.drain(..) {
            if let Some(c) = self.costs.get_mut(rule as usize) {
                f(rule, std::mem::take(c));
            }
        }
    }

    /// Forget everything counted (for a scratch that moves to another
    /// matcher without a drain).
    pub fn clear(&mut self) {
        self.drain(|_, _| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `events` (each a list of (rule, matched) candidates) to a log
    /// timing one event in `every`, and compare the drained counts
    /// (candidates, matches, whether time was charged) with `expected`.
    fn check(every: u32, events: &[&[(u32, bool)]], expected: &[(u32, u64, u64, bool)]) {
        let mut log = CostLog::default();
        log.set_timing(every);
        for ev in events {
            let mut clock = log.start(4);
            for &(rule, matched) in *ev {
                // Time must pass for a charge to be visible.
                std::hint::black_box((0..1000).sum::<u64>());
                log.record(&mut clock, rule, matched);
            }
        }
        let mut got = Vec::new();
        log.drain(|r, c| got.push((r, c.candidates, c.matches, c.nanos > 0)));
        assert_eq!(got, expected, "every {every}, events {events:?}");
        let mut again = Vec::new();
        log.drain(|r, c| again.push((r, c)));
        assert!(again.is_empty(), "a drain resets");
    }

    #[test]
    fn counts_and_drains() {
        check(0, &[&[(1, true)]], &[]);
        check(1, &[], &[]);
        check(
            1,
            &[&[(2, false), (0, true)]],
            &[(2, 1, 0, true), (0, 1, 1, true)],
        );
        check(
            1,
            &[&[(1, true)], &[(1, false), (3, true)]],
            &[(1, 2, 1, true), (3, 1, 1, true)],
        );
        // One event in two is timed: the first; the second only counts.
        check(
            2,
            &[&[(1, true)], &[(2, true)]],
            &[(1, 1, 1, true), (2, 1, 1, false)],
        );
        // A rule the log has no room for is ignored, never a panic.
        check(1, &[&[(9, true)]], &[]);
    }

    #[test]
    fn sampled_time_is_weighted() {
        let mut log = CostLog::default();
        log.set_timing(1000);
        let mut clock = log.start(1);
        std::thread::sleep(std::time::Duration::from_millis(1));
        log.record(&mut clock, 0, false);
        let mut nanos = 0;
        log.drain(|_, c| nanos = c.nanos);
        assert!(nanos >= 1000 * 1_000_000, "{nanos}");
    }
}
