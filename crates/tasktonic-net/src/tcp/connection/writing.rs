//! The writing half of [`TcpConnection`]: the protocol encodes what the outbox holds and
//! the transport writes it until `WouldBlock`; what a short write leaves waits for the
//! writable event.

use std::collections::VecDeque;
use std::io::{self, Write};

use bytes::{Buf, BytesMut};
use tasktonic_core::Ctx;

use super::TcpConnection;
use super::buffers::BUSY_FLUSH;
use crate::protocol::Protocol;
use crate::selector::local::{WRITE_KEEP_MAX, WRITE_SCRATCH, WriteScratch};
use crate::tcp::{CloseReason, Conn, ConnState, TcpEvents};
use crate::transport::Wire;
/// A drained outbox buffer up to this capacity is kept for the next flush (bigger ones, after
/// a burst, are freed).
const SPARE_MAX: usize = 1024;
/// Encode at most this much before writing, to batch small messages into one `write`.
const WRITE_BATCH: usize = 256 * 1024;
/// Payloads written from their messages in one vectored write at most (each takes one or two
/// of the kernel's 1,024 iovecs).
const VECTORED_MAX: usize = 256;

impl<P: Protocol, B: TcpEvents<P::Message>> TcpConnection<P, B> {
    /// Encode what the outbox holds and write until `WouldBlock`.
    ///
    /// Messages are encoded by reference into the selector thread's write buffer and written
    /// from it; the ones written completely are dropped there and then. Only a short write
    /// moves anything to the connection: the bytes left over (its `out`) and the messages
    /// they belong to (`inflight`, handed back if the connection is lost). So a connection
    /// holds no write buffer between writes, and a message is moved once, not three times.
    pub(super) fn flush(&mut self, ctx: &mut Ctx<Self>) {
        if !self.flushable() {
            if self.securing {
                // In a TLS handshake messages wait (handed back if it fails); its records go.
                self.push_transport(ctx);
            }
            return;
        }
        if !self.protocol.ready() {
            return self.flush_own(ctx);
        }
        let mut pending = self.conn.take_outbox(std::mem::take(&mut self.spare));
        if pending.is_empty() && self.out.is_empty() {
            // Nothing to write (a writable edge after everything went out): the transport's
            // own records may still wait.
            self.spare = pending;
            if self.transport.wants_write() && !self.push_transport(ctx) {
                return;
            }
            self.after_flush(ctx);
            return;
        }
        let busy = pending.len() >= BUSY_FLUSH;
        // What a short write left behind goes first.
        let drained = if self.out.is_empty() {
            Ok(true)
        } else {
            self.write_out()
        };
        let result = match drained {
            // Used in place (nothing `write_batches` calls flushes again on this thread).
            Ok(true) => WRITE_SCRATCH.with(|w| {
                let mut scratch = w.borrow_mut();
                let result = self.write_batches(&mut pending, &mut scratch);
                if scratch.buf.capacity() > WRITE_KEEP_MAX {
                    *scratch = WriteScratch::default();
                }
                result
            }),
            other => other.map(|_| ()),
        };
        if !pending.is_empty() {
            // Not written yet: back to the front of the outbox for the next writable event
            // (or, if the connection is lost, to be handed back after `inflight`).
            self.conn.requeue_front(pending.into_iter());
        } else if busy && pending.capacity() <= SPARE_MAX {
            self.spare = pending;
            self.keep_buffers(ctx);
        } else {
            Conn::recycle(pending);
        }
        if let Err(e) = result {
            return self.lost(ctx, CloseReason::Io(e));
        }
        if self.out.is_empty() && self.out.capacity() > 0 {
            // Used only across a short write.
            self.out = BytesMut::new();
            self.inflight = VecDeque::new();
        }
        self.after_flush(ctx);
    }

    /// The protocol's handshake is in progress: only its own bytes go, messages wait. A
    /// connection closing meanwhile ends its side as soon as those bytes are out: the
    /// waiting messages can never be written (they are handed back), and a peer that keeps
    /// its side open (a refused upgrade over keep-alive HTTP) then sees our end at once
    /// instead of after the linger.
    fn flush_own(&mut self, ctx: &mut Ctx<Self>) {
        if !self.out.is_empty()
            && let Err(e) = self.write_out()
        {
            return self.lost(ctx, CloseReason::Io(e));
        }
        if self.transport.wants_write() && !self.push_transport(ctx) {
            return;
        }
        // A close of the protocol's own or for an error in its opening handshake: the
        // waiting messages can never go, so end our side now. (The base's close waits for
        // the handshake, then writes them; a half-duplex transfer under way finishes first:
        // a message of ours awaiting the go-ahead is still queued, the peer's is answered
        // and delivered.)
        if self.closing.is_some()
            && self.out.is_empty()
            && self.awaiting_ready
            && !self.close_waits_for_protocol()
        {
            self.shut_down_write(ctx);
        }
    }

