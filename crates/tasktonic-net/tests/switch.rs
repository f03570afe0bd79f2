//! Replacing a live connection's protocol at a message boundary (`Conn::switch_protocol`):
//! lines, then length-prefixed frames on the same socket — the bytes read past the boundary
//! handed over undecoded, over plain TCP and over TLS, on both sides; data the old protocol
//! decoded past the boundary fails the switch.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Sender, unbounded};
use tasktonic_core::{App, Ctx, Handle, Receive, Tonic};
use tasktonic_net::codec::{CodecError, Decoder, LengthDelimited, Lines};
use tasktonic_net::protocol::{Protocol, ProtocolIo};
use tasktonic_net::tcp::{CloseReason, Conn, ConnEnded, TcpClient, TcpEvents, TcpServer};
use util::{LIMIT, Running, connect, frame, local, read_frame, run_app};

/// Lines, pausing after `BINARY` (as an HTTP protocol pauses after a request that upgrades):
/// what follows it is left undecoded for the next protocol.
#[derive(Clone)]
struct PausingLines(Lines);

impl Protocol for PausingLines {
    type Message = String;

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(String),
    {
        let mut n = 0;
        while n < max {
            let Some(line) = self.0.decode(src)? else {
                break;
            };
            let pause = line == "BINARY";
            each(line);
            n += 1;
            if pause {
                io.pause();
                break;
            }
        }
        Ok(n)
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        _io: &mut ProtocolIo<'_>,
    ) -> Result<Option<String>, CodecError> {
        Decoder::decode_eof(&mut self.0, src)
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a String,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        tasktonic_net::codec::Encoder::encode(&mut self.0, item, dst).map(|()| None)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Sev {
    Line(String),
    Frame(Vec<u8>),
    /// Which side ("lines" or "frames") went down, and why.
    Down(&'static str, String),
    FramesUp,
    /// A watcher's notice of the connection's end: why, and the connection.
    Ended(String, tasktonic_net::tcp::ConnId),
}

enum Start<P> {
    Serve(TcpServer<P>),
    Dial(TcpClient<P>, Vec<String>),
}

/// Speaks lines until `BINARY` (a server answers it with `OK binary` and switches; a client
/// switches when it reads `OK binary`), then echoes (server) or reports (client) frames.
struct Switcher<P: Protocol<Message = String> + Clone> {
    start: Option<Start<P>>,
    server: bool,
    /// Lines a client sends once connected.
    greet: Vec<String>,
    /// Frames a client sends once switched.
    frames: Vec<Bytes>,
    framed: Option<Conn<Bytes>>,
    /// Watch the line connection (a server), to hear of the session's end.
    watch: bool,
    out: Sender<Sev>,
    addr: Sender<(SocketAddr, Handle<Switcher<P>>)>,
}

impl<P: Protocol<Message = String> + Clone> Tonic for Switcher<P> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        match self.start.take() {
            Some(Start::Serve(server)) => {
                let l = server.start(ctx).expect("bound");
                self.addr.send((l.local_addr(), ctx.handle())).ok();
            }
            Some(Start::Dial(client, greet)) => {
                client.start(ctx).expect("a selector");
                self.greet = greet;
                self.addr.send((local(), ctx.handle())).ok();
            }
            None => {}
        }
    }
}

impl<P: Protocol<Message = String> + Clone> TcpEvents<String> for Switcher<P> {
    fn on_connected(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<String>, _: SocketAddr) {
        if self.watch {
            conn.watch(&ctx.handle());
        }
        for line in self.greet.drain(..) {
            conn.send(line).ok();
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<String>, line: String) {
        self.out.send(Sev::Line(line.clone())).ok();
        let switch = if self.server {
            (line == "BINARY").then(|| Some("OK binary".to_string()))
        } else {
            (line == "OK binary").then_some(None)
        };
        match switch {
            Some(go_ahead) => {
                let framed = conn
                    .switch_protocol(LengthDelimited::new(), &ctx.handle(), go_ahead)
                    .expect("switch started");
                self.framed = Some(framed);
            }
            None if self.server => {
                conn.send(line).ok();
            }
            None => {}
        }
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<String>,
        why: &CloseReason,
        _: Vec<String>,
    ) {
        self.out.send(Sev::Down("lines", why.to_string())).ok();
    }
}

impl<P: Protocol<Message = String> + Clone> TcpEvents<Bytes> for Switcher<P> {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        self.out.send(Sev::FramesUp).ok();
        for f in self.frames.drain(..) {
            conn.send(f).ok();
        }
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        self.out.send(Sev::Frame(msg.to_vec())).ok();
        if self.server {
            conn.send(msg).ok();
        }
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<Bytes>,
        why: &CloseReason,
        _: Vec<Bytes>,
    ) {
        self.out.send(Sev::Down("frames", why.to_string())).ok();
    }
}

impl<P: Protocol<Message = String> + Clone> Receive<ConnEnded> for Switcher<P> {
    fn receive(&mut self, _: &mut Ctx<Self>, ended: ConnEnded) {
        self.out
            .send(Sev::Ended(ended.reason.to_string(), ended.conn))
            .ok();
    }
}

fn run<P: Protocol<Message = String> + Clone>(
    start: Start<P>,
    server: bool,
    frames: Vec<Bytes>,
) -> Running<Sev, Switcher<P>> {
    run_watching(start, server, frames, false)
}

fn run_watching<P: Protocol<Message = String> + Clone>(
    start: Start<P>,
    server: bool,
    frames: Vec<Bytes>,
    watch: bool,
) -> Running<Sev, Switcher<P>> {
    let (out, events) = unbounded();
    let (addr, addr_rx) = unbounded();
    let tonic = Switcher {
        start: Some(start),
        server,
        greet: Vec::new(),
        frames,
        framed: None,
        watch,
        out,
        addr,
    };
    run_app(App::new("switch-test").tonic(tonic), addr_rx, events)
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("a line");
    line
}

#[test]
fn lines_hand_the_connection_to_frames_with_the_bytes_already_sent() {
    // The server also watches the line connection: its watchers follow the session.
    let server = run_watching(
        Start::Serve(TcpServer::bind(local(), PausingLines(Lines::new()))),
        true,
        Vec::new(),
        true,
    );
    let mut s = connect(server.addr);
    // One write: two lines, then a frame for the protocol that comes after `BINARY`.
    let mut wire = b"hello\nBINARY\n".to_vec();
    wire.extend(frame(b"right behind"));
    s.write_all(&wire).expect("write");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    assert_eq!(read_line(&mut r), "hello\n");
    assert_eq!(read_line(&mut r), "OK binary\n");
    // The frame read past the boundary went to the new protocol, whole.
    let mut h = [0u8; 4];
    r.read_exact(&mut h).expect("header");
    let mut p = vec![0u8; u32::from_be_bytes(h) as usize];
    r.read_exact(&mut p).expect("payload");
    assert_eq!(p, b"right behind");
    s.write_all(&frame(b"and after")).expect("write");
    assert_eq!(read_frame(&mut s), b"and after");
    // Every notice the watcher gets on the way is kept, whatever is waited for.
    let mut notices = Vec::new();
    let mut until = |want: &dyn Fn(&Sev) -> bool| loop {
        let e = server.next();
        if matches!(e, Sev::Ended(..)) {
            notices.push(e.clone());
        }
        if want(&e) {
            return e;
        }
    };
    // The line connection ended as switched, the frame connection is up.
    assert_eq!(
        until(&|e| matches!(e, Sev::Down(..))),
        Sev::Down("lines", "handed to another protocol".into())
    );
    drop((s, r));
    assert!(matches!(
        until(&|e| matches!(e, Sev::Down(..))),
        Sev::Down("frames", _)
    ));
    until(&|e| matches!(e, Sev::Ended(..)));
    // One notice, of the session's end under the new protocol (not of the switch), for the
    // frame connection.
    let framed = server
        .hub
        .ask_blocking(LIMIT, |t, _| t.framed.as_ref().map(Conn::id))
        .expect("asked")
        .expect("switched");
    assert_eq!(
        notices,
        vec![Sev::Ended("closed by the peer".into(), framed)]
    );
    server.stop().expect("stopped");
}

#[test]
fn a_line_decoded_past_the_switch_boundary_fails_it() {
    // Plain lines do not pause: `sneaky` is cut as a line past the boundary.
    let server = run(
        Start::Serve(TcpServer::bind(local(), Lines::new())),
        true,
        Vec::new(),
    );
    let mut s = connect(server.addr);
    s.write_all(b"BINARY\nsneaky\n").expect("write");
    let mut downs = Vec::new();
    while downs.len() < 2 {
        match server.next() {
            Sev::Down(side, why) => downs.push((side, why)),
            Sev::Line(l) => assert_eq!(l, "BINARY", "sneaky never reaches on_message"),
            other => panic!("{other:?}"),
        }
    }
    downs.sort();
    assert!(
        downs[0].0 == "frames" && downs[0].1.contains("past the switch's boundary"),
        "{downs:?}"
    );
    assert!(
        downs[1].0 == "lines" && downs[1].1.contains("past the switch's boundary"),
        "{downs:?}"
    );
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("sneaky"));
    server.stop().expect("stopped");
}

