//! NP and NR (Q1 in the issue): NATS through one local `nats-server`, against the official
//! Rust client, async-nats, in the same run.
//!
//! - **NP** publish throughput: one publisher and one subscriber, each its own client
//!   connection in its own process, both of the same implementation; `NP_COUNT` messages of
//!   64 bytes on one subject. The rate is messages received by the subscriber per second,
//!   from the publisher's first publish to the subscriber's last receive (wall clock: the
//!   two processes share the host's clock); the subscriber counts every message and checks
//!   its size, and a sample with a message missing fails.
//! - **NR** request–reply round trip: one responder and one requester (one request in
//!   flight), each in its own process; 64-byte requests echoed back; `NR_COUNT` round trips
//!   after `NR_WARMUP`.
//!
//! A fresh `nats-server` (`-a 127.0.0.1 -p -1`, its defaults) per sample; the client
//! processes are this executable (`nats-client ROLE IMPL URL [N]`), told when to go on
//! their stdin so that the CPU time of every process (`utime + stime` from
//! `/proc/PID/stat`) is read around exactly the measured part.
//!
//! The implementations:
//! - `ours_seed`: the client tonic on the main catalyst, the NATS link on the selector (the
//!   TaskTonic way); `ours_colocated`: the client tonic on the selector catalyst, beside
//!   the link. Publisher: `nats.publish` in a loop; at `NatsError::Backpressure` (the
//!   connection's queue at its high watermark), `nats.flush(ctx, ..)` and go on when the
//!   server has answered (as `examples/cluster_counter.rs`). Subscriber:
//!   `nats.subscribe(ctx, subject, None)`, counting `on_nats_message`. Requester:
//!   `nats.request(ctx, ..)`, the next one issued in the answer. Responder: subscribed,
//!   `nats.respond(&msg, payload)`.
//! - `async_nats`: async-nats as its README and examples write it, on `#[tokio::main]`'s
//!   runtime (multi-thread, one worker per core): publisher `client.publish(subject.clone(),
//!   payload.clone()).await` in a loop and `client.flush().await` at the end (its
//!   `examples/pub.rs`); subscriber `subscriber.next().await` in a loop (`examples/sub.rs`);
//!   requester `client.request(subject, payload).await` in a loop; responder
//!   `subscriber.next().await` + `client.publish(reply, payload).await`
//!   (`examples/docs_request_reply_basic.rs`). Default `ConnectOptions` but the capacity
//!   below.
//! - `async_nats_current_thread`: the same code on a current-thread runtime (one thread per
//!   process, as ours has its selector thread).
//!
//! Both kinds of subscriber may hold a whole sample of messages not yet taken
//! (`subscription_capacity`: ours `NatsClient::subscription_capacity`, async-nats
//! `ConnectOptions::subscription_capacity`; both default to 65,536, and at that the
//! async-nats current-thread subscriber drops messages as a slow consumer in NP — the
//! environment variable `TT_NATS_CAP` sets another capacity for both, for such checks).
//!
//! Ratios are given against each async-nats form, and against the faster of the two by
//! median (`best_async_nats`), on which the claims rest.
//!
//! ```text
//! tasktonic-bench nats-client sub|pub|respond|request IMPL nats://127.0.0.1:PORT [N]
//! ```
//!
//! A client prints `ready` once connected (and subscribed), then takes `go N` on its stdin
//! (a publisher publishes N, a requester makes N round trips) and answers with a `done
//! key=value…` line; a subscriber (expecting N) prints `done …` on its N-th message and
//! answers `count` with `count C`. The end of its stdin ends it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};
use futures::StreamExt;
use tasktonic_core::{App, Ctx, Tonic, TonicRef};
use tasktonic_net::Selector;
use tasktonic_net::nats::{Nats, NatsClient, NatsError, NatsEvents, NatsMsg, NatsStatus};

use crate::report::Row;
use crate::{alternate, median};

