//! Request–reply: answers, timeouts, no-answer, full mailboxes and refused blocking asks.

mod util;

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use tasktonic_core::{App, AskError, Ctx, Handle, Tonic, TonicRef};
use util::{LIMIT, channel, recv, run_bounded};

struct Target;
impl Tonic for Target {
    type State = ();
}

type Start = Box<dyn FnOnce(&mut Ctx<Asker>) + Send>;

/// A tonic whose `on_start` is the test's closure; it finishes when its infusions have.
struct Asker {
    on_start: Option<Start>,
}

impl Tonic for Asker {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(f) = self.on_start.take() {
            f(ctx);
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        if ctx.infusions().is_empty() {
            ctx.finish();
        }
    }
}

fn asker(f: impl FnOnce(&mut Ctx<Asker>) + Send + 'static) -> Asker {
    Asker {
        on_start: Some(Box::new(f)),
    }
}

#[test]
fn an_answer_comes_back_as_a_sparkle() {
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(asker(move |ctx| {
        let target = ctx.infusion(Target).catalyst("far").spawn().expect("spawn");
        let tx = tx.clone();
        ctx.ask(
            &target,
            LIMIT,
            |_, tctx| tctx.catalyst().to_string(),
            move |_, ctx, r| {
                tx.send((r, ctx.catalyst().to_string())).ok();
                ctx.finish();
            },
        );
    })))
    .expect("clean run");
    assert_eq!(recv(&rx), (Ok("far".to_string()), "main".to_string()));
}

#[test]
fn a_late_answer_after_a_timeout_is_ignored_and_the_answer_runs_once() {
    let (tx, rx) = channel();
    let (gate, gate_rx): (Sender<()>, Receiver<()>) = channel();
    run_bounded(App::new("t").tonic(asker(move |ctx| {
        let target = ctx.infusion(Target).catalyst("far").spawn().expect("spawn");
        let gate_rx = gate_rx.clone();
        // Block the target until the asker has seen its timeout.
        target
            .sparkle(move |_, _| {
                gate_rx.recv_timeout(LIMIT).ok();
            })
            .ok();
        let tx = tx.clone();
        let gate = gate.clone();
        let t2 = target.clone();
        ctx.ask(
            &target,
            Duration::from_millis(20),
            |_, _| 42,
            move |_, ctx, r| {
                tx.send(r).ok();
                gate.send(()).ok();
                // Ask again after the late answer had its chance: proves ordering, ends the test.
                let tx = tx.clone();
                ctx.ask(
                    &t2,
                    LIMIT,
                    |_, _| 43,
                    move |_, ctx, r| {
                        tx.send(r).ok();
                        ctx.finish();
                    },
                );
            },
        );
    })))
    .expect("clean run");
    let answers: Vec<Result<i32, AskError>> = rx.try_iter().collect();
    assert_eq!(answers, vec![Err(AskError::Timeout), Ok(43)]);
}

#[test]
fn a_question_that_panics_or_a_completed_target_gives_no_answer() {
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(asker(move |ctx| {
        let target = ctx.infusion(Target).catalyst("far").spawn().expect("spawn");
        let tx1 = tx.clone();
        ctx.ask(
            &target,
            LIMIT,
            |_, _| -> u8 { panic!("no") },
            move |_, _, r| {
                tx1.send(r).ok();
            },
        );
        let done = ctx.spawn(Target);
        done.finish().ok();
        let tx2 = tx.clone();
        ctx.ask(
            &done,
            LIMIT,
            |_, _| 1u8,
            move |_, ctx, r| {
                tx2.send(r).ok();
                ctx.finish();
            },
        );
    })))
    .expect_err("the panicking target is an unhandled failure");
    let mut answers: Vec<Result<u8, AskError>> = vec![recv(&rx), recv(&rx)];
    answers.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(
        answers,
        vec![Err(AskError::NoAnswer), Err(AskError::NoAnswer)]
    );
}

#[test]
fn a_blocking_ask_on_the_own_catalyst_is_refused_at_once() {
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(asker(move |ctx| {
        let neighbour: Handle<Target> = ctx.spawn(Target);
        let r = neighbour.ask_blocking(LIMIT, |_, _| ());
        let me = ctx.handle().ask_blocking(LIMIT, |_, _| ());
        tx.send((r, me)).ok();
        ctx.finish();
    })))
    .expect("clean run");
    assert_eq!(
        recv(&rx),
        (Err(AskError::WouldDeadlock), Err(AskError::WouldDeadlock))
    );
}

#[test]
fn a_blocking_ask_from_a_plain_thread_gets_the_answer() {
    let (tx, rx) = channel();
    let app = util::spawn_app(App::new("t").tonic(asker(move |ctx| {
        let target = ctx
            .infusion(Target)
            .name("target")
            .catalyst("far")
            .spawn()
            .expect("spawn");
        tx.send(target).ok();
    })));
    let target: Handle<Target> = recv(&rx);
    let name = target.ask_blocking(LIMIT, |_, ctx| ctx.name().to_string());
    assert_eq!(name, Ok("target".to_string()));
    target.finish().expect("alive");
    app.join().expect("clean run");
    assert_eq!(
        target.ask_blocking(LIMIT, |_, _| ()),
        Err(AskError::NoAnswer)
    );
}

/// Sends from inside a sparkle to another catalyst are batched until the sparkle returns; a
/// blocking ask hands the batch over first, so the question (and the spawn before it) arrive.
#[test]
fn a_blocking_ask_from_inside_a_sparkle_to_another_catalyst_gets_the_answer() {
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(asker(move |ctx| {
        let target = ctx
            .infusion(Target)
            .name("target")
            .catalyst("far")
            .spawn()
            .expect("spawn");
        let name = target.ask_blocking(LIMIT, |_, ctx| ctx.name().to_string());
        tx.send(name).ok();
        target.finish().ok();
    })))
    .expect("clean run");
    assert_eq!(recv(&rx), Ok("target".to_string()));
}
