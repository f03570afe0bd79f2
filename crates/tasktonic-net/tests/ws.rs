//! WebSocket over real sockets on 127.0.0.1: our server and client with each other, with
//! Python's `websockets` (a peer written by others), and with raw sockets for what a
//! well-behaved peer never sends (unmasked frames, invalid UTF-8, oversized messages,
//! frames right behind the handshake).

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use http::{Request, Response, StatusCode};
use tasktonic_core::{App, Ctx, Handle, Tonic};
use tasktonic_net::codec::CodecError;
use tasktonic_net::http::{HttpHandler, HttpLimits, HttpServer};
use tasktonic_net::tcp::{CloseReason, Reconnect, TcpSendError};
use tasktonic_net::transport::{TlsAcceptor, TlsConnector};
use tasktonic_net::ws::{
    CloseCode, Ws, WsAccept, WsClient, WsClose, WsConfig, WsEvents, WsInfo, WsMessage,
};
use util::pki::Pki;
use util::{LIMIT, Running, local, run_app, taken_by_peer, tcp_queues};

/// What a session's base saw.
#[derive(Debug, Clone, PartialEq)]
enum Wev {
    Open(String, Option<String>),
    Msg(WsMessage),
    Close(Option<(u16, String)>),
    Error(String),
    /// The close reason (its text) and how many messages were handed back.
    Closed(String, usize),
    /// `send` said back-pressure after this many accepted.
    Backpressure(usize),
}

// ----- the server under test ----------------------------------------------------------

/// Echoes, and obeys text commands: `close CODE REASON`, `flood`, `abort`.
struct Site {
    tls: Option<TlsAcceptor>,
    out: Sender<Wev>,
    addr: Sender<(SocketAddr, Handle<Site>)>,
}

impl Tonic for Site {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        // A short HTTP idle timeout: WebSocket sessions must not inherit it.
        let mut server = HttpServer::bind(local())
            .limits(HttpLimits::default().idle_timeout(Duration::from_millis(300)))
            .route(http::Method::GET, "/", Site::index)
            .websocket("/ws/*");
        if let Some(tls) = &self.tls {
            server = server.tls(tls);
        }
        let listening = server.start(ctx).expect("bound");
        self.addr.send((listening.local_addr(), ctx.handle())).ok();
    }
}

impl Site {
    fn index(&mut self, _: &mut Ctx<Self>, _: Request<Bytes>, res: tasktonic_net::http::Responder) {
        res.send(Response::new(Bytes::from_static(b"page"))).ok();
    }
}

impl HttpHandler for Site {}

impl WsEvents for Site {
    fn on_ws_upgrade(
        &mut self,
        _: &mut Ctx<Self>,
        request: &Request<Bytes>,
    ) -> Result<WsAccept, Response<Bytes>> {
        match request.uri().path() {
            "/ws/private" => {
                let mut r = Response::new(Bytes::from_static(b"no\n"));
                *r.status_mut() = StatusCode::FORBIDDEN;
                Err(r)
            }
            "/ws/alive" => Ok(WsAccept::new().config(
                WsConfig::default()
                    .ping_interval(Some(Duration::from_millis(50)))
                    .idle_timeout(Some(Duration::from_millis(400))),
            )),
            "/ws/small" => Ok(WsAccept::new().config(WsConfig::default().max_message(1024))),
            "/ws/fragments" => Ok(WsAccept::new()
                .config(WsConfig::default().fragment_size(Some(1000)))
                .protocol("chat")),
            _ => Ok(WsAccept::new().protocol("chat")),
        }
    }

    fn on_ws_open(&mut self, _: &mut Ctx<Self>, ws: &Ws, info: &WsInfo) {
        self.out
            .send(Wev::Open(
                info.uri.path().to_string(),
                info.protocol.clone(),
            ))
            .ok();
        if info.uri.path() == "/ws/greet" {
            ws.send("welcome").ok();
        }
    }

