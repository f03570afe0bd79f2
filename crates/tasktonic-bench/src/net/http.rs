//! H1 and H1p: HTTP/1.1 keep-alive `GET /` → `Hello, World!`, 64 connections, load from
//! `wrk` (one thread: on 2 cores it has one, the server the other), against hyper 1.x on a
//! current-thread tokio runtime written as hyper's docs show (one task per connection,
//! `TCP_NODELAY`). H1p pipelines 16 requests per connection (wrk's `pipeline.lua`); hyper is
//! shown with its default and with `pipeline_flush(true)`, its option for that case.
//!
//! wrk saturates its own core first, so requests/s cannot separate two fast servers: the
//! server's CPU per request (from `/proc/PID/stat` over the measured run) can.
//!
//! ```text
//! tasktonic-bench serve-http ours|hyper|hyper_pipeline_flush   # prints `listening on ADDR`
//! ```
//!
//! wrk is Debian's package `wrk` (`apt-get install wrk`), or built from
//! <https://github.com/wg/wrk> (`make`, then put `wrk` on the PATH).

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;

use bytes::Bytes;
use tasktonic_core::{App, Ctx, Tonic, TonicRef};
use tasktonic_net::Selector;
use tasktonic_net::http::{
    HeaderName, HeaderValue, HttpHandler, HttpServer, Method, Request, Responder, Response,
};

use super::Server;

/// An HTTP server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpImpl {
    /// Ours: the handler tonic co-located on the selector (as `examples/http_hello.rs`).
    Ours,
    /// hyper 1.x `http1::Builder` defaults.
    Hyper,
    /// hyper with `pipeline_flush(true)` (aggregates the responses to pipelined requests).
    HyperPipelineFlush,
}

impl HttpImpl {
    pub(crate) const ALL: [HttpImpl; 3] = [
        HttpImpl::Ours,
        HttpImpl::Hyper,
        HttpImpl::HyperPipelineFlush,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            HttpImpl::Ours => "ours_colocated",
            HttpImpl::Hyper => "hyper",
            HttpImpl::HyperPipelineFlush => "hyper_pipeline_flush",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<HttpImpl> {
        match s {
            "ours" => Some(HttpImpl::Ours),
            _ => HttpImpl::ALL.into_iter().find(|i| i.name() == s),
        }
    }
}

/// Run the server `which` in this process (`serve-http`).
pub(crate) fn serve(which: HttpImpl) {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    match which {
        HttpImpl::Ours => {
            let app = App::new("bench-http")
                .log_level(log::LevelFilter::Error)
                .tonic(Launcher { addr });
            if let Err(e) = app.run() {
                eprintln!("serve-http: {e}");
            }
        }
        HttpImpl::Hyper => hyper_server(addr, false),
        HttpImpl::HyperPipelineFlush => hyper_server(addr, true),
    }
}

fn announce(addr: SocketAddr) {
    println!("listening on {addr}");
    std::io::stdout().flush().ok();
}

// ----- ours --------------------------------------------------------------------------------------

struct Hello {
    addr: SocketAddr,
}

impl Tonic for Hello {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        match HttpServer::bind(self.addr)
            .route(Method::GET, "/", Hello::index)
            .start(ctx)
        {
            Ok(listening) => announce(listening.local_addr()),
            Err(e) => {
                eprintln!("serve-http: {e}");
                ctx.stop_app();
            }
        }
    }
}

impl Hello {
    fn index(&mut self, _: &mut Ctx<Self>, _: Request<Bytes>, res: Responder) {
        let mut response = Response::new(Bytes::from_static(b"Hello, World!"));
        response.headers_mut().insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("text/plain"),
        );
        let _ = res.send(response);
    }
}

impl HttpHandler for Hello {}

struct Launcher {
    addr: SocketAddr,
}

impl Tonic for Launcher {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let hello = Hello { addr: self.addr };
        let spawned = match Selector::default_for(ctx) {
            Ok(s) => ctx.infusion(hello).catalyst(s.catalyst()).spawn(),
            Err(_) => return ctx.stop_app(),
        };
        if spawned.is_err() {
            ctx.stop_app();
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        ctx.finish();
    }
}

// ----- hyper -------------------------------------------------------------------------------------

