//! [`Conn`]: the base's handle to one connection — send, close, abort, upgrade — and the
//! counters inbound back-pressure runs on. The outbox behind `send` is in `outbox.rs`, the
//! co-located staging of sends in `staging.rs`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::ended::{ConnEnded, Watcher, Watchers};
use super::outbox::{Outbox, PendingSwitch, Poke, PokeFn};
use super::switch::{Switch, ToProtocol, UpgradeError};
use super::{CloseReason, ConnId, ConnState, TcpEvents, TcpSendError};
use crate::protocol::Protocol;
#[cfg(feature = "tls")]
use crate::transport::Tls;

pub(crate) struct ConnShared<M> {
    pub(crate) id: ConnId,
    peer: Mutex<Option<SocketAddr>>,
    state: AtomicU8,
    /// Readiness reported by the selector and not yet handled (`Ready::bits`).
    ready: AtomicU8,
    /// Sends accepted while not connected (a client that re-sends after reconnecting).
    pub(crate) queue_while_down: bool,
    pub(crate) outbox: Mutex<Outbox<M>>,
    /// `Outbox::queued`, mirrored for lock-free reading by [`Conn::queued`].
    pub(crate) queued: AtomicUsize,
    pub(crate) high: usize,
    pub(crate) low: usize,
    /// Delivered to the base, not yet consumed.
    unconsumed: AtomicUsize,
    window: usize,
    /// The input bytes those messages were cut from, and their bound.
    unconsumed_bytes: AtomicUsize,
    window_bytes: usize,
    /// The peer closed: tell the connection when the base has consumed everything.
    notify_drained: AtomicBool,
    /// A TLS upgrade was requested and not made yet: a message delivered now came from past
    /// the upgrade's boundary.
    upgrading: AtomicBool,
    /// A message from past an upgrade's boundary reached the base's batch (it was not handed
    /// to `on_message`): the upgrade fails.
    past_boundary: AtomicBool,
    /// The connection's transport is TLS (from the start, or upgraded).
    tls: AtomicBool,
    /// `TCP_NODELAY` as the socket reported it once set: 0 unknown, 1 off, 2 on.
    nodelay: AtomicU8,
    /// Where a protocol's pause stands (`PAUSE_*`): the base may resume before the
    /// connection holds (co-located, inside the delivery), and then nothing is held.
    pause: AtomicU8,
    /// Set once the connection tonic exists (right after it is spawned).
    poke: OnceLock<PokeFn>,
    /// Tonics told when the connection goes down ([`Conn::watch`]); none for most.
    watchers: Mutex<Option<Box<Watchers>>>,
}

