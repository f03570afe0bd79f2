//! [`NatsClient`] (the builder), [`Nats`] (the handle every tonic publishes, subscribes and
//! requests through) and the link tonic on the selector that keeps one connection to the
//! cluster alive.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use serde::Serialize;
use tasktonic_core::{Ctx, Handle, Timer, TimerEvent, TimerId, Tonic};

use super::subject::{check_publish, check_subscribe};
use super::wire::{NatsMsg, NatsProtocol, NatsWire, Op, Publish, ServerInfo};
use super::{NatsError, NatsEvents, NatsStatus, RequestError};
use crate::selector::Selector;
use crate::tcp::{CloseReason, Conn, TcpClient, TcpConfig, TcpEvents, TcpSendError};
#[cfg(feature = "tls")]
use crate::transport::{Tls, TlsConnector};

/// The subscription id of a connection's inbox (replies to its requests).
const INBOX_SID: u64 = 1;

/// A parsed server URL: the server, its credentials (user and password, or a token as the
/// user with no password), and whether it asks for TLS.
struct ServerUrl {
    server: Server,
    auth: Option<(String, String)>,
    tls: bool,
}

/// A server to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Server {
    host: String,
    port: u16,
}

impl Server {
    /// `nats://host:port`, `tls://host:port`, `host:port` or `host` (port 4222).
    fn parse(url: &str) -> io::Result<ServerUrl> {
        let bad =
            |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{url:?}: {why}"));
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("nats".to_string(), url),
        };
        let tls = match scheme.as_str() {
            "nats" => false,
            "tls" => true,
            _ => return Err(bad("the scheme is not nats:// or tls://")),
        };
        let rest = rest.trim_end_matches('/');
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| bad("an unclosed [IPv6]"))?;
            (h.to_string(), p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("a bad port"))?,
            None => 4222,
        };
        let auth = auth.map(|a| match a.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (a.to_string(), String::new()), // a token
        });
        Ok(ServerUrl {
            server: Server { host, port },
            auth,
            tls,
        })
    }

    fn resolve(&self) -> io::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: no address", self.host),
                )
            })
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Credentials for `CONNECT`.
#[derive(Clone, Default)]
enum Auth {
    #[default]
    None,
    UserPassword(String, String),
    Token(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::None => "none",
            Auth::UserPassword(..) => "user and password",
            Auth::Token(_) => "token",
        })
    }
}

/// A NATS client: one connection to a NATS server (or cluster), kept alive by a link tonic
/// on the selector catalyst, shared by every tonic through [`Nats`] handles.
///
/// It reconnects with back-off across the configured servers and those the cluster
/// announces (`INFO`'s `connect_urls`), subscribes again after a reconnect, pings to find a
/// dead link, upgrades to TLS when the server requires it (or the URL says `tls://`), and
/// sends credentials (`nats://user:pass@host`, a token, or [`user_password`](Self::user_password)).
///
/// # Examples
///
/// ```no_run
/// use tasktonic_core::{App, Ctx, Tonic};
/// use tasktonic_net::nats::{Nats, NatsClient, NatsEvents, NatsMsg};
///
/// struct Sensor;
/// impl Tonic for Sensor {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let nats = NatsClient::new("nats://127.0.0.1:4222").expect("a URL").start(ctx).expect("a selector");
///         nats.subscribe(ctx, "sensors.*.temp", None).expect("a subject");
///         nats.publish("sensors.kitchen.temp", "21.5").ok();
///     }
/// }
/// impl NatsEvents for Sensor {
///     fn on_nats_message(&mut self, _: &mut Ctx<Self>, msg: NatsMsg) {
///         println!("{}: {:?}", msg.subject, msg.payload);
///     }
/// }
/// App::new("doc").tonic(Sensor).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NatsClient {
    servers: Vec<Server>,
    auth: Auth,
    name: Option<String>,
    tls: bool,
    #[cfg(feature = "tls")]
    connector: Option<TlsConnector>,
    reconnect: crate::tcp::Reconnect,
    ping_interval: Duration,
    max_pings_out: u32,
    config: TcpConfig,
    selector: Option<String>,
}

