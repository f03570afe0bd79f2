//! Our WebSocket client under the Autobahn conformance suite: against `wstest -m
//! fuzzingserver` it asks for the number of cases, runs each (echoing every message until
//! the server closes), then asks the server to write its reports. `.ci/autobahn` drives it.
//!
//! ```text
//! cargo run --release --example ws_autobahn_client -- --url ws://127.0.0.1:9001 --agent tasktonic
//! ```
//!
//! Exits 0 once the reports were asked for, 1 if the suite could not be reached, 2 on a
//! usage error.

use std::sync::Arc;

use parking_lot::Mutex;
use tasktonic::net::tcp::CloseReason;
use tasktonic::net::ws::{Ws, WsClient, WsConfig, WsEvents, WsInfo, WsMessage};
use tasktonic::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Count,
    Case(u32),
    Report,
}

struct Runner {
    base: String,
    agent: String,
    step: Step,
    cases: u32,
    failed: Arc<Mutex<Option<String>>>,
}

impl Runner {
    fn url(&self) -> String {
        match self.step {
            Step::Count => format!("{}/getCaseCount", self.base),
            Step::Case(n) => format!("{}/runCase?case={n}&agent={}", self.base, self.agent),
            Step::Report => format!("{}/updateReports?agent={}", self.base, self.agent),
        }
    }

    fn open(&mut self, ctx: &mut Ctx<Self>) {
        let url = self.url();
        // The suite sends messages of up to 16 MiB.
        let limits = WsConfig::default()
            .max_message(64 << 20)
            .max_frame(64 << 20);
        let started = WsClient::new(&url).and_then(|c| c.ws_config(limits).start(ctx));
        if let Err(e) = started {
            *self.failed.lock() = Some(format!("{url}: {e}"));
            ctx.stop_app();
        }
    }
}

impl Tonic for Runner {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        self.open(ctx);
    }
}

impl WsEvents for Runner {
    fn on_ws_message(&mut self, _: &mut Ctx<Self>, ws: &Ws, msg: WsMessage) {
        match self.step {
            Step::Count => {
                self.cases = msg
                    .as_text()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0);
                eprintln!("{} cases", self.cases);
            }
            Step::Case(_) => {
                if let Err(e) = ws.send(msg) {
                    log::warn!("{ws}: echo not sent: {e}");
                }
            }
            Step::Report => {}
        }
    }

    fn on_ws_closed(&mut self, ctx: &mut Ctx<Self>, _: &Ws, why: &CloseReason, _: Vec<WsMessage>) {
        let next = match self.step {
            Step::Count if self.cases == 0 => {
                *self.failed.lock() = Some(format!("no case count ({why})"));
                return ctx.stop_app();
            }
            Step::Count => Step::Case(1),
            Step::Case(n) if n < self.cases => Step::Case(n + 1),
            Step::Case(_) => Step::Report,
            Step::Report => return ctx.stop_app(),
        };
        self.step = next;
        self.open(ctx);
    }

    fn on_ws_open(&mut self, _: &mut Ctx<Self>, _: &Ws, _: &WsInfo) {}
}

fn main() {
    let mut url = String::from("ws://127.0.0.1:9001");
    let mut agent = String::from("tasktonic");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--url", Some(v)) => url = v,
            ("--agent", Some(v)) => agent = v,
            _ => {
                eprintln!("usage: ws_autobahn_client --url ws://HOST:PORT --agent NAME");
                std::process::exit(2);
            }
        }
    }
    let failed = Arc::new(Mutex::new(None));
    let runner = Runner {
        base: url.trim_end_matches('/').to_string(),
        agent,
        step: Step::Count,
        cases: 0,
        failed: failed.clone(),
    };
    if let Err(e) = App::new("ws_autobahn_client")
        .tonic_named("runner", runner)
        .run()
    {
        eprintln!("ws_autobahn_client: {e}");
        std::process::exit(1);
    }
    if let Some(why) = failed.lock().take() {
        eprintln!("ws_autobahn_client: {why}");
        std::process::exit(1);
    }
    println!("ok");
}
