//! [`PeerEvents`]: what a peer node tells its base. Every method has a default body.

use std::net::SocketAddr;

use tasktonic_core::{Ctx, Tonic};

use super::{Packet, PeerMessage};

/// The events of a [`PeerNode`](super::PeerNode), as sparkles on the base's catalyst,
/// "subclass style": implement only what you need.
#[allow(unused_variables)] // the defaults ignore their arguments
pub trait PeerEvents: Tonic {
    /// The node listens on `addr` (the port is known, also when 0 was asked for).
    fn on_listening(&mut self, ctx: &mut Ctx<Self>, addr: SocketAddr) {}

    /// A peer is connected: one that connected to us, or one we dialled (`dialled`).
    fn on_peer_up(&mut self, ctx: &mut Ctx<Self>, peer: SocketAddr, dialled: bool) {}

    /// A message whose type has no handler ([`PeerNode::on`](super::PeerNode::on)).
    /// Default: logged at debug level.
    fn on_peer_message(&mut self, ctx: &mut Ctx<Self>, msg: PeerMessage) {
        log::debug!("{msg} (no handler)");
    }

    /// A peer that was up ([`on_peer_up`](PeerEvents::on_peer_up)) went away (it closed,
    /// was dropped by the timeout or the filter, failed), with the messages sent to it and
    /// not written. A dialled peer with a reconnect policy comes back with `on_peer_up`. A
    /// dial that never reached its peer is not a peer going down: it is an
    /// [`on_peer_error`](PeerEvents::on_peer_error).
    fn on_peer_down(
        &mut self,
        ctx: &mut Ctx<Self>,
        peer: SocketAddr,
        why: &str,
        unsent: Vec<Packet>,
    ) {
    }

    /// Something a peer sent could not be taken: malformed MessagePack (that peer is closed),
    /// or data a handler could not decode into its type (that message is not handled); or a
    /// dial failed (`cannot reach ADDR: why`; with a reconnect policy, each failed attempt).
    /// Default: logged as a warning.
    fn on_peer_error(&mut self, ctx: &mut Ctx<Self>, peer: Option<SocketAddr>, error: &str) {
        log::warn!("peer {peer:?}: {error}");
    }
}
