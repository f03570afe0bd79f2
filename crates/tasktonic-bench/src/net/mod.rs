//! Network workloads N1–N5, T1 (TLS), H1 (HTTP), W1–W2 (WebSocket) and NP–NR (NATS): each
//! server in its own process, peers alternated run by run.

pub(crate) mod http;
pub(crate) mod load;
pub(crate) mod nats;
pub(crate) mod servers;
pub(crate) mod tls;
pub(crate) mod ws;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// An echo server implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Impl {
    OursColocated,
    OursSeed,
    Mio,
    /// tokio written as a pipelined echo is written: feed what is decoded, flush when idle.
    Tokio,
    /// tokio flushing after every frame (`framed.send`): what many users write, and the
    /// weaker peer; kept for comparison, never the basis of a headline ratio.
    TokioNaive,
}

impl Impl {
    pub(crate) const ALL: [Impl; 5] = [
        Impl::OursColocated,
        Impl::OursSeed,
        Impl::Mio,
        Impl::Tokio,
        Impl::TokioNaive,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Impl::OursColocated => "ours_colocated",
            Impl::OursSeed => "ours_seed",
            Impl::Mio => "mio",
            Impl::Tokio => "tokio",
            Impl::TokioNaive => "tokio_naive",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Impl> {
        Impl::ALL.into_iter().find(|i| i.name() == s)
    }
}

/// Run the server `which` in this process (the `serve` subcommand).
pub(crate) fn serve(which: Impl, addr: SocketAddr) {
    match which {
        Impl::OursColocated => servers::ours(addr, true),
        Impl::OursSeed => servers::ours(addr, false),
        Impl::Mio => {
            if let Err(e) = servers::mio(addr) {
                eprintln!("mio server: {e}");
            }
        }
        Impl::Tokio => servers::tokio(addr, true),
        Impl::TokioNaive => servers::tokio(addr, false),
    }
}

/// A server in a child process.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(which: Impl) -> Result<Server, String> {
        Server::spawn(&["serve".as_ref(), which.name().as_ref()], which.name())
    }

    /// This executable with `args` (a `serve…` subcommand), once it says where it listens.
    pub(crate) fn spawn(args: &[&std::ffi::OsStr], name: &str) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the {name} server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the {name} server said {line:?}"))?;
        Ok(Server { child, addr })
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the server process, in bytes.
    pub(crate) fn rss(&self) -> u64 {
        crate::procfs::rss_kb(self.child.id()) * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shape of a throughput workload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) conns: usize,
    pub(crate) window: usize,
    pub(crate) size: usize,
    pub(crate) per_conn: u64,
}

/// msgs/s for one run of `shape` against `which`.
pub(crate) fn throughput(which: Impl, shape: Shape) -> Result<f64, String> {
    let server = Server::start(which)?;
    load_once(server.addr, shape)
}

/// msgs/s for one run of `shape` against a server at `addr`.
pub(crate) fn load_once(addr: SocketAddr, shape: Shape) -> Result<f64, String> {
    let elapsed = load::throughput(addr, shape.conns, shape.window, shape.size, shape.per_conn)?;
    Ok((shape.conns as u64 * shape.per_conn) as f64 / elapsed.as_secs_f64())
}

/// (p50, p99, p99.9) round trip in µs.
pub(crate) fn latency(which: Impl) -> Result<(f64, f64, f64), String> {
    let server = Server::start(which)?;
    latency_at(server.addr)
}

/// N4 against a running server: p50, p99, p99.9 in µs.
pub(crate) fn latency_at(addr: SocketAddr) -> Result<(f64, f64, f64), String> {
    let times = load::latency(addr, 20_000)?;
    let at = |q: f64| {
        let i = ((times.len() as f64 * q) as usize).min(times.len() - 1);
        times[i].as_secs_f64() * 1e6
    };
    Ok((at(0.50), at(0.99), at(0.999)))
}

/// N5: (connections echoed, ms to establish all, bytes of server memory per idle connection).
/// N5: `n` connections to a fresh `which` server: how many were served, the milliseconds to
/// establish them, the bytes each costs, and while they sit idle for `IDLE_WINDOW` the
/// server's CPU (percent of one core, from its threads' nanoseconds) and thread wake-ups.
pub(crate) fn many(which: Impl, n: usize) -> Result<(usize, f64, f64, f64, u64), String> {
    const IDLE_WINDOW: Duration = Duration::from_secs(10);
    let server = Server::start(which)?;
    // Let the server settle to its idle footprint before the baseline.
    load::latency(server.addr, 100)?;
    let before = server.rss();
    let (mut after, mut idle_pct, mut idle_wakeups) = (0, 0.0, 0);
    let pid = server.pid();
    let (established, _round) = load::many(server.addr, n, || {
        after = server.rss();
        let (ns, wakes) = (crate::procfs::cpu_ns(pid), crate::procfs::wakeups(pid));
        std::thread::sleep(IDLE_WINDOW);
        let used = crate::procfs::cpu_ns(pid).saturating_sub(ns) as f64;
        idle_wakeups = crate::procfs::wakeups(pid).saturating_sub(wakes);
        idle_pct = used / IDLE_WINDOW.as_nanos() as f64 * 100.0;
    })?;
    let per_conn = after.saturating_sub(before) as f64 / n as f64;
    Ok((
        n,
        established.as_secs_f64() * 1e3,
        per_conn,
        idle_pct,
        idle_wakeups,
    ))
}

pub(crate) fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < 10_100 => {
            eprintln!("note: only {n} file descriptors; N5 needs about 10,100 per process")
        }
        Ok(_) => {}
        Err(e) => eprintln!("note: cannot raise the file descriptor limit: {e}"),
    }
    let _ = Duration::ZERO;
}
