//! A remote log: every record logged through the `log` facade, with the tonic that logged it,
//! streamed to a viewer over TCP — TaskTonic's `ttIpLogService`, without pickle.
//!
//! Frames are `[u32 BE length][MessagePack map]` ([`wire`]): a [`SessionHeader`] first on
//! every connection, then one [`LogRecord`] per frame. The sender dials the viewer and
//! reconnects by itself; while it is not connected, records wait in a backlog bounded in
//! records and in bytes ([`RemoteLogBuilder::buffer`]); at a bound the oldest go, they are
//! counted, and the viewer is told how many (a `WARN` record) when the stream resumes — and
//! every record carries a sequence number, so a gap is visible. [`RemoteLog::close`] ships
//! what waits (for a bounded time) and reports what was delivered, dropped and left.
//!
//! The sender is a small app of its own (a shipping tonic on its own selector thread), so it
//! works before, beside and after the application's `App::run`, and what its own threads log
//! is shown on the screen, never shipped (it would feed itself). See `docs/interop.md` ("The
//! remote log") for the bytes and `examples/log_viewer.rs` for a viewer.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use tasktonic_net::remote_log::RemoteLog;
//!
//! let remote = RemoteLog::builder("127.0.0.1:1767")
//!     .project("my_app")
//!     .level(log::LevelFilter::Info)
//!     .start()?;
//! remote.clone().install()?; // the process's logger: `log::info!` lines go to the viewer
//! log::info!("hello, viewer");
//! // … `App::run()` …
//! let report = remote.close(Duration::from_secs(5));
//! eprintln!("{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buffer;
mod shipper;
pub mod wire;

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use log::{LevelFilter, Log, Metadata, Record};
use parking_lot::Mutex;
use tasktonic_core::{App, Handle};

use self::buffer::Backlog;
use self::shipper::{ON_LOG_THREAD, Shipper, Starter};
pub use self::wire::{LogFrame, LogRecord, SessionHeader};
use crate::tcp::Reconnect;

/// Text longer than this (in bytes) is cut, and says so: one record never grows a frame
/// without bound.
pub const MAX_TEXT: usize = 64 * 1024;

/// What a remote log did, from [`RemoteLog::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogReport {
    /// Records written to the viewer's connections (including notices of drops).
    pub delivered: u64,
    /// Records dropped because the backlog was full while the viewer was away.
    pub dropped: u64,
    /// Records still waiting when the log closed (the viewer was not reachable in time).
    pub undelivered: u64,
}

impl fmt::Display for LogReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "remote log: {} delivered, {} dropped (backlog full), {} undelivered",
            self.delivered, self.dropped, self.undelivered
        )
    }
}

/// Configures a [`RemoteLog`].
#[derive(Debug)]
pub struct RemoteLogBuilder {
    target: String,
    project: Option<String>,
    level: LevelFilter,
    screen: Option<LevelFilter>,
    max_records: usize,
    max_bytes: usize,
    reconnect: Reconnect,
}

impl RemoteLogBuilder {
    /// The project name in the session header. Default: the program's file name.
    pub fn project(mut self, name: impl Into<String>) -> Self {
        self.project = Some(name.into());
        self
    }

    /// The most detailed level shipped. Default `Info`.
    pub fn level(mut self, level: LevelFilter) -> Self {
        self.level = level;
        self
    }

    /// Also print records up to this level on stderr, formatted as the app's own logger does
    /// (`None`: print nothing). Default `Warn`, as `App`'s logger.
    pub fn screen(mut self, level: Option<LevelFilter>) -> Self {
        self.screen = level;
        self
    }

    /// The backlog's bounds: at most `records` records and `bytes` bytes wait for the viewer;
    /// beyond either, the oldest are dropped and counted. Default 10 000 records, 8 MiB.
    pub fn buffer(mut self, records: usize, bytes: usize) -> Self {
        self.max_records = records;
        self.max_bytes = bytes;
        self
    }

