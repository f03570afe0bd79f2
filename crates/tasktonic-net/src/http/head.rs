//! Heads: parsed by `httparse` into the `http` crate's types (zero-copy where the types allow
//! it), and written.

use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};

use super::HttpError;
use super::limits::HttpLimits;

/// Header slots on the stack; a larger `max_headers` allocates.
const STACK_HEADERS: usize = 100;

/// A request head, parsed.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

/// A response head, parsed.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

/// The end of a head (the index past its blank line) within `src`, scanning from `from`;
/// `None` if it has not arrived. Bare-LF line ends are found too (httparse accepts them).
pub(crate) fn head_end(src: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while let Some(p) = src[i..].iter().position(|&b| b == b'\n') {
        let lf = i + p;
        if lf >= 1 && src[lf - 1] == b'\n' {
            return Some(lf + 1);
        }
        if lf >= 2 && src[lf - 1] == b'\r' && src[lf - 2] == b'\n' {
            return Some(lf + 1);
        }
        i = lf + 1;
    }
    None
}

/// Run `f` with header slots for `max` fields, uninitialised: filling 100 slots per head
/// cost more than parsing it.
fn with_slots<'h, R>(
    max: usize,
    f: impl FnOnce(&mut [MaybeUninit<httparse::Header<'h>>]) -> R,
) -> R {
    if max <= STACK_HEADERS {
        let mut slots = [const { MaybeUninit::uninit() }; STACK_HEADERS];
        f(&mut slots[..max])
    } else {
        let mut slots = Vec::new();
        slots.resize_with(max, MaybeUninit::uninit);
        f(&mut slots)
    }
}

fn header_map(head: &Bytes, fields: &[httparse::Header<'_>]) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::with_capacity(fields.len());
    for h in fields {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HttpError::bad_request("an invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(h.value))
            .map_err(|_| HttpError::bad_request("an invalid header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

fn version(v: Option<u8>) -> Result<Version, HttpError> {
    match v {
        Some(0) => Ok(Version::HTTP_10),
        Some(1) => Ok(Version::HTTP_11),
        _ => Err(HttpError::new(
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "an unsupported HTTP version",
        )),
    }
}

fn parse_error(e: httparse::Error, limits: &HttpLimits) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => {
            HttpError::head_too_large(format!("more than {} header fields", limits.max_headers))
        }
        httparse::Error::Version => HttpError::new(
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "an unsupported HTTP version",
        ),
        // An obsolete line fold is refused here too (httparse reads a field name there).
        e => HttpError::bad_request(format!("a malformed head ({e})")),
    }
}

/// Parse a whole request head (`head` ends with its blank line).
pub(crate) fn parse_request(head: &Bytes, limits: &HttpLimits) -> Result<RequestHead, HttpError> {
    with_slots(limits.max_headers, |slots| {
        let mut req = httparse::Request::new(&mut []);
        match req.parse_with_uninit_headers(head, slots) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HttpError::bad_request("a malformed head"));
            }
            Err(e) => return Err(parse_error(e, limits)),
        }
        let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
            .map_err(|_| HttpError::bad_request("an invalid method"))?;
        let path = req.path.unwrap_or_default();
        let uri = Uri::from_maybe_shared(head.slice_ref(path.as_bytes()))
            .map_err(|_| HttpError::bad_request("an invalid request target"))?;
        let version = version(req.version)?;
        let headers = header_map(head, req.headers)?;
        let hosts = headers.get_all(HOST).iter().count();
        if hosts > 1 || (hosts == 0 && version == Version::HTTP_11) {
            return Err(HttpError::bad_request(
                "an HTTP/1.1 request needs exactly one Host",
            ));
        }
        Ok(RequestHead {
            method,
            uri,
            version,
            headers,
        })
    })
}

/// Parse a whole response head.
pub(crate) fn parse_response(head: &Bytes, limits: &HttpLimits) -> Result<ResponseHead, HttpError> {
    with_slots(limits.max_headers, |slots| {
        let mut res = httparse::Response::new(&mut []);
        match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, head, slots)
        {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HttpError::bad_request("a malformed head"));
            }
            Err(e) => return Err(parse_error(e, limits)),
        }
        let status = StatusCode::from_u16(res.code.unwrap_or(0))
            .map_err(|_| HttpError::bad_request("an invalid status code"))?;
        Ok(ResponseHead {
            status,
            version: version(res.version)?,
            headers: header_map(head, res.headers)?,
        })
    })
}

/// Whether the connection stays open after this exchange, by `version` and `Connection`.
pub(crate) fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    !connection_lists(headers, b"close")
        && (version == Version::HTTP_11 || connection_lists(headers, b"keep-alive"))
}

