//! TLS on a connection: starting it on a connected socket (at once, or as an upgrade at a
//! message boundary), reporting the handshake, writing the transport's own records, and
//! `close_notify` before shutting down. See `docs/tls.md`.

use tasktonic_core::Ctx;

use super::{TcpConnection, TimerKind};
use crate::protocol::Protocol;
use crate::tcp::switch::{Handoff, Parts, Switch};
use crate::tcp::{CloseReason, ConnState, TcpEvents};
use crate::transport::Tls;
#[cfg(feature = "tls")]
use crate::transport::{TlsError, Transport, TransportError};

impl<P: Protocol, B: TcpEvents<P::Message>> TcpConnection<P, B> {
    /// Put TLS on the connected socket and start the handshake (a client writes its hello).
    #[cfg(feature = "tls")]
    pub(super) fn start_tls(&mut self, ctx: &mut Ctx<Self>, tls: Option<Tls>) {
        let Some(tls) = tls else {
            return;
        };
        match Transport::with_tls(&tls) {
            Ok(transport) => self.transport = transport,
            Err(TransportError::Tls(e)) => return self.lost(ctx, CloseReason::Tls(e)),
        }
        self.conn.set_tls(true);
        self.securing = true;
        if self.phase.is_none() {
            // An upgrade's handshake is bounded like a new connection's.
            let timeout = self.config.connect_timeout;
            self.set_phase_timer(ctx, TimerKind::Connect, timeout);
        }
        if self.push_transport(ctx) {
            self.read(ctx);
        }
    }

    #[cfg(not(feature = "tls"))]
    pub(super) fn start_tls(&mut self, _ctx: &mut Ctx<Self>, tls: Option<Tls>) {
        if let Some(never) = tls {
            match never {}
        }
    }

    /// Write the records the transport holds (handshake messages, alerts). False if the
    /// connection was lost meanwhile.
    pub(super) fn push_transport(&mut self, ctx: &mut Ctx<Self>) -> bool {
        #[cfg(feature = "tls")]
        if let (Some(stream), Some(tls)) = (self.stream.as_mut(), self.transport.tls())
            && let Err(e) = tls.push(stream)
        {
            self.lost(ctx, CloseReason::Io(e));
            return false;
        }
        let _ = ctx;
        true
    }

    /// The handshake completed: tell the base; a new connection is now up, an upgraded one
    /// writes what waited for it.
    pub(super) fn secured(&mut self, ctx: &mut Ctx<Self>) {
        self.securing = false;
        #[cfg(feature = "tls")]
        if let Some(tls) = self.transport.tls() {
            let session = tls.session();
            log::debug!(
                "{}: TLS up: {} {} alpn {:?}",
                self.conn.id(),
                session.version,
                session.cipher_suite,
                session.alpn
            );
            self.event("on_secured", move |b, ctx, conn| {
                b.on_secured(ctx, conn, &session)
            });
        }
        if self.conn.state() == ConnState::Connecting {
            if let Some(peer) = self.conn.peer() {
                self.up(ctx, peer);
            }
        } else {
            if matches!(self.phase, Some((_, TimerKind::Connect))) {
                self.clear_phase_timer(ctx);
            }
            self.flush(ctx);
        }
    }

    /// A connection dropped for a reason of ours (a timeout, a protocol error) tells a TLS
    /// peer with `close_notify`, best effort, so that it does not see truncation. Not after
    /// `abort()` (a drop) or an I/O error (the socket is gone), nor in a handshake.
    pub(super) fn say_goodbye(&mut self, reason: &CloseReason) {
        if matches!(reason, CloseReason::Aborted | CloseReason::Io(_)) || self.securing {
            return;
        }
        #[cfg(feature = "tls")]
        if let (Some(stream), Some(tls)) = (self.stream.as_mut(), self.transport.tls()) {
            tls.close_notify();
            if let Err(e) = tls.push(stream) {
                log::debug!("{}: close_notify not sent: {e}", self.conn.id());
            }
        }
    }

    /// Before our side shuts down: TLS sends `close_notify`. False while it waits for the
    /// writable event, or if the connection was lost.
    pub(super) fn end_transport(&mut self, ctx: &mut Ctx<Self>) -> bool {
        #[cfg(feature = "tls")]
        if let (Some(stream), Some(tls)) = (self.stream.as_mut(), self.transport.tls()) {
            tls.close_notify();
            match tls.push(stream) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    self.lost(ctx, CloseReason::Io(e));
                    return false;
                }
            }
        }
        let _ = ctx;
        true
    }

    /// After a flush: make a requested switch (a TLS upgrade, or another protocol) once every
    /// message before its boundary is written and the base has consumed everything it was
    /// given (so that anything it was given past the boundary has been seen).
    pub(super) fn continue_switch(&mut self, ctx: &mut Ctx<Self>) {
        if !self.out.is_empty() || self.conn.unconsumed() > 0 || self.securing {
            return;
        }
        let Some(to) = self.conn.take_switch() else {
            return;
        };
        let past_boundary = self.conn.end_upgrade();
        match to {
            Switch::Protocol(handoff) => self.hand_off(ctx, handoff, past_boundary),
            #[cfg(feature = "tls")]
            Switch::Tls(tls) => {
                // From here on, what waits was meant for TLS: never re-sent in the clear.
                self.upgraded = true;
                if past_boundary || !self.inbuf.is_empty() {
                    log::warn!(
                        "{} ({:?}): data past the TLS upgrade's boundary; closing",
                        self.conn.id(),
                        self.conn.peer()
                    );
                    return self.lost(ctx, CloseReason::Tls(TlsError::DataPastUpgrade));
                }
                if self.peer_closed {
                    // Nobody to shake hands with: the peer's end closes the connection.
                    return self.closed(ctx, CloseReason::PeerClosed);
                }
                self.start_tls(ctx, Some(tls));
            }
            #[cfg(not(feature = "tls"))]
            Switch::Tls(never) => match never {},
        }
    }

    /// Give the socket, its transport and the unread bytes to the new protocol's connection;
    /// this one ends (`CloseReason::Switched`).
    fn hand_off(&mut self, ctx: &mut Ctx<Self>, handoff: Box<dyn Handoff>, past_boundary: bool) {
        if past_boundary {
            let why = "the peer sent data past the switch's boundary";
            log::warn!(
                "{} ({:?}): {why}; closing",
                self.conn.id(),
                self.conn.peer()
            );
            handoff.fail(why.to_string());
            return self.lost(ctx, CloseReason::SwitchFailed(why.to_string()));
        }
        let (Some(mut stream), Some(token), Some(peer)) =
            (self.stream.take(), self.token.take(), self.conn.peer())
        else {
            handoff.fail("the connection was lost first".to_string());
            return self.lost(
                ctx,
                CloseReason::SwitchFailed("the connection was lost first".to_string()),
            );
        };
        self.selector.deregister(&mut stream, token);
        // Readiness that came for this handler is the new one's to find (it reads at once).
        self.conn.take_ready();
        handoff.hand_off(Parts {
            selector: self.selector.clone(),
            stream,
            transport: std::mem::take(&mut self.transport),
            inbuf: std::mem::take(&mut self.inbuf),
            config: self.config.clone(),
            peer,
            watchers: self.conn.take_watchers(),
        });
        log::debug!("{}: handed to another protocol", self.conn.id());
        self.set_final();
        self.finally_closed(ctx, CloseReason::Switched);
    }
}
