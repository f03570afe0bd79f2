//! MessagePack messages over length-prefixed frames: any `serde` type, safely (the replacement
//! for TaskTonic's pickled dicts).
//!
//! ```text
//! +----------------------+-----------------------------------+
//! | N: u32 big-endian    | N bytes: one MessagePack value     |
//! +----------------------+-----------------------------------+
//! structs are encoded as maps with field names (rmp-serde's named encoding)
//! ```

use std::fmt;
use std::marker::PhantomData;

use bytes::Buf;
use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CodecError, Decoder, Encoder, LengthDelimited};

/// How deeply MessagePack arrays and maps may nest in what [`MsgPack`] and
/// [`MsgPackDatagrams`](super::MsgPackDatagrams) decode. A value nested deeper is
/// [`CodecError::Malformed`]: a frame of nested arrays (one byte a level) would otherwise
/// recurse deep enough to overflow a thread's stack (rmp-serde's own cap is 1,024 levels).
pub const MSGPACK_MAX_DEPTH: usize = 128;

/// One MessagePack value from the front of `bytes`, nesting capped at
/// [`MSGPACK_MAX_DEPTH`]; with how many bytes follow it.
pub(crate) fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    let mut rest = bytes;
    let value =
        from_slice_capped(&mut rest).map_err(|e| CodecError::malformed("MessagePack", e))?;
    Ok((value, rest.len()))
}

/// `rmp_serde::from_slice` with nesting capped at [`MSGPACK_MAX_DEPTH`] (rmp-serde's own cap
/// is 1,024), for every place the crate decodes MessagePack a peer sent; `bytes` is left
/// at what follows the value.
pub(crate) fn from_slice_capped<T: DeserializeOwned>(
    bytes: &mut &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::new(bytes);
    de.set_max_depth(MSGPACK_MAX_DEPTH);
    T::deserialize(&mut de)
}

/// MessagePack values of type `T`, each in one length-prefixed frame (u32 big-endian by
/// default; see [`MsgPack::with_framing`]). A frame that is not a valid `T` (or nests
/// deeper than [`MSGPACK_MAX_DEPTH`]) is [`CodecError::Malformed`] and consumed, so it can be
/// skipped.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use serde::{Deserialize, Serialize};
/// use tasktonic_net::codec::{Decoder, Encoder, MsgPack};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Chat {
///     from: String,
///     text: String,
/// }
///
/// let mut codec = MsgPack::<Chat>::new();
/// let msg = Chat { from: "ann".into(), text: "hi".into() };
/// let mut wire = BytesMut::new();
/// codec.encode(&msg, &mut wire)?;
/// assert_eq!(codec.decode(&mut wire)?, Some(msg));
/// # Ok::<(), tasktonic_net::codec::CodecError>(())
/// ```
pub struct MsgPack<T> {
    framing: LengthDelimited,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for MsgPack<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgPack")
            .field("framing", &self.framing)
            .finish()
    }
}

impl<T> Clone for MsgPack<T> {
    fn clone(&self) -> Self {
        MsgPack {
            framing: self.framing,
            _t: PhantomData,
        }
    }
}

impl<T> Default for MsgPack<T> {
    fn default() -> Self {
        MsgPack::new()
    }
}

impl<T> MsgPack<T> {
    /// u32 big-endian frames of at most 8 MiB.
    pub fn new() -> MsgPack<T> {
        MsgPack::with_framing(LengthDelimited::new())
    }

    /// Use this framing (header size, order, maximum frame).
    pub fn with_framing(framing: LengthDelimited) -> MsgPack<T> {
        MsgPack {
            framing,
            _t: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Decoder for MsgPack<T> {
    type Item = T;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<T>, CodecError> {
        let h = self.framing.header_size();
        loop {
            let Some(len) = self.framing.frame_len(src)? else {
                return Ok(None);
            };
            if len == 0 {
                // An empty frame is no MessagePack value: a heartbeat, skipped.
                src.advance(h);
                continue;
            }
            // Deserialised straight from the read buffer; the frame is consumed either way
            // (a malformed one can be skipped).
            let value = decode_value(&src[h..h + len]);
            src.advance(h + len);
            return value.map(|(v, _)| Some(v));
        }
    }
}

impl<T: Serialize> Encoder<T> for MsgPack<T> {
    fn encode(&mut self, item: &T, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        let header = self.framing.header_bytes();
        dst.put_bytes(0, header);
        let result = rmp_serde::encode::write_named(&mut dst.writer(), item);
        let written = dst.len() - start - header;
        let patched = result
            .map_err(|e| CodecError::unencodable("MessagePack", e))
            .and_then(|()| self.framing.patch_header(dst, start, written));
        if let Err(e) = patched {
            dst.truncate(start);
            return Err(e);
        }
        Ok(())
    }

    /// An empty frame (skipped by the receiving `MsgPack`).
    fn encode_heartbeat(&mut self, dst: &mut BytesMut) -> bool {
        self.framing.encode_heartbeat(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testing::decode_chunked;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Msg {
        kind: String,
        n: u64,
        data: Vec<u8>,
    }

    #[test]
    fn deeply_nested_frames_are_malformed_not_a_stack_overflow() {
        let mut c = MsgPack::<rmpv::Value>::new();
        let depth = 100_000u32;
        let mut buf = BytesMut::from(&depth.to_be_bytes()[..]);
        buf.extend_from_slice(&vec![0x91; depth as usize]); // [[[[…
        let e = c.decode(&mut buf).expect_err("refused");
        assert!(e.is_skippable(), "{e}");
        assert!(buf.is_empty(), "the frame is consumed");
    }

    #[test]
    fn malformed_frames_are_skippable_and_the_next_frame_decodes() {
        let mut c = MsgPack::<Msg>::new();
        let mut buf = BytesMut::from(&b"\0\0\0\x02\xc1\xc1"[..]); // 0xc1 is never valid
        let good = Msg {
            kind: "k".into(),
            n: 1,
            data: vec![1],
        };
        c.encode(&good, &mut buf).expect("encodable");
        assert!(c.decode(&mut buf).expect_err("malformed").is_skippable());
        assert_eq!(c.decode(&mut buf).expect("good"), Some(good));
    }

    #[test]
    fn a_value_larger_than_the_frame_limit_is_not_encoded() {
        let mut c = MsgPack::<Msg>::with_framing(LengthDelimited::new().max_frame(8));
        let mut buf = BytesMut::from(&b"keep"[..]);
        let big = Msg {
            kind: "x".into(),
            n: 0,
            data: vec![0; 64],
        };
        assert!(c.encode(&big, &mut buf).is_err());
        assert_eq!(&buf[..], b"keep");
    }

    proptest! {
        #[test]
        fn round_trips_whatever_the_chunking(
            msgs in proptest::collection::vec((".{0,10}", any::<u64>(), proptest::collection::vec(any::<u8>(), 0..50)), 0..10),
            chunks in proptest::collection::vec(1usize..20, 1..5),
        ) {
            let msgs: Vec<Msg> = msgs.into_iter().map(|(kind, n, data)| Msg { kind, n, data }).collect();
            let mut c = MsgPack::<Msg>::new();
            let mut w = BytesMut::new();
            for m in &msgs {
                c.encode(m, &mut w).expect("encodable");
            }
            let got = decode_chunked(&mut c, &w, &chunks).expect("decodes");
            prop_assert_eq!(got, msgs);
        }
    }
}
