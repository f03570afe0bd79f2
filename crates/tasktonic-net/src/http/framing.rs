//! How a message's body is delimited (RFC 9112 §6), and the chunked coding, read strictly.
//!
//! Shared by the server (requests) and the client (responses). Everything that could let two
//! parsers disagree on where a message ends is refused: both `Content-Length` and
//! `Transfer-Encoding`, differing `Content-Length`s, a coding other than a final `chunked`,
//! a chunk-size line that ends in a bare LF or grows past a cap (`httparse::parse_chunk_size`
//! accepts both, so the line is read here).

use bytes::{Buf, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

use super::HttpError;

/// A chunk-size line (size, extensions and CRLF) longer than this is refused.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Exactly this many bytes (zero: no body).
    Length(u64),
    /// The chunked coding.
    Chunked,
    /// Until the peer closes (responses only).
    UntilClose,
}

/// The framing a message's headers announce. `request`: requests without either header
/// have no body; responses without either are read until the peer closes.
pub(crate) fn framing(headers: &HeaderMap, request: bool) -> Result<Framing, HttpError> {
    let te = transfer_encoding(headers)?;
    let cl = content_length(headers)?;
    match (te, cl) {
        (Some(_), Some(_)) => Err(HttpError::bad_request(
            "both Content-Length and Transfer-Encoding (a smuggling attempt)",
        )),
        (Some(chunked), None) => {
            if chunked {
                Ok(Framing::Chunked)
            } else if request {
                // RFC 9112 §6.3: a request whose final coding is not chunked cannot be framed.
                Err(HttpError::bad_request(
                    "Transfer-Encoding without a final chunked",
                ))
            } else {
                Ok(Framing::UntilClose)
            }
        }
        (None, Some(n)) => Ok(Framing::Length(n)),
        (None, None) if request => Ok(Framing::Length(0)),
        (None, None) => Ok(Framing::UntilClose),
    }
}

/// `Some(true)`: the codings end in `chunked` (the only one we decode); `Some(false)`: they
/// do not; `None`: no `Transfer-Encoding`. Any coding besides one final `chunked` is refused
/// with 501 (we decode no other), a doubled `chunked` with 400.
fn transfer_encoding(headers: &HeaderMap) -> Result<Option<bool>, HttpError> {
    let mut codings = Vec::new();
    for value in headers.get_all(TRANSFER_ENCODING) {
        let value = value
            .to_str()
            .map_err(|_| HttpError::bad_request("Transfer-Encoding is not ASCII"))?;
        for coding in value.split(',') {
            let coding = coding.trim();
            if coding.is_empty() {
                continue;
            }
            codings.push(coding.to_ascii_lowercase());
        }
    }
    if codings.is_empty() {
        return if headers.contains_key(TRANSFER_ENCODING) {
            Err(HttpError::bad_request("an empty Transfer-Encoding"))
        } else {
            Ok(None)
        };
    }
    let chunked = codings.iter().filter(|c| *c == "chunked").count();
    if chunked > 1 {
        return Err(HttpError::bad_request("chunked applied twice"));
    }
    let last_chunked = codings.last().is_some_and(|c| c == "chunked");
    if chunked == 1 && !last_chunked {
        return Err(HttpError::bad_request("chunked is not the final coding"));
    }
    if codings.len() > 1 {
        return Err(HttpError::not_implemented(
            "a transfer coding other than chunked",
        ));
    }
    if !last_chunked {
        // One unknown coding alone: a request cannot be framed (400 in `framing`), but a
        // response (read until close) could; we decode none, so say so.
        return Err(HttpError::not_implemented(
            "a transfer coding other than chunked",
        ));
    }
    Ok(Some(true))
}

