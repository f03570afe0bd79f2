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

/// Spawns the echoer on the selector catalyst.
struct Launcher {
    echoer: Option<Echoer>,
}

impl Tonic for Launcher {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let selector = Selector::default_for(ctx).expect("selector");
        if let Some(echoer) = self.echoer.take() {
            ctx.infusion(echoer)
                .catalyst(selector.catalyst())
                .spawn()
                .expect("spawn");
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        ctx.finish();
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
        echoer: Some(Echoer {
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
