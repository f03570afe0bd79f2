//! [`Udp`]: the base's handle to one UDP socket — send, close, abort, socket options — and
//! what it shares with the socket's handler tonic: the bounded send queue, the inbound
//! window, and the socket itself (under a lock, so options can be set from any thread).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use mio::net::UdpSocket as MioUdp;
use parking_lot::Mutex;

use super::{UdpConfig, UdpSendError};
use crate::selector::Ready;

/// Work for the handler tonic, from its handles and the selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poke {
    /// The handle exists: report the binding, read what arrived so far.
    Start,
    /// The selector reported readiness (waiting in `UdpShared::ready`).
    Ready,
    /// The send queue has datagrams.
    Drain,
    /// The base consumed below the inbound window: read again.
    Resume,
    Close,
    Abort,
}

pub(crate) type PokeFn = Box<dyn Fn(Poke) -> bool + Send + Sync>;

/// Where the socket is in its life, as `send_to` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Open,
    /// `close()`: no more sends; what was accepted goes out first.
    Closing,
    /// `abort()`: no more sends, and nothing more goes out.
    Aborted,
    /// Closed for good.
    Closed,
}

/// What `send_to` and the handler share, under one lock.
///
/// Invariants: `queued` counts every datagram accepted and not yet sent or handed back —
/// those in `datagrams` and those the handler took; `poked` is true from the send that found
/// it false until the handler next takes the queue (a burst of sends pokes once).
pub(crate) struct SendQueue<M> {
    pub(crate) datagrams: VecDeque<(M, SocketAddr)>,
    queued: usize,
    want_writable: bool,
    poked: bool,
    pub(crate) end: End,
}

pub(crate) struct UdpShared<M> {
    local: SocketAddr,
    /// `None` once closed: the port is released when the handler drops it.
    pub(crate) socket: Mutex<Option<MioUdp>>,
    queue: Mutex<SendQueue<M>>,
    /// `SendQueue::queued`, mirrored for lock-free reading by [`Udp::queued`].
    queued: AtomicUsize,
    high: usize,
    low: usize,
    /// Delivered to the base, not yet consumed.
    unconsumed: AtomicUsize,
    window: usize,
    /// Readiness reported by the selector and not yet handled (`Ready::bits`).
    ready: AtomicU8,
    /// Set once the handler tonic exists (right after it is spawned).
    poke: OnceLock<PokeFn>,
}

/// The base's handle to one UDP socket: cheap to clone, usable from any thread.
///
/// Datagrams given to [`send_to`](Udp::send_to) are sent in order; one that is accepted is
/// either sent, or handed back in [`UdpEvents::on_send_failed`](super::UdpEvents::on_send_failed)
/// or [`UdpEvents::on_closed`](super::UdpEvents::on_closed) — never dropped silently. The
/// socket options (broadcast, multicast) take effect at once, from any thread.
pub struct Udp<M> {
    pub(crate) shared: Arc<UdpShared<M>>,
}

impl<M> Clone for Udp<M> {
    fn clone(&self) -> Self {
        Udp {
            shared: self.shared.clone(),
        }
    }
}

impl<M> fmt::Debug for Udp<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Udp")
            .field("local", &self.shared.local)
            .field("end", &self.shared.queue.lock().end)
            .finish()
    }
}

/// Two handles are equal when they belong to the same socket.
impl<M> PartialEq for Udp<M> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<M> Eq for Udp<M> {}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the UDP socket is closed")
}

