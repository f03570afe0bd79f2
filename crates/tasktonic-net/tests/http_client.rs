//! The HTTP/1.1 client over real sockets: against our server, Python's `http.server` and
//! hand-written std servers that answer with every body framing, stall, drop, or lie;
//! keep-alive reuse, timeouts, retries and HTTPS.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use tasktonic_core::{App, Ctx, Stopper, Tonic};
use tasktonic_net::http::{
    HeaderName, HeaderValue, HttpClient, HttpClientEvents, HttpLimits, HttpRequest, HttpResult,
    Method, RequestId, Requester,
};
use tasktonic_net::tcp::{OnMalformed, TcpConfig};
use util::LIMIT;
use util::web::{Hev, SiteOptions, site};

/// Starts a client and reports every result.
struct Fetcher {
    client: Option<HttpClient>,
    requester: Sender<Requester>,
    results: Sender<(RequestId, HttpResult)>,
}

impl Tonic for Fetcher {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let client = self.client.take().expect("a client");
        let requester = client.start(ctx).expect("started");
        self.requester.send(requester).ok();
    }
}

impl HttpClientEvents for Fetcher {
    fn on_http_result(&mut self, _: &mut Ctx<Self>, id: RequestId, result: HttpResult) {
        self.results.send((id, result)).ok();
    }
}

/// A client app on its own thread.
struct Client {
    requester: Requester,
    results: Receiver<(RequestId, HttpResult)>,
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
}

impl Client {
    fn start(client: HttpClient) -> Client {
        let (req_tx, req_rx) = bounded(1);
        let (results_tx, results) = unbounded();
        let app = App::new("http-client-test").tonic(Fetcher {
            client: Some(client),
            requester: req_tx,
            results: results_tx,
        });
        let stopper = app.stopper();
        let thread = std::thread::spawn(move || {
            app.run().expect("the client app ran");
        });
        let requester = req_rx.recv_timeout(LIMIT).expect("the client started");
        Client {
            requester,
            results,
            stopper,
            thread: Some(thread),
        }
    }

    /// Make `request` and wait for its result.
    fn fetch(&self, request: HttpRequest) -> HttpResult {
        let id = self.requester.request(request);
        let (got, result) = self.results.recv_timeout(LIMIT).expect("a result in time");
        assert_eq!(got, id);
        result
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

fn body(result: &HttpResult) -> String {
    let r = result
        .response()
        .unwrap_or_else(|| panic!("no response: {result:?}"));
    String::from_utf8_lossy(r.body()).into_owned()
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[test]
fn requests_to_our_server_reuse_one_connection() {
    let server = site(SiteOptions::default());
    let client = Client::start(HttpClient::new());
    let r = client.fetch(HttpRequest::get(&url(server.addr, "/")).expect("a URL"));
    assert!(r.is_success(), "{r:?}");
    assert_eq!(body(&r), "Hello");
    let r = client.fetch(HttpRequest::post(&url(server.addr, "/echo"), "posted").expect("a URL"));
    assert_eq!(body(&r), "posted");
    let r = client.fetch(HttpRequest::put(&url(server.addr, "/echo"), "put").expect("a URL"));
    assert_eq!(body(&r), "put");
    // A refusal is an HTTP error, with its response.
    let r = client.fetch(HttpRequest::delete(&url(server.addr, "/")).expect("a URL"));
    let HttpResult::HttpError(res) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "GET, HEAD");
    let r = client.fetch(HttpRequest::get(&url(server.addr, "/nowhere")).expect("a URL"));
    assert!(
        matches!(&r, HttpResult::HttpError(res) if res.status() == 404),
        "{r:?}"
    );
    // A streamed (chunked) megabyte, and a HEAD (no body).
    let r = client.fetch(HttpRequest::get(&url(server.addr, "/stream")).expect("a URL"));
    assert_eq!(r.response().expect("a response").body().len(), 1024 * 1024);
    let r = client.fetch(HttpRequest::new(Method::HEAD, &url(server.addr, "/")).expect("a URL"));
    let res = r.response().expect("a response");
    assert_eq!((res.status().as_u16(), res.body().len()), (200, 0));
    // Seven requests one after the other: one session.
    let opened = server
        .events
        .try_iter()
        .filter(|e| matches!(e, Hev::Opened(_)))
        .count();
    assert_eq!(opened, 1);
    drop(client);
    server.stop().expect("clean stop");
}

#[test]
fn concurrent_requests_use_at_most_max_connections() {
    let server = site(SiteOptions::default());
    let client = Client::start(HttpClient::new().max_connections(2));
    let ids: Vec<RequestId> = (0..20)
        .map(|i| {
            let req = HttpRequest::post(&url(server.addr, "/echo"), format!("n{i}"))
                .expect("a URL")
                .header(
                    HeaderName::from_static("x-test"),
                    HeaderValue::from_static("yes"),
                );
            client.requester.request(req)
        })
        .collect();
    let mut seen = 0;
    while seen < ids.len() {
        let (id, r) = client.results.recv_timeout(LIMIT).expect("a result");
        let i = ids.iter().position(|x| *x == id).expect("one of ours");
        assert_eq!(body(&r), format!("n{i}"));
        seen += 1;
    }
    let opened = server
        .events
        .try_iter()
        .filter(|e| matches!(e, Hev::Opened(_)))
        .count();
    assert!((1..=2).contains(&opened), "{opened} sessions");
    drop(client);
    server.stop().expect("clean stop");
}

/// A std server on its own thread that runs `serve` for each of the first `n` connections,
/// counting them.
struct Raw {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

fn raw_server(n: usize, serve: impl Fn(usize, TcpStream) + Send + 'static) -> Raw {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for i in 0..n {
            let Ok((s, _)) = listener.accept() else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            s.set_read_timeout(Some(LIMIT)).ok();
            serve(i, s);
        }
    });
    Raw { addr, accepted }
}

