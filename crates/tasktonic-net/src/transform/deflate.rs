//! [`Deflate`]: compression, bounded on the way in.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use super::Transform;
use crate::codec::CodecError;

/// Compresses every message with raw DEFLATE (RFC 1951; `flate2`, pure Rust) on send, and
/// inflates it on receive — to at most `max` bytes: a message that would inflate further (a
/// decompression bomb) is a [`CodecError::FrameTooLarge`] after at most `max + 1` bytes were
/// produced, never a larger allocation.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use tasktonic_net::transform::{Deflate, Transform};
///
/// let deflate = Deflate::new(6, 1 << 20);
/// let text = Bytes::from("all work and no play ".repeat(100));
/// let sent = deflate.on_send(text.clone())?;
/// assert!(sent.len() < text.len() / 10);
/// assert_eq!(deflate.on_receive(sent)?, text);
/// // The same bytes, inflated by a side that takes at most 1 KiB: refused.
/// let small = Deflate::new(6, 1024);
/// assert!(small.on_receive(deflate.on_send(text)?).is_err());
/// # Ok::<(), tasktonic_net::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Deflate {
    level: u32,
    max: usize,
}

impl Deflate {
    /// Compression `level` (0 none … 9 best; 6 is zlib's default), and the largest message
    /// accepted once inflated.
    pub fn new(level: u32, max: usize) -> Deflate {
        Deflate {
            level: level.min(9),
            max,
        }
    }
}

impl Transform for Deflate {
    fn on_send(&self, msg: Bytes) -> Result<Bytes, CodecError> {
        let mut enc = DeflateEncoder::new(
            Vec::with_capacity(msg.len() / 2 + 16),
            Compression::new(self.level),
        );
        enc.write_all(&msg)
            .and_then(|()| enc.finish())
            .map(Bytes::from)
            .map_err(|e| CodecError::unencodable("deflate", e))
    }

    fn on_receive(&self, msg: Bytes) -> Result<Bytes, CodecError> {
        let limit = u64::try_from(self.max)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut out = Vec::with_capacity(msg.len().saturating_mul(2).min(self.max));
        DeflateDecoder::new(&msg[..])
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| CodecError::malformed("deflate: not a compressed message", e))?;
        if out.len() > self.max {
            return Err(CodecError::FrameTooLarge {
                len: out.len() as u64,
                max: self.max,
            });
        }
        Ok(Bytes::from(out))
    }
}