/// The value of `Content-Length` (the same in every field and list item), if any.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
                return Err(HttpError::bad_request("an invalid Content-Length"));
            }
            let n = item.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            match found {
                Some(m) if m != n => {
                    return Err(HttpError::bad_request(
                        "differing Content-Length values (a smuggling attempt)",
                    ));
                }
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// Where a chunked body's reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data: this many bytes to go.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// Reads a chunked body incrementally out of a connection's buffer, strictly (CRLF only,
/// capped lines, a capped total).
#[derive(Debug)]
pub(crate) struct ChunkedReader {
    state: ChunkState,
    body: BytesMut,
    max_body: usize,
    /// Trailer bytes read (capped by `max_trailers`).
    trailers: usize,
    max_trailers: usize,
}

/// What [`ChunkedReader::read`] found.
#[derive(Debug)]
pub(crate) enum Chunked {
    /// More bytes are needed.
    Partial,
    /// The body is complete.
    Done(BytesMut),
}

impl ChunkedReader {
    pub(crate) fn new(max_body: usize, max_trailers: usize) -> ChunkedReader {
        ChunkedReader {
            state: ChunkState::Size,
            body: BytesMut::new(),
            max_body,
            trailers: 0,
            max_trailers,
        }
    }

    /// Consume what `src` holds of the body.
    pub(crate) fn read(&mut self, src: &mut BytesMut) -> Result<Chunked, HttpError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(src, MAX_CHUNK_LINE, "chunk-size line")? else {
                        return Ok(Chunked::Partial);
                    };
                    let size = chunk_size(&line)?;
                    if size == 0 {
                        self.state = ChunkState::Trailers;
                    } else {
                        if (self.body.len() as u64).saturating_add(size) > self.max_body as u64 {
                            return Err(HttpError::too_large(self.max_body));
                        }
                        self.state = ChunkState::Data(size);
                    }
                }
                ChunkState::Data(left) => {
                    if src.is_empty() {
                        return Ok(Chunked::Partial);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(src.len());
                    self.body.extend_from_slice(&src[..n]);
                    src.advance(n);
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd => {
                    if src.len() < 2 {
                        return Ok(Chunked::Partial);
                    }
                    if &src[..2] != b"\r\n" {
                        return Err(HttpError::bad_request("chunk data not followed by CRLF"));
                    }
                    src.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let room = self.max_trailers.saturating_sub(self.trailers).max(2);
                    let Some(line) = take_line(src, room, "trailer section")? else {
                        return Ok(Chunked::Partial);
                    };
                    self.trailers += line.len() + 2;
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                        return Ok(Chunked::Done(std::mem::take(&mut self.body)));
                    }
                    if line[0] == b' ' || line[0] == b'\t' {
                        return Err(HttpError::bad_request("an obsolete line fold in trailers"));
                    }
                    // Trailer fields are read and dropped: none may change the framing.
                }
                ChunkState::Done => return Ok(Chunked::Done(BytesMut::new())),
            }
        }
    }
}

/// Take one CRLF-terminated line (without its CRLF) from the front of `src`. A bare LF, or
/// a line longer than `max` (CRLF included), is refused.
fn take_line(src: &mut BytesMut, max: usize, what: &str) -> Result<Option<Vec<u8>>, HttpError> {
    let window = &src[..src.len().min(max)];
    match window.iter().position(|&b| b == b'\n') {
        Some(0) => Err(HttpError::bad_request(format!("a bare LF in a {what}"))),
        Some(i) if src[i - 1] != b'\r' => {
            Err(HttpError::bad_request(format!("a bare LF in a {what}")))
        }
        Some(i) => {
            let line = src[..i - 1].to_vec();
            src.advance(i + 1);
            if line.contains(&b'\r') {
                return Err(HttpError::bad_request(format!("a bare CR in a {what}")));
            }
            Ok(Some(line))
        }
        None if src.len() >= max => Err(HttpError::bad_request(format!(
            "a {what} longer than {max} bytes"
        ))),
        None => Ok(None),
    }
}

/// The size of a chunk-size line: hex digits (at most 16), then optional extensions, which
/// are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(HttpError::bad_request("an invalid chunk size"));
    }
    let rest = &line[digits..];
    let rest_ok = rest.is_empty() || {
        let after_ws = rest.trim_ascii_start();
        after_ws.first() == Some(&b';')
    };
    if !rest_ok {
        return Err(HttpError::bad_request("an invalid chunk size"));
    }
    let mut size = 0u64;
    for &d in &line[..digits] {
        let v = (d as char).to_digit(16).unwrap_or(0);
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(v)))
            .ok_or_else(|| HttpError::bad_request("a chunk size that overflows"))?;
    }
    Ok(size)
}

