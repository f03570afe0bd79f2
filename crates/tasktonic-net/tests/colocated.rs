//! A base on the selector catalyst (the co-located layout): the replies it sends while handling
//! a batch are collected without a lock and handed over when the batch is done. Order, the
//! high watermark and `on_writable` must hold exactly as in the seed layout.

mod util;

use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use tasktonic_core::{App, Ctx, Handle, Tonic, TonicRef};
use tasktonic_net::Selector;
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::tcp::{Conn, TcpConfig, TcpEvents, TcpSendError, TcpServer};
use util::*;

/// Echoes in order; what back-pressure refuses waits in `backlog` for `on_writable`.
struct Echoer {
    server: Option<TcpServer<LengthDelimited>>,
    addr: Sender<(SocketAddr, Handle<Echoer>)>,
    backlog: VecDeque<Bytes>,
    refused: u64,
    on_selector: bool,
}

impl Echoer {
    fn pump(&mut self, conn: &Conn<Bytes>) {
        while let Some(msg) = self.backlog.pop_front() {
            match conn.send(msg) {
                Ok(()) => {}
                Err(TcpSendError::Backpressure(msg)) => {
                    self.refused += 1;
                    self.backlog.push_front(msg);
                    return;
                }
                Err(e) => panic!("send failed: {e}"),
            }
        }
    }
}

impl Tonic for Echoer {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        self.on_selector = Selector::default_for(ctx).is_ok_and(|s| s.catalyst() == ctx.catalyst());
        start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl TcpEvents<Bytes> for Echoer {
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        self.backlog.push_back(msg);
        self.pump(conn);
    }
    fn on_writable(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>) {
        self.pump(conn);
    }
}

/// Spawns the base on the selector catalyst.
struct Launcher<T: Tonic> {
    base: Option<T>,
}

impl<T: Tonic> Tonic for Launcher<T> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let selector = Selector::default_for(ctx).expect("selector");
        if let Some(base) = self.base.take() {
            ctx.infusion(base)
                .catalyst(selector.catalyst())
                .spawn()
                .expect("spawn");
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        ctx.finish();
    }
}

/// A plain tonic on the main catalyst that sends what it is handed.
struct Helper;
impl Tonic for Helper {
    type State = ();
}

/// Co-located: answers frames that start with an even byte itself (inside the batch), and
/// hands the others to a helper on another catalyst, which answers later.
struct Splitter {
    server: Option<TcpServer<LengthDelimited>>,
    addr: Sender<(SocketAddr, Handle<Splitter>)>,
    helper: Option<Handle<Helper>>,
}

impl Tonic for Splitter {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        self.helper = Some(
            ctx.infusion(Helper)
                .catalyst("main")
                .spawn()
                .expect("helper"),
        );
        start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl TcpEvents<Bytes> for Splitter {
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        if msg[0] % 2 == 0 {
            conn.send(msg).expect("send");
            return;
        }
        let conn = conn.clone();
        if let Some(helper) = &self.helper {
            helper
                .sparkle(move |_, _| conn.send(msg).expect("send from the helper"))
                .ok();
        }
    }
}

#[test]
fn colocated_replies_keep_order_and_back_pressure() {
    const FRAMES: u32 = 20_000;
    let config = TcpConfig {
        high_watermark: 8,
        low_watermark: 2,
        ..TcpConfig::default()
    };
    let (addr_tx, addr) = unbounded();
    let (_ev, events) = unbounded::<()>();
    let app = App::new("colocated").tonic(Launcher {
        base: Some(Echoer {
            server: Some(TcpServer::bind(local(), LengthDelimited::new()).config(config)),
            addr: addr_tx,
            backlog: VecDeque::new(),
            refused: 0,
            on_selector: false,
        }),
    });
    let server = run_app(app, addr, events);
    let c = connect(server.addr);
    let mut writer = c.try_clone().expect("clone");
    // Everything in one burst from another thread: reads bring many frames per batch.
    let wire: Vec<u8> = (0..FRAMES)
        .flat_map(|i| frame(&[i.to_be_bytes(), [0xAB; 4]].concat()))
        .collect();
    let write = std::thread::spawn(move || writer.write_all(&wire).expect("write"));
    let mut c = c;
    for i in 0..FRAMES {
        let f = read_frame(&mut c);
        assert_eq!(f.len(), 8);
        assert_eq!(u32::from_be_bytes([f[0], f[1], f[2], f[3]]), i, "order");
    }
    write.join().expect("writer");
    let (refused, on_selector, backlog) = server
        .hub
        .ask_blocking(LIMIT, |e, _| (e.refused, e.on_selector, e.backlog.len()))
        .expect("answer");
    assert!(on_selector, "the echoer must run on the selector catalyst");
    assert!(refused > 0, "the high watermark of 8 was never reached");
    assert_eq!(backlog, 0);
    drop(c);
    server.stop().expect("clean stop");
}

/// A co-located base takes a read's messages inside the connection's own sparkle, and the
/// connection writes what it staged right after. Sends from another thread in between or
/// later must still reach the socket: nothing may be left waiting for a poke that the inline
/// hand-over held back.
#[test]
fn colocated_replies_from_another_thread_are_written_too() {
    const FRAMES: u32 = 2_000;
    let (addr_tx, addr) = unbounded();
    let (_ev, events) = unbounded::<()>();
    let app = App::new("split").tonic(Launcher {
        base: Some(Splitter {
            server: Some(TcpServer::bind(local(), LengthDelimited::new())),
            addr: addr_tx,
            helper: None,
        }),
    });
    let server = run_app(app, addr, events);
    let mut c = connect(server.addr);
    let mut seen = vec![false; FRAMES as usize];
    // One at a time (every read is one message: the request–response path), then in bursts.
    for round in 0..2 {
        let batch: u32 = if round == 0 { 1 } else { 100 };
        for start in (0..FRAMES / 2).step_by(batch as usize) {
            let ids: Vec<u32> = (start..start + batch)
                .map(|i| i + round * FRAMES / 2)
                .collect();
            let wire: Vec<u8> = ids
                .iter()
                .flat_map(|i| frame(&[[(*i % 2) as u8, 0, 0, 0], i.to_be_bytes()].concat()))
                .collect();
            write_all(&mut c, &wire);
            for _ in &ids {
                let f = read_frame(&mut c);
                let id = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                assert!(
                    !std::mem::replace(&mut seen[id as usize], true),
                    "{id} twice"
                );
            }
        }
    }
    assert!(seen.iter().all(|s| *s));
    drop(c);
    server.stop().expect("clean stop");
}
