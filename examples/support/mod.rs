//! What the examples share: stopping on SIGINT or SIGTERM, and a launcher that places a
//! tonic on the selector catalyst (co-located) or on the main catalyst.
#![allow(dead_code)] // each example uses what it needs

use tasktonic::net::Selector;
use tasktonic::prelude::*;

/// Stop `app` gracefully on SIGINT or SIGTERM (`App::run` then returns). `name` prefixes
/// the warning printed if signals cannot be handled.
pub(crate) fn stop_on_signals(app: &App, name: &str) {
    let stopper = app.stopper();
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if signals.forever().next().is_some() {
                    stopper.stop();
                }
            });
        }
        Err(e) => eprintln!("{name}: cannot handle signals: {e}"),
    }
}

/// The arguments of an example that takes only `--port P` (default 0: a free port); a
/// usage error says how to call `name`.
pub(crate) fn port_only(name: &str) -> Result<u16, String> {
    let mut port = 0;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--port" => {
                port = args
                    .next()
                    .ok_or("--port needs a value")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?;
            }
            "-h" | "--help" => return Err(format!("usage: {name} --port P")),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(port)
}

/// Places its tonic on the selector catalyst (co-located: a connection's messages reach it
/// without crossing threads) or on the main catalyst (the seed layout), and ends the app
/// when that tonic ends.
pub(crate) struct Launcher<T> {
    name: &'static str,
    tonic: Option<T>,
    colocated: bool,
}

impl<T: Tonic> Launcher<T> {
    /// A launcher for `tonic`; `name` prefixes its error messages.
    pub(crate) fn new(name: &'static str, tonic: T, colocated: bool) -> Launcher<T> {
        Launcher {
            name,
            tonic: Some(tonic),
            colocated,
        }
    }
}

impl<T: Tonic> Tonic for Launcher<T> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let Some(tonic) = self.tonic.take() else {
            return;
        };
        let spawned = if self.colocated {
            match Selector::default_for(ctx) {
                Ok(selector) => ctx.infusion(tonic).catalyst(selector.catalyst()).spawn(),
                Err(e) => {
                    eprintln!("{}: no selector: {e}", self.name);
                    return ctx.stop_app();
                }
            }
        } else {
            ctx.infusion(tonic).spawn()
        };
        if spawned.is_err() {
            ctx.stop_app();
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        ctx.finish();
    }
}
