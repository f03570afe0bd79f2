//! Catalysts: the threads that run tonics.
//!
//! A catalyst has two halves. [`CatalystShared`] is what other threads see: the remote queue, the
//! sleep flag and the slot table. [`Core`] lives on the catalyst's own thread: the local queue,
//! the tonic cells, the timers and the loop.
//!
//! Sends between catalysts are batched on the sending side: while a tonic runs, what it sends to
//! another catalyst collects in its core's outbound buffer and is handed over (one queue
//! operation and at most one wake-up per destination) when the sparkle returns. See
//! `docs/concepts.md`, "When a sparkle leaves".

mod cell;
mod core;
mod inline;
mod outbound;
mod parker;
mod slots;
mod timers;
mod work;

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering, fence};

use crossbeam_queue::SegQueue;
use parking_lot::Mutex;

pub(crate) use self::cell::{After, AnyCell, Names};
pub(crate) use self::core::Core;
pub(crate) use self::inline::InlineTarget;
pub use self::parker::{Parker, ThreadParker, Unpark};
pub(crate) use self::slots::SlotTable;
pub(crate) use self::timers::{Armed, TimerHeap};
pub(crate) use self::work::{
    Addressee, Envelope, InfusionEvent, InfusionOutcome, Order, SystemMsg, Work,
};

const RUNNING: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

thread_local! {
    /// The core of the catalyst running on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
    /// The raw id of the tonic running on this thread (0: none): the sender of what it sends,
    /// and who a log record names.
    static RUNNING_TONIC: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The raw id of the tonic whose sparkle runs on this thread, 0 outside any.
#[inline]
pub(crate) fn running() -> u64 {
    RUNNING_TONIC.with(std::cell::Cell::get)
}

/// Note that the tonic `raw` runs now (0: none); returns the one that ran before.
#[inline]
pub(crate) fn set_running(raw: u64) -> u64 {
    RUNNING_TONIC.with(|c| c.replace(raw))
}

/// What every thread sees of a catalyst.
pub(crate) struct CatalystShared {
    pub(crate) id: usize,
    /// The app (runtime) it belongs to: a typed catalyst of another app is refused.
    pub(crate) app: u64,
    pub(crate) name: Arc<str>,
    pub(crate) is_main: bool,
    remote: SegQueue<Remote>,
    sleep: AtomicU8,
    unparker: Arc<dyn Unpark>,
    /// The parker, while no thread is running the catalyst.
    pub(crate) parker: Mutex<Option<Box<dyn Parker>>>,
    /// What the parker shares with the code that made it (an extension's poller state), typed
    /// back by `extend::open_catalyst`.
    pub(crate) extension: Option<Arc<dyn std::any::Any + Send + Sync>>,
    pub(crate) slots: Mutex<SlotTable>,
}

impl fmt::Debug for CatalystShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Catalyst({})", self.name)
    }
}

impl CatalystShared {
    pub(crate) fn new(
        app: u64,
        name: &str,
        is_main: bool,
        parker: Box<dyn Parker>,
    ) -> Arc<CatalystShared> {
        CatalystShared::with_extension(app, name, is_main, parker, None)
    }

    /// A catalyst whose parker shares `extension` with the code that made it.
    pub(crate) fn with_extension(
        app: u64,
        name: &str,
        is_main: bool,
        parker: Box<dyn Parker>,
        extension: Option<Arc<dyn std::any::Any + Send + Sync>>,
    ) -> Arc<CatalystShared> {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        Arc::new(CatalystShared {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            app,
            name: name.into(),
            is_main,
            remote: SegQueue::new(),
            sleep: AtomicU8::new(RUNNING),
            unparker: parker.unparker(),
            parker: Mutex::new(Some(parker)),
            extension,
            slots: Mutex::new(SlotTable::default()),
        })
    }

    /// Enqueue an envelope: on the local queue when called on this catalyst's own thread (no
    /// atomics, no wake-up); in the calling catalyst's outbound buffer when called inside a
    /// sparkle on another catalyst (handed over when the sparkle returns); else straight on
    /// the remote queue, waking the catalyst only if it is parked.
    #[inline]
    pub(crate) fn deliver(self: &Arc<Self>, env: Envelope) {
        let env = CURRENT.with(|current| match &*current.borrow() {
            Some(core) if core.shared.id == self.id => {
                core.push_local(env);
                None
            }
            Some(core) if core.is_dispatching() => {
                core.push_outbound(self, env);
                None
            }
            _ => Some(env),
        });
        if let Some(env) = env {
            self.remote.push(Remote::One(env));
            self.notify();
        }
    }

    /// Enqueue on the remote queue even from this catalyst's own thread: behind everything
    /// other threads have handed over already (the local queue would run ahead of it).
    pub(crate) fn deliver_behind_remote(&self, env: Envelope) {
        self.remote.push(Remote::One(env));
        self.notify();
    }

    /// Hand over what one catalyst buffered for this one, in order, and wake it if parked.
    pub(crate) fn hand_over(&self, batch: Remote) {
        self.remote.push(batch);
        self.notify();
    }

    /// Wake the catalyst if (and only if) it is parked.
    ///
    /// No fence is needed here: `SegQueue::push` publishes with a SeqCst compare-exchange on
    /// its tail, and this load is SeqCst; the parking side stores `PARKED` with SeqCst and then
    /// reads the queue with SeqCst loads (`is_empty`). In the single SeqCst order one of the
    /// two sides sees the other, so a push is never missed by a parking catalyst.
    pub(crate) fn notify(&self) {
        if self.sleep.load(Ordering::SeqCst) == PARKED
            && self.sleep.swap(NOTIFIED, Ordering::SeqCst) == PARKED
        {
            self.unparker.unpark();
        }
    }

    pub(crate) fn pop_remote(&self) -> Option<Remote> {
        self.remote.pop()
    }

    pub(crate) fn remote_is_empty(&self) -> bool {
        self.remote.is_empty()
    }

    /// Announce that the catalyst is about to park. Returns false (and stays running) if work
    /// arrived in between.
    pub(crate) fn prepare_park(&self) -> bool {
        self.sleep.store(PARKED, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.remote.is_empty() {
            self.sleep.store(RUNNING, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub(crate) fn end_park(&self) {
        self.sleep.store(RUNNING, Ordering::SeqCst);
    }

    /// True when the calling thread is this catalyst's thread.
    pub(crate) fn is_current_thread(&self) -> bool {
        current_catalyst_id() == Some(self.id)
    }
}

/// What travels on a remote queue: one envelope, or a batch one catalyst sent in one sparkle
/// (run in order before anything behind it).
pub(crate) enum Remote {
    One(Envelope),
    Batch(Vec<Envelope>),
}

/// Hand over what this thread's catalyst has buffered for others (before blocking on them).
pub(crate) fn flush_outbound() {
    CURRENT.with(|c| {
        if let Some(core) = &*c.borrow() {
            core.flush_outbound();
        }
    });
}

/// The id of the catalyst running on this thread.
pub(crate) fn current_catalyst_id() -> Option<usize> {
    CURRENT.with(|c| c.borrow().as_ref().map(|core| core.shared.id))
}

/// The core of the catalyst running on this thread.
pub(crate) fn current_core() -> Option<Rc<Core>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Make `core` this thread's catalyst until the guard drops.
pub(crate) fn enter(core: Rc<Core>) -> EnterGuard {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(core));
    EnterGuard { previous }
}

pub(crate) struct EnterGuard {
    previous: Option<Rc<Core>>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}
