//! Where a tonic is in its life, and what decides when it moves on: a finish asked for,
//! holds on its completion, its failure. `Ctx`'s finishing API and the cell both go through
//! these methods.

use crate::{Failure, Lifecycle};

pub(crate) struct Life {
    lifecycle: Lifecycle,
    finish_requested: bool,
    completion_holds: u32,
    // Boxed: every tonic (every connection) carries one; failing is rare.
    failure: Option<Box<Failure>>,
}

impl Life {
    pub(crate) fn new() -> Life {
        Life {
            lifecycle: Lifecycle::Starting,
            finish_requested: false,
            completion_holds: 0,
            failure: None,
        }
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// Moved on (the cell tells the tonic's handles too).
    pub(crate) fn set(&mut self, l: Lifecycle) {
        self.lifecycle = l;
    }

    /// Finish after this sparkle.
    pub(crate) fn request_finish(&mut self) {
        self.finish_requested = true;
    }

    /// A finish was asked for and finishing has not begun.
    pub(crate) fn should_begin_finishing(&self) -> bool {
        self.finish_requested && self.lifecycle < Lifecycle::Finishing
    }

    /// Nothing about its life to settle after a sparkle.
    pub(crate) fn is_settled(&self) -> bool {
        !self.finish_requested && self.lifecycle != Lifecycle::Finishing
    }

    pub(crate) fn hold(&mut self) {
        self.completion_holds += 1;
    }

    pub(crate) fn release(&mut self) {
        self.completion_holds = self.completion_holds.saturating_sub(1);
    }

    /// Let go of every hold (a failed tonic cannot be trusted to; a restarted one starts
    /// without).
    pub(crate) fn drop_holds(&mut self) {
        self.completion_holds = 0;
    }

    /// Finishing, with no infusion left (`no_infusions`) and nothing holding it: complete.
    pub(crate) fn can_complete(&self, no_infusions: bool) -> bool {
        self.lifecycle == Lifecycle::Finishing && no_infusions && self.completion_holds == 0
    }

    /// It failed and will not restart: keep the first failure, drop its holds, finish.
    pub(crate) fn fail(&mut self, failure: Failure) {
        if self.failure.is_none() {
            self.failure = Some(Box::new(failure));
        }
        self.drop_holds();
        self.finish_requested = true;
    }

    /// The failure it completes with, if any (once, at retirement).
    pub(crate) fn take_failure(&mut self) -> Option<Failure> {
        self.failure.take().map(|f| *f)
    }
}