    /// What waits for a flush to end: a graceful close's shutdown once everything accepted
    /// is written, a switch (TLS, or another protocol) once everything before its boundary is.
    fn after_flush(&mut self, ctx: &mut Ctx<Self>) {
        if self.output_hold && self.out.is_empty() && self.conn.queued() <= self.conn.shared.low {
            // The peer took the answers: read its next requests (in a sparkle of its own,
            // not inside the flush).
            self.output_hold = false;
            self.held = false;
            let _ = ctx.handle().notify_named("read", |c, ctx| c.read(ctx));
        }
        if self.closing.is_some()
            && self.out.is_empty()
            && self.conn.queued() == 0
            && self.protocol.ready()
        {
            return self.shut_down_write(ctx);
        }
        if self.conn.upgrading() {
            self.continue_switch(ctx);
        }
    }

    /// True if `flush` would write (and take the outbox): connected, not shut down, and not
    /// in a TLS handshake.
    #[inline]
    pub(super) fn flushable(&self) -> bool {
        self.stream.is_some()
            && !self.shut_down
            && !self.securing
            && self.conn.state() != ConnState::Connecting
    }

    /// Encode `pending` (from the front) into `scratch` a batch at a time and write each;
    /// written messages leave `pending`. Large payloads the codec hands back
    /// ([`Encoder::encode_vectored`](crate::codec::Encoder::encode_vectored)) are not copied:
    /// the batch goes out in one vectored write. At `WouldBlock` or an error, the batch's
    /// unwritten bytes go to `out` and its messages to `inflight`; `pending` keeps the rest.
    fn write_batches(
        &mut self,
        pending: &mut VecDeque<P::Message>,
        scratch: &mut WriteScratch,
    ) -> io::Result<()> {
        // A half-duplex protocol turns unready once a message is encoded (`Protocol::ready`):
        // the rest wait for its go-ahead.
        while !pending.is_empty() && self.protocol.ready() {
            scratch.buf.clear();
            scratch.ends.clear();
            let Some(stream) = self.stream.as_mut() else {
                return Ok(());
            };
            let mut wire = self.transport.wire(stream);
            // Encode and write one batch. It ends before a message that cannot be encoded,
            // which is handed back below once everything before it is written.
            let (written, result, unencodable, rest) = {
                // Payloads written from their messages: (where in `buf` each goes, the bytes).
                let mut payloads: Vec<(usize, &[u8])> = Vec::new();
                let mut total = 0;
                let mut unencodable = None;
                while scratch.ends.len() < pending.len()
                    && total < WRITE_BATCH
                    && payloads.len() < VECTORED_MAX
                    && self.protocol.ready()
                {
                    let msg = &pending[scratch.ends.len()];
                    let before = scratch.buf.len();
                    match self.protocol.encode_vectored(msg, &mut scratch.buf) {
                        Ok(payload) => {
                            total += scratch.buf.len() - before;
                            if let Some(payload) = payload {
                                total += payload.len();
                                payloads.push((scratch.buf.len(), payload));
                            }
                            scratch.ends.push(total);
                        }
                        Err(e) => {
                            scratch.buf.truncate(before);
                            unencodable = Some(e);
                            break;
                        }
                    }
                }
                let (written, result) = if payloads.is_empty() {
                    write_from(&mut wire, &scratch.buf)
                } else {
                    write_pieces(&mut wire, &scratch.buf, &payloads)
                };
                // After a short write what is left waits in `out`: the batch's own buffer
                // when nothing was written from the messages, else a copy of the rest.
                let rest = match result {
                    Ok(true) => None,
                    _ if payloads.is_empty() => {
                        let mut rest = std::mem::take(&mut scratch.buf);
                        rest.advance(written);
                        Some(rest)
                    }
                    _ => Some(unwritten(&scratch.buf, &payloads, written)),
                };
                (written, result, unencodable, rest)
            };
            // The protocol turned unready encoding the last message: it holds that message
            // (its rest waits for the peer), which stays queued until released and written
            // (`Protocol::ready`). Our copy goes; the protocol has its own.
            let holds = unencodable.is_none() && !scratch.ends.is_empty() && !self.protocol.ready();
            let retire = scratch.ends.len() - usize::from(holds);
            let done = scratch.ends[..retire].partition_point(|&end| end <= written);
            if done == pending.len() {
                pending.clear(); // the usual case, and cheaper than a drain
            } else {
                pending.drain(..done);
            }
            let base = self.written;
            self.written += written as u64;
            if self.conn.dequeued(done) {
                self.event("on_writable", |b, ctx, conn| b.on_writable(ctx, conn));
            }
            let Some(rest) = rest else {
                if holds {
                    pending.pop_front();
                }
                // All written: a message that could not be encoded is next; hand it back.
                if let Some(e) = unencodable
                    && let Some(msg) = pending.pop_front()
                {
                    self.conn.dequeued(1);
                    self.event("on_unencodable", move |b, ctx, conn| {
                        b.on_unencodable(ctx, conn, msg, &e)
                    });
                }
                continue;
            };
            // A short write (or an error): the rest of the batch waits in the connection.
            for &end in &scratch.ends[done..retire] {
                let Some(msg) = pending.pop_front() else {
                    break;
                };
                self.inflight.push_back((msg, base + end as u64));
            }
            if holds {
                pending.pop_front();
            }
            self.out = rest;
            return result.map(|_| ());
        }
        Ok(())
    }

