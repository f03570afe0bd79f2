//! The peer node (socktools' TCPSock with msgpack) over real sockets: three nodes in a line,
//! typed handlers by name, a peer that sends garbage, a silent peer, errors for unknown
//! peers and types. (The real socktools 0.2 is driven by `.ci/run` against `p2p_node`.)

mod util;

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::{Deserialize, Serialize};
use tasktonic_core::{App, Ctx, Handle, Receive, Stopper, Tonic};
use tasktonic_net::peer::{MsgTypes, Packet, PeerError, PeerEvents, PeerMessage, PeerNode, Peers};
use util::{LIMIT, connect, frame, write_all};

#[derive(Debug, Clone, PartialEq)]
enum Heard {
    Listening(SocketAddr),
    Up(SocketAddr, bool),
    Message(String),
    Chat(SocketAddr, Chat),
    Down(SocketAddr, String),
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Chat {
    who: String,
    text: String,
}

struct Node {
    listen: bool,
    dial: Vec<SocketAddr>,
    timeout: Option<Duration>,
    peers: Option<Peers>,
    out: Sender<Heard>,
    handle: Sender<(Handle<Node>, Peers)>,
}

fn types() -> MsgTypes {
    MsgTypes::new().with("text", 1).with("chat", 7)
}

impl Tonic for Node {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let mut node = PeerNode::new()
            .types(types())
            .timeout(self.timeout)
            .on_named(
                "chat",
                |me: &mut Node, _: &mut Ctx<Node>, from: SocketAddr, chat: Chat| {
                    me.out.send(Heard::Chat(from, chat)).ok();
                },
            );
        if self.listen {
            node = node.listen("127.0.0.1:0".parse().expect("an address"));
        }
        for d in &self.dial {
            node = node.dial(*d);
        }
        let peers = node.start(ctx).expect("started");
        self.handle.send((ctx.handle(), peers.clone())).ok();
        self.peers = Some(peers);
    }
}

impl PeerEvents for Node {
    fn on_listening(&mut self, _: &mut Ctx<Self>, addr: SocketAddr) {
        self.out.send(Heard::Listening(addr)).ok();
    }
    fn on_peer_up(&mut self, _: &mut Ctx<Self>, peer: SocketAddr, dialled: bool) {
        self.out.send(Heard::Up(peer, dialled)).ok();
    }
    fn on_peer_message(&mut self, _: &mut Ctx<Self>, msg: PeerMessage) {
        self.out.send(Heard::Message(msg.to_string())).ok();
    }
    fn on_peer_down(&mut self, _: &mut Ctx<Self>, peer: SocketAddr, why: &str, _: Vec<Packet>) {
        self.out.send(Heard::Down(peer, why.to_string())).ok();
    }
    fn on_peer_error(&mut self, _: &mut Ctx<Self>, _: Option<SocketAddr>, error: &str) {
        self.out.send(Heard::Error(error.to_string())).ok();
    }
}

/// Broadcast text from inside the node's tonic.
struct Say(String);

impl Receive<Say> for Node {
    fn receive(&mut self, _: &mut Ctx<Self>, Say(text): Say) {
        if let Some(p) = &self.peers {
            p.broadcast_named("text", &text).expect("a known type");
        }
    }
}

struct Running {
    heard: Receiver<Heard>,
    peers: Peers,
    handle: Handle<Node>,
    stopper: Stopper,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    fn until(&self, mut f: impl FnMut(&Heard) -> bool) -> Heard {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let h = self.heard.recv_timeout(left).expect("heard in time");
            if f(&h) {
                return h;
            }
        }
    }

    fn stop(self) {
        self.stopper.stop();
        self.thread.join().expect("app thread");
    }
}

fn node(listen: bool, dial: Vec<SocketAddr>, timeout: Option<Duration>) -> Running {
    let (out, heard) = unbounded();
    let (handle_tx, handle_rx) = unbounded();
    let app = App::new("peer-test").tonic(Node {
        listen,
        dial,
        timeout,
        peers: None,
        out,
        handle: handle_tx,
    });
    let stopper = app.stopper();
    let thread = std::thread::spawn(move || {
        app.run().expect("ran");
    });
    let (handle, peers) = handle_rx.recv_timeout(LIMIT).expect("started");
    Running {
        heard,
        peers,
        handle,
        stopper,
        thread,
    }
}

fn listening(n: &Running) -> SocketAddr {
    match n.until(|h| matches!(h, Heard::Listening(_))) {
        Heard::Listening(a) => a,
        _ => unreachable!(),
    }
}

