//! [`UdpEvents`]: what a UDP socket tells its base. Every method has a default body.

use std::net::SocketAddr;

use tasktonic_core::{Ctx, Tonic};

use super::{SendToError, Udp};
use crate::codec::CodecError;

/// The events a UDP socket sends to its base tonic, "subclass style": every method has a
/// default body, so a base implements only what it needs. Events of one socket arrive in
/// order, as sparkles on the base's catalyst; `on_closed` is the last.
///
/// # Examples
///
/// ```
/// use std::net::SocketAddr;
/// use tasktonic_core::{Ctx, Tonic};
/// use tasktonic_net::codec::CodecError;
/// use tasktonic_net::udp::{SendToError, Udp, UdpEvents};
///
/// struct Shouter;
/// impl Tonic for Shouter {
///     type State = ();
/// }
/// impl UdpEvents<String> for Shouter {
///     fn on_datagram(&mut self, _: &mut Ctx<Self>, udp: &Udp<String>, msg: String, from: SocketAddr) {
///         udp.send_to(msg.to_uppercase(), from).ok();
///     }
///     fn on_decode_error(&mut self, _: &mut Ctx<Self>, _: &Udp<String>, from: SocketAddr, e: &CodecError) {
///         log::warn!("{from} sent a bad datagram: {e}");
///     }
///     fn on_send_failed(
///         &mut self,
///         _: &mut Ctx<Self>,
///         _: &Udp<String>,
///         msg: String,
///         to: SocketAddr,
///         e: &SendToError,
///     ) {
///         log::warn!("{msg:?} not sent to {to}: {e}");
///     }
/// }
/// ```
#[allow(unused_variables)] // the defaults ignore their arguments
pub trait UdpEvents<M: Send + 'static>: Tonic {
    /// The socket is bound to `addr` (the port chosen, for port 0) and reading. Default:
    /// does nothing.
    fn on_bound(&mut self, ctx: &mut Ctx<Self>, udp: &Udp<M>, addr: SocketAddr) {}

    /// One whole datagram arrived from `from` (never a fragment, never two; possibly empty).
    /// Default: does nothing.
    fn on_datagram(&mut self, ctx: &mut Ctx<Self>, udp: &Udp<M>, msg: M, from: SocketAddr) {}

    /// A datagram from `from` could not be decoded (match on the error's kind: malformed
    /// content, above the codec's maximum). It is dropped; the socket goes on. Default: does
    /// nothing.
    fn on_decode_error(
        &mut self,
        ctx: &mut Ctx<Self>,
        udp: &Udp<M>,
        from: SocketAddr,
        error: &CodecError,
    ) {
    }

    /// A datagram accepted by `send_to` could not be sent to `to`; it is handed back.
    /// Default: does nothing.
    fn on_send_failed(
        &mut self,
        ctx: &mut Ctx<Self>,
        udp: &Udp<M>,
        msg: M,
        to: SocketAddr,
        error: &SendToError,
    ) {
    }

    /// The send queue drained to the low watermark after `send_to` refused with
    /// [`Backpressure`](super::UdpSendError::Backpressure). Default: does nothing.
    fn on_writable(&mut self, ctx: &mut Ctx<Self>, udp: &Udp<M>) {}

    /// The socket is closed, its port released. `unsent` holds every datagram accepted by
    /// `send_to` and never sent, with its destination. Default: does nothing.
    fn on_closed(&mut self, ctx: &mut Ctx<Self>, udp: &Udp<M>, unsent: Vec<(M, SocketAddr)>) {}
}
