//! Bounded mailboxes: an opt-in limit on a tonic's queued sparkles, with an overflow policy.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::catalyst::Envelope;

/// What a bounded mailbox does with a sparkle that arrives when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse it: the sender gets it back in [`SendError::Full`](crate::SendError::Full).
    Reject,
    /// Accept it and drop the oldest queued sparkle, counting the drop
    /// ([`Handle::dropped`](crate::Handle::dropped)) and logging it at debug level.
    DropOldest,
}

pub(crate) struct Mailbox {
    pub(crate) capacity: usize,
    pub(crate) overflow: Overflow,
    inner: Mutex<Inner>,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Envelope>,
    /// A drain order is queued on the catalyst (or the catalyst is draining).
    scheduled: bool,
}

/// What `offer` did.
pub(crate) enum Offer<X> {
    /// Queued; the caller must schedule a drain.
    QueuedSchedule,
    /// Queued; a drain is already scheduled.
    Queued,
    /// Full, `Overflow::Reject`: the value is handed back.
    Full(X),
}

impl Mailbox {
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Mailbox {
        Mailbox {
            capacity: capacity.max(1),
            overflow,
            inner: Mutex::new(Inner::default()),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queue the envelope built from `x`, applying the overflow policy.
    pub(crate) fn offer<X>(&self, x: X, build: impl FnOnce(X) -> Envelope) -> Offer<X> {
        let mut inner = self.inner.lock();
        if inner.queue.len() >= self.capacity {
            match self.overflow {
                Overflow::Reject => return Offer::Full(x),
                Overflow::DropOldest => {
                    if let Some(old) = inner.queue.pop_front() {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                        log::debug!(
                            "mailbox full: dropped the oldest sparkle ({})",
                            crate::id::short_name(old.name)
                        );
                    }
                }
            }
        }
        inner.queue.push_back(build(x));
        if inner.scheduled {
            Offer::Queued
        } else {
            inner.scheduled = true;
            Offer::QueuedSchedule
        }
    }

    /// The next queued envelope; when empty, clears `scheduled` so the next offer schedules.
    pub(crate) fn take(&self) -> Option<Envelope> {
        let mut inner = self.inner.lock();
        let next = inner.queue.pop_front();
        if next.is_none() {
            inner.scheduled = false;
        }
        next
    }

    /// Everything still queued (when the tonic completes).
    pub(crate) fn take_all(&self) -> Vec<Envelope> {
        let mut inner = self.inner.lock();
        inner.queue.drain(..).collect()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
