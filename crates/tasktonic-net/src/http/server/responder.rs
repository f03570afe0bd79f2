//! [`Responder`]: how a handler answers one request, now or later, whole or streamed
//! ([`BodyWriter`]); [`Session`]: which connection a request came on.

use std::fmt;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Response, StatusCode, Version};

use super::wire::{OutHead, ServerWire, Wire};
use crate::http::HttpSendError;
use crate::http::head::{BodyFraming, bodiless, connection_lists};
use crate::tcp::{Conn, ConnId, TcpSendError};

/// Identifies one HTTP session (a connection and its keep-alive requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Session(pub(crate) ConnId);

impl Session {
    /// The connection's id.
    pub fn conn_id(self) -> ConnId {
        self.0
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http {}", self.0)
    }
}

/// The answer to one request. Send it once — [`send`](Responder::send) a whole response or
/// [`stream`](Responder::stream) one — in the sparkle that got the request or later, from
/// any tonic it is moved to (it is `Send`).
///
/// The session reads no further request until this one is answered (responses leave in the
/// order of the requests). A responder dropped without an answer sends `500 Internal Server
/// Error` (and logs it), so a forgotten request never hangs its session.
#[must_use = "a request is answered through its Responder (dropping it answers 500)"]
pub struct Responder {
    conn: Conn<ServerWire>,
    version: Version,
    keep_alive: bool,
    head_only: bool,
    answered: bool,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("session", &self.session())
            .field("keep_alive", &self.keep_alive)
            .field("answered", &self.answered)
            .finish()
    }
}

/// What a response's head says about the connection, and how its body is framed.
fn connection_field(version: Version, keep_alive: bool) -> Option<&'static [u8]> {
    if !keep_alive {
        Some(b"close")
    } else if version == Version::HTTP_10 {
        Some(b"keep-alive")
    } else {
        None
    }
}

impl Responder {
    pub(crate) fn new(
        conn: Conn<ServerWire>,
        version: Version,
        keep_alive: bool,
        head_only: bool,
        answered: bool,
    ) -> Responder {
        Responder {
            conn,
            version,
            keep_alive,
            head_only,
            answered,
        }
    }

    /// Answer with the `101` in `head` and switch the session to `protocol`, whose events
    /// reach `base` (a WebSocket upgrade); `tune` makes the new connection's options from
    /// the HTTP session's.
    pub(crate) fn switch_to<P, B>(
        mut self,
        protocol: P,
        base: &tasktonic_core::Handle<B>,
        head: Bytes,
        tune: impl FnOnce(&mut crate::tcp::TcpConfig) + Send + 'static,
    ) -> Result<Conn<P::Message>, crate::tcp::UpgradeError<ServerWire>>
    where
        P: crate::protocol::Protocol,
        B: crate::tcp::TcpEvents<P::Message>,
    {
        self.answered = true;
        self.conn.switch_protocol_tuned(
            protocol,
            base,
            Some(ServerWire(Wire::Raw(head))),
            Some(Box::new(tune)),
        )
    }

    /// The session the request came on.
    pub fn session(&self) -> Session {
        Session(self.conn.id())
    }

    /// True if the request was answered already (webhook mode answers at once; the handler
    /// then only reads the request).
    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// True if the session stays open after this answer (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `keep-alive`).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Answer with a whole response. `Content-Length` and `Date` are set here (a
    /// `Content-Length` or `Transfer-Encoding` given is replaced), and `Connection: close`
    /// when the session ends with it (as the request or the response asked). To a `HEAD`
    /// request only the head goes out.
    ///
    /// # Errors
    ///
    /// [`HttpSendError::Invalid`] for a 1xx status or a body with 204 or 304 (then `500`
    /// is sent instead), [`HttpSendError::Closed`] if the peer is gone,
    /// [`HttpSendError::AlreadyAnswered`] in webhook mode.
    pub fn send<T: Into<Bytes>>(mut self, response: Response<T>) -> Result<(), HttpSendError> {
        if self.answered {
            return Err(HttpSendError::AlreadyAnswered);
        }
        let (parts, body) = response.into_parts();
        let body: Bytes = body.into();
        if parts.status.is_informational() {
            return Err(HttpSendError::Invalid(format!(
                "{} is not a final status",
                parts.status
            )));
        }
        if bodiless(parts.status) && !body.is_empty() {
            return Err(HttpSendError::Invalid(format!(
                "a {} response has no body",
                parts.status
            )));
        }
        self.answered = true;
        let close_asked = connection_lists(&parts.headers, b"close");
        let keep_alive = self.keep_alive && !close_asked;
        let framing = if bodiless(parts.status) {
            BodyFraming::None
        } else {
            BodyFraming::Length(body.len() as u64)
        };
        let head = OutHead {
            status: parts.status,
            headers: parts.headers,
            framing,
            connection: connection_field(self.version, keep_alive),
            head_only: self.head_only,
        };
        let sent = self
            .conn
            .send_unbounded(ServerWire(Wire::Full(Box::new(head), body)));
        end_exchange(&self.conn, keep_alive);
        sent.map_err(|_| HttpSendError::Closed)
    }

