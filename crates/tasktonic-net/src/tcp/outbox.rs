//! The bounded outbox between a connection's [`Conn`] handles and its tonic: what `send`
//! accepted and the connection has not taken yet, the watermarks that bound it, and the pokes
//! that tell the connection there is work.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::conn::Conn;
use super::switch::Switch;
use super::{ConnState, TcpSendError};

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
    /// The base asked for a TLS upgrade or a protocol switch, or one waits for the base.
    Upgrade,
    /// The base lets a protocol that paused go on decoding ([`Conn::resume`]).
    Unhold,
}

pub(crate) type PokeFn = Box<dyn Fn(Poke) -> bool + Send + Sync>;

/// What `send` and the connection share, under one lock: one lock and unlock per send is
/// all the synchronisation a message costs on the way out (locked instructions are the
/// dearest thing on this path; `docs/PERFORMANCE.md`).
///
/// Invariants: `queued` counts every message accepted and not yet written or handed back —
/// those in `queue` and those the connection took; `poked` is true from the send that found
/// it false until the connection next takes the queue (so a burst of sends pokes once).
pub(crate) struct Outbox<M> {
    pub(crate) queue: VecDeque<M>,
    pub(crate) queued: usize,
    /// A send met the high watermark: tell the base when the queue drains to the low one.
    pub(crate) want_writable: bool,
    pub(crate) poked: bool,
    pub(crate) closed: bool,
    /// A TLS upgrade or protocol switch the connection has not made yet: until it does, it
    /// takes only the messages accepted before the request (they go out as they were).
    pub(crate) upgrade: Option<Box<PendingSwitch>>,
}

/// A requested switch.
pub(crate) struct PendingSwitch {
    pub(crate) to: Switch,
    /// Messages at the front of `queue` that were accepted before the request.
    pub(crate) plain: usize,
}

impl<M> Outbox<M> {
    pub(crate) fn new() -> Outbox<M> {
        Outbox {
            queue: VecDeque::new(),
            queued: 0,
            want_writable: false,
            poked: false,
            closed: false,
            upgrade: None,
        }
    }
}

impl<M: Send + 'static> Conn<M> {
    /// `send` through the outbox's lock.
    #[inline(never)]
    pub(crate) fn send_locked(&self, msg: M) -> Result<(), TcpSendError<M>> {
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

    /// Queue `msg` whatever the high watermark (a protocol's bounded extras: an HTTP
    /// response's head and end, one each per request). Sends staged in this batch go first,
    /// so order holds.
    pub(crate) fn send_unbounded(&self, msg: M) -> Result<(), TcpSendError<M>> {
        self.hand_over_staged();
        let s = &self.shared;
        if self.state() != ConnState::Connected {
            return Err(TcpSendError::Closed(msg));
        }
        let poke = {
            let mut outbox = s.outbox.lock();
            if outbox.closed {
                return Err(TcpSendError::Closed(msg));
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

    /// Take what the connection may write now, leaving `spare` (empty) in its place; the next
    /// `send` pokes again. While a TLS upgrade waits, only the messages accepted before it.
    #[inline(always)]
    pub(crate) fn take_outbox(&self, spare: VecDeque<M>) -> VecDeque<M> {
        let mut outbox = self.shared.outbox.lock();
        outbox.poked = false;
        if outbox.upgrade.is_none() {
            return std::mem::replace(&mut outbox.queue, spare);
        }
        take_before_upgrade(&mut outbox, spare)
    }

    /// Put messages back at the front of the outbox (not written yet, or a client re-sending
    /// after reconnect).
    pub(crate) fn requeue_front(&self, msgs: impl DoubleEndedIterator<Item = M>) {
        let mut outbox = self.shared.outbox.lock();
        let mut n = 0;
        for m in msgs.rev() {
            outbox.queue.push_front(m);
            n += 1;
        }
        if let Some(u) = outbox.upgrade.as_mut() {
            u.plain += n;
        }
    }

    /// Close the outbox for good and take what is left in it (a pending switch was dropped
    /// by the teardown before).
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

    /// A requested switch, once every message accepted before it was taken: the
    /// connection makes it now. `None` while such messages wait.
    pub(crate) fn take_switch(&self) -> Option<Switch> {
        let mut outbox = self.shared.outbox.lock();
        if outbox.upgrade.as_ref().is_none_or(|u| u.plain > 0) {
            return None;
        }
        outbox.upgrade.take().map(|u| u.to)
    }
}

/// `take_outbox` while a switch waits: only the messages accepted before it.
#[cold]
fn take_before_upgrade<M>(outbox: &mut Outbox<M>, spare: VecDeque<M>) -> VecDeque<M> {
    let plain = outbox.upgrade.as_ref().map_or(0, |u| u.plain);
    let len = outbox.queue.len();
    if plain >= len {
        if let Some(u) = outbox.upgrade.as_mut() {
            u.plain -= len;
        }
        return std::mem::replace(&mut outbox.queue, spare);
    }
    if let Some(u) = outbox.upgrade.as_mut() {
        u.plain = 0;
    }
    let rest = outbox.queue.split_off(plain);
    std::mem::replace(&mut outbox.queue, rest)
}
