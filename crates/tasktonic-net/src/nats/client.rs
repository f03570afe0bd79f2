//! [`NatsClient`]: the builder of a NATS client — its servers, credentials, TLS, reconnect
//! policy and liveness — which starts the link tonic and returns the [`Nats`] handle.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use tasktonic_core::{Ctx, Tonic};

use super::handle::Nats;
use crate::tcp::TcpConfig;
#[cfg(feature = "tls")]
use crate::transport::TlsConnector;

/// A parsed server URL: the server, its credentials (user and password, or a token as the
/// user with no password), and whether it asks for TLS.
pub(super) struct ServerUrl {
    pub(super) server: Server,
    pub(super) auth: Option<Credentials>,
    pub(super) tls: bool,
}

/// Credentials in a URL: `user:password@` (the password may be empty) or `token@`.
pub(super) enum Credentials {
    UserPassword(String, String),
    Token(String),
}

/// A server to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Server {
    pub(super) host: String,
    pub(super) port: u16,
}

impl Server {
    /// `nats://host:port`, `tls://host:port`, `host:port` or `host` (port 4222).
    pub(super) fn parse(url: &str) -> io::Result<ServerUrl> {
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
            Some((u, p)) => Credentials::UserPassword(u.to_string(), p.to_string()),
            None => Credentials::Token(a.to_string()),
        });
        Ok(ServerUrl {
            server: Server { host, port },
            auth,
            tls,
        })
    }

    pub(super) fn resolve(&self) -> io::Result<SocketAddr> {
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
pub(super) enum Auth {
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
/// use tasktonic_net::nats::{Nats, NatsClient, NatsEvents, NatsMsg, NatsStatus};
///
/// struct Sensor(Option<Nats>);
/// impl Tonic for Sensor {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let nats = NatsClient::new("nats://127.0.0.1:4222").expect("a URL").start(ctx).expect("a selector");
///         nats.subscribe(ctx, "sensors.*.temp", None).expect("a subject");
///         nats.watch_status(ctx);
///         self.0 = Some(nats);
///     }
/// }
/// impl NatsEvents for Sensor {
///     fn on_nats_status(&mut self, _: &mut Ctx<Self>, status: NatsStatus) {
///         // Publishes are refused (handed back) until the link is up.
///         if let (NatsStatus::Connected, Some(nats)) = (status, &self.0) {
///             nats.publish("sensors.kitchen.temp", "21.5").ok();
///         }
///     }
///     fn on_nats_message(&mut self, _: &mut Ctx<Self>, msg: NatsMsg) {
///         println!("{}: {:?}", msg.subject, msg.payload);
///     }
/// }
/// App::new("doc").tonic(Sensor(None)).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NatsClient {
    pub(super) servers: Vec<Server>,
    pub(super) auth: Auth,
    pub(super) name: Option<String>,
    pub(super) tls: bool,
    #[cfg(feature = "tls")]
    pub(super) connector: Option<TlsConnector>,
    pub(super) reconnect: crate::tcp::Reconnect,
    pub(super) ping_interval: Duration,
    pub(super) max_pings_out: u32,
    pub(super) config: TcpConfig,
    pub(super) selector: Option<String>,
    pub(super) sub_capacity: usize,
    pub(super) sub_bytes: usize,
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
            sub_capacity: 65_536,
            sub_bytes: 64 * 1024 * 1024,
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
        if let Some(credentials) = auth {
            self.auth = match credentials {
                Credentials::UserPassword(u, p) => Auth::UserPassword(u, p),
                Credentials::Token(t) => Auth::Token(t),
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

    /// Verify servers with `connector` (your own CA, say) whenever TLS is spoken: when a
    /// server requires it (its `INFO` says `tls_required`), or always with
    /// [`require_tls`](Self::require_tls) or a `tls://` URL. Without this, servers are
    /// verified with the web's roots. TLS starts after the server's `INFO`, as NATS does.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, connector: &TlsConnector) -> Self {
        self.connector = Some(connector.clone());
        self
    }

    /// Speak TLS with every server, whether it requires it or not (as a `tls://` URL
    /// does): a server that cannot is not used.
    pub fn require_tls(mut self, yes: bool) -> Self {
        self.tls = yes;
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

    /// How many messages a subscription (or exposure) may have been handed and not yet
    /// taken (default 65,536, as the official clients). Past it, messages are dropped and
    /// counted — a slow consumer — and the subscriber hears how many
    /// ([`NatsEvents::on_nats_dropped`](super::NatsEvents::on_nats_dropped)): memory stays
    /// bounded whatever a publisher does.
    pub fn subscription_capacity(mut self, messages: usize) -> Self {
        self.sub_capacity = messages.max(1);
        self
    }

    /// How many bytes (payloads and headers) those messages may hold, as a second bound
    /// beside [`subscription_capacity`](NatsClient::subscription_capacity) (default 64 MiB, as
    /// the official clients): 65,536 messages of 1 MiB would otherwise be 64 GiB for one
    /// slow subscriber. A message larger than the bound alone still passes when nothing
    /// waits.
    pub fn subscription_bytes(mut self, bytes: usize) -> Self {
        self.sub_bytes = bytes.max(1);
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
    /// background: until it is up, publishes are refused ([`NatsError::NotConnected`](super::NatsError::NotConnected)) and
    /// subscriptions wait.
    ///
    /// # Errors
    ///
    /// The selector cannot be opened.
    pub fn start<T: Tonic>(self, ctx: &mut Ctx<T>) -> io::Result<Nats> {
        super::link::start(self, ctx)
    }
}
