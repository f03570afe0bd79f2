//! The link tonic on the selector: keeps one connection to the cluster alive (dialling the
//! servers in turn with back-off, `CONNECT`, re-subscribing, `PING` liveness, TLS when the
//! server asks), routes messages to subscriptions and replies to pending requests, and
//! holds publishes that were accepted but not written when a connection dropped.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use tasktonic_core::{Ctx, Timer, TimerEvent, TimerId, Tonic};

use super::client::{Auth, NatsClient, Server, ServerUrl};
use super::handle::{Flushed, Nats, Replier, Shared, random};
use super::wire::{NatsMsg, NatsProtocol, NatsWire, Op, ServerInfo};
use super::{NatsStatus, RequestError};
use crate::selector::Selector;
use crate::tcp::{CloseReason, Conn, TcpClient, TcpEvents};
#[cfg(feature = "tls")]
use crate::transport::{Tls, TlsConnector};

/// The subscription id of a connection's inbox (replies to its requests).
pub(super) const INBOX_SID: u64 = 1;

/// Spawn the link for `cfg` as an infusion of the calling tonic, on the selector catalyst.
pub(super) fn start<T: Tonic>(cfg: NatsClient, ctx: &mut Ctx<T>) -> io::Result<Nats> {
    let selector = match &cfg.selector {
        Some(name) => Selector::open(ctx, name)?,
        None => Selector::default_for(ctx)?,
    };
    let shared = Arc::new(Shared {
        conn: Mutex::new(None),
        status: AtomicU8::new(NatsStatus::Connecting as u8),
        next_sid: AtomicU64::new(INBOX_SID + 1),
        next_token: AtomicU64::new(1),
        max_payload: AtomicUsize::new(1024 * 1024),
        inbox: format!("_INBOX.{:016x}.", random()),
        requests: Mutex::new(HashMap::new()),
        sub_capacity: cfg.sub_capacity,
        sub_bytes: cfg.sub_bytes,
        link: Mutex::new(None),
    });
    let cfg_first_server = cfg.servers[0].clone();
    let link = Link {
        cfg: Box::new(cfg),
        shared: shared.clone(),
        server_list: Vec::new(),
        next_server: 0,
        attempt: 0,
        conn: None,
        phase: Phase::Down,
        subs: HashMap::new(),
        timers: HashMap::new(),
        deferred: Vec::new(),
        held: Vec::new(),
        pongs: VecDeque::new(),
        pings_out: 0,
        ping_timer: None,
        watchers: Vec::new(),
        server: cfg_first_server,
    };
    let handle = ctx
        .infusion(link)
        .on(selector.place())
        .spawn()
        .map_err(|e| io::Error::other(e.to_string()))?;
    *shared.link.lock() = Some(handle);
    Ok(Nats { shared })
}

pub(super) type Watcher = Box<dyn FnMut(NatsStatus) -> bool + Send>;

pub(super) struct Route {
    pub(super) subject: String,
    pub(super) queue: Option<String>,
    pub(super) deliver: Box<dyn FnMut(NatsMsg) -> bool + Send>,
}

pub(super) struct Pending {
    /// Armed by the link once the request left.
    pub(super) timer: Option<TimerId>,
    pub(super) reply: Replier,
}

