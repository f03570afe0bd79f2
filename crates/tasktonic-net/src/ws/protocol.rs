//! The WebSocket protocol on a connection: frames in and out through tungstenite's
//! `WebSocketContext`, driven from the connection's own buffers; on a client, the opening
//! handshake before that.
//!
//! Decoding: a whole, unfragmented text or binary frame at a message boundary — the common
//! case — is cut from the connection's buffer here (unmasked in place, UTF-8 checked, no
//! copy). Everything else (control frames, fragments, frames over a limit, protocol errors)
//! goes to the context: the [gate](super::gate) hands it one frame at a time from the
//! connection's read buffer; whole messages (fragments joined, UTF-8 checked, limits held)
//! go to the base, pings are answered and a close frame is answered and ends the session,
//! all by the context, its replies written into the connection's reply buffer. A session
//! at a message boundary with nothing owed drops its context (an idle session holds no
//! frame buffers); the next frame makes a new one.
//!
//! Encoding: a server's data frames are written here (header, then the payload handed to
//! the connection's vectored write when it is large: no copy); a client's go through the
//! context, which masks them.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{
    SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};
use http::{HeaderMap, StatusCode, Uri};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as TError, Message};

use super::gate::FrameGate;
use super::message::{Utf8Bytes, WsClose, WsMessage};
use super::{WsConfig, WsInfo};
use crate::codec::CodecError;
use crate::http::HttpLimits;
use crate::http::head::{connection_lists, head_end, parse_response, put_headers};
use crate::protocol::{Protocol, ProtocolIo};

/// Payloads this long or longer leave by the connection's vectored write (not copied).
const VECTORED_MIN: usize = 1024;

/// The largest handshake response a client reads.
const MAX_HANDSHAKE: usize = 16 * 1024;

/// One message of a WebSocket connection, both ways (opaque: users see
/// [`WsMessage`]s and [`Ws`](super::Ws) events).
pub struct WsWire(pub(crate) Wire);

impl std::fmt::Debug for WsWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Wire::Message(m) => write!(f, "WsWire::Message({m:?})"),
            Wire::Ping(p) => write!(f, "WsWire::Ping({} bytes)", p.len()),
            Wire::Close(c) => write!(f, "WsWire::Close({c:?})"),
            Wire::Opened(_) => f.write_str("WsWire::Opened"),
        }
    }
}

pub(crate) enum Wire {
    /// A whole message, both ways.
    Message(WsMessage),
    /// A ping, out.
    Ping(Bytes),
    /// Out: begin the close handshake. In: the peer's close frame (its own, or its answer
    /// to ours); `None` when it carried no code.
    Close(Option<WsClose>),
    /// In: a client's opening handshake completed.
    Opened(Box<WsInfo>),
}

/// What every connection of one endpoint shares.
pub(crate) struct WsSettings {
    pub(crate) config: WsConfig,
    pub(crate) frames: WebSocketConfig,
    /// A client's handshake; `None` on a server.
    pub(crate) dial: Option<DialSpec>,
}

impl WsSettings {
    pub(crate) fn new(config: WsConfig, dial: Option<DialSpec>) -> Arc<WsSettings> {
        Arc::new(WsSettings {
            frames: config.tungstenite(),
            config,
            dial,
        })
    }
}

/// The request a client opens every connection with.
pub(crate) struct DialSpec {
    pub(crate) uri: Uri,
    /// The `Host` field's value.
    pub(crate) host: String,
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: HeaderMap,
}

/// A client connection waiting for the server's `101`.
struct Dialling {
    key: String,
    /// Bytes of the buffer searched for the head's end already.
    scanned: usize,
    /// Frames the base sent before the handshake completed (sent right after it).
    early: BytesMut,
}

/// Our buffers as the stream tungstenite reads and writes.
struct Feed<'a> {
    gate: &'a mut FrameGate,
    src: &'a mut BytesMut,
    out: &'a mut BytesMut,
}

