//! Remote sparkles: typed messages and asks between tonics in different processes, over
//! NATS.
//!
//! A tonic is [exposed](Nats::expose) under a name with the message types it takes; any
//! process connected to the cluster gets a [`Remote`] for that name and
//! [`send`](Remote::send)s those messages (they arrive as ordinary sparkles, through
//! [`Receive`]) or [`ask`](Remote::ask)s questions (answered by [`Respond`], with a timeout
//! and the error kinds of a local ask). Several processes exposing the same name form a
//! queue group: each message goes to one of them. [Presence](Nats::watch_presence) tells a
//! process when others appear and when they stop answering.
//!
//! **The promise.** At most once; in order per sender and receiver while the connection
//! lives (one connection per process, and NATS keeps a publisher's order per subject). A
//! send while the link is down is refused and the message handed back
//! ([`RemoteSendError`]); sends accepted but not yet written when the link drops go out
//! after the reconnect; what was written but not delivered when a link or server failed is
//! lost (NATS core has no acknowledgements). An ask whose link drops fails at once with
//! [`AskError::NoAnswer`].
//!
//! **The wire** (subject `tasktonic.svc.<name>`): one kind byte (0 a message, 1 a
//! question), one byte of type-name length, the type name ([`RemoteMessage::NAME`]), then
//! the value in MessagePack (`rmp-serde`, fields by name). A reply: one status byte (0: the
//! answer in MessagePack follows; 1: an error text follows). Presence beats (subject
//! `tasktonic.presence`): one kind byte (0 hello, 1 beat, 2 bye), the process id (8 bytes,
//! big-endian), its name in UTF-8.

use crate::codec::from_slice_capped;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tasktonic_core::{AskError, Ctx, Handle, Receive, Timer, TimerEvent, Tonic};

use super::handle::{Gauge, random};
use super::{Nats, NatsError, NatsEvents, NatsMsg, RequestError, Subscription};

const SVC: &str = "tasktonic.svc.";
const PRESENCE: &str = "tasktonic.presence";
const TELL: u8 = 0;
const ASK: u8 = 1;

/// A message type that crosses processes: serde both ways, and a name that is the same in
/// every process (the Rust type's path may differ between programs).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tasktonic_net::nats::remote::{RemoteAsk, RemoteMessage};
///
/// #[derive(Serialize, Deserialize)]
/// struct Increment(u64);
/// impl RemoteMessage for Increment {
///     const NAME: &'static str = "increment";
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Total;
/// impl RemoteMessage for Total {
///     const NAME: &'static str = "total";
/// }
/// impl RemoteAsk for Total {
///     type Reply = u64;
/// }
/// ```
pub trait RemoteMessage: Serialize + DeserializeOwned + Send + 'static {
    /// The name on the wire (at most 255 bytes).
    const NAME: &'static str;
}

/// A question that crosses processes, and the type of its answer.
pub trait RemoteAsk: RemoteMessage {
    /// The answer.
    type Reply: Serialize + DeserializeOwned + Send + 'static;
}

/// How an exposed tonic answers a question `Q` (the answer goes back to the asker).
pub trait Respond<Q: RemoteAsk>: Tonic {
    /// Answer `question`.
    fn respond(&mut self, ctx: &mut Ctx<Self>, question: Q) -> Q::Reply;
}

/// A remote send was refused; the message is handed back.
#[derive(Debug)]
#[non_exhaustive]
pub enum RemoteSendError<M> {
    /// The link is down.
    NotConnected(M),
    /// The connection's queue is at its high watermark.
    Backpressure(M),
    /// Over the server's `max_payload`, or an invalid name.
    Refused(M, String),
    /// The message could not be serialized.
    Encode(M, String),
}

impl<M> RemoteSendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            RemoteSendError::NotConnected(m)
            | RemoteSendError::Backpressure(m)
            | RemoteSendError::Refused(m, _)
            | RemoteSendError::Encode(m, _) => m,
        }
    }
}

impl<M> fmt::Display for RemoteSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteSendError::NotConnected(_) => f.write_str("the NATS link is down"),
            RemoteSendError::Backpressure(_) => f.write_str("the NATS connection's queue is full"),
            RemoteSendError::Refused(_, why) => write!(f, "refused: {why}"),
            RemoteSendError::Encode(_, why) => write!(f, "cannot serialize: {why}"),
        }
    }
}

