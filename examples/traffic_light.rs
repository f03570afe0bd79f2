//! A traffic light: state timeouts drive red → green → yellow → red; a pedestrian button
//! pressed while the light is not green is postponed until the next state change, and in green
//! it cuts the green phase short.
//!
//! Run: `cargo run --example traffic_light` (real time, about two seconds), or
//! `cargo run --example traffic_light -- --distill` to run it under the Distiller's virtual clock
//! and print the trace as Markdown with a Mermaid sequence diagram.

use std::time::Duration;

use tasktonic::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Light {
    #[default]
    Off,
    Red,
    Green,
    Yellow,
}

struct Press;

#[derive(Default)]
struct TrafficLight {
    cycles: u32,
    started: Option<std::time::Instant>,
}

impl TrafficLight {
    const RED: Duration = Duration::from_millis(300);
    const GREEN: Duration = Duration::from_millis(600);
    const YELLOW: Duration = Duration::from_millis(150);
}

impl Tonic for TrafficLight {
    type State = Light;

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        self.started = Some(ctx.now());
        ctx.to_state(Light::Red);
    }

    fn on_enter(&mut self, ctx: &mut Ctx<Self>, state: &Light) {
        let t = self.started.map(|s| ctx.now() - s).unwrap_or_default();
        println!("{:>6} ms  light {state:?}", t.as_millis());
        match state {
            Light::Red => ctx.state_timeout(Self::RED),
            Light::Green => ctx.state_timeout(Self::GREEN),
            Light::Yellow => ctx.state_timeout(Self::YELLOW),
            Light::Off => {}
        }
    }

    fn on_state_timeout(&mut self, ctx: &mut Ctx<Self>, state: &Light) {
        match state {
            Light::Red => ctx.to_state(Light::Green),
            Light::Green => ctx.to_state(Light::Yellow),
            Light::Yellow => {
                self.cycles += 1;
                if self.cycles == 2 {
                    println!("two cycles done; switching off");
                    ctx.to_state(Light::Off);
                    ctx.finish();
                } else {
                    ctx.to_state(Light::Red);
                }
            }
            Light::Off => {}
        }
    }
}

impl Receive<Press> for TrafficLight {
    fn receive(&mut self, ctx: &mut Ctx<Self>, press: Press) {
        match ctx.state() {
            Light::Green => {
                println!("           button: green cut short");
                ctx.to_state(Light::Yellow); // cancels the green state timeout
            }
            Light::Off => println!("           button: the light is off"),
            other => {
                println!("           button pressed in {other:?}: postponed");
                ctx.postpone_message(press);
            }
        }
    }
}

/// Presses the button twice: once early (red: postponed), once late in the second green.
struct Pedestrian {
    light: Handle<TrafficLight>,
}

impl Tonic for Pedestrian {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        ctx.timer(Timer::once(Duration::from_millis(100)).marker(1));
        ctx.timer(Timer::once(Duration::from_millis(1_400)).marker(2));
    }
    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
        self.light.send(Press).ok();
        if timer.marker == 2 {
            ctx.finish();
        }
    }
}

/// Starts both, on two catalysts.
struct Crossing;

impl Tonic for Crossing {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let light = ctx
            .infusion(TrafficLight::default())
            .name("light")
            .spawn()
            .expect("free name");
        ctx.infusion(Pedestrian { light })
            .name("pedestrian")
            .catalyst("street")
            .spawn()
            .expect("free name");
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        if ctx.infusions().is_empty() {
            ctx.finish();
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--distill") {
        let mut distiller = Distiller::new();
        distiller.spawn_named("crossing", Crossing);
        let outcome = distiller.run(Contract::new());
        println!(
            "stopped: {:?} after {:?} of virtual time\n",
            outcome.reason,
            distiller.elapsed()
        );
        println!("{}", outcome.trace.to_markdown());
        return Ok(());
    }
    App::new("traffic_light")
        .tonic_named("crossing", Crossing)
        .run()?;
    Ok(())
}
