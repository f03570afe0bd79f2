//! Sends to other catalysts made inside a sparkle: buffered per destination and handed over
//! when the sparkle returns (one queue entry and at most one wake-up per destination;
//! `docs/concepts.md`, "When a sparkle leaves").

use std::sync::Arc;

use super::Envelope;
use super::core::Core;
use super::{CatalystShared, Remote};

/// Envelopes buffered for one destination before they are handed over even though the sparkle
/// that sends them is still running (bounds the buffer's memory and the delay).
const OUTBOUND_MAX: usize = 1024;

/// What this catalyst's tonics sent to other catalysts during the sparkle now running.
#[derive(Default)]
pub(super) struct Outbound {
    /// One buffer per destination ever sent to (a handful: one per catalyst).
    lanes: Vec<Lane>,
    /// Indices of the lanes with envelopes, in the order they got their first: handed over in
    /// that order, so a reply caused by a later send can never overtake an earlier one.
    dirty: Vec<usize>,
}

struct Lane {
    to: Arc<CatalystShared>,
    buf: Vec<Envelope>,
    /// The size of the last batch: the capacity a new buffer starts with.
    hint: usize,
}

impl Core {
    /// Buffer an envelope for another catalyst until the running sparkle returns.
    pub(crate) fn push_outbound(&self, to: &Arc<CatalystShared>, env: Envelope) {
        let mut guard = self.outbound.borrow_mut();
        let out = &mut *guard;
        let i = match out.lanes.iter().position(|l| l.to.id == to.id) {
            Some(i) => i,
            None => {
                out.lanes.push(Lane {
                    to: to.clone(),
                    buf: Vec::new(),
                    hint: 0,
                });
                out.lanes.len() - 1
            }
        };
        let lane = &mut out.lanes[i];
        if lane.buf.is_empty() {
            out.dirty.push(i);
            if lane.buf.capacity() == 0 {
                lane.buf.reserve(lane.hint);
            }
        }
        lane.buf.push(env);
        if lane.buf.len() >= OUTBOUND_MAX {
            drop(guard);
            self.flush_outbound();
        }
    }

    /// Hand every buffered envelope to its catalyst: one queue entry and at most one wake-up per
    /// destination, in the order the destinations were first sent to.
    #[inline]
    pub(crate) fn flush_outbound(&self) {
        if !self.outbound.borrow().dirty.is_empty() {
            self.hand_over_outbound();
        }
    }

    #[inline(never)]
    fn hand_over_outbound(&self) {
        let mut out = self.outbound.borrow_mut();
        let out = &mut *out;
        for i in out.dirty.drain(..) {
            let lane = &mut out.lanes[i];
            let batch = if lane.buf.len() == 1 {
                // A lone envelope moves by itself; the buffer keeps its allocation.
                match lane.buf.pop() {
                    Some(env) => Remote::One(env),
                    None => continue,
                }
            } else {
                lane.hint = lane.buf.len();
                Remote::Batch(std::mem::take(&mut lane.buf))
            };
            lane.to.hand_over(batch);
        }
        self.crossed.set(true);
    }
}
