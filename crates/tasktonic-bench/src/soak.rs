//! The soak run: many connections exchanging messages for minutes while the server drops
//! connections at random and restarts, then an account of every message.
//!
//! ```text
//! tasktonic-bench soak [--conns N] [--minutes M | --seconds S] [--window W]
//! RESULT workload=soak sent=… received=… handed_back=… lost=… rss_kb_start=… rss_kb_end=…
//!        fds_start=… fds_end=… idle_cpu_pct=…
//! ```
//!
//! One process holds both sides (two apps on their own threads, each with its selector):
//! an echo server, and N clients (`TcpClient`, redialling by policy). Each client keeps up
//! to W numbered messages outstanding; an echo retires its number (a duplicate is counted,
//! not retired twice). The server aborts a random connection about every 50 ms and is
//! stopped and started again on the same port every 30 s (a quarter of the run if that is
//! shorter). A connection that goes down hands back what it had not written; whatever was
//! not echoed — handed back, or lost in a reset's discarded buffers — is sent again when
//! the client is up again (at least once on the wire, exactly once in the account).
//!
//! At the end the chaos stops, sending stops, and the run waits (at most 60 s) until every
//! client is connected and nothing is outstanding. Then: `lost` is what was accepted by
//! `send` and never echoed (must be 0); memory and descriptors are compared with the start
//! (after warm-up: flat means RSS within a quarter or 8 MiB of the start, descriptors
//! within 16); and with every connection idle the process's CPU is measured over 5 s (at
//! most 1 % of a core, and at most 50 thread wake-ups: a short poll costs few ticks but
//! wakes often). Any failure is named on stderr and the exit status is 1.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Sender, bounded};
use tasktonic_core::{App, Ctx, RunError, Stopper, Timer, TimerEvent, Tonic};
use tasktonic_net::codec::LengthDelimited;
use tasktonic_net::tcp::{
    CloseReason, Conn, ConnId, Reconnect, TcpClient, TcpConfig, TcpEvents, TcpServer,
};

use crate::procfs;

/// Bytes per message (its number, then filler).
const SIZE: usize = 64;

/// What the run was asked for.
struct Options {
    conns: usize,
    duration: Duration,
    window: usize,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        conns: 1000,
        duration: Duration::from_secs(600),
        window: 4,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || -> Result<u64, String> {
            it.next()
                .ok_or(format!("{flag} needs a value"))?
                .parse()
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--conns" => o.conns = usize::try_from(value()?).map_err(|e| e.to_string())?,
            "--minutes" => o.duration = Duration::from_secs(value()? * 60),
            "--seconds" => o.duration = Duration::from_secs(value()?),
            "--window" => o.window = usize::try_from(value()?).map_err(|e| e.to_string())?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.conns == 0 || o.window == 0 || o.duration.is_zero() {
        return Err("--conns, --window and the duration must be above 0".into());
    }
    Ok(o)
}

/// The run's counts, shared by the client app and the driver.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
    duplicates: AtomicU64,
    handed_back: AtomicU64,
    connected: AtomicUsize,
    outstanding: AtomicU64,
    /// While set, clients keep their windows full.
    sending: AtomicBool,
}

impl Counts {
    fn line(&self) -> String {
        format!(
            "sent={} received={} duplicates={} handed_back={} connected={} outstanding={}",
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
            self.duplicates.load(Ordering::Relaxed),
            self.handed_back.load(Ordering::Relaxed),
            self.connected.load(Ordering::Relaxed),
            self.outstanding.load(Ordering::Relaxed),
        )
    }
}

/// A small deterministic generator (the chaos need not be cryptographic).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

// ----- the server -----------------------------------------------------------------------

/// The server's chaos: not yet (warming up), on, or over (its timer stops).
#[derive(Default)]
struct Chaos {
    phase: AtomicU8,
    aborts: AtomicU64,
}

const ON: u8 = 1;
const OVER: u8 = 2;

/// Echoes; while the chaos is on, aborts a random connection now and then.
struct Server {
    server: Option<TcpServer<LengthDelimited>>,
    conns: Vec<Conn<Bytes>>,
    chaos: Arc<Chaos>,
    rng: Lcg,
    bound: Sender<Result<SocketAddr, String>>,
}

