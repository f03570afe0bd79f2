//! The HTTP/1.1 server: [`HttpServer`] binds and routes, [`HttpHandler`] is what the user's
//! tonic implements, [`Responder`] answers one request.

mod protocol;
mod responder;
mod router;
mod wire;

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use tasktonic_core::{Ctx, Tonic};

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use self::protocol::fuzz_protocol;
pub use self::responder::{BodyWriter, Responder, Session};
pub use self::wire::ServerWire;

use self::protocol::{ServerProtocol, Settings};
use self::router::Router;
use self::wire::{Incoming, Wire};
use crate::codec::CodecError;
use crate::http::HttpLimits;
use crate::tcp::{CloseReason, Conn, Listening, OnMalformed, TcpConfig, TcpEvents, TcpServer};
#[cfg(feature = "tls")]
use crate::transport::TlsAcceptor;

/// A route's handler: a method of the base tonic (or any function of this shape).
pub type RouteHandler<B> = fn(&mut B, &mut Ctx<B>, Request<Bytes>, Responder);

/// What an HTTP server tells its base tonic, "subclass style": every method has a default
/// body. Requests of one session arrive in order, one at a time (the next once this one is
/// answered), as sparkles on the base's catalyst.
///
/// Implementing it makes the tonic the base of an [`HttpServer`] (the server's connections
/// reach it through [`TcpEvents`], implemented for every `HttpHandler`).
#[allow(unused_variables)] // the defaults ignore their arguments
pub trait HttpHandler: Tonic {
    /// A request no route took (every request, when the server has no routes). Default:
    /// `404 Not Found`.
    fn on_request(&mut self, ctx: &mut Ctx<Self>, request: Request<Bytes>, res: Responder) {
        if res.is_answered() {
            return;
        }
        let mut response = Response::new(Bytes::from_static(b"no such resource\n"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        if let Err(e) = res.send(response) {
            log::debug!("404 for {} not sent: {e}", request.uri());
        }
    }

    /// A streamed body's session can take more pieces after a
    /// [`Backpressure`](crate::http::HttpSendError::Backpressure). Default: does nothing.
    fn on_body_writable(&mut self, ctx: &mut Ctx<Self>, session: Session) {}

    /// A session opened. Default: does nothing.
    fn on_session_opened(&mut self, ctx: &mut Ctx<Self>, session: Session, peer: SocketAddr) {}

    /// A request was refused on the wire (malformed, smuggling, over a limit): it was
    /// answered with its 4xx/5xx and the session closes. Default: does nothing (the refusal
    /// is logged).
    fn on_bad_request(&mut self, ctx: &mut Ctx<Self>, session: Session, error: &CodecError) {}

    /// A session ended. Default: does nothing.
    fn on_session_closed(&mut self, ctx: &mut Ctx<Self>, session: Session, why: &CloseReason) {}
}

/// The bridge from a server's connections to its base: every [`HttpHandler`] is the
/// [`TcpEvents`] base of its connections, which hand it whole requests.
impl<B: HttpHandler> TcpEvents<ServerWire> for B {
    fn on_connected(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<ServerWire>, peer: SocketAddr) {
        self.on_session_opened(ctx, Session(conn.id()), peer);
    }

    fn on_message(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<ServerWire>, msg: ServerWire) {
        let Wire::Request(incoming) = msg.0 else {
            return;
        };
        let Incoming {
            request,
            handler,
            keep_alive,
            head_only,
            answered,
        } = *incoming;
        let res = Responder::new(
            conn.clone(),
            request.version(),
            keep_alive,
            head_only,
            answered,
        );
        match handler {
            None => self.on_request(ctx, request, res),
            Some(h) => match h.downcast_ref::<RouteHandler<B>>() {
                Some(f) => f(self, ctx, request, res),
                None => log::error!("{}: a route's handler is not this base's", conn.id()),
            },
        }
    }

    fn on_writable(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<ServerWire>) {
        self.on_body_writable(ctx, Session(conn.id()));
    }

    fn on_codec_error(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<ServerWire>, e: &CodecError) {
        self.on_bad_request(ctx, Session(conn.id()), e);
    }

    fn on_disconnected(
        &mut self,
        ctx: &mut Ctx<Self>,
        conn: &Conn<ServerWire>,
        why: &CloseReason,
        unsent: Vec<ServerWire>,
    ) {
        if !unsent.is_empty() {
            log::info!(
                "{}: {why}; {} response part(s) not written",
                conn.id(),
                unsent.len()
            );
        }
        self.on_session_closed(ctx, Session(conn.id()), why);
    }
}

/// An HTTP/1.1 server: binds at once, then serves on the selector catalyst; requests reach
/// the calling tonic `B` (an [`HttpHandler`]).
///
/// Keep-alive sessions; pipelined requests answered in order; bodies by `Content-Length`
/// and chunked both ways; limits ([`HttpLimits`]) answered with 431 and 413; requests that
/// could be read two ways (smuggling) refused with 400; an idle timeout; a router by method
/// and path (404, 405 with `Allow`, 501); TLS with [`tls`](HttpServer::tls). See
/// `docs/http.md`.
///
/// # Examples
///
/// A webhook listener: every request is answered `200 OK` at once and still handed over.
///
/// ```
/// use bytes::Bytes;
/// use http::Request;
/// use tasktonic_core::{App, Ctx, Tonic};
/// use tasktonic_net::http::{HttpHandler, HttpServer, Responder};
///
/// struct Hooks;
/// impl Tonic for Hooks {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let addr = "127.0.0.1:0".parse().expect("an address");
///         HttpServer::bind(addr).webhook(true).start(ctx).expect("bound");
///         ctx.finish();
///     }
/// }
/// impl HttpHandler for Hooks {
///     fn on_request(&mut self, _: &mut Ctx<Self>, req: Request<Bytes>, _res: Responder) {
///         println!("{} {} {}", req.method(), req.uri().path(), req.body().len());
///     }
/// }
/// App::new("doc").tonic(Hooks).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HttpServer<B> {
    addr: SocketAddr,
    limits: HttpLimits,
    router: Router,
    webhook: bool,
    config: TcpConfig,
    max_clients: Option<usize>,
    selector: Option<String>,
    #[cfg(feature = "tls")]
    tls: Option<TlsAcceptor>,
    base: PhantomData<fn() -> B>,
}

impl<B> fmt::Debug for HttpServer<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .field("limits", &self.limits)
            .field("webhook", &self.webhook)
            .finish()
    }
}

