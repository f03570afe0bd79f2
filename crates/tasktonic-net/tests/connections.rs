//! Connection behaviour over loopback: half-close, resets, max_clients, peer filter,
//! back-pressure to a slow reader, graceful close, reconnect with re-send. (Panicking
//! handlers: `faults.rs`.)

mod util;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use socket2::{Domain, Socket, Type};
use tasktonic_core::{App, Ctx, Handle, Tonic};
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::tcp::{
    CloseReason, Conn, Reconnect, TcpClient, TcpConfig, TcpEvents, TcpServer,
};
use util::*;

/// Reset (RST) instead of a normal close when dropped.
fn reset_on_drop(s: &TcpStream) {
    socket2::SockRef::from(s)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
}

#[test]
fn half_close_gets_every_answer_then_a_close() {
    let server = u32_echo();
    let mut c = connect(server.addr);
    write_all(&mut c, &[frame(b"a"), frame(b"b"), frame(b"c")].concat());
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let rest = read_to_eof(&mut c);
    assert_eq!(rest, [frame(b"a"), frame(b"b"), frame(b"c")].concat());
    match server.until(|e| matches!(e, Ev::Disconnected(..))) {
        Ev::Disconnected(_, why, 0) => assert_eq!(why, "closed by the peer"),
        other => panic!("{other:?}"),
    }
    server.stop().expect("clean stop");
}

#[test]
fn a_peer_reset_mid_frame_closes_that_connection_only() {
    let server = u32_echo();
    let mut bystander = connect(server.addr);
    let mut c = connect(server.addr);
    write_all(&mut c, &[&100u32.to_be_bytes()[..], b"only ten b"].concat());
    reset_on_drop(&c);
    drop(c);
    assert!(matches!(
        server.until(|e| matches!(e, Ev::Disconnected(..))),
        Ev::Disconnected(..)
    ));
    write_all(&mut bystander, &frame(b"ok"));
    assert_eq!(read_frame(&mut bystander), b"ok");
    drop(bystander);
    server.stop().expect("clean stop");
}

fn flood(total: u32, size: usize, config: TcpConfig) -> Running<String, Flood> {
    flood_server(
        TcpServer::bind(local(), LengthDelimited::new()).config(config),
        total,
        size,
    )
}

#[test]
fn back_pressure_reaches_the_sender_of_a_slow_reader_and_memory_stays_bounded() {
    let config = TcpConfig {
        high_watermark: 64,
        low_watermark: 16,
        ..TcpConfig::default()
    };
    let server = flood(5_000, 16 * 1024, config);
    let mut c = connect(server.addr);
    // Do not read: the sender must hit the watermark (80 MB would not fit the socket buffers).
    let queued = backpressure_queued(&server);
    assert!(
        queued <= 64,
        "queue bounded by the high watermark, was {queued}"
    );
    // Now read everything: writable events resume the sender; every frame arrives in order.
    let reader = std::thread::spawn(move || {
        for i in 0..5_000u32 {
            let f = read_frame(&mut c);
            assert_eq!(f.len(), 16 * 1024);
            assert_eq!(u32::from_be_bytes([f[0], f[1], f[2], f[3]]), i);
        }
        assert!(read_to_eof(&mut c).is_empty());
    });
    flood_ends_cleanly_after_writable(&server);
    reader.join().expect("all frames in order");
    server.stop().expect("clean stop");
}

#[test]
fn graceful_close_delivers_ten_megabytes_sent_just_before_it() {
    let config = TcpConfig {
        high_watermark: 1_000,
        low_watermark: 100,
        ..TcpConfig::default()
    };
    let server = flood(160, 64 * 1024, config); // 10 MiB, then close()
    let mut c = connect(server.addr);
    assert_eq!(server.next(), "all sent");
    let all = read_to_eof(&mut c);
    assert_eq!(all.len(), 160 * (4 + 64 * 1024));
    for i in 0..160u32 {
        let at = i as usize * (4 + 64 * 1024) + 4;
        assert_eq!(
            u32::from_be_bytes([all[at], all[at + 1], all[at + 2], all[at + 3]]),
            i
        );
    }
    assert_eq!(server.next(), "disconnected: closed; unsent 0");
    drop(c);
    server.stop().expect("clean stop");
}

