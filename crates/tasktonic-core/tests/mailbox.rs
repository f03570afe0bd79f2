//! Bounded mailboxes: reject hands the sparkle back, drop-oldest counts what it drops.

mod util;

use crossbeam_channel::{Receiver, Sender};
use tasktonic_core::{App, Ctx, Handle, Overflow, SendError, Tonic, TonicRef};
use util::{LIMIT, channel, recv, spawn_app};

#[derive(Default)]
struct Slow {
    seen: Vec<u32>,
}

impl Tonic for Slow {
    type State = ();
}

struct Host {
    overflow: Overflow,
    out: Sender<Handle<Slow>>,
}

impl Tonic for Host {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let slow = ctx
            .infusion(Slow::default())
            .catalyst("slow")
            .mailbox(4, self.overflow)
            .spawn()
            .expect("spawn");
        self.out.send(slow).expect("test alive");
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        ctx.finish();
    }
}

/// Start a `Slow` with a 4-deep mailbox and block it inside a sparkle until `gate` opens.
fn blocked(overflow: Overflow) -> (Handle<Slow>, Sender<()>, util::AppThread) {
    let (tx, rx) = channel();
    let app = spawn_app(App::new("t").tonic(Host { overflow, out: tx }));
    let slow = recv(&rx);
    let (entered_tx, entered): (Sender<()>, Receiver<()>) = channel();
    let (gate, gate_rx): (Sender<()>, Receiver<()>) = channel();
    slow.sparkle(move |_, _| {
        entered_tx.send(()).ok();
        gate_rx.recv_timeout(LIMIT).ok();
    })
    .ok();
    recv(&entered);
    (slow, gate, app)
}

fn push(slow: &Handle<Slow>, v: u32) -> Result<(), SendError<u32>> {
    slow.sparkle(move |s, _| s.seen.push(v))
        .map_err(|e| e.map(|_| v))
}

/// Push `v`, and report what the tonic has seen once it ran (not through a separate ask, which
/// would itself be subject to the mailbox under test).
fn push_and_report(slow: &Handle<Slow>, v: u32) -> Receiver<Vec<u32>> {
    let (tx, rx) = channel();
    slow.sparkle(move |s, _| {
        s.seen.push(v);
        tx.send(s.seen.clone()).ok();
    })
    .expect("accepted");
    rx
}

#[test]
fn reject_hands_back_what_does_not_fit() {
    let (slow, gate, app) = blocked(Overflow::Reject);
    for v in 1..=3 {
        push(&slow, v).expect("fits");
    }
    let report = push_and_report(&slow, 4);
    match push(&slow, 5) {
        Err(SendError::Full(v)) => assert_eq!(v, 5),
        other => panic!("expected Full, got {other:?}"),
    }
    gate.send(()).expect("gate");
    assert_eq!(recv(&report), vec![1, 2, 3, 4]);
    assert_eq!(slow.dropped(), 0);
    slow.finish().expect("alive");
    app.join().expect("clean run");
}

#[test]
fn drop_oldest_keeps_the_newest_and_counts() {
    let (slow, gate, app) = blocked(Overflow::DropOldest);
    for v in 1..=5 {
        push(&slow, v).expect("always accepted");
    }
    let report = push_and_report(&slow, 6);
    assert_eq!(slow.dropped(), 2);
    gate.send(()).expect("gate");
    assert_eq!(recv(&report), vec![3, 4, 5, 6]);
    slow.finish().expect("alive");
    app.join().expect("clean run");
}

#[test]
fn a_bounded_mailbox_drains_everything_in_order() {
    let (slow, gate, app) = blocked(Overflow::Reject);
    gate.send(()).expect("gate");
    let mut sent = 0u32;
    // Keep the mailbox busy: retry what is refused, so all 10k arrive in order.
    while sent < 9_999 {
        match push(&slow, sent) {
            Ok(()) => sent += 1,
            Err(SendError::Full(_)) => std::thread::yield_now(),
            Err(SendError::Completed(_)) => panic!("completed"),
        }
    }
    let report = loop {
        let (tx, rx) = channel();
        let last = move |s: &mut Slow, _: &mut Ctx<Slow>| {
            s.seen.push(9_999);
            tx.send(s.seen.clone()).ok();
        };
        match slow.sparkle(last) {
            Ok(()) => break rx,
            Err(SendError::Full(_)) => std::thread::yield_now(),
            Err(SendError::Completed(_)) => panic!("completed"),
        }
    };
    assert_eq!(recv(&report), (0..10_000).collect::<Vec<_>>());
    slow.finish().expect("alive");
    app.join().expect("clean run");
}
