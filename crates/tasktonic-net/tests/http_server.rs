//! The HTTP/1.1 server over real sockets: keep-alive, pipelining in order, bodies both
//! ways, limits, smuggling refusals, the idle timeout, streaming with back-pressure, the
//! router's refusals, webhook mode — and real clients (curl, Python) against it.

mod util;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use tasktonic_net::http::HttpLimits;
use tasktonic_net::tcp::TcpConfig;
use util::web::{BIG, Hev, PIECE, Reader, STREAM_PIECES, SiteOptions, piece_byte, site};
use util::{connect, write_all};

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One exchange on a fresh connection: the response and the reader (to look for EOF).
fn exchange(addr: SocketAddr, request: &[u8]) -> (util::web::Raw, Reader, TcpStream) {
    let mut s = connect(addr);
    write_all(&mut s, request);
    let mut r = Reader::new(&s);
    (r.response(), r, s)
}

/// The request is refused with `status`, then the session closes.
fn refused(addr: SocketAddr, request: &[u8], status: u16) {
    let (res, mut r, _s) = exchange(addr, request);
    assert_eq!(
        res.status,
        status,
        "for {:?}: {:?}",
        String::from_utf8_lossy(request),
        String::from_utf8_lossy(&res.body)
    );
    assert_eq!(res.header("connection"), Some("close"));
    assert!(r.at_eof(), "the session stays open after a {status}");
}

#[test]
fn keep_alive_serves_many_requests_on_one_session() {
    let server = site(SiteOptions::default());
    let mut s = connect(server.addr);
    let mut r = Reader::new(&s);
    for _ in 0..3 {
        write_all(&mut s, get("/").as_bytes());
        let res = r.response();
        assert_eq!(res.status, 200);
        assert_eq!(res.body, b"Hello");
        assert_eq!(res.header("content-length"), Some("5"));
        assert!(res.header("date").is_some());
        assert_eq!(res.header("connection"), None);
    }
    let opened = server.until(|e| matches!(e, Hev::Opened(_)));
    drop((s, r));
    let Hev::Opened(session) = opened else {
        unreachable!()
    };
    server.until(|e| matches!(e, Hev::Closed(s, _) if *s == session));
    // Exactly one session served the three requests.
    assert!(
        !server
            .events
            .try_iter()
            .any(|e| matches!(e, Hev::Opened(_)))
    );
    server.stop().expect("clean stop");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    pipelined(false);
}

#[test]
fn pipelined_requests_to_a_colocated_site_are_answered_in_order() {
    // Answers made in the sparkle that read the request go out together with the next
    // ones' (one write): the protocol's own answers (a 404, a 100 Continue) must still
    // take their places.
    pipelined(true);
}

fn pipelined(colocated: bool) {
    let server = site(SiteOptions {
        colocated,
        ..SiteOptions::default()
    });
    let mut s = connect(server.addr);
    // One write: a request answered in a later sparkle, one answered at once, one the
    // router refuses, one with a 100 Continue, one answered from another catalyst, and two
    // answered at once — the answers must come in request order.
    let all = [
        get("/later"),
        get("/"),
        get("/nowhere"),
        "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nping"
            .to_string(),
        get("/elsewhere"),
        get("/"),
        post("/echo", "last"),
    ]
    .concat();
    // Twice over, the second run split at every 7th byte.
    write_all(&mut s, all.as_bytes());
    let mut r = Reader::new(&s);
    let expect = |r: &mut Reader| {
        assert_eq!(r.response().body, b"later");
        assert_eq!(r.response().body, b"Hello");
        assert_eq!(r.response().status, 404);
        assert_eq!(r.response().status, 100);
        assert_eq!(r.response().body, b"ping");
        assert_eq!(r.response().body, b"from http-worker");
        assert_eq!(r.response().body, b"Hello");
        assert_eq!(r.response().body, b"last");
    };
    expect(&mut r);
    for piece in all.as_bytes().chunks(7) {
        write_all(&mut s, piece);
    }
    expect(&mut r);
    let paths: Vec<String> = (0..12)
        .map(|_| match server.until(|e| matches!(e, Hev::Request(..))) {
            Hev::Request(_, path, _) => path,
            _ => unreachable!(),
        })
        .collect();
    let once = ["/later", "/", "/echo", "/elsewhere", "/", "/echo"];
    assert_eq!(paths, [once, once].concat());
    hang_up(&[&s]);
    server.stop().expect("clean stop");
}

