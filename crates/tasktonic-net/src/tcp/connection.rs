//! [`TcpConnection`]: the tonic that owns one socket on the selector catalyst.
//!
//! The data path is one straight line: readiness → `read` (inline, until `WouldBlock` or the
//! per-turn budget) → `codec.decode` → each whole message moved to the base as a sparkle.
//! Outbound: `Conn::send` → outbox → `flush` (encode, write until `WouldBlock`) → the rest
//! waits for writable.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Token};
use tasktonic_core::{Ctx, Handle, Timer, TimerEvent, TimerId, Tonic};

use super::conn::Poke;
use super::{CloseReason, Conn, ConnState, OnMalformed, Reconnect, TcpConfig, TcpEvents};
use crate::codec::{Codec, CodecError};
use crate::selector::{Ready, Selector};

/// One `read` call reads at most this much (into the selector thread's scratch space).
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}
/// Encode at most this much before writing, to batch small messages into one `write`.
const WRITE_BATCH: usize = 256 * 1024;

pub(crate) enum Role {
    Server,
    Client {
        addr: SocketAddr,
        reconnect: Option<Reconnect>,
        resend: bool,
    },
}

/// The connection handler tonic: one per socket, on the selector catalyst. Its state machine
/// is [`ConnState`]. Created by [`TcpServer`](super::TcpServer) (one per accepted socket) and
/// [`TcpClient`](super::TcpClient); its base talks to it through [`Conn`].
pub struct TcpConnection<C: Codec, B: TcpEvents<C::Message>> {
    selector: Selector,
    codec: C,
    base: Handle<B>,
    conn: Conn<C::Message>,
    config: TcpConfig,
    role: Role,
    stream: Option<TcpStream>,
    token: Option<Token>,
    inbuf: BytesMut,
    out: BytesMut,
    /// Encoded messages, with the cumulative byte offset where each ends.
    inflight: VecDeque<(C::Message, u64)>,
    encoded: u64,
    written: u64,
    /// Stopped reading: the base's inbound window is full.
    window_full: bool,
    /// The peer shut down its side (EOF seen).
    peer_closed: bool,
    /// A graceful close is under way, with the reason to report.
    closing: Option<CloseReason>,
    /// Our side is shut down; waiting for the peer's EOF.
    shut_down: bool,
    /// The connect, retry or linger timer.
    timer: Option<TimerId>,
    attempts: u32,
    holding: bool,
}

impl<C: Codec, B: TcpEvents<C::Message>> std::fmt::Debug for TcpConnection<C, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConnection")
            .field("conn", &self.conn)
            .finish()
    }
}

impl<C: Codec, B: TcpEvents<C::Message>> TcpConnection<C, B> {
    pub(crate) fn new(
        selector: Selector,
        codec: C,
        base: Handle<B>,
        conn: Conn<C::Message>,
        config: TcpConfig,
        role: Role,
        stream: Option<TcpStream>,
    ) -> TcpConnection<C, B> {
        TcpConnection {
            selector,
            codec,
            base,
            conn,
            config,
            role,
            stream,
            token: None,
            inbuf: BytesMut::new(),
            out: BytesMut::new(),
            inflight: VecDeque::new(),
            encoded: 0,
            written: 0,
            window_full: false,
            peer_closed: false,
            closing: None,
            shut_down: false,
            timer: None,
            attempts: 0,
            holding: false,
        }
    }

    /// Send an event to the base. False if the base has completed.
    fn event(
        &self,
        name: &'static str,
        f: impl FnOnce(&mut B, &mut Ctx<B>, &Conn<C::Message>) + Send + 'static,
    ) -> bool {
        let conn = self.conn.clone();
        self.base
            .sparkle_named(name, move |b, ctx| f(b, ctx, &conn))
            .is_ok()
    }

    /// Change state: published on the `Conn` at once (sends and this sparkle's own checks see
    /// it), and the state machine's transition (and `on_status`) right after this sparkle.
    fn go(&mut self, ctx: &mut Ctx<Self>, state: ConnState) {
        self.conn.set_state(state);
        ctx.to_state(state);
    }

