//! The per-tonic state machine's bookkeeping (the API is on [`Ctx`](crate::Ctx); the cell
//! drives it through these methods after every sparkle).

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
    state: T::State,
    /// The transition queued by this sparkle: `(state, forced)`.
    next: Option<(T::State, bool)>,
    stop_requested: bool,
    stopped: bool,
    /// Counts transitions; a state timeout carries the epoch it was set in.
    epoch: u64,
    /// The timer key of the current state timeout.
    timeout: Option<u64>,
    postponed: VecDeque<Postponed<T>>,
    /// Postponed sparkles being re-delivered after a transition.
    replay: VecDeque<Postponed<T>>,
}

/// What settling the machine after a sparkle asks of the cell, one step at a time.
pub(crate) enum Step<T: Tonic> {
    /// Stop: run `on_exit` of this (the last) state.
    Stop(T::State),
    /// Go to this state (`forced`: even if it is the current one).
    Go(T::State, bool),
    /// Run a postponed sparkle again.
    Replay(Postponed<T>),
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

    pub(crate) fn state(&self) -> &T::State {
        &self.state
    }

    /// Queue a transition for after this sparkle (the last one queued wins).
    pub(crate) fn go(&mut self, state: T::State, forced: bool) {
        self.next = Some((state, forced));
    }

    /// The state a re-entry goes to: the one queued, else the current one.
    pub(crate) fn take_next_or_current(&mut self) -> T::State {
        self.next
            .take()
            .map_or_else(|| self.state.clone(), |(s, _)| s)
    }

    pub(crate) fn request_stop(&mut self) {
        self.stop_requested = true;
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Nothing queued for the cell to settle.
    pub(crate) fn is_settled(&self) -> bool {
        !self.stop_requested && self.next.is_none() && self.replay.is_empty()
    }

    /// The next step of settling, in order: a stop, a transition, a replayed sparkle.
    pub(crate) fn next_step(&mut self) -> Option<Step<T>> {
        if self.stop_requested && !self.stopped {
            self.stop_requested = false;
            self.next = None;
            return Some(Step::Stop(self.state.clone()));
        }
        if let Some((next, forced)) = self.next.take() {
            return Some(Step::Go(next, forced));
        }
        self.replay.pop_front().map(Step::Replay)
    }

    /// The stop's `on_exit` has run: stopped for good.
    pub(crate) fn stopped_now(&mut self) {
        self.stopped = true;
    }

    /// Enter `next` (the cell ran `on_exit` of the old state, and runs `on_enter` after):
    /// a new epoch, and postponed work comes back first, in order, ahead of what replay still
    /// held. Returns the state timeout to cancel, if one was set.
    pub(crate) fn enter(&mut self, next: T::State) -> Option<u64> {
        self.state = next;
        let timeout = self.new_epoch();
        let mut replay = std::mem::take(&mut self.postponed);
        replay.append(&mut self.replay);
        self.replay = replay;
        timeout
    }

    /// A state change (or a stop): a new epoch, so an earlier state timeout cannot fire;
    /// returns that timeout's key to cancel.
    pub(crate) fn new_epoch(&mut self) -> Option<u64> {
        self.epoch += 1;
        self.timeout.take()
    }

    /// Set the state timeout armed under `key` for this epoch; returns the one it replaces.
    pub(crate) fn set_timeout(&mut self, key: u64) -> Option<u64> {
        self.timeout.replace(key)
    }

    /// Its state timeout was cancelled with the other timers.
    pub(crate) fn forget_timeout(&mut self) {
        self.timeout = None;
    }

    /// The epoch a state timeout armed now belongs to.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A state timeout of `epoch` fired: the state to report, if it still applies.
    pub(crate) fn timeout_fired(&mut self, epoch: u64) -> Option<T::State> {
        self.timeout = None;
        (epoch == self.epoch && !self.stopped).then(|| self.state.clone())
    }

    pub(crate) fn postpone(&mut self, p: Postponed<T>) {
        self.postponed.push_back(p);
    }

    pub(crate) fn postponed_len(&self) -> usize {
        self.postponed.len()
    }

    /// Drop every postponed sparkle, naming each in the log.
    pub(crate) fn drop_postponed(&mut self, tonic: &str) {
        for p in self.postponed.drain(..).chain(self.replay.drain(..)) {
            log::warn!(
                "{tonic}: postponed sparkle {} dropped: the tonic finished",
                crate::id::short_name(p.name)
            );
        }
    }
}
