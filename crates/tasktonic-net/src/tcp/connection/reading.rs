//! The reading half of [`TcpConnection`]: readiness, reading (inline, until `WouldBlock` or
//! the per-turn budget) through the transport, cutting messages with the protocol, and
//! delivery to the base.

use std::io::{self, Read};
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tasktonic_core::Ctx;
use tasktonic_core::extend::SparkleInline;

use super::TcpConnection;
use super::buffers::BUSY_FLUSH;
use crate::codec::CodecError;
use crate::protocol::{Protocol, ProtocolIo};
use crate::selector::Ready;
use crate::selector::local::{self, BATCH, READ_CHUNK, READ_SCRATCH};
use crate::tcp::{CloseReason, Conn, ConnState, OnMalformed, TcpEvents};

/// The largest batch a decode pre-allocates for.
const BATCH_HINT_MAX: usize = 1024;

/// The protocol's own replies (tinyproto's status bytes, WebSocket pongs) the peer may leave
/// unread before the connection stops reading from it: a peer that sends without reading
/// would otherwise grow them without bound (a ping flood makes pongs byte for byte). Replies
/// that wait in the queue behind earlier answers (HTTP's refusals) stop it at the queue's
/// high watermark.
const UNTAKEN_REPLIES_MAX: usize = 64 * 1024;

/// What a protocol asked for while decoding, besides handing over messages.
struct Decoded {
    /// Close gracefully.
    close: bool,
    /// Decode no more until the base decides.
    pause: bool,
}

/// The messages of one read, as delivered to the base: the first, then the rest. A lone
/// message (the request–response case) travels without a `Vec` (one allocation less per
/// exchange), and the first is not moved into the `Vec` when a second arrives.
pub(super) struct Batch<M> {
    first: Option<M>,
    /// Empty unless `first` is set.
    rest: Vec<M>,
    /// The input bytes the batch was cut from (counted in the inbound window's byte bound).
    bytes: usize,
}

impl<M> Default for Batch<M> {
    fn default() -> Self {
        Batch {
            first: None,
            rest: Vec::new(),
            bytes: 0,
        }
    }
}

impl<M> Batch<M> {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Add `msg`; the second message makes room for `hint` more.
    #[inline]
    fn push(&mut self, msg: M, hint: usize) {
        if self.first.is_none() {
            self.first = Some(msg);
        } else {
            if self.rest.capacity() == 0 {
                self.rest.reserve(hint.max(1));
            }
            self.rest.push(msg);
        }
    }
}

/// The base's side of a delivery: `on_message` for each message of the batch, in order.
fn on_batch<M: Send + 'static, B: TcpEvents<M>>(
    b: &mut B,
    ctx: &mut Ctx<B>,
    conn: &Conn<M>,
    batch: &mut Batch<M>,
    colocated: bool,
) {
    // Counted consumed when the batch is done, even if `on_message` panics (a base restarted
    // in place must find the window open).
    let _consumed = Consumed(conn, batch.len(), batch.bytes);
    // Co-located (the base runs on the connection's thread): its replies are collected
    // without a lock and handed over when the batch is done (dropped first).
    let _staging = colocated.then(|| conn.staging(batch.len()));
    // A message that arrives after the base asked for a TLS upgrade came from past the
    // upgrade's boundary: it is not handed over, and the upgrade fails (`Conn::upgrade_tls`).
    let upgrading = conn.upgrade_flag();
    if let Some(first) = batch.first.take() {
        if upgrading.load(Ordering::Relaxed) {
            conn.mark_past_boundary();
        } else {
            b.on_message(ctx, conn, first);
        }
    }
    // Moved out whole-width, not field by field as a `drain` loop does (its `Option` check
    // splits the copy, and `on_message`'s 16-byte loads of it then stall on store forwarding,
    // the hottest instruction of a busy server's `on_message`); collected in place, so the
    // batch keeps its `Vec` (empty) for the next read.
    batch.rest = std::mem::take(&mut batch.rest)
        .into_iter()
        .filter_map(|msg| {
            if upgrading.load(Ordering::Relaxed) {
                conn.mark_past_boundary();
            } else {
                b.on_message(ctx, conn, msg);
            }
            None
        })
        .collect();
}