/// Payload size, both workloads.
pub(crate) const SIZE: usize = 64;
/// NP: messages per sample.
pub(crate) const NP_COUNT: u64 = 2_000_000;
/// NR: round trips per sample, after the warm-up.
pub(crate) const NR_COUNT: u64 = 40_000;
const NR_WARMUP: u64 = 2_000;
const NP_SUBJECT: &str = "bench.np";
const NR_SUBJECT: &str = "bench.nr";
/// After the publisher is done, a subscriber whose count stays put this long lost messages.
const QUIET: Duration = Duration::from_secs(3);
/// The longest any step of a sample may take.
const STEP: Duration = Duration::from_secs(120);

static PAYLOAD: [u8; SIZE] = *b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A NATS client implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NatsImpl {
    /// Ours, the client tonics on the selector catalyst beside the link.
    OursColocated,
    /// Ours, the client tonics on the main catalyst.
    OursSeed,
    /// async-nats on a multi-thread runtime (`#[tokio::main]`, its docs' way).
    AsyncNats,
    /// async-nats on a current-thread runtime.
    AsyncNatsCurrentThread,
}

impl NatsImpl {
    pub(crate) const ALL: [NatsImpl; 4] = [
        NatsImpl::OursColocated,
        NatsImpl::OursSeed,
        NatsImpl::AsyncNats,
        NatsImpl::AsyncNatsCurrentThread,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            NatsImpl::OursColocated => "ours_colocated",
            NatsImpl::OursSeed => "ours_seed",
            NatsImpl::AsyncNats => "async_nats",
            NatsImpl::AsyncNatsCurrentThread => "async_nats_current_thread",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<NatsImpl> {
        NatsImpl::ALL.into_iter().find(|i| i.name() == s)
    }
}

/// What a client process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Pub,
    Sub,
    Respond,
    Request,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "pub" => Role::Pub,
            "sub" => Role::Sub,
            "respond" => Role::Respond,
            "request" => Role::Request,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Role::Pub => "pub",
            Role::Sub => "sub",
            Role::Respond => "respond",
            Role::Request => "request",
        }
    }
}

/// A subscriber's capacity (messages handed to it and not yet taken; past it a client drops
/// them as a slow consumer): a whole sample, for ours and async-nats alike (both default to
/// 65,536, and at that the async-nats current-thread subscriber dropped messages in NP).
fn capacity(expect: u64) -> usize {
    if let Some(c) = std::env::var("TT_NATS_CAP")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return c;
    }
    usize::try_from(expect).unwrap_or(usize::MAX).max(1 << 16)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A line to the parent (stdout is line-buffered; flushed for certain).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Read the parent's commands on a thread: `go N` calls `go(n)`; `count` is answered here
/// with `count N` from `count` (a subscriber's messages so far: the parent asks when they
/// stop coming, so that no client runs a timer of the bench's while measured). The end of
/// stdin (the parent is done with us) ends the process.
fn read_commands(count: Arc<AtomicU64>, go: impl Fn(u64) + Send + 'static) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("go ").and_then(|n| n.trim().parse().ok()) {
                go(n);
            } else if line.trim() == "count" {
                say(&format!("count {}", count.load(Ordering::Relaxed)));
            }
        }
        std::process::exit(0);
    });
}

// ----- the client processes ----------------------------------------------------------------------

/// `nats-client ROLE IMPL URL [N]` (N: messages a subscriber expects).
pub(crate) fn client_main(args: &[String]) {
    let role = args.first().and_then(|r| Role::parse(r));
    let which = args.get(1).and_then(|i| NatsImpl::parse(i));
    let (Some(role), Some(which), Some(url)) = (role, which, args.get(2)) else {
        eprintln!(
            "usage: tasktonic-bench nats-client pub|sub|respond|request \
             ours_colocated|ours_seed|async_nats|async_nats_current_thread URL [N]"
        );
        std::process::exit(2);
    };
    let expect = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(NP_COUNT);
    let result = match which {
        NatsImpl::OursColocated => ours(role, url, expect, true),
        NatsImpl::OursSeed => ours(role, url, expect, false),
        NatsImpl::AsyncNats => async_nats_client(role, url, expect, true),
        NatsImpl::AsyncNatsCurrentThread => async_nats_client(role, url, expect, false),
    };
    if let Err(e) = result {
        say(&format!("failed {e}"));
        std::process::exit(1);
    }
}

