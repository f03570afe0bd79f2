//! Liveness over real loopback sockets: a peer that goes silent without closing is declared
//! dead and the client reconnects with nothing accepted lost; a server drops a peer that
//! sends no whole message; heartbeats keep an idle connection alive.

mod util;

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use tasktonic_core::{App, Ctx, Handle, Tonic};
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::tcp::{
    CloseReason, Conn, Reconnect, TcpClient, TcpConfig, TcpEvents, TcpServer,
};
use util::{Ev, LIMIT, connect, frame, local, read_frame, serve, write_all};

#[derive(Debug)]
enum Cev {
    Connected,
    Echo(u32),
    Down(String, Vec<u32>),
}

fn number(msg: &Bytes) -> u32 {
    u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]])
}

/// A client that sends what the test asks and reports echoes and losses (with what was
/// handed back).
struct Dialer {
    target: SocketAddr,
    config: TcpConfig,
    conn: Option<Conn<Bytes>>,
    out: Sender<Cev>,
    me: Sender<Handle<Dialer>>,
}

impl Tonic for Dialer {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let conn = TcpClient::new(self.target, LengthDelimited::new())
            .config(self.config.clone())
            .reconnect(Reconnect::fixed(Duration::from_millis(20)))
            .resend(true)
            .start(ctx)
            .expect("a selector");
        self.conn = Some(conn);
        self.me.send(ctx.handle()).ok();
    }
}

impl TcpEvents<Bytes> for Dialer {
    fn on_connected(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, _: SocketAddr) {
        self.out.send(Cev::Connected).ok();
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, msg: Bytes) {
        self.out.send(Cev::Echo(number(&msg))).ok();
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<Bytes>,
        why: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        let unsent = unsent.iter().map(number).collect();
        self.out.send(Cev::Down(why.to_string(), unsent)).ok();
    }
}

/// Message `n`: its number, then filler.
fn message(n: u32) -> Bytes {
    let mut v = n.to_be_bytes().to_vec();
    v.resize(1024, b'.');
    Bytes::from(v)
}

/// Read whole u32 frames from `s` until EOF; the numbers they carry.
fn drain_numbers(mut s: TcpStream) -> Vec<u32> {
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read to EOF");
    let mut numbers = Vec::new();
    let mut rest = &all[..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 4 + len {
            break; // a frame cut by the close: its message was not delivered
        }
        numbers.push(u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]));
        rest = &rest[4 + len..];
    }
    numbers
}

#[test]
fn a_silent_peer_is_declared_dead_and_the_client_reconnects_losing_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (silent_tx, silent) = unbounded::<TcpStream>();
    // The peer: echoes three frames on its first connection, then goes silent (keeps the
    // socket open, stops reading and writing); echoes everything on the next one.
    let peer = std::thread::spawn(move || {
        let (mut first, _) = listener.accept().expect("first");
        first.set_read_timeout(Some(LIMIT)).expect("timeout");
        for _ in 0..3 {
            let p = read_frame(&mut first);
            first.write_all(&frame(&p)).expect("echo");
        }
        silent_tx.send(first).expect("hand over");
        let (mut second, _) = listener.accept().expect("second");
        second.set_read_timeout(Some(LIMIT)).expect("timeout");
        let mut echoed = 0;
        loop {
            let mut h = [0u8; 4];
            match second.read_exact(&mut h) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return echoed,
                Err(e) => panic!("{e}"),
            }
            let mut p = vec![0u8; u32::from_be_bytes(h) as usize];
            second.read_exact(&mut p).expect("payload");
            second.write_all(&frame(&p)).expect("echo");
            echoed += 1;
        }
    });

    let (out, events) = unbounded();
    let (me_tx, me) = unbounded();
    let config = TcpConfig {
        recv_timeout: Some(Duration::from_millis(300)),
        ..TcpConfig::default()
    };
    let app = App::new("silent").tonic(Dialer {
        target: addr,
        config,
        conn: None,
        out,
        me: me_tx,
    });
    let stopper = app.stopper();
    let app_thread = std::thread::spawn(move || app.run());
    let client: Handle<Dialer> = me.recv_timeout(LIMIT).expect("client started");
    let next = || events.recv_timeout(LIMIT).expect("a client event");
    let send = |range: std::ops::Range<u32>| {
        client
            .ask_blocking(LIMIT, move |d, _| {
                let conn = d.conn.as_ref().expect("conn");
                range.into_iter().all(|n| conn.send(message(n)).is_ok())
            })
            .expect("an answer")
    };

    assert!(matches!(next(), Cev::Connected));
    assert!(send(0..3));
    let mut echoed = BTreeSet::new();
    for _ in 0..3 {
        match next() {
            Cev::Echo(n) => assert!(echoed.insert(n)),
            other => panic!("{other:?}"),
        }
    }
    // The peer is silent now: these go to its receive buffer and no byte comes back.
    let first = silent.recv_timeout(LIMIT).expect("the peer went silent");
    assert!(send(3..1000));
    let handed_back = match next() {
        Cev::Down(why, unsent) => {
            assert!(why.contains("sent nothing"), "{why}");
            unsent
        }
        other => panic!("an event from a silent peer: {other:?}"),
    };
    // Reconnected: what was not written is re-sent, then more.
    assert!(matches!(next(), Cev::Connected));
    assert!(send(1000..1010));
    // What the silent peer holds was written to it before the connection was dropped.
    let held = drain_numbers(first);
    let expected: BTreeSet<u32> = (0..1010).collect();
    let delivered_before: BTreeSet<u32> = held.iter().copied().chain(echoed.clone()).collect();
    let mut echoed_after = BTreeSet::new();
    while echoed.len() + echoed_after.len() + held.len() + handed_back.len() < expected.len() {
        match next() {
            Cev::Echo(n) => assert!(echoed_after.insert(n), "{n} echoed twice"),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        handed_back.is_empty(),
        "re-send keeps them: {handed_back:?}"
    );
    // Every message exactly once: echoed before, held by the silent peer, or re-sent after.
    assert!(delivered_before.is_disjoint(&echoed_after));
    let all: BTreeSet<u32> = delivered_before.union(&echoed_after).copied().collect();
    assert_eq!(all, expected);
    stopper.stop();
    app_thread.join().expect("app thread").expect("clean run");
    assert!(peer.join().expect("peer") >= 10);
}

