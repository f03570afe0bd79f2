//! Inline sparkles: a tonic's sparkle run inside the code running now on its catalyst, when
//! that cannot be told apart from queueing it (`Handle::sparkle_inline`; `docs/concepts.md`,
//! "Inline sparkles").

use super::core::{Core, Slot};
use super::{After, AnyCell};

/// The tonic a sparkle would run on inline: where it lives, and whether it has a bounded
/// mailbox (then never inline: its order is the mailbox's).
#[derive(Clone, Copy)]
pub(crate) struct InlineTarget {
    pub(crate) catalyst: usize,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    pub(crate) bounded: bool,
}

/// An inline sparkle is declined when more than this many envelopes wait locally (checking
/// that none of them is for its tonic would cost more than queueing it).
const INLINE_SCAN_MAX: usize = 64;
/// Inline sparkles nest at most this deep (readiness → connection → base): the stack stays
/// bounded whatever a chain of tonics does.
const INLINE_DEPTH_MAX: u8 = 2;

impl Core {
    /// Take the cell of the tonic behind `shared` out of its slot to run one sparkle inline,
    /// inside the code running now (see `Handle::sparkle_inline`). `None` unless that keeps
    /// every guarantee a queued sparkle has: the tonic lives on this catalyst and is not
    /// running, a sparkle (or the parker's poll) is running here — in the loop, not a
    /// Distiller step, not traced, fewer than `INLINE_DEPTH_MAX` inline sparkles deep — the
    /// tonic has no bounded mailbox, and nothing for it waits in the local queue, where
    /// everything sent to it from this catalyst waits (so FIFO per sender holds).
    pub(crate) fn take_for_inline(&self, tonic: InlineTarget) -> Option<Box<dyn AnyCell>> {
        if !self.inline_ok.get()
            || self.inline_depth.get() >= INLINE_DEPTH_MAX
            || tonic.catalyst != self.shared.id
            || tonic.bounded
            || self.tracer.borrow().is_some()
        {
            return None;
        }
        if self.local.borrow().len() > INLINE_SCAN_MAX
            || self.has_local_for(tonic.slot, tonic.generation)
        {
            return None;
        }
        let mut cells = self.cells.borrow_mut();
        let entry = cells.get_mut(tonic.slot as usize)?;
        if !matches!(entry, Slot::Live(g, _) if *g == tonic.generation) {
            return None;
        }
        match std::mem::replace(entry, Slot::Busy) {
            Slot::Live(_, cell) => {
                self.inline_depth.set(self.inline_depth.get() + 1);
                Some(cell)
            }
            other => {
                *entry = other;
                None
            }
        }
    }

    /// Put back a cell taken by `take_for_inline` (or retire it, if the sparkle completed it).
    pub(crate) fn put_back_inline(
        &self,
        tonic: InlineTarget,
        cell: Box<dyn AnyCell>,
        after: After,
    ) {
        self.inline_depth
            .set(self.inline_depth.get().saturating_sub(1));
        match after {
            After::Alive => {
                self.cells.borrow_mut()[tonic.slot as usize] = Slot::Live(tonic.generation, cell);
            }
            After::Completed => self.retire(tonic.slot, cell),
        }
    }

    /// Let the parker poll (or park) as a sparkle would run: what its callbacks send to other
    /// catalysts is handed over after, and they may run a tonic's sparkle inline (a selector
    /// hands readiness straight to the socket's tonic; `Handle::sparkle_inline`).
    pub(super) fn polling(&self, poll: impl FnOnce()) {
        self.dispatching.set(true);
        self.inline_ok.set(true);
        poll();
        self.inline_ok.set(false);
        self.dispatching.set(false);
        self.flush_outbound();
    }
}
