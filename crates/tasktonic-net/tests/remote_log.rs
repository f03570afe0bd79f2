//! The remote log against a plain std viewer on 127.0.0.1: started before the viewer, it
//! delivers once the viewer is up (within its bound, saying what it dropped), sends the session
//! header on every connection, reconnects by itself, and reports what it did.

mod util;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use log::{Level, Log, Record};
use tasktonic_core::{App, Ctx, Tonic};
use tasktonic_net::remote_log::{LogFrame, LogRecord, MAX_TEXT, RemoteLog};
use tasktonic_net::tcp::Reconnect;
use util::LIMIT;

/// A loopback address nothing listens on (yet).
fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Accept one connection, bounded.
fn accept(listener: &TcpListener) -> TcpStream {
    let l = listener.try_clone().expect("clone");
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        tx.send(l.accept().map(|(s, _)| s)).ok();
    });
    let s = rx
        .recv_timeout(LIMIT)
        .expect("the log did not dial in time")
        .expect("accept");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s
}

/// Read one frame, or None at the end of the stream.
fn frame(s: &mut TcpStream) -> Option<LogFrame> {
    let mut h = [0u8; 4];
    match s.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) => panic!("read: {e}"),
    }
    let mut p = vec![0u8; u32::from_be_bytes(h) as usize];
    s.read_exact(&mut p).expect("payload");
    Some(LogFrame::decode(&p).expect("a header or a record"))
}

fn record(s: &mut TcpStream) -> LogRecord {
    match frame(s) {
        Some(LogFrame::Record(r)) => r,
        other => panic!("not a record: {other:?}"),
    }
}

fn info(log: &RemoteLog, text: &str) {
    log.log(
        &Record::builder()
            .args(format_args!("{text}"))
            .level(Level::Info)
            .target("remote_log_test")
            .build(),
    );
}

/// Logs one line from inside a tonic, then finishes.
struct Logs(RemoteLog);

impl Tonic for Logs {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        info(&self.0, "from a tonic");
        ctx.finish();
    }
}

#[test]
fn started_before_the_viewer_it_delivers_within_its_bound_and_reconnects() {
    let addr = free_addr();
    let remote = RemoteLog::builder(addr.to_string())
        .project("remote-log-test")
        .screen(None)
        .buffer(5, 1 << 20)
        .reconnect(Reconnect::fixed(Duration::from_millis(10)))
        .start()
        .expect("started");
    // Nine records while nobody listens: the backlog keeps the last five.
    for i in 0..8 {
        info(&remote, &format!("line {i}\nsecond line"));
    }
    App::new("remote-log-app")
        .tonic_named("logger tonic", Logs(remote.clone()))
        .run()
        .expect("ran");
    // A debug record is above the shipped level: not sent, not counted.
    remote.log(
        &Record::builder()
            .args(format_args!("debug"))
            .level(Level::Debug)
            .build(),
    );

    let viewer = TcpListener::bind(addr).expect("the viewer binds the log's target");
    let mut s = accept(&viewer);
    let Some(LogFrame::Session(header)) = frame(&mut s) else {
        panic!("no session header first")
    };
    assert_eq!(header.project, "remote-log-test");
    assert_eq!(header.pid, std::process::id());
    assert_eq!(header.target, addr.to_string());
    assert!(header.start_new_session);
    let notice = record(&mut s);
    assert_eq!(notice.level, "WARN");
    assert!(notice.text().starts_with("4 records dropped"), "{notice:?}");
    let mut seqs = Vec::new();
    for i in 4..8 {
        let r = record(&mut s);
        assert_eq!(r.log, vec![format!("line {i}"), "second line".to_string()]);
        assert_eq!((r.id, r.tonic.as_deref()), (None, None));
        assert_eq!(r.level, "INFO");
        assert_eq!(r.target, "remote_log_test");
        seqs.push(r.seq);
    }
    let r = record(&mut s);
    assert_eq!(r.text(), "from a tonic");
    assert!(r.id.is_some());
    assert_eq!(r.tonic.as_deref(), Some("logger tonic"));
    seqs.push(r.seq);
    assert_eq!(seqs, vec![5, 6, 7, 8, 9], "the first four were dropped");

    // The viewer goes away and comes back: a new session header, then what follows.
    drop(s);
    let mut s = accept(&viewer);
    assert!(matches!(frame(&mut s), Some(LogFrame::Session(_))));
    info(&remote, "after the viewer came back");
    let r = record(&mut s);
    assert_eq!(r.text(), "after the viewer came back");
    assert_eq!(r.seq, 10);

    // Closing ships what waits, then ends the stream; the report adds up.
    let closer = {
        let remote = remote.clone();
        std::thread::spawn(move || remote.close(LIMIT))
    };
    assert_eq!(frame(&mut s), None, "the stream ends after the close");
    drop(s);
    let report = closer.join().expect("closed");
    assert_eq!(report.dropped, 4);
    assert_eq!(report.undelivered, 0);
    assert_eq!(report.delivered, 7, "a notice, five records, one more");
    // Closed: later records are not shipped, and closing again reports nothing.
    info(&remote, "too late");
    assert_eq!(remote.waiting(), 0);
    assert_eq!(remote.close(LIMIT), Default::default());
}

#[test]
fn a_viewer_that_never_comes_leaves_the_records_undelivered_and_counted() {
    let addr = free_addr();
    let remote = RemoteLog::builder(addr.to_string())
        .screen(None)
        .buffer(100, 1 << 20)
        .start()
        .expect("started");
    for i in 0..3 {
        info(&remote, &format!("{i}"));
    }
    let report = remote.close(Duration::from_millis(200));
    assert_eq!(report.undelivered, 3);
    assert_eq!((report.delivered, report.dropped), (0, 0));
}

#[test]
fn a_long_line_is_cut_and_says_so() {
    let addr = free_addr();
    let viewer = TcpListener::bind(addr).expect("bind");
    let remote = RemoteLog::builder(addr.to_string())
        .screen(None)
        .start()
        .expect("started");
    let long = "é".repeat(MAX_TEXT); // two bytes each: twice the bound
    info(&remote, &long);
    let mut s = accept(&viewer);
    assert!(matches!(frame(&mut s), Some(LogFrame::Session(_))));
    let r = record(&mut s);
    let text = r.text();
    assert!(text.len() < MAX_TEXT + 100, "{}", text.len());
    assert!(text.ends_with(&format!(" …[{} more bytes cut]", MAX_TEXT)));
    let closer = std::thread::spawn(move || remote.close(LIMIT));
    assert_eq!(frame(&mut s), None);
    drop(s);
    assert_eq!(closer.join().expect("closed").delivered, 1);
}

#[test]
fn a_target_that_does_not_resolve_is_an_error() {
    let e = RemoteLog::builder("not an address")
        .start()
        .expect_err("refused");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
}