    fn set_timer(&mut self, ctx: &mut Ctx<Self>, name: &'static str, after: Duration) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_timer(t);
        }
        self.timer = Some(ctx.timer(Timer::once(after).named(name)));
        log::trace!(
            "{}: timer {name} in {after:?}: {:?}",
            self.conn.id(),
            self.timer
        );
    }

    fn clear_timer(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_timer(t);
        }
    }

    fn register(&mut self, ctx: &mut Ctx<Self>) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let me = ctx.handle();
        let token = self.selector.register(
            stream,
            Interest::READABLE | Interest::WRITABLE,
            move |ready| {
                let _ = me.notify_named("ready", move |c, ctx| c.ready(ctx, ready));
            },
        )?;
        self.token = Some(token);
        Ok(())
    }

    // ----- connecting ---------------------------------------------------------------------

    fn connect(&mut self, ctx: &mut Ctx<Self>) {
        let Role::Client { addr, .. } = self.role else {
            return;
        };
        log::debug!(
            "{}: connecting to {addr} (attempt {})",
            self.conn.id(),
            self.attempts + 1
        );
        self.go(ctx, ConnState::Connecting);
        match TcpStream::connect(addr) {
            Ok(stream) => {
                self.stream = Some(stream);
                if let Err(e) = self.register(ctx) {
                    self.lost(ctx, CloseReason::ConnectFailed(e));
                    return;
                }
                let timeout = self.config.connect_timeout;
                self.set_timer(ctx, "connect", timeout);
            }
            Err(e) => self.lost(ctx, CloseReason::ConnectFailed(e)),
        }
    }

    fn finish_connect(&mut self, ctx: &mut Ctx<Self>) {
        let Some(stream) = self.stream.as_ref() else {
            return;
        };
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => return self.lost(ctx, CloseReason::ConnectFailed(e)),
            Ok(None) => {}
        }
        let peer = stream.peer_addr();
        log::trace!("{}: connect finished: {peer:?}", self.conn.id());
        match peer {
            Ok(peer) => self.connected(ctx, peer),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {} // not yet: wait for the next event
            Err(e) => self.lost(ctx, CloseReason::ConnectFailed(e)),
        }
    }

    fn connected(&mut self, ctx: &mut Ctx<Self>, peer: SocketAddr) {
        self.clear_timer(ctx);
        self.attempts = 0;
        if let Some(stream) = self.stream.as_ref()
            && let Err(e) = stream.set_nodelay(self.config.nodelay)
        {
            log::debug!("{}: TCP_NODELAY: {e}", self.conn.id());
        }
        self.conn.set_peer(Some(peer));
        self.go(ctx, ConnState::Connected);
        self.event("on_connected", move |b, ctx, conn| {
            b.on_connected(ctx, conn, peer)
        });
        self.flush(ctx);
        self.read(ctx);
    }

    // ----- readiness ----------------------------------------------------------------------

    fn ready(&mut self, ctx: &mut Ctx<Self>, ready: Ready) {
        log::trace!(
            "{}: ready {ready:?} in {:?}",
            self.conn.id(),
            self.conn.state()
        );
        match self.conn.state() {
            ConnState::Connecting if ready.writable || ready.error => self.finish_connect(ctx),
            ConnState::Connected | ConnState::Closing => {
                if ready.writable {
                    self.flush(ctx);
                }
                if ready.readable || ready.error {
                    self.read(ctx);
                }
            }
            _ => {}
        }
    }

    /// Read until `WouldBlock`, the budget, or a full inbound window; decode and deliver.
    fn read(&mut self, ctx: &mut Ctx<Self>) {
        if self.stream.is_none() || self.peer_closed {
            return;
        }
        let discarding = self.closing.is_some();
        if !discarding && !self.decode(ctx) {
            return;
        }
        let mut budget = self.config.read_budget;
        loop {
            if !discarding && self.window_full {
                return;
            }
            if budget == 0 {
                // Others get their turn; this connection continues right after them.
                let _ = ctx.handle().notify_named("read", |c, ctx| c.read(ctx));
                return;
            }
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            // Read into the selector thread's scratch space and keep only what arrived: no
            // zero-filling per read, and a connection's buffer is exactly as big as its data.
            let inbuf = &mut self.inbuf;
            let result = SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let r = stream.read(&mut scratch[..]);
                if let Ok(n) = r {
                    inbuf.extend_from_slice(&scratch[..n]);
                }
                r
            });
            match result {
                Ok(0) => return self.eof(ctx),
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    if discarding {
                        self.inbuf.clear();
                    } else if !self.decode(ctx) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lost(ctx, CloseReason::Io(e)),
            }
        }
        if self.inbuf.is_empty() {
            // Idle connections hold no read buffer.
            self.inbuf = BytesMut::new();
        }
    }

    /// Decode and deliver whole messages while the window is open. False if the connection
    /// is going down because of what was decoded.
    fn decode(&mut self, ctx: &mut Ctx<Self>) -> bool {
        // Everything one read made whole goes to the base in one sparkle (in order; the window
        // still counts every message).
        let mut batch = Vec::new();
        while !self.window_full {
            match self.codec.decode(&mut self.inbuf) {
                Ok(Some(msg)) => {
                    self.window_full = self.conn.delivering();
                    batch.push(msg);
                }
                Ok(None) => break,
                Err(e) => {
                    // Messages before the bad frame arrive before its error event.
                    self.deliver(ctx, std::mem::take(&mut batch));
                    if !self.codec_error(ctx, e) {
                        return false;
                    }
                }
            }
        }
        self.deliver(ctx, batch);
        true
    }

    /// Move whole messages (already counted in the window) to the base, in one sparkle.
    fn deliver(&mut self, ctx: &mut Ctx<Self>, batch: Vec<C::Message>) {
        if batch.is_empty() {
            return;
        }
        let delivered = self.event("on_message", move |b, ctx, conn| {
            for msg in batch {
                b.on_message(ctx, conn, msg);
                conn.consumed();
            }
        });
        if !delivered {
            log::warn!("{}: its base has completed; aborting", self.conn.id());
            self.lost(ctx, CloseReason::Aborted);
        }
    }

    /// Report a codec error; true if the connection goes on (a skipped frame).
    fn codec_error(&mut self, ctx: &mut Ctx<Self>, e: CodecError) -> bool {
        let skip = e.is_skippable() && self.config.on_malformed == OnMalformed::Skip;
        log::warn!(
            "{} ({:?}): {e}{}",
            self.conn.id(),
            self.conn.peer(),
            if skip { "; frame skipped" } else { "" }
        );
        let report = CodecError::Malformed(e.to_string());
        self.event("on_codec_error", move |b, ctx, conn| {
            b.on_codec_error(ctx, conn, &report)
        });
        if skip {
            return true;
        }
        // The stream cannot be trusted any more: flush what we owe, then close.
        self.begin_close(ctx, CloseReason::Codec(e));
        false
    }

    fn eof(&mut self, ctx: &mut Ctx<Self>) {
        self.peer_closed = true;
        if self.closing.is_some() {
            // Our graceful close waited for this.
            let reason = self.closing.take().unwrap_or(CloseReason::Closed);
            return self.closed(ctx, reason);
        }
        let mut batch = Vec::new();
        loop {
            match self.codec.decode_eof(&mut self.inbuf) {
                Ok(Some(msg)) => {
                    self.conn.delivering();
                    batch.push(msg);
                }
                Ok(None) => break,
                Err(e) => {
                    self.deliver(ctx, batch);
                    let report = CodecError::Malformed(e.to_string());
                    self.event("on_codec_error", move |b, ctx, conn| {
                        b.on_codec_error(ctx, conn, &report)
                    });
                    return self.lost(ctx, CloseReason::Codec(e));
                }
            }
        }
        self.deliver(ctx, batch);
        // Half-close: answer what was delivered, then close.
        self.conn.notify_when_drained();
        self.check_peer_closed(ctx);
    }

    /// After the peer closed: once the base consumed everything and all replies are written,
    /// close.
    fn check_peer_closed(&mut self, ctx: &mut Ctx<Self>) {
        if self.peer_closed && self.closing.is_none() && self.conn.unconsumed() == 0 {
            self.begin_close(ctx, CloseReason::PeerClosed);
        }
    }

    // ----- writing ------------------------------------------------------------------------

    /// Encode what the outbox holds and write until `WouldBlock`.
    fn flush(&mut self, ctx: &mut Ctx<Self>) {
        if self.stream.is_none() || self.shut_down || self.conn.state() == ConnState::Connecting {
            return;
        }
        let mut pending = self.conn.take_outbox();
        loop {
            while self.out.len() < WRITE_BATCH {
                let Some(msg) = pending.pop_front() else {
                    break;
                };
                let before = self.out.len();
                match self.codec.encode(&msg, &mut self.out) {
                    Ok(()) => {
                        self.encoded += (self.out.len() - before) as u64;
                        self.inflight.push_back((msg, self.encoded));
                    }
                    Err(e) => {
                        self.out.truncate(before);
                        self.conn.dequeued(1);
                        self.event("on_unencodable", move |b, ctx, conn| {
                            b.on_unencodable(ctx, conn, msg, &e)
                        });
                    }
                }
            }
            if self.out.is_empty() {
                break;
            }
            match self.write_out() {
                Ok(true) => continue, // all written: encode more
                Ok(false) => break,   // WouldBlock: the writable event resumes
                Err(e) => {
                    self.conn.requeue_front(pending.into_iter());
                    return self.lost(ctx, CloseReason::Io(e));
                }
            }
        }
        if !pending.is_empty() {
            // Not written yet: back to the front of the outbox for the next writable event.
            self.conn.requeue_front(pending.into_iter());
        }
        if self.out.is_empty() && self.out.capacity() > WRITE_BATCH {
            self.out = BytesMut::new();
        }
        if self.closing.is_some() && self.out.is_empty() && self.conn.queued() == 0 {
            self.shut_down_write(ctx);
        }
    }

    /// Write `out` until empty (true) or `WouldBlock` (false); retire written messages.
    fn write_out(&mut self) -> io::Result<bool> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(false);
        };
        let mut done = 0;
        let result = loop {
            if self.out.is_empty() {
                break Ok(true);
            }
            match stream.write(&self.out) {
                Ok(0) => {
                    break Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "socket accepted no bytes",
                    ));
                }
                Ok(n) => {
                    self.out.advance(n);
                    self.written += n as u64;
                    while self
                        .inflight
                        .front()
                        .is_some_and(|(_, end)| *end <= self.written)
                    {
                        self.inflight.pop_front();
                        done += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if self.conn.dequeued(done) {
            self.event("on_writable", |b, ctx, conn| b.on_writable(ctx, conn));
        }
        result
    }

    // ----- closing ------------------------------------------------------------------------

    fn poke(&mut self, ctx: &mut Ctx<Self>, poke: Poke) {
        match poke {
            Poke::Drain => self.flush(ctx),
            Poke::Resume => {
                self.window_full = !self.conn.window_open();
                if !self.window_full {
                    self.read(ctx);
                }
            }
            Poke::Check => self.check_peer_closed(ctx),
            Poke::Close => {
                self.set_final();
                self.begin_close(ctx, CloseReason::Closed);
            }
            Poke::Abort => {
                self.set_final();
                self.lost(ctx, CloseReason::Aborted);
            }
        }
    }

    /// No reconnect after this.
    fn set_final(&mut self) {
        if let Role::Client { reconnect, .. } = &mut self.role {
            *reconnect = None;
        }
    }

    /// Graceful close: stop reading, flush everything accepted, shut down, wait for the peer.
    fn begin_close(&mut self, ctx: &mut Ctx<Self>, reason: CloseReason) {
        match self.conn.state() {
            ConnState::Connected => {}
            ConnState::Closing | ConnState::Closed => return,
            // Not connected: nothing to flush.
            _ => {
                self.set_final();
                return self.closed(ctx, reason);
            }
        }
        self.closing = Some(reason);
        self.go(ctx, ConnState::Closing);
        let linger = self.config.close_linger;
        self.set_timer(ctx, "linger", linger);
        self.flush(ctx);
    }

    fn shut_down_write(&mut self, ctx: &mut Ctx<Self>) {
        if self.shut_down {
            return;
        }
        self.shut_down = true;
        if let Some(stream) = self.stream.as_ref()
            && let Err(e) = stream.shutdown(Shutdown::Write)
        {
            log::debug!("{}: shutdown: {e}", self.conn.id());
        }
        if self.peer_closed {
            let reason = self.closing.take().unwrap_or(CloseReason::Closed);
            return self.closed(ctx, reason);
        }
        // Read (and discard) until the peer closes too, so unread data does not turn our
        // close into a reset that could destroy what we just wrote.
        self.read(ctx);
    }

    /// Drop the socket; return the messages that were accepted but not (fully) written.
    fn teardown(&mut self) -> Vec<C::Message> {
        if let (Some(mut stream), Some(token)) = (self.stream.take(), self.token.take()) {
            self.selector.deregister(&mut stream, token);
        }
        self.stream = None;
        self.inbuf = BytesMut::new();
        self.out = BytesMut::new();
        self.encoded = 0;
        self.written = 0;
        self.window_full = false;
        self.peer_closed = false;
        self.shut_down = false;
        self.closing = None;
        self.inflight.drain(..).map(|(m, _)| m).collect()
    }

    /// The connection is lost (or failed to connect): reconnect if the policy says so, else close.
    fn lost(&mut self, ctx: &mut Ctx<Self>, reason: CloseReason) {
        let Some((delay, resend)) = self.retry(ctx) else {
            return self.finally_closed(ctx, reason);
        };
        log::info!("{}: {reason}; reconnecting in {delay:?}", self.conn.id());
        let inflight = self.teardown();
        self.attempts += 1;
        self.conn.set_peer(None);
        let unsent = if resend {
            self.conn.requeue_front(inflight.into_iter());
            Vec::new()
        } else {
            let mut unsent = inflight;
            unsent.extend(self.conn.take_outbox());
            unsent
        };
        // Publish the state first: the base may send as soon as it hears of the loss.
        self.go(ctx, ConnState::WaitForRetry);
        self.hand_back(reason, unsent);
        self.set_timer(ctx, "retry", delay);
    }

    /// The reconnect delay and re-send flag, if this connection may reconnect now.
    fn retry(&self, ctx: &Ctx<Self>) -> Option<(Duration, bool)> {
        match &self.role {
            Role::Client {
                reconnect: Some(policy),
                resend,
                ..
            } if policy.allows(self.attempts)
                && ctx.lifecycle() == tasktonic_core::Lifecycle::Sparkling =>
            {
                Some((
                    policy.delay(self.attempts, self.conn.id().as_u64()),
                    *resend,
                ))
            }
            _ => None,
        }
    }

    /// The connection is down. Unless we closed it on purpose, a client with a reconnect policy
    /// reconnects (a server going away is a loss like any other).
    fn closed(&mut self, ctx: &mut Ctx<Self>, reason: CloseReason) {
        let on_purpose = matches!(reason, CloseReason::Closed | CloseReason::Aborted);
        if !on_purpose && self.retry(ctx).is_some() {
            return self.lost(ctx, reason);
        }
        self.finally_closed(ctx, reason);
    }

    /// Gone for good.
    fn finally_closed(&mut self, ctx: &mut Ctx<Self>, reason: CloseReason) {
        if self.conn.state() == ConnState::Closed {
            return;
        }
        self.clear_timer(ctx);
        let mut unsent = self.teardown();
        unsent.extend(self.conn.close_outbox());
        self.go(ctx, ConnState::Closed);
        self.hand_back(reason, unsent);
        ctx.finish();
        if self.holding {
            self.holding = false;
            ctx.allow_completion();
        }
    }

    fn hand_back(&mut self, reason: CloseReason, unsent: Vec<C::Message>) {
        if self.conn.dequeued(unsent.len()) {
            self.event("on_writable", |b, ctx, conn| b.on_writable(ctx, conn));
        }
        match &reason {
            CloseReason::Closed | CloseReason::PeerClosed => {
                log::debug!("{}: {reason}", self.conn.id())
            }
            _ => log::info!("{} ({:?}): {reason}", self.conn.id(), self.conn.peer()),
        }
        self.event("on_disconnected", move |b, ctx, conn| {
            b.on_disconnected(ctx, conn, &reason, unsent)
        });
    }
}

