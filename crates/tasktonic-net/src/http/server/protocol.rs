//! The server's protocol: requests in (head, then a body by `Content-Length` or chunked,
//! within the limits), responses out; one request in progress at a time.
//!
//! After handing a request to the base the protocol pauses ([`ProtocolIo::pause`]): the
//! connection decodes nothing more (pipelined requests wait, read but undecoded) until the
//! request's response is complete and the responder resumes it. So responses leave in the
//! order of the requests, whenever and from whichever sparkle the base answers, and a
//! pipelining peer cannot make the server buffer more than one read's worth.
//! Requests the router refuses (404, 405, 501) and, in webhook mode, every request are
//! answered here, without a pause.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{ALLOW, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Version};

use super::router::{ErasedHandler, Routed, Router};
use super::wire::{Incoming, OutHead, ServerWire, Wire};
use crate::codec::CodecError;
use crate::http::HttpError;
use crate::http::framing::{Chunked, ChunkedReader, Framing, framing};
use crate::http::head::{
    BodyFraming, RequestHead, head_end, keep_alive, parse_request, put_error_response,
    put_response_head,
};
use crate::http::limits::HttpLimits;
use crate::protocol::{Protocol, ProtocolIo};

/// What every connection of one server shares.
pub(crate) struct Settings {
    pub(crate) limits: HttpLimits,
    pub(crate) router: Router,
    pub(crate) webhook: bool,
}

/// Where a request whose head was read goes once its body is in.
enum Target {
    /// To the base (a route's handler, or `on_request`).
    Base(Option<ErasedHandler>),
    /// Answered here (404, 405, 501) and not handed over.
    Refused(HttpError, HeaderMap),
}

/// A request whose body is being read.
struct Pending {
    head: RequestHead,
    target: Target,
    keep_alive: bool,
}

enum Reading {
    Head,
    Body(Box<Pending>, usize),
    Chunked(Box<Pending>, ChunkedReader),
}

/// The server side of HTTP/1.1 as a [`Protocol`].
pub(crate) struct ServerProtocol {
    settings: Arc<Settings>,
    reading: Reading,
    /// Bytes of the buffer already searched for the end of a head.
    scanned: usize,
    /// Encoding a streamed body: chunked (else raw, within a `Content-Length`).
    chunked: bool,
    /// A chunk's data was written and its CRLF is still owed.
    chunk_open: bool,
    /// The response being written is to a `HEAD`: no body goes out.
    head_only: bool,
}

impl Clone for ServerProtocol {
    /// A fresh protocol for a new connection, sharing the server's settings.
    fn clone(&self) -> Self {
        ServerProtocol::new(self.settings.clone())
    }
}

impl ServerProtocol {
    pub(crate) fn new(settings: Arc<Settings>) -> ServerProtocol {
        ServerProtocol {
            settings,
            reading: Reading::Head,
            scanned: 0,
            chunked: false,
            chunk_open: false,
            head_only: false,
        }
    }

