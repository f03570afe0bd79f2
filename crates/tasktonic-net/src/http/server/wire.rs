//! [`ServerWire`]: what an HTTP server connection carries, both ways (a request in; a
//! response, or its head, chunks and end, out). Users never build one: they see
//! [`Request`](http::Request)s and answer through a [`Responder`](super::Responder).

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};

use super::router::ErasedHandler;
use crate::http::head::BodyFraming;

/// One message of an HTTP server connection (opaque: the [`HttpHandler`](super::HttpHandler)
/// side of the server turns it into requests and responses).
pub struct ServerWire(pub(crate) Wire);

impl fmt::Debug for ServerWire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Wire::Request(r) => write!(
                f,
                "ServerWire::Request({} {})",
                r.request.method(),
                r.request.uri()
            ),
            Wire::Full(h, b) => write!(f, "ServerWire::Response({}, {} bytes)", h.status, b.len()),
            Wire::Head(h) => write!(f, "ServerWire::Head({})", h.status),
            Wire::Chunk(b) => write!(f, "ServerWire::Chunk({} bytes)", b.len()),
            Wire::End => f.write_str("ServerWire::End"),
            Wire::Raw(b) => write!(f, "ServerWire::Raw({} bytes)", b.len()),
        }
    }
}

pub(crate) enum Wire {
    /// A whole request, in.
    Request(Box<Incoming>),
    /// A whole response, out.
    Full(Box<OutHead>, Bytes),
    /// The head of a streamed response, out.
    Head(Box<OutHead>),
    /// A piece of a streamed body, out.
    Chunk(Bytes),
    /// The end of a streamed body, out.
    End,
    /// An answer the protocol gave itself (a refusal, a `100 Continue`), queued behind the
    /// answers before it.
    Raw(Bytes),
}

/// A request as the protocol hands it over.
pub(crate) struct Incoming {
    pub(crate) request: Request<Bytes>,
    /// The route's handler; `None`: the base's `on_request`.
    pub(crate) handler: Option<ErasedHandler>,
    pub(crate) keep_alive: bool,
    pub(crate) head_only: bool,
    /// Answered by the protocol already (webhook mode).
    pub(crate) answered: bool,
}

/// A response head, ready to write.
pub(crate) struct OutHead {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: BodyFraming,
    pub(crate) connection: Option<&'static [u8]>,
    pub(crate) head_only: bool,
}
