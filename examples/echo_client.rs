//! An echo client: sends N messages of S bytes with up to W in flight, verifies every echo byte
//! for byte, prints `ok N` and exits 0 (non-zero with a reason otherwise).
//!
//! ```text
//! cargo run --release --example echo_client -- --port P --count N --size S [--window W]
//!     [--codec u32|msgpack|lines|raw]
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tasktonic::net::codec::{Codec, LengthDelimited, Lines, MsgPack, RawBytes};
use tasktonic::net::{CloseReason, Conn, TcpClient, TcpConfig, TcpEvents, TcpSendError};
use tasktonic::prelude::*;

/// How a codec's messages carry a test payload.
trait Shape: Codec {
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
            ..TcpConfig::default()
        };
        match TcpClient::new(self.addr, codec).config(config).start(ctx) {
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
            if C::bytes(&msg) != payload(self.done, self.size) {
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

fn run<C: Shape>(
    addr: SocketAddr,
    codec: C,
    count: u64,
    size: usize,
    window: u64,
) -> Result<u64, String> {
    let outcome: Outcome = Arc::new(Mutex::new(None));
    let driver = Driver {
        addr,
        codec: Some(codec),
        count,
        size,
        window: window.max(1),
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

fn parse() -> Result<(u16, u64, usize, u64, String), String> {
    let (mut port, mut count, mut size, mut window, mut codec) =
        (None, None, None, 1u64, "u32".to_string());
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
            "--window" => window = value()?.parse().map_err(|e| format!("--window: {e}"))?,
            "--codec" => codec = value()?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let usage = "usage: echo_client --port P --count N --size S [--window W] [--codec u32|msgpack|lines|raw]";
    Ok((
        port.ok_or(usage)?,
        count.ok_or(usage)?,
        size.ok_or(usage)?,
        window,
        codec,
    ))
}

fn main() {
    let (port, count, size, window, codec) = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("echo_client: {e}");
            std::process::exit(2);
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let max = (size + 64).max(tasktonic::net::codec::DEFAULT_MAX_FRAME);
    let framing = LengthDelimited::new().max_frame(max);
    let result = match codec.as_str() {
        "u32" => run(addr, framing, count, size, window),
        "msgpack" => run(
            addr,
            MsgPack::<rmpv::Value>::with_framing(framing),
            count,
            size,
            window,
        ),
        "lines" => run(addr, Lines::with_max_len(max), count, size, window),
        "raw" => run(addr, RawBytes::with_max_frame(max), count, size, window),
        other => Err(format!("unknown codec {other:?} (u32|msgpack|lines|raw)")),
    };
    match result {
        Ok(n) => println!("ok {n}"),
        Err(e) => {
            eprintln!("echo_client: {e}");
            std::process::exit(1);
        }
    }
}