#[test]
fn a_server_drops_a_peer_that_sends_no_whole_message() {
    let config = TcpConfig {
        message_timeout: Some(Duration::from_millis(200)),
        ..TcpConfig::default()
    };
    let server = serve(
        TcpServer::bind(local(), LengthDelimited::new()).config(config),
        true,
    );
    // A whole frame first (an echo proves the connection worked), then a frame trickled in
    // one byte at a time: bytes keep arriving, but never a whole message.
    let mut s = connect(server.addr);
    write_all(&mut s, &frame(b"whole"));
    assert_eq!(read_frame(&mut s), b"whole");
    s.set_nonblocking(true).expect("nonblocking");
    let trickle = frame(&[7u8; 1000]);
    let mut why = None;
    for b in &trickle[..trickle.len() - 1] {
        // The pace of a slowloris peer (the load under test), not a synchronisation: the
        // server's verdict is read from its events.
        std::thread::sleep(Duration::from_millis(20));
        if s.write_all(&[*b]).is_err() {
            break; // dropped: the reason is among the events
        }
        if let Ok(Ev::Disconnected(_, reason, _)) = server.events.try_recv() {
            why = Some(reason);
            break;
        }
    }
    let why = why.unwrap_or_else(
        || match server.until(|e| matches!(e, Ev::Disconnected(..))) {
            Ev::Disconnected(_, reason, _) => reason,
            _ => unreachable!(),
        },
    );
    assert!(why.contains("no complete message"), "{why}");
    drop(s);
    server.stop().expect("stopped");
}

#[test]
fn heartbeats_keep_an_idle_connection_alive() {
    // The server declares a silent peer dead after 400 ms; the client sends nothing but
    // heartbeats (empty frames, every 20 ms: one to two periods apart).
    let server_config = TcpConfig {
        recv_timeout: Some(Duration::from_millis(400)),
        ..TcpConfig::default()
    };
    let server = serve(
        TcpServer::bind(local(), LengthDelimited::new()).config(server_config),
        false,
    );
    let (out, events) = unbounded();
    let (me_tx, me) = unbounded();
    let config = TcpConfig {
        heartbeat: Some(Duration::from_millis(20)),
        ..TcpConfig::default()
    };
    let app = App::new("heartbeat").tonic(Dialer {
        target: server.addr,
        config,
        conn: None,
        out,
        me: me_tx,
    });
    let stopper = app.stopper();
    let app_thread = std::thread::spawn(move || app.run());
    me.recv_timeout(LIMIT).expect("client started");
    assert!(matches!(
        events.recv_timeout(LIMIT).expect("connected"),
        Cev::Connected
    ));
    // Eighty heartbeats span at least four of the server's timeouts: none fired in between.
    let mut beats = 0;
    while beats < 80 {
        match server.next() {
            Ev::Message(_, m) => {
                assert!(m.is_empty(), "a heartbeat is an empty frame");
                beats += 1;
            }
            Ev::Disconnected(_, why, _) => panic!("dropped despite heartbeats: {why}"),
            _ => {}
        }
    }
    stopper.stop();
    app_thread.join().expect("app thread").expect("clean run");
    server.stop().expect("stopped");
}

/// Holds every message until the test opens the gate (a base that falls behind).
struct Lagging {
    server: Option<TcpServer<LengthDelimited>>,
    gate: crossbeam_channel::Receiver<()>,
    out: Sender<String>,
    addr: Sender<(SocketAddr, Handle<Lagging>)>,
}

impl Tonic for Lagging {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        util::start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl TcpEvents<Bytes> for Lagging {
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        self.gate.recv_timeout(LIMIT).ok();
        conn.send(msg).ok();
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
fn a_base_that_falls_behind_does_not_make_a_busy_peer_look_dead() {
    // A window of one message and a 100 ms receive timeout: while the base holds its
    // message, the connection does not read, and the peer's silence is not counted.
    let config = TcpConfig {
        inbound_window: 1,
        recv_timeout: Some(Duration::from_millis(100)),
        ..TcpConfig::default()
    };
    let (gate_tx, gate) = unbounded();
    let (out, events) = unbounded();
    let (addr_tx, addr) = unbounded();
    let server = util::run_app(
        App::new("lagging").tonic(Lagging {
            server: Some(TcpServer::bind(local(), LengthDelimited::new()).config(config)),
            gate,
            out,
            addr: addr_tx,
        }),
        addr,
        events,
    );
    let mut s = connect(server.addr);
    write_all(&mut s, &[frame(b"one"), frame(b"two")].concat());
    // Five timeouts' worth with the base stuck: the connection must still be there.
    assert!(
        server
            .events
            .recv_timeout(Duration::from_millis(500))
            .is_err(),
        "dropped while the base was behind"
    );
    gate_tx.send(()).expect("open");
    gate_tx.send(()).expect("open");
    assert_eq!(read_frame(&mut s), b"one");
    assert_eq!(read_frame(&mut s), b"two");
    drop(s);
    server.stop().expect("stopped");
}
