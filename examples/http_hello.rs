//! The HTTP benchmark server: `GET /` answers `Hello, World!` (keep-alive,
//! `Content-Type: text/plain`), anything else 404. The handler tonic is co-located on the
//! selector catalyst, so a request is read, routed, answered and written in one sparkle.
//!
//! ```text
//! cargo run --release --example http_hello -- --port 8080
//! curl http://127.0.0.1:8080/
//! ```
//!
//! Prints `listening on 127.0.0.1:P` once bound; exits 0 on SIGINT or SIGTERM.

mod support;

use std::io::Write;
use std::net::SocketAddr;

use tasktonic::net::http::{
    HeaderValue, HttpHandler, HttpServer, Method, Request, Responder, Response,
};
use tasktonic::prelude::*;

struct Hello {
    port: u16,
}

impl Tonic for Hello {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        match HttpServer::bind(addr)
            .route(Method::GET, "/", Hello::index)
            .start(ctx)
        {
            Ok(listening) => {
                println!("listening on {}", listening.local_addr());
                std::io::stdout().flush().ok();
            }
            Err(e) => {
                eprintln!("http_hello: cannot listen: {e}");
                ctx.stop_app();
            }
        }
    }
}

impl Hello {
    fn index(&mut self, _: &mut Ctx<Self>, _req: Request<bytes::Bytes>, res: Responder) {
        let mut response = Response::new(bytes::Bytes::from_static(b"Hello, World!"));
        response.headers_mut().insert(
            tasktonic::net::http::HeaderName::from_static("content-type"),
            HeaderValue::from_static("text/plain"),
        );
        if let Err(e) = res.send(response) {
            log::debug!("hello not sent: {e}");
        }
    }
}

impl HttpHandler for Hello {}

fn main() {
    let port = match support::port_only("http_hello") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("http_hello: {e}");
            std::process::exit(2);
        }
    };
    let app = App::new("http_hello").tonic_named(
        "launcher",
        support::Launcher::new("http_hello", Hello { port }, true),
    );
    support::stop_on_signals(&app, "http_hello");
    if let Err(e) = app.run() {
        eprintln!("http_hello: {e}");
        std::process::exit(1);
    }
}
