//! Co-located staging: while a base handles a batch of messages on its connection's own
//! thread, its sends to that connection are collected without a lock and handed to the
//! outbox in one step when the batch ends (see `selector::local`, whose [`STAGING`] and
//! [`STAGED`] this uses).

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::conn::Conn;
use super::outbox::Poke;
use crate::selector::local::{self, STAGED, STAGING};

/// Run `f` on this thread's staged sends (a `Vec<M>`, empty between batches and kept for
/// the next one: two allocations and two frees per batch otherwise).
#[inline]
fn with_staged<R>(f: impl FnOnce(&mut Option<Box<dyn Any>>) -> R) -> R {
    local::with(&STAGED, f)
}

/// Collects the sends of one delivered batch; hands them over when dropped, also when
/// `on_message` panics: accepted messages are written.
pub(crate) struct Staging<'a, M: Send + 'static> {
    conn: &'a Conn<M>,
    /// False if another connection's batch was being staged already (then this one is not).
    owner: bool,
}

impl<M: Send + 'static> Drop for Staging<'_, M> {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        STAGING.set(0);
        // Out of the thread-local while handing over (no borrow held across the poke).
        let Some(mut sends) = with_staged(Option::take) else {
            return;
        };
        if let Some(vec) = sends.downcast_mut::<Vec<M>>() {
            self.conn.hand_over(vec);
            if vec.capacity() > local::KEEP_MAX {
                return;
            }
        }
        with_staged(|staged| {
            if staged.is_none() {
                *staged = Some(sends);
            }
        });
    }
}

impl<M: Send + 'static> Conn<M> {
    /// True if this connection's batch is being staged on this thread: one load.
    #[inline]
    pub(crate) fn is_staging(&self) -> bool {
        STAGING.get() == self.shared.id.as_u64()
    }

    /// Collect `msg` (this connection's batch is being staged on this thread: `None`); at
    /// the high watermark (after handing over what was collected, so order holds), give it
    /// back for the locked path.
    #[inline]
    pub(crate) fn stage(&self, msg: M) -> Option<M> {
        let mut msg = Some(msg);
        with_staged(|staged| {
            let Some(sends) = staged.as_mut().and_then(|v| v.downcast_mut::<Vec<M>>()) else {
                return;
            };
            if self.shared.queued.load(Ordering::Relaxed) + sends.len() + 1 >= self.shared.high {
                self.hand_over(sends);
            } else if let Some(msg) = msg.take() {
                sends.push(msg);
            }
        });
        msg
    }

    /// Start collecting this thread's sends to this connection. Call only on the
    /// connection's own thread, inside one sparkle. `expected`: how many sends to make room
    /// for (one reply per message is usual).
    pub(crate) fn staging(&self, expected: usize) -> Staging<'_, M> {
        if STAGING.get() != 0 {
            return Staging {
                conn: self,
                owner: false,
            };
        }
        STAGING.set(self.shared.id.as_u64());
        with_staged(
            |staged| match staged.as_mut().and_then(|v| v.downcast_mut::<Vec<M>>()) {
                Some(old) => old.reserve(expected),
                None => *staged = Some(local::boxed(Vec::<M>::with_capacity(expected))),
            },
        );
        Staging {
            conn: self,
            owner: true,
        }
    }

    /// Move collected sends into the outbox under one lock (`sends` is left empty).
    pub(crate) fn hand_over(&self, sends: &mut Vec<M>) {
        if sends.is_empty() {
            return;
        }
        let s = &self.shared;
        let (poke, emptied) = {
            let mut outbox = s.outbox.lock();
            // Cannot be closed: the connection closes only in its own sparkles, and the sends
            // were collected inside one sparkle on its thread, after `send` saw it open.
            outbox.queued += sends.len();
            // Into an empty outbox the collected `Vec` moves whole (`VecDeque::from` takes
            // its allocation): no copy, no allocation; the outbox's empty queue comes back.
            let emptied = if outbox.queue.is_empty() {
                let moved = VecDeque::from(std::mem::take(sends));
                Some(std::mem::replace(&mut outbox.queue, moved))
            } else {
                outbox.queue.extend(sends.drain(..));
                None
            };
            s.queued.store(outbox.queued, Ordering::Relaxed);
            (!std::mem::replace(&mut outbox.poked, true), emptied)
        };
        if let Some(emptied) = emptied
            && emptied.capacity() > 0
        {
            *sends = Vec::from(emptied); // empty: no data to move
        }
        if poke {
            self.poke(Poke::Drain);
        }
    }

    /// A drained outbox queue, back to this thread's staging for the next batch's replies,
    /// if it has room and staging holds less: in the co-located layout one allocation then
    /// circles staging → outbox → flush → staging.
    pub(crate) fn recycle(drained: VecDeque<M>) {
        if !drained.is_empty() || STAGING.get() != 0 {
            return; // not drained, or a batch is being staged
        }
        local::keep(&STAGED, Vec::from(drained));
    }
}

impl<M: Send + 'static> Conn<M> {
    /// Hand what this thread staged for this connection to the outbox now (before a step
    /// that must come after those sends, such as a switch's boundary).
    pub(crate) fn hand_over_staged(&self) {
        if !self.is_staging() {
            return;
        }
        with_staged(|staged| {
            if let Some(sends) = staged.as_mut().and_then(|v| v.downcast_mut::<Vec<M>>()) {
                self.hand_over(sends);
            }
        });
    }
}
