//! The echo servers raced in N1–N5, each run in its own process (`tasktonic-bench serve IMPL`).
//! All speak u32 big-endian length-prefixed frames.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tasktonic_core::{App, Ctx, Tonic, TonicRef};
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::{Conn, Selector, TcpEvents, TcpServer};

fn announce(addr: SocketAddr) {
    println!("listening on {addr}");
    io::stdout().flush().ok();
}

// ----- ours --------------------------------------------------------------------------------------

struct Echo {
    server: Option<TcpServer<LengthDelimited>>,
}

impl Tonic for Echo {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(server) = self.server.take() {
            match server.backlog(4096).start(ctx) {
                Ok(l) => announce(l.local_addr()),
                Err(e) => {
                    eprintln!("serve: {e}");
                    ctx.stop_app();
                }
            }
        }
    }
}

impl TcpEvents<Bytes> for Echo {
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        let _ = conn.send(msg);
    }
}

struct Launcher {
    server: Option<TcpServer<LengthDelimited>>,
    colocated: bool,
}

impl Tonic for Launcher {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let echo = Echo {
            server: self.server.take(),
        };
        let spawned = if self.colocated {
            match Selector::default_for(ctx) {
                Ok(s) => ctx.infusion(echo).catalyst(s.catalyst()).spawn(),
                Err(_) => return ctx.stop_app(),
            }
        } else {
            ctx.infusion(echo).spawn()
        };
        if spawned.is_err() {
            ctx.stop_app();
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        ctx.finish();
    }
}

/// Our echo server: the echo tonic on main (seed) or on the selector (co-located).
pub(crate) fn ours(addr: SocketAddr, colocated: bool) {
    let _ = serve_ours(TcpServer::bind(addr, LengthDelimited::new()), colocated);
}

/// Our echo server for `server` (plain or TLS), seed or co-located.
pub(crate) fn serve_ours(
    server: TcpServer<LengthDelimited>,
    colocated: bool,
) -> Result<(), String> {
    App::new("bench-server")
        .log_level(log::LevelFilter::Error)
        .tonic(Launcher {
            server: Some(server),
            colocated,
        })
        .run()
        .map_err(|e| e.to_string())
}

// ----- tokio -------------------------------------------------------------------------------------

/// tokio current-thread runtime + `LengthDelimitedCodec`, one task per connection.
/// `pipelined`: as a pipelined echo is written — `feed` every frame already decoded and
/// `flush` when none is ready, with a 64 KiB read buffer (`Framed::with_capacity`); else
/// `framed.send(frame)` per frame, a write per message (what many users write: the weak peer).
pub(crate) fn tokio(addr: SocketAddr, pipelined: bool) {
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
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let codec = tokio_util::codec::LengthDelimitedCodec::new();
                if !pipelined {
                    let mut framed = tokio_util::codec::Framed::new(socket, codec);
                    while let Some(Ok(frame)) = framed.next().await {
                        if framed.send(frame.freeze()).await.is_err() {
                            break;
                        }
                    }
                    return;
                }
                pipelined_echo(socket).await;
            });
        }
    });
}

/// A u32-framed echo over `stream`, written as tokio's users write a pipelined one: `feed`
/// every frame already decoded, `flush` when none is ready, and a read buffer as large as a
/// socket read brings (tokio-util's default, 8 KiB, splits a pipelined window into many small
/// reads). Plain TCP here, TLS in T1.
pub(crate) async fn pipelined_echo<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let codec = tokio_util::codec::LengthDelimitedCodec::new();
    let mut framed = tokio_util::codec::Framed::with_capacity(stream, codec, 64 * 1024);
    while let Some(Ok(frame)) = framed.next().await {
        if framed.feed(frame.freeze()).await.is_err() {
            return;
        }
        // Everything already decoded goes into the same flush.
        while let Some(Some(Ok(frame))) = framed.next().now_or_never() {
            if framed.feed(frame.freeze()).await.is_err() {
                return;
            }
        }
        if SinkExt::<Bytes>::flush(&mut framed).await.is_err() {
            return;
        }
    }
}

// ----- raw mio -----------------------------------------------------------------------------------

const LISTENER: Token = Token(usize::MAX);

struct RawConn {
    stream: TcpStream,
    /// An incomplete frame carried over from the last read (usually empty).
    pending_in: Vec<u8>,
    /// Echo bytes the socket did not take yet (usually empty).
    pending_out: Vec<u8>,
}

/// The practical ceiling for one thread: edge-triggered, reads until `WouldBlock` into one
/// scratch buffer, echoes whole frames straight from it, keeps per-connection buffers only for
/// leftovers (so an idle connection holds almost nothing).
pub(crate) fn mio(addr: SocketAddr) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(std_listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    announce(listener.local_addr()?);
    let mut conns: slab::Slab<RawConn> = slab::Slab::new();
    let mut scratch = vec![0u8; 256 * 1024];
    let mut out = Vec::with_capacity(256 * 1024);
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let entry = conns.vacant_entry();
                    let token = Token(entry.key());
                    if poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        entry.insert(RawConn {
                            stream,
                            pending_in: Vec::new(),
                            pending_out: Vec::new(),
                        });
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let alive = serve_conn(conn, &mut scratch, &mut out);
            if !alive {
                let mut c = conns.remove(key);
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
    }
}

/// Flush, read and echo; false when the connection is gone.
fn serve_conn(conn: &mut RawConn, scratch: &mut [u8], out: &mut Vec<u8>) -> bool {
    if !flush(conn) {
        return false;
    }
    loop {
        // Start from the carried-over partial frame, if any.
        let carried = conn.pending_in.len();
        scratch[..carried].copy_from_slice(&conn.pending_in);
        conn.pending_in.clear();
        let n = match conn.stream.read(&mut scratch[carried..]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.pending_in.extend_from_slice(&scratch[..carried]);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(_) => return false,
        };
        let filled = carried + n;
        let mut pos = 0;
        out.clear();
        while filled - pos >= 4 {
            let len = u32::from_be_bytes([
                scratch[pos],
                scratch[pos + 1],
                scratch[pos + 2],
                scratch[pos + 3],
            ]) as usize;
            if filled - pos - 4 < len {
                break;
            }
            out.extend_from_slice(&scratch[pos..pos + 4 + len]);
            pos += 4 + len;
        }
        conn.pending_in.extend_from_slice(&scratch[pos..filled]);
        if filled - pos > scratch.len() / 2 {
            // A frame larger than the scratch space: this baseline does not support it.
            return false;
        }
        if !send_now(conn, out) {
            return false;
        }
    }
    if conn.pending_in.is_empty() {
        conn.pending_in = Vec::new();
    }
    true
}

/// Write `bytes` now; keep what the socket does not take.
fn send_now(conn: &mut RawConn, bytes: &[u8]) -> bool {
    if !conn.pending_out.is_empty() {
        conn.pending_out.extend_from_slice(bytes);
        return flush(conn);
    }
    let mut at = 0;
    while at < bytes.len() {
        match conn.stream.write(&bytes[at..]) {
            Ok(0) => return false,
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.pending_out.extend_from_slice(&bytes[at..]);
    true
}

fn flush(conn: &mut RawConn) -> bool {
    while !conn.pending_out.is_empty() {
        match conn.stream.write(&conn.pending_out) {
            Ok(0) => return false,
            Ok(n) => {
                conn.pending_out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.pending_out = Vec::new();
    true
}
