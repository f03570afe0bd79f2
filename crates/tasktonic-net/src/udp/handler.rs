//! [`UdpHandler`]: the tonic that owns one UDP socket on the selector catalyst.
//!
//! Inbound: readiness → `recv_from` (inline, until `WouldBlock`, the per-turn budget or a full
//! inbound window) into the selector thread's read scratch → the codec decodes each datagram
//! → the datagrams of one turn move to the base in one sparkle. Outbound: `Udp::send_to` →
//! send queue → `flush` (the codec encodes, `send_to` sends, until the queue is empty or the
//! socket's buffer is full) → on a full buffer the rest waits for the writable event.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use mio::net::UdpSocket as MioUdp;
use mio::{Interest, Token};
use tasktonic_core::extend::SparkleInline;
use tasktonic_core::{Ctx, Handle, Timer, TimerEvent, TimerId, Tonic};

use super::handle::{Poke, PokeFn};
use super::{SendToError, Udp, UdpConfig, UdpEvents};
use crate::codec::{CodecError, DatagramCodec};
use crate::selector::Selector;
use crate::selector::local::{READ_SCRATCH, WRITE_KEEP_MAX, WRITE_SCRATCH};

/// One received datagram, as the base gets it.
enum Inbound<M> {
    Datagram(M, SocketAddr),
    Undecodable(SocketAddr, CodecError),
}

/// The base's side of a delivery: the events of one read, in order.
fn on_batch<M: Send + 'static, B: UdpEvents<M>>(
    b: &mut B,
    ctx: &mut Ctx<B>,
    udp: &Udp<M>,
    batch: &mut Vec<Inbound<M>>,
) {
    // Counted consumed when the batch is done, even if an event panics (a base restarted
    // in place must find the window open).
    let _consumed = Consumed(udp, batch.len());
    for item in batch.drain(..) {
        match item {
            Inbound::Datagram(msg, from) => b.on_datagram(ctx, udp, msg, from),
            Inbound::Undecodable(from, e) => b.on_decode_error(ctx, udp, from, &e),
        }
    }
}

/// Marks a delivered batch consumed when dropped.
struct Consumed<'a, M: Send + 'static>(&'a Udp<M>, usize);

impl<M: Send + 'static> Drop for Consumed<'_, M> {
    fn drop(&mut self) {
        self.0.consumed(self.1);
    }
}

/// How one read turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// `WouldBlock`: nothing more to read until the next readiness.
    Drained,
    /// The budget or the window: more may be waiting.
    Limit,
    /// The socket is closed.
    Gone,
}

/// What became of one datagram on its way out.
enum Sent {
    Whole,
    /// The socket's buffer is full: try again when it is writable.
    WouldBlock,
    Failed(SendToError),
}

/// Send `bytes` to `to`, retrying an interrupted call.
fn send_one(socket: &MioUdp, bytes: &[u8], to: SocketAddr) -> Sent {
    loop {
        return match socket.send_to(bytes, to) {
            Ok(n) if n == bytes.len() => Sent::Whole,
            Ok(n) => Sent::Failed(SendToError::Io(io::Error::other(format!(
                "only {n} of {} bytes were sent",
                bytes.len()
            )))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Sent::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Sent::Failed(SendToError::Io(e)),
        };
    }
}

/// The socket handler tonic: one per UDP socket, on the selector catalyst. Created by
/// [`UdpSocket::start`](super::UdpSocket::start); its base talks to it through [`Udp`].
pub(crate) struct UdpHandler<C: DatagramCodec, B: UdpEvents<C::Message>> {
    udp: Udp<C::Message>,
    codec: C,
    base: Handle<B>,
    selector: Selector,
    token: Token,
    config: Arc<UdpConfig>,
    /// The base runs on this catalyst (the co-located layout): it takes a read's datagrams
    /// inline, and its replies are sent right after.
    colocated: bool,
    /// `Poke::Start` has run: the base heard `on_bound`, readiness is handled.
    started: bool,
    /// Stopped reading: the base's inbound window is full.
    window_full: bool,
    /// The socket's buffer refused a datagram: flushing waits for the writable event (the
    /// only time the socket is registered for it: every send would raise one otherwise).
    blocked: bool,
    /// `close()` was called: sending what was accepted, then closing.
    closing: bool,
    /// While closing with the socket's buffer full: the timer that ends the wait.
    linger: Option<TimerId>,
    /// Closed for good.
    closed: bool,
    /// The send queue's other half: swapped with it on every flush, so neither reallocates.
    spare: VecDeque<(C::Message, SocketAddr)>,
}

impl<C: DatagramCodec, B: UdpEvents<C::Message>> std::fmt::Debug for UdpHandler<C, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpHandler")
            .field("udp", &self.udp)
            .finish()
    }
}