/// What a `PONG` answers.
pub(super) enum PongFor {
    /// The `PING` after `CONNECT`: the server took the connect and the subscriptions.
    Handshake,
    Keepalive,
    Flush(Flushed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Down,
    /// TCP (and TLS) up or coming up, waiting for `INFO`.
    Connecting,
    /// `CONNECT` sent, waiting for the `PONG` to the `PING` behind it.
    Handshake,
    Ready,
}

/// The link tonic: owns the connection, the subscriptions and the pending requests.
pub(super) struct Link {
    cfg: Box<NatsClient>,
    shared: Arc<Shared>,
    /// Servers announced by the cluster, after the configured ones.
    server_list: Vec<Server>,
    next_server: usize,
    attempt: u32,
    conn: Option<Conn<NatsWire>>,
    phase: Phase,
    subs: HashMap<u64, Route>,
    pub(super) timers: HashMap<TimerId, u64>,
    /// Flushes asked for before a connection took `CONNECT`: sent behind it.
    deferred: Vec<Flushed>,
    /// Publishes accepted but not written when the connection dropped: sent after the
    /// next handshake.
    held: Vec<NatsWire>,
    pongs: VecDeque<PongFor>,
    pings_out: u32,
    ping_timer: Option<TimerId>,
    pub(super) watchers: Vec<Watcher>,
    /// The server dialled last (for the TLS name and the log).
    server: Server,
}

impl Tonic for Link {
    type State = ();

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        self.server_list.clone_from(&self.cfg.servers);
        self.dial(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, event: &TimerEvent) {
        if let Some(token) = self.timers.remove(&event.id) {
            return self.resolve(ctx, token, Err(RequestError::Timeout));
        }
        match &*event.name {
            "nats reconnect" => self.dial(ctx),
            "nats ping" => self.ping(),
            _ => {}
        }
    }

    fn on_finishing(&mut self, _: &mut Ctx<Self>) {
        self.drop_held("the client closed while the link was down");
        self.set_status(NatsStatus::Closed);
        *self.shared.conn.lock() = None;
        if let Some(conn) = &self.conn {
            conn.close();
        }
        self.fail_pending(RequestError::NotConnected);
    }
}

impl Link {
    pub(super) fn status(&self) -> NatsStatus {
        NatsStatus::from_u8(self.shared.status.load(Ordering::Acquire))
    }

    fn set_status(&mut self, status: NatsStatus) {
        if self.status() == status {
            return;
        }
        self.shared.status.store(status as u8, Ordering::Release);
        self.watchers.retain_mut(|w| w(status));
    }

    /// Dial the next server.
    fn dial(&mut self, ctx: &mut Ctx<Self>) {
        let server = self.server_list[self.next_server % self.server_list.len()].clone();
        self.next_server = (self.next_server + 1) % self.server_list.len();
        self.phase = Phase::Connecting;
        let addr = match server.resolve() {
            Ok(a) => a,
            Err(e) => {
                log::warn!("nats: {server}: {e}");
                return self.retry(ctx);
            }
        };
        self.server = server;
        let client = TcpClient::new(addr, NatsProtocol::new()).config(self.cfg.config.clone());
        match client.start(ctx) {
            Ok(conn) => self.conn = Some(conn),
            Err(e) => {
                log::warn!("nats: cannot dial {}: {e}", self.server);
                self.retry(ctx);
            }
        }
    }

    /// Wait, then dial the next server; or give up.
    fn retry(&mut self, ctx: &mut Ctx<Self>) {
        self.phase = Phase::Down;
        self.attempt += 1;
        if !self.cfg.reconnect.allows(self.attempt) {
            log::warn!("nats: giving up after {} attempts", self.attempt);
            self.drop_held("the reconnect policy gave up");
            self.set_status(NatsStatus::Closed);
            self.fail_pending(RequestError::NotConnected);
            return ctx.finish();
        }
        let delay = self.cfg.reconnect.delay(self.attempt - 1, random());
        ctx.timer(Timer::once(delay).named("nats reconnect"));
    }

    /// Publishes held for the next connection that will never come: said, not dropped in
    /// silence.
    fn drop_held(&mut self, why: &str) {
        if !self.held.is_empty() {
            log::warn!(
                "nats: {} accepted publishes were never sent: {why}",
                self.held.len()
            );
            self.held.clear();
        }
    }

    fn send_op(&self, op: Op) {
        if let Some(conn) = &self.conn
            && let Err(e) = conn.send(NatsWire(op))
        {
            log::debug!("nats: an operation was not queued: {e}");
        }
    }