#[test]
fn without_half_close_a_peer_that_ends_gets_nothing_more_and_the_rest_comes_back() {
    // A one-way stream (the remote log): the reader's end means nobody reads what follows.
    // With the default (half_close on) the connection would go on writing into the peer's
    // closed stream until the two-minute linger; off, it hands the rest back at once.
    let config = TcpConfig {
        high_watermark: 64,
        low_watermark: 16,
        close_linger: Duration::from_secs(120),
        half_close: false,
        ..TcpConfig::default()
    };
    let server = flood(2_000, 64 * 1024, config); // 128 MB: far more than the socket holds
    let mut c = connect(server.addr);
    backpressure_queued(&server);
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let (e, unsent) = flood_unsent(&server);
    assert!(e.contains("closed by the peer"), "{e}");
    assert!(unsent > 0, "{e}");
    // What was written before is whole and in order.
    let all = read_to_eof(&mut c);
    assert!(all.len() >= 4 + 64 * 1024);
    for (i, f) in all.chunks_exact(4 + 64 * 1024).enumerate() {
        assert_eq!(u32::from_be_bytes([f[4], f[5], f[6], f[7]]) as usize, i);
    }
    server.stop().expect("the server survives");
}

#[test]
fn a_peer_reset_mid_write_hands_back_what_was_not_written() {
    let config = TcpConfig {
        high_watermark: 10_000,
        low_watermark: 100,
        ..TcpConfig::default()
    };
    let server = flood(2_000, 64 * 1024, config); // 128 MB: cannot be written before the reset
    let c = connect(server.addr);
    let mut first = [0u8; 1024];
    (&c).read_exact(&mut first).expect("some data arrived");
    reset_on_drop(&c);
    drop(c);
    let (e, unsent) = flood_unsent(&server);
    assert!(unsent > 0, "{e}");
    assert!(e.contains("i/o error"), "{e}");
    server.stop().expect("the server survives");
}

#[test]
fn max_clients_pauses_accepting_and_resumes_below_the_limit() {
    let server = serve(
        TcpServer::bind(local(), LengthDelimited::new()).max_clients(1),
        true,
    );
    let mut a = connect(server.addr);
    write_all(&mut a, &frame(b"a1"));
    assert_eq!(read_frame(&mut a), b"a1");
    let mut b = connect(server.addr); // completes in the backlog, not accepted
    write_all(&mut b, &frame(b"b1"));
    write_all(&mut a, &frame(b"a2"));
    assert_eq!(read_frame(&mut a), b"a2");
    drop(a);
    assert_eq!(read_frame(&mut b), b"b1", "accepted once a left");
    let mut order = Vec::new();
    while order.len() < 3 {
        match server.next() {
            Ev::Connected(id) => order.push(format!("connected {id}")),
            Ev::Disconnected(id, ..) => order.push(format!("disconnected {id}")),
            _ => {}
        }
    }
    // b is only accepted after a is gone.
    assert!(order[0].starts_with("connected"));
    assert!(order[1].starts_with("disconnected"), "{order:?}");
    assert!(order[2].starts_with("connected"), "{order:?}");
    drop(b);
    server.stop().expect("clean stop");
}

#[test]
fn the_peer_filter_refuses_unwanted_peers() {
    let only_local_one = |peer: SocketAddr| peer.ip() == std::net::Ipv4Addr::LOCALHOST;
    let server = serve(
        TcpServer::bind(local(), LengthDelimited::new()).peer_filter(only_local_one),
        true,
    );
    // From 127.0.0.2 (still loopback): refused.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&"127.0.0.2:0".parse::<SocketAddr>().expect("addr").into())
        .expect("bind 127.0.0.2");
    socket.connect(&server.addr.into()).expect("connect");
    let mut refused: TcpStream = socket.into();
    refused.set_read_timeout(Some(LIMIT)).expect("timeout");
    let _ = std::io::Write::write_all(&mut refused, &frame(b"x"));
    let mut buf = [0u8; 8];
    let n = refused.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    // From 127.0.0.1: served.
    let mut ok = connect(server.addr);
    write_all(&mut ok, &frame(b"y"));
    assert_eq!(read_frame(&mut ok), b"y");
    drop(ok);
    server.stop().expect("clean stop");
}

/// A client that reports events and can be told to send.
struct Client {
    target: SocketAddr,
    conn: Option<Conn<Bytes>>,
    out: Sender<String>,
    me: Sender<(SocketAddr, Handle<Client>)>,
}

impl Tonic for Client {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let conn = TcpClient::new(self.target, LengthDelimited::new())
            .reconnect(Reconnect::fixed(Duration::from_millis(20)))
            .resend(true)
            .start(ctx)
            .expect("selector");
        self.conn = Some(conn);
        self.me.send((self.target, ctx.handle())).ok();
    }
}