#[cfg(feature = "tls")]
#[test]
fn both_sides_switch_protocol_over_tls_and_keep_the_session() {
    use tasktonic_net::transport::{Tls, TlsAcceptor, TlsConnector};
    let pki = util::pki::Pki::new("switch CA");
    let acceptor = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
        .expect("certificate");
    let server = run(
        Start::Serve(TcpServer::bind(local(), PausingLines(Lines::new())).tls(&acceptor)),
        true,
        Vec::new(),
    );
    let connector = TlsConnector::with_roots_pem(pki.ca_pem.as_bytes()).expect("roots");
    let tls = Tls::client(&connector, "localhost").expect("name");
    let frames: Vec<Bytes> = [1usize, 20_000, 0]
        .iter()
        .map(|&n| Bytes::from(vec![b'z'; n]))
        .collect();
    let client = run(
        Start::Dial(
            TcpClient::new(server.addr, PausingLines(Lines::new())).tls(tls),
            vec!["hi".to_string(), "BINARY".to_string()],
        ),
        false,
        frames.clone(),
    );
    // The client's line connection hands over, then its frame connection is up (the TLS
    // session went along: no second handshake) and every frame comes back.
    assert_eq!(
        client.until(|e| matches!(e, Sev::Down(..) | Sev::FramesUp)),
        Sev::Down("lines", "handed to another protocol".into())
    );
    assert_eq!(client.until(|e| matches!(e, Sev::FramesUp)), Sev::FramesUp);
    for f in &frames {
        match client.until(|e| matches!(e, Sev::Frame(_) | Sev::Down(..))) {
            Sev::Frame(got) => assert!(got == f.to_vec(), "frame of {} bytes differs", f.len()),
            other => panic!("{other:?}"),
        }
    }
    client.stop().expect("stopped");
    server.stop().expect("stopped");
}