impl<C: Codec, B: TcpEvents<C::Message>> Tonic for TcpConnection<C, B> {
    type State = ConnState;

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if self.stream.is_some() {
            // Server side: the socket was accepted already.
            self.go(ctx, ConnState::Connected);
            if let Err(e) = self.register(ctx) {
                return self.closed(ctx, CloseReason::Io(e));
            }
            let peer = self.stream.as_ref().and_then(|s| s.peer_addr().ok());
            if let Some(stream) = self.stream.as_ref()
                && let Err(e) = stream.set_nodelay(self.config.nodelay)
            {
                log::debug!("{}: TCP_NODELAY: {e}", self.conn.id());
            }
            self.conn.set_peer(peer);
            if let Some(peer) = peer {
                self.event("on_connected", move |b, ctx, conn| {
                    b.on_connected(ctx, conn, peer)
                });
            }
            // Edge-triggered: anything that arrived before registration must be read now.
            self.ready(ctx, Ready::ALL);
        } else {
            self.connect(ctx);
        }
    }

    fn on_enter(&mut self, _ctx: &mut Ctx<Self>, state: &ConnState) {
        let state = *state;
        self.event("on_status", move |b, ctx, conn| {
            b.on_status(ctx, conn, state)
        });
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
        self.timer = None;
        match &*timer.name {
            "connect" => {
                let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                self.lost(ctx, CloseReason::ConnectFailed(e));
            }
            "retry" => self.connect(ctx),
            "linger" => {
                let reason = self.closing.take().unwrap_or(CloseReason::Closed);
                log::debug!(
                    "{}: the peer did not close within the linger time",
                    self.conn.id()
                );
                self.closed(ctx, reason);
            }
            _ => {}
        }
    }

    fn on_finishing(&mut self, ctx: &mut Ctx<Self>) {
        // Finishing (the base or the app is going away) closes gracefully: flush first.
        self.set_final();
        if self.conn.state() != ConnState::Closed {
            self.holding = true;
            ctx.delay_completion();
            match self.conn.state() {
                ConnState::Connected => self.begin_close(ctx, CloseReason::Closed),
                ConnState::Closing => {
                    // Finishing cancelled the timers of the sparkling life: re-arm the linger.
                    self.timer = None;
                    let linger = self.config.close_linger;
                    self.set_timer(ctx, "linger", linger);
                }
                _ => self.closed(ctx, CloseReason::Closed),
            }
        }
    }

    fn on_finished(&mut self, _ctx: &mut Ctx<Self>) {
        self.event("on_connection_finished", |b, ctx, conn| {
            b.on_connection_finished(ctx, conn)
        });
    }
}

