//! Promises the docs make about connections, each held by a test that fails if it breaks:
//! the default 8 MiB frame limit, `close_linger` running out, `abort()` handing back what
//! was not written, the `on_status` sequence, the connect timeout, IPv6 listeners and
//! clients.

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use tasktonic_core::{App, Ctx, Handle, Tonic};
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::tcp::{
    CloseReason, Conn, ConnState, Reconnect, TcpClient, TcpConfig, TcpEvents, TcpServer,
};
use util::*;

#[test]
fn the_default_frame_limit_is_8_mib() {
    let server = u32_echo();
    let mut c = connect(server.addr);
    // Exactly 8 MiB passes, and comes back whole.
    let max = vec![7u8; 8 << 20];
    write_all(&mut c, &frame(&max));
    assert_eq!(read_frame(&mut c), max);
    // One byte more is refused from its header: the connection closes, nothing echoed.
    let mut over = ((8u32 << 20) + 1).to_be_bytes().to_vec();
    over.extend_from_slice(b"abc");
    write_all(&mut c, &over);
    assert!(read_to_eof(&mut c).is_empty());
    drop(c); // the server waits for our close (its linger) before it reports the end
    match server.until(|e| matches!(e, Ev::Disconnected(..))) {
        Ev::Disconnected(_, why, 0) => {
            assert!(why.contains("8388609") && why.contains("8388608"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    server.stop().expect("stopped");
}

#[test]
fn close_linger_bounds_the_wait_for_a_peer_that_never_closes() {
    let lingering = |linger| {
        let config = TcpConfig {
            close_linger: linger,
            ..TcpConfig::default()
        };
        flood_tonic(
            TcpServer::bind(local(), LengthDelimited::new()).config(config),
            3,
            16,
        )
    };
    // Two servers in one app (their connections on one selector, their timers in one
    // heap) whose peers never close: one lingers an hour, the other 300 ms.
    let (patient, patient_events, patient_addr) = lingering(Duration::from_secs(3600));
    let (brief, brief_events, brief_addr) = lingering(Duration::from_millis(300));
    let app = App::new("lingers").tonic(patient).tonic(brief);
    let stopper = app.stopper();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || done_tx.send(app.run()).ok());
    let (patient_at, _) = patient_addr.recv_timeout(LIMIT).expect("started");
    let (brief_at, _) = brief_addr.recv_timeout(LIMIT).expect("started");
    let until = |events: &crossbeam_channel::Receiver<String>| loop {
        let e = events.recv_timeout(LIMIT).expect("no disconnect in time");
        if e.starts_with("disconnected") {
            return e;
        }
    };
    // The patient one's close begins first.
    let mut p = connect(patient_at);
    assert_eq!(read_to_eof(&mut p).len(), 3 * (4 + 16));
    let mut b = connect(brief_at);
    // Everything, then our side's end of the stream...
    assert_eq!(read_to_eof(&mut b).len(), 3 * (4 + 16));
    // ...and while this peer holds its socket open, the linger runs out and the server
    // drops the connection (it would otherwise wait for the peer's close for good)...
    assert_eq!(until(&brief_events), "disconnected: closed; unsent 0");
    // ...while the patient one, begun earlier, still waits: each uses its own linger (one
    // linger for both, the default's 5 s or any other, would have ended the patient first:
    // its timer, in the same heap, is due earlier).
    assert!(
        !patient_events
            .try_iter()
            .any(|e| e.starts_with("disconnected")),
        "the hour-long linger ended before the 300 ms one"
    );
    drop(p);
    assert_eq!(until(&patient_events), "disconnected: closed; unsent 0");
    drop(b);
    stopper.stop();
    done.recv_timeout(LIMIT).expect("ended").expect("ran");
}

/// Sends numbered 64 KiB frames on connect; aborts when asked; reports its end.
struct Aborter {
    server: Option<TcpServer<LengthDelimited>>,
    conn: Option<Conn<Bytes>>,
    out: Sender<(String, Vec<u32>)>,
    addr: Sender<(SocketAddr, Handle<Aborter>)>,
}

impl Tonic for Aborter {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl TcpEvents<Bytes> for Aborter {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        for i in 0..200u32 {
            let mut m = vec![0u8; 64 * 1024];
            m[..4].copy_from_slice(&i.to_be_bytes());
            if conn.send(Bytes::from(m)).is_err() {
                break; // the peer went away at once
            }
        }
        self.conn = Some(conn.clone());
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<Bytes>,
        why: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        let numbers = unsent
            .iter()
            .map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]]))
            .collect();
        self.out.send((why.to_string(), numbers)).ok();
    }
}

