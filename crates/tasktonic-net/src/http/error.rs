//! [`HttpError`]: why a message was refused on the wire; [`HttpSendError`]: why a response
//! part was not accepted.

use std::fmt;

use bytes::Bytes;
use http::StatusCode;

/// A message refused while it was read: the status a server answers with (400, 413, 431,
/// 501, …) and why. The connection closes after the answer: the stream cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The status that says what was wrong.
    pub status: StatusCode,
    /// What was wrong, in a few words.
    pub reason: String,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, reason: impl Into<String>) -> HttpError {
        HttpError {
            status,
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_request(reason: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, reason)
    }

    pub(crate) fn not_implemented(reason: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_IMPLEMENTED, reason)
    }

    pub(crate) fn too_large(max: usize) -> HttpError {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a body larger than {max} bytes"),
        )
    }

    pub(crate) fn head_too_large(reason: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, reason)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status.as_u16(), self.reason)
    }
}

impl std::error::Error for HttpError {}

/// A response part that was not accepted; what was given comes back where it can.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpSendError {
    /// The connection's outbound queue is at its high watermark: the chunk is handed back;
    /// [`HttpHandler::on_body_writable`](super::HttpHandler::on_body_writable) follows when
    /// it drains.
    Backpressure(Bytes),
    /// The connection is closed (the peer went away); nothing more can be sent.
    Closed,
    /// This request was answered already (webhook mode answers every request at once).
    AlreadyAnswered,
    /// The response cannot be sent as given (a body for a status that has none, a body
    /// longer than its `Content-Length`, …).
    Invalid(String),
}

impl fmt::Display for HttpSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpSendError::Backpressure(b) => write!(
                f,
                "the outbound queue is full ({} bytes handed back)",
                b.len()
            ),
            HttpSendError::Closed => f.write_str("the connection is closed"),
            HttpSendError::AlreadyAnswered => f.write_str("the request was answered already"),
            HttpSendError::Invalid(why) => write!(f, "invalid response: {why}"),
        }
    }
}

impl std::error::Error for HttpSendError {}
