//! The per-tonic state machine's bookkeeping (the API is on [`Ctx`](crate::Ctx)).

use std::collections::VecDeque;

use crate::{Ctx, Tonic};

/// Work for a tonic that stays on its catalyst (not `Send`).
pub(crate) type LocalSparkle<T> = Box<dyn FnOnce(&mut T, &mut Ctx<T>)>;

/// A sparkle postponed until the next state change.
pub(crate) struct Postponed<T: Tonic> {
    pub(crate) name: &'static str,
    pub(crate) run: LocalSparkle<T>,
}

pub(crate) struct Machine<T: Tonic> {
    pub(crate) state: T::State,
    /// The transition queued by this sparkle: `(state, forced)`.
    pub(crate) next: Option<(T::State, bool)>,
    pub(crate) stop_requested: bool,
    pub(crate) stopped: bool,
    /// Counts transitions; a state timeout carries the epoch it was set in.
    pub(crate) epoch: u64,
    /// The timer key of the current state timeout.
    pub(crate) timeout: Option<u64>,
    pub(crate) postponed: VecDeque<Postponed<T>>,
    /// Postponed sparkles being re-delivered after a transition.
    pub(crate) replay: VecDeque<Postponed<T>>,
}

impl<T: Tonic> Machine<T> {
    pub(crate) fn new() -> Machine<T> {
        Machine {
            state: T::State::default(),
            next: None,
            stop_requested: false,
            stopped: false,
            epoch: 0,
            timeout: None,
            postponed: VecDeque::new(),
            replay: VecDeque::new(),
        }
    }

    /// Drop every postponed sparkle, naming each in the log.
    pub(crate) fn drop_postponed(&mut self, tonic: &str) {
        for p in self.postponed.drain(..).chain(self.replay.drain(..)) {
            log::warn!(
                "{tonic}: postponed sparkle {} dropped: the tonic finished",
                p.name
            );
        }
    }
}
