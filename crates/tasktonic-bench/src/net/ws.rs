//! W1 and W2: WebSocket, against tokio-tungstenite 0.28 (the tungstenite version ours is
//! built on) on a current-thread tokio runtime.
//!
//! - **W1** echo: one connection, 64 binary messages of 64 bytes in flight, every echo
//!   verified; msgs/s and the server's CPU time per message (`utime + stime` from
//!   `/proc/PID/stat` across the run).
//! - **W2** 10,000 idle sessions (handshake done, no message after): the server's memory per
//!   session (`VmRSS` before and after opening them), every handshake counted and checked.
//!
//! The servers, each in its own process (`serve-ws`):
//! - `ours_colocated`: `HttpServer::bind(..).websocket("/*")` with the echo tonic co-located
//!   on the selector catalyst, as `examples/ws_echo.rs` does.
//! - `tungstenite`: tokio-tungstenite's own `echo-server` example (`accept_async`, then
//!   `split` and `read.try_filter(text or binary).forward(write)`; `forward` feeds every
//!   message that is ready and flushes when the stream has nothing ready), default config,
//!   on a current-thread runtime.
//! - `tungstenite_tuned`: the fastest and leanest form we found: the same loop without
//!   `split` (`feed` every message that is ready, `flush` when none is — the pipelined form
//!   the other tokio peers are written in; no `BiLock` between the halves), and a 4 KiB read
//!   buffer (`WebSocketConfig::read_buffer_size`) instead of the default 128 KiB, which
//!   tungstenite zero-fills (up to that size) before every socket read (W1: `memset` was
//!   ~12 % of the default server's samples) and every session keeps from its first read
//!   (W2: ~130 KiB a session).
//!
//! The tungstenite servers set `TCP_NODELAY` (as every other peer here; the example does not,
//! which can only slow it). Ratios are given against each; the claims rest on the stronger
//! (W1: the faster, W2: the leaner).
//!
//! The load generator is one thread of this process for every server, and cheap per
//! message: the 256 distinct masked request frames and their 256 expected echoes are made
//! once, so sending is a copy and checking an echo one compare.
//!
//! ```text
//! tasktonic-bench serve-ws ours|tungstenite|tungstenite_tuned   # prints `listening on ADDR`
//! tasktonic-bench serve-ws ours 1024    # ours with WsConfig::read_chunk(1024) (profiling)
//! tasktonic-bench load-ws w1 ADDR [COUNT] | load-ws w2 ADDR   # drive it once
//! ```

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt, TryStreamExt};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tasktonic_core::{App, Ctx, Tonic, TonicRef};
use tasktonic_net::Selector;
use tasktonic_net::http::{HttpHandler, HttpServer, Request, Response};
use tasktonic_net::ws::{Ws, WsAccept, WsConfig, WsEvents, WsMessage};
use tungstenite::protocol::WebSocketConfig;

use super::Server;

/// W1's shape: one connection, `WINDOW` messages of `SIZE` bytes in flight, `COUNT` echoes.
pub(crate) const WINDOW: u64 = 64;
pub(crate) const SIZE: usize = 64;
pub(crate) const COUNT: u64 = 2_000_000;

/// W2's sessions, and how many handshakes the client keeps in progress at once.
pub(crate) const SESSIONS: usize = 10_000;
const HANDSHAKES_AT_ONCE: usize = 256;

/// tokio-tungstenite's tuned read buffer (its default is 128 KiB, zero-filled before every
/// socket read, and kept by every session from its first read).
const TUNED_READ_BUFFER: usize = 4096;

/// A WebSocket server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WsImpl {
    /// Ours: the echo tonic co-located on the selector (`examples/ws_echo.rs`).
    Ours,
    /// tokio-tungstenite's echo-server example: `split` + `forward`, default config.
    Tungstenite,
    /// tokio-tungstenite unsplit, feed what is ready and flush when nothing is, with a
    /// 4 KiB read buffer: the fastest and leanest form we found.
    TungsteniteTuned,
}