impl Read for Feed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.gate.read(self.src, buf)
    }
}

impl Write for Feed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The WebSocket protocol of one connection.
pub(crate) struct WsProtocol {
    settings: Arc<WsSettings>,
    role: Role,
    /// The frame codec and session state; `None` while idle at a message boundary.
    ctx: Option<WebSocketContext>,
    gate: FrameGate,
    dialling: Option<Box<Dialling>>,
}

impl Clone for WsProtocol {
    /// A fresh protocol for a new connection (a client's reconnect), sharing the settings.
    fn clone(&self) -> Self {
        WsProtocol::new(self.settings.clone(), self.role)
    }
}

impl WsProtocol {
    pub(crate) fn new(settings: Arc<WsSettings>, role: Role) -> WsProtocol {
        let dialling = (role == Role::Client).then(|| {
            Box::new(Dialling {
                key: String::new(),
                scanned: 0,
                early: BytesMut::new(),
            })
        });
        WsProtocol {
            settings,
            role,
            ctx: None,
            gate: FrameGate::default(),
            dialling,
        }
    }

    fn context(&mut self) -> &mut WebSocketContext {
        let (role, frames) = (self.role, self.settings.frames);
        self.ctx
            .get_or_insert_with(|| WebSocketContext::new(role, Some(frames)))
    }

    /// True unless a close frame was sent or received.
    fn can_write(&self) -> bool {
        self.ctx.as_ref().is_none_or(WebSocketContext::can_write)
    }

    /// The frames of `msg`, written into `dst` (a server's; unmasked), the payload left
    /// out for a vectored write when it is large and goes in one frame.
    fn put_server_message<'a>(&self, msg: &'a WsMessage, dst: &mut BytesMut) -> Option<&'a [u8]> {
        let (opcode, payload) = match msg {
            WsMessage::Text(t) => (1, t.as_bytes()),
            WsMessage::Binary(b) => (2, &b[..]),
        };
        match self.settings.config.fragment_size {
            Some(size) if payload.len() > size => {
                let pieces = payload.len().div_ceil(size);
                for (i, piece) in payload.chunks(size).enumerate() {
                    let op = if i == 0 { opcode } else { 0 };
                    put_header(dst, i + 1 == pieces, op, piece.len());
                    dst.extend_from_slice(piece);
                }
                None
            }
            _ => {
                put_header(dst, true, opcode, payload.len());
                if payload.len() >= VECTORED_MIN {
                    return Some(payload);
                }
                dst.extend_from_slice(payload);
                None
            }
        }
    }

    /// A client's message, masked by the context, into `dst`.
    fn put_client_message(&mut self, msg: &WsMessage, dst: &mut BytesMut) -> Result<(), TError> {
        let (op, payload) = match msg {
            WsMessage::Text(t) => (Data::Text, Bytes::from(t.clone())),
            WsMessage::Binary(b) => (Data::Binary, b.clone()),
        };
        let fragment = self.settings.config.fragment_size;
        let mut gate = FrameGate::default();
        let mut none = BytesMut::new();
        let ctx = self.context();
        let mut feed = Feed {
            gate: &mut gate,
            src: &mut none,
            out: dst,
        };
        match fragment {
            Some(size) if payload.len() > size => {
                let pieces = payload.len().div_ceil(size);
                for i in 0..pieces {
                    let piece = payload.slice(i * size..((i + 1) * size).min(payload.len()));
                    let code = if i == 0 {
                        OpCode::Data(op)
                    } else {
                        OpCode::Data(Data::Continue)
                    };
                    let frame = Frame::message(piece, code, i + 1 == pieces);
                    ctx.write(&mut feed, Message::Frame(frame))?;
                }
                ctx.flush(&mut feed)
            }
            _ => {
                let m = match op {
                    Data::Text => Message::Text(msg.as_text().unwrap_or_default().into()),
                    _ => Message::Binary(payload),
                };
                ctx.write(&mut feed, m)?;
                ctx.flush(&mut feed)
            }
        }
    }

    /// The peer broke the protocol: answer with a close frame carrying the code, and turn
    /// the error into the connection's.
    fn fail(&mut self, e: TError, out: &mut BytesMut) -> CodecError {
        let (code, error) = match e {
            TError::Capacity(c) => {
                let (len, max) = match c {
                    tungstenite::error::CapacityError::MessageTooLong { size, max_size } => {
                        (size as u64, max_size)
                    }
                    other => (0, {
                        log::debug!("websocket capacity: {other}");
                        self.settings.config.max_message
                    }),
                };
                (CloseCode::Size, CodecError::FrameTooLarge { len, max })
            }
            TError::Utf8(_) => (
                CloseCode::Invalid,
                CodecError::malformed_msg("invalid UTF-8 in a text message"),
            ),
            TError::Io(e) => return CodecError::from(e),
            other => (
                CloseCode::Protocol,
                CodecError::malformed("websocket", other),
            ),
        };
        let reason = match code {
            CloseCode::Size => "message too big",
            CloseCode::Invalid => "invalid UTF-8",
            _ => "protocol error",
        };
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let mut none = BytesMut::new();
        let mut gate = FrameGate::default();
        let mut feed = Feed {
            gate: &mut gate,
            src: &mut none,
            out,
        };
        if let Err(e) = self.context().close(&mut feed, Some(frame)) {
            log::debug!("websocket: the close frame after an error: {e}");
        }
        error
    }
}

