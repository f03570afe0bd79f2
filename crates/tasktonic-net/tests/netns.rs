//! Network faults across a real link: an echo server in its own network namespace, reached
//! over a veth pair, and the link cut under a live connection. Liveness must detect the
//! cut, the reconnect policy must recover once the link is back, and what was sent while it
//! was down must arrive, whole and in order. With `tc netem` (where the kernel has it), the
//! same exchange runs over a link with delay, loss and reordering.
//!
//! Needs root and `ip` (iproute2); run by hand without them it skips with a loud message,
//! and under `CI` it fails instead.

mod util;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, unbounded};
use tasktonic_core::{App, Ctx, Tonic};
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::tcp::{CloseReason, Conn, Reconnect, TcpClient, TcpConfig, TcpEvents};
use util::LIMIT;

/// A namespace with one end of a veth pair; the other end stays here. Removed on drop.
struct Link {
    ns: String,
    here: String,
    /// The namespace's address, and ours.
    there_ip: String,
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Link {
    fn new(tag: &str) -> Result<Link, String> {
        let id = std::process::id() % 10_000;
        let net = 16 + (std::process::id() + u32::from(tag.as_bytes()[0])) % 200;
        let link = Link {
            ns: format!("tt{tag}{id}"),
            here: format!("tt{tag}{id}a"),
            there_ip: format!("10.231.{net}.2"),
        };
        let there = format!("tt{tag}{id}b");
        let here_cidr = format!("10.231.{net}.1/24");
        let there_cidr = format!("{}/24", link.there_ip);
        sh(&["ip", "netns", "add", &link.ns])?;
        sh(&[
            "ip", "link", "add", &link.here, "type", "veth", "peer", "name", &there,
        ])?;
        sh(&["ip", "link", "set", &there, "netns", &link.ns])?;
        sh(&["ip", "addr", "add", &here_cidr, "dev", &link.here])?;
        sh(&["ip", "link", "set", &link.here, "up"])?;
        let inside = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", link.ns.as_str()];
            v.extend_from_slice(args);
            sh(&v)
        };
        inside(&["ip", "addr", "add", &there_cidr, "dev", &there])?;
        inside(&["ip", "link", "set", &there, "up"])?;
        inside(&["ip", "link", "set", "lo", "up"])?;
        Ok(link)
    }

    fn set(&self, up: bool) {
        sh(&[
            "ip",
            "link",
            "set",
            &self.here,
            if up { "up" } else { "down" },
        ])
        .expect("link");
    }

    /// A u32-framed echo server (Python) inside the namespace; its address.
    fn echo_server(&self) -> (Child, SocketAddr) {
        const ECHO: &str = r#"
import socket, struct, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
def serve(c):
    f = c.makefile("rb")
    try:
        while True:
            h = f.read(4)
            if len(h) < 4:
                return
            p = f.read(struct.unpack(">I", h)[0])
            c.sendall(h + p)
    except OSError:
        return
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "python3",
                "-c",
                ECHO,
                &self.there_ip,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 in the namespace");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the port");
        let port: u16 = line.trim().parse().expect("a port");
        let addr = format!("{}:{port}", self.there_ip)
            .parse()
            .expect("an address");
        (child, addr)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = sh(&["ip", "link", "del", &self.here]);
        let _ = sh(&["ip", "netns", "del", &self.ns]);
    }
}

/// Root and iproute2, or a loud skip (a failure in CI).
fn link(tag: &str) -> Option<Link> {
    match Link::new(tag) {
        Ok(link) => Some(link),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "network namespaces are needed in CI: {e}"
            );
            eprintln!("SKIPPED: no network namespace here ({e})");
            None
        }
    }
}

#[derive(Debug, PartialEq)]
enum Ev {
    Up,
    Echo(Bytes),
    Down(String, usize),
}

/// A client that reports; sends what the test gives it.
struct Dialer {
    client: Option<TcpClient<LengthDelimited>>,
    out: Sender<Ev>,
    conn: Sender<Conn<Bytes>>,
}

impl Tonic for Dialer {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(client) = self.client.take() {
            let conn = client.start(ctx).expect("a selector");
            self.conn.send(conn).ok();
        }
    }
}