#[test]
fn three_nodes_in_a_line_exchange_messages_both_ways() {
    let b = node(true, Vec::new(), None);
    let addr_b = listening(&b);
    let a = node(true, vec![addr_b], None);
    let c = node(true, vec![addr_b], None);
    assert_eq!(
        a.until(|h| matches!(h, Heard::Up(..))),
        Heard::Up(addr_b, true)
    );
    assert_eq!(
        c.until(|h| matches!(h, Heard::Up(..))),
        Heard::Up(addr_b, true)
    );
    // B sees both as accepted peers.
    for _ in 0..2 {
        assert!(matches!(
            b.until(|h| matches!(h, Heard::Up(..))),
            Heard::Up(_, false)
        ));
    }
    assert_eq!(b.peers.peers().len(), 2);
    // B broadcasts: A and C hear it from B.
    b.handle.send(Say("from B".into())).ok();
    let want = format!("from {addr_b} type 1: from B");
    assert_eq!(
        a.until(|h| matches!(h, Heard::Message(_))),
        Heard::Message(want.clone())
    );
    assert_eq!(
        c.until(|h| matches!(h, Heard::Message(_))),
        Heard::Message(want)
    );
    // A and C send to B by address, from a plain thread; B hears both, typed by name.
    let chat = Chat {
        who: "a".into(),
        text: "hi B".into(),
    };
    a.peers.send_named(addr_b, "chat", &chat).expect("sent");
    c.peers.send_to(addr_b, 1, &"from C").expect("sent");
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(b.until(|h| matches!(h, Heard::Chat(..) | Heard::Message(_))));
    }
    assert!(
        got.iter()
            .any(|h| matches!(h, Heard::Chat(_, c) if *c == chat)),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|h| matches!(h, Heard::Message(m) if m.ends_with("type 1: from C"))),
        "{got:?}"
    );
    // B answers A alone: C hears nothing more.
    let from_a = match &got.iter().find(|h| matches!(h, Heard::Chat(..))) {
        Some(Heard::Chat(from, _)) => *from,
        _ => unreachable!(),
    };
    let from_c = b
        .peers
        .peers()
        .into_iter()
        .find(|p| *p != from_a)
        .expect("C");
    b.peers.send_to(from_a, 1, &"only A").expect("sent");
    // Then a marker to C: had B sent A's answer to C too, it would arrive before it.
    b.peers.send_to(from_c, 1, &"marker").expect("sent");
    assert!(
        matches!(a.until(|h| matches!(h, Heard::Message(_))), Heard::Message(m) if m.ends_with("only A"))
    );
    assert!(
        matches!(c.until(|h| matches!(h, Heard::Message(_))), Heard::Message(m) if m.ends_with("marker")),
        "C heard A's answer"
    );
    a.stop();
    // B hears A leave.
    assert!(matches!(b.until(|h| matches!(h, Heard::Down(..))), Heard::Down(p, _) if p == from_a));
    c.stop();
    b.stop();
}

#[test]
fn garbage_closes_only_that_peer_and_bad_data_is_an_error_not_a_message() {
    let b = node(true, Vec::new(), None);
    let addr_b = listening(&b);
    let good = node(false, vec![addr_b], None);
    good.until(|h| matches!(h, Heard::Up(..)));
    // A raw peer sends a frame that is not MessagePack.
    let mut raw = connect(addr_b);
    write_all(&mut raw, &frame(&[0xc1, 0xc1]));
    assert!(
        matches!(b.until(|h| matches!(h, Heard::Error(_))), Heard::Error(e) if e.contains("not a (type, data) pair"))
    );
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).expect("closed");
    drop(raw);
    // A "chat" whose data is not a Chat: an error, the peer stays.
    good.peers.send_named(addr_b, "chat", &42).expect("sent");
    assert!(
        matches!(b.until(|h| matches!(h, Heard::Error(_))), Heard::Error(e) if e.contains("type 7"))
    );
    good.peers
        .send_named(addr_b, "text", &"still here")
        .expect("sent");
    assert!(
        matches!(b.until(|h| matches!(h, Heard::Message(_))), Heard::Message(m) if m.ends_with("still here"))
    );
    good.stop();
    b.stop();
}

#[test]
fn a_silent_peer_is_dropped_after_the_timeout() {
    let b = node(true, Vec::new(), Some(Duration::from_millis(200)));
    let addr_b = listening(&b);
    let mut raw = connect(addr_b);
    let peer = raw.local_addr().expect("addr");
    assert!(
        matches!(b.until(|h| matches!(h, Heard::Down(..))), Heard::Down(p, why) if p == peer && why.contains("no complete message"))
    );
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).expect("closed by the node");
    drop(raw);
    b.stop();
}

