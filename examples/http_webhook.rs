//! A webhook listener (TaskTonic's `HttpServerHandler`): every request is answered
//! `200 OK` with body `OK` at once, and still handed whole to the tonic, which prints
//! `METHOD PATH BODY_LENGTH` for it.
//!
//! ```text
//! cargo run --example http_webhook -- --port 8080 [--tls CERT.pem KEY.pem]
//! curl -d '{"event": "push"}' http://127.0.0.1:8080/hook
//! ```
//!
//! Prints `listening on 127.0.0.1:P` once bound; on SIGINT or SIGTERM it stops accepting,
//! lets the sessions finish what they owe, and exits 0.

mod support;

use std::io::Write;
use std::net::SocketAddr;

use tasktonic::net::TlsAcceptor;
use tasktonic::net::http::{HttpHandler, HttpServer, Request, Responder};
use tasktonic::prelude::*;

struct Webhook {
    port: u16,
    tls: Option<TlsAcceptor>,
}

impl Tonic for Webhook {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut server = HttpServer::bind(addr).webhook(true);
        if let Some(acceptor) = &self.tls {
            server = server.tls(acceptor);
        }
        match server.start(ctx) {
            Ok(listening) => {
                println!("listening on {}", listening.local_addr());
                std::io::stdout().flush().ok();
            }
            Err(e) => {
                eprintln!("http_webhook: cannot listen: {e}");
                ctx.stop_app();
            }
        }
    }
}

impl HttpHandler for Webhook {
    fn on_request(&mut self, _: &mut Ctx<Self>, req: Request<bytes::Bytes>, res: Responder) {
        // Answered already (webhook mode): only the request is ours.
        debug_assert!(res.is_answered());
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{} {} {}",
            req.method(),
            req.uri().path(),
            req.body().len()
        )
        .ok();
        out.flush().ok();
    }
}

struct Options {
    port: u16,
    tls: Option<(String, String)>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options { port: 0, tls: None };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--port" => {
                o.port = args
                    .next()
                    .ok_or("--port needs a value")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--tls" => {
                let cert = args.next().ok_or("--tls needs CERT.pem KEY.pem")?;
                let key = args.next().ok_or("--tls needs CERT.pem KEY.pem")?;
                o.tls = Some((cert, key));
            }
            "-h" | "--help" => {
                return Err("usage: http_webhook --port P [--tls CERT.pem KEY.pem]".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("http_webhook: {e}");
            std::process::exit(2);
        }
    };
    let tls = match &o.tls {
        Some((cert, key)) => match TlsAcceptor::from_pem_files(cert, key) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("http_webhook: {e}");
                std::process::exit(2);
            }
        },
        None => None,
    };
    let app = App::new("http_webhook").tonic_named("webhook", Webhook { port: o.port, tls });
    support::stop_on_signals(&app, "http_webhook");
    if let Err(e) = app.run() {
        eprintln!("http_webhook: {e}");
        std::process::exit(1);
    }
}