    /// How the sender redials a viewer that is not there or went away. Default: every 50 ms
    /// doubling to 2 s, forever.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = policy;
        self
    }

    /// Resolve the target and start the sender (its thread dials at once).
    ///
    /// # Errors
    ///
    /// The target does not resolve to an address, or the sender's thread cannot start.
    pub fn start(self) -> io::Result<RemoteLog> {
        let addr: SocketAddr = self.target.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} resolves to no address", self.target),
            )
        })?;
        let project = self.project.unwrap_or_else(|| {
            std::env::args()
                .next()
                .and_then(|p| {
                    std::path::Path::new(&p)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "tasktonic".into())
        });
        let header = rmp_serde::to_vec_named(&SessionHeader::new(&project, &self.target))
            .map_err(io::Error::other)?;
        let shared = Arc::new(Shared {
            backlog: Mutex::new(Backlog::new(self.max_records, self.max_bytes)),
            shipper: OnceLock::new(),
            scheduled: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            level: self.level,
            screen: self.screen,
            header: Bytes::from(header),
            max_records: self.max_records,
            max_bytes: self.max_bytes,
        });
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let shipper = Shipper::new(shared.clone(), addr, self.reconnect, done_tx, started_tx);
        let thread = std::thread::Builder::new()
            .name("tasktonic-log".into())
            .spawn(move || {
                ON_LOG_THREAD.with(|t| t.set(true));
                // Its app leaves the process's logger alone (the program may be about to
                // install this very log).
                let app = App::new("tasktonic-log").without_logger().tonic(Starter {
                    shipper: Some(shipper),
                });
                if let Err(e) = app.run() {
                    eprintln!("remote log: {e}");
                }
            })?;
        Ok(RemoteLog {
            shared,
            control: Arc::new(Mutex::new(Some(Control {
                done,
                started,
                thread,
            }))),
        })
    }
}

/// What the logging side and the shipping tonic share.
pub(crate) struct Shared {
    backlog: Mutex<Backlog>,
    shipper: OnceLock<Handle<Shipper>>,
    /// A "ship" sparkle is on its way: the next records need not send another.
    scheduled: AtomicBool,
    seq: AtomicU64,
    level: LevelFilter,
    screen: Option<LevelFilter>,
    /// The encoded session header, sent first on every connection.
    header: Bytes,
    max_records: usize,
    max_bytes: usize,
}

impl Shared {
    fn encode(&self, record: &Record<'_>) -> Option<Bytes> {
        let (id, tonic) = match tasktonic_core::logging::current_tonic() {
            Some((id, name)) => (Some(id.as_u64()), Some(name)),
            None => (None, None),
        };
        let mut text = record.args().to_string();
        if text.len() > MAX_TEXT {
            let mut cut = MAX_TEXT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let more = text.len() - cut;
            text.truncate(cut);
            text.push_str(&format!(" …[{more} more bytes cut]"));
        }
        let wire = LogRecord {
            id,
            tonic,
            level: record.level().as_str().to_string(),
            target: record.target().to_string(),
            at: wire::epoch_secs(SystemTime::now()),
            log: text.lines().map(str::to_string).collect(),
            thread: std::thread::current().name().map(str::to_string),
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
        };
        rmp_serde::to_vec_named(&wire).ok().map(Bytes::from)
    }

    /// The record that tells the viewer how many were dropped.
    fn dropped_notice(&self, n: u64) -> Bytes {
        let notice = LogRecord {
            level: "WARN".into(),
            target: "tasktonic::remote_log".into(),
            at: wire::epoch_secs(SystemTime::now()),
            log: vec![format!(
                "{n} records dropped: the remote log's backlog ({} records, {} bytes) was full",
                self.max_records, self.max_bytes
            )],
            ..LogRecord::default()
        };
        Bytes::from(rmp_serde::to_vec_named(&notice).unwrap_or_default())
    }

    fn wake(&self) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        match self.shipper.get() {
            Some(handle) => {
                if handle.notify_named("ship", |s, _| s.ship()).is_err() {
                    self.scheduled.store(false, Ordering::Release);
                }
            }
            // Not started yet: it ships the backlog once connected.
            None => self.scheduled.store(false, Ordering::Release),
        }
    }
}

