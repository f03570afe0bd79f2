//! Local workloads L1–L4: sparkles on one and two catalysts, ping-pong, timers; against raw
//! crossbeam-channel and actix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use parking_lot::Mutex;
use tasktonic_core::{App, Ctx, Handle, Receive, Timer, TimerEvent, TimerId, Tonic};

/// Tells sent in L1/L2.
pub(crate) const TELLS: u64 = 10_000_000;
/// Round trips in L3.
pub(crate) const ROUND_TRIPS: u64 = 200_000;
const BATCH: u64 = 1_000;

type Clock = Arc<Mutex<Option<Duration>>>;

// ----- ours ------------------------------------------------------------------------------------

struct Sink {
    count: u64,
    start: Instant,
    out: Clock,
}

impl Tonic for Sink {
    type State = ();
}

/// The typed message of L1/L2's typed form (`Handle::send`, `Receive`): it carries data, as
/// users' messages do (a message with none would cost no allocation at all).
struct Count(u64);

impl Receive<Count> for Sink {
    fn receive(&mut self, ctx: &mut Ctx<Self>, Count(n): Count) {
        std::hint::black_box(n);
        self.tell(ctx);
    }
}

impl Sink {
    fn tell(&mut self, ctx: &mut Ctx<Self>) {
        self.count += 1;
        if self.count == TELLS {
            *self.out.lock() = Some(self.start.elapsed());
            ctx.stop_app();
        }
    }
}

struct Teller {
    sink: Option<Handle<Sink>>,
    sent: u64,
    remote: bool,
    /// Typed messages (`send(Count)`) rather than closures (`sparkle(Sink::tell)`).
    typed: bool,
    out: Clock,
}

impl Tonic for Teller {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let sink = Sink {
            count: 0,
            start: Instant::now(),
            out: self.out.clone(),
        };
        let mut infusion = ctx.infusion(sink);
        if self.remote {
            infusion = infusion.catalyst("sink");
        }
        self.sink = infusion.spawn().ok();
        ctx.handle().sparkle(Teller::batch).ok();
    }
}

impl Teller {
    fn batch(&mut self, ctx: &mut Ctx<Self>) {
        let Some(sink) = &self.sink else { return };
        let n = BATCH.min(TELLS - self.sent);
        if self.typed {
            for i in 0..n {
                let _ = sink.send(Count(self.sent + i));
            }
        } else {
            for _ in 0..n {
                let _ = sink.sparkle(Sink::tell);
            }
        }
        self.sent += n;
        if self.sent < TELLS {
            ctx.handle().sparkle(Teller::batch).ok();
        }
    }
}

/// L1 (`remote = false`) or L2 (`remote = true`): tells per second, as closures or (`typed`)
/// as typed messages through `Handle::send`.
pub(crate) fn ours_tell(remote: bool, typed: bool) -> f64 {
    let out: Clock = Arc::new(Mutex::new(None));
    let app = App::new("bench")
        .log_level(log::LevelFilter::Error)
        .tonic(Teller {
            sink: None,
            sent: 0,
            remote,
            typed,
            out: out.clone(),
        });
    app.run().ok();
    let elapsed = out.lock().unwrap_or(Duration::MAX);
    TELLS as f64 / elapsed.as_secs_f64()
}

struct Pinger {
    peer: Option<Handle<Ponger>>,
    left: u64,
    start: Instant,
    /// Typed messages (`Ping`, `Pong`) rather than closures.
    typed: bool,
    out: Clock,
}

struct Ponger {
    back: Handle<Pinger>,
}

/// L3's typed messages, carrying the round trip's number.
struct Ping(u64);
struct Pong(u64);

impl Receive<Ping> for Ponger {
    fn receive(&mut self, _: &mut Ctx<Self>, Ping(n): Ping) {
        let _ = self.back.send(Pong(n));
    }
}

impl Receive<Pong> for Pinger {
    fn receive(&mut self, ctx: &mut Ctx<Self>, Pong(n): Pong) {
        std::hint::black_box(n);
        self.pong(ctx);
    }
}

impl Tonic for Pinger {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let ponger = Ponger { back: ctx.handle() };
        self.peer = ctx.infusion(ponger).catalyst("pong").spawn().ok();
        self.start = Instant::now();
        self.ping();
    }
}