/// A `Connection` field lists `token` (in any field, anywhere in its list, any case).
pub(crate) fn connection_lists(headers: &HeaderMap, token: &[u8]) -> bool {
    field_lists(headers, &CONNECTION, token)
}

/// A field `name` whose value is a comma-separated list (`Connection`, `Upgrade`) lists
/// `token` (in any of its fields, anywhere in the list, any case).
pub(crate) fn field_lists(headers: &HeaderMap, name: &HeaderName, token: &[u8]) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    })
}

/// A status whose response has no body, whatever its head says (RFC 9112 §6.3).
pub(crate) fn bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Append `n` in decimal.
pub(crate) fn put_decimal(dst: &mut BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&buf[i..]);
}

/// Append the header fields of `headers` except the framing, connection and host fields,
/// which the writer sets itself.
pub(crate) fn put_headers(dst: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION || name == HOST
        {
            continue;
        }
        dst.extend_from_slice(name.as_str().as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(value.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
}

/// How a written message's body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No framing field at all (1xx, 204, 304 responses; a body delimited by close).
    None,
}

/// Append a response head: status line, the caller's fields, `date`, framing, connection.
pub(crate) fn put_response_head(
    dst: &mut BytesMut,
    status: StatusCode,
    headers: &HeaderMap,
    framing: BodyFraming,
    connection: Option<&'static [u8]>,
) {
    dst.reserve(64 + headers.len() * 32);
    dst.extend_from_slice(b"HTTP/1.1 ");
    dst.extend_from_slice(status.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    dst.extend_from_slice(b"\r\n");
    put_headers(dst, headers);
    if !headers.contains_key(DATE) {
        super::date::put_date(dst);
    }
    put_framing(dst, framing);
    if let Some(c) = connection {
        dst.extend_from_slice(b"connection: ");
        dst.extend_from_slice(c);
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"\r\n");
}

/// Append the framing field for `framing`.
pub(crate) fn put_framing(dst: &mut BytesMut, framing: BodyFraming) {
    match framing {
        BodyFraming::Length(n) => {
            dst.extend_from_slice(b"content-length: ");
            put_decimal(dst, n);
            dst.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => dst.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        BodyFraming::None => {}
    }
}

/// A minimal response for a refused request (`reason` as its text body), closing.
pub(crate) fn put_error_response(dst: &mut BytesMut, error: &HttpError, extra: &HeaderMap) {
    let body = format!("{}\n", error.reason);
    let mut headers = extra.clone();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    put_response_head(
        dst,
        error.status,
        &headers,
        BodyFraming::Length(body.len() as u64),
        Some(b"close"),
    );
    dst.extend_from_slice(body.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_a_head() {
        let h = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        assert_eq!(head_end(h, 0), Some(h.len() - 4));
        for from in 0..h.len() - 4 {
            assert_eq!(head_end(h, from), Some(h.len() - 4), "from {from}");
        }
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: a\n\nx", 0), Some(24));
    }

    #[test]
    fn parses_a_request_and_refuses_folds_and_missing_hosts() {
        let limits = HttpLimits::default();
        let head = Bytes::from_static(b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n");
        let r = parse_request(&head, &limits).expect("valid");
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.uri.path(), "/a");
        assert_eq!(r.headers["x-a"], "1");
        let folded = Bytes::from_static(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  more\r\n\r\n");
        assert_eq!(
            parse_request(&folded, &limits)
                .map_err(|e| e.status.as_u16())
                .err(),
            Some(400)
        );
        let hostless = Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n");
        assert!(parse_request(&hostless, &limits).is_err());
        let two_hosts = Bytes::from_static(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
        assert!(parse_request(&two_hosts, &limits).is_err());
        let many = Bytes::from(format!(
            "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
            "X: 1\r\n".repeat(100)
        ));
        assert_eq!(
            parse_request(&many, &limits)
                .map_err(|e| e.status.as_u16())
                .err(),
            Some(431)
        );
    }

    #[test]
    fn keep_alive_rules() {
        let mut h = HeaderMap::new();
        assert!(keep_alive(Version::HTTP_11, &h));
        assert!(!keep_alive(Version::HTTP_10, &h));
        h.insert(CONNECTION, HeaderValue::from_static("Keep-Alive"));
        assert!(keep_alive(Version::HTTP_10, &h));
        h.insert(CONNECTION, HeaderValue::from_static("upgrade, close"));
        assert!(!keep_alive(Version::HTTP_11, &h));
    }

    #[test]
    fn decimal() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut b = BytesMut::new();
            put_decimal(&mut b, n);
            assert_eq!(&b[..], n.to_string().as_bytes());
        }
    }
}
