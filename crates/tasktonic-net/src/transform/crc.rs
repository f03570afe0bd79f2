//! [`Crc32`]: a checksum on every message.

use bytes::{BufMut, Bytes, BytesMut};

use super::Transform;
use crate::codec::CodecError;

/// Appends the CRC-32 (IEEE, as zlib's `crc32`) of a message, big endian, on send; checks and
/// strips it on receive — a message whose checksum does not match is a
/// [`CodecError::Malformed`] ("corrupted").
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use tasktonic_net::transform::{Crc32, Transform};
///
/// let sent = Crc32.on_send(Bytes::from_static(b"hello"))?;
/// assert_eq!(&sent[..5], b"hello");
/// assert_eq!(&sent[5..], &0x3610_a686u32.to_be_bytes()); // zlib.crc32(b"hello")
/// assert_eq!(Crc32.on_receive(sent.clone())?, Bytes::from_static(b"hello"));
/// let mut bad = sent.to_vec();
/// bad[0] ^= 1;
/// assert!(Crc32.on_receive(Bytes::from(bad)).is_err());
/// # Ok::<(), tasktonic_net::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Crc32;

impl Transform for Crc32 {
    fn on_send(&self, msg: Bytes) -> Result<Bytes, CodecError> {
        let mut out = BytesMut::with_capacity(msg.len() + 4);
        out.extend_from_slice(&msg);
        out.put_u32(crc32fast::hash(&msg));
        Ok(out.freeze())
    }

    fn on_receive(&self, mut msg: Bytes) -> Result<Bytes, CodecError> {
        if msg.len() < 4 {
            return Err(CodecError::malformed_msg(format!(
                "crc32: a message of {} bytes has no checksum",
                msg.len()
            )));
        }
        let sum = msg.split_off(msg.len() - 4);
        let want = u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]]);
        let got = crc32fast::hash(&msg);
        if got != want {
            return Err(CodecError::malformed_msg(format!(
                "crc32: corrupted message of {} bytes (checksum {got:08x}, sent {want:08x})",
                msg.len()
            )));
        }
        Ok(msg)
    }
}
