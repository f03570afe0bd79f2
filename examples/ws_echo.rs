//! A WebSocket echo server: every message on any path goes back as it came (text as text,
//! binary as binary). The echo tonic is co-located on the selector catalyst, so a message
//! is read, echoed and written in one sparkle.
//!
//! ```text
//! cargo run --release --example ws_echo -- --port 9001
//! cargo run --release --example ws_client -- --url ws://127.0.0.1:9001/ --count 1000 --size 64
//! ```
//!
//! `--tls CERT.pem KEY.pem` serves `wss://`; `--max-message BYTES` raises the frame and
//! message limit (default 8 MiB; the Autobahn suite sends 16 MiB messages). Prints
//! `listening on 127.0.0.1:P` once bound; exits 0 on SIGINT or SIGTERM.

mod support;

use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use tasktonic::net::TlsAcceptor;
use tasktonic::net::http::{HttpHandler, HttpServer};
use tasktonic::net::http::{Request, Response};
use tasktonic::net::ws::{Ws, WsAccept, WsConfig, WsEvents, WsMessage};
use tasktonic::prelude::*;

struct Echo {
    port: u16,
    tls: Option<TlsAcceptor>,
    limits: WsConfig,
}

impl Tonic for Echo {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut server = HttpServer::bind(addr).websocket("/*");
        if let Some(acceptor) = &self.tls {
            server = server.tls(acceptor);
        }
        match server.start(ctx) {
            Ok(listening) => {
                println!("listening on {}", listening.local_addr());
                std::io::stdout().flush().ok();
            }
            Err(e) => {
                eprintln!("ws_echo: cannot listen: {e}");
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
        Ok(WsAccept::new().config(self.limits.clone()))
    }

    fn on_ws_message(&mut self, _: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {
        if let Err(e) = ws.send(msg) {
            // Back-pressure: the peer does not read its echoes; it is dropped rather than
            // buffered without bound.
            log::warn!("{ws}: echo not sent ({e}); closing");
            ws.abort();
        }
    }
}

fn parse() -> Result<Echo, String> {
    let mut echo = Echo {
        port: 0,
        tls: None,
        limits: WsConfig::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--port" => {
                echo.port = args
                    .next()
                    .ok_or("--port needs a value")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--tls" => {
                let (cert, key) = args
                    .next()
                    .zip(args.next())
                    .ok_or("--tls needs two values: CERT.pem KEY.pem")?;
                echo.tls = Some(
                    TlsAcceptor::from_pem_files(&cert, &key).map_err(|e| format!("--tls: {e}"))?,
                );
            }
            "--max-message" => {
                let n: usize = args
                    .next()
                    .ok_or("--max-message needs a value")?
                    .parse()
                    .map_err(|e| format!("--max-message: {e}"))?;
                echo.limits = WsConfig::default().max_message(n).max_frame(n);
            }
            "-h" | "--help" => {
                return Err(
                    "usage: ws_echo --port P [--tls CERT.pem KEY.pem] [--max-message BYTES]".into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(echo)
}

fn main() {
    let echo = match parse() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ws_echo: {e}");
            std::process::exit(2);
        }
    };
    let app =
        App::new("ws_echo").tonic_named("launcher", support::Launcher::new("ws_echo", echo, true));
    support::stop_on_signals(&app, "ws_echo");
    if let Err(e) = app.run() {
        eprintln!("ws_echo: {e}");
        std::process::exit(1);
    }
}
