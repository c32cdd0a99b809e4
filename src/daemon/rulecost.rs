//! A matcher thread's per-rule cost accounting: its scratch counts every
//! candidate's verification (`newswatch_core::matcher::cost`), and this
//! hands the counts to [`Metrics::rule_evaluated`] (the
//! `newswatch_rule_eval_seconds_total` counter and `GET /rules`) every
//! [`DRAIN_EVERY`], and before the thread matches with another rule set.
//!
//! Invariants: the log's rule numbers are those of [`Reporter`]'s engine,
//! since it is drained before the first event of any other engine (a
//! reload); a drain touches only the rules verified since the last one, so
//! it costs what matching did, not the rule count.
//!
//! Time is read for one event in [`TIMING_EVERY`] and counted for all of
//! them (an estimate); candidates are counted on every event. A clock read
//! costs about as much as a candidate that fails its required-patterns
//! check, which most do, so timing every event would cost several percent
//! of matching with many rules; one in 16 is within the noise (the matcher
//! bench's `NW_BENCH_COST`, results in its module docs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use newswatch_core::matcher::Scratch;
use newswatch_core::Engine;

use crate::metrics::Metrics;

/// How often a matcher thread reports what it counted.
pub const DRAIN_EVERY: Duration = Duration::from_millis(500);

/// Time one event in this many.
pub const TIMING_EVERY: u32 = 16;

/// The accounting of one matcher thread.
pub struct Reporter {
    /// The engine whose rule numbers the scratch's log holds.
    engine: Option<Arc<Engine>>,
    last: Instant,
}

impl Reporter {
    /// Turn accounting on in `scratch`.
    pub fn new(scratch: &mut Scratch) -> Self {
        scratch.cost.set_timing(TIMING_EVERY);
        Reporter {
            engine: None,
            last: Instant::now(),
        }
    }

    /// Before matching with `engine`: report what was counted under
    /// another one.
    pub fn before(&mut self, engine: &Arc<Engine>, scratch: &mut Scratch, metrics: &Metrics) {
        if !self.engine.as_ref().is_some_and(|e| Arc::ptr_eq(e, engine)) {
            self.report(scratch, metrics);
            self.engine = Some(engine.clone());
        }
    }

    /// Report when [`DRAIN_EVERY`] has passed since the last report.
    pub fn tick(&mut self, scratch: &mut Scratch, metrics: &Metrics) {
        if self.last.elapsed() >= DRAIN_EVERY {
            self.report(scratch, metrics);
        }
    }

    /// Report now.
    pub fn report(&mut self, scratch: &mut Scratch, metrics: &Metrics) {
        self.last = Instant::now();
        let Some(engine) = &self.engine else {
            scratch.cost.clear();
            return;
        };
        let rules = &engine.rules.rules;
        scratch.cost.drain(|i, c| {
            if let Some(rule) = rules.get(i as usize) {
                metrics.rule_evaluated(&rule.id, c.candidates, c.nanos);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use newswatch_core::event::EventFields;
    use newswatch_core::matcher::Match;

    fn engine(yaml: &str) -> Arc<Engine> {
        let rs = newswatch_core::rules::load_strs(vec![("r.yaml".into(), yaml.to_owned())])
            .expect("rules load");
        Arc::new(Engine::new(rs, EventFields::default()))
    }

    fn match_all(r: &mut Reporter, e: &Arc<Engine>, s: &mut Scratch, m: &Metrics, text: &str) {
        let ev = e
            .decode(format!(r#"{{"id":"1","title":"{text}"}}"#).as_bytes())
            .expect("event");
        r.before(e, s, m);
        let mut out: Vec<Match> = Vec::new();
        e.rules.matcher.match_event(&ev, s, &mut out);
    }

    #[test]
    fn costs_land_on_rule_ids_across_a_reload() {
        let m = Metrics::new();
        let mut s = Scratch::new();
        let mut r = Reporter::new(&mut s);
        // Rule numbers swap between the two rule sets: counts must follow
        // the ids, so the log is drained before the second one matches.
        let a = engine(
            "rules:\n  - {id: x, title: x, query: oil}\n  - {id: y, title: y, query: gas}\n",
        );
        let b = engine(
            "rules:\n  - {id: y, title: y, query: gas}\n  - {id: x, title: x, query: oil}\n",
        );
        for _ in 0..3 {
            match_all(&mut r, &a, &mut s, &m, "oil");
        }
        match_all(&mut r, &b, &mut s, &m, "gas");
        r.report(&mut s, &m);
        let got: Vec<(u64, u64)> = m
            .rule_stats()
            .of(["x", "y"])
            .iter()
            .map(|st| (st.candidates, st.matches))
            .collect();
        // matches are counted where the daemon handles them (matching.rs).
        assert_eq!(got, [(3, 0), (1, 0)]);
    }

    #[test]
    fn a_costly_rule_ranks_first() {
        let words = "the of and to in said on for with by";
        let text = std::iter::repeat_n(words, 15).collect::<Vec<_>>().join(" ");
        let list = words.replace(' ', " OR ");
        let e = engine(&format!(
            "rules:\n  - {{id: cheap, title: c, query: 'the'}}\n  - {{id: costly, title: c, query: '({list}) NEAR/20 ({list})'}}\n"
        ));
        let m = Metrics::new();
        let mut s = Scratch::new();
        let mut r = Reporter::new(&mut s);
        for _ in 0..(4 * TIMING_EVERY) {
            match_all(&mut r, &e, &mut s, &m, &text);
        }
        r.report(&mut s, &m);
        let st = m.rule_stats().of(["cheap", "costly"]);
        let n = 4 * u64::from(TIMING_EVERY);
        assert_eq!((st[0].candidates, st[1].candidates), (n, n));
        assert!(st[1].eval_nanos > st[0].eval_nanos, "{st:?}");
    }
}
