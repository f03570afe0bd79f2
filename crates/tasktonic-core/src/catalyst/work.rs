//! Work orders: what travels on a catalyst's queues. The sender is a field of the order
//! (`from`), taken from what the catalyst is running when it is made.

use std::any::Any;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use super::{AnyCell, Core};
use crate::{Failure, TonicId};

/// A sparkle, type-erased: runs against the target's cell (downcast inside).
pub(crate) type Order = Box<dyn FnOnce(&mut dyn Any) + Send>;

/// Builds a tonic's cell on its catalyst.
pub(crate) type Build = Box<dyn FnOnce(&Rc<Core>) -> Box<dyn AnyCell> + Send>;

/// One entry on a catalyst queue, addressed to a tonic slot.
pub(crate) struct Envelope {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    /// The sending tonic's id, 0 when sent from outside any tonic.
    pub(crate) from: u64,
    pub(crate) name: &'static str,
    pub(crate) work: Work,
}

impl Envelope {
    /// True if it is addressed to the tonic in `(slot, generation)`.
    pub(crate) fn is_for(&self, slot: u32, generation: u32) -> bool {
        self.slot == slot && self.generation == generation
    }
}

pub(crate) enum Work {
    Spawn(Build),
    Start,
    Order(Order),
    /// A sparkle that only matters while the tonic lives: dropped quietly if it completed.
    Notice(Order),
    System(SystemMsg),
    Timer(u64),
}

pub(crate) enum SystemMsg {
    /// Begin finishing.
    Finish,
    /// Begin finishing once nothing else for the tonic waits on its catalyst's queues (a
    /// service whose last base left: what its bases sent before leaving runs first).
    FinishWhenQuiet,
    /// Run the next sparkles from the bounded mailbox.
    Drain,
    /// An infusion completed, failed or was restarted (boxed: rare, and envelopes stay small).
    Infusion(Box<InfusionEvent>),
}

/// What a base hears of one of its infusions.
pub(crate) struct InfusionEvent {
    pub(crate) child: Arc<dyn Addressee>,
    pub(crate) outcome: InfusionOutcome,
}

/// A tonic as a work order names it to its base: its id, and where it sits in its base's list
/// of infusions (written and read only on the base's thread; see `ctx::children`).
/// Implemented by the address layer's shared part of a tonic.
pub(crate) trait Addressee: Send + Sync {
    fn id(&self) -> TonicId;
    fn place(&self) -> &AtomicU32;
}

pub(crate) enum InfusionOutcome {
    Completed,
    // Boxed: keeps every envelope small (this is the rare case).
    Failed(Box<Failure>),
    Restarted(Box<Failure>),
}

#[cfg(test)]
mod tests {
    /// Every sparkle moves an envelope through a queue block of 31 slots: keep it small
    /// (see docs/PERFORMANCE.md).
    #[test]
    fn envelopes_stay_small() {
        assert!(
            size_of::<super::Envelope>() <= 56,
            "{}",
            size_of::<super::Envelope>()
        );
        assert!(
            size_of::<super::Work>() <= 24,
            "{}",
            size_of::<super::Work>()
        );
        // A remote queue entry (one envelope or a batch) is no bigger than an envelope.
        assert!(
            size_of::<crate::catalyst::Remote>() <= 56,
            "{}",
            size_of::<crate::catalyst::Remote>()
        );
    }
}
