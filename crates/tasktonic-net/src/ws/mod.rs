//! WebSocket (RFC 6455) as tonics: server sessions upgraded from an [`HttpServer`]'s
//! session per path ([`HttpServer::websocket`]), and a client ([`WsClient`]) for `ws://`
//! and `wss://` URLs. Both report to the user's tonic through [`WsEvents`] and are written
//! to through a [`Ws`] handle.
//!
//! The frame protocol is tungstenite's `WebSocketContext`, driven from the connection's own
//! buffers (one frame at a time, so nothing is held past a message; the common frame is cut without
//! it, `ws/frame.rs`); the connection layers
//! give it back-pressure, TLS, liveness and hand-back of unsent messages as on any TCP
//! connection. Text and binary messages, fragmentation both ways, pings answered by the
//! protocol, the close handshake both ways with codes and reasons, UTF-8 validation, the
//! masking rules of each side, and limits (8 MiB per frame and message by default,
//! refused with 1009). See `docs/websocket.md`.
//!
//! [`HttpServer`]: crate::http::HttpServer
//! [`HttpServer::websocket`]: crate::http::HttpServer::websocket
//!
//! # Examples
//!
//! An echo server on every path:
//!
//! ```
//! use tasktonic_core::{App, Ctx, Tonic};
//! use tasktonic_net::http::{HttpHandler, HttpServer};
//! use tasktonic_net::ws::{Ws, WsEvents, WsMessage};
//!
//! struct Echo;
//! impl Tonic for Echo {
//!     type State = ();
//!     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
//!         let addr = "127.0.0.1:0".parse().expect("an address");
//!         let listening = HttpServer::bind(addr).websocket("/*").start(ctx).expect("bound");
//!         println!("listening on {}", listening.local_addr());
//!         ctx.finish(); // a real server would keep running
//!     }
//! }
//! impl HttpHandler for Echo {}
//! impl WsEvents for Echo {
//!     fn on_ws_message(&mut self, _: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {
//!         ws.send(msg).ok();
//!     }
//! }
//! App::new("doc").tonic(Echo).run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod config;
mod dial;
mod events;
mod frame;
mod gate;
mod handle;
mod message;
mod protocol;
mod upgrade;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};

pub use self::client::WsClient;
pub use self::config::WsConfig;
pub use self::events::WsEvents;
pub use self::handle::{Ws, WsSendError};
pub use self::message::{CloseCode, Utf8Bytes, WsClose, WsMessage};
pub use self::protocol::WsWire;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use self::protocol::fuzz_protocol;

pub(crate) use self::upgrade::upgrade_route;

/// What a session was opened with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsInfo {
    /// The path and query asked for (a server: the request's target; a client: the URL).
    pub uri: Uri,
    /// The other side's handshake fields (a server: the request's; a client: the
    /// response's).
    pub headers: HeaderMap,
    /// The subprotocol agreed on, if any.
    pub protocol: Option<String>,
}

/// How a server accepts a session ([`WsEvents::on_ws_upgrade`]): a subprotocol, limits,
/// extra fields for the `101`.
#[derive(Debug, Clone, Default)]
pub struct WsAccept {
    pub(crate) protocol: Option<String>,
    pub(crate) config: Option<WsConfig>,
    pub(crate) headers: HeaderMap,
}

impl WsAccept {
    /// Accept with the defaults.
    pub fn new() -> WsAccept {
        WsAccept::default()
    }

    /// Agree on the subprotocol `name` (sent only if the client offered it).
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocol = Some(name.into());
        self
    }

    /// The session's limits.
    pub fn config(mut self, config: WsConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// A header field for the `101` (a cookie, …).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}