impl Tonic for Server {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let Some(server) = self.server.take() else {
            return;
        };
        match server.start(ctx) {
            Ok(l) => {
                self.bound.send(Ok(l.local_addr())).ok();
                ctx.timer(Timer::repeat(Duration::from_millis(10)).named("chaos"));
            }
            Err(e) => {
                self.bound.send(Err(e.to_string())).ok();
                ctx.finish();
            }
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
        match self.chaos.phase.load(Ordering::Relaxed) {
            OVER => {
                ctx.cancel_timer(timer.id); // an idle server wakes for nothing
            }
            // About one abort in five ticks: ~20 a second.
            ON if !self.conns.is_empty() && self.rng.next() % 5 == 0 => {
                let i = (self.rng.next() as usize) % self.conns.len();
                self.conns[i].abort();
                self.chaos.aborts.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

impl TcpEvents<Bytes> for Server {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        self.conns.push(conn.clone());
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        // Back-pressure cannot build: a client keeps at most its window outstanding.
        conn.send(msg).ok();
    }
    fn on_connection_finished(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>) {
        self.conns.retain(|c| c.id() != conn.id());
    }
}

/// A server app on its thread.
struct Serving {
    stopper: Stopper,
    thread: JoinHandle<Result<(), RunError>>,
}

fn serve(addr: SocketAddr, chaos: &Arc<Chaos>, seed: u64) -> Result<(SocketAddr, Serving), String> {
    let config = TcpConfig {
        close_linger: Duration::from_secs(1),
        ..TcpConfig::default()
    };
    // The port may still be held for a moment after a restart: a few tries.
    let mut last = String::new();
    for _ in 0..50 {
        let (bound, rx) = bounded(1);
        let app = App::new("soak-server").tonic(Server {
            server: Some(TcpServer::bind(addr, LengthDelimited::new()).config(config.clone())),
            conns: Vec::new(),
            chaos: chaos.clone(),
            rng: Lcg(seed),
            bound,
        });
        let stopper = app.stopper();
        let thread = std::thread::spawn(move || app.run());
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(local)) => return Ok((local, Serving { stopper, thread })),
            Ok(Err(e)) => last = e,
            Err(_) => last = "the server did not start".into(),
        }
        stopper.stop();
        let _ = thread.join();
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("cannot serve on {addr}: {last}"))
}

impl Serving {
    fn stop(self) -> Result<(), String> {
        self.stopper.stop();
        match self.thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the server app failed: {e}")),
            Err(_) => Err("the server thread panicked".into()),
        }
    }
}

// ----- the clients ----------------------------------------------------------------------

/// One client's account: its next number and the numbers not echoed yet.
struct Lane {
    conn: Conn<Bytes>,
    next: u64,
    outstanding: BTreeSet<u64>,
    up: bool,
}

fn message(n: u64) -> Bytes {
    let mut m = vec![0xA5u8; SIZE];
    m[..8].copy_from_slice(&n.to_be_bytes());
    Bytes::from(m)
}

/// Holds every client; keeps their windows full while sending is on.
struct Clients {
    target: SocketAddr,
    conns: usize,
    window: usize,
    lanes: HashMap<ConnId, Lane>,
    counts: Arc<Counts>,
}

