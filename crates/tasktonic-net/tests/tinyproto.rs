//! tinyproto 3.0 over real sockets: our client and server with both ends sending at once,
//! and raw peers that break the protocol. (The real Python tinyproto is driven by `.ci/run`
//! against `echo_server` and `echo_client`.)

mod util;

use std::io::Read;
use std::net::SocketAddr;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use tasktonic_core::{App, Ctx, Handle, Tonic};
use tasktonic_net::tcp::{CloseReason, Conn, TcpClient, TcpEvents, TcpServer};
use tasktonic_net::tinyproto::TinyProto;
use util::{Ev, LIMIT, connect, local, serve, write_all};

/// Message `i` of the both-ways test: its number, then a size that varies (0 to ~70 KiB).
fn message(i: u32) -> Bytes {
    if i % 7 == 0 {
        return Bytes::new();
    }
    let size = 4 + (i as usize * 977) % 70_000;
    let mut v = vec![(i % 251) as u8; size];
    v[..4].copy_from_slice(&i.to_be_bytes());
    Bytes::from(v)
}

/// Sends `count` messages as soon as it is connected (all queued at once), and reports what
/// comes back.
struct Sender2 {
    addr: SocketAddr,
    count: u32,
    out: Sender<Bytes>,
    down: Sender<(String, usize)>,
}

impl Tonic for Sender2 {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        TcpClient::new(self.addr, TinyProto::client())
            .start(ctx)
            .expect("started");
    }
}

impl TcpEvents<Bytes> for Sender2 {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        // Queued at once, before tinyproto's handshake is done: they wait for it, then go
        // one transfer at a time.
        for i in 0..self.count {
            conn.send(message(i)).expect("queued");
        }
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, msg: Bytes) {
        self.out.send(msg).ok();
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<Bytes>,
        why: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        self.down.send((why.to_string(), unsent.len())).ok();
    }
}

#[test]
fn both_ends_sending_at_once_never_collide_and_every_message_arrives_whole_in_order() {
    // The server echoes each message as it arrives while the client keeps sending: the two
    // ends start transfers at the same moments, again and again.
    let server = serve(TcpServer::bind(local(), TinyProto::server()), true);
    let count = 300;
    let (out, echoes) = unbounded();
    let (down, _downs) = unbounded();
    let app = App::new("tinyproto-client").tonic(Sender2 {
        addr: server.addr,
        count,
        out,
        down,
    });
    let stopper = app.stopper();
    let client = std::thread::spawn(move || app.run());
    for i in 0..count {
        let echo = echoes.recv_timeout(LIMIT).expect("an echo in time");
        assert_eq!(echo, message(i), "echo {i}");
    }
    stopper.stop();
    client.join().expect("client thread").expect("client ran");
    server.stop().expect("server stopped");
}

/// Handshake as a raw peer; returns the server's handshake byte.
fn raw_handshake(s: &mut std::net::TcpStream) -> u8 {
    write_all(s, &[0xFF]);
    let mut b = [0u8; 1];
    s.read_exact(&mut b).expect("the server's handshake byte");
    b[0]
}

#[test]
fn a_message_over_the_maximum_is_answered_0x00_and_the_connection_closes() {
    let server = serve(
        TcpServer::bind(local(), TinyProto::server().max_size(1000)),
        false,
    );
    let mut s = connect(server.addr);
    assert_eq!(raw_handshake(&mut s), 0xFF);
    write_all(&mut s, &1001u32.to_be_bytes());
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("to the end");
    assert_eq!(rest, [0x00], "the refusal, then the end");
    drop(s);
    let e = server.until(|e| matches!(e, Ev::Codec(..)));
    assert!(
        matches!(&e, Ev::Codec(_, why) if why.contains("1001 bytes exceeds the maximum of 1000")),
        "{e:?}"
    );
    server.stop().expect("stopped");
}

#[test]
fn a_bad_handshake_byte_is_a_clear_error() {
    let server = serve(TcpServer::bind(local(), TinyProto::server()), false);
    let mut s = connect(server.addr);
    write_all(&mut s, b"GET / HTTP/1.1\r\n\r\n");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("to the end");
    assert!(
        rest.is_empty() || rest == [0xFF],
        "only our handshake byte: {rest:?}"
    );
    drop(s);
    let e = server.until(|e| matches!(e, Ev::Codec(..)));
    assert!(
        matches!(&e, Ev::Codec(_, why) if why.contains("initialisation error") && why.contains("0x47")),
        "{e:?}"
    );
    server.stop().expect("stopped");
}

