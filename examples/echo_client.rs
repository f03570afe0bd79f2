//! An echo client: sends N messages of S bytes with up to W in flight, verifies every echo byte
//! for byte, prints `ok N` and exits 0 (non-zero with a reason otherwise).
//!
//! ```text
//! cargo run --release --example echo_client -- --port P --count N --size S [--window W]
//!     [--codec u32|msgpack|lines|raw|tinyproto] [--tls-ca CA.pem [--tls-name NAME]] [--heartbeat MS]
//! ```
//!
//! `--tls-ca CA.pem` speaks TLS and trusts the CA certificates in that file; the server's
//! certificate must be valid for `--tls-name` (default `localhost`). `--heartbeat MS` sends an
//! empty frame whenever nothing else was sent for MS milliseconds (u32 and msgpack; an echoed
//! empty frame is not counted as an echo, so `--size` must then be at least 1). A msgpack
//! heartbeat is skipped by the receiving decoder: it keeps a peer's `recv_timeout` satisfied,
//! not its `message_timeout` (`echo_server --idle-timeout`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tasktonic::net::codec::{LengthDelimited, Lines, MsgPack, RawBytes};
use tasktonic::net::protocol::Protocol;
use tasktonic::net::tinyproto::TinyProto;
use tasktonic::net::{
    CloseReason, Conn, TcpClient, TcpConfig, TcpEvents, TcpSendError, Tls, TlsConnector,
};
use tasktonic::prelude::*;

/// How a codec's messages carry a test payload.
trait Shape: Protocol + Clone {
    /// Raw streams may merge and split messages: compare the byte stream instead.
    const STREAM: bool = false;
    fn make(payload: Vec<u8>) -> Self::Message;
    fn bytes(msg: &Self::Message) -> Vec<u8>;
}

impl Shape for LengthDelimited {
    fn make(payload: Vec<u8>) -> Bytes {
        Bytes::from(payload)
    }
    fn bytes(msg: &Bytes) -> Vec<u8> {
        msg.to_vec()
    }
}

impl Shape for TinyProto {
    fn make(payload: Vec<u8>) -> Bytes {
        Bytes::from(payload)
    }
    fn bytes(msg: &Bytes) -> Vec<u8> {
        msg.to_vec()
    }
}

impl Shape for RawBytes {
    const STREAM: bool = true;
    fn make(payload: Vec<u8>) -> Bytes {
        Bytes::from(payload)
    }
    fn bytes(msg: &Bytes) -> Vec<u8> {
        msg.to_vec()
    }
}

impl Shape for Lines {
    fn make(payload: Vec<u8>) -> String {
        String::from_utf8(payload).unwrap_or_default()
    }
    fn bytes(msg: &String) -> Vec<u8> {
        msg.as_bytes().to_vec()
    }
}

impl Shape for MsgPack<rmpv::Value> {
    fn make(payload: Vec<u8>) -> rmpv::Value {
        rmpv::Value::Binary(payload)
    }
    fn bytes(msg: &rmpv::Value) -> Vec<u8> {
        match msg {
            rmpv::Value::Binary(b) => b.clone(),
            other => format!("{other}").into_bytes(),
        }
    }
}

/// Message `i`: printable ASCII (valid for every codec), different for every message.
fn payload(i: u64, size: usize) -> Vec<u8> {
    (0..size as u64)
        .map(|j| b'a' + ((i * 7 + j) % 26) as u8)
        .collect()
}

type Outcome = Arc<Mutex<Option<Result<u64, String>>>>;

struct Driver<C: Shape> {
    addr: SocketAddr,
    codec: Option<C>,
    tls: Option<Tls>,
    heartbeat: Option<Duration>,
    count: u64,
    size: usize,
    window: u64,
    conn: Option<Conn<C::Message>>,
    sent: u64,
    done: u64,
    stream: Vec<u8>,
    watchdog: Option<TimerId>,
    outcome: Outcome,
}

