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
use http::{HeaderMap, Uri};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as TError, Message};

use super::dial::Dialling;
use super::frame::{Fast, fast_frame, put_header};
use super::gate::FrameGate;
use super::message::{WsClose, WsMessage};
use super::{WsConfig, WsInfo};
use crate::codec::CodecError;
use crate::protocol::{Protocol, ProtocolIo};

/// Payloads this long or longer leave by the connection's vectored write (not copied).
const VECTORED_MIN: usize = 1024;

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

    /// Write through the context into `out`: a client's masked frames, a ping, a close.
    fn write_frames(
        &mut self,
        out: &mut BytesMut,
        f: impl FnOnce(&mut WebSocketContext, &mut Feed<'_>) -> Result<(), TError>,
    ) -> Result<(), TError> {
        let mut gate = FrameGate::default();
        let mut none = BytesMut::new();
        let mut feed = Feed {
            gate: &mut gate,
            src: &mut none,
            out,
        };
        f(self.context(), &mut feed)
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
        self.write_frames(dst, |ctx, feed| match fragment {
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
                    ctx.write(feed, Message::Frame(frame))?;
                }
                ctx.flush(feed)
            }
            _ => {
                let m = match op {
                    Data::Text => Message::Text(msg.as_text().unwrap_or_default().into()),
                    _ => Message::Binary(payload),
                };
                ctx.write(feed, m)?;
                ctx.flush(feed)
            }
        })
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
        if let Err(e) = self.write_frames(out, |ctx, feed| ctx.close(feed, Some(frame))) {
            log::debug!("websocket: the close frame after an error: {e}");
        }
        error
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
                    // Nothing after a close frame is read (RFC 6455 §1.4): whatever else
                    // this read brought is left, as it is when it comes in a later read.
                    handed += 1;
                    break Ok(());
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
            // Pongs owed for pings before the bad frame go first: after our close frame
            // nothing may follow (RFC 6455 §5.5.1), and a peer that split its writes
            // differently would have had them already.
            if let Some(ctx) = self.ctx.as_mut() {
                let mut feed = Feed {
                    gate: &mut self.gate,
                    src,
                    out: io.reply_buf(),
                };
                if let Err(e) = ctx.flush(&mut feed) {
                    log::debug!("websocket: a reply before the error was not written: {e}");
                }
            }
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
        if self.dialling.is_some() {
            return Err(CodecError::malformed_msg(
                "websocket handshake: the server ended the connection without a 101 \
                 (does it speak TLS, or not WebSocket?)",
            ));
        }
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
                // Never before the handshake completes: messages wait in the connection's
                // queue until then (`ready`).
                self.put_client_message(msg, dst)
            }
            Wire::Ping(payload) => self.write_frames(dst, |ctx, feed| {
                ctx.write(feed, Message::Ping(payload.clone()))
                    .and_then(|()| ctx.flush(feed))
            }),
            Wire::Close(close) => {
                let frame = close.as_ref().map(WsClose::frame);
                self.write_frames(dst, |ctx, feed| ctx.close(feed, frame))
            }
            Wire::Opened(_) => return Err(CodecError::unencodable_msg("not an outbound message")),
        };
        match written {
            Ok(()) | Err(TError::ConnectionClosed) => Ok(None),
            Err(e) => Err(CodecError::unencodable(format!("websocket: {e}"), e)),
        }
    }

    fn ready(&self) -> bool {
        self.dialling.is_none()
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

/// A WebSocket protocol for the fuzz targets: a server (masked frames), or — option bit 0 —
/// a client that has sent its handshake with RFC 6455's sample key
/// (`dGhlIHNhbXBsZSBub25jZQ==`, accepted as `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`), so that a run
/// is the same every time.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_protocol(option: u8) -> FuzzWs {
    let config = WsConfig {
        max_message: 4096,
        max_frame: 1024,
        ..WsConfig::default()
    };
    if option & 1 == 0 {
        return FuzzWs(WsProtocol::new(WsSettings::new(config, None), Role::Server));
    }
    let spec = DialSpec {
        uri: Uri::from_static("/chat"),
        host: "example.com".into(),
        protocols: vec!["chat".into()],
        headers: HeaderMap::new(),
    };
    let mut p = WsProtocol::new(WsSettings::new(config, Some(spec)), Role::Client);
    if let Some(d) = p.dialling.as_mut() {
        d.key = "dGhlIHNhbXBsZSBub25jZQ==".into();
    }
    FuzzWs(p)
}

/// [`WsProtocol`] without its opening bytes (the fuzz targets' client has "sent" them).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) struct FuzzWs(WsProtocol);

#[cfg(any(test, feature = "fuzzing"))]
impl Protocol for FuzzWs {
    type Message = WsWire;

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(WsWire),
    {
        self.0.decode_each(src, max, io, each)
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        io: &mut ProtocolIo<'_>,
    ) -> Result<Option<WsWire>, CodecError> {
        self.0.decode_eof(src, io)
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a WsWire,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        self.0.encode_vectored(item, dst)
    }
}
