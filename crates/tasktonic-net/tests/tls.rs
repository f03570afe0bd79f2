//! TLS under every codec, over real loopback sockets: echo, records split byte by byte,
//! certificate refusals, STARTTLS both ways (and its injection refused), truncation, and
//! interop with `openssl s_server` / `openssl s_client`.
#![cfg(feature = "tls")]

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tasktonic_core::{App, Ctx, Handle, Tonic};
use tasktonic_net::codec::{Codec, LengthDelimited, Lines, MsgPack, RawBytes};
use tasktonic_net::tcp::{CloseReason, Conn, TcpClient, TcpEvents, TcpServer};
use tasktonic_net::transport::{Tls, TlsAcceptor, TlsConnector, TlsError, TlsSession};
use util::pki::Pki;
use util::{Running, connect, frame, local, run_app};

/// What a peer reports.
#[derive(Debug, Clone, PartialEq)]
enum Tev<M> {
    Connected,
    Secured(TlsSession),
    Message(M),
    /// The close reason's text, and whether it was a refused certificate.
    Down(String, bool),
    /// `upgrade_tls` said no.
    UpgradeRefused(String),
    /// What a lost connection handed back.
    HandedBack(Vec<M>),
}

enum Start<C> {
    Serve(TcpServer<C>),
    Dial(TcpClient<C>),
}

/// A server or a client that reports its events, echoes (a server), and can upgrade to TLS
/// when a given message arrives.
struct Peer<C: Codec> {
    start: Option<Start<C>>,
    echo: bool,
    /// Sent once connected (on every connect if `greet_always`).
    greet: Vec<C::Message>,
    greet_always: bool,
    /// When this message arrives: upgrade, with the go-ahead (if any).
    upgrade_on: Option<(C::Message, Tls, Option<C::Message>)>,
    /// Sent once the upgrade's handshake is done.
    after_secured: Vec<C::Message>,
    /// Sent right after asking for the upgrade (meant for TLS).
    after_request: Vec<C::Message>,
    /// When this message arrives, these are sent instead of an echo.
    answers: Vec<(C::Message, Vec<C::Message>)>,
    out: Sender<Tev<C::Message>>,
    addr: Sender<(SocketAddr, Handle<Peer<C>>)>,
}

impl<C: Codec> Peer<C> {
    fn new(start: Start<C>) -> (Peer<C>, crossbeam_channel::Receiver<Tev<C::Message>>) {
        let (out, events) = unbounded();
        let (addr, _) = unbounded();
        let peer = Peer {
            start: Some(start),
            echo: false,
            greet: Vec::new(),
            greet_always: false,
            upgrade_on: None,
            after_secured: Vec::new(),
            after_request: Vec::new(),
            answers: Vec::new(),
            out,
            addr,
        };
        (peer, events)
    }
}

impl<C: Codec> Tonic for Peer<C>
where
    C::Message: Clone + PartialEq,
{
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        match self.start.take() {
            Some(Start::Serve(server)) => {
                let listening = server.start(ctx).expect("bound");
                self.addr.send((listening.local_addr(), ctx.handle())).ok();
            }
            Some(Start::Dial(client)) => {
                client.start(ctx).expect("a selector");
                self.addr.send((local(), ctx.handle())).ok();
            }
            None => {}
        }
    }
}