/// A frame header without a mask (a server's), written in one piece.
fn put_header(dst: &mut BytesMut, fin: bool, opcode: u8, len: usize) {
    let mut h = [0u8; 10];
    h[0] = if fin { 0x80 } else { 0 } | opcode;
    let n = if let Ok(small @ 0..126) = u8::try_from(len) {
        h[1] = small;
        2
    } else if let Ok(medium) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&medium.to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    dst.extend_from_slice(&h[..n]);
}

/// What the fast path made of the front of the buffer.
enum Fast {
    /// A whole message, taken.
    Message(WsMessage),
    /// A message frame whose rest has not arrived: wait (nothing taken).
    Wait,
    /// Not a frame the fast path takes (a control frame, a fragment, an error, one over a
    /// limit): tungstenite's.
    No,
    /// A text message that is not UTF-8 (taken).
    BadText(TError),
}

/// XOR `data` with the 4-byte mask `key`, eight bytes at a time.
fn unmask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// The common case without tungstenite: a whole, unfragmented text or binary frame, with
/// no reserved bit, masked as the side requires, within the limits, at a message boundary.
/// Everything else goes to tungstenite, which enforces the rest of the protocol.
fn fast_frame(role: Role, config: &WsConfig, src: &mut BytesMut) -> Fast {
    let [b0, b1, ..] = src[..] else {
        return Fast::Wait;
    };
    let opcode = b0 & 0x0F;
    let masked = b1 & 0x80 != 0;
    if b0 & 0xF0 != 0x80 || !(opcode == 1 || opcode == 2) || masked != (role == Role::Server) {
        return Fast::No;
    }
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header = 2 + ext + if masked { 4 } else { 0 };
    if src.len() < header {
        return Fast::Wait;
    }
    let len = match ext {
        2 => u64::from(u16::from_be_bytes([src[2], src[3]])),
        8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&src[2..10]);
            u64::from_be_bytes(b)
        }
        _ => u64::from(b1 & 0x7F),
    };
    let Ok(len) = usize::try_from(len) else {
        return Fast::No;
    };
    if len > config.max_frame || len > config.max_message {
        return Fast::No; // tungstenite refuses it (1009)
    }
    if src.len() < header + len {
        return Fast::Wait;
    }
    let mut frame = src.split_to(header + len);
    let key = masked.then(|| {
        [
            frame[header - 4],
            frame[header - 3],
            frame[header - 2],
            frame[header - 1],
        ]
    });
    let _ = frame.split_to(header);
    if let Some(key) = key {
        unmask(&mut frame, key);
    }
    let payload = frame.freeze();
    if opcode == 2 {
        return Fast::Message(WsMessage::Binary(payload));
    }
    match Utf8Bytes::try_from(payload) {
        Ok(text) => Fast::Message(WsMessage::Text(text)),
        Err(e) => Fast::BadText(TError::Utf8(e.to_string())),
    }
}