#[test]
fn abort_hands_back_what_was_not_written() {
    let (out, events) = unbounded();
    let (addr_tx, addr) = unbounded();
    let config = TcpConfig {
        high_watermark: 1_000,
        ..TcpConfig::default()
    };
    let app = App::new("abort").tonic(Aborter {
        server: Some(TcpServer::bind(local(), LengthDelimited::new()).config(config)),
        conn: None,
        out,
        addr: addr_tx,
    });
    let server = run_app(app, addr, events);
    // 12.5 MiB for a peer that reads nothing: most of it cannot be written.
    let mut c = connect(server.addr);
    let head = read_frame(&mut c);
    assert_eq!(&head[..4], &0u32.to_be_bytes());
    // Once the stream stalls (both ends' kernel queues full, unchanged over several looks),
    // what the server wrote is what we read plus what waits in our receive queue and in
    // its send queue.
    let (ours, theirs) = (c.local_addr().expect("local"), c.peer_addr().expect("peer"));
    let queued = || tcp_queues(ours, theirs).1 + tcp_queues(theirs, ours).0;
    let deadline = std::time::Instant::now() + LIMIT;
    let (mut last, mut same) = (queued(), 0);
    while same < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream never stalled"
        );
        std::thread::yield_now();
        let now = queued();
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    let written = (4 + 64 * 1024) + last;
    server
        .hub
        .ask_blocking(LIMIT, |t, _| t.conn.as_ref().expect("connected").abort())
        .expect("asked");
    let (why, unsent) = server.next();
    assert_eq!(why, "aborted");
    assert!(!unsent.is_empty());
    // What came back is the tail, in order: every message either went out or came back,
    // exactly: the first one handed back is the first not written whole.
    let first = unsent[0];
    assert_eq!(unsent, (first..200).collect::<Vec<_>>());
    assert_eq!(
        u64::from(first),
        written / (4 + 64 * 1024),
        "{written} bytes were written"
    );
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut rest); // ends with a close or a reset
    // What arrived is the head, in order, each number once (the reset may discard what we
    // had not read yet: that is why what was written is counted before it).
    let frames: Vec<u32> = rest
        .chunks_exact(4 + 64 * 1024)
        .map(|f| u32::from_be_bytes([f[4], f[5], f[6], f[7]]))
        .collect();
    assert!(
        frames.iter().zip(1u32..).all(|(got, want)| *got == want),
        "{frames:?}"
    );
    let whole = 1 + frames.len();
    assert!(
        whole <= first as usize,
        "{whole} frames arrived but #{first} came back"
    );
    server.stop().expect("stopped");
}

/// A client that reports every state it goes through, and closes once connected.
struct Watcher {
    client: Option<TcpClient<LengthDelimited>>,
    out: Sender<ConnState>,
}

impl Tonic for Watcher {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(client) = self.client.take() {
            client.start(ctx).expect("a selector");
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &tasktonic_core::TonicRef) {
        ctx.finish();
    }
}

impl TcpEvents<Bytes> for Watcher {
    fn on_status(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, state: ConnState) {
        self.out.send(state).ok();
    }
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        conn.close();
    }
}

/// Run a `Watcher` to its end; the states it saw.
fn states(client: TcpClient<LengthDelimited>) -> Vec<ConnState> {
    let (out, seen) = unbounded();
    let app = App::new("status").tonic(Watcher {
        client: Some(client),
        out,
    });
    let (done_tx, done) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || done_tx.send(app.run()).ok());
    done.recv_timeout(LIMIT)
        .expect("the client ended in time")
        .expect("ran");
    seen.try_iter().collect()
}

#[test]
fn on_status_goes_through_the_documented_sequence() {
    use ConnState::*;
    let server = u32_echo();
    // Connect, then close: each state once, in order (`Closing` is not seen when the peer's
    // end was already there as our close shut down: it is entered and left in one step).
    let seen = states(TcpClient::new(server.addr, LengthDelimited::new()));
    assert!(
        seen == [Connecting, Connected, Closing, Closed] || seen == [Connecting, Connected, Closed],
        "{seen:?}"
    );
    server.stop().expect("stopped");
    // Refused, then two retries refused too (`max_attempts(2)`): given up.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let seen = states(
        TcpClient::new(nobody, LengthDelimited::new())
            .reconnect(Reconnect::fixed(Duration::from_millis(10)).max_attempts(2)),
    );
    assert_eq!(
        seen,
        vec![
            Connecting,
            WaitForRetry,
            Connecting,
            WaitForRetry,
            Connecting,
            Closed
        ],
        "refused three times"
    );
}

