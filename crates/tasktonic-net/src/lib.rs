//! TaskTonic networking: a selector catalyst on `mio`, TCP connections and listeners as tonics,
//! and codecs that cut whole messages.
//!
//! The data path is one straight line: socket → selector (readiness) → connection handler
//! (reads inline, decodes whole messages) → the user's tonic (one sparkle per message, by move).
//! See `docs/networking.md` and `docs/wire-formats.md`.

pub mod codec;
pub mod selector;
pub mod tcp;

pub use crate::selector::Selector;
pub use crate::tcp::{
    CloseReason, Conn, ConnId, ConnState, OnMalformed, TcpClient, TcpConfig, TcpEvents,
    TcpSendError, TcpServer,
};

/// The names most networking programs need.
pub mod prelude {
    pub use crate::codec::{
        Codec, CodecError, Decoder, Encoder, LengthDelimited, Lines, MsgPack, RawBytes, Utf8Text,
    };
    pub use crate::tcp::{
        CloseReason, Conn, ConnId, ConnState, Listening, OnMalformed, Reconnect, TcpClient,
        TcpConfig, TcpEvents, TcpSendError, TcpServer,
    };
}