impl Dialling {
    /// The request that opens the session.
    fn put_request(&mut self, spec: &DialSpec, dst: &mut BytesMut) {
        self.key = tungstenite::handshake::client::generate_key();
        let target = spec.uri.path_and_query().map_or("/", |p| p.as_str());
        dst.extend_from_slice(b"GET ");
        dst.extend_from_slice(target.as_bytes());
        dst.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        dst.extend_from_slice(spec.host.as_bytes());
        dst.extend_from_slice(
            b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
        );
        dst.extend_from_slice(self.key.as_bytes());
        dst.extend_from_slice(b"\r\n");
        if !spec.protocols.is_empty() {
            dst.extend_from_slice(b"Sec-WebSocket-Protocol: ");
            dst.extend_from_slice(spec.protocols.join(", ").as_bytes());
            dst.extend_from_slice(b"\r\n");
        }
        put_headers(dst, &spec.headers);
        dst.extend_from_slice(b"\r\n");
    }

    /// The server's answer, once whole: the session's description, or why it is refused.
    fn read_response(
        &mut self,
        spec: &DialSpec,
        src: &mut BytesMut,
    ) -> Result<Option<WsInfo>, CodecError> {
        let Some(end) = head_end(src, self.scanned) else {
            if src.len() > MAX_HANDSHAKE {
                return Err(CodecError::FrameTooLarge {
                    len: src.len() as u64,
                    max: MAX_HANDSHAKE,
                });
            }
            self.scanned = src.len();
            return Ok(None);
        };
        let head = src.split_to(end).freeze();
        let response = parse_response(&head, &HttpLimits::default())
            .map_err(|e| CodecError::malformed("the handshake's response", e))?;
        let refuse = |why: String| {
            Err(CodecError::malformed_msg(format!(
                "websocket handshake: {why}"
            )))
        };
        if response.status != StatusCode::SWITCHING_PROTOCOLS {
            return refuse(format!(
                "the server answered {} instead of 101 Switching Protocols",
                response.status
            ));
        }
        let headers = response.headers;
        let upgrade = headers
            .get(UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        if !upgrade || !connection_lists(&headers, b"upgrade") {
            return refuse("the 101 lacks `Upgrade: websocket` / `Connection: Upgrade`".into());
        }
        let expected = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        if headers
            .get(SEC_WEBSOCKET_ACCEPT)
            .map(http::HeaderValue::as_bytes)
            != Some(expected.as_bytes())
        {
            return refuse("Sec-WebSocket-Accept does not match the key".into());
        }
        if headers.contains_key(SEC_WEBSOCKET_EXTENSIONS) {
            return refuse("the server chose an extension that was not offered".into());
        }
        let protocol = match headers.get(SEC_WEBSOCKET_PROTOCOL) {
            None => None,
            Some(v) => {
                let chosen = v.to_str().unwrap_or_default().trim().to_string();
                if !spec.protocols.contains(&chosen) {
                    return refuse(format!(
                        "the server chose the subprotocol {chosen:?}, not offered"
                    ));
                }
                Some(chosen)
            }
        };
        Ok(Some(WsInfo {
            uri: spec.uri.clone(),
            headers,
            protocol,
        }))
    }
}

impl Protocol for WsProtocol {
    type Message = WsWire;

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(WsWire),
    {
        let mut handed = 0;
        if let Some(dialling) = self.dialling.as_mut() {
            let spec = self
                .settings
                .dial
                .as_ref()
                .expect("a client has a dial spec");
            let Some(info) = dialling.read_response(spec, src)? else {
                return Ok(0);
            };
            io.reply(&dialling.early);
            self.dialling = None;
            each(WsWire(Wire::Opened(Box::new(info))));
            handed = 1;
        }
        let (role, frames) = (self.role, self.settings.frames);
        let outcome = loop {
            if handed >= max {
                break Ok(());
            }
            if self.gate.at_message_boundary()
                && self.ctx.as_ref().is_none_or(WebSocketContext::can_write)
            {
                match fast_frame(role, &self.settings.config, src) {
                    Fast::Message(m) => {
                        each(WsWire(Wire::Message(m)));
                        handed += 1;
                        continue;
                    }
                    Fast::Wait => break Ok(()),
                    Fast::BadText(e) => break Err(e),
                    Fast::No => {}
                }
            }
            if src.is_empty() {
                break Ok(());
            }
            let ctx = self
                .ctx
                .get_or_insert_with(|| WebSocketContext::new(role, Some(frames)));
            let mut feed = Feed {
                gate: &mut self.gate,
                src,
                out: io.reply_buf(),
            };
            match ctx.read(&mut feed) {
                Ok(Message::Text(t)) => each(WsWire(Wire::Message(WsMessage::Text(t)))),
                Ok(Message::Binary(b)) => each(WsWire(Wire::Message(WsMessage::Binary(b)))),
                Ok(Message::Close(frame)) => {
                    each(WsWire(Wire::Close(frame.map(WsClose::from_frame))));
                }
                // A ping (its pong is queued), a pong, a raw frame: nothing for the base.
                Ok(_) => continue,
                Err(TError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(TError::ConnectionClosed | TError::AlreadyClosed) => break Ok(()),
                Err(e) => break Err(e),
            }
            handed += 1;
        };
        if let Err(e) = outcome {
            return Err(self.fail(e, io.reply_buf()));
        }
        let Some(ctx) = self.ctx.as_mut() else {
            return Ok(handed); // only whole messages, by the fast path
        };
        // Pongs and a close reply owed go out now.
        let mut feed = Feed {
            gate: &mut self.gate,
            src,
            out: io.reply_buf(),
        };
        match ctx.flush(&mut feed) {
            Ok(()) | Err(TError::ConnectionClosed | TError::AlreadyClosed) => {}
            Err(e) => log::debug!("websocket: a reply was not written: {e}"),
        }
        if !ctx.can_read() {
            // The close handshake is complete (either side began it).
            io.close();
        } else if ctx.can_write() && self.gate.at_message_boundary() {
            // Idle at a message boundary, nothing owed: no frame buffers kept.
            self.ctx = None;
        }
        Ok(handed)
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        _io: &mut ProtocolIo<'_>,
    ) -> Result<Option<WsWire>, CodecError> {
        if src.is_empty() && self.gate.at_message_boundary() {
            return Ok(None);
        }
        Err(CodecError::Truncated {
            buffered: src.len(),
        })
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a WsWire,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        let written = match &item.0 {
            Wire::Message(msg) => {
                if !self.can_write() {
                    return Err(CodecError::unencodable_msg("the session is closing"));
                }
                if self.role == Role::Server {
                    return Ok(self.put_server_message(msg, dst));
                }
                match self.dialling.take() {
                    Some(mut dialling) => {
                        // Before the handshake completes: held, sent right after it.
                        let r = self.put_client_message(msg, &mut dialling.early);
                        self.dialling = Some(dialling);
                        r
                    }
                    None => self.put_client_message(msg, dst),
                }
            }
            Wire::Ping(payload) => {
                let mut gate = FrameGate::default();
                let mut none = BytesMut::new();
                let mut feed = Feed {
                    gate: &mut gate,
                    src: &mut none,
                    out: dst,
                };
                let ctx = self.ctx.get_or_insert_with(|| {
                    WebSocketContext::new(self.role, Some(self.settings.frames))
                });
                ctx.write(&mut feed, Message::Ping(payload.clone()))
                    .and_then(|()| ctx.flush(&mut feed))
            }
            Wire::Close(close) => {
                let frame = close.as_ref().map(WsClose::frame);
                let mut gate = FrameGate::default();
                let mut none = BytesMut::new();
                let mut feed = Feed {
                    gate: &mut gate,
                    src: &mut none,
                    out: dst,
                };
                let ctx = self.ctx.get_or_insert_with(|| {
                    WebSocketContext::new(self.role, Some(self.settings.frames))
                });
                ctx.close(&mut feed, frame)
            }
            Wire::Opened(_) => return Err(CodecError::unencodable_msg("not an outbound message")),
        };
        match written {
            Ok(()) | Err(TError::ConnectionClosed) => Ok(None),
            Err(e) => Err(CodecError::unencodable(format!("websocket: {e}"), e)),
        }
    }

    fn on_open(&mut self, io: &mut ProtocolIo<'_>) {
        if let (Some(dialling), Some(spec)) = (self.dialling.as_mut(), self.settings.dial.as_ref())
        {
            dialling.put_request(spec, io.reply_buf());
        }
    }

    fn heartbeat(&mut self, dst: &mut BytesMut) -> bool {
        if self.dialling.is_some() || !self.can_write() {
            return false;
        }
        if self.role == Role::Server {
            put_header(dst, true, 9, 0);
            return true;
        }
        let ping = WsWire(Wire::Ping(Bytes::new()));
        self.encode_vectored(&ping, dst).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmask_matches_the_rfc() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for n in 0..40 {
            let plain: Vec<u8> = (0..n).map(|i: u32| (i * 13 + 5).to_le_bytes()[0]).collect();
            let mut data: Vec<u8> = plain
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            unmask(&mut data, key);
            assert_eq!(data, plain);
        }
    }

    #[test]
    fn the_fast_path_takes_only_whole_plain_messages() {
        let config = WsConfig::default();
        // RFC 6455 §5.7: a masked "Hello" from a client.
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut src = BytesMut::from(&hello[..]);
        match fast_frame(Role::Server, &config, &mut src) {
            Fast::Message(m) => assert_eq!(m, WsMessage::from("Hello")),
            _ => panic!("not taken"),
        }
        assert!(src.is_empty());
        // Half of it: wait, take nothing.
        let mut src = BytesMut::from(&hello[..7]);
        assert!(matches!(
            fast_frame(Role::Server, &config, &mut src),
            Fast::Wait
        ));
        assert_eq!(src.len(), 7);
        // Unmasked to a server, a fragment, a ping, a reserved bit: tungstenite's.
        for frame in [
            &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'][..],
            &hello_with(0x01),
            &hello_with(0x89),
            &hello_with(0xC1),
        ] {
            let mut src = BytesMut::from(frame);
            assert!(matches!(
                fast_frame(Role::Server, &config, &mut src),
                Fast::No
            ));
            assert_eq!(src.len(), frame.len(), "nothing taken");
        }
        // The client side takes unmasked frames only.
        let mut src = BytesMut::from(&[0x82, 0x02, 1, 2][..]);
        match fast_frame(Role::Client, &config, &mut src) {
            Fast::Message(m) => assert_eq!(m, WsMessage::from(vec![1u8, 2])),
            _ => panic!("not taken"),
        }
        // Over the limit: tungstenite's (it answers 1009).
        let small = WsConfig::default().max_message(3);
        let mut src = BytesMut::from(&hello[..]);
        assert!(matches!(
            fast_frame(Role::Server, &small, &mut src),
            Fast::No
        ));
    }

    fn hello_with(b0: u8) -> Vec<u8> {
        let mut v = vec![
            b0, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        v[0] = b0;
        v
    }
}
