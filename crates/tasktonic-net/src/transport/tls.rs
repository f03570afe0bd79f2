//! TLS on a connection's non-blocking socket: rustls driven from the selector thread.
//!
//! Reads: the socket's bytes (one read, at most 64 KiB) are fed to rustls record by record;
//! after each `process_new_packets` its plaintext is drained into the connection's read
//! buffer at once — rustls holds at most 16 KiB of received plaintext and refuses to read
//! more until it is drained, so records of any size, split anywhere across reads, go
//! through. Writes: see [`Wire`](super::Wire).

use std::error::Error;
use std::fmt;
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use bytes::BytesMut;
use mio::net::TcpStream;
use rustls::{ClientConnection, Connection, ServerConnection};

use super::tls_config::Tls;

/// What went wrong with TLS on a connection (in
/// [`CloseReason::Tls`](crate::tcp::CloseReason::Tls)) or with its settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TlsError {
    /// Certificates, keys or names could not be used.
    Config {
        /// What was being set up.
        what: String,
        /// Why it failed (`None` if `what` says it all).
        source: Option<Arc<dyn Error + Send + Sync>>,
    },
    /// The TLS protocol failed: the handshake (an unknown CA, a certificate not valid for
    /// the name, no shared protocol version or ALPN protocol), a corrupt record, or a fatal
    /// alert from the peer.
    Protocol(rustls::Error),
    /// The peer ended the connection without `close_notify`: what it sent may have been
    /// cut short by an attacker, so this is not reported as a clean close.
    Truncated,
    /// The peer sent data past the boundary of a STARTTLS upgrade before the handshake
    /// (command injection across the upgrade, CVE-2011-0411): the upgrade was refused.
    DataPastUpgrade,
}

impl TlsError {
    pub(crate) fn config(
        what: impl Into<String>,
        e: impl Error + Send + Sync + 'static,
    ) -> TlsError {
        TlsError::Config {
            what: what.into(),
            source: Some(Arc::new(e)),
        }
    }

    pub(crate) fn config_msg(what: impl Into<String>) -> TlsError {
        TlsError::Config {
            what: what.into(),
            source: None,
        }
    }

    /// True if the peer's certificate was refused (unknown issuer, wrong name, expired, …).
    pub fn is_certificate_error(&self) -> bool {
        matches!(
            self,
            TlsError::Protocol(rustls::Error::InvalidCertificate(_))
        )
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Config {
                what,
                source: Some(e),
            } => write!(f, "TLS configuration: {what}: {e}"),
            TlsError::Config { what, source: None } => write!(f, "TLS configuration: {what}"),
            TlsError::Protocol(e) => write!(f, "TLS: {e}"),
            TlsError::Truncated => f.write_str(
                "TLS: the peer closed the connection without close_notify (possible truncation)",
            ),
            TlsError::DataPastUpgrade => f.write_str(
                "TLS upgrade refused: the peer sent data past the upgrade's boundary \
                 (plaintext injection)",
            ),
        }
    }
}