struct Control {
    done: Receiver<LogReport>,
    /// Whether the shipper started dialling (sent once, from its `on_start`).
    started: Receiver<bool>,
    thread: JoinHandle<()>,
}

/// A remote log sender: a [`log::Log`] that ships records to a viewer (see the [module
/// docs](self)). Cheap to clone; [`install`](RemoteLog::install) makes it the process's
/// logger, and any clone can [`close`](RemoteLog::close) it.
#[derive(Clone)]
pub struct RemoteLog {
    shared: Arc<Shared>,
    control: Arc<Mutex<Option<Control>>>,
}

impl fmt::Debug for RemoteLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteLog")
            .field("level", &self.shared.level)
            .field("waiting", &self.shared.backlog.lock().len())
            .finish()
    }
}

impl RemoteLog {
    /// A remote log to the viewer at `target` (`host:port`).
    pub fn builder(target: impl Into<String>) -> RemoteLogBuilder {
        RemoteLogBuilder {
            target: target.into(),
            project: None,
            level: LevelFilter::Info,
            screen: Some(LevelFilter::Warn),
            max_records: 10_000,
            max_bytes: 8 * 1024 * 1024,
            reconnect: Reconnect::exponential(Duration::from_millis(50), Duration::from_secs(2)),
        }
    }

    /// Make this the process's logger (`log::set_boxed_logger`), at the more detailed of its
    /// shipped and screen levels. `App` then installs none of its own.
    ///
    /// # Errors
    ///
    /// A logger is installed already.
    pub fn install(self) -> Result<(), log::SetLoggerError> {
        let max = self
            .shared
            .level
            .max(self.shared.screen.unwrap_or(LevelFilter::Off));
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(max);
        Ok(())
    }

    /// Records waiting for the viewer now.
    pub fn waiting(&self) -> usize {
        self.shared.backlog.lock().len()
    }

    /// Ship what waits and close, waiting at most `within` for the viewer to take it (it may
    /// not be up yet: the sender keeps dialling until then). Records logged afterwards are
    /// shown on the screen only. Closing again returns an empty report.
    pub fn close(&self, within: Duration) -> LogReport {
        let Some(control) = self.control.lock().take() else {
            return LogReport::default();
        };
        // The shipper may not have started yet (a close right after `start`).
        let started = control.started.recv_timeout(within).unwrap_or(false);
        let asked = started
            && self.shared.shipper.get().is_some_and(|h| {
                h.sparkle_named("close", move |s, ctx| s.close(ctx, within))
                    .is_ok()
            });
        // The shipper answers at `within` at the latest, plus a graceful close's own bound.
        let answer = if asked {
            control
                .done
                .recv_timeout(within + Duration::from_secs(10))
                .ok()
        } else {
            control.done.try_recv().ok()
        };
        let Some(report) = answer else {
            // Nothing can be delivered any more: count what is left.
            let mut backlog = self.shared.backlog.lock();
            backlog.closed = true;
            return LogReport {
                delivered: 0,
                dropped: backlog.dropped,
                undelivered: backlog.len() as u64,
            };
        };
        // The shipper has finished, so its app ends.
        if control.thread.join().is_err() {
            eprintln!("remote log: its thread panicked");
        }
        report
    }

    fn print(record: &Record<'_>) {
        let mut err = std::io::stderr().lock();
        let _ = tasktonic_core::logging::write_record(&mut err, record);
    }
}

impl Log for RemoteLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.shared.level
            || self.shared.screen.is_some_and(|s| metadata.level() <= s)
    }

    fn log(&self, record: &Record<'_>) {
        if self.shared.screen.is_some_and(|s| record.level() <= s) {
            RemoteLog::print(record);
        }
        if record.level() > self.shared.level || ON_LOG_THREAD.with(std::cell::Cell::get) {
            return;
        }
        let Some(frame) = self.shared.encode(record) else {
            return;
        };
        {
            let mut backlog = self.shared.backlog.lock();
            if backlog.closed {
                return;
            }
            backlog.push(frame);
        }
        self.shared.wake();
    }

    fn flush(&self) {}
}
