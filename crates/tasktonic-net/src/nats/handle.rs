//! [`Nats`]: the handle every tonic publishes, subscribes and requests through, and
//! [`Subscription`]. Publishing writes from the calling thread straight into the
//! connection's queue; subscriptions, requests and flushes go to the link tonic.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tasktonic_core::{Ctx, Handle, Tonic};

use super::link::{Link, Pending, Route, Watcher};
use super::subject::{check_publish, check_subscribe};
use super::wire::{NatsMsg, NatsWire, Op, Publish};
use super::{NatsError, NatsEvents, NatsStatus, RequestError};
use crate::tcp::{Conn, TcpSendError};

/// A random number, from the standard library's randomly keyed hasher.
pub(crate) fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// What the handles and the link share.
pub(super) struct Shared {
    /// The connection, while it is up (after the server answered `CONNECT`).
    pub(super) conn: Mutex<Option<Conn<NatsWire>>>,
    pub(super) status: AtomicU8,
    pub(super) next_sid: AtomicU64,
    pub(super) next_token: AtomicU64,
    pub(super) max_payload: AtomicUsize,
    /// Requests waiting for their reply, by token.
    pub(super) requests: Mutex<HashMap<u64, Pending>>,
    /// How many messages a subscription may have delivered and not yet taken, and bytes.
    pub(super) sub_capacity: usize,
    pub(super) sub_bytes: usize,
    /// This client's inbox prefix (`_INBOX.<random>.`): replies to its requests.
    pub(super) inbox: String,
    pub(super) link: Mutex<Option<Handle<Link>>>,
}

/// A handle to a NATS client: publish, subscribe, request. Cheap to clone, `Send`: give one
/// to every tonic that talks to the cluster. Publishing writes from the calling thread
/// straight into the connection's queue; subscriptions and requests go through the link.
#[derive(Clone)]
pub struct Nats {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for Nats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nats")
            .field("status", &self.status())
            .finish()
    }
}

/// A subscription: its messages reach the tonic that made it
/// ([`NatsEvents::on_nats_message`]) until [`unsubscribe`](Subscription::unsubscribe)
/// or until that tonic completes.
#[derive(Debug, Clone)]
pub struct Subscription {
    sid: u64,
    nats: Nats,
}

impl Subscription {
    /// The subscription's id (in [`NatsMsg::sid`]).
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// End the subscription.
    pub fn unsubscribe(&self) {
        let sid = self.sid;
        self.nats.to_link(move |link, _| link.remove_sub(sid));
    }
}

impl Nats {
    /// The link's state.
    pub fn status(&self) -> NatsStatus {
        NatsStatus::from_u8(self.shared.status.load(Ordering::Acquire))
    }

    /// The largest payload the server accepts (from its `INFO`).
    pub fn max_payload(&self) -> usize {
        self.shared.max_payload.load(Ordering::Relaxed)
    }

    fn to_link(&self, f: impl FnOnce(&mut Link, &mut Ctx<Link>) + Send + 'static) -> bool {
        let link = self.shared.link.lock().clone();
        link.is_some_and(|l| l.sparkle_named("nats", f).is_ok())
    }

    fn send(&self, p: Publish) -> Result<(), NatsError> {
        if p.headers.as_ref().map_or(0, Bytes::len) + p.payload.len() > self.max_payload() {
            return Err(NatsError::TooLarge(p.payload));
        }
        let conn = self.shared.conn.lock().clone();
        let Some(conn) = conn else {
            return Err(NatsError::NotConnected(p.payload));
        };
        conn.send(NatsWire(Op::Pub(Box::new(p)))).map_err(|e| {
            let back = |w: NatsWire| match w.0 {
                Op::Pub(p) => p.payload,
                _ => Bytes::new(),
            };
            match e {
                TcpSendError::Backpressure(w) => NatsError::Backpressure(back(w)),
                TcpSendError::NotConnected(w) | TcpSendError::Closed(w) => {
                    NatsError::NotConnected(back(w))
                }
            }
        })
    }

    /// Publish `payload` to `subject` (no wildcards). At most once: accepted messages that
    /// were not written when the connection dropped are sent again after the reconnect.
    ///
    /// # Errors
    ///
    /// The payload is handed back: [`NatsError::NotConnected`] while the link is down,
    /// [`NatsError::Backpressure`] at the connection's high watermark,
    /// [`NatsError::TooLarge`] over the server's `max_payload`; [`NatsError::Subject`] for
    /// an invalid subject.
    pub fn publish(&self, subject: &str, payload: impl Into<Bytes>) -> Result<(), NatsError> {
        check_publish(subject)?;
        self.send(Publish {
            subject: subject.into(),
            reply: None,
            headers: None,
            payload: payload.into(),
        })
    }