impl<C: Shape> Driver<C> {
    fn pump(&mut self, ctx: &mut Ctx<Self>) {
        let Some(conn) = self.conn.clone() else {
            return;
        };
        while self.sent < self.count && self.sent - self.done < self.window {
            match conn.send(C::make(payload(self.sent, self.size))) {
                Ok(()) => self.sent += 1,
                Err(TcpSendError::Backpressure(_)) => return, // on_writable resumes
                Err(e) => return self.end(ctx, Err(format!("send failed: {e}"))),
            }
        }
    }

    fn end(&mut self, ctx: &mut Ctx<Self>, result: Result<u64, String>) {
        let mut outcome = self.outcome.lock();
        if outcome.is_none() {
            *outcome = Some(result);
        }
        drop(outcome);
        if let Some(conn) = &self.conn {
            conn.close();
        }
        ctx.finish();
    }

    fn progress(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(w) = self.watchdog {
            ctx.restart_timer(w);
        }
        if self.done == self.count {
            let n = self.count;
            return self.end(ctx, Ok(n));
        }
        self.pump(ctx);
    }
}

impl<C: Shape> Tonic for Driver<C> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if self.count == 0 {
            return self.end(ctx, Ok(0));
        }
        let Some(codec) = self.codec.take() else {
            return;
        };
        let window = usize::try_from(self.window).unwrap_or(usize::MAX);
        let config = TcpConfig {
            high_watermark: window.saturating_add(1).max(4096),
            low_watermark: 1024,
            connect_timeout: Duration::from_secs(10),
            heartbeat: self.heartbeat,
            ..TcpConfig::default()
        };
        let mut client = TcpClient::new(self.addr, codec).config(config);
        if let Some(tls) = self.tls.take() {
            client = client.tls(tls);
        }
        match client.start(ctx) {
            Ok(conn) => self.conn = Some(conn),
            Err(e) => return self.end(ctx, Err(format!("cannot start: {e}"))),
        }
        self.watchdog = Some(ctx.timer(Timer::once(Duration::from_secs(30)).named("watchdog")));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _timer: &TimerEvent) {
        let (sent, done) = (self.sent, self.done);
        self.end(
            ctx,
            Err(format!(
                "no progress for 30 s ({done} of {sent} sent echoed)"
            )),
        );
    }
}

