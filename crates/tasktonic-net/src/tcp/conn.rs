//! [`Conn`]: the base's handle to one connection — send, close, abort — and the counters both
//! kinds of back-pressure run on.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use std::any::Any;
use std::cell::Cell;

use parking_lot::Mutex;

use super::kept;
use super::{ConnId, ConnState};

/// `send` could not accept the message; it is handed back.
pub enum TcpSendError<M> {
    /// The outbound queue is at its high watermark; [`TcpEvents::on_writable`](super::TcpEvents::on_writable)
    /// follows when it drains.
    Backpressure(M),
    /// Not connected (and not a client that re-sends after reconnecting).
    NotConnected(M),
    /// The connection is closed for good.
    Closed(M),
}

impl<M> TcpSendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            TcpSendError::Backpressure(m)
            | TcpSendError::NotConnected(m)
            | TcpSendError::Closed(m) => m,
        }
    }
}

impl<M> fmt::Debug for TcpSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpSendError::Backpressure(_) => "Backpressure(..)",
            TcpSendError::NotConnected(_) => "NotConnected(..)",
            TcpSendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<M> fmt::Display for TcpSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpSendError::Backpressure(_) => "the outbound queue is full (back-pressure)",
            TcpSendError::NotConnected(_) => "not connected",
            TcpSendError::Closed(_) => "the connection is closed",
        })
    }
}

impl<M> Error for TcpSendError<M> {}

/// Work for the connection tonic, from its `Conn` handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poke {
    /// The outbox has messages.
    Drain,
    /// The base consumed below the inbound window: read again.
    Resume,
    /// The base consumed everything after the peer closed: maybe finish closing.
    Check,
    Close,
    Abort,
}

/// What `send` and the connection share, under one lock: one lock and unlock per send is
/// all the synchronisation a message costs on the way out (locked instructions are the
/// dearest thing on this path; see docs/PERFORMANCE.md, N1).
pub(crate) struct Outbox<M> {
    pub(crate) queue: VecDeque<M>,
    /// Accepted by `send`, not yet fully written (the queue plus what the connection took).
    queued: usize,
    /// A send met the high watermark: tell the base when the queue drains to the low one.
    want_writable: bool,
    poked: bool,
    closed: bool,
}

pub(crate) type PokeFn = Box<dyn Fn(Poke) -> bool + Send + Sync>;

thread_local! {
    /// While a base handles a batch of messages on its connection's own thread (the co-located
    /// layout): that connection's id (0 between batches). Nothing else can touch the
    /// connection meanwhile (it runs on this thread too), so the base's sends to it are
    /// collected in [`kept::STAGED`] without a lock and handed to its outbox in one step when
    /// the batch ends. A plain number with no destructor: `send` reads it with one load.
    static STAGING: Cell<u64> = const { Cell::new(0) };
}

/// Run `f` on this thread's staged sends (a `Vec<M>`, empty between batches and kept for
/// the next one: two allocations and two frees per batch otherwise; N3).
#[inline]
fn with_staged<R>(f: impl FnOnce(&mut Option<Box<dyn Any>>) -> R) -> R {
    kept::STAGED.with(|staged| f(&mut staged.borrow_mut()))
}

/// Collects the sends of one delivered batch (see [`STAGING`]); hands them over when dropped,
/// also when `on_message` panics: accepted messages are written.
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
            if vec.capacity() > kept::KEEP_MAX {
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

pub(crate) struct ConnShared<M> {
    id: ConnId,
    peer: Mutex<Option<SocketAddr>>,
    state: AtomicU8,
    /// Readiness reported by the selector and not yet handled (`Ready::bits`).
    ready: AtomicU8,
    /// Sends accepted while not connected (a client that re-sends after reconnecting).
    queue_while_down: bool,
    outbox: Mutex<Outbox<M>>,
    /// `Outbox::queued`, mirrored for lock-free reading by [`Conn::queued`].
    queued: AtomicUsize,
    high: usize,
    low: usize,
    /// Delivered to the base, not yet consumed.
    unconsumed: AtomicUsize,
    window: usize,
    /// The peer closed: tell the connection when the base has consumed everything.
    notify_drained: AtomicBool,
    /// Set once the connection tonic exists (right after it is spawned).
    poke: OnceLock<PokeFn>,
}

/// The base's handle to one connection: cheap to clone, usable from any thread.
///
/// Messages given to [`send`](Conn::send) are written in order; a message that is accepted is
/// either written or handed back in [`TcpEvents::on_disconnected`](super::TcpEvents::on_disconnected)
/// (or [`on_unencodable`](super::TcpEvents::on_unencodable)) — never dropped silently.
pub struct Conn<M> {
    pub(crate) shared: Arc<ConnShared<M>>,
}

impl<M> Clone for Conn<M> {
    fn clone(&self) -> Self {
        Conn {
            shared: self.shared.clone(),
        }
    }
}

impl<M> fmt::Debug for Conn<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.shared.id)
            .field("peer", &*self.shared.peer.lock())
            .field(
                "state",
                &ConnState::from_u8(self.shared.state.load(Ordering::Acquire)),
            )
            .finish()
    }
}

