//! Codecs: how bytes on a stream become whole messages and back (TaskTonic's
//! `rcv_data_conversion` / `send_data_conversion`).
//!
//! The traits follow tokio-util's synchronous `Decoder` / `Encoder` on `bytes::BytesMut`, with
//! two deliberate differences: errors are one enum, [`CodecError`], so a connection can tell an
//! oversized frame (close) from a malformed one (close or skip, by policy); and
//! [`Encoder::encode`] borrows the message, so a message that was accepted but never written can
//! be handed back to its sender instead of being lost.
//!
//! Every built-in codec has a maximum frame size, 8 MiB by default ([`DEFAULT_MAX_FRAME`]). A
//! larger announced length is an error *before* anything is allocated for it.
//!
//! Datagrams need no cutting: a [`DatagramCodec`] turns one datagram into one message and
//! back (raw bytes, UTF-8 text, MessagePack), for [UDP sockets](crate::udp), with the
//! largest IPv4 datagram ([`MAX_DATAGRAM_V4`]) as its default maximum.

mod datagram;
mod length;
mod lines;
mod msgpack;
mod msgpack_over;
mod raw;

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

pub use self::datagram::{
    DatagramCodec, MAX_DATAGRAM_V4, MAX_DATAGRAM_V6, MsgPackDatagrams, RawDatagrams, Utf8Datagrams,
};
pub use self::length::{Endian, LengthDelimited};
pub use self::lines::Lines;
pub(crate) use self::msgpack::from_slice_capped;
pub use self::msgpack::{MSGPACK_MAX_DEPTH, MsgPack};
pub use self::msgpack_over::MsgPackOver;
pub use self::raw::{RawBytes, Utf8Text};

/// The default maximum frame (or line) size of every built-in codec: 8 MiB.
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;

/// The error under a [`CodecError`] (a MessagePack or UTF-8 error), shared so the error can
/// be cloned: one copy for the base's `on_codec_error`, one in the close reason.
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync>;

/// A codec could not decode or encode. Cheap to clone (sources are shared); the kind tells a
/// base what happened (match on it), [`source`](std::error::Error::source) gives the error
/// underneath.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame announced (or a line grew to) `len` bytes, more than the codec's `max`.
    /// Nothing was allocated for it; the connection must close (the stream cannot be resynced).
    FrameTooLarge {
        /// The announced or observed length.
        len: u64,
        /// The codec's maximum.
        max: usize,
    },
    /// A whole frame was cut but its content is invalid (malformed MessagePack, invalid UTF-8).
    /// The frame was consumed: the stream is still in sync, so it can be skipped.
    Malformed {
        /// What was wrong, in a few words.
        reason: String,
        /// The error underneath, if any.
        source: Option<ErrorSource>,
    },
    /// The peer broke the protocol's rules outside any frame (a wrong handshake or status
    /// byte): nothing can be skipped, the connection must close.
    Protocol {
        /// What the peer did, in a few words.
        reason: String,
    },
    /// The stream ended in the middle of a frame; `buffered` bytes were left.
    Truncated {
        /// Bytes of the incomplete frame.
        buffered: usize,
    },
    /// A message cannot be encoded (too large for the header, a newline inside a line, a
    /// serializer error).
    Unencodable {
        /// Why, in a few words.
        reason: String,
        /// The error underneath, if any.
        source: Option<ErrorSource>,
    },
    /// An I/O error (for codecs over I/O).
    Io(Arc<io::Error>),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            CodecError::Malformed { reason, source } => {
                write!(f, "malformed frame: {reason}")?;
                source.as_ref().map_or(Ok(()), |e| write!(f, ": {e}"))
            }
            CodecError::Protocol { reason } => write!(f, "protocol error: {reason}"),
            CodecError::Truncated { buffered } => {
                write!(f, "stream ended inside a frame ({buffered} bytes buffered)")
            }
            CodecError::Unencodable { reason, source } => {
                write!(f, "cannot encode: {reason}")?;
                source.as_ref().map_or(Ok(()), |e| write!(f, ": {e}"))
            }
            CodecError::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CodecError::Io(e) => Some(&**e),
            CodecError::Malformed {
                source: Some(e), ..
            }
            | CodecError::Unencodable {
                source: Some(e), ..
            } => Some(&**e as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}

impl From<io::Error> for CodecError {
    fn from(e: io::Error) -> CodecError {
        CodecError::Io(Arc::new(e))
    }
}

