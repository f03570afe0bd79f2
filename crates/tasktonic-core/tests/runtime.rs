//! The runtime's guarantees: FIFO per sender, one sparkle at a time, lifecycle order,
//! sends to completed tonics, `App::run` returning, catalysts ending and restarting.

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use parking_lot::Mutex;
use tasktonic_core::{App, Ctx, Handle, Lifecycle, Receive, SendError, Tonic, TonicRef};
use util::{channel, recv, run_bounded, spawn_app};

/// Records, per sender, the last sequence number seen; counts order violations.
#[derive(Default)]
struct Sink {
    last: Vec<Option<u64>>,
    received: u64,
    violations: u64,
    inside: Arc<AtomicBool>,
    overlaps: u64,
}

struct Tagged {
    sender: usize,
    seq: u64,
}

impl Tonic for Sink {
    type State = ();
}

impl Receive<Tagged> for Sink {
    fn receive(&mut self, _ctx: &mut Ctx<Self>, msg: Tagged) {
        if self.inside.swap(true, Ordering::SeqCst) {
            self.overlaps += 1;
        }
        if self.last.len() <= msg.sender {
            self.last.resize(msg.sender + 1, None);
        }
        if let Some(prev) = self.last[msg.sender]
            && msg.seq != prev + 1
        {
            self.violations += 1;
        }
        self.last[msg.sender] = Some(msg.seq);
        self.received += 1;
        self.inside.store(false, Ordering::SeqCst);
    }
}

/// Spawns the sink on its own catalyst and hands its handle out.
struct Host<T: Tonic> {
    make: Option<T>,
    out: Sender<Handle<T>>,
    catalyst: &'static str,
}

impl<T: Tonic> Tonic for Host<T> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(t) = self.make.take() {
            let h = ctx
                .infusion(t)
                .catalyst(self.catalyst)
                .spawn()
                .expect("spawn");
            self.out.send(h).expect("test alive");
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _infusion: &TonicRef) {
        ctx.finish();
    }
}

/// Run an app whose only job is to host `t` on `catalyst`; it ends when `t` completes.
fn host<T: Tonic>(t: T, catalyst: &'static str) -> (Handle<T>, util::AppThread) {
    let (tx, rx) = channel();
    let thread = spawn_app(App::new("test").tonic(Host {
        make: Some(t),
        out: tx,
        catalyst,
    }));
    (recv(&rx), thread)
}

#[test]
fn fifo_per_sender_under_contention_and_never_concurrent() {
    const THREADS: usize = 4;
    const PER: u64 = 20_000;
    let (sink, app) = host(Sink::default(), "sink");
    let senders: Vec<_> = (0..THREADS)
        .map(|sender| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for seq in 0..PER {
                    sink.send(Tagged { sender, seq }).expect("sink alive");
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    let (received, violations, overlaps, last) = sink
        .ask_blocking(util::LIMIT, |s, _| {
            (s.received, s.violations, s.overlaps, s.last.clone())
        })
        .expect("answer");
    assert_eq!(received, THREADS as u64 * PER);
    assert_eq!(violations, 0, "FIFO per sender was broken");
    assert_eq!(overlaps, 0, "two sparkles of one tonic overlapped");
    assert!(last.iter().all(|l| *l == Some(PER - 1)));
    sink.finish().expect("alive");
    app.join().expect("clean run");
}

/// A tonic on another catalyst and a tonic on the sink's own catalyst also keep FIFO.
struct Burst {
    to: Handle<Sink>,
    sender: usize,
    n: u64,
}

impl Tonic for Burst {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        for seq in 0..self.n {
            self.to
                .send(Tagged {
                    sender: self.sender,
                    seq,
                })
                .expect("sink alive");
        }
        ctx.finish();
    }
}

struct Mixed {
    out: Sender<(u64, u64, u64)>,
    sink: Option<Handle<Sink>>,
    bursts: usize,
}

impl Tonic for Mixed {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let sink = ctx
            .infusion(Sink::default())
            .catalyst("s")
            .spawn()
            .expect("spawn");
        for (sender, catalyst) in [(0, "s"), (1, "other"), (2, "main")] {
            let burst = Burst {
                to: sink.clone(),
                sender,
                n: 10_000,
            };
            ctx.infusion(burst)
                .catalyst(catalyst)
                .spawn()
                .expect("spawn");
        }
        self.bursts = 3;
        self.sink = Some(sink);
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        self.bursts = self.bursts.saturating_sub(1);
        if self.bursts == 0
            && let Some(sink) = self.sink.take()
        {
            let out = self.out.clone();
            ctx.ask(
                &sink,
                util::LIMIT,
                |s, _| (s.received, s.violations, s.overlaps),
                move |_, ctx, r| {
                    out.send(r.expect("answer")).expect("test alive");
                    ctx.finish();
                },
            );
        }
    }
}