impl<M> PartialEq for Conn<M> {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}

impl<M> Eq for Conn<M> {}

impl<M: Send + 'static> Conn<M> {
    pub(crate) fn new(config: &super::TcpConfig, queue_while_down: bool) -> Conn<M> {
        let high = config.high_watermark.max(1);
        Conn {
            shared: Arc::new(ConnShared {
                id: ConnId::next(),
                peer: Mutex::new(None),
                state: AtomicU8::new(ConnState::New as u8),
                ready: AtomicU8::new(0),
                queue_while_down,
                outbox: Mutex::new(Outbox {
                    queue: VecDeque::new(),
                    queued: 0,
                    want_writable: false,
                    poked: false,
                    closed: false,
                }),
                queued: AtomicUsize::new(0),
                high,
                low: config.low_watermark.min(high - 1),
                unconsumed: AtomicUsize::new(0),
                window: config.inbound_window.max(1),
                notify_drained: AtomicBool::new(false),
                poke: OnceLock::new(),
            }),
        }
    }

    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.shared.id
    }

    /// The peer's address, once connected.
    pub fn peer(&self) -> Option<SocketAddr> {
        *self.shared.peer.lock()
    }

    /// The connection handler's state.
    pub fn state(&self) -> ConnState {
        ConnState::from_u8(self.shared.state.load(Ordering::Acquire))
    }

    /// Messages accepted by `send` and not yet written.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Queue `msg` for writing. Never blocks.
    ///
    /// # Errors
    ///
    /// Hands `msg` back: [`TcpSendError::Backpressure`] at the high watermark (an
    /// `on_writable` event follows when the queue drains), [`TcpSendError::NotConnected`] while
    /// down (unless the client re-sends after reconnecting), [`TcpSendError::Closed`] once closed.
    #[inline]
    pub fn send(&self, msg: M) -> Result<(), TcpSendError<M>> {
        // Co-located, inside a batch on this connection's thread: collected without a lock.
        let msg =
            if STAGING.get() == self.shared.id.as_u64() && self.state() == ConnState::Connected {
                match self.stage(msg) {
                    Some(msg) => msg,
                    None => return Ok(()),
                }
            } else {
                msg
            };
        self.send_locked(msg)
    }

    /// `send` through the outbox's lock.
    #[inline(never)]
    fn send_locked(&self, msg: M) -> Result<(), TcpSendError<M>> {
        let s = &self.shared;
        match self.state() {
            ConnState::Closed | ConnState::Closing => return Err(TcpSendError::Closed(msg)),
            ConnState::Connected => {}
            ConnState::New | ConnState::Connecting | ConnState::WaitForRetry
                if s.queue_while_down => {}
            _ => return Err(TcpSendError::NotConnected(msg)),
        }
        let poke = {
            let mut outbox = s.outbox.lock();
            if outbox.closed {
                return Err(TcpSendError::Closed(msg));
            }
            if outbox.queued >= s.high {
                outbox.want_writable = true;
                return Err(TcpSendError::Backpressure(msg));
            }
            outbox.queue.push_back(msg);
            outbox.queued += 1;
            s.queued.store(outbox.queued, Ordering::Relaxed);
            !std::mem::replace(&mut outbox.poked, true)
        };
        if poke {
            self.poke(Poke::Drain);
        }
        Ok(())
    }

    /// Collect `msg` (this connection's batch is being staged on this thread: `None`); at
    /// the high watermark (after handing over what was collected, so order holds), give it
    /// back for the locked path.
    #[inline]
    fn stage(&self, msg: M) -> Option<M> {
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

    /// Start collecting this thread's sends to this connection (see [`STAGING`]). Call only
    /// on the connection's own thread, inside one sparkle.
    /// `expected`: how many sends to make room for (one reply per message is usual).
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
                None => *staged = Some(kept::boxed(Vec::<M>::with_capacity(expected))),
            },
        );
        Staging {
            conn: self,
            owner: true,
        }
    }

    /// Move collected sends into the outbox under one lock (`sends` is left empty).
    fn hand_over(&self, sends: &mut Vec<M>) {
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

    /// A drained outbox queue, back to this thread's staging (see [`kept::STAGED`]) for the next
    /// batch's replies, if it has room and staging holds less: in the co-located layout one
    /// allocation then circles staging → outbox → flush → staging.
    pub(crate) fn recycle(drained: VecDeque<M>) {
        if !drained.is_empty() || STAGING.get() != 0 {
            return; // not drained, or a batch is being staged
        }
        kept::keep(&kept::STAGED, Vec::from(drained));
    }

    /// Close gracefully: stop reading, write everything accepted so far, shut down, then close.
    /// Later sends fail with [`TcpSendError::Closed`].
    pub fn close(&self) {
        self.poke(Poke::Close);
    }

    /// Drop the connection now; what was not written is handed back in `on_disconnected`.
    pub fn abort(&self) {
        self.poke(Poke::Abort);
    }

    // ----- the connection tonic's side ------------------------------------------------------

    fn poke(&self, poke: Poke) {
        if let Some(f) = self.shared.poke.get() {
            f(poke);
        }
    }

    pub(crate) fn set_poke(&self, f: PokeFn) {
        if self.shared.poke.set(f).is_err() {
            log::error!("{}: poke set twice", self.shared.id);
        }
    }

    pub(crate) fn set_state(&self, state: ConnState) {
        self.shared.state.store(state as u8, Ordering::Release);
    }

    pub(crate) fn set_peer(&self, peer: Option<SocketAddr>) {
        *self.shared.peer.lock() = peer;
    }

    /// Add readiness for the handler; true if none was waiting (then the handler must be
    /// told: one sparkle handles all readiness that accumulates before it runs).
    pub(crate) fn post_ready(&self, ready: crate::selector::Ready) -> bool {
        self.shared.ready.fetch_or(ready.bits(), Ordering::AcqRel) == 0
    }

    /// Take the readiness posted since the last call.
    pub(crate) fn take_ready(&self) -> crate::selector::Ready {
        crate::selector::Ready::from_bits(self.shared.ready.swap(0, Ordering::AcqRel))
    }

    /// The connection is about to flush: sends until then need not poke it. True if this
    /// call took the hold; then `take_outbox` (which ends it) or `release_drain` must follow,
    /// or later sends would never poke.
    pub(crate) fn hold_drain(&self) -> bool {
        !std::mem::replace(&mut self.shared.outbox.lock().poked, true)
    }

    /// End a hold without flushing: poke if something was sent meanwhile.
    pub(crate) fn release_drain(&self) {
        let poke = {
            let mut outbox = self.shared.outbox.lock();
            outbox.poked = !outbox.queue.is_empty();
            outbox.poked
        };
        if poke {
            self.poke(Poke::Drain);
        }
    }

    /// Take everything in the outbox, leaving `spare` (empty) in its place; the next `send`
    /// pokes again.
    pub(crate) fn take_outbox(&self, spare: VecDeque<M>) -> VecDeque<M> {
        let mut outbox = self.shared.outbox.lock();
        outbox.poked = false;
        std::mem::replace(&mut outbox.queue, spare)
    }

    /// Put messages back at the front of the outbox (a client re-sending after reconnect).
    pub(crate) fn requeue_front(&self, msgs: impl DoubleEndedIterator<Item = M>) {
        let mut outbox = self.shared.outbox.lock();
        for m in msgs.rev() {
            outbox.queue.push_front(m);
        }
    }

    /// Close the outbox for good and take what is left in it.
    pub(crate) fn close_outbox(&self) -> VecDeque<M> {
        let mut outbox = self.shared.outbox.lock();
        outbox.closed = true;
        std::mem::take(&mut outbox.queue)
    }

    /// `n` messages left the queue (written or handed back). True if the base asked to hear
    /// when it drains and it now has.
    pub(crate) fn dequeued(&self, n: usize) -> bool {
        if n == 0 {
            return false;
        }
        let s = &self.shared;
        let mut outbox = s.outbox.lock();
        outbox.queued = outbox.queued.saturating_sub(n);
        s.queued.store(outbox.queued, Ordering::Relaxed);
        outbox.queued <= s.low && std::mem::replace(&mut outbox.want_writable, false)
    }

    /// `n` messages are about to be delivered to the base (one batch, one atomic operation).
    /// True if the window is now full.
    pub(crate) fn delivering(&self, n: usize) -> bool {
        self.shared.unconsumed.fetch_add(n, Ordering::SeqCst) + n >= self.shared.window
    }

    /// The inbound window: how many delivered messages may wait unconsumed.
    pub(crate) fn window(&self) -> usize {
        self.shared.window
    }

    /// True while the base has fewer unconsumed messages than the window.
    pub(crate) fn window_open(&self) -> bool {
        self.shared.unconsumed.load(Ordering::SeqCst) < self.shared.window
    }

    /// Messages delivered to the base that it has not consumed yet (at most the inbound
    /// window). A read's messages are delivered as one batch and count as consumed when
    /// `on_message` has returned for all of them.
    pub fn unconsumed(&self) -> usize {
        self.shared.unconsumed.load(Ordering::SeqCst)
    }

    /// The base consumed `n` delivered messages (the rest of a batch it was handed).
    pub(crate) fn consumed(&self, n: usize) {
        if n == 0 {
            return;
        }
        let s = &self.shared;
        let before = s.unconsumed.fetch_sub(n, Ordering::SeqCst);
        let now = before.saturating_sub(n);
        if before >= s.window && now < s.window {
            self.poke(Poke::Resume);
        }
        if now == 0 && s.notify_drained.load(Ordering::SeqCst) {
            self.poke(Poke::Check);
        }
    }

    pub(crate) fn notify_when_drained(&self) {
        self.shared.notify_drained.store(true, Ordering::SeqCst);
    }
}