    /// Answer with a head now and the body in pieces ([`BodyWriter`]): chunked, unless
    /// `head` has a `Content-Length` (then exactly that many bytes must follow), or the peer
    /// speaks HTTP/1.0 (then the body ends with the connection).
    ///
    /// # Errors
    ///
    /// As [`send`](Responder::send); [`HttpSendError::Invalid`] also for a bodiless status
    /// or an invalid `Content-Length`.
    pub fn stream(mut self, head: Response<()>) -> Result<BodyWriter, HttpSendError> {
        if self.answered {
            return Err(HttpSendError::AlreadyAnswered);
        }
        if bodiless(head.status()) {
            return Err(HttpSendError::Invalid(format!(
                "a {} response has no body to stream",
                head.status()
            )));
        }
        let length = match head.headers().get(CONTENT_LENGTH) {
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| HttpSendError::Invalid("an invalid Content-Length".into()))?,
            ),
            None => None,
        };
        self.answered = true;
        let mut keep_alive = self.keep_alive && !connection_lists(head.headers(), b"close");
        let framing = match length {
            Some(n) => BodyFraming::Length(n),
            None if self.version == Version::HTTP_11 => BodyFraming::Chunked,
            None => {
                keep_alive = false;
                BodyFraming::None
            }
        };
        let (parts, ()) = head.into_parts();
        let out = OutHead {
            status: parts.status,
            headers: parts.headers,
            framing,
            connection: connection_field(self.version, keep_alive),
            head_only: self.head_only,
        };
        self.conn
            .send_unbounded(ServerWire(Wire::Head(Box::new(out))))
            .map_err(|_| HttpSendError::Closed)?;
        Ok(BodyWriter {
            conn: self.conn.clone(),
            remaining: length,
            keep_alive,
            finished: false,
        })
    }
}

/// The exchange is over: read the next request, or close as agreed.
fn end_exchange(conn: &Conn<ServerWire>, keep_alive: bool) {
    if keep_alive {
        conn.resume();
    } else {
        conn.close();
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        log::error!(
            "{}: a request was dropped without an answer; sending 500",
            self.session()
        );
        let mut response = Response::new(Bytes::from_static(b"the request was not answered\n"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        let responder = Responder {
            conn: self.conn.clone(),
            version: self.version,
            keep_alive: self.keep_alive,
            head_only: self.head_only,
            answered: false,
        };
        self.answered = true;
        if responder.send(response).is_err() {
            log::debug!("{}: the 500 was not sent either", self.session());
        }
    }
}

/// The body of a streamed response: [`write`](BodyWriter::write) pieces as they come, then
/// [`finish`](BodyWriter::finish). Writes are refused with [`HttpSendError::Backpressure`]
/// (the piece handed back) while the connection's outbound queue is at its high watermark;
/// [`HttpHandler::on_body_writable`](super::HttpHandler::on_body_writable) says when to go
/// on. A writer dropped unfinished closes the session (the peer sees an incomplete body,
/// never a complete-looking short one).
#[must_use = "a streamed body ends with finish()"]
pub struct BodyWriter {
    conn: Conn<ServerWire>,
    /// Bytes still owed under a `Content-Length`.
    remaining: Option<u64>,
    keep_alive: bool,
    finished: bool,
}

impl fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyWriter")
            .field("session", &self.session())
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl BodyWriter {
    /// The session the body goes to.
    pub fn session(&self) -> Session {
        Session(self.conn.id())
    }

    /// Pieces written and not yet on the wire (with the session's other queued parts).
    pub fn queued(&self) -> usize {
        self.conn.queued()
    }

    /// Queue the next piece of the body (an empty piece is ignored).
    ///
    /// # Errors
    ///
    /// [`HttpSendError::Backpressure`] with the piece, [`HttpSendError::Closed`] if the peer
    /// is gone, [`HttpSendError::Invalid`] past the `Content-Length`.
    pub fn write(&mut self, piece: impl Into<Bytes>) -> Result<(), HttpSendError> {
        let piece: Bytes = piece.into();
        if piece.is_empty() {
            return Ok(());
        }
        if let Some(left) = self.remaining {
            if piece.len() as u64 > left {
                return Err(HttpSendError::Invalid(format!(
                    "{} bytes past the Content-Length ({left} left)",
                    piece.len()
                )));
            }
        }
        let len = piece.len() as u64;
        match self.conn.send(ServerWire(Wire::Chunk(piece))) {
            Ok(()) => {
                if let Some(left) = self.remaining.as_mut() {
                    *left -= len; // checked above: the piece fits
                }
                Ok(())
            }
            Err(TcpSendError::Backpressure(ServerWire(Wire::Chunk(piece)))) => {
                Err(HttpSendError::Backpressure(piece))
            }
            Err(_) => Err(HttpSendError::Closed),
        }
    }

    /// End the body; the session then reads its next request (or closes, as agreed).
    ///
    /// # Errors
    ///
    /// [`HttpSendError::Invalid`] if less than the `Content-Length` was written (the
    /// session closes: the peer sees a short body), [`HttpSendError::Closed`] if the peer is
    /// gone.
    pub fn finish(mut self) -> Result<(), HttpSendError> {
        self.finished = true;
        if let Some(left) = self.remaining
            && left > 0
        {
            self.conn.close();
            return Err(HttpSendError::Invalid(format!(
                "the body ended {left} bytes short of its Content-Length"
            )));
        }
        let sent = self.conn.send_unbounded(ServerWire(Wire::End));
        end_exchange(&self.conn, self.keep_alive);
        sent.map_err(|_| HttpSendError::Closed)
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        if !self.finished {
            log::error!(
                "{}: a streamed body was dropped unfinished; closing the session",
                self.session()
            );
            self.conn.close();
        }
    }
}