#[test]
fn fifo_from_tonics_on_same_and_other_catalysts() {
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(Mixed {
        out: tx,
        sink: None,
        bursts: 0,
    }))
    .expect("clean run");
    assert_eq!(recv(&rx), (30_000, 0, 0));
}

/// Records lifecycle events of a tree: parent → child → grandchild.
struct Node {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    children: Vec<&'static str>,
    finish_after_start: bool,
}

impl Tonic for Node {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        self.log.lock().push(format!("{} start", self.name));
        for (i, child) in self.children.iter().enumerate() {
            let node = Node {
                name: child,
                log: self.log.clone(),
                children: if i == 0 && self.name == "parent" {
                    vec!["grandchild"]
                } else {
                    vec![]
                },
                finish_after_start: false,
            };
            ctx.infusion(node)
                .name(*child)
                .catalyst(if i % 2 == 0 { "a" } else { "b" })
                .spawn()
                .expect("spawn");
        }
        if self.finish_after_start {
            ctx.finish();
        }
    }
    fn on_finishing(&mut self, _ctx: &mut Ctx<Self>) {
        self.log.lock().push(format!("{} finishing", self.name));
    }
    fn on_finished(&mut self, ctx: &mut Ctx<Self>) {
        assert!(ctx.infusions().is_empty());
        self.log.lock().push(format!("{} finished", self.name));
    }
    fn on_infusion_completed(&mut self, _ctx: &mut Ctx<Self>, infusion: &TonicRef) {
        assert_eq!(infusion.lifecycle(), Lifecycle::Completed);
        self.log
            .lock()
            .push(format!("{} saw {} complete", self.name, infusion.name()));
    }
}

#[test]
fn finishing_a_base_finishes_its_infusions_first() {
    let log = Arc::new(Mutex::new(Vec::new()));
    // The parent finishes only when told, after the tree has started.
    let (tx, rx) = channel::<Handle<Node>>();
    struct Starter {
        log: Arc<Mutex<Vec<String>>>,
        tx: Sender<Handle<Node>>,
    }
    impl Tonic for Starter {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            let parent = Node {
                name: "parent",
                log: self.log.clone(),
                children: vec!["child1", "child2"],
                finish_after_start: false,
            };
            let h = ctx.infusion(parent).name("parent").spawn().expect("spawn");
            self.tx.send(h).expect("test alive");
        }
        fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
            ctx.finish();
        }
    }
    let app = spawn_app(App::new("t").tonic(Starter {
        log: log.clone(),
        tx,
    }));
    let parent = recv(&rx);
    // Wait (bounded) until all four have started, by asking the parent's ledger.
    let started =
        |log: &Arc<Mutex<Vec<String>>>| log.lock().iter().filter(|l| l.ends_with(" start")).count();
    let deadline = std::time::Instant::now() + util::LIMIT;
    while started(&log) < 4 {
        assert!(std::time::Instant::now() < deadline, "tree did not start");
        parent
            .ask_blocking(util::LIMIT, |_, ctx| ctx.infusions().len())
            .expect("answer");
        std::thread::yield_now();
    }
    parent.finish().expect("alive");
    app.join().expect("clean run");
    let log = log.lock().clone();
    let pos = |s: &str| {
        log.iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("{s} missing from {log:?}"))
    };
    assert!(pos("parent finishing") < pos("child1 finishing"));
    assert!(pos("child1 finishing") < pos("grandchild finishing"));
    assert!(pos("grandchild finished") < pos("child1 saw grandchild complete"));
    assert!(pos("child1 saw grandchild complete") < pos("child1 finished"));
    assert!(pos("child1 finished") < pos("parent saw child1 complete"));
    assert!(pos("child2 finished") < pos("parent saw child2 complete"));
    assert!(pos("parent saw child1 complete") < pos("parent finished"));
    assert!(pos("parent saw child2 complete") < pos("parent finished"));
}

struct Quiet;
impl Tonic for Quiet {
    type State = ();
}
impl Receive<String> for Quiet {
    fn receive(&mut self, _ctx: &mut Ctx<Self>, _msg: String) {}
}