    fn on_ws_message(&mut self, _: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {
        self.out.send(Wev::Msg(msg.clone())).ok();
        match msg.as_text() {
            Some(t) if t.starts_with("close ") => {
                let mut parts = t.splitn(3, ' ').skip(1);
                let code: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1000);
                ws.close(WsClose::new(code, parts.next().unwrap_or("")));
            }
            Some("flood") => {
                let piece = Bytes::from(vec![7u8; 1 << 20]);
                let mut n = 0;
                loop {
                    match ws.send(piece.clone()) {
                        Ok(()) => n += 1,
                        Err(TcpSendError::Backpressure(_)) => break,
                        Err(e) => panic!("flood: {e}"),
                    }
                }
                self.out.send(Wev::Backpressure(n)).ok();
                ws.abort();
            }
            _ => {
                ws.send(msg).ok();
            }
        }
    }

    fn on_ws_close(&mut self, _: &mut Ctx<Self>, _: &Ws, close: Option<&WsClose>) {
        let close = close.map(|c| (u16::from(c.code), c.reason.clone()));
        self.out.send(Wev::Close(close)).ok();
    }

    fn on_ws_error(&mut self, _: &mut Ctx<Self>, _: &Ws, error: &CodecError) {
        self.out.send(Wev::Error(error.to_string())).ok();
    }

    fn on_ws_closed(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Ws,
        why: &CloseReason,
        unsent: Vec<WsMessage>,
    ) {
        self.out
            .send(Wev::Closed(why.to_string(), unsent.len()))
            .ok();
    }
}

fn site(tls: Option<TlsAcceptor>) -> Running<Wev, Site> {
    let (out, events) = unbounded();
    let (addr, addr_rx) = unbounded();
    run_app(
        App::new("ws-site").tonic(Site { tls, out, addr }),
        addr_rx,
        events,
    )
}

fn is_closed(e: &Wev) -> bool {
    matches!(e, Wev::Closed(..))
}

// ----- our client ---------------------------------------------------------------------

/// Dials `url`, sends `send` once open, reports every event; finishes the app after
/// `sessions` sessions closed.
struct Peer {
    client: Option<WsClient>,
    /// Sent as soon as the client starts (before any session is open).
    send_at_start: Vec<WsMessage>,
    send: Vec<WsMessage>,
    close_after: Option<usize>,
    received: usize,
    sessions: usize,
    out: Sender<Wev>,
    addr: Sender<(SocketAddr, Handle<Peer>)>,
}

impl Tonic for Peer {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(client) = self.client.take() {
            let ws = client.start(ctx).expect("a selector");
            for m in self.send_at_start.drain(..) {
                ws.send(m).expect("queued while down (resend)");
            }
        }
        self.addr.send((local(), ctx.handle())).ok();
    }
}

impl WsEvents for Peer {
    fn on_ws_open(&mut self, _: &mut Ctx<Self>, ws: &Ws, info: &WsInfo) {
        self.out
            .send(Wev::Open(
                info.uri.path().to_string(),
                info.protocol.clone(),
            ))
            .ok();
        for m in &self.send {
            ws.send(m.clone()).expect("sent");
        }
    }

