//! Datagram codecs: one datagram is one message, both ways.
//!
//! A datagram arrives whole or not at all, so a datagram codec never cuts a stream: it turns
//! one datagram's bytes into one message and one message into one datagram's bytes.
//!
//! ```text
//! +------------- one UDP datagram: 0 ..= 65,507 bytes over IPv4 -------------+
//! | RawDatagrams:        the bytes as they are                               |
//! | Utf8Datagrams:       UTF-8 text                                          |
//! | MsgPackDatagrams<T>: one MessagePack value of T                          |
//! +--------------------------------------------------------------------------+
//! no header and no length: the datagram's own length is the message's
//! ```
//!
//! Every built-in datagram codec has a maximum size, [`MAX_DATAGRAM_V4`] by default: encoding
//! a larger message is [`CodecError::FrameTooLarge`] (the send fails and the message is
//! handed back), and a larger received datagram is the same error (reported, skipped).

use std::fmt;
use std::marker::PhantomData;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CodecError;
use super::msgpack::decode_value;

/// The largest UDP payload over IPv4: 65,535 − 8 (UDP header) − 20 (IPv4 header).
pub const MAX_DATAGRAM_V4: usize = 65_507;

/// The largest UDP payload over IPv6 without jumbograms: 65,535 − 8 (UDP header).
pub const MAX_DATAGRAM_V6: usize = 65_527;

/// Turns one datagram into one message and back (a UDP socket's codec).
///
/// # Examples
///
/// A codec of big-endian `u32` counters, four bytes a datagram:
///
/// ```
/// use bytes::BytesMut;
/// use tasktonic_net::codec::{CodecError, DatagramCodec};
///
/// #[derive(Clone)]
/// struct Counter;
///
/// impl DatagramCodec for Counter {
///     type Message = u32;
///     fn decode(&mut self, datagram: &[u8]) -> Result<u32, CodecError> {
///         let bytes: [u8; 4] = datagram
///             .try_into()
///             .map_err(|_| CodecError::malformed_msg("a counter is 4 bytes"))?;
///         Ok(u32::from_be_bytes(bytes))
///     }
///     fn encode<'a>(&mut self, n: &'a u32, scratch: &'a mut BytesMut) -> Result<&'a [u8], CodecError> {
///         scratch.extend_from_slice(&n.to_be_bytes());
///         Ok(&scratch[..])
///     }
/// }
///
/// let mut scratch = BytesMut::new();
/// let wire = Counter.encode(&7, &mut scratch)?.to_vec();
/// assert_eq!(Counter.decode(&wire)?, 7);
/// assert!(Counter.decode(b"too long").is_err());
/// # Ok::<(), CodecError>(())
/// ```
pub trait DatagramCodec: Clone + Send + 'static {
    /// The message one datagram carries, both ways.
    type Message: Send + 'static;

    /// The message in one received datagram (`datagram` may be empty).
    ///
    /// # Errors
    ///
    /// [`CodecError::Malformed`] for content that is not a message, or
    /// [`CodecError::FrameTooLarge`] above the codec's maximum. The datagram is gone either
    /// way; the socket reports the error and goes on.
    fn decode(&mut self, datagram: &[u8]) -> Result<Self::Message, CodecError>;

    /// The bytes of one datagram for `msg`: a slice of the message itself where it holds
    /// them (nothing is copied), or what the codec wrote into `scratch` (empty on entry).
    /// The message is borrowed, so one that cannot be sent is handed back.
    ///
    /// # Errors
    ///
    /// [`CodecError::FrameTooLarge`] above the codec's maximum, [`CodecError::Unencodable`]
    /// for a message the format cannot carry.
    fn encode<'a>(
        &mut self,
        msg: &'a Self::Message,
        scratch: &'a mut BytesMut,
    ) -> Result<&'a [u8], CodecError>;
}

/// Refuses `len` above `max`.
fn check_len(len: usize, max: usize) -> Result<(), CodecError> {
    if len > max {
        return Err(CodecError::FrameTooLarge {
            len: len as u64,
            max,
        });
    }
    Ok(())
}

/// Raw bytes: a datagram's payload as it is, empty datagrams included.
///
/// # Examples
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use tasktonic_net::codec::{DatagramCodec, RawDatagrams};
///
/// let mut raw = RawDatagrams::new();
/// assert_eq!(raw.decode(b"")?, Bytes::new()); // an empty datagram is a message
/// let big = Bytes::from(vec![0u8; 65_508]);
/// assert!(raw.encode(&big, &mut BytesMut::new()).is_err()); // above MAX_DATAGRAM_V4
/// # Ok::<(), tasktonic_net::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawDatagrams {
    max: usize,
}

impl Default for RawDatagrams {
    fn default() -> Self {
        RawDatagrams::new()
    }
}

impl RawDatagrams {
    /// Datagrams of at most [`MAX_DATAGRAM_V4`] bytes.
    pub fn new() -> RawDatagrams {
        RawDatagrams::with_max(MAX_DATAGRAM_V4)
    }