    /// `INFO` arrived: secure the connection if asked, then connect.
    fn on_info(&mut self, info: &ServerInfo) {
        self.shared.max_payload.store(
            if info.max_payload > 0 {
                info.max_payload.min(super::wire::MAX_PAYLOAD_CAP)
            } else {
                1024 * 1024
            },
            Ordering::Relaxed,
        );
        for url in &info.connect_urls {
            if let Ok(ServerUrl { server, .. }) = Server::parse(url)
                && !self.server_list.contains(&server)
            {
                log::debug!("nats: the cluster announces {server}");
                self.server_list.push(server);
            }
        }
        if info.ldm {
            log::info!("nats: {} is going away (lame duck mode)", self.server);
        }
        if self.phase != Phase::Connecting {
            return; // an update (new cluster members)
        }
        let Some(conn) = self.conn.clone() else {
            return;
        };
        if (self.cfg.tls || info.tls_required) && !conn.is_tls() {
            #[cfg(feature = "tls")]
            {
                let connector = self
                    .cfg
                    .connector
                    .clone()
                    .unwrap_or_else(TlsConnector::with_web_roots);
                let host = self.server.host.as_str();
                match Tls::client(&connector, host) {
                    Ok(tls) => {
                        if let Err(e) = conn.upgrade_tls(tls, None) {
                            log::warn!("nats: cannot start TLS: {e}");
                            conn.abort();
                        }
                    }
                    Err(e) => {
                        log::warn!("nats: TLS to {host}: {e}");
                        conn.abort();
                    }
                }
                return; // CONNECT follows the handshake (on_secured)
            }
            #[cfg(not(feature = "tls"))]
            {
                log::warn!("nats: the server requires TLS (the `tls` feature is off)");
                conn.abort();
                return;
            }
        }
        self.connect();
    }

    /// `CONNECT`, every subscription, then a `PING` whose `PONG` says all were taken.
    fn connect(&mut self) {
        #[derive(Serialize)]
        struct Connect<'a> {
            verbose: bool,
            pedantic: bool,
            tls_required: bool,
            lang: &'static str,
            version: &'static str,
            protocol: u8,
            echo: bool,
            headers: bool,
            no_responders: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            user: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pass: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            auth_token: Option<&'a str>,
        }
        let (user, pass, auth_token) = match &self.cfg.auth {
            Auth::None => (None, None, None),
            Auth::UserPassword(u, p) => (Some(u.as_str()), Some(p.as_str()), None),
            Auth::Token(t) => (None, None, Some(t.as_str())),
        };
        let tls = self.conn.as_ref().is_some_and(Conn::is_tls);
        if !matches!(self.cfg.auth, Auth::None) && !tls {
            let peer = self.conn.as_ref().and_then(Conn::peer);
            if !peer.is_some_and(|p| p.ip().to_canonical().is_loopback()) {
                // As the official clients do when the server does not ask for TLS; said
                // once per connection, since anyone on the path can read them.
                log::warn!(
                    "nats: sending credentials without TLS to {} (use a tls:// URL to protect them)",
                    peer.map_or_else(|| "the server".to_string(), |p| p.to_string())
                );
            }
        }
        let connect = Connect {
            verbose: false,
            pedantic: false,
            tls_required: tls,
            lang: "rust-tasktonic",
            version: env!("CARGO_PKG_VERSION"),
            protocol: 1,
            echo: true,
            headers: true,
            no_responders: true,
            name: self.cfg.name.as_deref(),
            user,
            pass,
            auth_token,
        };
        let json = match serde_json::to_vec(&connect) {
            Ok(j) => j,
            Err(e) => {
                log::error!("nats: CONNECT: {e}");
                return;
            }
        };
        self.phase = Phase::Handshake;
        self.send_op(Op::Connect(Bytes::from(json)));
        self.send_op(Op::Sub {
            subject: format!("{}*", self.shared.inbox),
            queue: None,
            sid: INBOX_SID,
        });
        let mut sids: Vec<_> = self.subs.keys().copied().collect();
        sids.sort_unstable();
        for sid in sids {
            let r = &self.subs[&sid];
            self.send_op(Op::Sub {
                subject: r.subject.clone(),
                queue: r.queue.clone(),
                sid,
            });
        }
        self.pongs.push_back(PongFor::Handshake);
        self.send_op(Op::Ping);
        for done in std::mem::take(&mut self.deferred) {
            self.pongs.push_back(PongFor::Flush(done));
            self.send_op(Op::Ping);
        }
    }