impl WsImpl {
    pub(crate) const ALL: [WsImpl; 3] =
        [WsImpl::Ours, WsImpl::Tungstenite, WsImpl::TungsteniteTuned];

    pub(crate) fn name(self) -> &'static str {
        match self {
            WsImpl::Ours => "ours_colocated",
            WsImpl::Tungstenite => "tungstenite",
            WsImpl::TungsteniteTuned => "tungstenite_tuned",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<WsImpl> {
        match s {
            "ours" => Some(WsImpl::Ours),
            _ => WsImpl::ALL.into_iter().find(|i| i.name() == s),
        }
    }
}

fn announce(addr: SocketAddr) {
    println!("listening on {addr}");
    io::stdout().flush().ok();
}

/// Run the server `which` in this process (`serve-ws`). `read_chunk` (ours only, for
/// profiling; W1 and W2 use the example's default): `WsConfig::read_chunk` of the sessions.
pub(crate) fn serve(which: WsImpl, read_chunk: Option<usize>) {
    super::raise_fd_limit();
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    match which {
        WsImpl::Ours => {
            let config = match read_chunk {
                Some(bytes) => WsConfig::default().read_chunk(bytes),
                None => WsConfig::default(),
            };
            let app = App::new("bench-ws")
                .log_level(log::LevelFilter::Error)
                .tonic(Launcher { addr, config });
            if let Err(e) = app.run() {
                eprintln!("serve-ws: {e}");
            }
        }
        WsImpl::Tungstenite => tungstenite_server(addr, false),
        WsImpl::TungsteniteTuned => tungstenite_server(addr, true),
    }
}

// ----- ours --------------------------------------------------------------------------------------

/// `examples/ws_echo.rs`'s echo tonic.
struct Echo {
    addr: SocketAddr,
    /// The sessions' limits (the example's: `WsConfig::default()`).
    config: WsConfig,
}

impl Tonic for Echo {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        match HttpServer::bind(self.addr).websocket("/*").start(ctx) {
            Ok(listening) => announce(listening.local_addr()),
            Err(e) => {
                eprintln!("serve-ws: cannot listen: {e}");
                ctx.stop_app();
            }
        }
    }
}

impl HttpHandler for Echo {}

impl WsEvents for Echo {
    fn on_ws_upgrade(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Request<Bytes>,
    ) -> Result<WsAccept, Response<Bytes>> {
        Ok(WsAccept::new().config(self.config.clone()))
    }

    fn on_ws_message(&mut self, _: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {
        if let Err(e) = ws.send(msg) {
            log::warn!("{ws}: echo not sent ({e}); closing");
            ws.abort();
        }
    }
}

/// Places `Echo` on the selector catalyst (co-located), as the example's launcher does.
struct Launcher {
    addr: SocketAddr,
    config: WsConfig,
}

impl Tonic for Launcher {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let echo = Echo {
            addr: self.addr,
            config: self.config.clone(),
        };
        let spawned = match Selector::default_for(ctx) {
            Ok(s) => ctx.infusion(echo).catalyst(s.catalyst()).spawn(),
            Err(_) => return ctx.stop_app(),
        };
        if spawned.is_err() {
            ctx.stop_app();
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        ctx.finish();
    }
}

// ----- tokio-tungstenite -------------------------------------------------------------------------

/// tokio-tungstenite's echo server on a current-thread runtime: the example's, or (`tuned`)
/// the feed-then-flush loop with a 4 KiB read buffer.
fn tungstenite_server(addr: SocketAddr, tuned: bool) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::bind(addr).await else {
            return;
        };
        if let Ok(a) = listener.local_addr() {
            announce(a);
        }
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            if tuned {
                tokio::spawn(tuned_echo(stream));
            } else {
                tokio::spawn(example_echo(stream));
            }
        }
    });
}

