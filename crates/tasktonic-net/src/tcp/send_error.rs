//! [`TcpSendError`]: a message `send` did not accept, handed back with the reason.

use std::error::Error;
use std::fmt;

/// `send` could not accept the message; it is handed back.
pub enum TcpSendError<M> {
    /// The outbound queue is at its high watermark; [`TcpEvents::on_writable`](super::TcpEvents::on_writable)
    /// follows when it drains.
    Backpressure(M),
    /// Not connected (and not a client that re-sends after reconnecting).
    NotConnected(M),
    /// The connection is closed for good.
    Closed(M),
}

impl<M> TcpSendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            TcpSendError::Backpressure(m)
            | TcpSendError::NotConnected(m)
            | TcpSendError::Closed(m) => m,
        }
    }
}

impl<M> fmt::Debug for TcpSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpSendError::Backpressure(_) => "Backpressure(..)",
            TcpSendError::NotConnected(_) => "NotConnected(..)",
            TcpSendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<M> fmt::Display for TcpSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpSendError::Backpressure(_) => "the outbound queue is full (back-pressure)",
            TcpSendError::NotConnected(_) => "not connected",
            TcpSendError::Closed(_) => "the connection is closed",
        })
    }
}

impl<M> Error for TcpSendError<M> {}
