//! The remote log's own small app: a tonic on its selector that dials the viewer, sends the
//! session header on every connection, then the backlog, and reconnects by itself.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use tasktonic_core::{Ctx, Timer, TimerEvent, TimerId, Tonic, TonicRef};

use super::{LogReport, Shared};
use crate::codec::LengthDelimited;
use crate::selector::Selector;
use crate::tcp::{CloseReason, Conn, Reconnect, TcpClient, TcpConfig, TcpEvents};

thread_local! {
    /// Set on the remote log's own threads: what they log is not shipped (it would feed
    /// itself), only shown on the screen.
    pub(crate) static ON_LOG_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// The log app's first tonic: places the shipper on the selector catalyst and ends with it.
pub(crate) struct Starter {
    pub(crate) shipper: Option<Shipper>,
}

impl Tonic for Starter {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        ON_LOG_THREAD.with(|t| t.set(true));
        let Some(shipper) = self.shipper.take() else {
            return;
        };
        let placed = Selector::default_for(ctx)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                ctx.infusion(shipper)
                    .name("remote log")
                    .on(s.place())
                    .spawn()
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = placed {
            eprintln!("remote log: cannot start: {e}");
            ctx.finish();
        }
    }

    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _infusion: &TonicRef) {
        ctx.finish();
    }
}

/// Ships the backlog to the viewer.
pub(crate) struct Shipper {
    pub(crate) shared: Arc<Shared>,
    pub(crate) addr: SocketAddr,
    pub(crate) reconnect: Reconnect,
    pub(crate) done: Sender<LogReport>,
    started: Sender<bool>,
    conn: Option<Conn<Bytes>>,
    connected: bool,
    /// Records the connections took (handed-back ones subtracted).
    sent: u64,
    /// Closing: the deadline's timer.
    closing: Option<TimerId>,
    reported: bool,
}

impl Shipper {
    pub(crate) fn new(
        shared: Arc<Shared>,
        addr: SocketAddr,
        reconnect: Reconnect,
        done: Sender<LogReport>,
        started: Sender<bool>,
    ) -> Shipper {
        Shipper {
            shared,
            addr,
            reconnect,
            done,
            started,
            conn: None,
            connected: false,
            sent: 0,
            closing: None,
            reported: false,
        }
    }

    /// Move what waits to the connection, as far as it takes it; when closing and all is
    /// moved, close the connection (it writes everything, then ends).
    pub(crate) fn ship(&mut self) {
        self.shared.scheduled.store(false, Ordering::Release);
        let Some(conn) = self.conn.as_ref().filter(|_| self.connected) else {
            return;
        };
        loop {
            let frame = {
                let mut backlog = self.shared.backlog.lock();
                if backlog.dropped_untold > 0 {
                    let n = std::mem::take(&mut backlog.dropped_untold);
                    Some(self.shared.dropped_notice(n))
                } else {
                    backlog.pop()
                }
            };
            let Some(frame) = frame else { break };
            match conn.send(frame) {
                Ok(()) => self.sent += 1,
                Err(e) => {
                    // Back-pressure (on_writable ships on) or the connection is going down
                    // (on_disconnected hands everything back): keep it for then.
                    self.shared.backlog.lock().push_front(e.into_inner());
                    return;
                }
            }
        }
        if self.closing.is_some() {
            conn.close();
        }
    }

    /// Start closing: ship what waits, then close; give up at `within`.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<Self>, within: Duration) {
        if self.closing.is_some() || self.reported {
            return;
        }
        self.closing = Some(ctx.timer(Timer::once(within).named("remote log deadline")));
        match &self.conn {
            None => self.report(ctx),
            Some(_) => self.ship(),
        }
    }

    fn report(&mut self, ctx: &mut Ctx<Self>) {
        if self.reported {
            return;
        }
        self.reported = true;
        let (undelivered, dropped) = {
            let mut backlog = self.shared.backlog.lock();
            backlog.closed = true;
            (backlog.len() as u64, backlog.dropped)
        };
        self.done
            .send(LogReport {
                delivered: self.sent,
                dropped,
                undelivered,
            })
            .ok();
        ctx.finish();
    }

    /// Is this frame the session header (not a record: it is not requeued)?
    fn is_header(&self, frame: &Bytes) -> bool {
        frame.as_ptr() == self.shared.header.as_ptr() && frame.len() == self.shared.header.len()
    }
}

impl Tonic for Shipper {
    type State = ();

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        ON_LOG_THREAD.with(|t| t.set(true));
        // The viewer only reads: its end means nobody reads what follows, so what waits is
        // handed back (kept for the next viewer), not written into a closed socket.
        let config = TcpConfig {
            high_watermark: 1024,
            low_watermark: 256,
            half_close: false,
            ..TcpConfig::default()
        };
        match TcpClient::new(self.addr, LengthDelimited::new())
            .config(config)
            .reconnect(self.reconnect.clone())
            .start(ctx)
        {
            Ok(conn) => self.conn = Some(conn),
            Err(e) => {
                eprintln!("remote log: cannot dial {}: {e}", self.addr);
                self.started.send(false).ok();
                return self.report(ctx);
            }
        }
        if self.shared.shipper.set(ctx.handle()).is_err() {
            log::error!("remote log: started twice");
        }
        self.started.send(true).ok();
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
        if Some(timer.id) == self.closing {
            // The deadline: what was not delivered by now is counted, not waited for.
            match &self.conn {
                Some(conn) => conn.abort(),
                None => self.report(ctx),
            }
        }
    }
}

impl TcpEvents<Bytes> for Shipper {
    fn on_connected(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<Bytes>, _peer: SocketAddr) {
        self.connected = true;
        if let Err(e) = conn.send(self.shared.header.clone()) {
            log::debug!("remote log: session header not sent: {e}");
        }
        self.ship();
    }

    fn on_writable(&mut self, _ctx: &mut Ctx<Self>, _conn: &Conn<Bytes>) {
        self.ship();
    }

    fn on_disconnected(
        &mut self,
        _ctx: &mut Ctx<Self>,
        _conn: &Conn<Bytes>,
        _why: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        self.connected = false;
        let records: Vec<Bytes> = unsent.into_iter().filter(|f| !self.is_header(f)).collect();
        self.sent = self.sent.saturating_sub(records.len() as u64);
        self.shared.backlog.lock().requeue(records);
    }

    fn on_connection_finished(&mut self, ctx: &mut Ctx<Self>, _conn: &Conn<Bytes>) {
        self.conn = None;
        self.report(ctx);
    }
}
