//! Rate-limited log lines: the one way the daemon logs something that may
//! repeat many times a second (a broker outage, a full queue, the state
//! cap). Every occurrence is still counted by a metric at the call site;
//! only the log line is limited, and the next line that goes out says how
//! many were held back, so nothing is silently lost.
//!
//! [`LogLimiter`] is not synchronized: each owner (a loop, a thread, a
//! queue behind its mutex) holds its own.

use std::time::{Duration, Instant};

/// Lets a log line through at most once per period.
#[derive(Debug)]
pub struct LogLimiter {
    every: Duration,
    /// When a line last went out.
    last: Option<Instant>,
    /// Lines held back since then.
    held_back: u64,
}

impl LogLimiter {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> Self {
        LogLimiter {
            every,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(n)`: log now; `n` lines were held back since the last one.
    /// `None`: hold this one back.
    pub fn allow(&mut self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < self.every)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_it_holds_back() {
        let every = Duration::from_secs(10);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut l = LogLimiter::new(every);
        // (seconds after t0, expected answer)
        let table = [
            (0, Some(0)),
            (1, None),
            (9, None),
            (10, Some(2)),
            (15, None),
            (40, Some(1)),
            (41, None),
        ];
        for (at, want) in table {
            assert_eq!(l.allow_at(t0 + s(at)), want, "at {at}s");
        }
    }
}