impl TcpEvents<Bytes> for Client {
    fn on_connected(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, _: SocketAddr) {
        self.out.send("connected".into()).ok();
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, msg: Bytes) {
        self.out
            .send(format!("echo {}", String::from_utf8_lossy(&msg)))
            .ok();
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

#[test]
fn a_client_reconnects_after_the_server_restarts_on_the_same_port_and_resends() {
    let first = u32_echo();
    let port_addr = first.addr;
    let (out, client_events) = unbounded();
    let (me_tx, me) = unbounded();
    let client_app = App::new("client").tonic(Client {
        target: port_addr,
        conn: None,
        out,
        me: me_tx,
    });
    let client_stopper = client_app.stopper();
    let client_thread = std::thread::spawn(move || client_app.run());
    let (_, client) = me.recv_timeout(LIMIT).expect("client started");
    let next = || client_events.recv_timeout(LIMIT).expect("client event");
    let send = |text: &'static str| {
        client
            .ask_blocking(LIMIT, move |c, _| {
                c.conn
                    .as_ref()
                    .map(|conn| conn.send(Bytes::from(text)).is_ok())
            })
            .expect("answer")
    };
    assert_eq!(next(), "connected");
    assert_eq!(send("one"), Some(true));
    assert_eq!(next(), "echo one");
    // The server goes away: not the first connect, a later loss.
    first.stop().expect("clean stop");
    assert_eq!(next(), "disconnected: closed by the peer; unsent 0");
    // Sent while down: kept for re-send.
    assert_eq!(send("two"), Some(true));
    // The server comes back on the same port.
    let second = serve(TcpServer::bind(port_addr, LengthDelimited::new()), true);
    assert_eq!(second.addr, port_addr);
    let mut seen = Vec::new();
    while !seen.iter().any(|e: &String| e == "echo two") {
        seen.push(next());
    }
    assert!(seen.contains(&"connected".to_string()), "{seen:?}");
    assert!(
        matches!(second.until(|e| matches!(e, Ev::Message(..))), Ev::Message(_, m) if &m[..] == b"two")
    );
    client_stopper.stop();
    client_thread
        .join()
        .expect("client thread")
        .expect("clean client run");
    second.stop().expect("clean stop");
}

/// Blocks in its first `on_message` until the gate opens; counts what it got.
struct Laggard {
    gate: crossbeam_channel::Receiver<()>,
    conn_out: Sender<Conn<Bytes>>,
    got: Sender<u32>,
    addr: Sender<(SocketAddr, Handle<Laggard>)>,
    server: Option<TcpServer<LengthDelimited>>,
    first: bool,
}

impl Tonic for Laggard {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl TcpEvents<Bytes> for Laggard {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        self.conn_out.send(conn.clone()).ok();
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, msg: Bytes) {
        if self.first {
            self.first = false;
            self.gate.recv_timeout(LIMIT).ok();
        }
        self.got
            .send(u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]))
            .ok();
    }
}

#[test]
fn a_lagging_base_stops_the_reading_at_the_inbound_window() {
    let config = TcpConfig {
        inbound_window: 4,
        ..TcpConfig::default()
    };
    let (gate_tx, gate) = unbounded();
    let (conn_tx, conn_rx) = unbounded();
    let (got_tx, got) = unbounded();
    let (addr_tx, addr) = unbounded();
    let (_ev, events) = unbounded::<Ev<String>>();
    let app = App::new("laggard").tonic(Laggard {
        gate,
        conn_out: conn_tx,
        got: got_tx,
        addr: addr_tx,
        server: Some(TcpServer::bind(local(), LengthDelimited::new()).config(config)),
        first: true,
    });
    let server = run_app(app, addr, events);
    let mut c = connect(server.addr);
    let conn: Conn<Bytes> = conn_rx.recv_timeout(LIMIT).expect("connected");
    // 40 MB of frames: far more than socket buffers hold. The write blocks once the server
    // stops reading; a short write timeout turns that block into an answer.
    c.set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    const FRAMES: u32 = 10_000;
    let mut written = 0u32;
    let mut wire = Vec::new();
    for i in 0..FRAMES {
        wire.extend_from_slice(&frame(&[&i.to_be_bytes()[..], &[0u8; 4092]].concat()));
    }
    let mut offset = 0;
    while offset < wire.len() {
        match std::io::Write::write(&mut c, &wire[offset..]) {
            Ok(n) => offset += n,
            Err(_) => break, // blocked: the server stopped reading
        }
    }
    written += u32::try_from(offset / 4100).unwrap_or(0);
    assert!(
        offset < wire.len(),
        "the server kept reading for a base that consumed nothing"
    );
    assert!(
        conn.unconsumed() <= 4,
        "at most the window is delivered: {}",
        conn.unconsumed()
    );
    // And the process took no more than the window and one read (64 KiB) of the 40 MB: the
    // rest waits in the kernel's queues.
    let taken = taken_by_peer(&c, offset);
    eprintln!("window of 4: {taken} of {offset} written bytes taken in");
    assert!(
        taken <= 4 * 4100 + 64 * 1024,
        "{taken} bytes read for a base that consumed nothing"
    );
    // Release the base: everything arrives, in order, and the rest can be written.
    gate_tx.send(()).expect("gate");
    c.set_write_timeout(Some(LIMIT)).expect("timeout");
    write_all(&mut c, &wire[offset..]);
    for i in 0..FRAMES {
        assert_eq!(got.recv_timeout(LIMIT).expect("message"), i);
    }
    assert!(written < FRAMES);
    drop(c);
    server.stop().expect("clean stop");
}

