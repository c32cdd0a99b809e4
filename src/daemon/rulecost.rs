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