impl<C: Codec, B: TcpEvents<C::Message>> TcpConnection<C, B> {
    /// The poke function a `Conn` uses to reach this tonic.
    pub(crate) fn poker(handle: Handle<Self>) -> super::conn::PokeFn {
        Box::new(move |poke| {
            handle
                .notify_named("poke", move |c, ctx| c.poke(ctx, poke))
                .is_ok()
        })
    }
}

/// Spawn a connection handler on the selector as an infusion of the calling tonic.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn_connection<T, C, B>(
    ctx: &mut Ctx<T>,
    selector: &Selector,
    codec: C,
    base: Handle<B>,
    config: TcpConfig,
    role: Role,
    stream: Option<TcpStream>,
    queue_while_down: bool,
) -> io::Result<(Conn<C::Message>, tasktonic_core::TonicRef)>
where
    T: Tonic,
    C: Codec,
    B: TcpEvents<C::Message>,
{
    let conn = Conn::new(&config, queue_while_down);
    let tonic = TcpConnection::new(
        selector.clone(),
        codec,
        base,
        conn.clone(),
        config,
        role,
        stream,
    );
    let handle = ctx
        .infusion(tonic)
        .catalyst(selector.catalyst())
        .spawn()
        .map_err(|e| io::Error::other(e.to_string()))?;
    conn.set_poke(TcpConnection::poker(handle.clone()));
    Ok((conn, handle.tonic_ref()))
}