    fn on_pong(&mut self, ctx: &mut Ctx<Self>) {
        self.pings_out = 0;
        match self.pongs.pop_front() {
            Some(PongFor::Handshake) => self.ready(ctx),
            Some(PongFor::Flush(done)) => done.give(true),
            Some(PongFor::Keepalive) | None => {}
        }
    }

    /// The server took `CONNECT`: publishes flow.
    fn ready(&mut self, ctx: &mut Ctx<Self>) {
        self.phase = Phase::Ready;
        self.attempt = 0;
        for op in std::mem::take(&mut self.held) {
            if let Some(conn) = &self.conn
                && let Err(e) = conn.send(op)
            {
                log::warn!("nats: a held message could not be queued again: {e}");
            }
        }
        *self.shared.conn.lock() = self.conn.clone();
        log::info!("nats: connected to {}", self.server);
        if self.ping_timer.is_none() {
            let every = self.cfg.ping_interval;
            self.ping_timer = Some(ctx.timer(Timer::repeat(every).named("nats ping")));
        }
        self.set_status(NatsStatus::Connected);
    }

    fn ping(&mut self) {
        if self.phase != Phase::Ready {
            return;
        }
        if self.pings_out >= self.cfg.max_pings_out {
            log::warn!(
                "nats: {} answered none of {} pings; the connection is stale",
                self.server,
                self.pings_out
            );
            if let Some(conn) = &self.conn {
                conn.abort();
            }
            return;
        }
        self.pings_out += 1;
        self.pongs.push_back(PongFor::Keepalive);
        self.send_op(Op::Ping);
    }

    pub(super) fn flush(&mut self, done: Flushed) {
        match self.phase {
            Phase::Handshake | Phase::Ready => {
                self.pongs.push_back(PongFor::Flush(done));
                self.send_op(Op::Ping);
            }
            // Not connected yet: behind the coming CONNECT (and its subscriptions).
            Phase::Connecting if self.conn.is_some() => self.deferred.push(done),
            _ => done.give(false),
        }
    }

    pub(super) fn add_sub(&mut self, sid: u64, route: Route) {
        if matches!(self.phase, Phase::Handshake | Phase::Ready) {
            self.send_op(Op::Sub {
                subject: route.subject.clone(),
                queue: route.queue.clone(),
                sid,
            });
        }
        self.subs.insert(sid, route);
    }

    pub(super) fn remove_sub(&mut self, sid: u64) {
        if self.subs.remove(&sid).is_some() && matches!(self.phase, Phase::Handshake | Phase::Ready)
        {
            self.send_op(Op::Unsub { sid, max: None });
        }
    }

    fn on_msg(&mut self, ctx: &mut Ctx<Self>, msg: NatsMsg) {
        if msg.sid == INBOX_SID {
            let token = msg
                .subject
                .strip_prefix(&self.shared.inbox)
                .and_then(|t| t.parse().ok());
            if let Some(token) = token {
                let outcome = if msg.status == Some(503) {
                    Err(RequestError::NoResponders)
                } else {
                    Ok(msg)
                };
                self.resolve(ctx, token, outcome);
            }
            return;
        }
        let sid = msg.sid;
        let alive = match self.subs.get_mut(&sid) {
            Some(route) => (route.deliver)(msg),
            None => true, // unsubscribed a moment ago
        };
        if !alive {
            self.remove_sub(sid);
        }
    }

    /// A request left: its timeout starts (unless its reply came first).
    pub(super) fn arm_request(&mut self, ctx: &mut Ctx<Self>, token: u64, timeout: Duration) {
        let mut requests = self.shared.requests.lock();
        if let Some(p) = requests.get_mut(&token) {
            let timer = ctx.timer(Timer::once(timeout).named("nats request"));
            p.timer = Some(timer);
            self.timers.insert(timer, token);
        }
    }

