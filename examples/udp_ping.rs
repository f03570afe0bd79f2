//! A UDP ping: a server that answers every datagram with the same bytes, and a client that
//! pings it, one datagram at a time, and reports the median round trip.
//!
//! ```text
//! cargo run --release --example udp_ping -- --server --port P [--layout seed|colocated]
//! cargo run --release --example udp_ping -- --port P --count N [--size S]
//!     [--timeout-ms T] [--tries K] [--layout seed|colocated]
//! ```
//!
//! The server binds 127.0.0.1:P (P 0 picks a free port), prints `listening on 127.0.0.1:P`
//! once ready, answers until SIGINT or SIGTERM, then exits 0.
//!
//! The client sends N pings of S bytes (default 64, at least 8: each starts with its
//! sequence number) to 127.0.0.1:P, each after the answer to the last. A ping not answered
//! within T ms (default 200) is sent again, at most K times in all (default 5); an answer
//! to an earlier try still counts, answers to earlier pings are ignored. It verifies every
//! answer byte for byte, prints `ok N` and `median rtt X us`, and exits 0; otherwise it
//! says why and exits 1.
//!
//! Layouts, as in `echo_server`: `seed` (default) puts the ping logic in a tonic on the
//! main catalyst and the socket on the selector; `colocated` puts the tonic on the selector
//! catalyst too, so a datagram never changes threads.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tasktonic::net::codec::RawDatagrams;
use tasktonic::net::{SendToError, Udp, UdpEvents, UdpSocket};
use tasktonic::prelude::*;

/// The command line.
struct Options {
    server: bool,
    port: u16,
    count: u64,
    size: usize,
    timeout: Duration,
    tries: u32,
    colocated: bool,
}

const USAGE: &str = "usage: udp_ping --server --port P [--layout seed|colocated]\n       \
                     udp_ping --port P --count N [--size S] [--timeout-ms T] [--tries K] \
                     [--layout seed|colocated]";

fn parse() -> Result<Options, String> {
    let (mut port, mut count) = (None, None);
    let mut o = Options {
        server: false,
        port: 0,
        count: 0,
        size: 64,
        timeout: Duration::from_millis(200),
        tries: 5,
        colocated: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => o.server = true,
            "--port" => port = Some(value()?.parse().map_err(|e| format!("--port: {e}"))?),
            "--count" => count = Some(value()?.parse().map_err(|e| format!("--count: {e}"))?),
            "--size" => o.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--timeout-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--timeout-ms: {e}"))?;
                o.timeout = Duration::from_millis(ms.max(1));
            }
            "--tries" => o.tries = value()?.parse().map_err(|e| format!("--tries: {e}"))?,
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
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    o.port = port.ok_or(USAGE)?;
    if !o.server {
        o.count = count.ok_or(USAGE)?;
        if !(8..=tasktonic::net::codec::MAX_DATAGRAM_V4).contains(&o.size) {
            return Err(format!(
                "--size must be 8 to {} bytes (a ping starts with its 8-byte number)",
                tasktonic::net::codec::MAX_DATAGRAM_V4
            ));
        }
        if o.tries == 0 {
            return Err("--tries must be at least 1".into());
        }
    }
    Ok(o)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

// ----- the server ---------------------------------------------------------------------------

/// Answers every datagram with the same bytes.
struct Echo {
    port: u16,
    /// Set if the socket could not be bound (the process then exits 1).
    failed: Arc<AtomicBool>,
}

impl Tonic for Echo {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        match UdpSocket::bind(loopback(self.port), RawDatagrams::new()).start(ctx) {
            Ok(udp) => {
                println!("listening on {}", udp.local_addr());
                std::io::stdout().flush().ok();
            }
            Err(e) => {
                eprintln!("udp_ping: cannot bind 127.0.0.1:{}: {e}", self.port);
                self.failed.store(true, Ordering::SeqCst);
                ctx.stop_app();
            }
        }
    }
}

impl UdpEvents<Bytes> for Echo {
    fn on_datagram(&mut self, _: &mut Ctx<Self>, udp: &Udp<Bytes>, msg: Bytes, from: SocketAddr) {
        if let Err(e) = udp.send_to(msg, from) {
            // The client sends the ping again after its timeout.
            log::warn!("answer to {from} not sent: {e}");
        }
    }

    fn on_send_failed(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Udp<Bytes>,
        _: Bytes,
        to: SocketAddr,
        e: &SendToError,
    ) {
        log::warn!("answer to {to} failed: {e}");
    }
}

// ----- the client ---------------------------------------------------------------------------

type Outcome = Arc<Mutex<Option<Result<Vec<Duration>, String>>>>;

/// Sends the pings, one at a time, and times the answers.
struct Pinger {
    server: SocketAddr,
    count: u64,
    size: usize,
    timeout: Duration,
    tries: u32,
    udp: Option<Udp<Bytes>>,
    /// The ping waiting for its answer, and how often it was sent.
    seq: u64,
    sent: u32,
    sent_at: Instant,
    retry: Option<TimerId>,
    rtts: Vec<Duration>,
    outcome: Outcome,
}

