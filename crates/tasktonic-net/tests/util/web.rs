//! HTTP test harness: a site tonic with routes that answer now, later, from another tonic,
//! streamed or not at all; and a raw HTTP/1.1 response reader for std sockets.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use http::{Method, Request, Response, StatusCode};
use tasktonic_core::{App, Ctx, Handle, Tonic};
use tasktonic_net::Selector;
use tasktonic_net::codec::CodecError;
use tasktonic_net::http::{
    BodyWriter, HttpHandler, HttpLimits, HttpSendError, HttpServer, Responder, Session,
};
use tasktonic_net::tcp::{CloseReason, TcpConfig};

use super::{LIMIT, Running, local, run_app};

/// What the site reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hev {
    Request(String, String, usize),
    Opened(Session),
    Closed(Session, String),
    Bad(Session, String),
    Writable(Session),
    Streamed(usize),
}

/// How a test site is set up.
#[derive(Clone)]
pub struct SiteOptions {
    /// The site on the selector catalyst (answers go out in the sparkle that read the
    /// request) instead of the app's main catalyst.
    pub colocated: bool,
    pub limits: HttpLimits,
    pub webhook: bool,
    pub config: TcpConfig,
    #[cfg(feature = "tls")]
    pub tls: Option<tasktonic_net::TlsAcceptor>,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            colocated: false,
            limits: HttpLimits::default().max_head(4096).max_body(1 << 20),
            webhook: false,
            config: TcpConfig::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// Routes: `GET /` hello; `POST /echo` and `PUT /echo` the body back; `GET /later` from a
/// later sparkle; `GET /elsewhere` from another tonic on another catalyst; `GET /stream`
/// 1,024 pieces of 1 KiB with back-pressure; `GET /big` 1 MiB at once; `GET /drop` never
/// answered.
pub struct Site {
    options: Option<SiteOptions>,
    out: Sender<Hev>,
    addr: Sender<(SocketAddr, Handle<Site>)>,
    worker: Option<Handle<Worker>>,
    streams: Vec<(BodyWriter, usize)>,
}

/// Answers what the site hands it, on its own catalyst.
pub struct Worker;

impl Tonic for Worker {
    type State = ();
}

pub const STREAM_PIECES: usize = 1024;

/// The byte every byte of streamed piece `i` is.
pub fn piece_byte(i: usize) -> u8 {
    b"abcdefghijklmnopqrstuvwxyz"[i % 26]
}
pub const PIECE: usize = 1024;
/// The body of `GET /big`, sent whole.
pub const BIG: usize = 1024 * 1024;

impl Tonic for Site {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let o = self.options.take().expect("options");
        let worker = ctx
            .infusion(Worker)
            .catalyst("http-worker")
            .spawn()
            .expect("a worker");
        self.worker = Some(worker);
        let mut server = HttpServer::bind(local())
            .limits(o.limits)
            .webhook(o.webhook)
            .config(o.config);
        #[cfg(feature = "tls")]
        if let Some(acceptor) = &o.tls {
            server = server.tls(acceptor);
        }
        if !o.webhook {
            server = server
                .route(Method::GET, "/", Site::hello)
                .route(Method::POST, "/echo", Site::echo)
                .route(Method::PUT, "/echo", Site::echo)
                .route(Method::GET, "/later", Site::later)
                .route(Method::GET, "/elsewhere", Site::elsewhere)
                .route(Method::GET, "/stream", Site::stream)
                .route(Method::GET, "/big", Site::big)
                .route(Method::GET, "/drop", Site::drop_it);
        }
        let listening = server.start(ctx).expect("bound");
        self.addr.send((listening.local_addr(), ctx.handle())).ok();
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r
}

impl Site {
    fn report(&self, req: &Request<Bytes>) {
        self.out
            .send(Hev::Request(
                req.method().to_string(),
                req.uri().path().to_string(),
                req.body().len(),
            ))
            .ok();
    }

    fn hello(&mut self, _: &mut Ctx<Self>, req: Request<Bytes>, res: Responder) {
        self.report(&req);
        res.send(text(StatusCode::OK, "Hello")).expect("sent");
    }

    fn echo(&mut self, _: &mut Ctx<Self>, req: Request<Bytes>, res: Responder) {
        self.report(&req);
        res.send(text(StatusCode::OK, req.into_body()))
            .expect("sent");
    }

    fn later(&mut self, ctx: &mut Ctx<Self>, req: Request<Bytes>, res: Responder) {
        self.report(&req);
        ctx.handle()
            .sparkle(move |_, _| res.send(text(StatusCode::OK, "later")).expect("sent"))
            .ok();
    }

    fn elsewhere(&mut self, _: &mut Ctx<Self>, req: Request<Bytes>, res: Responder) {
        self.report(&req);
        if let Some(w) = &self.worker {
            w.sparkle(move |_, wctx| {
                let body = format!("from {}", wctx.catalyst());
                res.send(text(StatusCode::OK, body)).expect("sent");
            })
            .ok();
        }
    }

