//! [`TcpConnection`]: the tonic that owns one socket on the selector catalyst.
//!
//! The data path is one straight line: readiness → `read` (inline, until `WouldBlock` or the
//! per-turn budget) → `codec.decode` → each whole message moved to the base as a sparkle.
//! Outbound: `Conn::send` → outbox → `flush` (encode, write until `WouldBlock`) → the rest
//! waits for writable.

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Interest, Token};
use tasktonic_core::{Ctx, Handle, Timer, TimerEvent, TimerId, Tonic};

use super::conn::Poke;
use super::{CloseReason, Conn, ConnState, Reconnect, TcpConfig, TcpEvents};
use crate::codec::Codec;
use crate::selector::{Ready, Selector};

mod buffers;
mod reading;
mod writing;

pub(crate) enum Role {
    Server,
    /// Boxed: a server's connections would otherwise each carry 88 unused bytes (N5).
    Client(Box<ClientRole>),
}

/// What a client connection knows that a server's does not.
pub(crate) struct ClientRole {
    pub(crate) addr: SocketAddr,
    pub(crate) reconnect: Option<Reconnect>,
    pub(crate) resend: bool,
}

/// The connection handler tonic: one per socket, on the selector catalyst. Its state machine
/// is [`ConnState`]. Created by [`TcpServer`](super::TcpServer) (one per accepted socket) and
/// [`TcpClient`](super::TcpClient); its base talks to it through [`Conn`].
pub struct TcpConnection<C: Codec, B: TcpEvents<C::Message>> {
    selector: Selector,
    codec: C,
    base: Handle<B>,
    conn: Conn<C::Message>,
    config: Arc<TcpConfig>,
    role: Role,
    stream: Option<TcpStream>,
    token: Option<Token>,
    inbuf: BytesMut,
    out: BytesMut,
    /// Encoded messages, with the cumulative byte offset where each ends.
    inflight: VecDeque<(C::Message, u64)>,
    /// The outbox's other half: swapped with it on every flush, so neither side reallocates.
    spare: VecDeque<C::Message>,
    /// How many messages the last decoded batch held.
    batch_hint: usize,
    /// The base runs on this connection's catalyst (the co-located layout): fixed for the
    /// connection's life, since neither moves.
    colocated: bool,
    /// Bytes written since connecting; `inflight` ends are counted on the same scale.
    written: u64,
    /// Stopped reading: the base's inbound window is full.
    window_full: bool,
    /// The peer shut down its side (EOF seen).
    peer_closed: bool,
    /// The selector reported the peer's close or a broken connection: read to the end.
    fin_signalled: bool,
    /// A graceful close is under way, with the reason to report.
    closing: Option<CloseReason>,
    /// Our side is shut down; waiting for the peer's EOF.
    shut_down: bool,
    /// The connect, retry or linger timer.
    timer: Option<TimerId>,
    /// While a busy connection keeps its buffers: the timer that frees them once it has
    /// been idle for a whole period (see `keep_buffers`).
    trim: Option<TimerId>,
    /// A busy read or flush kept the buffers since the trim timer last fired.
    busy_lately: bool,
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
        config: Arc<TcpConfig>,
        role: Role,
        stream: Option<TcpStream>,
    ) -> TcpConnection<C, B> {
        let colocated = base.tonic_ref().catalyst() == selector.catalyst();
        TcpConnection {
            colocated,
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
            spare: VecDeque::new(),
            batch_hint: 0,
            written: 0,
            window_full: false,
            peer_closed: false,
            fin_signalled: false,
            closing: None,
            shut_down: false,
            timer: None,
            trim: None,
            busy_lately: false,
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
        let conn = self.conn.clone();
        let token = self.selector.register(
            stream,
            Interest::READABLE | Interest::WRITABLE,
            move |ready| {
                // The readiness waits in the connection's shared state, so the sparkle
                // captures nothing (no allocation per event) and events that arrive before it
                // runs are handled together. It runs inline, inside the selector's poll,
                // when nothing else for this connection is queued (no queue round trip; N4).
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
        if let Role::Client(client) = &mut self.role {
            client.reconnect = None;
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
        // Readiness of the old socket that no sparkle has taken yet is not the next one's.
        self.conn.take_ready();
        self.inbuf = BytesMut::new();
        self.out = BytesMut::new();
        self.written = 0;
        self.window_full = false;
        self.peer_closed = false;
        self.fin_signalled = false;
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
            unsent.extend(self.conn.take_outbox(VecDeque::new()));
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
            // Edge-triggered: `connected` flushes and reads at once, so anything that arrived
            // before registration is not missed.
            match self.stream.as_ref().map(TcpStream::peer_addr) {
                Some(Ok(peer)) => self.connected(ctx, peer),
                // The peer is already gone: the read reports how.
                _ => self.ready(ctx, Ready::ALL),
            }
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
        if Some(timer.id) == self.trim {
            return self.trim_buffers(ctx);
        }
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
    config: Arc<TcpConfig>,
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