impl CodecError {
    /// [`CodecError::Malformed`] because of `source`.
    pub fn malformed(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> CodecError {
        CodecError::Malformed {
            reason: reason.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// [`CodecError::Malformed`] with no error underneath.
    pub fn malformed_msg(reason: impl Into<String>) -> CodecError {
        CodecError::Malformed {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`CodecError::Protocol`]: the peer broke the protocol's rules.
    pub fn protocol_msg(reason: impl Into<String>) -> CodecError {
        CodecError::Protocol {
            reason: reason.into(),
        }
    }

    /// [`CodecError::Unencodable`] because of `source`.
    pub fn unencodable(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> CodecError {
        CodecError::Unencodable {
            reason: reason.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// [`CodecError::Unencodable`] with no error underneath.
    pub fn unencodable_msg(reason: impl Into<String>) -> CodecError {
        CodecError::Unencodable {
            reason: reason.into(),
            source: None,
        }
    }

    /// True if the frame was consumed and the stream is still in sync (the frame can be skipped).
    pub fn is_skippable(&self) -> bool {
        matches!(self, CodecError::Malformed { .. })
    }
}

/// Cuts whole messages out of a byte buffer.
pub trait Decoder {
    /// One decoded message.
    type Item;

    /// Decode one message from the front of `src`, consuming its bytes; `Ok(None)` if `src`
    /// does not hold a whole message yet (nothing consumed).
    ///
    /// # Errors
    ///
    /// [`CodecError::FrameTooLarge`] (close), [`CodecError::Malformed`] (frame consumed; skip or
    /// close).
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, CodecError>;

    /// Decode at the end of the stream. Default: as `decode`, and bytes left over are
    /// [`CodecError::Truncated`].
    ///
    /// # Errors
    ///
    /// As [`decode`](Decoder::decode), plus [`CodecError::Truncated`].
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        match self.decode(src)? {
            Some(item) => Ok(Some(item)),
            None if src.is_empty() => Ok(None),
            None => Err(CodecError::Truncated {
                buffered: src.len(),
            }),
        }
    }

    /// Decode up to `max` whole messages from the front of `src`, in order, handing each to
    /// `each`; returns how many. A connection decodes what one read brought this way. The
    /// default calls [`decode`](Decoder::decode) until it returns `None`; a codec may cut
    /// all of them at once more cheaply ([`LengthDelimited`] splits the read's whole frames
    /// off `src` in one step and gives each frame a slice of them).
    ///
    /// # Errors
    ///
    /// As [`decode`](Decoder::decode), once the messages before the bad one were handed to
    /// `each` (an error ends the call).
    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(Self::Item),
        Self: Sized,
    {
        let mut n = 0;
        while n < max {
            match self.decode(src)? {
                Some(item) => each(item),
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }
}

/// Appends the wire form of a message to a byte buffer.
pub trait Encoder<Item> {
    /// Append `item` to `dst`. On error nothing is appended.
    ///
    /// # Errors
    ///
    /// [`CodecError::Unencodable`] or [`CodecError::FrameTooLarge`].
    fn encode(&mut self, item: &Item, dst: &mut BytesMut) -> Result<(), CodecError>;

    /// Encode `item` as [`encode`](Encoder::encode) does, except that the codec may leave
    /// the message's trailing payload out of `dst` and return it instead: a connection then
    /// writes it straight from `item`, right after what `dst` holds (one vectored write for a
    /// batch), so a large payload is not copied on its way to the socket. The default encodes
    /// whole and returns `None`; [`LengthDelimited`] returns payloads of 1 KiB and more.
    ///
    /// # Errors
    ///
    /// As [`encode`](Encoder::encode); on error nothing is appended.
    fn encode_vectored<'a>(
        &mut self,
        item: &'a Item,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        self.encode(item, dst).map(|()| None)
    }

    /// Append a heartbeat: a frame the peer's decoder accepts and that carries nothing
    /// (sent by a connection with [`TcpConfig::heartbeat`](crate::tcp::TcpConfig::heartbeat)
    /// when nothing else was sent for a while). False if the format has none (the default).
    /// [`LengthDelimited`] sends an empty frame (ninjaTCP's peers accept them; our
    /// `LengthDelimited` delivers it as an empty message), [`MsgPack`] too (and skips the
    /// ones it receives).
    fn encode_heartbeat(&mut self, dst: &mut BytesMut) -> bool {
        let _ = dst;
        false
    }
}

/// A codec for one message type both ways, as connections use: implemented for every
/// `Decoder + Encoder<Item>` that is `Clone + Send`.
pub trait Codec:
    Decoder<Item = <Self as Codec>::Message>
    + Encoder<<Self as Codec>::Message>
    + Clone
    + Send
    + 'static
{
    /// The message type, decoded and encoded.
    type Message: Send + 'static;
}

impl<C, M> Codec for C
where
    C: Decoder<Item = M> + Encoder<M> + Clone + Send + 'static,
    M: Send + 'static,
{
    type Message = M;
}

/// Split the first `at` bytes off `src`, frozen. When they are all of `src` and `src` has no
/// room to spare — a connection reads an exchange's request into a buffer of exactly its size
/// — the buffer itself is taken: splitting would allocate a shared header for it (to share
/// the allocation with what `src` may read next), and free it again with the message (one
/// allocation and one free less per request–response exchange). A buffer with room left
/// is split, so a busy connection keeps refilling its read buffer in place.
#[inline]
pub(crate) fn split_frame(src: &mut BytesMut, at: usize) -> Bytes {
    if at == src.len() && at == src.capacity() {
        std::mem::take(src).freeze()
    } else {
        src.split_to(at).freeze()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for codec tests: decode a byte stream fed in arbitrary chunks.

    use super::*;

    /// Feed `input` in chunks of the given sizes (cycled), decoding after each, then at EOF.
    pub(crate) fn decode_chunked<D: Decoder>(
        decoder: &mut D,
        input: &[u8],
        chunks: &[usize],
    ) -> Result<Vec<D::Item>, CodecError> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = chunks[i % chunks.len()].clamp(1, rest.len());
            i += 1;
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(item) = decoder.decode(&mut buf)? {
                out.push(item);
            }
        }
        while let Some(item) = decoder.decode_eof(&mut buf)? {
            out.push(item);
        }
        Ok(out)
    }
}