    fn on_ws_message(&mut self, _: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {
        self.out.send(Wev::Msg(msg)).ok();
        self.received += 1;
        if Some(self.received) == self.close_after {
            ws.close(WsClose::new(CloseCode::Away, "done here"));
        }
    }

    fn on_ws_close(&mut self, _: &mut Ctx<Self>, _: &Ws, close: Option<&WsClose>) {
        let close = close.map(|c| (u16::from(c.code), c.reason.clone()));
        self.out.send(Wev::Close(close)).ok();
    }

    fn on_ws_error(&mut self, _: &mut Ctx<Self>, _: &Ws, error: &CodecError) {
        self.out.send(Wev::Error(error.to_string())).ok();
    }

    fn on_ws_closed(
        &mut self,
        ctx: &mut Ctx<Self>,
        _: &Ws,
        why: &CloseReason,
        unsent: Vec<WsMessage>,
    ) {
        self.out
            .send(Wev::Closed(why.to_string(), unsent.len()))
            .ok();
        self.sessions = self.sessions.saturating_sub(1);
        if self.sessions == 0 {
            ctx.finish();
        }
    }
}

fn peer(client: WsClient, send: Vec<WsMessage>, close_after: Option<usize>) -> Running<Wev, Peer> {
    peer_sessions(client, send, close_after, 1)
}

fn peer_sessions(
    client: WsClient,
    send: Vec<WsMessage>,
    close_after: Option<usize>,
    sessions: usize,
) -> Running<Wev, Peer> {
    let (out, events) = unbounded();
    let (addr, addr_rx) = unbounded();
    let tonic = Peer {
        client: Some(client),
        send_at_start: Vec::new(),
        send,
        close_after,
        received: 0,
        sessions,
        out,
        addr,
    };
    run_app(App::new("ws-peer").tonic(tonic), addr_rx, events)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

fn big(n: usize) -> Bytes {
    Bytes::from(
        (0..n)
            .map(|i| (i * 7 + i / 251).to_le_bytes()[0])
            .collect::<Vec<_>>(),
    )
}

// ----- our client and our server ------------------------------------------------------

#[test]
fn our_client_and_server_exchange_every_kind_of_message() {
    let server = site(None);
    let messages: Vec<WsMessage> = vec![
        "hello".into(),
        "".into(),
        "žluťoučký kůň 🐎".into(),
        WsMessage::Binary(Bytes::new()),
        WsMessage::Binary(big(125)),
        WsMessage::Binary(big(126)),
        WsMessage::Binary(big(65_535)),
        WsMessage::Binary(big(65_536)),
        WsMessage::Binary(big(3 << 20)),
    ];
    let client = WsClient::new(&url(server.addr, "/ws/echo"))
        .expect("url")
        .protocol("other")
        .protocol("chat");
    let n = messages.len();
    let p = peer(client, messages.clone(), Some(n));
    assert_eq!(p.next(), Wev::Open("/ws/echo".into(), Some("chat".into())));
    for m in &messages {
        assert_eq!(p.next(), Wev::Msg(m.clone()), "echo in order");
    }
    // Our close (1001) is answered with the same code, then the connection ends.
    assert_eq!(p.next(), Wev::Close(Some((1001, "done here".into()))));
    assert!(is_closed(&p.next()));
    assert_eq!(
        server.next(),
        Wev::Open("/ws/echo".into(), Some("chat".into()))
    );
    for m in &messages {
        assert_eq!(server.next(), Wev::Msg(m.clone()));
    }
    assert_eq!(server.next(), Wev::Close(Some((1001, "done here".into()))));
    assert!(is_closed(&server.next()));
    p.join().expect("client app");
    server.stop().expect("clean stop");
}

#[test]
fn fragmented_messages_are_joined_both_ways() {
    let server = site(None);
    // The client fragments at 700 bytes, the server (on /ws/fragments) at 1000.
    let client = WsClient::new(&url(server.addr, "/ws/fragments"))
        .expect("url")
        .ws_config(WsConfig::default().fragment_size(Some(700)));
    let text: String = "fragmented text é ".repeat(300);
    let messages = vec![
        WsMessage::from(text.as_str()),
        WsMessage::Binary(big(10_000)),
    ];
    let p = peer(client, messages.clone(), Some(2));
    assert!(matches!(p.next(), Wev::Open(..)));
    assert_eq!(p.next(), Wev::Msg(messages[0].clone()));
    assert_eq!(p.next(), Wev::Msg(messages[1].clone()));
    p.until(is_closed);
    p.join().expect("client app");
    server.stop().expect("clean stop");
}

#[test]
fn a_server_greets_in_on_ws_open_and_closes_with_a_code() {
    let server = site(None);
    let client = WsClient::new(&url(server.addr, "/ws/greet")).expect("url");
    let p = peer(client, vec!["close 4001 server says bye".into()], None);
    assert!(matches!(p.next(), Wev::Open(..)));
    assert_eq!(p.next(), Wev::Msg("welcome".into()));
    // The server began the close handshake: the client sees its code and reason.
    assert_eq!(p.next(), Wev::Close(Some((4001, "server says bye".into()))));
    assert!(is_closed(&p.next()));
    server.until(|e| matches!(e, Wev::Close(Some((4001, _)))));
    server.until(is_closed);
    p.join().expect("client app");
    server.stop().expect("clean stop");
}

#[test]
fn wss_works_end_to_end() {
    let pki = Pki::new("ws test CA");
    let acceptor =
        TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).expect("acceptor");
    let server = site(Some(acceptor));
    let connector = TlsConnector::with_roots_pem(pki.ca_pem.as_bytes()).expect("roots");
    let client = WsClient::new(&format!("wss://localhost:{}/ws/tls", server.addr.port()))
        .expect("url")
        .tls(&connector);
    let m = WsMessage::Binary(big(200_000));
    let p = peer(client, vec![m.clone(), "over tls".into()], Some(2));
    assert!(matches!(p.next(), Wev::Open(..)));
    assert_eq!(p.next(), Wev::Msg(m));
    assert_eq!(p.next(), Wev::Msg("over tls".into()));
    p.until(is_closed);
    p.join().expect("client app");
    server.stop().expect("clean stop");
}

#[test]
fn a_client_reconnects_and_opens_again() {
    let server = site(None);
    // The server closes the first session at once (the client asks it to); the client's
    // reconnect policy dials again and the second session opens.
    let client = WsClient::new(&url(server.addr, "/ws/again"))
        .expect("url")
        .reconnect(Reconnect::fixed(std::time::Duration::from_millis(20)).max_attempts(3));
    let p = peer_sessions(client, vec!["close 1000 again".into()], None, 2);
    assert!(matches!(p.next(), Wev::Open(..)));
    p.until(is_closed);
    assert!(matches!(
        p.until(|e| matches!(e, Wev::Open(..))),
        Wev::Open(..)
    ));
    p.until(is_closed);
    p.join().expect("client app");
    server.stop().expect("clean stop");
}

#[test]
fn a_refused_handshake_is_an_error_for_the_client() {
    let server = site(None);
    let client = WsClient::new(&url(server.addr, "/ws/private")).expect("url");
    let p = peer(client, vec![], None);
    match p.next() {
        Wev::Error(e) => assert!(e.contains("403"), "{e}"),
        other => panic!("expected the refusal, got {other:?}"),
    }
    assert!(is_closed(&p.next()));
    p.join().expect("client app");
    server.stop().expect("clean stop");
}

#[test]
fn a_refused_upgrade_hands_the_queued_messages_back_and_counts_as_a_failed_attempt() {
    let server = site(None);
    // Messages sent before any session: they wait for the 101 (never written before it).
    // Every attempt is refused (403): the reconnect policy gives up after two, and the
    // messages come back whole in the last on_ws_closed.
    let client = WsClient::new(&url(server.addr, "/ws/private"))
        .expect("url")
        .resend(true)
        .reconnect(Reconnect::fixed(std::time::Duration::from_millis(10)).max_attempts(2));
    let (out, events) = unbounded();
    let (addr, addr_rx) = unbounded();
    let tonic = Peer {
        client: Some(client),
        send_at_start: vec!["one".into(), "two".into(), WsMessage::Binary(big(5000))],
        send: vec![],
        close_after: None,
        received: 0,
        sessions: usize::MAX,
        out,
        addr,
    };
    let p = run_app(App::new("ws-peer").tonic(tonic), addr_rx, events);
    let mut refusals = 0;
    let unsent = loop {
        match p.next() {
            Wev::Error(e) => {
                assert!(e.contains("403"), "{e}");
                refusals += 1;
            }
            Wev::Closed(_, unsent) if unsent > 0 => break unsent,
            Wev::Closed(..) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(unsent, 3, "the three queued messages, handed back");
    assert!((2..=3).contains(&refusals), "{refusals} attempts");
    assert!(p.events.try_recv().is_err(), "no attempt after giving up");
    p.stop().expect("client app");
    server.stop().expect("clean stop");
}

#[test]
fn a_refusal_over_keep_alive_ends_the_attempt_at_once() {
    use std::io::{BufRead, BufReader};
    // A server that refuses the upgrade with a keep-alive 403 and keeps its side open: the
    // client ends its side at once (the server sees EOF) and reports — not after the
    // linger, which is set far beyond the test's bound.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (saw_eof, eof) = unbounded();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .ok();
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest); // until the client's end
        saw_eof.send(()).ok();
    });
    let config = tasktonic_net::tcp::TcpConfig {
        close_linger: std::time::Duration::from_secs(600),
        ..tasktonic_net::tcp::TcpConfig::default()
    };
    let client = WsClient::new(&url(addr, "/ws"))
        .expect("url")
        .config(config);
    let p = peer(client, vec![], None);
    match p.next() {
        Wev::Error(e) => assert!(e.contains("403"), "{e}"),
        other => panic!("expected the refusal, got {other:?}"),
    }
    assert!(is_closed(&p.next()));
    eof.recv_timeout(LIMIT)
        .expect("the server saw the client's end");
    p.join().expect("client app");
}

