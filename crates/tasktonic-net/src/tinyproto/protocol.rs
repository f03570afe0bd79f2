//! [`TinyProto`]: tinyproto 3.0's handshake, size, status byte and payload as a protocol.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Buf, Bytes, BytesMut};

use crate::codec::{CodecError, DEFAULT_MAX_FRAME};
use crate::protocol::{Protocol, ProtocolIo};

/// The largest size tinyproto allows (`MSG_MAX_SIZE`): no size starts with `0xF1`–`0xFF`, so
/// a size is never mistaken for a status byte.
pub const MSG_MAX_SIZE: usize = 0xF0FF_FFFF;

/// Go on (and the handshake byte).
const SC_OK: u8 = 0xFF;
/// Refused: the size is over the receiver's maximum.
const SC_GENERIC_ERROR: u8 = 0x00;
/// Refused at connect: the server is full.
const SC_CONLIMIT: u8 = 0xFE;

/// Which end: on a collision (both ends start a message at once) the server yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    /// Between messages.
    Idle,
    /// The size was answered with a go; this many payload bytes follow.
    Body(usize),
}

/// A server's connection limit, shared by its connections' protocols.
#[derive(Debug)]
struct Limit {
    max: usize,
    open: AtomicUsize,
}

/// tinyproto 3.0 as a [`Protocol`] (messages are [`Bytes`]); see the [module
/// docs](crate::tinyproto).
///
/// # Examples
///
/// ```
/// use tasktonic_net::tcp::{TcpClient, TcpServer};
/// use tasktonic_net::tinyproto::TinyProto;
///
/// let addr = "127.0.0.1:0".parse().expect("an address");
/// // A server that answers 0xFE to the 101st client, and refuses messages over 1 MiB.
/// let server = TcpServer::bind(addr, TinyProto::server().max_size(1 << 20).limit(100));
/// // A client of a Python TinyProtoServer on port 9000.
/// let client = TcpClient::new("127.0.0.1:9000".parse().expect("an address"), TinyProto::client());
/// # drop((server, client));
/// ```
pub struct TinyProto {
    side: Side,
    max: usize,
    limit: Option<Arc<Limit>>,
    /// This connection counts toward the limit (and leaves it when dropped).
    counted: bool,
    /// The peer's handshake byte arrived.
    shook: bool,
    rx: Rx,
    /// Ours, sent as a size, waiting for the peer's go-ahead: the whole message (handed back
    /// if the connection is lost meanwhile).
    awaiting: Option<Bytes>,
    /// Ours, whose payload went to the reply buffer on the go-ahead: the connection takes
    /// it (`take_released`) to count it written once the payload is.
    released: Option<Bytes>,
    /// The server's size that reached a client while it awaited its own go-ahead: answered
    /// once the client's message is through.
    deferred: Option<usize>,
    /// Bytes of the peer's next size have arrived: a transfer is starting.
    incoming: bool,
}

impl fmt::Debug for TinyProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TinyProto")
            .field("side", &self.side)
            .field("max", &self.max)
            .field("shook", &self.shook)
            .field("rx", &self.rx)
            .field("awaiting", &self.awaiting.as_ref().map(Bytes::len))
            .finish_non_exhaustive()
    }
}

impl Clone for TinyProto {
    /// A fresh protocol for a new connection (a server's next client, a client's reconnect),
    /// with the same settings and the same shared limit.
    fn clone(&self) -> Self {
        TinyProto::new(self.side, self.max, self.limit.clone())
    }
}

impl Drop for TinyProto {
    fn drop(&mut self) {
        self.leave_limit();
    }
}

impl TinyProto {
    /// This connection no longer counts toward the server's limit (once).
    fn leave_limit(&mut self) {
        if std::mem::take(&mut self.counted)
            && let Some(limit) = &self.limit
        {
            limit.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl TinyProto {
    fn new(side: Side, max: usize, limit: Option<Arc<Limit>>) -> TinyProto {
        TinyProto {
            side,
            max,
            limit,
            counted: false,
            shook: false,
            rx: Rx::Idle,
            awaiting: None,
            released: None,
            deferred: None,
            incoming: false,
        }
    }

    /// The server end (it yields when both ends start a message at once). Messages over
    /// 8 MiB are refused (`max_size`).
    pub fn server() -> TinyProto {
        TinyProto::new(Side::Server, DEFAULT_MAX_FRAME, None)
    }

    /// The client end.
    pub fn client() -> TinyProto {
        TinyProto::new(Side::Client, DEFAULT_MAX_FRAME, None)
    }

    /// The largest message accepted from the peer (at most [`MSG_MAX_SIZE`]); a larger size
    /// is answered with `0x00` and the connection closes with
    /// [`CodecError::FrameTooLarge`], as tinyproto does.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max = bytes.min(MSG_MAX_SIZE);
        self
    }

    /// A server's connection limit: the connection past `n` open ones is answered `0xFE`
    /// (tinyproto's `SC_CONLIMIT`) instead of the handshake, and closed. (Unlike
    /// `TcpServer::max_clients`, which stops accepting, the client learns why.)
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(Arc::new(Limit {
            max: n,
            open: AtomicUsize::new(0),
        }));
        self
    }

    /// Answer the size of the peer's message: go on, or refuse it.
    fn answer(
        &mut self,
        size: usize,
        io: &mut ProtocolIo<'_>,
        each: &mut impl FnMut(Bytes),
    ) -> Result<bool, CodecError> {
        if size > self.max {
            io.reply(&[SC_GENERIC_ERROR]);
            return Err(CodecError::FrameTooLarge {
                len: size as u64,
                max: self.max,
            });
        }
        io.reply(&[SC_OK]);
        if size == 0 {
            each(Bytes::new());
            return Ok(true);
        }
        self.rx = Rx::Body(size);
        Ok(false)
    }
}

fn size_at(src: &[u8]) -> usize {
    u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize
}

impl Protocol for TinyProto {
    type Message = Bytes;

