//! Test harness: a server hub tonic that reports every event, run in an App on its own thread,
//! and blocking std clients with bounded reads.
#![allow(dead_code, unreachable_pub)]

pub mod natsd;
pub mod pki;
pub mod udp;
pub mod web;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use tasktonic_core::{App, Ctx, Handle, RunError, Stopper, Tonic};
use tasktonic_net::codec::{CodecError, LengthDelimited};
use tasktonic_net::protocol::Protocol;
use tasktonic_net::tcp::{CloseReason, Conn, ConnId, TcpEvents, TcpSendError, TcpServer};

/// Bounds a hang; never a speed assertion.
pub const LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev<M> {
    Connected(ConnId),
    Message(ConnId, M),
    Disconnected(ConnId, String, usize),
    Codec(ConnId, String),
    Writable(ConnId),
    Finished(ConnId),
}

/// Serves `server` and echoes (if `echo`) every message; reports every event.
pub struct Hub<C: Protocol + Clone> {
    pub server: Option<TcpServer<C>>,
    pub echo: bool,
    pub out: Sender<Ev<C::Message>>,
    pub addr: Sender<(SocketAddr, Handle<Hub<C>>)>,
}

impl<C: Protocol + Clone> Tonic for Hub<C>
where
    C::Message: Clone,
{
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl<C: Protocol + Clone> TcpEvents<C::Message> for Hub<C>
where
    C::Message: Clone,
{
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<C::Message>, _: SocketAddr) {
        self.out.send(Ev::Connected(conn.id())).ok();
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<C::Message>, msg: C::Message) {
        self.out.send(Ev::Message(conn.id(), msg.clone())).ok();
        if self.echo {
            conn.send(msg).expect("echo accepted");
        }
    }
    fn on_codec_error(&mut self, _: &mut Ctx<Self>, conn: &Conn<C::Message>, error: &CodecError) {
        self.out.send(Ev::Codec(conn.id(), error.to_string())).ok();
    }
    fn on_writable(&mut self, _: &mut Ctx<Self>, conn: &Conn<C::Message>) {
        self.out.send(Ev::Writable(conn.id())).ok();
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        conn: &Conn<C::Message>,
        why: &CloseReason,
        unsent: Vec<C::Message>,
    ) {
        self.out
            .send(Ev::Disconnected(conn.id(), why.to_string(), unsent.len()))
            .ok();
    }
    fn on_connection_finished(&mut self, _: &mut Ctx<Self>, conn: &Conn<C::Message>) {
        self.out.send(Ev::Finished(conn.id())).ok();
    }
}

/// Start `server` for the calling tonic and report the bound address and the tonic's handle.
pub fn start_and_report<C: Protocol + Clone, T: TcpEvents<C::Message>>(
    server: Option<TcpServer<C>>,
    ctx: &mut Ctx<T>,
    report: &Sender<(SocketAddr, Handle<T>)>,
) {
    if let Some(server) = server {
        let listening = server.start(ctx).expect("bound");
        report.send((listening.local_addr(), ctx.handle())).ok();
    }
}

/// A server app on its thread, with the events its tonic reports (`E`).
pub struct Running<E, T> {
    pub addr: SocketAddr,
    pub events: Receiver<E>,
    pub hub: Handle<T>,
    pub stopper: Stopper,
    done: Receiver<Result<(), RunError>>,
    thread: JoinHandle<()>,
}

impl<E, T> Running<E, T> {
    /// Stop the app and wait for `App::run` to return, bounded.
    pub fn stop(self) -> Result<(), RunError> {
        self.stopper.stop();
        self.join()
    }

    pub fn join(self) -> Result<(), RunError> {
        let r = self
            .done
            .recv_timeout(LIMIT)
            .expect("App::run did not return in time");
        self.thread.join().expect("app thread");
        r
    }

    /// The next event, bounded.
    pub fn next(&self) -> E {
        self.events.recv_timeout(LIMIT).expect("no event in time")
    }

    /// Skip events until one matches (within the time bound as a whole, not per event: a
    /// stream of other events must not keep a failing test waiting).
    pub fn until(&self, mut f: impl FnMut(&E) -> bool) -> E {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let e = self
                .events
                .recv_timeout(left)
                .expect("no matching event in time");
            if f(&e) {
                return e;
            }
        }
    }
}