// ----- ours --------------------------------------------------------------------------------------

struct OursClient {
    role: Role,
    url: String,
    nats: Option<Nats>,
    connected: bool,
    payload: Bytes,
    /// pub / request: how many this round, how many so far, when it began.
    target: u64,
    done: u64,
    start_ns: u64,
    started: Option<Instant>,
    /// sub: messages expected, received (also in `shared`, for `read_commands`), of the
    /// wrong size; the first receive.
    expect: u64,
    count: u64,
    shared: Arc<AtomicU64>,
    bad: u64,
    /// Messages the client dropped as a slow consumer (`on_nats_dropped`).
    dropped: u64,
    first_ns: u64,
}

impl Tonic for OursClient {
    type State = ();

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let nats = match NatsClient::new(&self.url).and_then(|c| {
            c.name(format!("bench-{}", self.role.name()))
                .subscription_capacity(capacity(self.expect))
                .start(ctx)
        }) {
            Ok(n) => n,
            Err(e) => {
                say(&format!("failed {e}"));
                return ctx.stop_app();
            }
        };
        nats.watch_status(ctx);
        self.nats = Some(nats);
        let handle = ctx.handle();
        read_commands(self.shared.clone(), move |n| {
            let _ = handle.sparkle(move |c: &mut OursClient, ctx| c.go(ctx, n));
        });
    }
}

impl NatsEvents for OursClient {
    fn on_nats_status(&mut self, ctx: &mut Ctx<Self>, status: NatsStatus) {
        if status != NatsStatus::Connected || self.connected {
            return;
        }
        self.connected = true;
        let Some(nats) = &self.nats else { return };
        let subject = match self.role {
            Role::Sub => NP_SUBJECT,
            Role::Respond => NR_SUBJECT,
            Role::Pub | Role::Request => return say("ready"),
        };
        if let Err(e) = nats.subscribe(ctx, subject, None) {
            say(&format!("failed {e}"));
            return ctx.stop_app();
        }
        // Ready once the server has the subscription.
        nats.flush(ctx, |_: &mut OursClient, _, ok| {
            say(if ok { "ready" } else { "failed flush" });
        });
    }

    fn on_nats_dropped(&mut self, _: &mut Ctx<Self>, _: u64, dropped: u64) {
        self.dropped += dropped;
    }

    fn on_nats_message(&mut self, ctx: &mut Ctx<Self>, msg: NatsMsg) {
        if self.role == Role::Respond {
            let Some(nats) = &self.nats else { return };
            let payload = msg.payload.clone();
            if let Err(e) = nats.respond(&msg, payload) {
                say(&format!("failed respond: {e}"));
                ctx.stop_app();
            }
            return;
        }
        if msg.payload.len() != SIZE {
            self.bad += 1;
        }
        self.count += 1;
        self.shared.store(self.count, Ordering::Relaxed);
        if self.count == 1 {
            self.first_ns = now_ns();
        }
        if self.count == self.expect {
            say(&format!(
                "done first_ns={} last_ns={} count={} bad={}",
                self.first_ns,
                now_ns(),
                self.count,
                self.bad
            ));
        }
    }
}

impl OursClient {
    fn go(&mut self, ctx: &mut Ctx<Self>, n: u64) {
        self.target = n;
        self.done = 0;
        self.start_ns = now_ns();
        self.started = Some(Instant::now());
        match self.role {
            Role::Pub => self.publish(ctx),
            Role::Request => self.request(ctx),
            Role::Sub | Role::Respond => {}
        }
    }