impl<M: Send + 'static> Udp<M> {
    pub(crate) fn new(socket: MioUdp, local: SocketAddr, config: &UdpConfig) -> Udp<M> {
        let high = config.send_queue.max(1);
        Udp {
            shared: Arc::new(UdpShared {
                local,
                socket: Mutex::new(Some(socket)),
                queue: Mutex::new(SendQueue {
                    datagrams: VecDeque::new(),
                    queued: 0,
                    want_writable: false,
                    poked: false,
                    end: End::Open,
                }),
                queued: AtomicUsize::new(0),
                high,
                low: config.low_watermark.min(high - 1),
                unconsumed: AtomicUsize::new(0),
                window: config.inbound_window.max(1),
                ready: AtomicU8::new(0),
                poke: OnceLock::new(),
            }),
        }
    }

    /// The address the socket is bound to (with the port the system chose, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Queue `msg` to be sent to `to` as one datagram. Never blocks.
    ///
    /// Accepted datagrams go out in order. One that cannot be encoded or that the system
    /// refuses comes back in [`on_send_failed`](super::UdpEvents::on_send_failed); one still
    /// queued when the socket closes comes back in [`on_closed`](super::UdpEvents::on_closed).
    ///
    /// # Errors
    ///
    /// Hands `msg` back: [`UdpSendError::Backpressure`] when the send queue is at its limit
    /// (an `on_writable` event follows when it drains), [`UdpSendError::Closed`] once
    /// [`close`](Udp::close) or [`abort`](Udp::abort) was called.
    pub fn send_to(&self, msg: M, to: SocketAddr) -> Result<(), UdpSendError<M>> {
        let s = &self.shared;
        let poke = {
            let mut q = s.queue.lock();
            if q.end != End::Open {
                return Err(UdpSendError::Closed(msg));
            }
            if q.queued >= s.high {
                q.want_writable = true;
                return Err(UdpSendError::Backpressure(msg));
            }
            q.datagrams.push_back((msg, to));
            q.queued += 1;
            s.queued.store(q.queued, Ordering::Relaxed);
            !std::mem::replace(&mut q.poked, true)
        };
        if poke {
            self.poke(Poke::Drain);
        }
        Ok(())
    }

    /// Close: refuse further sends, send what was accepted, then release the socket. What a
    /// full socket buffer has not taken within [`UdpConfig::close_linger`] is handed back in
    /// `on_closed`.
    pub fn close(&self) {
        let mut q = self.shared.queue.lock();
        if q.end == End::Open {
            q.end = End::Closing;
            drop(q);
            self.poke(Poke::Close);
        }
    }

    /// Close now: refuse further sends and send nothing more; every datagram still queued
    /// is handed back in `on_closed`.
    pub fn abort(&self) {
        let mut q = self.shared.queue.lock();
        if matches!(q.end, End::Open | End::Closing) {
            q.end = End::Aborted;
            drop(q);
            self.poke(Poke::Abort);
        }
    }

    /// True once [`close`](Udp::close) or [`abort`](Udp::abort) was called, or the socket
    /// closed for another reason (its base finished).
    pub fn is_closed(&self) -> bool {
        self.shared.queue.lock().end != End::Open
    }

    /// Datagrams accepted by `send_to` and not yet sent (or handed back).
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Datagrams delivered to the base that it has not consumed yet (at most the inbound
    /// window). A batch counts as consumed when `on_datagram` has returned for all of it.
    pub fn unconsumed(&self) -> usize {
        self.shared.unconsumed.load(Ordering::SeqCst)
    }

    // ----- socket options -----------------------------------------------------------------

    fn with_socket<R>(&self, f: impl FnOnce(&MioUdp) -> io::Result<R>) -> io::Result<R> {
        match self.shared.socket.lock().as_ref() {
            Some(socket) => f(socket),
            None => Err(closed_error()),
        }
    }

    /// Allow (or forbid) sending to broadcast addresses (`SO_BROADCAST`); without it such a
    /// send fails with `PermissionDenied`. [`UdpSocket::broadcast`](super::UdpSocket::broadcast)
    /// sets it from the start.
    ///
    /// # Errors
    ///
    /// The system refused, or the socket is closed.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.with_socket(|s| s.set_broadcast(on))
    }

    /// Whether sending to broadcast addresses is allowed.
    ///
    /// # Errors
    ///
    /// The system refused, or the socket is closed.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.with_socket(MioUdp::broadcast)
    }

    /// Join the IPv4 multicast `group` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED`: the system's choice). The socket then receives the
    /// group's datagrams sent to its port; bind it to `0.0.0.0` (or to the group's address),
    /// not to a unicast address, to receive them.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::net::Ipv4Addr;
    /// # fn join(udp: &tasktonic_net::udp::Udp<bytes::Bytes>) -> std::io::Result<()> {
    /// udp.join_multicast_v4(Ipv4Addr::new(239, 255, 0, 1), Ipv4Addr::UNSPECIFIED)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The system refused (not a multicast address, no such interface, already a member),
    /// or the socket is closed.
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.with_socket(|s| s.join_multicast_v4(&group, &interface))
    }

    /// Leave an IPv4 multicast group joined with [`join_multicast_v4`](Udp::join_multicast_v4).
    ///
    /// # Errors
    ///
    /// The system refused (not a member), or the socket is closed.
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.with_socket(|s| s.leave_multicast_v4(&group, &interface))
    }

    /// Join the IPv6 multicast `group` on the interface with index `interface` (0: the
    /// system's choice). The socket must be an IPv6 one.
    ///
    /// # Errors
    ///
    /// As [`join_multicast_v4`](Udp::join_multicast_v4).
    pub fn join_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.with_socket(|s| s.join_multicast_v6(&group, interface))
    }

    /// Leave an IPv6 multicast group joined with [`join_multicast_v6`](Udp::join_multicast_v6).
    ///
    /// # Errors
    ///
    /// As [`leave_multicast_v4`](Udp::leave_multicast_v4).
    pub fn leave_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.with_socket(|s| s.leave_multicast_v6(&group, interface))
    }

    /// Whether this socket's multicast datagrams are looped back to local members (default:
    /// on).
    ///
    /// # Errors
    ///
    /// The system refused, or the socket is closed.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.with_socket(|s| s.set_multicast_loop_v4(on))
    }

    /// The time-to-live of this socket's IPv4 multicast datagrams (default 1: this link only).
    ///
    /// # Errors
    ///
    /// The system refused, or the socket is closed.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.with_socket(|s| s.set_multicast_ttl_v4(ttl))
    }

    /// Send IPv4 multicast out of the interface with address `interface` (for example
    /// `127.0.0.1`, to reach members on this host through the loopback interface).
    ///
    /// # Errors
    ///
    /// The system refused, or the socket is closed.
    pub fn set_multicast_interface_v4(&self, interface: Ipv4Addr) -> io::Result<()> {
        self.with_socket(|s| socket2::SockRef::from(s).set_multicast_if_v4(&interface))
    }

    /// Whether this socket's IPv6 multicast datagrams are looped back to local members
    /// (default: on).
    ///
    /// # Errors
    ///
    /// The system refused, or the socket is closed.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.with_socket(|s| s.set_multicast_loop_v6(on))
    }

    /// Send IPv6 multicast out of the interface with index `interface` (0: the system's
    /// choice).
    ///
    /// # Errors
    ///
    /// The system refused, or the socket is closed.
    pub fn set_multicast_interface_v6(&self, interface: u32) -> io::Result<()> {
        self.with_socket(|s| socket2::SockRef::from(s).set_multicast_if_v6(interface))
    }

    // ----- the handler's side -------------------------------------------------------------

    pub(crate) fn poke(&self, poke: Poke) {
        if let Some(f) = self.shared.poke.get() {
            f(poke);
        }
    }

    pub(crate) fn set_poke(&self, f: PokeFn) {
        if self.shared.poke.set(f).is_err() {
            log::error!("udp {}: poke set twice", self.shared.local);
        }
    }

    /// Add readiness for the handler; true if none was waiting (then it must be told).
    pub(crate) fn post_ready(&self, ready: Ready) -> bool {
        self.shared.ready.fetch_or(ready.bits(), Ordering::AcqRel) == 0
    }

    /// Take the readiness posted since the last call.
    pub(crate) fn take_ready(&self) -> Ready {
        Ready::from_bits(self.shared.ready.swap(0, Ordering::AcqRel))
    }

    /// The handler is about to flush: sends until then need not poke it. True if this call
    /// took the hold; then `take_queue` (which ends it) or `release_drain` must follow.
    pub(crate) fn hold_drain(&self) -> bool {
        !std::mem::replace(&mut self.shared.queue.lock().poked, true)
    }

    /// End a hold without flushing: poke if something was sent meanwhile.
    pub(crate) fn release_drain(&self) {
        let poke = {
            let mut q = self.shared.queue.lock();
            q.poked = !q.datagrams.is_empty();
            q.poked
        };
        if poke {
            self.poke(Poke::Drain);
        }
    }

    /// Take what may be sent now, leaving `spare` (empty) in its place; the next `send_to`
    /// pokes again. Nothing once aborted.
    pub(crate) fn take_queue(&self, spare: VecDeque<(M, SocketAddr)>) -> VecDeque<(M, SocketAddr)> {
        let mut q = self.shared.queue.lock();
        q.poked = false;
        if q.end == End::Aborted {
            return spare;
        }
        std::mem::replace(&mut q.datagrams, spare)
    }

    /// Put datagrams the socket did not take back at the front of the queue.
    pub(crate) fn requeue_front(&self, rest: &mut VecDeque<(M, SocketAddr)>) {
        let mut q = self.shared.queue.lock();
        while let Some(d) = rest.pop_back() {
            q.datagrams.push_front(d);
        }
    }

    /// `n` datagrams left the queue (sent or handed back). True if the base asked to hear
    /// when it drains and it now has.
    pub(crate) fn dequeued(&self, n: usize) -> bool {
        if n == 0 {
            return false;
        }
        let s = &self.shared;
        let mut q = s.queue.lock();
        q.queued = q.queued.saturating_sub(n);
        s.queued.store(q.queued, Ordering::Relaxed);
        q.queued <= s.low && std::mem::replace(&mut q.want_writable, false)
    }

    /// Nothing waits in the queue.
    pub(crate) fn queue_empty(&self) -> bool {
        self.shared.queue.lock().datagrams.is_empty()
    }

    /// Close the queue for good (refusing sends) and take what is left in it.
    pub(crate) fn close_queue(&self) -> VecDeque<(M, SocketAddr)> {
        let mut q = self.shared.queue.lock();
        q.end = End::Closed;
        std::mem::take(&mut q.datagrams)
    }

    /// Refuse further sends (the socket is closing because its base is finishing).
    pub(crate) fn stop_sends(&self) {
        let mut q = self.shared.queue.lock();
        if q.end == End::Open {
            q.end = End::Closing;
        }
    }

    /// `n` datagrams are about to be delivered to the base. True if the window is now full.
    pub(crate) fn delivering(&self, n: usize) -> bool {
        self.shared.unconsumed.fetch_add(n, Ordering::SeqCst) + n >= self.shared.window
    }

    /// Room in the inbound window.
    pub(crate) fn window_room(&self) -> usize {
        self.shared
            .window
            .saturating_sub(self.shared.unconsumed.load(Ordering::SeqCst))
    }

    /// The base consumed `n` delivered datagrams: read again if that opened the window.
    pub(crate) fn consumed(&self, n: usize) {
        if n == 0 {
            return;
        }
        let s = &self.shared;
        let before = s.unconsumed.fetch_sub(n, Ordering::SeqCst);
        if before >= s.window && before - n < s.window {
            self.poke(Poke::Resume);
        }
    }
}
