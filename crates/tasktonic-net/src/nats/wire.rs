//! The NATS client protocol on a connection: server operations in (`INFO`, `MSG`, `HMSG`,
//! `PING`, `PONG`, `+OK`, `-ERR`), client operations out (`CONNECT`, `PUB`, `HPUB`, `SUB`,
//! `UNSUB`, `PING`, `PONG`).
//!
//! A line from the server is at most 64 KiB (`INFO` carries the cluster's URLs; a client's
//! own lines stay within the server's `max_control_line`, 4 KiB); a message's payload at
//! most the server's `max_payload` from `INFO` (1 MiB until `INFO` says otherwise, and never
//! over 64 MiB whatever it says). A server `PING` is answered `PONG` by the protocol itself. Anything else
//! — an unknown operation, a malformed argument, a payload not followed by CRLF — is a
//! codec error and the connection closes (the stream cannot be trusted any more).

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;

use crate::codec::CodecError;
use crate::protocol::{Protocol, ProtocolIo};

/// The longest control line a client sends (the server's default `max_control_line`).
pub(crate) const MAX_CONTROL_LINE: usize = 4096;

/// The longest line read from a server: `INFO` carries the cluster's URLs and may be long.
const MAX_SERVER_LINE: usize = 64 * 1024;

/// The payload limit before the server's `INFO` says.
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// The most a server's `INFO` can raise the payload limit to: the largest `max_payload` a
/// NATS server accepts in its configuration.
pub(crate) const MAX_PAYLOAD_CAP: usize = 64 * 1024 * 1024;

/// What the server says about itself (`INFO`); fields it does not send take their defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ServerInfo {
    /// The server's unique id.
    pub server_id: String,
    /// The server's name.
    pub server_name: String,
    /// The server's version.
    pub version: String,
    /// The protocol version (1: dynamic reconfiguration, `connect_urls`).
    pub proto: i32,
    /// The server understands headers (`HPUB`, `HMSG`).
    pub headers: bool,
    /// The largest payload the server accepts.
    pub max_payload: usize,
    /// The server wants credentials in `CONNECT`.
    pub auth_required: bool,
    /// The server speaks TLS only (the client upgrades after this `INFO`).
    pub tls_required: bool,
    /// The server offers TLS.
    pub tls_available: bool,
    /// The cluster's other servers, for reconnecting (`host:port`).
    pub connect_urls: Vec<String>,
    /// The server is in lame duck mode: it is going away; reconnect elsewhere.
    pub ldm: bool,
    /// The id the server gave this client.
    pub client_id: u64,
}

/// A message received on a subscription.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsMsg {
    /// The subject it was published to.
    pub subject: String,
    /// Where a reply goes, if the publisher wants one.
    pub reply: Option<String>,
    /// Header fields (`HMSG`), in order; empty for a plain `MSG`.
    pub headers: Vec<(String, String)>,
    /// The status of a server-made message (503: no responders to a request).
    pub status: Option<u16>,
    /// The payload.
    pub payload: Bytes,
    pub(crate) sid: u64,
}

impl fmt::Debug for NatsMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsMsg")
            .field("subject", &self.subject)
            .field("reply", &self.reply)
            .field("headers", &self.headers)
            .field("status", &self.status)
            .field("payload", &format_args!("{} bytes", self.payload.len()))
            .finish()
    }
}

/// One operation of a NATS connection, both ways (opaque: the client speaks it for you).
pub struct NatsWire(pub(crate) Op);

impl fmt::Debug for NatsWire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Op::Info(_) => f.write_str("INFO"),
            Op::Msg(m) => write!(f, "MSG {}", m.subject),
            Op::Ping => f.write_str("PING"),
            Op::Pong => f.write_str("PONG"),
            Op::Ok => f.write_str("+OK"),
            Op::Err(e) => write!(f, "-ERR {e}"),
            Op::Connect(_) => f.write_str("CONNECT"),
            Op::Pub(p) => write!(f, "PUB {} ({} bytes)", p.subject, p.payload.len()),
            Op::Sub { subject, sid, .. } => write!(f, "SUB {subject} {sid}"),
            Op::Unsub { sid, .. } => write!(f, "UNSUB {sid}"),
        }
    }
}