    /// Publish until the target or the high watermark; at the watermark, go on once the
    /// server has taken what was queued.
    fn publish(&mut self, ctx: &mut Ctx<Self>) {
        let Some(nats) = &self.nats else { return };
        while self.done < self.target {
            match nats.publish(NP_SUBJECT, self.payload.clone()) {
                Ok(()) => self.done += 1,
                Err(NatsError::Backpressure(_)) => {
                    return nats.flush(ctx, |c: &mut OursClient, ctx, _| c.publish(ctx));
                }
                Err(e) => {
                    say(&format!("failed publish: {e}"));
                    return ctx.stop_app();
                }
            }
        }
        nats.flush(ctx, |c: &mut OursClient, _, ok| {
            say(&format!(
                "done start_ns={} end_ns={} flushed={ok}",
                c.start_ns,
                now_ns()
            ));
        });
    }

    /// The next request, or the result.
    fn request(&mut self, ctx: &mut Ctx<Self>) {
        if self.done == self.target {
            let elapsed = self.started.map_or(0, |s| s.elapsed().as_nanos() as u64);
            return say(&format!(
                "done elapsed_ns={elapsed} count={} bad={}",
                self.done, self.bad
            ));
        }
        let Some(nats) = &self.nats else { return };
        let timeout = Duration::from_secs(5);
        nats.request(
            ctx,
            NR_SUBJECT,
            self.payload.clone(),
            timeout,
            |c: &mut OursClient, ctx, reply| match reply {
                Ok(msg) => {
                    if msg.payload.len() != SIZE {
                        c.bad += 1;
                    }
                    c.done += 1;
                    c.request(ctx);
                }
                Err(e) => {
                    say(&format!("failed request: {e}"));
                    ctx.stop_app();
                }
            },
        );
    }
}

/// Spawns the client tonic on the selector (co-located) or beside itself on main (seed).
struct Launcher {
    client: Option<OursClient>,
    colocated: bool,
}

impl Tonic for Launcher {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let Some(client) = self.client.take() else {
            return;
        };
        let spawned = if self.colocated {
            match Selector::default_for(ctx) {
                Ok(s) => ctx.infusion(client).catalyst(s.catalyst()).spawn(),
                Err(_) => return ctx.stop_app(),
            }
        } else {
            ctx.infusion(client).spawn()
        };
        if spawned.is_err() {
            ctx.stop_app();
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        ctx.finish();
    }
}

fn ours(role: Role, url: &str, expect: u64, colocated: bool) -> Result<(), String> {
    let client = OursClient {
        role,
        url: url.to_string(),
        nats: None,
        connected: false,
        payload: Bytes::from_static(&PAYLOAD),
        target: 0,
        done: 0,
        start_ns: 0,
        started: None,
        expect,
        count: 0,
        shared: Arc::new(AtomicU64::new(0)),
        bad: 0,
        dropped: 0,
        first_ns: 0,
    };
    App::new("bench-nats")
        .log_level(log::LevelFilter::Error)
        .tonic(Launcher {
            client: Some(client),
            colocated,
        })
        .run()
        .map_err(|e| e.to_string())
}

// ----- async-nats --------------------------------------------------------------------------------