impl<C: Codec> TcpEvents<C::Message> for Peer<C>
where
    C::Message: Clone + PartialEq,
{
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<C::Message>, _: SocketAddr) {
        self.out.send(Tev::Connected).ok();
        let greet = if self.greet_always {
            self.greet.clone()
        } else {
            std::mem::take(&mut self.greet)
        };
        for m in greet {
            conn.send(m).expect("greeting accepted");
        }
    }

    fn on_secured(&mut self, _: &mut Ctx<Self>, conn: &Conn<C::Message>, session: &TlsSession) {
        self.out.send(Tev::Secured(session.clone())).ok();
        for m in self.after_secured.drain(..) {
            conn.send(m).expect("accepted after the upgrade");
        }
    }

    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<C::Message>, msg: C::Message) {
        self.out.send(Tev::Message(msg.clone())).ok();
        if self
            .upgrade_on
            .as_ref()
            .is_some_and(|(trigger, _, _)| *trigger == msg)
        {
            if let Some((_, tls, go_ahead)) = self.upgrade_on.take() {
                match conn.upgrade_tls(tls, go_ahead) {
                    Ok(()) => {
                        for m in self.after_request.drain(..) {
                            conn.send(m).expect("accepted after the request");
                        }
                    }
                    Err(e) => {
                        self.out.send(Tev::UpgradeRefused(e.to_string())).ok();
                    }
                }
            }
            return;
        }
        if let Some((_, answer)) = self.answers.iter().find(|(q, _)| *q == msg) {
            for a in answer.clone() {
                conn.send(a).expect("answer accepted");
            }
            return;
        }
        if self.echo {
            conn.send(msg).expect("echo accepted");
        }
    }

    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<C::Message>,
        why: &CloseReason,
        unsent: Vec<C::Message>,
    ) {
        let cert = matches!(why, CloseReason::Tls(e) if e.is_certificate_error());
        if !unsent.is_empty() {
            self.out.send(Tev::HandedBack(unsent)).ok();
        }
        self.out.send(Tev::Down(why.to_string(), cert)).ok();
    }
}

type Events<M> = crossbeam_channel::Receiver<Tev<M>>;

fn run<C: Codec>(mut peer: Peer<C>, events: Events<C::Message>) -> Running<Tev<C::Message>, Peer<C>>
where
    C::Message: Clone + PartialEq,
{
    let (addr_tx, addr) = unbounded();
    peer.addr = addr_tx;
    run_app(App::new("tls-test").tonic(peer), addr, events)
}

/// Places a peer on the selector catalyst (the co-located layout: its sparkles run on the
/// connection's thread, inline where they can).
struct Colocate<C: Codec>(Option<Peer<C>>);

impl<C: Codec> Tonic for Colocate<C>
where
    C::Message: Clone + PartialEq,
{
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let selector = tasktonic_net::Selector::default_for(ctx).expect("a selector");
        if let Some(peer) = self.0.take() {
            ctx.infusion(peer)
                .catalyst(selector.catalyst())
                .spawn()
                .expect("spawned");
        }
    }
}

fn run_colocated<C: Codec>(
    mut peer: Peer<C>,
    events: Events<C::Message>,
) -> Running<Tev<C::Message>, Peer<C>>
where
    C::Message: Clone + PartialEq,
{
    let (addr_tx, addr) = unbounded();
    peer.addr = addr_tx;
    run_app(
        App::new("tls-test").tonic(Colocate(Some(peer))),
        addr,
        events,
    )
}

fn tls_server<C: Codec>(codec: C, pki: &Pki) -> Running<Tev<C::Message>, Peer<C>>
where
    C::Message: Clone + PartialEq,
{
    let acceptor =
        TlsAcceptor::from_pem_files(pki.cert_file(), pki.key_file()).expect("certificate");
    let (mut peer, events) =
        Peer::new(Start::Serve(TcpServer::bind(local(), codec).tls(&acceptor)));
    peer.echo = true;
    run(peer, events)
}

fn connector(pki: &Pki) -> TlsConnector {
    TlsConnector::with_roots_pem_file(pki.ca_file()).expect("roots")
}

/// A client of `addr` over TLS for `name`, sending `greet` once up.
fn tls_client<C: Codec>(
    addr: SocketAddr,
    codec: C,
    tls: Tls,
    greet: Vec<C::Message>,
) -> Running<Tev<C::Message>, Peer<C>>
where
    C::Message: Clone + PartialEq,
{
    let (mut peer, events) = Peer::new(Start::Dial(TcpClient::new(addr, codec).tls(tls)));
    peer.greet = greet;
    run(peer, events)
}

/// Collect the next `n` messages a peer reports (skipping other events).
fn messages<M: Clone + PartialEq + std::fmt::Debug>(
    run: &Running<Tev<M>, impl Sized>,
    n: usize,
) -> Vec<M> {
    (0..n)
        .map(
            |_| match run.until(|e| matches!(e, Tev::Message(_) | Tev::Down(..))) {
                Tev::Message(m) => m,
                other => panic!("expected a message, got {other:?}"),
            },
        )
        .collect()
}

