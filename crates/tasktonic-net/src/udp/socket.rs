//! [`UdpSocket`]: bind (an address or an ephemeral port), then run the socket on a selector.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::Interest;
use mio::net::UdpSocket as MioUdp;
use socket2::{Domain, Socket, Type};
use tasktonic_core::Ctx;

use super::handle::Poke;
use super::handler::UdpHandler;
use super::{Udp, UdpConfig, UdpEvents};
use crate::codec::DatagramCodec;
use crate::selector::{DEFAULT_SELECTOR, Selector};

/// A UDP socket: binds at once (so the address, port 0 included, is known and errors are
/// immediate), then sends and receives on the selector catalyst, reporting to the calling
/// tonic through [`UdpEvents`].
///
/// # Examples
///
/// A socket on an ephemeral port that sends one datagram to itself:
///
/// ```
/// use std::net::SocketAddr;
/// use tasktonic_core::{App, Ctx, Tonic};
/// use tasktonic_net::udp::{Udp, UdpConfig, UdpEvents, UdpSocket, Utf8Datagrams};
///
/// struct Narcissus;
/// impl Tonic for Narcissus {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let addr = "127.0.0.1:0".parse().expect("an address");
///         let udp = UdpSocket::bind(addr, Utf8Datagrams::new())
///             .config(UdpConfig { send_queue: 64, ..UdpConfig::default() })
///             .start(ctx)
///             .expect("bound");
///         udp.send_to("hello, me".to_string(), udp.local_addr()).ok();
///     }
/// }
/// impl UdpEvents<String> for Narcissus {
///     fn on_datagram(&mut self, ctx: &mut Ctx<Self>, udp: &Udp<String>, msg: String, from: SocketAddr) {
///         assert_eq!((msg.as_str(), from), ("hello, me", udp.local_addr()));
///         ctx.finish();
///     }
/// }
/// App::new("doc").tonic(Narcissus).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UdpSocket<C> {
    addr: SocketAddr,
    codec: C,
    config: UdpConfig,
    broadcast: bool,
    reuse_address: bool,
    selector: String,
}

impl<C> fmt::Debug for UdpSocket<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("addr", &self.addr)
            .field("broadcast", &self.broadcast)
            .field("reuse_address", &self.reuse_address)
            .field("selector", &self.selector)
            .finish()
    }
}

impl<C: DatagramCodec> UdpSocket<C> {
    /// A socket for `addr` (port 0 picks a free port; `0.0.0.0` or `[::]` every interface)
    /// speaking `codec`.
    pub fn bind(addr: SocketAddr, codec: C) -> UdpSocket<C> {
        UdpSocket {
            addr,
            codec,
            config: UdpConfig::default(),
            broadcast: false,
            reuse_address: false,
            selector: DEFAULT_SELECTOR.to_string(),
        }
    }

    /// Limits and options (send queue, inbound window, read budget, buffers).
    pub fn config(mut self, config: UdpConfig) -> Self {
        self.config = config;
        self
    }

    /// Allow sending to broadcast addresses from the start (`SO_BROADCAST`; see
    /// [`Udp::set_broadcast`]).
    pub fn broadcast(mut self, on: bool) -> Self {
        self.broadcast = on;
        self
    }

    /// Let other sockets bind the same address (`SO_REUSEADDR`): several multicast
    /// receivers on one port, or a restarted server at once.
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.reuse_address = on;
        self
    }

    /// Run on the selector catalyst called `name` (default `"selector"`).
    pub fn selector(mut self, name: impl Into<String>) -> Self {
        self.selector = name.into();
        self
    }

    fn open(&self) -> io::Result<std::net::UdpSocket> {
        let socket = Socket::new(
            Domain::for_address(self.addr),
            Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        socket.set_reuse_address(self.reuse_address)?;
        socket.set_broadcast(self.broadcast)?;
        if let Some(n) = self.config.recv_buffer {
            socket.set_recv_buffer_size(n)?;
        }
        if let Some(n) = self.config.send_buffer {
            socket.set_send_buffer_size(n)?;
        }
        socket.bind(&self.addr.into())?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    }

    /// Bind and start the socket; its events go to the calling tonic `B`, whose infusion
    /// the socket handler is (on the selector catalyst): finishing the caller closes it.
    /// `on_bound` is the first event.
    ///
    /// # Errors
    ///
    /// Binding failed (the address is in use, not local, or the process lacks the right),
    /// or the selector could not be opened or could not take the socket.
    pub fn start<B: UdpEvents<C::Message>>(self, ctx: &mut Ctx<B>) -> io::Result<Udp<C::Message>> {
        let selector = Selector::open(ctx, &self.selector)?;
        let std_socket = self.open()?;
        let local = std_socket.local_addr()?;
        let udp = Udp::new(MioUdp::from_std(std_socket), local, &self.config);
        // Readiness waits in the handle's shared state, so the route allocates nothing per
        // event, and readiness that comes before the handler has started is not lost (its
        // `Start` takes it).
        let route = {
            let udp = udp.clone();
            move |ready| {
                if udp.post_ready(ready) {
                    udp.poke(Poke::Ready);
                }
            }
        };
        let token = {
            let mut socket = udp.shared.socket.lock();
            let Some(socket) = socket.as_mut() else {
                return Err(io::Error::other("the UDP socket vanished"));
            };
            selector.register(socket, Interest::READABLE, route)?
        };
        let handler = UdpHandler::new(
            udp.clone(),
            self.codec,
            ctx.handle(),
            selector.clone(),
            token,
            Arc::new(self.config),
        );
        let handle = match ctx.infusion(handler).on(selector.place()).spawn() {
            Ok(handle) => handle,
            Err(e) => {
                if let Some(mut socket) = udp.shared.socket.lock().take() {
                    selector.deregister(&mut socket, token);
                }
                return Err(io::Error::other(e.to_string()));
            }
        };
        udp.set_poke(UdpHandler::poker(handle));
        udp.poke(Poke::Start);
        Ok(udp)
    }
}