impl fmt::Debug for NatsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsClient")
            .field("servers", &self.servers)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .finish()
    }
}

impl NatsClient {
    /// A client for `urls`: one or more servers, comma-separated (`nats://host:port`,
    /// `tls://host:port`, `nats://user:pass@host:port`, `nats://token@host:port`, or
    /// `host:port`; the port defaults to 4222).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a URL that does not parse.
    pub fn new(urls: &str) -> io::Result<NatsClient> {
        let mut client = NatsClient {
            servers: Vec::new(),
            auth: Auth::None,
            name: None,
            tls: false,
            #[cfg(feature = "tls")]
            connector: None,
            reconnect: crate::tcp::Reconnect::exponential(
                Duration::from_millis(50),
                Duration::from_secs(5),
            ),
            ping_interval: Duration::from_secs(30),
            max_pings_out: 2,
            config: TcpConfig::default(),
            selector: None,
        };
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            client = client.server(url)?;
        }
        if client.servers.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no server URL"));
        }
        Ok(client)
    }

    /// Add a server to dial (tried in order, then the cluster's announced ones).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a URL that does not parse.
    pub fn server(mut self, url: &str) -> io::Result<NatsClient> {
        let ServerUrl { server, auth, tls } = Server::parse(url)?;
        if let Some((user, pass)) = auth {
            self.auth = if pass.is_empty() {
                Auth::Token(user)
            } else {
                Auth::UserPassword(user, pass)
            };
        }
        self.tls |= tls;
        if !self.servers.contains(&server) {
            self.servers.push(server);
        }
        Ok(self)
    }

    /// The connection's name, shown by the server's monitoring.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Authenticate with a user and password.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::UserPassword(user.into(), password.into());
        self
    }

    /// Authenticate with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Speak TLS (after the server's `INFO`, as NATS does), verifying servers with
    /// `connector`. Without this, TLS is used when a server requires it, verified with the
    /// web's roots.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, connector: &TlsConnector) -> Self {
        self.tls = true;
        self.connector = Some(connector.clone());
        self
    }

    /// How to wait between reconnect attempts (default: exponential from 50 ms to 5 s,
    /// forever). Every attempt dials the next server.
    pub fn reconnect(mut self, policy: crate::tcp::Reconnect) -> Self {
        self.reconnect = policy;
        self
    }

    /// Ping the server this often (default 30 s); after `max_out` pings unanswered
    /// (default 2) the connection is declared dead and replaced.
    pub fn ping_interval(mut self, every: Duration, max_out: u32) -> Self {
        self.ping_interval = every.max(Duration::from_millis(10));
        self.max_pings_out = max_out.max(1);
        self
    }

    /// The connection's options (connect timeout, watermarks).
    pub fn config(mut self, config: TcpConfig) -> Self {
        self.config = config;
        self
    }

    /// Run on the selector catalyst called `name`.
    pub fn selector(mut self, name: impl Into<String>) -> Self {
        self.selector = Some(name.into());
        self
    }

    /// Start the link (an infusion of the calling tonic, on the selector catalyst; finishing
    /// the caller closes it) and return the handle. The connection comes up in the
    /// background: until it is up, publishes are refused ([`NatsError::NotConnected`]) and
    /// subscriptions wait.
    ///
    /// # Errors
    ///
    /// The selector cannot be opened.
    pub fn start<T: Tonic>(self, ctx: &mut Ctx<T>) -> io::Result<Nats> {
        let selector = match &self.selector {
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
            link: Mutex::new(None),
        });
        let link = Link {
            cfg: Box::new(self),
            shared: shared.clone(),
            server_list: Vec::new(),
            next_server: 0,
            attempt: 0,
            conn: None,
            phase: Phase::Down,
            subs: HashMap::new(),
            requests: HashMap::new(),
            timers: HashMap::new(),
            held: Vec::new(),
            pongs: VecDeque::new(),
            pings_out: 0,
            ping_timer: None,
            watchers: Vec::new(),
            server_name: String::new(),
        };
        let handle = ctx
            .infusion(link)
            .catalyst(selector.catalyst())
            .spawn()
            .map_err(|e| io::Error::other(e.to_string()))?;
        *shared.link.lock() = Some(handle);
        Ok(Nats { shared })
    }
}

