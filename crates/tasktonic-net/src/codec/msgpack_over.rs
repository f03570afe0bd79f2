//! MessagePack values over any protocol of [`Bytes`]: the typed messages of [`MsgPack`] with
//! another protocol's framing under them — a chain of message transforms
//! ([`Transformed`](crate::transform::Transformed): compression, a checksum), or
//! [`TinyProto`](crate::tinyproto::TinyProto)'s half-duplex transfers.

use std::fmt;
use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::msgpack::decode_value;
use super::{CodecError, MsgPack};
use crate::protocol::{Protocol, ProtocolIo, decode_one};

/// Values of type `T`, each one MessagePack value (rmp-serde's named encoding, as
/// [`MsgPack`] writes it) carried as one message of the inner protocol `P`. Made by
/// [`MsgPack::over`].
///
/// A message that is not a valid `T` is [`CodecError::Malformed`] (consumed, so the
/// connection's `OnMalformed` may skip it); an empty message is a heartbeat, skipped, as
/// `MsgPack` skips empty frames.
///
/// Over a protocol that holds a message until the peer's go-ahead (tinyproto), the held
/// message is handed back (or counted written) by decoding what was sent: `T` must decode
/// from its own MessagePack form, as every derived serde type does.
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tasktonic_net::codec::{LengthDelimited, MsgPack};
/// use tasktonic_net::tcp::TcpServer;
/// use tasktonic_net::transform::{Crc32, Deflate, Transformed};
///
/// #[derive(Serialize, Deserialize)]
/// struct Reading {
///     sensor: String,
///     value: f64,
/// }
///
/// // Each Reading: MessagePack, compressed, checksummed, in a u32 big-endian frame.
/// let chain = Transformed::new(LengthDelimited::new())
///     .with(Deflate::new(6, 1 << 20))
///     .with(Crc32);
/// let protocol = MsgPack::<Reading>::over(chain);
/// let server = TcpServer::bind("127.0.0.1:0".parse().expect("an address"), protocol);
/// # drop(server);
/// ```
pub struct MsgPackOver<P, T> {
    inner: P,
    _t: PhantomData<fn() -> T>,
}

impl<T> MsgPack<T> {
    /// Values of type `T` carried as the messages of `inner`, a protocol of [`Bytes`] (see
    /// [`MsgPackOver`]).
    pub fn over<P: Protocol<Message = Bytes>>(inner: P) -> MsgPackOver<P, T> {
        MsgPackOver {
            inner,
            _t: PhantomData,
        }
    }
}

impl<P: fmt::Debug, T> fmt::Debug for MsgPackOver<P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgPackOver")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<P: Clone, T> Clone for MsgPackOver<P, T> {
    fn clone(&self) -> Self {
        MsgPackOver {
            inner: self.inner.clone(),
            _t: PhantomData,
        }
    }
}

impl<P, T> MsgPackOver<P, T>
where
    P: Protocol<Message = Bytes>,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// A message of the inner protocol as a `T`; `None` for a heartbeat.
    fn value(msg: &Bytes) -> Result<Option<T>, CodecError> {
        if msg.is_empty() {
            return Ok(None);
        }
        decode_value(msg).map(|(v, _)| Some(v))
    }

    /// A message the inner protocol gives back (held, released): ours, decoded again.
    fn back(msg: Option<Bytes>) -> Option<T> {
        let msg = msg?;
        match decode_value(&msg) {
            Ok((v, _)) => Some(v),
            Err(e) => {
                // We encoded it: this cannot fail unless T's serde forms disagree.
                log::error!("a message of ours does not decode as it was encoded: {e}");
                None
            }
        }
    }
}

impl<P, T> Protocol for MsgPackOver<P, T>
where
    P: Protocol<Message = Bytes>,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Message = T;

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(T),
    {
        // One message at a time: a malformed one ends the run.
        let mut handed = 0;
        while handed < max {
            let Some(msg) = decode_one(&mut self.inner, src, io)? else {
                break;
            };
            if let Some(v) = Self::value(&msg)? {
                each(v);
                handed += 1;
            }
        }
        Ok(handed)
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        io: &mut ProtocolIo<'_>,
    ) -> Result<Option<T>, CodecError> {
        loop {
            match self.inner.decode_eof(src, io)? {
                Some(msg) => {
                    if let Some(v) = Self::value(&msg)? {
                        return Ok(Some(v));
                    }
                }
                None => return Ok(None),
            }
        }
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a T,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        let msg = rmp_serde::to_vec_named(item)
            .map(Bytes::from)
            .map_err(|e| CodecError::unencodable("MessagePack", e))?;
        if let Some(payload) = self.inner.encode_vectored(&msg, dst)? {
            dst.extend_from_slice(payload);
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

    fn take_held(&mut self) -> Option<T> {
        Self::back(self.inner.take_held())
    }

    fn take_released(&mut self) -> Option<T> {
        Self::back(self.inner.take_released())
    }
}
