//! Liveness (ninjaTCP, socktools): a peer that sends nothing for a while is declared dead,
//! and a connection that sent nothing for a while sends a heartbeat.
//!
//! No clock is read and no timer is re-armed per message: the read and delivery paths only
//! count (`read_total`, `delivered_total`), and a repeating check every quarter of the
//! shortest timeout compares the counts with the last check. A peer is declared dead between
//! T and 1.25 T after the last byte (or message) it sent.

use std::time::Duration;

use tasktonic_core::{Ctx, TimerId};

use super::{TcpConnection, TimerKind};
use crate::protocol::Protocol;
use crate::tcp::{CloseReason, ConnState, TcpEvents};

/// A connection's liveness timers and what they last saw.
pub(super) struct Liveness {
    check: Option<TimerId>,
    heartbeat: Option<TimerId>,
    /// The check's period.
    period: Duration,
    seen_bytes: u64,
    seen_messages: u64,
    /// How long no byte (no message) has arrived, in whole check periods.
    quiet_bytes: Duration,
    quiet_messages: Duration,
    /// `written` at the last heartbeat tick.
    seen_written: u64,
    /// `written` at the last check, and how long output has waited without progress.
    checked_written: u64,
    quiet_writes: Duration,
    /// The shorter of the receive and message timeouts: how long output may wait for a
    /// peer that takes none of it.
    stall_after: Option<Duration>,
}

impl<P: Protocol, B: TcpEvents<P::Message>> TcpConnection<P, B> {
    /// Arm the liveness timers the config asks for (on every connect).
    pub(super) fn start_liveness(&mut self, ctx: &mut Ctx<Self>) {
        let config = &self.config;
        let shortest = [config.recv_timeout, config.message_timeout]
            .into_iter()
            .flatten()
            .filter(|t| !t.is_zero())
            .min();
        if shortest.is_none() && config.heartbeat.is_none() {
            return;
        }
        let period = shortest.map_or(Duration::ZERO, |t| (t / 4).max(Duration::from_millis(1)));
        let heartbeat = config.heartbeat.filter(|h| !h.is_zero());
        let mut liveness = Liveness {
            check: None,
            heartbeat: None,
            period,
            seen_bytes: self.read_total,
            seen_messages: self.delivered_total,
            quiet_bytes: Duration::ZERO,
            quiet_messages: Duration::ZERO,
            seen_written: self.written,
            checked_written: self.written,
            quiet_writes: Duration::ZERO,
            stall_after: shortest,
        };
        if shortest.is_some() {
            liveness.check = Some(ctx.timer(TimerKind::Liveness.repeat(period)));
        }
        if let Some(every) = heartbeat {
            liveness.heartbeat = Some(ctx.timer(TimerKind::Heartbeat.repeat(every)));
        }
        self.liveness = Some(Box::new(liveness));
    }

    pub(super) fn stop_liveness(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(liveness) = self.liveness.take() {
            for id in [liveness.check, liveness.heartbeat].into_iter().flatten() {
                ctx.cancel_timer(id);
            }
        }
    }

    /// The periodic check: has the peer sent anything since the last one, and taken
    /// anything of what waits for it?
    pub(super) fn check_liveness(&mut self, ctx: &mut Ctx<Self>) {
        let Some(reason) = self.liveness_verdict() else {
            return;
        };
        log::info!(
            "{} ({:?}): {reason}; declared dead",
            self.conn.id(),
            self.conn.peer()
        );
        self.lost(ctx, reason);
    }

    /// Count this check period in; the reason to drop the peer, if it has run out of time.
    fn liveness_verdict(&mut self) -> Option<CloseReason> {
        let (read_total, delivered_total, written) =
            (self.read_total, self.delivered_total, self.written);
        // Output waits (a short write left bytes, or the queue holds messages) and none of it
        // went out since the last check: the peer does not read.
        let waiting = !self.out.is_empty() || self.conn.queued() > 0;
        // While we do not read (the base's window is full, a switch waits, the protocol
        // paused), the peer's silence is ours: it is not counted.
        let reading = !self.window_full && !self.held && !self.conn.upgrading();
        let connected = self.conn.state() == ConnState::Connected;
        let on = |t: Option<Duration>| t.filter(|t| !t.is_zero());
        let (recv_timeout, message_timeout) = (
            on(self.config.recv_timeout),
            on(self.config.message_timeout),
        );
        let l = self.liveness.as_mut()?;
        if waiting && written == l.checked_written {
            l.quiet_writes += l.period;
        } else {
            l.quiet_writes = Duration::ZERO;
        }
        l.checked_written = written;
        if let Some(t) = l.stall_after
            && l.quiet_writes >= t
            && connected
        {
            return Some(CloseReason::SendStalled(t));
        }
        if !reading {
            l.quiet_bytes = Duration::ZERO;
            l.quiet_messages = Duration::ZERO;
            return None;
        }
        if read_total == l.seen_bytes {
            l.quiet_bytes += l.period;
        } else {
            l.seen_bytes = read_total;
            l.quiet_bytes = Duration::ZERO;
        }
        if delivered_total == l.seen_messages {
            l.quiet_messages += l.period;
        } else {
            l.seen_messages = delivered_total;
            l.quiet_messages = Duration::ZERO;
        }
        if !connected {
            return None; // closing: the linger bounds it
        }
        match (recv_timeout, message_timeout) {
            (Some(t), _) if l.quiet_bytes >= t => Some(CloseReason::RecvTimeout(t)),
            (_, Some(t)) if l.quiet_messages >= t => Some(CloseReason::MessageTimeout(t)),
            _ => None,
        }
    }

    /// The heartbeat timer: if nothing was written since its last tick (and nothing waits,
    /// and no TLS upgrade or handshake is under way), write the protocol's heartbeat.
    pub(super) fn heartbeat(&mut self, ctx: &mut Ctx<Self>) {
        let written = self.written;
        let Some(l) = self.liveness.as_mut() else {
            return;
        };
        let idle = written == l.seen_written;
        l.seen_written = written;
        if !idle
            || self.conn.upgrading()
            || self.conn.state() != ConnState::Connected
            || !self.out.is_empty()
            || self.conn.queued() > 0
            || !self.flushable()
        {
            return;
        }
        if self.protocol.heartbeat(&mut self.out) {
            log::trace!("{}: heartbeat", self.conn.id());
            self.flush(ctx);
            if let Some(l) = self.liveness.as_mut() {
                l.seen_written = self.written;
            }
        }
    }
}
