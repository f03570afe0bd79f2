//! UDP as a tonic: a datagram socket on the selector catalyst (TaskTonic's `UdpSocketHandler`).
//!
//! [`UdpSocket`] binds (an address, or port 0 for an ephemeral port) and starts a socket
//! handler on the selector; the calling tonic, the *base*, implements [`UdpEvents`] — only
//! the events it needs — and sends through the [`Udp`] handle. One datagram is one message,
//! made by a [`DatagramCodec`]: [`RawDatagrams`], [`Utf8Datagrams`] or [`MsgPackDatagrams`].
//!
//! UDP is lossy: a datagram may be lost, duplicated or reordered on the way, and no one is
//! told. What this module promises is the rest (`docs/udp.md`): a datagram is delivered
//! whole or not at all (never split, never merged), a send that fails comes back
//! ([`UdpEvents::on_send_failed`]), and what was never sent comes back when the socket
//! closes ([`UdpEvents::on_closed`]). Memory is bounded both ways: by the send queue's limit
//! and by the inbound window.
//!
//! # Examples
//!
//! An echo server:
//!
//! ```
//! use std::net::SocketAddr;
//! use bytes::Bytes;
//! use tasktonic_core::{App, Ctx, Tonic};
//! use tasktonic_net::udp::{RawDatagrams, Udp, UdpEvents, UdpSocket};
//!
//! struct Echo;
//! impl Tonic for Echo {
//!     type State = ();
//!     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
//!         let addr = "127.0.0.1:0".parse().expect("an address");
//!         let udp = UdpSocket::bind(addr, RawDatagrams::new()).start(ctx).expect("bound");
//!         println!("listening on {}", udp.local_addr());
//!         ctx.finish(); // closes the socket
//!     }
//! }
//! impl UdpEvents<Bytes> for Echo {
//!     fn on_datagram(&mut self, _: &mut Ctx<Self>, udp: &Udp<Bytes>, msg: Bytes, from: SocketAddr) {
//!         udp.send_to(msg, from).ok(); // a refusal hands the datagram back
//!     }
//! }
//! App::new("doc").tonic(Echo).run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod events;
mod handle;
mod handler;
mod socket;

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

pub use self::events::UdpEvents;
pub use self::handle::Udp;
pub use self::socket::UdpSocket;
pub use crate::codec::{
    DatagramCodec, MAX_DATAGRAM_V4, MAX_DATAGRAM_V6, MSGPACK_MAX_DEPTH, MsgPackDatagrams,
    RawDatagrams, Utf8Datagrams,
};

use crate::codec::CodecError;

/// Limits and options of a UDP socket.
#[derive(Debug, Clone)]
pub struct UdpConfig {
    /// Datagrams accepted by `send_to` and not yet sent; at the limit `send_to` refuses with
    /// [`UdpSendError::Backpressure`]. Default 1024.
    pub send_queue: usize,
    /// [`UdpEvents::on_writable`] fires when the send queue drains to this, after a refusal.
    /// Default 256.
    pub low_watermark: usize,
    /// Datagrams delivered to the base and not yet consumed; at the bound the socket stops
    /// reading until the base catches up (meanwhile the kernel's receive buffer fills, and
    /// then drops). Default 256.
    pub inbound_window: usize,
    /// Datagrams read per selector turn before other sockets get theirs. Default 64.
    pub read_budget: usize,
    /// How long [`Udp::close`] waits for a full socket buffer to take the datagrams still
    /// queued; what it has not taken by then is handed back in `on_closed`. Default 1 s.
    pub close_linger: Duration,
    /// The socket's receive buffer (`SO_RCVBUF`), if not the system's default.
    pub recv_buffer: Option<usize>,
    /// The socket's send buffer (`SO_SNDBUF`), if not the system's default.
    pub send_buffer: Option<usize>,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            send_queue: 1024,
            low_watermark: 256,
            inbound_window: 256,
            read_budget: 64,
            close_linger: Duration::from_secs(1),
            recv_buffer: None,
            send_buffer: None,
        }
    }
}

/// `send_to` could not accept the datagram; it is handed back.
pub enum UdpSendError<M> {
    /// The send queue is at its limit ([`UdpConfig::send_queue`]);
    /// [`UdpEvents::on_writable`] follows when it drains.
    Backpressure(M),
    /// The socket is closed or closing.
    Closed(M),
}

impl<M> UdpSendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            UdpSendError::Backpressure(m) | UdpSendError::Closed(m) => m,
        }
    }
}

impl<M> fmt::Debug for UdpSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UdpSendError::Backpressure(_) => "Backpressure(..)",
            UdpSendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<M> fmt::Display for UdpSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UdpSendError::Backpressure(_) => "the send queue is full (back-pressure)",
            UdpSendError::Closed(_) => "the socket is closed",
        })
    }
}

impl<M> Error for UdpSendError<M> {}

/// Why a datagram accepted by `send_to` was not sent ([`UdpEvents::on_send_failed`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum SendToError {
    /// The codec could not encode the message: larger than a datagram (or the codec's
    /// maximum), or a value the format cannot carry.
    Encode(CodecError),
    /// The system refused the datagram: too large for the socket (`EMSGSIZE`), no route, a
    /// broadcast address without [`Udp::set_broadcast`] (`EACCES`), an invalid address (port
    /// 0, another address family).
    Io(io::Error),
}

impl fmt::Display for SendToError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendToError::Encode(e) => write!(f, "{e}"),
            SendToError::Io(e) => write!(f, "send failed: {e}"),
        }
    }
}

impl Error for SendToError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SendToError::Encode(e) => Some(e),
            SendToError::Io(e) => Some(e),
        }
    }
}