#[test]
fn sending_to_a_completed_tonic_hands_the_sparkle_back() {
    let (tx, rx) = channel();
    struct Parent {
        tx: Sender<Handle<Quiet>>,
    }
    impl Tonic for Parent {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            let q = ctx.spawn(Quiet);
            q.finish().expect("alive");
            self.tx.send(q).expect("test alive");
        }
        fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
            ctx.finish();
        }
    }
    run_bounded(App::new("t").tonic(Parent { tx })).expect("clean run");
    let q = recv(&rx);
    assert!(q.is_completed());
    let err = q.send("hello".to_string()).expect_err("completed");
    assert!(err.is_completed());
    assert_eq!(err.into_inner(), "hello");
    let marker = Arc::new(AtomicUsize::new(7));
    let m = marker.clone();
    match q.sparkle(move |_, _| m.store(0, Ordering::SeqCst)) {
        Err(SendError::Completed(f)) => drop(f),
        other => panic!("expected Completed, got {other:?}"),
    }
    assert_eq!(marker.load(Ordering::SeqCst), 7);
    assert_eq!(
        Arc::strong_count(&marker),
        1,
        "the returned sparkle was dropped with its capture"
    );
    assert!(q.finish().is_err());
}

#[test]
fn run_returns_with_no_tonics_and_after_all_work() {
    run_bounded(App::new("empty")).expect("nothing to do");
    struct Counter {
        left: u32,
    }
    impl Tonic for Counter {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            ctx.handle().sparkle(|c, ctx| c.tick(ctx)).ok();
        }
    }
    impl Counter {
        fn tick(&mut self, ctx: &mut Ctx<Self>) {
            if self.left == 0 {
                ctx.finish();
            } else {
                self.left -= 1;
                ctx.handle().sparkle(|c, ctx| c.tick(ctx)).ok();
            }
        }
    }
    run_bounded(
        App::new("busy")
            .tonic(Counter { left: 1000 })
            .tonic_on("w1", Counter { left: 1000 })
            .tonic_on("w2", Counter { left: 1000 }),
    )
    .expect("clean run");
}

/// A catalyst ends when its last tonic completes, and a later spawn starts it again.
#[test]
fn catalysts_end_and_restart_and_name_their_threads() {
    struct Probe {
        out: Sender<String>,
    }
    impl Tonic for Probe {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            let name = std::thread::current().name().unwrap_or("").to_string();
            assert_eq!(ctx.catalyst(), name);
            self.out.send(name).expect("test alive");
            ctx.finish();
        }
    }
    struct Twice {
        out: Sender<String>,
        round: u32,
    }
    impl Tonic for Twice {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            ctx.infusion(Probe {
                out: self.out.clone(),
            })
            .catalyst("w")
            .spawn()
            .expect("spawn");
        }
        fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
            self.round += 1;
            if self.round < 3 {
                ctx.infusion(Probe {
                    out: self.out.clone(),
                })
                .catalyst("w")
                .spawn()
                .expect("spawn");
            } else {
                ctx.finish();
            }
        }
    }
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(Twice { out: tx, round: 0 })).expect("clean run");
    let names: Vec<String> = rx.try_iter().collect();
    assert_eq!(names, vec!["w", "w", "w"]);
}

#[test]
fn names_are_unique_in_the_ledger() {
    struct Namer {
        out: Sender<(bool, Option<String>)>,
    }
    impl Tonic for Namer {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            let first = ctx.infusion(Quiet).name("solo").spawn().expect("free name");
            let second = ctx.infusion(Quiet).name("solo").spawn();
            let found = ctx
                .ledger()
                .lookup::<Quiet>("solo")
                .map(|h| h.name().to_string());
            assert_eq!(ctx.ledger().lookup::<Namer>("solo"), None, "wrong type");
            assert_eq!(
                ctx.ledger().by_name("solo").map(|t| t.id()),
                Some(first.id())
            );
            self.out.send((second.is_err(), found)).expect("test alive");
            ctx.finish();
        }
    }
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(Namer { out: tx })).expect("clean run");
    assert_eq!(recv(&rx), (true, Some("solo".to_string())));
}

