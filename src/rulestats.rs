//! Per-rule statistics since the process started, for `GET /rules`
//! (SPEC §10): matches, alerts, the last match's time, and the matcher's
//! verification work (candidates and seconds).
//!
//! Kept by rule id, not by rule number, so a rule's numbers run on across
//! reloads (a rule removed and added back continues where it was). They are
//! this instance's: with several instances each answers for the events it
//! consumed. Every write takes one short lock; the matcher threads batch
//! their verification costs (`daemon::rulecost`), so the lock is taken per
//! match and per alert, not per candidate.
//!
//! This module depends on nothing of the daemon's; [`crate::metrics`] owns
//! the one instance, next to the counters it shares its events with.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// One rule's numbers since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleStat {
    /// Events the rule matched (query and filter held).
    pub matches: u64,
    /// Its alerts the broker acknowledged.
    pub alerts: u64,
    /// When it last matched (wall clock of the match).
    pub last_match_at: Option<DateTime<Utc>>,
    /// Times it was verified (a candidate).
    pub candidates: u64,
    /// Verification time, nanoseconds (estimated from sampled events).
    pub eval_nanos: u64,
}

impl RuleStat {
    pub fn eval_seconds(&self) -> f64 {
        self.eval_nanos as f64 / 1e9
    }
}

#[derive(Debug, Default)]
pub struct RuleStats {
    map: Mutex<HashMap<Box<str>, RuleStat>>,
}

impl RuleStats {
    /// Apply `f` to the entry of `rule`. A poisoned lock (a panic while
    /// holding it, which these few lines cannot cause) is used as is: the
    /// numbers are statistics, not state.
    fn with(&self, rule: &str, f: impl FnOnce(&mut RuleStat)) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(rule) {
            Some(s) => f(s),
            None => f(map.entry(rule.into()).or_default()),
        }
    }

    pub fn matched(&self, rule: &str, at: DateTime<Utc>) {
        self.with(rule, |s| {
            s.matches += 1;
            s.last_match_at = Some(s.last_match_at.map_or(at, |l| l.max(at)));
        });
    }

    pub fn alerted(&self, rule: &str) {
        self.with(rule, |s| s.alerts += 1);
    }

    pub fn evaluated(&self, rule: &str, candidates: u64, nanos: u64) {
        self.with(rule, |s| {
            s.candidates += candidates;
            s.eval_nanos = s.eval_nanos.saturating_add(nanos);
        });
    }

    /// The numbers of each of `rules`, in that order (zero for a rule
    /// never seen), under one lock.
    pub fn of<'a>(&self, rules: impl IntoIterator<Item = &'a str>) -> Vec<RuleStat> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        rules
            .into_iter()
            .map(|r| map.get(r).copied().unwrap_or_default())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_rule_and_keeps_the_latest_match() {
        let s = RuleStats::default();
        let t1 = DateTime::from_timestamp(1_000, 0).unwrap();
        let t2 = DateTime::from_timestamp(2_000, 0).unwrap();
        s.matched("a", t2);
        s.matched("a", t1);
        s.alerted("a");
        s.evaluated("a", 3, 1_500_000_000);
        s.evaluated("b", 1, 10);
        let got = s.of(["a", "b", "c"]);
        assert_eq!(
            got[0],
            RuleStat {
                matches: 2,
                alerts: 1,
                last_match_at: Some(t2),
                candidates: 3,
                eval_nanos: 1_500_000_000,
            }
        );
        assert_eq!(got[0].eval_seconds(), 1.5);
        assert_eq!((got[1].candidates, got[1].matches), (1, 0));
        assert_eq!(got[2], RuleStat::default());
    }
}