#[test]
fn unknown_peers_and_types_are_errors() {
    let b = node(true, Vec::new(), None);
    let _ = listening(&b);
    let nobody: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    assert!(
        matches!(b.peers.send_to(nobody, 1, &"x"), Err(PeerError::UnknownPeer(p)) if p == nobody)
    );
    assert!(matches!(
        b.peers.send_named(nobody, "nope", &"x"),
        Err(PeerError::UnknownType(_))
    ));
    assert_eq!(b.peers.broadcast(1, &"to nobody").sent, 0);
    b.stop();
}

#[test]
fn a_dial_that_never_connects_is_an_error_not_a_peer_going_down() {
    // A port that was just free: nobody listens there.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let a = node(false, vec![nobody], None);
    match a.until(|h| matches!(h, Heard::Error(_) | Heard::Down(..) | Heard::Up(..))) {
        Heard::Error(e) => assert!(e.contains(&format!("cannot reach {nobody}")), "{e}"),
        other => panic!("a failed dial announced as {other:?}"),
    }
    a.stop();
}

/// A base that can be blocked, and that reports how far behind it was.
struct Slow {
    peers: Option<Peers>,
    want: usize,
    got: Vec<u64>,
    most_waiting: usize,
    out: Sender<(Vec<u64>, usize)>,
    start: Sender<(SocketAddr, Handle<Slow>, Peers)>,
}

/// Block the base until the sender of this is told to go on.
struct Block(Receiver<()>);

impl Tonic for Slow {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let config = tasktonic_net::tcp::TcpConfig {
            inbound_window: 16,
            ..Default::default()
        };
        let peers = PeerNode::new()
            .listen("127.0.0.1:0".parse().expect("an address"))
            .timeout(None)
            .config(config)
            .start(ctx)
            .expect("started");
        self.peers = Some(peers);
    }
}

impl Receive<Block> for Slow {
    fn receive(&mut self, _: &mut Ctx<Self>, Block(go_on): Block) {
        go_on.recv_timeout(LIMIT).expect("released in time");
    }
}

impl PeerEvents for Slow {
    fn on_listening(&mut self, ctx: &mut Ctx<Self>, addr: SocketAddr) {
        let peers = self.peers.clone().expect("started");
        self.start.send((addr, ctx.handle(), peers)).ok();
    }
    fn on_peer_message(&mut self, _: &mut Ctx<Self>, msg: PeerMessage) {
        let peers = self.peers.as_ref().expect("started");
        self.most_waiting = self.most_waiting.max(peers.waiting());
        self.got.push(msg.data.as_u64().expect("a number"));
        if self.got.len() == self.want {
            let got = std::mem::take(&mut self.got);
            self.out.send((got, self.most_waiting)).ok();
        }
    }
}

#[test]
fn a_base_that_falls_behind_stops_the_reading_and_loses_nothing() {
    const N: u64 = 2_000;
    let (out, result) = unbounded();
    let (start, started) = unbounded();
    let app = App::new("peer-test").tonic(Slow {
        peers: None,
        want: 2_000,
        got: Vec::new(),
        most_waiting: 0,
        out,
        start,
    });
    let stopper = app.stopper();
    let thread = std::thread::spawn(move || app.run().expect("ran"));
    let (addr, base, peers) = started.recv_timeout(LIMIT).expect("listening");
    let (go_on, blocked) = unbounded();
    base.send(Block(blocked)).expect("the base is there");
    // One write of 2,000 messages: without a bound the node would hand every one of them
    // to the blocked base's mailbox.
    let wire: Vec<u8> = (0..N)
        .flat_map(|i| frame(&rmp_serde::to_vec(&Packet(1, i.into())).expect("packed")))
        .collect();
    let mut raw = connect(addr);
    write_all(&mut raw, &wire);
    // The node fills the window (16) and stops there.
    let deadline = std::time::Instant::now() + LIMIT;
    while peers.waiting() < 16 {
        assert!(
            std::time::Instant::now() < deadline,
            "the window never filled"
        );
        std::thread::yield_now();
    }
    go_on.send(()).expect("release");
    let (got, most) = result.recv_timeout(LIMIT).expect("every message");
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "all, in order");
    assert!(
        most <= 16,
        "{most} messages waited for the base, over the window"
    );
    // The last one counts until its handler has returned.
    assert!(peers.waiting() <= 1, "{} still counted", peers.waiting());
    drop(raw);
    stopper.stop();
    thread.join().expect("app thread");
}
