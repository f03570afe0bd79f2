//! [`PeerNode`] (the builder), the node tonic it starts, and [`Peers`] (the handle to send).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tasktonic_core::{Ctx, Handle, Tonic};

use super::peers::InBase;
use super::{MsgTypes, Packet, PeerEvents, PeerMessage, Peers, Value};
use crate::codec::{CodecError, LengthDelimited, MsgPack};
use crate::selector::Selector;
use crate::tcp::{
    CloseReason, Conn, ConnId, Reconnect, TcpClient, TcpConfig, TcpEvents, TcpServer,
};

type Handler<B> =
    Arc<dyn Fn(&mut B, &mut Ctx<B>, SocketAddr, Value) -> Result<(), String> + Send + Sync>;
type Filter = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;
pub(super) type Registry = Arc<Mutex<HashMap<SocketAddr, Conn<Packet>>>>;

/// The default largest frame from a peer (see [`PeerNode::max_frame`]).
const PEER_MAX_FRAME: usize = 1024 * 1024;

/// A type given by number or by name (resolved through the node's [`MsgTypes`] at start).
enum TypeRef {
    Id(u32),
    Name(String),
}

/// Configures and starts a peer node (see the [module docs](super)).
pub struct PeerNode<B: PeerEvents> {
    listen: Option<SocketAddr>,
    dial: Vec<SocketAddr>,
    config: TcpConfig,
    max_frame: usize,
    reconnect: Option<Reconnect>,
    filter: Option<Filter>,
    types: MsgTypes,
    handlers: Vec<(TypeRef, Handler<B>)>,
}

impl<B: PeerEvents> fmt::Debug for PeerNode<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerNode")
            .field("listen", &self.listen)
            .field("dial", &self.dial)
            .field("types", &self.types)
            .field("handlers", &self.handlers.len())
            .finish_non_exhaustive()
    }
}

impl<B: PeerEvents> Default for PeerNode<B> {
    fn default() -> Self {
        PeerNode::new()
    }
}

impl<B: PeerEvents> PeerNode<B> {
    /// A node that neither listens nor dials yet; peers silent for 10 s are dropped (as in
    /// socktools), frames up to 1 MiB ([`max_frame`](PeerNode::max_frame)).
    pub fn new() -> PeerNode<B> {
        PeerNode {
            listen: None,
            dial: Vec::new(),
            config: TcpConfig {
                message_timeout: Some(Duration::from_secs(10)),
                ..TcpConfig::default()
            },
            max_frame: PEER_MAX_FRAME,
            reconnect: None,
            filter: None,
            types: MsgTypes::new(),
            handlers: Vec::new(),
        }
    }

    /// Listen on `addr` (port 0: any free port, told in [`PeerEvents::on_listening`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Dial the peer at `addr` (may be given many times).
    pub fn dial(mut self, addr: SocketAddr) -> Self {
        self.dial.push(addr);
        self
    }

