//! The catalyst's timer heap: deadlines of every timer of every tonic on the catalyst.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use slab::Slab;

/// Where an armed deadline lives, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Armed {
    index: u32,
    seq: u64,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    slot: u32,
    generation: u32,
    key: u64,
}

/// A binary heap of deadlines with O(1) cancellation: a cancelled entry leaves the slab at once
/// and its heap node is skipped when it surfaces (and swept when stale nodes outnumber live ones).
/// Deadlines fire in order; equal deadlines fire in the order they were armed.
#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    entries: Slab<Entry>,
    next_seq: u64,
}

impl TimerHeap {
    /// Arm a deadline for tonic `(slot, generation)`; `key` tells the tonic which timer it is.
    pub(crate) fn arm(&mut self, deadline: Instant, slot: u32, generation: u32, key: u64) -> Armed {
        self.next_seq += 1;
        let seq = self.next_seq;
        let index = self.entries.insert(Entry {
            seq,
            slot,
            generation,
            key,
        });
        let index = u32::try_from(index).expect("more than u32::MAX timers");
        self.heap.push(Reverse((deadline, seq, index)));
        Armed { index, seq }
    }

    /// Cancel an armed deadline; cancelling twice or after it fired does nothing.
    pub(crate) fn cancel(&mut self, armed: Armed) {
        let i = armed.index as usize;
        if self.entries.get(i).is_some_and(|e| e.seq == armed.seq) {
            self.entries.remove(i);
            if self.heap.len() > 64 && self.heap.len() > 2 * self.entries.len() {
                let entries = &self.entries;
                self.heap.retain(|Reverse((_, seq, index))| {
                    entries.get(*index as usize).is_some_and(|e| e.seq == *seq)
                });
            }
        }
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, seq, index))) = self.heap.peek().copied() {
            if self
                .entries
                .get(index as usize)
                .is_some_and(|e| e.seq == seq)
            {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Take the earliest deadline if it is due at `now`: `(slot, generation, key, deadline)`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(u32, u32, u64, Instant)> {
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        let Reverse((_, _, index)) = self.heap.pop()?;
        let e = self.entries.remove(index as usize);
        Some((e.slot, e.generation, e.key, deadline))
    }

    /// Live deadlines.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_then_arming_order_and_skips_cancelled() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        let _a = h.arm(t0 + Duration::from_millis(30), 0, 0, 1);
        let b = h.arm(t0 + Duration::from_millis(10), 0, 0, 2);
        let _c = h.arm(t0 + Duration::from_millis(10), 0, 0, 3);
        let _d = h.arm(t0 + Duration::from_millis(20), 0, 0, 4);
        h.cancel(b);
        h.cancel(b);
        assert_eq!(h.len(), 3);
        assert_eq!(h.pop_due(t0), None);
        let keys: Vec<u64> = std::iter::from_fn(|| h.pop_due(t0 + Duration::from_secs(1)))
            .map(|(_, _, k, _)| k)
            .collect();
        assert_eq!(keys, vec![3, 4, 1]);
        assert_eq!(h.next_deadline(), None);
    }

    #[test]
    fn stale_nodes_are_swept() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        for i in 0..10_000u64 {
            let a = h.arm(t0 + Duration::from_millis(i), 0, 0, i);
            h.cancel(a);
        }
        assert_eq!(h.len(), 0);
        assert!(h.heap.len() <= 64 + 1);
    }
}
