//! State machines under the Distiller: transition order, state timeouts, postpone, stop.

use std::time::Duration;

use tasktonic_core::{Contract, Ctx, Distiller, Handle, Receive, StopReason, Tonic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Door {
    #[default]
    Closed,
    Open,
    Locked,
}

#[derive(Default)]
struct DoorTonic {
    log: Vec<String>,
    opened_items: Vec<u32>,
}

struct Push;
struct Lock;
struct Unlock;
struct Item(u32);

impl Tonic for DoorTonic {
    type State = Door;
    fn on_enter(&mut self, ctx: &mut Ctx<Self>, state: &Door) {
        self.log.push(format!("enter {state:?}"));
        if *state == Door::Open {
            ctx.state_timeout(Duration::from_secs(5));
        }
    }
    fn on_exit(&mut self, _ctx: &mut Ctx<Self>, state: &Door) {
        self.log.push(format!("exit {state:?}"));
    }
    fn on_state_timeout(&mut self, ctx: &mut Ctx<Self>, state: &Door) {
        self.log.push(format!("timeout {state:?}"));
        ctx.to_state(Door::Closed);
    }
}

impl Receive<Push> for DoorTonic {
    fn receive(&mut self, ctx: &mut Ctx<Self>, _: Push) {
        // The TaskTonic idiom `ttse_<state>__push`: one handler, a match on the state.
        match ctx.state() {
            Door::Closed => ctx.to_state(Door::Open),
            Door::Open => ctx.to_state(Door::Closed),
            Door::Locked => self.log.push("push ignored while locked".into()),
        }
        self.log.push("push handled".into());
    }
}

impl Receive<Lock> for DoorTonic {
    fn receive(&mut self, ctx: &mut Ctx<Self>, _: Lock) {
        if *ctx.state() == Door::Closed {
            ctx.to_state(Door::Locked);
        }
    }
}

impl Receive<Unlock> for DoorTonic {
    fn receive(&mut self, ctx: &mut Ctx<Self>, _: Unlock) {
        if *ctx.state() == Door::Locked {
            ctx.to_state(Door::Closed);
        }
    }
}

impl Receive<Item> for DoorTonic {
    fn receive(&mut self, ctx: &mut Ctx<Self>, Item(n): Item) {
        match ctx.state() {
            Door::Open => self.opened_items.push(n),
            _ => ctx.postpone_message(Item(n)),
        }
    }
}

fn log(d: &Distiller, door: &Handle<DoorTonic>) -> Vec<String> {
    d.inspect(door, |t, _| t.log.clone()).expect("live")
}

#[test]
fn exit_and_enter_run_right_after_the_sparkle_before_the_next_queued_one() {
    let mut d = Distiller::new();
    let door = d.spawn(DoorTonic::default());
    door.send(Push).ok();
    door.send(Push).ok();
    let outcome = d.run(Contract::new().sparkles(3));
    assert_eq!(outcome.reason, StopReason::Sparkles);
    assert_eq!(
        log(&d, &door),
        vec![
            "push handled",
            "exit Closed",
            "enter Open",
            "push handled",
            "exit Open",
            "enter Closed"
        ]
    );
    // The trace shows each sparkle's state before and after (transition included).
    let pushes: Vec<(&str, &str)> = outcome
        .trace
        .entries
        .iter()
        .filter(|e| e.sparkle == "Push")
        .map(|e| (e.state_before.as_str(), e.state_after.as_str()))
        .collect();
    assert_eq!(pushes, vec![("Closed", "Open"), ("Open", "Closed")]);
    assert_eq!(
        outcome.trace.states_of(door.id()),
        vec!["Closed", "Open", "Closed"]
    );
}

#[test]
fn a_state_timeout_fires_in_its_state_and_a_state_change_cancels_it() {
    let mut d = Distiller::new();
    let door = d.spawn(DoorTonic::default());
    door.send(Push).ok();
    let outcome = d.run(Contract::new().state(&door, Door::Open));
    assert_eq!(outcome.reason, StopReason::State(door.id()));
    let outcome = d.run(
        Contract::new()
            .sparkle_on(&door, "timer")
            .timeout(Duration::from_secs(60)),
    );
    assert_eq!(outcome.reason, StopReason::Sparkle("timer"));
    assert_eq!(
        d.elapsed(),
        Duration::from_secs(5),
        "fired 5 s after entering Open"
    );
    assert_eq!(d.inspect(&door, |_, ctx| *ctx.state()), Some(Door::Closed));
    assert!(log(&d, &door).contains(&"timeout Open".to_string()));

    // Open again, then close by hand at once: the timeout must never fire.
    door.send(Push).ok();
    door.send(Push).ok();
    let outcome = d.run(Contract::new().timeout(Duration::from_secs(60)));
    assert_eq!(outcome.reason, StopReason::Idle, "no timer left");
    assert_eq!(
        log(&d, &door)
            .iter()
            .filter(|l| l.starts_with("timeout"))
            .count(),
        1
    );
}

#[test]
fn postponed_sparkles_come_back_in_order_after_the_next_state_change() {
    let mut d = Distiller::new();
    let door = d.spawn(DoorTonic::default());
    door.send(Lock).ok();
    for n in 1..=3 {
        door.send(Item(n)).ok();
    }
    door.send(Unlock).ok(); // Locked → Closed: items come back, and are postponed again.
    door.send(Item(4)).ok();
    door.send(Push).ok(); // Closed → Open: items 1..4 are delivered, in order.
    door.send(Item(5)).ok();
    // Open starts a 5 s state timeout; stop before it closes the door again.
    let outcome = d.run(Contract::new().timeout(Duration::from_secs(1)));
    assert_eq!(outcome.reason, StopReason::Timeout);
    let items = d
        .inspect(&door, |t, _| t.opened_items.clone())
        .expect("live");
    assert_eq!(items, vec![1, 2, 3, 4, 5]);
    assert_eq!(d.inspect(&door, |_, ctx| ctx.postponed()), Some(0));
}

#[test]
fn postponed_work_is_dropped_with_a_log_line_when_the_tonic_finishes() {
    let mut d = Distiller::new();
    let door = d.spawn(DoorTonic::default());
    door.send(Item(1)).ok();
    let outcome = d.run(Contract::new());
    assert_eq!(outcome.reason, StopReason::Idle);
    assert_eq!(d.inspect(&door, |_, ctx| ctx.postponed()), Some(1));
    door.finish().ok();
    assert_eq!(d.run(Contract::new()).reason, StopReason::Completed);
}

#[derive(Default)]
struct Chain {
    entered: Vec<u8>,
}

impl Tonic for Chain {
    type State = u8;
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        ctx.to_state(1);
    }
    fn on_enter(&mut self, ctx: &mut Ctx<Self>, state: &u8) {
        self.entered.push(*state);
        match *state {
            1 | 2 => ctx.to_state(state + 1),
            3 => ctx.reenter_state(),
            _ => {}
        }
        if self.entered.len() == 4 {
            ctx.stop_machine();
        }
    }
}