impl Pinger {
    fn ping(&self) {
        if let Some(p) = &self.peer {
            if self.typed {
                let _ = p.send(Ping(self.left));
            } else {
                let _ = p.sparkle(|p: &mut Ponger, _: &mut Ctx<Ponger>| {
                    let _ = p.back.sparkle(Pinger::pong);
                });
            }
        }
    }

    fn pong(&mut self, ctx: &mut Ctx<Self>) {
        self.left -= 1;
        if self.left == 0 {
            *self.out.lock() = Some(self.start.elapsed());
            ctx.stop_app();
        } else {
            self.ping();
        }
    }
}

impl Tonic for Ponger {
    type State = ();
}

/// L3: nanoseconds per round trip, as closures or (`typed`) as typed messages.
pub(crate) fn ours_ping_pong(typed: bool) -> f64 {
    let out: Clock = Arc::new(Mutex::new(None));
    App::new("bench")
        .log_level(log::LevelFilter::Error)
        .tonic(Pinger {
            peer: None,
            left: ROUND_TRIPS,
            start: Instant::now(),
            typed,
            out: out.clone(),
        })
        .run()
        .ok();
    out.lock().unwrap_or(Duration::MAX).as_nanos() as f64 / ROUND_TRIPS as f64
}

// ----- crossbeam -------------------------------------------------------------------------------

/// L2 floor: one thread sends, another receives, over an unbounded channel.
pub(crate) fn crossbeam_tell() -> f64 {
    let (tx, rx) = crossbeam_channel::unbounded::<()>();
    let start = Instant::now();
    let receiver = std::thread::spawn(move || {
        let mut n = 0u64;
        while rx.recv().is_ok() {
            n += 1;
            if n == TELLS {
                break;
            }
        }
        start.elapsed()
    });
    for _ in 0..TELLS {
        let _ = tx.send(());
    }
    let elapsed = receiver.join().unwrap_or(Duration::MAX);
    TELLS as f64 / elapsed.as_secs_f64()
}

