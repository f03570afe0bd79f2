//! Timers: exact virtual-time semantics under the Distiller, and the cancel/restart guarantee
//! under load on real catalysts.

mod util;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tasktonic_core::{
    App, CatchUp, Contract, Ctx, Distiller, Handle, Schedule, Settings, StopReason, TimeZone,
    Timer, TimerEvent, TimerId, Tonic,
};

const S: Duration = Duration::from_secs(1);

type Control = Box<dyn FnMut(&mut Ctx<Rec>, &[TimerId], u32) + Send>;

/// Arms `start` timers; records every expiry; a timer named "ctl" runs `control` instead.
#[derive(Default)]
struct Rec {
    start: Vec<Timer>,
    ids: Vec<TimerId>,
    fired: Vec<(Instant, String, u64)>,
    control: Option<Control>,
    ctl_ticks: u32,
}

impl Tonic for Rec {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        for t in self.start.drain(..) {
            self.ids.push(ctx.timer(t));
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
        if &*timer.name == "ctl" {
            self.ctl_ticks += 1;
            if let Some(control) = self.control.as_mut() {
                control(ctx, &self.ids, self.ctl_ticks);
            }
            return;
        }
        self.fired
            .push((ctx.now(), timer.name.to_string(), timer.missed));
    }
}

fn spawn_rec(d: &mut Distiller, start: Vec<Timer>, control: Option<Control>) -> Handle<Rec> {
    d.spawn(Rec {
        start,
        control,
        ..Rec::default()
    })
}

/// Expiries as (virtual seconds since the Distiller started, name, missed).
fn fired(d: &Distiller, h: &Handle<Rec>) -> Vec<(f64, String, u64)> {
    let origin = d.inspect(h, |_, ctx| ctx.now()).expect("live") - d.elapsed();
    d.inspect(h, |t, _| {
        t.fired
            .iter()
            .map(|(at, name, missed)| {
                (
                    at.duration_since(origin).as_secs_f64(),
                    name.clone(),
                    *missed,
                )
            })
            .collect()
    })
    .expect("live")
}

fn f(at: f64, name: &str, missed: u64) -> (f64, String, u64) {
    (at, name.to_string(), missed)
}

#[test]
fn single_shot_and_repeating_timers_fire_on_an_exact_grid() {
    let mut d = Distiller::new();
    let h = spawn_rec(
        &mut d,
        vec![
            Timer::once(3 * S).named("once"),
            Timer::repeat(2 * S).named("rep"),
        ],
        None,
    );
    let out = d.run(Contract::new().timeout(7 * S));
    assert_eq!(out.reason, StopReason::Timeout);
    assert_eq!(
        fired(&d, &h),
        vec![
            f(2.0, "rep", 0),
            f(3.0, "once", 0),
            f(4.0, "rep", 0),
            f(6.0, "rep", 0)
        ]
    );
}

#[test]
fn coalesce_fires_once_after_a_stall_and_stays_on_the_grid() {
    let mut d = Distiller::new();
    let h = spawn_rec(&mut d, vec![Timer::repeat(S).named("rep")], None);
    d.run(Contract::new().sparkles(1)); // on_start arms it at t = 0
    d.stall(Duration::from_millis(10_500));
    d.run(Contract::new().timeout(Duration::from_millis(1_600)));
    // Due at 1 s, fired at 10.5 s having missed 9 more (2..=10); next on the grid at 11 and 12.
    assert_eq!(
        fired(&d, &h),
        vec![f(10.5, "rep", 9), f(11.0, "rep", 0), f(12.0, "rep", 0)]
    );
}

#[test]
fn burst_fires_every_missed_expiry() {
    let mut d = Distiller::new();
    let h = spawn_rec(
        &mut d,
        vec![Timer::repeat(S).named("rep").catch_up(CatchUp::Burst)],
        None,
    );
    d.run(Contract::new().sparkles(1));
    d.stall(Duration::from_millis(3_500));
    d.run(Contract::new().timeout(Duration::from_millis(600)));
    let got = fired(&d, &h);
    assert_eq!(got.len(), 4, "{got:?}"); // 1, 2, 3 late at 3.5 s; then 4 on time
    assert!(
        got[..3]
            .iter()
            .all(|(at, _, missed)| *at == 3.5 && *missed == 0)
    );
    assert_eq!(got[3], f(4.0, "rep", 0));
}