impl TcpEvents<Bytes> for Dialer {
    fn on_connected(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, _: SocketAddr) {
        self.out.send(Ev::Up).ok();
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, msg: Bytes) {
        if !msg.is_empty() {
            self.out.send(Ev::Echo(msg)).ok(); // not the heartbeats' echoes
        }
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Conn<Bytes>,
        why: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        self.out.send(Ev::Down(why.to_string(), unsent.len())).ok();
    }
}

fn dial(addr: SocketAddr) -> (Receiver<Ev>, Conn<Bytes>, tasktonic_core::Stopper) {
    let config = TcpConfig {
        recv_timeout: Some(Duration::from_millis(800)),
        heartbeat: Some(Duration::from_millis(150)),
        connect_timeout: Duration::from_millis(500),
        ..TcpConfig::default()
    };
    let client = TcpClient::new(addr, LengthDelimited::new())
        .config(config)
        .reconnect(Reconnect::fixed(Duration::from_millis(100)))
        .resend(true);
    let (out, events) = unbounded();
    let (conn_tx, conn) = unbounded();
    let app = App::new("netns").tonic(Dialer {
        client: Some(client),
        out,
        conn: conn_tx,
    });
    let stopper = app.stopper();
    std::thread::spawn(move || app.run());
    (events, conn.recv_timeout(LIMIT).expect("started"), stopper)
}

fn next(events: &Receiver<Ev>) -> Ev {
    events.recv_timeout(LIMIT).expect("an event in time")
}

/// Numbered frames `from..to`, each echoed whole and in order.
fn exchange(events: &Receiver<Ev>, conn: &Conn<Bytes>, from: u32, to: u32, size: usize) {
    for i in from..to {
        let mut m = vec![(i % 251) as u8; size];
        m[..4].copy_from_slice(&i.to_be_bytes());
        conn.send(Bytes::from(m)).expect("queued");
    }
    for i in from..to {
        match next(events) {
            Ev::Echo(m) => {
                assert_eq!(m.len(), size);
                assert_eq!(m[..4], i.to_be_bytes(), "in order");
                assert!(m[4..].iter().all(|b| *b == (i % 251) as u8), "whole");
            }
            other => panic!("{other:?} instead of echo {i}"),
        }
    }
}

#[test]
fn a_cut_link_is_detected_and_the_client_recovers_losing_nothing() {
    let Some(link) = link("c") else { return };
    let (mut server, addr) = link.echo_server();
    let (events, conn, stopper) = dial(addr);
    assert_eq!(next(&events), Ev::Up);
    exchange(&events, &conn, 0, 200, 3000);
    // The cable is pulled: no FIN, no reset, just silence. Heartbeats go unanswered.
    link.set(false);
    match next(&events) {
        Ev::Down(why, _) => assert!(why.contains("sent nothing"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Sent while it is down: kept for the next connection (resend).
    for i in 200..210u32 {
        let mut m = vec![(i % 251) as u8; 3000];
        m[..4].copy_from_slice(&i.to_be_bytes());
        conn.send(Bytes::from(m)).expect("kept while down");
    }
    link.set(true);
    // Attempts fail (time out) until the link is back; then up again, and the ten arrive.
    loop {
        match next(&events) {
            Ev::Up => break,
            Ev::Down(why, _) => assert!(why.contains("connect"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
    for i in 200..210u32 {
        match next(&events) {
            Ev::Echo(m) => assert_eq!(m[..4], i.to_be_bytes()),
            other => panic!("{other:?}"),
        }
    }
    exchange(&events, &conn, 210, 300, 3000);
    stopper.stop();
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn frames_cross_a_link_with_delay_loss_and_reordering_whole_and_in_order() {
    let Some(link) = link("n") else { return };
    if let Err(e) = sh(&[
        "tc", "qdisc", "add", "dev", &link.here, "root", "netem", "delay", "20ms", "5ms", "loss",
        "2%", "reorder", "10%",
    ]) {
        // A kernel without sch_netem cannot emulate the link; nothing to install for it.
        eprintln!("SKIPPED: tc netem is not available on this kernel ({e})");
        return;
    }
    let (mut server, addr) = link.echo_server();
    let (events, conn, stopper) = dial(addr);
    assert_eq!(next(&events), Ev::Up);
    exchange(&events, &conn, 0, 300, 5000);
    stopper.stop();
    let _ = server.kill();
    let _ = server.wait();
}
