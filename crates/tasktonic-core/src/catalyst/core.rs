//! The catalyst's own half: local queue, tonic cells, timers, and the loop.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::outbound::Outbound;
use super::{
    After, AnyCell, CatalystShared, Envelope, Names, Parker, Remote, SystemMsg, TimerHeap, Work,
    enter,
};
use crate::clock::Clock;
use crate::id::short_name;
use crate::trace::Tracer;

/// Envelopes run per queue before the loop looks at the other queue, the timers and the parker.
const BATCH: usize = 256;
/// Sparkles run from one bounded mailbox before other tonics get a turn.
const DRAIN_BUDGET: usize = 64;
/// Checks of the remote queue, one pause apart, before a catalyst with nothing to do yields.
const SPIN_CHECKS: usize = 256;
/// Yields (each after a check) before it parks.
const SPIN_YIELDS: usize = 4;
pub(super) enum Slot {
    Vacant,
    /// Reserved by a spawner; envelopes that overtook the spawn wait here.
    Pending(u32, Vec<Envelope>),
    Live(u32, Box<dyn AnyCell>),
    /// Taken out while it runs.
    Busy,
}

pub(crate) struct Core {
    pub(crate) shared: Arc<CatalystShared>,
    /// The app's clock (virtual under the Distiller).
    pub(crate) clock: Arc<Clock>,
    /// The names of the app's tonics, for log lines.
    pub(crate) names: Arc<dyn Names>,
    pub(super) local: RefCell<VecDeque<Envelope>>,
    /// The rest of a batch taken from the remote queue: runs before the queue's next entry.
    batch: RefCell<std::vec::IntoIter<Envelope>>,
    pub(super) outbound: RefCell<Outbound>,
    /// Work crossed threads (handed over, or taken from the remote queue) since the last park:
    /// only then is a reply or more of it likely soon enough to be worth a spin.
    pub(super) crossed: Cell<bool>,
    /// A sparkle (or hook, or timer event) is running: its sends to other catalysts are
    /// buffered until it returns. Sends made outside one (an app's starters, a test thread
    /// driving a Distiller) leave at once.
    pub(super) dispatching: Cell<bool>,
    /// Code running now may run a tonic's sparkle inline (see `take_for_inline`): set while
    /// dispatching in the loop (not in the Distiller's single steps) and while the parker
    /// polls (an I/O readiness callback).
    pub(super) inline_ok: Cell<bool>,
    /// How many inline sparkles are running, one inside the other.
    pub(super) inline_depth: Cell<u8>,
    pub(super) cells: RefCell<Vec<Slot>>,
    pub(crate) timers: RefCell<TimerHeap>,
    pub(crate) tracer: RefCell<Option<Tracer>>,
}

impl Core {
    pub(crate) fn new(
        shared: Arc<CatalystShared>,
        clock: Arc<Clock>,
        names: Arc<dyn Names>,
    ) -> Rc<Core> {
        Rc::new(Core {
            timers: RefCell::new(TimerHeap::new(clock.start())),
            shared,
            clock,
            names,
            local: RefCell::new(VecDeque::new()),
            batch: RefCell::new(Vec::new().into_iter()),
            outbound: RefCell::new(Outbound::default()),
            crossed: Cell::new(false),
            dispatching: Cell::new(false),
            inline_ok: Cell::new(false),
            inline_depth: Cell::new(0),
            cells: RefCell::new(Vec::new()),
            tracer: RefCell::new(None),
        })
    }

    #[inline]
    pub(crate) fn push_local(&self, env: Envelope) {
        self.local.borrow_mut().push_back(env);
    }

    fn pop_local(&self) -> Option<Envelope> {
        self.local.borrow_mut().pop_front()
    }

    /// The next local envelope if it is ordinary work for the tonic in `slot`.
    fn pop_local_for(&self, slot: u32, generation: u32) -> Option<Envelope> {
        let mut local = self.local.borrow_mut();
        let next = local.front()?;
        let same = next.is_for(slot, generation)
            && !matches!(next.work, Work::Spawn(_) | Work::System(SystemMsg::Drain));
        if same { local.pop_front() } else { None }
    }

