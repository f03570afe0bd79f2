//! TaskTonic's HelloWorld, in Rust.
//!
//! A repeating timer walks `HelloWorld` through the states hello → welcome → ending; each
//! `on_enter` prints. Along the way it talks to `Echo`, its infusion on another catalyst, through
//! sparkles; both sign the `Guestbook` service. In `ending` the parent finishes its child, then
//! itself; the service finishes with its last base, and the program exits 0.
//!
//! Run: `cargo run --example hello_world`

use std::time::Duration;

use tasktonic::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Greeting {
    #[default]
    Idle,
    Hello,
    Welcome,
    Ending,
}

/// A service: one instance, shared by every tonic that asks for it.
#[derive(Default)]
struct Guestbook {
    entries: Vec<String>,
}

struct Sign(String);

impl Tonic for Guestbook {
    type State = ();
    fn on_finished(&mut self, ctx: &mut Ctx<Self>) {
        println!(
            "[{}] closed with {} entries: {:?}",
            ctx.name(),
            self.entries.len(),
            self.entries
        );
    }
}

impl Service for Guestbook {
    fn create() -> Self {
        Guestbook::default()
    }
}

impl Receive<Sign> for Guestbook {
    fn receive(&mut self, _ctx: &mut Ctx<Self>, Sign(who): Sign) {
        self.entries.push(who);
    }
}

/// Runs on its own catalyst ("echo") and answers greetings.
struct Echo {
    guestbook: Option<Handle<Guestbook>>,
}

struct Greet {
    text: &'static str,
    reply_to: Handle<HelloWorld>,
}

struct Reply(String);

impl Tonic for Echo {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        println!("[{}] started on catalyst {:?}", ctx.name(), ctx.catalyst());
        self.guestbook = Some(ctx.service::<Guestbook>());
    }
    fn on_finished(&mut self, ctx: &mut Ctx<Self>) {
        println!("[{}] finished by its parent", ctx.name());
    }
}

impl Receive<Greet> for Echo {
    fn receive(&mut self, ctx: &mut Ctx<Self>, greet: Greet) {
        if let Some(book) = &self.guestbook {
            book.send(Sign(format!("echo heard {:?}", greet.text))).ok();
        }
        let reply = Reply(format!("{} back, from {}", greet.text, ctx.catalyst()));
        greet.reply_to.send(reply).ok();
    }
}

struct HelloWorld {
    echo: Option<Handle<Echo>>,
    guestbook: Option<Handle<Guestbook>>,
}

impl Tonic for HelloWorld {
    type State = Greeting;

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        println!("[{}] started on catalyst {:?}", ctx.name(), ctx.catalyst());
        self.guestbook = Some(ctx.service::<Guestbook>());
        let echo = Echo { guestbook: None };
        self.echo = Some(
            ctx.infusion(echo)
                .name("echo")
                .catalyst("echo")
                .spawn()
                .expect("a free name"),
        );
        ctx.timer(Timer::repeat(Duration::from_millis(400)).named("walk"));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _timer: &TimerEvent) {
        let next = match ctx.state() {
            Greeting::Idle => Greeting::Hello,
            Greeting::Hello => Greeting::Welcome,
            Greeting::Welcome | Greeting::Ending => Greeting::Ending,
        };
        ctx.to_state(next);
    }

    fn on_enter(&mut self, ctx: &mut Ctx<Self>, state: &Greeting) {
        println!("[{}] entering {state:?}", ctx.name());
        let text = match state {
            Greeting::Hello => "hello",
            Greeting::Welcome => "welcome",
            Greeting::Ending => {
                // The parent finishes its child; it completes once the child has.
                if let Some(echo) = &self.echo {
                    echo.finish().ok();
                }
                return;
            }
            Greeting::Idle => return,
        };
        if let Some(echo) = &self.echo {
            echo.send(Greet {
                text,
                reply_to: ctx.handle(),
            })
            .ok();
        }
        if let Some(book) = &self.guestbook {
            book.send(Sign(format!("hello world said {text:?}"))).ok();
        }
    }

    fn on_exit(&mut self, ctx: &mut Ctx<Self>, state: &Greeting) {
        println!("[{}] leaving {state:?}", ctx.name());
    }

    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, infusion: &TonicRef) {
        println!("[{}] {} completed; finishing", ctx.name(), infusion.name());
        ctx.finish(); // also cancels the walk timer
    }

    fn on_finished(&mut self, ctx: &mut Ctx<Self>) {
        println!("[{}] finished", ctx.name());
    }
}

impl Receive<Reply> for HelloWorld {
    fn receive(&mut self, ctx: &mut Ctx<Self>, Reply(text): Reply) {
        println!("[{}] in {:?} got: {text}", ctx.name(), ctx.state());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    App::new("hello_world")
        .catalyst("echo")
        .tonic_named(
            "hello world",
            HelloWorld {
                echo: None,
                guestbook: None,
            },
        )
        .run()?;
    println!("all tonics completed");
    Ok(())
}
