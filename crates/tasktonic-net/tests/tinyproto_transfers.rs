//! tinyproto transfers at their edges, over real sockets: a graceful close with messages
//! still waiting for their go-ahead, a connection lost in the middle of a payload, a client
//! that re-sends a held message after reconnecting, both ends starting a message at the same
//! moment (played deterministically by a raw peer), a bad status byte, and a busy client
//! right after its handshake.

mod util;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, unbounded};
use tasktonic_core::{App, Ctx, Tonic};
use tasktonic_net::codec::CodecError;
use tasktonic_net::tcp::{
    CloseReason, Conn, OnMalformed, Reconnect, TcpClient, TcpConfig, TcpEvents, TcpServer,
};
use tasktonic_net::tinyproto::TinyProto;
#[cfg(feature = "tls")]
use tasktonic_net::transport::{Tls, TlsAcceptor, TlsConnector};
use util::{LIMIT, connect, local, write_all};

/// What a [`Burst`] saw.
#[derive(Debug)]
enum Got {
    Up(Conn<Bytes>),
    Msg(Bytes),
    Codec(String),
    /// The reason, the messages handed back, and `Conn::queued` after the hand-back.
    Down(String, Vec<Bytes>, usize),
}

enum Role {
    Serve(TcpServer<TinyProto>),
    Dial(TcpClient<TinyProto>),
}

/// Sends `msgs` as soon as a connection is up (all queued at once), then closes it if
/// `close`; reports everything.
struct Burst {
    role: Option<Role>,
    msgs: Vec<Bytes>,
    close: bool,
    out: Sender<Got>,
    addr: Sender<SocketAddr>,
}

impl Tonic for Burst {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        match self.role.take() {
            Some(Role::Serve(server)) => {
                let listening = server.start(ctx).expect("bound");
                self.addr.send(listening.local_addr()).ok();
            }
            Some(Role::Dial(client)) => {
                client.start(ctx).expect("started");
                self.addr.send(local()).ok();
            }
            None => {}
        }
    }
}

impl TcpEvents<Bytes> for Burst {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        self.out.send(Got::Up(conn.clone())).ok();
        for m in self.msgs.drain(..) {
            conn.send(m).expect("queued");
        }
        if self.close {
            conn.close();
        }
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, msg: Bytes) {
        self.out.send(Got::Msg(msg)).ok();
    }
    fn on_codec_error(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, e: &CodecError) {
        self.out.send(Got::Codec(e.to_string())).ok();
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        conn: &Conn<Bytes>,
        why: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        self.out
            .send(Got::Down(why.to_string(), unsent, conn.queued()))
            .ok();
    }
}

/// A [`Burst`] in an app on its own thread.
struct Running {
    addr: SocketAddr,
    got: Receiver<Got>,
    stopper: tasktonic_core::Stopper,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    fn next(&self) -> Got {
        self.got.recv_timeout(LIMIT).expect("an event in time")
    }

    /// The next event that is not `Up`.
    fn next_event(&self) -> Got {
        loop {
            match self.next() {
                Got::Up(_) => {}
                other => return other,
            }
        }
    }

    fn stop(self) {
        self.stopper.stop();
        self.thread.join().expect("app thread");
    }
}

fn run(role: Role, msgs: Vec<Bytes>, close: bool) -> Running {
    let (out, got) = unbounded();
    let (addr_tx, addr_rx) = unbounded();
    let app = App::new("tinyproto-burst").tonic(Burst {
        role: Some(role),
        msgs,
        close,
        out,
        addr: addr_tx,
    });
    let stopper = app.stopper();
    let thread = std::thread::spawn(move || {
        app.run().expect("the app ran");
    });
    let addr = addr_rx.recv_timeout(LIMIT).expect("started");
    Running {
        addr,
        got,
        stopper,
        thread,
    }
}

/// A linger far past the test's bound: a close that waited for it would fail the test.
fn long_linger() -> TcpConfig {
    TcpConfig {
        close_linger: Duration::from_secs(120),
        ..TcpConfig::default()
    }
}

/// Messages of many sizes, an empty one among them (a size with no payload).
fn burst_messages() -> Vec<Bytes> {
    (0..40u8)
        .map(|i| match i % 5 {
            0 => Bytes::new(),
            1 => Bytes::from(vec![i; 200_000]),
            _ => Bytes::from(format!("message {i}").repeat(usize::from(i) + 1)),
        })
        .collect()
}

/// Receive `want` messages, then the end, from a burst on the other side.
fn expect_all_then_end(rx: &Running, want: &[Bytes]) {
    for (i, m) in want.iter().enumerate() {
        match rx.next_event() {
            Got::Msg(got) => assert_eq!(&got, m, "message {i}"),
            other => panic!("message {i}: {other:?}"),
        }
    }
    match rx.next_event() {
        Got::Down(why, unsent, queued) => {
            assert_eq!(why, "closed by the peer");
            assert!(unsent.is_empty() && queued == 0, "{unsent:?} {queued}");
        }
        other => panic!("{other:?}"),
    }
}