fn the_down_reason<M: Clone + PartialEq + std::fmt::Debug>(
    run: &Running<Tev<M>, impl Sized>,
) -> (String, bool) {
    match run.until(|e| matches!(e, Tev::Down(..))) {
        Tev::Down(why, cert) => (why, cert),
        _ => unreachable!(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    n: u32,
    text: String,
}

#[test]
fn echo_over_tls_for_every_length_prefixed_message_size() {
    let pki = Pki::new("echo CA");
    let server = tls_server(LengthDelimited::new(), &pki);
    // Small, record-sized, and far larger than rustls's 16 KiB plaintext buffer.
    let sent: Vec<Bytes> = [0usize, 1, 64, 16 * 1024, 16 * 1024 + 1, 200_000]
        .iter()
        .enumerate()
        .map(|(i, &n)| Bytes::from(vec![b"abcdef"[i]; n]))
        .collect();
    let tls = Tls::client(&connector(&pki), "localhost").expect("name");
    let client = tls_client(server.addr, LengthDelimited::new(), tls, sent.clone());
    match client.until(|e| matches!(e, Tev::Secured(_))) {
        Tev::Secured(s) => assert!(s.version.contains("TLS"), "{s:?}"),
        _ => unreachable!(),
    }
    assert_eq!(messages(&client, sent.len()), sent);
    client.stop().expect("client stopped");
    server.stop().expect("server stopped");
}

#[test]
fn echo_over_tls_with_messagepack_lines_and_raw_bytes() {
    let pki = Pki::new("codec CA");
    let tls = || Tls::client(&connector(&pki), "localhost").expect("name");

    let server = tls_server(MsgPack::<Note>::new(), &pki);
    let notes: Vec<Note> = (0..50)
        .map(|n| Note {
            n,
            text: "x".repeat(n as usize * 100),
        })
        .collect();
    let client = tls_client(server.addr, MsgPack::<Note>::new(), tls(), notes.clone());
    assert_eq!(messages(&client, notes.len()), notes);
    client.stop().expect("stopped");
    server.stop().expect("stopped");

    let server = tls_server(Lines::new(), &pki);
    let lines: Vec<String> = (0..50)
        .map(|i| format!("line {i} {}", "y".repeat(i * 50)))
        .collect();
    let client = tls_client(server.addr, Lines::new(), tls(), lines.clone());
    assert_eq!(messages(&client, lines.len()), lines);
    client.stop().expect("stopped");
    server.stop().expect("stopped");

    // Raw bytes: a stream, so compare what arrived as a whole.
    let server = tls_server(RawBytes::default(), &pki);
    let chunks: Vec<Bytes> = (0..20u8).map(|i| Bytes::from(vec![i; 3000])).collect();
    let want: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
    let client = tls_client(server.addr, RawBytes::default(), tls(), chunks);
    let mut got = Vec::new();
    while got.len() < want.len() {
        match client.until(|e| matches!(e, Tev::Message(_) | Tev::Down(..))) {
            Tev::Message(b) => got.extend_from_slice(&b),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, want);
    client.stop().expect("stopped");
    server.stop().expect("stopped");
}

/// A blocking rustls client on a std socket, trusting `pki`'s CA.
fn blocking_client(addr: SocketAddr, pki: &Pki) -> (rustls::ClientConnection, std::net::TcpStream) {
    let config = connector(pki).rustls_config().clone();
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client");
    (conn, connect(addr))
}

/// Run `conn` until its handshake is done, writing each record byte by byte.
fn handshake_bytewise(conn: &mut rustls::ClientConnection, sock: &mut std::net::TcpStream) {
    while conn.is_handshaking() {
        flush_bytewise(conn, sock);
        if conn.is_handshaking() && conn.wants_read() {
            conn.read_tls(sock).expect("read");
            conn.process_new_packets().expect("handshake");
        }
    }
    flush_bytewise(conn, sock);
}

fn flush_bytewise(conn: &mut rustls::ClientConnection, sock: &mut std::net::TcpStream) {
    let mut records = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut records).expect("records");
    }
    for b in records {
        sock.write_all(&[b]).expect("one byte");
    }
}

/// Read plaintext until `n` bytes arrived.
fn read_plain(
    conn: &mut rustls::ClientConnection,
    sock: &mut std::net::TcpStream,
    n: usize,
) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let mut buf = [0u8; 16 * 1024];
        match conn.reader().read(&mut buf) {
            Ok(k) if k > 0 => {
                got.extend_from_slice(&buf[..k]);
                continue;
            }
            Ok(_) => panic!("closed early"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        conn.read_tls(sock).expect("read");
        conn.process_new_packets().expect("records");
    }
    got
}

#[test]
fn tls_records_split_byte_by_byte_still_make_whole_messages() {
    let pki = Pki::new("split CA");
    let server = tls_server(LengthDelimited::new(), &pki);
    let (mut conn, mut sock) = blocking_client(server.addr, &pki);
    handshake_bytewise(&mut conn, &mut sock);
    let payloads: Vec<Vec<u8>> = [5usize, 40_000, 0, 17_000]
        .iter()
        .map(|&n| (0..n).map(|i| u8::try_from(i % 251).unwrap_or(0)).collect())
        .collect();
    let mut wire = Vec::new();
    for p in &payloads {
        wire.extend(frame(p));
    }
    conn.writer().write_all(&wire).expect("plaintext");
    flush_bytewise(&mut conn, &mut sock);
    let echoed = read_plain(&mut conn, &mut sock, wire.len());
    assert_eq!(echoed, wire);
    let n = payloads.len();
    let got = (0..n)
        .filter(|_| {
            matches!(
                server.until(|e| matches!(e, Tev::Message(_))),
                Tev::Message(_)
            )
        })
        .count();
    assert_eq!(got, n, "each frame arrived whole, once");
    conn.send_close_notify();
    flush_bytewise(&mut conn, &mut sock);
    drop(sock);
    server.stop().expect("stopped");
}

/// A TLS flood server (`total` frames of `size` bytes to each connection, under the given
/// watermarks) and a blocking client whose handshake is done.
fn tls_flood(
    high: usize,
    low: usize,
    total: u32,
    size: usize,
) -> (
    Running<String, util::Flood>,
    rustls::ClientConnection,
    std::net::TcpStream,
) {
    let pki = Pki::new("flood CA");
    let acceptor = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
        .expect("certificate");
    let config = tasktonic_net::tcp::TcpConfig {
        high_watermark: high,
        low_watermark: low,
        ..Default::default()
    };
    let server = util::flood_server(
        TcpServer::bind(local(), LengthDelimited::new())
            .config(config)
            .tls(&acceptor),
        total,
        size,
    );
    let (mut conn, mut sock) = blocking_client(server.addr, &pki);
    handshake_bytewise(&mut conn, &mut sock);
    (server, conn, sock)
}

#[test]
fn back_pressure_reaches_the_sender_over_tls_and_everything_arrives_in_order() {
    let (server, conn, sock) = tls_flood(64, 16, 2_000, 16 * 1024);
    // Not reading: 32 MB fit neither the socket buffers nor rustls's: the sender must meet
    // the watermark.
    let queued = util::backpressure_queued(&server);
    assert!(queued <= 64, "bounded by the high watermark, was {queued}");
    let reader = std::thread::spawn(move || {
        let mut tls = rustls::StreamOwned::new(conn, sock);
        for i in 0..2_000u32 {
            let mut h = [0u8; 4];
            tls.read_exact(&mut h).expect("header");
            let mut f = vec![0u8; u32::from_be_bytes(h) as usize];
            tls.read_exact(&mut f).expect("frame");
            assert_eq!(f.len(), 16 * 1024);
            assert_eq!(u32::from_be_bytes([f[0], f[1], f[2], f[3]]), i);
        }
        // Then the server's close_notify: a clean end, not a truncation.
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).expect("a clean end");
        assert!(rest.is_empty());
    });
    util::flood_ends_cleanly_after_writable(&server);
    reader.join().expect("all frames in order");
    server.stop().expect("stopped");
}

