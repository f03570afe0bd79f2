//! [`WsEvents`]: what a WebSocket session tells its base tonic, and the bridge from the
//! connection's events to it.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use tasktonic_core::{Ctx, Tonic};

use super::handle::{Ws, message};
use super::message::{WsClose, WsMessage};
use super::protocol::{Wire, WsWire};
use super::{WsAccept, WsInfo};
use crate::codec::CodecError;
use crate::tcp::{CloseReason, Conn, TcpEvents};

/// The events of WebSocket sessions, server and client side, "subclass style": every method
/// has a default body. Events of one session arrive in order, as sparkles on the base's
/// catalyst: `on_ws_open`, then messages, then (if the peer closed or answered a close)
/// `on_ws_close`, then `on_ws_closed` once.
///
/// # Examples
///
/// An echo: every message goes back as it came.
///
/// ```
/// use tasktonic_core::{Ctx, Tonic};
/// use tasktonic_net::http::HttpHandler;
/// use tasktonic_net::ws::{Ws, WsEvents, WsMessage};
///
/// struct Echo;
/// impl Tonic for Echo {
///     type State = ();
/// }
/// impl HttpHandler for Echo {}
/// impl WsEvents for Echo {
///     fn on_ws_message(&mut self, _: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {
///         if let Err(e) = ws.send(msg) {
///             log::warn!("{ws}: echo not sent: {e}");
///         }
///     }
/// }
/// ```
#[allow(unused_variables)] // the defaults ignore their arguments
pub trait WsEvents: Tonic {
    /// A server: a request to open a session on a WebSocket path
    /// ([`HttpServer::websocket`](crate::http::HttpServer::websocket)) passed the
    /// handshake's checks. Accept it (with a subprotocol, limits, extra header fields), or
    /// refuse it with a response (`403`, `401`, …). Default: accept.
    ///
    /// # Errors
    ///
    /// The response to send instead of `101 Switching Protocols`.
    fn on_ws_upgrade(
        &mut self,
        ctx: &mut Ctx<Self>,
        request: &Request<Bytes>,
    ) -> Result<WsAccept, Response<Bytes>> {
        Ok(WsAccept::default())
    }

    /// A session is open: on a server, right after the `101` was queued (messages sent now
    /// follow it); on a client, when the server's `101` arrived. Default: does nothing.
    fn on_ws_open(&mut self, ctx: &mut Ctx<Self>, ws: &Ws, info: &WsInfo) {}

    /// One whole message arrived. Default: does nothing.
    fn on_ws_message(&mut self, ctx: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {}

    /// The outbound queue drained to the low watermark after a send reported
    /// back-pressure. Default: does nothing.
    fn on_ws_writable(&mut self, ctx: &mut Ctx<Self>, ws: &Ws) {}

    /// The peer sent its close frame (`None`: one without a code) — to begin the close
    /// handshake, which the protocol has answered, or to answer ours. The session closes
    /// next. Default: does nothing.
    fn on_ws_close(&mut self, ctx: &mut Ctx<Self>, ws: &Ws, close: Option<&WsClose>) {}

    /// The peer broke the protocol or a limit (a frame or message too large, invalid UTF-8,
    /// a masking or fragmentation error, a failed client handshake): the session was
    /// answered with the matching close code (1002, 1007, 1009) and closes. Default: does
    /// nothing (it is logged).
    fn on_ws_error(&mut self, ctx: &mut Ctx<Self>, ws: &Ws, error: &CodecError) {}

    /// A message accepted by `send` was not sent because the session had begun closing; it
    /// is handed back. Default: does nothing (it is logged).
    fn on_ws_refused(&mut self, ctx: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {}

    /// The session ended (or a client's connection attempt failed): `why`, and every
    /// message accepted by `send` but not written. A client that reconnects opens again
    /// with `on_ws_open`. Default: does nothing.
    fn on_ws_closed(
        &mut self,
        ctx: &mut Ctx<Self>,
        ws: &Ws,
        why: &CloseReason,
        unsent: Vec<WsMessage>,
    ) {
    }
}

/// The bridge from a session's connection to its base.
impl<B: WsEvents> TcpEvents<WsWire> for B {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<WsWire>, peer: SocketAddr) {
        // A server's session opened at the upgrade; a client's opens with the handshake.
        log::trace!("{}: websocket transport up ({peer})", conn.id());
    }

    fn on_message(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<WsWire>, msg: WsWire) {
        let ws = Ws::new(conn.clone());
        match msg.0 {
            Wire::Message(m) => self.on_ws_message(ctx, &ws, m),
            Wire::Close(close) => self.on_ws_close(ctx, &ws, close.as_ref()),
            Wire::Opened(info) => self.on_ws_open(ctx, &ws, &info),
            Wire::Ping(_) => {}
        }
    }

    fn on_writable(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<WsWire>) {
        self.on_ws_writable(ctx, &Ws::new(conn.clone()));
    }

    fn on_codec_error(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<WsWire>, error: &CodecError) {
        self.on_ws_error(ctx, &Ws::new(conn.clone()), error);
    }

    fn on_unencodable(
        &mut self,
        ctx: &mut Ctx<Self>,
        conn: &Conn<WsWire>,
        msg: WsWire,
        error: &CodecError,
    ) {
        if let Wire::Message(m) = msg.0 {
            log::info!("{}: a message was not sent: {error}", conn.id());
            self.on_ws_refused(ctx, &Ws::new(conn.clone()), m);
        }
    }

    fn on_disconnected(
        &mut self,
        ctx: &mut Ctx<Self>,
        conn: &Conn<WsWire>,
        why: &CloseReason,
        unsent: Vec<WsWire>,
    ) {
        let unsent = unsent
            .into_iter()
            .filter(|w| matches!(w.0, Wire::Message(_)))
            .map(message)
            .collect();
        self.on_ws_closed(ctx, &Ws::new(conn.clone()), why, unsent);
    }
}
