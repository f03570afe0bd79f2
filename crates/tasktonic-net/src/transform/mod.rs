//! Message transforms — tinyproto's plugins: a chain applied to every message in order on
//! send and in reverse on receive, over any protocol whose messages are [`Bytes`]
//! (`LengthDelimited`, [`TinyProto`](crate::tinyproto::TinyProto), …); typed messages take
//! the chain through [`MsgPack::over`](crate::codec::MsgPack::over).
//!
//! Two ship with the crate: [`Deflate`] (compression, bounded on receive: a message that
//! would inflate past its limit is an error, never an allocation) and [`Crc32`] (a checksum
//! appended on send and checked on receive: a corrupted message is a codec error). A transform
//! that refuses a received message makes it a skippable [`CodecError::Malformed`]: the
//! connection's
//! `OnMalformed` decides (close, by default, or skip it). An empty message passes untouched
//! both ways (it is a length-prefixed codec's heartbeat).
//!
//! # Examples
//!
//! ```
//! use tasktonic_net::codec::LengthDelimited;
//! use tasktonic_net::tcp::TcpServer;
//! use tasktonic_net::transform::{Crc32, Deflate, Transformed};
//!
//! // On send: compress, then checksum; on receive: check, then inflate (at most 8 MiB).
//! let protocol = Transformed::new(LengthDelimited::new())
//!     .with(Deflate::new(6, 8 << 20))
//!     .with(Crc32);
//! let addr = "127.0.0.1:0".parse().expect("an address");
//! let server = TcpServer::bind(addr, protocol);
//! # drop(server);
//! ```

mod crc;
mod deflate;

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

pub use self::crc::Crc32;
pub use self::deflate::Deflate;
use crate::codec::CodecError;
use crate::protocol::{Protocol, ProtocolIo, decode_one};

/// One step of a chain: what a message becomes on its way out, and back on its way in.
pub trait Transform: Send + Sync + 'static {
    /// The message on its way to the peer.
    ///
    /// # Errors
    ///
    /// It cannot be sent: handed back to the base as unencodable.
    fn on_send(&self, msg: Bytes) -> Result<Bytes, CodecError>;

    /// The message on its way in (undoing [`on_send`](Transform::on_send)).
    ///
    /// # Errors
    ///
    /// The message is corrupt or over a limit: a codec error on the connection.
    fn on_receive(&self, msg: Bytes) -> Result<Bytes, CodecError>;
}

/// A protocol `P` with a chain of [`Transform`]s on its messages (see the [module
/// docs](self)).
pub struct Transformed<P> {
    inner: P,
    chain: Arc<[Arc<dyn Transform>]>,
    /// The message the inner protocol holds half-sent, as the base gave it: handed back (or
    /// counted written) instead of its transformed form.
    last_sent: Option<Bytes>,
}

impl<P: fmt::Debug> fmt::Debug for Transformed<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transformed")
            .field("inner", &self.inner)
            .field("transforms", &self.chain.len())
            .finish()
    }
}

impl<P: Clone> Clone for Transformed<P> {
    fn clone(&self) -> Self {
        Transformed {
            inner: self.inner.clone(),
            chain: self.chain.clone(),
            last_sent: None,
        }
    }
}

impl<P: Protocol<Message = Bytes>> Transformed<P> {
    /// `inner` with no transforms yet.
    pub fn new(inner: P) -> Transformed<P> {
        Transformed {
            inner,
            chain: Arc::from(Vec::new()),
            last_sent: None,
        }
    }

    /// Add `transform` at the end of the chain: applied after the others on send, before
    /// them on receive.
    pub fn with(self, transform: impl Transform) -> Self {
        let mut chain: Vec<Arc<dyn Transform>> = self.chain.iter().cloned().collect();
        chain.push(Arc::new(transform));
        Transformed {
            inner: self.inner,
            chain: Arc::from(chain),
            last_sent: None,
        }
    }

    fn receive(&self, mut msg: Bytes) -> Result<Bytes, CodecError> {
        if msg.is_empty() {
            return Ok(msg);
        }
        for t in self.chain.iter().rev() {
            msg = t.on_receive(msg).map_err(skippable)?;
        }
        Ok(msg)
    }
}

/// A received message a transform refused was cut whole: the stream is still in sync.
fn skippable(e: CodecError) -> CodecError {
    match e {
        CodecError::Malformed { .. } => e,
        other => CodecError::Malformed {
            reason: other.to_string(),
            source: None,
        },
    }
}

impl<P: Protocol<Message = Bytes>> Protocol for Transformed<P> {
    type Message = Bytes;

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(Bytes),
    {
        // One message at a time: one a transform refuses ends the run.
        let mut handed = 0;
        while handed < max {
            let Some(msg) = decode_one(&mut self.inner, src, io)? else {
                break;
            };
            each(self.receive(msg)?);
            handed += 1;
        }
        Ok(handed)
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        io: &mut ProtocolIo<'_>,
    ) -> Result<Option<Bytes>, CodecError> {
        match self.inner.decode_eof(src, io)? {
            Some(msg) => self.receive(msg).map(Some),
            None => Ok(None),
        }
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a Bytes,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        let mut msg = item.clone();
        if !msg.is_empty() {
            for t in self.chain.iter() {
                msg = t.on_send(msg)?;
            }
        }
        // The transformed message is ours, not the caller's: its payload is copied.
        if let Some(payload) = self.inner.encode_vectored(&msg, dst)? {
            dst.extend_from_slice(payload);
        }
        if !self.inner.ready() {
            // The inner protocol holds it (its rest waits for the peer).
            self.last_sent = Some(item.clone());
        }
        Ok(None)
    }

    fn on_open(&mut self, io: &mut ProtocolIo<'_>) {
        self.inner.on_open(io);
    }

    fn heartbeat(&mut self, dst: &mut BytesMut) -> bool {
        self.inner.heartbeat(dst)
    }

    fn ready(&self) -> bool {
        self.inner.ready()
    }

    fn on_closed(&mut self) {
        self.inner.on_closed();
    }

    fn handshaking(&self) -> bool {
        self.inner.handshaking()
    }

    fn take_held(&mut self) -> Option<Bytes> {
        self.inner.take_held().and_then(|_| self.last_sent.take())
    }

    fn take_released(&mut self) -> Option<Bytes> {
        // Only when the inner protocol released one (`and` would take `last_sent` always).
        self.inner
            .take_released()
            .and_then(|_| self.last_sent.take())
    }
}
