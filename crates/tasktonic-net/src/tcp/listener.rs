//! [`TcpServer`]: bind, accept (with `max_clients` and a peer filter), one connection handler
//! per accepted socket.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpListener as MioListener, TcpStream};
use mio::{Interest, Token};
use socket2::{Domain, Socket, Type};
use tasktonic_core::{Ctx, Failure, FailureAction, Timer, TimerEvent, Tonic, TonicId, TonicRef};

use super::connection::{Role, Spec, spawn_connection};
use super::{TcpConfig, TcpEvents};
use crate::protocol::Protocol;
use crate::selector::{DEFAULT_SELECTOR, Selector};
#[cfg(feature = "tls")]
use crate::transport::{Tls, TlsAcceptor};

type PeerFilter = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;
/// Spawns the handler (and, per connection, a protocol tonic) for one accepted socket.
type Accept = Box<dyn FnMut(&mut Ctx<Listener>, TcpStream) -> Accepted + Send>;

/// An accepted connection's handler and (`start_each`) its protocol tonic; or why there is
/// none, with a protocol tonic already spawned for it that must go (and not count as one).
type Accepted = Result<(TonicRef, Option<TonicRef>), (io::Error, Option<TonicRef>)>;

/// A TCP server: binds at once (so the address, port 0 included, is known and errors are
/// immediate), then accepts on the selector catalyst.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use tasktonic_core::{App, Ctx, Tonic};
/// use tasktonic_net::codec::LengthDelimited;
/// use tasktonic_net::tcp::{Conn, TcpEvents, TcpServer};
///
/// struct Echo;
/// impl Tonic for Echo {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let addr = "127.0.0.1:0".parse().expect("an address");
///         let listening = TcpServer::bind(addr, LengthDelimited::new())
///             .max_clients(100)
///             .start(ctx)
///             .expect("bound");
///         println!("listening on {}", listening.local_addr());
///         ctx.finish(); // closes the listener (and any connection, gracefully)
///     }
/// }
/// impl TcpEvents<Bytes> for Echo {
///     fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
///         conn.send(msg).ok();
///     }
/// }
/// App::new("doc").tonic(Echo).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TcpServer<C> {
    addr: SocketAddr,
    codec: C,
    config: TcpConfig,
    backlog: i32,
    max_clients: Option<usize>,
    filter: Option<PeerFilter>,
    close_after_last: bool,
    selector: String,
    /// How many selectors its connections are spread over (1: all on `selector`).
    pool: usize,
    tls: Option<crate::transport::Tls>,
}

impl<C> fmt::Debug for TcpServer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServer")
            .field("addr", &self.addr)
            .field("max_clients", &self.max_clients)
            .field("selector", &self.selector)
            .finish()
    }
}

impl<C: Protocol + Clone> TcpServer<C> {
    /// A server for `addr` (port 0 picks a free port) speaking `codec` (any [`Protocol`];
    /// every codec is one).
    pub fn bind(addr: SocketAddr, codec: C) -> TcpServer<C> {
        TcpServer {
            addr,
            codec,
            config: TcpConfig::default(),
            backlog: 1024,
            max_clients: None,
            filter: None,
            close_after_last: false,
            selector: DEFAULT_SELECTOR.to_string(),
            pool: 1,
            tls: None,
        }
    }

