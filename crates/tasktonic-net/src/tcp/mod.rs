//! TCP as tonics: connections (client and server side) and listeners on the selector.
//!
//! A user tonic (the *base*) implements [`TcpEvents`] — only the events it needs — and drives
//! connections through their [`Conn`] handles. See `docs/networking.md` for the model.

mod client;
mod conn;
mod connection;
mod ended;
mod events;
mod listener;
mod outbox;
mod policy;
mod send_error;
mod staging;
mod switch;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[cfg(feature = "tls")]
use crate::transport::TlsError;

pub use self::client::TcpClient;
pub use self::conn::Conn;
pub use self::connection::TcpConnection;
pub use self::ended::ConnEnded;
pub use self::events::TcpEvents;
pub use self::listener::{Listening, TcpServer};
pub use self::policy::Reconnect;
pub use self::send_error::TcpSendError;
pub use self::switch::UpgradeError;

use crate::codec::CodecError;

/// Identifies one connection (unique in the process; a reconnecting client keeps its id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    pub(crate) fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// The state of a connection handler (its state machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnState {
    /// Not started yet.
    #[default]
    New,
    /// A client connect is in progress.
    Connecting,
    /// Up: messages flow both ways.
    Connected,
    /// A client lost its connection and waits to reconnect.
    WaitForRetry,
    /// Closing gracefully: flushing what was accepted, then shutting down.
    Closing,
    /// Gone for good.
    Closed,
}

impl ConnState {
    pub(crate) fn from_u8(v: u8) -> ConnState {
        match v {
            0 => ConnState::New,
            1 => ConnState::Connecting,
            2 => ConnState::Connected,
            3 => ConnState::WaitForRetry,
            4 => ConnState::Closing,
            _ => ConnState::Closed,
        }
    }

    /// The state's name, as TaskTonic's `on_socket_status` reported it.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::New => "new",
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::WaitForRetry => "wait_for_retry",
            ConnState::Closing => "closing",
            ConnState::Closed => "closed",
        }
    }
}

/// Why a connection went down.
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// Closed by [`Conn::close`] or by its tonic finishing, after flushing.
    Closed,
    /// Dropped at once by [`Conn::abort`].
    Aborted,
    /// The peer closed its side and everything delivered was answered.
    PeerClosed,
    /// The connection failed: reset, broken pipe, and other I/O errors.
    Io(io::Error),
    /// A client connect failed (refused, unreachable, timed out), or a TLS handshake (of a
    /// new connection or of an upgrade) did not complete within the connect timeout.
    ConnectFailed(io::Error),
    /// The peer broke the framing: an oversized frame, malformed content (under
    /// [`OnMalformed::Close`]), or a stream that ended inside a frame.
    Codec(CodecError),
    /// TLS failed: the handshake (an unknown CA, a certificate not valid for the name), a bad
    /// record, a fatal alert, the peer ending without `close_notify` (truncation), or data
    /// past a STARTTLS boundary.
    #[cfg(feature = "tls")]
    Tls(TlsError),
    /// No byte arrived from the peer for this long ([`TcpConfig::recv_timeout`]): declared
    /// dead.
    RecvTimeout(Duration),
    /// No complete message arrived from the peer for this long
    /// ([`TcpConfig::message_timeout`]): dropped.
    MessageTimeout(Duration),
    /// The peer took none of what waited for it for this long (the shorter of
    /// [`TcpConfig::recv_timeout`] and [`TcpConfig::message_timeout`]): a peer that stopped
    /// reading is as dead as one that stopped sending.
    SendStalled(Duration),
    /// The connection went on under another protocol ([`Conn::switch_protocol`]); the new
    /// `Conn` carries on.
    Switched,
    /// A protocol switch ([`Conn::switch_protocol`]) was not made, and why (the connection
    /// was lost first, or the peer sent data past the switch's boundary).
    SwitchFailed(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Closed => f.write_str("closed"),
            CloseReason::Aborted => f.write_str("aborted"),
            CloseReason::PeerClosed => f.write_str("closed by the peer"),
            CloseReason::Io(e) => write!(f, "i/o error: {e}"),
            CloseReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            CloseReason::Codec(e) => write!(f, "protocol error: {e}"),
            #[cfg(feature = "tls")]
            CloseReason::Tls(e) => write!(f, "{e}"),
            CloseReason::RecvTimeout(t) => write!(f, "the peer sent nothing for {t:?}"),
            CloseReason::MessageTimeout(t) => {
                write!(f, "the peer sent no complete message for {t:?}")
            }
            CloseReason::SendStalled(t) => {
                write!(f, "the peer took nothing of what waited for it for {t:?}")
            }
            CloseReason::Switched => f.write_str("handed to another protocol"),
            CloseReason::SwitchFailed(why) => write!(f, "protocol switch failed: {why}"),
        }
    }
}

