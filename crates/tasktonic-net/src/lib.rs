//! TaskTonic networking: a selector catalyst on `mio`, TCP connections and listeners as tonics,
//! and codecs that cut whole messages.
//!
//! The data path is one straight line: socket → selector (readiness) → connection handler
//! (reads inline; the transport, plain or TLS, yields plaintext; the protocol cuts whole
//! messages) → the user's tonic (a read's messages in one sparkle, each by move).
//! See `docs/networking.md`, `docs/tls.md` and `docs/wire-formats.md`.
//!
//! HTTP/1.1 ([`http`]) is a protocol on the same layers: a server whose requests reach the
//! user's tonic as sparkles, and a client.
//!
//! Features: `tls` (on by default) adds TLS with rustls and its ring provider.

pub mod codec;
pub mod http;
pub mod protocol;
pub mod selector;
pub mod tcp;
pub mod transport;

pub use crate::protocol::{Protocol, ProtocolIo};
pub use crate::selector::Selector;
pub use crate::tcp::{
    CloseReason, Conn, ConnId, ConnState, Listening, OnMalformed, Reconnect, TcpClient, TcpConfig,
    TcpEvents, TcpSendError, TcpServer, UpgradeError,
};
#[cfg(feature = "tls")]
pub use crate::transport::{Tls, TlsAcceptor, TlsConnector, TlsError, TlsSession};

/// The names most networking programs need.
pub mod prelude {
    pub use crate::codec::{
        Codec, CodecError, Decoder, Encoder, LengthDelimited, Lines, MsgPack, RawBytes, Utf8Text,
    };
    pub use crate::protocol::{Protocol, ProtocolIo};
    pub use crate::tcp::{
        CloseReason, Conn, ConnId, ConnState, Listening, OnMalformed, Reconnect, TcpClient,
        TcpConfig, TcpEvents, TcpSendError, TcpServer,
    };
    #[cfg(feature = "tls")]
    pub use crate::transport::{Tls, TlsAcceptor, TlsConnector, TlsError, TlsSession};
}