/// A random number, from the standard library's randomly keyed hasher.
pub(crate) fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// What the handles and the link share.
struct Shared {
    /// The connection, while it is up (after the server answered `CONNECT`).
    conn: Mutex<Option<Conn<NatsWire>>>,
    status: AtomicU8,
    next_sid: AtomicU64,
    next_token: AtomicU64,
    max_payload: AtomicUsize,
    /// This client's inbox prefix (`_INBOX.<random>.`): replies to its requests.
    inbox: String,
    link: Mutex<Option<Handle<Link>>>,
}

/// A handle to a NATS client: publish, subscribe, request. Cheap to clone, `Send`: give one
/// to every tonic that talks to the cluster. Publishing writes from the calling thread
/// straight into the connection's queue; subscriptions and requests go through the link.
#[derive(Clone)]
pub struct Nats {
    shared: Arc<Shared>,
}

impl fmt::Debug for Nats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nats")
            .field("status", &self.status())
            .finish()
    }
}

/// A subscription: its messages reach the tonic that made it
/// ([`NatsEvents::on_nats_message`]) until [`unsubscribe`](Subscription::unsubscribe)
/// or until that tonic completes.
#[derive(Debug, Clone)]
pub struct Subscription {
    sid: u64,
    nats: Nats,
}

impl Subscription {
    /// The subscription's id (in [`NatsMsg::sid`]).
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// End the subscription.
    pub fn unsubscribe(&self) {
        let sid = self.sid;
        self.nats.to_link(move |link, _| link.remove_sub(sid));
    }
}

impl Nats {
    /// The link's state.
    pub fn status(&self) -> NatsStatus {
        NatsStatus::from_u8(self.shared.status.load(Ordering::Acquire))
    }

    /// The largest payload the server accepts (from its `INFO`).
    pub fn max_payload(&self) -> usize {
        self.shared.max_payload.load(Ordering::Relaxed)
    }

    fn to_link(&self, f: impl FnOnce(&mut Link, &mut Ctx<Link>) + Send + 'static) -> bool {
        let link = self.shared.link.lock().clone();
        link.is_some_and(|l| l.sparkle_named("nats", f).is_ok())
    }

    fn send(&self, p: Publish) -> Result<(), NatsError> {
        if p.headers.as_ref().map_or(0, Bytes::len) + p.payload.len() > self.max_payload() {
            return Err(NatsError::TooLarge(p.payload));
        }
        let conn = self.shared.conn.lock().clone();
        let Some(conn) = conn else {
            return Err(NatsError::NotConnected(p.payload));
        };
        conn.send(NatsWire(Op::Pub(Box::new(p)))).map_err(|e| {
            let back = |w: NatsWire| match w.0 {
                Op::Pub(p) => p.payload,
                _ => Bytes::new(),
            };
            match e {
                TcpSendError::Backpressure(w) => NatsError::Backpressure(back(w)),
                TcpSendError::NotConnected(w) | TcpSendError::Closed(w) => {
                    NatsError::NotConnected(back(w))
                }
            }
        })
    }

    /// Publish `payload` to `subject` (no wildcards). At most once: accepted messages that
    /// were not written when the connection dropped are sent again after the reconnect.
    ///
    /// # Errors
    ///
    /// The payload is handed back: [`NatsError::NotConnected`] while the link is down,
    /// [`NatsError::Backpressure`] at the connection's high watermark,
    /// [`NatsError::TooLarge`] over the server's `max_payload`; [`NatsError::Subject`] for
    /// an invalid subject.
    pub fn publish(&self, subject: &str, payload: impl Into<Bytes>) -> Result<(), NatsError> {
        check_publish(subject)?;
        self.send(Publish {
            subject: subject.into(),
            reply: None,
            headers: None,
            payload: payload.into(),
        })
    }

