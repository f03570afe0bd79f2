//! A peer-to-peer node (socktools' `TCPSock` with `MsgpackParseMixin`): listens, dials its
//! peers, prints what they send, and broadcasts.
//!
//! ```text
//! cargo run --example p2p_node -- --listen P [--peer HOST:PORT]... [--say TEXT] [--every MS]
//! ```
//!
//! Prints `listening on 127.0.0.1:P` once it listens (P 0: a free port), then every message a
//! peer sends as `from ADDR type T: DATA` (DATA: a string's text, otherwise the MessagePack
//! value as `rmpv` displays it, e.g. `[1, "a"]`). Broadcasts each line read from stdin — or,
//! with `--say`, TEXT every `--every` MS milliseconds (default 1000; stdin is then not read) —
//! as type 1 with the text as a string. Messages are MessagePack `(type, data)` pairs in
//! `[u32 BE length][payload]` frames, so a socktools 0.2 node is a peer like any other.
//!
//! Dialled peers that go away are redialled (100 ms doubling to 2 s). Peers are not dropped
//! for being quiet; the node sends an empty frame to each peer after 3 s without traffic,
//! which keeps a socktools peer's connection open (its reader closes one with no frame for
//! 10 s) but not our place in its peer list (only real messages count there; see
//! docs/interop.md, "Quiet links"). Peer events and errors go to stderr. Exits 0 on stdin's
//! end (without `--say`) or SIGINT/SIGTERM (closing gracefully: what was accepted is
//! written first), 1 if it cannot listen, 2 on bad arguments.

mod support;

use std::io::{BufRead, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tasktonic::net::Reconnect;
use tasktonic::net::peer::{Packet, PeerEvents, PeerMessage, PeerNode, Peers};
use tasktonic::prelude::*;

struct Options {
    listen: u16,
    peers: Vec<SocketAddr>,
    say: Option<String>,
    every: Duration,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        listen: 0,
        peers: Vec::new(),
        say: None,
        every: Duration::from_secs(1),
    };
    let mut listen = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?.parse().map_err(|e| format!("--listen: {e}"))?),
            "--peer" => {
                let v = value()?;
                // A name may resolve to IPv6 first (`localhost` → ::1) while nodes listen on
                // 127.0.0.1: an IPv4 address is preferred.
                let addrs: Vec<SocketAddr> = v
                    .to_socket_addrs()
                    .map_err(|e| format!("--peer {v}: {e}"))?
                    .collect();
                let addr = addrs
                    .iter()
                    .find(|a| a.is_ipv4())
                    .or(addrs.first())
                    .copied()
                    .ok_or_else(|| format!("--peer {v}: no address"))?;
                o.peers.push(addr);
            }
            "--say" => o.say = Some(value()?),
            "--every" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--every: {e}"))?;
                if ms == 0 {
                    return Err("--every must be more than 0".into());
                }
                o.every = Duration::from_millis(ms);
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: p2p_node --listen P [--peer HOST:PORT]... \
                     [--say TEXT] [--every MS])"
                ));
            }
        }
    }
    o.listen = listen.ok_or("--listen P is required")?;
    Ok(o)
}

/// A line read from stdin, to broadcast.
struct Line(String);
/// Stdin ended.
struct Eof;

struct P2p {
    options: Options,
    peers: Option<Peers>,
    failed: Arc<AtomicBool>,
}

impl P2p {
    fn broadcast(&self, text: &str) {
        if let Some(peers) = &self.peers {
            let b = peers.broadcast(1, &text);
            for (peer, e) in b.failed {
                eprintln!("p2p_node: not sent to {peer}: {e}");
            }
        }
    }
}

impl Tonic for P2p {
    type State = ();

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.options.listen));
        let mut node = PeerNode::new()
            .listen(addr)
            .timeout(None)
            .heartbeat(Duration::from_secs(3))
            .reconnect(Reconnect::exponential(
                Duration::from_millis(100),
                Duration::from_secs(2),
            ));
        for peer in &self.options.peers {
            node = node.dial(*peer);
        }
        match node.start(ctx) {
            Ok(peers) => self.peers = Some(peers),
            Err(e) => {
                eprintln!("p2p_node: {e}");
                self.failed.store(true, Ordering::Release);
                return ctx.stop_app();
            }
        }
        if self.options.say.is_some() {
            ctx.timer(Timer::repeat(self.options.every).named("say"));
        } else {
            let me = ctx.handle();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if me.send(Line(line)).is_err() {
                        return;
                    }
                }
                me.send(Eof).ok();
            });
        }
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<Self>, _timer: &TimerEvent) {
        if let Some(text) = self.options.say.clone() {
            self.broadcast(&text);
        }
    }
}

impl Receive<Line> for P2p {
    fn receive(&mut self, _ctx: &mut Ctx<Self>, Line(text): Line) {
        self.broadcast(&text);
    }
}

impl Receive<Eof> for P2p {
    fn receive(&mut self, ctx: &mut Ctx<Self>, _: Eof) {
        // Finishing closes every peer gracefully: what was broadcast is written first.
        ctx.stop_app();
    }
}

impl PeerEvents for P2p {
    fn on_listening(&mut self, _ctx: &mut Ctx<Self>, addr: SocketAddr) {
        println!("listening on {addr}");
        std::io::stdout().flush().ok();
    }

    fn on_peer_up(&mut self, _ctx: &mut Ctx<Self>, peer: SocketAddr, dialled: bool) {
        let how = if dialled { "dialled" } else { "accepted" };
        eprintln!("p2p_node: peer {peer} up ({how})");
    }

    fn on_peer_message(&mut self, _ctx: &mut Ctx<Self>, msg: PeerMessage) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{msg}");
        let _ = out.flush();
    }

    fn on_peer_down(
        &mut self,
        _ctx: &mut Ctx<Self>,
        peer: SocketAddr,
        why: &str,
        unsent: Vec<Packet>,
    ) {
        eprintln!(
            "p2p_node: peer {peer} down: {why} ({} messages not sent)",
            unsent.len()
        );
    }

    fn on_peer_error(&mut self, ctx: &mut Ctx<Self>, peer: Option<SocketAddr>, error: &str) {
        eprintln!(
            "p2p_node: {}{error}",
            peer.map(|p| format!("{p}: ")).unwrap_or_default()
        );
        if peer.is_none() {
            // Cannot listen.
            self.failed.store(true, Ordering::Release);
            ctx.stop_app();
        }
    }
}

fn main() {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("p2p_node: {e}");
            std::process::exit(2);
        }
    };
    let failed = Arc::new(AtomicBool::new(false));
    let app = App::new("p2p_node").tonic_named(
        "p2p node",
        P2p {
            options,
            peers: None,
            failed: failed.clone(),
        },
    );
    support::stop_on_signals(&app, "p2p_node");
    if let Err(e) = app.run() {
        eprintln!("p2p_node: {e}");
        std::process::exit(1);
    }
    if failed.load(Ordering::Acquire) {
        std::process::exit(1);
    }
}