#[test]
fn a_reset_over_tls_hands_back_what_was_not_written() {
    // 128 MB: cannot all be written before the reset.
    let (server, mut conn, mut sock) = tls_flood(10_000, 100, 2_000, 64 * 1024);
    assert!(!read_plain(&mut conn, &mut sock, 1024).is_empty());
    socket2::SockRef::from(&sock)
        .set_linger(Some(std::time::Duration::ZERO))
        .expect("linger");
    drop(sock);
    let (e, unsent) = util::flood_unsent(&server);
    assert!(unsent > 0, "{e}");
    server.stop().expect("the server survives");
}

#[test]
fn a_server_certificate_for_another_name_is_refused_with_a_clear_error() {
    let pki = Pki::new("name CA");
    let server = tls_server(LengthDelimited::new(), &pki);
    let tls = Tls::client(&connector(&pki), "wrong.example").expect("a valid name");
    let client = tls_client(server.addr, LengthDelimited::new(), tls, vec![Bytes::new()]);
    let (why, cert) = the_down_reason(&client);
    assert!(cert, "a certificate error: {why}");
    assert!(why.contains("not valid for name"), "{why}");
    // The server hears the client's alert.
    let (why, _) = the_down_reason(&server);
    assert!(why.contains("received fatal alert"), "{why}");
    client.stop().expect("stopped");
    server.stop().expect("stopped");
}

