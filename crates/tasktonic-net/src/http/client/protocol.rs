//! The client's protocol: requests out, responses in — by `Content-Length`, chunked, or
//! delimited by the server's close — within the limits. Interim (1xx) responses are skipped;
//! responses to `HEAD`, and 204 and 304, have no body.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Response, StatusCode, Uri};

use crate::codec::CodecError;
use crate::http::HttpError;
use crate::http::framing::{Chunked, ChunkedReader, Framing, framing};
use crate::http::head::{
    ResponseHead, bodiless, head_end, keep_alive, parse_response, put_decimal, put_headers,
};
use crate::http::limits::HttpLimits;
use crate::protocol::{Protocol, ProtocolIo};

/// One message of an HTTP client connection (opaque).
pub struct ClientWire(pub(crate) CWire);

impl fmt::Debug for ClientWire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            CWire::Request(r) => write!(f, "ClientWire::Request({} {})", r.method, r.uri),
            CWire::Response(r, _) => write!(f, "ClientWire::Response({})", r.status()),
        }
    }
}

pub(crate) enum CWire {
    Request(Box<OutRequest>),
    /// A whole response, and whether its connection can carry the next request (not after
    /// `Connection: close`, nor after a body the close delimited).
    Response(Box<Response<Bytes>>, bool),
}

/// A request as written.
pub(crate) struct OutRequest {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    /// The `Host` field's value.
    pub(crate) host: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

enum Reading {
    Head,
    Body(ResponseHead, usize),
    Chunked(ResponseHead, ChunkedReader),
    UntilClose(ResponseHead),
}

/// The client side of HTTP/1.1 as a [`Protocol`].
pub(crate) struct ClientProtocol {
    limits: HttpLimits,
    /// Methods of the requests written, whose responses are due (in order).
    due: VecDeque<Method>,
    reading: Reading,
    scanned: usize,
}

impl Clone for ClientProtocol {
    fn clone(&self) -> Self {
        ClientProtocol::new(self.limits.clone())
    }
}

impl ClientProtocol {
    pub(crate) fn new(limits: HttpLimits) -> ClientProtocol {
        ClientProtocol {
            limits,
            due: VecDeque::new(),
            reading: Reading::Head,
            scanned: 0,
        }
    }

    fn read_head(&mut self, src: &mut BytesMut) -> Result<Option<Reading>, HttpError> {
        let Some(end) = head_end(src, self.scanned) else {
            if src.len() > self.limits.max_head {
                return Err(HttpError::head_too_large("a response head over the limit"));
            }
            self.scanned = src.len();
            return Ok(None);
        };
        self.scanned = 0;
        if end > self.limits.max_head {
            return Err(HttpError::head_too_large("a response head over the limit"));
        }
        let bytes = src.split_to(end).freeze();
        let head = parse_response(&bytes, &self.limits)?;
        if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
            return Ok(Some(Reading::Head)); // interim: the final response follows
        }
        let method = self
            .due
            .pop_front()
            .ok_or_else(|| HttpError::bad_request("a response to no request"))?;
        if method == Method::HEAD || bodiless(head.status) {
            return Ok(Some(Reading::Body(head, 0)));
        }
        Ok(Some(match framing(&head.headers, false)? {
            Framing::Length(n) => {
                if n > self.limits.max_body as u64 {
                    return Err(HttpError::too_large(self.limits.max_body));
                }
                Reading::Body(head, usize::try_from(n).unwrap_or(usize::MAX))
            }
            Framing::Chunked => Reading::Chunked(
                head,
                ChunkedReader::new(self.limits.max_body, self.limits.max_head),
            ),
            Framing::UntilClose => Reading::UntilClose(head),
        }))
    }
}

fn response(head: ResponseHead, body: Bytes, until_close: bool) -> ClientWire {
    let reusable = !until_close && keep_alive(head.version, &head.headers);
    let mut r = Response::new(body);
    *r.status_mut() = head.status;
    *r.version_mut() = head.version;
    *r.headers_mut() = head.headers;
    ClientWire(CWire::Response(Box::new(r), reusable))
}

fn codec_error(e: HttpError) -> CodecError {
    CodecError::malformed_msg(format!("HTTP response refused: {}", e.reason))
}

impl Protocol for ClientProtocol {
    type Message = ClientWire;

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        _io: &mut ProtocolIo<'_>,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(ClientWire),
    {
        let mut handed = 0;
        while handed < max {
            match std::mem::replace(&mut self.reading, Reading::Head) {
                Reading::Head => match self.read_head(src).map_err(codec_error)? {
                    Some(next) => self.reading = next,
                    None => return Ok(handed),
                },
                Reading::Body(head, left) => {
                    if src.len() < left {
                        self.reading = Reading::Body(head, left);
                        return Ok(handed);
                    }
                    each(response(head, src.split_to(left).freeze(), false));
                    handed += 1;
                }
                Reading::Chunked(head, mut reader) => {
                    match reader.read(src).map_err(codec_error)? {
                        Chunked::Partial => {
                            self.reading = Reading::Chunked(head, reader);
                            return Ok(handed);
                        }
                        Chunked::Done(body) => {
                            each(response(head, body.freeze(), false));
                            handed += 1;
                        }
                    }
                }
                Reading::UntilClose(head) => {
                    if src.len() > self.limits.max_body {
                        return Err(codec_error(HttpError::too_large(self.limits.max_body)));
                    }
                    self.reading = Reading::UntilClose(head);
                    return Ok(handed);
                }
            }
        }
        Ok(handed)
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        _io: &mut ProtocolIo<'_>,
    ) -> Result<Option<ClientWire>, CodecError> {
        match std::mem::replace(&mut self.reading, Reading::Head) {
            Reading::UntilClose(head) => {
                let body = src.split().freeze();
                Ok(Some(response(head, body, true)))
            }
            Reading::Head if src.is_empty() => Ok(None),
            _ => {
                let buffered = src.len();
                src.clear();
                Err(CodecError::Truncated { buffered })
            }
        }
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a ClientWire,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        let CWire::Request(req) = &item.0 else {
            return Err(CodecError::unencodable_msg(
                "a response cannot be sent on a client connection",
            ));
        };
        dst.reserve(64 + req.headers.len() * 32);
        dst.extend_from_slice(req.method.as_str().as_bytes());
        dst.extend_from_slice(b" ");
        let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        dst.extend_from_slice(if target.is_empty() { "/" } else { target }.as_bytes());
        dst.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        dst.extend_from_slice(req.host.as_bytes());
        dst.extend_from_slice(b"\r\n");
        put_headers(dst, &req.headers);
        let needs_length = !req.body.is_empty()
            || matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
        if needs_length {
            dst.extend_from_slice(b"content-length: ");
            put_decimal(dst, req.body.len() as u64);
            dst.extend_from_slice(b"\r\n");
        }
        dst.extend_from_slice(b"\r\n");
        self.due.push_back(req.method.clone());
        if req.body.is_empty() {
            return Ok(None);
        }
        if req.body.len() < 4096 {
            dst.extend_from_slice(&req.body);
            return Ok(None);
        }
        Ok(Some(&req.body))
    }
}

/// A client protocol for the fuzz targets, awaiting responses to eight requests: `GET`s, and
/// a `HEAD` for every bit set in `heads`.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_protocol(limits: HttpLimits, heads: u8) -> ClientProtocol {
    let mut p = ClientProtocol::new(limits);
    for bit in 0..8 {
        p.due.push_back(if heads & (1 << bit) == 0 {
            Method::GET
        } else {
            Method::HEAD
        });
    }
    p
}
