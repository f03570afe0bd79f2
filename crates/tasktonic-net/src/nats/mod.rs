//! NATS as tonics: one client connection per process, on the selector, shared by every
//! tonic through a [`Nats`] handle — publish, subscribe (with `*`/`>` wildcards and queue
//! groups), request–reply — and remote sparkles on top of it ([`remote`]): a tonic exposed
//! under a name receives typed messages and asks from any process connected to the
//! cluster.
//!
//! We ride NATS (clustering, request–reply and queue groups are its own) instead of a
//! home-made cluster. The wire is the NATS client protocol (text control lines, binary
//! payloads), written here as a protocol on the connection layers. See
//! `docs/distributed.md`.

mod client;
mod handle;
mod link;
pub mod remote;
mod subject;
mod wire;

use std::fmt;

use bytes::Bytes;
use tasktonic_core::{Ctx, Tonic};

pub use self::client::NatsClient;
pub use self::handle::{Nats, Subscription};
pub use self::wire::{NatsMsg, NatsWire, ServerInfo};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use self::wire::{fuzz_protocol, fuzz_show};

impl NatsMsg {
    /// The id of the subscription it came on ([`Subscription::sid`]).
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// The first header field called `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The state of the link to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NatsStatus {
    /// Dialling for the first time.
    Connecting = 0,
    /// Up: publishes flow, subscriptions are in place.
    Connected = 1,
    /// The connection dropped; dialling again (publishes are refused meanwhile).
    Reconnecting = 2,
    /// The server sent `-ERR` (an authorization failure, a permission violation; the
    /// server usually closes the connection next).
    Error = 3,
    /// Closed for good: [`Nats::close`], the owner finished, or the reconnect policy gave up.
    Closed = 4,
}

impl NatsStatus {
    pub(crate) fn from_u8(v: u8) -> NatsStatus {
        match v {
            0 => NatsStatus::Connecting,
            1 => NatsStatus::Connected,
            2 => NatsStatus::Reconnecting,
            3 => NatsStatus::Error,
            _ => NatsStatus::Closed,
        }
    }
}

/// Why a publish was refused; the payload is handed back where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsError {
    /// The link is down (connecting, reconnecting or closed).
    NotConnected(Bytes),
    /// The connection's queue is at its high watermark.
    Backpressure(Bytes),
    /// Over the server's `max_payload`.
    TooLarge(Bytes),
    /// An invalid subject or queue group name.
    Subject(String),
    /// A value could not be serialized.
    Encode(String),
    /// A helper tonic could not be spawned (its owner is finishing).
    Spawn(String),
    /// A header field that cannot be sent (a name with `:` or whitespace, a line break).
    Header(String),
}

impl NatsError {
    /// The payload that was not sent, if the error holds one.
    pub fn into_payload(self) -> Option<Bytes> {
        match self {
            NatsError::NotConnected(b) | NatsError::Backpressure(b) | NatsError::TooLarge(b) => {
                Some(b)
            }
            _ => None,
        }
    }
}

impl fmt::Display for NatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsError::NotConnected(_) => f.write_str("the NATS link is down"),
            NatsError::Backpressure(_) => f.write_str("the NATS connection's queue is full"),
            NatsError::TooLarge(b) => {
                write!(
                    f,
                    "a payload of {} bytes is over the server's max_payload",
                    b.len()
                )
            }
            NatsError::Subject(why) => write!(f, "invalid subject: {why}"),
            NatsError::Encode(why) => write!(f, "cannot serialize: {why}"),
            NatsError::Spawn(why) => write!(f, "cannot spawn: {why}"),
            NatsError::Header(why) => write!(f, "invalid header field: {why}"),
        }
    }
}

impl std::error::Error for NatsError {}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// No reply within the timeout.
    Timeout,
    /// Nobody subscribes to the subject (the server said so at once).
    NoResponders,
    /// The link was down, or dropped before the reply came.
    NotConnected,
    /// The request could not be sent (an invalid subject, over `max_payload`).
    Refused(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Timeout => f.write_str("no reply within the timeout"),
            RequestError::NoResponders => f.write_str("no responders for the subject"),
            RequestError::NotConnected => f.write_str("the NATS link is down"),
            RequestError::Refused(why) => write!(f, "the request was refused: {why}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// What NATS tells a tonic that subscribed ([`Nats::subscribe`]) or watches the link
/// ([`Nats::watch_status`]), "subclass style": both have default bodies.
#[allow(unused_variables)] // the defaults ignore their arguments
pub trait NatsEvents: Tonic {
    /// A message on one of this tonic's subscriptions ([`NatsMsg::sid`] says which).
    /// Default: does nothing.
    fn on_nats_message(&mut self, ctx: &mut Ctx<Self>, msg: NatsMsg) {}

    /// `dropped` messages of subscription `sid` were dropped because this tonic fell more
    /// than [`NatsClient::subscription_capacity`] behind (told before the next message it
    /// gets). Default: does nothing (the first drop of a run is logged).
    fn on_nats_dropped(&mut self, ctx: &mut Ctx<Self>, sid: u64, dropped: u64) {}

    /// The link changed state. Default: does nothing.
    fn on_nats_status(&mut self, ctx: &mut Ctx<Self>, status: NatsStatus) {}
}
