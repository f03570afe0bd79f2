//! [`WsClient`]: a client session to a `ws://` or `wss://` URL, with the reconnect policy
//! of TCP clients.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use tasktonic_core::Ctx;
use tungstenite::protocol::Role;

use super::protocol::{DialSpec, WsProtocol, WsSettings};
use super::{Ws, WsConfig, WsEvents};
use crate::tcp::{OnMalformed, Reconnect, TcpClient, TcpConfig};
#[cfg(feature = "tls")]
use crate::transport::{Tls, TlsConnector};

/// A WebSocket client: connects to a `ws://` or `wss://` URL, opens the session with the
/// handshake, and reports to the calling tonic `B` through [`WsEvents`]. With
/// [`reconnect`](WsClient::reconnect) it dials again after a loss (and opens again:
/// `on_ws_open` per session); with [`resend`](WsClient::resend) messages sent while down
/// wait and go out after the next handshake.
///
/// # Examples
///
/// ```no_run
/// use tasktonic_core::{App, Ctx, Tonic};
/// use tasktonic_net::ws::{Ws, WsClient, WsEvents, WsInfo, WsMessage};
///
/// struct Hello;
/// impl Tonic for Hello {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         WsClient::new("ws://127.0.0.1:9001/chat")
///             .expect("a ws:// URL")
///             .start(ctx)
///             .expect("a selector");
///     }
/// }
/// impl WsEvents for Hello {
///     fn on_ws_open(&mut self, _: &mut Ctx<Self>, ws: &Ws, _: &WsInfo) {
///         ws.send("hello").ok();
///     }
///     fn on_ws_message(&mut self, ctx: &mut Ctx<Self>, _: &Ws, msg: WsMessage) {
///         println!("{msg:?}");
///         ctx.finish();
///     }
/// }
/// App::new("doc").tonic(Hello).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WsClient {
    uri: Uri,
    /// The host as resolved and verified (no brackets around an IPv6 literal).
    host: String,
    port: u16,
    secure: bool,
    #[cfg(feature = "tls")]
    connector: Option<TlsConnector>,
    config: TcpConfig,
    ws: WsConfig,
    reconnect: Option<Reconnect>,
    resend: bool,
    protocols: Vec<String>,
    headers: HeaderMap,
    selector: Option<String>,
}

impl fmt::Debug for WsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsClient")
            .field("uri", &self.uri)
            .field("reconnect", &self.reconnect)
            .field("resend", &self.resend)
            .finish()
    }
}

impl WsClient {
    /// A client for `url` (`ws://host[:port]/path?query` or `wss://…`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a URL that does not parse, has another scheme or no host, or is
    /// `wss://` without the `tls` feature.
    pub fn new(url: &str) -> io::Result<WsClient> {
        let bad =
            |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{url:?}: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let secure = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            _ => return Err(bad("the scheme is not ws:// or wss://")),
        };
        if secure && !cfg!(feature = "tls") {
            return Err(bad("wss:// needs the `tls` feature"));
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        Ok(WsClient {
            uri,
            host,
            port,
            secure,
            #[cfg(feature = "tls")]
            connector: None,
            config: TcpConfig::default(),
            ws: WsConfig::default(),
            reconnect: None,
            resend: false,
            protocols: Vec::new(),
            headers: HeaderMap::new(),
            selector: None,
        })
    }

    /// Verify `wss://` servers with `connector` (default: the web's roots,
    /// [`TlsConnector::with_web_roots`]).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, connector: &TlsConnector) -> Self {
        self.connector = Some(connector.clone());
        self
    }

    /// The connection's options (connect timeout, watermarks, heartbeat: a ping when
    /// nothing was written for a period, …). Malformed input always closes.
    pub fn config(mut self, config: TcpConfig) -> Self {
        self.config = config;
        self
    }

    /// The session's limits.
    pub fn ws_config(mut self, config: WsConfig) -> Self {
        self.ws = config;
        self
    }

    /// Reconnect after any loss (or a failed handshake), under `policy`.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Queue sends while down and send what was not written after the next handshake.
    pub fn resend(mut self, yes: bool) -> Self {
        self.resend = yes;
        self
    }

    /// Offer the subprotocol `name` (`Sec-WebSocket-Protocol`); may be called again for
    /// more, in order of preference. The one the server chose is in
    /// [`WsInfo::protocol`](super::WsInfo::protocol).
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }

    /// Add a header field to the handshake's request (`Authorization`, `Origin`, …).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Run on the selector catalyst called `name`.
    pub fn selector(mut self, name: impl Into<String>) -> Self {
        self.selector = Some(name.into());
        self
    }

    /// Resolve the host (on the calling thread: give an IP address to avoid the lookup)
    /// and start connecting; the session's events reach the calling tonic.
    ///
    /// # Errors
    ///
    /// The host does not resolve, the TLS name is invalid, or the selector cannot be
    /// opened. Connect and handshake failures arrive as events (`on_ws_error`,
    /// `on_ws_closed`).
    pub fn start<B: WsEvents>(self, ctx: &mut Ctx<B>) -> io::Result<Ws> {
        let addr: SocketAddr = (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: no address", self.host),
                )
            })?;
        // The Host field: the host (an IPv6 literal in brackets), and the port unless it is
        // the scheme's; never user information.
        let default_port = if self.secure { 443 } else { 80 };
        let name = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let host = if self.port == default_port {
            name
        } else {
            format!("{name}:{}", self.port)
        };
        let spec = DialSpec {
            uri: self.uri.clone(),
            host,
            protocols: self.protocols,
            headers: self.headers,
        };
        let mut config = self.config;
        config.on_malformed = OnMalformed::Close;
        let message_timeout = config.message_timeout;
        self.ws.tune(&mut config);
        // A client's own TcpConfig may bound messages; the session's options add to it.
        config.message_timeout = message_timeout;
        let settings = WsSettings::new(self.ws, Some(spec));
        let mut client = TcpClient::new(addr, WsProtocol::new(settings, Role::Client))
            .config(config)
            .resend(self.resend);
        if let Some(policy) = self.reconnect {
            client = client.reconnect(policy);
        }
        if let Some(name) = self.selector {
            client = client.selector(name);
        }
        #[cfg(feature = "tls")]
        if self.secure {
            let connector = self.connector.unwrap_or_else(TlsConnector::with_web_roots);
            let tls = Tls::client(&connector, &self.host)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            client = client.tls(tls);
        }
        client.start(ctx).map(Ws::new)
    }
}