    /// Drop a peer that sent no complete message for this long (socktools' `timeout`;
    /// `None`: never). Default 10 s.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.message_timeout = timeout;
        self
    }

    /// Send each peer an empty frame when nothing else went to it for this long, so that a
    /// quiet peer of ours is not dropped by the other side's timeout. Default: none.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.config.heartbeat = Some(every);
        self
    }

    /// Redial dialled peers that are lost or refused, by `policy`. Default: no redial.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// The largest frame accepted from a peer. Default 1 MiB: a frame's data is decoded into
    /// a dynamic [`Value`](super::Value), which can take some thirty times the frame's
    /// bytes (a frame of 8 Mi `nil`s is 8 Mi values), so the bound is kept below the
    /// codecs' usual 8 MiB.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Options of every peer's connection (queues, liveness, …); the timeout set by
    /// [`timeout`](PeerNode::timeout) is kept unless `config` sets one.
    pub fn config(mut self, config: TcpConfig) -> Self {
        let timeout = self.config.message_timeout;
        self.config = config;
        self.config.message_timeout = self.config.message_timeout.or(timeout);
        self
    }

    /// Accept only peers for which `filter` returns true (socktools' `good_peer`): checked
    /// when a peer connects and for every message it sends (a peer it refuses is closed).
    pub fn filter(mut self, filter: impl Fn(SocketAddr) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// The names of message types, for [`on_named`](PeerNode::on_named),
    /// [`Peers::send_named`] and [`PeerMessage::name`].
    pub fn types(mut self, types: MsgTypes) -> Self {
        self.types = types;
        self
    }

    /// Handle messages of type `kind` with `handler`, their data decoded into a `T` (a
    /// message whose data is not a `T` goes to [`PeerEvents::on_peer_error`]).
    pub fn on<T, F>(mut self, kind: u32, handler: F) -> Self
    where
        T: DeserializeOwned + 'static,
        F: Fn(&mut B, &mut Ctx<B>, SocketAddr, T) + Send + Sync + 'static,
    {
        self.handlers.push((TypeRef::Id(kind), erase(handler)));
        self
    }

    /// [`on`](PeerNode::on), for the type called `name` in the node's [`MsgTypes`].
    pub fn on_named<T, F>(mut self, name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + 'static,
        F: Fn(&mut B, &mut Ctx<B>, SocketAddr, T) + Send + Sync + 'static,
    {
        self.handlers
            .push((TypeRef::Name(name.to_string()), erase(handler)));
        self
    }

    /// Start the node on the selector catalyst, as an infusion of the calling tonic (it ends
    /// with it, closing its peers gracefully); it listens and dials at once.
    ///
    /// # Errors
    ///
    /// A handler names a type the [`MsgTypes`] do not have, or the selector cannot be opened.
    /// (A failure to listen or to dial is reported in [`PeerEvents::on_peer_error`].)
    pub fn start(self, ctx: &mut Ctx<B>) -> io::Result<Peers> {
        let mut handlers = HashMap::new();
        for (kind, handler) in self.handlers {
            let id = match kind {
                TypeRef::Id(id) => id,
                TypeRef::Name(name) => self.types.id(&name).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("peer node: a handler for the unknown type {name:?}"),
                    )
                })?,
            };
            handlers.insert(id, handler);
        }
        let registry: Registry = Arc::default();
        let waiting = Arc::new(AtomicUsize::new(0));
        let types = Arc::new(self.types);
        let selector = Selector::default_for(ctx)?;
        let node = Node {
            base: ctx.handle(),
            listen: self.listen,
            dial: self.dial,
            config: self.config,
            codec: MsgPack::with_framing(LengthDelimited::new().max_frame(self.max_frame)),
            reconnect: self.reconnect,
            filter: self.filter,
            types: types.clone(),
            handlers,
            registry: registry.clone(),
            waiting: waiting.clone(),
            dialled: HashMap::new(),
            up: HashSet::new(),
        };
        ctx.infusion(node)
            .name("peer node")
            .on(selector.place())
            .spawn()
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Peers::new(registry, types, waiting))
    }
}

fn erase<B, T, F>(handler: F) -> Handler<B>
where
    B: PeerEvents,
    T: DeserializeOwned + 'static,
    F: Fn(&mut B, &mut Ctx<B>, SocketAddr, T) + Send + Sync + 'static,
{
    Arc::new(move |b, ctx, from, data| {
        let data: T = rmpv::ext::from_value(data).map_err(|e| {
            format!(
                "a message's data is not a {}: {e}",
                std::any::type_name::<T>()
            )
        })?;
        handler(b, ctx, from, data);
        Ok(())
    })
}

/// The node: the connections' base, on the selector catalyst.
struct Node<B: PeerEvents> {
    base: Handle<B>,
    listen: Option<SocketAddr>,
    dial: Vec<SocketAddr>,
    config: TcpConfig,
    codec: MsgPack<Packet>,
    reconnect: Option<Reconnect>,
    filter: Option<Filter>,
    types: Arc<MsgTypes>,
    handlers: HashMap<u32, Handler<B>>,
    registry: Registry,
    /// Messages handed to the base and not handled yet (see [`InBase`]).
    waiting: Arc<AtomicUsize>,
    /// Connections we dialled, by the address dialled (the peer's name for them).
    dialled: HashMap<ConnId, SocketAddr>,
    /// Connections whose peer was announced up: only they are announced down.
    up: HashSet<ConnId>,
}

impl<B: PeerEvents> Node<B> {
    fn tell(&self, what: &'static str, f: impl FnOnce(&mut B, &mut Ctx<B>) + Send + 'static) {
        if self.base.sparkle_named(what, f).is_err() {
            log::debug!("peer node: {what} for a base that has completed");
        }
    }