#[test]
fn client_urls_are_checked() {
    for bad in ["http://x/", "ws://", "not a url", "ws:///path"] {
        assert!(WsClient::new(bad).is_err(), "{bad} accepted");
    }
    assert!(WsClient::new("ws://127.0.0.1:1/a?b=c").is_ok());
    assert!(WsClient::new("wss://[::1]:9/").is_ok());
}

// ----- raw sockets: the handshake and what a good peer never sends ------------------

/// Open a session by hand: the handshake, then whatever `after` holds, in one write.
fn raw_session(addr: SocketAddr, path: &str, after: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(after);
    s.write_all(&req).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    (s, head)
}

/// A client frame (masked with `mask`).
fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut v = vec![(u8::from(fin) << 7) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if let Ok(n @ 0..126) = u8::try_from(payload.len()) {
        v.push(m | n);
    } else if let Ok(n) = u16::try_from(payload.len()) {
        v.push(m | 126);
        v.extend_from_slice(&n.to_be_bytes());
    } else {
        v.push(m | 127);
        v.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            v.extend_from_slice(&k);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

/// Read one server frame: (fin, opcode, payload).
fn read_server_frame(s: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).expect("a frame header");
    assert_eq!(h[1] & 0x80, 0, "a server frame is never masked");
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).expect("length");
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).expect("length");
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0; usize::try_from(len).expect("a length")];
    s.read_exact(&mut payload).expect("payload");
    (h[0] & 0x80 != 0, h[0] & 0x0F, payload)
}

