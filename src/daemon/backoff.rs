//! Exponential backoff between retries: one implementation for every retry
//! loop of the daemon (publishing to Kafka, creating and reading the state
//! changelog, POSTing to Alertmanager).
//!
//! A [`Backoff`] is a plain value: each use declares its own constants as a
//! `const` policy and copies it into a retry loop, so the delays of a loop
//! are visible where it is declared. The `n`-th delay is `first · 2ⁿ`,
//! capped at `max`; [`Backoff::delay`] is that pure function and
//! [`Backoff::next`] walks it. Waiting is left to the caller, which must
//! also wait on its shutdown signal.

use std::time::Duration;

/// Doubling delays from `first`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// Delays handed out so far.
    attempt: u32,
}

impl Backoff {
    /// A policy: `first`, then twice as long each time, never above `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            attempt: 0,
        }
    }

    /// The delay after the `attempt`-th failure in a row (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        // 2^31 fits a u32; past the cap the exact power does not matter.
        self.first
            .saturating_mul(2u32.saturating_pow(attempt.min(31)))
            .min(self.max)
    }

    /// The delay to wait now; the one after will be twice as long.
    pub fn next(&mut self) -> Duration {
        let d = self.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// What [`Backoff::next`] will return, without moving on (for log lines).
    pub fn peek(&self) -> Duration {
        self.delay(self.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn check(first: u64, max: u64, want: &[u64]) {
        let mut b = Backoff::new(ms(first), ms(max));
        for (i, w) in want.iter().enumerate() {
            assert_eq!(b.peek(), ms(*w), "peek {i} of {first}..{max}");
            assert_eq!(b.next(), ms(*w), "delay {i} of {first}..{max}");
            assert_eq!(b.delay(i as u32), ms(*w));
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let table: &[(u64, u64, &[u64])] = &[
            (100, 5000, &[100, 200, 400, 800, 1600, 3200, 5000, 5000]),
            (200, 5000, &[200, 400, 800, 1600, 3200, 5000, 5000]),
            (250, 10_000, &[250, 500, 1000, 2000, 4000, 8000, 10_000]),
            (10, 10, &[10, 10, 10]),
        ];
        for (first, max, want) in table {
            check(*first, *max, want);
        }
    }

    #[test]
    fn never_overflows() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(10));
        let mut b = b;
        for _ in 0..100 {
            assert!(b.next() <= Duration::from_secs(10));
        }
    }
}