#[test]
fn big_pipelined_answers_keep_the_protocols_own_answers_in_their_places() {
    for colocated in [false, true] {
        big_pipelined(colocated);
    }
}

/// Answers bigger than the socket buffers (short writes), with the router's refusals
/// between them: every answer in its place.
fn big_pipelined(colocated: bool) {
    let server = site(SiteOptions {
        colocated,
        ..SiteOptions::default()
    });
    let mut s = connect(server.addr);
    let all = [
        get("/big"),
        get("/big"),
        get("/big"),
        get("/big"),
        get("/nowhere"),
        get("/"),
        get("/stream"),
        get("/nowhere"),
        get("/big"),
        get("/"),
    ]
    .concat();
    write_all(&mut s, all.as_bytes());
    let mut r = Reader::new(&s);
    for i in 0..4 {
        let res = r.response();
        assert_eq!((res.status, res.body.len()), (200, BIG), "answer {i}");
    }
    assert_eq!(r.response().status, 404, "colocated: {colocated}");
    assert_eq!(r.response().body, b"Hello");
    let streamed = r.response();
    assert_eq!(streamed.body.len(), STREAM_PIECES * PIECE);
    assert_eq!(r.response().status, 404, "colocated: {colocated}");
    assert_eq!(r.response().body.len(), BIG);
    assert_eq!(r.response().body, b"Hello");
    hang_up(&[&s]);
    server.stop().expect("clean stop");
}

#[test]
fn a_client_that_does_not_read_cannot_make_the_server_buffer_its_pipeline() {
    for colocated in [false, true] {
        unread_pipeline(colocated);
    }
}

/// 2,000 pipelined requests for 1 MiB each (2 GB of answers) from a client that reads
/// nothing: the server stops taking requests once the answers back up, and another
/// client is served meanwhile.
fn unread_pipeline(colocated: bool) {
    let server = site(SiteOptions {
        colocated,
        ..SiteOptions::default()
    });
    let hog = connect(server.addr);
    hog.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("a timeout");
    let request = get("/big");
    let mut writer = hog.try_clone().expect("clone");
    let mut written = 0;
    for _ in 0..2000 {
        if writer.write_all(request.as_bytes()).is_err() {
            break; // the server stopped reading: our send buffer filled up
        }
        written += 1;
    }
    // Another session is served while the hog's answers wait.
    let (res, _, other) = exchange(server.addr, get("/").as_bytes());
    assert_eq!(res.body, b"Hello");
    let handed_over = server
        .events
        .try_iter()
        .filter(|e| matches!(e, Hev::Request(_, p, _) if p == "/big"))
        .count();
    assert!(
        handed_over <= 64,
        "{handed_over} of {written} requests taken from a client that reads nothing \
         (colocated: {colocated})"
    );
    // Closed with unread answers: a reset, and the server drops the session at once.
    drop((hog, writer));
    hang_up(&[&other]);
    server.stop().expect("clean stop");
}

#[test]
fn pipelined_requests_before_a_half_close_are_all_answered() {
    for colocated in [false, true] {
        let server = site(SiteOptions {
            colocated,
            ..SiteOptions::default()
        });
        let mut s = connect(server.addr);
        write_all(
            &mut s,
            [get("/later"), get("/"), get("/")].concat().as_bytes(),
        );
        s.shutdown(std::net::Shutdown::Write).expect("half-close");
        let mut r = Reader::new(&s);
        assert_eq!(r.response().body, b"later");
        assert_eq!(r.response().body, b"Hello", "colocated: {colocated}");
        assert_eq!(r.response().body, b"Hello", "colocated: {colocated}");
        assert!(r.at_eof());
        server.stop().expect("clean stop");
    }
}