#[test]
fn a_server_certificate_from_an_unknown_ca_is_refused_with_a_clear_error() {
    let pki = Pki::new("the server's CA");
    let other = Pki::new("another CA");
    let server = tls_server(LengthDelimited::new(), &pki);
    let tls = Tls::client(&connector(&other), "localhost").expect("name");
    let client = tls_client(server.addr, LengthDelimited::new(), tls, vec![Bytes::new()]);
    let (why, cert) = the_down_reason(&client);
    assert!(cert, "a certificate error: {why}");
    assert!(why.contains("UnknownIssuer"), "{why}");
    client.stop().expect("stopped");
    server.stop().expect("stopped");
}

#[test]
fn connector_and_acceptor_settings_fail_with_clear_errors() {
    let e = TlsAcceptor::from_pem(b"not a certificate", b"nor a key").expect_err("refused");
    assert!(matches!(e, TlsError::Config { .. }), "{e}");
    assert!(e.to_string().contains("TLS configuration"), "{e}");
    let e = TlsConnector::with_roots_pem(b"").expect_err("no roots");
    assert!(e.to_string().contains("certificate"), "{e}");
    let pki = Pki::new("name check");
    assert!(Tls::client(&connector(&pki), "not a name!").is_err());
    let other = Pki::new("mismatch");
    let e = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), other.key_pem.as_bytes())
        .expect_err("key does not fit");
    assert!(e.to_string().contains("certificate and key"), "{e}");
}

/// A STARTTLS line server: "STARTTLS" is answered "220 ready" in plaintext, then TLS; its
/// base on the main catalyst, or `colocated` on the selector.
fn starttls_server_in(pki: &Pki, colocated: bool) -> Running<Tev<String>, Peer<Lines>> {
    let acceptor = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
        .expect("certificate");
    let (mut peer, events) = Peer::new(Start::Serve(TcpServer::bind(local(), Lines::new())));
    peer.echo = true;
    peer.upgrade_on = Some((
        "STARTTLS".to_string(),
        Tls::server(&acceptor),
        Some("220 ready".to_string()),
    ));
    if colocated {
        run_colocated(peer, events)
    } else {
        run(peer, events)
    }
}

#[test]
fn starttls_upgrades_a_live_connection_on_both_sides() {
    for colocated in [false, true] {
        starttls_both_sides(colocated);
    }
}

/// `colocated`: the server's base runs on the selector thread, where the upgrade is made
/// inside the delivery of the `STARTTLS` line.
fn starttls_both_sides(colocated: bool) {
    let pki = Pki::new("starttls CA");
    let server = starttls_server_in(&pki, colocated);
    let (mut peer, events) = Peer::new(Start::Dial(TcpClient::new(server.addr, Lines::new())));
    peer.greet = vec!["hello in the clear".to_string(), "STARTTLS".to_string()];
    peer.upgrade_on = Some((
        "220 ready".to_string(),
        Tls::client(&connector(&pki), "localhost").expect("name"),
        None,
    ));
    peer.after_secured = vec!["secret".to_string()];
    let client = run(peer, events);
    // The client: the plaintext echo, the go-ahead, the handshake, then the secret's echo.
    assert_eq!(
        messages(&client, 2),
        vec!["hello in the clear".to_string(), "220 ready".to_string()]
    );
    assert!(matches!(
        client.until(|e| matches!(e, Tev::Secured(_) | Tev::Message(_))),
        Tev::Secured(_)
    ));
    assert_eq!(messages(&client, 1), vec!["secret".to_string()]);
    // The server: secured before the secret arrived.
    assert_eq!(
        messages(&server, 2),
        vec!["hello in the clear".to_string(), "STARTTLS".to_string()]
    );
    assert!(matches!(
        server.until(|e| matches!(e, Tev::Secured(_) | Tev::Message(_))),
        Tev::Secured(_)
    ));
    assert_eq!(messages(&server, 1), vec!["secret".to_string()]);
    client.stop().expect("stopped");
    server.stop().expect("stopped");
}

