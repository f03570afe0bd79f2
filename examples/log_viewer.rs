//! A viewer for remote logs (TaskTonic's Visual Logger port, without pickle): listens for
//! senders (`tasktonic::net::remote_log::RemoteLog`, e.g. `hello_world --log-to`) and prints
//! their records.
//!
//! ```text
//! cargo run --example log_viewer -- --port P
//! ```
//!
//! Prints `listening on 127.0.0.1:P` once ready, then one line per record on stdout:
//!
//! ```text
//! PROJECT[PID] #ID NAME LEVEL: TEXT
//! ```
//!
//! with `-` for `#ID NAME` when no tonic was running, and a record's lines joined by ` | `.
//! Sessions starting and ending, and broken streams (a frame that is not a header or a
//! record closes that sender's connection only), are reported on stderr. Exits 0 on SIGINT or
//! SIGTERM. See `docs/interop.md` ("TaskTonic's remote log") for the frames.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use tasktonic::net::codec::{CodecError, LengthDelimited};
use tasktonic::net::remote_log::{LogFrame, LogRecord, SessionHeader};
use tasktonic::net::{CloseReason, Conn, ConnId, TcpEvents, TcpServer};
use tasktonic::prelude::*;

/// A frame is a header or one record: a MiB is plenty (a record's text is cut at 64 KiB).
const MAX_FRAME: usize = 1024 * 1024;

struct Viewer {
    port: u16,
    /// The session each sender's connection announced.
    sessions: HashMap<ConnId, SessionHeader>,
}

impl Tonic for Viewer {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        match TcpServer::bind(addr, LengthDelimited::new().max_frame(MAX_FRAME)).start(ctx) {
            Ok(listening) => {
                println!("listening on {}", listening.local_addr());
                std::io::stdout().flush().ok();
            }
            Err(e) => {
                eprintln!("log_viewer: cannot listen on {addr}: {e}");
                ctx.stop_app();
            }
        }
    }
}

impl Viewer {
    fn print(&self, conn: ConnId, record: &LogRecord) {
        let (project, pid) = match self.sessions.get(&conn) {
            Some(s) => (s.project.as_str(), s.pid),
            None => ("?", 0),
        };
        let tonic = match (record.id, record.tonic.as_deref()) {
            (Some(id), Some(name)) => format!("#{id} {name}"),
            (Some(id), None) => format!("#{id}"),
            _ => "-".to_string(),
        };
        let line = format!(
            "{project}[{pid}] {tonic} {}: {}",
            record.level,
            record.log.join(" | ")
        );
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", one_line(&line));
    }
}

/// What a sender wrote, on one line: control characters escaped (`\n`), so that no record
/// can end its line and forge another.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

impl TcpEvents<Bytes> for Viewer {
    fn on_message(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<Bytes>, frame: Bytes) {
        match LogFrame::decode(&frame) {
            Ok(LogFrame::Session(header)) => {
                eprintln!(
                    "log_viewer: session {}[{}] from {:?} (logger version {})",
                    header.project,
                    header.pid,
                    conn.peer(),
                    header.logger_version
                );
                self.sessions.insert(conn.id(), header);
            }
            Ok(LogFrame::Record(record)) => self.print(conn.id(), &record),
            Err(e) => {
                eprintln!(
                    "log_viewer: {:?} sent a frame that is not a log record ({e}); closing it",
                    conn.peer()
                );
                conn.abort();
            }
        }
    }

    fn on_codec_error(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<Bytes>, error: &CodecError) {
        eprintln!("log_viewer: {:?}: {error}; closing it", conn.peer());
    }

    fn on_disconnected(
        &mut self,
        _ctx: &mut Ctx<Self>,
        conn: &Conn<Bytes>,
        why: &CloseReason,
        _unsent: Vec<Bytes>,
    ) {
        if let Some(s) = self.sessions.remove(&conn.id()) {
            eprintln!("log_viewer: session {}[{}] ended: {why}", s.project, s.pid);
        }
    }
}

fn main() {
    let port = match support::port_only("log_viewer") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("log_viewer: {e}");
            std::process::exit(2);
        }
    };
    let viewer = Viewer {
        port,
        sessions: HashMap::new(),
    };
    let app = App::new("log_viewer").tonic_named(
        "launcher",
        support::Launcher::new("log_viewer", viewer, true),
    );
    support::stop_on_signals(&app, "log_viewer");
    if let Err(e) = app.run() {
        eprintln!("log_viewer: {e}");
        std::process::exit(1);
    }
}