/// A message to publish.
pub(crate) struct Publish {
    pub(crate) subject: Arc<str>,
    pub(crate) reply: Option<String>,
    /// The header block, ready to write (`NATS/1.0\r\n…\r\n\r\n`), if any.
    pub(crate) headers: Option<Bytes>,
    pub(crate) payload: Bytes,
}

pub(crate) enum Op {
    // ----- in
    Info(Box<ServerInfo>),
    Msg(Box<NatsMsg>),
    Ok,
    Err(String),
    // ----- both ways
    Ping,
    Pong,
    // ----- out
    Connect(Bytes),
    Pub(Box<Publish>),
    Sub {
        subject: String,
        queue: Option<String>,
        sid: u64,
    },
    Unsub {
        sid: u64,
        max: Option<u64>,
    },
}

/// A `MSG`/`HMSG` whose control line was read, waiting for its payload.
struct Head {
    msg: NatsMsg,
    header_len: usize,
    total: usize,
}

/// The NATS client protocol of one connection.
pub(crate) struct NatsProtocol {
    max_payload: usize,
    /// Bytes of the buffer searched for a line end already.
    scanned: usize,
    head: Option<Box<Head>>,
}

impl Clone for NatsProtocol {
    /// A fresh protocol for a new connection.
    fn clone(&self) -> Self {
        NatsProtocol::new()
    }
}

fn malformed(what: impl Into<String>) -> CodecError {
    CodecError::malformed_msg(format!("nats: {}", what.into()))
}

fn number(arg: &[u8], what: &str) -> Result<u64, CodecError> {
    if arg.is_empty() || arg.len() > 19 || !arg.iter().all(u8::is_ascii_digit) {
        return Err(malformed(format!(
            "{what} is not a number: {:?}",
            String::from_utf8_lossy(arg)
        )));
    }
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| malformed(format!("{what} is out of range")))
}

/// A subject from the server. NATS subjects are bytes; one that is not UTF-8 (any client
/// may publish to a wildcard we hear) is delivered with its bad bytes replaced, never a
/// reason to drop the connection.
fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// A message's status and header fields.
type Headers = (Option<u16>, Vec<(String, String)>);

/// The header block of an `HMSG`: the status line, then `Key: Value` lines. Its size came
/// with the message, so whatever the block holds, the stream stays in step: a block that is
/// not what NATS writes is read as far as it makes sense (a line without a colon is
/// skipped, bad bytes replaced) and the message is still delivered — one publisher's odd
/// headers must not cost every subscriber its connection.
fn parse_headers(block: &[u8]) -> Headers {
    let block = String::from_utf8_lossy(block);
    let mut lines = block.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("NATS/1.0"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse::<u16>().ok());
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((k, v)) => headers.push((k.trim().to_string(), v.trim().to_string())),
            None => log::debug!("nats: a header line without a colon skipped: {line:?}"),
        }
    }
    (status, headers)
}

impl NatsProtocol {
    pub(crate) fn new() -> NatsProtocol {
        NatsProtocol {
            max_payload: DEFAULT_MAX_PAYLOAD,
            scanned: 0,
            head: None,
        }
    }