fn close_code(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

#[test]
fn the_101_is_exact_and_frames_behind_the_handshake_are_not_lost() {
    let server = site(None);
    // A frame and a ping in the same write as the handshake: they cross the switch.
    let mut after = client_frame(true, 1, b"early", MASK);
    after.extend(client_frame(true, 9, b"are you there", MASK));
    let (mut s, head) = raw_session(server.addr, "/ws/raw", &after);
    let head = String::from_utf8(head).expect("ascii");
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    // RFC 6455's own example key and accept value.
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    // The echo (from the base) and the pong (from the protocol itself) in either order.
    let mut got = vec![read_server_frame(&mut s), read_server_frame(&mut s)];
    got.sort();
    assert_eq!(
        got,
        vec![
            (true, 1, b"early".to_vec()),
            (true, 10, b"are you there".to_vec())
        ]
    );
    // The close handshake, begun by the client: answered with the same code, then EOF.
    s.write_all(&client_frame(true, 8, &[0x03, 0xe8, b'o', b'k'], MASK))
        .expect("write");
    let (_, op, payload) = read_server_frame(&mut s);
    assert_eq!((op, close_code(&payload)), (8, 1000));
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("EOF");
    assert!(rest.is_empty());
    drop(s); // the server waits (close_linger) for our end
    server.until(is_closed);
    server.stop().expect("clean stop");
}

#[test]
fn sessions_ping_when_quiet_outlive_the_http_idle_timeout_and_drop_a_silent_peer() {
    let server = site(None);
    let (mut s, _) = raw_session(server.addr, "/ws/alive", &[]);
    // Pings every 50 ms while nothing else is written; answered, they keep the session
    // alive well past the HTTP idle timeout (300 ms): 12 of them take 600 ms or more.
    for _ in 0..12 {
        let (fin, op, payload) = read_server_frame(&mut s);
        assert_eq!((fin, op), (true, 9), "a ping");
        s.write_all(&client_frame(true, 10, &payload, MASK))
            .expect("pong");
    }
    s.write_all(&client_frame(true, 1, b"still here", MASK))
        .expect("write");
    let echo = loop {
        let f = read_server_frame(&mut s);
        if f.1 == 1 {
            break f.2;
        }
    };
    assert_eq!(echo, b"still here");
    // Silent from now on (pings unanswered): dropped after the idle timeout (400 ms).
    match server.until(is_closed) {
        Wev::Closed(why, _) => assert!(why.contains("sent nothing"), "{why}"),
        _ => unreachable!(),
    }
    server.stop().expect("clean stop");
}

#[test]
fn handshake_refusals() {
    let server = site(None);
    let ask = |req: String| {
        let mut s = TcpStream::connect(server.addr).expect("connect");
        s.set_read_timeout(Some(LIMIT)).expect("timeout");
        s.write_all(req.as_bytes()).expect("write");
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).expect("a status line");
        String::from_utf8_lossy(&buf[9..12]).to_string()
    };
    // A plain GET on a WebSocket path.
    assert_eq!(ask("GET /ws/x HTTP/1.1\r\nHost: x\r\n\r\n".into()), "426");
    // Version 8.
    assert_eq!(
        ask(
            "GET /ws/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                .into()
        ),
        "426"
    );
    // A key that is not 16 bytes of base64.
    assert_eq!(
        ask(
            "GET /ws/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n"
                .into()
        ),
        "400"
    );
    // The base refuses.
    assert_eq!(
        ask(
            "GET /ws/private HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                .into()
        ),
        "403"
    );
    // Other paths stay HTTP.
    assert_eq!(ask("GET / HTTP/1.1\r\nHost: x\r\n\r\n".into()), "200");
    server.stop().expect("clean stop");
}