    /// Publish with a reply subject (for a responder's answer) and header fields.
    ///
    /// # Errors
    ///
    /// As [`publish`](Nats::publish).
    pub fn publish_with(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: &[(&str, &str)],
        payload: impl Into<Bytes>,
    ) -> Result<(), NatsError> {
        check_publish(subject)?;
        if let Some(r) = reply {
            check_publish(r)?;
        }
        for (k, v) in headers {
            let bad_name = k.is_empty()
                || k.bytes()
                    .any(|b| b == b':' || b.is_ascii_whitespace() || b.is_ascii_control());
            if bad_name || v.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(NatsError::Header(format!("{k:?}: {v:?}")));
            }
        }
        let headers = (!headers.is_empty()).then(|| {
            let mut h = BytesMut::from(&b"NATS/1.0\r\n"[..]);
            for (k, v) in headers {
                h.extend_from_slice(k.as_bytes());
                h.extend_from_slice(b": ");
                h.extend_from_slice(v.as_bytes());
                h.extend_from_slice(b"\r\n");
            }
            h.extend_from_slice(b"\r\n");
            h.freeze()
        });
        self.send(Publish {
            subject: subject.into(),
            reply: reply.map(str::to_string),
            headers,
            payload: payload.into(),
        })
    }

    /// Answer `msg` (a request) on its reply subject.
    ///
    /// # Errors
    ///
    /// As [`publish`](Nats::publish); [`NatsError::Subject`] if `msg` has no reply subject.
    pub fn respond(&self, msg: &NatsMsg, payload: impl Into<Bytes>) -> Result<(), NatsError> {
        let reply = msg
            .reply
            .as_deref()
            .ok_or_else(|| NatsError::Subject("the message has no reply subject".into()))?;
        self.publish(reply, payload)
    }

    /// Subscribe the calling tonic to `subject` (`*` matches one token, `>` the rest), in
    /// queue group `queue` if given (each message goes to one member of the group). Its
    /// messages arrive as [`NatsEvents::on_nats_message`], in order.
    ///
    /// The subscription is registered with the link and sent to the server in the order of
    /// the calls; [`flush`](Nats::flush) after it says when the server has it.
    ///
    /// # Errors
    ///
    /// [`NatsError::Subject`] for an invalid subject or queue name,
    /// [`NatsError::NotConnected`] once the client is closed.
    pub fn subscribe<T: NatsEvents>(
        &self,
        ctx: &mut Ctx<T>,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, NatsError> {
        let handle = ctx.handle();
        let gauge = Arc::new(Gauge::new(self.shared.sub_capacity, self.shared.sub_bytes));
        let pattern = subject.to_string();
        self.subscribe_with(subject, queue, move |msg| {
            let size = msg.payload.len()
                + msg
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
            if !gauge.take_one(&pattern, size) {
                return true;
            }
            let g = gauge.clone();
            let sent = handle.sparkle_named("on_nats_message", move |t, ctx| {
                let dropped = g.taken(size);
                if dropped > 0 {
                    t.on_nats_dropped(ctx, msg.sid, dropped);
                }
                t.on_nats_message(ctx, msg);
            });
            gauge.delivered(&pattern, size, sent)
        })
    }

    /// Subscribe with a function of the link (on the selector thread) that takes each
    /// message; it returns false when its receiver is gone (the subscription then ends).
    pub(crate) fn subscribe_with(
        &self,
        subject: &str,
        queue: Option<&str>,
        deliver: impl FnMut(NatsMsg) -> bool + Send + 'static,
    ) -> Result<Subscription, NatsError> {
        check_subscribe(subject)?;
        if let Some(q) = queue {
            check_publish(q)?;
        }
        let sid = self.shared.next_sid.fetch_add(1, Ordering::Relaxed);
        let route = Route {
            subject: subject.to_string(),
            queue: queue.map(str::to_string),
            deliver: Box::new(deliver),
        };
        if !self.to_link(move |link, _| link.add_sub(sid, route)) {
            return Err(NatsError::NotConnected(Bytes::new()));
        }
        Ok(Subscription {
            sid,
            nats: self.clone(),
        })
    }

    /// Send `payload` to `subject` as a request and give the first reply (or the reason
    /// there is none) to the calling tonic, in `answer`, within `timeout`.
    ///
    /// Errors: [`RequestError::Timeout`], [`RequestError::NoResponders`] (nobody
    /// subscribes to the subject), [`RequestError::NotConnected`] (the link was down, or
    /// dropped before the reply came), [`RequestError::Refused`] (too large, bad subject).
    pub fn request<T, A>(
        &self,
        ctx: &mut Ctx<T>,
        subject: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
        answer: A,
    ) where
        T: Tonic,
        A: FnOnce(&mut T, &mut Ctx<T>, Result<NatsMsg, RequestError>) + Send + 'static,
    {
        let asker = ctx.handle();
        let reply = move |r: Result<NatsMsg, RequestError>| {
            let _ = asker.sparkle_named("nats reply", move |t, ctx| answer(t, ctx, r));
        };
        self.request_with(subject, payload.into(), timeout, Replier::new(reply));
    }

    /// A request whose outcome goes to `reply` (called on the link's thread).
    pub(crate) fn request_with(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
        reply: Replier,
    ) {
        if let Err(e) = check_publish(subject) {
            return reply.give(Err(RequestError::Refused(e.to_string())));
        }
        let token = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        let inbox = format!("{}{token}", self.shared.inbox);
        let p = Publish {
            subject: subject.into(),
            reply: Some(inbox),
            headers: None,
            payload,
        };
        // Registered before the request leaves, so the reply always finds it; published
        // from the calling thread, so it keeps its place among the caller's publishes.
        self.shared
            .requests
            .lock()
            .insert(token, Pending { reply, timer: None });
        if let Err(e) = self.send(p) {
            let why = match e {
                NatsError::NotConnected(_) | NatsError::Backpressure(_) => {
                    RequestError::NotConnected
                }
                other => RequestError::Refused(other.to_string()),
            };
            let pending = self.shared.requests.lock().remove(&token);
            if let Some(p) = pending {
                p.reply.give(Err(why));
            }
            return;
        }
        let armed = self.to_link(move |link, ctx| link.arm_request(ctx, token, timeout));
        if !armed {
            let pending = self.shared.requests.lock().remove(&token);
            drop(pending); // answered NotConnected as it drops
        }
    }

    /// Call `done` on the calling tonic once the server has processed everything sent
    /// before (a `PING` answered by its `PONG`): subscriptions are in place, publishes are
    /// with the server. `false` if the link is down.
    pub fn flush<T, A>(&self, ctx: &mut Ctx<T>, done: A)
    where
        T: Tonic,
        A: FnOnce(&mut T, &mut Ctx<T>, bool) + Send + 'static,
    {
        let asker = ctx.handle();
        let done = move |ok: bool| {
            let _ = asker.sparkle_named("nats flush", move |t, ctx| done(t, ctx, ok));
        };
        let done = Flushed(Some(Box::new(done)));
        self.to_link(move |link, _| link.flush(done));
    }

    /// Tell the calling tonic of every change of the link's state
    /// ([`NatsEvents::on_nats_status`]), starting with the current one.
    pub fn watch_status<T: NatsEvents>(&self, ctx: &mut Ctx<T>) {
        let handle = ctx.handle();
        let watcher = move |s: NatsStatus| {
            handle
                .sparkle_named("on_nats_status", move |t, ctx| t.on_nats_status(ctx, s))
                .is_ok()
        };
        self.to_link(move |link, _| {
            let now = link.status();
            let mut watcher: Watcher = Box::new(watcher);
            if watcher(now) {
                link.watchers.push(watcher);
            }
        });
    }

    /// Close the link: what is queued is written, then the connection closes and stays
    /// closed.
    pub fn close(&self) {
        self.to_link(|_, ctx| ctx.finish());
    }
}

