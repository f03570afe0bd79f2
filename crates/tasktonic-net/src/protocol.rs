//! [`Protocol`]: what a connection speaks over its transport — how plaintext becomes whole
//! messages and back, and the bytes the protocol sends of its own accord.
//!
//! Every [`Codec`] is a protocol (a blanket implementation): it only cuts and encodes
//! messages. A protocol that keeps state can also answer the peer without the base being
//! involved — tinyproto's status byte after each size header, a WebSocket pong or close
//! reply — through [`ProtocolIo::reply`], send bytes when the connection opens
//! ([`Protocol::on_open`]: a handshake), close the connection ([`ProtocolIo::close`]), and
//! define a heartbeat ([`Protocol::heartbeat`]). Its replies are written at the next message
//! boundary, also when the outbox is empty. See `docs/networking.md` ("Layers").

use bytes::{Bytes, BytesMut};

use crate::codec::{Codec, CodecError, Decoder, Encoder};

/// What a protocol hands its connection besides messages: bytes for the peer, and a request
/// to close.
#[derive(Debug)]
pub struct ProtocolIo<'a> {
    out: &'a mut BytesMut,
    close: bool,
    pause: bool,
}

impl<'a> ProtocolIo<'a> {
    pub(crate) fn new(out: &'a mut BytesMut) -> ProtocolIo<'a> {
        ProtocolIo {
            out,
            close: false,
            pause: false,
        }
    }

    /// Queue `bytes` for the peer: written after the message being written now (if any)
    /// and before any message the base sends later.
    pub fn reply(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Where replies are queued, to encode into directly.
    pub fn reply_buf(&mut self) -> &mut BytesMut {
        self.out
    }

    /// Close the connection gracefully once what is queued is written (the peer asked to
    /// close, in the protocol's own terms).
    pub fn close(&mut self) {
        self.close = true;
    }

    pub(crate) fn wants_close(&self) -> bool {
        self.close
    }

    /// Decode nothing more after the messages handed over so far (return from `decode_each`
    /// after this) until the base decides: it may switch the connection to another protocol
    /// ([`Conn::switch_protocol`](crate::tcp::Conn::switch_protocol)), which then gets the
    /// bytes read past this point undecoded, or [`resume`](crate::tcp::Conn::resume). While
    /// paused the connection reads no more from the socket (the peer's writes wait in TCP).
    pub fn pause(&mut self) {
        self.pause = true;
    }

    pub(crate) fn wants_pause(&self) -> bool {
        self.pause
    }
}

/// A protocol over a connection's transport: cuts whole messages out of the plaintext it
/// receives, encodes the messages the base sends, and may send bytes of its own.
///
/// Every method but the three that move messages has a default body. Implement it directly
/// for a stateful protocol; a plain [`Codec`] is a protocol already.
pub trait Protocol: Send + 'static {
    /// The message type, both ways.
    type Message: Send + 'static;

    /// Cut up to `max` whole messages from the front of `src`, in order, handing each to
    /// `each`; returns how many. Bytes for the peer go to `io`.
    ///
    /// # Errors
    ///
    /// As [`Decoder::decode`]: the connection reports the error and closes (or skips a
    /// [skippable](CodecError::is_skippable) frame).
    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(Self::Message);

    /// At the end of the stream: the last message, if `src` holds one.
    ///
    /// # Errors
    ///
    /// [`CodecError::Truncated`] if bytes of an incomplete message are left.
    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        io: &mut ProtocolIo<'_>,
    ) -> Result<Option<Self::Message>, CodecError>;

    /// Append the wire form of `item` to `dst`, or leave a trailing payload out and return
    /// it (see [`Encoder::encode_vectored`]).
    ///
    /// # Errors
    ///
    /// [`CodecError::Unencodable`]: the message is handed back to the base.
    fn encode_vectored<'a>(
        &mut self,
        item: &'a Self::Message,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError>;

    /// The connection is up (after the TLS handshake, if any): bytes to send first.
    /// Default: none.
    fn on_open(&mut self, io: &mut ProtocolIo<'_>) {
        let _ = io;
    }

    /// Append a heartbeat (a frame the peer accepts and that carries nothing) to `dst`;
    /// false if the protocol has none. Default: none.
    fn heartbeat(&mut self, dst: &mut BytesMut) -> bool {
        let _ = dst;
        false
    }

