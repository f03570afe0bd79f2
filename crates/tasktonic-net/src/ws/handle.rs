//! [`Ws`]: the handle of one WebSocket session, to send on and close.

use std::fmt;
use std::net::SocketAddr;

use super::message::{WsClose, WsMessage};
use super::protocol::{Wire, WsWire};
use crate::tcp::{Conn, ConnId, ConnState, TcpSendError};

/// Why a message was not sent; the message is handed back ([`into_inner`](TcpSendError::into_inner)).
pub type WsSendError = TcpSendError<WsMessage>;

/// One WebSocket session (server or client side): send messages, close with a code. Cheap
/// to clone and `Send`: move it to any tonic that should write to the session.
///
/// Sends never block: at the high watermark [`send`](Ws::send) hands the message back
/// ([`TcpSendError::Backpressure`]) and [`on_ws_writable`](super::WsEvents::on_ws_writable)
/// follows when the queue drains; messages accepted but never written are handed back in
/// [`on_ws_closed`](super::WsEvents::on_ws_closed).
#[derive(Clone, PartialEq, Eq)]
pub struct Ws {
    conn: Conn<WsWire>,
}

impl fmt::Debug for Ws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ws")
            .field("id", &self.conn.id())
            .field("state", &self.conn.state())
            .finish()
    }
}

impl fmt::Display for Ws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ws {}", self.conn.id())
    }
}

impl std::hash::Hash for Ws {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.conn.id().hash(state);
    }
}

impl Ws {
    pub(crate) fn new(conn: Conn<WsWire>) -> Ws {
        Ws { conn }
    }

    /// The session's id (its connection's).
    pub fn id(&self) -> ConnId {
        self.conn.id()
    }

    /// The peer's address, once connected.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.conn.peer()
    }

    /// The connection's state.
    pub fn state(&self) -> ConnState {
        self.conn.state()
    }

    /// True over TLS (`wss://`).
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// Messages accepted by `send` and not yet written.
    pub fn queued(&self) -> usize {
        self.conn.queued()
    }

    /// Queue a message: text (`&str`, `String`) or binary (`Bytes`, `Vec<u8>`, `&[u8]`).
    ///
    /// # Errors
    ///
    /// Hands the message back: [`TcpSendError::Backpressure`] at the high watermark,
    /// [`TcpSendError::NotConnected`] while a client is down, [`TcpSendError::Closed`] once
    /// the session is closed. A message sent after the close handshake began is handed back
    /// in [`on_ws_refused`](super::WsEvents::on_ws_refused).
    pub fn send(&self, msg: impl Into<WsMessage>) -> Result<(), WsSendError> {
        self.conn
            .send(WsWire(Wire::Message(msg.into())))
            .map_err(|e| match e {
                TcpSendError::Backpressure(w) => TcpSendError::Backpressure(message(w)),
                TcpSendError::NotConnected(w) => TcpSendError::NotConnected(message(w)),
                TcpSendError::Closed(w) => TcpSendError::Closed(message(w)),
            })
    }

    /// Begin the close handshake with `close` (its code and reason; a code the RFC does not
    /// allow on the wire, such as 1005, 1006 or 1015, is sent as 1000), after the messages
    /// queued before it — even at the high watermark: the peer answers, then the connection
    /// closes and
    /// [`on_ws_closed`](super::WsEvents::on_ws_closed) follows. Messages received
    /// meanwhile are still delivered. Does nothing on a closed session.
    pub fn close(&self, close: WsClose) {
        // One per session, so past the high watermark too: the close handshake is never
        // skipped because the queue is full.
        let frame = WsWire(Wire::Close(Some(close)));
        let queued = if self.conn.state() == ConnState::Connected {
            self.conn.send_unbounded(frame)
        } else {
            self.conn.send(frame) // a session still being switched to queues it
        };
        if let Err(e) = queued {
            log::debug!("{self}: close on a closed session ({e})");
        }
    }

    /// Drop the connection now, without a close frame; unwritten messages are handed back.
    pub fn abort(&self) {
        self.conn.abort();
    }

    /// The connection underneath (its raw events and options).
    pub fn conn(&self) -> &Conn<WsWire> {
        &self.conn
    }
}

/// The message inside an outbound wire item (only messages are ever handed back to a
/// sender of messages; control items become an empty binary message, which never happens).
pub(crate) fn message(w: WsWire) -> WsMessage {
    match w.0 {
        Wire::Message(m) => m,
        _ => WsMessage::Binary(bytes::Bytes::new()),
    }
}