/// How many messages a receiver has been handed and not yet taken, and how many were
/// dropped because it fell that far behind (a slow consumer): memory stays bounded and no
/// drop is silent.
pub(crate) struct Gauge {
    pending: AtomicUsize,
    capacity: usize,
    pending_bytes: AtomicUsize,
    capacity_bytes: usize,
    dropped: AtomicU64,
    dropping: std::sync::atomic::AtomicBool,
}

impl Gauge {
    pub(crate) fn new(capacity: usize, capacity_bytes: usize) -> Gauge {
        Gauge {
            pending: AtomicUsize::new(0),
            capacity: capacity.max(1),
            pending_bytes: AtomicUsize::new(0),
            capacity_bytes: capacity_bytes.max(1),
            dropped: AtomicU64::new(0),
            dropping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Room for one more of `bytes`? If not, it is counted as dropped (and the first of a run
    /// logged). A message over the byte bound alone passes when nothing waits.
    pub(crate) fn take_one(&self, subject: &str, bytes: usize) -> bool {
        let waiting = self.pending.load(Ordering::Acquire);
        let waiting_bytes = self.pending_bytes.load(Ordering::Acquire);
        if waiting < self.capacity
            && (waiting == 0 || waiting_bytes.saturating_add(bytes) <= self.capacity_bytes)
        {
            self.pending.fetch_add(1, Ordering::AcqRel);
            self.pending_bytes.fetch_add(bytes, Ordering::AcqRel);
            return true;
        }
        if waiting >= self.capacity {
            self.dropped_one(subject, self.capacity, "messages wait");
        } else {
            self.dropped_one(subject, self.capacity_bytes, "bytes or more wait");
        }
        false
    }

    /// Count a drop; the first of a run is logged, with the bound it met.
    fn dropped_one(&self, subject: &str, bound: usize, why: &str) {
        self.dropped.fetch_add(1, Ordering::AcqRel);
        if !self.dropping.swap(true, Ordering::AcqRel) {
            log::warn!(
                "nats: a slow consumer on {subject}: {bound} {why}; dropping until it catches up"
            );
        }
    }

    /// The receiver took one (of `bytes`); returns the drops to report to it (0 if none
    /// since the last).
    pub(crate) fn taken(&self, bytes: usize) -> u64 {
        self.pending.fetch_sub(1, Ordering::AcqRel);
        self.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
        if self.dropped.load(Ordering::Acquire) == 0 {
            return 0;
        }
        self.dropping.store(false, Ordering::Release);
        self.dropped.swap(0, Ordering::AcqRel)
    }

    /// The hand-over's outcome: false when the receiver is gone for good. A full mailbox
    /// (a bounded one that rejects) is a drop, counted, not the end of the subscription.
    pub(crate) fn delivered<F>(
        &self,
        subject: &str,
        bytes: usize,
        sent: Result<(), tasktonic_core::SendError<F>>,
    ) -> bool {
        match sent {
            Ok(()) => true,
            Err(tasktonic_core::SendError::Full(_)) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                self.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
                self.dropped_one(
                    subject,
                    self.capacity,
                    "or fewer messages wait, its mailbox is full",
                );
                true
            }
            Err(tasktonic_core::SendError::Completed(_)) => false,
        }
    }
}

/// Where a request's outcome goes: called once, and with `NotConnected` if it is dropped
/// unanswered (the link went away with the request).
pub(crate) struct Replier(Option<ReplyFn>);

type ReplyFn = Box<dyn FnOnce(Result<NatsMsg, RequestError>) + Send>;

impl Replier {
    pub(crate) fn new(f: impl FnOnce(Result<NatsMsg, RequestError>) + Send + 'static) -> Replier {
        Replier(Some(Box::new(f)))
    }

    pub(super) fn give(mut self, outcome: Result<NatsMsg, RequestError>) {
        if let Some(f) = self.0.take() {
            f(outcome);
        }
    }
}

impl Drop for Replier {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(RequestError::NotConnected));
        }
    }
}

