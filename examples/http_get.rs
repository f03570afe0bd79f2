//! Make one HTTP request and print the answer: `status N` on the first line, then the body.
//!
//! ```text
//! cargo run --example http_get -- [-X METHOD] [-d BODY] [--tls-ca CA.pem] [--timeout SECS] URL
//! ```
//!
//! Exits 0 on a 2xx status, 1 on any other status (an HTTP error), 2 on a timeout or a
//! failure (the reason on stderr).

use std::io::Write;
use std::time::Duration;

use tasktonic::net::TlsConnector;
use tasktonic::net::http::{
    HttpClient, HttpClientEvents, HttpRequest, HttpResult, Method, RequestId,
};
use tasktonic::prelude::*;

struct Get {
    request: Option<HttpRequest>,
    tls: Option<TlsConnector>,
    timeout: Duration,
    exit: std::sync::Arc<std::sync::atomic::AtomicI32>,
}

impl Tonic for Get {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let mut client = HttpClient::new().timeout(self.timeout);
        if let Some(connector) = self.tls.take() {
            client = client.tls(connector);
        }
        match client.start(ctx) {
            Ok(http) => {
                if let Some(req) = self.request.take() {
                    http.request(req);
                }
            }
            Err(e) => {
                eprintln!("http_get: {e}");
                self.exit.store(2, std::sync::atomic::Ordering::SeqCst);
                ctx.finish();
            }
        }
    }
}

impl HttpClientEvents for Get {
    fn on_http_result(&mut self, ctx: &mut Ctx<Self>, _: RequestId, result: HttpResult) {
        let code = match &result {
            HttpResult::Success(r) | HttpResult::HttpError(r) => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "status {}", r.status().as_u16()).ok();
                out.write_all(r.body()).ok();
                out.flush().ok();
                if r.status().is_success() { 0 } else { 1 }
            }
            HttpResult::Timeout => {
                eprintln!("http_get: timed out after {:?}", self.timeout);
                2
            }
            HttpResult::Failed(why) => {
                eprintln!("http_get: {why}");
                2
            }
        };
        self.exit.store(code, std::sync::atomic::Ordering::SeqCst);
        ctx.finish();
    }
}

struct Options {
    method: Method,
    body: Option<String>,
    ca: Option<String>,
    timeout: Duration,
    url: String,
}

fn parse() -> Result<Options, String> {
    let mut method = None;
    let mut body = None;
    let mut ca = None;
    let mut timeout = Duration::from_secs(30);
    let mut url = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-X" => {
                method =
                    Some(Method::from_bytes(value()?.as_bytes()).map_err(|e| format!("-X: {e}"))?)
            }
            "-d" => body = Some(value()?),
            "--tls-ca" => ca = Some(value()?),
            "--timeout" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--timeout: {e}"))?;
                timeout =
                    Duration::try_from_secs_f64(secs).map_err(|e| format!("--timeout: {e}"))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: http_get [-X METHOD] [-d BODY] [--tls-ca CA.pem] [--timeout SECS] URL"
                        .into(),
                );
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag:?}")),
            _ if url.is_some() => return Err(format!("a second URL {arg:?}")),
            _ => url = Some(arg.clone()),
        }
    }
    let url = url.ok_or("a URL is needed")?;
    // As curl: a body makes it a POST unless -X says otherwise.
    let method = method.unwrap_or(if body.is_some() {
        Method::POST
    } else {
        Method::GET
    });
    Ok(Options {
        method,
        body,
        ca,
        timeout,
        url,
    })
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("http_get: {e}");
            std::process::exit(2);
        }
    };
    let request = match HttpRequest::new(o.method, &o.url) {
        Ok(r) => r.body(o.body.unwrap_or_default()).timeout(o.timeout),
        Err(e) => {
            eprintln!("http_get: {e}");
            std::process::exit(2);
        }
    };
    let tls = match &o.ca {
        Some(path) => match TlsConnector::with_roots_pem_file(path) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("http_get: {e}");
                std::process::exit(2);
            }
        },
        None => None,
    };
    let exit = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(2));
    let get = Get {
        request: Some(request),
        tls,
        timeout: o.timeout,
        exit: exit.clone(),
    };
    if let Err(e) = App::new("http_get").tonic_named("get", get).run() {
        eprintln!("http_get: {e}");
        std::process::exit(2);
    }
    std::process::exit(exit.load(std::sync::atomic::Ordering::SeqCst));
}