/// Read one request head (and a body by Content-Length).
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        if line == "\r\n" {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((first.trim_end().to_string(), body))
}

/// Answer each request on the connection with `response`, until the client closes.
fn answer_with(response: &'static [u8]) -> impl Fn(usize, TcpStream) + Send + 'static {
    move |_, s| {
        let mut w = s.try_clone().expect("clone");
        let mut r = BufReader::new(s);
        while read_request(&mut r).is_some() {
            if w.write_all(response).is_err() {
                return;
            }
        }
    }
}

#[test]
fn every_body_framing_is_read() {
    let client = Client::start(HttpClient::new());
    // Chunked, with an extension and a trailer, after an interim 100.
    let chunked = raw_server(1, answer_with(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n",
    ));
    let r = client.fetch(HttpRequest::get(&url(chunked.addr, "/")).expect("a URL"));
    assert_eq!(body(&r), "Wikipedia in \r\n\r\nchunks.");
    // Close-delimited.
    let close = raw_server(1, |_, s| {
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        read_request(&mut r);
        let mut w = s;
        w.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            .ok();
    });
    let r = client.fetch(HttpRequest::get(&url(close.addr, "/")).expect("a URL"));
    assert_eq!(body(&r), "until the end");
    // 204 and 304 have no body even with a length.
    let empty = raw_server(1, |_, s| {
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut w = s;
        for answer in [
            &b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"[..],
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext",
        ] {
            if read_request(&mut r).is_none() || w.write_all(answer).is_err() {
                return;
            }
        }
    });
    for (status, text) in [(204, ""), (304, ""), (200, "next")] {
        let r = client.fetch(HttpRequest::get(&url(empty.addr, "/")).expect("a URL"));
        let res = r.response().expect("a response");
        assert_eq!((res.status().as_u16(), body(&r).as_str()), (status, text));
    }
    // All three on one connection: the bodiless ones left nothing behind.
    assert_eq!(empty.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn a_close_delimited_response_retires_its_connection() {
    let client = Client::start(HttpClient::new());
    // The first connection answers with a body the close ends; the second answers a POST.
    let server = raw_server(2, |i, s| {
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut w = s;
        if read_request(&mut r).is_none() {
            return;
        }
        let answer: &[u8] = if i == 0 {
            b"HTTP/1.1 200 OK\r\n\r\nuntil the close"
        } else {
            b"HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\nposted!"
        };
        w.write_all(answer).ok();
    });
    let r = client.fetch(HttpRequest::get(&url(server.addr, "/")).expect("a URL"));
    assert_eq!(body(&r), "until the close");
    // Not idempotent: sent on the closed connection it would fail, not be retried.
    let r = client.fetch(HttpRequest::post(&url(server.addr, "/"), "x").expect("a URL"));
    assert_eq!(body(&r), "posted!");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

/// Found by the fuzz targets: an oversized head is refused before a byte of it is consumed,
/// so a client told to skip malformed frames re-read it forever (a spinning selector). The
/// HTTP client always closes instead: the request fails, and the server that keeps the
/// connection open is not left with a busy peer.
#[test]
fn an_oversized_head_fails_even_when_told_to_skip_malformed_frames() {
    let config = TcpConfig {
        on_malformed: OnMalformed::Skip,
        ..TcpConfig::default()
    };
    let client = Client::start(
        HttpClient::new()
            .limits(HttpLimits::default().max_head(256))
            .config(config),
    );
    let (gone_tx, gone) = bounded(1);
    let server = raw_server(1, move |_, s| {
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        read_request(&mut r);
        let mut w = s;
        w.write_all(format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(1000)).as_bytes())
            .ok();
        // Keep the connection open: only the client can end it; report when it does.
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).ok();
        gone_tx.send(()).ok();
    });
    let r = client.fetch(HttpRequest::get(&url(server.addr, "/")).expect("a URL"));
    assert!(matches!(r, HttpResult::Failed(_)), "{r:?}");
    gone.recv_timeout(LIMIT)
        .expect("the client closed the connection");
}

#[test]
fn bad_responses_fail_and_are_never_truncated_into_success() {
    let client = Client::start(HttpClient::new().limits(HttpLimits::default().max_body(1000)));
    let cases: &[(&str, &'static [u8])] = &[
        (
            "a body cut short",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nshort",
        ),
        ("a head that is not HTTP", b"SSH-2.0-OpenSSH\r\n\r\n"),
        (
            "both lengths",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "a body over the limit",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n",
        ),
        (
            "a chunked body cut short",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ),
        (
            "a bare LF in a chunk line",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        ),
    ];
    for (what, response) in cases {
        let server = raw_server(1, move |_, s| {
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            read_request(&mut r);
            let mut w = s;
            w.write_all(response).ok();
            // Then hang up.
        });
        let r = client.fetch(HttpRequest::get(&url(server.addr, "/")).expect("a URL"));
        assert!(matches!(r, HttpResult::Failed(_)), "{what}: {r:?}");
    }
}

#[test]
fn a_server_that_never_answers_times_out_and_retries_are_made() {
    let client = Client::start(HttpClient::new());
    // Accepts, reads, never answers.
    let (hold_tx, hold_rx) = unbounded::<TcpStream>();
    let silent = raw_server(3, move |_, s| {
        hold_tx.send(s).ok();
    });
    let req = HttpRequest::get(&url(silent.addr, "/"))
        .expect("a URL")
        .timeout(Duration::from_millis(200));
    assert!(matches!(client.fetch(req), HttpResult::Timeout));
    assert_eq!(silent.accepted.load(Ordering::SeqCst), 1);
    // Silent on the first connection, answers on the second: one retry succeeds.
    let second = raw_server(2, |i, s| {
        if i == 0 {
            // Read the request and keep silent until the client gives up.
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            read_request(&mut r);
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).ok();
        } else {
            answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")(i, s);
        }
    });
    let req = HttpRequest::get(&url(second.addr, "/"))
        .expect("a URL")
        .timeout(Duration::from_millis(200))
        .retries(1);
    let r = client.fetch(req);
    assert_eq!(body(&r), "ok");
    assert_eq!(second.accepted.load(Ordering::SeqCst), 2);
    drop(hold_rx);
}

#[test]
fn refused_connections_and_bad_names_fail() {
    let client = Client::start(HttpClient::new());
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let r = client.fetch(HttpRequest::get(&format!("http://127.0.0.1:{port}/")).expect("a URL"));
    let HttpResult::Failed(why) = &r else {
        panic!("{r:?}")
    };
    assert!(why.to_lowercase().contains("refused"), "{why}");
    // A name that cannot resolve (the reserved .invalid domain).
    let r = client.fetch(HttpRequest::get("http://no-such-host.invalid/").expect("a URL"));
    assert!(matches!(r, HttpResult::Failed(_)), "{r:?}");
    // Not a URL the client can use.
    assert!(HttpRequest::get("ftp://127.0.0.1/").is_err());
    assert!(HttpRequest::get("/relative").is_err());
}

#[test]
fn a_kept_alive_connection_the_server_closed_is_replaced_for_idempotent_requests() {
    let client = Client::start(HttpClient::new());
    // Each connection answers one request (keep-alive promised), then closes silently.
    let server = raw_server(2, |_, s| {
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        if read_request(&mut r).is_some() {
            let mut w = s;
            w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
                .ok();
        }
    });
    assert_eq!(
        body(&client.fetch(HttpRequest::get(&url(server.addr, "/")).expect("a URL"))),
        "one"
    );
    assert_eq!(
        body(&client.fetch(HttpRequest::get(&url(server.addr, "/")).expect("a URL"))),
        "one"
    );
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

/// `python3 -m http.server` serving a folder; killed on drop.
struct PyServer {
    child: Child,
    addr: SocketAddr,
}

impl Drop for PyServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn python_server(dir: &std::path::Path) -> Option<PyServer> {
    let Ok(mut child) = Command::new("python3")
        .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        assert!(std::env::var_os("CI").is_none(), "python3 is missing in CI");
        eprintln!("SKIPPED: python3 is not installed; this test needs it (CI installs it)");
        return None;
    };
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("a line from http.server");
    // "Serving HTTP on 127.0.0.1 port 41231 (http://127.0.0.1:41231/) ..."
    let port: u16 = line
        .split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Some(PyServer {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

#[test]
fn python_http_server_is_a_peer() {
    let dir = std::env::temp_dir().join(format!("tasktonic-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), &big).expect("a file");
    std::fs::write(dir.join("hello.txt"), "hello from python\n").expect("a file");
    let Some(py) = python_server(&dir) else {
        return;
    };
    let client = Client::start(HttpClient::new());
    let r = client.fetch(HttpRequest::get(&url(py.addr, "/hello.txt")).expect("a URL"));
    assert_eq!(body(&r), "hello from python\n");
    let r = client.fetch(HttpRequest::get(&url(py.addr, "/big.bin")).expect("a URL"));
    assert_eq!(
        r.response().expect("a response").body().as_ref(),
        big.as_slice()
    );
    let r = client.fetch(HttpRequest::get(&url(py.addr, "/missing")).expect("a URL"));
    assert!(
        matches!(&r, HttpResult::HttpError(res) if res.status() == 404),
        "{r:?}"
    );
    // http.server answers POST with 501.
    let r = client.fetch(HttpRequest::post(&url(py.addr, "/"), "x").expect("a URL"));
    assert!(
        matches!(&r, HttpResult::HttpError(res) if res.status() == 501),
        "{r:?}"
    );
    drop(client);
    drop(py);
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "tls")]
#[test]
fn https_through_the_tls_layer() {
    use tasktonic_net::{TlsAcceptor, TlsConnector};
    let pki = util::pki::Pki::new("http CA");
    let acceptor =
        TlsAcceptor::from_pem_files(pki.cert_file(), pki.key_file()).expect("certificate");
    let server = site(SiteOptions {
        tls: Some(acceptor),
        ..SiteOptions::default()
    });
    let connector = TlsConnector::with_roots_pem_file(pki.ca_file()).expect("roots");
    let client = Client::start(HttpClient::new().tls(connector));
    let https = format!("https://localhost:{}", server.addr.port());
    let r = client.fetch(HttpRequest::get(&format!("{https}/")).expect("a URL"));
    assert_eq!(body(&r), "Hello");
    let r = client.fetch(HttpRequest::post(&format!("{https}/echo"), "over tls").expect("a URL"));
    assert_eq!(body(&r), "over tls");
    let r = client.fetch(HttpRequest::get(&format!("{https}/stream")).expect("a URL"));
    assert_eq!(r.response().expect("a response").body().len(), 1024 * 1024);
    // A client that does not trust the CA fails, and says why.
    let untrusting = Client::start(HttpClient::new());
    let r = untrusting.fetch(HttpRequest::get(&format!("{https}/")).expect("a URL"));
    let HttpResult::Failed(why) = &r else {
        panic!("{r:?}")
    };
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    drop((client, untrusting));
    server.stop().expect("clean stop");
}