fn async_nats_client(role: Role, url: &str, expect: u64, multi: bool) -> Result<(), String> {
    let rt = if multi {
        // What `#[tokio::main]` builds: one worker per core.
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    let (commands, mut go) = futures::channel::mpsc::unbounded();
    let count = Arc::new(AtomicU64::new(0));
    read_commands(count.clone(), move |n| {
        let _ = commands.unbounded_send(n);
    });
    rt.block_on(async move {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let client = async_nats::ConnectOptions::new()
            .subscription_capacity(capacity(expect))
            .connect(url)
            .await
            .map_err(|e| err(&e))?;
        let payload = Bytes::from_static(&PAYLOAD);
        match role {
            Role::Pub => {
                say("ready");
                let subject = async_nats::Subject::from(NP_SUBJECT);
                while let Some(n) = go.next().await {
                    let start_ns = now_ns();
                    for _ in 0..n {
                        client
                            .publish(subject.clone(), payload.clone())
                            .await
                            .map_err(|e| err(&e))?;
                    }
                    client.flush().await.map_err(|e| err(&e))?;
                    say(&format!(
                        "done start_ns={start_ns} end_ns={} flushed=true",
                        now_ns()
                    ));
                }
            }
            Role::Sub => {
                let mut subscriber = client.subscribe(NP_SUBJECT).await.map_err(|e| err(&e))?;
                client.flush().await.map_err(|e| err(&e))?;
                say("ready");
                let (mut n, mut bad, mut first_ns) = (0u64, 0u64, 0);
                while let Some(message) = subscriber.next().await {
                    if message.payload.len() != SIZE {
                        bad += 1;
                    }
                    n += 1;
                    count.store(n, Ordering::Relaxed);
                    if n == 1 {
                        first_ns = now_ns();
                    }
                    if n == expect {
                        say(&format!(
                            "done first_ns={first_ns} last_ns={} count={n} bad={bad}",
                            now_ns()
                        ));
                    }
                }
            }
            Role::Respond => {
                let mut subscriber = client.subscribe(NR_SUBJECT).await.map_err(|e| err(&e))?;
                client.flush().await.map_err(|e| err(&e))?;
                let responder = client.clone();
                tokio::spawn(async move {
                    while let Some(message) = subscriber.next().await {
                        if let Some(reply) = message.reply {
                            responder.publish(reply, message.payload).await.ok();
                        }
                    }
                });
                say("ready");
                while go.next().await.is_some() {}
            }
            Role::Request => {
                say("ready");
                let subject = async_nats::Subject::from(NR_SUBJECT);
                while let Some(n) = go.next().await {
                    let started = Instant::now();
                    let mut bad = 0;
                    for _ in 0..n {
                        let reply = client
                            .request(subject.clone(), payload.clone())
                            .await
                            .map_err(|e| err(&e))?;
                        if reply.payload.len() != SIZE {
                            bad += 1;
                        }
                    }
                    say(&format!(
                        "done elapsed_ns={} count={n} bad={bad}",
                        started.elapsed().as_nanos() as u64
                    ));
                }
            }
        }
        // Wait for the parent to be done with us.
        while go.next().await.is_some() {}
        Ok(())
    })
}

// ----- the parent: servers, client processes, figures --------------------------------------------

/// A `nats-server` on a free loopback port, killed when dropped.
struct NatsServer {
    child: Child,
    url: String,
    /// Lines of its log that say it cut a slow consumer.
    slow: Arc<AtomicU64>,
}

impl NatsServer {
    fn start() -> Result<NatsServer, String> {
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", "-1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "NP/NR need nats-server (`apt-get install nats-server`, or \
                     https://github.com/nats-io/nats-server/releases on the PATH): {e}"
                )
            })?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = unbounded();
        let slow = Arc::new(AtomicU64::new(0));
        let seen = slow.clone();
        std::thread::spawn(move || {
            // Read to the end, so that the server never blocks on its log.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("Slow Consumer") {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                let _ = tx.send(line);
            }
        });
        let marker = "Listening for client connections on ";
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut server = NatsServer {
            child,
            url: String::new(),
            slow,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .map_err(|_| "nats-server did not come up".to_string())?;
            if let Some(at) = line.find(marker) {
                server.url = format!("nats://{}", line[at + marker.len()..].trim());
            }
            if line.contains("[FTL]") {
                return Err(format!("nats-server: {line}"));
            }
            if !server.url.is_empty() && line.contains("Server is ready") {
                return Ok(server);
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client process (`nats-client …`), its stdout lines on a channel.
struct ClientProc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    what: String,
}

impl ClientProc {
    fn start(role: Role, which: NatsImpl, url: &str, expect: u64) -> Result<ClientProc, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let what = format!("{} {}", which.name(), role.name());
        let mut child = Command::new(exe)
            .args([
                "nats-client",
                role.name(),
                which.name(),
                url,
                &expect.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the {what} client: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take();
        let (tx, lines) = unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut client = ClientProc {
            child,
            stdin,
            lines,
            what,
        };
        client.expect("ready")?;
        Ok(client)
    }

    /// The next line, which must start with `word`; its `key=value` pairs.
    fn expect(&mut self, word: &str) -> Result<Vec<(String, String)>, String> {
        let line = match self.lines.recv_timeout(STEP) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("{}: nothing within {STEP:?}", self.what));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("{}: the client ended", self.what));
            }
        };
        let Some(rest) = line.strip_prefix(word) else {
            return Err(format!("{}: {line:?} (expected {word:?})", self.what));
        };
        Ok(rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    fn go(&mut self, n: u64) -> Result<(), String> {
        self.tell(&format!("go {n}"))
    }

    fn tell(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("{}: {e}", self.what))
    }

    /// A subscriber's `done` report, or (`Err`) its count once it has not moved for `QUIET`.
    fn done_or_stalled(&mut self) -> Result<Result<Vec<(String, String)>, u64>, String> {
        let mut seen = None;
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(QUIET) {
                Ok(line) if line.starts_with("done") => {
                    let kv = line
                        .split_whitespace()
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    return Ok(Ok(kv));
                }
                Ok(line) => {
                    let Some(n) = line.strip_prefix("count ").and_then(|n| n.parse().ok()) else {
                        return Err(format!("{}: {line:?}", self.what));
                    };
                    if seen == Some(n) {
                        return Ok(Err(n));
                    }
                    seen = Some(n);
                }
                Err(RecvTimeoutError::Timeout) => self.tell("count")?,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{}: the client ended", self.what));
                }
            }
        }
        Err(format!("{}: no result within {STEP:?}", self.what))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ClientProc {
    fn drop(&mut self) {
        // The end of stdin tells it to exit; a kill if it does not within a while.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field(kv: &[(String, String)], key: &str) -> Result<u64, String> {
    kv.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| format!("no {key} in the client's report"))
}