#[test]
fn a_tls_connection_cannot_be_upgraded_again() {
    let pki = Pki::new("twice CA");
    let acceptor = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
        .expect("certificate");
    let (mut peer, events) = Peer::new(Start::Serve(
        TcpServer::bind(local(), Lines::new()).tls(&acceptor),
    ));
    peer.upgrade_on = Some(("STARTTLS".to_string(), Tls::server(&acceptor), None));
    let server = run(peer, events);
    let tls = Tls::client(&connector(&pki), "localhost").expect("name");
    let client = tls_client(server.addr, Lines::new(), tls, vec!["STARTTLS".to_string()]);
    match server.until(|e| matches!(e, Tev::UpgradeRefused(_) | Tev::Down(..))) {
        Tev::UpgradeRefused(why) => assert!(why.contains("TLS already"), "{why}"),
        other => panic!("{other:?}"),
    }
    client.stop().expect("stopped");
    server.stop().expect("stopped");
}

/// A peer that answers the first line (`STARTTLS`) with its go-ahead and hangs up, then on
/// its next connection reads one line in plaintext, echoes it and returns it.
fn hang_up_after_go_ahead() -> (SocketAddr, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind(local()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let peer = std::thread::spawn(move || {
        let first = accept(&listener);
        let mut lines = BufReader::new(first.try_clone().expect("clone"));
        assert_eq!(read_line(&mut lines), "STARTTLS\n");
        (&first).write_all(b"220 ready\n").expect("go-ahead");
        drop((first, lines));
        let second = accept(&listener);
        let line = read_line(&mut BufReader::new(second.try_clone().expect("clone")));
        (&second).write_all(line.as_bytes()).expect("echo");
        line
    });
    (addr, peer)
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("a line");
    line
}

/// A client of `addr` that says `STARTTLS` on every connect and upgrades on `220 ready`,
/// sending `after_request` right after asking.
fn starttls_client(
    addr: SocketAddr,
    pki: &Pki,
    resend: bool,
    after_request: Vec<String>,
) -> Running<Tev<String>, Peer<Lines>> {
    let client = TcpClient::new(addr, Lines::new())
        .reconnect(tasktonic_net::tcp::Reconnect::fixed(
            std::time::Duration::from_millis(20),
        ))
        .resend(resend);
    let (mut peer, events) = Peer::new(Start::Dial(client));
    peer.greet = vec!["STARTTLS".to_string()];
    peer.greet_always = true;
    peer.upgrade_on = Some((
        "220 ready".to_string(),
        Tls::client(&connector(pki), "localhost").expect("name"),
        None,
    ));
    peer.after_request = after_request;
    run(peer, events)
}

#[test]
fn a_connection_lost_before_its_upgrade_reconnects_in_plaintext() {
    let pki = Pki::new("lost CA");
    let (addr, peer) = hang_up_after_go_ahead();
    let client = starttls_client(addr, &pki, false, Vec::new());
    // The second connection spoke plaintext: the peer read a line and echoed it.
    assert_eq!(peer.join().expect("peer"), "STARTTLS\n");
    assert!(matches!(
        client.until(|e| matches!(e, Tev::Message(m) if m == "STARTTLS")),
        Tev::Message(_)
    ));
    client.stop().expect("stopped");
}

#[test]
fn what_a_lost_connection_meant_for_tls_is_handed_back_never_resent_in_the_clear() {
    let pki = Pki::new("resend CA");
    let (addr, peer) = hang_up_after_go_ahead();
    // A re-sending client: "secret" is sent right after the upgrade is asked for.
    let client = starttls_client(addr, &pki, true, vec!["secret".to_string()]);
    match client.until(|e| matches!(e, Tev::HandedBack(_) | Tev::Connected)) {
        Tev::Connected => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.until(|e| matches!(e, Tev::HandedBack(_))),
        Tev::HandedBack(vec!["secret".to_string()])
    );
    // The next connection never carried it in the clear.
    assert_eq!(peer.join().expect("peer"), "STARTTLS\n");
    client.stop().expect("stopped");
}

#[test]
fn alpn_is_agreed_and_a_client_without_a_shared_protocol_is_refused() {
    let pki = Pki::new("alpn CA");
    let acceptor = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
        .expect("certificate")
        .alpn(&[b"tasktonic/2", b"tasktonic/1"]);
    let (mut peer, events) = Peer::new(Start::Serve(
        TcpServer::bind(local(), LengthDelimited::new()).tls(&acceptor),
    ));
    peer.echo = true;
    let server = run(peer, events);
    let offer = |protocols: &[&[u8]]| {
        let connector = connector(&pki).alpn(protocols);
        Tls::client(&connector, "localhost").expect("name")
    };
    let client = tls_client(
        server.addr,
        LengthDelimited::new(),
        offer(&[b"tasktonic/1"]),
        vec![],
    );
    for run in [&client, &server] {
        match run.until(|e| matches!(e, Tev::Secured(_) | Tev::Down(..))) {
            Tev::Secured(s) => assert_eq!(s.alpn.as_deref(), Some(&b"tasktonic/1"[..])),
            other => panic!("{other:?}"),
        }
    }
    client.stop().expect("stopped");
    let client = tls_client(
        server.addr,
        LengthDelimited::new(),
        offer(&[b"other/1"]),
        vec![],
    );
    let (why, _) = the_down_reason(&client);
    assert!(why.contains("NoApplicationProtocol"), "{why}");
    client.stop().expect("stopped");
    server.stop().expect("stopped");
}

#[test]
fn data_past_the_starttls_boundary_is_refused_and_never_delivered() {
    let pki = Pki::new("injection CA");
    let cases = ["STARTTLS\nEVIL\n", "STARTTLS\nEVIL-without-newline"];
    for (injected, colocated) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
        let server = starttls_server_in(&pki, colocated);
        let mut sock = connect(server.addr);
        sock.write_all(injected.as_bytes()).expect("write");
        assert_eq!(messages(&server, 1), vec!["STARTTLS".to_string()]);
        let (why, _) = the_down_reason(&server);
        assert!(
            why.contains("past the upgrade's boundary"),
            "{injected:?}: {why}"
        );
        // The go-ahead may have been written; after it, the connection ends.
        let mut rest = Vec::new();
        let _ = sock.read_to_end(&mut rest);
        assert!(!String::from_utf8_lossy(&rest).contains("EVIL"));
        server.stop().expect("stopped");
    }
}