/// Read a chunked body out of `stream`, fed whole or in pieces: the body, or the error, as
/// text (for the fuzz targets, which compare the two).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_chunked(
    stream: &[u8],
    max: usize,
    mut pieces: Option<crate::fuzzing::Splits>,
) -> String {
    let mut reader = ChunkedReader::new(max, max);
    let mut src = BytesMut::new();
    let mut fed = 0;
    while fed < stream.len() {
        let n = pieces
            .as_mut()
            .map_or(stream.len(), |p| p.next_len().min(stream.len() - fed));
        src.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        match reader.read(&mut src) {
            Ok(Chunked::Partial) => {}
            Ok(Chunked::Done(body)) => {
                return format!("body {body:02x?}, {} left", stream.len() - fed + src.len());
            }
            Err(e) => return format!("error {}", e.reason),
        }
    }
    "partial".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("a name"),
                HeaderValue::from_str(v).expect("a value"),
            );
        }
        h
    }

    #[test]
    fn framing_rules() {
        assert_eq!(framing(&headers(&[]), true), Ok(Framing::Length(0)));
        assert_eq!(framing(&headers(&[]), false), Ok(Framing::UntilClose));
        assert_eq!(
            framing(&headers(&[("content-length", "5")]), true),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing(
                &headers(&[("content-length", "5"), ("content-length", "5")]),
                true
            ),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing(&headers(&[("transfer-encoding", "Chunked")]), true),
            Ok(Framing::Chunked)
        );
        for bad in [
            &[("content-length", "5"), ("transfer-encoding", "chunked")][..],
            &[("content-length", "5"), ("content-length", "6")],
            &[("content-length", "5, 6")],
            &[("content-length", "+5")],
            &[("content-length", "-1")],
            &[("content-length", "0x5")],
            &[("content-length", "")],
            &[("transfer-encoding", "chunked, chunked")],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            &[("transfer-encoding", "chunked, gzip")],
            &[("transfer-encoding", "xchunked")],
        ] {
            assert!(framing(&headers(bad), true).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            framing(&headers(&[("transfer-encoding", "gzip, chunked")]), true)
                .map_err(|e| e.status.as_u16()),
            Err(501)
        );
    }

    fn read_all(input: &[u8], max: usize) -> Result<Chunked, HttpError> {
        let mut r = ChunkedReader::new(max, 1024);
        let mut src = BytesMut::from(input);
        r.read(&mut src)
    }

    #[test]
    fn chunked_strict() {
        match read_all(
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
            100,
        ) {
            Ok(Chunked::Done(body)) => assert_eq!(&body[..], b"hello world"),
            other => panic!("{other:?}"),
        }
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"g\r\n",
            b"\r\n",
            b"5 x\r\nhello\r\n",
            b"11111111111111111\r\n",
            b"0\r\n\n",
            b"0\r\n folded\r\n\r\n",
        ] {
            assert!(read_all(bad, 100).is_err(), "{bad:?} accepted");
        }
        let long = [b"5;".as_slice(), &[b'a'; MAX_CHUNK_LINE]].concat();
        assert!(
            read_all(&long, 100).is_err(),
            "an endless extension accepted"
        );
        assert_eq!(
            read_all(b"65\r\n", 100)
                .map(|_| ())
                .map_err(|e| e.status.as_u16()),
            Err(413)
        );
        // Byte by byte: the same body.
        let input = b"3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n";
        let mut r = ChunkedReader::new(100, 100);
        let mut src = BytesMut::new();
        let mut out = None;
        for &b in input {
            src.extend_from_slice(&[b]);
            if let Chunked::Done(body) = r.read(&mut src).expect("valid") {
                out = Some(body);
            }
        }
        assert_eq!(out.as_deref(), Some(&b"abcd"[..]));
    }
}