    /// Datagrams of at most `max` bytes, both ways.
    pub fn with_max(max: usize) -> RawDatagrams {
        RawDatagrams { max }
    }
}

impl DatagramCodec for RawDatagrams {
    type Message = Bytes;

    fn decode(&mut self, datagram: &[u8]) -> Result<Bytes, CodecError> {
        check_len(datagram.len(), self.max)?;
        Ok(Bytes::copy_from_slice(datagram))
    }

    fn encode<'a>(&mut self, msg: &'a Bytes, _: &'a mut BytesMut) -> Result<&'a [u8], CodecError> {
        check_len(msg.len(), self.max)?;
        Ok(&msg[..])
    }
}

/// UTF-8 text: one `String` a datagram (an empty datagram is the empty string). A datagram
/// that is not valid UTF-8 is [`CodecError::Malformed`].
///
/// # Examples
///
/// ```
/// use tasktonic_net::codec::{DatagramCodec, Utf8Datagrams};
///
/// let mut text = Utf8Datagrams::new();
/// assert_eq!(text.decode("héllo".as_bytes())?, "héllo");
/// assert!(text.decode(&[0xff, 0xfe]).expect_err("not UTF-8").is_skippable());
/// # Ok::<(), tasktonic_net::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Datagrams {
    max: usize,
}

impl Default for Utf8Datagrams {
    fn default() -> Self {
        Utf8Datagrams::new()
    }
}

impl Utf8Datagrams {
    /// Text datagrams of at most [`MAX_DATAGRAM_V4`] bytes.
    pub fn new() -> Utf8Datagrams {
        Utf8Datagrams::with_max(MAX_DATAGRAM_V4)
    }

    /// Text datagrams of at most `max` bytes, both ways.
    pub fn with_max(max: usize) -> Utf8Datagrams {
        Utf8Datagrams { max }
    }
}

impl DatagramCodec for Utf8Datagrams {
    type Message = String;

    fn decode(&mut self, datagram: &[u8]) -> Result<String, CodecError> {
        check_len(datagram.len(), self.max)?;
        std::str::from_utf8(datagram)
            .map(str::to_owned)
            .map_err(|e| CodecError::malformed("invalid UTF-8", e))
    }

    fn encode<'a>(&mut self, msg: &'a String, _: &'a mut BytesMut) -> Result<&'a [u8], CodecError> {
        check_len(msg.len(), self.max)?;
        Ok(msg.as_bytes())
    }
}

/// One MessagePack value of type `T` a datagram, any `serde` type (structs as maps with field
/// names, rmp-serde's named encoding, like [`MsgPack`](super::MsgPack) on a stream). A
/// datagram that is not exactly one `T` — malformed, truncated, another type, nested deeper
/// than [`MSGPACK_MAX_DEPTH`](super::MSGPACK_MAX_DEPTH), or with bytes after the value — is [`CodecError::Malformed`].
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use serde::{Deserialize, Serialize};
/// use tasktonic_net::codec::{DatagramCodec, MsgPackDatagrams};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Reading {
///     sensor: String,
///     celsius: f32,
/// }
///
/// let mut codec = MsgPackDatagrams::<Reading>::new();
/// let msg = Reading { sensor: "attic".into(), celsius: 21.5 };
/// let mut scratch = BytesMut::new();
/// let wire = codec.encode(&msg, &mut scratch)?.to_vec();
/// assert_eq!(codec.decode(&wire)?, msg);
/// assert!(codec.decode(&[0xc1]).is_err()); // 0xc1 is never MessagePack
/// # Ok::<(), tasktonic_net::codec::CodecError>(())
/// ```
pub struct MsgPackDatagrams<T> {
    max: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for MsgPackDatagrams<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgPackDatagrams")
            .field("max", &self.max)
            .finish()
    }
}

impl<T> Clone for MsgPackDatagrams<T> {
    fn clone(&self) -> Self {
        MsgPackDatagrams::with_max(self.max)
    }
}

impl<T> Default for MsgPackDatagrams<T> {
    fn default() -> Self {
        MsgPackDatagrams::new()
    }
}

impl<T> MsgPackDatagrams<T> {
    /// Values of at most [`MAX_DATAGRAM_V4`] encoded bytes.
    pub fn new() -> MsgPackDatagrams<T> {
        MsgPackDatagrams::with_max(MAX_DATAGRAM_V4)
    }

    /// Values of at most `max` encoded bytes, both ways.
    pub fn with_max(max: usize) -> MsgPackDatagrams<T> {
        MsgPackDatagrams {
            max,
            _t: PhantomData,
        }
    }
}

