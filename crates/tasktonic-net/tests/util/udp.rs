//! UDP test harness: a socket tonic that reports every event (and echoes, if asked), run in
//! an App on its own thread; blocking std peers with bounded reads; gates that hold a
//! catalyst still while a test arranges what its tonics will find.

use std::net::{SocketAddr, UdpSocket as StdUdp};

use crossbeam_channel::{Sender, bounded, unbounded};
use tasktonic_core::{App, Ctx, Handle, Tonic};
use tasktonic_net::Selector;
use tasktonic_net::codec::{CodecError, DatagramCodec};
use tasktonic_net::udp::{SendToError, Udp, UdpEvents, UdpSocket};

use super::{LIMIT, Running, run_app};

/// What a [`UdpHub`] heard, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpEv<M> {
    Bound(SocketAddr),
    Datagram(M, SocketAddr),
    DecodeError(SocketAddr, String),
    SendFailed(M, SocketAddr, String),
    Writable,
    Closed(Vec<(M, SocketAddr)>),
}

/// Starts `socket`, reports every event, and echoes every datagram (if `echo`).
pub struct UdpHub<C: DatagramCodec> {
    socket: Option<UdpSocket<C>>,
    pub udp: Option<Udp<C::Message>>,
    echo: bool,
    out: Sender<UdpEv<C::Message>>,
    addr: Sender<(SocketAddr, Handle<UdpHub<C>>)>,
}

impl<C: DatagramCodec> Tonic for UdpHub<C>
where
    C::Message: Clone,
{
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(socket) = self.socket.take() {
            let udp = socket.start(ctx).expect("bound");
            self.addr.send((udp.local_addr(), ctx.handle())).ok();
            self.udp = Some(udp);
        }
    }
}

impl<C: DatagramCodec> UdpEvents<C::Message> for UdpHub<C>
where
    C::Message: Clone,
{
    fn on_bound(&mut self, _: &mut Ctx<Self>, _: &Udp<C::Message>, addr: SocketAddr) {
        self.out.send(UdpEv::Bound(addr)).ok();
    }
    fn on_datagram(
        &mut self,
        _: &mut Ctx<Self>,
        udp: &Udp<C::Message>,
        msg: C::Message,
        from: SocketAddr,
    ) {
        self.out.send(UdpEv::Datagram(msg.clone(), from)).ok();
        if self.echo {
            udp.send_to(msg, from).expect("echo accepted");
        }
    }
    fn on_decode_error(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Udp<C::Message>,
        from: SocketAddr,
        error: &CodecError,
    ) {
        self.out
            .send(UdpEv::DecodeError(from, error.to_string()))
            .ok();
    }
    fn on_send_failed(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Udp<C::Message>,
        msg: C::Message,
        to: SocketAddr,
        error: &SendToError,
    ) {
        self.out
            .send(UdpEv::SendFailed(msg, to, error.to_string()))
            .ok();
    }
    fn on_writable(&mut self, _: &mut Ctx<Self>, _: &Udp<C::Message>) {
        self.out.send(UdpEv::Writable).ok();
    }
    fn on_closed(
        &mut self,
        _: &mut Ctx<Self>,
        _: &Udp<C::Message>,
        unsent: Vec<(C::Message, SocketAddr)>,
    ) {
        self.out.send(UdpEv::Closed(unsent)).ok();
    }
}

/// Spawns its tonic on the selector catalyst (the co-located layout); finishes with it.
struct Colocate<T: Tonic>(Option<T>);

impl<T: Tonic> Tonic for Colocate<T> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let selector = Selector::default_for(ctx).expect("a selector");
        if let Some(t) = self.0.take() {
            ctx.infusion(t)
                .catalyst(selector.catalyst())
                .spawn()
                .expect("spawned");
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &tasktonic_core::TonicRef) {
        ctx.finish();
    }
}

/// A UDP socket app: its hub's events, its handle, and the socket's handle.
pub struct UdpApp<C: DatagramCodec> {
    pub app: Running<UdpEv<C::Message>, UdpHub<C>>,
    pub udp: Udp<C::Message>,
}

impl<C: DatagramCodec> UdpApp<C> {
    pub fn addr(&self) -> SocketAddr {
        self.app.addr
    }

    pub fn next(&self) -> UdpEv<C::Message> {
        self.app.next()
    }

    /// The next event that is not `Bound` (which comes first).
    pub fn next_after_bound(&self) -> UdpEv<C::Message> {
        self.app.until(|e| !matches!(e, UdpEv::Bound(_)))
    }
}

/// Run `socket` in a hub on the main catalyst (the seed layout) or on the selector's.
pub fn udp_app<C: DatagramCodec>(socket: UdpSocket<C>, echo: bool, colocated: bool) -> UdpApp<C>
where
    C::Message: Clone,
{
    let (out, events) = unbounded();
    let (addr_tx, addr) = unbounded();
    let hub = UdpHub {
        socket: Some(socket),
        udp: None,
        echo,
        out,
        addr: addr_tx,
    };
    let app = if colocated {
        App::new("udp-test").tonic(Colocate(Some(hub)))
    } else {
        App::new("udp-test").tonic(hub)
    };
    let app = run_app(app, addr, events);
    let udp = app
        .hub
        .ask_blocking(LIMIT, |h, _| h.udp.clone())
        .expect("the hub answers")
        .expect("the hub has its socket");
    UdpApp { app, udp }
}

/// A blocking std peer on 127.0.0.1 with bounded reads.
pub fn peer() -> StdUdp {
    let s = StdUdp::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s
}

/// Receive one datagram (bounded), with its sender.
pub fn recv(s: &StdUdp) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = s.recv_from(&mut buf).expect("a datagram in time");
    buf.truncate(n);
    (buf, from)
}

/// Does nothing; a tonic to hold a catalyst still with.
struct Gate;

impl Tonic for Gate {
    type State = ();
}

/// Hold `tonic`'s catalyst still (one of its sparkles waits) until the returned sender is
/// dropped (or the time bound passes). Returns once the catalyst is held.
pub fn hold<T: Tonic>(tonic: &Handle<T>) -> Sender<()> {
    let (entered_tx, entered) = bounded(1);
    let (release, released) = bounded::<()>(1);
    tonic
        .sparkle(move |_, _| {
            entered_tx.send(()).ok();
            let _ = released.recv_timeout(LIMIT);
        })
        .expect("the tonic is alive");
    entered.recv_timeout(LIMIT).expect("the catalyst is held");
    release
}

/// Hold the selector catalyst of `hub`'s socket still (see [`hold`]).
pub fn hold_selector<C: DatagramCodec>(hub: &Handle<UdpHub<C>>) -> Sender<()>
where
    C::Message: Clone,
{
    let gate = hub
        .ask_blocking(LIMIT, |_, ctx| {
            let selector = Selector::default_for(ctx).expect("a selector");
            ctx.infusion(Gate)
                .catalyst(selector.catalyst())
                .spawn()
                .expect("spawned")
        })
        .expect("the hub answers");
    hold(&gate)
}