/// Send `frames` on a fresh session; the server must answer with a close frame carrying
/// `code`, then end the connection, and tell its base.
fn refused_with(path: &str, frames: &[u8], code: u16) {
    let server = site(None);
    let (mut s, _) = raw_session(server.addr, path, &[]);
    assert!(matches!(server.next(), Wev::Open(..)));
    s.write_all(frames).expect("write");
    let (_, op, payload) = loop {
        let f = read_server_frame(&mut s);
        if f.1 == 8 {
            break f;
        }
    };
    assert_eq!((op, close_code(&payload)), (8, code));
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest); // EOF (or a reset, if our close frame crossed data)
    drop(s); // the server waits (close_linger) for our end
    server.until(|e| matches!(e, Wev::Error(_)));
    server.until(is_closed);
    server.stop().expect("clean stop");
}

#[test]
fn an_unmasked_client_frame_is_a_protocol_error() {
    refused_with("/ws/x", &client_frame(true, 2, b"bare", None), 1002);
}

#[test]
fn invalid_utf8_text_is_refused_with_1007() {
    refused_with(
        "/ws/x",
        &client_frame(true, 1, &[0x68, 0xff, 0x69], MASK),
        1007,
    );
    // Split across fragments, with the bad byte in the second.
    let mut frames = client_frame(false, 1, "ok é".as_bytes(), MASK);
    frames.extend(client_frame(true, 0, &[0xc3], MASK));
    refused_with("/ws/x", &frames, 1007);
}

