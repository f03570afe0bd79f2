//! Close notices (Kamaelia's `signal` outbox): any tonic besides the base watches a
//! connection and learns when and why it ended; the unsent messages go to the base only.

mod util;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use tasktonic_core::{App, Ctx, Handle, Receive, Tonic};
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::tcp::{
    CloseReason, Conn, ConnEnded, ConnId, Reconnect, TcpClient, TcpEvents, TcpServer,
};
use util::{LIMIT, local};

/// What the test hears, from the base and from the watcher.
#[derive(Debug)]
enum Heard {
    Listening(SocketAddr),
    Up(ConnId, SocketAddr),
    /// The base's `on_disconnected`: reason and how many messages came back.
    BaseDown(ConnId, String, usize),
    /// The watcher's notice.
    Notice(String, ConnEnded),
    Unwatched(bool),
}

/// Watches what it is told to, on its own catalyst, and reports every notice.
struct Watcher {
    name: &'static str,
    out: Sender<Heard>,
}

impl Tonic for Watcher {
    type State = ();
}

impl Receive<ConnEnded> for Watcher {
    fn receive(&mut self, _ctx: &mut Ctx<Self>, ended: ConnEnded) {
        self.out.send(Heard::Notice(self.name.into(), ended)).ok();
    }
}

/// The base: serves (or dials) and makes its watchers watch every connection.
struct Base {
    server: bool,
    dial: Option<SocketAddr>,
    out: Sender<Heard>,
    watchers: Vec<Handle<Watcher>>,
    /// Connections that ended, to be watched late.
    ended: Vec<Conn<Bytes>>,
}

impl Tonic for Base {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        for (i, name) in ["first", "second"].into_iter().enumerate() {
            let watcher = Watcher {
                name,
                out: self.out.clone(),
            };
            let handle = ctx
                .infusion(watcher)
                .name(name)
                .catalyst(format!("watcher-{i}"))
                .spawn()
                .expect("spawned");
            self.watchers.push(handle);
        }
        if self.server {
            let listening = TcpServer::bind(local(), LengthDelimited::new())
                .start(ctx)
                .expect("bound");
            self.out.send(Heard::Listening(listening.local_addr())).ok();
        }
        if let Some(addr) = self.dial {
            let conn = TcpClient::new(addr, LengthDelimited::new())
                .reconnect(Reconnect::fixed(Duration::from_millis(5)).max_attempts(2))
                .resend(true)
                .start(ctx)
                .expect("started");
            for w in &self.watchers {
                conn.watch(w);
            }
            // A message that is never written: it goes back to the base, not to a watcher.
            conn.send(Bytes::from_static(b"never written")).ok();
        }
    }
}

/// Watch a connection that may have ended already.
struct WatchLate;

/// Stop the second watcher from watching every live connection.
struct Unwatch;

impl Receive<WatchLate> for Base {
    fn receive(&mut self, _ctx: &mut Ctx<Self>, _: WatchLate) {
        for conn in &self.ended {
            conn.watch(&self.watchers[0]);
        }
    }
}

impl Receive<Unwatch> for Base {
    fn receive(&mut self, _ctx: &mut Ctx<Self>, _: Unwatch) {
        for conn in &self.ended {
            let was = conn.unwatch(self.watchers[1].id());
            self.out.send(Heard::Unwatched(was)).ok();
        }
    }
}

impl TcpEvents<Bytes> for Base {
    fn on_connected(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<Bytes>, peer: SocketAddr) {
        if self.server {
            for w in &self.watchers {
                conn.watch(w);
                conn.watch(w); // twice changes nothing
            }
        }
        self.ended.push(conn.clone());
        self.out.send(Heard::Up(conn.id(), peer)).ok();
    }

    fn on_disconnected(
        &mut self,
        _ctx: &mut Ctx<Self>,
        conn: &Conn<Bytes>,
        why: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        self.out
            .send(Heard::BaseDown(conn.id(), why.to_string(), unsent.len()))
            .ok();
    }
}

fn run(base: Base) -> (std::thread::JoinHandle<()>, tasktonic_core::Stopper) {
    let app = App::new("close-notices").tonic(base);
    let stopper = app.stopper();
    let thread = std::thread::spawn(move || {
        let _ = app.run();
    });
    (thread, stopper)
}

fn next(rx: &crossbeam_channel::Receiver<Heard>) -> Heard {
    rx.recv_timeout(LIMIT).expect("nothing heard in time")
}

