//! [`TcpEvents`]: what a connection tells its base. Every method has a default body.

use std::net::SocketAddr;

use tasktonic_core::{Ctx, Tonic};

use super::{CloseReason, Conn, ConnState};
use crate::codec::CodecError;
#[cfg(feature = "tls")]
use crate::transport::TlsSession;

/// The events a connection sends to its base tonic, "subclass style": every method has a
/// default body, so a base implements only what it needs. Events of one connection arrive in
/// order, as sparkles on the base's catalyst.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use tasktonic_core::{Ctx, Tonic};
/// use tasktonic_net::tcp::{Conn, TcpEvents};
///
/// struct Echo;
/// impl Tonic for Echo {
///     type State = ();
/// }
/// impl TcpEvents<Bytes> for Echo {
///     fn on_message(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
///         if let Err(e) = conn.send(msg) {
///             log::warn!("{}: echo not sent: {e}", conn.id());
///         }
///     }
/// }
/// ```
#[allow(unused_variables)] // the defaults ignore their arguments
pub trait TcpEvents<M: Send + 'static>: Tonic {
    /// The connection is up (after its TLS handshake, for a TLS connection). Default: does
    /// nothing.
    fn on_connected(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<M>, peer: SocketAddr) {}

    /// A TLS handshake completed: at the start of a TLS connection (just before
    /// `on_connected`), or after [`Conn::upgrade_tls`]. Default: does nothing.
    #[cfg(feature = "tls")]
    fn on_secured(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<M>, session: &TlsSession) {}

    /// One whole message arrived (never a fragment, never two). Default: does nothing.
    fn on_message(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<M>, msg: M) {}

    /// The connection handler changed state: the state one of its steps ended in (a state
    /// entered and left within one step, such as `Closing` when the peer's end was already
    /// there, is not reported). Default: does nothing.
    fn on_status(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<M>, state: ConnState) {}

    /// The outbound queue drained to the low watermark after `send` reported back-pressure.
    /// Default: does nothing.
    fn on_writable(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<M>) {}

    /// A frame could not be decoded (match on the error's kind: an oversized frame, malformed
    /// content, a truncated stream). Under [`OnMalformed::Skip`](super::OnMalformed::Skip) the
    /// connection goes on; otherwise it closes (and `on_disconnected` follows). Default: does nothing.
    fn on_codec_error(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<M>, error: &CodecError) {}

    /// A message accepted by `send` cannot be encoded (too large, invalid for the codec); it is
    /// handed back. Default: does nothing.
    fn on_unencodable(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<M>, msg: M, error: &CodecError) {}

    /// The connection went down. `unsent` holds every message accepted by `send` but not
    /// written (a client that re-sends after reconnecting keeps them instead). Default: does
    /// nothing.
    fn on_disconnected(
        &mut self,
        ctx: &mut Ctx<Self>,
        conn: &Conn<M>,
        why: &CloseReason,
        unsent: Vec<M>,
    ) {
    }

    /// The connection handler is gone for good (no more reconnects). Default: does nothing.
    fn on_connection_finished(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<M>) {}
}