#[test]
fn a_timer_paused_and_resumed_three_times_keeps_its_remaining_time() {
    let mut d = Distiller::new();
    // ctl ticks every 4 s: odd ticks pause, even ticks resume the 13 s timer.
    let control: Control = Box::new(|ctx, ids, tick| {
        let t = ids[0];
        if tick > 6 {
            assert!(!ctx.is_timer_live(t), "fired once and gone");
            return;
        }
        if tick % 2 == 1 {
            assert!(ctx.pause_timer(t));
            assert!(!ctx.pause_timer(t), "already paused");
        } else {
            let remaining = ctx.timer_remaining(t).expect("live");
            assert!(ctx.resume_timer(t));
            assert!(!ctx.resume_timer(t), "already running");
            assert_eq!(ctx.timer_remaining(t), Some(remaining));
        }
    });
    let h = spawn_rec(
        &mut d,
        vec![
            Timer::once(13 * S).named("t13"),
            Timer::repeat(4 * S).named("ctl"),
        ],
        Some(control),
    );
    d.run(Contract::new().timeout(30 * S));
    // Runs 0–4, 8–12, 16–20 (12 s), then 1 s more after resuming at 24.
    assert_eq!(fired(&d, &h), vec![f(25.0, "t13", 0)]);
}

#[test]
fn a_pausing_timer_fires_then_waits_for_resume() {
    let mut d = Distiller::new();
    let control: Control = Box::new(|ctx, ids, tick| {
        if tick == 3 {
            assert!(ctx.resume_timer(ids[0]));
        }
    });
    let h = spawn_rec(
        &mut d,
        vec![
            Timer::pausing(2 * S).named("p"),
            Timer::repeat(10 * S).named("ctl"),
        ],
        Some(control),
    );
    d.run(Contract::new().timeout(40 * S));
    assert_eq!(fired(&d, &h), vec![f(2.0, "p", 0), f(32.0, "p", 0)]);
}

#[test]
fn cancel_never_fires_restart_moves_the_expiry_change_sets_a_new_period() {
    let mut d = Distiller::new();
    let control: Control = Box::new(|ctx, ids, tick| {
        if tick == 1 {
            assert!(ctx.cancel_timer(ids[0]));
            assert!(!ctx.cancel_timer(ids[0]));
            assert!(ctx.restart_timer(ids[1]));
            assert!(ctx.change_timer(ids[2], 2 * S));
        }
    });
    let h = spawn_rec(
        &mut d,
        vec![
            Timer::once(10 * S).named("cancelled"),
            Timer::once(10 * S).named("watchdog"),
            Timer::repeat(10 * S).named("changed"),
            Timer::once(5 * S).named("ctl"),
        ],
        Some(control),
    );
    d.run(Contract::new().timeout(12 * S));
    assert_eq!(
        fired(&d, &h),
        vec![
            f(7.0, "changed", 0),
            f(9.0, "changed", 0),
            f(11.0, "changed", 0)
        ]
    );
    d.run(Contract::new().timeout(4 * S));
    let got = fired(&d, &h);
    assert!(got.contains(&f(15.0, "watchdog", 0)), "{got:?}");
    assert!(!got.iter().any(|(_, n, _)| n == "cancelled"));
}

#[test]
fn scheduled_timers_follow_local_time_across_a_dst_change() {
    // Amsterdam springs forward on 2026-03-29 at 02:00. Start at 2026-03-28 12:00 local (11:00Z).
    let start: jiff::Timestamp = "2026-03-28T11:00:00Z".parse().expect("timestamp");
    let mut d = Distiller::starting_at(start, Settings::default());
    let zone = TimeZone::get("Europe/Amsterdam").expect("zone");
    let h = spawn_rec(
        &mut d,
        vec![Timer::scheduled(Schedule::daily(2, 30, 0).in_zone(zone)).named("daily")],
        None,
    );
    d.run(Contract::new().timeout(Duration::from_secs(40 * 3600)));
    // 02:30 does not exist on the 29th: 03:30 CEST = 01:30Z (14.5 h); then 02:30 CEST on the
    // 30th = 00:30Z (37.5 h).
    assert_eq!(
        fired(&d, &h),
        vec![f(14.5 * 3600.0, "daily", 0), f(37.5 * 3600.0, "daily", 0)]
    );
}

/// Under load on real catalysts: thousands of short timers, cancelled and restarted from another
/// catalyst while they come due. A timer whose cancel or restart succeeded must never fire for
/// the old expiry.
struct Storm {
    n: usize,
    ids: Vec<TimerId>,
    dead: HashSet<TimerId>,
    fired: HashSet<TimerId>,
    violations: usize,
    out: Sender<(usize, usize, usize)>,
    done: bool,
}