    /// Publish with a reply subject (for a responder's answer) and header fields.
    ///
    /// # Errors
    ///
    /// As [`publish`](Nats::publish).
    pub fn publish_with(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: &[(&str, &str)],
        payload: impl Into<Bytes>,
    ) -> Result<(), NatsError> {
        check_publish(subject)?;
        if let Some(r) = reply {
            check_publish(r)?;
        }
        let headers = (!headers.is_empty()).then(|| {
            let mut h = BytesMut::from(&b"NATS/1.0\r\n"[..]);
            for (k, v) in headers {
                h.extend_from_slice(k.as_bytes());
                h.extend_from_slice(b": ");
                h.extend_from_slice(v.as_bytes());
                h.extend_from_slice(b"\r\n");
            }
            h.extend_from_slice(b"\r\n");
            h.freeze()
        });
        self.send(Publish {
            subject: subject.into(),
            reply: reply.map(str::to_string),
            headers,
            payload: payload.into(),
        })
    }

    /// Answer `msg` (a request) on its reply subject.
    ///
    /// # Errors
    ///
    /// As [`publish`](Nats::publish); [`NatsError::Subject`] if `msg` has no reply subject.
    pub fn respond(&self, msg: &NatsMsg, payload: impl Into<Bytes>) -> Result<(), NatsError> {
        let reply = msg
            .reply
            .as_deref()
            .ok_or_else(|| NatsError::Subject("the message has no reply subject".into()))?;
        self.publish(reply, payload)
    }

