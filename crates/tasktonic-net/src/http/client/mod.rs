//! The HTTP/1.1 client: [`HttpClient`] starts a client tonic (a pool of keep-alive
//! connections per origin) for the calling tonic, which gets every [`HttpResult`] through
//! [`HttpClientEvents`].

mod pool;
mod protocol;
mod request;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tasktonic_core::{Ctx, Tonic};

pub use self::protocol::ClientWire;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use self::protocol::fuzz_protocol;
pub use self::request::{HttpRequest, HttpResult, RequestId};

use self::pool::Pool;
use crate::http::HttpLimits;
use crate::tcp::TcpConfig;
#[cfg(feature = "tls")]
use crate::transport::TlsConnector;

/// What an HTTP client tells the tonic that started it. Every method has a default body.
#[allow(unused_variables)] // the default ignores its arguments
pub trait HttpClientEvents: Tonic {
    /// A request ended: a response (success or HTTP error), a timeout, or a failure.
    /// Exactly one result per request. Default: does nothing.
    fn on_http_result(&mut self, ctx: &mut Ctx<Self>, id: RequestId, result: HttpResult) {}
}

/// An HTTP/1.1 client for the calling tonic: requests go out on keep-alive connections
/// (reused per origin, up to [`max_connections`](HttpClient::max_connections) each, one
/// request at a time on each), `https://` through the TLS layer; every request ends in
/// exactly one [`HttpResult`] — success, HTTP error, timeout or failure.
///
/// A request on a kept-alive connection that the server closed meanwhile is made again on a
/// new one when its method is idempotent; beyond that, [`retries`](HttpClient::retries)
/// (default 0) says how often a timeout or failure is tried again.
///
/// # Examples
///
/// ```no_run
/// use tasktonic_core::{Ctx, Tonic};
/// use tasktonic_net::http::{HttpClient, HttpClientEvents, HttpRequest, HttpResult, RequestId};
///
/// struct Fetch;
/// impl Tonic for Fetch {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let http = HttpClient::new().start(ctx).expect("a selector");
///         let req = HttpRequest::get("http://127.0.0.1:8080/").expect("a URL");
///         http.request(req);
///     }
/// }
/// impl HttpClientEvents for Fetch {
///     fn on_http_result(&mut self, ctx: &mut Ctx<Self>, _: RequestId, result: HttpResult) {
///         if let Some(r) = result.response() {
///             println!("status {}", r.status().as_u16());
///         }
///         ctx.finish();
///     }
/// }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) max_connections: usize,
    pub(crate) limits: HttpLimits,
    pub(crate) config: TcpConfig,
    pub(crate) selector: Option<String>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsConnector>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl HttpClient {
    /// A client with a 30 s timeout, no retries, 4 connections per origin, the default
    /// limits (responses are read under the same [`HttpLimits`] as requests on a server),
    /// and the bundled web roots for `https://`.
    pub fn new() -> HttpClient {
        HttpClient {
            timeout: Duration::from_secs(30),
            retries: 0,
            max_connections: 4,
            limits: HttpLimits::default(),
            config: TcpConfig::default(),
            selector: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The timeout of every request, unless the request has its own: from submission to the
    /// whole response. A retry after a timeout gets a fresh one; a retry after a failure
    /// (refused, reset) runs on under the same one.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a timed-out or failed request is tried again, unless it says.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Connections per origin (scheme, host, port). Default 4.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Limits on responses (head, body).
    pub fn limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Options of the connections (connect timeout, …). `on_malformed` is always `Close`: a
    /// response that breaks HTTP leaves no boundary to skip to.
    pub fn config(mut self, config: TcpConfig) -> Self {
        self.config = config;
        self
    }

    /// Run the connections on the selector catalyst called `name`.
    pub fn selector(mut self, name: impl Into<String>) -> Self {
        self.selector = Some(name.into());
        self
    }

    /// Verify `https://` servers with `connector` (its roots) instead of the web roots.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, connector: TlsConnector) -> Self {
        self.tls = Some(connector);
        self
    }

    /// Start the client tonic, an infusion of the caller (finishing the caller closes its
    /// connections); results reach the caller through [`HttpClientEvents`].
    ///
    /// # Errors
    ///
    /// The client tonic could not be spawned.
    pub fn start<B: HttpClientEvents>(self, ctx: &mut Ctx<B>) -> io::Result<Requester> {
        let base = ctx.handle();
        let pool = Pool::new(self, base);
        let handle = ctx
            .infusion(pool)
            .spawn()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let submit: Submit = Arc::new(move |id, req| {
            if handle
                .sparkle_named("http request", move |p, ctx| p.submit(ctx, id, req))
                .is_err()
            {
                log::warn!("{id}: the HTTP client is gone; request dropped");
            }
        });
        Ok(Requester {
            submit,
            next: Arc::new(AtomicU64::new(1)),
        })
    }
}

type Submit = Arc<dyn Fn(RequestId, HttpRequest) + Send + Sync>;

/// Makes requests through a started [`HttpClient`]: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Requester {
    submit: Submit,
    next: Arc<AtomicU64>,
}

impl fmt::Debug for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requester").finish_non_exhaustive()
    }
}

impl Requester {
    /// Make `request`; its [`HttpResult`] comes with the returned id. (Once the client's
    /// base has finished, the client is gone with it: a request then is dropped with a
    /// warning, as no tonic is left to take its result.)
    pub fn request(&self, request: HttpRequest) -> RequestId {
        let id = RequestId(self.next.fetch_add(1, Ordering::Relaxed));
        (self.submit)(id, request);
        id
    }
}