#[test]
fn every_watcher_learns_when_and_why_a_server_connection_ended() {
    let (out, rx) = unbounded();
    let base = Base {
        server: true,
        dial: None,
        out,
        watchers: Vec::new(),
        ended: Vec::new(),
    };
    let (thread, stopper) = run(base);
    let Heard::Listening(addr) = next(&rx) else {
        panic!("not listening")
    };

    // The peer connects, sends nothing and closes: both watchers hear it, each once.
    let peer = std::net::TcpStream::connect(addr).expect("connect");
    let peer_addr = peer.local_addr().expect("addr");
    let Heard::Up(id, seen) = next(&rx) else {
        panic!("no connection")
    };
    assert_eq!(seen, peer_addr);
    drop(peer);
    let mut notices = Vec::new();
    let mut base_down = None;
    while notices.len() < 2 || base_down.is_none() {
        match next(&rx) {
            Heard::Notice(who, ended) => notices.push((who, ended)),
            Heard::BaseDown(conn, why, unsent) => base_down = Some((conn, why, unsent)),
            other => panic!("unexpected: {other:?}"),
        }
    }
    notices.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(notices[0].0, "first");
    assert_eq!(notices[1].0, "second");
    for (_, ended) in &notices {
        assert_eq!(ended.conn, id);
        assert_eq!(ended.peer, Some(peer_addr));
        assert!(matches!(*ended.reason, CloseReason::PeerClosed), "{ended}");
        assert!(!ended.reconnecting);
        assert!(ended.at <= std::time::SystemTime::now());
    }
    let (conn, why, _) = base_down.expect("the base heard");
    assert_eq!(conn, id);
    assert_eq!(why, "closed by the peer");

    stopper.stop();
    thread.join().expect("app thread");
}

#[test]
fn a_late_watcher_hears_at_once_and_an_unwatched_one_not_at_all() {
    let (out, rx) = unbounded();
    let base = Base {
        server: true,
        dial: None,
        out,
        watchers: Vec::new(),
        ended: Vec::new(),
    };
    let app = App::new("close-notices-late");
    let stopper = app.stopper();
    let (hub_tx, hub_rx) = unbounded();
    let thread = std::thread::spawn(move || {
        let _ = app
            .tonic(Launch {
                base: Some(base),
                hub: hub_tx,
            })
            .run();
    });
    let hub: Handle<Base> = hub_rx.recv_timeout(LIMIT).expect("started");
    let Heard::Listening(addr) = next(&rx) else {
        panic!("not listening")
    };
    let mut peer = std::net::TcpStream::connect(addr).expect("connect");
    let Heard::Up(id, _) = next(&rx) else {
        panic!("no connection")
    };
    // The second watcher stops watching; then the peer resets mid-frame.
    hub.send(Unwatch).ok();
    assert!(matches!(next(&rx), Heard::Unwatched(true)));
    peer.write_all(&[0, 0, 0, 9, 1, 2]).expect("write");
    drop(peer);
    let mut first = None;
    let mut base_down = false;
    while first.is_none() || !base_down {
        match next(&rx) {
            Heard::Notice(who, ended) => {
                assert_eq!(who, "first", "an unwatched tonic was told");
                first = Some(ended);
            }
            Heard::BaseDown(..) => base_down = true,
            other => panic!("unexpected: {other:?}"),
        }
    }
    let first = first.expect("noticed");
    assert_eq!(first.conn, id);
    assert!(matches!(*first.reason, CloseReason::Codec(_)), "{first}");

    // Watching the ended connection again: the notice comes at once, the same end.
    hub.send(WatchLate).ok();
    let Heard::Notice(who, late) = next(&rx) else {
        panic!("no late notice")
    };
    assert_eq!(who, "first");
    assert_eq!(late.conn, id);
    assert_eq!(late.at, first.at);
    assert!(!late.reconnecting);
    hub.send(Unwatch).ok();
    assert!(matches!(next(&rx), Heard::Unwatched(false)));
    stopper.stop();
    thread.join().expect("app thread");
}

/// Starts the base as the app's tonic and reports its handle.
struct Launch {
    base: Option<Base>,
    hub: Sender<Handle<Base>>,
}

impl Tonic for Launch {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(base) = self.base.take() {
            let handle = ctx.infusion(base).name("base").spawn().expect("spawned");
            self.hub.send(handle).ok();
        }
    }
}

#[test]
fn a_reconnecting_client_sends_a_notice_per_loss_and_a_last_one() {
    // Nothing listens there: every attempt is refused.
    let addr = TcpListener::bind(local())
        .expect("bind")
        .local_addr()
        .expect("addr");
    let (out, rx) = unbounded();
    let base = Base {
        server: false,
        dial: Some(addr),
        out,
        watchers: Vec::new(),
        ended: Vec::new(),
    };
    let (thread, stopper) = run(base);
    // Each watcher: notices with reconnecting = true, then exactly one last one (the policy
    // allows two reconnects). The base alone gets the unsent message back, at the end.
    let mut last = 0;
    let mut reconnecting = 0;
    let mut handed_back = 0;
    while last < 2 {
        match next(&rx) {
            Heard::Notice(_, ended) => {
                assert_eq!(ended.peer, None, "never connected: {ended}");
                assert!(
                    matches!(*ended.reason, CloseReason::ConnectFailed(_)),
                    "{ended}"
                );
                if ended.reconnecting {
                    reconnecting += 1;
                } else {
                    last += 1;
                }
            }
            Heard::BaseDown(_, _, unsent) => handed_back += unsent,
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(reconnecting, 4, "two reconnects, told to two watchers");
    stopper.stop();
    thread.join().expect("app thread");
    while let Ok(h) = rx.try_recv() {
        if let Heard::BaseDown(_, _, unsent) = h {
            handed_back += unsent;
        }
    }
    assert_eq!(handed_back, 1, "the unsent message went back to the base");
}