#[test]
fn a_message_over_the_limit_is_refused_with_1009() {
    // /ws/small takes messages of at most 1024 bytes: one big frame, then fragments.
    refused_with("/ws/small", &client_frame(true, 2, &[1; 2000], MASK), 1009);
    let mut frames = Vec::new();
    for i in 0..3 {
        frames.extend(client_frame(
            i == 2,
            if i == 0 { 2 } else { 0 },
            &[1; 500],
            MASK,
        ));
    }
    refused_with("/ws/small", &frames, 1009);
}

#[test]
fn protocol_errors_of_framing_are_refused() {
    // A continuation with nothing to continue; a fragmented ping; reserved bits; a control
    // frame over 125 bytes.
    refused_with("/ws/x", &client_frame(true, 0, b"orphan", MASK), 1002);
    refused_with("/ws/x", &client_frame(false, 9, b"ping", MASK), 1002);
    let mut rsv = client_frame(true, 1, b"x", MASK);
    rsv[0] |= 0x40;
    refused_with("/ws/x", &rsv, 1002);
    refused_with("/ws/x", &client_frame(true, 9, &[0; 126], MASK), 1002);
}

#[test]
fn back_pressure_then_abort_hands_unsent_messages_back() {
    let server = site(None);
    // A client that never reads: the server floods it until `send` reports back-pressure,
    // then aborts; what was accepted but not written comes back in on_ws_closed.
    let (mut s, _) = raw_session(server.addr, "/ws/x", &[]);
    s.write_all(&client_frame(true, 1, b"flood", MASK))
        .expect("write");
    let accepted = match server.until(|e| matches!(e, Wev::Backpressure(_))) {
        Wev::Backpressure(n) => n,
        _ => unreachable!(),
    };
    assert!(accepted > 0);
    match server.until(is_closed) {
        Wev::Closed(why, unsent) => {
            assert!(why.contains("abort"), "{why}");
            // Far more than the socket buffers hold was queued (1 MiB each).
            assert!(unsent > 0 && unsent <= accepted, "{unsent} of {accepted}");
        }
        _ => unreachable!(),
    }
    drop(s);
    server.stop().expect("clean stop");
}

// ----- Python's `websockets` as the peer ---------------------------------------------

fn python_websockets() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import websockets.sync.client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with `websockets` is missing in CI: .ci/run installs it"
        );
        eprintln!("SKIPPED: python3 `websockets` is not installed (pip install websockets)");
    }
    ok
}

const PY_CLIENT: &str = r#"
import sys
from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed
url = sys.argv[1]
with connect(url, subprotocols=["chat"], max_size=None) as ws:
    assert ws.subprotocol == "chat", ws.subprotocol
    for m in ["hello", "", "unicode ✓", b"", b"\x00\x01" * 50000]:
        ws.send(m)
        got = ws.recv()
        assert got == m, (type(got), len(got))
    # A fragmented message (an iterable is sent as fragments).
    ws.send(["frag", "mented", " text"])
    assert ws.recv() == "fragmented text"
    ws.send([b"ab", b"cd"])
    assert ws.recv() == b"abcd"
    # A ping is answered by the protocol.
    pong = ws.ping(b"p")
    assert pong.wait(10), "no pong"
    # The server closes on request with our code and reason.
    ws.send("close 4002 asked to")
    try:
        ws.recv()
        raise SystemExit("expected the close")
    except ConnectionClosed as e:
        assert e.rcvd.code == 4002 and e.rcvd.reason == "asked to", e
print("ok")
"#;

#[test]
fn python_websockets_client_is_served() {
    if !python_websockets() {
        return;
    }
    let server = site(None);
    let out = Command::new("python3")
        .args(["-c", PY_CLIENT, &url(server.addr, "/ws/py")])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.until(|e| matches!(e, Wev::Close(Some((4002, _)))));
    server.until(is_closed);
    server.stop().expect("clean stop");
}

const PY_SERVER: &str = r#"
import sys
from websockets.sync.server import serve
def handler(ws):
    for m in ws:
        if m == "bye":
            ws.close(4003, "python says bye")
            return
        ws.send(m)
