//! TaskTonic networking: a selector catalyst on `mio`, TCP connections and listeners and UDP
//! sockets as tonics, and codecs that cut whole messages.
//!
//! The data path is one straight line: socket → selector (readiness) → connection handler
//! (reads inline; the transport, plain or TLS, yields plaintext; the protocol cuts whole
//! messages) → the user's tonic (a read's messages in one sparkle, each by move).
//! See `docs/networking.md`, `docs/tls.md` and `docs/wire-formats.md`.
//!
//! UDP ([`udp`]) is a socket tonic on the same selector: one datagram is one message, cut by
//! a datagram codec, with broadcast and multicast.
//!
//! HTTP/1.1 ([`http`]) is a protocol on the same layers: a server whose requests reach the
//! user's tonic as sparkles, and a client. WebSocket ([`ws`]) upgrades the server's sessions
//! per path and has a client for `ws://` and `wss://`. NATS ([`nats`]) carries messages and
//! remote sparkles between processes and machines.
//!
//! Features: `tls` (on by default) adds TLS with rustls and its ring provider.

pub mod codec;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod nats;
pub mod peer;
pub mod protocol;
pub mod remote_log;
pub mod selector;
pub mod tcp;
pub mod tinyproto;
pub mod transform;
pub mod transport;
pub mod udp;
pub mod ws;

/// Re-export of `bytes`: the length-prefixed codecs' messages are [`bytes::Bytes`].
pub use bytes;

pub use crate::protocol::{Protocol, ProtocolIo};
pub use crate::selector::Selector;
pub use crate::tcp::{
    CloseReason, Conn, ConnEnded, ConnId, ConnState, Listening, OnMalformed, Reconnect, TcpClient,
    TcpConfig, TcpEvents, TcpSendError, TcpServer, UpgradeError,
};
#[cfg(feature = "tls")]
pub use crate::transport::{Tls, TlsAcceptor, TlsConnector, TlsError, TlsSession};
pub use crate::udp::{SendToError, Udp, UdpConfig, UdpEvents, UdpSendError, UdpSocket};

/// The names most networking programs need.
pub mod prelude {
    pub use bytes::Bytes;

    pub use crate::codec::{
        Codec, CodecError, DatagramCodec, Decoder, Encoder, LengthDelimited, Lines, MsgPack,
        MsgPackDatagrams, RawBytes, RawDatagrams, Utf8Datagrams, Utf8Text,
    };
    pub use crate::protocol::{Protocol, ProtocolIo};
    pub use crate::tcp::{
        CloseReason, Conn, ConnEnded, ConnId, ConnState, Listening, OnMalformed, Reconnect,
        TcpClient, TcpConfig, TcpEvents, TcpSendError, TcpServer,
    };
    #[cfg(feature = "tls")]
    pub use crate::transport::{Tls, TlsAcceptor, TlsConnector, TlsError, TlsSession};
    pub use crate::udp::{SendToError, Udp, UdpConfig, UdpEvents, UdpSendError, UdpSocket};
}
