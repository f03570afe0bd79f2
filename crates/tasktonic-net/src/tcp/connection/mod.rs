//! [`TcpConnection`]: the tonic that owns one socket on the selector catalyst.
//!
//! The data path is one straight line (`docs/networking.md`, "Layers"):
//! readiness → socket `read` (inline, until `WouldBlock` or the per-turn budget) → the
//! transport (plain, or TLS: records to plaintext) → the protocol cuts whole messages → the
//! messages of one read move to the base in one sparkle. Outbound: `Conn::send` → outbox →
//! `flush` (the protocol encodes, the transport writes, until `WouldBlock`) → the rest waits
//! for the writable event. Bytes the protocol or the transport send of their own (replies,
//! handshakes, alerts) go out at the next message boundary, also with an empty outbox.

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Interest, Token};
use tasktonic_core::extend::SparkleInline;
use tasktonic_core::{Ctx, Handle, Timer, TimerEvent, TimerId, Tonic};

use super::outbox::{Poke, PokeFn};
use super::switch::Parts;
use super::{CloseReason, Conn, ConnState, Reconnect, TcpConfig, TcpEvents};
use crate::protocol::{Protocol, ProtocolIo};
use crate::selector::{Ready, Selector};
use crate::transport::{Tls, Transport};

mod buffers;
mod liveness;
mod reading;
mod securing;
mod writing;

use self::liveness::Liveness;

pub(crate) enum Role<P> {
    Server,
    /// Boxed: a server's connections would otherwise each carry ~100 unused bytes.
    Client(Box<ClientRole<P>>),
}

/// What a client connection knows that a server's does not.
pub(crate) struct ClientRole<P> {
    pub(crate) addr: SocketAddr,
    pub(crate) reconnect: Option<Reconnect>,
    pub(crate) resend: bool,
    /// A fresh protocol for each connect.
    pub(crate) fresh: Box<dyn Fn() -> P + Send>,
}

/// The kinds of timer a connection arms, carried in the timer's marker: an event is
/// dispatched by its kind, never by its name (names are for traces and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum TimerKind {
    /// A client connect, or a TLS handshake, must complete by then.
    Connect = 1,
    /// A client waits this long before reconnecting.
    Retry = 2,
    /// A graceful close waits this long for the peer's end.
    Linger = 3,
    /// Frees a busy connection's buffers once it went quiet (`buffers.rs`).
    Trim = 4,
    /// Checks that the peer still sends (`liveness.rs`).
    Liveness = 5,
    /// Sends a heartbeat when nothing else was sent (`liveness.rs`).
    Heartbeat = 6,
}

impl TimerKind {
    fn name(self) -> &'static str {
        match self {
            TimerKind::Connect => "connect",
            TimerKind::Retry => "retry",
            TimerKind::Linger => "linger",
            TimerKind::Trim => "trim buffers",
            TimerKind::Liveness => "liveness",
            TimerKind::Heartbeat => "heartbeat",
        }
    }

    fn from_marker(marker: u64) -> Option<TimerKind> {
        [
            TimerKind::Connect,
            TimerKind::Retry,
            TimerKind::Linger,
            TimerKind::Trim,
            TimerKind::Liveness,
            TimerKind::Heartbeat,
        ]
        .into_iter()
        .find(|k| *k as u64 == marker)
    }

    /// A timer of this kind.
    pub(crate) fn once(self, after: Duration) -> Timer {
        Timer::once(after).named(self.name()).marker(self as u64)
    }

    /// A repeating timer of this kind.
    pub(crate) fn repeat(self, period: Duration) -> Timer {
        Timer::repeat(period).named(self.name()).marker(self as u64)
    }
}