#[test]
fn the_end_of_the_stream_inside_a_message_is_truncated_never_a_message() {
    let server = serve(TcpServer::bind(local(), TinyProto::server()), false);
    let mut s = connect(server.addr);
    assert_eq!(raw_handshake(&mut s), 0xFF);
    write_all(&mut s, &[0, 0, 0, 10]);
    let mut go = [0u8; 1];
    s.read_exact(&mut go).expect("the go-ahead");
    assert_eq!(go, [0xFF]);
    write_all(&mut s, b"abc");
    drop(s);
    let e = server.until(|e| matches!(e, Ev::Codec(..) | Ev::Message(..)));
    assert!(
        matches!(&e, Ev::Codec(_, why) if why.contains("stream ended inside a frame (3 bytes")),
        "{e:?}"
    );
    server.stop().expect("stopped");
}

#[test]
fn a_full_server_answers_0xfe_itself_and_closes() {
    let server = serve(
        TcpServer::bind(local(), TinyProto::server().limit(1)),
        false,
    );
    let mut first = connect(server.addr);
    assert_eq!(raw_handshake(&mut first), 0xFF);
    let mut second = connect(server.addr);
    let mut all = Vec::new();
    second.read_to_end(&mut all).expect("to the end");
    assert_eq!(all, [0xFE], "one byte 0xFE, then the end");
    // The first leaves: the next one is welcome again.
    drop(first);
    server.until(|e| matches!(e, Ev::Disconnected(..)));
    let mut third = connect(server.addr);
    assert_eq!(raw_handshake(&mut third), 0xFF);
    drop((second, third));
    server.stop().expect("stopped");
}

/// Sends one message to every client that connects; reports what comes back unsent.
struct Greeter {
    server: Option<TcpServer<TinyProto>>,
    out: Sender<(String, Vec<Bytes>)>,
    addr: Sender<(SocketAddr, Handle<Greeter>)>,
}

impl Tonic for Greeter {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        util::start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl TcpEvents<Bytes> for Greeter {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        conn.send(Bytes::from_static(b"hello")).expect("queued");
        conn.send(Bytes::from_static(b"second")).expect("queued");
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<Bytes>,
        why: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        self.out.send((why.to_string(), unsent)).ok();
    }
}

fn greeter() -> util::Running<(String, Vec<Bytes>), Greeter> {
    let (out, events) = unbounded();
    let (addr, addr_rx) = unbounded();
    let g = Greeter {
        server: Some(TcpServer::bind(local(), TinyProto::server())),
        out,
        addr,
    };
    util::run_app(App::new("tinyproto-greeter").tonic(g), addr_rx, events)
}

#[test]
fn a_message_waiting_for_its_go_ahead_when_the_peer_leaves_is_handed_back() {
    let server = greeter();
    let mut s = connect(server.addr);
    assert_eq!(raw_handshake(&mut s), 0xFF);
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("the size of the greeting");
    assert_eq!(u32::from_be_bytes(size), 5);
    // No go-ahead: the peer leaves. Both messages come back, in order.
    drop(s);
    let (why, unsent) = server.next();
    assert_eq!(why, "closed by the peer");
    assert_eq!(
        unsent,
        vec![Bytes::from_static(b"hello"), Bytes::from_static(b"second")]
    );
    server.stop().expect("stopped");
}

#[test]
fn a_message_the_peer_refuses_is_an_error_and_handed_back() {
    let server = greeter();
    let mut s = connect(server.addr);
    assert_eq!(raw_handshake(&mut s), 0xFF);
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("the size of the greeting");
    write_all(&mut s, &[0x00]); // refused, as tinyproto does for a size over its maximum
    drop(s);
    let (why, unsent) = server.next();
    assert!(why.contains("refused our message of 5 bytes"), "{why}");
    assert_eq!(unsent.len(), 2, "{unsent:?}");
    server.stop().expect("stopped");
}
