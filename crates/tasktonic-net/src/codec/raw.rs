//! Unframed streams: raw bytes as they arrive, and UTF-8 text that never splits a character.

use bytes::{BufMut, Bytes, BytesMut};

use super::{CodecError, DEFAULT_MAX_FRAME, Decoder, Encoder, split_frame};

/// No framing (Kamaelia's ConnectedSocketAdapter, TaskTonic's raw handler): every read is one
/// message of whatever bytes arrived. A message is never larger than one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawBytes {
    max_frame: usize,
}

impl Default for RawBytes {
    fn default() -> Self {
        RawBytes {
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl RawBytes {
    /// Raw bytes; encoding refuses messages above `max` bytes.
    pub fn with_max_frame(max: usize) -> RawBytes {
        RawBytes { max_frame: max }
    }
}

impl Decoder for RawBytes {
    type Item = Bytes;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if src.is_empty() {
            return Ok(None);
        }
        let n = src.len().min(self.max_frame.max(1));
        Ok(Some(split_frame(src, n)))
    }
}

impl Encoder<Bytes> for RawBytes {
    fn encode(&mut self, item: &Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        if item.len() > self.max_frame {
            return Err(CodecError::FrameTooLarge {
                len: item.len() as u64,
                max: self.max_frame,
            });
        }
        dst.put_slice(item);
        Ok(())
    }
}

/// Unframed UTF-8 text (TaskTonic's `TcpStrSocketHandler`): each read becomes a `String` of the
/// complete characters that arrived; a character split across reads waits for its last bytes,
/// so it is never mangled. Invalid UTF-8 is [`CodecError::Malformed`] (the bad bytes are
/// consumed).
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use tasktonic_net::codec::{Decoder, Utf8Text};
///
/// let mut text = Utf8Text::default();
/// let mut buf = BytesMut::from(&"é".as_bytes()[..1]);
/// assert_eq!(text.decode(&mut buf)?, None); // half a character
/// buf.extend_from_slice(&"é".as_bytes()[1..]);
/// assert_eq!(text.decode(&mut buf)?, Some("é".to_string()));
/// # Ok::<(), tasktonic_net::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Text {
    max_frame: usize,
}

impl Default for Utf8Text {
    fn default() -> Self {
        Utf8Text {
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl Utf8Text {
    /// Text; encoding refuses messages above `max` bytes.
    pub fn with_max_frame(max: usize) -> Utf8Text {
        Utf8Text { max_frame: max }
    }
}

impl Decoder for Utf8Text {
    type Item = String;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<String>, CodecError> {
        if src.is_empty() {
            return Ok(None);
        }
        let window = src.len().min(self.max_frame.max(4));
        match std::str::from_utf8(&src[..window]) {
            Ok(_) => Ok(Some(into_string(src.split_to(window)))),
            Err(e) => {
                let valid = e.valid_up_to();
                match e.error_len() {
                    // Bytes that can never be UTF-8: consume them (after the valid prefix).
                    Some(bad) if valid == 0 => {
                        let _ = src.split_to(bad);
                        Err(CodecError::malformed("invalid UTF-8", e))
                    }
                    _ if valid > 0 => Ok(Some(into_string(src.split_to(valid)))),
                    // An incomplete character at the end: wait for the rest.
                    None => Ok(None),
                    Some(_) => Ok(None),
                }
            }
        }
    }
}

fn into_string(bytes: BytesMut) -> String {
    // Checked valid by the caller.
    String::from_utf8(bytes.to_vec()).unwrap_or_default()
}

impl Encoder<String> for Utf8Text {
    fn encode(&mut self, item: &String, dst: &mut BytesMut) -> Result<(), CodecError> {
        if item.len() > self.max_frame {
            return Err(CodecError::FrameTooLarge {
                len: item.len() as u64,
                max: self.max_frame,
            });
        }
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testing::decode_chunked;
    use proptest::prelude::*;

    #[test]
    fn raw_bytes_are_whatever_arrived() {
        let mut c = RawBytes::default();
        let got = decode_chunked(&mut c, b"abcdef", &[2, 4]).expect("decodes");
        assert_eq!(
            got,
            vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cdef")]
        );
    }

    #[test]
    fn invalid_utf8_is_consumed_and_reported() {
        let mut c = Utf8Text::default();
        let mut buf = BytesMut::from(&b"\xffok"[..]);
        assert!(c.decode(&mut buf).expect_err("invalid").is_skippable());
        assert_eq!(c.decode(&mut buf).expect("rest"), Some("ok".to_string()));
    }

    #[test]
    fn a_truncated_character_at_eof_is_reported() {
        let mut c = Utf8Text::default();
        let e = decode_chunked(&mut c, &"aé".as_bytes()[..2], &[1]).expect_err("truncated");
        assert!(matches!(e, CodecError::Truncated { buffered: 1 }));
    }

    proptest! {
        #[test]
        fn text_is_never_mangled_by_chunking(
            text in "\\PC{0,60}",
            chunks in proptest::collection::vec(1usize..5, 1..6),
        ) {
            let mut c = Utf8Text::default();
            let got = decode_chunked(&mut c, text.as_bytes(), &chunks).expect("decodes");
            prop_assert_eq!(got.concat(), text);
        }
    }
}