/// What a connection does with a frame whose content is malformed (the frame boundary is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Report it ([`TcpEvents::on_codec_error`]) and close the connection (the default).
    #[default]
    Close,
    /// Report it and skip the frame; the connection goes on.
    Skip,
}

/// Limits and options of a connection.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Outbound: messages accepted by `send` but not yet written; above it `send` returns
    /// [`TcpSendError::Backpressure`]. Default 4096.
    pub high_watermark: usize,
    /// Outbound: [`TcpEvents::on_writable`] fires when the queue drains to this. Default 1024.
    pub low_watermark: usize,
    /// Inbound: messages delivered to the base but not yet consumed; at the bound the
    /// connection stops reading until the base catches up. Default 256.
    pub inbound_window: usize,
    /// Inbound, in bytes: the input those unconsumed messages were cut from; at the bound
    /// the connection stops reading too (a read's messages are delivered whole, so the
    /// bound may be passed by one read's worth). With 8 MiB frames the message count alone
    /// would let one slow base hold 2 GiB for a peer. Default 16 MiB.
    pub inbound_bytes: usize,
    /// Bytes read from one connection per selector turn before others get theirs. Default 256 KiB.
    pub read_budget: usize,
    /// `TCP_NODELAY` (default on).
    pub nodelay: bool,
    /// After a graceful close has flushed and shut down its side, how long to wait for the peer
    /// to close before dropping the socket. Default 5 s.
    pub close_linger: Duration,
    /// Client connect timeout; also bounds a TLS handshake (on both sides). Default 10 s.
    pub connect_timeout: Duration,
    /// Malformed frames: close (default) or skip.
    pub on_malformed: OnMalformed,
    /// Receive idle timeout (ninjaTCP): no byte from the peer for this long and the
    /// connection is declared dead ([`CloseReason::RecvTimeout`]); a client's reconnect
    /// policy takes over. Detected between T and 1.25 T after the last byte; time during
    /// which the connection itself does not read (the base's inbound window is full, a
    /// switch waits) does not count. Zero is off. Default: none.
    pub recv_timeout: Option<Duration>,
    /// No complete message from the peer for this long and the connection is dropped
    /// ([`CloseReason::MessageTimeout`]; socktools' timeout, which a peer trickling bytes
    /// does not escape). What counts is what the protocol delivers: `LengthDelimited`
    /// delivers empty frames (so heartbeats count), `MsgPack` skips them (so they satisfy
    /// only `recv_timeout`). Counted as `recv_timeout` is; zero is off. Default: none.
    ///
    /// Either timeout also bounds a peer that stops reading: when what waits for it (a short
    /// write's rest, queued messages) makes no progress for the shorter of the two, the
    /// connection is dropped ([`CloseReason::SendStalled`]).
    pub message_timeout: Option<Duration>,
    /// Send the protocol's heartbeat (an empty frame, for length-prefixed codecs; see
    /// [`Encoder::encode_heartbeat`](crate::codec::Encoder::encode_heartbeat)) when nothing
    /// was written for a whole period of this length: a repeating timer checks, so a
    /// heartbeat follows the last write by one to two periods. Default: none.
    pub heartbeat: Option<Duration>,
    /// When the peer ends its stream (EOF), answer it: deliver what it sent, write what
    /// is queued and what the base sends in reply, then close (`true`, the default: a
    /// request-then-EOF peer gets its answer). `false`: the peer's end is the session's
    /// end, for a one-way stream whose reader going away means nobody reads what follows;
    /// nothing more is written and what was not written is handed back at once
    /// ([`CloseReason::PeerClosed`]).
    pub half_close: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            high_watermark: 4096,
            low_watermark: 1024,
            inbound_window: 256,
            inbound_bytes: 16 * 1024 * 1024,
            read_budget: 256 * 1024,
            nodelay: true,
            close_linger: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            on_malformed: OnMalformed::Close,
            recv_timeout: None,
            message_timeout: None,
            heartbeat: None,
            half_close: true,
        }
    }
}
