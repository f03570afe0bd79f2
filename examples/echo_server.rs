//! An echo server: every message on every connection comes straight back.
//!
//! ```text
//! cargo run --release --example echo_server -- --port P [--codec u32|msgpack|lines|raw|tinyproto]
//!     [--max-frame BYTES] [--layout seed|colocated] [--tls CERT.pem KEY.pem]
//!     [--idle-timeout SECS]
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
//! catalyst too, so a message never changes threads.

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
    tls: Option<(String, String)>,
    idle_timeout: Option<std::time::Duration>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        port: 0,
        codec: "u32".into(),
        max_frame: tasktonic::net::codec::DEFAULT_MAX_FRAME,
        colocated: false,
        tls: None,
        idle_timeout: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => o.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--codec" => o.codec = value()?,
            "--max-frame" => {
                o.max_frame = value()?.parse().map_err(|e| format!("--max-frame: {e}"))?
            }
            "--layout" => {
                o.colocated = match value()?.as_str() {
                    "seed" => false,
                    "colocated" => true,
                    other => {
                        return Err(format!(
                            "--layout: unknown layout {other:?} (seed|colocated)"
                        ));
                    }
                }
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
                            [--max-frame BYTES] [--layout seed|colocated] \
                            [--tls CERT.pem KEY.pem] [--idle-timeout SECS]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

/// Echoes every message of every connection.
struct Echo<C: Protocol + Clone> {
    server: Option<TcpServer<C>>,
}

impl<C: Protocol + Clone> Tonic for Echo<C> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let Some(server) = self.server.take() else {
            return;
        };
        match server.start(ctx) {
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
        if let Err(e) = conn.send(msg) {
            // Back-pressure or a closing connection: the client sees its echo missing.
            log::warn!("{}: echo not sent: {e}", conn.id());
        }
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