pub fn run_app<T: Tonic, E>(
    app: App,
    addr: Receiver<(SocketAddr, Handle<T>)>,
    events: Receiver<E>,
) -> Running<E, T> {
    let stopper = app.stopper();
    let (tx, done) = bounded(1);
    let thread = std::thread::spawn(move || {
        let _ = tx.send(app.run());
    });
    let (addr, hub) = addr.recv_timeout(LIMIT).expect("the server did not start");
    Running {
        addr,
        events,
        hub,
        stopper,
        done,
        thread,
    }
}

/// Serve `server` with a hub.
pub fn serve<C: Protocol + Clone>(
    server: TcpServer<C>,
    echo: bool,
) -> Running<Ev<C::Message>, Hub<C>>
where
    C::Message: Clone,
{
    let (out, events) = unbounded();
    let (addr_tx, addr) = unbounded();
    let hub = Hub {
        server: Some(server),
        echo,
        out,
        addr: addr_tx,
    };
    run_app(App::new("net-test").tonic(hub), addr, events)
}

pub fn local() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// A u32-framed echo server.
pub fn u32_echo() -> Running<Ev<Bytes>, Hub<LengthDelimited>> {
    serve(TcpServer::bind(local(), LengthDelimited::new()), true)
}

/// A blocking client with bounded reads.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s.set_write_timeout(Some(LIMIT)).expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(payload.len())
        .expect("a u32 frame")
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(payload);
    v
}

/// Read one u32-framed payload.
pub fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).expect("frame header");
    let mut p = vec![0u8; u32::from_be_bytes(h) as usize];
    s.read_exact(&mut p).expect("frame payload");
    p
}

/// Read until EOF (bounded by the read timeout); returns what was read.
pub fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read to EOF");
    all
}

pub fn write_all(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).expect("write");
}

/// Sends `total` numbered frames of `size` bytes, respecting back-pressure, then closes.
pub struct Flood {
    server: Option<TcpServer<LengthDelimited>>,
    total: u32,
    size: usize,
    sent: u32,
    out: Sender<String>,
    addr: Sender<(SocketAddr, Handle<Flood>)>,
}

impl Flood {
    fn pump(&mut self, conn: &Conn<Bytes>) {
        while self.sent < self.total {
            let mut payload = vec![0u8; self.size];
            payload[..4].copy_from_slice(&self.sent.to_be_bytes());
            match conn.send(Bytes::from(payload)) {
                Ok(()) => self.sent += 1,
                Err(TcpSendError::Backpressure(_)) => {
                    self.out
                        .send(format!("backpressure queued={}", conn.queued()))
                        .ok();
                    return;
                }
                Err(e) => {
                    self.out.send(format!("send failed: {e}")).ok();
                    return;
                }
            }
        }
        self.out.send("all sent".into()).ok();
        conn.close();
    }
}

impl Tonic for Flood {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl TcpEvents<Bytes> for Flood {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        self.pump(conn);
    }
    fn on_writable(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>) {
        self.out.send("writable".into()).ok();
        self.pump(conn);
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<Bytes>,
        why: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        self.out
            .send(format!("disconnected: {why}; unsent {}", unsent.len()))
            .ok();
    }
}

/// Serve `server`: every connection gets `total` numbered frames of `size` bytes (back-pressure
/// respected), then a graceful close; events as text.
/// A `Flood` tonic for an app of the caller's making, with its events and its address.
#[allow(clippy::type_complexity)]
pub fn flood_tonic(
    server: TcpServer<LengthDelimited>,
    total: u32,
    size: usize,
) -> (
    Flood,
    Receiver<String>,
    Receiver<(SocketAddr, Handle<Flood>)>,
) {
    let (out, events) = unbounded();
    let (addr, bound) = unbounded();
    let flood = Flood {
        server: Some(server),
        total,
        size,
        sent: 0,
        out,
        addr,
    };
    (flood, events, bound)
}

pub fn flood_server(
    server: TcpServer<LengthDelimited>,
    total: u32,
    size: usize,
) -> Running<String, Flood> {
    let (out, events) = unbounded();
    let (addr_tx, addr) = unbounded();
    let app = App::new("flood").tonic(Flood {
        server: Some(server),
        total,
        size,
        sent: 0,
        out,
        addr: addr_tx,
    });
    run_app(app, addr, events)
}

/// The flood's first event must be back-pressure: how many messages were queued then.
pub fn backpressure_queued(server: &Running<String, Flood>) -> usize {
    let first = server.next();
    assert!(first.starts_with("backpressure"), "{first}");
    first
        .rsplit('=')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count")
}

