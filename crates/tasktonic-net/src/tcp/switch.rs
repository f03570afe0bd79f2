//! Replacing what a live connection speaks at a message boundary: its transport (plain →
//! TLS, `Conn::upgrade_tls`) or its protocol, with another message
//! type and base ([`Conn::switch_protocol`](super::Conn::switch_protocol): HTTP → WebSocket).
//!
//! Both go through the outbox: the request records how many messages were accepted before
//! it (they are written as they were), and the connection makes the switch once they are
//! written and the base has seen everything it was given. A protocol switch hands the socket,
//! its transport (a TLS session goes along) and the bytes read past the boundary to a new
//! connection tonic, which its new base adopts as an infusion.

use std::error::Error;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use mio::net::TcpStream;
use tasktonic_core::Handle;

use super::connection::adopt_connection;
use super::{CloseReason, Conn, ConnState, TcpConfig, TcpEvents};
use crate::protocol::Protocol;
use crate::selector::Selector;
use crate::transport::{Tls, Transport};

/// `Conn::upgrade_tls` or
/// [`Conn::switch_protocol`](super::Conn::switch_protocol) could not start; the go-ahead
/// message, if one was given, is handed back.
pub struct UpgradeError<M> {
    reason: &'static str,
    go_ahead: Option<M>,
}

impl<M> UpgradeError<M> {
    pub(crate) fn new(reason: &'static str, go_ahead: Option<M>) -> UpgradeError<M> {
        UpgradeError { reason, go_ahead }
    }

    /// The go-ahead message that was not queued.
    pub fn into_inner(self) -> Option<M> {
        self.go_ahead
    }
}

impl<M> fmt::Debug for UpgradeError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeError")
            .field("reason", &self.reason)
            .finish()
    }
}

impl<M> fmt::Display for UpgradeError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot switch the connection: {}", self.reason)
    }
}

impl<M> Error for UpgradeError<M> {}

/// What a live connection switches to.
pub(crate) enum Switch {
    /// Its transport becomes TLS.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Tls(Tls),
    /// Its socket goes to another protocol and base.
    Protocol(Box<dyn Handoff>),
}

/// What a connection hands over when its protocol is replaced.
pub(crate) struct Parts {
    pub(crate) selector: Selector,
    pub(crate) stream: TcpStream,
    pub(crate) transport: Transport,
    /// Read past the boundary, not cut into messages: the new protocol's.
    pub(crate) inbuf: BytesMut,
    pub(crate) config: Arc<TcpConfig>,
    pub(crate) peer: SocketAddr,
    /// The old connection's watchers: the session goes on under the new protocol.
    pub(crate) watchers: Vec<super::ended::Watcher>,
}

/// A protocol switch, type-erased: the old connection does not know the new types.
pub(crate) trait Handoff: Send {
    /// Give the connection to its new protocol and base.
    fn hand_off(self: Box<Self>, parts: Parts);
    /// The switch will not happen: tell the new base why.
    fn fail(self: Box<Self>, why: String);
}

/// Adjusts the old connection's options for the new protocol (a WebSocket session drops the
/// HTTP idle timeout and takes its own heartbeat).
pub(crate) type Tune = Box<dyn FnOnce(&mut TcpConfig) + Send>;

/// A switch to protocol `P` with base `B`.
pub(crate) struct ToProtocol<P: Protocol, B: TcpEvents<P::Message>> {
    pub(crate) protocol: P,
    pub(crate) base: Handle<B>,
    pub(crate) conn: Conn<P::Message>,
    pub(crate) tune: Option<Tune>,
}

impl<P: Protocol, B: TcpEvents<P::Message>> Handoff for ToProtocol<P, B> {
    fn hand_off(self: Box<Self>, mut parts: Parts) {
        let ToProtocol {
            protocol,
            base,
            conn,
            tune,
        } = *self;
        if let Some(tune) = tune {
            let mut config = (*parts.config).clone();
            tune(&mut config);
            parts.config = Arc::new(config);
        }
        conn.adopt_watchers(std::mem::take(&mut parts.watchers));
        let adopter = base.clone();
        let failed = conn.clone();
        // The new base adopts the connection as its infusion, on the selector catalyst. If it
        // cannot, the session ends here: the watchers it carried over hear why, and the base
        // gets what was queued on the new connection back.
        let sent = adopter.sparkle_named("adopt connection", move |b, ctx| {
            let conn_for_err = conn.clone();
            if let Err(e) = adopt_connection(ctx, parts, protocol, base, conn) {
                let why = format!("the new base cannot adopt the connection: {e}");
                log::warn!("{}: {why}", conn_for_err.id());
                let (reason, unsent) = switch_failed(&conn_for_err, why);
                b.on_disconnected(ctx, &conn_for_err, &reason, unsent);
            }
        });
        if sent.is_err() {
            // The socket went with the refused sparkle (dropped: closed).
            let why = "the new base has completed".to_string();
            log::warn!("{}: {why}; the switched connection is closed", failed.id());
            let (_, unsent) = switch_failed(&failed, why);
            if !unsent.is_empty() {
                log::warn!(
                    "{}: {} messages queued on the switched connection are dropped with it",
                    failed.id(),
                    unsent.len()
                );
            }
        }
    }

    fn fail(self: Box<Self>, why: String) {
        let ToProtocol { base, conn, .. } = *self;
        let (reason, unsent) = switch_failed(&conn, why);
        let _ = base.sparkle_named("on_disconnected", move |b, ctx| {
            b.on_disconnected(ctx, &conn, &reason, unsent);
        });
    }
}

/// The switched connection will never run: close it, tell its watchers why, and take back
/// what was queued on it.
fn switch_failed<M: Send + 'static>(conn: &Conn<M>, why: String) -> (Arc<CloseReason>, Vec<M>) {
    conn.set_state(ConnState::Closed);
    let unsent: Vec<_> = conn.close_outbox().into_iter().collect();
    let reason = Arc::new(CloseReason::SwitchFailed(why));
    conn.tell_watchers(&reason, None, false);
    (reason, unsent)
}
