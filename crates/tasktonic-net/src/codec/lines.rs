//! Text lines ending in `\n` (a `\r` before it is dropped), with a bounded length.

use bytes::{BufMut, BytesMut};

use super::{CodecError, DEFAULT_MAX_FRAME, Decoder, Encoder};

/// Newline-terminated UTF-8 lines as `String`s, at most `max_len` bytes each (without the
/// terminator). A longer line is [`CodecError::FrameTooLarge`]; invalid UTF-8 is
/// [`CodecError::Malformed`] (the line is consumed). Encoding appends `\n` and refuses a string
/// that contains one (it would be split into two messages).
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use tasktonic_net::codec::{Decoder, Lines};
///
/// let mut lines = Lines::new();
/// let mut buf = BytesMut::from(&b"hello\r\nwor"[..]);
/// assert_eq!(lines.decode(&mut buf)?, Some("hello".to_string()));
/// assert_eq!(lines.decode(&mut buf)?, None);
/// # Ok::<(), tasktonic_net::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    max_len: usize,
    /// Bytes already searched for a newline (so a long line is not rescanned every read).
    searched: usize,
}

impl Default for Lines {
    fn default() -> Self {
        Lines::new()
    }
}

impl Lines {
    /// Lines of at most 8 MiB.
    pub fn new() -> Lines {
        Lines::with_max_len(DEFAULT_MAX_FRAME)
    }

    /// Lines of at most `max_len` bytes.
    pub fn with_max_len(max_len: usize) -> Lines {
        Lines {
            max_len,
            searched: 0,
        }
    }

    fn line(mut bytes: BytesMut) -> Result<String, CodecError> {
        if bytes.last() == Some(&b'\r') {
            bytes.truncate(bytes.len() - 1);
        }
        String::from_utf8(bytes.to_vec())
            .map_err(|e| CodecError::malformed("invalid UTF-8 in line", e))
    }
}

impl Decoder for Lines {
    type Item = String;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<String>, CodecError> {
        // Only look as far as a legal line (plus "\r\n") can reach.
        let limit = src.len().min(self.max_len.saturating_add(2));
        let found = src[self.searched.min(limit)..limit]
            .iter()
            .position(|b| *b == b'\n');
        match found {
            Some(i) => {
                let end = self.searched.min(limit) + i;
                self.searched = 0;
                let mut line = src.split_to(end + 1);
                line.truncate(end);
                let content_len = if line.last() == Some(&b'\r') {
                    end - 1
                } else {
                    end
                };
                if content_len > self.max_len {
                    return Err(CodecError::FrameTooLarge {
                        len: content_len as u64,
                        max: self.max_len,
                    });
                }
                Lines::line(line).map(Some)
            }
            None if src.len() > self.max_len.saturating_add(1) => Err(CodecError::FrameTooLarge {
                len: src.len() as u64,
                max: self.max_len,
            }),
            None => {
                self.searched = limit;
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<String>, CodecError> {
        if let Some(line) = self.decode(src)? {
            return Ok(Some(line));
        }
        if src.is_empty() {
            return Ok(None);
        }
        // A last line without a terminator is still a line.
        self.searched = 0;
        let rest = src.split();
        Lines::line(rest).map(Some)
    }
}

impl Encoder<String> for Lines {
    fn encode(&mut self, item: &String, dst: &mut BytesMut) -> Result<(), CodecError> {
        if item.contains('\n') {
            return Err(CodecError::unencodable_msg("a line cannot contain '\\n'"));
        }
        if item.len() > self.max_len {
            return Err(CodecError::FrameTooLarge {
                len: item.len() as u64,
                max: self.max_len,
            });
        }
        dst.reserve(item.len() + 1);
        dst.put_slice(item.as_bytes());
        dst.put_u8(b'\n');
        Ok(())
    }
}

impl Encoder<&str> for Lines {
    fn encode(&mut self, item: &&str, dst: &mut BytesMut) -> Result<(), CodecError> {
        Encoder::<String>::encode(self, &(*item).to_string(), dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testing::decode_chunked;
    use proptest::prelude::*;

    #[test]
    fn lines_with_and_without_carriage_returns_and_a_last_unterminated_line() {
        let mut c = Lines::new();
        let got = decode_chunked(&mut c, b"a\r\n\nbc\nlast", &[1, 3]).expect("decodes");
        assert_eq!(got, vec!["a", "", "bc", "last"]);
    }

    #[test]
    fn a_line_at_the_limit_passes_and_one_above_fails() {
        let mut c = Lines::with_max_len(4);
        assert_eq!(
            decode_chunked(&mut c, b"abcd\r\n", &[1]).expect("at limit"),
            vec!["abcd"]
        );
        let mut c = Lines::with_max_len(4);
        assert!(matches!(
            decode_chunked(&mut c, b"abcde\n", &[2]),
            Err(CodecError::FrameTooLarge { .. })
        ));
        let mut c = Lines::with_max_len(4);
        assert!(matches!(
            decode_chunked(&mut c, b"abcdefghij", &[3]),
            Err(CodecError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn invalid_utf8_is_malformed_and_skippable() {
        let mut c = Lines::new();
        let mut buf = BytesMut::from(&b"\xff\xfe\nok\n"[..]);
        let err = c.decode(&mut buf).expect_err("invalid");
        assert!(err.is_skippable());
        assert_eq!(c.decode(&mut buf).expect("next"), Some("ok".to_string()));
    }

    #[test]
    fn encoding_refuses_embedded_newlines() {
        let mut out = BytesMut::new();
        assert!(Lines::new().encode(&"a\nb".to_string(), &mut out).is_err());
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn decoding_does_not_depend_on_chunking(
            lines in proptest::collection::vec("[^\n\r]{0,40}", 0..20),
            chunks in proptest::collection::vec(1usize..16, 1..6),
        ) {
            let mut c = Lines::new();
            let mut w = BytesMut::new();
            for l in &lines {
                c.encode(l, &mut w).expect("encodable");
            }
            let got = decode_chunked(&mut c, &w, &chunks).expect("decodes");
            prop_assert_eq!(got, lines);
        }
    }
}
