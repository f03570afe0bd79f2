//! The selector: a catalyst that parks in `mio::Poll` (TaskTonic's SelectorService).
//!
//! Socket-handler tonics live on the selector catalyst and register their sockets here. When
//! the catalyst is idle it blocks in `poll`; a sparkle from another thread wakes it through a
//! `mio::Waker` (only when it is parked). On readiness the selector enqueues a local sparkle to
//! the socket's tonic, which reads and writes inline on the same thread.
//!
//! The selector catalyst behaves as a service: it starts with the first socket handler placed
//! on it and its thread ends with the last one.

pub(crate) mod local;
mod parker;

use std::fmt;
use std::io;
use std::sync::Arc;

use mio::event::Source;
use mio::{Interest, Token};
use parking_lot::Mutex;
use slab::Slab;
use tasktonic_core::extend::{OpenError, Parker, open_catalyst};
use tasktonic_core::{Catalyst, Ctx, Tonic};

pub(crate) use self::parker::PollParker;

/// The default selector catalyst's name.
pub const DEFAULT_SELECTOR: &str = "selector";

/// What a registered socket is ready for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready {
    /// Readable (or read-closed: a read will tell).
    pub readable: bool,
    /// Writable (or write-closed: a write will tell).
    pub writable: bool,
    /// An error is pending on the socket.
    pub error: bool,
    /// The peer closed its side, or the connection broke (`EPOLLRDHUP`/`EPOLLHUP`): a reader
    /// must read on to the end of the stream, not stop at a short read.
    pub read_closed: bool,
}

impl Ready {
    pub(crate) const ALL: Ready = Ready {
        readable: true,
        writable: true,
        error: false,
        read_closed: false,
    };

    /// As a bit set (0: nothing), to accumulate in an atomic.
    pub(crate) fn bits(self) -> u8 {
        u8::from(self.readable)
            | u8::from(self.writable) << 1
            | u8::from(self.error) << 2
            | u8::from(self.read_closed) << 3
    }

    /// From [`bits`](Ready::bits).
    pub(crate) fn from_bits(bits: u8) -> Ready {
        Ready {
            readable: bits & 1 != 0,
            writable: bits & 2 != 0,
            error: bits & 4 != 0,
            read_closed: bits & 8 != 0,
        }
    }
}

type Route = Arc<dyn Fn(Ready) + Send + Sync>;

/// What the selector's poller and the socket handlers share.
pub(crate) struct SelectorShared {
    registry: mio::Registry,
    waker: mio::Waker,
    routes: Mutex<Slab<Route>>,
}

impl tasktonic_core::extend::Unpark for SelectorShared {
    fn unpark(&self) {
        if let Err(e) = self.waker.wake() {
            log::error!("selector waker failed: {e}");
        }
    }
}

/// A handle to a selector catalyst: where socket handlers run and register their sockets.
#[derive(Clone)]
pub struct Selector {
    shared: Arc<SelectorShared>,
    catalyst: Catalyst,
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector({})", self.catalyst.name())
    }
}

impl Selector {
    /// The selector catalyst called `name`, created (with its `mio::Poll`) on first use.
    ///
    /// # Errors
    ///
    /// The OS refused a poller, or a plain catalyst already has that name.
    pub fn open<T: Tonic>(ctx: &mut Ctx<T>, name: &str) -> io::Result<Selector> {
        let opened = open_catalyst(ctx, name, || {
            let parker = PollParker::new()?;
            let shared = parker.shared();
            Ok::<_, io::Error>((Box::new(parker) as Box<dyn Parker>, shared))
        });
        let (catalyst, shared) = opened.map_err(|e| match e {
            OpenError::Parker(e) => e,
            OpenError::OtherKind(_) => {
                io::Error::other(format!("catalyst {name:?} exists and is not a selector"))
            }
        })?;
        Ok(Selector { shared, catalyst })
    }

    /// A pool of `n` selectors (0: one per core, as `std::thread::available_parallelism`
    /// says): `"selector"`, `"selector-1"`, … — each a catalyst of its own, a thread polling
    /// its own sockets. A listener spreads its connections over one with
    /// [`TcpServer::selectors`](crate::TcpServer::selectors).
    ///
    /// # Errors
    ///
    /// As [`open`](Selector::open), for any of them.
    pub fn pool<T: Tonic>(ctx: &mut Ctx<T>, n: usize) -> io::Result<Vec<Selector>> {
        Selector::pool_named(ctx, DEFAULT_SELECTOR, n)
    }

    /// [`pool`](Selector::pool) with `name` for the first selector, `name-1`, … for the rest.
    pub(crate) fn pool_named<T: Tonic>(
        ctx: &mut Ctx<T>,
        name: &str,
        n: usize,
    ) -> io::Result<Vec<Selector>> {
        let n = match n {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        };
        (0..n)
            .map(|i| match i {
                0 => Selector::open(ctx, name),
                i => Selector::open(ctx, &format!("{name}-{i}")),
            })
            .collect()
    }

    /// The default selector, `"selector"`.
    ///
    /// # Errors
    ///
    /// As [`open`](Selector::open).
    pub fn default_for<T: Tonic>(ctx: &mut Ctx<T>) -> io::Result<Selector> {
        Selector::open(ctx, DEFAULT_SELECTOR)
    }

    /// The selector catalyst's name.
    pub fn catalyst(&self) -> &str {
        self.catalyst.name()
    }

    /// The selector catalyst, to place socket handlers on (`Infusion::on`).
    pub fn place(&self) -> &Catalyst {
        &self.catalyst
    }

    /// Register `source` (edge-triggered, read and write); readiness calls `route`.
    pub(crate) fn register(
        &self,
        source: &mut impl Source,
        interest: Interest,
        route: impl Fn(Ready) + Send + Sync + 'static,
    ) -> io::Result<Token> {
        let key = self.shared.routes.lock().insert(Arc::new(route));
        let token = Token(key);
        if let Err(e) = self.shared.registry.register(source, token, interest) {
            self.shared.routes.lock().remove(key);
            return Err(e);
        }
        Ok(token)
    }

    /// Change what `source`, registered under `token`, is reported ready for.
    pub(crate) fn reregister(
        &self,
        source: &mut impl Source,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.shared.registry.reregister(source, token, interest)
    }

    /// Deregister `source` and forget its route.
    pub(crate) fn deregister(&self, source: &mut impl Source, token: Token) {
        if let Err(e) = self.shared.registry.deregister(source) {
            log::debug!("deregister: {e}");
        }
        let mut routes = self.shared.routes.lock();
        if routes.contains(token.0) {
            routes.remove(token.0);
        }
    }

    /// Registered sockets (for tests and diagnostics).
    pub fn registered(&self) -> usize {
        self.shared.routes.lock().len()
    }
}