/// CPU time in µs per message of processes, from tick counts before and after.
fn cpu_us(before: &[u64], after: &[u64], n: u64) -> Vec<f64> {
    let us_per_tick = 1e6 / crate::procfs::ticks_per_s();
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.saturating_sub(*b) as f64 * us_per_tick / n as f64)
        .collect()
}

/// What one NP sample measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NpFigures {
    /// Messages received per second, first publish to last receive.
    pub(crate) msgs_per_s: f64,
    /// Publishes per second (publish loop and the final flush).
    pub(crate) published_per_s: f64,
    /// CPU µs per message: publisher, subscriber, nats-server.
    pub(crate) cpu_pub: f64,
    pub(crate) cpu_sub: f64,
    pub(crate) cpu_server: f64,
}

/// One NP sample: a fresh server, a subscriber, a publisher.
pub(crate) fn np(which: NatsImpl, n: u64) -> Result<NpFigures, String> {
    let server = NatsServer::start()?;
    let mut sub = ClientProc::start(Role::Sub, which, &server.url, n)?;
    let mut publisher = ClientProc::start(Role::Pub, which, &server.url, n)?;
    let pids = [publisher.pid(), sub.pid(), server.pid()];
    let before: Vec<u64> = pids.iter().map(|p| crate::procfs::cpu_ticks(*p)).collect();
    publisher.go(n)?;
    let published = publisher.expect("done")?;
    let received = sub.done_or_stalled()?;
    let after: Vec<u64> = pids.iter().map(|p| crate::procfs::cpu_ticks(*p)).collect();
    let (start, end) = (field(&published, "start_ns")?, field(&published, "end_ns")?);
    let slow = server.slow.load(Ordering::Relaxed);
    let (count, bad) = match &received {
        Ok(kv) => (field(kv, "count")?, field(kv, "bad")?),
        Err(count) => (*count, 0),
    };
    if count != n || bad != 0 {
        return Err(format!(
            "NP {}: the subscriber received {count} of {n} messages ({bad} of the wrong size; \
             the server logged {slow} slow-consumer events)",
            which.name()
        ));
    }
    let last = match received {
        Ok(kv) => field(&kv, "last_ns")?,
        Err(_) => 0,
    };
    let cpu = cpu_us(&before, &after, n);
    Ok(NpFigures {
        msgs_per_s: n as f64 / (last.saturating_sub(start).max(1) as f64 / 1e9),
        published_per_s: n as f64 / (end.saturating_sub(start).max(1) as f64 / 1e9),
        cpu_pub: cpu[0],
        cpu_sub: cpu[1],
        cpu_server: cpu[2],
    })
}

