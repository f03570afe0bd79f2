//! The warnings the docs promise, asserted as log records: a postponed sparkle dropped when
//! its tonic finishes, and a sparkle that arrives after its tonic completed. Its own test
//! binary: it installs a capturing logger for the process (the app's own logger then
//! stands aside).

use std::sync::{Mutex, OnceLock};

use log::{Level, Log, Metadata, Record};
use tasktonic_core::{Contract, Ctx, Distiller, Receive, Tonic};

struct Capture(Mutex<Vec<(Level, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        self.0
            .lock()
            .expect("records")
            .push((record.level(), record.args().to_string()));
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).expect("the first logger");
        log::set_max_level(log::LevelFilter::Trace);
        c
    })
}

fn warnings_with(text: &str) -> Vec<String> {
    capture()
        .0
        .lock()
        .expect("records")
        .iter()
        .filter(|(l, m)| *l == Level::Warn && m.contains(text))
        .map(|(_, m)| m.clone())
        .collect()
}

/// Only ever shut here: what it receives waits for an opening that never comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Gate {
    #[default]
    Shut,
}

struct Item;

/// Takes items only when open; postpones them otherwise.
#[derive(Default)]
struct Keeper;

impl Tonic for Keeper {
    type State = Gate;
}

impl Receive<Item> for Keeper {
    fn receive(&mut self, ctx: &mut Ctx<Self>, item: Item) {
        if *ctx.state() == Gate::Shut {
            ctx.postpone_message(item);
        }
    }
}

#[test]
fn a_postponed_sparkle_dropped_at_the_finish_is_a_warning() {
    capture();
    let mut d = Distiller::new();
    let keeper = d.spawn_named("keeper of items", Keeper);
    keeper.send(Item).ok();
    d.run(Contract::new());
    assert_eq!(d.inspect(&keeper, |_, ctx| ctx.postponed()), Some(1));
    keeper.finish().ok();
    d.run(Contract::new());
    let w = warnings_with("postponed sparkle");
    assert!(
        w.iter()
            .any(|m| m.contains("keeper of items") && m.contains("dropped: the tonic finished")),
        "{w:?}"
    );
}

/// Does nothing.
struct Idle;

impl Tonic for Idle {
    type State = ();
}

#[test]
fn a_sparkle_for_a_completed_tonic_is_a_warning() {
    capture();
    let mut d = Distiller::new();
    let idle = d.spawn(Idle);
    d.run(Contract::new());
    // Queued behind the finish: when its turn comes the tonic has completed.
    idle.finish().ok();
    let queued = idle.sparkle_named("too late", |_, _| {});
    d.run(Contract::new());
    assert!(queued.is_ok(), "accepted while the tonic was finishing");
    let w = warnings_with("sparkle too late dropped");
    assert_eq!(
        w,
        vec!["sparkle too late dropped: its tonic has completed".to_string()]
    );
}
