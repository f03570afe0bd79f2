//! T1: echo over TLS, 1 connection × 64 in flight × 4 KiB u32 frames, against tokio +
//! tokio-rustls on a current-thread runtime. Both servers use the same rustls 0.23 with the
//! ring provider and the same certificate; the load generator (mio + rustls, in its own
//! process) verifies every echoed byte.
//!
//! ```text
//! tasktonic-bench serve-tls ours|tokio DIR   # DIR holds cert.pem, key.pem (made by `t1`)
//! tasktonic-bench load-tls ADDR DIR          # DIR holds ca.pem
//! ```

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::{TcpServer, TlsAcceptor, TlsConnector};

use super::{Server, servers};

/// The shape of T1.
pub(crate) const WINDOW: usize = 64;
pub(crate) const SIZE: usize = 4096;
pub(crate) const COUNT: u64 = 200_000;

/// A TLS echo server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsImpl {
    /// Ours, the echo tonic co-located on the selector.
    Ours,
    /// tokio current-thread + tokio-rustls + `LengthDelimitedCodec`, pipelined.
    Tokio,
}

impl TlsImpl {
    pub(crate) const ALL: [TlsImpl; 2] = [TlsImpl::Ours, TlsImpl::Tokio];

    pub(crate) fn name(self) -> &'static str {
        match self {
            TlsImpl::Ours => "ours_colocated",
            TlsImpl::Tokio => "tokio_rustls",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<TlsImpl> {
        match s {
            "ours" | "ours_colocated" => Some(TlsImpl::Ours),
            "tokio" | "tokio_rustls" => Some(TlsImpl::Tokio),
            _ => None,
        }
    }
}

/// A CA and a server certificate for `localhost`, as PEM files in a fresh folder.
pub(crate) struct Pki {
    pub(crate) dir: PathBuf,
}

impl Pki {
    pub(crate) fn new() -> Result<Pki, String> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let err = |e: rcgen::Error| e.to_string();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let params = CertificateParams::new(vec!["localhost".to_string()]).map_err(err)?;
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        let dir = std::env::temp_dir().join(format!("tasktonic-bench-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("cert.pem", cert.pem()),
            ("key.pem", key.serialize_pem()),
        ] {
            std::fs::write(dir.join(name), pem).map_err(|e| e.to_string())?;
        }
        Ok(Pki { dir })
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn acceptor(dir: &Path) -> Result<TlsAcceptor, String> {
    TlsAcceptor::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"))
        .map_err(|e| e.to_string())
}

fn announce(addr: SocketAddr) {
    println!("listening on {addr}");
    io::stdout().flush().ok();
}

// ----- ours --------------------------------------------------------------------------------------

/// Ours: the N1–N3 echo server (`servers.rs`), co-located, with TLS.
fn ours(dir: &Path) -> Result<(), String> {
    let acceptor = acceptor(dir)?;
    let addr: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "an address")?;
    servers::serve_ours(
        TcpServer::bind(addr, LengthDelimited::new()).tls(&acceptor),
        true,
    )
}

// ----- tokio + tokio-rustls ----------------------------------------------------------------------

/// tokio current-thread + tokio-rustls + `LengthDelimitedCodec`, written as its users write a
/// pipelined echo: `feed` every frame that is already decoded, `flush` when none is ready.
fn tokio(dir: &Path) -> Result<(), String> {
    let config = acceptor(dir)?.rustls_config().clone();
    let tls = tokio_rustls::TlsAcceptor::from(config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        announce(listener.local_addr().map_err(|e| e.to_string())?);
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                let Ok(stream) = tls.accept(socket).await else {
                    return;
                };
                servers::pipelined_echo(stream).await;
            });
        }
        Ok::<(), String>(())
    })
}

/// The `serve-tls` subcommand.
pub(crate) fn serve(which: TlsImpl, dir: &Path) {
    let result = match which {
        TlsImpl::Ours => ours(dir),
        TlsImpl::Tokio => tokio(dir),
    };
    if let Err(e) = result {
        eprintln!("serve-tls {}: {e}", which.name());
        std::process::exit(1);
    }
}