/// Marks a delivered batch (messages, input bytes) consumed when dropped.
struct Consumed<'a, M: Send + 'static>(&'a Conn<M>, usize, usize);

impl<M: Send + 'static> Drop for Consumed<'_, M> {
    fn drop(&mut self) {
        self.0.consumed(self.1, self.2);
    }
}

impl<P: Protocol, B: TcpEvents<P::Message>> TcpConnection<P, B> {
    // ----- readiness ----------------------------------------------------------------------

    pub(super) fn ready(&mut self, ctx: &mut Ctx<Self>, ready: Ready) {
        // Sticky: once the peer's close was signalled, reads go on to the end of the stream.
        self.fin_signalled |= ready.read_closed || ready.error;
        log::trace!(
            "{}: ready {ready:?} in {:?}",
            self.conn.id(),
            self.conn.state()
        );
        match self.conn.state() {
            ConnState::Connecting if self.securing => {
                if ready.writable && !self.push_transport(ctx) {
                    return;
                }
                if ready.readable || ready.error {
                    self.read(ctx);
                }
            }
            ConnState::Connecting if ready.writable || ready.error => self.finish_connect(ctx),
            ConnState::Connected | ConnState::Closing => {
                if ready.writable {
                    self.flush(ctx);
                }
                if ready.readable || ready.error {
                    self.read(ctx);
                }
            }
            _ => {}
        }
    }

    /// Read until `WouldBlock`, the budget, or a full inbound window; decode and deliver.
    pub(super) fn read(&mut self, ctx: &mut Ctx<Self>) {
        if self.stream.is_none() || self.peer_closed {
            return;
        }
        let discarding = self.discarding();
        if self.conn.upgrading() || (self.held && !discarding) {
            // What arrives now belongs to the transport or protocol being set up (or the
            // base has not decided yet): it stays in the socket until then. A closing
            // connection reads (and discards) all the same, to see the peer's end.
            return;
        }
        if !discarding && !self.decode(ctx) {
            return;
        }
        if self.eof_pending && !discarding {
            // The stream ended while a message was with the base: now that everything read
            // before the end is decoded and answered, the end.
            if self.held {
                return;
            }
            self.eof_pending = false;
            return self.eof(ctx);
        }
        let mut budget = self.config.read_budget;
        loop {
            if !discarding && (self.window_full || self.held) {
                // The base's window is full, or the protocol paused: what the peer sends
                // meanwhile waits in the socket (its receive window), not in our memory.
                return;
            }
            if budget == 0 {
                // Others get their turn, the ones the next poll finds ready too; this
                // connection continues right after them.
                let handle = ctx.handle();
                local::after_next_poll(Box::new(move || {
                    let _ = handle.notify_named("read", |c, ctx| c.read(ctx));
                }));
                return;
            }
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            // Read into the selector thread's scratch space and keep only what arrived (as
            // plaintext, through the transport): no zero-filling per read, and a connection's
            // buffer is exactly as big as its data.
            let (transport, inbuf) = (&mut self.transport, &mut self.inbuf);
            let busy = self.batch_hint >= BUSY_FLUSH;
            let result = READ_SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                match stream.read(&mut scratch[..]) {
                    Ok(0) => Ok((0, Ok(false))),
                    Ok(n) => Ok((n, transport.take_in(&scratch[..n], inbuf, busy))),
                    Err(e) => Err(e),
                }
            });
            match result {
                Ok((0, _)) => return self.socket_eof(ctx),
                Ok((_, Err(e))) => {
                    // A bad record or a failed handshake: its alert goes out first.
                    self.push_transport(ctx);
                    return self.lost(ctx, e.into_reason());
                }
                Ok((n, Ok(transport_ended))) => {
                    budget = budget.saturating_sub(n);
                    self.read_total += n as u64;
                    if self.securing && !self.transport.handshaking() {
                        self.secured(ctx);
                    }
                    if self.transport.wants_write() && !self.push_transport(ctx) {
                        return;
                    }
                    if self.discarding() {
                        self.inbuf.clear();
                    } else if !self.decode(ctx) {
                        return;
                    }
                    if transport_ended {
                        if self.held && !discarding {
                            // Messages read before the end wait to be decoded.
                            self.eof_pending = true;
                            return;
                        }
                        return self.eof(ctx);
                    }
                    if n < READ_CHUNK && !self.fin_signalled {
                        // A short read drained the socket (epoll(7), Q9): data arriving later
                        // raises a new edge, so the read that would only say `WouldBlock` is
                        // skipped (one syscall less per exchange). Not once the peer's close
                        // was signalled: its EOF must be read.
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lost(ctx, CloseReason::Io(e)),
            }
        }
        if self.batch_hint >= BUSY_FLUSH {
            // A busy connection keeps its read buffer: once its frames are consumed the next
            // read refills it in place (an allocation and a free of the buffer and of its
            // shared header per read, otherwise).
            self.keep_buffers(ctx);
        } else if self.inbuf.is_empty() {
            // Idle connections hold no read buffer.
            self.inbuf = BytesMut::new();
        }
    }

    /// Closing: what arrives is read to see the peer's end, and discarded — unless the
    /// close waits for the protocol (`close_waits_for_protocol`): then it goes on decoding.
    fn discarding(&self) -> bool {
        self.closing.is_some() && (self.shut_down || !self.close_waits_for_protocol())
    }

    /// A graceful close waits for the protocol before ending our side: the base's close
    /// during the opening handshake (the messages it accepted go out once it completes),
    /// or a half-duplex transfer under way (a message of ours awaits the peer's go-ahead,
    /// or the peer's is coming). Bounded by the linger.
    pub(super) fn close_waits_for_protocol(&self) -> bool {
        if self.awaiting_ready {
            matches!(self.closing, Some(CloseReason::Closed))
        } else {
            !self.protocol.ready()
        }
    }

    /// Decode and deliver whole messages while the window is open. False if the connection
    /// is going down because of what was decoded.
    pub(super) fn decode(&mut self, ctx: &mut Ctx<Self>) -> bool {
        let going_on = self.decode_batches(ctx);
        self.pay_owed_flush(ctx);
        going_on
    }

    /// Answers wait that the peer has not taken: a short write left bytes, or the queue is
    /// at its high watermark. A paused protocol then reads no further request.
    pub(super) fn output_backlogged(&self) -> bool {
        !self.out.is_empty() || self.conn.queued() >= self.conn.shared.high
    }

    /// Write the answers held back for a pipelined run of requests (`flush_owed`).
    fn pay_owed_flush(&mut self, ctx: &mut Ctx<Self>) {
        if std::mem::take(&mut self.flush_owed) {
            if self.flushable() {
                self.flush(ctx);
            } else {
                self.conn.release_drain();
            }
        }
    }

    fn decode_batches(&mut self, ctx: &mut Ctx<Self>) -> bool {
        // Everything one read made whole goes to the base in one sparkle, in order. The window
        // counts every message: estimated from a snapshot while decoding, exactly (one atomic
        // operation) when the batch is delivered. The base can only have consumed more in
        // between, so the estimate may stop early: then decoding goes on, or frames already
        // read would wait for a readiness event that never comes.
        'batches: while !self.window_full && !self.held {
            let room = if self.conn.bytes_window_full() {
                0
            } else {
                self.conn.window().saturating_sub(self.conn.unconsumed())
            };
            if room == 0 {
                // The base's next consumption pokes the connection to resume.
                self.window_full = true;
                break;
            }
            if self.inbuf.is_empty() {
                break; // nothing to decode (a read's first call, usually)
            }
            let replied_from = self.out.len();
            let buffered = self.inbuf.len();
            let (mut batch, result) = self.decode_batch(room);
            batch.bytes = buffered - self.inbuf.len();
            let replied = self.out.len() > replied_from;
            if replied {
                self.protocol_replied(replied_from);
            }
            if let Some(msg) = self.protocol.take_released() {
                self.released(msg);
            }
            let decoded = match result {
                Ok(decoded) => decoded,
                Err(e) => {
                    // Messages before the bad frame arrive before its error event.
                    let consumed = batch.bytes > 0 || !batch.is_empty();
                    self.deliver(ctx, batch, false);
                    self.note_ready(ctx);
                    // A skippable error that consumed nothing would come back at once.
                    let e = if e.is_skippable() && !consumed {
                        CodecError::protocol_msg(e.to_string())
                    } else {
                        e
                    };
                    if !self.codec_error(ctx, e) {
                        return false;
                    }
                    continue 'batches;
                }
            };
            let stopped_by_window = batch.len() >= room;
            if !batch.is_empty() {
                self.batch_hint = batch.len().min(BATCH_HINT_MAX);
            }
            self.deliver(ctx, batch, decoded.pause);
            self.note_ready(ctx);
            // The protocol answered the peer itself (a status byte, a pong), or a half-duplex
            // transfer ended and messages wait for their turn (`Protocol::ready`).
            // A graceful close waits for such a transfer to end before ending our side.
            if (!self.out.is_empty()
                || ((self.conn.queued() > 0 || self.closing.is_some()) && self.protocol.ready()))
                && self.flushable()
            {
                self.flush(ctx);
            }
            if decoded.close {
                // The protocol's own close (a close frame): what is queued goes out first.
                self.begin_close(ctx, CloseReason::PeerClosed);
                return false;
            }
            if replied
                && (self.out.len() > UNTAKEN_REPLIES_MAX
                    || self.conn.queued() >= self.conn.shared.high)
                && !decoded.pause
            {
                // The peer does not take what the protocol answers it: read no more from it
                // until it does (the flush that drains the replies resumes the reading).
                log::debug!(
                    "{}: {} bytes of replies the peer does not read; reading paused",
                    self.conn.id(),
                    self.out.len()
                );
                self.held = true;
                self.output_hold = true;
                break;
            }
            if decoded.pause {
                // The base decides what comes next (`Conn::switch_protocol` or `resume`);
                // if it resumed already (it answered at once), decoding goes on.
                if self.conn.hold_for_resume() {
                    self.held = true;
                    break;
                }
                if self.output_backlogged() {
                    // Answers the peer does not take: read no more requests until it does.
                    self.pay_owed_flush(ctx);
                    if self.output_backlogged() {
                        self.held = true;
                        self.output_hold = true;
                        break;
                    }
                }
                continue 'batches;
            }
            if !stopped_by_window {
                break; // no whole frame left
            }
        }
        true
    }

    /// The protocol released the message it held: its rest is in `out` now, and it counts
    /// written once `out` is (at once if there was no rest: a tinyproto message of size 0).
    fn released(&mut self, msg: P::Message) {
        if self.out.is_empty() {
            drop(msg);
            if self.conn.dequeued(1) {
                self.event("on_writable", |b, ctx, conn| b.on_writable(ctx, conn));
            }
            return;
        }
        let end = self.written + self.out.len() as u64;
        self.inflight.push_back((msg, end));
    }

    /// If the protocol's own handshake just completed (`Protocol::ready`): the attempt
    /// succeeded (its timer goes, the attempts count restarts) and the messages that waited
    /// go out.
    fn note_ready(&mut self, ctx: &mut Ctx<Self>) {
        if self.awaiting_ready && !self.protocol.handshaking() {
            self.awaiting_ready = false;
            self.clear_phase_timer(ctx);
            self.attempts = 0;
            if self.flushable() {
                self.flush(ctx);
            }
        }
    }

    /// The protocol answered the peer itself (`out` from `from` on): that is the peer's
    /// activity too. If earlier answers still wait in the queue, a reply that answers in
    /// turn (a refusal, a 100 Continue) waits behind them, when the protocol says so.
    fn protocol_replied(&mut self, from: usize) {
        self.delivered_total += 1;
        if !self.flush_owed && self.conn.queued() == 0 {
            return;
        }
        let reply = self.out.split_off(from).freeze();
        match self.protocol.reply_message(reply.clone()) {
            Some(msg) => {
                if self.conn.send_unbounded(msg).is_err() {
                    log::debug!("{}: a reply after the close", self.conn.id());
                }
            }
            // Back in place: the clone is gone, so no copy (a tinyproto payload may be large).
            None => match reply.try_into_mut() {
                Ok(reply) => self.out.unsplit(reply),
                Err(reply) => self.out.extend_from_slice(&reply),
            },
        }
    }

    /// Decode up to `room` whole messages; a decode error ends the batch (with what came
    /// before it). A lone message travels without a `Vec`; from the second on they go into
    /// one sized for what the last read brought (no regrowth per message).
    fn decode_batch(&mut self, room: usize) -> (Batch<P::Message>, Result<Decoded, CodecError>) {
        let rest = if self.batch_hint >= BUSY_FLUSH {
            local::take(&BATCH)
        } else {
            Vec::new()
        };
        let mut batch = Batch {
            first: None,
            rest,
            bytes: 0,
        };
        // Room for the rest of what the last read brought.
        let hint = self.batch_hint.min(room).saturating_sub(1);
        let mut io = ProtocolIo::new(&mut self.out);
        let result = self
            .protocol
            .decode_each(&mut self.inbuf, room, &mut io, |msg| batch.push(msg, hint));
        let decoded = Decoded {
            close: io.wants_close(),
            pause: io.wants_pause(),
        };
        (batch, result.map(|_| decoded))
    }

    /// Move whole messages to the base, in one sparkle, counting them into the window.
    ///
    /// Co-located, the base takes the batch inline when it can (`Handle::sparkle_inline`: no
    /// queue round trip, no closure to allocate) and its replies are written right after it,
    /// in this sparkle: a request–response exchange is then one sparkle, not three.
    /// `paused`: the batch ended in a pause (`ProtocolIo::pause`).
    pub(super) fn deliver(
        &mut self,
        ctx: &mut Ctx<Self>,
        mut batch: Batch<P::Message>,
        paused: bool,
    ) {
        if batch.is_empty() {
            self.keep_batch_vec(batch.rest);
            return;
        }
        self.delivered_total += batch.len() as u64;
        self.window_full = self.conn.delivering(batch.len(), batch.bytes);
        if self.colocated {
            // Replies staged during the batch need not poke us: we flush right after it.
            let held = self.conn.hold_drain() || self.flush_owed;
            let conn = &self.conn;
            let inline = self
                .base
                .sparkle_inline(&mut batch, |b, bctx, batch| {
                    on_batch(b, bctx, conn, batch, true)
                })
                .is_ok();
            if inline {
                self.keep_batch_vec(batch.rest);
                self.window_full = !self.conn.window_open();
                if held
                    && paused
                    && !self.inbuf.is_empty()
                    && self.conn.resumed_early()
                    && !self.output_backlogged()
                {
                    // Pipelined requests: this answer goes out with the next ones'.
                    self.flush_owed = true;
                    return;
                }
                self.flush_owed = false;
                if self.flushable() {
                    self.flush(ctx);
                } else if held {
                    self.conn.release_drain();
                }
                return;
            }
            if held {
                self.flush_owed = false;
                self.conn.release_drain();
            }
        }
        let colocated = self.colocated;
        let delivered = self.event("on_message", move |b, ctx, conn| {
            on_batch(b, ctx, conn, &mut batch, colocated)
        });
        if !delivered {
            log::warn!("{}: its base has completed; aborting", self.conn.id());
            self.lost(ctx, CloseReason::Aborted);
        }
    }

    /// A batch's `Vec`, emptied by a delivery inline: the thread keeps it for a busy
    /// connection's next read (an allocation and a free per read otherwise).
    fn keep_batch_vec(&self, rest: Vec<P::Message>) {
        if self.batch_hint >= BUSY_FLUSH {
            local::keep(&BATCH, rest);
        }
    }

    /// Report a codec error; true if the connection goes on (a skipped frame).
    pub(super) fn codec_error(&mut self, ctx: &mut Ctx<Self>, e: CodecError) -> bool {
        let skip = e.is_skippable() && self.config.on_malformed == OnMalformed::Skip;
        // A TLS record's header (handshake or alert, version 3.x) read as plaintext.
        let tls_hint = matches!(
            self.inbuf.first_chunk::<3>(),
            Some([0x15 | 0x16, 0x03, 0..=4])
        ) && !self.conn.is_tls();
        log::warn!(
            "{} ({:?}): {e}{}{}",
            self.conn.id(),
            self.conn.peer(),
            if skip { "; frame skipped" } else { "" },
            if tls_hint {
                " (the bytes look like a TLS record: is the peer speaking TLS?)"
            } else {
                ""
            }
        );
        let report = e.clone();
        self.event("on_codec_error", move |b, ctx, conn| {
            b.on_codec_error(ctx, conn, &report)
        });
        if skip {
            return true;
        }
        // The stream cannot be trusted any more: flush what we owe, then close.
        self.begin_close(ctx, CloseReason::Codec(e));
        false
    }

    /// The socket reached its end: the peer's end of the stream, unless that cuts the
    /// transport short (TLS without `close_notify`: truncation, not a clean close).
    fn socket_eof(&mut self, ctx: &mut Ctx<Self>) {
        if self.securing {
            self.peer_closed = true;
            let e = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection during the TLS handshake",
            );
            return self.lost(ctx, CloseReason::ConnectFailed(e));
        }
        if self.closing.is_none()
            && let Err(e) = self.transport.at_eof()
        {
            self.peer_closed = true;
            return self.lost(ctx, e.into_reason());
        }
        self.eof(ctx);
    }

    /// The peer's stream ended: deliver what it completes, answer what was delivered, close.
    pub(super) fn eof(&mut self, ctx: &mut Ctx<Self>) {
        self.peer_closed = true;
        if self.closing.is_some() {
            // Our graceful close waited for this.
            let reason = self.closing.take().unwrap_or(CloseReason::Closed);
            return self.closed(ctx, reason);
        }
        let mut batch = Batch::default();
        loop {
            let mut io = ProtocolIo::new(&mut self.out);
            match self.protocol.decode_eof(&mut self.inbuf, &mut io) {
                Ok(Some(msg)) => batch.push(msg, 2),
                Ok(None) => break,
                Err(e) => {
                    self.deliver(ctx, batch, false);
                    let report = e.clone();
                    self.event("on_codec_error", move |b, ctx, conn| {
                        b.on_codec_error(ctx, conn, &report)
                    });
                    return self.lost(ctx, CloseReason::Codec(e));
                }
            }
        }
        self.deliver(ctx, batch, false);
        if !self.config.half_close {
            // The peer's end is the session's: what waits is handed back, not written.
            return self.lost(ctx, CloseReason::PeerClosed);
        }
        if !self.protocol.ready() && !self.awaiting_ready {
            // A half-duplex protocol waits for the peer (tinyproto's go-ahead), which can no
            // longer come: nothing more can be written, and what waits is handed back now.
            return self.lost(ctx, CloseReason::PeerClosed);
        }
        // Half-close: answer what was delivered, then close.
        self.conn.notify_when_drained();
        self.check_peer_closed(ctx);
    }

    /// After the peer closed: once the base consumed everything and all replies are written,
    /// close.
    pub(super) fn check_peer_closed(&mut self, ctx: &mut Ctx<Self>) {
        if self.peer_closed && self.closing.is_none() && self.conn.unconsumed() == 0 {
            self.begin_close(ctx, CloseReason::PeerClosed);
        }
    }
}
