//! `Handle::sparkle_inline`: when a sparkle runs inside the caller's, and that every guarantee
//! of a queued sparkle still holds (FIFO per sender, panics contained, completion).

mod util;

use crossbeam_channel::Sender;
use tasktonic_core::extend::SparkleInline;
use tasktonic_core::{
    App, Contract, Ctx, Distiller, Failure, FailureAction, Handle, Overflow, Tonic, TonicRef,
};
use util::{channel, recv, run_bounded};

type Report = Sender<String>;
type Script = Box<dyn FnOnce(&mut Ctx<Driver>, &Handle<Target>, &Report) + Send>;

/// Records what runs on it; panics on "boom", finishes on "finish".
struct Target {
    driver: Handle<Driver>,
    report: Report,
}

impl Target {
    fn note(&mut self, ctx: &mut Ctx<Self>, what: &str) {
        self.report.send(format!("target {what}")).ok();
        match what {
            "boom" => panic!("boom"),
            "finish" => ctx.finish(),
            _ => {}
        }
    }
}

impl Tonic for Target {
    type State = ();
    fn on_start(&mut self, _ctx: &mut Ctx<Self>) {
        // Started: now the driver runs its script (the target is live, nothing queued for it).
        self.driver
            .sparkle(|d, ctx| {
                if let (Some(script), Some(target)) = (d.script.take(), d.target.clone()) {
                    script(ctx, &target, &d.report);
                }
            })
            .ok();
    }
}

/// Spawns the target (where and how the test says), runs the script once it has started, and
/// finishes when its infusions have completed.
struct Driver {
    catalyst: &'static str,
    bounded: bool,
    script: Option<Script>,
    target: Option<Handle<Target>>,
    report: Report,
}

impl Tonic for Driver {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let target = Target {
            driver: ctx.handle(),
            report: self.report.clone(),
        };
        let mut infusion = ctx.infusion(target).catalyst(self.catalyst);
        if self.bounded {
            infusion = infusion.mailbox(8, Overflow::Reject);
        }
        self.target = Some(infusion.spawn().expect("spawn"));
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        self.report.send("driver saw target complete".into()).ok();
        ctx.finish();
    }
    fn on_infusion_failed(&mut self, ctx: &mut Ctx<Self>, f: &Failure) -> FailureAction {
        self.report.send(format!("driver saw {}", f.message)).ok();
        ctx.finish();
        FailureAction::Handled
    }
}

/// Run the script in a driver on "main" with the target on `catalyst`; every report, in order.
fn run(
    catalyst: &'static str,
    bounded: bool,
    script: impl FnOnce(&mut Ctx<Driver>, &Handle<Target>, &Report) + Send + 'static,
) -> Vec<String> {
    let (tx, rx) = channel();
    let driver = Driver {
        catalyst,
        bounded,
        script: Some(Box::new(script)),
        target: None,
        report: tx,
    };
    run_bounded(App::new("inline").tonic(driver)).expect("clean run");
    let mut reports = Vec::new();
    while let Ok(r) = rx.try_recv() {
        reports.push(r);
    }
    reports
}

/// Try inline; if declined, queue it. Reports which happened.
fn inline_or_queue(target: &Handle<Target>, report: &Report, what: &'static str) {
    match target.sparkle_inline(what, |t, ctx, what| t.note(ctx, what)) {
        Ok(()) => report.send(format!("inline {what}")).ok(),
        Err(what) => {
            target.sparkle(move |t, ctx| t.note(ctx, what)).ok();
            report.send(format!("queued {what}")).ok()
        }
    };
}

#[test]
fn an_inline_sparkle_runs_before_the_call_returns() {
    let reports = run("main", false, |_ctx, target, report| {
        inline_or_queue(target, report, "one");
        inline_or_queue(target, report, "finish");
    });
    assert_eq!(
        reports,
        [
            "target one",
            "inline one",
            "target finish",
            "inline finish",
            "driver saw target complete"
        ]
    );
}

#[test]
fn anything_queued_for_the_target_keeps_it_from_overtaking() {
    let reports = run("main", false, |_ctx, target, report| {
        target.sparkle(|t, ctx| t.note(ctx, "first")).ok();
        // Declined: "first" waits for the target in the local queue.
        inline_or_queue(target, report, "second");
        inline_or_queue(target, report, "finish");
    });
    assert_eq!(
        reports,
        [
            "queued second",
            "queued finish",
            "target first",
            "target second",
            "target finish",
            "driver saw target complete"
        ]
    );
}