/// The connection handler tonic: one per socket, on the selector catalyst. Its state machine
/// is [`ConnState`]. Created by [`TcpServer`](super::TcpServer) (one per accepted socket) and
/// [`TcpClient`](super::TcpClient); its base talks to it through [`Conn`].
pub struct TcpConnection<P: Protocol, B: TcpEvents<P::Message>> {
    selector: Selector,
    protocol: P,
    base: Handle<B>,
    conn: Conn<P::Message>,
    config: Arc<TcpConfig>,
    role: Role<P>,
    stream: Option<TcpStream>,
    token: Option<Token>,
    /// Plain, or TLS on the socket. Invariant: `Plain` while the socket is not connected.
    transport: Transport,
    /// TLS for every connect of this connection (`TcpServer::tls`, `TcpClient::tls`).
    tls: Option<Box<Tls>>,
    /// A TLS handshake is under way and not yet reported to the base.
    securing: bool,
    /// Connected, waiting for the protocol's handshake (`Protocol::ready`).
    awaiting_ready: bool,
    /// Plaintext read and not yet cut into messages.
    inbuf: BytesMut,
    /// Bytes to write before any further message: what a short write left over, then what
    /// the protocol queued of its own (at a message boundary).
    out: BytesMut,
    /// Encoded messages, with the cumulative byte offset where each ends.
    inflight: VecDeque<(P::Message, u64)>,
    /// The outbox's other half: swapped with it on every flush, so neither side reallocates.
    spare: VecDeque<P::Message>,
    /// How many messages the last decoded batch held.
    batch_hint: usize,
    /// The base runs on this connection's catalyst (the co-located layout): fixed for the
    /// connection's life, since neither moves.
    colocated: bool,
    /// Plaintext bytes written since connecting; `inflight` ends are counted on this scale.
    written: u64,
    /// Bytes read from the socket since connecting (liveness).
    read_total: u64,
    /// Messages delivered to the base since connecting (liveness).
    delivered_total: u64,
    /// Stopped reading: the base's inbound window is full.
    window_full: bool,
    /// The protocol paused after a message (`ProtocolIo::pause`): no decoding, no reading,
    /// until the base switches the protocol or resumes.
    held: bool,
    /// A co-located base answered a paused message at once and resumed, with more requests
    /// already read: its answer waits for theirs, to go out in one write. The connection
    /// holds the outbox's drain (`Conn::hold_drain`) meanwhile; `decode` pays at its end.
    flush_owed: bool,
    /// Held (with `held`) because the peer does not take its answers (`output_backlogged`):
    /// released by the flush that drains them.
    output_hold: bool,
    /// The stream ended while held: the end is taken once what came before it is decoded.
    eof_pending: bool,
    /// The peer shut down its side (EOF, or TLS `close_notify`).
    peer_closed: bool,
    /// The selector reported the peer's close or a broken connection: read to the end.
    fin_signalled: bool,
    /// A graceful close is under way, with the reason to report.
    closing: Option<CloseReason>,
    /// Our side is shut down; waiting for the peer's EOF.
    shut_down: bool,
    /// The connect, retry or linger timer (one at a time), and which it is.
    phase: Option<(TimerId, TimerKind)>,
    /// This connection was upgraded to TLS in place (STARTTLS): what it had not written
    /// when lost is handed back, never re-sent on the next (plaintext) connection.
    upgraded: bool,
    /// While a busy connection keeps its buffers: the timer that frees them once it has
    /// been idle for a whole period (see `keep_buffers`).
    trim: Option<TimerId>,
    /// A busy read or flush kept the buffers since the trim timer last fired.
    busy_lately: bool,
    /// Receive timeouts and heartbeats, when configured (boxed: most connections have none).
    liveness: Option<Box<Liveness>>,
    attempts: u32,
    holding: bool,
}

impl<P: Protocol, B: TcpEvents<P::Message>> std::fmt::Debug for TcpConnection<P, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConnection")
            .field("conn", &self.conn)
            .finish()
    }
}