#[test]
fn an_end_without_close_notify_is_truncation_and_with_it_a_clean_close() {
    let pki = Pki::new("truncation CA");
    for clean in [false, true] {
        let server = tls_server(LengthDelimited::new(), &pki);
        let (mut conn, mut sock) = blocking_client(server.addr, &pki);
        handshake_bytewise(&mut conn, &mut sock);
        conn.writer()
            .write_all(&frame(b"last words"))
            .expect("plaintext");
        flush_bytewise(&mut conn, &mut sock);
        assert_eq!(read_plain(&mut conn, &mut sock, 14), frame(b"last words"));
        if clean {
            conn.send_close_notify();
            flush_bytewise(&mut conn, &mut sock);
        }
        sock.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let (why, _) = the_down_reason(&server);
        if clean {
            assert_eq!(why, "closed by the peer");
        } else {
            assert!(why.contains("without close_notify"), "{why}");
        }
        server.stop().expect("stopped");
    }
}

/// The next connection to `listener`, with reads on it bounded (a peer thread must not
/// outlive a failed test by more than the test's time bound).
fn accept(listener: &std::net::TcpListener) -> std::net::TcpStream {
    let (s, _) = listener.accept().expect("accept");
    s.set_read_timeout(Some(util::LIMIT)).expect("timeout");
    s
}

// ----- interop with OpenSSL ------------------------------------------------------------------