    /// Read a head, if a whole one is in `src`.
    fn read_head(
        &mut self,
        src: &mut BytesMut,
        io: &mut ProtocolIo<'_>,
    ) -> Result<Option<Reading>, HttpError> {
        let limits = &self.settings.limits;
        let Some(end) = head_end(src, self.scanned) else {
            if src.len() > limits.max_head {
                return Err(HttpError::head_too_large(format!(
                    "a head larger than {} bytes",
                    limits.max_head
                )));
            }
            self.scanned = src.len();
            return Ok(None);
        };
        self.scanned = 0;
        if end > limits.max_head {
            return Err(HttpError::head_too_large(format!(
                "a head larger than {} bytes",
                limits.max_head
            )));
        }
        let head_bytes = src.split_to(end).freeze();
        let head = parse_request(&head_bytes, limits)?;
        if head.version == Version::HTTP_10 && head.headers.contains_key(TRANSFER_ENCODING) {
            // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            return Err(HttpError::bad_request(
                "Transfer-Encoding in an HTTP/1.0 request (a smuggling attempt)",
            ));
        }
        let framing = framing(&head.headers, true)?;
        let mut keep_alive = keep_alive(head.version, &head.headers);
        let target = match self.settings.router.route(&head.method, head.uri.path()) {
            Routed::To(h) => Target::Base(Some(h)),
            Routed::Base => Target::Base(None),
            Routed::NotFound => Target::Refused(
                HttpError::new(StatusCode::NOT_FOUND, "no such resource"),
                HeaderMap::new(),
            ),
            Routed::MethodNotAllowed(allow) => {
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    h.insert(ALLOW, v);
                }
                Target::Refused(
                    HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
                    h,
                )
            }
            Routed::NotImplemented => Target::Refused(
                HttpError::not_implemented("a method this server does not implement"),
                HeaderMap::new(),
            ),
        };
        let has_body = !matches!(framing, Framing::Length(0));
        let expects = head
            .headers
            .get(EXPECT)
            .map(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if let Framing::Length(n) = framing
            && n > limits.max_body as u64
        {
            return Err(HttpError::too_large(limits.max_body));
        }
        if has_body && expects == Some(true) && head.version == Version::HTTP_11 {
            if matches!(target, Target::Refused(..)) {
                // The peer waits for our word before sending the body: refuse now and close
                // rather than wait for a body that may never come.
                keep_alive = false;
            } else {
                io.reply(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
        }
        let pending = Box::new(Pending {
            head,
            target,
            keep_alive,
        });
        if !keep_alive && has_body && matches!(pending.target, Target::Refused(..)) {
            // Answered at once, then closed: the body is never read.
            self.complete(*pending, Bytes::new(), io, &mut |_| {});
            return Ok(Some(Reading::Head));
        }
        Ok(Some(match framing {
            Framing::Length(n) => Reading::Body(pending, usize::try_from(n).unwrap_or(usize::MAX)),
            Framing::Chunked => Reading::Chunked(
                pending,
                ChunkedReader::new(limits.max_body, limits.max_head),
            ),
            Framing::UntilClose => Reading::Body(pending, 0),
        }))
    }

    /// A request is complete: hand it over (true: the base answers it, so pause), or answer
    /// it here.
    fn complete(
        &mut self,
        pending: Pending,
        body: Bytes,
        io: &mut ProtocolIo<'_>,
        each: &mut dyn FnMut(ServerWire),
    ) -> bool {
        let Pending {
            head,
            target,
            keep_alive,
        } = pending;
        let handler = match target {
            Target::Refused(error, extra) => {
                let buf = io.reply_buf();
                refusal(buf, &error, &extra, keep_alive, head.method == Method::HEAD);
                if !keep_alive {
                    io.close();
                }
                return false;
            }
            Target::Base(handler) => handler,
        };
        let head_only = head.method == Method::HEAD;
        let mut request = Request::new(body);
        *request.method_mut() = head.method;
        *request.uri_mut() = head.uri;
        *request.version_mut() = head.version;
        *request.headers_mut() = head.headers;
        let webhook = self.settings.webhook;
        if webhook {
            let buf = io.reply_buf();
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain"),
            );
            put_response_head(
                buf,
                StatusCode::OK,
                &headers,
                BodyFraming::Length(2),
                (!keep_alive).then_some(b"close".as_slice()),
            );
            if !head_only {
                buf.extend_from_slice(b"OK");
            }
            if !keep_alive {
                io.close();
            }
        }
        each(ServerWire(Wire::Request(Box::new(Incoming {
            request,
            handler,
            keep_alive,
            head_only,
            answered: webhook,
        }))));
        !webhook
    }
}

/// A refusal that keeps the connection (404, 405, 501) unless the request asked to close.
fn refusal(buf: &mut BytesMut, error: &HttpError, extra: &HeaderMap, keep: bool, head: bool) {
    let body = format!("{}\n", error.reason);
    let mut headers = extra.clone();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    put_response_head(
        buf,
        error.status,
        &headers,
        BodyFraming::Length(body.len() as u64),
        (!keep).then_some(b"close".as_slice()),
    );
    if !head {
        buf.extend_from_slice(body.as_bytes());
    }
}

/// The codec error a refusal closes the connection with.
fn codec_error(e: &HttpError, limits: &HttpLimits) -> CodecError {
    match e.status {
        StatusCode::PAYLOAD_TOO_LARGE => CodecError::FrameTooLarge {
            len: limits.max_body as u64 + 1,
            max: limits.max_body,
        },
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            CodecError::malformed("HTTP request head refused with 431", e.clone())
        }
        _ => CodecError::malformed(
            format!("HTTP request refused with {}", e.status.as_u16()),
            e.clone(),
        ),
    }
}

