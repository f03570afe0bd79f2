//! The reading half of [`TcpConnection`]: readiness, reading and decoding (inline, until
//! `WouldBlock` or the per-turn budget), and delivery to the base.

use std::io::{self, Read};

use bytes::BytesMut;
use tasktonic_core::Ctx;

use super::TcpConnection;
use super::buffers::BUSY_FLUSH;
use crate::codec::{Codec, CodecError};
use crate::selector::Ready;
use crate::tcp::kept;
use crate::tcp::{CloseReason, Conn, ConnState, OnMalformed, TcpEvents};

/// One `read` call reads at most this much (into the selector thread's scratch space).
const READ_CHUNK: usize = 64 * 1024;
/// The largest batch a decode pre-allocates for.
const BATCH_HINT_MAX: usize = 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}

/// The messages of one read, as delivered to the base: the first, then the rest. A lone
/// message (the request–response case) travels without a `Vec` (one allocation less per
/// exchange; N4), and the first is not moved into the `Vec` when a second arrives.
pub(super) struct Batch<M> {
    first: Option<M>,
    /// Empty unless `first` is set.
    rest: Vec<M>,
}

impl<M> Default for Batch<M> {
    fn default() -> Self {
        Batch {
            first: None,
            rest: Vec::new(),
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
    let _consumed = Consumed(conn, batch.len());
    // Co-located (the base runs on the connection's thread): its replies are collected
    // without a lock and handed over when the batch is done (dropped first).
    let _staging = colocated.then(|| conn.staging(batch.len()));
    if let Some(first) = batch.first.take() {
        b.on_message(ctx, conn, first);
    }
    // Moved out whole-width, not field by field as a `drain` loop does (its `Option` check
    // splits the copy, and `on_message`'s 16-byte loads of it then stall on store forwarding:
    // perf, N1, the hottest instruction of the server's `on_message`); collected in place, so
    // the batch keeps its `Vec` (empty) for the next read.
    batch.rest = std::mem::take(&mut batch.rest)
        .into_iter()
        .filter_map(|msg| {
            b.on_message(ctx, conn, msg);
            None
        })
        .collect();
}

/// Marks a delivered batch consumed when dropped.
struct Consumed<'a, M: Send + 'static>(&'a Conn<M>, usize);

impl<M: Send + 'static> Drop for Consumed<'_, M> {
    fn drop(&mut self) {
        self.0.consumed(self.1);
    }
}

impl<C: Codec, B: TcpEvents<C::Message>> TcpConnection<C, B> {
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
        let discarding = self.closing.is_some();
        if !discarding && !self.decode(ctx) {
            return;
        }
        let mut budget = self.config.read_budget;
        loop {
            if !discarding && self.window_full {
                return;
            }
            if budget == 0 {
                // Others get their turn; this connection continues right after them.
                let _ = ctx.handle().notify_named("read", |c, ctx| c.read(ctx));
                return;
            }
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            // Read into the selector thread's scratch space and keep only what arrived: no
            // zero-filling per read, and a connection's buffer is exactly as big as its data.
            let inbuf = &mut self.inbuf;
            let busy = self.batch_hint >= BUSY_FLUSH;
            let result = SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let r = stream.read(&mut scratch[..]);
                if let Ok(n) = r {
                    if busy {
                        // A busy connection's buffer keeps room to spare: it is kept and
                        // refilled in place (an exact fit would be handed away with its
                        // last frame; see `codec::split_frame`).
                        inbuf.reserve(2 * n);
                    }
                    inbuf.extend_from_slice(&scratch[..n]);
                }
                r
            });
            match result {
                Ok(0) => return self.eof(ctx),
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    if discarding {
                        self.inbuf.clear();
                    } else if !self.decode(ctx) {
                        return;
                    }
                    if n < READ_CHUNK && !self.fin_signalled {
                        // A short read drained the socket (epoll(7), Q9): data arriving later
                        // raises a new edge, so the read that would only say `WouldBlock` is
                        // skipped (one syscall less per message exchange; N4). Not once the
                        // peer's close was signalled: its EOF must be read.
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
            // read refills it in place (N3: an allocation and a free of the buffer and of its
            // shared header per read, otherwise).
            self.keep_buffers(ctx);
        } else if self.inbuf.is_empty() {
            // Idle connections hold no read buffer.
            self.inbuf = BytesMut::new();
        }
    }

    /// Decode and deliver whole messages while the window is open. False if the connection
    /// is going down because of what was decoded.
    pub(super) fn decode(&mut self, ctx: &mut Ctx<Self>) -> bool {
        // Everything one read made whole goes to the base in one sparkle, in order. The window
        // counts every message: estimated from a snapshot while decoding, exactly (one atomic
        // operation) when the batch is delivered. The base can only have consumed more in
        // between, so the estimate may stop early: then decoding goes on, or frames already
        // read would wait for a readiness event that never comes.
        'batches: while !self.window_full {
            let room = self.conn.window().saturating_sub(self.conn.unconsumed());
            if room == 0 {
                // The base's next consumption pokes the connection to resume.
                self.window_full = true;
                break;
            }
            if self.inbuf.is_empty() {
                break; // nothing to decode (a read's first call, usually)
            }
            let (batch, result) = self.decode_batch(room);
            if let Err(e) = result {
                // Messages before the bad frame arrive before its error event.
                self.deliver(ctx, batch);
                if !self.codec_error(ctx, e) {
                    return false;
                }
                continue 'batches;
            }
            let stopped_by_window = batch.len() >= room;
            if !batch.is_empty() {
                self.batch_hint = batch.len().min(BATCH_HINT_MAX);
            }
            self.deliver(ctx, batch);
            if !stopped_by_window {
                break; // no whole frame left
            }
        }
        true
    }

    /// Decode up to `room` whole messages; a decode error ends the batch (with what came
    /// before it). A lone message travels without a `Vec`; from the second on they go into
    /// one sized for what the last read brought (no regrowth per message).
    fn decode_batch(&mut self, room: usize) -> (Batch<C::Message>, Result<(), CodecError>) {
        let rest = if self.batch_hint >= BUSY_FLUSH {
            kept::take(&kept::BATCH)
        } else {
            Vec::new()
        };
        let mut batch = Batch { first: None, rest };
        // Room for the rest of what the last read brought.
        let hint = self.batch_hint.min(room).saturating_sub(1);
        let result = self
            .codec
            .decode_each(&mut self.inbuf, room, |msg| batch.push(msg, hint));
        (batch, result.map(|_| ()))
    }

    /// Move whole messages to the base, in one sparkle, counting them into the window.
    ///
    /// Co-located, the base takes the batch inline when it can (`Handle::sparkle_inline`: no
    /// queue round trip, no closure to allocate) and its replies are written right after it,
    /// in this sparkle: a request–response exchange is then one sparkle, not three (N4).
    pub(super) fn deliver(&mut self, ctx: &mut Ctx<Self>, mut batch: Batch<C::Message>) {
        if batch.is_empty() {
            self.keep_batch_vec(batch.rest);
            return;
        }
        self.window_full = self.conn.delivering(batch.len());
        if self.colocated {
            // Replies staged during the batch need not poke us: we flush right after it.
            let held = self.conn.hold_drain();
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
                if self.flushable() {
                    self.flush(ctx);
                } else if held {
                    self.conn.release_drain();
                }
                return;
            }
            if held {
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
    /// connection's next read (an allocation and a free per read otherwise; N1, N3).
    fn keep_batch_vec(&self, rest: Vec<C::Message>) {
        if self.batch_hint >= BUSY_FLUSH {
            kept::keep(&kept::BATCH, rest);
        }
    }

    /// Report a codec error; true if the connection goes on (a skipped frame).
    pub(super) fn codec_error(&mut self, ctx: &mut Ctx<Self>, e: CodecError) -> bool {
        let skip = e.is_skippable() && self.config.on_malformed == OnMalformed::Skip;
        log::warn!(
            "{} ({:?}): {e}{}",
            self.conn.id(),
            self.conn.peer(),
            if skip { "; frame skipped" } else { "" }
        );
        let report = CodecError::Malformed(e.to_string());
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

    pub(super) fn eof(&mut self, ctx: &mut Ctx<Self>) {
        self.peer_closed = true;
        if self.closing.is_some() {
            // Our graceful close waited for this.
            let reason = self.closing.take().unwrap_or(CloseReason::Closed);
            return self.closed(ctx, reason);
        }
        let mut batch = Batch::default();
        loop {
            match self.codec.decode_eof(&mut self.inbuf) {
                Ok(Some(msg)) => batch.push(msg, 2),
                Ok(None) => break,
                Err(e) => {
                    self.deliver(ctx, batch);
                    let report = CodecError::Malformed(e.to_string());
                    self.event("on_codec_error", move |b, ctx, conn| {
                        b.on_codec_error(ctx, conn, &report)
                    });
                    return self.lost(ctx, CloseReason::Codec(e));
                }
            }
        }
        self.deliver(ctx, batch);
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
