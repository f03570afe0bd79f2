//! [`TcpClient`]: connect with a timeout, and reconnect after any loss under a policy.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use tasktonic_core::Ctx;

use super::connection::{ClientRole, Role, Spec, spawn_connection};
use super::{Conn, Reconnect, TcpConfig, TcpEvents};
use crate::protocol::Protocol;
use crate::selector::{DEFAULT_SELECTOR, Selector};
#[cfg(feature = "tls")]
use crate::transport::Tls;

/// A TCP client connection, handled on the selector catalyst, reporting to the calling tonic.
///
/// Without a [`Reconnect`] policy a failed connect or a lost connection closes it for good. With
/// one, it reconnects after *any* loss — the first connect included — as the policy allows.
/// With [`resend`](TcpClient::resend), messages sent while down (up to the high watermark) and
/// messages not yet written when the connection dropped are sent after reconnecting; without
/// it, `send` while down returns [`TcpSendError::NotConnected`](super::TcpSendError::NotConnected)
/// and unwritten messages come back in `on_disconnected`.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use tasktonic_core::{Ctx, Tonic};
/// use tasktonic_net::codec::Lines;
/// use tasktonic_net::tcp::{Reconnect, TcpClient, TcpEvents};
///
/// struct Chatter;
/// impl Tonic for Chatter {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let addr = "127.0.0.1:5555".parse().expect("an address");
///         let conn = TcpClient::new(addr, Lines::new())
///             .reconnect(Reconnect::fixed(Duration::from_secs(1)))
///             .resend(true)
///             .start(ctx)
///             .expect("a selector");
///         conn.send("hello".to_string()).ok(); // queued until connected
///     }
/// }
/// impl TcpEvents<String> for Chatter {}
/// ```
pub struct TcpClient<C> {
    addr: SocketAddr,
    codec: C,
    config: TcpConfig,
    reconnect: Option<Reconnect>,
    resend: bool,
    selector: String,
    tls: Option<crate::transport::Tls>,
}

impl<C> fmt::Debug for TcpClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpClient")
            .field("addr", &self.addr)
            .field("reconnect", &self.reconnect)
            .field("resend", &self.resend)
            .finish()
    }
}

impl<C: Protocol + Clone> TcpClient<C> {
    /// A client for `addr` speaking `codec` (any [`Protocol`]; every codec is one); no
    /// reconnect, no re-send, plain TCP.
    pub fn new(addr: SocketAddr, codec: C) -> TcpClient<C> {
        TcpClient {
            addr,
            codec,
            config: TcpConfig::default(),
            reconnect: None,
            resend: false,
            selector: DEFAULT_SELECTOR.to_string(),
            tls: None,
        }
    }

    /// Speak TLS (from the start of every connect): `tls` is [`Tls::client`], which names
    /// the server whose certificate is verified. The connection is up (`on_connected`)
    /// once the handshake completes; the connect timeout bounds both.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Limits and options (connect timeout, watermarks, …).
    pub fn config(mut self, config: TcpConfig) -> Self {
        self.config = config;
        self
    }

    /// Reconnect after any loss, under `policy`.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Queue sends while down and re-send unwritten messages after reconnecting.
    pub fn resend(mut self, yes: bool) -> Self {
        self.resend = yes;
        self
    }

    /// Run on the selector catalyst called `name` (default `"selector"`).
    pub fn selector(mut self, name: impl Into<String>) -> Self {
        self.selector = name.into();
        self
    }

    /// Start connecting. The connection handler is an infusion of the caller, `B`, which gets
    /// its events; finishing the caller closes it gracefully.
    ///
    /// # Errors
    ///
    /// Only if the selector cannot be opened; connect failures arrive as events.
    pub fn start<B: TcpEvents<C::Message>>(self, ctx: &mut Ctx<B>) -> io::Result<Conn<C::Message>> {
        let selector = Selector::open(ctx, &self.selector)?;
        let base = ctx.handle();
        // Every connect starts the protocol afresh (a partial message of the last
        // connection must not shape the next one).
        let fresh = self.codec.clone();
        let role = Role::Client(Box::new(ClientRole {
            addr: self.addr,
            reconnect: self.reconnect,
            resend: self.resend,
            fresh: Box::new(move || fresh.clone()),
        }));
        let (conn, _) = spawn_connection(
            ctx,
            &selector,
            Spec {
                protocol: self.codec,
                base,
                config: std::sync::Arc::new(self.config),
                role,
                stream: None,
                queue_while_down: self.resend,
                tls: self.tls,
            },
        )?;
        Ok(conn)
    }
}
