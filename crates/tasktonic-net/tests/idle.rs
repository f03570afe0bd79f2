//! An idle app uses no CPU and does not wake: a server holding idle connections and a tonic
//! whose only timer is an hour away, measured from `/proc` (CPU ticks and context switches) (its own test binary, so that no other test's
//! work is counted).

mod util;

use std::time::Duration;

use tasktonic_core::{Ctx, Timer, Tonic};
use util::*;

/// Waits an hour for its timer.
struct Patient;

impl Tonic for Patient {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        ctx.timer(Timer::once(Duration::from_secs(3600)).named("an hour"));
    }
}

#[test]
fn an_idle_app_uses_no_cpu() {
    let server = u32_echo();
    // Another top-level tonic with a timer far away, on its own catalyst.
    server
        .hub
        .ask_blocking(LIMIT, |_, ctx| {
            ctx.infusion(Patient)
                .catalyst("patient")
                .spawn()
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .expect("asked")
        .expect("spawned");
    // 100 idle connections, each known to be up (its echo came back).
    let mut conns = Vec::new();
    for i in 0..100u32 {
        let mut c = connect(server.addr);
        write_all(&mut c, &frame(&i.to_be_bytes()));
        assert_eq!(read_frame(&mut c), i.to_be_bytes());
        conns.push(c);
    }
    // Nothing happens for a second: nothing may run (a tick is 10 ms; the test harness and
    // the measurement itself take part of one).
    let woken = wakeups();
    let ticks = Cpu::open().ticks_over(Duration::from_secs(1));
    // A thread polling with a short timeout costs few ticks but wakes all the time: count
    // the wake-ups too (the sleeping test thread itself is one or two).
    let woken = wakeups() - woken;
    assert!(ticks <= 2, "{ticks} ticks in an idle second");
    assert!(woken <= 10, "{woken} thread wake-ups in an idle second");
    drop(conns);
    server.stop().expect("stopped");
}