/// tokio-tungstenite's `examples/echo-server.rs`, `accept_connection`, less its logging.
async fn example_echo(stream: tokio::net::TcpStream) {
    let Ok(ws_stream) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws_stream.split();
    // We should not forward messages other than text or binary.
    let _ = read
        .try_filter(|msg| futures::future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}

/// The echo written as a pipelined echo is written with a `Sink` + `Stream` (`feed` every
/// message already decoded, `flush` when none is ready; no `split`, so no `BiLock` between
/// the halves), with a 4 KiB read buffer (`accept_async_with_config`).
async fn tuned_echo(stream: tokio::net::TcpStream) {
    let config = WebSocketConfig::default().read_buffer_size(TUNED_READ_BUFFER);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.feed(msg).await.is_err() {
            return;
        }
        // Everything already decoded goes into the same flush.
        while let Some(Some(Ok(msg))) = ws.next().now_or_never() {
            if (msg.is_text() || msg.is_binary()) && ws.feed(msg).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}

// ----- the client side ---------------------------------------------------------------------------

/// The opening handshake's request for `key`.
fn handshake_request(addr: SocketAddr, key: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Where a response head ends (after its blank line), if it is whole.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Is `head` a `101` with the `Sec-WebSocket-Accept` that `key` asks for?
fn check_response(head: &[u8], key: &str) -> Result<(), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("the server answered {status:?}"));
    }
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let accept = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim().to_string())
    });
    if accept.as_deref() == Some(expected.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "Sec-WebSocket-Accept {accept:?}, expected {expected:?}"
        ))
    }
}