#[test]
fn close_after_last_stops_listening_when_the_last_connection_ends() {
    let server = serve(
        TcpServer::bind(local(), LengthDelimited::new()).close_after_last(true),
        true,
    );
    let mut c = connect(server.addr);
    write_all(&mut c, &frame(b"only"));
    assert_eq!(read_frame(&mut c), b"only");
    drop(c);
    assert!(matches!(
        server.until(|e| matches!(e, Ev::Finished(..))),
        Ev::Finished(..)
    ));
    // The listener finishes right after its last connection: connecting is soon refused.
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        match TcpStream::connect(server.addr) {
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
                break;
            }
            Ok(s) => drop(s),
        }
        assert!(std::time::Instant::now() < deadline, "still listening");
        std::thread::yield_now();
    }
    server.stop().expect("clean stop");
}

/// Reports each message's number; can be blocked.
struct Gate {
    server: Option<TcpServer<LengthDelimited>>,
    out: Sender<u32>,
    addr: Sender<(SocketAddr, Handle<Gate>)>,
}

struct Block(crossbeam_channel::Receiver<()>);

impl Tonic for Gate {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl tasktonic_core::Receive<Block> for Gate {
    fn receive(&mut self, _: &mut Ctx<Self>, Block(go_on): Block) {
        go_on.recv_timeout(LIMIT).expect("released in time");
    }
}

impl TcpEvents<Bytes> for Gate {
    fn on_message(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, msg: Bytes) {
        self.out
            .send(u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]))
            .ok();
    }
}

#[test]
fn the_inbound_window_bounds_bytes_as_well_as_messages() {
    // A thousand messages may wait, but only 1 MiB of them: 256 KiB frames stop the reading
    // at four, where the count alone would take all hundred (25 MB) into memory.
    let config = TcpConfig {
        inbound_window: 1_000,
        inbound_bytes: 1 << 20,
        ..TcpConfig::default()
    };
    let (out, events) = unbounded();
    let (addr_tx, addr) = unbounded();
    let app = App::new("bytes").tonic(Gate {
        server: Some(TcpServer::bind(local(), LengthDelimited::new()).config(config)),
        out,
        addr: addr_tx,
    });
    let server = run_app(app, addr, events);
    let (go_on, blocked) = unbounded();
    server.hub.send(Block(blocked)).expect("the base is there");
    let frames: Vec<u8> = (0..100u32)
        .flat_map(|i| {
            let mut p = vec![0u8; 256 * 1024];
            p[..4].copy_from_slice(&i.to_be_bytes());
            frame(&p)
        })
        .collect();
    let mut c = connect(server.addr);
    c.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut at = 0;
    while at < frames.len() {
        match std::io::Write::write(&mut c, &frames[at..]) {
            Ok(n) => at += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(
        at < frames.len(),
        "all 25 MB were read while the base took nothing"
    );
    // The process holds at most the 1 MiB window, the frame being cut and one read: the
    // rest waits in the kernel's queues.
    let taken = taken_by_peer(&c, at);
    eprintln!("1 MiB byte bound: {taken} of {at} written bytes taken in");
    assert!(
        taken <= (1 << 20) + 2 * (4 + 256 * 1024) + 64 * 1024,
        "{taken} bytes taken in for a base that took nothing"
    );
    // The base goes on: everything arrives, in order.
    go_on.send(()).expect("release");
    c.set_write_timeout(Some(LIMIT)).expect("timeout");
    std::io::Write::write_all(&mut c, &frames[at..]).expect("the rest");
    for i in 0..100u32 {
        assert_eq!(server.next(), i);
    }
    drop(c);
    server.stop().expect("clean stop");
}