/// A base for frames that completes before any connection reaches it.
struct Gone;

impl Tonic for Gone {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        ctx.finish();
    }
}

impl TcpEvents<Bytes> for Gone {}

/// Serves lines; on `BINARY` switches to `Gone`, which has completed: the watcher the
/// session carries over must hear that the switch failed.
struct Doomed {
    gone: Option<Handle<Gone>>,
    out: Sender<Sev>,
    addr: Sender<(SocketAddr, Handle<Doomed>)>,
}

impl Tonic for Doomed {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        self.gone = Some(ctx.spawn(Gone));
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, done: &tasktonic_core::TonicRef) {
        if self.gone.as_ref().map(Handle::id) != Some(done.id()) {
            return;
        }
        // Only now, with the new base surely gone, does the server open.
        let l = TcpServer::bind(local(), PausingLines(Lines::new()))
            .start(ctx)
            .expect("bound");
        self.addr.send((l.local_addr(), ctx.handle())).ok();
    }
}

impl TcpEvents<String> for Doomed {
    fn on_connected(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<String>, _: SocketAddr) {
        conn.watch(&ctx.handle());
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<String>, line: String) {
        assert_eq!(line, "BINARY");
        let gone = self.gone.as_ref().expect("spawned");
        let framed = conn
            .switch_protocol(LengthDelimited::new(), gone, Some("OK binary".into()))
            .expect("switch started");
        // Queued until the switch is made; it never is.
        framed.send(Bytes::from_static(b"never")).expect("queued");
    }
}

impl Receive<ConnEnded> for Doomed {
    fn receive(&mut self, _: &mut Ctx<Self>, ended: ConnEnded) {
        self.out
            .send(Sev::Ended(ended.reason.to_string(), ended.conn))
            .ok();
    }
}

#[test]
fn a_switch_to_a_completed_base_tells_the_watchers_and_closes() {
    let (out, events) = unbounded();
    let (addr, addr_rx) = unbounded();
    let doomed = Doomed {
        gone: None,
        out,
        addr,
    };
    let server = run_app(App::new("switch-test").tonic(doomed), addr_rx, events);
    let mut s = connect(server.addr);
    s.write_all(b"BINARY\n").expect("write");
    // The go-ahead goes out under the old protocol, then the socket closes.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert_eq!(rest, b"OK binary\n");
    match server.next() {
        Sev::Ended(why, _) => assert!(
            why.contains("protocol switch failed") && why.contains("completed"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    server.stop().expect("stopped");
}
