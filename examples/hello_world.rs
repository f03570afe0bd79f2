//! TaskTonic's HelloWorld, in Rust.
//!
//! A repeating timer walks `HelloWorld` through the states hello → welcome → ending; each
//! `on_enter` prints. Along the way it talks to `Echo`, its infusion on another catalyst, through
//! sparkles; both sign the `Guestbook` service. In `ending` the parent finishes its child, then
//! itself; the service finishes with its last base, and the program exits 0.
//!
//! Run: `cargo run --example hello_world [-- --log-to HOST:PORT [--log-wait SECS]]`
//!
//! Every line it prints is also logged (`log::info!`, with the tonic that said it). With
//! `--log-to`, the records stream to a remote log viewer (`cargo run --example log_viewer --
//! --port PORT`; MessagePack frames, see `docs/interop.md`): the viewer may start later — the
//! records wait (up to 10 000) and are delivered once it is up; at the end the program waits
//! at most `--log-wait` seconds (default 10) for the viewer to take them, then reports on
//! stderr what was delivered, dropped or left.

use std::time::Duration;

use tasktonic::net::remote_log::RemoteLog;
use tasktonic::prelude::*;

/// Print a line, and log it (shipped to the viewer with `--log-to`).
macro_rules! say {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        log::info!("{line}");
    }};
}

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
        say!(
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
        say!("[{}] started on catalyst {:?}", ctx.name(), ctx.catalyst());
        self.guestbook = Some(ctx.service::<Guestbook>());
    }
    fn on_finished(&mut self, ctx: &mut Ctx<Self>) {
        say!("[{}] finished by its parent", ctx.name());
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
        say!("[{}] started on catalyst {:?}", ctx.name(), ctx.catalyst());
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
        say!("[{}] entering {state:?}", ctx.name());
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
        say!("[{}] leaving {state:?}", ctx.name());
    }

    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, infusion: &TonicRef) {
        say!("[{}] {} completed; finishing", ctx.name(), infusion.name());
        ctx.finish(); // also cancels the walk timer
    }

    fn on_finished(&mut self, ctx: &mut Ctx<Self>) {
        say!("[{}] finished", ctx.name());
    }
}

impl Receive<Reply> for HelloWorld {
    fn receive(&mut self, ctx: &mut Ctx<Self>, Reply(text): Reply) {
        say!("[{}] in {:?} got: {text}", ctx.name(), ctx.state());
    }
}

/// `--log-to HOST:PORT` and `--log-wait SECS`.
fn parse() -> Result<(Option<String>, Duration), String> {
    let mut log_to = None;
    let mut wait = Duration::from_secs(10);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--log-to" => log_to = Some(value()?),
            "--log-wait" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--log-wait: {e}"))?;
                wait = Duration::try_from_secs_f64(secs).map_err(|e| format!("--log-wait: {e}"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: hello_world [--log-to HOST:PORT] [--log-wait SECS])"
                ));
            }
        }
    }
    Ok((log_to, wait))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (log_to, log_wait) = match parse() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("hello_world: {e}");
            std::process::exit(2);
        }
    };
    let remote = match log_to {
        Some(target) => {
            let remote = RemoteLog::builder(target).project("hello_world").start()?;
            remote.clone().install()?;
            Some(remote)
        }
        None => None,
    };
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
    say!("all tonics completed");
    if let Some(remote) = remote {
        eprintln!("hello_world: {}", remote.close(log_wait));
    }
    Ok(())
}