#[test]
fn sparkles_sent_before_start_run_after_on_start() {
    struct Order {
        seen: Vec<&'static str>,
        out: Sender<Vec<&'static str>>,
    }
    impl Tonic for Order {
        type State = ();
        fn on_start(&mut self, _ctx: &mut Ctx<Self>) {
            self.seen.push("start");
        }
    }
    struct Spawner {
        out: Sender<Vec<&'static str>>,
    }
    impl Tonic for Spawner {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            for catalyst in ["main", "far"] {
                let h = ctx
                    .infusion(Order {
                        seen: vec![],
                        out: self.out.clone(),
                    })
                    .catalyst(catalyst)
                    .spawn()
                    .expect("spawn");
                h.sparkle(|o, _| o.seen.push("first")).ok();
                h.sparkle(|o, ctx| {
                    o.seen.push("second");
                    o.out.send(o.seen.clone()).ok();
                    ctx.finish();
                })
                .ok();
            }
        }
        fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
            if ctx.infusions().is_empty() {
                ctx.finish();
            }
        }
    }
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(Spawner { out: tx })).expect("clean run");
    for _ in 0..2 {
        assert_eq!(recv(&rx), vec!["start", "first", "second"]);
    }
}

#[test]
fn stopper_stops_a_running_app() {
    struct Forever;
    impl Tonic for Forever {
        type State = ();
    }
    let app = App::new("t").tonic(Forever).tonic_on("x", Forever);
    let stopper = app.stopper();
    let running = spawn_app(app);
    stopper.stop();
    running.join().expect("clean stop");
    // Stopping before run: run starts, then stops at once.
    let app = App::new("t").tonic(Forever);
    app.stopper().stop();
    run_bounded(app).expect("clean stop");
    let _ = Duration::ZERO;
}

#[test]
fn delayed_completion_waits_for_release_and_sparkles_keep_running() {
    struct Flusher {
        out: Sender<&'static str>,
    }
    impl Tonic for Flusher {
        type State = ();
        fn on_finishing(&mut self, ctx: &mut Ctx<Self>) {
            ctx.delay_completion();
            self.out.send("finishing").ok();
            // Work still to do: a sparkle releases the hold later.
            ctx.handle()
                .sparkle(|f, ctx| {
                    f.out.send("flushed").ok();
                    ctx.allow_completion();
                })
                .ok();
        }
        fn on_finished(&mut self, _ctx: &mut Ctx<Self>) {
            self.out.send("finished").ok();
        }
    }
    let (tx, rx) = channel();
    struct Root(Sender<&'static str>);
    impl Tonic for Root {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            ctx.spawn(Flusher {
                out: self.0.clone(),
            });
            ctx.finish();
        }
    }
    run_bounded(App::new("t").tonic(Root(tx))).expect("clean run");
    let seen: Vec<&str> = rx.try_iter().collect();
    assert_eq!(seen, vec!["finishing", "flushed", "finished"]);
}

/// Stopping the app refuses new top-level tonics only: a tonic may still spawn infusions (and
/// use services) while it finishes; they are finished at once.
#[test]
fn spawning_while_the_app_stops_is_not_a_failure() {
    struct Late;
    impl Tonic for Late {
        type State = ();
    }
    struct Registry;
    impl Tonic for Registry {
        type State = ();
    }
    impl tasktonic_core::Service for Registry {
        fn create() -> Self {
            Registry
        }
    }
    struct Stopping(Sender<bool>);
    impl Tonic for Stopping {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            ctx.stop_app();
        }
        fn on_finishing(&mut self, ctx: &mut Ctx<Self>) {
            let late = ctx.spawn(Late);
            let _registry = ctx.service::<Registry>();
            self.0.send(late.lifecycle() != Lifecycle::Completed).ok();
        }
    }
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(Stopping(tx))).expect("no failure while stopping");
    assert!(recv(&rx));
}

/// A base whose infusions complete in an order unlike the order they were spawned in.
struct Brood {
    kids: Vec<Handle<Idle>>,
    /// After each completion: the ids `infusions()` listed, sorted.
    seen: Vec<Vec<u64>>,
}

struct Idle;
impl Tonic for Idle {
    type State = ();
}

impl Tonic for Brood {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        self.kids = (0..6).map(|_| ctx.spawn(Idle)).collect();
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        let mut ids: Vec<u64> = ctx.infusions().iter().map(|c| c.id().as_u64()).collect();
        ids.sort_unstable();
        self.seen.push(ids);
    }
}