/// L3 floor: two threads bounce one message over two channels.
pub(crate) fn crossbeam_ping_pong() -> f64 {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<()>(1);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<()>(1);
    let ponger = std::thread::spawn(move || {
        while ping_rx.recv().is_ok() {
            if pong_tx.send(()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    for _ in 0..ROUND_TRIPS {
        let _ = ping_tx.send(());
        let _ = pong_rx.recv();
    }
    let elapsed = start.elapsed();
    drop(ping_tx);
    let _ = ponger.join();
    elapsed.as_nanos() as f64 / ROUND_TRIPS as f64
}

// ----- actix -----------------------------------------------------------------------------------

#[derive(Message)]
#[rtype(result = "()")]
struct Tell;

#[derive(Message)]
#[rtype(result = "()")]
struct Next;

struct ActixSink {
    count: u64,
    start: Instant,
    out: Clock,
}

impl Actor for ActixSink {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        // Room for a windowed producer's requests: `send` queues at once instead of waiting.
        ctx.set_mailbox_capacity(4 * ACTIX_WINDOW as usize);
    }
}

impl Handler<Tell> for ActixSink {
    type Result = ();
    fn handle(&mut self, _: Tell, _: &mut Context<Self>) {
        self.count += 1;
        if self.count == TELLS {
            *self.out.lock() = Some(self.start.elapsed());
            System::current().stop();
        }
    }
}

struct ActixTeller {
    sink: Addr<ActixSink>,
    sent: u64,
}

impl Actor for ActixTeller {
    type Context = Context<Self>;
}

impl Handler<Next> for ActixTeller {
    type Result = ();
    fn handle(&mut self, _: Next, ctx: &mut Context<Self>) {
        let n = BATCH.min(TELLS - self.sent);
        for _ in 0..n {
            self.sink.do_send(Tell);
        }
        self.sent += n;
        if self.sent < TELLS {
            ctx.address().do_send(Next);
        }
    }
}

/// L1 (same arbiter) or L2 (two arbiters) for actix: tells per second.
pub(crate) fn actix_tell(remote: bool) -> f64 {
    actix_tells(remote, |sink| {
        ActixTeller { sink, sent: 0 }.start().do_send(Next);
    })
}

/// How many messages a windowed actix producer keeps in flight, at most.
const ACTIX_WINDOW: u64 = 1_000;

/// L1/L2 for actix as its docs apply back-pressure: `do_send`, and every half window a
/// `send(..)` whose reply is awaited half a window later — so at most a window's worth waits
/// in the mailbox (the plain `actix_tell` floods it: ~300 MB queued), and the queue never
/// drains to empty while the producer waits (awaiting the newest request would).
pub(crate) fn actix_windowed_tell(remote: bool) -> f64 {
    actix_tells(remote, |sink| {
        actix::spawn(async move {
            let half = ACTIX_WINDOW / 2;
            let mut in_flight = std::collections::VecDeque::new();
            for i in 1..=TELLS {
                if i % half == 0 {
                    in_flight.push_back(sink.send(Tell));
                    if in_flight.len() > 1
                        && let Some(oldest) = in_flight.pop_front()
                    {
                        let _ = oldest.await;
                    }
                } else {
                    sink.do_send(Tell);
                }
            }
            for request in in_flight {
                let _ = request.await;
            }
        });
    })
}

/// Run an actix system with a sink (on a second arbiter if `remote`) fed by `produce`:
/// tells per second.
fn actix_tells(remote: bool, produce: impl FnOnce(Addr<ActixSink>) + 'static) -> f64 {
    let out: Clock = Arc::new(Mutex::new(None));
    let o = out.clone();
    let system = System::new();
    let arbiter = remote.then(Arbiter::new);
    system.block_on(async move {
        let sink = ActixSink {
            count: 0,
            start: Instant::now(),
            out: o,
        };
        let sink = match &arbiter {
            Some(a) => ActixSink::start_in_arbiter(&a.handle(), |_| sink),
            None => sink.start(),
        };
        produce(sink);
    });
    let _ = system.run();
    let elapsed = out.lock().unwrap_or(Duration::MAX);
    TELLS as f64 / elapsed.as_secs_f64()
}

#[derive(Message)]
#[rtype(result = "()")]
struct Ball;

struct ActixPonger {
    back: Option<Recipient<Ball>>,
}

impl Actor for ActixPonger {
    type Context = Context<Self>;
}

impl Handler<Ball> for ActixPonger {
    type Result = ();
    fn handle(&mut self, _: Ball, _: &mut Context<Self>) {
        if let Some(b) = &self.back {
            b.do_send(Ball);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Peer(Addr<ActixPonger>);

struct ActixPinger {
    peer: Option<Addr<ActixPonger>>,
    left: u64,
    start: Instant,
    out: Clock,
}

impl Actor for ActixPinger {
    type Context = Context<Self>;
}

impl Handler<Peer> for ActixPinger {
    type Result = ();
    fn handle(&mut self, Peer(p): Peer, _: &mut Context<Self>) {
        self.start = Instant::now();
        p.do_send(Ball);
        self.peer = Some(p);
    }
}

impl Handler<Ball> for ActixPinger {
    type Result = ();
    fn handle(&mut self, _: Ball, _: &mut Context<Self>) {
        self.left -= 1;
        if self.left == 0 {
            *self.out.lock() = Some(self.start.elapsed());
            System::current().stop();
        } else if let Some(p) = &self.peer {
            p.do_send(Ball);
        }
    }
}

/// L3 for actix (two arbiters): nanoseconds per round trip.
pub(crate) fn actix_ping_pong() -> f64 {
    let out: Clock = Arc::new(Mutex::new(None));
    let o = out.clone();
    let system = System::new();
    let arbiter = Arbiter::new();
    system.block_on(async move {
        let pinger = ActixPinger {
            peer: None,
            left: ROUND_TRIPS,
            start: Instant::now(),
            out: o,
        }
        .start();
        let back = pinger.clone().recipient();
        let ponger = ActixPonger::start_in_arbiter(&arbiter.handle(), move |_| ActixPonger {
            back: Some(back),
        });
        pinger.do_send(Peer(ponger));
    });
    let _ = system.run();
    out.lock().unwrap_or(Duration::MAX).as_nanos() as f64 / ROUND_TRIPS as f64
}

// ----- L4: timers ------------------------------------------------------------------------------

/// L4's figures: ns per arm and per cancel with 1M live timers; firing order and rate.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimerFigures {
    pub(crate) arm_ns: f64,
    pub(crate) cancel_ns: f64,
    pub(crate) fired_in_order: bool,
    pub(crate) fire_per_s: f64,
}

impl TimerFigures {
    /// One line: arm ns, cancel ns, fired per second, order exact (what `sample l4` prints).
    pub(crate) fn line(&self) -> String {
        format!(
            "{:.1} {:.2} {:.0} {}",
            self.arm_ns, self.cancel_ns, self.fire_per_s, self.fired_in_order
        )
    }

    /// The figures from one [`line`](TimerFigures::line).
    pub(crate) fn parse(line: &str) -> Option<TimerFigures> {
        let mut it = line.split_whitespace();
        Some(TimerFigures {
            arm_ns: it.next()?.parse().ok()?,
            cancel_ns: it.next()?.parse().ok()?,
            fire_per_s: it.next()?.parse().ok()?,
            fired_in_order: it.next()?.parse().ok()?,
        })
    }
}

struct TimerBench {
    out: Arc<Mutex<TimerFigures>>,
    fired: u64,
    fire_start: Instant,
}

const LIVE: u64 = 1_000_000;
const MEASURED: u64 = 200_000;
const FIRING: u64 = 100_000;

impl Tonic for TimerBench {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let far = Duration::from_secs(3600);
        // 1M live timers, spread out.
        let live: Vec<TimerId> = (0..LIVE)
            .map(|i| ctx.timer(Timer::once(far + Duration::from_micros(i))))
            .collect();
        // Arm and cancel more while those are live.
        let start = Instant::now();
        let measured: Vec<TimerId> = (0..MEASURED)
            .map(|i| {
                ctx.timer(Timer::once(
                    far + Duration::from_nanos(i * 7919 % 1_000_000_000),
                ))
            })
            .collect();
        let arm = start.elapsed();
        let start = Instant::now();
        for id in measured {
            ctx.cancel_timer(id);
        }
        let cancel = start.elapsed();
        for id in live {
            ctx.cancel_timer(id);
        }
        {
            let mut out = self.out.lock();
            out.arm_ns = arm.as_nanos() as f64 / MEASURED as f64;
            out.cancel_ns = cancel.as_nanos() as f64 / MEASURED as f64;
        }
        // 100k timers firing: deadlines in a shuffled order, markers = rank.
        self.fire_start = Instant::now();
        for i in 0..FIRING {
            let rank = (i * 7919) % FIRING; // a permutation (7919 is prime, coprime with 100k)
            ctx.timer(Timer::once(Duration::from_micros(rank)).marker(rank));
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _timer: &TimerEvent) {
        self.fired += 1;
        if self.fired == FIRING {
            let mut out = self.out.lock();
            out.fire_per_s = FIRING as f64 / self.fire_start.elapsed().as_secs_f64();
            ctx.finish();
        }
    }
}

struct OrderCheck {
    last: Option<u64>,
    in_order: bool,
}

impl Tonic for OrderCheck {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        for i in 0..FIRING {
            let rank = (i * 7919) % FIRING;
            ctx.timer(Timer::once(Duration::from_micros(rank)).marker(rank));
        }
    }
    fn on_timer(&mut self, _: &mut Ctx<Self>, t: &TimerEvent) {
        if self.last.is_some_and(|l| t.marker < l) {
            self.in_order = false;
        }
        self.last = Some(t.marker);
    }
}

/// L4's order check: under the Distiller's virtual clock deadlines are exact (the real clock
/// moves between two arms), so "exact order" can be checked exactly.
fn exact_order() -> bool {
    let mut d = tasktonic_core::Distiller::new();
    let h = d.spawn(OrderCheck {
        last: None,
        in_order: true,
    });
    d.run(tasktonic_core::Contract::new().timeout(Duration::from_secs(1)));
    d.inspect(&h, |t, _| t.in_order && t.last == Some(FIRING - 1))
        .unwrap_or(false)
}

/// L4 for ours.
pub(crate) fn ours_timers() -> TimerFigures {
    let out = Arc::new(Mutex::new(TimerFigures::default()));
    App::new("bench")
        .log_level(log::LevelFilter::Error)
        .tonic(TimerBench {
            out: out.clone(),
            fired: 0,
            fire_start: Instant::now(),
        })
        .run()
        .ok();
    let mut figures = *out.lock();
    figures.fired_in_order = exact_order();
    figures
}

// ----- I1: an idle app, and waking a parked catalyst -----------------------------------------

/// What `sample i1 ours` measures: an idle app's CPU and wake-ups, and how long a send from a
/// plain thread takes to run on a parked catalyst.
pub(crate) struct IdleFigures {
    /// This process's CPU over `IDLE_WINDOW`, in percent of one core.
    pub(crate) cpu_pct: f64,
    /// Its threads' context switches in that window.
    pub(crate) wakeups: u64,
    pub(crate) wake_p50_us: f64,
    pub(crate) wake_p99_us: f64,
}

impl IdleFigures {
    /// One line (what `sample i1 ours` prints).
    pub(crate) fn line(&self) -> String {
        format!(
            "{:.4} {} {:.1} {:.1}",
            self.cpu_pct, self.wakeups, self.wake_p50_us, self.wake_p99_us
        )
    }

    pub(crate) fn parse(line: &str) -> Option<IdleFigures> {
        let mut it = line.split_whitespace();
        Some(IdleFigures {
            cpu_pct: it.next()?.parse().ok()?,
            wakeups: it.next()?.parse().ok()?,
            wake_p50_us: it.next()?.parse().ok()?,
            wake_p99_us: it.next()?.parse().ok()?,
        })
    }
}

/// Idles with a timer an hour away (on a catalyst of its own, so two catalysts are parked);
/// answers a `Stamp` with how long it took to arrive.
struct Idler;

struct Stamp(Instant, crossbeam_channel::Sender<Duration>);

impl Tonic for Idler {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        ctx.timer(Timer::once(Duration::from_secs(3600)));
    }
}

impl Receive<Stamp> for Idler {
    fn receive(&mut self, _: &mut Ctx<Self>, Stamp(sent, back): Stamp) {
        let _ = back.send(sent.elapsed());
    }
}

/// A top-level tonic that places the idler on its own catalyst and stays.
struct IdleHost;

impl Tonic for IdleHost {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        ctx.timer(Timer::once(Duration::from_secs(3600)));
        let _ = ctx.infusion(Idler).name("idler").catalyst("idle").spawn();
    }
}

/// I1: see [`IdleFigures`].
pub(crate) fn ours_idle() -> IdleFigures {
    const IDLE_WINDOW: Duration = Duration::from_secs(5);
    const WAKES: usize = 200;
    let pid = std::process::id();
    let app = App::new("idle")
        .log_level(log::LevelFilter::Error)
        .tonic(IdleHost)
        .spawn()
        .expect("the app starts");
    let (tx, rx) = crossbeam_channel::bounded(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let idler = loop {
        // Placed by IdleHost's start, on the app's thread: wait for it, bounded.
        if let Some(h) = app.lookup::<Idler>("idler") {
            break h;
        }
        assert!(Instant::now() < deadline, "i1: the idler never started");
        std::thread::yield_now();
    };
    std::thread::sleep(Duration::from_millis(200));
    let (ns, wakes) = (crate::procfs::cpu_ns(pid), crate::procfs::wakeups(pid));
    std::thread::sleep(IDLE_WINDOW);
    let used = crate::procfs::cpu_ns(pid).saturating_sub(ns) as f64;
    // Less this thread's own wake-up from its sleep.
    let wakeups = crate::procfs::wakeups(pid)
        .saturating_sub(wakes)
        .saturating_sub(1);
    let cpu_pct = used / IDLE_WINDOW.as_nanos() as f64 * 100.0;
    let mut lat: Vec<f64> = (0..WAKES)
        .map(|_| {
            // Long enough for the catalyst to have stopped spinning and parked.
            std::thread::sleep(Duration::from_millis(5));
            let _ = idler.send(Stamp(Instant::now(), tx.clone()));
            // A lost wake-up is what this looks for: it fails the sample, not a percentile.
            let took = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("i1: a send to a parked catalyst was not run within 10 s");
            took.as_secs_f64() * 1e6
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    app.stop();
    let _ = app.join_timeout(Duration::from_secs(10));
    IdleFigures {
        cpu_pct,
        wakeups,
        wake_p50_us: lat[WAKES / 2],
        wake_p99_us: lat[WAKES * 99 / 100],
    }
}