    fn stream(&mut self, ctx: &mut Ctx<Self>, req: Request<Bytes>, res: Responder) {
        self.report(&req);
        let writer = res.stream(Response::new(())).expect("a stream");
        self.streams.push((writer, 0));
        let i = self.streams.len() - 1;
        self.pump(ctx, i);
    }

    fn big(&mut self, _: &mut Ctx<Self>, req: Request<Bytes>, res: Responder) {
        self.report(&req);
        // The client may be gone by now (a test that hangs up unanswered): not an error.
        let _ = res.send(text(StatusCode::OK, vec![b'b'; BIG]));
    }

    fn drop_it(&mut self, _: &mut Ctx<Self>, req: Request<Bytes>, res: Responder) {
        self.report(&req);
        drop(res);
    }

    fn pump(&mut self, _: &mut Ctx<Self>, i: usize) {
        let (writer, sent) = &mut self.streams[i];
        while *sent < STREAM_PIECES {
            let piece = vec![piece_byte(*sent); PIECE];
            match writer.write(piece) {
                Ok(()) => *sent += 1,
                Err(HttpSendError::Backpressure(_)) => return,
                Err(e) => panic!("stream failed: {e}"),
            }
        }
        let (writer, sent) = self.streams.swap_remove(i);
        writer.finish().expect("finished");
        self.out.send(Hev::Streamed(sent)).ok();
    }
}

impl HttpHandler for Site {
    fn on_request(&mut self, _: &mut Ctx<Self>, req: Request<Bytes>, res: Responder) {
        // Webhook mode: answered already.
        assert!(res.is_answered());
        self.report(&req);
    }
    fn on_body_writable(&mut self, ctx: &mut Ctx<Self>, session: Session) {
        self.out.send(Hev::Writable(session)).ok();
        if let Some(i) = self
            .streams
            .iter()
            .position(|(w, _)| w.session() == session)
        {
            self.pump(ctx, i);
        }
    }
    fn on_session_opened(&mut self, _: &mut Ctx<Self>, session: Session, _: SocketAddr) {
        self.out.send(Hev::Opened(session)).ok();
    }
    fn on_bad_request(&mut self, _: &mut Ctx<Self>, session: Session, error: &CodecError) {
        self.out.send(Hev::Bad(session, error.to_string())).ok();
    }
    fn on_session_closed(&mut self, _: &mut Ctx<Self>, session: Session, why: &CloseReason) {
        self.out.send(Hev::Closed(session, why.to_string())).ok();
    }
}

/// Serve a site.
pub fn site(options: SiteOptions) -> Running<Hev, Site> {
    let (out, events) = unbounded();
    let (addr_tx, addr) = unbounded();
    let site = Site {
        options: Some(options),
        out,
        addr: addr_tx,
        worker: None,
        streams: Vec::new(),
    };
    if site.options.as_ref().is_some_and(|o| o.colocated) {
        let launcher = Launcher { site: Some(site) };
        return run_app(App::new("http-test").tonic(launcher), addr, events);
    }
    run_app(App::new("http-test").tonic(site), addr, events)
}

/// Places the site on the selector catalyst.
struct Launcher {
    site: Option<Site>,
}

impl Tonic for Launcher {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let selector = Selector::default_for(ctx).expect("a selector");
        if let Some(site) = self.site.take() {
            ctx.infusion(site)
                .catalyst(selector.catalyst())
                .spawn()
                .expect("the site spawned");
        }
    }
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads responses off a std socket (bounded by its read timeout).
pub struct Reader {
    r: BufReader<TcpStream>,
}

impl Reader {
    pub fn new(s: &TcpStream) -> Reader {
        Reader {
            r: BufReader::new(s.try_clone().expect("clone")),
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("a line");
        assert!(line.ends_with("\r\n"), "line without CRLF: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// The next response (to a request that was not `HEAD`). Interim 1xx are returned too.
    pub fn response(&mut self) -> Raw {
        self.read(false)
    }

    /// The next response to a `HEAD` request.
    pub fn head_response(&mut self) -> Raw {
        self.read(true)
    }

    fn read(&mut self, head: bool) -> Raw {
        let status_line = self.line();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line:?}");
        let status: u16 = parts.next().and_then(|s| s.parse().ok()).expect("a status");
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').expect("a field");
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut raw = Raw {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status < 200 || status == 204 || status == 304 {
            return raw;
        }
        if raw.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line(), 16).expect("a chunk size");
                if size == 0 {
                    assert_eq!(self.line(), "");
                    break;
                }
                let start = raw.body.len();
                raw.body.resize(start + size, 0);
                self.r.read_exact(&mut raw.body[start..]).expect("chunk");
                assert_eq!(self.line(), "");
            }
        } else if let Some(n) = raw.header("content-length") {
            let n: usize = n.parse().expect("a length");
            raw.body.resize(n, 0);
            self.r.read_exact(&mut raw.body).expect("body");
        } else {
            self.r.read_to_end(&mut raw.body).expect("body to EOF");
        }
        raw
    }

    /// True if the server closed the connection (EOF before any byte).
    pub fn at_eof(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.r.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            // A reset after our unread bytes also ends the session.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
            Err(e) => panic!("no EOF within {LIMIT:?}: {e}"),
        }
    }
}
