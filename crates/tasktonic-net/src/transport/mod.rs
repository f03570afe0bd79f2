//! Transports: what carries a connection's bytes under its protocol — plain TCP, or TLS on
//! the same non-blocking socket. A connection holds one transport; a plaintext one can
//! become TLS at a message boundary on a live connection (`Conn::upgrade_tls`).
//!
//! The protocol above never sees the difference: reads hand it plaintext, its writes take
//! plaintext. See `docs/networking.md` ("Layers") and `docs/tls.md`.

use std::io::{self, Write};

use bytes::BytesMut;
use mio::net::TcpStream;

use crate::tcp::CloseReason;

#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_config;

#[cfg(feature = "tls")]
pub(crate) use self::tls::TlsStream;
#[cfg(feature = "tls")]
pub use self::tls::{TlsError, TlsSession};
#[cfg(feature = "tls")]
pub use self::tls_config::{Tls, TlsAcceptor, TlsConnector};

/// Without the `tls` feature no TLS value can exist.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub(crate) enum Tls {}

/// What carries a connection's bytes.
#[derive(Default)]
pub(crate) enum Transport {
    /// Plain TCP: the socket's bytes are the protocol's.
    #[default]
    Plain,
    /// TLS (rustls) on the socket.
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Transport {
    /// A TLS transport for `tls` (a connection starts `Plain`, the default).
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(tls: &Tls) -> Result<Transport, TransportError> {
        TlsStream::new(tls)
            .map(|stream| Transport::Tls(Box::new(stream)))
            .map_err(TransportError::Tls)
    }

    /// True if this transport is TLS.
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Transport::Plain)
    }

    /// The TLS session, if this transport is TLS.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(&mut self) -> Option<&mut TlsStream> {
        match self {
            Transport::Plain => None,
            Transport::Tls(tls) => Some(tls),
        }
    }

    /// True while a TLS handshake is under way: messages wait (they are handed back if it
    /// fails), only handshake records are written.
    #[inline]
    pub(crate) fn handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.handshaking(),
        }
    }

    /// True if the transport holds bytes of its own for the socket (TLS records).
    #[inline]
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Transport::Plain => false,
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.wants_write(),
        }
    }

    /// Bytes read from the socket, into `inbuf` as plaintext (`busy`: the connection keeps
    /// its buffer, so it is given room to spare). True once the peer ended the transport
    /// (TLS `close_notify`): the plaintext stream is over.
    #[inline]
    pub(crate) fn take_in(
        &mut self,
        data: &[u8],
        inbuf: &mut BytesMut,
        busy: bool,
    ) -> Result<bool, TransportError> {
        match self {
            Transport::Plain => {
                if busy {
                    // Room to spare: the buffer is kept and refilled in place (an exact fit
                    // would be handed away with its last frame; see `codec::split_frame`).
                    inbuf.reserve(2 * data.len());
                }
                inbuf.extend_from_slice(data);
                Ok(false)
            }
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.feed(data, inbuf).map_err(TransportError::Tls),
        }
    }

    /// The socket reached its end.
    ///
    /// # Errors
    ///
    /// The transport was cut short (TLS without `close_notify`).
    pub(crate) fn at_eof(&self) -> Result<(), TransportError> {
        match self {
            Transport::Plain => Ok(()),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.socket_eof().map_err(TransportError::Tls),
        }
    }

    /// A writer of plaintext through this transport onto `stream`.
    #[inline]
    pub(crate) fn wire<'a>(&'a mut self, stream: &'a mut TcpStream) -> Wire<'a> {
        match self {
            Transport::Plain => Wire::Plain(stream),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => Wire::Tls(tls, stream),
        }
    }
}

/// Why a transport failed.
#[derive(Debug)]
pub(crate) enum TransportError {
    #[cfg(feature = "tls")]
    Tls(TlsError),
}

impl TransportError {
    /// As a connection's close reason.
    pub(crate) fn into_reason(self) -> CloseReason {
        match self {
            #[cfg(feature = "tls")]
            TransportError::Tls(e) => CloseReason::Tls(e),
        }
    }
}

/// Plaintext out through a transport: a plain socket, or TLS records onto it.
///
/// For TLS, `write` first writes the records rustls holds; while some remain it returns
/// `WouldBlock` (the socket's writable event resumes the flush). Then it hands rustls the
/// plaintext (at most its 64 KiB buffer) and writes the records that makes. Plaintext rustls
/// took counts as written, as bytes the kernel took do on plain TCP: both are in a send
/// buffer of bounded size that a reset loses.
pub(crate) enum Wire<'a> {
    Plain(&'a mut TcpStream),
    #[cfg(feature = "tls")]
    Tls(&'a mut TlsStream, &'a mut TcpStream),
}

impl Write for Wire<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(stream) => stream.write(buf),
            #[cfg(feature = "tls")]
            Wire::Tls(tls, stream) => tls.write_plaintext(stream, &[io::IoSlice::new(buf)]),
        }
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Wire::Plain(stream) => stream.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Wire::Tls(tls, stream) => tls.write_plaintext(stream, bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