impl<C: DatagramCodec, B: UdpEvents<C::Message>> UdpHandler<C, B> {
    pub(crate) fn new(
        udp: Udp<C::Message>,
        codec: C,
        base: Handle<B>,
        selector: Selector,
        token: Token,
        config: Arc<UdpConfig>,
    ) -> UdpHandler<C, B> {
        UdpHandler {
            colocated: base.tonic_ref().catalyst() == selector.catalyst(),
            udp,
            codec,
            base,
            selector,
            token,
            config,
            started: false,
            window_full: false,
            blocked: false,
            closing: false,
            linger: None,
            closed: false,
            spare: VecDeque::new(),
        }
    }

    /// The poke function the `Udp` handles use to reach this tonic.
    pub(crate) fn poker(handle: Handle<Self>) -> PokeFn {
        Box::new(move |poke| {
            // Readiness and sends run inline when that cannot be told apart from queueing
            // (no queue round trip); the rest is queued.
            if matches!(poke, Poke::Ready | Poke::Drain)
                && handle
                    .sparkle_inline(poke, |h, ctx, poke| h.poke(ctx, poke))
                    .is_ok()
            {
                return true;
            }
            // One closure per kind, capturing nothing: a queued poke allocates nothing.
            match poke {
                Poke::Start => handle
                    .notify_named("poke", |h, ctx| h.poke(ctx, Poke::Start))
                    .is_ok(),
                Poke::Ready => handle
                    .notify_named("poke", |h, ctx| h.poke(ctx, Poke::Ready))
                    .is_ok(),
                Poke::Drain => handle
                    .notify_named("poke", |h, ctx| h.poke(ctx, Poke::Drain))
                    .is_ok(),
                Poke::Resume => handle
                    .notify_named("poke", |h, ctx| h.poke(ctx, Poke::Resume))
                    .is_ok(),
                Poke::Close => handle
                    .notify_named("poke", |h, ctx| h.poke(ctx, Poke::Close))
                    .is_ok(),
                Poke::Abort => handle
                    .notify_named("poke", |h, ctx| h.poke(ctx, Poke::Abort))
                    .is_ok(),
            }
        })
    }

    /// Send an event to the base. False if the base has completed.
    fn event(
        &self,
        name: &'static str,
        f: impl FnOnce(&mut B, &mut Ctx<B>, &Udp<C::Message>) + Send + 'static,
    ) -> bool {
        let udp = self.udp.clone();
        self.base
            .sparkle_named(name, move |b, ctx| f(b, ctx, &udp))
            .is_ok()
    }

    fn poke(&mut self, ctx: &mut Ctx<Self>, poke: Poke) {
        if self.closed {
            return;
        }
        match poke {
            Poke::Start => {
                self.started = true;
                let addr = self.udp.local_addr();
                self.event("on_bound", move |b, ctx, udp| b.on_bound(ctx, udp, addr));
                // Whatever arrived before (readiness that came early was left waiting).
                self.udp.take_ready();
                self.read(ctx);
                self.flush(ctx);
            }
            Poke::Ready if self.started => {
                let ready = self.udp.take_ready();
                if ready.writable && self.blocked {
                    self.unblock();
                    self.flush(ctx);
                }
                if ready.readable || ready.error {
                    self.read(ctx);
                }
            }
            Poke::Ready => {} // `Start` takes it
            Poke::Drain => self.flush(ctx),
            Poke::Resume => {
                self.window_full = false;
                self.read(ctx);
            }
            Poke::Close => {
                self.closing = true;
                self.flush(ctx);
                if !self.closed && self.blocked {
                    let linger = self.config.close_linger;
                    self.linger = Some(ctx.timer(Timer::once(linger).named("linger")));
                }
            }
            Poke::Abort => self.close_now(ctx),
        }
    }