#[test]
fn infusions_lists_exactly_the_live_infusions_whatever_order_they_complete_in() {
    let mut d = tasktonic_core::Distiller::new();
    let base = d.spawn(Brood {
        kids: Vec::new(),
        seen: Vec::new(),
    });
    d.run(tasktonic_core::Contract::new().timeout(Duration::from_secs(1)));
    let kids = d.inspect(&base, |b, _| b.kids.clone()).expect("base alive");
    let ids: Vec<u64> = kids.iter().map(|k| k.id().as_u64()).collect();
    // The middle one, the last one, the first one, then the rest.
    let order = [2, 5, 0, 4, 1, 3];
    for &i in &order {
        kids[i].finish().expect("alive");
        d.run(tasktonic_core::Contract::new().timeout(Duration::from_secs(1)));
    }
    let seen = d.inspect(&base, |b, _| b.seen.clone()).expect("base alive");
    let expected: Vec<Vec<u64>> = (1..=order.len())
        .map(|n| {
            let mut left: Vec<u64> = ids
                .iter()
                .enumerate()
                .filter(|(i, _)| !order[..n].contains(i))
                .map(|(_, id)| *id)
                .collect();
            left.sort_unstable();
            left
        })
        .collect();
    assert_eq!(seen, expected);
}

/// A catalyst whose parker fails to be made leaves nothing behind: a second try opens it
/// (before, a thread parker stood in under the name for good). A plain catalyst's name is
/// another kind; `main` too.
#[test]
fn a_catalyst_whose_parker_cannot_be_made_is_not_registered() {
    use tasktonic_core::extend::{OpenError, Parker, ThreadParker, open_catalyst};

    struct Opener(crossbeam_channel::Sender<String>);
    impl Tonic for Opener {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            let failed = open_catalyst(
                ctx,
                "polled",
                || -> Result<(Box<dyn Parker>, Arc<u32>), _> { Err("no poller today") },
            );
            self.0
                .send(format!("{}", failed.expect_err("it failed")))
                .ok();
            let opened = open_catalyst(ctx, "polled", || {
                Ok::<_, &str>((
                    Box::new(ThreadParker::new()) as Box<dyn Parker>,
                    Arc::new(7u32),
                ))
            });
            self.0
                .send({
                    let (catalyst, shared) = opened.expect("opened");
                    format!("opened {shared} on {}", catalyst.name())
                })
                .ok();
            ctx.infusion(Idle).catalyst("plain").spawn().ok();
            for name in ["plain", "main"] {
                let other = open_catalyst(
                    ctx,
                    name,
                    || -> Result<(Box<dyn Parker>, Arc<u32>), &str> { unreachable!("it exists") },
                );
                match other {
                    Err(OpenError::OtherKind(n)) => self.0.send(format!("other {n}")).ok(),
                    _ => self.0.send(format!("{name}: not another kind")).ok(),
                };
            }
            ctx.finish();
        }
    }
    struct Idle;
    impl Tonic for Idle {
        type State = ();
    }
    let (tx, rx) = crossbeam_channel::unbounded();
    util::run_bounded(App::new("open").tonic(Opener(tx))).expect("ran");
    let seen: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        seen,
        [
            "cannot make the catalyst's parker: no poller today",
            "opened 7 on polled",
            "other plain",
            "other main"
        ]
    );
}

/// An app on its own thread: its top-level tonic is reachable by name at once; a bounded
/// join hands the app back while it runs; stopped, it ends and the join returns.
#[test]
fn a_spawned_app_is_reached_by_name_and_joined_with_a_bound() {
    struct Idle;
    impl Tonic for Idle {
        type State = ();
    }
    let app = App::new("spawned")
        .tonic_named("idle", Idle)
        .spawn()
        .expect("started");
    let idle = app
        .lookup::<Idle>("idle")
        .expect("placed before spawn returns");
    assert!(app.lookup::<Idle>("nobody").is_none());
    // Still running (nothing finishes it): the bounded join gives the app back.
    let app = app
        .join_timeout(Duration::from_millis(10))
        .expect_err("it still runs");
    assert!(!idle.is_completed());
    app.stop();
    let result = app.join_timeout(util::LIMIT).expect("ended once stopped");
    assert!(result.is_ok(), "{result:?}");
    assert!(idle.is_completed());
}

