//! How long a connection keeps its buffers: a busy one keeps them between exchanges, an
//! idle one holds none (`docs/networking.md`, "Back-pressure, both ways").

use std::collections::VecDeque;

use bytes::BytesMut;
use tasktonic_core::Ctx;

use super::{TcpConnection, TimerKind};
use crate::protocol::Protocol;
use crate::tcp::TcpEvents;

/// A flush (or a read) of at least this many messages marks a busy connection, which keeps
/// its write (read) buffers.
pub(super) const BUSY_FLUSH: usize = 8;
/// How long a busy connection that went quiet keeps its buffers (one to two periods).
const TRIM_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

impl<P: Protocol, B: TcpEvents<P::Message>> TcpConnection<P, B> {
    /// A busy read or flush keeps its buffers for the next one; a timer frees them once the
    /// connection has been idle for a whole [`TRIM_PERIOD`] (so a connection that goes quiet
    /// after a burst holds no buffers for long).
    pub(super) fn keep_buffers(&mut self, ctx: &mut Ctx<Self>) {
        self.busy_lately = true;
        if self.trim.is_none() && self.closing.is_none() {
            self.trim = Some(ctx.timer(TimerKind::Trim.repeat(TRIM_PERIOD)));
        }
    }

    /// The trim timer: free the buffers unless the connection was busy since the last tick.
    pub(super) fn trim_buffers(&mut self, ctx: &mut Ctx<Self>) {
        if std::mem::take(&mut self.busy_lately) {
            return;
        }
        if let Some(id) = self.trim.take() {
            ctx.cancel_timer(id);
        }
        if self.inbuf.is_empty() {
            self.inbuf = BytesMut::new();
        }
        if self.out.is_empty() {
            self.out = BytesMut::new();
        }
        if self.inflight.is_empty() {
            self.inflight = VecDeque::new();
        }
        self.spare = VecDeque::new();
    }
}