impl Clients {
    /// Send what the lane has outstanding again (after a reconnect), then new messages up
    /// to the window.
    fn fill(&mut self, id: ConnId, again: bool) {
        let counts = self.counts.clone();
        let window = self.window;
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        if !lane.up {
            return;
        }
        if again {
            for n in lane.outstanding.iter() {
                if lane.conn.send(message(*n)).is_err() {
                    return; // going down again: the next reconnect sends them
                }
            }
        }
        while counts.sending.load(Ordering::Relaxed) && lane.outstanding.len() < window {
            if lane.conn.send(message(lane.next)).is_err() {
                return;
            }
            lane.outstanding.insert(lane.next);
            lane.next += 1;
            counts.sent.fetch_add(1, Ordering::Relaxed);
            counts.outstanding.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Tonic for Clients {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let config = TcpConfig {
            connect_timeout: Duration::from_secs(2),
            close_linger: Duration::from_secs(1),
            ..TcpConfig::default()
        };
        for _ in 0..self.conns {
            let client = TcpClient::new(self.target, LengthDelimited::new())
                .config(config.clone())
                .reconnect(Reconnect::exponential(
                    Duration::from_millis(20),
                    Duration::from_millis(500),
                ));
            match client.start(ctx) {
                Ok(conn) => {
                    let lane = Lane {
                        conn: conn.clone(),
                        next: 0,
                        outstanding: BTreeSet::new(),
                        up: false,
                    };
                    self.lanes.insert(conn.id(), lane);
                }
                Err(e) => {
                    eprintln!("soak: cannot start a client: {e}");
                    ctx.finish();
                    return;
                }
            }
        }
    }
}

impl TcpEvents<Bytes> for Clients {
    fn on_connected(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, _: SocketAddr) {
        if let Some(lane) = self.lanes.get_mut(&conn.id()) {
            lane.up = true;
            self.counts.connected.fetch_add(1, Ordering::Relaxed);
        }
        self.fill(conn.id(), true);
    }
    fn on_message(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>, msg: Bytes) {
        let n = msg
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(u64::MAX, u64::from_be_bytes);
        let Some(lane) = self.lanes.get_mut(&conn.id()) else {
            return;
        };
        if lane.outstanding.remove(&n) {
            self.counts.received.fetch_add(1, Ordering::Relaxed);
            self.counts.outstanding.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.counts.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        self.fill(conn.id(), false);
    }
    fn on_writable(&mut self, _: &mut Ctx<Self>, conn: &Conn<Bytes>) {
        self.fill(conn.id(), false);
    }
    fn on_disconnected(
        &mut self,
        _: &mut Ctx<Self>,
        conn: &Conn<Bytes>,
        _: &CloseReason,
        unsent: Vec<Bytes>,
    ) {
        // Still outstanding: sent again once the client is up.
        self.counts
            .handed_back
            .fetch_add(unsent.len() as u64, Ordering::Relaxed);
        if let Some(lane) = self.lanes.get_mut(&conn.id())
            && std::mem::take(&mut lane.up)
        {
            self.counts.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

// ----- the run --------------------------------------------------------------------------

/// Wait until `done` holds, at most `limit`; false if it never did.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// `tasktonic-bench soak …`: the exit status.
pub(crate) fn main(args: &[String]) -> i32 {
    let o = match options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "soak: {e}\nusage: tasktonic-bench soak [--conns N] [--minutes M | --seconds S] [--window W]"
            );
            return 2;
        }
    };
    crate::net::raise_fd_limit();
    match run(&o) {
        Ok(failures) if failures.is_empty() => 0,
        Ok(failures) => {
            for f in failures {
                eprintln!("soak: FAILED: {f}");
            }
            1
        }
        Err(e) => {
            eprintln!("soak: {e}");
            1
        }
    }
}

/// The run; the checks that failed.
fn run(o: &Options) -> Result<Vec<String>, String> {
    let pid = std::process::id();
    let chaos = Arc::new(Chaos::default());
    let (addr, mut server) = serve("127.0.0.1:0".parse().expect("an address"), &chaos, 1)?;
    let counts = Arc::new(Counts::default());
    counts.sending.store(true, Ordering::Relaxed);
    let clients = App::new("soak-clients").tonic(Clients {
        target: addr,
        conns: o.conns,
        window: o.window,
        lanes: HashMap::new(),
        counts: counts.clone(),
    });
    let client_stopper = clients.stopper();
    let client_thread = std::thread::spawn(move || clients.run());
    eprintln!(
        "soak: {} connections to {addr} for {:?}",
        o.conns, o.duration
    );
    if !wait_until(Duration::from_secs(60), || {
        counts.connected.load(Ordering::Relaxed) == o.conns
    }) {
        return Err(format!("not all connected in 60 s: {}", counts.line()));
    }
    // Warm up before the baseline: buffers and tables reach their working size.
    std::thread::sleep(Duration::from_secs(2));
    let (rss_kb_start, fds_start) = (procfs::rss_kb(pid), procfs::fds(pid));
    chaos.phase.store(ON, Ordering::Relaxed);
    let started = Instant::now();
    let restart_every = (o.duration / 4).min(Duration::from_secs(30));
    let mut next_restart = started + restart_every;
    let mut next_report = started + Duration::from_secs(10);
    let mut restarts = 0u64;
    while started.elapsed() < o.duration {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next_report {
            eprintln!(
                "soak: {:>4} s {} aborts={} restarts={restarts}",
                started.elapsed().as_secs(),
                counts.line(),
                chaos.aborts.load(Ordering::Relaxed)
            );
            next_report += Duration::from_secs(10);
        }
        if Instant::now() >= next_restart {
            server.stop()?;
            restarts += 1;
            server = serve(addr, &chaos, restarts + 1)?.1;
            next_restart += restart_every;
        }
    }
    // The end: no more chaos, no new messages; everything outstanding must come back.
    chaos.phase.store(OVER, Ordering::Relaxed);
    counts.sending.store(false, Ordering::Relaxed);
    let drained = wait_until(Duration::from_secs(60), || {
        counts.outstanding.load(Ordering::Relaxed) == 0
            && counts.connected.load(Ordering::Relaxed) == o.conns
    });
    let (rss_kb_end, fds_end) = (procfs::rss_kb(pid), procfs::fds(pid));
    // Idle: every connection up and quiet.
    let before = procfs::cpu_ticks(pid);
    let woken_before = procfs::wakeups(pid);
    let window = Duration::from_secs(5);
    std::thread::sleep(window);
    let idle_ticks = procfs::cpu_ticks(pid).saturating_sub(before);
    // A thread that polls with a short timeout costs few ticks but wakes often.
    let idle_wakeups = procfs::wakeups(pid).saturating_sub(woken_before);
    let idle_cpu_pct = idle_ticks as f64 / procfs::ticks_per_s() / window.as_secs_f64() * 100.0;
    client_stopper.stop();
    let clients_ran = client_thread.join();
    let server_ran = server.stop();
    let sent = counts.sent.load(Ordering::Relaxed);
    let received = counts.received.load(Ordering::Relaxed);
    let lost = counts.outstanding.load(Ordering::Relaxed);
    eprintln!(
        "soak: done: {} aborts={} restarts={restarts} idle_wakeups={idle_wakeups}",
        counts.line(),
        chaos.aborts.load(Ordering::Relaxed)
    );
    println!(
        "RESULT workload=soak sent={sent} received={received} handed_back={} lost={lost} \
         rss_kb_start={rss_kb_start} rss_kb_end={rss_kb_end} fds_start={fds_start} \
         fds_end={fds_end} idle_cpu_pct={idle_cpu_pct:.2}",
        counts.handed_back.load(Ordering::Relaxed)
    );
    let mut failures = Vec::new();
    if !drained {
        failures.push(format!("not drained in 60 s: {}", counts.line()));
    }
    if lost != 0 {
        failures.push(format!(
            "{lost} messages lost (sent {sent}, received {received})"
        ));
    }
    if rss_kb_start == 0 || fds_start == 0 {
        failures.push("/proc/self cannot be read: memory and descriptors unchecked".into());
    }
    if rss_kb_end > rss_kb_start + (rss_kb_start / 4).max(8 * 1024) {
        failures.push(format!(
            "memory grew from {rss_kb_start} to {rss_kb_end} KiB"
        ));
    }
    if fds_end > fds_start + 16 {
        failures.push(format!("descriptors grew from {fds_start} to {fds_end}"));
    }
    if idle_wakeups > 50 {
        failures.push(format!("{idle_wakeups} thread wake-ups in 5 idle seconds"));
    }
    if idle_cpu_pct > 1.0 {
        failures.push(format!("{idle_cpu_pct:.2} % CPU while idle"));
    }
    match clients_ran {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failures.push(format!("the client app failed: {e}")),
        Err(_) => failures.push("the client thread panicked".into()),
    }
    if let Err(e) = server_ran {
        failures.push(e);
    }
    Ok(failures)
}
