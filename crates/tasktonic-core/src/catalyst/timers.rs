//! The catalyst's timer heap: deadlines of every timer of every tonic on the catalyst.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use slab::Slab;

/// Where an armed deadline lives, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Armed {
    index: u32,
    // Non-zero: `Option<Armed>` in every timer entry costs no extra word.
    seq: NonZeroU64,
}

impl Armed {
    /// Its parts, for a timer entry that stores them flat (see `ctx::timers::TimerEntry`).
    pub(crate) fn parts(self) -> (u32, NonZeroU64) {
        (self.index, self.seq)
    }

    pub(crate) fn from_parts(index: u32, seq: NonZeroU64) -> Armed {
        Armed { index, seq }
    }
}

#[derive(Debug)]
struct Entry {
    seq: NonZeroU64,
    slot: u32,
    generation: u32,
    key: u64,
}

/// A heap node: deadline (ns since the heap's epoch), arming order, entry index. 24 bytes and
/// one integer comparison in the common case (an `Instant` node was 32 bytes): with 1M live
/// timers, most of an arm's cost is touching memory.
type Node = Reverse<(u64, u64, u32)>;

/// A binary heap of deadlines with O(1) cancellation: a cancelled entry leaves the slab at once
/// and its heap node is skipped when it surfaces (and swept when stale nodes outnumber live ones).
/// Deadlines fire in order; equal deadlines fire in the order they were armed.
#[derive(Debug)]
pub(crate) struct TimerHeap {
    epoch: Instant,
    heap: BinaryHeap<Node>,
    entries: Slab<Entry>,
    next_seq: u64,
}

impl TimerHeap {
    /// An empty heap; no deadline may lie before `epoch` (earlier ones count as at `epoch`).
    pub(crate) fn new(epoch: Instant) -> TimerHeap {
        TimerHeap {
            epoch,
            heap: BinaryHeap::new(),
            entries: Slab::new(),
            next_seq: 0,
        }
    }

    /// `deadline` in ns since the epoch.
    pub(crate) fn ticks(&self, deadline: Instant) -> u64 {
        crate::clock::nanos(deadline.saturating_duration_since(self.epoch))
    }

    /// The instant `ticks` ns after the epoch.
    pub(crate) fn instant(&self, ticks: u64) -> Instant {
        self.epoch + Duration::from_nanos(ticks)
    }

    /// Arm a deadline, `at` ticks after the epoch (see [`ticks`](TimerHeap::ticks)), for tonic
    /// `(slot, generation)`; `key` tells the tonic which timer it is.
    pub(crate) fn arm(&mut self, at: u64, slot: u32, generation: u32, key: u64) -> Armed {
        self.next_seq += 1;
        let seq = NonZeroU64::new(self.next_seq).expect("sequence numbers start at 1");
        let index = self.entries.insert(Entry {
            seq,
            slot,
            generation,
            key,
        });
        let index = u32::try_from(index).expect("more than u32::MAX timers");
        self.heap.push(Reverse((at, seq.get(), index)));
        Armed { index, seq }
    }

    /// A node is live while its entry is (the entry's slot may hold a newer timer).
    fn is_live(entries: &Slab<Entry>, seq: u64, index: u32) -> bool {
        entries
            .get(index as usize)
            .is_some_and(|e| e.seq.get() == seq)
    }

    /// Cancel an armed deadline; cancelling twice or after it fired does nothing.
    pub(crate) fn cancel(&mut self, armed: Armed) {
        let i = armed.index as usize;
        if self.entries.get(i).is_some_and(|e| e.seq == armed.seq) {
            self.entries.remove(i);
            if self.heap.len() > 64 && self.heap.len() > 2 * self.entries.len() {
                let entries = &self.entries;
                self.heap
                    .retain(|&Reverse((_, seq, index))| Self::is_live(entries, seq, index));
            }
        }
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((ticks, seq, index))) = self.heap.peek() {
            if Self::is_live(&self.entries, seq, index) {
                return Some(self.instant(ticks));
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
        let mut h = TimerHeap::new(t0);
        let _a = h.arm(h.ticks(t0 + Duration::from_millis(30)), 0, 0, 1);
        let b = h.arm(h.ticks(t0 + Duration::from_millis(10)), 0, 0, 2);
        let _c = h.arm(h.ticks(t0 + Duration::from_millis(10)), 0, 0, 3);
        let _d = h.arm(h.ticks(t0 + Duration::from_millis(20)), 0, 0, 4);
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
        let mut h = TimerHeap::new(t0);
        for i in 0..10_000u64 {
            let a = h.arm(h.ticks(t0 + Duration::from_millis(i)), 0, 0, i);
            h.cancel(a);
        }
        assert_eq!(h.len(), 0);
        assert!(h.heap.len() <= 64 + 1);
    }
}
