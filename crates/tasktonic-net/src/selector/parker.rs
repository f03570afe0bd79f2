//! The selector's parker: blocks in `mio::Poll::poll`, dispatches readiness to routes.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};
use parking_lot::Mutex;
use slab::Slab;
use tasktonic_core::extend::{Parker, Unpark};

use super::{Ready, SelectorShared};

const WAKER: Token = Token(usize::MAX);

pub(crate) struct PollParker {
    poll: Poll,
    events: Events,
    shared: Arc<SelectorShared>,
}

impl PollParker {
    pub(crate) fn new() -> io::Result<PollParker> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(PollParker {
            poll,
            events: Events::with_capacity(1024),
            shared: Arc::new(SelectorShared {
                registry,
                waker,
                routes: Mutex::new(Slab::new()),
            }),
        })
    }

    /// What it shares with the selector's handlers (registry, waker, routes).
    pub(crate) fn shared(&self) -> Arc<SelectorShared> {
        self.shared.clone()
    }

    fn poll_once(&mut self, timeout: Option<Duration>) {
        // Handlers waiting for their turn are ready work: look at I/O without blocking, and
        // give them their turn behind what this poll makes ready.
        let turns = super::local::take_turns();
        let timeout = if turns.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("selector poll failed: {e}");
                }
                for again in turns {
                    again(); // not lost: they read again now
                }
                return;
            }
        }
        for event in self.events.iter() {
            if event.token() == WAKER {
                continue;
            }
            let route = self.shared.routes.lock().get(event.token().0).cloned();
            if let Some(route) = route {
                route(Ready {
                    readable: event.is_readable() || event.is_read_closed(),
                    writable: event.is_writable() || event.is_write_closed(),
                    error: event.is_error(),
                    read_closed: event.is_read_closed(),
                });
            }
        }
        for again in turns {
            again();
        }
    }
}

impl Parker for PollParker {
    fn park(&mut self, timeout: Option<Duration>) {
        self.poll_once(timeout);
    }

    fn poll(&mut self) {
        self.poll_once(Some(Duration::ZERO));
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.shared.clone()
    }
}