impl<M: fmt::Debug> std::error::Error for RemoteSendError<M> {}

/// The payload of a remote message: kind, type name, MessagePack value.
fn envelope<M: RemoteMessage>(kind: u8, msg: &M) -> Result<Bytes, String> {
    let name = M::NAME.as_bytes();
    let len = u8::try_from(name.len()).map_err(|_| "a type name over 255 bytes".to_string())?;
    let mut out = BytesMut::with_capacity(2 + name.len() + 32);
    out.put_u8(kind);
    out.put_u8(len);
    out.extend_from_slice(name);
    let mut w = out.writer();
    rmp_serde::encode::write_named(&mut w, msg).map_err(|e| e.to_string())?;
    Ok(w.into_inner().freeze())
}

/// Kind, type name and value of a remote message.
fn open(payload: &[u8]) -> Option<(u8, &str, &[u8])> {
    let (&kind, rest) = payload.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if rest.len() < len {
        return None;
    }
    let name = std::str::from_utf8(&rest[..len]).ok()?;
    Some((kind, name, &rest[len..]))
}

fn reply_ok<R: Serialize>(value: &R) -> Bytes {
    let mut out = BytesMut::with_capacity(32);
    out.put_u8(0);
    let mut w = out.writer();
    match rmp_serde::encode::write_named(&mut w, value) {
        Ok(()) => w.into_inner().freeze(),
        Err(e) => reply_err(&format!("the answer cannot be serialized: {e}")),
    }
}

fn reply_err(why: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + why.len());
    out.put_u8(1);
    out.extend_from_slice(why.as_bytes());
    out.freeze()
}

/// What an exposure does with one message type: false when the tonic is gone.
type Entry = Box<dyn FnMut(&NatsMsg, &[u8]) -> bool + Send>;

/// A tonic being exposed under a name: add the message types it takes, then
/// [`start`](Exposure::start).
pub struct Exposure<T: Tonic> {
    nats: Nats,
    name: String,
    handle: Handle<T>,
    entries: HashMap<&'static str, Entry>,
    /// Messages handed to the tonic and not yet taken (every type together).
    gauge: Arc<Gauge>,
}

/// A question's reply subject, answered with an error if the answer is never given (the
/// responder failed while answering).
struct Owed {
    nats: Nats,
    reply: Option<String>,
}

impl Drop for Owed {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            self.nats
                .publish(&reply, reply_err("the responder failed before answering"))
                .ok();
        }
    }
}

/// The exposed tonic's name, for the log.
fn name_for<T: Tonic>(ctx: &Ctx<T>) -> String {
    ctx.name().to_string()
}

/// Say (log) how many messages an exposed tonic lost by falling behind, once it catches up.
fn report_drops(gauge: &Gauge, bytes: usize, who: &str) {
    let dropped = gauge.taken(bytes);
    if dropped > 0 {
        log::warn!("nats: {who} fell behind: {dropped} remote messages were dropped");
    }
}