    fn on_closed(&mut self) {
        // The place is free before the base hears of the end (it may welcome the next).
        self.leave_limit();
    }

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(Bytes),
    {
        let mut handed = 0;
        let result = loop {
            if handed >= max {
                break Ok(handed);
            }
            if !self.shook {
                let Some(&b) = src.first() else {
                    break Ok(handed);
                };
                src.advance(1);
                match b {
                    SC_OK => self.shook = true,
                    SC_CONLIMIT => {
                        break Err(CodecError::protocol_msg(
                            "tinyproto: the server is full (it answered 0xFE)",
                        ));
                    }
                    other => {
                        break Err(CodecError::protocol_msg(format!(
                            "tinyproto: initialisation error (the peer sent {other:#04x}, not 0xff)"
                        )));
                    }
                }
                continue;
            }
            if let Rx::Body(n) = self.rx {
                if src.len() < n {
                    break Ok(handed);
                }
                each(src.split_to(n).freeze());
                handed += 1;
                self.rx = Rx::Idle;
                continue;
            }
            if let Some(payload) = &self.awaiting {
                let Some(&b) = src.first() else {
                    break Ok(handed);
                };
                if b == SC_OK {
                    src.advance(1);
                    io.reply(payload);
                    self.released = self.awaiting.take();
                    continue;
                }
                if b > 0xF0 {
                    break Err(CodecError::protocol_msg(format!(
                        "tinyproto: status {b:#04x} for our message of {} bytes",
                        payload.len()
                    )));
                }
                // A refusal (0x00, then the peer ends), or the peer's size: both ends started
                // a message at once.
                match self.side {
                    // We yield: the client's size is answered below; ours waits for its go.
                    Side::Server => {}
                    Side::Client => {
                        // The server yields: its size, then its go for ours.
                        if src.len() < 5 {
                            break Ok(handed);
                        }
                        if src[4] != SC_OK {
                            break Err(CodecError::protocol_msg(format!(
                                "tinyproto: the server's size {:#010x} collided with our \
                                 message of {} bytes, and was followed by {:#04x}, not its \
                                 go-ahead",
                                size_at(src),
                                payload.len(),
                                src[4]
                            )));
                        }
                        self.deferred = Some(size_at(src));
                        src.advance(4);
                        continue;
                    }
                }
            }
            // The peer's next size: one deferred by a collision, or the next on the wire.
            let size = match self.deferred.take() {
                Some(size) => size,
                None if src.len() < 4 => break Ok(handed),
                None => {
                    let size = size_at(src);
                    src.advance(4);
                    size
                }
            };
            match self.answer(size, io, &mut each) {
                Ok(true) => handed += 1,
                Ok(false) => {}
                Err(e) => break Err(e),
            }
        };
        self.incoming = !src.is_empty();
        result
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        _io: &mut ProtocolIo<'_>,
    ) -> Result<Option<Bytes>, CodecError> {
        if !self.shook {
            return Err(CodecError::protocol_msg(
                "tinyproto: the peer ended the connection before its handshake byte",
            ));
        }
        if let Some(payload) = &self.awaiting
            && src.first() == Some(&SC_GENERIC_ERROR)
        {
            return Err(CodecError::protocol_msg(format!(
                "tinyproto: the peer refused our message of {} bytes (over its maximum)",
                payload.len()
            )));
        }
        let buffered = src.len();
        if buffered == 0 && self.rx == Rx::Idle {
            return Ok(None);
        }
        src.clear();
        Err(CodecError::Truncated { buffered })
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a Bytes,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        if item.len() > MSG_MAX_SIZE {
            return Err(CodecError::unencodable_msg(format!(
                "tinyproto: {} bytes is over its maximum of {MSG_MAX_SIZE}",
                item.len()
            )));
        }
        let size = u32::try_from(item.len()).unwrap_or(u32::MAX);
        dst.extend_from_slice(&size.to_be_bytes());
        self.awaiting = Some(item.clone());
        Ok(None)
    }

    fn on_open(&mut self, io: &mut ProtocolIo<'_>) {
        if let Some(limit) = &self.limit {
            if limit.open.fetch_add(1, Ordering::AcqRel) >= limit.max {
                limit.open.fetch_sub(1, Ordering::AcqRel);
                io.reply(&[SC_CONLIMIT]);
                io.close();
                return;
            }
            self.counted = true;
        }
        io.reply(&[SC_OK]);
    }

    /// Ready for our next message only between transfers: after the handshake, with no
    /// message of ours awaiting its go, none of the peer's being received or starting.
    fn ready(&self) -> bool {
        self.shook
            && self.awaiting.is_none()
            && self.rx == Rx::Idle
            && self.deferred.is_none()
            && !self.incoming
    }

    /// Only the opening byte: a transfer in either direction is not a handshake.
    fn handshaking(&self) -> bool {
        !self.shook
    }

    fn take_held(&mut self) -> Option<Bytes> {
        self.awaiting.take()
    }

    fn take_released(&mut self) -> Option<Bytes> {
        self.released.take()
    }
}