    /// Write what a short write left in `out` until empty (true) or `WouldBlock` (false);
    /// retire the messages it completes.
    pub(super) fn write_out(&mut self) -> io::Result<bool> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(false);
        };
        let (written, result) = write_from(&mut self.transport.wire(stream), &self.out);
        self.out.advance(written);
        self.written += written as u64;
        let mut done = 0;
        while self
            .inflight
            .front()
            .is_some_and(|(_, end)| *end <= self.written)
        {
            self.inflight.pop_front();
            done += 1;
        }
        if self.conn.dequeued(done) {
            self.event("on_writable", |b, ctx, conn| b.on_writable(ctx, conn));
        }
        result
    }
}

/// Write `buf` with `payloads` spliced in (each before the byte of `buf` it names), in
/// vectored writes, until all is written (`Ok(true)`), `WouldBlock` (`Ok(false)`) or an
/// error; with how many bytes were written.
fn write_pieces(
    stream: &mut Wire<'_>,
    buf: &[u8],
    payloads: &[(usize, &[u8])],
) -> (usize, io::Result<bool>) {
    let mut slices = Vec::with_capacity(2 * payloads.len() + 1);
    let mut at = 0;
    for &(to, payload) in payloads {
        if to > at {
            slices.push(io::IoSlice::new(&buf[at..to]));
        }
        slices.push(io::IoSlice::new(payload));
        at = to;
    }
    if at < buf.len() {
        slices.push(io::IoSlice::new(&buf[at..]));
    }
    let mut left: &mut [io::IoSlice<'_>] = &mut slices;
    let mut written = 0;
    loop {
        if left.is_empty() {
            return (written, Ok(true));
        }
        match stream.write_vectored(left) {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes");
                return (written, Err(e));
            }
            Ok(n) => {
                written += n;
                io::IoSlice::advance_slices(&mut left, n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (written, Ok(false)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
}

/// What `write_pieces` had not written of `buf` and `payloads`, from byte `written` on, as
/// one buffer.
fn unwritten(buf: &[u8], payloads: &[(usize, &[u8])], written: usize) -> BytesMut {
    let mut rest = BytesMut::new();
    let mut pos = 0; // position in the stream of pieces
    let mut at = 0; // position in `buf`
    let mut take = |piece: &[u8], rest: &mut BytesMut| {
        let skip = written.saturating_sub(pos).min(piece.len());
        rest.extend_from_slice(&piece[skip..]);
        pos += piece.len();
    };
    for &(to, payload) in payloads {
        take(&buf[at..to], &mut rest);
        take(payload, &mut rest);
        at = to;
    }
    take(&buf[at..], &mut rest);
    rest
}

/// Write `buf` until all of it is written (`Ok(true)`), `WouldBlock` (`Ok(false)`) or an
/// error; with how many bytes were written.
fn write_from(stream: &mut Wire<'_>, buf: &[u8]) -> (usize, io::Result<bool>) {
    let mut at = 0;
    loop {
        if at == buf.len() {
            return (at, Ok(true));
        }
        match stream.write(&buf[at..]) {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes");
                return (at, Err(e));
            }
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (at, Ok(false)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (at, Err(e)),
        }
    }
}
