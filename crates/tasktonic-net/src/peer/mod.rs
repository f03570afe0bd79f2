//! A peer node (socktools' `TCPSock` with `MsgpackParseMixin`): one tonic that listens *and*
//! dials, where every peer — accepted or dialled — is just a peer, and messages are
//! MessagePack `(type, data)` pairs with integer types in `[u32 BE length][payload]` frames.
//!
//! Start one from a tonic that implements [`PeerEvents`] (every method has a default body):
//! [`PeerNode::start`] places the node on the selector catalyst and returns [`Peers`], a
//! handle to send to one peer ([`Peers::send_to`]) or to all ([`Peers::broadcast`]) from any
//! thread. Received messages reach the base as sparkles: through a handler registered for
//! their type ([`PeerNode::on`], with the data decoded into a serde type), or
//! [`PeerEvents::on_peer_message`]. A name-to-number table ([`MsgTypes`], socktools'
//! `MsgtypeStrMixin`) lets both sides use names. A peer filter (socktools' `good_peer`) is
//! checked on accept and for every message; a peer that sends no complete message for
//! [`PeerNode::timeout`] is dropped. See `docs/interop.md` ("socktools 0.2").
//!
//! Unlike socktools: frames split across reads are reassembled, sends to an unknown peer are
//! an error (not a `KeyError`), a message that cannot be sent comes back, per-peer queues are
//! bounded both ways (back-pressure to the senders; a base that falls behind stops the
//! reading, [`Peers::waiting`]), malformed MessagePack closes only that peer with a clear error,
//! nothing spins while idle, and dialled peers reconnect by policy.
//!
//! # Examples
//!
//! ```
//! use tasktonic_core::{Ctx, Tonic};
//! use tasktonic_net::peer::{PeerEvents, PeerMessage, PeerNode, Peers};
//!
//! struct Chat {
//!     peers: Option<Peers>,
//! }
//! impl Tonic for Chat {
//!     type State = ();
//!     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
//!         let node = PeerNode::new().listen("127.0.0.1:0".parse().expect("an address"));
//!         self.peers = Some(node.start(ctx).expect("started"));
//!         ctx.finish();
//!     }
//! }
//! impl PeerEvents for Chat {
//!     fn on_peer_message(&mut self, _ctx: &mut Ctx<Self>, msg: PeerMessage) {
//!         println!("from {} type {}: {}", msg.from, msg.kind, msg.data);
//!         if let Some(peers) = &self.peers {
//!             // Answer the sender, as socktools' `send_msg(type, data, to_peer=addr)`.
//!             peers.send_to(msg.from, 2, &"thanks").ok();
//!         }
//!     }
//! }
//! # tasktonic_core::App::new("doc").tonic(Chat { peers: None }).run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod events;
mod node;
mod peers;
mod types;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use self::events::PeerEvents;
pub use self::node::PeerNode;
pub use self::peers::{Broadcast, PeerError, Peers};
pub use self::types::MsgTypes;
pub use rmpv::Value;

/// One message on the wire: socktools' `(msg_type, msg_data)`, a MessagePack array of the
/// type (an integer) and the data (any value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Packet(pub u32, pub Value);

/// A message from a peer, as the base receives it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PeerMessage {
    /// The peer that sent it (the address it connected from, or the one we dialled).
    pub from: SocketAddr,
    /// Its type.
    pub kind: u32,
    /// Its type's name, if the node's [`MsgTypes`] has one.
    pub name: Option<Arc<str>>,
    /// Its data.
    pub data: Value,
}

impl PeerMessage {
    /// The data as a `T`.
    ///
    /// # Errors
    ///
    /// The data does not have `T`'s shape.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, rmpv::ext::Error> {
        rmpv::ext::from_value(self.data.clone())
    }

    /// The data as text, if it is a string.
    pub fn text(&self) -> Option<&str> {
        self.data.as_str()
    }
}

impl fmt::Display for PeerMessage {
    /// `from ADDR type T: DATA` (DATA: a string's text, else the value as MessagePack's
    /// display writes it), on one line: control characters in the data are escaped (`\n`),
    /// so that a peer cannot end the line and forge another.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from {} type {}: ", self.from, self.kind)?;
        let data = match self.data.as_str() {
            Some(text) => std::borrow::Cow::Borrowed(text),
            None => std::borrow::Cow::Owned(self.data.to_string()),
        };
        for c in data.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_shows_on_one_line_whatever_its_data() {
        let from: SocketAddr = "127.0.0.1:7100".parse().expect("an address");
        let msg = |data: Value| PeerMessage {
            from,
            kind: 1,
            name: None,
            data,
        };
        assert_eq!(
            msg("hi\nfrom 6.6.6.6:1 type 1: forged".into()).to_string(),
            "from 127.0.0.1:7100 type 1: hi\\nfrom 6.6.6.6:1 type 1: forged"
        );
        let array = Value::Array(vec![1.into(), "a\rb".into()]);
        assert_eq!(
            msg(array).to_string(),
            "from 127.0.0.1:7100 type 1: [1, \"a\\rb\"]"
        );
    }
}
