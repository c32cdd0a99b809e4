//! The rule profile of `newswatch replay --profile` (SPEC §1): per rule,
//! how often it was verified, how often it matched and how long its
//! verification took, and the table of the costliest rules.
//!
//! The numbers come from the matcher's per-thread cost logs
//! (`newswatch_core::matcher::cost`), merged here once the replay is done.
//! Verification time is the matcher's phase two only (the query and filter
//! of the candidates); tokenizing and candidate selection are shared by all
//! rules and belong to none.

use std::fmt::Write as _;

use newswatch_core::matcher::cost::{CostLog, RuleCost};
use newswatch_core::Engine;

/// Rows of the table.
pub const TOP: usize = 20;

/// Per-rule costs of one replay, indexed by the engine's rule number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub costs: Vec<RuleCost>,
}

impl Profile {
    /// Add what `log` counted (and empty it).
    pub fn absorb(&mut self, log: &mut CostLog) {
        log.drain(|rule, c| {
            let i = rule as usize;
            if self.costs.len() <= i {
                self.costs.resize(i + 1, RuleCost::default());
            }
            self.costs[i].add(&c);
        });
    }

    /// Add another profile.
    pub fn merge(&mut self, other: &Profile) {
        if self.costs.len() < other.costs.len() {
            self.costs.resize(other.costs.len(), RuleCost::default());
        }
        for (a, b) in self.costs.iter_mut().zip(&other.costs) {
            a.add(b);
        }
    }

    /// The `n` costliest rules by verification time, costliest first (ties
    /// by rule number, so the order is stable); rules never verified are
    /// left out.
    pub fn top(&self, n: usize) -> Vec<(usize, RuleCost)> {
        let mut rows: Vec<(usize, RuleCost)> = self
            .costs
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, c)| c.candidates > 0)
            .collect();
        rows.sort_by(|a, b| b.1.nanos.cmp(&a.1.nanos).then(a.0.cmp(&b.0)));
        rows.truncate(n);
        rows
    }

    /// The table for stderr: a heading, then one line per rule of
    /// [`Profile::top`] with its share of all rules' verification time.
    pub fn render(&self, engine: &Engine) -> String {
        let total: u64 = self.costs.iter().map(|c| c.nanos).sum();
        let rows = self.top(TOP);
        let ids: Vec<&str> = rows
            .iter()
            .map(|(i, _)| engine.rules.rules.get(*i).map_or("?", |r| r.id.as_str()))
            .collect();
        let width = ids.iter().map(|s| s.len()).max().unwrap_or(0).max(4);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "rule profile: the {} costliest of {} rules by verification time ({:.3} ms in all)",
            rows.len(),
            engine.rules.rules.len(),
            total as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "{:>4}  {:<width$}  {:>12}  {:>10}  {:>12}  {:>6}",
            "rank", "rule", "candidates", "matches", "verify ms", "share"
        );
        for (rank, ((_, c), id)) in rows.iter().zip(&ids).enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                c.nanos as f64 * 100.0 / total as f64
            };
            let _ = writeln!(
                out,
                "{:>4}  {:<width$}  {:>12}  {:>10}  {:>12.3}  {:>5.1}%",
                rank + 1,
                id,
                c.candidates,
                c.matches,
                c.nanos as f64 / 1e6,
                share
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(candidates: u64, matches: u64, nanos: u64) -> RuleCost {
        RuleCost {
            candidates,
            matches,
            nanos,
        }
    }

    /// `costs` in, the rule numbers of `top(n)` out.
    fn check(costs: &[RuleCost], n: usize, expected: &[usize]) {
        let p = Profile {
            costs: costs.to_vec(),
        };
        let got: Vec<usize> = p.top(n).into_iter().map(|(i, _)| i).collect();
        assert_eq!(got, expected, "{costs:?}");
    }

    #[test]
    fn top_ranks_by_time() {
        check(&[], 20, &[]);
        check(
            &[cost(1, 0, 5), cost(1, 1, 50), cost(3, 0, 7)],
            20,
            &[1, 2, 0],
        );
        check(&[cost(1, 0, 5), cost(1, 1, 50), cost(3, 0, 7)], 2, &[1, 2]);
        // Never verified: left out. Equal time: by rule number.
        check(&[cost(0, 0, 0), cost(2, 0, 9), cost(1, 0, 9)], 20, &[1, 2]);
        // Verified in no measurable time still counts as verified.
        check(&[cost(4, 4, 0)], 20, &[0]);
    }

    #[test]
    fn merge_adds_per_rule() {
        let mut a = Profile {
            costs: vec![cost(1, 1, 10)],
        };
        a.merge(&Profile {
            costs: vec![cost(2, 0, 5), cost(1, 0, 1)],
        });
        assert_eq!(a.costs, vec![cost(3, 1, 15), cost(1, 0, 1)]);
    }
}