#[test]
fn a_target_on_another_catalyst_or_with_a_bounded_mailbox_is_queued() {
    for (catalyst, bounded) in [("elsewhere", false), ("main", true)] {
        let reports = run(catalyst, bounded, |_ctx, target, report| {
            inline_or_queue(target, report, "finish");
        });
        assert_eq!(
            reports,
            [
                "queued finish",
                "target finish",
                "driver saw target complete"
            ],
            "{catalyst}, bounded: {bounded}"
        );
    }
}

#[test]
fn a_panic_inline_fails_the_target_and_the_caller_goes_on() {
    let reports = run("main", false, |_ctx, target, report| {
        inline_or_queue(target, report, "boom");
        report.send("driver went on".into()).ok();
    });
    assert_eq!(
        reports,
        [
            "target boom",
            "inline boom",
            "driver went on",
            "driver saw boom"
        ]
    );
}

#[test]
fn a_running_tonic_is_never_run_inline_not_even_by_itself() {
    let reports = run("main", false, |_ctx, target, report| {
        let again = target.clone();
        let report2 = report.clone();
        let r = target.sparkle_inline((), move |_t, _ctx, ()| {
            // The target is running: a sparkle for it is queued, even from itself.
            inline_or_queue(&again, &report2, "finish");
        });
        report.send(format!("outer {r:?}")).ok();
    });
    assert_eq!(
        reports,
        [
            "queued finish",
            "outer Ok(())",
            "target finish",
            "driver saw target complete"
        ]
    );
}

/// One link of a chain: reports, then tries to run the next link inline.
struct Link {
    name: &'static str,
    next: Option<Handle<Link>>,
    report: Report,
}

impl Link {
    fn go(&mut self, ctx: &mut Ctx<Self>) {
        self.report.send(format!("{} runs", self.name)).ok();
        if let Some(next) = &self.next {
            match next.sparkle_inline((), |l, lctx, ()| l.go(lctx)) {
                Ok(()) => self
                    .report
                    .send(format!("{} ran the next inline", self.name)),
                Err(()) => {
                    next.sparkle(|l, lctx| l.go(lctx)).ok();
                    self.report.send(format!("{} queued the next", self.name))
                }
            }
            .ok();
        }
        ctx.finish();
    }
}

impl Tonic for Link {
    type State = ();
}

struct Chain(Report);

impl Tonic for Chain {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let mut next = None;
        for name in ["c", "b", "a"] {
            next = Some(ctx.spawn(Link {
                name,
                next: next.take(),
                report: self.0.clone(),
            }));
        }
        // Runs after the three have started (their spawns are queued before it).
        ctx.handle()
            .sparkle(move |_, ctx| {
                if let Some(a) = next {
                    a.sparkle_inline((), |l, lctx, ()| l.go(lctx))
                        .expect("a runs inline");
                }
                ctx.finish();
            })
            .ok();
    }
}

#[test]
fn inline_sparkles_nest_two_deep_at_most() {
    let (tx, rx) = channel();
    run_bounded(App::new("chain").tonic(Chain(tx))).expect("clean run");
    let reports: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        reports,
        [
            "a runs",
            "b runs",
            "b queued the next",
            "a ran the next inline",
            "c runs"
        ]
    );
}

#[test]
fn outside_a_catalyst_and_in_a_distiller_nothing_runs_inline() {
    struct Plain(u32);
    impl Tonic for Plain {
        type State = ();
    }
    let mut d = Distiller::new();
    let plain = d.spawn(Plain(0));
    d.run(Contract::new().sparkles(1));
    // From the test thread (no sparkle running)…
    assert_eq!(plain.sparkle_inline(1, |p, _, n| p.0 += n), Err(1));
    // …and from a sparkle in a Distiller, whose steps run exactly one sparkle each.
    let (tx, rx) = channel();
    let target = plain.clone();
    let other = d.spawn(Plain(0));
    other
        .sparkle(move |_, _| {
            tx.send(target.sparkle_inline(2, |p, _, n| p.0 += n)).ok();
        })
        .ok();
    d.run(Contract::new().sparkle_on(&other, "sparkle"));
    assert_eq!(recv(&rx), Err(2));
    assert_eq!(d.inspect(&plain, |p, _| p.0), Some(0));
}
