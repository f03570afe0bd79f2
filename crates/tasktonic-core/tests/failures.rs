//! Panic isolation, failure reporting, escalation and restart policies.

mod util;

use std::time::Duration;

use crossbeam_channel::Sender;
use tasktonic_core::extend::SparkleInline;
use tasktonic_core::{App, Ctx, Failure, FailureAction, Handle, Restart, Tonic, TonicRef};
use util::{channel, recv, run_bounded};

#[derive(Default)]
struct Fragile {
    count: u32,
}

impl Tonic for Fragile {
    type State = ();
}

impl Fragile {
    fn hit(&mut self, boom: bool) -> u32 {
        if boom {
            panic!("fragile broke at {}", self.count);
        }
        self.count += 1;
        self.count
    }
}

/// Hosts two tonics on one catalyst; one panics, the other must keep working.
struct Base {
    action: FailureAction,
    out: Sender<String>,
    steady: Option<Handle<Fragile>>,
}

impl Tonic for Base {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let fragile = ctx
            .infusion(Fragile::default())
            .name("fragile")
            .catalyst("shared")
            .spawn()
            .expect("spawn");
        let steady = ctx
            .infusion(Fragile::default())
            .name("steady")
            .catalyst("shared")
            .spawn()
            .expect("spawn");
        fragile
            .sparkle(|f, _| {
                f.hit(true);
            })
            .ok();
        // Queued behind the panic: never runs, comes back as a dropped sparkle (logged).
        fragile
            .sparkle(|f, _| {
                f.hit(false);
            })
            .ok();
        self.steady = Some(steady);
    }
    fn on_infusion_failed(&mut self, ctx: &mut Ctx<Self>, failure: &Failure) -> FailureAction {
        self.out
            .send(format!("failed {} {}", failure.name, failure.message))
            .ok();
        // The other tonic on the same catalyst still works.
        if let Some(steady) = self.steady.take() {
            let out = self.out.clone();
            ctx.ask(
                &steady,
                util::LIMIT,
                |s, _| s.hit(false),
                move |_, ctx, r| {
                    out.send(format!("steady {}", r.expect("steady answers")))
                        .ok();
                    ctx.finish();
                },
            );
        }
        self.action
    }
}

#[test]
fn a_panic_fails_only_its_tonic_and_a_handled_failure_is_not_an_error() {
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(Base {
        action: FailureAction::Handled,
        out: tx,
        steady: None,
    }))
    .expect("handled failure: clean run");
    assert_eq!(recv(&rx), "failed fragile fragile broke at 0");
    assert_eq!(recv(&rx), "steady 1");
}

#[test]
fn an_unhandled_failure_is_returned_by_run() {
    let (tx, rx) = channel();
    let err = run_bounded(App::new("t").tonic(Base {
        action: FailureAction::Report,
        out: tx,
        steady: None,
    }))
    .expect_err("reported failure");
    assert_eq!(err.failures.len(), 1);
    assert_eq!(err.failures[0].name, "fragile");
    assert!(err.to_string().contains("fragile broke at 0"), "{err}");
    assert_eq!(recv(&rx), "failed fragile fragile broke at 0");
}

#[test]
fn escalation_fails_the_base_too() {
    struct Top;
    impl Tonic for Top {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            ctx.infusion(Middle).name("middle").spawn().expect("spawn");
        }
        fn on_infusion_failed(&mut self, ctx: &mut Ctx<Self>, _: &Failure) -> FailureAction {
            ctx.finish();
            FailureAction::Report
        }
    }
    struct Middle;
    impl Tonic for Middle {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            let f = ctx.spawn(Fragile::default());
            f.sparkle(|f, _| {
                f.hit(true);
            })
            .ok();
        }
        fn on_infusion_failed(&mut self, _: &mut Ctx<Self>, _: &Failure) -> FailureAction {
            FailureAction::Escalate
        }
    }
    let err = run_bounded(App::new("t").tonic(Top)).expect_err("escalated to a report");
    assert_eq!(err.failures.len(), 1);
    assert_eq!(err.failures[0].name, "middle");
    assert!(
        err.failures[0].message.contains("broke"),
        "{}",
        err.failures[0].message
    );
}

#[test]
fn panics_in_hooks_are_failures_too() {
    struct BadStart;
    impl Tonic for BadStart {
        type State = ();
        fn on_start(&mut self, _: &mut Ctx<Self>) {
            panic!("cannot start");
        }
    }
    let err = run_bounded(App::new("t").tonic(BadStart)).expect_err("failed");
    assert_eq!(err.failures[0].message, "cannot start");
}

/// Restarted in place (same handle) up to the intensity limit, then failed.
struct Supervisor {
    out: Sender<String>,
    child: Option<Handle<Fragile>>,
}

