//! A chat in the browser: `GET /` serves one HTML page (no build step, no external
//! resources) whose script opens a WebSocket to `/ws`; every text a browser sends appears
//! in every browser as `guest N: TEXT`, with `* guest N joined` and `* guest N left` lines.
//!
//! ```text
//! cargo run --example ws_chat -- --port 8080
//! # open http://127.0.0.1:8080/ in two browser windows
//! ```
//!
//! Prints `listening on 127.0.0.1:P` once bound; exits 0 on SIGINT or SIGTERM. A browser
//! that stops reading (its queue reaches the high watermark) is dropped rather than
//! buffered for without bound; texts over 4 KiB are refused with close code 1009.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use tasktonic::net::http::{
    HeaderName, HeaderValue, HttpHandler, HttpServer, Method, Request, Responder, Response,
};
use tasktonic::net::tcp::{CloseReason, ConnId};
use tasktonic::net::ws::{CloseCode, Ws, WsAccept, WsClose, WsConfig, WsEvents, WsInfo, WsMessage};
use tasktonic::prelude::*;

const PAGE: &str = include_str!("ws_chat.html");

struct Chat {
    port: u16,
    joined: u64,
    /// Who is in the room, in the order they joined.
    members: BTreeMap<ConnId, (Ws, String)>,
}

impl Tonic for Chat {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = HttpServer::bind(addr)
            .route(Method::GET, "/", Chat::page)
            .websocket("/ws")
            .start(ctx);
        match started {
            Ok(listening) => {
                println!("listening on {}", listening.local_addr());
                std::io::stdout().flush().ok();
            }
            Err(e) => {
                eprintln!("ws_chat: cannot listen: {e}");
                ctx.stop_app();
            }
        }
    }
}

impl Chat {
    fn page(&mut self, _: &mut Ctx<Self>, _: Request<Bytes>, res: Responder) {
        let mut response = Response::new(Bytes::from_static(PAGE.as_bytes()));
        response.headers_mut().insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        res.send(response).ok();
    }

    /// `line` to everyone in the room. A member whose queue is full is dropped (its
    /// `on_ws_closed` says goodbye to the others).
    fn broadcast(&mut self, line: &str) {
        let text = tasktonic::net::ws::Utf8Bytes::from(line.to_string());
        for (ws, name) in self.members.values() {
            if let Err(e) = ws.send(text.clone()) {
                log::warn!("{name}: {e}; dropped");
                ws.abort();
            }
        }
    }
}

impl HttpHandler for Chat {}

impl WsEvents for Chat {
    fn on_ws_upgrade(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Request<Bytes>,
    ) -> Result<WsAccept, Response<Bytes>> {
        Ok(WsAccept::new().config(WsConfig::default().max_message(4096).max_frame(4096)))
    }

    fn on_ws_open(&mut self, _: &mut Ctx<Self>, ws: &Ws, _: &WsInfo) {
        self.joined += 1;
        let name = format!("guest {}", self.joined);
        ws.send(format!("* you are {name}")).ok();
        self.members.insert(ws.id(), (ws.clone(), name.clone()));
        self.broadcast(&format!("* {name} joined"));
    }

    fn on_ws_message(&mut self, _: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {
        let Some(name) = self.members.get(&ws.id()).map(|(_, n)| n.clone()) else {
            return;
        };
        match msg.as_text() {
            Some(text) => self.broadcast(&format!("{name}: {text}")),
            None => ws.close(WsClose::new(CloseCode::Unsupported, "text only")),
        }
    }

    fn on_ws_closed(&mut self, _: &mut Ctx<Self>, ws: &Ws, _: &CloseReason, _: Vec<WsMessage>) {
        if let Some((_, name)) = self.members.remove(&ws.id()) {
            self.broadcast(&format!("* {name} left"));
        }
    }
}

fn main() {
    let port = match support::port_only("ws_chat") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ws_chat: {e}");
            std::process::exit(2);
        }
    };
    let chat = Chat {
        port,
        joined: 0,
        members: BTreeMap::new(),
    };
    let app = App::new("ws_chat").tonic_named("chat", chat);
    support::stop_on_signals(&app, "ws_chat");
    if let Err(e) = app.run() {
        eprintln!("ws_chat: {e}");
        std::process::exit(1);
    }
}