impl Pinger {
    /// Ping `seq`: its number (big-endian), then filler that depends on it.
    fn payload(&self, seq: u64) -> Vec<u8> {
        let mut p = seq.to_be_bytes().to_vec();
        p.extend((8..self.size as u64).map(|j| b'a' + ((seq * 7 + j) % 26) as u8));
        p
    }

    fn ping(&mut self, ctx: &mut Ctx<Self>) {
        let Some(udp) = self.udp.clone() else {
            return;
        };
        let msg = Bytes::from(self.payload(self.seq));
        self.sent += 1;
        self.sent_at = Instant::now();
        match udp.send_to(msg, self.server) {
            Ok(()) => self.retry = Some(ctx.timer(Timer::once(self.timeout).named("retry"))),
            Err(e) => self.end(ctx, Err(format!("ping {} not sent: {e}", self.seq))),
        }
    }

    fn end(&mut self, ctx: &mut Ctx<Self>, result: Result<Vec<Duration>, String>) {
        self.outcome.lock().get_or_insert(result);
        if let Some(udp) = &self.udp {
            udp.close();
        }
        ctx.finish();
    }
}

impl Tonic for Pinger {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if self.count == 0 {
            return self.end(ctx, Ok(Vec::new()));
        }
        match UdpSocket::bind(loopback(0), RawDatagrams::new()).start(ctx) {
            Ok(udp) => self.udp = Some(udp),
            Err(e) => return self.end(ctx, Err(format!("cannot bind: {e}"))),
        }
        self.ping(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _: &TimerEvent) {
        self.retry = None;
        if self.sent >= self.tries {
            let (seq, tries, ms) = (self.seq, self.tries, self.timeout.as_millis());
            return self.end(
                ctx,
                Err(format!(
                    "no answer to ping {seq} from {} after {tries} tries ({ms} ms each)",
                    self.server
                )),
            );
        }
        self.ping(ctx);
    }
}

impl UdpEvents<Bytes> for Pinger {
    fn on_datagram(&mut self, ctx: &mut Ctx<Self>, _: &Udp<Bytes>, msg: Bytes, from: SocketAddr) {
        let rtt = self.sent_at.elapsed();
        let seq = msg.first_chunk::<8>().map(|n| u64::from_be_bytes(*n));
        if from != self.server || seq != Some(self.seq) {
            return; // a late answer to an earlier ping, or not from the server
        }
        if msg[..] != self.payload(self.seq)[..] {
            let seq = self.seq;
            return self.end(ctx, Err(format!("the answer to ping {seq} differs")));
        }
        if let Some(t) = self.retry.take() {
            ctx.cancel_timer(t);
        }
        self.rtts.push(rtt);
        self.seq += 1;
        self.sent = 0;
        if self.seq == self.count {
            let rtts = std::mem::take(&mut self.rtts);
            return self.end(ctx, Ok(rtts));
        }
        self.ping(ctx);
    }

    fn on_send_failed(
        &mut self,
        ctx: &mut Ctx<Self>,
        _: &Udp<Bytes>,
        _: Bytes,
        to: SocketAddr,
        e: &SendToError,
    ) {
        let seq = self.seq;
        self.end(ctx, Err(format!("ping {seq} to {to} failed: {e}")));
    }
}

// ----- both ---------------------------------------------------------------------------------

fn serve(o: &Options) -> Result<(), String> {
    let failed = Arc::new(AtomicBool::new(false));
    let echo = Echo {
        port: o.port,
        failed: failed.clone(),
    };
    let app = App::new("udp_ping").tonic_named(
        "launcher",
        support::Launcher::new("udp_ping", echo, o.colocated),
    );
    support::stop_on_signals(&app, "udp_ping");
    app.run().map_err(|e| e.to_string())?;
    if failed.load(Ordering::SeqCst) {
        return Err("the server did not start".into());
    }
    Ok(())
}

fn ping(o: &Options) -> Result<Vec<Duration>, String> {
    let outcome: Outcome = Arc::new(Mutex::new(None));
    let pinger = Pinger {
        server: loopback(o.port),
        count: o.count,
        size: o.size,
        timeout: o.timeout,
        tries: o.tries,
        udp: None,
        seq: 0,
        sent: 0,
        sent_at: Instant::now(),
        retry: None,
        rtts: Vec::new(),
        outcome: outcome.clone(),
    };
    App::new("udp_ping")
        .tonic_named(
            "launcher",
            support::Launcher::new("udp_ping", pinger, o.colocated),
        )
        .run()
        .map_err(|e| e.to_string())?;
    outcome
        .lock()
        .take()
        .unwrap_or_else(|| Err("ended without a result".into()))
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("udp_ping: {e}");
            std::process::exit(2);
        }
    };
    if o.server {
        if let Err(e) = serve(&o) {
            eprintln!("udp_ping: {e}");
            std::process::exit(1);
        }
        return;
    }
    match ping(&o) {
        Ok(mut rtts) => {
            rtts.sort_unstable();
            println!("ok {}", rtts.len());
            if let Some(median) = rtts.get(rtts.len() / 2) {
                println!("median rtt {} us", median.as_micros());
            }
        }
        Err(e) => {
            eprintln!("udp_ping: {e}");
            std::process::exit(1);
        }
    }
}