    fn error(&self, peer: Option<SocketAddr>, error: String) {
        self.tell("on_peer_error", move |b, ctx| {
            b.on_peer_error(ctx, peer, &error);
        });
    }

    fn key(&self, conn: &Conn<Packet>) -> Option<SocketAddr> {
        self.dialled
            .get(&conn.id())
            .copied()
            .or_else(|| conn.peer())
    }
}

impl<B: PeerEvents> Tonic for Node<B> {
    type State = ();

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(addr) = self.listen {
            let mut server = TcpServer::bind(addr, self.codec.clone()).config(self.config.clone());
            if let Some(filter) = self.filter.clone() {
                server = server.peer_filter(move |peer| filter(peer));
            }
            match server.start(ctx) {
                Ok(listening) => {
                    let local = listening.local_addr();
                    self.tell("on_listening", move |b, ctx| b.on_listening(ctx, local));
                }
                Err(e) => self.error(None, format!("cannot listen on {addr}: {e}")),
            }
        }
        for addr in std::mem::take(&mut self.dial) {
            let mut client = TcpClient::new(addr, self.codec.clone()).config(self.config.clone());
            if let Some(policy) = &self.reconnect {
                client = client.reconnect(policy.clone());
            }
            match client.start(ctx) {
                Ok(conn) => {
                    self.dialled.insert(conn.id(), addr);
                }
                Err(e) => self.error(Some(addr), format!("cannot dial {addr}: {e}")),
            }
        }
    }
}

impl<B: PeerEvents> TcpEvents<Packet> for Node<B> {
    fn on_connected(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<Packet>, peer: SocketAddr) {
        let dialled = self.dialled.contains_key(&conn.id());
        let key = self.key(conn).unwrap_or(peer);
        self.up.insert(conn.id());
        self.registry.lock().insert(key, conn.clone());
        self.tell("on_peer_up", move |b, ctx| b.on_peer_up(ctx, key, dialled));
    }

    fn on_message(
        &mut self,
        _ctx: &mut Ctx<Self>,
        conn: &Conn<Packet>,
        Packet(kind, data): Packet,
    ) {
        let Some(from) = self.key(conn) else { return };
        if self.filter.as_ref().is_some_and(|f| !f(from)) {
            conn.close();
            return self.error(Some(from), format!("{from} refused by the peer filter"));
        }
        // Counted in the connection's inbound window until the base has handled it: a base
        // that falls behind stops the reading as a slow `on_message` does.
        let in_base = InBase::new(conn, &self.waiting);
        match self.handlers.get(&kind) {
            Some(handler) => {
                let handler = handler.clone();
                self.tell("peer message", move |b, ctx| {
                    if let Err(e) = handler(b, ctx, from, data) {
                        b.on_peer_error(ctx, Some(from), &format!("type {kind}: {e}"));
                    }
                    drop(in_base);
                });
            }
            None => {
                let msg = PeerMessage {
                    from,
                    kind,
                    name: self.types.name(kind),
                    data,
                };
                self.tell("on_peer_message", move |b, ctx| {
                    b.on_peer_message(ctx, msg);
                    drop(in_base);
                });
            }
        }
    }

    fn on_codec_error(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<Packet>, error: &CodecError) {
        let peer = self.key(conn);
        self.error(
            peer,
            format!("a message that is not a (type, data) pair: {error}"),
        );
    }

    fn on_disconnected(
        &mut self,
        _ctx: &mut Ctx<Self>,
        conn: &Conn<Packet>,
        why: &CloseReason,
        unsent: Vec<Packet>,
    ) {
        let Some(peer) = self.key(conn) else {
            return;
        };
        if !self.up.remove(&conn.id()) && unsent.is_empty() {
            // A dial (or a redial) that never reached the peer: no peer went down, the
            // attempt failed.
            return self.error(Some(peer), format!("cannot reach {peer}: {why}"));
        }
        {
            let mut registry = self.registry.lock();
            if registry.get(&peer).is_some_and(|c| c.id() == conn.id()) {
                registry.remove(&peer);
            }
        }
        let why = why.to_string();
        self.tell("on_peer_down", move |b, ctx| {
            b.on_peer_down(ctx, peer, &why, unsent);
        });
    }

    fn on_connection_finished(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<Packet>) {
        self.dialled.remove(&conn.id());
    }
}