impl<T: Tonic> fmt::Debug for Exposure<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exposure")
            .field("name", &self.name)
            .field("types", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<T: Tonic> Exposure<T> {
    /// Take messages of type `M`: each arrives as a sparkle, [`Receive::receive`].
    pub fn tell<M: RemoteMessage>(mut self) -> Self
    where
        T: Receive<M>,
    {
        let handle = self.handle.clone();
        let name = self.name.clone();
        let gauge = self.gauge.clone();
        let entry: Entry =
            Box::new(
                move |msg, body| match from_slice_capped::<M>(&mut &body[..]) {
                    Ok(m) => {
                        let size = body.len();
                        if !gauge.take_one(&msg.subject, size) {
                            return true;
                        }
                        let g = gauge.clone();
                        let sent = handle.sparkle_named(M::NAME, move |t, ctx| {
                            report_drops(&g, size, &name_for(ctx));
                            t.receive(ctx, m);
                        });
                        gauge.delivered(&msg.subject, size, sent)
                    }
                    Err(e) => {
                        log::warn!("nats: {name}: a {} that does not decode: {e}", M::NAME);
                        true
                    }
                },
            );
        self.entries.insert(M::NAME, entry);
        self
    }

    /// Answer questions of type `Q` ([`Respond`]).
    pub fn ask<Q: RemoteAsk>(mut self) -> Self
    where
        T: Respond<Q>,
    {
        let handle = self.handle.clone();
        let nats = self.nats.clone();
        let name = self.name.clone();
        let gauge = self.gauge.clone();
        let entry: Entry = Box::new(move |msg, body| {
            let Some(reply) = msg.reply.clone() else {
                log::warn!("nats: {name}: a {} asked without a reply subject", Q::NAME);
                return true;
            };
            match from_slice_capped::<Q>(&mut &body[..]) {
                Ok(q) => {
                    let size = body.len();
                    if !gauge.take_one(&msg.subject, size) {
                        nats.publish(&reply, reply_err("the responder is overloaded"))
                            .ok();
                        return true;
                    }
                    let g = gauge.clone();
                    // Answers with an error if the responder fails (panics) before answering:
                    // the asker hears at once, as from a local ask, not at its timeout.
                    let mut owed = Owed {
                        nats: nats.clone(),
                        reply: Some(reply),
                    };
                    let sent = handle.sparkle_named("respond", move |t, ctx| {
                        report_drops(&g, size, &name_for(ctx));
                        let answer = t.respond(ctx, q);
                        if let Some(reply) = owed.reply.take()
                            && let Err(e) = owed.nats.publish(&reply, reply_ok(&answer))
                        {
                            log::warn!("nats: an answer was not sent: {e}");
                        }
                    });
                    gauge.delivered(&msg.subject, size, sent)
                }
                Err(e) => {
                    let why = format!("a {} that does not decode: {e}", Q::NAME);
                    log::warn!("nats: {name}: {why}");
                    nats.publish(&reply, reply_err(&why)).ok();
                    true
                }
            }
        });
        self.entries.insert(Q::NAME, entry);
        self
    }

    /// Subscribe the tonic under its name (in the queue group of that name). It is exposed
    /// until the subscription ends or the tonic completes.
    ///
    /// # Errors
    ///
    /// [`NatsError::Subject`] for a name that is not a valid subject token sequence.
    pub fn start(self) -> Result<Subscription, NatsError> {
        let Exposure {
            nats,
            name,
            mut entries,
            ..
        } = self;
        let subject = format!("{SVC}{name}");
        let queue = name.clone();
        let replier = nats.clone();
        nats.subscribe_with(&subject, Some(&queue), move |msg| {
            let Some((kind, ty, body)) = open(&msg.payload) else {
                log::warn!("nats: {name}: a message that is not a remote sparkle");
                return true;
            };
            match entries.get_mut(ty) {
                Some(entry) => entry(&msg, body),
                None => {
                    log::warn!("nats: {name} does not take {ty}");
                    if kind == ASK
                        && let Some(reply) = &msg.reply
                    {
                        replier
                            .publish(reply, reply_err(&format!("{name} does not take {ty}")))
                            .ok();
                    }
                    true
                }
            }
        })
    }
}

/// A tonic in another process, by the name it is exposed under.
#[derive(Debug, Clone)]
pub struct Remote {
    nats: Nats,
    subject: Arc<str>,
}

impl Remote {
    /// The name this remote stands for.
    pub fn name(&self) -> &str {
        &self.subject[SVC.len()..]
    }

    /// Send `msg` to the exposed tonic (one member of its queue group).
    ///
    /// # Errors
    ///
    /// The message is handed back: the link is down, the queue is full, it is over the
    /// server's `max_payload`, or it does not serialize.
    pub fn send<M: RemoteMessage>(&self, msg: M) -> Result<(), RemoteSendError<M>> {
        let payload = match envelope(TELL, &msg) {
            Ok(p) => p,
            Err(e) => return Err(RemoteSendError::Encode(msg, e)),
        };
        self.nats
            .publish(&self.subject, payload)
            .map_err(|e| match e {
                NatsError::NotConnected(_) => RemoteSendError::NotConnected(msg),
                NatsError::Backpressure(_) => RemoteSendError::Backpressure(msg),
                other => RemoteSendError::Refused(msg, other.to_string()),
            })
    }

    /// Ask the exposed tonic `question`; `answer` runs on the calling tonic with its reply
    /// or [`AskError::Timeout`] (none within `timeout`) or [`AskError::NoAnswer`] (nobody
    /// exposes the name, the link is down or dropped, the question or answer did not
    /// decode, the responder does not take `Q`).
    pub fn ask<T, Q, A>(&self, ctx: &mut Ctx<T>, question: Q, timeout: Duration, answer: A)
    where
        T: Tonic,
        Q: RemoteAsk,
        A: FnOnce(&mut T, &mut Ctx<T>, Result<Q::Reply, AskError>) + Send + 'static,
    {
        let asker = ctx.handle();
        let give = move |r: Result<Q::Reply, AskError>| {
            let _ = asker.sparkle_named("remote answer", move |t, ctx| answer(t, ctx, r));
        };
        let payload = match envelope(ASK, &question) {
            Ok(p) => p,
            Err(e) => {
                log::warn!("nats: a {} does not serialize: {e}", Q::NAME);
                return give(Err(AskError::NoAnswer));
            }
        };
        let subject = self.subject.clone();
        let reply = move |r: Result<NatsMsg, RequestError>| {
            let outcome = match r {
                Ok(msg) => match msg.payload.split_first() {
                    Some((0, body)) => from_slice_capped::<Q::Reply>(&mut &body[..]).map_err(|e| {
                        log::warn!(
                            "nats: {subject}: an answer to {} that does not decode: {e}",
                            Q::NAME
                        );
                        AskError::NoAnswer
                    }),
                    Some((_, why)) => {
                        log::warn!("nats: {subject}: {}", String::from_utf8_lossy(why));
                        Err(AskError::NoAnswer)
                    }
                    None => Err(AskError::NoAnswer),
                },
                Err(RequestError::Timeout) => Err(AskError::Timeout),
                Err(e) => {
                    log::debug!("nats: {subject}: {e}");
                    Err(AskError::NoAnswer)
                }
            };
            give(outcome);
        };
        self.nats.request_with(
            &self.subject.clone(),
            payload,
            timeout,
            super::handle::Replier::new(reply),
        );
    }
}

impl Nats {
    /// Expose the tonic behind `handle` under `name` (dot-separated tokens, such as
    /// `counter` or `billing.invoices`): add its message types, then start.
    ///
    /// ```ignore
    /// nats.expose("counter", &ctx.handle()).tell::<Increment>().ask::<Total>().start()?;
    /// ```
    pub fn expose<T: Tonic>(&self, name: &str, handle: &Handle<T>) -> Exposure<T> {
        Exposure {
            nats: self.clone(),
            name: name.to_string(),
            handle: handle.clone(),
            entries: HashMap::new(),
            gauge: Arc::new(Gauge::new(self.shared.sub_capacity, self.shared.sub_bytes)),
        }
    }

    /// The tonic exposed under `name`, wherever it runs.
    pub fn remote(&self, name: &str) -> Remote {
        Remote {
            nats: self.clone(),
            subject: format!("{SVC}{name}").into(),
        }
    }

    /// Take part in presence as `name`, and tell the calling tonic when other processes
    /// appear ([`PresenceEvents::on_peer_up`]) and when they leave or stop answering
    /// ([`PresenceEvents::on_peer_down`]: no beat for three intervals). Beats go out every
    /// `every`; a process that starts answers newcomers at once.
    ///
    /// # Errors
    ///
    /// [`NatsError::Spawn`] if the presence tonic could not be spawned (the caller is
    /// finishing).
    pub fn watch_presence<T: PresenceEvents>(
        &self,
        ctx: &mut Ctx<T>,
        name: &str,
        every: Duration,
    ) -> Result<Peer, NatsError> {
        let me = Peer {
            id: random(),
            name: name.to_string(),
        };
        let watcher = PresenceWatcher {
            nats: self.clone(),
            me: me.clone(),
            every: every.max(Duration::from_millis(10)),
            owner: ctx.handle(),
            peers: HashMap::new(),
        };
        ctx.infusion(watcher)
            .spawn()
            .map_err(|e| NatsError::Spawn(e.to_string()))?;
        Ok(me)
    }
}

/// A process taking part in presence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// A random id, new for every run of the process.
    pub id: u64,
    /// The name it gave.
    pub name: String,
}