    /// One control line (without its CRLF): an operation, or the head of a message.
    fn control(&mut self, line: &[u8], io: &mut ProtocolIo<'_>) -> Result<Option<Op>, CodecError> {
        let (op, rest) = match line.iter().position(|b| *b == b' ' || *b == b'\t') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        // No allocation per line: at most six arguments (more is malformed for every
        // operation that takes them; INFO and -ERR read `rest` whole and ignore them), the
        // operation's name upper-cased on the stack.
        let mut slots: [&[u8]; 6] = [&[]; 6];
        let mut count = 0;
        for a in rest
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|a| !a.is_empty())
        {
            if count == slots.len() {
                count += 1;
                break;
            }
            slots[count] = a;
            count += 1;
        }
        let args = slots.get(..count).unwrap_or(&[]);
        let mut name = [0u8; 8];
        let upper = match op.len() {
            n @ 1..=8 => {
                name[..n].copy_from_slice(op);
                name[..n].make_ascii_uppercase();
                &name[..n]
            }
            _ => op,
        };
        match upper {
            b"MSG" => {
                let (subject, sid, reply, size) = match args {
                    [s, i, n] => (s, i, None, n),
                    [s, i, r, n] => (s, i, Some(r), n),
                    _ => return Err(malformed("MSG needs 3 or 4 arguments")),
                };
                self.expect(subject, sid, reply, 0, number(size, "MSG size")?)?;
                Ok(None)
            }
            b"HMSG" => {
                let (subject, sid, reply, hsize, size) = match args {
                    [s, i, h, n] => (s, i, None, h, n),
                    [s, i, r, h, n] => (s, i, Some(r), h, n),
                    _ => return Err(malformed("HMSG needs 4 or 5 arguments")),
                };
                let (h, n) = (
                    number(hsize, "HMSG header size")?,
                    number(size, "HMSG size")?,
                );
                if h > n {
                    return Err(malformed("HMSG headers larger than the message"));
                }
                self.expect(subject, sid, reply, h, n)?;
                Ok(None)
            }
            b"PING" => {
                io.reply(b"PONG\r\n");
                Ok(None)
            }
            b"PONG" => Ok(Some(Op::Pong)),
            b"+OK" => Ok(Some(Op::Ok)),
            b"-ERR" => {
                let why = String::from_utf8_lossy(rest)
                    .trim()
                    .trim_matches('\'')
                    .to_string();
                Ok(Some(Op::Err(why)))
            }
            b"INFO" => {
                let info: ServerInfo = serde_json::from_slice(rest)
                    .map_err(|e| CodecError::malformed("nats: INFO", e))?;
                if info.max_payload > 0 {
                    // The server's word, within the most a NATS server can be configured
                    // to (64 MiB): a server cannot make us allocate more per message.
                    self.max_payload = info.max_payload.min(MAX_PAYLOAD_CAP);
                }
                Ok(Some(Op::Info(Box::new(info))))
            }
            other => Err(malformed(format!(
                "unknown operation {:?}",
                String::from_utf8_lossy(&other[..other.len().min(16)])
            ))),
        }
    }

    fn expect(
        &mut self,
        subject: &[u8],
        sid: &[u8],
        reply: Option<&&[u8]>,
        header_len: u64,
        total: u64,
    ) -> Result<(), CodecError> {
        if total > self.max_payload as u64 {
            return Err(CodecError::FrameTooLarge {
                len: total,
                max: self.max_payload,
            });
        }
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        self.head = Some(Box::new(Head {
            msg: NatsMsg {
                subject: text(subject),
                reply: reply.map(|r| text(r)),
                headers: Vec::new(),
                status: None,
                payload: Bytes::new(),
                sid: number(sid, "a sid")?,
            },
            header_len: usize::try_from(header_len).unwrap_or(usize::MAX),
            total,
        }));
        Ok(())
    }

    /// The next operation out of `src`, if a whole one is there.
    fn next(&mut self, src: &mut BytesMut, io: &mut ProtocolIo<'_>) -> Result<Step, CodecError> {
        if let Some(head) = &self.head {
            if src.len() < head.total + 2 {
                return Ok(Step::More);
            }
            let mut head = self.head.take().expect("a head");
            let mut body = src.split_to(head.total + 2);
            if &body[head.total..] != b"\r\n" {
                return Err(malformed("a payload not followed by CRLF"));
            }
            body.truncate(head.total);
            if head.header_len > 0 {
                let block = body.split_to(head.header_len);
                let (status, headers) = parse_headers(&block);
                head.msg.status = status;
                head.msg.headers = headers;
            }
            head.msg.payload = body.freeze();
            return Ok(Step::Op(Op::Msg(Box::new(head.msg))));
        }
        let from = self.scanned;
        let Some(at) = src[from..].windows(2).position(|w| w == b"\r\n") else {
            if src.len() > MAX_SERVER_LINE {
                return Err(CodecError::FrameTooLarge {
                    len: src.len() as u64,
                    max: MAX_SERVER_LINE,
                });
            }
            self.scanned = src.len().saturating_sub(1);
            return Ok(Step::More);
        };
        let end = from + at;
        self.scanned = 0;
        if end > MAX_SERVER_LINE {
            return Err(CodecError::FrameTooLarge {
                len: end as u64,
                max: MAX_SERVER_LINE,
            });
        }
        let line = src.split_to(end + 2);
        match self.control(&line[..end], io)? {
            Some(op) => Ok(Step::Op(op)),
            None => Ok(Step::Again),
        }
    }
}