/// `openssl`, or `None` (loudly) when run by hand without it; CI must have it.
fn openssl() -> Option<&'static str> {
    let found = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is missing in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: openssl is not installed; the OpenSSL interop tests did not run");
        return None;
    }
    Some("openssl")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn our_client_talks_to_openssl_s_server() {
    let Some(openssl) = openssl() else {
        return;
    };
    let pki = Pki::new("s_server CA");
    // `-rev`: every line comes back reversed. Port 0: it prints `ACCEPT 127.0.0.1:PORT`.
    let mut server = Killed(
        Command::new(openssl)
            .args(["s_server", "-rev", "-accept", "127.0.0.1:0"])
            .arg("-cert")
            .arg(pki.cert_file())
            .arg("-key")
            .arg(pki.key_file())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server"),
    );
    let out = BufReader::new(server.0.stdout.take().expect("stdout"));
    let addr: SocketAddr = out
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("ACCEPT ").and_then(|a| a.parse().ok()))
        .expect("s_server printed where it listens");
    let tls = Tls::client(&connector(&pki), "localhost").expect("name");
    let client = tls_client(addr, Lines::new(), tls, vec!["hello openssl".to_string()]);
    assert_eq!(messages(&client, 1), vec!["lssnepo olleh".to_string()]);
    client.stop().expect("stopped");
}

#[test]
fn openssl_s_client_talks_to_our_server() {
    let Some(openssl) = openssl() else {
        return;
    };
    let pki = Pki::new("s_client CA");
    let server = tls_server(Lines::new(), &pki);
    let mut client = Killed(
        Command::new(openssl)
            .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
            .arg(server.addr.to_string())
            .arg("-servername")
            .arg("localhost")
            .arg("-verify_hostname")
            .arg("localhost")
            .arg("-CAfile")
            .arg(pki.ca_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client"),
    );
    let mut stdin = client.0.stdin.take().expect("stdin");
    stdin.write_all(b"hello from openssl\n").expect("write");
    stdin.flush().expect("flush");
    let mut out = BufReader::new(client.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("the echo");
    assert_eq!(line, "hello from openssl\n");
    // The server saw SNI.
    match server.until(|e| matches!(e, Tev::Secured(_))) {
        Tev::Secured(s) => assert_eq!(s.server_name.as_deref(), Some("localhost")),
        _ => unreachable!(),
    }
    drop(stdin);
    // `-quiet` ignores EOF on its input: end it, so the server need not linger for it.
    drop(client);
    server.stop().expect("stopped");
}

#[test]
fn openssl_s_client_starttls_smtp_talks_to_our_server() {
    let Some(openssl) = openssl() else {
        return;
    };
    let pki = Pki::new("smtp CA");
    let acceptor = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
        .expect("certificate");
    // Just enough SMTP for `s_client -starttls smtp`: a greeting, an EHLO answer that offers
    // STARTTLS, "220" in plaintext before the handshake; then every line is echoed over TLS.
    let (mut peer, events) = Peer::new(Start::Serve(TcpServer::bind(local(), Lines::new())));
    peer.echo = true;
    peer.greet = vec!["220 tasktonic ESMTP".to_string()];
    peer.answers = vec![(
        "EHLO tasktonic.test".to_string(),
        vec!["250-tasktonic".to_string(), "250 STARTTLS".to_string()],
    )];
    peer.upgrade_on = Some((
        "STARTTLS".to_string(),
        Tls::server(&acceptor),
        Some("220 2.0.0 Ready to start TLS".to_string()),
    ));
    let server = run(peer, events);
    let mut client = Killed(
        Command::new(openssl)
            .args(["s_client", "-quiet", "-verify_return_error"])
            .args(["-starttls", "smtp", "-name", "tasktonic.test"])
            .arg("-connect")
            .arg(server.addr.to_string())
            .args(["-verify_hostname", "localhost", "-CAfile"])
            .arg(pki.ca_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client"),
    );
    assert!(matches!(
        server.until(|e| matches!(e, Tev::Secured(_))),
        Tev::Secured(_)
    ));
    let mut stdin = client.0.stdin.take().expect("stdin");
    stdin.write_all(b"MAIL FROM:<over@tls>\n").expect("write");
    stdin.flush().expect("flush");
    let mut out = BufReader::new(client.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("the echo");
    assert_eq!(line, "MAIL FROM:<over@tls>\n");
    assert_eq!(
        messages(&server, 1),
        vec!["MAIL FROM:<over@tls>".to_string()]
    );
    drop(stdin);
    // `-quiet` ignores EOF on its input: end it, so the server need not linger for it.
    drop(client);
    server.stop().expect("stopped");
}