/// What one NR sample measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NrFigures {
    pub(crate) ns_per_rt: f64,
    /// CPU µs per round trip: requester, responder, nats-server.
    pub(crate) cpu_requester: f64,
    pub(crate) cpu_responder: f64,
    pub(crate) cpu_server: f64,
}

/// One NR sample: a fresh server, a responder, a requester; a warm-up, then `n` round trips.
pub(crate) fn nr(which: NatsImpl, n: u64) -> Result<NrFigures, String> {
    let server = NatsServer::start()?;
    let _responder = ClientProc::start(Role::Respond, which, &server.url, 0)?;
    let mut requester = ClientProc::start(Role::Request, which, &server.url, 0)?;
    requester.go(NR_WARMUP)?;
    requester.expect("done")?;
    let pids = [requester.pid(), _responder.pid(), server.pid()];
    let before: Vec<u64> = pids.iter().map(|p| crate::procfs::cpu_ticks(*p)).collect();
    requester.go(n)?;
    let done = requester.expect("done")?;
    let after: Vec<u64> = pids.iter().map(|p| crate::procfs::cpu_ticks(*p)).collect();
    let (elapsed, count, bad) = (
        field(&done, "elapsed_ns")?,
        field(&done, "count")?,
        field(&done, "bad")?,
    );
    if count != n || bad != 0 {
        return Err(format!(
            "NR {}: {count} of {n} round trips ({bad} replies of the wrong size)",
            which.name()
        ));
    }
    let cpu = cpu_us(&before, &after, n);
    Ok(NrFigures {
        ns_per_rt: elapsed as f64 / n as f64,
        cpu_requester: cpu[0],
        cpu_responder: cpu[1],
        cpu_server: cpu[2],
    })
}

// ----- rows --------------------------------------------------------------------------------------

/// The index of the faster async-nats form in `NatsImpl::ALL`, by medians `m`.
fn best_async_nats(m: &[f64], higher_is_better: bool) -> usize {
    let (a, b) = (m[2], m[3]);
    if (b > a) == higher_is_better { 3 } else { 2 }
}

fn ratios(row: &mut Row, best: usize) {
    for ours in ["ours_colocated", "ours_seed"] {
        let short = ours.trim_start_matches("ours_");
        row.ratio(&format!("{short}_async_nats"), ours, "async_nats")
            .ratio(
                &format!("{short}_async_nats_current_thread"),
                ours,
                "async_nats_current_thread",
            )
            .ratio(
                &format!("{short}_best_async_nats"),
                ours,
                NatsImpl::ALL[best].name(),
            );
    }
    row.extra
        .push(("best_async_nats".into(), NatsImpl::ALL[best].name().into()));
}

fn push_cpu(row: &mut Row, label: &str, per_impl: &[Vec<f64>]) {
    for (which, v) in NatsImpl::ALL.iter().zip(per_impl) {
        row.extra.push((
            format!("{}_{label}", which.name()),
            format!("{:.3}", median(v.clone())),
        ));
    }
}