    /// Speak TLS on every connection, with `acceptor`'s certificate. A connection is up
    /// (`on_connected`) once its handshake completes; a client that does not complete it
    /// within the connect timeout is dropped.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: &TlsAcceptor) -> Self {
        self.tls = Some(Tls::server(acceptor));
        self
    }

    /// Limits and options of every connection.
    pub fn config(mut self, config: TcpConfig) -> Self {
        self.config = config;
        self
    }

    /// The listen backlog (default 1024).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// At most `n` live connections: accepting pauses at the limit (new peers wait in the
    /// backlog) and resumes when a connection ends.
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = Some(n.max(1));
        self
    }

    /// Accept only peers for which `filter` returns true (socktools' `good_peer`); others are
    /// closed at once.
    pub fn peer_filter(
        mut self,
        filter: impl Fn(SocketAddr) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Stop listening once the last connection has closed (after at least one).
    pub fn close_after_last(mut self, yes: bool) -> Self {
        self.close_after_last = yes;
        self
    }

    /// Run on the selector catalyst called `name` (default `"selector"`).
    pub fn selector(mut self, name: impl Into<String>) -> Self {
        self.selector = name.into();
        self
    }

    /// Spread its connections over a pool of `n` selectors — `n` threads polling sockets
    /// ([`Selector::pool`]; 0: one per core) — in turn, as they are accepted. A connection
    /// stays on its selector for life; the listener runs on the first. With
    /// [`start_each`](TcpServer::start_each), each connection's protocol tonic runs on its
    /// connection's selector, so a message never changes threads.
    pub fn selectors(mut self, n: usize) -> Self {
        self.pool = n;
        self
    }

    fn listen(&self) -> io::Result<std::net::TcpListener> {
        let socket = Socket::new(
            Domain::for_address(self.addr),
            Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.bind(&self.addr.into())?;
        socket.listen(self.backlog)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    }

    /// Start serving; every connection reports to the calling tonic `B` (a chat server's hub,
    /// an echo server). The listener is an infusion of the caller: finishing the caller closes
    /// the listener and, gracefully, every connection.
    ///
    /// # Errors
    ///
    /// Binding or listening failed, or the selector could not be opened.
    pub fn start<B: TcpEvents<C::Message>>(self, ctx: &mut Ctx<B>) -> io::Result<Listening> {
        let base = ctx.handle();
        let codec = self.codec.clone();
        // One copy shared by every connection of this server.
        let config = std::sync::Arc::new(self.config.clone());
        let mut pool = Turns(Selector::pool_named(ctx, &self.selector, self.pool)?, 0);
        let selectors = pool.0.clone();
        let tls = self.tls.clone();
        let accept: Accept = Box::new(move |ctx, stream| {
            let spec = Spec {
                protocol: codec.clone(),
                base: base.clone(),
                config: config.clone(),
                role: Role::Server,
                stream: Some(stream),
                queue_while_down: false,
                tls: tls.clone(),
            };
            let (_, tonic) = spawn_connection(ctx, pool.next(), spec).map_err(|e| (e, None))?;
            Ok((tonic, None))
        });
        self.launch(ctx, selectors, accept)
    }

    /// Start serving with one protocol tonic per connection (Kamaelia's
    /// `SimpleServer(protocol=…)`): `factory(peer)` builds it; it runs on the selector catalyst,
    /// receives that connection's events, and is finished when its connection ends.
    ///
    /// # Errors
    ///
    /// As [`start`](TcpServer::start).
    pub fn start_each<T, P, F>(self, ctx: &mut Ctx<T>, mut factory: F) -> io::Result<Listening>
    where
        T: Tonic,
        P: TcpEvents<C::Message>,
        F: FnMut(SocketAddr) -> P + Send + 'static,
    {
        let codec = self.codec.clone();
        // One copy shared by every connection of this server.
        let config = std::sync::Arc::new(self.config.clone());
        let mut pool = Turns(Selector::pool_named(ctx, &self.selector, self.pool)?, 0);
        let selectors = pool.0.clone();
        let tls = self.tls.clone();
        let accept: Accept = Box::new(move |ctx, stream| {
            let peer = stream.peer_addr().map_err(|e| (e, None))?;
            let sel = pool.next();
            // Beside its connection, on the same selector.
            let protocol = ctx
                .infusion(factory(peer))
                .on(sel.place())
                .spawn()
                .map_err(|e| (io::Error::other(e.to_string()), None))?;
            let spec = Spec {
                protocol: codec.clone(),
                base: protocol.clone(),
                config: config.clone(),
                role: Role::Server,
                stream: Some(stream),
                queue_while_down: false,
                tls: tls.clone(),
            };
            match spawn_connection(ctx, sel, spec) {
                Ok((_, tonic)) => Ok((tonic, Some(protocol.tonic_ref()))),
                Err(e) => Err((e, Some(protocol.tonic_ref()))),
            }
        });
        self.launch(ctx, selectors, accept)
    }

    /// Bind, and start the listener on the first of `selectors` (the rest: a pool its
    /// connections are spread over).
    fn launch<T: Tonic>(
        self,
        ctx: &mut Ctx<T>,
        mut selectors: Vec<Selector>,
        accept: Accept,
    ) -> io::Result<Listening> {
        let pool_rest = selectors.split_off(1);
        let selector = selectors.remove(0);
        let std_listener = self.listen()?;
        let addr = std_listener.local_addr()?;
        let listener = Listener {
            socket: Some(MioListener::from_std(std_listener)),
            token: None,
            selector: selector.clone(),
            accept,
            max_clients: self.max_clients,
            filter: self.filter,
            close_after_last: self.close_after_last,
            live: 0,
            protocol_of: HashMap::new(),
            conn_of: HashMap::new(),
            strays: HashSet::new(),
            pool_rest,
            anchors: HashSet::new(),
            served: 0,
            addr,
        };
        let handle = ctx
            .infusion(listener)
            .on(selector.place())
            .spawn()
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Listening {
            addr,
            listener: handle.tonic_ref(),
        })
    }
}

/// A running server: its bound address, and a way to stop it.
#[derive(Debug, Clone)]
pub struct Listening {
    addr: SocketAddr,
    listener: TonicRef,
}

impl Listening {
    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting and close every connection gracefully.
    pub fn close(&self) {
        let _ = self.listener.finish(); // nothing to do if it has completed already
    }

    /// The listener tonic.
    pub fn tonic(&self) -> &TonicRef {
        &self.listener
    }
}

/// A server's selectors, taken in turn by the connections it accepts.
struct Turns(Vec<Selector>, usize);

impl Turns {
    fn next(&mut self) -> &Selector {
        let at = self.1 % self.0.len();
        self.1 = self.1.wrapping_add(1);
        &self.0[at]
    }
}

/// Keeps a pool selector's thread up while its listener lives (finished with it).
struct Anchor;