impl Protocol for ServerProtocol {
    type Message = ServerWire;

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(ServerWire),
    {
        let mut handed = 0;
        while handed < max {
            let step = match std::mem::replace(&mut self.reading, Reading::Head) {
                Reading::Head => match self.read_head(src, io) {
                    Ok(Some(next)) => {
                        self.reading = next;
                        if io.wants_close() {
                            return Ok(handed);
                        }
                        continue;
                    }
                    Ok(None) => return Ok(handed),
                    Err(e) => Err(e),
                },
                Reading::Body(pending, left) => {
                    if src.len() < left {
                        self.reading = Reading::Body(pending, left);
                        return Ok(handed);
                    }
                    let body = src.split_to(left).freeze();
                    Ok((pending, body))
                }
                Reading::Chunked(pending, mut reader) => match reader.read(src) {
                    Ok(Chunked::Partial) => {
                        self.reading = Reading::Chunked(pending, reader);
                        return Ok(handed);
                    }
                    Ok(Chunked::Done(body)) => Ok((pending, body.freeze())),
                    Err(e) => Err(e),
                },
            };
            match step {
                Ok((pending, body)) => {
                    let mut counted = |m| {
                        handed += 1;
                        each(m)
                    };
                    if self.complete(*pending, body, io, &mut counted) {
                        io.pause();
                        return Ok(handed);
                    }
                    if io.wants_close() {
                        return Ok(handed);
                    }
                }
                Err(e) => {
                    log::info!("HTTP request refused: {e}");
                    put_error_response(io.reply_buf(), &e, &HeaderMap::new());
                    return Err(codec_error(&e, &self.settings.limits));
                }
            }
        }
        Ok(handed)
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        _io: &mut ProtocolIo<'_>,
    ) -> Result<Option<ServerWire>, CodecError> {
        let buffered = src.len();
        let inside = !matches!(self.reading, Reading::Head);
        if buffered == 0 && !inside {
            return Ok(None);
        }
        src.clear();
        self.reading = Reading::Head;
        Err(CodecError::Truncated { buffered })
    }

    fn reply_message(&mut self, bytes: Bytes) -> Option<ServerWire> {
        Some(ServerWire(Wire::Raw(bytes)))
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a ServerWire,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        match &item.0 {
            Wire::Full(head, body) => {
                self.put_head(head, dst);
                if head.head_only || body.is_empty() {
                    return Ok(None);
                }
                if body.len() < 4096 {
                    dst.extend_from_slice(body);
                    return Ok(None);
                }
                Ok(Some(body))
            }
            Wire::Head(head) => {
                self.put_head(head, dst);
                self.chunked = head.framing == BodyFraming::Chunked;
                self.chunk_open = false;
                self.head_only = head.head_only;
                Ok(None)
            }
            Wire::Chunk(data) => {
                if self.head_only || data.is_empty() {
                    return Ok(None);
                }
                if self.chunked {
                    if self.chunk_open {
                        dst.extend_from_slice(b"\r\n");
                    }
                    put_hex(dst, data.len());
                    dst.extend_from_slice(b"\r\n");
                    self.chunk_open = true;
                }
                Ok(Some(data))
            }
            Wire::End => {
                if self.chunked && !self.head_only {
                    if self.chunk_open {
                        dst.extend_from_slice(b"\r\n");
                    }
                    dst.extend_from_slice(b"0\r\n\r\n");
                }
                self.chunked = false;
                self.chunk_open = false;
                self.head_only = false;
                Ok(None)
            }
            Wire::Raw(bytes) => Ok(Some(bytes)),
            Wire::Request(_) => Err(CodecError::unencodable_msg(
                "a request cannot be sent on a server connection",
            )),
        }
    }
}

impl ServerProtocol {
    fn put_head(&mut self, head: &OutHead, dst: &mut BytesMut) {
        put_response_head(
            dst,
            head.status,
            &head.headers,
            head.framing,
            head.connection,
        );
    }
}

/// Append `n` in hexadecimal.
fn put_hex(dst: &mut BytesMut, n: usize) {
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        let d = (n >> (i * 4)) & 0xf;
        dst.extend_from_slice(&[b"0123456789abcdef"[d]]);
    }
}

/// A server protocol for the fuzz targets: no routes (every request goes to the base).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_protocol(limits: HttpLimits) -> ServerProtocol {
    ServerProtocol::new(Arc::new(Settings {
        limits,
        router: Router::default(),
        webhook: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::put_decimal;

    #[test]
    fn hex() {
        for n in [0usize, 1, 15, 16, 255, 4096, 0xdead_beef] {
            let mut b = BytesMut::new();
            put_hex(&mut b, n);
            assert_eq!(std::str::from_utf8(&b).expect("ascii"), format!("{n:x}"));
        }
        let mut b = BytesMut::new();
        put_decimal(&mut b, 3);
        assert_eq!(&b[..], b"3");
    }
}