/// NP: messages/s of each implementation, CPU per message of the clients and the server.
fn np_row(runs: usize) -> Result<Row, String> {
    let k = NatsImpl::ALL.len();
    let (mut clients, mut server, mut published) = (
        vec![Vec::new(); k],
        vec![Vec::new(); k],
        vec![Vec::new(); k],
    );
    let m = alternate(&NatsImpl::ALL, runs, |which| {
        let f = np(which, NP_COUNT)?;
        eprintln!(
            "  np {}: {:.0} msgs/s received ({:.0}/s published), CPU µs/msg: publisher {:.3}, \
             subscriber {:.3}, nats-server {:.3}",
            which.name(),
            f.msgs_per_s,
            f.published_per_s,
            f.cpu_pub,
            f.cpu_sub,
            f.cpu_server
        );
        let i = NatsImpl::ALL.iter().position(|w| *w == which).unwrap_or(0);
        clients[i].push(f.cpu_pub + f.cpu_sub);
        server[i].push(f.cpu_server);
        published[i].push(f.published_per_s);
        Ok(f.msgs_per_s)
    })?;
    let mut row = Row::new("NP", "msgs_per_s", true);
    for (which, v) in NatsImpl::ALL.iter().zip(&m) {
        row.figure(which.name(), *v);
    }
    let best = best_async_nats(&m, true);
    ratios(&mut row, best);
    push_cpu(&mut row, "clients_cpu_us_per_msg", &clients);
    push_cpu(&mut row, "server_cpu_us_per_msg", &server);
    for (which, v) in NatsImpl::ALL.iter().zip(&published) {
        row.extra.push((
            format!("{}_published_per_s", which.name()),
            format!("{:.0}", median(v.clone())),
        ));
    }
    row.extra.push(("messages".into(), NP_COUNT.to_string()));
    Ok(row)
}

/// NR: ns per round trip of each implementation, CPU per round trip.
fn nr_row(runs: usize) -> Result<Row, String> {
    let k = NatsImpl::ALL.len();
    let (mut clients, mut server) = (vec![Vec::new(); k], vec![Vec::new(); k]);
    let m = alternate(&NatsImpl::ALL, runs, |which| {
        let f = nr(which, NR_COUNT)?;
        eprintln!(
            "  nr {}: {:.1} µs per round trip ({:.0}/s), CPU µs/rt: requester {:.2}, \
             responder {:.2}, nats-server {:.2}",
            which.name(),
            f.ns_per_rt / 1e3,
            1e9 / f.ns_per_rt,
            f.cpu_requester,
            f.cpu_responder,
            f.cpu_server
        );
        let i = NatsImpl::ALL.iter().position(|w| *w == which).unwrap_or(0);
        clients[i].push(f.cpu_requester + f.cpu_responder);
        server[i].push(f.cpu_server);
        Ok(f.ns_per_rt)
    })?;
    let mut row = Row::new("NR", "ns_per_rt", false);
    for (which, v) in NatsImpl::ALL.iter().zip(&m) {
        row.figure(which.name(), *v);
    }
    let best = best_async_nats(&m, false);
    ratios(&mut row, best);
    for (which, v) in NatsImpl::ALL.iter().zip(&m) {
        row.extra.push((
            format!("{}_rt_per_s", which.name()),
            format!("{:.0}", 1e9 / v),
        ));
    }
    push_cpu(&mut row, "clients_cpu_us_per_rt", &clients);
    push_cpu(&mut row, "server_cpu_us_per_rt", &server);
    row.extra.push(("round_trips".into(), NR_COUNT.to_string()));
    Ok(row)
}

/// The rows of `np`, `nr` or `q1` (both).
pub(crate) fn rows(which: &str, runs: usize) -> Result<Vec<Row>, String> {
    match which {
        "np" => Ok(vec![np_row(runs)?]),
        "nr" => Ok(vec![nr_row(runs)?]),
        _ => Ok(vec![np_row(runs)?, nr_row(runs)?]),
    }
}