/// What presence tells the tonic that watches it, "subclass style".
#[allow(unused_variables)] // the defaults ignore their arguments
pub trait PresenceEvents: Tonic {
    /// A process appeared. Default: does nothing.
    fn on_peer_up(&mut self, ctx: &mut Ctx<Self>, peer: &Peer) {}
    /// A process left (said goodbye) or stopped answering. Default: does nothing.
    fn on_peer_down(&mut self, ctx: &mut Ctx<Self>, peer: &Peer) {}
}

const HELLO: u8 = 0;
const BEAT: u8 = 1;
const BYE: u8 = 2;

struct PresenceWatcher<T: PresenceEvents> {
    nats: Nats,
    me: Peer,
    every: Duration,
    owner: Handle<T>,
    peers: HashMap<u64, (Peer, Instant)>,
}

impl<T: PresenceEvents> PresenceWatcher<T> {
    fn beat(&self, kind: u8) {
        let mut out = BytesMut::with_capacity(9 + self.me.name.len());
        out.put_u8(kind);
        out.put_u64(self.me.id);
        out.extend_from_slice(self.me.name.as_bytes());
        // Refused while the link is down: the next beat goes out when it is back.
        let _ = self.nats.publish(PRESENCE, out.freeze());
    }

    fn tell(&self, up: bool, peer: Peer) {
        let _ = self.owner.sparkle_named("presence", move |t, ctx| {
            if up {
                t.on_peer_up(ctx, &peer);
            } else {
                t.on_peer_down(ctx, &peer);
            }
        });
    }
}