    pub(super) fn resolve(
        &mut self,
        ctx: &mut Ctx<Self>,
        token: u64,
        outcome: Result<NatsMsg, RequestError>,
    ) {
        let pending = self.shared.requests.lock().remove(&token);
        if let Some(p) = pending {
            if let Some(timer) = p.timer {
                self.timers.remove(&timer);
                ctx.cancel_timer(timer);
            }
            p.reply.give(outcome);
        }
    }

    fn fail_pending(&mut self, why: RequestError) {
        self.timers.clear();
        let pending: Vec<Pending> = self
            .shared
            .requests
            .lock()
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in pending {
            p.reply.give(Err(why.clone()));
        }
        for pong in self.pongs.drain(..) {
            if let PongFor::Flush(done) = pong {
                done.give(false);
            }
        }
        for done in self.deferred.drain(..) {
            done.give(false);
        }
    }
}

impl TcpEvents<NatsWire> for Link {
    fn on_connected(&mut self, _: &mut Ctx<Self>, _: &Conn<NatsWire>, peer: SocketAddr) {
        log::debug!("nats: TCP up to {peer}, waiting for INFO");
    }

    #[cfg(feature = "tls")]
    fn on_secured(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<NatsWire>,
        _: &crate::transport::TlsSession,
    ) {
        if self.phase == Phase::Connecting {
            self.connect();
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<NatsWire>, msg: NatsWire) {
        if self.conn.as_ref() != Some(conn) {
            return; // a connection being replaced
        }
        match msg.0 {
            Op::Msg(m) => self.on_msg(ctx, *m),
            Op::Pong => self.on_pong(ctx),
            Op::Info(info) => self.on_info(&info),
            Op::Err(e) => {
                log::warn!("nats: {} says: {e}", self.server);
                self.set_status(NatsStatus::Error);
                if self.phase == Phase::Ready {
                    // Not fatal when the server keeps the connection (a permission
                    // violation): back to Connected. A fatal one closes it next.
                    self.set_status(NatsStatus::Connected);
                }
            }
            Op::Ping => self.send_op(Op::Pong),
            _ => {}
        }
    }

    fn on_codec_error(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<NatsWire>,
        e: &crate::codec::CodecError,
    ) {
        log::warn!("nats: {}: {e}", self.server);
    }

    fn on_unencodable(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<NatsWire>,
        msg: NatsWire,
        e: &crate::codec::CodecError,
    ) {
        log::warn!("nats: {msg:?} not sent: {e}");
    }

    fn on_disconnected(
        &mut self,
        ctx: &mut Ctx<Self>,
        conn: &Conn<NatsWire>,
        why: &CloseReason,
        unsent: Vec<NatsWire>,
    ) {
        if self.conn.as_ref() != Some(conn) {
            return;
        }
        *self.shared.conn.lock() = None;
        self.conn = None;
        let was_ready = self.phase == Phase::Ready;
        log::info!("nats: {} lost: {why}", self.server);
        // Publishes that never left go out on the next connection (nothing accepted is
        // dropped here); protocol operations are made afresh.
        // A request's publish is not: its asker was told NotConnected just below, and must
        // not see the work done behind its back.
        let inbox = self.shared.inbox.clone();
        self.held.extend(unsent.into_iter().filter(|w| match &w.0 {
            Op::Pub(p) => !p.reply.as_deref().is_some_and(|r| r.starts_with(&inbox)),
            _ => false,
        }));
        self.fail_pending(RequestError::NotConnected);
        self.pings_out = 0;
        if ctx.lifecycle() != tasktonic_core::Lifecycle::Sparkling {
            return;
        }
        self.set_status(if was_ready {
            NatsStatus::Reconnecting
        } else {
            NatsStatus::Connecting
        });
        self.retry(ctx);
    }
}
