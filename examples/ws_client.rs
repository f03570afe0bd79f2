//! A WebSocket client that checks an echo server: sends `--count` binary messages of
//! `--size` bytes (at most `--window` awaiting their echo), verifies every echo (content
//! and order), closes with 1000 and prints `ok N`.
//!
//! ```text
//! cargo run --release --example ws_echo -- --port 9001 &
//! cargo run --release --example ws_client -- --url ws://127.0.0.1:9001/ --count 1000 --size 64
//! ```
//!
//! `wss://` URLs verify the server with `--tls-ca CA.pem` (default: the web's roots).
//! Exits 0 when every echo arrived intact, 1 otherwise (a refused connect, a wrong echo,
//! no echo within `--timeout-ms`), 2 on a usage error.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tasktonic::net::codec::CodecError;
use tasktonic::net::tcp::CloseReason;
use tasktonic::net::ws::{Ws, WsClient, WsClose, WsEvents, WsInfo, WsMessage};
use tasktonic::net::{TcpConfig, TlsConnector};
use tasktonic::prelude::*;

struct Options {
    url: String,
    count: u64,
    size: usize,
    window: u64,
    timeout: Duration,
    tls_ca: Option<String>,
}

type Outcome = Arc<Mutex<Option<Result<u64, String>>>>;

struct Checker {
    o: Arc<Options>,
    sent: u64,
    received: u64,
    ws: Option<Ws>,
    outcome: Outcome,
    watchdog: Option<TimerId>,
}

/// Message `i`: its number, then a pattern that depends on it.
fn message(i: u64, size: usize) -> Bytes {
    let mut v = Vec::with_capacity(size);
    v.extend_from_slice(&i.to_be_bytes()[..size.min(8)]);
    v.extend(
        (v.len() as u64..size as u64).map(|k| i.wrapping_mul(31).wrapping_add(k).to_le_bytes()[0]),
    );
    Bytes::from(v)
}

impl Checker {
    fn done(&mut self, ctx: &mut Ctx<Self>, result: Result<u64, String>) {
        let mut outcome = self.outcome.lock();
        if outcome.is_none() {
            *outcome = Some(result);
        }
        drop(outcome);
        ctx.stop_app();
    }

    fn fill(&mut self, ctx: &mut Ctx<Self>, ws: &Ws) {
        while self.sent < self.o.count && self.sent - self.received < self.o.window {
            if let Err(e) = ws.send(message(self.sent, self.o.size)) {
                return self.done(ctx, Err(format!("message {} not sent: {e}", self.sent)));
            }
            self.sent += 1;
        }
    }

    fn arm(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(t) = self.watchdog.take() {
            ctx.cancel_timer(t);
        }
        self.watchdog = Some(ctx.timer(Timer::once(self.o.timeout).named("timeout")));
    }
}

impl Tonic for Checker {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let mut client = match WsClient::new(&self.o.url) {
            Ok(c) => c,
            Err(e) => return self.done(ctx, Err(e.to_string())),
        };
        if let Some(ca) = &self.o.tls_ca {
            match TlsConnector::with_roots_pem_file(ca) {
                Ok(connector) => client = client.tls(&connector),
                Err(e) => return self.done(ctx, Err(format!("--tls-ca: {e}"))),
            }
        }
        let config = TcpConfig {
            connect_timeout: self.o.timeout,
            ..TcpConfig::default()
        };
        if let Err(e) = client.config(config).start(ctx) {
            return self.done(ctx, Err(format!("cannot connect: {e}")));
        }
        self.arm(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _: &TimerEvent) {
        let why = format!(
            "no progress for {} ms ({} of {} echoes)",
            self.o.timeout.as_millis(),
            self.received,
            self.o.count
        );
        self.done(ctx, Err(why));
    }
}

impl WsEvents for Checker {
    fn on_ws_open(&mut self, ctx: &mut Ctx<Self>, ws: &Ws, _: &WsInfo) {
        self.ws = Some(ws.clone());
        if self.o.count == 0 {
            ws.close(WsClose::normal());
            return;
        }
        self.fill(ctx, ws);
    }

    fn on_ws_message(&mut self, ctx: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {
        let expected = message(self.received, self.o.size);
        match &msg {
            WsMessage::Binary(b) if *b == expected => {}
            other => {
                let why = format!("echo {} is wrong: {other:?}", self.received);
                return self.done(ctx, Err(why));
            }
        }
        self.received += 1;
        self.arm(ctx);
        if self.received == self.o.count {
            ws.close(WsClose::normal());
        } else {
            self.fill(ctx, ws);
        }
    }

    fn on_ws_close(&mut self, ctx: &mut Ctx<Self>, _: &Ws, close: Option<&WsClose>) {
        if self.received < self.o.count {
            let why = match close {
                Some(c) => format!("the server closed the session: {c}"),
                None => "the server closed the session".to_string(),
            };
            self.done(
                ctx,
                Err(format!(
                    "{why} after {} of {} echoes",
                    self.received, self.o.count
                )),
            );
        }
    }

    fn on_ws_error(&mut self, ctx: &mut Ctx<Self>, _: &Ws, error: &CodecError) {
        self.done(ctx, Err(format!("protocol error: {error}")));
    }

    fn on_ws_closed(&mut self, ctx: &mut Ctx<Self>, _: &Ws, why: &CloseReason, _: Vec<WsMessage>) {
        if self.received == self.o.count && self.ws.is_some() {
            let n = self.received;
            self.done(ctx, Ok(n));
        } else {
            let why = format!(
                "closed after {} of {} echoes: {why}",
                self.received, self.o.count
            );
            self.done(ctx, Err(why));
        }
    }
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        url: String::new(),
        count: 1000,
        size: 64,
        window: 64,
        timeout: Duration::from_secs(30),
        tls_ca: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => o.url = value()?,
            "--count" => o.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--size" => o.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--window" => o.window = value()?.parse().map_err(|e| format!("--window: {e}"))?,
            "--timeout-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--timeout-ms: {e}"))?;
                o.timeout = Duration::from_millis(ms.max(1));
            }
            "--tls-ca" => o.tls_ca = Some(value()?),
            "-h" | "--help" => {
                return Err(
                    "usage: ws_client --url ws://HOST:PORT/PATH [--count N] [--size S] \
                     [--window W] [--timeout-ms MS] [--tls-ca CA.pem]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.url.is_empty() {
        return Err("--url is required".into());
    }
    o.window = o.window.max(1);
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("ws_client: {e}");
            std::process::exit(2);
        }
    };
    let outcome: Outcome = Arc::new(Mutex::new(None));
    let checker = Checker {
        o,
        sent: 0,
        received: 0,
        ws: None,
        outcome: outcome.clone(),
        watchdog: None,
    };
    if let Err(e) = App::new("ws_client").tonic_named("client", checker).run() {
        eprintln!("ws_client: {e}");
        std::process::exit(1);
    }
    match outcome.lock().take() {
        Some(Ok(n)) => println!("ok {n}"),
        Some(Err(e)) => {
            eprintln!("ws_client: {e}");
            std::process::exit(1);
        }
        None => {
            eprintln!("ws_client: ended without a result");
            std::process::exit(1);
        }
    }
}