#[test]
fn chunked_request_bodies_are_read_whole() {
    let server = site(SiteOptions::default());
    let mut s = connect(server.addr);
    let mut r = Reader::new(&s);
    // Split across writes in awkward places, with an extension and a trailer.
    let parts: [&[u8]; 6] = [
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5",
        b";name=value\r\nhel",
        b"lo\r\n1",
        b"0\r\n, chunked world!",
        b"\r\n0\r\nX-Trailer: ok\r\n",
        b"\r\n",
    ];
    for p in parts {
        write_all(&mut s, p);
    }
    let res = r.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.body, b"hello, chunked world!");
    // The session goes on.
    write_all(&mut s, get("/").as_bytes());
    assert_eq!(r.response().body, b"Hello");
    hang_up(&[&s]);
    server.stop().expect("clean stop");
}

#[test]
fn requests_that_could_be_read_two_ways_are_refused() {
    let server = site(SiteOptions::default());
    // A session that is served throughout: the refusals harm no one else.
    let mut good = connect(server.addr);
    let mut good_reader = Reader::new(&good);
    let cases: &[(&str, &str)] = &[
        (
            "both Content-Length and Transfer-Encoding",
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "differing Content-Length",
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "differing Content-Length in one field",
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!",
        ),
        (
            "a signed Content-Length",
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello",
        ),
        (
            "a chunk-size line ended by a bare LF",
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        ),
        (
            "a chunk size past any length cap",
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000005\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a chunk size that is not hex",
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "chunk data not followed by CRLF",
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        ),
        (
            "an obsolete line fold",
            "GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
        ),
        (
            "chunked that is not the final coding",
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        ),
        (
            "two Host fields",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ),
        ("no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n"),
        (
            "Transfer-Encoding in HTTP/1.0",
            "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "a space before the colon",
            "GET / HTTP/1.1\r\nHost : t\r\n\r\n",
        ),
        ("a head that is not HTTP", "HELLO\r\n\r\n"),
    ];
    for (what, request) in cases {
        let (res, mut r, _s) = exchange(server.addr, request.as_bytes());
        assert_eq!(
            res.status,
            400,
            "{what}: {:?}",
            String::from_utf8_lossy(&res.body)
        );
        assert_eq!(res.header("connection"), Some("close"), "{what}");
        assert!(r.at_eof(), "{what}: the session stays open");
        write_all(&mut good, get("/").as_bytes());
        assert_eq!(good_reader.response().body, b"Hello", "after {what}");
    }
    // Each refusal was reported to the base as a bad request, and nothing was handed over
    // but the good session's requests.
    let events: Vec<Hev> = server.events.try_iter().collect();
    let bad = events.iter().filter(|e| matches!(e, Hev::Bad(..))).count();
    assert_eq!(bad, cases.len(), "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Hev::Request(_, p, _) if p == "/echo"))
    );
    // Identical duplicate lengths are one length, as RFC 9112 allows.
    let (res, _, s1) = exchange(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, b"hello".as_slice())
    );
    hang_up(&[&good, &s1]);
    server.stop().expect("clean stop");
}

#[test]
fn heads_over_the_limits_get_431_and_a_close() {
    let limits = HttpLimits::default().max_head(1024).max_headers(8);
    let server = site(SiteOptions {
        limits,
        ..SiteOptions::default()
    });
    // A head longer than 1 KiB: refused as soon as the limit is passed, before its end.
    let long = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Long: {}\r\n",
        "a".repeat(2000)
    );
    refused(server.addr, long.as_bytes(), 431);
    // Nine fields where eight are allowed.
    let mut many = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..8 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    refused(server.addr, many.as_bytes(), 431);
    // Exactly eight is fine.
    let mut eight = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..7 {
        eight.push_str(&format!("X-{i}: v\r\n"));
    }
    eight.push_str("\r\n");
    let (res, _, s1) = exchange(server.addr, eight.as_bytes());
    assert_eq!(res.status, 200);
    hang_up(&[&s1]);
    server.stop().expect("clean stop");
}

