//! The selector thread ends with its last handler and comes back with the next one, while
//! the app runs on. Its own test binary: it reads the process's thread names from `/proc`.

mod util;

use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use tasktonic_core::{App, Ctx, Receive, Tonic};
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::tcp::{Conn, TcpClient, TcpEvents};
use util::*;

/// How many threads of this process are named `selector`.
fn selector_threads() -> usize {
    thread_names().iter().filter(|n| *n == "selector").count()
}

/// Wait for the thread count to become `n`, bounded.
fn until_selector_threads(n: usize) {
    let deadline = Instant::now() + LIMIT;
    while selector_threads() != n {
        assert!(
            Instant::now() < deadline,
            "{} selector threads, not {n}",
            selector_threads()
        );
        std::thread::yield_now();
    }
}

/// Dials when told; reports connections up and finished.
struct Dialer(Sender<&'static str>);

struct Dial(SocketAddr);

impl Tonic for Dialer {
    type State = ();
}

impl Receive<Dial> for Dialer {
    fn receive(&mut self, ctx: &mut Ctx<Self>, Dial(addr): Dial) {
        TcpClient::new(addr, LengthDelimited::new())
            .start(ctx)
            .expect("a selector");
    }
}

impl TcpEvents<Bytes> for Dialer {
    fn on_connected(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, _: SocketAddr) {
        self.0.send("up").ok();
    }
    fn on_connection_finished(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>) {
        self.0.send("finished").ok();
    }
}

#[test]
fn the_selector_thread_ends_with_its_last_handler_and_comes_back() {
    let (out, events) = unbounded();
    let (addr_tx, addr) = unbounded();
    let app = App::new("selector-thread").tonic(Starter {
        dialer: Some(Dialer(out)),
        handle: None,
        addr: addr_tx,
    });
    let running = run_app(app, addr, events);
    assert_eq!(
        selector_threads(),
        0,
        "no selector before the first handler"
    );
    let listener = TcpListener::bind(local()).expect("bound");
    for round in 0..2 {
        running
            .hub
            .ask_blocking(LIMIT, |t, _| t.handle.clone())
            .expect("asked")
            .expect("the dialer")
            .send(Dial(listener.local_addr().expect("addr")))
            .expect("sent");
        let (peer, _) = listener.accept().expect("a connection");
        assert_eq!(running.next(), "up", "round {round}");
        assert_eq!(
            selector_threads(),
            1,
            "round {round}: one selector while connected"
        );
        drop(peer); // the peer closes: the client (no reconnect policy) ends
        assert_eq!(running.next(), "finished", "round {round}");
        until_selector_threads(0);
    }
    running.stop().expect("stopped");
}

/// Places the dialer and reports its handle.
struct Starter {
    dialer: Option<Dialer>,
    handle: Option<tasktonic_core::Handle<Dialer>>,
    addr: Sender<(SocketAddr, tasktonic_core::Handle<Starter>)>,
}

impl Tonic for Starter {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        self.handle = self.dialer.take().map(|d| ctx.spawn(d));
        self.addr.send((local(), ctx.handle())).ok();
    }
}