    // ----- reading ------------------------------------------------------------------------

    /// Read until `WouldBlock`, the budget, or a full inbound window; deliver what was read.
    fn read(&mut self, ctx: &mut Ctx<Self>) {
        if self.window_full || self.closing {
            return;
        }
        let room = self.udp.window_room();
        if room == 0 {
            // The base's next consumption pokes us to resume.
            self.window_full = true;
            return;
        }
        let limit = room.min(self.config.read_budget.max(1));
        let mut batch = Vec::new();
        let (udp, codec) = (&self.udp, &mut self.codec);
        let stop = READ_SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let socket = udp.shared.socket.lock();
            let Some(socket) = socket.as_ref() else {
                return Stop::Gone;
            };
            let mut errors = 0;
            while batch.len() + errors < limit {
                match socket.recv_from(&mut scratch[..]) {
                    Ok((n, from)) => batch.push(match codec.decode(&scratch[..n]) {
                        Ok(msg) => Inbound::Datagram(msg, from),
                        Err(e) => Inbound::Undecodable(from, e),
                    }),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Stop::Drained,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // Reported for an earlier send on some systems (an ICMP error);
                        // nothing was received. Counted against the budget: never a spin.
                        log::debug!("udp {}: receive: {e}", udp.local_addr());
                        errors += 1;
                    }
                }
            }
            Stop::Limit
        });
        self.deliver(ctx, batch);
        if stop == Stop::Limit && !self.window_full && !self.closed {
            // Others get their turn, the ones the next poll finds ready too; this socket
            // continues right after them.
            let handle = ctx.handle();
            crate::selector::local::after_next_poll(Box::new(move || {
                let _ = handle.notify_named("read", |h, ctx| h.read(ctx));
            }));
        }
    }

    /// Move a read's datagrams to the base, in one sparkle, counting them into the window.
    ///
    /// Co-located, the base takes them inline when it can (`Handle::sparkle_inline`), and
    /// its replies are sent right after, in this sparkle.
    fn deliver(&mut self, ctx: &mut Ctx<Self>, mut batch: Vec<Inbound<C::Message>>) {
        if batch.is_empty() {
            return;
        }
        for item in &batch {
            if let Inbound::Undecodable(from, e) = item {
                log::debug!("udp {}: datagram from {from}: {e}", self.udp.local_addr());
            }
        }
        self.window_full = self.udp.delivering(batch.len());
        if self.colocated {
            // Replies sent during the batch need not poke us: we flush right after it.
            let held = self.udp.hold_drain();
            let udp = &self.udp;
            let inline = self
                .base
                .sparkle_inline(&mut batch, |b, bctx, batch| on_batch(b, bctx, udp, batch))
                .is_ok();
            if inline {
                self.window_full = self.udp.window_room() == 0;
                if self.blocked {
                    // The writable event flushes (and ends the hold).
                    return;
                }
                return self.flush(ctx);
            }
            if held {
                self.udp.release_drain();
            }
        }
        let delivered = self.event("on_datagram", move |b, ctx, udp| {
            on_batch(b, ctx, udp, &mut batch)
        });
        if !delivered {
            log::warn!(
                "udp {}: its base has completed; closing",
                self.udp.local_addr()
            );
            self.close_now(ctx);
        }
    }

    // ----- sending ------------------------------------------------------------------------

    /// Send what is queued, in order, until the queue is empty or the socket's buffer is
    /// full. Datagrams that fail go back to the base; then, if closing and nothing is left,
    /// close.
    fn flush(&mut self, ctx: &mut Ctx<Self>) {
        if self.blocked {
            return; // the writable event resumes
        }
        let spare = std::mem::take(&mut self.spare);
        let mut batch = self.udp.take_queue(spare);
        let mut done = 0;
        let mut failed = Vec::new();
        let mut blocked = false;
        if !batch.is_empty() {
            let (udp, codec) = (&self.udp, &mut self.codec);
            WRITE_SCRATCH.with(|scratch| {
                let scratch = &mut scratch.borrow_mut().buf;
                let socket = udp.shared.socket.lock();
                let Some(socket) = socket.as_ref() else {
                    return; // closed: `close_queue` hands them back
                };
                while let Some((msg, to)) = batch.pop_front() {
                    scratch.clear();
                    let sent = match codec.encode(&msg, scratch) {
                        Ok(bytes) => send_one(socket, bytes, to),
                        Err(e) => Sent::Failed(SendToError::Encode(e)),
                    };
                    match sent {
                        Sent::Whole => done += 1,
                        Sent::WouldBlock => {
                            batch.push_front((msg, to));
                            udp.requeue_front(&mut batch);
                            blocked = true;
                            break;
                        }
                        Sent::Failed(e) => {
                            done += 1;
                            failed.push((msg, to, e));
                        }
                    }
                }
                if scratch.capacity() > WRITE_KEEP_MAX {
                    // A huge message (an oversized MessagePack value, refused) is not kept.
                    *scratch = BytesMut::new();
                }
            });
        }
        self.spare = batch;
        for (msg, to, e) in failed {
            log::debug!("udp {}: to {to}: {e}", self.udp.local_addr());
            self.event("on_send_failed", move |b, ctx, udp| {
                b.on_send_failed(ctx, udp, msg, to, &e)
            });
        }
        if self.udp.dequeued(done) {
            self.event("on_writable", |b, ctx, udp| b.on_writable(ctx, udp));
        }
        if blocked {
            self.block();
        } else if self.closing && self.udp.queue_empty() {
            self.close_now(ctx);
        }
    }

    /// The socket's buffer is full: ask for the writable event.
    fn block(&mut self) {
        self.blocked = true;
        self.interest(Interest::READABLE | Interest::WRITABLE);
    }

    /// Writable again: back to readable events only.
    fn unblock(&mut self) {
        self.blocked = false;
        self.interest(Interest::READABLE);
    }

    fn interest(&self, interest: Interest) {
        if let Some(socket) = self.udp.shared.socket.lock().as_mut()
            && let Err(e) = self.selector.reregister(socket, self.token, interest)
        {
            log::error!("udp {}: reregister: {e}", self.udp.local_addr());
        }
    }

    // ----- closing ------------------------------------------------------------------------

    /// Release the socket; hand back what was never sent; finish.
    fn close_now(&mut self, ctx: &mut Ctx<Self>) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        if let Some(t) = self.linger.take() {
            ctx.cancel_timer(t);
        }
        if let Some(mut socket) = self.udp.shared.socket.lock().take() {
            self.selector.deregister(&mut socket, self.token);
        }
        let unsent: Vec<_> = self.udp.close_queue().into_iter().collect();
        self.udp.dequeued(unsent.len());
        log::debug!(
            "udp {}: closed, {} unsent",
            self.udp.local_addr(),
            unsent.len()
        );
        self.event("on_closed", move |b, ctx, udp| {
            b.on_closed(ctx, udp, unsent)
        });
        ctx.finish();
    }
}

impl<C: DatagramCodec, B: UdpEvents<C::Message>> Tonic for UdpHandler<C, B> {
    type State = ();

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
        if self.linger == Some(timer.id) {
            self.linger = None;
            log::debug!(
                "udp {}: the socket took nothing more within the linger time",
                self.udp.local_addr()
            );
            self.close_now(ctx);
        }
    }

    fn on_finishing(&mut self, ctx: &mut Ctx<Self>) {
        // The base or the app is going away: send what the socket takes now, hand back
        // the rest.
        self.udp.stop_sends();
        self.closing = true;
        self.flush(ctx);
        self.close_now(ctx);
    }
}