impl Tonic for Supervisor {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let child = ctx
            .infusion(Fragile::default())
            .restart(Restart::new(Fragile::default).intensity(2, Duration::from_secs(3600)))
            .spawn()
            .expect("spawn");
        child
            .sparkle(|f, _| {
                f.hit(false);
                f.hit(false);
            })
            .ok();
        // Count after each restart: a fresh instance counts from 0.
        for _ in 0..3 {
            let out = self.out.clone();
            child
                .sparkle(move |f, _| out.send(format!("count {}", f.hit(false))).expect("test"))
                .ok();
            child
                .sparkle(|f, _| {
                    f.hit(true);
                })
                .ok();
        }
        self.child = Some(child);
    }
    fn on_infusion_restarted(&mut self, _: &mut Ctx<Self>, failure: &Failure) {
        self.out
            .send(format!("restarted: {}", failure.message))
            .ok();
    }
    fn on_infusion_failed(&mut self, ctx: &mut Ctx<Self>, failure: &Failure) -> FailureAction {
        self.out.send(format!("failed: {}", failure.message)).ok();
        assert!(self.child.as_ref().is_some_and(|c| c.id() == failure.tonic));
        ctx.finish();
        FailureAction::Handled
    }
    fn on_infusion_completed(&mut self, _: &mut Ctx<Self>, _: &TonicRef) {
        panic!("a failed infusion is not reported as completed");
    }
}

#[test]
fn restart_policy_rebuilds_in_place_until_the_intensity_limit() {
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(Supervisor {
        out: tx,
        child: None,
    }))
    .expect("handled");
    let log: Vec<String> = rx.try_iter().collect();
    // Counts come from the child, events from the supervisor: two FIFO streams.
    let counts: Vec<&str> = log
        .iter()
        .filter(|l| l.starts_with("count"))
        .map(String::as_str)
        .collect();
    let events: Vec<&str> = log
        .iter()
        .filter(|l| !l.starts_with("count"))
        .map(String::as_str)
        .collect();
    // 3 from the first instance; a fresh instance (same handle) counts from 1 after each restart.
    assert_eq!(counts, vec!["count 3", "count 1", "count 1"]);
    assert_eq!(
        events,
        vec![
            "restarted: fragile broke at 3",
            "restarted: fragile broke at 1",
            "failed: fragile broke at 1",
        ]
    );
}

/// Spawns a child named "holder" (the name must be free) and reports its starts.
struct Restarting {
    starts: std::sync::Arc<std::sync::atomic::AtomicU32>,
    out: Sender<String>,
    holders: Sender<Handle<Holder>>,
    /// The lingering holder sends a panicking sparkle between its two notes.
    boom_between: bool,
}

impl Tonic for Restarting {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let n = self
            .starts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let holder = ctx
            .infusion(Holder {
                base: ctx.handle(),
                linger: n == 1,
                boom_between: self.boom_between,
                out: self.out.clone(),
            })
            .name("holder")
            .spawn()
            .unwrap_or_else(|_| panic!("the name is free again"));
        self.holders.send(holder).ok();
        self.out.send(format!("started {n}")).ok();
    }
}

/// The first one lingers when finished (until the test lets it go), and meanwhile sends its
/// base two sparkles.
struct Holder {
    base: Handle<Restarting>,
    linger: bool,
    boom_between: bool,
    out: Sender<String>,
}

impl Tonic for Holder {
    type State = ();
    fn on_finishing(&mut self, ctx: &mut Ctx<Self>) {
        if self.linger {
            ctx.delay_completion();
            // Its base waits for its start: a sparkle cannot run on it inline meanwhile.
            let inline = self.base.sparkle_inline((), |_, _, ()| {});
            let said = if inline.is_err() {
                "inline refused"
            } else {
                "inline ran"
            };
            self.out.send(said.into()).ok();
            for i in 1..=2 {
                if i == 2 && self.boom_between {
                    self.base.sparkle(|_, _| panic!("held boom")).ok();
                }
                let out = self.out.clone();
                self.base
                    .sparkle(move |_, _| out.send(format!("note {i}")).expect("test"))
                    .ok();
            }
            self.out.send("holder lingers".into()).ok();
        }
    }
}

struct Keeper {
    restarting: Option<Restarting>,
    handle: Sender<Handle<Restarting>>,
    /// A bounded mailbox for the restarting tonic.
    mailbox: Option<usize>,
    /// Where it says who it is.
    me: Sender<Handle<Keeper>>,
}

