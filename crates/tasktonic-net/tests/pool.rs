//! A server's connections spread over a pool of selectors: in turn, each for life, with
//! per-connection protocol tonics beside their connections.

mod util;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use tasktonic_core::{App, Ctx, Handle, Tonic};
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::tcp::{Conn, TcpEvents, TcpServer};
use util::*;

/// Per connection: answers every message with the name of the catalyst it runs on.
struct Where;

impl Tonic for Where {
    type State = ();
}

impl TcpEvents<Bytes> for Where {
    fn on_message(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        let mut reply = ctx.catalyst().as_bytes().to_vec();
        reply.push(b' ');
        reply.extend_from_slice(&msg);
        conn.send(Bytes::from(reply)).ok();
    }
}

struct PoolServer {
    selectors: usize,
    addr: Sender<(SocketAddr, Handle<PoolServer>)>,
}

impl Tonic for PoolServer {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let listening = TcpServer::bind(local(), LengthDelimited::new())
            .selectors(self.selectors)
            .start_each(ctx, |_peer| Where)
            .expect("bound");
        self.addr.send((listening.local_addr(), ctx.handle())).ok();
    }
}

#[test]
fn connections_are_spread_over_the_pool_in_turn_and_stay_with_their_protocol_tonic() {
    let (addr_tx, addr) = unbounded();
    let (_ev, events) = unbounded::<()>();
    let server = run_app(
        App::new("pool").tonic(PoolServer {
            selectors: 4,
            addr: addr_tx,
        }),
        addr,
        events,
    );
    // Eight connections, each asked twice: every answer from its connection's selector, the
    // same both times; two connections on each of the four.
    let mut clients: Vec<_> = (0..8).map(|_| connect(server.addr)).collect();
    let mut on: BTreeMap<String, usize> = BTreeMap::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let mut seen = Vec::new();
        for round in 0..2 {
            let msg = format!("{i}/{round}");
            write_all(c, &frame(msg.as_bytes()));
            let back = String::from_utf8(read_frame(c)).expect("text");
            let (catalyst, echoed) = back.split_once(' ').expect("catalyst and echo");
            assert_eq!(echoed, msg);
            seen.push(catalyst.to_string());
        }
        assert_eq!(seen[0], seen[1], "connection {i} moved between selectors");
        *on.entry(seen[0].clone()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = ["selector", "selector-1", "selector-2", "selector-3"]
        .into_iter()
        .map(|s| (s.to_string(), 2))
        .collect();
    assert_eq!(on, expected);
    drop(clients);
    server.stop().expect("stopped");
}

#[test]
fn a_shared_base_serves_connections_spread_over_the_pool() {
    let server = serve(
        TcpServer::bind(local(), LengthDelimited::new()).selectors(3),
        true,
    );
    let mut clients: Vec<_> = (0..6).map(|_| connect(server.addr)).collect();
    for round in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            write_all(c, &frame(format!("{i}/{round}").as_bytes()));
        }
        for (i, c) in clients.iter_mut().enumerate() {
            assert_eq!(read_frame(c), format!("{i}/{round}").as_bytes());
        }
    }
    drop(clients);
    server.stop().expect("stopped");
}

struct Anchored(Sender<(SocketAddr, Handle<Anchored>)>);

impl Tonic for Anchored {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let listening = TcpServer::bind(local(), LengthDelimited::new())
            .selector("anchored")
            .selectors(3)
            .start_each(ctx, |_peer| Where)
            .expect("bound");
        self.0.send((listening.local_addr(), ctx.handle())).ok();
    }
}

#[test]
fn a_pools_selectors_keep_their_threads_while_the_listener_lives() {
    let (addr_tx, addr) = unbounded();
    let (_ev, events) = unbounded::<()>();
    let server = run_app(App::new("anchored").tonic(Anchored(addr_tx)), addr, events);
    // Every selector of the pool has its thread before any connection is placed on it
    // (else each one's first connection, and the first after it emptied, would wait for a
    // thread to start).
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let names = thread_names();
        if ["anchored", "anchored-1", "anchored-2"]
            .iter()
            .all(|n| names.iter().any(|t| t == n))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pool threads: {names:?}"
        );
        std::thread::yield_now();
    }
    server.stop().expect("stopped");
}