/// A flush's callback: called once, with `false` if dropped (the link went away).
pub(super) struct Flushed(Option<Box<dyn FnOnce(bool) + Send>>);

impl Flushed {
    pub(super) fn give(mut self, ok: bool) {
        if let Some(f) = self.0.take() {
            f(ok);
        }
    }
}

impl Drop for Flushed {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_bounds_and_counts() {
        let g = Gauge::new(2, 1000);
        assert!(g.take_one("s", 10));
        assert!(g.take_one("s", 10));
        // Full: the next three are dropped and counted.
        assert!(!g.take_one("s", 10));
        assert!(!g.take_one("s", 10));
        assert!(!g.take_one("s", 10));
        // The receiver takes one: it hears of the three drops, once.
        assert_eq!(g.taken(10), 3);
        assert!(g.take_one("s", 10));
        assert_eq!(g.taken(10), 0);
        // A full mailbox is a counted drop, not the end; a completed tonic is the end.
        assert!(g.delivered::<()>("s", 10, Err(tasktonic_core::SendError::Full(()))));
        assert!(!g.delivered::<()>("s", 10, Err(tasktonic_core::SendError::Completed(()))));
        assert_eq!(g.taken(10), 1);
    }

    #[test]
    fn a_gauge_bounds_bytes_too() {
        let g = Gauge::new(100, 1000);
        assert!(g.take_one("s", 600));
        // 600 + 600 would pass the byte bound: dropped, though few messages wait.
        assert!(!g.take_one("s", 600));
        assert!(g.take_one("s", 400));
        assert_eq!(g.taken(600), 1);
        assert_eq!(g.taken(400), 0);
        // Nothing waits: one message over the bound alone still passes.
        assert!(g.take_one("s", 5000));
        assert!(!g.take_one("s", 1));
        assert_eq!(g.taken(5000), 1);
    }
}