#[test]
fn bodies_over_the_limit_get_413_and_a_close() {
    let server = site(SiteOptions {
        limits: HttpLimits::default().max_body(1000),
        ..SiteOptions::default()
    });
    // Announced too long: refused from the head, the body is never read.
    refused(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n",
        413,
    );
    // Chunked past the limit: refused when the sum passes it.
    let mut chunked =
        String::from("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..3 {
        chunked.push_str(&format!("1f4\r\n{}\r\n", "b".repeat(500)));
    }
    refused(server.addr, chunked.as_bytes(), 413);
    // At the limit: served.
    let (res, _, s1) = exchange(server.addr, post("/echo", &"c".repeat(1000)).as_bytes());
    assert_eq!((res.status, res.body.len()), (200, 1000));
    hang_up(&[&s1]);
    server.stop().expect("clean stop");
}

#[test]
fn a_session_that_completes_no_request_is_closed_after_the_idle_timeout() {
    let server = site(SiteOptions {
        limits: HttpLimits::default().idle_timeout(Duration::from_millis(200)),
        ..SiteOptions::default()
    });
    // Slowloris: half a head, then silence.
    let mut slow = connect(server.addr);
    write_all(&mut slow, b"GET / HTTP/1.1\r\nHost: t\r\n");
    let mut slow_reader = Reader::new(&slow);
    // Others are served meanwhile.
    let (res, _, s1) = exchange(server.addr, get("/").as_bytes());
    assert_eq!(res.status, 200);
    assert!(slow_reader.at_eof(), "the slow session was not closed");
    let closed = server.until(|e| matches!(e, Hev::Closed(..)));
    let Hev::Closed(_, why) = closed else {
        unreachable!()
    };
    assert!(why.contains("no complete message"), "{why}");
    // A session that finished a request and then idles is closed the same way.
    let mut idle = connect(server.addr);
    write_all(&mut idle, get("/").as_bytes());
    let mut idle_reader = Reader::new(&idle);
    assert_eq!(idle_reader.response().status, 200);
    assert!(idle_reader.at_eof());
    hang_up(&[&slow, &s1, &idle]);
    server.stop().expect("clean stop");
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_the_idle_timeout() {
    let server = site(SiteOptions {
        limits: HttpLimits::default().idle_timeout(Duration::from_millis(300)),
        ..SiteOptions::default()
    });
    // 32 MiB of answers asked for, none read: more than the sockets' buffers hold.
    let mut s = connect(server.addr);
    write_all(&mut s, get("/big").repeat(32).as_bytes());
    let closed = server.until(|e| matches!(e, Hev::Closed(..)));
    let Hev::Closed(_, why) = closed else {
        unreachable!()
    };
    assert!(why.contains("took nothing"), "{why}");
    drop(s);
    server.stop().expect("clean stop");
}

#[test]
fn big_bodies_stream_with_back_pressure() {
    let config = TcpConfig {
        // In messages: 16 pieces of 1 KiB queued at most.
        high_watermark: 16,
        low_watermark: 4,
        ..TcpConfig::default()
    };
    let server = site(SiteOptions {
        config,
        ..SiteOptions::default()
    });
    let mut s = connect(server.addr);
    write_all(&mut s, get("/stream").as_bytes());
    let mut r = Reader::new(&s);
    let res = r.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert_eq!(res.body.len(), STREAM_PIECES * PIECE);
    for (i, piece) in res.body.chunks(PIECE).enumerate() {
        assert!(piece.iter().all(|b| *b == piece_byte(i)), "piece {i}");
    }
    server.until(|e| matches!(e, Hev::Writable(_)));
    assert_eq!(
        server.until(|e| matches!(e, Hev::Streamed(_))),
        Hev::Streamed(STREAM_PIECES)
    );
    // The session is kept alive after a streamed body.
    write_all(&mut s, get("/").as_bytes());
    assert_eq!(r.response().body, b"Hello");
    hang_up(&[&s]);
    server.stop().expect("clean stop");
}

#[test]
fn a_request_dropped_unanswered_gets_500() {
    let server = site(SiteOptions::default());
    let mut s = connect(server.addr);
    write_all(&mut s, [get("/drop"), get("/")].concat().as_bytes());
    let mut r = Reader::new(&s);
    assert_eq!(r.response().status, 500);
    // The session goes on to the next request.
    assert_eq!(r.response().body, b"Hello");
    hang_up(&[&s]);
    server.stop().expect("clean stop");
}

#[test]
fn head_requests_get_the_head_of_get() {
    let server = site(SiteOptions::default());
    let mut s = connect(server.addr);
    write_all(
        &mut s,
        ["HEAD / HTTP/1.1\r\nHost: t\r\n\r\n".to_string(), get("/")]
            .concat()
            .as_bytes(),
    );
    let mut r = Reader::new(&s);
    let head = r.head_response();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5"));
    // No body was sent: the next bytes are the next response.
    assert_eq!(r.response().body, b"Hello");
    hang_up(&[&s]);
    server.stop().expect("clean stop");
}

#[test]
fn the_router_refuses_what_it_does_not_know() {
    let server = site(SiteOptions::default());
    let mut s = connect(server.addr);
    let mut r = Reader::new(&s);
    write_all(&mut s, get("/nowhere").as_bytes());
    assert_eq!(r.response().status, 404);
    write_all(&mut s, b"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n");
    let res = r.response();
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
    write_all(&mut s, b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.response().status, 501);
    // None of them closed the session, none reached the base.
    write_all(&mut s, get("/").as_bytes());
    assert_eq!(r.response().body, b"Hello");
    let requests: Vec<Hev> = server
        .events
        .try_iter()
        .filter(|e| matches!(e, Hev::Request(..)))
        .collect();
    assert!(requests.len() <= 1, "{requests:?}");
    hang_up(&[&s]);
    server.stop().expect("clean stop");
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = site(SiteOptions::default());
    let mut s = connect(server.addr);
    write_all(
        &mut s,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    );
    let mut r = Reader::new(&s);
    assert_eq!(r.response().status, 100);
    write_all(&mut s, b"data");
    let res = r.response();
    assert_eq!((res.status, res.body.as_slice()), (200, b"data".as_slice()));
    // Over the limit: refused at once, without waiting for the body.
    let server = site(SiteOptions {
        limits: HttpLimits::default().max_body(10),
        ..SiteOptions::default()
    });
    refused(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n",
        413,
    );
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    // A linger longer than the tests' time bound: closing sessions must see the clients'
    // end (read while a request is in progress), not wait the linger out.
    let server = site(SiteOptions {
        config: TcpConfig {
            close_linger: Duration::from_secs(3600),
            ..TcpConfig::default()
        },
        ..SiteOptions::default()
    });
    let (res, mut r, s1) = exchange(server.addr, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, b"Hello".as_slice())
    );
    assert!(r.at_eof());
    let mut s = connect(server.addr);
    let mut r = Reader::new(&s);
    for _ in 0..2 {
        write_all(&mut s, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let res = r.response();
        assert_eq!(res.header("connection"), Some("keep-alive"));
        assert_eq!(res.body, b"Hello");
    }
    // HTTP/1.1 with Connection: close is answered, then closed.
    write_all(
        &mut s,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.response().header("connection"), Some("close"));
    assert!(r.at_eof());
    hang_up(&[&s1, &s]);
    server.stop().expect("clean stop");
}

#[test]
fn webhook_mode_answers_at_once_and_hands_the_request_over() {
    let server = site(SiteOptions {
        webhook: true,
        ..SiteOptions::default()
    });
    let mut s = connect(server.addr);
    let mut r = Reader::new(&s);
    write_all(&mut s, post("/hooks/github", "{\"a\":1}").as_bytes());
    let res = r.response();
    assert_eq!((res.status, res.body.as_slice()), (200, b"OK".as_slice()));
    assert_eq!(
        server.until(|e| matches!(e, Hev::Request(..))),
        Hev::Request("POST".into(), "/hooks/github".into(), 7)
    );
    // Chunked, on the same session.
    write_all(
        &mut s,
        b"PUT /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(r.response().status, 200);
    assert_eq!(
        server.until(|e| matches!(e, Hev::Request(..))),
        Hev::Request("PUT".into(), "/x".into(), 3)
    );
    hang_up(&[&s]);
    server.stop().expect("clean stop");
}

/// Is `tool` on this machine? In CI it must be: a missing tool fails there.
fn have(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing in CI: .ci/run installs it"
        );
        eprintln!("SKIPPED: `{tool}` is not installed; this test needs it (CI installs it)");
    }
    ok
}