impl Tonic for Keeper {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let first = self.restarting.take().expect("once");
        let (starts, out, holders) = (
            first.starts.clone(),
            first.out.clone(),
            first.holders.clone(),
        );
        let boom_between = first.boom_between;
        let fresh = move || Restarting {
            starts: starts.clone(),
            out: out.clone(),
            holders: holders.clone(),
            boom_between,
        };
        let mut infusion = ctx.infusion(first).restart(Restart::new(fresh));
        if let Some(capacity) = self.mailbox {
            infusion = infusion.mailbox(capacity, tasktonic_core::Overflow::Reject);
        }
        let handle = infusion.spawn().unwrap_or_else(|_| panic!("spawned"));
        self.me.send(ctx.handle()).ok();
        self.handle.send(handle).ok();
    }
}

/// A `Keeper` app whose `Restarting` tonic has panicked once: its first holder lingers.
struct Waiting {
    restarting: Handle<Restarting>,
    keeper: Handle<Keeper>,
    events: crossbeam_channel::Receiver<String>,
    holders: crossbeam_channel::Receiver<Handle<Holder>>,
    first_holder: Handle<Holder>,
    stopper: tasktonic_core::Stopper,
    running: util::AppThread,
}

fn restart_waiting(boom_between: bool) -> Waiting {
    restart_waiting_with(boom_between, None)
}

fn restart_waiting_with(boom_between: bool, mailbox: Option<usize>) -> Waiting {
    let (keeper_tx, keeper) = channel();
    let (out, events) = channel();
    let (holders_tx, holders) = channel();
    let (handle_tx, handle) = channel();
    let app = App::new("t").tonic(Keeper {
        restarting: Some(Restarting {
            starts: Default::default(),
            out,
            holders: holders_tx,
            boom_between,
        }),
        handle: handle_tx,
        mailbox,
        me: keeper_tx,
    });
    let stopper = app.stopper();
    let running = util::spawn_app(app);
    let restarting: Handle<Restarting> = recv(&handle);
    let first_holder = recv(&holders);
    assert_eq!(recv(&events), "started 1");
    restarting.sparkle(|_, _| panic!("boom")).ok();
    // The old holder lingers; what it sends meanwhile waits for the fresh instance's start.
    assert_eq!(recv(&events), "inline refused");
    assert_eq!(recv(&events), "holder lingers");
    let keeper = recv(&keeper);
    Waiting {
        restarting,
        keeper,
        events,
        holders,
        first_holder,
        stopper,
        running,
    }
}

impl Waiting {
    /// The first (lingering) holder may complete: the restart's wait can end.
    fn let_the_first_holder_go(&self) {
        self.first_holder
            .sparkle(|_, ctx| ctx.allow_completion())
            .expect("still there");
    }

    /// The next events, in order.
    fn expect(&self, events: &[&str]) {
        for e in events {
            assert_eq!(recv(&self.events), *e);
        }
    }
}

#[test]
fn a_restarted_tonic_starts_once_its_old_infusions_have_completed() {
    let w = restart_waiting(false);
    w.let_the_first_holder_go();
    w.expect(&["started 2", "note 1", "note 2"]);
    let _second_holder = recv(&w.holders);
    w.stopper.stop();
    w.running.join().expect("the failure was a restart");
    assert!(w.events.try_iter().next().is_none());
}

#[test]
fn a_held_sparkle_that_panics_restarts_it_again_and_the_rest_waits_for_that_start() {
    let w = restart_waiting(true);
    w.let_the_first_holder_go();
    // Started, note 1 ran, the held boom failed it again: its new holder finishes, then a
    // third instance starts and note 2 runs on it.
    w.expect(&["started 2", "note 1", "started 3", "note 2"]);
    w.stopper.stop();
    w.running.join().expect("both failures were restarts");
    assert!(w.events.try_iter().next().is_none());
}

#[test]
fn finished_while_its_restart_waits_it_never_starts_again() {
    let w = restart_waiting(false);
    // The app stops while the old holder lingers: the fresh instance is not started (no
    // port bound, no child spawned during a shutdown); once the holder has gone, it
    // completes and the app ends.
    w.stopper.stop();
    w.let_the_first_holder_go();
    w.running.join().expect("the failure was a restart");
    let rest: Vec<String> = w.events.try_iter().collect();
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn a_bounded_mailbox_keeps_its_bound_while_a_restart_waits() {
    let w = restart_waiting_with(false, Some(2));
    // The holder's two notes fill the mailbox of two. Whatever the catalyst had queued before
    // this round trip has run (a drain included): a third sparkle is still refused.
    w.keeper
        .ask_blocking(util::LIMIT, |_, _| ())
        .expect("the keeper answers");
    let third = w.restarting.sparkle(|_, _| {});
    assert!(
        matches!(third, Err(tasktonic_core::SendError::Full(_))),
        "the mailbox took more than its bound while the restart waited"
    );
    w.let_the_first_holder_go();
    w.expect(&["started 2", "note 1", "note 2"]);
    w.stopper.stop();
    w.running.join().expect("the failure was a restart");
}