/// One T1 sample against `which`: msgs/s, and the server's CPU time per message in µs
/// (user + system, from `/proc/PID/stat` across the run).
pub(crate) fn throughput(which: TlsImpl, pki: &Pki) -> Result<(f64, f64), String> {
    let args = [
        "serve-tls".as_ref(),
        which.name().as_ref(),
        pki.dir.as_os_str(),
    ];
    let server = Server::spawn(&args, which.name())?;
    let before = crate::procfs::cpu_ticks(server.pid());
    let rate = load(server.addr, &pki.dir)?;
    let ticks = crate::procfs::cpu_ticks(server.pid()).saturating_sub(before);
    // Clock ticks are 10 ms on Linux (USER_HZ = 100).
    let us_per_msg = ticks as f64 * 10_000.0 / COUNT as f64;
    Ok((rate, us_per_msg))
}

// ----- the load generator ------------------------------------------------------------------------

/// The payload of message `seq` is `PATTERN[seq % 256..][..SIZE]`: every message differs
/// from its neighbours, and making and checking one is a copy and a compare (the load
/// generator must not be slower than the servers it drives).
fn pattern() -> Vec<u8> {
    (0..SIZE + 256)
        .map(|k| ((k.wrapping_mul(7)) ^ (k >> 3)) as u8)
        .collect()
}

fn payload(pattern: &[u8], seq: u64) -> &[u8] {
    let at = (seq % 256) as usize;
    &pattern[at..at + SIZE]
}

/// T1 against a server at `addr`: msgs/s, every echo verified.
pub(crate) fn load(addr: SocketAddr, dir: &Path) -> Result<f64, String> {
    let connector =
        TlsConnector::with_roots_pem_file(dir.join("ca.pem")).map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut tls = rustls::ClientConnection::new(connector.rustls_config().clone(), name)
        .map_err(|e| e.to_string())?;
    let std = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    std.set_nodelay(true).map_err(|e| e.to_string())?;
    std.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut stream = TcpStream::from_std(std);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    poll.registry()
        .register(
            &mut stream,
            Token(0),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(64);
    let pattern = pattern();
    let (mut sent, mut received) = (0u64, 0u64);
    let mut inbuf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut scratch = vec![0u8; 64 * 1024];
    let mut plain_in = vec![0u8; 32 * 1024];
    let mut plain = Vec::with_capacity(WINDOW * (SIZE + 4));
    let mut plain_at = 0;
    let mut start = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if !tls.is_handshaking() {
            let started = *start.get_or_insert_with(Instant::now);
            // Keep the window full.
            if plain_at == plain.len() {
                plain.clear();
                plain_at = 0;
            }
            while sent < COUNT && sent - received < WINDOW as u64 {
                plain.extend_from_slice(&u32::try_from(SIZE).unwrap_or(0).to_be_bytes());
                plain.extend_from_slice(payload(&pattern, sent));
                sent += 1;
            }
            if received == COUNT {
                return Ok(COUNT as f64 / started.elapsed().as_secs_f64());
            }
        }
        // Plaintext into rustls (its buffer takes 64 KiB), records onto the socket.
        loop {
            while tls.wants_write() {
                match tls.write_tls(&mut stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("write: {e}")),
                }
            }
            if tls.wants_write() || plain_at == plain.len() {
                break;
            }
            let n = tls
                .writer()
                .write(&plain[plain_at..])
                .map_err(|e| e.to_string())?;
            plain_at += n;
        }
        poll.poll(&mut events, Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
        if Instant::now() > deadline {
            return Err("no completion within 120 s".into());
        }
        loop {
            match stream.read(&mut scratch) {
                Ok(0) => return Err("closed by the server".into()),
                Ok(n) => {
                    let mut data = &scratch[..n];
                    while !data.is_empty() {
                        tls.read_tls(&mut data).map_err(|e| e.to_string())?;
                        tls.process_new_packets().map_err(|e| e.to_string())?;
                        // Drained after every batch of records (rustls holds 16 KiB).
                        loop {
                            match tls.reader().read(&mut plain_in) {
                                Ok(0) => break,
                                Ok(k) => inbuf.extend_from_slice(&plain_in[..k]),
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => return Err(e.to_string()),
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        let mut pos = 0;
        while inbuf.len() - pos >= 4 {
            let len =
                u32::from_be_bytes([inbuf[pos], inbuf[pos + 1], inbuf[pos + 2], inbuf[pos + 3]])
                    as usize;
            if inbuf.len() - pos - 4 < len {
                break;
            }
            if len != SIZE {
                return Err(format!("echo of size {len}, expected {SIZE}"));
            }
            let seq = received;
            if inbuf[pos + 4..pos + 4 + len] != *payload(&pattern, seq) {
                return Err(format!("echo {seq} differs"));
            }
            received += 1;
            pos += 4 + len;
        }
        inbuf.drain(..pos);
    }
}