impl<C: Shape> TcpEvents<C::Message> for Driver<C> {
    fn on_connected(&mut self, ctx: &mut Ctx<Self>, _conn: &Conn<C::Message>, _peer: SocketAddr) {
        self.pump(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<Self>, _conn: &Conn<C::Message>, msg: C::Message) {
        if C::STREAM {
            self.stream.extend_from_slice(&C::bytes(&msg));
            while self.stream.len() >= self.size && self.done < self.count {
                if self.stream[..self.size] != payload(self.done, self.size)[..] {
                    return self.end(ctx, Err(format!("echo {} differs", self.done)));
                }
                self.stream.drain(..self.size);
                self.done += 1;
            }
        } else {
            let bytes = C::bytes(&msg);
            if bytes.is_empty() && self.heartbeat.is_some() {
                return; // our heartbeat, echoed
            }
            if bytes != payload(self.done, self.size) {
                return self.end(ctx, Err(format!("echo {} differs", self.done)));
            }
            self.done += 1;
        }
        self.progress(ctx);
    }

    fn on_writable(&mut self, ctx: &mut Ctx<Self>, _conn: &Conn<C::Message>) {
        self.pump(ctx);
    }

    fn on_disconnected(
        &mut self,
        ctx: &mut Ctx<Self>,
        _conn: &Conn<C::Message>,
        why: &CloseReason,
        _unsent: Vec<C::Message>,
    ) {
        if self.done < self.count {
            let done = self.done;
            self.end(ctx, Err(format!("disconnected after {done} echoes: {why}")));
        }
    }
}

fn run<C: Shape>(o: &Options, codec: C) -> Result<u64, String> {
    let tls = match &o.tls_ca {
        Some(ca) => {
            let connector = TlsConnector::with_roots_pem_file(ca).map_err(|e| e.to_string())?;
            Some(Tls::client(&connector, &o.tls_name).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let outcome: Outcome = Arc::new(Mutex::new(None));
    let driver = Driver {
        addr: SocketAddr::from(([127, 0, 0, 1], o.port)),
        codec: Some(codec),
        tls,
        heartbeat: o.heartbeat,
        count: o.count,
        size: o.size,
        window: o.window.max(1),
        conn: None,
        sent: 0,
        done: 0,
        stream: Vec::new(),
        watchdog: None,
        outcome: outcome.clone(),
    };
    App::new("echo_client")
        .tonic(driver)
        .run()
        .map_err(|e| e.to_string())?;
    outcome
        .lock()
        .take()
        .unwrap_or_else(|| Err("ended without a result".into()))
}

/// The command line.
struct Options {
    port: u16,
    count: u64,
    size: usize,
    window: u64,
    codec: String,
    tls_ca: Option<std::path::PathBuf>,
    tls_name: String,
    heartbeat: Option<Duration>,
}

fn parse() -> Result<Options, String> {
    let (mut port, mut count, mut size) = (None, None, None);
    let mut tls_name_given = false;
    let mut o = Options {
        port: 0,
        count: 0,
        size: 0,
        window: 1,
        codec: "u32".to_string(),
        tls_ca: None,
        tls_name: "localhost".to_string(),
        heartbeat: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                port = Some(
                    value()?
                        .parse::<u16>()
                        .map_err(|e| format!("--port: {e}"))?,
                )
            }
            "--count" => {
                count = Some(
                    value()?
                        .parse::<u64>()
                        .map_err(|e| format!("--count: {e}"))?,
                )
            }
            "--size" => {
                size = Some(
                    value()?
                        .parse::<usize>()
                        .map_err(|e| format!("--size: {e}"))?,
                )
            }
            "--window" => o.window = value()?.parse().map_err(|e| format!("--window: {e}"))?,
            "--codec" => o.codec = value()?,
            "--tls-ca" => o.tls_ca = Some(value()?.into()),
            "--tls-name" => {
                o.tls_name = value()?;
                tls_name_given = true;
            }
            "--heartbeat" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--heartbeat: {e}"))?;
                o.heartbeat = Some(Duration::from_millis(ms.max(1)));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let usage = "usage: echo_client --port P --count N --size S [--window W] \
                 [--codec u32|msgpack|lines|raw|tinyproto] [--tls-ca CA.pem [--tls-name NAME]] \
                 [--heartbeat MS]";
    o.port = port.ok_or(usage)?;
    o.count = count.ok_or(usage)?;
    o.size = size.ok_or(usage)?;
    if o.heartbeat.is_some() && o.size == 0 {
        return Err("--heartbeat needs --size 1 or more (heartbeats are empty frames)".into());
    }
    if o.heartbeat.is_some() && matches!(o.codec.as_str(), "lines" | "raw" | "tinyproto") {
        return Err(format!(
            "--heartbeat: the {} codec has no heartbeat",
            o.codec
        ));
    }
    if o.tls_ca.is_none() && tls_name_given {
        return Err("--tls-name needs --tls-ca (without it the client speaks plain TCP)".into());
    }
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("echo_client: {e}");
            std::process::exit(2);
        }
    };
    let max = (o.size + 64).max(tasktonic::net::codec::DEFAULT_MAX_FRAME);
    let framing = LengthDelimited::new().max_frame(max);
    let result = match o.codec.as_str() {
        "u32" => run(&o, framing),
        "msgpack" => run(&o, MsgPack::<rmpv::Value>::with_framing(framing)),
        "lines" => run(&o, Lines::with_max_len(max)),
        "raw" => run(&o, RawBytes::with_max_frame(max)),
        "tinyproto" => run(&o, TinyProto::client().max_size(max)),
        other => Err(format!(
            "unknown codec {other:?} (u32|msgpack|lines|raw|tinyproto)"
        )),
    };
    match result {
        Ok(n) => println!("ok {n}"),
        Err(e) => {
            eprintln!("echo_client: {e}");
            std::process::exit(1);
        }
    }
}