impl<T> DatagramCodec for MsgPackDatagrams<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Message = T;

    fn decode(&mut self, datagram: &[u8]) -> Result<T, CodecError> {
        check_len(datagram.len(), self.max)?;
        let (value, rest) = decode_value(datagram)?;
        if rest > 0 {
            return Err(CodecError::malformed_msg(format!(
                "{rest} bytes after the MessagePack value"
            )));
        }
        Ok(value)
    }

    fn encode<'a>(
        &mut self,
        msg: &'a T,
        scratch: &'a mut BytesMut,
    ) -> Result<&'a [u8], CodecError> {
        rmp_serde::encode::write_named(&mut (&mut *scratch).writer(), msg)
            .map_err(|e| CodecError::unencodable("MessagePack", e))?;
        check_len(scratch.len(), self.max)?;
        Ok(&scratch[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Msg {
        kind: String,
        n: u64,
        data: Vec<u8>,
    }

    fn wire<C: DatagramCodec>(codec: &mut C, msg: &C::Message) -> Vec<u8> {
        let mut scratch = BytesMut::new();
        codec.encode(msg, &mut scratch).expect("encodable").to_vec()
    }

    #[test]
    fn raw_datagrams_are_bounded_both_ways_and_borrow_the_message() {
        let mut raw = RawDatagrams::with_max(4);
        let msg = Bytes::from_static(b"abcd");
        let mut scratch = BytesMut::new();
        let out = raw.encode(&msg, &mut scratch).expect("fits");
        assert_eq!(out.as_ptr(), msg.as_ptr(), "no copy");
        assert!(scratch.is_empty());
        let too_big = Bytes::from_static(b"abcde");
        assert!(matches!(
            raw.encode(&too_big, &mut scratch),
            Err(CodecError::FrameTooLarge { len: 5, max: 4 })
        ));
        assert!(matches!(
            raw.decode(b"abcde"),
            Err(CodecError::FrameTooLarge { .. })
        ));
        assert_eq!(raw.decode(b"").expect("empty is a message"), Bytes::new());
    }

    #[test]
    fn the_default_maximum_is_the_ipv4_datagram() {
        let mut raw = RawDatagrams::new();
        assert!(raw.decode(&vec![0; MAX_DATAGRAM_V4]).is_ok());
        let big = Bytes::from(vec![0; MAX_DATAGRAM_V4 + 1]);
        assert!(raw.encode(&big, &mut BytesMut::new()).is_err());
    }

    #[test]
    fn invalid_utf8_is_malformed_and_skippable() {
        let mut text = Utf8Datagrams::new();
        let e = text.decode(b"ok \xc3").expect_err("truncated character");
        assert!(e.is_skippable(), "{e}");
        assert!(e.to_string().contains("invalid UTF-8"), "{e}");
        assert_eq!(text.decode(b"").expect("empty"), "");
    }

    #[test]
    fn msgpack_refuses_garbage_truncation_trailing_bytes_and_empty_datagrams() {
        let mut c = MsgPackDatagrams::<Msg>::new();
        let good = Msg {
            kind: "k".into(),
            n: 7,
            data: vec![1, 2, 3],
        };
        let w = wire(&mut c, &good);
        assert_eq!(c.decode(&w).expect("decodes"), good);
        for bad in [
            &b""[..],
            &b"\xc1"[..],
            &w[..w.len() - 1],
            &[&w[..], b"\x00"].concat()[..],
            &b"\x93\x01\x02\x03"[..], // an array of three integers: not a Msg
        ] {
            let e = c.decode(bad).expect_err("malformed");
            assert!(e.is_skippable(), "{e}");
        }
    }

    #[test]
    fn deeply_nested_msgpack_is_an_error_not_a_stack_overflow() {
        let mut c = MsgPackDatagrams::<rmpv::Value>::new();
        let nested = vec![0x91u8; MAX_DATAGRAM_V4]; // arrays of one array of one …
        assert!(c.decode(&nested).is_err());
    }

    #[test]
    fn msgpack_refuses_to_encode_past_its_maximum() {
        let mut c = MsgPackDatagrams::<Msg>::with_max(8);
        let big = Msg {
            kind: "x".into(),
            n: 0,
            data: vec![0; 64],
        };
        assert!(matches!(
            c.encode(&big, &mut BytesMut::new()),
            Err(CodecError::FrameTooLarge { max: 8, .. })
        ));
    }

    proptest! {
        #[test]
        fn msgpack_round_trips(kind in ".{0,10}", n in any::<u64>(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let msg = Msg { kind, n, data };
            let mut c = MsgPackDatagrams::<Msg>::new();
            let w = wire(&mut c, &msg);
            prop_assert_eq!(c.decode(&w).expect("decodes"), msg);
        }

        #[test]
        fn utf8_round_trips(text in ".{0,64}") {
            let mut c = Utf8Datagrams::new();
            let w = wire(&mut c, &text);
            prop_assert_eq!(c.decode(&w).expect("decodes"), text);
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = MsgPackDatagrams::<Msg>::new().decode(&bytes);
            let _ = MsgPackDatagrams::<rmpv::Value>::new().decode(&bytes);
            let _ = Utf8Datagrams::new().decode(&bytes);
            prop_assert_eq!(&RawDatagrams::new().decode(&bytes).expect("raw")[..], &bytes[..]);
        }
    }
}