/// No pause, or a pause the base has not resumed while the delivery ran.
const PAUSE_NONE: u8 = 0;
/// The connection holds (reads nothing) until the base resumes.
const PAUSE_HELD: u8 = 1;
/// The base resumed before the connection held: it goes on decoding.
const PAUSE_EARLY: u8 = 2;

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
    /// A connection's shared half; `poke` reaches the tonic that serves it — known at once
    /// when the tonic is built with its handle, later (`set_poke`) for the connection a
    /// protocol switch hands to a new base, which the base adopts when its turn comes.
    pub(crate) fn new(
        config: &super::TcpConfig,
        queue_while_down: bool,
        poke: Option<PokeFn>,
    ) -> Conn<M> {
        let high = config.high_watermark.max(1);
        let poke = match poke {
            Some(f) => OnceLock::from(f),
            None => OnceLock::new(),
        };
        Conn {
            shared: Arc::new(ConnShared {
                id: ConnId::next(),
                peer: Mutex::new(None),
                state: AtomicU8::new(ConnState::New as u8),
                ready: AtomicU8::new(0),
                queue_while_down,
                outbox: Mutex::new(Outbox::new()),
                queued: AtomicUsize::new(0),
                high,
                low: config.low_watermark.min(high - 1),
                unconsumed: AtomicUsize::new(0),
                window: config.inbound_window.max(1),
                unconsumed_bytes: AtomicUsize::new(0),
                window_bytes: config.inbound_bytes.max(1),
                notify_drained: AtomicBool::new(false),
                upgrading: AtomicBool::new(false),
                past_boundary: AtomicBool::new(false),
                tls: AtomicBool::new(false),
                nodelay: AtomicU8::new(0),
                pause: AtomicU8::new(PAUSE_NONE),
                poke,
                watchers: Mutex::new(None),
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

    /// True while the connection speaks TLS (from the start, or since an upgrade began).
    pub fn is_tls(&self) -> bool {
        self.shared.tls.load(Ordering::Acquire)
    }

    /// `TCP_NODELAY` as the socket reports it, read back once the connection set it
    /// ([`TcpConfig::nodelay`](super::TcpConfig::nodelay), on by default); `None` before
    /// the socket is connected, or if the system would not say.
    pub fn nodelay(&self) -> Option<bool> {
        match self.shared.nodelay.load(Ordering::Acquire) {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        }
    }

    pub(crate) fn set_nodelay_seen(&self, on: bool) {
        self.shared
            .nodelay
            .store(if on { 2 } else { 1 }, Ordering::Release);
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
    #[inline(always)]
    pub fn send(&self, msg: M) -> Result<(), TcpSendError<M>> {
        // Co-located, inside a batch on this connection's thread: collected without a lock.
        let msg = if self.is_staging() && self.state() == ConnState::Connected {
            match self.stage(msg) {
                Some(msg) => msg,
                None => return Ok(()),
            }
        } else {
            msg
        };
        self.send_locked(msg)
    }

    /// Tell `watcher` when this connection goes down (Kamaelia's `signal` outbox), as a
    /// [`ConnEnded`] message on its own catalyst: when, why, and whether a reconnect follows.
    /// Any tonic may watch, as many as like; the base needs not (it has
    /// [`on_disconnected`](super::TcpEvents::on_disconnected), which alone gets the unsent
    /// messages). A connection that has already ended for good tells a new watcher at once.
    /// Watching twice changes nothing; a watcher that completes is forgotten. Watchers follow
    /// the session through [`switch_protocol`](Conn::switch_protocol): they hear of the new
    /// protocol's end, not of the switch.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasktonic_core::{Ctx, Receive, Tonic};
    /// use tasktonic_net::tcp::ConnEnded;
    ///
    /// /// Counts the connections that went down, and why.
    /// struct Monitor {
    ///     ended: Vec<String>,
    /// }
    /// impl Tonic for Monitor {
    ///     type State = ();
    /// }
    /// impl Receive<ConnEnded> for Monitor {
    ///     fn receive(&mut self, _ctx: &mut Ctx<Self>, ended: ConnEnded) {
    ///         self.ended.push(ended.to_string());
    ///     }
    /// }
    /// // In the base, when a connection comes up: `conn.watch(&monitor)`.
    /// ```
    pub fn watch<T: tasktonic_core::Receive<ConnEnded>>(
        &self,
        watcher: &tasktonic_core::Handle<T>,
    ) {
        self.shared
            .watchers
            .lock()
            .get_or_insert_with(Box::default)
            .add(watcher);
    }

    /// Stop telling the tonic with this id of this connection's end; true if it was watching.
    pub fn unwatch(&self, watcher: tasktonic_core::TonicId) -> bool {
        self.shared
            .watchers
            .lock()
            .as_mut()
            .is_some_and(|w| w.remove(watcher))
    }

    /// The connection went down: tell its watchers.
    pub(crate) fn tell_watchers(
        &self,
        reason: &std::sync::Arc<CloseReason>,
        peer: Option<SocketAddr>,
        reconnecting: bool,
    ) {
        let mut watchers = self.shared.watchers.lock();
        if !reconnecting {
            // Late watchers hear of the end at once: keep it even with nobody watching yet.
            watchers.get_or_insert_with(Box::default);
        }
        if let Some(w) = watchers.as_mut() {
            w.tell(&ConnEnded {
                conn: self.id(),
                peer,
                reason: reason.clone(),
                at: std::time::SystemTime::now(),
                reconnecting,
            });
        }
    }

    /// Take this connection's watchers away (a protocol switch: they go to the new one).
    pub(crate) fn take_watchers(&self) -> Vec<Watcher> {
        self.shared
            .watchers
            .lock()
            .as_mut()
            .map(|w| w.take())
            .unwrap_or_default()
    }

    /// Watchers moved here from the connection this one replaced.
    pub(crate) fn adopt_watchers(&self, moved: Vec<Watcher>) {
        if !moved.is_empty() {
            self.shared
                .watchers
                .lock()
                .get_or_insert_with(Box::default)
                .adopt(moved);
        }
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

    /// Switch this live plaintext connection to TLS (STARTTLS; Kamaelia's `makessl`), on
    /// either side, at a message boundary.
    ///
    /// `go_ahead`, if given, is queued as the last plaintext message (a server's "220 ready
    /// to start TLS"): it and every message `send` accepted before this call are written in
    /// plaintext; everything sent after this call goes through TLS. Call it from
    /// `on_message` of the message that ends the plaintext phase (the peer's `STARTTLS`, or
    /// the server's go-ahead on the client side), so that the connection reads nothing in
    /// plaintext after it.
    ///
    /// If the peer sent anything past that message before the handshake (command injection
    /// across the upgrade, CVE-2011-0411), the upgrade fails and the connection closes with
    /// [`CloseReason::Tls`](super::CloseReason::Tls); such messages never reach `on_message`.
    /// When the handshake completes, the base gets
    /// [`TcpEvents::on_secured`](super::TcpEvents::on_secured).
    ///
    /// # Errors
    ///
    /// [`UpgradeError`] with `go_ahead` handed back: the connection is not connected, speaks
    /// TLS already, is upgrading, or the outbox is at its high watermark.
    #[cfg(feature = "tls")]
    pub fn upgrade_tls(&self, tls: Tls, go_ahead: Option<M>) -> Result<(), UpgradeError<M>> {
        if self.is_tls() {
            return Err(UpgradeError::new(
                "the connection speaks TLS already",
                go_ahead,
            ));
        }
        self.request_switch(Switch::Tls(tls), go_ahead)
            .map_err(|(e, _)| e)
    }

    /// Hand this live connection to another protocol, with its own message type and base, at
    /// a message boundary (HTTP → WebSocket; a plaintext greeting → length-prefixed frames).
    ///
    /// As with `upgrade_tls` (TLS), `go_ahead` (if given) and every message
    /// `send` accepted before this call are written by the current protocol; then the
    /// socket, its transport (a TLS session goes along) and the bytes read past the boundary
    /// go to a new connection handler speaking `protocol`, which `base` adopts as its
    /// infusion (on the selector catalyst). The returned [`Conn`] is that connection's: `base`
    /// gets `on_connected` with it once the switch is made, or `on_disconnected`
    /// ([`CloseReason::SwitchFailed`](super::CloseReason::SwitchFailed)) if it never is.
    /// Messages sent on it before the switch is made wait, and are written once it is (or
    /// handed back in that `on_disconnected`).
    /// This connection then ends: its base gets `on_disconnected` with
    /// [`CloseReason::Switched`](super::CloseReason::Switched) and every message sent to it
    /// after this call handed back (the new protocol speaks another type).
    ///
    /// Call it from `on_message` of the message that ends the old protocol. A protocol whose
    /// peer may send the new protocol's bytes right behind that message (an HTTP client after
    /// a `101`) should [`pause`](crate::protocol::ProtocolIo::pause) after it, so that those
    /// bytes are handed over undecoded; a message the old protocol decoded past the boundary
    /// fails the switch (the connection closes). A switched connection does not reconnect, and
    /// no longer counts toward its listener's `max_clients`.
    ///
    /// # Errors
    ///
    /// [`UpgradeError`] with `go_ahead` handed back: not connected, a switch under way, or the
    /// outbox at its high watermark.
    pub fn switch_protocol<P, B>(
        &self,
        protocol: P,
        base: &tasktonic_core::Handle<B>,
        go_ahead: Option<M>,
    ) -> Result<Conn<P::Message>, UpgradeError<M>>
    where
        P: Protocol,
        B: TcpEvents<P::Message>,
    {
        self.switch_protocol_tuned(protocol, base, go_ahead, None)
    }

    /// [`switch_protocol`](Conn::switch_protocol), the new connection's options made from
    /// this one's by `tune` (its timeouts and heartbeat; the watermarks and window stay).
    pub(crate) fn switch_protocol_tuned<P, B>(
        &self,
        protocol: P,
        base: &tasktonic_core::Handle<B>,
        go_ahead: Option<M>,
        tune: Option<super::switch::Tune>,
    ) -> Result<Conn<P::Message>, UpgradeError<M>>
    where
        P: Protocol,
        B: TcpEvents<P::Message>,
    {
        let config = super::TcpConfig {
            high_watermark: self.shared.high,
            low_watermark: self.shared.low,
            inbound_window: self.shared.window,
            inbound_bytes: self.shared.window_bytes,
            ..super::TcpConfig::default()
        };
        // Sends on the new connection wait until the switch is made (a WebSocket server
        // greets its session in the sparkle that accepted it).
        let next = Conn::new(&config, true, None);
        let handoff = ToProtocol {
            protocol,
            base: base.clone(),
            conn: next.clone(),
            tune,
        };
        self.request_switch(Switch::Protocol(Box::new(handoff)), go_ahead)
            .map(|()| next)
            .map_err(|(e, switch)| {
                if let Some(Switch::Protocol(h)) = switch {
                    // Never started: nothing to tell the new base; its `Conn` stays `New`.
                    drop(h);
                }
                e
            })
    }

    /// Let a protocol that [paused](crate::protocol::ProtocolIo::pause) go on decoding (the
    /// base decided not to switch). Call it once per pause; called while the delivery is
    /// still running (the base answered at once), decoding simply goes on behind it.
    pub fn resume(&self) {
        let pause = &self.shared.pause;
        let mut now = pause.load(Ordering::Acquire);
        loop {
            let next = match now {
                PAUSE_HELD => PAUSE_NONE,
                PAUSE_NONE => PAUSE_EARLY,
                _ => return, // resumed already
            };
            match pause.compare_exchange(now, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    if now == PAUSE_HELD {
                        self.poke(Poke::Unhold);
                    }
                    return;
                }
                Err(actual) => now = actual,
            }
        }
    }

    /// The connection paused after a delivery: true if it must hold (the base has not
    /// resumed yet; its `resume` will poke), false if the base resumed already.
    pub(crate) fn hold_for_resume(&self) -> bool {
        let pause = &self.shared.pause;
        let mut now = pause.load(Ordering::Acquire);
        loop {
            let next = match now {
                PAUSE_NONE => PAUSE_HELD,
                PAUSE_EARLY => PAUSE_NONE,
                _ => return true, // held already (not reached: one pause at a time)
            };
            match pause.compare_exchange(now, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return next == PAUSE_HELD,
                Err(actual) => now = actual,
            }
        }
    }

    /// True if the base resumed a pause that the connection has not looked at yet.
    pub(crate) fn resumed_early(&self) -> bool {
        self.shared.pause.load(Ordering::Acquire) == PAUSE_EARLY
    }

    /// Forget any pause (the connection was torn down).
    pub(crate) fn reset_pause(&self) {
        self.shared.pause.store(PAUSE_NONE, Ordering::Release);
    }

    /// Record a switch at the current boundary (see `switch.rs`).
    fn request_switch(
        &self,
        to: Switch,
        go_ahead: Option<M>,
    ) -> Result<(), (UpgradeError<M>, Option<Switch>)> {
        if self.state() != ConnState::Connected {
            return Err((
                UpgradeError::new("the connection is not connected", go_ahead),
                Some(to),
            ));
        }
        // Sends staged in this batch came first: they belong before the boundary.
        self.hand_over_staged();
        {
            let s = &self.shared;
            let mut outbox = s.outbox.lock();
            if outbox.closed {
                return Err((
                    UpgradeError::new("the connection is closed", go_ahead),
                    Some(to),
                ));
            }
            if outbox.upgrade.is_some() || s.upgrading.load(Ordering::Acquire) {
                return Err((
                    UpgradeError::new("a switch is under way", go_ahead),
                    Some(to),
                ));
            }
            if let Some(msg) = go_ahead {
                if outbox.queued >= s.high {
                    return Err((
                        UpgradeError::new("the outbound queue is full", Some(msg)),
                        Some(to),
                    ));
                }
                outbox.queue.push_back(msg);
                outbox.queued += 1;
                s.queued.store(outbox.queued, Ordering::Relaxed);
            }
            let plain = outbox.queue.len();
            outbox.upgrade = Some(Box::new(PendingSwitch { to, plain }));
            s.upgrading.store(true, Ordering::Release);
        }
        self.poke(Poke::Upgrade);
        Ok(())
    }

    // ----- the connection tonic's side ------------------------------------------------------

    pub(crate) fn poke(&self, poke: Poke) {
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

    /// True while a requested TLS upgrade has not been made.
    #[inline]
    pub(crate) fn upgrading(&self) -> bool {
        self.shared.upgrading.load(Ordering::Relaxed)
    }

    /// The flag behind [`upgrading`](Conn::upgrading), to check once per message of a batch.
    #[inline]
    pub(crate) fn upgrade_flag(&self) -> &AtomicBool {
        &self.shared.upgrading
    }

    /// A message past an upgrade's boundary was held back from the base.
    #[cold]
    pub(crate) fn mark_past_boundary(&self) {
        self.shared.past_boundary.store(true, Ordering::Release);
    }

    /// The transport is TLS now (or plain again, after a loss).
    pub(crate) fn set_tls(&self, tls: bool) {
        self.shared.tls.store(tls, Ordering::Release);
    }

    /// The connection is lost: a requested switch that was not made is dropped (a new
    /// connection starts in plaintext, and its base upgrades it again if it wants; the base
    /// of a protocol switch hears that it failed, and `why`).
    pub(crate) fn cancel_upgrade(&self, why: &str) {
        let pending = self.shared.outbox.lock().upgrade.take();
        if let Some(pending) = pending
            && let Switch::Protocol(handoff) = pending.to
        {
            handoff.fail(why.to_string());
        }
        self.end_upgrade();
    }

    /// The upgrade was made (or failed): true if a message from past its boundary was seen.
    pub(crate) fn end_upgrade(&self) -> bool {
        self.shared.upgrading.store(false, Ordering::Release);
        self.shared.past_boundary.swap(false, Ordering::AcqRel)
    }

    /// `n` messages cut from `bytes` of input are about to be delivered to the base (one
    /// batch: an atomic operation for each count). True if the window is now full.
    pub(crate) fn delivering(&self, n: usize, bytes: usize) -> bool {
        let s = &self.shared;
        let count_full = s.unconsumed.fetch_add(n, Ordering::SeqCst) + n >= s.window;
        let bytes_full = bytes > 0
            && s.unconsumed_bytes.fetch_add(bytes, Ordering::SeqCst) + bytes >= s.window_bytes;
        count_full || bytes_full
    }

    /// True while the input bytes delivered and not consumed have reached their bound.
    pub(crate) fn bytes_window_full(&self) -> bool {
        self.shared.unconsumed_bytes.load(Ordering::SeqCst) >= self.shared.window_bytes
    }

    /// The inbound window: how many delivered messages may wait unconsumed.
    pub(crate) fn window(&self) -> usize {
        self.shared.window
    }

    /// True while the base has fewer unconsumed messages than the window, and they were cut
    /// from fewer bytes than its byte bound.
    pub(crate) fn window_open(&self) -> bool {
        self.shared.unconsumed.load(Ordering::SeqCst) < self.shared.window
            && !self.bytes_window_full()
    }

    /// Messages delivered to the base that it has not consumed yet (at most the inbound
    /// window). A read's messages are delivered as one batch and count as consumed when
    /// `on_message` has returned for all of them.
    pub fn unconsumed(&self) -> usize {
        self.shared.unconsumed.load(Ordering::SeqCst)
    }

    /// The base consumed `n` delivered messages cut from `bytes` of input (the rest of a
    /// batch it was handed).
    pub(crate) fn consumed(&self, n: usize, bytes: usize) {
        if n == 0 {
            return;
        }
        let s = &self.shared;
        let before = s.unconsumed.fetch_sub(n, Ordering::SeqCst);
        let now = before.saturating_sub(n);
        let (bytes_before, bytes_now) = if bytes > 0 {
            let b = s.unconsumed_bytes.fetch_sub(bytes, Ordering::SeqCst);
            (b, b.saturating_sub(bytes))
        } else {
            let b = s.unconsumed_bytes.load(Ordering::SeqCst);
            (b, b)
        };
        let was_full = before >= s.window || bytes_before >= s.window_bytes;
        if was_full && now < s.window && bytes_now < s.window_bytes {
            self.poke(Poke::Resume);
        }
        if now == 0 && s.notify_drained.load(Ordering::SeqCst) {
            self.poke(Poke::Check);
        }
        if now == 0 && s.upgrading.load(Ordering::Acquire) {
            // A requested upgrade waited for the base to see everything it was given.
            self.poke(Poke::Upgrade);
        }
    }

    pub(crate) fn notify_when_drained(&self) {
        self.shared.notify_drained.store(true, Ordering::SeqCst);
    }
}