with serve(handler, "127.0.0.1", 0, subprotocols=["chat"], max_size=None) as server:
    print(server.socket.getsockname()[1], flush=True)
    server.serve_forever()
"#;

#[test]
fn our_client_talks_to_a_python_websockets_server() {
    if !python_websockets() {
        return;
    }
    let mut child = Command::new("python3")
        .args(["-c", PY_SERVER])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut line = String::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.as_mut().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the port");
    }
    let port: u16 = line.trim().parse().expect("a port");
    let client = WsClient::new(&format!("ws://127.0.0.1:{port}/any"))
        .expect("url")
        .protocol("chat")
        .ws_config(WsConfig::default().fragment_size(Some(5000)));
    let messages: Vec<WsMessage> =
        vec!["text".into(), WsMessage::Binary(big(100_000)), "bye".into()];
    let p = peer(client, messages.clone(), None);
    assert_eq!(p.next(), Wev::Open("/any".into(), Some("chat".into())));
    assert_eq!(p.next(), Wev::Msg(messages[0].clone()));
    assert_eq!(p.next(), Wev::Msg(messages[1].clone()));
    assert_eq!(p.next(), Wev::Close(Some((4003, "python says bye".into()))));
    assert!(is_closed(&p.next()));
    p.join().expect("client app");
    child.kill().ok();
    child.wait().ok();
}

#[test]
fn a_peer_that_pings_without_reading_is_no_longer_read_until_it_takes_its_pongs() {
    let server = site(None);
    let (mut s, head) = raw_session(server.addr, "/ws/pings", &[]);
    assert!(head.starts_with(b"HTTP/1.1 101"));
    // 32 MiB of pings, each owed a pong of the same size, and we read none of them: the
    // server must stop reading us (pongs waiting beyond 64 KiB) rather than keep them all.
    let ping = client_frame(true, 9, &[b'p'; 125], MASK);
    let all: Vec<u8> = ping.repeat((32 << 20) / ping.len());
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut at = 0;
    while at < all.len() {
        match s.write(&all[at..]) {
            Ok(n) => at += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(
        at < all.len(),
        "the server read all 32 MiB of pings while their pongs went unread"
    );
    // What it read is what the kernel took of its pongs (125-byte pongs of 131-byte pings,
    // waiting in its send queue and our receive queue), and beyond that at most the 64 KiB
    // of pongs after which it stops reading and the pongs of one read (64 KiB) more.
    let (ours, theirs) = (s.local_addr().expect("local"), s.peer_addr().expect("peer"));
    let in_kernel = tcp_queues(theirs, ours).0 + tcp_queues(ours, theirs).1;
    let pings_answered = in_kernel / 127;
    let taken = taken_by_peer(&s, at);
    let held = taken.saturating_sub(pings_answered * 131);
    eprintln!("pings: {taken} of {at} bytes read, {held} beyond the {pings_answered} answered");
    assert!(
        held <= (64 + 64) * 1024 * 131 / 127 + 2 * 131,
        "{held} bytes of pings taken beyond the {pings_answered} answered ({taken} read)"
    );
    // Now we read: the pongs come, the server reads on, and a message after the pings is
    // echoed after them.
    let mut r = s.try_clone().expect("clone");
    let reader = std::thread::spawn(move || {
        let mut pongs = 0u64;
        loop {
            let (_, op, payload) = read_server_frame(&mut r);
            match op {
                0xA => {
                    assert_eq!(payload, [b'p'; 125]);
                    pongs += 1;
                }
                0x1 => return (pongs, payload),
                other => panic!("opcode {other:#x}"),
            }
        }
    });
    s.set_write_timeout(Some(LIMIT)).expect("timeout");
    s.write_all(&all[at..])
        .expect("the rest, once the pongs are read");
    s.write_all(&client_frame(true, 1, b"after the pings", MASK))
        .expect("write");
    let (pongs, text) = reader.join().expect("reader");
    assert!(pongs > 0);
    assert_eq!(text, b"after the pings");
    drop(s);
    server.stop().expect("stopped");
}