    /// The next envelope another thread sent: the rest of the current batch first.
    fn pop_remote(&self) -> Option<Envelope> {
        let mut batch = self.batch.borrow_mut();
        if let Some(env) = batch.next() {
            return Some(env);
        }
        // An empty queue's `pop` costs a full fence; its emptiness check, two loads. (A push
        // this misses is seen by the next turn, or by the park, which checks under a fence.)
        if self.shared.remote_is_empty() {
            return None;
        }
        let remote = self.shared.pop_remote()?;
        self.crossed.set(true);
        match remote {
            Remote::One(env) => Some(env),
            Remote::Batch(envs) => {
                *batch = envs.into_iter();
                batch.next()
            }
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// One turn: due timers, then a batch from each queue. True if anything ran.
    pub(crate) fn turn(self: &Rc<Self>) -> bool {
        let mut worked = self.fire_timers();
        for _ in 0..BATCH {
            let Some(env) = self.pop_local() else { break };
            self.dispatch(env);
            worked = true;
        }
        for _ in 0..BATCH {
            let Some(env) = self.pop_remote() else {
                break;
            };
            self.dispatch(env);
            worked = true;
        }
        worked
    }

    /// Run exactly one thing: a local envelope, else a remote one, else one due timer.
    /// False if nothing was runnable (the Distiller's step).
    pub(crate) fn step(self: &Rc<Self>) -> bool {
        let next = self.pop_local().or_else(|| self.pop_remote());
        if let Some(env) = next {
            self.dispatch_and_hand_over(env, false);
            return true;
        }
        let now = self.now();
        let due = self.timers.borrow_mut().pop_due(now);
        if let Some((slot, generation, key, _)) = due {
            self.dispatch(Envelope {
                slot,
                generation,
                from: 0,
                name: "timer",
                work: Work::Timer(key),
            });
            return true;
        }
        false
    }

    /// Run `f` on the live tonic in `(slot, generation)` (between sparkles). `None` if it is
    /// not live here.
    pub(crate) fn inspect(
        &self,
        (slot, generation): (u32, u32),
        f: &mut dyn FnMut(&mut dyn std::any::Any) -> bool,
    ) -> Option<bool> {
        let mut cells = self.cells.borrow_mut();
        match cells.get_mut(slot as usize) {
            Some(Slot::Live(g, cell)) if *g == generation => Some(f(cell.as_any_mut())),
            _ => None,
        }
    }

    /// Fire every timer due now, in deadline order. True if any fired.
    pub(crate) fn fire_timers(self: &Rc<Self>) -> bool {
        // No clock read unless a timer is armed (most turns of a busy catalyst have none due).
        let Some(first) = self.next_deadline() else {
            return false;
        };
        let now = self.now();
        if first > now {
            return false;
        }
        let mut fired = false;
        for _ in 0..BATCH {
            let due = self.timers.borrow_mut().pop_due(now);
            let Some((slot, generation, key, _)) = due else {
                break;
            };
            fired = true;
            self.dispatch(Envelope {
                slot,
                generation,
                from: 0,
                name: "timer",
                work: Work::Timer(key),
            });
        }
        fired
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.borrow_mut().next_deadline()
    }

    /// True if an envelope for the tonic in `(slot, generation)` waits in the local queue or
    /// in the rest of a batch taken from the remote queue.
    pub(crate) fn has_queued_for(&self, slot: u32, generation: u32) -> bool {
        self.has_local_for(slot, generation)
            || (self.batch.borrow().as_slice().iter()).any(|env| env.is_for(slot, generation))
    }

    /// True if an envelope for the tonic in `(slot, generation)` waits in the local queue
    /// (where everything sent to it from this catalyst waits).
    pub(super) fn has_local_for(&self, slot: u32, generation: u32) -> bool {
        self.local
            .borrow()
            .iter()
            .any(|env| env.is_for(slot, generation))
    }

    /// True if envelopes wait here (not counting the remote queue).
    pub(crate) fn has_local_work(&self) -> bool {
        !self.local.borrow().is_empty() || self.batch.borrow().len() > 0
    }

    /// Run one envelope (and what queued behind it for the same tonic), then hand over what
    /// it sent to other catalysts.
    pub(crate) fn dispatch(self: &Rc<Self>, env: Envelope) {
        self.dispatch_and_hand_over(env, true);
    }

    /// [`dispatch_one`](Core::dispatch_one) with this catalyst's sends buffered while it
    /// runs and handed over after.
    #[inline]
    fn dispatch_and_hand_over(self: &Rc<Self>, env: Envelope, follow: bool) {
        self.dispatching.set(true);
        self.inline_ok.set(follow);
        self.dispatch_one(env, follow);
        self.inline_ok.set(false);
        self.dispatching.set(false);
        self.flush_outbound();
    }

    /// True while a sparkle runs here (then sends to other catalysts are buffered).
    #[inline]
    pub(crate) fn is_dispatching(&self) -> bool {
        self.dispatching.get()
    }

    /// Run one envelope; with `follow`, also the local envelopes right behind it for the same
    /// tonic (the Distiller's `step` runs exactly one).
    fn dispatch_one(self: &Rc<Self>, env: Envelope, follow: bool) {
        let Envelope {
            slot,
            generation,
            from,
            name,
            work,
        } = env;
        if let Work::Spawn(build) = work {
            let cell = build(self);
            self.place(slot, generation, cell, follow);
            return;
        }
        let taken = {
            let mut cells = self.cells.borrow_mut();
            match cells.get_mut(slot as usize) {
                Some(entry @ Slot::Live(..)) => match std::mem::replace(entry, Slot::Busy) {
                    Slot::Live(g, cell) if g == generation => Some(cell),
                    other => {
                        *entry = other;
                        None
                    }
                },
                Some(Slot::Pending(g, waiting)) if *g == generation => {
                    waiting.push(Envelope {
                        slot,
                        generation,
                        from,
                        name,
                        work,
                    });
                    return;
                }
                _ => None,
            }
        };
        match taken {
            Some(cell) => self.run(slot, generation, cell, (work, from, name), follow),
            None => self.undeliverable(slot, generation, from, name, work),
        }
    }

    /// An envelope for a slot that holds no matching live tonic: either its spawn has not
    /// arrived yet (park it), or the tonic completed (drop it, saying so).
    fn undeliverable(&self, slot: u32, generation: u32, from: u64, name: &'static str, work: Work) {
        if self.shared.slots.lock().is_current(slot, generation) {
            let mut cells = self.cells.borrow_mut();
            if cells.len() <= slot as usize {
                cells.resize_with(slot as usize + 1, || Slot::Vacant);
            }
            let env = Envelope {
                slot,
                generation,
                from,
                name,
                work,
            };
            match &mut cells[slot as usize] {
                Slot::Pending(_, waiting) => waiting.push(env),
                entry @ Slot::Vacant => *entry = Slot::Pending(generation, vec![env]),
                // Busy or live with this generation: cannot happen (dispatch is not re-entrant);
                // requeue rather than lose it.
                _ => self.local.borrow_mut().push_back(env),
            }
            return;
        }
        match work {
            Work::Order(_) => log::warn!(
                "sparkle {} dropped: its tonic has completed",
                short_name(name)
            ),
            Work::Notice(_) | Work::Timer(_) | Work::System(_) | Work::Start | Work::Spawn(_) => {
                log::trace!("{} for a completed tonic ignored", short_name(name))
            }
        }
    }

    /// Place a newly built cell and start it; what waited for it goes to the front of the local
    /// queue, in order, so it runs next (ahead of anything sent to the tonic after it).
    fn place(self: &Rc<Self>, slot: u32, generation: u32, cell: Box<dyn AnyCell>, follow: bool) {
        let waiting = {
            let mut cells = self.cells.borrow_mut();
            if cells.len() <= slot as usize {
                cells.resize_with(slot as usize + 1, || Slot::Vacant);
            }
            match std::mem::replace(&mut cells[slot as usize], Slot::Busy) {
                Slot::Pending(_, waiting) => waiting,
                _ => Vec::new(),
            }
        };
        {
            let mut local = self.local.borrow_mut();
            for env in waiting.into_iter().rev() {
                local.push_front(env);
            }
        }
        self.run(slot, generation, cell, (Work::Start, 0, "on_start"), follow);
    }

    fn run(
        self: &Rc<Self>,
        slot: u32,
        generation: u32,
        mut cell: Box<dyn AnyCell>,
        (work, from, name): (Work, u64, &'static str),
        follow: bool,
    ) {
        let mut after = match work {
            Work::System(SystemMsg::Drain) => self.drain(&mut *cell, slot, generation),
            work => cell.run(work, from, name),
        };
        // What queued up behind it for the same tonic runs now, without putting the cell back
        // and taking it out again for every sparkle (a burst of sends to one tonic).
        let mut ran = 1;
        while follow
            && ran < BATCH
            && let After::Alive = after
        {
            let Some(next) = self.pop_local_for(slot, generation) else {
                break;
            };
            self.flush_outbound();
            after = cell.run(next.work, next.from, next.name);
            ran += 1;
        }
        match after {
            After::Alive => {
                self.cells.borrow_mut()[slot as usize] = Slot::Live(generation, cell);
            }
            After::Completed => self.retire(slot, cell),
        }
    }

    /// Run up to `DRAIN_BUDGET` sparkles from the cell's bounded mailbox.
    fn drain(&self, cell: &mut dyn AnyCell, slot: u32, generation: u32) -> After {
        for _ in 0..DRAIN_BUDGET {
            let Some(env) = cell.next_queued() else {
                return After::Alive;
            };
            if let After::Completed = cell.run(env.work, env.from, env.name) {
                return After::Completed;
            }
        }
        // More waiting: keep the drain scheduled, behind what is already queued.
        self.push_local(Envelope {
            slot,
            generation,
            from: 0,
            name: "drain",
            work: Work::System(SystemMsg::Drain),
        });
        After::Alive
    }

    pub(super) fn retire(&self, slot: u32, cell: Box<dyn AnyCell>) {
        // What the tonic sent to other catalysts leaves before its completion is published:
        // a base or service told of it (on any thread) must not get ahead of its last sends.
        self.flush_outbound();
        self.cells.borrow_mut()[slot as usize] = Slot::Vacant;
        cell.retire();
        self.shared.slots.lock().release(slot);
    }

    /// Spin and yield briefly, watching the remote queue; true if work arrived. Only after work
    /// crossed threads since the last park: a catalyst fed by its own timers or, for a
    /// selector, by socket readiness (which a spin cannot see) parks at once.
    ///
    /// The queue is checked after every pause, not in exponentially growing chunks as
    /// crossbeam's `Backoff` does: a message that lands mid-spin is seen within one pause instead
    /// of up to half a chunk later. The spin is about as long as
    /// `Backoff`'s before it yields (a few microseconds), then a few yields, then the park.
    fn spin(&self) -> bool {
        for _ in 0..SPIN_CHECKS {
            if !self.shared.remote_is_empty() {
                return true;
            }
            std::hint::spin_loop();
        }
        for _ in 0..SPIN_YIELDS {
            if !self.shared.remote_is_empty() {
                return true;
            }
            std::thread::yield_now();
        }
        !self.shared.remote_is_empty()
    }

    /// Run until `done` says so (checked when idle, after announcing the park).
    pub(crate) fn run_loop(
        self: &Rc<Self>,
        parker: &mut dyn Parker,
        mut done: impl FnMut(&Rc<Core>) -> bool,
    ) {
        loop {
            if self.turn() {
                if self.has_local_work() || !self.shared.remote_is_empty() {
                    // Still busy: let I/O in without blocking, so that a flood of sparkles
                    // cannot starve it.
                    self.polling(|| parker.poll());
                }
                continue;
            }
            // Idle. No separate poll for I/O here: the park below polls it too, returning at
            // once if something is ready (one `epoll_wait` per echo cycle, not three).
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(self.now()));
            if timeout == Some(Duration::ZERO) {
                continue;
            }
            if parker.spin_before_park() && self.crossed.replace(false) && self.spin() {
                continue;
            }
            if !self.shared.prepare_park() {
                continue;
            }
            if self.has_local_work() {
                self.shared.end_park();
                continue;
            }
            if done(self) {
                self.shared.end_park();
                return;
            }
            self.polling(|| parker.park(timeout));
            self.shared.end_park();
        }
    }

    /// The body of a non-main catalyst thread: run until it hosts no tonic, then hand the parker
    /// back and end (a later spawn starts a new thread).
    pub(crate) fn run_thread(
        shared: Arc<CatalystShared>,
        clock: Arc<Clock>,
        names: Arc<dyn Names>,
    ) {
        let Some(mut parker) = shared.parker.lock().take() else {
            log::error!("catalyst {} started twice", shared.name);
            return;
        };
        let core = Core::new(shared.clone(), clock, names);
        let guard = enter(core.clone());
        loop {
            core.run_loop_reporting(&mut *parker, |core| {
                core.shared.slots.lock().live == 0 && core.shared.remote_is_empty()
            });
            // Decide under the slot lock: a spawner that reserves after this sees `running ==
            // false` and starts a new thread, which must find the parker already handed back.
            let mut slots = shared.slots.lock();
            if slots.live == 0 && shared.remote_is_empty() {
                *shared.parker.lock() = Some(parker);
                slots.running = false;
                break;
            }
        }
        drop(guard);
        core.clear();
    }

    /// [`run_loop`](Core::run_loop), saying so if a panic escapes every sparkle's guard (a
    /// tonic's `Drop`, a bug here) before it ends the thread: the app's quiet panic hook may
    /// have kept it to itself, expecting a failure line that will not come.
    pub(crate) fn run_loop_reporting(
        self: &Rc<Self>,
        parker: &mut dyn Parker,
        done: impl FnMut(&Rc<Core>) -> bool,
    ) {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run_loop(parker, done);
        }));
        if let Err(payload) = ran {
            log::error!(
                "catalyst {} ends: a panic outside any sparkle: {}",
                self.shared.name,
                crate::error::panic_message(&*payload)
            );
            std::panic::resume_unwind(payload);
        }
    }

    /// Drop every cell (breaks the `Ctx` → `Core` reference cycle).
    pub(crate) fn clear(&self) {
        let cells = std::mem::take(&mut *self.cells.borrow_mut());
        drop(cells);
        self.local.borrow_mut().clear();
        *self.batch.borrow_mut() = Vec::new().into_iter();
    }
}