#[test]
fn curl_reuses_the_session_and_uploads_chunked() {
    if !have("curl", &["--version"]) {
        return;
    }
    let server = site(SiteOptions::default());
    let base = format!("http://{}", server.addr);
    // Two URLs in one curl: one session.
    let out = Command::new("curl")
        .args(["-sS", "--http1.1", "--max-time", "20"])
        .arg(format!("{base}/"))
        .arg(format!("{base}/later"))
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"Hellolater");
    server.until(|e| matches!(e, Hev::Opened(_)));
    server.until(|e| matches!(e, Hev::Request(_, p, _) if p == "/later"));
    assert!(
        !server
            .events
            .try_iter()
            .any(|e| matches!(e, Hev::Opened(_)))
    );
    // A chunked upload from stdin.
    let body = "x".repeat(100_000);
    let mut curl = Command::new("curl")
        .args(["-sS", "--http1.1", "--max-time", "20"])
        .args(["-H", "Transfer-Encoding: chunked", "--data-binary", "@-"])
        .arg(format!("{base}/echo"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl runs");
    curl.stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("upload");
    let out = curl.wait_with_output().expect("curl ends");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.len(), body.len());
    server.stop().expect("clean stop");
}

const PYTHON_CLIENT: &str = r#"
import http.client, sys
host, port = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection(host, port, timeout=20)
for i in range(3):
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"Hello", r.status
c.request("POST", "/echo", body=iter([b"abc", b"def"]), encode_chunked=True)
r = c.getresponse()
assert r.read() == b"abcdef"
c.request("GET", "/stream")
r = c.getresponse()
assert len(r.read()) == 1024 * 1024
c.request("GET", "/nowhere")
r = c.getresponse()
assert r.status == 404, r.status
r.read()
print("ok", c.sock.getsockname()[1])
try:
    import requests
except ImportError:
    print("no requests")
    sys.exit(0)
s = requests.Session()
for i in range(3):
    r = s.post("http://%s:%d/echo" % (host, port), data=b"z" * 70000, timeout=20)
    assert r.status_code == 200 and r.content == b"z" * 70000
r = s.delete("http://%s:%d/" % (host, port), timeout=20)
assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD", r.headers
print("requests ok")
"#;

#[test]
fn python_clients_are_served() {
    if !have("python3", &["--version"]) {
        return;
    }
    let server = site(SiteOptions::default());
    let out = Command::new("python3")
        .args(["-c", PYTHON_CLIENT])
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok "), "{stdout}");
    if stdout.contains("no requests") {
        assert!(
            std::env::var_os("CI").is_none(),
            "python requests is missing in CI"
        );
        eprintln!("SKIPPED: the `requests` part (pip install requests)");
    } else {
        assert!(stdout.contains("requests ok"), "{stdout}");
    }
    server.stop().expect("clean stop");
}

/// Hang up the clients (the server then closes their sessions at once instead of lingering
/// for their end at stop).
fn hang_up(streams: &[&TcpStream]) {
    for s in streams {
        s.shutdown(std::net::Shutdown::Write).ok();
    }
}