fn expect_closed_with_nothing_left(tx: &Running) {
    match tx.next_event() {
        Got::Down(why, unsent, queued) => {
            assert_eq!(why, "closed");
            assert!(unsent.is_empty(), "handed back: {}", unsent.len());
            assert_eq!(queued, 0, "nothing may stay counted as queued");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_client_that_closes_right_after_queueing_delivers_every_message_first() {
    let want = burst_messages();
    let receiver = run(
        Role::Serve(TcpServer::bind(local(), TinyProto::server()).config(long_linger())),
        Vec::new(),
        false,
    );
    let sender = run(
        Role::Dial(TcpClient::new(receiver.addr, TinyProto::client()).config(long_linger())),
        want.clone(),
        true,
    );
    expect_all_then_end(&receiver, &want);
    expect_closed_with_nothing_left(&sender);
    sender.stop();
    receiver.stop();
}

#[test]
fn a_server_that_closes_right_after_queueing_delivers_every_message_first() {
    let want = burst_messages();
    let sender = run(
        Role::Serve(TcpServer::bind(local(), TinyProto::server()).config(long_linger())),
        want.clone(),
        true,
    );
    let receiver = run(
        Role::Dial(TcpClient::new(sender.addr, TinyProto::client()).config(long_linger())),
        Vec::new(),
        false,
    );
    expect_all_then_end(&receiver, &want);
    expect_closed_with_nothing_left(&sender);
    sender.stop();
    receiver.stop();
}

#[cfg(feature = "tls")]
#[test]
fn over_tls_a_close_right_after_queueing_delivers_every_message_first() {
    let pki = util::pki::Pki::new("tinyproto CA");
    let acceptor =
        TlsAcceptor::from_pem_files(pki.cert_file(), pki.key_file()).expect("certificate");
    let connector = TlsConnector::with_roots_pem_file(pki.ca_file()).expect("roots");
    let want = burst_messages();
    let sender = run(
        Role::Serve(
            TcpServer::bind(local(), TinyProto::server())
                .tls(&acceptor)
                .config(long_linger()),
        ),
        want.clone(),
        true,
    );
    let receiver = run(
        Role::Dial(
            TcpClient::new(sender.addr, TinyProto::client())
                .tls(Tls::client(&connector, "localhost").expect("name"))
                .config(long_linger()),
        ),
        Vec::new(),
        false,
    );
    expect_all_then_end(&receiver, &want);
    expect_closed_with_nothing_left(&sender);
    sender.stop();
    receiver.stop();
}

/// Handshake as a raw peer (our byte first, then the other end's).
fn raw_handshake(s: &mut TcpStream) {
    write_all(s, &[0xFF]);
    let mut b = [0u8; 1];
    s.read_exact(&mut b).expect("the handshake byte");
    assert_eq!(b, [0xFF]);
}

fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).expect("bytes in time");
    v
}

fn read_size(s: &mut TcpStream) -> usize {
    let b = read_n(s, 4);
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

#[test]
fn a_message_cut_off_in_the_middle_of_its_payload_is_handed_back() {
    // Far more than the socket buffers hold: the payload is still being written when the
    // peer resets.
    let big = Bytes::from(vec![7u8; 64 << 20]);
    let sender = run(
        Role::Serve(TcpServer::bind(local(), TinyProto::server())),
        vec![big.clone(), Bytes::from_static(b"after")],
        false,
    );
    let mut s = connect(sender.addr);
    raw_handshake(&mut s);
    assert_eq!(read_size(&mut s), big.len());
    write_all(&mut s, &[0xFF]);
    read_n(&mut s, 1000);
    // A reset, not a close: the rest can never arrive.
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(s);
    match sender.next_event() {
        Got::Down(_, unsent, queued) => {
            assert_eq!(unsent.len(), 2, "both handed back");
            assert_eq!(unsent[0], big);
            assert_eq!(&unsent[1][..], b"after");
            assert_eq!(queued, 0);
        }
        other => panic!("{other:?}"),
    }
    sender.stop();
}

#[test]
fn a_resending_client_sends_the_message_that_awaited_its_go_ahead_again() {
    let listener = TcpListener::bind(local()).expect("bound");
    let addr = listener.local_addr().expect("address");
    let client = TcpClient::new(addr, TinyProto::client())
        .reconnect(Reconnect::fixed(Duration::from_millis(20)))
        .resend(true)
        .config(long_linger());
    let sender = run(
        Role::Dial(client),
        vec![Bytes::from_static(b"first"), Bytes::from_static(b"second")],
        false,
    );
    // The first server takes the size and goes away without a go-ahead.
    let (mut s, _) = listener.accept().expect("first connection");
    raw_handshake(&mut s);
    assert_eq!(read_size(&mut s), 5);
    drop(s);
    // The second gets both, in order, the first one again from its start.
    let (mut s, _) = listener.accept().expect("second connection");
    raw_handshake(&mut s);
    for want in [&b"first"[..], b"second"] {
        assert_eq!(read_size(&mut s), want.len());
        write_all(&mut s, &[0xFF]);
        assert_eq!(read_n(&mut s, want.len()), want);
    }
    // Nothing stays counted: a close ends at once (not after the linger).
    let conn = loop {
        if let Got::Up(conn) = sender.next() {
            break conn;
        }
    };
    conn.close();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("our end");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(conn.queued(), 0);
    drop(s);
    sender.stop();
}

#[test]
fn when_both_ends_start_at_once_the_client_sends_first_then_takes_the_servers() {
    // The raw server plays our server's side of a collision: its size crossed the client's,
    // so it yields — its go-ahead for the client's message follows its own size.
    let listener = TcpListener::bind(local()).expect("bound");
    let client = TcpClient::new(listener.local_addr().expect("address"), TinyProto::client());
    let sender = run(Role::Dial(client), vec![Bytes::from_static(b"ping")], false);
    let (mut s, _) = listener.accept().expect("connection");
    raw_handshake(&mut s);
    assert_eq!(read_size(&mut s), 4);
    let mut wire = 5u32.to_be_bytes().to_vec();
    wire.push(0xFF);
    write_all(&mut s, &wire);
    assert_eq!(read_n(&mut s, 4), b"ping", "the client's payload first");
    assert_eq!(read_n(&mut s, 1), [0xFF], "then its go-ahead for ours");
    write_all(&mut s, b"hello");
    match sender.next_event() {
        Got::Msg(m) => assert_eq!(&m[..], b"hello"),
        other => panic!("{other:?}"),
    }
    drop(s);
    sender.stop();
}

#[test]
fn when_both_ends_start_at_once_the_server_yields_to_the_client() {
    let sender = run(
        Role::Serve(TcpServer::bind(local(), TinyProto::server())),
        vec![Bytes::from_static(b"hello")],
        false,
    );
    let mut s = connect(sender.addr);
    raw_handshake(&mut s);
    assert_eq!(read_size(&mut s), 5, "the server's size");
    // The raw client's size crosses it (as if sent before the server's arrived).
    write_all(&mut s, &4u32.to_be_bytes());
    assert_eq!(read_n(&mut s, 1), [0xFF], "the server yields: our go-ahead");
    write_all(&mut s, b"ping");
    match sender.next_event() {
        Got::Msg(m) => assert_eq!(&m[..], b"ping"),
        other => panic!("{other:?}"),
    }
    // Now ours for the server's message.
    write_all(&mut s, &[0xFF]);
    assert_eq!(read_n(&mut s, 5), b"hello");
    drop(s);
    sender.stop();
}

#[test]
fn a_bad_status_byte_closes_the_connection_even_when_bad_frames_are_skipped() {
    let skip = TcpConfig {
        on_malformed: OnMalformed::Skip,
        ..TcpConfig::default()
    };
    let sender = run(
        Role::Serve(TcpServer::bind(local(), TinyProto::server()).config(skip)),
        vec![Bytes::from_static(b"hello")],
        false,
    );
    let mut s = connect(sender.addr);
    raw_handshake(&mut s);
    assert_eq!(read_size(&mut s), 5);
    write_all(&mut s, &[0xF5]);
    match sender.next_event() {
        Got::Codec(e) => assert!(e.contains("status 0xf5"), "{e}"),
        other => panic!("{other:?}"),
    }
    match sender.next_event() {
        Got::Down(why, unsent, _) => {
            assert!(why.contains("protocol error"), "{why}");
            assert_eq!(unsent.len(), 1, "the message is handed back");
        }
        other => panic!("{other:?}"),
    }
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("the end");
    sender.stop();
}

#[test]
fn a_client_busy_receiving_right_after_its_handshake_is_not_timed_out() {
    let timeout = Duration::from_millis(300);
    let listener = TcpListener::bind(local()).expect("bound");
    // The connection's own later timer, on the same thread: if the connect timeout were
    // still armed after the handshake, it would end the connection first.
    let config = TcpConfig {
        connect_timeout: timeout,
        recv_timeout: Some(timeout * 3),
        ..TcpConfig::default()
    };
    let client =
        TcpClient::new(listener.local_addr().expect("address"), TinyProto::client()).config(config);
    let receiver = run(Role::Dial(client), Vec::new(), false);
    let (mut s, _) = listener.accept().expect("connection");
    // The handshake byte with the first half of a size behind it: a transfer is starting,
    // and the peer goes silent in the middle of it.
    write_all(&mut s, &[0xFF, 0, 0]);
    assert_eq!(read_n(&mut s, 1), [0xFF]);
    match receiver.next() {
        Got::Up(_) => {}
        other => panic!("{other:?}"),
    }
    // Mid-transfer past the connect timeout, the connection is still up: what ends it is
    // the receive timeout, which comes well after the connect timeout would have.
    match receiver.next_event() {
        Got::Down(why, _, _) => assert!(why.contains("sent nothing"), "{why}"),
        other => panic!("{other:?}"),
    }
    drop(s);
    receiver.stop();
}