impl Tonic for Storm {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        for i in 0..self.n {
            let after = Duration::from_micros((i % 50) as u64 * 40);
            self.ids
                .push(ctx.timer(Timer::once(after).marker(i as u64)));
        }
        let me = ctx.handle();
        let ids = self.ids.clone();
        ctx.infusion(Meddler { me, ids })
            .catalyst("meddler")
            .spawn()
            .expect("spawn");
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &tasktonic_core::TonicRef) {
        // The meddler is done: every cancel and restart has been applied.
        self.check(ctx);
    }
    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
        if self.dead.contains(&timer.id) {
            self.violations += 1;
        }
        if !self.fired.insert(timer.id) {
            self.violations += 1; // a once timer fired twice
        }
        self.check(ctx);
    }
}

impl Storm {
    fn meddle(&mut self, ctx: &mut Ctx<Self>, id: TimerId, restart: bool) {
        let ok = if restart {
            // Pushed an hour out: its old expiry must not fire.
            ctx.change_timer(id, Duration::from_secs(3600))
        } else {
            ctx.cancel_timer(id)
        };
        if ok {
            self.dead.insert(id);
        }
        self.check(ctx);
    }

    fn check(&mut self, ctx: &mut Ctx<Self>) {
        // A timer is either dead (cancel/restart succeeded) or fired, never both unless violated.
        let accounted = self.dead.len() + self.fired.len() - self.violations;
        if !self.done && accounted == self.n && ctx.infusions().is_empty() {
            self.done = true;
            self.out
                .send((self.violations, self.dead.len(), self.fired.len()))
                .ok();
            ctx.finish(); // the restarted timers die with it
        }
    }
}

struct Meddler {
    me: Handle<Storm>,
    ids: Vec<TimerId>,
}

impl Tonic for Meddler {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        for (i, id) in self.ids.iter().copied().enumerate() {
            if i % 2 == 0 {
                let restart = i % 4 == 0;
                self.me
                    .sparkle(move |s, ctx| s.meddle(ctx, id, restart))
                    .ok();
            }
        }
        ctx.finish();
    }
}

impl Storm {
    fn new(n: usize, out: Sender<(usize, usize, usize)>) -> Storm {
        Storm {
            n,
            ids: Vec::new(),
            dead: HashSet::new(),
            fired: HashSet::new(),
            violations: 0,
            out,
            done: false,
        }
    }
}

#[test]
fn cancelled_or_restarted_timers_never_fire_for_their_old_expiry_under_load() {
    struct Root(Option<Storm>);
    impl Tonic for Root {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            if let Some(storm) = self.0.take() {
                ctx.spawn(storm);
            }
        }
        fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &tasktonic_core::TonicRef) {
            ctx.finish();
        }
    }
    let (tx, rx) = util::channel();
    let storm = Storm::new(20_000, tx);
    util::run_bounded(App::new("storm").tonic(Root(Some(storm)))).expect("clean run");
    let (violations, dead, fired) = util::recv(&rx);
    assert_eq!(violations, 0, "a cancelled or restarted timer fired");
    assert_eq!(dead + fired, 20_000);
    assert!(
        dead > 0,
        "the meddler cancelled nothing: the test did not race"
    );
}

/// 100k timers armed in a shuffled order fire exactly in deadline order.
#[test]
fn one_hundred_thousand_timers_fire_in_exact_deadline_order() {
    struct Order {
        last: Option<u64>,
        fired: u64,
        out_of_order: u64,
    }
    impl Tonic for Order {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            for i in 0..100_000u64 {
                let rank = (i * 7919) % 100_000;
                ctx.timer(Timer::once(Duration::from_micros(rank)).marker(rank));
            }
        }
        fn on_timer(&mut self, _: &mut Ctx<Self>, t: &TimerEvent) {
            if self.last.is_some_and(|l| t.marker < l) {
                self.out_of_order += 1;
            }
            self.last = Some(t.marker);
            self.fired += 1;
        }
    }
    let mut d = Distiller::new();
    let h = d.spawn(Order {
        last: None,
        fired: 0,
        out_of_order: 0,
    });
    d.run(Contract::new().timeout(Duration::from_secs(1)));
    assert_eq!(
        d.inspect(&h, |t, _| (t.fired, t.out_of_order)),
        Some((100_000, 0))
    );
}