async fn hello(
    _: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<Bytes>>, std::convert::Infallible> {
    let mut response = hyper::Response::new(http_body_util::Full::new(Bytes::from_static(
        b"Hello, World!",
    )));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}

/// hyper's "hello" server (its getting-started guide) on a current-thread runtime.
fn hyper_server(addr: SocketAddr, pipeline_flush: bool) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::bind(addr).await else {
            return;
        };
        if let Ok(a) = listener.local_addr() {
            announce(a);
        }
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .pipeline_flush(pipeline_flush)
                    .serve_connection(io, hyper::service::service_fn(hello))
                    .await;
            });
        }
    });
}

// ----- the load ----------------------------------------------------------------------------------

/// wrk's `pipeline.lua`: every request it sends is 16 pipelined `GET /`.
const PIPELINE_LUA: &str = r#"
init = function(args)
  local r = {}
  for i = 1, 16 do
    r[i] = wrk.format(nil, "/")
  end
  req = table.concat(r)
end
request = function()
  return req
end
"#;

/// What one run measured.
pub(crate) struct HttpFigures {
    pub(crate) requests_per_s: f64,
    /// Server CPU (user + system) per request, in µs.
    pub(crate) cpu_us_per_request: f64,
}

/// Is wrk here? Its absence is an error that says how to get it.
fn wrk_available() -> Result<(), String> {
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => Err(
            "H1 needs wrk: `apt-get install wrk` (Debian, Ubuntu), or build it from \
             https://github.com/wg/wrk and put it on the PATH"
                .into(),
        ),
    }
}

/// One wrk run: (responses, responses per second). Any non-2xx answer or socket error
/// fails the run.
fn wrk(
    addr: SocketAddr,
    seconds: u32,
    pipelined: Option<&std::path::Path>,
) -> Result<(u64, f64), String> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c64", &format!("-d{seconds}s")]);
    if let Some(script) = pipelined {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(format!("http://{addr}/"));
    let out = cmd.output().map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("wrk failed: {text}"));
    }
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        return Err(format!("wrk saw errors:\n{text}"));
    }
    // "  123456 requests in 5.00s, 12.34MB read" and "Requests/sec:  24691.20"
    let requests = text.lines().find_map(|l| {
        let l = l.trim();
        if l.contains(" requests in ") {
            l.split_whitespace().next()?.parse().ok()
        } else {
            None
        }
    });
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:")?.trim().parse().ok());
    match (requests, rate) {
        (Some(n), Some(r)) => Ok((n, r)),
        _ => Err(format!("no request count in wrk's output:\n{text}")),
    }
}

/// The CPU time (user + system) of process `pid` so far, in seconds.
fn cpu_seconds(pid: u32, ticks_per_s: f64) -> Result<f64, String> {
    if !std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
        return Err(format!("no /proc/{pid}/stat"));
    }
    Ok(crate::procfs::cpu_ticks(pid) as f64 / ticks_per_s)
}

/// One sample of H1 (`pipelined`: H1p) against a fresh `which` server.
pub(crate) fn run(which: HttpImpl, pipelined: bool) -> Result<HttpFigures, String> {
    wrk_available()?;
    let script = if pipelined {
        let path = std::env::temp_dir().join(format!(
            "tasktonic-bench-pipeline-{}.lua",
            std::process::id()
        ));
        std::fs::write(&path, PIPELINE_LUA).map_err(|e| format!("{}: {e}", path.display()))?;
        Some(path)
    } else {
        None
    };
    let server = Server::spawn(
        &["serve-http".as_ref(), which.name().as_ref()],
        which.name(),
    )?;
    // A second of warm-up (connections, allocator, caches), then the measured run.
    wrk(server.addr, 1, script.as_deref())?;
    let ticks = crate::procfs::ticks_per_s();
    let before = cpu_seconds(server.pid(), ticks)?;
    let seconds = 5;
    let (requests, rate) = wrk(server.addr, seconds, script.as_deref())?;
    let cpu = cpu_seconds(server.pid(), ticks)? - before;
    if let Some(path) = script {
        let _ = std::fs::remove_file(path);
    }
    if requests == 0 {
        return Err(format!("{}: no request answered", which.name()));
    }
    Ok(HttpFigures {
        requests_per_s: rate,
        cpu_us_per_request: cpu * 1e6 / requests as f64,
    })
}