/// The flood resumed on a writable event and ended with a clean close, nothing unsent.
pub fn flood_ends_cleanly_after_writable(server: &Running<String, Flood>) {
    let mut saw_writable = false;
    loop {
        let e = server.next();
        saw_writable |= e == "writable";
        if e.starts_with("disconnected") {
            assert_eq!(e, "disconnected: closed; unsent 0");
            break;
        }
    }
    assert!(saw_writable);
}

/// The flood's disconnect event, and how many messages it handed back.
pub fn flood_unsent(server: &Running<String, Flood>) -> (String, usize) {
    let e = server.until(|e| e.starts_with("disconnected"));
    let unsent = e
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    (e, unsent)
}

/// This process's CPU time (user + system) from `/proc/self/stat`, kept open so that it can
/// be read when the process has no descriptor to spare.
pub struct Cpu(std::fs::File);

impl Cpu {
    pub fn open() -> Cpu {
        Cpu(std::fs::File::open("/proc/self/stat").expect("/proc/self/stat"))
    }

    /// CPU used so far, in clock ticks (1/100 s on Linux).
    pub fn ticks(&self) -> u64 {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 1024];
        let n = self.0.read_at(&mut buf, 0).expect("read /proc/self/stat");
        let stat = String::from_utf8_lossy(&buf[..n]);
        // Fields after the command (which may hold spaces) start after the last ')';
        // utime and stime are fields 14 and 15 of the line: 12 and 13 after the command.
        let rest = &stat[stat.rfind(')').expect("a command") + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    }

    /// CPU ticks used over `window` of wall time (a measurement, not a synchronisation:
    /// nothing waits for the sleep to happen).
    pub fn ticks_over(&self, window: Duration) -> u64 {
        let before = self.ticks();
        std::thread::sleep(window);
        self.ticks() - before
    }
}

/// Context switches of all this process's threads so far: how often they woke.
pub fn wakeups() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// The kernel's queues of the IPv4 TCP connection `local` → `peer`, from `/proc/net/tcp`:
/// bytes sent and not yet acknowledged (`tx_queue`), and bytes received that the
/// application has not read yet (`rx_queue`).
pub fn tcp_queues(local: SocketAddr, peer: SocketAddr) -> (u64, u64) {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    queues_in(&table, local, peer)
        .unwrap_or_else(|| panic!("no connection {local} -> {peer} in /proc/net/tcp"))
}

/// The connections waiting in `listener`'s accept queue (a listening socket's `rx_queue`),
/// from `table`, a `/proc/net/tcp` opened beforehand (it can be read when the process has
/// no descriptor to spare).
pub fn accept_queue(table: &std::fs::File, listener: SocketAddr) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut text = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = table
            .read_at(&mut chunk, text.len() as u64)
            .expect("read /proc/net/tcp");
        if n == 0 {
            break;
        }
        text.extend_from_slice(&chunk[..n]);
    }
    let nowhere: SocketAddr = "0.0.0.0:0".parse().expect("an address");
    queues_in(&String::from_utf8_lossy(&text), listener, nowhere)
        .unwrap_or_else(|| panic!("no listener {listener} in /proc/net/tcp"))
        .1
}

/// `(tx_queue, rx_queue)` of the socket `local` → `peer` in a `/proc/net/tcp` table.
fn queues_in(table: &str, local: SocketAddr, peer: SocketAddr) -> Option<(u64, u64)> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(a) => format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(a.ip().octets()),
            a.port()
        ),
        SocketAddr::V6(_) => panic!("IPv4 only"),
    };
    let (local, peer) = (hex(local), hex(peer));
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 4 && f[1] == local && f[2] == peer {
            let (tx, rx) = f[4].split_once(':')?;
            let q = |h| u64::from_str_radix(h, 16).ok();
            return Some((q(tx)?, q(rx)?));
        }
        None
    })
}

/// Of `written` bytes a client wrote on `c`, at most how many the server process has read:
/// what is neither waiting in our send queue nor in its receive queue (bytes both count,
/// acknowledged late, make it smaller, never larger). Measured while the stream is stopped
/// (the server not reading): nothing is in flight over loopback then.
pub fn taken_by_peer(c: &TcpStream, written: usize) -> u64 {
    let (ours, theirs) = (c.local_addr().expect("local"), c.peer_addr().expect("peer"));
    let (unacked, _) = tcp_queues(ours, theirs);
    let (_, unread) = tcp_queues(theirs, ours);
    (written as u64).saturating_sub(unacked + unread)
}

/// The names of this process's threads, from `/proc` (a thread that ends while they are
/// read is left out).
pub fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}