impl<T: PresenceEvents> Tonic for PresenceWatcher<T> {
    type State = ();

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Err(e) = self.nats.subscribe(ctx, PRESENCE, None) {
            log::error!("nats presence: {e}");
        }
        // Say hello once the subscription is in place, so the answers are heard.
        self.nats.flush(ctx, |w: &mut Self, _, _| w.beat(HELLO));
        ctx.timer(Timer::repeat(self.every).named("presence"));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _: &TimerEvent) {
        self.beat(BEAT);
        let now = ctx.now();
        let limit = self.every * 3;
        let gone: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, (_, seen))| now.duration_since(*seen) > limit)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some((peer, _)) = self.peers.remove(&id) {
                self.tell(false, peer);
            }
        }
    }

    fn on_finishing(&mut self, _: &mut Ctx<Self>) {
        self.beat(BYE);
    }
}

impl<T: PresenceEvents> NatsEvents for PresenceWatcher<T> {
    fn on_nats_message(&mut self, ctx: &mut Ctx<Self>, msg: NatsMsg) {
        let p = &msg.payload;
        if p.len() < 9 {
            return;
        }
        let kind = p[0];
        let mut id = [0u8; 8];
        id.copy_from_slice(&p[1..9]);
        let id = u64::from_be_bytes(id);
        if id == self.me.id {
            return;
        }
        let name = String::from_utf8_lossy(&p[9..]).into_owned();
        if kind == BYE {
            if let Some((peer, _)) = self.peers.remove(&id) {
                self.tell(false, peer);
            }
            return;
        }
        let now = ctx.now();
        match self.peers.get_mut(&id) {
            Some((_, seen)) => *seen = now,
            None => {
                let peer = Peer { id, name };
                self.peers.insert(id, (peer.clone(), now));
                self.tell(true, peer);
            }
        }
        if kind == HELLO {
            self.beat(BEAT); // the newcomer learns of us at once
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Increment(u64);
    impl RemoteMessage for Increment {
        const NAME: &'static str = "increment";
    }

    #[test]
    fn the_envelope_on_the_wire() {
        let wire = envelope(TELL, &Increment(1)).expect("encodes");
        let (kind, name, body) = open(&wire).expect("opens");
        assert_eq!((kind, name), (TELL, "increment"));
        assert_eq!(
            rmp_serde::from_slice::<Increment>(body).expect("decodes"),
            Increment(1)
        );
        // The bytes docs/distributed.md shows.
        assert_eq!(&wire[..], b"\x00\x09increment\x01");
        assert_eq!(open(b""), None);
        assert_eq!(open(b"\x00\x09incr"), None);
        assert_eq!(reply_err("no")[..], b"\x01no"[..]);
        assert_eq!(reply_ok(&7u64)[..], [0, 7]);
    }
}
