//! The Distiller: contracts, probes, traces, and the Markdown/Mermaid report.

use std::time::Duration;

use tasktonic_core::{
    Contract, Ctx, Distiller, Handle, Receive, StopReason, Timer, TimerEvent, Tonic,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Idle,
    Pinging,
    Done,
}

struct Ping(u32);
struct Pong(u32);

struct Pinger {
    peer: Option<Handle<Ponger>>,
    pongs: u32,
}

struct Ponger {
    back: Handle<Pinger>,
}

impl Tonic for Pinger {
    type State = Phase;
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let peer = ctx
            .infusion(Ponger { back: ctx.handle() })
            .name("ponger")
            .catalyst("elsewhere")
            .spawn()
            .expect("spawn");
        self.peer = Some(peer);
        // A retry policy in virtual time: start pinging after 30 s.
        ctx.timer(Timer::once(Duration::from_secs(30)).named("go"));
    }
    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _: &TimerEvent) {
        ctx.to_state(Phase::Pinging);
        if let Some(p) = &self.peer {
            p.send(Ping(1)).ok();
        }
    }
}

impl Tonic for Ponger {
    type State = ();
}

impl Receive<Ping> for Ponger {
    fn receive(&mut self, _: &mut Ctx<Self>, Ping(n): Ping) {
        self.back.send(Pong(n)).ok();
    }
}

impl Receive<Pong> for Pinger {
    fn receive(&mut self, ctx: &mut Ctx<Self>, Pong(n): Pong) {
        self.pongs = n;
        if n == 3 {
            ctx.to_state(Phase::Done);
            ctx.finish();
        } else if let Some(p) = &self.peer {
            p.send(Ping(n + 1)).ok();
        }
    }
}

fn pinger(d: &mut Distiller) -> Handle<Pinger> {
    d.spawn_named(
        "pinger",
        Pinger {
            peer: None,
            pongs: 0,
        },
    )
}

#[test]
fn stops_on_a_sparkle_count() {
    let mut d = Distiller::new();
    pinger(&mut d);
    let out = d.run(Contract::new().sparkles(2));
    assert_eq!(out.reason, StopReason::Sparkles);
    assert_eq!(out.trace.sparkles(), vec!["on_start", "on_start"]);
}

#[test]
fn stops_on_a_state_and_virtual_time_passes_without_waiting() {
    let mut d = Distiller::new();
    let p = pinger(&mut d);
    let out = d.run(Contract::new().state(&p, Phase::Pinging));
    assert_eq!(out.reason, StopReason::State(p.id()));
    assert_eq!(d.elapsed(), Duration::from_secs(30));
}

#[test]
fn stops_on_a_named_sparkle_and_on_a_probe() {
    let mut d = Distiller::new();
    let p = pinger(&mut d);
    let out = d.run(Contract::new().sparkle("Ping"));
    assert_eq!(out.reason, StopReason::Sparkle("Ping"));
    let out = d.run(Contract::new().probe(&p, |t, _| t.pongs >= 2));
    assert_eq!(out.reason, StopReason::Probe(0));
    assert_eq!(d.inspect(&p, |t, _| t.pongs), Some(2));
}

#[test]
fn stops_on_a_timeout_and_runs_to_completion() {
    let mut d = Distiller::new();
    pinger(&mut d);
    let out = d.run(Contract::new().timeout(Duration::from_secs(10)));
    assert_eq!(out.reason, StopReason::Timeout);
    assert_eq!(d.elapsed(), Duration::from_secs(10));
    let out = d.run(Contract::new());
    assert_eq!(out.reason, StopReason::Completed);
    assert!(out.failures.is_empty());
}

#[test]
fn the_trace_names_sources_states_and_renders_mermaid() {
    let mut d = Distiller::new();
    let p = pinger(&mut d);
    let out = d.run(Contract::new());
    assert_eq!(out.reason, StopReason::Completed);
    let trace = d.trace();
    let pings: Vec<_> = trace
        .entries
        .iter()
        .filter(|e| e.sparkle == "Ping")
        .collect();
    assert_eq!(pings.len(), 3);
    assert!(
        pings
            .iter()
            .all(|e| e.from == Some(p.id()) && e.tonic_name == "ponger")
    );
    let timer = trace
        .entries
        .iter()
        .find(|e| e.sparkle == "timer")
        .expect("the go timer");
    assert_eq!(
        (
            timer.from,
            timer.state_before.as_str(),
            timer.state_after.as_str()
        ),
        (None, "Idle", "Pinging")
    );
    assert_eq!(timer.at, Duration::from_secs(30));
    assert_eq!(trace.states_of(p.id()), vec!["Idle", "Pinging", "Done"]);

    let md = trace.to_markdown();
    let pinger_id = p.id().as_u64();
    assert!(md.contains("```mermaid\nsequenceDiagram\n"), "{md}");
    assert!(
        md.contains(&format!("participant T{pinger_id} as pinger")),
        "{md}"
    );
    assert!(md.contains(&format!("T{pinger_id}->>T")), "{md}");
    assert!(md.contains("Ping"), "{md}");
    assert!(
        md.contains(&format!("Note over T{pinger_id}: Idle → Pinging")),
        "{md}"
    );
    assert!(md.contains("| timer |"), "{md}");
}

#[test]
fn failures_are_reported_in_the_outcome() {
    struct Bad;
    impl Tonic for Bad {
        type State = ();
        fn on_start(&mut self, _: &mut Ctx<Self>) {
            panic!("bad start");
        }
    }
    let mut d = Distiller::new();
    d.spawn(Bad);
    let out = d.run(Contract::new());
    assert_eq!(out.reason, StopReason::Completed);
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].message, "bad start");
}