impl<P: Protocol, B: TcpEvents<P::Message>> TcpConnection<P, B> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        selector: Selector,
        protocol: P,
        base: Handle<B>,
        conn: Conn<P::Message>,
        config: Arc<TcpConfig>,
        role: Role<P>,
        stream: Option<TcpStream>,
        tls: Option<Tls>,
    ) -> TcpConnection<P, B> {
        let colocated = base.tonic_ref().catalyst() == selector.catalyst();
        TcpConnection {
            colocated,
            selector,
            protocol,
            base,
            conn,
            config,
            role,
            stream,
            token: None,
            transport: Transport::Plain,
            tls: tls.map(Box::new),
            securing: false,
            awaiting_ready: false,
            inbuf: BytesMut::new(),
            out: BytesMut::new(),
            inflight: VecDeque::new(),
            spare: VecDeque::new(),
            batch_hint: 0,
            written: 0,
            read_total: 0,
            delivered_total: 0,
            window_full: false,
            held: false,
            flush_owed: false,
            output_hold: false,
            eof_pending: false,
            peer_closed: false,
            fin_signalled: false,
            closing: None,
            shut_down: false,
            phase: None,
            upgraded: false,
            trim: None,
            busy_lately: false,
            liveness: None,
            attempts: 0,
            holding: false,
        }
    }

    /// Send an event to the base. False if the base has completed.
    fn event(
        &self,
        name: &'static str,
        f: impl FnOnce(&mut B, &mut Ctx<B>, &Conn<P::Message>) + Send + 'static,
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

    /// Arm the phase timer (connect, retry or linger), replacing the one armed.
    fn set_phase_timer(&mut self, ctx: &mut Ctx<Self>, kind: TimerKind, after: Duration) {
        self.clear_phase_timer(ctx);
        self.phase = Some((ctx.timer(kind.once(after)), kind));
        log::trace!("{}: timer {kind:?} in {after:?}", self.conn.id());
    }

    fn clear_phase_timer(&mut self, ctx: &mut Ctx<Self>) {
        if let Some((t, _)) = self.phase.take() {
            ctx.cancel_timer(t);
        }
    }

    fn register(&mut self, ctx: &mut Ctx<Self>) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let me = ctx.handle();
        let conn = self.conn.clone();
        let token = self.selector.register(
            stream,
            Interest::READABLE | Interest::WRITABLE,
            move |ready| {
                // The readiness waits in the connection's shared state, so the sparkle
                // captures nothing (no allocation per event) and events that arrive before it
                // runs are handled together. It runs inline, inside the selector's poll,
                // when nothing else for this connection is queued (no queue round trip).
                if conn.post_ready(ready) {
                    let handle = |c: &mut Self, ctx: &mut Ctx<Self>| {
                        let ready = c.conn.take_ready();
                        c.ready(ctx, ready);
                    };
                    if me.sparkle_inline((), |c, ctx, ()| handle(c, ctx)).is_err() {
                        let _ = me.notify_named("ready", handle);
                    }
                }
            },
        )?;
        self.token = Some(token);
        Ok(())
    }

    // ----- connecting ---------------------------------------------------------------------

    fn connect(&mut self, ctx: &mut Ctx<Self>) {
        let Role::Client(client) = &self.role else {
            return;
        };
        let addr = client.addr;
        self.protocol = (client.fresh)();
        self.awaiting_ready = false;
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
                self.set_phase_timer(ctx, TimerKind::Connect, timeout);
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
            Ok(peer) => self.socket_connected(ctx, peer),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {} // not yet: wait for the next event
            Err(e) => self.lost(ctx, CloseReason::ConnectFailed(e)),
        }
    }

    /// The socket is connected: up at once, or after a TLS handshake.
    fn socket_connected(&mut self, ctx: &mut Ctx<Self>, peer: SocketAddr) {
        self.set_nodelay();
        self.conn.set_peer(Some(peer));
        if self.tls.is_some() {
            // The connect timer (armed by a client's connect, or by `start_tls` on a server)
            // bounds the handshake.
            let tls = self.tls.as_deref().cloned();
            return self.start_tls(ctx, tls);
        }
        self.up(ctx, peer);
        self.read(ctx);
    }

    fn set_nodelay(&self) {
        let Some(stream) = self.stream.as_ref() else {
            return;
        };
        if let Err(e) = stream.set_nodelay(self.config.nodelay) {
            log::debug!("{}: TCP_NODELAY: {e}", self.conn.id());
        }
        // What the socket says now, for `Conn::nodelay`.
        if let Ok(on) = stream.nodelay() {
            self.conn.set_nodelay_seen(on);
        }
    }

    /// Connected, and secured if TLS: messages flow. The caller reads (or is reading).
    fn up(&mut self, ctx: &mut Ctx<Self>, peer: SocketAddr) {
        if !self.protocol.handshaking() {
            self.clear_phase_timer(ctx);
            self.attempts = 0;
        } else {
            // The protocol's own handshake follows (`Protocol::ready`): the connect timer
            // bounds it too, and the attempt counts once it completes.
            self.awaiting_ready = true;
        }
        self.go(ctx, ConnState::Connected);
        self.event("on_connected", move |b, ctx, conn| {
            b.on_connected(ctx, conn, peer)
        });
        self.start_liveness(ctx);
        let mut io = ProtocolIo::new(&mut self.out);
        self.protocol.on_open(&mut io);
        if io.wants_close() {
            return self.begin_close(ctx, CloseReason::Closed);
        }
        self.flush(ctx);
    }

    // ----- closing ------------------------------------------------------------------------

    fn poke(&mut self, ctx: &mut Ctx<Self>, poke: Poke) {
        match poke {
            Poke::Drain | Poke::Upgrade => self.flush(ctx),
            Poke::Resume => {
                self.window_full = !self.conn.window_open();
                if !self.window_full {
                    self.read(ctx);
                }
            }
            Poke::Check => self.check_peer_closed(ctx),
            Poke::Unhold => {
                // Sent only by a `resume` that found this connection held.
                if self.held && self.output_backlogged() {
                    // The answer is not taken yet: the flush that drains it releases us.
                    self.output_hold = true;
                } else if std::mem::take(&mut self.held) {
                    self.read(ctx);
                }
            }
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
        if let Role::Client(client) = &mut self.role {
            client.reconnect = None;
        }
    }

    /// Graceful close: stop reading, flush everything accepted, shut down, wait for the peer.
    fn begin_close(&mut self, ctx: &mut Ctx<Self>, reason: CloseReason) {
        match self.conn.state() {
            // In a TLS upgrade's handshake nothing can be flushed: what waits is handed back.
            ConnState::Connected if !self.securing => {}
            ConnState::Closing | ConnState::Closed => return,
            // Not connected (or still in a TLS handshake): nothing to flush.
            _ => {
                self.set_final();
                return self.closed(ctx, reason);
            }
        }
        self.closing = Some(reason);
        self.go(ctx, ConnState::Closing);
        let linger = self.config.close_linger;
        self.set_phase_timer(ctx, TimerKind::Linger, linger);
        self.flush(ctx);
    }

    /// Everything accepted is written: end our side (TLS `close_notify` first), then wait
    /// for the peer's end.
    fn shut_down_write(&mut self, ctx: &mut Ctx<Self>) {
        if self.shut_down {
            return;
        }
        if !self.end_transport(ctx) {
            return; // close_notify waits for the writable event (or the connection was lost)
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
    fn teardown(&mut self, ctx: &mut Ctx<Self>) -> Vec<P::Message> {
        if let (Some(mut stream), Some(token)) = (self.stream.take(), self.token.take()) {
            self.selector.deregister(&mut stream, token);
        }
        // Readiness of the old socket that no sparkle has taken yet is not the next one's.
        self.conn.take_ready();
        self.stop_liveness(ctx);
        self.conn.cancel_upgrade("the connection was lost first");
        self.conn.set_tls(false);
        self.transport = Transport::Plain;
        self.securing = false;
        self.inbuf = BytesMut::new();
        self.out = BytesMut::new();
        self.written = 0;
        self.read_total = 0;
        self.delivered_total = 0;
        self.window_full = false;
        self.held = false;
        self.flush_owed = false;
        self.output_hold = false;
        self.eof_pending = false;
        self.conn.reset_pause();
        self.peer_closed = false;
        self.fin_signalled = false;
        self.shut_down = false;
        self.closing = None;
        // A message the protocol holds half-sent (its rest waiting for the peer) was encoded
        // last: it is not among the in-flight ones (those it released are, in order).
        let mut unsent: Vec<P::Message> = self.inflight.drain(..).map(|(m, _)| m).collect();
        unsent.extend(self.protocol.take_held());
        unsent
    }

    /// The connection is lost (or failed to connect): reconnect if the policy says so, else close.
    fn lost(&mut self, ctx: &mut Ctx<Self>, reason: CloseReason) {
        let Some((delay, resend)) = self.retry(ctx) else {
            return self.finally_closed(ctx, reason);
        };
        log::info!("{}: {reason}; reconnecting in {delay:?}", self.conn.id());
        // After a STARTTLS request (made or not), what waits was meant for TLS: the next
        // connection starts in plaintext, so it is handed back rather than re-sent in the
        // clear.
        let upgraded = std::mem::take(&mut self.upgraded) || self.conn.upgrading();
        let resend = resend && !upgraded;
        self.say_goodbye(&reason);
        let inflight = self.teardown(ctx);
        self.attempts += 1;
        let peer = self.conn.peer();
        self.conn.set_peer(None);
        let unsent = if resend {
            self.conn.requeue_front(inflight.into_iter());
            Vec::new()
        } else {
            let mut unsent = inflight;
            unsent.extend(self.conn.take_outbox(VecDeque::new()));
            unsent
        };
        // Publish the state first: the base may send as soon as it hears of the loss.
        self.go(ctx, ConnState::WaitForRetry);
        self.hand_back(reason, unsent, peer, true);
        self.set_phase_timer(ctx, TimerKind::Retry, delay);
    }

    /// The reconnect delay and re-send flag, if this connection may reconnect now.
    fn retry(&self, ctx: &Ctx<Self>) -> Option<(Duration, bool)> {
        match &self.role {
            Role::Client(client)
                if client
                    .reconnect
                    .as_ref()
                    .is_some_and(|policy| policy.allows(self.attempts))
                    && ctx.lifecycle() == tasktonic_core::Lifecycle::Sparkling =>
            {
                let policy = client.reconnect.as_ref()?;
                Some((
                    policy.delay(self.attempts, self.conn.id().as_u64()),
                    client.resend,
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
        self.clear_phase_timer(ctx);
        self.say_goodbye(&reason);
        let mut unsent = self.teardown(ctx);
        unsent.extend(self.conn.close_outbox());
        self.conn.end_upgrade();
        self.protocol.on_closed();
        let peer = self.conn.peer();
        self.go(ctx, ConnState::Closed);
        self.hand_back(reason, unsent, peer, false);
        ctx.finish();
        if self.holding {
            self.holding = false;
            ctx.allow_completion();
        }
    }

    /// Tell the base (with what was not written) and the watchers (without) that the
    /// connection went down.
    fn hand_back(
        &mut self,
        reason: CloseReason,
        unsent: Vec<P::Message>,
        peer: Option<SocketAddr>,
        reconnecting: bool,
    ) {
        if self.conn.dequeued(unsent.len()) {
            self.event("on_writable", |b, ctx, conn| b.on_writable(ctx, conn));
        }
        match &reason {
            CloseReason::Closed | CloseReason::PeerClosed => {
                log::debug!("{}: {reason}", self.conn.id())
            }
            _ => log::info!("{} ({:?}): {reason}", self.conn.id(), self.conn.peer()),
        }
        let reason = Arc::new(reason);
        let told = reason.clone();
        self.event("on_disconnected", move |b, ctx, conn| {
            b.on_disconnected(ctx, conn, &told, unsent)
        });
        self.conn.tell_watchers(&reason, peer, reconnecting);
    }
}

impl<P: Protocol, B: TcpEvents<P::Message>> Tonic for TcpConnection<P, B> {
    type State = ConnState;

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if self.stream.is_none() {
            return self.connect(ctx);
        }
        // Server side: the socket was accepted already. Plain TCP is up at once; TLS is
        // `connecting` until its handshake completes.
        let state = if self.tls.is_some() {
            ConnState::Connecting
        } else {
            ConnState::Connected
        };
        self.go(ctx, state);
        if let Err(e) = self.register(ctx) {
            return self.closed(ctx, CloseReason::Io(e));
        }
        // Edge-triggered: this reads at once, so anything that arrived before registration
        // is not missed.
        match self.stream.as_ref().map(TcpStream::peer_addr) {
            Some(Ok(peer)) => self.socket_connected(ctx, peer),
            // The peer is already gone: the read reports how.
            _ => self.ready(ctx, Ready::ALL),
        }
    }

    fn on_enter(&mut self, _ctx: &mut Ctx<Self>, state: &ConnState) {
        let state = *state;
        self.event("on_status", move |b, ctx, conn| {
            b.on_status(ctx, conn, state)
        });
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
        let Some(kind) = TimerKind::from_marker(timer.marker) else {
            return;
        };
        match kind {
            TimerKind::Trim => self.trim_buffers(ctx),
            TimerKind::Liveness => self.check_liveness(ctx),
            TimerKind::Heartbeat => self.heartbeat(ctx),
            TimerKind::Connect => {
                self.phase = None;
                let what = if self.securing {
                    "TLS handshake timed out"
                } else if self.awaiting_ready {
                    "the protocol's handshake timed out"
                } else {
                    "connect timed out"
                };
                let e = io::Error::new(io::ErrorKind::TimedOut, what);
                self.lost(ctx, CloseReason::ConnectFailed(e));
            }
            TimerKind::Retry => {
                self.phase = None;
                self.connect(ctx);
            }
            TimerKind::Linger => {
                self.phase = None;
                let reason = self.closing.take().unwrap_or(CloseReason::Closed);
                log::debug!(
                    "{}: the peer did not close within the linger time",
                    self.conn.id()
                );
                self.closed(ctx, reason);
            }
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
                    self.phase = None;
                    self.trim = None;
                    self.liveness = None;
                    let linger = self.config.close_linger;
                    self.set_phase_timer(ctx, TimerKind::Linger, linger);
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

impl<P: Protocol, B: TcpEvents<P::Message>> TcpConnection<P, B> {
    /// The poke function a `Conn` uses to reach this tonic.
    pub(crate) fn poker(handle: Handle<Self>) -> PokeFn {
        // One closure per kind, capturing nothing: a poke allocates nothing (one per exchange).
        Box::new(move |poke| match poke {
            Poke::Drain => handle
                .notify_named("poke", |c, ctx| c.poke(ctx, Poke::Drain))
                .is_ok(),
            Poke::Resume => handle
                .notify_named("poke", |c, ctx| c.poke(ctx, Poke::Resume))
                .is_ok(),
            Poke::Check => handle
                .notify_named("poke", |c, ctx| c.poke(ctx, Poke::Check))
                .is_ok(),
            Poke::Close => handle
                .notify_named("poke", |c, ctx| c.poke(ctx, Poke::Close))
                .is_ok(),
            Poke::Abort => handle
                .notify_named("poke", |c, ctx| c.poke(ctx, Poke::Abort))
                .is_ok(),
            Poke::Upgrade => handle
                .notify_named("poke", |c, ctx| c.poke(ctx, Poke::Upgrade))
                .is_ok(),
            Poke::Unhold => handle
                .notify_named("poke", |c, ctx| c.poke(ctx, Poke::Unhold))
                .is_ok(),
        })
    }
}

/// How a connection is set up: its protocol, base, limits, role, socket and TLS.
pub(crate) struct Spec<P, B> {
    pub(crate) protocol: P,
    pub(crate) base: Handle<B>,
    pub(crate) config: Arc<TcpConfig>,
    pub(crate) role: Role<P>,
    pub(crate) stream: Option<TcpStream>,
    pub(crate) queue_while_down: bool,
    pub(crate) tls: Option<Tls>,
}

/// A connection switched to another protocol (`Conn::switch_protocol`): its new base `ctx`
/// adopts it as an infusion on the selector, with the socket, transport and unread bytes.
pub(crate) fn adopt_connection<P, B>(
    ctx: &mut Ctx<B>,
    parts: Parts,
    protocol: P,
    base: Handle<B>,
    conn: Conn<P::Message>,
) -> io::Result<()>
where
    P: Protocol,
    B: TcpEvents<P::Message>,
{
    let Parts {
        selector,
        stream,
        transport,
        inbuf,
        config,
        peer,
        watchers: _, // adopted by the new `Conn` already
    } = parts;
    conn.set_peer(Some(peer));
    conn.set_tls(transport.is_tls());
    let mut tonic = TcpConnection::new(
        selector.clone(),
        protocol,
        base,
        conn.clone(),
        config,
        Role::Server,
        Some(stream),
        None,
    );
    tonic.transport = transport;
    tonic.inbuf = inbuf;
    let handle = ctx
        .infusion(tonic)
        .on(selector.place())
        .spawn()
        .map_err(|e| io::Error::other(e.to_string()))?;
    conn.set_poke(TcpConnection::poker(handle));
    Ok(())
}

/// Spawn a connection handler on the selector as an infusion of the calling tonic.
pub(crate) fn spawn_connection<T, P, B>(
    ctx: &mut Ctx<T>,
    selector: &Selector,
    spec: Spec<P, B>,
) -> io::Result<(Conn<P::Message>, tasktonic_core::TonicRef)>
where
    T: Tonic,
    P: Protocol,
    B: TcpEvents<P::Message>,
{
    // Built with its own handle: the `Conn` that the base sends through pokes it from the
    // start.
    let mut made = None;
    let handle = ctx
        .infusion_with(|me: &Handle<TcpConnection<P, B>>| {
            let poke = TcpConnection::poker(me.clone());
            let conn = Conn::new(&spec.config, spec.queue_while_down, Some(poke));
            made = Some(conn.clone());
            TcpConnection::new(
                selector.clone(),
                spec.protocol,
                spec.base,
                conn,
                spec.config,
                spec.role,
                spec.stream,
                spec.tls,
            )
        })
        .on(selector.place())
        .spawn()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let conn = made.ok_or_else(|| io::Error::other("the connection was not built"))?;
    Ok((conn, handle.tonic_ref()))
}
