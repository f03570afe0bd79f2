//! The records waiting for the viewer: bounded in records and in bytes; at a bound the oldest
//! go, and are counted.

use std::collections::VecDeque;

use bytes::Bytes;

/// Encoded records, oldest first.
#[derive(Debug)]
pub(crate) struct Backlog {
    frames: VecDeque<Bytes>,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
    /// Dropped since the viewer was last told.
    pub(crate) dropped_untold: u64,
    /// Dropped in all.
    pub(crate) dropped: u64,
    /// No more records are taken (the log was closed).
    pub(crate) closed: bool,
}

impl Backlog {
    pub(crate) fn new(max_records: usize, max_bytes: usize) -> Backlog {
        Backlog {
            frames: VecDeque::new(),
            bytes: 0,
            max_records: max_records.max(1),
            max_bytes: max_bytes.max(1),
            dropped_untold: 0,
            dropped: 0,
            closed: false,
        }
    }

    /// Add the newest record; the oldest go while a bound is passed.
    pub(crate) fn push(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
        self.trim();
    }

    /// Put records back at the front (handed back by a lost connection: older than any here).
    pub(crate) fn requeue(&mut self, older: Vec<Bytes>) {
        for frame in older.into_iter().rev() {
            self.bytes += frame.len();
            self.frames.push_front(frame);
        }
        self.trim();
    }

    /// Put one record back at the front (the connection did not take it).
    pub(crate) fn push_front(&mut self, frame: Bytes) {
        self.requeue(vec![frame]);
    }

    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some(frame)
    }

    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    fn trim(&mut self) {
        while self.frames.len() > self.max_records
            || (self.bytes > self.max_bytes && self.frames.len() > 1)
        {
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.len();
                self.dropped += 1;
                self.dropped_untold += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_at_either_bound_and_are_counted() {
        let mut b = Backlog::new(3, 100);
        for i in 0..5u8 {
            b.push(Bytes::from(vec![i; 10]));
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped, 2);
        assert_eq!(b.pop().expect("one")[0], 2);
        b.requeue(vec![Bytes::from(vec![9; 10]), Bytes::from(vec![8; 10])]);
        assert_eq!(
            b.len(),
            3,
            "two back at the front, the oldest of them dropped"
        );
        assert_eq!(b.dropped, 3);
        assert_eq!(b.pop().expect("one")[0], 8);
        let mut b = Backlog::new(100, 25);
        for i in 0..3u8 {
            b.push(Bytes::from(vec![i; 10]));
        }
        assert_eq!((b.len(), b.dropped), (2, 1));
        // One record over the byte bound alone is kept: the viewer gets the newest.
        b.push(Bytes::from(vec![7; 50]));
        assert_eq!(b.len(), 1);
        assert_eq!(b.pop().expect("one")[0], 7);
        assert!(b.pop().is_none());
    }
}
