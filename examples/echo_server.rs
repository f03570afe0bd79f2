//! An echo server: every message on every connection comes straight back.
//!
//! ```text
//! cargo run --release --example echo_server -- --port P [--codec u32|msgpack|lines|raw]
//!     [--max-frame BYTES] [--layout seed|colocated]
//! ```
//!
//! Prints `listening on 127.0.0.1:P` once ready, echoes until SIGINT or SIGTERM, then closes
//! every connection gracefully (what was accepted is written first) and exits 0.
//!
//! Layouts: `seed` (default) puts the echo logic in a tonic on the main catalyst, the socket
//! handlers on the selector — the TaskTonic way; `colocated` puts the echo tonic on the selector
//! catalyst too, so a message never changes threads.

use std::io::Write;
use std::net::SocketAddr;

use tasktonic::net::codec::{Codec, LengthDelimited, Lines, MsgPack, RawBytes};
use tasktonic::net::{Conn, Selector, TcpEvents, TcpServer};
use tasktonic::prelude::*;

struct Options {
    port: u16,
    codec: String,
    max_frame: usize,
    colocated: bool,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        port: 0,
        codec: "u32".into(),
        max_frame: tasktonic::net::codec::DEFAULT_MAX_FRAME,
        colocated: false,
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
            "-h" | "--help" => {
                return Err(
                    "usage: echo_server --port P [--codec u32|msgpack|lines|raw] \
                            [--max-frame BYTES] [--layout seed|colocated]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

/// Echoes every message of every connection.
struct Echo<C: Codec> {
    server: Option<TcpServer<C>>,
}

impl<C: Codec> Tonic for Echo<C> {
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

impl<C: Codec> TcpEvents<C::Message> for Echo<C> {
    fn on_message(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<C::Message>, msg: C::Message) {
        if let Err(e) = conn.send(msg) {
            // Back-pressure or a closing connection: the client sees its echo missing.
            log::warn!("{}: echo not sent: {e}", conn.id());
        }
    }
}

/// Places the echo tonic: on main (seed) or on the selector catalyst (colocated).
struct Launcher<C: Codec> {
    server: Option<TcpServer<C>>,
    colocated: bool,
}

impl<C: Codec> Tonic for Launcher<C> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let echo = Echo {
            server: self.server.take(),
        };
        let spawned = if self.colocated {
            match Selector::default_for(ctx) {
                Ok(selector) => ctx.infusion(echo).catalyst(selector.catalyst()).spawn(),
                Err(e) => {
                    eprintln!("echo_server: no selector: {e}");
                    return ctx.stop_app();
                }
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

fn serve<C: Codec>(app: App, addr: SocketAddr, codec: C, colocated: bool) -> App {
    app.tonic_named(
        "launcher",
        Launcher {
            server: Some(TcpServer::bind(addr, codec)),
            colocated,
        },
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
    let addr = SocketAddr::from(([127, 0, 0, 1], o.port));
    let framing = LengthDelimited::new().max_frame(o.max_frame);
    let app = App::new("echo_server");
    let app = match o.codec.as_str() {
        "u32" => serve(app, addr, framing, o.colocated),
        "msgpack" => serve(
            app,
            addr,
            MsgPack::<rmpv::Value>::with_framing(framing),
            o.colocated,
        ),
        "lines" => serve(app, addr, Lines::with_max_len(o.max_frame), o.colocated),
        "raw" => serve(
            app,
            addr,
            RawBytes::with_max_frame(o.max_frame),
            o.colocated,
        ),
        other => {
            eprintln!("echo_server: unknown codec {other:?} (u32|msgpack|lines|raw)");
            std::process::exit(2);
        }
    };
    let stopper = app.stopper();
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    stopper.stop();
                }
            });
        }
        Err(e) => eprintln!("echo_server: cannot handle signals: {e}"),
    }
    if let Err(e) = app.run() {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}