#[test]
fn transitions_chain_reenter_and_stop() {
    let mut d = Distiller::new();
    let chain = d.spawn(Chain::default());
    let out = d.run(Contract::new());
    assert_eq!(out.reason, StopReason::Idle);
    assert_eq!(
        d.inspect(&chain, |t, _| t.entered.clone()),
        Some(vec![1, 2, 3, 3])
    );
    assert_eq!(
        d.inspect(&chain, |_, ctx| ctx.is_machine_stopped()),
        Some(true)
    );
    // A stopped machine ignores transitions.
    chain.sparkle(|_, ctx| ctx.to_state(9)).ok();
    d.run(Contract::new());
    assert_eq!(d.inspect(&chain, |_, ctx| *ctx.state()), Some(3));
    // The whole chain ran inside the on_start sparkle: one trace entry.
    let first = &d.trace().entries[0];
    assert_eq!(
        (
            first.sparkle,
            first.state_before.as_str(),
            first.state_after.as_str()
        ),
        ("on_start", "0", "3")
    );
}

#[test]
fn going_to_the_current_state_is_a_no_op() {
    let mut d = Distiller::new();
    let door = d.spawn(DoorTonic::default());
    door.sparkle(|_, ctx| ctx.to_state(Door::Closed)).ok();
    d.run(Contract::new());
    assert!(log(&d, &door).is_empty());
}
