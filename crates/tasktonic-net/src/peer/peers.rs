//! [`Peers`], the handle to send to a node's peers from any thread, and what sending tells.

use std::error::Error;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use super::node::Registry;
use super::{MsgTypes, Packet};
use crate::tcp::{Conn, TcpSendError};

/// Why a message did not go to a peer.
#[derive(Debug)]
#[non_exhaustive]
pub enum PeerError {
    /// No peer with this address is connected.
    UnknownPeer(SocketAddr),
    /// The [`MsgTypes`] have no type of this name.
    UnknownType(String),
    /// The data cannot be written as MessagePack.
    Encode(String),
    /// The peer's connection did not take it (back-pressure, or it is going down): the
    /// packet is handed back inside.
    Send(TcpSendError<Packet>),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::UnknownPeer(peer) => write!(f, "no peer {peer} is connected"),
            PeerError::UnknownType(name) => write!(f, "no message type is called {name:?}"),
            PeerError::Encode(e) => write!(f, "cannot encode the data: {e}"),
            PeerError::Send(e) => write!(f, "not sent: {e}"),
        }
    }
}

impl Error for PeerError {}

/// What a broadcast did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Broadcast {
    /// Peers that took the message.
    pub sent: usize,
    /// Peers that did not, and why.
    pub failed: Vec<(SocketAddr, PeerError)>,
}

/// The handle to a node's peers: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Peers {
    registry: Registry,
    types: Arc<MsgTypes>,
    waiting: Arc<AtomicUsize>,
}

impl fmt::Debug for Peers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peers")
            .field("connected", &self.registry.lock().len())
            .finish()
    }
}

impl Peers {
    pub(super) fn new(
        registry: Registry,
        types: Arc<MsgTypes>,
        waiting: Arc<AtomicUsize>,
    ) -> Peers {
        Peers {
            registry,
            types,
            waiting,
        }
    }

    /// How many messages from peers wait for the base to handle them. Each peer's share
    /// counts in its connection's inbound window (`TcpConfig::inbound_window`, 256 by
    /// default): at the window the node stops reading from that peer until the base
    /// catches up, so this stays below peers × window.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The peers connected now.
    pub fn peers(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = self.registry.lock().keys().copied().collect();
        v.sort();
        v
    }

    /// Send `(kind, data)` to `peer` (socktools' `send_msg(type, data, to_peer=peer)`).
    ///
    /// # Errors
    ///
    /// [`PeerError`]: no such peer, data that cannot be encoded, or a connection that did
    /// not take it (the packet is handed back).
    pub fn send_to(
        &self,
        peer: SocketAddr,
        kind: u32,
        data: &impl Serialize,
    ) -> Result<(), PeerError> {
        let data = rmpv::ext::to_value(data).map_err(|e| PeerError::Encode(e.to_string()))?;
        let conn = self
            .registry
            .lock()
            .get(&peer)
            .cloned()
            .ok_or(PeerError::UnknownPeer(peer))?;
        conn.send(Packet(kind, data)).map_err(PeerError::Send)
    }

    /// [`send_to`](Peers::send_to) by the type's name.
    ///
    /// # Errors
    ///
    /// As `send_to`, or [`PeerError::UnknownType`].
    pub fn send_named(
        &self,
        peer: SocketAddr,
        name: &str,
        data: &impl Serialize,
    ) -> Result<(), PeerError> {
        let kind = self
            .types
            .id(name)
            .ok_or_else(|| PeerError::UnknownType(name.to_string()))?;
        self.send_to(peer, kind, data)
    }

    /// Send `(kind, data)` to every connected peer (socktools' `send_msg` without
    /// `to_peer`); says which peers did not take it.
    pub fn broadcast(&self, kind: u32, data: &impl Serialize) -> Broadcast {
        let mut report = Broadcast::default();
        let data = match rmpv::ext::to_value(data) {
            Ok(d) => d,
            Err(e) => {
                report.failed.push((
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                    PeerError::Encode(e.to_string()),
                ));
                return report;
            }
        };
        let conns: Vec<(SocketAddr, Conn<Packet>)> = self
            .registry
            .lock()
            .iter()
            .map(|(a, c)| (*a, c.clone()))
            .collect();
        for (peer, conn) in conns {
            match conn.send(Packet(kind, data.clone())) {
                Ok(()) => report.sent += 1,
                Err(e) => report.failed.push((peer, PeerError::Send(e))),
            }
        }
        report
    }

    /// [`broadcast`](Peers::broadcast) by the type's name.
    ///
    /// # Errors
    ///
    /// [`PeerError::UnknownType`].
    pub fn broadcast_named(
        &self,
        name: &str,
        data: &impl Serialize,
    ) -> Result<Broadcast, PeerError> {
        let kind = self
            .types
            .id(name)
            .ok_or_else(|| PeerError::UnknownType(name.to_string()))?;
        Ok(self.broadcast(kind, data))
    }

    /// Close the connection to `peer` gracefully (what was sent to it is written first);
    /// false if no such peer is connected.
    pub fn close(&self, peer: SocketAddr) -> bool {
        match self.registry.lock().get(&peer) {
            Some(conn) => {
                conn.close();
                true
            }
            None => false,
        }
    }
}

/// A message from a peer on its way through the base's mailbox: counted in its
/// connection's inbound window (and in [`Peers::waiting`]) until dropped, when the base has
/// handled it, or with the sparkle if the base has completed.
pub(super) struct InBase {
    conn: Conn<Packet>,
    waiting: Arc<AtomicUsize>,
}

impl InBase {
    pub(super) fn new(conn: &Conn<Packet>, waiting: &Arc<AtomicUsize>) -> InBase {
        conn.delivering(1, 0);
        waiting.fetch_add(1, Ordering::Relaxed);
        InBase {
            conn: conn.clone(),
            waiting: waiting.clone(),
        }
    }
}

impl Drop for InBase {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.conn.consumed(1, 0);
    }
}
