//! Which input offset may be committed (pure; no Kafka calls).
//!
//! Events of one partition finish out of order: their alerts are acknowledged
//! by the broker at different times. An offset may be stored for commit only
//! when every event before it in the partition has finished, so the tracker
//! keeps, per partition, the set of offsets still in flight and reports the
//! new commit position (the next offset to read) when it advances.
//!
//! A rebalance that takes a partition away bumps its generation: results of
//! events from the old generation are then ignored, since the partition's
//! new owner (possibly us again) re-reads from the committed offset.

use std::collections::{BTreeSet, HashMap};

pub type TopicPartition = (String, i32);

#[derive(Debug, Default)]
struct Partition {
    generation: u64,
    in_flight: BTreeSet<i64>,
    /// Highest offset seen finished, +1 (the commit position when nothing is in flight).
    next: Option<i64>,
    /// The last position reported for commit.
    stored: Option<i64>,
}

#[derive(Debug, Default)]
pub struct OffsetTracker {
    parts: HashMap<TopicPartition, Partition>,
}

/// A handle naming one event of one partition generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub tp: TopicPartition,
    pub offset: i64,
    generation: u64,
}

impl OffsetTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// An event was received.
    pub fn start(&mut self, topic: &str, partition: i32, offset: i64) -> Ticket {
        let tp = (topic.to_owned(), partition);
        let p = self.parts.entry(tp.clone()).or_default();
        // The first offset of a generation is where reading started: the
        // position is already there, nothing to store until it moves past.
        p.stored.get_or_insert(offset);
        p.in_flight.insert(offset);
        Ticket {
            tp,
            offset,
            generation: p.generation,
        }
    }

    /// An event finished (its alerts and dead letter acknowledged). Returns
    /// the new commit position when it advanced.
    pub fn finish(&mut self, t: &Ticket) -> Option<i64> {
        let p = self.parts.get_mut(&t.tp)?;
        if p.generation != t.generation || !p.in_flight.remove(&t.offset) {
            return None;
        }
        p.next = Some(p.next.map_or(t.offset + 1, |n| n.max(t.offset + 1)));
        let pos = match p.in_flight.first() {
            Some(&lowest) => lowest,
            None => p.next?,
        };
        if p.stored.is_some_and(|s| s >= pos) {
            return None;
        }
        p.stored = Some(pos);
        Some(pos)
    }

    /// The partition was revoked or lost: forget what is in flight.
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        let p = self.parts.entry((topic.to_owned(), partition)).or_default();
        p.generation += 1;
        p.in_flight.clear();
        p.next = None;
        p.stored = None;
    }

    /// A message polled together with `revoked` (the revocations its poll
    /// delivered): the revocations are applied first, then the message is
    /// tracked. One poll can hold a revocation, an assignment and the first
    /// message of the next generation; tracking that message before the
    /// revocation would make it part of the old generation, the revocation
    /// would then forget it, and a later offset of the new generation could
    /// be stored past it before it was acknowledged.
    pub fn admit(
        &mut self,
        revoked: impl IntoIterator<Item = TopicPartition>,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Ticket {
        for (t, p) in revoked {
            self.revoke(&t, p);
        }
        self.start(topic, partition, offset)
    }

    /// Events still in flight, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.parts.values().map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_contiguous_prefix() {
        let mut t = OffsetTracker::new();
        let a = t.start("t", 0, 10);
        let b = t.start("t", 0, 11);
        let c = t.start("t", 0, 12);
        // 11 and 12 finish first: 10 still in flight, nothing to store.
        assert_eq!(t.finish(&b), None);
        assert_eq!(t.finish(&c), None);
        // 10 finishes: everything up to 12 is done, position 13.
        assert_eq!(t.finish(&a), Some(13));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn advances_step_by_step() {
        let mut t = OffsetTracker::new();
        let a = t.start("t", 1, 0);
        let b = t.start("t", 1, 1);
        assert_eq!(t.finish(&a), Some(1));
        assert_eq!(t.finish(&b), Some(2));
        // a duplicate finish is ignored
        assert_eq!(t.finish(&b), None);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::new();
        let a = t.start("t", 0, 5);
        let b = t.start("t", 1, 7);
        assert_eq!(t.finish(&b), Some(8));
        assert_eq!(t.finish(&a), Some(6));
    }

    /// Revoke, assign and the first message of the new generation in one
    /// poll. The new owner (here: us again) starts at the committed offset
    /// 10, while event 10 of the old generation is still unacknowledged.
    #[test]
    fn a_revocation_polled_with_a_message_is_applied_first() {
        let tp = || ("t".to_owned(), 0);
        // Applied first (admit): the message belongs to the new generation.
        let mut t = OffsetTracker::new();
        let old = t.start("t", 0, 10);
        let first = t.admit([tp()], "t", 0, 10);
        let second = t.start("t", 0, 11);
        assert_eq!(
            t.finish(&second),
            None,
            "10 of the new generation is in flight"
        );
        assert_eq!(
            t.finish(&old),
            None,
            "the old generation's result is ignored"
        );
        assert_eq!(t.finish(&first), Some(12));

        // Applied after the message was tracked (the bug): the revocation
        // forgets the new generation's first message, and its successor's
        // offset is stored although event 10 was never acknowledged.
        let mut t = OffsetTracker::new();
        let _old = t.start("t", 0, 10);
        let first = t.start("t", 0, 10);
        t.revoke("t", 0);
        let second = t.start("t", 0, 11);
        assert_eq!(
            t.finish(&second),
            Some(12),
            "stored past an unacknowledged event"
        );
        assert_eq!(t.finish(&first), None);
    }

    #[test]
    fn revoked_generation_is_ignored() {
        let mut t = OffsetTracker::new();
        let a = t.start("t", 0, 5);
        t.revoke("t", 0);
        assert_eq!(t.finish(&a), None);
        let b = t.start("t", 0, 5);
        assert_eq!(t.finish(&b), Some(6));
    }
}