/// A catalyst that cannot have a thread (its name cannot name one) refuses the spawn with
/// `SpawnError::NoThread`, handing the tonic back and leaving nothing behind: the ledger as
/// before, and the app still ends (its count of live tonics is right).
#[test]
fn a_spawn_whose_catalyst_cannot_have_a_thread_is_refused_and_leaves_nothing() {
    struct Idle(u32);
    impl Tonic for Idle {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            ctx.finish();
        }
    }
    struct Spawner(Sender<String>);
    impl Tonic for Spawner {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            let before = ctx.ledger().len();
            // By name: refused before anything is made. Typed: the catalyst exists, the
            // thread start fails, and the reservation is undone.
            let bad = ctx.catalyst_named("bad\0name");
            let named = ctx.infusion(Idle(6)).catalyst("bad\0name").spawn();
            let typed = ctx.infusion(Idle(7)).on(&bad).spawn();
            for spawned in [named, typed] {
                match spawned {
                    Err(tasktonic_core::SpawnError::NoThread(why, Idle(n))) => {
                        self.0.send(format!("refused {n}: {why}")).ok();
                    }
                    Err(e) => panic!("{e}"),
                    Ok(_) => panic!("spawned on a catalyst with no thread"),
                }
            }
            assert_eq!(ctx.ledger().len(), before);
            // A good one after it works, on a new thread.
            ctx.infusion(Idle(8)).catalyst("good").spawn().ok();
        }
        fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
            self.0.send("good one done".into()).ok();
            ctx.finish();
        }
    }
    let (tx, rx) = channel();
    run_bounded(App::new("nothread").tonic(Spawner(tx))).expect("ran");
    let seen: Vec<String> = rx.try_iter().collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[0].starts_with("refused 6: catalyst name"), "{seen:?}");
    assert!(
        seen[1].starts_with("refused 7: catalyst bad\0name: catalyst name"),
        "{seen:?}"
    );
    assert_eq!(seen[2], "good one done");
}

/// A tonic built with its handle whose constructor panics leaves nothing behind: its name is
/// free again, and the app still ends (the panic fails the tonic that spawned it).
#[test]
fn an_infusion_whose_constructor_panics_leaves_nothing_behind() {
    struct Built;
    impl Tonic for Built {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            ctx.finish();
        }
    }
    struct Spawner;
    impl Tonic for Spawner {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            let _ = ctx
                .infusion_with(|_: &Handle<Built>| -> Built { panic!("cannot build") })
                .name("built")
                .catalyst("builders")
                .spawn();
        }
        fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
            ctx.finish();
        }
    }
    struct Top(Sender<String>);
    impl Tonic for Top {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            ctx.infusion(Spawner).spawn().ok();
        }
        fn on_infusion_failed(
            &mut self,
            ctx: &mut Ctx<Self>,
            failure: &tasktonic_core::Failure,
        ) -> tasktonic_core::FailureAction {
            self.0.send(format!("failed: {}", failure.message)).ok();
            // The name is free again, and the catalyst takes a tonic.
            let again = ctx
                .infusion(Built)
                .name("built")
                .catalyst("builders")
                .spawn();
            self.0.send(format!("again: {}", again.is_ok())).ok();
            tasktonic_core::FailureAction::Handled
        }
        fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
            ctx.finish();
        }
    }
    let (tx, rx) = channel();
    run_bounded(App::new("ctor").tonic(Top(tx))).expect("handled");
    let seen: Vec<String> = rx.try_iter().collect();
    assert_eq!(seen, ["failed: cannot build", "again: true"], "{seen:?}");
}

/// A typed catalyst of another app is refused: placing on it would run the tonic on a
/// thread of that app, or on a main catalyst nobody runs.
#[test]
fn a_catalyst_of_another_app_is_refused() {
    struct Idle;
    impl Tonic for Idle {
        type State = ();
    }
    struct Taker(Sender<tasktonic_core::Catalyst>);
    impl Tonic for Taker {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            self.0.send(ctx.catalyst_named("theirs")).ok();
            ctx.finish();
        }
    }
    let (tx, rx) = channel();
    run_bounded(App::new("other").tonic(Taker(tx))).expect("ran");
    let theirs = recv(&rx);
    struct Placer(tasktonic_core::Catalyst, Sender<String>);
    impl Tonic for Placer {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            match ctx.infusion(Idle).on(&self.0).spawn() {
                Err(e @ tasktonic_core::SpawnError::OtherApp(..)) => {
                    self.1.send(e.to_string()).ok()
                }
                other => self.1.send(format!("{:?}", other.map(|_| ()))).ok(),
            };
            ctx.finish();
        }
    }
    let (tx, rx) = channel();
    run_bounded(App::new("mine").tonic(Placer(theirs, tx))).expect("ran");
    assert_eq!(recv(&rx), "catalyst \"theirs\" belongs to another app");
}