#[test]
fn the_connect_timeout_ends_an_attempt_that_gets_no_answer() {
    // A listener that never accepts, with a backlog of one already taken: the kernel drops
    // further SYNs, so a connect neither succeeds nor is refused.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    listener
        .bind(&local().into())
        .and_then(|()| listener.listen(0))
        .expect("listening");
    let addr = listener
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        s.set_nonblocking(true).expect("nonblocking");
        let _ = s.connect(&addr.into()); // in progress, or queued
        fillers.push(s);
    }
    let waiting = |timeout| {
        let config = TcpConfig {
            connect_timeout: timeout,
            ..TcpConfig::default()
        };
        let (out, seen) = unbounded();
        let ender = Ender {
            client: Some(TcpClient::new(addr, LengthDelimited::new()).config(config)),
            out,
        };
        (ender, seen)
    };
    // Two attempts: the first started waits an hour, the second 300 ms.
    let (patient, patient_seen) = waiting(Duration::from_secs(3600));
    let (brief, brief_seen) = waiting(Duration::from_millis(300));
    let app = App::new("timeout").tonic(patient).tonic(brief);
    let stopper = app.stopper();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || done_tx.send(app.run()).ok());
    let why = brief_seen
        .recv_timeout(LIMIT)
        .expect("the attempt ended in time");
    assert!(
        why.contains("connect failed") && why.contains("timed out"),
        "{why}"
    );
    // Each uses its own timeout: the same one, any one, would have ended the first first.
    assert!(
        patient_seen.try_recv().is_err(),
        "the hour-long connect timeout ended before the 300 ms one"
    );
    stopper.stop();
    done.recv_timeout(LIMIT).expect("ended").expect("ran");
    drop((fillers, listener));
}

/// A client that reports why its connection ended.
struct Ender {
    client: Option<TcpClient<LengthDelimited>>,
    out: Sender<String>,
}

impl Tonic for Ender {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(client) = self.client.take() {
            client.start(ctx).expect("a selector");
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &tasktonic_core::TonicRef) {
        ctx.finish();
    }
}

impl TcpEvents<Bytes> for Ender {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        conn.send(Bytes::from_static(b"over IPv6")).expect("queued");
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        self.out
            .send(format!("echo {}", String::from_utf8_lossy(&msg)))
            .ok();
        conn.close();
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<Bytes>,
        why: &CloseReason,
        _: Vec<Bytes>,
    ) {
        self.out.send(why.to_string()).ok();
    }
}

#[test]
fn ipv6_listeners_and_clients_work() {
    let v6: SocketAddr = "[::1]:0".parse().expect("an address");
    if std::net::TcpListener::bind(v6).is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "::1 cannot be bound on this CI machine"
        );
        eprintln!("SKIPPED: this machine has no IPv6 loopback");
        return;
    }
    let server = serve(TcpServer::bind(v6, LengthDelimited::new()), true);
    assert!(server.addr.is_ipv6());
    // A plain client...
    let mut c = connect(server.addr);
    write_all(&mut c, &frame(b"std over IPv6"));
    assert_eq!(read_frame(&mut c), b"std over IPv6");
    drop(c);
    // ...and ours.
    let (out, seen) = unbounded();
    let app = App::new("v6").tonic(Ender {
        client: Some(TcpClient::new(server.addr, LengthDelimited::new())),
        out,
    });
    let (done_tx, done) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || done_tx.send(app.run()).ok());
    assert_eq!(seen.recv_timeout(LIMIT).expect("an echo"), "echo over IPv6");
    assert_eq!(seen.recv_timeout(LIMIT).expect("the end"), "closed");
    done.recv_timeout(LIMIT).expect("ended").expect("ran");
    server.stop().expect("stopped");
}

/// Reports `Conn::nodelay` once connected.
struct NoDelay {
    client: Option<TcpClient<LengthDelimited>>,
    out: Sender<Option<bool>>,
}

impl Tonic for NoDelay {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(client) = self.client.take() {
            client.start(ctx).expect("a selector");
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &tasktonic_core::TonicRef) {
        ctx.finish();
    }
}

impl TcpEvents<Bytes> for NoDelay {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        self.out.send(conn.nodelay()).ok();
        conn.close();
    }
}

#[test]
fn tcp_nodelay_is_on_by_default_and_off_when_asked() {
    // The server's side, with the defaults: the socket says TCP_NODELAY is on.
    let (out, events) = unbounded();
    let (addr_tx, addr) = unbounded();
    let app = App::new("nodelay").tonic(Aborter {
        server: Some(TcpServer::bind(local(), LengthDelimited::new())),
        conn: None,
        out,
        addr: addr_tx,
    });
    let server = run_app(app, addr, events);
    let c = connect(server.addr);
    let mut head = [0u8; 4];
    std::io::Read::read_exact(&mut &c, &mut head).expect("the first frame");
    let on = server
        .hub
        .ask_blocking(LIMIT, |t, _| t.conn.as_ref().and_then(Conn::nodelay))
        .expect("asked");
    assert_eq!(on, Some(true));
    // A client told to leave Nagle on (to a listener of its own): the socket says it is off.
    let plain = std::net::TcpListener::bind(local()).expect("bound");
    let (out, seen) = unbounded();
    let config = TcpConfig {
        nodelay: false,
        ..TcpConfig::default()
    };
    let app = App::new("nagle").tonic(NoDelay {
        client: Some(
            TcpClient::new(plain.local_addr().expect("addr"), LengthDelimited::new())
                .config(config),
        ),
        out,
    });
    let (done_tx, done) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || done_tx.send(app.run()).ok());
    assert_eq!(seen.recv_timeout(LIMIT).expect("connected"), Some(false));
    drop(plain);
    done.recv_timeout(LIMIT).expect("ended").expect("ran");
    drop(c);
    server.stop().expect("stopped");
}
