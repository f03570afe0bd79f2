//! End-to-end through the facade crate: the prelude is enough to write and run an app.

use std::time::Duration;

use tasktonic::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Waiting,
    Counting,
}

struct Counter {
    count: u32,
    report: std::sync::mpsc::Sender<u32>,
}

struct Add(u32);

impl Tonic for Counter {
    type State = Phase;
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        ctx.timer(Timer::once(Duration::from_millis(1)).named("begin"));
    }
    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _: &TimerEvent) {
        ctx.to_state(Phase::Counting);
    }
}

impl Receive<Add> for Counter {
    fn receive(&mut self, ctx: &mut Ctx<Self>, Add(n): Add) {
        if *ctx.state() == Phase::Waiting {
            ctx.postpone_message(Add(n));
            return;
        }
        self.count += n;
        if self.count == 10 {
            self.report.send(self.count).ok();
            ctx.finish();
        }
    }
}

struct Feeder {
    report: std::sync::mpsc::Sender<u32>,
}

impl Tonic for Feeder {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let counter = ctx
            .infusion(Counter {
                count: 0,
                report: self.report.clone(),
            })
            .catalyst("counter")
            .spawn()
            .expect("spawn");
        for n in 1..=4 {
            counter.send(Add(n)).ok();
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        ctx.finish();
    }
}

#[test]
fn an_app_written_against_the_prelude_runs_to_completion() {
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        done_tx
            .send(App::new("facade").tonic(Feeder { report: tx }).run())
            .ok();
    });
    let result = done
        .recv_timeout(Duration::from_secs(20))
        .expect("App::run returned");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(rx.try_recv(), Ok(10));
}

/// The handles users pass between threads are `Send + Sync` (a compile-time check: losing
/// either fails the build of this test).
#[allow(dead_code)]
fn public_handles_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    struct Anyone;
    impl Tonic for Anyone {
        type State = ();
    }
    both::<Handle<Anyone>>();
    both::<TonicRef>();
    both::<tasktonic::Stopper>();
    both::<tasktonic::RunningApp>();
    both::<tasktonic::Catalyst>();
    both::<tasktonic::net::tcp::Conn<bytes::Bytes>>();
    both::<tasktonic::net::tcp::Listening>();
    both::<tasktonic::net::Selector>();
    both::<tasktonic::net::Udp<bytes::Bytes>>();
    both::<tasktonic::net::ws::Ws>();
    both::<tasktonic::net::nats::Nats>();
    both::<tasktonic::net::nats::Subscription>();
    both::<tasktonic::net::peer::Peers>();
    both::<tasktonic::net::remote_log::RemoteLog>();
}

/// Echoes every frame back: a server written with the one `use tasktonic::prelude::*`.
struct Echo {
    addr: Option<std::net::SocketAddr>,
}

impl Tonic for Echo {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let listening = TcpServer::bind(
            "127.0.0.1:0".parse().expect("an address"),
            LengthDelimited::new(),
        )
        .start(ctx)
        .expect("bound");
        self.addr = Some(listening.local_addr());
    }
}

impl TcpEvents<Bytes> for Echo {
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        conn.send(msg).ok();
    }
}

/// A networked app from the prelude alone, started on its own thread; its top-level tonic
/// reached by name from this thread, asked where it listens, and an echo over loopback.
#[test]
fn a_server_needs_only_the_prelude_and_is_reached_by_name() {
    use std::io::{Read, Write};

    let app = App::new("facade-echo")
        .tonic_named("echo", Echo { addr: None })
        .spawn()
        .expect("started");
    let echo = app.lookup::<Echo>("echo").expect("placed");
    let addr = echo
        .ask_blocking(Duration::from_secs(20), |e, _| e.addr)
        .expect("answered")
        .expect("listening");
    let mut s = std::net::TcpStream::connect(addr).expect("connected");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(&[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'])
        .expect("written");
    let mut back = [0u8; 9];
    s.read_exact(&mut back).expect("echoed");
    assert_eq!(&back[4..], b"hello");
    drop(s);
    app.stop();
    let result = app
        .join_timeout(Duration::from_secs(20))
        .expect("ended in time");
    assert!(result.is_ok(), "{result:?}");
}