enum Step {
    Op(Op),
    /// A line was consumed with nothing to hand over (a `PING`, a message's head).
    Again,
    More,
}

/// `subject [reply] ` into `dst`.
fn put_subject(dst: &mut BytesMut, subject: &str, reply: Option<&str>) {
    dst.extend_from_slice(subject.as_bytes());
    dst.extend_from_slice(b" ");
    if let Some(r) = reply {
        dst.extend_from_slice(r.as_bytes());
        dst.extend_from_slice(b" ");
    }
}

fn put_number(dst: &mut BytesMut, n: u64) {
    crate::http::head::put_decimal(dst, n);
}

impl Protocol for NatsProtocol {
    type Message = NatsWire;

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(NatsWire),
    {
        let mut handed = 0;
        while handed < max && !src.is_empty() {
            match self.next(src, io)? {
                Step::Op(op) => {
                    each(NatsWire(op));
                    handed += 1;
                }
                Step::Again => {}
                Step::More => break,
            }
        }
        Ok(handed)
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        _io: &mut ProtocolIo<'_>,
    ) -> Result<Option<NatsWire>, CodecError> {
        if src.is_empty() && self.head.is_none() {
            return Ok(None);
        }
        Err(CodecError::Truncated {
            buffered: src.len(),
        })
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a NatsWire,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        match &item.0 {
            Op::Pub(p) => {
                let total = p.headers.as_ref().map_or(0, Bytes::len) + p.payload.len();
                if total > self.max_payload {
                    return Err(CodecError::unencodable_msg(format!(
                        "a payload of {total} bytes exceeds the server's max_payload of {}",
                        self.max_payload
                    )));
                }
                match &p.headers {
                    None => {
                        dst.extend_from_slice(b"PUB ");
                        put_subject(dst, &p.subject, p.reply.as_deref());
                    }
                    Some(h) => {
                        dst.extend_from_slice(b"HPUB ");
                        put_subject(dst, &p.subject, p.reply.as_deref());
                        put_number(dst, h.len() as u64);
                        dst.extend_from_slice(b" ");
                    }
                }
                put_number(dst, total as u64);
                dst.extend_from_slice(b"\r\n");
                if let Some(h) = &p.headers {
                    dst.extend_from_slice(h);
                }
                // Copied, not left to the vectored write: the CRLF must follow the payload
                // at once, and the vectored write's slice ends a message.
                dst.extend_from_slice(&p.payload);
                dst.extend_from_slice(b"\r\n");
            }
            Op::Sub {
                subject,
                queue,
                sid,
            } => {
                dst.extend_from_slice(b"SUB ");
                put_subject(dst, subject, queue.as_deref());
                put_number(dst, *sid);
                dst.extend_from_slice(b"\r\n");
            }
            Op::Unsub { sid, max } => {
                dst.extend_from_slice(b"UNSUB ");
                put_number(dst, *sid);
                if let Some(m) = max {
                    dst.extend_from_slice(b" ");
                    put_number(dst, *m);
                }
                dst.extend_from_slice(b"\r\n");
            }
            Op::Connect(json) => {
                dst.extend_from_slice(b"CONNECT ");
                dst.extend_from_slice(json);
                dst.extend_from_slice(b"\r\n");
            }
            Op::Ping => dst.extend_from_slice(b"PING\r\n"),
            Op::Pong => dst.extend_from_slice(b"PONG\r\n"),
            Op::Info(_) | Op::Msg(_) | Op::Ok | Op::Err(_) => {
                return Err(CodecError::unencodable_msg("a server operation"));
            }
        }
        Ok(None)
    }
}