    /// The connection is gone for good (after its last byte; before the base hears of the
    /// end): release what the protocol holds for it — a server's connection-limit place —
    /// rather than when it is dropped, later. Default: nothing.
    fn on_closed(&mut self) {}

    /// False while the protocol is not ready for the base's messages: a client handshake
    /// in progress (a WebSocket client waiting for its `101`), or — for a half-duplex
    /// protocol — a transfer under way (tinyproto's sender waiting for the go-ahead).
    /// Meanwhile the protocol's own bytes go out but messages wait in the queue — handed
    /// back if the connection is lost, kept by a client that re-sends. During the opening
    /// handshake a client's connect timeout keeps running, so the handshake is bounded by
    /// it and an attempt counts as failed until it completes. The connection asks before
    /// encoding each message and again after every decode. A protocol that turns unready
    /// in `encode_vectored` *holds* that message: it gets one message at a time, and the
    /// message counts as queued (not written) until the protocol releases it
    /// ([`take_released`](Protocol::take_released)) and its rest is written, or it is taken
    /// back ([`take_held`](Protocol::take_held)) when the connection is lost. Default: ready.
    fn ready(&self) -> bool {
        true
    }

    /// True while the protocol's opening handshake is in progress (a WebSocket client's
    /// `101`, tinyproto's first byte): the connect timeout runs and a graceful close ends
    /// our side at once, since the waiting messages can never be written. Unready *between*
    /// transfers (a half-duplex protocol) is not handshaking: there the connection waits
    /// for the transfer to end. Default: `!self.ready()` (unready only in a handshake).
    fn handshaking(&self) -> bool {
        !self.ready()
    }

    /// The message the protocol holds half-sent — encoded in part, the rest waiting for
    /// the peer (tinyproto's payload, sent on the go-ahead) — taken when the connection is
    /// lost, so that it is handed back (or re-sent) like the messages still queued, never
    /// lost. Default: none.
    fn take_held(&mut self) -> Option<Self::Message> {
        None
    }

    /// The held message whose rest the protocol has just written (through
    /// [`ProtocolIo::reply`], in the decode that saw the peer's go-ahead): the connection
    /// takes it after each decode and counts it written once those bytes are, or hands it
    /// back if the connection is lost first. Default: none.
    fn take_released(&mut self) -> Option<Self::Message> {
        None
    }

    /// Wrap bytes this protocol wrote to the peer itself ([`ProtocolIo::reply`]) as a
    /// message, so that they can wait in the outbound queue behind what the base sent
    /// before. The connection asks when such bytes come while earlier messages are still
    /// queued: a protocol whose replies answer requests in turn (HTTP's refusals and
    /// `100 Continue`) must not let them overtake earlier answers. `None` (the default): the
    /// bytes go out ahead of the queue, as a status byte or a pong should.
    fn reply_message(&mut self, bytes: Bytes) -> Option<Self::Message> {
        let _ = bytes;
        None
    }
}

/// One message from `inner`, if `src` completes one: for a protocol wrapped around another
/// that handles each message before the next is cut (a transform that may refuse it), so
/// that a refusal ends the run with everything before it delivered and nothing after it
/// consumed.
pub(crate) fn decode_one<P: Protocol>(
    inner: &mut P,
    src: &mut BytesMut,
    io: &mut ProtocolIo<'_>,
) -> Result<Option<P::Message>, CodecError> {
    let mut got = None;
    inner.decode_each(src, 1, io, |m| got = Some(m))?;
    Ok(got)
}

// The forwarding methods are inlined always: they must cost nothing on the data path, and
// without the attribute the inliner's choice varied with how many connection types a
// program instantiates (callgrind showed encode_vectored out of line at +30 instructions
// an echo once a second server type was linked in).
impl<C: Codec> Protocol for C {
    type Message = <C as Codec>::Message;

    #[inline(always)]
    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        _io: &mut ProtocolIo<'_>,
        each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(Self::Message),
    {
        Decoder::decode_each(self, src, max, each)
    }

    #[inline(always)]
    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        _io: &mut ProtocolIo<'_>,
    ) -> Result<Option<Self::Message>, CodecError> {
        Decoder::decode_eof(self, src)
    }

    #[inline(always)]
    fn encode_vectored<'a>(
        &mut self,
        item: &'a Self::Message,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        Encoder::encode_vectored(self, item, dst)
    }

    fn heartbeat(&mut self, dst: &mut BytesMut) -> bool {
        Encoder::encode_heartbeat(self, dst)
    }
}