impl Error for TlsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TlsError::Config {
                source: Some(e), ..
            } => Some(&**e as &(dyn Error + 'static)),
            TlsError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

/// What was agreed in a completed handshake (given to
/// [`TcpEvents::on_secured`](crate::tcp::TcpEvents::on_secured)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSession {
    /// The ALPN protocol agreed on, if any.
    pub alpn: Option<Vec<u8>>,
    /// On a server, the name the client asked for (SNI); on a client, `None`.
    pub server_name: Option<String>,
    /// The protocol version, such as `TLSv1_3`.
    pub version: String,
    /// The cipher suite, such as `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
}

/// A TLS session on a connection's socket.
pub(crate) struct TlsStream {
    conn: Connection,
    /// The peer's `close_notify` arrived.
    close_notify: bool,
}

impl TlsStream {
    pub(crate) fn new(tls: &Tls) -> Result<TlsStream, TlsError> {
        let conn = match tls {
            Tls::Server(acceptor) => ServerConnection::new(acceptor.config.clone())
                .map(Connection::from)
                .map_err(TlsError::Protocol)?,
            Tls::Client { connector, name } => {
                if !connector.verifies() {
                    log::warn!(
                        "TLS to {name:?} WITHOUT certificate verification \
                         (TlsConnector::dangerous_accept_any_certificate): not authenticated"
                    );
                }
                ClientConnection::new(connector.config.clone(), name.clone())
                    .map(Connection::from)
                    .map_err(TlsError::Protocol)?
            }
        };
        Ok(TlsStream {
            conn,
            close_notify: false,
        })
    }

    /// True until the handshake has completed.
    #[inline]
    pub(crate) fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True if records wait to be written (handshake messages, alerts, data).
    #[inline]
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Feed bytes read from the socket; append the plaintext they complete to `inbuf`.
    /// True once the peer's `close_notify` arrived (bytes after it are discarded).
    ///
    /// # Errors
    ///
    /// [`TlsError::Protocol`]: the records are bad or the handshake failed. An alert for the
    /// peer is queued: [`push`](TlsStream::push) it before closing.
    pub(crate) fn feed(&mut self, mut data: &[u8], inbuf: &mut BytesMut) -> Result<bool, TlsError> {
        while !data.is_empty() && !self.close_notify {
            // Never called with an empty slice: that would read as the socket's EOF.
            if let Err(e) = self.conn.read_tls(&mut data) {
                // Cannot happen while the plaintext is drained after every record batch;
                // reported rather than looped on.
                return Err(TlsError::Protocol(rustls::Error::General(format!(
                    "cannot take TLS records: {e}"
                ))));
            }
            let state = self
                .conn
                .process_new_packets()
                .map_err(TlsError::Protocol)?;
            self.drain(inbuf);
            self.close_notify = state.peer_has_closed();
        }
        Ok(self.close_notify)
    }

    /// Move the plaintext rustls holds into `inbuf`.
    fn drain(&mut self, inbuf: &mut BytesMut) {
        loop {
            let mut reader = self.conn.reader();
            match reader.fill_buf() {
                Ok([]) => return, // close_notify: the end of the plaintext stream
                Ok(chunk) => {
                    let n = chunk.len();
                    inbuf.extend_from_slice(chunk);
                    reader.consume(n);
                }
                // Nothing buffered (WouldBlock), or the socket's EOF without close_notify
                // (UnexpectedEof, reported by `socket_eof`).
                Err(_) => return,
            }
        }
    }

    /// The socket reached its end.
    ///
    /// # Errors
    ///
    /// [`TlsError::Truncated`] if the peer did not send `close_notify` first.
    pub(crate) fn socket_eof(&self) -> Result<(), TlsError> {
        if self.close_notify {
            Ok(())
        } else {
            Err(TlsError::Truncated)
        }
    }

    /// Write the records rustls holds: `Ok(true)` when all are written, `Ok(false)` at
    /// `WouldBlock` (the writable event resumes).
    pub(crate) fn push(&mut self, stream: &mut TcpStream) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "socket accepted no bytes",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Plaintext through TLS (see [`Wire`](super::Wire)): how much of `bufs` rustls took.
    pub(crate) fn write_plaintext(
        &mut self,
        stream: &mut TcpStream,
        bufs: &[io::IoSlice<'_>],
    ) -> io::Result<usize> {
        if !self.push(stream)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.conn.writer().write_vectored(bufs)?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // rustls's buffer is full (it only fills while records wait): as the socket's
            // would-block.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.push(stream)?;
        Ok(n)
    }

    /// Queue `close_notify` (written by the next [`push`](TlsStream::push)).
    pub(crate) fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// What the completed handshake agreed.
    pub(crate) fn session(&self) -> TlsSession {
        TlsSession {
            alpn: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name: match &self.conn {
                Connection::Server(s) => s.server_name().map(str::to_string),
                Connection::Client(_) => None,
            },
            version: self
                .conn
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            cipher_suite: self
                .conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
        }
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl TlsStream {
    /// Move the records rustls holds into `out` (an in-memory peer, for the fuzz targets).
    pub(crate) fn write_records(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            if self.conn.write_tls(out).is_err() {
                return;
            }
        }
    }

    /// Queue plaintext (written as records by [`write_records`](TlsStream::write_records)).
    pub(crate) fn write_plain(&mut self, data: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(data)
    }
}
