//! What the executor runs: a tonic's cell, seen through [`AnyCell`]. The trait is defined
//! here, where it is consumed (as mio's `Registry` drives a `Source`); the host layer
//! implements it (`crate::ctx::TonicCell`).

use std::any::Any;

use super::work::{Envelope, Work};

/// After running some work: is the tonic still there?
pub(crate) enum After {
    Alive,
    Completed,
}

/// What a catalyst asks of the app it runs for, besides its clock: the names of its tonics,
/// for log lines.
pub(crate) trait Names: Send + Sync {
    fn name_of(&self, id: crate::TonicId) -> Option<String>;
}

/// A tonic cell, type-erased for the catalyst's slot table.
pub(crate) trait AnyCell {
    /// Run one piece of work as a sparkle, then settle (transitions, finishing).
    fn run(&mut self, work: Work, from: u64, name: &'static str) -> After;
    /// The next sparkle waiting in its bounded mailbox (none without one).
    fn next_queued(&mut self) -> Option<Envelope>;
    /// The concrete cell, for a typed sparkle run inline and for inspection.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// It completed and is out of its slot: let go of everything (called once, after
    /// `After::Completed`, once what it sent to other catalysts has left).
    fn retire(self: Box<Self>);
}