impl Tonic for Anchor {
    type State = ();
}

/// The listener tonic, on the selector catalyst.
pub(crate) struct Listener {
    socket: Option<MioListener>,
    token: Option<Token>,
    selector: Selector,
    accept: Accept,
    max_clients: Option<usize>,
    filter: Option<PeerFilter>,
    close_after_last: bool,
    /// Live connection handlers (a count: a plain connection costs no map entry).
    live: usize,
    /// Connection handler → its per-connection protocol tonic (`start_each` only).
    protocol_of: HashMap<TonicId, TonicRef>,
    /// Protocol tonic → the connection it serves; kept until the protocol tonic is gone, so
    /// its end is never taken for a connection's.
    conn_of: HashMap<TonicId, TonicRef>,
    /// Protocol tonics whose connection could not be started: finished, not connections.
    strays: HashSet<TonicId>,
    /// The pool's other selectors, each kept up by an anchor while the listener lives (a
    /// selector whose last connection ends would otherwise end its thread, and the next
    /// connection placed there would pay for a new one).
    pool_rest: Vec<Selector>,
    anchors: HashSet<TonicId>,
    served: u64,
    addr: SocketAddr,
}

impl Listener {
    fn accept_all(&mut self, ctx: &mut Ctx<Self>) {
        loop {
            if self.max_clients.is_some_and(|max| self.live >= max) {
                log::debug!("listener {}: at max_clients, accepting paused", self.addr);
                return;
            }
            let Some(socket) = self.socket.as_ref() else {
                return;
            };
            match socket.accept() {
                Ok((stream, peer)) => {
                    if self.filter.as_ref().is_some_and(|f| !f(peer)) {
                        log::info!("listener {}: peer {peer} refused by the filter", self.addr);
                        drop(stream);
                        continue;
                    }
                    match (self.accept)(ctx, stream) {
                        Ok((conn, protocol)) => {
                            self.served += 1;
                            self.live += 1;
                            if let Some(p) = protocol {
                                self.conn_of.insert(p.id(), conn.clone());
                                self.protocol_of.insert(conn.id(), p);
                            }
                        }
                        Err((e, stray)) => {
                            log::warn!(
                                "listener {}: cannot start a handler for {peer}: {e}",
                                self.addr
                            );
                            if let Some(p) = stray {
                                self.strays.insert(p.id());
                                let _ = p.finish();
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) and the like: back off instead of spinning.
                    log::warn!(
                        "listener {}: accept failed: {e}; retrying in 100 ms",
                        self.addr
                    );
                    ctx.timer(Timer::once(Duration::from_millis(100)).named("accept"));
                    return;
                }
            }
        }
    }
}

impl Listener {
    /// An infusion completed or failed: a protocol tonic takes its connection along; a
    /// connection handler takes its protocol tonic along and frees a place.
    fn gone(&mut self, ctx: &mut Ctx<Self>, id: TonicId) {
        if self.strays.remove(&id) || self.anchors.remove(&id) {
            return; // not a connection
        }
        if let Some(conn) = self.conn_of.remove(&id) {
            let _ = conn.finish(); // nothing if it has completed already
            return;
        }
        self.live = self.live.saturating_sub(1);
        if let Some(protocol) = self.protocol_of.remove(&id) {
            let _ = protocol.finish();
        }
        if self.close_after_last && self.live == 0 && self.served > 0 {
            ctx.finish();
            return;
        }
        // Below max_clients again: accept what waited in the backlog.
        self.accept_all(ctx);
    }
}

impl Tonic for Listener {
    type State = ();

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        for selector in std::mem::take(&mut self.pool_rest) {
            match ctx.infusion(Anchor).on(selector.place()).spawn() {
                Ok(anchor) => {
                    self.anchors.insert(anchor.id());
                }
                Err(e) => log::warn!("listener {}: {}: {e}", self.addr, selector.catalyst()),
            }
        }
        let me = ctx.handle();
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        match self
            .selector
            .register(socket, Interest::READABLE, move |_| {
                let _ = me.notify_named("accept", |l, ctx| l.accept_all(ctx));
            }) {
            Ok(token) => self.token = Some(token),
            Err(e) => {
                log::error!("listener {}: cannot register: {e}", self.addr);
                return ctx.finish();
            }
        }
        self.accept_all(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _timer: &TimerEvent) {
        self.accept_all(ctx);
    }

    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, infusion: &TonicRef) {
        self.gone(ctx, infusion.id());
    }

    fn on_infusion_failed(&mut self, ctx: &mut Ctx<Self>, failure: &Failure) -> FailureAction {
        // A per-connection protocol tonic (or a handler) panicked: close its connection; the
        // rest go on. (The panic itself was logged with the tonic's name.)
        self.gone(ctx, failure.tonic);
        FailureAction::Handled
    }

    fn on_finishing(&mut self, _ctx: &mut Ctx<Self>) {
        // Stop accepting at once; the connections (infusions) close gracefully.
        if let (Some(mut socket), Some(token)) = (self.socket.take(), self.token.take()) {
            self.selector.deregister(&mut socket, token);
        }
    }
}