impl<B: HttpHandler> HttpServer<B> {
    /// A server for `addr` (port 0 picks a free port).
    pub fn bind(addr: SocketAddr) -> HttpServer<B> {
        HttpServer {
            addr,
            limits: HttpLimits::default(),
            router: Router::default(),
            webhook: false,
            config: TcpConfig::default(),
            max_clients: None,
            selector: None,
            #[cfg(feature = "tls")]
            tls: None,
            base: PhantomData,
        }
    }

    /// Route `method` requests for `path` (exact, or a prefix ending in `*`: `/static/*`)
    /// to `handler`. With routes, a request no route takes is answered by the server: 404
    /// for an unknown path, 405 (with `Allow`) for a known path and another method, 501 for
    /// a method outside RFC 9110 and PATCH that no route takes (an extension method such as
    /// `PURGE` can have routes). A `GET` route answers `HEAD` too. Without routes, every
    /// request goes to [`HttpHandler::on_request`].
    pub fn route(mut self, method: Method, path: &str, handler: RouteHandler<B>) -> Self {
        self.router.add(method, path, Arc::new(handler));
        self
    }

    /// Open WebSocket sessions on `path` (exact, or a prefix ending in `*`; `/*` is every
    /// path): a valid opening handshake (RFC 6455 §4.2.1) is offered to
    /// [`WsEvents::on_ws_upgrade`](crate::ws::WsEvents::on_ws_upgrade), answered `101
    /// Switching Protocols`, and the session goes on as WebSocket with the base's
    /// [`WsEvents`](crate::ws::WsEvents). A plain `GET` there is answered `426 Upgrade
    /// Required`, a malformed handshake `400`. See `docs/websocket.md`.
    pub fn websocket(self, path: &str) -> Self
    where
        B: crate::ws::WsEvents,
    {
        self.route(Method::GET, path, crate::ws::upgrade_route::<B>)
    }

    /// Limits on heads, bodies and idle sessions.
    pub fn limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Webhook mode (TaskTonic's `HttpServerHandler`): every whole request is answered
    /// `200 OK` (body `OK`) at once by the server, and still handed to the base, whose
    /// [`Responder`] is then [answered](Responder::is_answered) already.
    pub fn webhook(mut self, yes: bool) -> Self {
        self.webhook = yes;
        self
    }

    /// The connections' options (watermarks, read budget, …). The idle timeout comes from
    /// the limits, and malformed requests always close their session.
    pub fn config(mut self, config: TcpConfig) -> Self {
        self.config = config;
        self
    }

    /// At most `n` sessions at once (more wait in the backlog).
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = Some(n);
        self
    }

    /// Run on the selector catalyst called `name`.
    pub fn selector(mut self, name: impl Into<String>) -> Self {
        self.selector = Some(name.into());
        self
    }

    /// Serve HTTPS with `acceptor`'s certificate (and `wss://` on WebSocket paths).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: &TlsAcceptor) -> Self {
        self.tls = Some(acceptor.clone());
        self
    }

    /// Start serving; requests reach the calling tonic. The listener is its infusion:
    /// finishing it closes the listener and every session gracefully.
    ///
    /// # Errors
    ///
    /// Binding failed, or the selector could not be opened.
    pub fn start(self, ctx: &mut Ctx<B>) -> io::Result<Listening> {
        let mut config = self.config;
        config.on_malformed = OnMalformed::Close;
        config.message_timeout =
            (!self.limits.idle_timeout.is_zero()).then_some(self.limits.idle_timeout);
        let settings = Arc::new(Settings {
            limits: self.limits,
            router: self.router,
            webhook: self.webhook,
        });
        let mut server = TcpServer::bind(self.addr, ServerProtocol::new(settings)).config(config);
        if let Some(n) = self.max_clients {
            server = server.max_clients(n);
        }
        if let Some(name) = self.selector {
            server = server.selector(name);
        }
        #[cfg(feature = "tls")]
        if let Some(acceptor) = &self.tls {
            server = server.tls(acceptor);
        }
        server.start(ctx)
    }
}