/// The client's protocol, for fuzzing and the property tests.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_protocol() -> NatsProtocol {
    NatsProtocol::new()
}

/// An operation as the fuzzing harness compares it: every field a message carries.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_show(wire: &NatsWire) -> String {
    match &wire.0 {
        Op::Msg(m) => format!(
            "MSG {} sid {} reply {:?} headers {:?} status {:?} payload {:02x?}",
            m.subject,
            m.sid,
            m.reply,
            m.headers,
            m.status,
            &m.payload[..]
        ),
        Op::Info(info) => format!("INFO {info:?}"),
        Op::Err(why) => format!("-ERR {why}"),
        _ => format!("{wire:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decode `input` fed in pieces cut at `cuts`; the operations (as text) and the
    /// protocol's own replies, or the first error.
    fn decode(input: &[u8], cuts: &[usize]) -> Result<(Vec<String>, Vec<u8>), CodecError> {
        let mut p = NatsProtocol::new();
        let mut src = BytesMut::new();
        let mut out = BytesMut::new();
        let mut ops = Vec::new();
        let mut at = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(input.len());
        points.sort_unstable();
        for end in points {
            src.extend_from_slice(&input[at..end.max(at)]);
            at = end.max(at);
            let mut io = ProtocolIo::new(&mut out);
            p.decode_each(&mut src, usize::MAX, &mut io, |w| {
                ops.push(match w.0 {
                    Op::Msg(m) => format!(
                        "MSG {} {} {:?} {:?} {:?} {}",
                        m.subject,
                        m.sid,
                        m.reply,
                        m.status,
                        m.headers,
                        String::from_utf8_lossy(&m.payload)
                    ),
                    other => format!("{:?}", NatsWire(other)),
                });
            })?;
        }
        Ok((ops, out.to_vec()))
    }

    const STREAM: &[u8] = b"INFO {\"server_id\":\"x\",\"max_payload\":1048576,\"headers\":true,\"connect_urls\":[\"10.0.0.2:4222\"]}\r\n\
        PING\r\n\
        MSG orders.new 7 5\r\nhello\r\n\
        msg a 1 _INBOX.x.2 0\r\n\r\n\
        HMSG b 2 18 23\r\nNATS/1.0\r\nK: v\r\n\r\nworld\r\n\
        HMSG _INBOX.x.3 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n\
        PONG\r\n+OK\r\n-ERR 'Authorization Violation'\r\n";

    #[test]
    fn a_stream_of_every_operation() {
        let (ops, replies) = decode(STREAM, &[]).expect("decodes");
        assert_eq!(
            ops,
            vec![
                "INFO".to_string(),
                "MSG orders.new 7 None None [] hello".into(),
                "MSG a 1 Some(\"_INBOX.x.2\") None [] ".into(),
                "MSG b 2 None None [(\"K\", \"v\")] world".into(),
                "MSG _INBOX.x.3 1 None Some(503) [] ".into(),
                "PONG".into(),
                "+OK".into(),
                "-ERR Authorization Violation".into(),
            ]
        );
        // The server's PING was answered by the protocol itself.
        assert_eq!(replies, b"PONG\r\n");
    }

    #[test]
    fn limits_and_malformed_input() {
        let too_big = b"MSG a 1 1048577\r\n";
        assert!(matches!(
            decode(too_big, &[]),
            Err(CodecError::FrameTooLarge { len: 1_048_577, .. })
        ));
        let long_line = vec![b'x'; MAX_SERVER_LINE + 10];
        assert!(matches!(
            decode(&long_line, &[]),
            Err(CodecError::FrameTooLarge { .. })
        ));
        for bad in [
            &b"MSG a 1 5\r\nhelloXX"[..],
            b"NOPE\r\n",
            b"MSG a b c d e f\r\n",
            b"MSG a 1 -5\r\n",
            b"HMSG a 1 9 5\r\n",
            b"INFO {not json\r\n",
        ] {
            assert!(
                decode(bad, &[]).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn odd_content_from_another_publisher_is_delivered_not_fatal() {
        let input = b"MSG a.\xff 1 2\r\nhi\r\nHMSG b 2 21 23\r\nNATS/1.0\r\nnocolon\r\n\r\nhi\r\n";
        let (ops, _) = decode(input, &[]).expect("decodes");
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert!(ops[0].starts_with("MSG a.\u{fffd} 1"), "{ops:?}");
        assert_eq!(ops[1], "MSG b 2 None None [] hi");
    }

    #[test]
    fn encodes_client_operations() {
        let mut p = NatsProtocol::new();
        let mut dst = BytesMut::new();
        let ops = [
            Op::Connect(Bytes::from_static(b"{}")),
            Op::Sub {
                subject: "a.*".into(),
                queue: Some("q".into()),
                sid: 3,
            },
            Op::Pub(Box::new(Publish {
                subject: "a.b".into(),
                reply: Some("_INBOX.1".into()),
                headers: None,
                payload: Bytes::from_static(b"hi"),
            })),
            Op::Pub(Box::new(Publish {
                subject: "a.b".into(),
                reply: None,
                headers: Some(Bytes::from_static(b"NATS/1.0\r\nK: v\r\n\r\n")),
                payload: Bytes::from_static(b"hi"),
            })),
            Op::Unsub { sid: 3, max: None },
            Op::Ping,
        ];
        for op in ops {
            let w = NatsWire(op);
            assert!(p.encode_vectored(&w, &mut dst).expect("encodes").is_none());
        }
        assert_eq!(
            &dst[..],
            &b"CONNECT {}\r\nSUB a.* q 3\r\nPUB a.b _INBOX.1 2\r\nhi\r\n\
               HPUB a.b 18 20\r\nNATS/1.0\r\nK: v\r\n\r\nhi\r\nUNSUB 3\r\nPING\r\n"[..]
        );
    }

    proptest! {
        /// Any split of the stream decodes to the same operations.
        #[test]
        fn any_split_decodes_the_same(cuts in proptest::collection::vec(0usize..400, 0..12)) {
            prop_assert_eq!(decode(STREAM, &cuts).expect("decodes"), decode(STREAM, &[]).expect("decodes"));
        }

        /// Arbitrary bytes: an error or operations, never a panic, never a payload
        /// allocated over the limit.
        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..600),
                                        cuts in proptest::collection::vec(0usize..600, 0..6)) {
            let _ = decode(&input, &cuts);
        }

        /// Arbitrary input after valid operations, with line-like structure.
        #[test]
        fn mutated_streams_never_panic(at in 0usize..400, byte in any::<u8>()) {
            let mut input = STREAM.to_vec();
            let i = at % input.len();
            input[i] = byte;
            let _ = decode(&input, &[i]);
        }
    }
}
