//! An echo server: every message on every connection comes straight back.
//!
//! ```text
//! cargo run --release --example echo_server -- --port P [--codec u32|msgpack|lines|raw|tinyproto]
//!     [--max-frame BYTES] [--layout seed|colocated|pool] [--selectors N]
//!     [--tls CERT.pem KEY.pem] [--idle-timeout SECS]
//! ```
//!
//! Prints `listening on 127.0.0.1:P` once ready, echoes until SIGINT or SIGTERM, then closes
//! every connection gracefully (what was accepted is written first) and exits 0.
//!
//! `--tls CERT.pem KEY.pem` speaks TLS with that certificate chain and key. `--idle-timeout
//! SECS` drops a peer that sent no complete message for that long (socktools' timeout).
//!
//! Layouts: `seed` (default) puts the echo logic in a tonic on the main catalyst, the socket
//! handlers on the selector — the TaskTonic way; `colocated` puts the echo tonic on the selector
//! catalyst too, so a message never changes threads; `pool` spreads the connections over a
//! pool of selectors (`--selectors N`, default one per core), each with a per-connection echo
//! tonic beside it on its selector.

mod support;

use std::io::Write;
use std::net::SocketAddr;

use tasktonic::net::codec::{LengthDelimited, Lines, MsgPack, RawBytes};
use tasktonic::net::protocol::Protocol;
use tasktonic::net::tinyproto::TinyProto;
use tasktonic::net::{Conn, TcpConfig, TcpEvents, TcpServer, TlsAcceptor};
use tasktonic::prelude::*;

struct Options {
    port: u16,
    codec: String,
    max_frame: usize,
    colocated: bool,
    /// `--layout pool`: the pool's size (0: one per core).
    pool: Option<usize>,
    tls: Option<(String, String)>,
    idle_timeout: Option<std::time::Duration>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        port: 0,
        codec: "u32".into(),
        max_frame: tasktonic::net::codec::DEFAULT_MAX_FRAME,
        colocated: false,
        pool: None,
        tls: None,
        idle_timeout: None,
    };
    let mut selectors = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => o.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--codec" => o.codec = value()?,
            "--max-frame" => {
                o.max_frame = value()?.parse().map_err(|e| format!("--max-frame: {e}"))?
            }
            "--layout" => match value()?.as_str() {
                "seed" => (o.colocated, o.pool) = (false, None),
                "colocated" => (o.colocated, o.pool) = (true, None),
                "pool" => (o.colocated, o.pool) = (false, Some(0)),
                other => {
                    return Err(format!(
                        "--layout: unknown layout {other:?} (seed|colocated|pool)"
                    ));
                }
            },
            "--selectors" => {
                let n: usize = value()?.parse().map_err(|e| format!("--selectors: {e}"))?;
                if n == 0 {
                    return Err("--selectors must be at least 1".into());
                }
                selectors = Some(n);
            }
            "--tls" => {
                let cert = value()?;
                let key = args
                    .next()
                    .ok_or("--tls needs two values: CERT.pem KEY.pem")?;
                o.tls = Some((cert, key));
            }
            "--idle-timeout" => {
                let secs: f64 = value()?
                    .parse()
                    .map_err(|e| format!("--idle-timeout: {e}"))?;
                let t = std::time::Duration::try_from_secs_f64(secs)
                    .map_err(|e| format!("--idle-timeout: {e}"))?;
                if t.is_zero() {
                    return Err("--idle-timeout must be more than 0".into());
                }
                o.idle_timeout = Some(t);
            }
            "-h" | "--help" => {
                return Err(
                    "usage: echo_server --port P [--codec u32|msgpack|lines|raw|tinyproto] \
                            [--max-frame BYTES] [--layout seed|colocated|pool] [--selectors N] \
                            [--tls CERT.pem KEY.pem] [--idle-timeout SECS]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match (selectors, &mut o.pool) {
        (Some(n), Some(pool)) => *pool = n,
        (Some(_), None) => return Err("--selectors needs --layout pool".into()),
        (None, _) => {}
    }
    Ok(o)
}

/// Echoes every message of every connection (or, on a pool, starts one `EchoConn` per
/// connection beside it).
struct Echo<C: Protocol + Clone> {
    server: Option<TcpServer<C>>,
    pool: Option<usize>,
}

impl<C: Protocol + Clone> Tonic for Echo<C> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let Some(server) = self.server.take() else {
            return;
        };
        let started = match self.pool {
            Some(n) => server
                .selectors(n)
                .start_each(ctx, |_peer| EchoConn::<C>(std::marker::PhantomData)),
            None => server.start(ctx),
        };
        match started {
            Ok(listening) => {
                println!("listening on {}", listening.local_addr());
                std::io::stdout().flush().ok();
            }
            Err(e) => {
                eprintln!("echo_server: cannot listen: {e}");
                ctx.stop_app();
            }
        }
    }
}

impl<C: Protocol + Clone> TcpEvents<C::Message> for Echo<C> {
    fn on_message(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<C::Message>, msg: C::Message) {
        echo(conn, msg);
    }
}

/// One connection's echo, on its connection's selector (`--layout pool`).
struct EchoConn<C>(std::marker::PhantomData<fn() -> C>);

impl<C: Protocol + Clone> Tonic for EchoConn<C> {
    type State = ();
}

impl<C: Protocol + Clone> TcpEvents<C::Message> for EchoConn<C> {
    fn on_message(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<C::Message>, msg: C::Message) {
        echo(conn, msg);
    }
}

fn echo<M: Send + 'static>(conn: &Conn<M>, msg: M) {
    if let Err(e) = conn.send(msg) {
        // Back-pressure or a closing connection: the client sees its echo missing.
        log::warn!("{}: echo not sent: {e}", conn.id());
    }
}

fn serve<C: Protocol + Clone>(app: App, o: &Options, codec: C, tls: Option<&TlsAcceptor>) -> App {
    let config = TcpConfig {
        message_timeout: o.idle_timeout,
        ..TcpConfig::default()
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], o.port));
    let mut server = TcpServer::bind(addr, codec).config(config);
    if let Some(acceptor) = tls {
        server = server.tls(acceptor);
    }
    app.tonic_named(
        "launcher",
        support::Launcher::new(
            "echo_server",
            Echo {
                server: Some(server),
                pool: o.pool,
            },
            o.colocated,
        ),
    )
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("echo_server: {e}");
            std::process::exit(2);
        }
    };
    let tls = match &o.tls {
        Some((cert, key)) => match TlsAcceptor::from_pem_files(cert, key) {
            Ok(acceptor) => Some(acceptor),
            Err(e) => {
                eprintln!("echo_server: {e}");
                std::process::exit(2);
            }
        },
        None => None,
    };
    let tls = tls.as_ref();
    let framing = LengthDelimited::new().max_frame(o.max_frame);
    let app = App::new("echo_server");
    let app = match o.codec.as_str() {
        "u32" => serve(app, &o, framing, tls),
        "msgpack" => serve(app, &o, MsgPack::<rmpv::Value>::with_framing(framing), tls),
        "lines" => serve(app, &o, Lines::with_max_len(o.max_frame), tls),
        "raw" => serve(app, &o, RawBytes::with_max_frame(o.max_frame), tls),
        "tinyproto" => serve(app, &o, TinyProto::server().max_size(o.max_frame), tls),
        other => {
            eprintln!("echo_server: unknown codec {other:?} (u32|msgpack|lines|raw|tinyproto)");
            std::process::exit(2);
        }
    };
    support::stop_on_signals(&app, "echo_server");
    if let Err(e) = app.run() {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}