    /// Subscribe the calling tonic to `subject` (`*` matches one token, `>` the rest), in
    /// queue group `queue` if given (each message goes to one member of the group). Its
    /// messages arrive as [`NatsEvents::on_nats_message`], in order.
    ///
    /// The subscription is registered with the link and sent to the server in the order of
    /// the calls; [`flush`](Nats::flush) after it says when the server has it.
    ///
    /// # Errors
    ///
    /// [`NatsError::Subject`] for an invalid subject or queue name.
    pub fn subscribe<T: NatsEvents>(
        &self,
        ctx: &mut Ctx<T>,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, NatsError> {
        let handle = ctx.handle();
        self.subscribe_with(subject, queue, move |msg| {
            handle
                .sparkle_named("on_nats_message", move |t, ctx| t.on_nats_message(ctx, msg))
                .is_ok()
        })
    }

    /// Subscribe with a function of the link (on the selector thread) that takes each
    /// message; it returns false when its receiver is gone (the subscription then ends).
    pub(crate) fn subscribe_with(
        &self,
        subject: &str,
        queue: Option<&str>,
        deliver: impl FnMut(NatsMsg) -> bool + Send + 'static,
    ) -> Result<Subscription, NatsError> {
        check_subscribe(subject)?;
        if let Some(q) = queue {
            check_publish(q)?;
        }
        let sid = self.shared.next_sid.fetch_add(1, Ordering::Relaxed);
        let route = Route {
            subject: subject.to_string(),
            queue: queue.map(str::to_string),
            deliver: Box::new(deliver),
        };
        self.to_link(move |link, _| link.add_sub(sid, route));
        Ok(Subscription {
            sid,
            nats: self.clone(),
        })
    }

    /// Send `payload` to `subject` as a request and give the first reply (or the reason
    /// there is none) to the calling tonic, in `answer`, within `timeout`.
    ///
    /// Errors: [`RequestError::Timeout`], [`RequestError::NoResponders`] (nobody
    /// subscribes to the subject), [`RequestError::NotConnected`] (the link was down, or
    /// dropped before the reply came), [`RequestError::Refused`] (too large, bad subject).
    pub fn request<T, A>(
        &self,
        ctx: &mut Ctx<T>,
        subject: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
        answer: A,
    ) where
        T: Tonic,
        A: FnOnce(&mut T, &mut Ctx<T>, Result<NatsMsg, RequestError>) + Send + 'static,
    {
        let asker = ctx.handle();
        let reply = move |r: Result<NatsMsg, RequestError>| {
            let _ = asker.sparkle_named("nats reply", move |t, ctx| answer(t, ctx, r));
        };
        self.request_with(subject, payload.into(), timeout, Box::new(reply));
    }

    /// A request whose outcome goes to `reply` (called on the link's thread).
    pub(crate) fn request_with(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
        reply: Replier,
    ) {
        if let Err(e) = check_publish(subject) {
            return reply(Err(RequestError::Refused(e.to_string())));
        }
        let token = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        let inbox = format!("{}{token}", self.shared.inbox);
        let p = Publish {
            subject: subject.into(),
            reply: Some(inbox),
            headers: None,
            payload,
        };
        // Registered before the request leaves, so the reply always finds it.
        let nats = self.clone();
        let sent = self.to_link(move |link, ctx| {
            let timer = ctx.timer(Timer::once(timeout).named("nats request"));
            link.timers.insert(timer, token);
            link.requests.insert(token, Pending { timer, reply });
            if let Err(e) = nats.send(p) {
                let why = match e {
                    NatsError::NotConnected(_) | NatsError::Backpressure(_) => {
                        RequestError::NotConnected
                    }
                    other => RequestError::Refused(other.to_string()),
                };
                link.resolve(ctx, token, Err(why));
            }
        });
        if !sent {
            log::debug!("nats: the link is gone; a request to {subject} is refused");
        }
    }

    /// Call `done` on the calling tonic once the server has processed everything sent
    /// before (a `PING` answered by its `PONG`): subscriptions are in place, publishes are
    /// with the server. `false` if the link is down.
    pub fn flush<T, A>(&self, ctx: &mut Ctx<T>, done: A)
    where
        T: Tonic,
        A: FnOnce(&mut T, &mut Ctx<T>, bool) + Send + 'static,
    {
        let asker = ctx.handle();
        let done = move |ok: bool| {
            let _ = asker.sparkle_named("nats flush", move |t, ctx| done(t, ctx, ok));
        };
        self.to_link(move |link, _| link.flush(Box::new(done)));
    }

    /// Tell the calling tonic of every change of the link's state
    /// ([`NatsEvents::on_nats_status`]), starting with the current one.
    pub fn watch_status<T: NatsEvents>(&self, ctx: &mut Ctx<T>) {
        let handle = ctx.handle();
        let watcher = move |s: NatsStatus| {
            handle
                .sparkle_named("on_nats_status", move |t, ctx| t.on_nats_status(ctx, s))
                .is_ok()
        };
        self.to_link(move |link, _| {
            let now = link.status();
            let mut watcher: Watcher = Box::new(watcher);
            if watcher(now) {
                link.watchers.push(watcher);
            }
        });
    }

    /// Close the link: what is queued is written, then the connection closes and stays
    /// closed.
    pub fn close(&self) {
        self.to_link(|_, ctx| ctx.finish());
    }
}

/// Where a request's outcome goes.
pub(crate) type Replier = Box<dyn FnOnce(Result<NatsMsg, RequestError>) + Send>;
type Watcher = Box<dyn FnMut(NatsStatus) -> bool + Send>;

struct Route {
    subject: String,
    queue: Option<String>,
    deliver: Box<dyn FnMut(NatsMsg) -> bool + Send>,
}

struct Pending {
    timer: TimerId,
    reply: Replier,
}

/// What a `PONG` answers.
enum PongFor {
    /// The `PING` after `CONNECT`: the server took the connect and the subscriptions.
    Handshake,
    Keepalive,
    Flush(Box<dyn FnOnce(bool) + Send>),
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
struct Link {
    cfg: Box<NatsClient>,
    shared: Arc<Shared>,
    /// Servers announced by the cluster, after the configured ones.
    server_list: Vec<Server>,
    next_server: usize,
    attempt: u32,
    conn: Option<Conn<NatsWire>>,
    phase: Phase,
    subs: HashMap<u64, Route>,
    requests: HashMap<u64, Pending>,
    timers: HashMap<TimerId, u64>,
    /// Publishes accepted but not written when the connection dropped: sent after the
    /// next handshake.
    held: Vec<NatsWire>,
    pongs: VecDeque<PongFor>,
    pings_out: u32,
    ping_timer: Option<TimerId>,
    watchers: Vec<Watcher>,
    server_name: String,
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
        self.set_status(NatsStatus::Closed);
        *self.shared.conn.lock() = None;
        if let Some(conn) = &self.conn {
            conn.close();
        }
        self.fail_pending(RequestError::NotConnected);
    }
}

impl Link {
    fn status(&self) -> NatsStatus {
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
        self.server_name = server.to_string();
        let client = TcpClient::new(addr, NatsProtocol::new()).config(self.cfg.config.clone());
        match client.start(ctx) {
            Ok(conn) => self.conn = Some(conn),
            Err(e) => {
                log::warn!("nats: cannot dial {server}: {e}");
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
            self.set_status(NatsStatus::Closed);
            self.fail_pending(RequestError::NotConnected);
            return ctx.finish();
        }
        let delay = self.cfg.reconnect.delay(self.attempt - 1, random());
        ctx.timer(Timer::once(delay).named("nats reconnect"));
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
                info.max_payload
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
            log::info!("nats: {} is going away (lame duck mode)", self.server_name);
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
                let host = self.server_name.rsplit_once(':').map_or("", |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
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
        let connect = Connect {
            verbose: false,
            pedantic: false,
            tls_required: self.conn.as_ref().is_some_and(Conn::is_tls),
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
    }

    fn on_pong(&mut self, ctx: &mut Ctx<Self>) {
        self.pings_out = 0;
        match self.pongs.pop_front() {
            Some(PongFor::Handshake) => self.ready(ctx),
            Some(PongFor::Flush(done)) => done(true),
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
        log::info!("nats: connected to {}", self.server_name);
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
                self.server_name,
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

    fn flush(&mut self, done: Box<dyn FnOnce(bool) + Send>) {
        if self.phase == Phase::Down || self.conn.is_none() {
            return done(false);
        }
        self.pongs.push_back(PongFor::Flush(done));
        self.send_op(Op::Ping);
    }

    fn add_sub(&mut self, sid: u64, route: Route) {
        if matches!(self.phase, Phase::Handshake | Phase::Ready) {
            self.send_op(Op::Sub {
                subject: route.subject.clone(),
                queue: route.queue.clone(),
                sid,
            });
        }
        self.subs.insert(sid, route);
    }

    fn remove_sub(&mut self, sid: u64) {
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

    fn resolve(&mut self, ctx: &mut Ctx<Self>, token: u64, outcome: Result<NatsMsg, RequestError>) {
        if let Some(p) = self.requests.remove(&token) {
            self.timers.remove(&p.timer);
            ctx.cancel_timer(p.timer);
            (p.reply)(outcome);
        }
    }

    fn fail_pending(&mut self, why: RequestError) {
        self.timers.clear();
        for (_, p) in self.requests.drain() {
            (p.reply)(Err(why.clone()));
        }
        for pong in self.pongs.drain(..) {
            if let PongFor::Flush(done) = pong {
                done(false);
            }
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
                log::warn!("nats: {} says: {e}", self.server_name);
                self.set_status(NatsStatus::Error);
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
        log::warn!("nats: {}: {e}", self.server_name);
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
        log::info!("nats: {} lost: {why}", self.server_name);
        // Publishes that never left go out on the next connection (nothing accepted is
        // dropped here); protocol operations are made afresh.
        self.held
            .extend(unsent.into_iter().filter(|w| matches!(w.0, Op::Pub(_))));
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
