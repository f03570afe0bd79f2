//! HTTP/1.1 as tonics: a server ([`HttpServer`]) whose requests reach the user's tonic as
//! sparkles, and a client ([`HttpClient`]) whose results come back the same way.
//!
//! Both are protocols on the connection layers (`docs/networking.md`, "Layers"): heads are
//! parsed by `httparse`, messages are the `http` crate's types, and TLS is the transport
//! under them. Limits, the smuggling rules and the model are in `docs/http.md`.
//!
//! # Examples
//!
//! ```
//! use bytes::Bytes;
//! use http::{Method, Request, Response};
//! use tasktonic_core::{App, Ctx, Tonic};
//! use tasktonic_net::http::{HttpHandler, HttpServer, Responder};
//!
//! struct Hello;
//! impl Tonic for Hello {
//!     type State = ();
//!     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
//!         let addr = "127.0.0.1:0".parse().expect("an address");
//!         let listening = HttpServer::bind(addr)
//!             .route(Method::GET, "/", Hello::index)
//!             .start(ctx)
//!             .expect("bound");
//!         println!("listening on {}", listening.local_addr());
//!         ctx.finish();
//!     }
//! }
//! impl Hello {
//!     fn index(&mut self, _: &mut Ctx<Self>, _req: Request<Bytes>, res: Responder) {
//!         res.send(Response::new("Hello, World!")).ok();
//!     }
//! }
//! impl HttpHandler for Hello {}
//! App::new("doc").tonic(Hello).run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod date;
mod error;
mod framing;
pub(crate) mod head;
mod limits;
mod server;

pub use self::client::{
    ClientWire, HttpClient, HttpClientEvents, HttpRequest, HttpResult, RequestId, Requester,
};
pub use self::error::{HttpError, HttpSendError};
pub use self::limits::HttpLimits;
pub use self::server::{
    BodyWriter, HttpHandler, HttpServer, Responder, RouteHandler, ServerWire, Session,
};

pub use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use self::client::fuzz_protocol as fuzz_client_protocol;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use self::framing::fuzz_chunked;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use self::server::fuzz_protocol as fuzz_server_protocol;
