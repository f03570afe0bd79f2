//! A counter shared across processes through NATS: the counter exposes itself by name;
//! workers, in other processes (on other machines), send it increments and ask it for the
//! total — typed messages and asks, as between tonics of one process.
//!
//! ```text
//! nats-server -p 4222 &
//! cargo run --example cluster_counter -- --nats nats://127.0.0.1:4222 --role counter --name hits &
//! cargo run --example cluster_counter -- --nats nats://127.0.0.1:4222 --role worker --name hits --count 1000
//! ```
//!
//! The counter prints `counter NAME ready` once exposed and runs until SIGINT or SIGTERM
//! (exit 0). A worker sends `--count` increments (default 100), asks for the total, prints
//! `total T` and exits 0; it exits 1 if the counter does not answer (within `--timeout-ms`,
//! default 5000) and 2 on a usage error. Messages from one worker arrive in order, so the
//! total it is told includes all of its own increments.

mod support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasktonic::net::nats::remote::{RemoteAsk, RemoteMessage, RemoteSendError, Respond};
use tasktonic::net::nats::{Nats, NatsClient, NatsEvents, NatsStatus};
use tasktonic::prelude::*;

/// Add to the count.
#[derive(Debug, Serialize, Deserialize)]
struct Increment(u64);
impl RemoteMessage for Increment {
    const NAME: &'static str = "increment";
}

/// What is the count?
#[derive(Debug, Serialize, Deserialize)]
struct Total;
impl RemoteMessage for Total {
    const NAME: &'static str = "total";
}
impl RemoteAsk for Total {
    type Reply = u64;
}

struct Options {
    nats: String,
    counter: bool,
    name: String,
    count: u64,
    timeout: Duration,
}

/// The counter: exposed under `name`.
struct Counter {
    o: Arc<Options>,
    total: u64,
    nats: Option<Nats>,
}

impl Tonic for Counter {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let nats = match NatsClient::new(&self.o.nats).and_then(|c| c.name("counter").start(ctx)) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("cluster_counter: {e}");
                EXIT.store(1, Ordering::SeqCst);
                return ctx.stop_app();
            }
        };
        let exposed = nats
            .expose(&self.o.name, &ctx.handle())
            .tell::<Increment>()
            .ask::<Total>()
            .start();
        if let Err(e) = exposed {
            eprintln!("cluster_counter: {e}");
            EXIT.store(2, Ordering::SeqCst);
            return ctx.stop_app();
        }
        nats.watch_status(ctx);
        self.nats = Some(nats);
    }
}

impl NatsEvents for Counter {
    fn on_nats_status(&mut self, ctx: &mut Ctx<Self>, status: NatsStatus) {
        if status == NatsStatus::Connected
            && let Some(nats) = &self.nats
        {
            // Ready once the server has the subscription.
            nats.flush(ctx, |c: &mut Counter, _, ok| {
                if ok {
                    println!("counter {} ready", c.o.name);
                    std::io::stdout().flush().ok();
                }
            });
        }
    }
}

impl Receive<Increment> for Counter {
    fn receive(&mut self, _: &mut Ctx<Self>, msg: Increment) {
        self.total += msg.0;
    }
}

impl Respond<Total> for Counter {
    fn respond(&mut self, _: &mut Ctx<Self>, _: Total) -> u64 {
        self.total
    }
}

/// A worker: increments, then asks.
struct Worker {
    o: Arc<Options>,
    nats: Option<Nats>,
    sent: u64,
    asked: bool,
}

impl Worker {
    fn work(&mut self, ctx: &mut Ctx<Self>) {
        let Some(nats) = self.nats.clone() else {
            return;
        };
        let counter = nats.remote(&self.o.name);
        while self.sent < self.o.count {
            match counter.send(Increment(1)) {
                Ok(()) => self.sent += 1,
                Err(RemoteSendError::Backpressure(_)) => {
                    // The queue is full: go on once the server has taken what is queued.
                    return nats.flush(ctx, |w: &mut Worker, ctx, _| w.work(ctx));
                }
                Err(RemoteSendError::NotConnected(_)) => return, // resumed on Connected
                Err(e) => {
                    eprintln!("cluster_counter: {e}");
                    EXIT.store(1, Ordering::SeqCst);
                    return ctx.stop_app();
                }
            }
        }
        if self.asked {
            return;
        }
        self.asked = true;
        counter.ask(ctx, Total, self.o.timeout, |_: &mut Worker, ctx, answer| {
            match answer {
                Ok(total) => println!("total {total}"),
                Err(e) => {
                    eprintln!("cluster_counter: the counter did not answer: {e}");
                    EXIT.store(1, Ordering::SeqCst);
                }
            }
            ctx.stop_app();
        });
    }
}

impl Tonic for Worker {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        match NatsClient::new(&self.o.nats).and_then(|c| c.name("worker").start(ctx)) {
            Ok(nats) => {
                nats.watch_status(ctx);
                self.nats = Some(nats);
            }
            Err(e) => {
                eprintln!("cluster_counter: {e}");
                EXIT.store(1, Ordering::SeqCst);
                ctx.stop_app();
            }
        }
        ctx.timer(Timer::once(self.o.timeout).named("connect timeout"));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _: &TimerEvent) {
        if self.sent == 0 && self.o.count > 0 {
            eprintln!("cluster_counter: no connection to {}", self.o.nats);
            EXIT.store(1, Ordering::SeqCst);
            ctx.stop_app();
        }
    }
}

impl NatsEvents for Worker {
    fn on_nats_status(&mut self, ctx: &mut Ctx<Self>, status: NatsStatus) {
        if status == NatsStatus::Connected {
            self.work(ctx);
        }
    }
}

static EXIT: AtomicI32 = AtomicI32::new(0);

fn parse() -> Result<Options, String> {
    let mut o = Options {
        nats: "nats://127.0.0.1:4222".into(),
        counter: false,
        name: String::new(),
        count: 100,
        timeout: Duration::from_secs(5),
    };
    let mut role = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--nats" => o.nats = value()?,
            "--role" => role = Some(value()?),
            "--name" => o.name = value()?,
            "--count" => o.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--timeout-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--timeout-ms: {e}"))?;
                o.timeout = Duration::from_millis(ms.max(1));
            }
            "-h" | "--help" => {
                return Err(
                    "usage: cluster_counter --nats URL --role counter|worker --name N \
                            [--count K] [--timeout-ms MS]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    o.counter = match role.as_deref() {
        Some("counter") => true,
        Some("worker") => false,
        _ => return Err("--role counter|worker is required".into()),
    };
    if o.name.is_empty() {
        return Err("--name is required".into());
    }
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("cluster_counter: {e}");
            std::process::exit(2);
        }
    };
    let app = if o.counter {
        App::new("cluster_counter").tonic_named(
            "counter",
            Counter {
                o,
                total: 0,
                nats: None,
            },
        )
    } else {
        App::new("cluster_counter").tonic_named(
            "worker",
            Worker {
                o,
                nats: None,
                sent: 0,
                asked: false,
            },
        )
    };
    support::stop_on_signals(&app, "cluster_counter");
    if let Err(e) = app.run() {
        eprintln!("cluster_counter: {e}");
        std::process::exit(1);
    }
    std::process::exit(EXIT.load(Ordering::SeqCst));
}
