//! [`ConnEnded`]: the notice a connection's watchers get when it goes down — Kamaelia's
//! `signal` outbox, for any tonic besides the base. The base keeps its own, richer event
//! ([`TcpEvents::on_disconnected`](super::TcpEvents::on_disconnected), with the unsent
//! messages); a watcher learns only when, why and whether a reconnect follows.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tasktonic_core::{Handle, Receive, TonicId};

use super::{CloseReason, ConnId};

/// A connection went down: what its watchers ([`Conn::watch`](super::Conn::watch)) receive,
/// as a typed message on their own catalyst.
///
/// A client that reconnects sends one notice per lost connection (`reconnecting` true) and a
/// last one when it gives up or is closed; a server-side connection sends one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnEnded {
    /// The connection (a reconnecting client keeps its id).
    pub conn: ConnId,
    /// The peer it was connected to, if it got that far.
    pub peer: Option<SocketAddr>,
    /// Why it went down: the same reason its base got in `on_disconnected`.
    pub reason: Arc<CloseReason>,
    /// When it went down.
    pub at: SystemTime,
    /// True if the connection's reconnect policy will try again (more notices follow); false
    /// when this is its end for good.
    pub reconnecting: bool,
}

impl fmt::Display for ConnEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.conn)?;
        if let Some(peer) = self.peer {
            write!(f, " ({peer})")?;
        }
        write!(f, ": {}", self.reason)?;
        if self.reconnecting {
            f.write_str("; reconnecting")?;
        }
        Ok(())
    }
}

/// Delivers a notice to one watcher; false once the watcher has completed.
type Deliver = Box<dyn Fn(ConnEnded) -> bool + Send>;

/// One watcher: its id (to unwatch) and how to reach it.
pub(crate) type Watcher = (TonicId, Deliver);

/// A connection's watchers, and its end once it has ended for good (a watcher that comes
/// later hears of it at once).
#[derive(Default)]
pub(crate) struct Watchers {
    list: Vec<Watcher>,
    ended: Option<ConnEnded>,
}

impl Watchers {
    /// Add `watcher` (once: watching again changes nothing). If the connection has ended for
    /// good, the watcher hears of it now instead.
    pub(crate) fn add<T: Receive<ConnEnded>>(&mut self, watcher: &Handle<T>) {
        if let Some(ended) = &self.ended {
            deliver(watcher, ended.clone());
            return;
        }
        if self.list.iter().any(|(id, _)| *id == watcher.id()) {
            return;
        }
        let handle = watcher.clone();
        self.list
            .push((watcher.id(), Box::new(move |ended| deliver(&handle, ended))));
    }

    /// Remove the watcher with this id; true if it was watching.
    pub(crate) fn remove(&mut self, id: TonicId) -> bool {
        let before = self.list.len();
        self.list.retain(|(w, _)| *w != id);
        self.list.len() != before
    }

    /// Tell every watcher; those that have completed are forgotten. After an end for good,
    /// the list is emptied and the notice kept for late watchers.
    pub(crate) fn tell(&mut self, ended: &ConnEnded) {
        self.list.retain(|(_, deliver)| deliver(ended.clone()));
        if !ended.reconnecting {
            self.list.clear();
            self.ended = Some(ended.clone());
        }
    }

    /// Move the watchers to another connection (a protocol switch: the session goes on there).
    pub(crate) fn take(&mut self) -> Vec<Watcher> {
        std::mem::take(&mut self.list)
    }

    /// Watchers moved here from the connection this one replaced.
    pub(crate) fn adopt(&mut self, moved: Vec<Watcher>) {
        for (id, deliver) in moved {
            if let Some(ended) = &self.ended {
                deliver(ended.clone());
            } else if !self.list.iter().any(|(w, _)| *w == id) {
                self.list.push((id, deliver));
            }
        }
    }
}

/// Send the notice; false if the watcher has completed. A full mailbox (a bounded one that
/// rejects) loses the notice: that is logged, never silent.
fn deliver<T: Receive<ConnEnded>>(watcher: &Handle<T>, ended: ConnEnded) -> bool {
    match watcher.send(ended) {
        Ok(()) => true,
        Err(e) if e.is_completed() => false,
        Err(e) => {
            let ended = e.into_inner();
            log::warn!(
                "{}: the notice of its end was not delivered to {} {} (its mailbox is full)",
                ended.conn,
                watcher.id(),
                watcher.name()
            );
            true
        }
    }
}