/// Open one session on a blocking socket; returns it, nonblocking, for mio.
fn open_session(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let key = tungstenite::handshake::client::generate_key();
    s.write_all(&handshake_request(addr, &key))
        .map_err(|e| format!("handshake: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        let n = s.read(&mut buf).map_err(|e| format!("handshake: {e}"))?;
        if n == 0 {
            return Err("closed during the handshake".into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head_end(&head) {
            break end;
        }
    };
    if end != head.len() {
        return Err("bytes after the handshake's response".into());
    }
    check_response(&head, &key)?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(TcpStream::from_std(s))
}

/// The 256 distinct client frames (binary, masked, `SIZE` bytes) and the server's echo of
/// each (unmasked). Message `seq` is number `seq % 256`: neighbours differ in payload and
/// mask.
struct Frames {
    requests: Vec<Vec<u8>>,
    echoes: Vec<Vec<u8>>,
}

impl Frames {
    fn new() -> Frames {
        let mut requests = Vec::with_capacity(256);
        let mut echoes = Vec::with_capacity(256);
        let len = u8::try_from(SIZE).expect("a payload under 126 bytes");
        for k in 0..256usize {
            let payload: Vec<u8> = (0..SIZE)
                .map(|j| ((k + j).wrapping_mul(7) ^ (j >> 3) ^ k) as u8)
                .collect();
            let mask = (k as u32)
                .wrapping_mul(0x9E37_79B9)
                .wrapping_add(0x7F4A_7C15)
                .to_be_bytes();
            let mut request = vec![0x82, 0x80 | len];
            request.extend_from_slice(&mask);
            request.extend(payload.iter().enumerate().map(|(j, b)| b ^ mask[j % 4]));
            let mut echo = vec![0x82, len];
            echo.extend_from_slice(&payload);
            requests.push(request);
            echoes.push(echo);
        }
        Frames { requests, echoes }
    }

    fn request(&self, seq: u64) -> &[u8] {
        &self.requests[(seq % 256) as usize]
    }

    fn echo(&self, seq: u64) -> &[u8] {
        &self.echoes[(seq % 256) as usize]
    }
}

/// W1 against a server at `addr`: `count` echoes with `WINDOW` in flight; msgs/s, every echo
/// verified byte for byte.
pub(crate) fn load_w1(addr: SocketAddr, count: u64) -> Result<f64, String> {
    let frames = Frames::new();
    let mut stream = open_session(addr)?;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    poll.registry()
        .register(
            &mut stream,
            Token(0),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(16);
    let echo_len = frames.echo(0).len();
    let (mut sent, mut received) = (0u64, 0u64);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out_at = 0;
    let mut inbuf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut scratch = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    loop {
        // Keep the window full, then write what the socket takes.
        while sent < count && sent - received < WINDOW {
            out.extend_from_slice(frames.request(sent));
            sent += 1;
        }
        while out_at < out.len() {
            match stream.write(&out[out_at..]) {
                Ok(n) => out_at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        if out_at == out.len() {
            out.clear();
            out_at = 0;
        }
        if received == count {
            return Ok(count as f64 / start.elapsed().as_secs_f64());
        }
        poll.poll(&mut events, Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
        if Instant::now() > deadline {
            return Err(format!("{received} of {count} echoes in 120 s"));
        }
        loop {
            match stream.read(&mut scratch) {
                Ok(0) => return Err(format!("closed by the server after {received} echoes")),
                Ok(n) => inbuf.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        let mut pos = 0;
        while inbuf.len() - pos >= echo_len {
            if inbuf[pos..pos + echo_len] != *frames.echo(received) {
                return Err(format!(
                    "echo {received} differs: {:02x?}",
                    &inbuf[pos..pos + echo_len]
                ));
            }
            received += 1;
            pos += echo_len;
        }
        inbuf.drain(..pos);
    }
}

/// A W2 session being opened.
struct Opening {
    stream: TcpStream,
    key: String,
    request: Vec<u8>,
    written: usize,
    head: Vec<u8>,
}

/// What W2's client saw.
pub(crate) struct Opened {
    /// Handshakes that completed with a valid `101`.
    pub(crate) handshakes: usize,
    /// Sessions still open (the server had not closed them) after the measurement.
    pub(crate) open_after: usize,
    /// Time to open them all.
    pub(crate) elapsed: Duration,
}

/// W2's client: a warm-up session (one echo) first, then `idle_baseline`; then `n` sessions
/// opened with nonblocking sockets, `HANDSHAKES_AT_ONCE` at a time, every `101` checked;
/// then `idle` with all of them open and idle; then a count of those still open.
pub(crate) fn open_many(
    addr: SocketAddr,
    n: usize,
    idle_baseline: impl FnOnce(),
    idle: impl FnOnce(),
) -> Result<Opened, String> {
    // The warm-up session echoes once, so that what every server allocates once (its
    // first connection, per-thread buffers) is in the baseline.
    let mut warm = open_session(addr)?;
    let frames = Frames::new();
    warm.write_all(frames.request(0))
        .map_err(|e| format!("warm-up: {e}"))?;
    let mut back = vec![0u8; frames.echo(0).len()];
    let mut got = 0;
    let until = Instant::now() + Duration::from_secs(10);
    while got < back.len() {
        match warm.read(&mut back[got..]) {
            Ok(0) => return Err("warm-up session closed".into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > until {
                    return Err("no warm-up echo".into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(format!("warm-up: {e}")),
        }
    }
    if back != frames.echo(0) {
        return Err("the warm-up echo differs".into());
    }
    std::thread::sleep(Duration::from_millis(200));
    idle_baseline();

    let start = Instant::now();
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut opening: slab::Slab<Opening> = slab::Slab::with_capacity(HANDSHAKES_AT_ONCE);
    let mut open: Vec<TcpStream> = Vec::with_capacity(n);
    let mut failures: Vec<String> = Vec::new();
    let mut started = 0;
    let deadline = start + Duration::from_secs(120);
    while open.len() + failures.len() < n {
        while started < n && opening.len() < HANDSHAKES_AT_ONCE {
            let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
            let entry = opening.vacant_entry();
            poll.registry()
                .register(
                    &mut stream,
                    Token(entry.key()),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| e.to_string())?;
            let key = tungstenite::handshake::client::generate_key();
            entry.insert(Opening {
                stream,
                request: handshake_request(addr, &key),
                key,
                written: 0,
                head: Vec::new(),
            });
            started += 1;
        }
        poll.poll(&mut events, Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {n} sessions open after 120 s ({} failed)",
                open.len(),
                failures.len()
            ));
        }
        for event in &events {
            let key = event.token().0;
            let Some(o) = opening.get_mut(key) else {
                continue;
            };
            match step(o) {
                Ok(false) => {}
                Ok(true) => {
                    let mut o = opening.remove(key);
                    poll.registry()
                        .deregister(&mut o.stream)
                        .map_err(|e| e.to_string())?;
                    open.push(o.stream);
                }
                Err(e) => {
                    let mut o = opening.remove(key);
                    let _ = poll.registry().deregister(&mut o.stream);
                    failures.push(e);
                }
            }
        }
    }
    let elapsed = start.elapsed();
    if let Some(first) = failures.first() {
        eprintln!(
            "w2: {} of {n} handshakes failed; the first: {first}",
            failures.len()
        );
    }
    // Let the server finish what the last handshakes started (a session's first read).
    std::thread::sleep(Duration::from_millis(500));
    idle();
    let mut buf = [0u8; 64];
    let mut open_after = 0;
    for s in &mut open {
        let alive = match s.read(&mut buf) {
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            Ok(k) => k > 0,
        };
        open_after += usize::from(alive);
    }
    drop(warm);
    Ok(Opened {
        handshakes: open.len(),
        open_after,
        elapsed,
    })
}

/// Advance one handshake: write the request, read the response; true once it is valid.
fn step(o: &mut Opening) -> Result<bool, String> {
    while o.written < o.request.len() {
        match o.stream.write(&o.request[o.written..]) {
            Ok(k) => o.written += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    let mut buf = [0u8; 1024];
    loop {
        match o.stream.read(&mut buf) {
            Ok(0) => return Err("closed during the handshake".into()),
            Ok(k) => o.head.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    match head_end(&o.head) {
        None => Ok(false),
        Some(end) if end != o.head.len() => Err("bytes after the handshake's response".into()),
        Some(_) => check_response(&o.head, &o.key).map(|()| true),
    }
}

// ----- the samples -------------------------------------------------------------------------------

/// One W1 sample.
pub(crate) struct W1Figures {
    pub(crate) msgs_per_s: f64,
    /// Server CPU time (user + system) per message, in µs.
    pub(crate) cpu_us_per_msg: f64,
}

fn spawn(which: WsImpl) -> Result<Server, String> {
    Server::spawn(&["serve-ws".as_ref(), which.name().as_ref()], which.name())
}

/// One W1 sample against a fresh `which` server.
pub(crate) fn w1(which: WsImpl) -> Result<W1Figures, String> {
    let server = spawn(which)?;
    let before = crate::procfs::cpu_ticks(server.pid());
    let rate = load_w1(server.addr, COUNT)?;
    let ticks = crate::procfs::cpu_ticks(server.pid()).saturating_sub(before);
    // Clock ticks are 10 ms on Linux (USER_HZ = 100).
    Ok(W1Figures {
        msgs_per_s: rate,
        cpu_us_per_msg: ticks as f64 * 10_000.0 / COUNT as f64,
    })
}

/// One W2 sample.
pub(crate) struct W2Figures {
    pub(crate) bytes_per_session: f64,
    pub(crate) handshakes: usize,
    pub(crate) open_after: usize,
    pub(crate) open_ms: f64,
}

/// One W2 sample against a fresh `which` server.
pub(crate) fn w2(which: WsImpl) -> Result<W2Figures, String> {
    super::raise_fd_limit();
    let server = spawn(which)?;
    let (mut before, mut after) = (0, 0);
    let opened = open_many(
        server.addr,
        SESSIONS,
        || before = server.rss(),
        || after = server.rss(),
    )?;
    Ok(W2Figures {
        bytes_per_session: after.saturating_sub(before) as f64 / SESSIONS as f64,
        handshakes: opened.handshakes,
        open_after: opened.open_after,
        open_ms: opened.elapsed.as_secs_f64() * 1e3,
    })
}
